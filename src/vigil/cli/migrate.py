"""``vigil migrate``: migration safety. ``lint`` lives here; ``verify``, ``apply`` and ``status``
are registered onto :data:`migrate_group` by :mod:`vigil.cli.migrate_run` (imported at the end)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option
from vigil.errors import UsageError


class _MigrateGroup(click.Group):
    """``lint`` is defined here; ``verify``, ``apply`` and ``status`` are registered by
    :mod:`vigil.cli.migrate_run`, imported only when one of them (or the list of commands) is asked
    for, so ``vigil migrate lint`` loads neither the spec models nor the database drivers it needs."""

    def _load(self) -> None:
        import vigil.cli.migrate_run  # noqa: F401  (registers verify / apply / status)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None:
            self._load()
            cmd = super().get_command(ctx, cmd_name)
        return cmd

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)


@click.group("migrate", cls=_MigrateGroup)
def migrate_group() -> None:
    """Database migration safety: lint SQL migrations, verify them on Stage, apply them with a ledger.

    Migrations are files <version>_<name>.sql (optional <version>_<name>.down.sql) in the spec's
    `migrations.dir`; each runs in one transaction unless its first line is
    `-- vigil:no-transaction`.
    """


def _display(p: Path) -> str:
    """A path as findings show it: relative to the working directory when it is below it."""
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve())) if p.is_absolute() else os.path.normpath(str(p))
    except ValueError:
        return str(p)


@migrate_group.command("lint")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default=None,
    help="output: text (default), json (same as --json), or sarif (SARIF 2.1.0 for code scanning)",
)  # fmt: skip
@click.option("--list-rules", is_flag=True, help="print the rules (id, severity, what, fix) and exit")
@click.option(
    "--enable", "enable", multiple=True, metavar="RULE[,RULE]",
    help="turn on opt-in rules (the prefer-* family; --list-rules marks them); repeatable",
)  # fmt: skip
@click.option(
    "--jobs", type=click.IntRange(min=1), default=None, metavar="N",
    help="processes that parse and check files (default: several when there is enough SQL to pay for them; 1: none)",
)  # fmt: skip
@spec_option
@json_option
def lint_cmd(paths: tuple[str, ...], fmt: str | None, list_rules: bool, enable: tuple[str, ...], jobs: int | None) -> int:
    """Lint SQL migrations for blocking locks, table rewrites and breaking changes.

    PATH is a .sql file or a directory (its up files, not recursive). Without PATH, lints the
    spec's `migrations.dir`. A directory gets the same file rules as `migrate apply` (a misnamed
    file, a duplicate version, a down file without its up file, an empty file are errors). The
    spec's `migrations.lint` and `suppressions` apply when a spec is found. Inline suppression:
    `-- vigil:ignore RULE reason="why" expires=YYYY-MM-DD` before the statement.
    Exit 1 when any finding has severity error.
    """
    import gc

    # the lint builds millions of acyclic objects (parse trees): the cyclic collector would only
    # walk them again and again (about a tenth of the lint's time); it is back on afterwards
    was = gc.isenabled()
    gc.disable()
    try:
        return _lint(paths, fmt, list_rules, enable, jobs)
    finally:
        if was:
            gc.enable()


def _lint(paths: tuple[str, ...], fmt: str | None, list_rules: bool, enable: tuple[str, ...], jobs: int | None) -> int:
    from vigil.deploy.migrations.lint import LintConfig, lint_directory, lint_paths
    from vigil.deploy.migrations.rules import RULES

    e = env()
    if fmt is None:
        fmt = "json" if e.json_mode else "text"
    elif e.json_mode and fmt != "json":
        raise UsageError(f"--json and --format {fmt} disagree", hint="use one of them: --json is --format json")
    e.json_mode = fmt == "json"

    if list_rules:
        rules = [
            {"id": r.id, "severity": r.severity, "group": r.group, "what": r.summary, "why": r.why, "fix": r.fix,
             "opt_in": r.opt_in}
            for r in RULES.values()
        ]  # fmt: skip
        def text() -> None:
            for r in rules:
                click.echo(f"{r['id']:<32} {r['severity']:<8} {r['what']}" + (" [opt-in]" if r["opt_in"] else ""))

        emit({"rules": rules}, text)
        return exitcodes.OK

    enabled = {x.strip() for item in enable for x in item.split(",") if x.strip()}
    for rid in sorted(enabled):
        if rid not in RULES or not RULES[rid].opt_in:
            import difflib

            opt = sorted(r.id for r in RULES.values() if r.opt_in)
            close = difflib.get_close_matches(rid, opt, n=1)
            raise UsageError(
                f"--enable {rid}: " + ("not an opt-in rule (it runs already)" if rid in RULES else "unknown rule")
                + (f"; did you mean {close[0]}?" if close else ""),
                hint=f"opt-in rules: {', '.join(opt)}",
            )  # fmt: skip

    mspec = None
    spec_dir = Path(".")
    explicit = e.spec_path != "vigil.yaml"  # --spec or $VIGIL_SPEC given: it must load
    if not paths or explicit or os.path.exists(e.spec_path):
        loaded = e.loaded  # a missing or invalid spec is a usage error (exit 2) with file and line
        mspec = loaded.spec.migrations
        spec_dir = (loaded.path or Path(e.spec_path)).parent
    config = LintConfig.from_spec(mspec, today=e.clock.now().date(), enable=enabled)

    if paths:
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise UsageError(
                f"path not found: {', '.join(missing)}", hint="pass .sql files or directories of migrations"
            )
        report = lint_paths(list(paths), config, display=_display, jobs=jobs)
    else:
        if mspec is None:
            raise UsageError(
                f"{e.spec_path} has no `migrations:` section and no PATH was given",
                hint="pass PATH (a .sql file or a directory), or add `migrations: {dir: migrations}` to the spec",
            )
        report = lint_directory(spec_dir / mspec.dir, config, display=_display, jobs=jobs)

    if fmt == "sarif":
        from vigil.deploy.migrations.sarif import to_sarif

        click.echo(json.dumps(to_sarif(report), indent=2))
    else:
        emit(report.to_dict(), lambda: _text(report))
    return exitcodes.OK if report.ok else exitcodes.NO


def _text(report) -> None:
    out: list[str] = []  # one write: thousands of findings print in milliseconds
    for f in report.findings:
        out.append(str(f))
        out.append(f"    fix: {f.fix}")
    if report.findings:
        out.append("")
    for m in report.migrations:
        tx = "" if m.transaction else ", no transaction"
        out.append(f"{m.file}: {m.cls} ({m.statements} statement{'s' if m.statements != 1 else ''}{tx}): {m.why}")
    for s in report.suppressed:
        out.append(
            f"suppressed {s.finding.file}:{s.finding.line} {s.finding.rule} until {s.expires.isoformat()}: {s.reason} ({s.source})"
        )
    n = len(report.migrations)
    errors, warnings, info = report.count("error"), report.count("warning"), report.count("info")
    verdict = "ok" if report.ok else "FAILED"
    out.append(
        f"{verdict}: {n} file{'s' if n != 1 else ''}, {report.statements} statements: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}, {info} info, {len(report.suppressed)} suppressed"
    )
    click.echo("\n".join(out))


COMMANDS = [migrate_group]
