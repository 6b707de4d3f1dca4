"""``vigil alerts``: the active alerts, and ``vigil alerts test FILE`` (unit tests of the rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from vigil import exitcodes
from vigil.cli.common import at_option, db_option, emit, env, json_option, spec_option, terminal_width, wrap


@click.group("alerts", invoke_without_command=True)
@click.option("--all", "all_", is_flag=True, help="resolved alerts too")
@click.option("--what-if", "what_if", is_flag=True, help="evaluate the rules now (or --at) from the stored state; records nothing")
@at_option
@spec_option
@db_option
@json_option
@click.pass_context
def alerts_group(ctx: click.Context, all_: bool, what_if: bool, at: str | None) -> int | None:
    """Alert rules: active alerts, and unit tests of the rules (vigil alerts test)."""
    if ctx.invoked_subcommand is not None:
        return None
    if what_if:
        return _what_if(at, all_)
    if at is not None:
        from vigil.errors import UsageError

        raise UsageError("--at goes with --what-if: the stored alerts are as of the last evaluation")
    return _list(all_)


def _since(a: dict) -> str | None:
    return a["fired_at"] if a["state"] == "firing" else a["active_at"] if a["state"] == "pending" else a["resolved_at"]


def _row(a: dict) -> dict:
    d = dict(a)
    d["since"] = _since(a)
    return d


def _print(rows: list[dict], header: str) -> None:
    click.echo(header)
    if not rows:
        click.echo("  no alerts")
        return
    width = terminal_width()
    order = {"firing": 0, "pending": 1, "resolved": 2}
    for a in sorted(rows, key=lambda a: (order.get(a["state"], 3), a["rule"], a["fingerprint"])):
        labels = a["labels"]
        extra = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "service", "severity"))
        head = (
            f"  {a['state']:<8} {a['rule']}  {labels.get('severity', '-')}  {labels.get('service', '-')}"
            + (f"  {{{extra}}}" if extra else "")
            + f"  since {a['since'] or '-'}  value {a['value_text'] or '-'}"
        )
        click.echo(head)
        summary = a["annotations"].get("summary")
        if summary:
            click.echo(wrap(summary, width, first="      ", rest="      "))


def _list(all_: bool) -> int:
    from vigil.alerting.state import evaluations, instances

    e = env()
    store = e.open_store("read")
    states = ("pending", "firing", "resolved") if all_ else ("pending", "firing")
    rows = [_row(i.alert().to_dict()) for i in instances(store, states=states)]
    last = evaluations(store, limit=1)
    data: dict[str, Any] = {
        "evaluated_at": last[0]["at"] if last else None,
        "errors": last[0]["errors"] if last else [],
        "alerts": rows,
    }

    def text() -> None:
        when = data["evaluated_at"] or "never (vigil serve evaluates the rules)"
        _print(rows, f"alerts as of the last evaluation: {when}")
        for err in data["errors"]:
            click.echo(f"  error: rule {err['rule']}: {err['error']}")

    emit(data, text)
    return exitcodes.OK


def _what_if(at: str | None, all_: bool) -> int:
    from vigil.alerting.evaluate import MemoryState
    from vigil.alerting.state import instances as stored
    from vigil.clock import isoformat
    from vigil.telemetry.sources import open_source

    e = env()
    spec = e.loaded.spec
    when: datetime = e.at(at)
    store = e.open_store("read")
    state = MemoryState({i.key: i for i in stored(store)})
    ev = state.evaluate(list(spec.alerts), list(spec.slos), open_source(spec.telemetry, store), when)
    keep = ("pending", "firing", "resolved") if all_ else ("pending", "firing")
    rows = [_row(i.alert().to_dict()) for i in ev.current if i.state in keep]
    data: dict[str, Any] = {
        "at": isoformat(when),
        "what_if": True,
        "alerts": rows,
        "transitions": [t.to_dict() for t in ev.transitions],
        "errors": [{"rule": k, "error": v} for k, v in sorted(ev.readings.failed.items())],
    }

    def text() -> None:
        _print(rows, f"alerts if the rules were evaluated at {isoformat(when)} (what-if: nothing recorded)")
        for t in data["transitions"]:
            click.echo(f"  would change: {t['rule']} {t['labels'].get('severity', '')} {t['previous']} -> {t['state']}")
        for err in data["errors"]:
            click.echo(f"  error: rule {err['rule']}: {err['error']}")

    emit(data, text)
    return exitcodes.OK


@alerts_group.command("test")
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@spec_option
@json_option
def test_cmd(files: tuple[str, ...]) -> int:
    """Unit-test the spec's alert rules: replay input series on a fake clock and compare the alerts
    at each time with the expected ones (like promtool test rules). Exit 1 when one differs."""
    from vigil.alerting.test_runner import run_file

    e = env()
    results = [run_file(f, spec_path=e.spec_path) for f in files]
    ok = all(r.passed for r in results)
    data = {"passed": ok, "files": [r.to_dict() for r in results]}

    def text() -> None:
        for r in results:
            click.echo(f"{r.file} (spec {r.spec})")
            for g in r.groups:
                if g.passed:
                    click.echo(f"  ok    {g.name} ({g.checks} check{'s' if g.checks != 1 else ''})")
                    continue
                click.echo(f"  FAIL  {g.name}")
                for err in g.errors:
                    click.echo(f"    error: {err}")
                for m in g.mismatches:
                    for line in m.text().splitlines():
                        click.echo("    " + line)
        n = sum(len(r.groups) for r in results)
        bad = sum(1 for r in results for g in r.groups if not g.passed)
        click.echo(("PASSED" if ok else "FAILED") + f": {n - bad} of {n} test group{'s' if n != 1 else ''} passed")

    emit(data, text)
    return exitcodes.OK if ok else exitcodes.NO


from vigil.cli.alerts_log import log_cmd  # noqa: E402  (vigil alerts log: the delivery attempts)

alerts_group.add_command(log_cmd)
