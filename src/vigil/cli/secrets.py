"""``vigil secrets scan`` and ``vigil secrets waive``: committed secrets, found before they ship."""

from __future__ import annotations

import json
import os

import click

from vigil import exitcodes
from vigil.cli.common import emit, json_option, terminal_width, wrap, write_out
from vigil.errors import UsageError

DEFAULT_BASELINE = ".vigil-secrets.yaml"


@click.group("secrets")
def secrets_group() -> None:
    """Secret scanning: a working tree or the lines a git range adds, with a baseline of waivers."""


def _baseline_path(baseline: str | None, no_baseline: bool) -> str | None:
    if no_baseline:
        return None
    if baseline is not None:
        return baseline
    return DEFAULT_BASELINE if os.path.exists(DEFAULT_BASELINE) else None


def _scan(path: str | None, git_range: str | None, repo: str, excludes: tuple[str, ...]):
    from vigil.security.sources import walk_git, walk_path

    if path is not None and git_range is not None:
        raise UsageError("pass a PATH or --git BASE..HEAD, not both")
    if git_range is not None:
        return walk_git(git_range, repo, excludes=list(excludes)), f"git {git_range}"
    target = path if path is not None else "."
    return walk_path(target, excludes=list(excludes), display_root=os.getcwd()), target


@secrets_group.command("scan")
@click.argument("path", required=False, metavar="[PATH]")
@click.option("--git", "git_range", metavar="BASE..HEAD", help="scan only what the commits of this range add (every commit, history included)")
@click.option("--repo", default=".", show_default=True, metavar="DIR", help="the git repository of --git")
@click.option("--baseline", metavar="FILE", help=f"waivers file (default {DEFAULT_BASELINE} when it exists)")
@click.option("--no-baseline", is_flag=True, help="ignore any baseline: report every finding as new")
@click.option("--exclude", "excludes", multiple=True, metavar="GLOB", help="skip paths matching GLOB (repeatable)")
@click.option("--sarif", "sarif_out", metavar="FILE", help="also write SARIF 2.1.0 to FILE ('-' for standard output instead of the report)")
@json_option
def scan_cmd(path: str | None, git_range: str | None, repo: str, baseline: str | None, no_baseline: bool,
             excludes: tuple[str, ...], sarif_out: str | None) -> int:
    """Exit 1 on a new finding, an expired waiver or a file not scanned, 0 when clean, 2 on bad usage.

    Finds provider credentials (AWS, GitHub, Stripe, PagerDuty, SMTP, private keys, database URLs
    with passwords, and detect-secrets' plugins) and secrets assigned to secret-sounding names,
    also base64-wrapped or URL-encoded. A secret is never printed: each finding shows a redacted
    form and a fingerprint, which a baseline waiver names.
    """
    from vigil.clock import SystemClock
    from vigil.security.baseline import load_baseline
    from vigil.security.secretreport import ScanReport, apply_baseline, findings_of, to_sarif

    bl = _baseline_path(baseline, no_baseline)
    waivers = load_baseline(bl) if bl else []  # a bad baseline is a usage error before any scan
    walk, target = _scan(path, git_range, repo, excludes)
    at = SystemClock().now()  # waiver expiry is judged at the real clock, never a pinned one
    found, stale = apply_baseline(findings_of(walk), waivers, at)
    report = ScanReport(found, at, target, walk.files, walk.bytes, walk.commits, walk.skipped, stale)
    out = report.to_dict()
    out["baseline"] = bl
    if sarif_out:
        if write_out(sarif_out, json.dumps(to_sarif(report), indent=2) + "\n"):
            return exitcodes.NO if report.failed else exitcodes.OK

    def text() -> None:
        width = terminal_width()
        scanned = f"{walk.files} files" + (f" in {walk.commits} commits" if git_range else "")
        new = [f for f in report.findings if f.status != "waived"]
        waived = [f for f in report.findings if f.status == "waived"]
        if not new and walk.skipped:
            click.echo(f"INCOMPLETE {target}: {len(walk.skipped)} files not scanned ({scanned})")
        elif not new:
            click.echo(f"CLEAN {target}: no new secret ({scanned}" + (f", {len(waived)} waived" if waived else "") + ")")
        else:
            click.echo(f"SECRETS FOUND {target}: {len(new)} new ({scanned}" + (f", {len(waived)} waived" if waived else "") + ")")
        for f in new + waived:
            where = f"{f.path}:{f.line}" + (f" @{f.commit[:12]}" if f.commit else "")
            tag = {"new": f.severity.upper(), "waived": "waived", "error": "EXPIRED WAIVER"}[f.status]
            click.echo(wrap(f"{tag} {f.rule} {where} {f.redacted} fp:{f.fingerprint}", width, first="  ", rest="      "))
            if f.snippet and f.status != "error":
                click.echo(wrap(f.snippet, width, first="      ", rest="      "))
            elif f.status == "error":
                click.echo(wrap(f.snippet, width, first="      ", rest="      "))
        for s in walk.skipped:
            click.echo(f"  NOT SCANNED {s['path']}: {s['reason']}; exclude it with --exclude if it needs no scan")
        for w in stale:
            click.echo(f"  stale waiver {w['fingerprint']} ({w.get('path') or '-'}): matches no finding; delete it from {bl}")
        if new:
            click.echo("  rotate each secret at its provider, then remove it; a false positive is waived with"
                       " `vigil secrets waive FINGERPRINT --reason ... --owner ... --expires YYYY-MM-DD`")

    emit(out, text)
    return exitcodes.NO if report.failed else exitcodes.OK


