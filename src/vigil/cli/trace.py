"""``vigil trace show TRACE_ID`` and ``vigil trace check --service-path web,api,fn,db``: traces
received over OTLP (``POST /v1/traces``), read from the store (read-only)."""

from __future__ import annotations

from datetime import timedelta

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option
from vigil.errors import NotFoundError, UsageError


@click.group("trace")
def trace_group() -> None:
    """Traces received over OTLP: show one as a tree, check the service path of recent ones."""


def _waterfall(d: dict) -> None:
    head = (
        f"trace {d['trace_id']}: {d['span_count']} span(s), {d['duration_ms']:.3f} ms, services {', '.join(d['services'])}; "
        + ("connected" if d["connected"] else "NOT connected")
    )
    click.echo(head)
    if d["missing_parents"]:
        click.echo(f"  missing parent span(s): {', '.join(d['missing_parents'])}")
    if d["truncated"]:
        click.echo(f"  (the first {d['span_count']} spans by start time)")
    for s in d["spans"]:
        mark = ""
        if s.get("parent_missing"):
            mark = f"  (parent {s['parent_span_id']} missing)"
        elif s.get("cycle"):
            mark = "  (in a parent cycle)"
        status = "" if s["status"] != "error" else "  ERROR" + (f": {s['status_message']}" if s.get("status_message") else "")
        indent = "  " * (s["depth"] + 1)
        click.echo(
            f"{s['offset_ms']:>12.3f} ms {s['duration_ms']:>12.3f} ms{indent}{s['service']}: {s['name']} [{s['kind']}] {s['span_id']}{status}{mark}"
        )


@trace_group.command("show")
@click.argument("trace_id")
@spec_option
@db_option
@json_option
def show_cmd(trace_id: str) -> int:
    """A trace as a tree with timings: spans in waterfall order (offset from the trace's start,
    duration), children under their parents, missing parents marked."""
    from vigil.traces.routes import check_trace_id
    from vigil.traces.store import read_trace

    tid = check_trace_id(trace_id)
    store = env().open_store("read")
    tree = read_trace(store, tid)
    if not tree.spans:
        raise NotFoundError(
            f"no span of trace {tid} is stored in {store.url}",
            hint="check the id, that the exporter points at this store's server, and telemetry.traces.retention",
        )
    d = tree.to_dict()
    emit(d, lambda: _waterfall(d))
    return exitcodes.OK


@trace_group.command("check")
@click.option("--service-path", "path", required=True, metavar="A,B,...", help="the hops every checked trace must show, in order (e.g. web,api,fn,db)")
@click.option("--since", "since", default="1h", show_default=True, metavar="DURATION", help="check traces with a span of the first service started this recently")
@click.option("--min-traces", type=click.IntRange(1, 10_000), default=1, show_default=True, help="at least this many traces must have the whole path")
@click.option("--all", "all_", is_flag=True, help="every trace checked must have the whole path (not only --min-traces of them)")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True, help="check at most this many traces, newest first")
@spec_option
@db_option
@json_option
def check_cmd(path: str, since: str, min_traces: int, all_: bool, limit: int) -> int:
    """Do recent traces run through the service path as ONE connected trace?

    Traces with a span of the first service that started within --since are checked: each must be
    connected (one root, every parent present) and show the path's hops in order along one chain of
    spans (a database is the client span that queried it: it answers to ``db``, its ``db.system``
    and its ``peer.service``). Exit 0 when at least --min-traces traces (with --all: every one) pass,
    1 naming what is missing otherwise, also when no trace was found."""
    from vigil.traces.store import BatchCache, read_trace, recent_traces
    from vigil.traces.tree import check_path
    from vigil.units import format_duration, parse_duration

    hops = [h.strip() for h in path.split(",")]
    if len(hops) < 2 or any(not h for h in hops):
        raise UsageError(f"--service-path {path!r} needs two or more names separated by commas", hint="e.g. --service-path web,api,fn,db")
    try:
        window = parse_duration(since)
    except ValueError as err:
        raise UsageError(f"--since {since!r}: {err}", hint="a duration such as 15m, 1h or 2d") from None
    ctx = env()
    store = ctx.open_store("read")
    now = ctx.clock.now()
    start = now - timedelta(seconds=float(window))
    since_ns = int(start.timestamp() * 1_000_000_000)
    ids = recent_traces(store, since_ns, service=hops[0], limit=limit)
    cache = BatchCache()  # traces of one time share their batches: each read once
    results = [check_path(read_trace(store, tid, cache=cache), hops) for tid in ids]
    passed = [r for r in results if r.ok]
    ok = len(passed) >= min_traces and (not all_ or len(passed) == len(results)) and bool(results)
    out = {
        "ok": ok,
        "service_path": hops,
        "since": start.isoformat().replace("+00:00", "Z"),
        "traces_checked": len(results),
        "traces_passed": len(passed),
        "min_traces": min_traces,
        "all": all_,
        "traces": [r.to_dict() for r in results],
    }

    def text() -> None:
        arrow = " -> ".join(hops)
        if not results:
            click.echo(f"FAIL no trace with a span of service {hops[0]!r} started since {out['since']} ({format_duration(window)})")
            return
        verdict = "OK" if ok else "FAIL"
        need = "every one" if all_ else f"at least {min_traces}"
        click.echo(f"{verdict} {len(passed)} of {len(results)} trace(s) since {out['since']} run {arrow} connected (needed: {need})")
        for r in results:
            click.echo(f"  {'ok  ' if r.ok else 'FAIL'} {r.trace_id}: {r.why() if not r.ok else arrow}")

    emit(out, text)
    return exitcodes.OK if ok else exitcodes.NO


COMMANDS = [trace_group]
