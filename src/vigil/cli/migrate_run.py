"""``vigil migrate verify | apply | status``: registered onto :data:`vigil.cli.migrate.migrate_group`.

The library (:mod:`vigil.deploy.migrations.runner`, :mod:`vigil.deploy.migrations.verify`) does
the work; this module reads the options and the spec, prints, and picks the exit code.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from vigil.cli.common import actor, db_option, emit, env, json_option, spec_option
from vigil.cli.migrate import migrate_group
from vigil.deploy.migrations.spec import DEFAULT_TARGET_URL_ENV, MigrationsSpec
from vigil.errors import NotFoundError, UsageError

TARGET_URL_ENV = DEFAULT_TARGET_URL_ENV
"""Where apply, status and verify read the target database URL by default (the spec's migrations.target.url_env overrides)."""


def _duration(ctx: click.Context, param: click.Parameter, value: Any) -> Decimal | None:
    if value is None:
        return None
    from vigil.units import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _context(dir_opt: str | None) -> tuple[MigrationsSpec, Path, Path]:
    """The migrations section (defaults when there is none), the migrations directory and the spec's directory.

    A spec is read when it exists or was named (--spec / $VIGIL_SPEC); with --dir and no spec the
    section's defaults apply."""
    e = env()
    named = e.spec_path != "vigil.yaml"
    if dir_opt is not None and not named and not os.path.exists(e.spec_path):
        return MigrationsSpec(), Path(dir_opt), Path(".")
    loaded = e.loaded  # a missing or invalid spec is a usage error with file and line
    base = (loaded.path or Path(e.spec_path)).parent
    m = loaded.spec.migrations or MigrationsSpec()
    return m, Path(dir_opt) if dir_opt is not None else base / m.dir, base


def _target_url(db_url: str | None, m: MigrationsSpec) -> str:
    if db_url:
        return db_url
    name = m.target.url_env
    url = os.environ.get(name)
    if not url:
        raise UsageError(
            f"no target database: pass --db-url or set ${name}",
            hint="the URL of the database to migrate, like postgresql://migrator@db.internal:5432/app "
            "(keep the password in ~/.pgpass or $PGPASSWORD, never in the spec)",
        )
    return url


def _load(dir_path: Path) -> list:
    from vigil.deploy.migrations.files import load_migrations

    return load_migrations(dir_path)


def db_url_option(f: Any) -> Any:
    return click.option(
        "--db-url", metavar="URL", default=None,
        help=f"the database to migrate (default ${TARGET_URL_ENV}); postgresql://user@host:5432/db",
    )(f)  # fmt: skip


def dir_option(f: Any) -> Any:
    return click.option(
        "--dir", "dir_", metavar="DIR", default=None,
        help="the migrations directory (default the spec's migrations.dir, relative to the spec)",
    )(f)  # fmt: skip


def _ms(v: Decimal | None) -> int | None:
    return None if v is None else int(v * 1000)


# -- apply ----------------------------------------------------------------------------------------


@migrate_group.command("apply")
@db_url_option
@dir_option
@click.option("--to", "target", type=click.IntRange(0), metavar="VERSION", help="apply pending migrations up to this version only")
@click.option("--down-to", type=click.IntRange(0), metavar="VERSION",
              help="instead: revert applied migrations above VERSION, newest first, with their .down.sql files")
@click.option("--retry-failed", is_flag=True,
              help="run again a migration the ledger says failed or was interrupted (after fixing or cleaning up)")
@click.option("--lock-retries", type=click.IntRange(0, 100), default=3, show_default=True,
              help="retries of a migration that hit lock_timeout (SQLSTATE 55P03)")
@click.option("--retry-backoff", callback=_duration, default="1s", show_default=True, metavar="DURATION",
              help="wait before the first lock retry; doubles each retry, at most 30s")
@click.option("--lock-wait", callback=_duration, default="2m", show_default=True, metavar="DURATION",
              help="how long to wait for another run's migration lock")
@spec_option
@json_option
def apply_cmd(db_url: str | None, dir_: str | None, target: int | None, down_to: int | None, retry_failed: bool,
              lock_retries: int, retry_backoff: Decimal, lock_wait: Decimal) -> int:
    """Apply pending migrations to the target database, recording each in the ledger table.

    One advisory lock per ledger (a second run waits --lock-wait, then names the holder); each
    migration in its own transaction (none for CONCURRENTLY, VACUUM, `-- vigil:no-transaction`)
    after SET lock_timeout / statement_timeout from the spec. A failure stops the run: exit 1 with
    the file, line and SQL error; the ledger says `failed`. Exit 1 also when the ledger forbids
    going on (an applied migration was edited, a failed one awaits --retry-failed); 3 when the
    database cannot be reached, or when another run holds the migration lock past --lock-wait
    (then nothing ran: the JSON says "status": "lock-busy", the text starts with BUSY). A lock
    timeout whose retries ran out exits 1 but, having changed nothing, does not block later runs.
    """
    from vigil.deploy.migrations.runner import ApplyOptions, apply

    if target is not None and down_to is not None:
        raise UsageError("--to and --down-to cannot be used together", hint="--to applies, --down-to reverts")
    e = env()
    m, dir_path, _ = _context(dir_)
    url = _target_url(db_url, m)
    migrations = _load(dir_path)
    opts = ApplyOptions(
        ledger_table=m.ledger_table, lock_timeout_ms=m.timeout_ms("lock_timeout"),
        statement_timeout_ms=m.timeout_ms("statement_timeout"), lock_retries=lock_retries,
        retry_backoff=float(retry_backoff), lock_wait=float(lock_wait), retry_failed=retry_failed,
        target=target, down_to=down_to, actor=actor(),
    )  # fmt: skip

    def progress(kind: str, d: dict) -> None:
        if e.json_mode:
            return
        if kind == "start":
            how = "" if d["transactional"] else f" (no transaction: {d['reason']})"
            click.echo(f"{'applying' if d['direction'] == 'up' else 'reverting'} {d['id']}{how} ...")
        elif kind == "retry":
            click.echo(f"  lock timeout (attempt {d['attempt']}): {d['error']}; retrying in {d['wait']:g}s")
        elif kind == "end":
            click.echo(f"  {d['status']} in {d['duration_ms']} ms" if d["status"] != "failed" else "  FAILED")

    report = apply(url, migrations, opts, on_event=progress)

    def text() -> None:
        if report.lock is not None and not report.lock.acquired:
            click.echo(f"BUSY: {report.lock.message}")
            if report.lock.hint:
                click.echo(f"  hint: {report.lock.hint}")
            return
        for p in report.plan.problems:
            click.echo(f"REFUSED {p.message}")
            click.echo(f"  hint: {p.hint}")
        for w in report.plan.warnings:
            click.echo(f"warning: {w}")
        for r in report.results:
            if r.failure:
                f = r.failure
                click.echo(f"FAILED {r.id}: {f.file}:{f.line}: {f.sqlstate} {f.message}")
                if f.detail:
                    click.echo(f"  detail: {f.detail}")
                if f.hint:
                    click.echo(f"  hint: {f.hint}")
                click.echo(f"  statement: {' '.join(f.statement.split())[:300]}")
                if r.transactional:
                    click.echo("  it ran in one transaction: nothing of it remains; the ledger says failed")
                else:
                    click.echo("  it ran OUTSIDE a transaction; the ledger says failed")
                    for n in r.notes:
                        click.echo(f"  {n}")
                    for x in r.remains:
                        click.echo(f"  left behind: {x}")
                    if not r.remains:
                        click.echo("  it left no schema object behind")
                if f.sqlstate == "55P03" and r.nothing_applied:
                    click.echo("  it timed out waiting for a lock and changed nothing: later runs are not blocked; "
                               "run `vigil migrate apply` again when the lock holder is gone (pg_stat_activity shows it)")
                else:
                    click.echo("  fix it, then run `vigil migrate apply --retry-failed`")
        if report.not_run:
            click.echo(f"not run: {', '.join(report.not_run)}")
        done = [r for r in report.results if r.status != "failed"]
        if report.status == "nothing-to-do":
            click.echo(f"nothing to {'revert' if down_to is not None else 'apply'}: {report.database} is up to date")
        elif report.status == "ok":
            click.echo(f"ok: {len(done)} migration(s) {'reverted' if down_to is not None else 'applied'} on {report.database}")

    emit(report.to_dict(), text)
    return report.exit_code


# -- status ----------------------------------------------------------------------------------------


@migrate_group.command("status")
@db_url_option
@dir_option
@spec_option
@json_option
def status_cmd(db_url: str | None, dir_: str | None) -> int:
    """Each migration's state on the target database: applied, pending, failed, interrupted, edited.

    Read-only (the ledger is not created). Exit 1 when something needs a person: a failed or
    interrupted migration, an applied one edited since, a pending one older than an applied one.
    """
    from vigil.deploy.migrations.runner import status

    m, dir_path, _ = _context(dir_)
    url = _target_url(db_url, m)
    migrations = _load(dir_path)
    report = status(url, migrations, m.ledger_table)

    def text() -> None:
        from rich.table import Table

        t = Table(title=f"migrations on {report.database} (ledger {report.ledger_table})", title_justify="left")
        for col in ("version", "migration", "state", "when", "ms", "tx", "note"):
            t.add_column(col)
        for s in report.plan.states:
            r = s.row
            when = (r.finished_at or r.started_at) if r else None
            t.add_row(
                str(s.version), s.id, s.state.upper() if s.state not in ("applied", "pending") else s.state,
                when.strftime("%Y-%m-%d %H:%M:%S") if when else "-",
                str(r.duration_ms) if r and r.duration_ms is not None else "-",
                ("yes" if r.transactional else "no") if r else "-", s.note or "",
            )  # fmt: skip
        from vigil.cli.common import console

        console().print(t)
        if report.running:
            click.echo(f"a run holds the migration lock now: pid {report.running['pid']} ({report.running['application_name']})")
        for p in report.plan.problems:
            click.echo(f"needs attention: {p.message}")
            click.echo(f"  hint: {p.hint}")
        for w in report.plan.warnings:
            click.echo(f"warning: {w}")
        c = report.counts()
        click.echo(", ".join(f"{n} {k}" for k, n in sorted(c.items())) or "no migrations")

    emit(report.to_dict(), text)
    return report.exit_code


# -- verify -----------------------------------------------------------------------------------------


@migrate_group.command("verify")
@click.option("--stage-url", metavar="URL", default=None,
              help="the Stage database (default: the environment variable named by migrations.stage.url_env)")
@click.option("--target-url", metavar="URL", default=None,
              help="the database apply will migrate (production), whose ledger says what is pending; only read "
              f"(default: the environment variable named by migrations.target.url_env, ${TARGET_URL_ENV})")
@click.option("--target-ledger", metavar="FILE", default=None,
              help="instead of --target-url: the target's `vigil migrate status --json`, saved where the target is reachable")
@dir_option
@click.option("--previous-queries", metavar="PATH", default=None,
              help="the running release's query suite: a .sql file or a directory (default migrations.queries.previous)")
@click.option("--next-queries", metavar="PATH", default=None,
              help="the new release's query suite (default migrations.queries.next)")
@click.option("--from-pg-stat-statements", is_flag=True,
              help="add the statements pg_stat_statements recorded on Stage to the previous release's suite")
@click.option("--sample-rows", type=click.IntRange(0, 1_000_000), default=1000, show_default=True,
              help="copy up to N rows per table into the clone (foreign keys kept consistent); 0: an empty clone, "
              "where changes that fail only on data are not seen")
@click.option("--query-timeout", callback=_duration, default="30s", show_default=True, metavar="DURATION",
              help="statement_timeout of each suite statement")
@click.option("--pg-bin", metavar="DIR", default=None,
              help="where pg_dump and psql are (default $VIGIL_PG_BIN or /usr/lib/postgresql/15/bin)")
@click.option("--release", metavar="NAME", default=None, help="a label for the verdict (the release being verified)")
@click.option("--service", metavar="NAME", default=None,
              help="record the verdict in the state store for this service and --release: `vigil gate deploy --release` reads it")
@click.option("--out", "out", metavar="PATH", default=None, help="also write the verdict JSON to this file (for the deploy gate)")
@click.option("--keep", is_flag=True, help="keep the scratch database (for a post-mortem); it is dropped otherwise")
@spec_option
@db_option
@json_option
def verify_cmd(stage_url: str | None, target_url: str | None, target_ledger: str | None, dir_: str | None,
               previous_queries: str | None, next_queries: str | None, from_pg_stat_statements: bool, sample_rows: int,
               query_timeout: Decimal, pg_bin: str | None, release: str | None, service: str | None, out: str | None,
               keep: bool) -> int:
    """Rehearse what the target has not applied on a scratch clone of Stage and report each check.

    Checks: plan (the TARGET's ledger vs the files: what apply will run there), clone (schema,
    ledger, privileges and a foreign-key-consistent sample of rows, rolled to the target's
    version), apply (the real runner with the spec's timeouts, on the sampled rows),
    backward-compat (the previous release's statements executed, $n with sampled values, on the
    old and the new schema), forward-compat (the new release's on the new and the old, for
    expand-only migrations), down (the down migrations restore the schema exactly, comments and
    privileges included). Each is ok, failed, inconclusive or skipped with why. The verdict is
    pass only when no check failed or was inconclusive and at least one came out ok; without the
    target's ledger it is at best inconclusive. Exit 1 when the verdict is not pass, 3 when Stage
    or the target cannot be reached. The scratch database is dropped afterwards, even on failure.
    """
    from vigil.deploy.migrations.verify import (
        DEFAULT_PG_BIN,
        VerifyOptions,
        load_suite,
        read_target_ledger_file,
        verify,
        write_verdict,
    )

    e = env()
    if service is not None:  # check before the long work, not after
        if not release:
            raise UsageError("--service records the verdict for a release: pass --release too")
        if service not in e.loaded.spec.services:
            raise NotFoundError(f"unknown service {service!r}", hint=f"services: {', '.join(sorted(e.loaded.spec.services))}")
        e.decision_clock(  # the gate reads it: never under VIGIL_NOW
            f"the migration verdict for release {release!r}", hint="unset VIGIL_NOW, or verify without --service (nothing recorded)"
        )
    m, dir_path, base = _context(dir_)
    if not stage_url:
        stage_url = os.environ.get(m.stage.url_env)
        if not stage_url:
            raise UsageError(
                f"no Stage database: pass --stage-url or set ${m.stage.url_env}",
                hint="the variable's name is migrations.stage.url_env in the spec; its value a URL like "
                "postgresql://verifier@stage-db:5432/app (a role with CREATEDB: verify works in a scratch database)",
            )
    if target_url and target_ledger:
        raise UsageError("--target-url and --target-ledger cannot be used together", hint="one source of the target's ledger")
    ledger_file = read_target_ledger_file(target_ledger) if target_ledger else None
    if ledger_file is None and not target_url:
        target_url = os.environ.get(m.target.url_env) or None
    migrations = _load(dir_path)

    def suite(opt: str | None, conf: str | None) -> list | None:
        if opt:
            return load_suite(opt)
        if conf:
            return load_suite(base / conf)
        return None

    opts = VerifyOptions(
        ledger_table=m.ledger_table, lock_timeout_ms=m.timeout_ms("lock_timeout"),
        statement_timeout_ms=m.timeout_ms("statement_timeout"), sample_rows=sample_rows,
        previous=suite(previous_queries, m.queries.previous), next=suite(next_queries, m.queries.next),
        from_pg_stat_statements=from_pg_stat_statements, query_timeout_ms=_ms(query_timeout) or 30_000,
        pg_bin=pg_bin or os.environ.get("VIGIL_PG_BIN") or DEFAULT_PG_BIN, keep=keep, release=release, actor=actor(),
        target_url=target_url, target_ledger=ledger_file,
    )  # fmt: skip

    def progress(kind: str, d: dict) -> None:
        if e.json_mode:
            return
        if kind == "clone":
            click.echo(f"cloning Stage into {d['database']} ...")
        elif kind == "warning":
            click.echo(f"warning: {d['message']}", err=True)

    report = verify(stage_url, migrations, opts, on_event=progress, generated_at=e.clock.now())
    if out:
        write_verdict(report, out)
    if service is not None and release:
        from vigil.deploy.verdicts import record_verdict

        d = report.to_dict()
        bad = [f"{c['name']}: {c['summary']}" for c in d["checks"] if c["status"] in ("failed", "inconclusive")]
        summary = "; ".join(bad) if bad else "every check passed or was skipped with a reason"
        record_verdict(e.store, "migration", service, release, report.verdict, summary, d, e.clock.now())

    def text() -> None:
        marks = {"ok": "ok", "failed": "FAILED", "skipped": "skipped", "inconclusive": "INCONCLUSIVE"}
        for c in report.to_dict()["checks"]:
            click.echo(f"{marks[c['status']]:<12} {c['name']}: {c['summary']}")
            for d in c["details"]:
                click.echo(f"{'':<13}{d}")
        if report.kept:
            click.echo(f"kept the scratch database {report.scratch_database}")
        click.echo(f"verdict: {report.verdict.upper()}" + (f" (written to {out})" if out else ""))

    emit(report.to_dict(), text)
    return report.exit_code