@secrets_group.command("waive")
@click.argument("fingerprints", nargs=-1, required=True, metavar="FINGERPRINT...")
@click.option("--reason", required=True, metavar="TEXT", help="why this is not a secret to rotate (recorded)")
@click.option("--owner", required=True, metavar="WHO", help="who answers for the waiver")
@click.option("--expires", required=True, metavar="YYYY-MM-DD", help="last day the waiver holds (UTC)")
@click.option("--baseline", default=DEFAULT_BASELINE, show_default=True, metavar="FILE", help="the waivers file to add to")
@click.option("--path", "scan_path", default=".", show_default=True, metavar="PATH", help="where the findings are (to record their rule and file)")
@click.option("--git", "git_range", metavar="BASE..HEAD", help="find the fingerprints in this range instead of PATH")
@click.option("--repo", default=".", show_default=True, metavar="DIR", help="the git repository of --git")
@json_option
def waive_cmd(fingerprints: tuple[str, ...], reason: str, owner: str, expires: str, baseline: str, scan_path: str,
              git_range: str | None, repo: str) -> int:
    """Add waivers to the baseline for findings that are not secrets (a fixture, a documented example).

    Each fingerprint must be a finding of a scan of PATH (or --git); a waiver carries a reason, an
    owner and an expiry, and is replaced when the fingerprint is waived again.
    """
    from vigil.clock import SystemClock
    from vigil.security.baseline import Waiver, check_waiver_fields, load_baseline, save_baseline
    from vigil.security.secretreport import findings_of

    checked = [check_waiver_fields(fp, reason, owner, expires, f"waiver of {fp}") for fp in fingerprints]
    today = SystemClock().now().date()
    if checked[0][3] < today:
        raise UsageError(f"--expires {expires} is in the past", hint="a waiver holds through its expiry day (UTC)")
    current = load_baseline(baseline) if os.path.exists(baseline) else []
    walk, _ = _scan(None if git_range else scan_path, git_range, repo, ())
    found = {f.fingerprint: f for f in findings_of(walk)}
    missing = [fp for fp, *_ in checked if fp not in found]
    if missing:
        raise UsageError(
            f"no finding with fingerprint {', '.join(missing)} in {git_range or scan_path}",
            hint="copy fingerprints from `vigil secrets scan --json` run on the same PATH",
        )
    by_fp = {w.fingerprint: w for w in current}
    for fp, rsn, own, exp in checked:
        f = found[fp]
        by_fp[fp] = Waiver(fp, rsn, own, exp, f.rule, f.path)
    waivers = list(by_fp.values())
    save_baseline(baseline, waivers)
    waived = [by_fp[fp].to_dict() for fp, *_ in checked]

    def text() -> None:
        for w in waived:
            click.echo(f"waived {w['fingerprint']} ({w['rule']} in {w['path']}) until {w['expires']} in {baseline}")

    emit({"baseline": baseline, "waived": waived}, text)
    return exitcodes.OK


COMMANDS = [secrets_group]
