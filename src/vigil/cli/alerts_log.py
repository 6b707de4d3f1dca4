"""``vigil alerts log``: every delivery attempt (receiver, time, result, latency, delivery id)."""

from __future__ import annotations

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option


@click.command("log")
@click.option("--receiver", default=None, help="only this receiver's attempts")
@click.option("--key", default=None, metavar="DELIVERY", help="only this notification's attempts (its delivery id)")
@click.option("--result", type=click.Choice(["delivered", "retry", "failed", "fallback"]), default=None, help="only attempts with this result")
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@click.option("--pending", is_flag=True, help="also list notifications not delivered yet (the outbox)")
@spec_option
@db_option
@json_option
def log_cmd(receiver: str | None, key: str | None, result: str | None, limit: int, pending: bool) -> int:
    """Every delivery attempt, newest first: receiver, time, result, latency, delivery id; switches to a fallback."""
    from vigil.alerting.outbox import PENDING, attempts_log, outbox

    e = env()
    store = e.open_store("read")
    rows = attempts_log(store, limit=limit, receiver=receiver, key=key, result=result)
    data: dict = {"attempts": rows}
    if pending:
        data["pending"] = [r.to_dict() for r in outbox(store, status=PENDING, limit=limit)]

    def text() -> None:
        if not rows:
            click.echo("no delivery attempts yet")
        for a in rows:
            lat = f"{a['latency_ms']}ms" if a["latency_ms"] is not None else "-"
            code = a["status_code"] if a["status_code"] is not None else "-"
            line = f"{a['at']}  {a['result']:<9} {a['receiver']:<20} {a['kind']:<9} {a['action']:<11} {code!s:<4} {lat:>7}  {a['key']}"
            click.echo(line)
            if a["result"] == "fallback" and a["detail"]:
                click.echo(f"    switched {a['detail'].get('from')} -> {a['detail'].get('to')}: {a['detail'].get('why') or a['error']}")
            elif a["error"]:
                click.echo(f"    {a['error']}")
        for p in data.get("pending", []):
            click.echo(f"pending  {p['target']:<20} {p['action']:<11} attempts {p['attempts']}  next {p['next_attempt_at']}  {p['key']}"
                       + (f"  last error: {p['last_error']}" if p["last_error"] else ""))

    emit(data, text)
    return exitcodes.OK
