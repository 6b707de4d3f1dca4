"""``vigil silence add|list|expire``: silences and maintenance windows of alerts."""

from __future__ import annotations

import click

from vigil import exitcodes
from vigil.cli.common import actor, db_option, emit, env, json_option, spec_option


@click.group("silence")
def silence_group() -> None:
    """Silences and maintenance windows: mute matching alerts for a while, with an author and a reason."""


def _print(rows: list[dict]) -> None:
    if not rows:
        click.echo("no silences")
        return
    for s in rows:
        click.echo(f"{s['id']}  {s['state']:<8} {s['starts_at']} -> {s['ends_at']}  by {s['created_by']}")
        click.echo(f"    {', '.join(s['matchers'])}")
        click.echo(f"    reason: {s['reason']}")
        if s["expired_at"]:
            click.echo(f"    expired {s['expired_at']} by {s['expired_by']}")


@silence_group.command("add")
@click.option("--match", "-m", "matchers", multiple=True, required=True, metavar="MATCHER",
              help='an alert label matcher like service="search" or alertname=~"search-.*" (repeat: all must match)')
@click.option("--reason", required=True, help="why (recorded with the author)")
@click.option("--duration", default=None, metavar="DURATION", help="how long, like 2h (or --until)")
@click.option("--until", "until", default=None, metavar="TIME", help="when it ends: RFC 3339 or now+2h")
@click.option("--start", "starts", default=None, metavar="TIME", help="when it starts (default now): a maintenance window")
@spec_option
@db_option
@json_option
def add_cmd(matchers: tuple[str, ...], reason: str, duration: str | None, until: str | None, starts: str | None) -> int:
    """Silence the alerts the matchers match, from now (or --start) for --duration (or --until)."""
    from vigil.alerting.routes import window
    from vigil.alerting.silences import add_silence, parse_matchers

    e = env()
    ms = parse_matchers(list(matchers))
    now = e.decision_clock("a silence").now().replace(microsecond=0)
    begin, end = window(now, starts, duration, until)
    store = e.open_store("write")
    s = add_silence(store, ms, starts_at=begin, ends_at=end, created_by=actor() or "unknown", reason=reason, now=now)
    d = s.to_dict(now)
    emit(d, lambda: click.echo(f"silenced {', '.join(d['matchers'])} from {d['starts_at']} to {d['ends_at']} ({d['state']}): {d['id']}"))
    return exitcodes.OK


@silence_group.command("list")
@click.option("--all", "all_", is_flag=True, help="expired silences too")
@spec_option
@db_option
@json_option
def list_cmd(all_: bool) -> int:
    """Silences that are on or scheduled (--all: expired ones too), newest first."""
    from vigil.alerting.silences import STATES, list_silences
    from vigil.clock import isoformat

    e = env()
    now = e.clock.now()
    store = e.open_store("read")
    rows = [s.to_dict(now) for s in list_silences(store, at=now, states=STATES if all_ else ("pending", "active"))]
    emit({"at": isoformat(now), "silences": rows}, lambda: _print(rows))
    return exitcodes.OK


@silence_group.command("expire")
@click.argument("ident", metavar="ID")
@spec_option
@db_option
@json_option
def expire_cmd(ident: str) -> int:
    """End a silence now (a scheduled one never starts); recorded with who ended it."""
    from vigil.alerting.silences import expire_silence

    e = env()
    now = e.decision_clock("expiring a silence").now().replace(microsecond=0)
    store = e.open_store("write")
    s = expire_silence(store, ident, by=actor() or "unknown", now=now)
    d = s.to_dict(now)
    emit(d, lambda: click.echo(f"{d['id']} is {d['state']} (ended {d['ends_at']})"))
    return exitcodes.OK


COMMANDS = [silence_group]
