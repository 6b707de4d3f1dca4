"""``vigil findings import | list | show | waive``: the security findings ledger."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import actor, at_option, db_option, emit, env, json_option, spec_option, terminal_width, wrap
from vigil.errors import NotFoundError, UsageError

MAX_SARIF_BYTES = 100 * 1024 * 1024
KIND_CHOICES = ["secrets", "sast", "migration", "pentest", "probe", "waf", "data"]


@click.group("findings")
def findings_group() -> None:
    """Security findings: import SARIF into a ledger per service and release, list, show and waive."""


def _service(name: str) -> None:
    spec = env().loaded.spec
    if name not in spec.services:
        raise NotFoundError(f"unknown service {name!r}", hint=f"services in the spec: {', '.join(sorted(spec.services)) or 'none'}")


def _release(r: str) -> str:
    r = r.strip()
    if not r or len(r) > 200 or any(c.isspace() for c in r):
        raise UsageError(f"--release must be 1-200 characters without spaces, got {r!r}")
    return r


def _date_or_time(text: str, what: str, *, end_of_day: bool) -> datetime:
    """``YYYY-MM-DD`` (the day's start, or the next day's start for an expiry) or RFC 3339."""
    from vigil.clock import parse_time

    t = text.strip()
    try:
        d = datetime.strptime(t, "%Y-%m-%d").date()
        return datetime.combine(d + timedelta(days=1) if end_of_day else d, time(0), tzinfo=timezone.utc)
    except ValueError:
        pass
    try:
        return parse_time(t)
    except Exception:
        raise UsageError(f"{what}: expected YYYY-MM-DD or an RFC 3339 time, got {text!r}") from None


@findings_group.command("import")
@click.argument("file", metavar="FILE.sarif")
@click.option("--service", required=True, metavar="NAME", help="the service the findings belong to")
@click.option("--release", required=True, metavar="ID", help="the release scanned (the gate reads this release's ledger)")
@click.option("--kind", type=click.Choice(KIND_CHOICES), help="the kind of source (default: from the tool; pentest with --window)")
@click.option("--window", metavar="NAME", help="a pen-test window: its findings count for every release until a retest clears them")
@click.option("--found-at", "found_at", metavar="DATE", help="when the findings were found (a pen test's report date; default now, never later)")
@click.option("--retest", is_flag=True, help="with --window: findings of the window this file no longer has are fixed")
@spec_option
@db_option
@json_option
def import_cmd(file: str, service: str, release: str, kind: str | None, window: str | None, found_at: str | None, retest: bool) -> int:
    """Import a SARIF 2.1.0 file (ESLint, semgrep, bandit, CodeQL, vigil secrets scan, vigil migrate lint).

    Findings are deduplicated by fingerprint; importing the same file again changes nothing; a
    finding keeps the time it was first seen for the service (deadlines count from it).
    """
    from vigil.security.ledger import import_runs
    from vigil.security.sarifin import parse_sarif

    e = env()
    release = _release(release)
    _service(service)
    if window is not None and (not window.strip() or len(window) > 128):
        raise UsageError("--window must be 1-128 characters")
    p = Path(file)
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_SARIF_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{file} is a directory, not a SARIF file") from None
    except OSError as err:
        raise UsageError(f"{file}: {err.strerror or err}") from None
    if len(data) > MAX_SARIF_BYTES:
        raise UsageError(f"{file} is larger than {MAX_SARIF_BYTES // (1024 * 1024)} MiB")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{file} is not JSON: {err}", hint="a SARIF file is JSON (semgrep --sarif, bandit -f sarif, codeql --format=sarif-latest)") from None
    runs = parse_sarif(doc)  # a bad file is refused before the store is touched
    clock = e.decision_clock("an import into the findings ledger (its time starts fix deadlines)")
    now = clock.now()
    found = _date_or_time(found_at, "--found-at", end_of_day=False) if found_at else None
    store = e.store
    res = import_runs(
        store, runs, service=service, release=release, file_sha256=hashlib.sha256(data).hexdigest(), file_name=p.name,
        at=now, found_at=found, kind=kind, window=window, retest=retest, actor=actor(),
    )
    out = {"file": file, "service": service, "release": release, "window": window, "tools": [r.tool for r in runs], **res.to_dict()}

    def text() -> None:
        if res.already:
            click.echo(f"already imported {file} for {service} release {release} (import #{', #'.join(map(str, res.import_ids))}); nothing changed")
            return
        click.echo(
            f"imported {file} for {service} release {release}: {res.results} results, {res.findings} findings,"
            f" {res.new_findings} new (import #{', #'.join(map(str, res.import_ids))})"
        )
        if res.fixed:
            click.echo(f"  retest of window {window}: {res.fixed} findings no longer found, marked fixed")

    emit(out, text)
    return exitcodes.OK


def _states(rows: list[dict], waivers: dict, at: datetime) -> list[dict]:
    from vigil.security.fixgate import finding_state

    policy = env().loaded.spec.security
    return [finding_state(r, waivers.get((r["service"], r["fingerprint"])), at, policy) for r in rows]


@findings_group.command("list")
@click.option("--service", metavar="NAME", help="only this service")
@click.option("--release", metavar="ID", help="only this release")
@click.option("--state", type=click.Choice(["open", "waived", "suppressed", "fixed", "all"]), default="all", show_default=True, help="only findings in this state")
@click.option("--limit", type=click.IntRange(1, 100000), default=1000, show_default=True, help="newest N ledger rows")
@at_option
@spec_option
@db_option
@json_option
def list_cmd(service: str | None, release: str | None, state: str, limit: int, at: str | None) -> int:
    """Findings in the ledger, newest first, with their state, deadline and waiver."""
    from vigil.security.ledger import list_findings

    e = env()
    when = e.at(at)
    rows, waivers = list_findings(e.open_store("read"), service=service, release=release, limit=limit)
    items = [f for f in _states(rows, waivers, when) if state == "all" or f["state"] == state]
    out = {"at": when.isoformat().replace("+00:00", "Z"), "findings": items}

    def text() -> None:
        width = terminal_width()
        if not items:
            click.echo("no findings" + (f" for {service}" if service else "") + (f" release {release}" if release else ""))
            return
        for f in items:
            flag = f["state"].upper() if f["state"] == "open" else f["state"]
            due = (" OVERDUE" if f["overdue"] else "") + (f" due {f['deadline'][:10]}" if f["deadline"] and f["state"] == "open" else "")
            head = f"#{f['id']} {f['fingerprint'][:12]} {f['severity']:<8} {flag}{due} {f['service']}@{f['release']} {f['tool']} {f['rule']}"
            click.echo(wrap(head, width))
            loc = f["path"] + (f":{f['line']}" if f["line"] else "") if f["path"] else "(no location)"
            click.echo(wrap(f"{loc}: {f['title']}", width, first="    ", rest="    "))

    emit(out, text)
    return exitcodes.OK


@findings_group.command("show")
@click.argument("ident", metavar="ID|FINGERPRINT")
@click.option("--service", metavar="NAME", help="the service, when a fingerprint prefix is ambiguous")
@at_option
@spec_option
@db_option
@json_option
def show_cmd(ident: str, service: str | None, at: str | None) -> int:
    """One finding: where, severity, first seen, deadline, its releases and its waiver."""
    from vigil.security.fixgate import finding_state
    from vigil.security.ledger import find

    e = env()
    when = e.at(at)
    row, releases, waiver = find(e.open_store("read"), ident, service=service)
    f = finding_state(row, waiver, when, e.loaded.spec.security)
    f["releases"] = [{"release": r["release"], "id": r["id"], "first_seen": r["first_seen"], "fixed_at": r["fixed_at"]} for r in releases]
    f["help_uri"] = (row.get("details") or {}).get("help_uri")
    f["tags"] = (row.get("details") or {}).get("tags") or []

    def text() -> None:
        width = terminal_width()
        click.echo(f"finding #{f['id']} {f['fingerprint']}  {f['severity'].upper()}  {f['state']}" + ("  OVERDUE" if f["overdue"] else ""))
        for k, v in (
            ("service", f["service"]), ("tool", f["tool"]), ("rule", f["rule"]), ("kind", f["kind"]),
            ("where", (f["path"] or "-") + (f":{f['line']}" if f["line"] else "")), ("window", f["window"]),
            ("first seen", f["first_seen"]), ("deadline", f["deadline"] or "none"), ("cwe", ", ".join(f["cwe"]) or None),
            ("releases", ", ".join(r["release"] for r in f["releases"])),
        ):
            if v:
                click.echo(wrap(f"{k}: {v}", width, first="  ", rest="      "))
        click.echo(wrap(f"message: {f['title']}", width, first="  ", rest="      "))
        if f["snippet"]:
            click.echo(wrap(f"snippet: {f['snippet']}", width, first="  ", rest="      "))
        if f["suppressed"]:
            click.echo(wrap(f"suppressed by the tool: {f['suppressed']}", width, first="  ", rest="      "))
        if f["waiver"]:
            w = f["waiver"]
            click.echo(wrap(f"waiver{' (EXPIRED)' if w['expired'] else ''}: {w['reason']} (owner {w['owner']}, until {w['expires']}, by {w['actor'] or '-'})",
                            width, first="  ", rest="      "))

    emit(f, text)
    return exitcodes.OK


@findings_group.command("waive")
@click.argument("ident", metavar="ID|FINGERPRINT")
@click.option("--service", metavar="NAME", help="the service, when a fingerprint prefix is ambiguous")
@click.option("--reason", required=True, metavar="TEXT", help="why the finding may stay open (recorded)")
@click.option("--owner", required=True, metavar="WHO", help="who answers for the fix")
@click.option("--expires", required=True, metavar="DATE", help="last day the waiver holds (YYYY-MM-DD, UTC) or an RFC 3339 time")
@spec_option
@db_option
@json_option
def waive_cmd(ident: str, service: str | None, reason: str, owner: str, expires: str) -> int:
    """Waive a finding until a date, with a reason and an owner; recorded with who waived it.

    The waiver covers the finding in every release of its service; an expired waiver waives
    nothing. The longest a waiver may run is security.max_waiver (default 90d).
    """
    from decimal import Decimal

    from vigil.security.ledger import find, waive

    e = env()
    sec = e.loaded.spec.security
    max_waiver = sec.max_waiver if sec is not None else Decimal(90 * 86400)
    clock = e.decision_clock("a finding waiver")
    store = e.open_store("write")
    row, _, _ = find(store, ident, service=service)
    now = clock.now()
    until = _date_or_time(expires, "--expires", end_of_day=True)
    w = waive(store, service=row["service"], fingerprint=row["fingerprint"], reason=reason, owner=owner, expires=until, at=now,
              max_waiver=max_waiver, actor=actor())
    out = {"finding": row["id"], "fingerprint": row["fingerprint"], "service": row["service"], "waiver": w}
    emit(out, lambda: click.echo(f"waived {row['fingerprint'][:12]} ({row['service']}) until {w['expires']}, owner {w['owner']}, by {w['actor'] or '-'}"))
    return exitcodes.OK


COMMANDS = [findings_group]
