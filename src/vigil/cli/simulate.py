"""``vigil simulate``: synthetic traffic for the example platform, to a file, stdout or a server."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import BinaryIO

import click

from vigil import exitcodes
from vigil.cli.common import env, json_option
from vigil.clock import Clock, FakeClock, parse_time
from vigil.errors import UsageError, VigilError
from vigil.simulate.generator import Incident, Simulator
from vigil.simulate.run import Cursor, Totals, backfill, live, ts_text
from vigil.simulate.scenarios import SCENARIOS
from vigil.simulate.sinks import HttpSink, Sink, Sleep, StreamSink
from vigil.units import format_duration, parse_duration

DEFAULT_INTERVAL = 10.0
DEFAULT_INCIDENT = 2 * 3600
INCIDENT_LEAD = 3600
PROGRESS_MIN_SPAN = 6 * 3600


def _binary_stdout() -> BinaryIO:
    """Standard output as bytes: its buffer (click's test runner gives one too), else file
    descriptor 1 (click.get_binary_stream is deprecated)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        return buffer
    return open(sys.stdout.fileno(), "wb", closefd=False)  # noqa: SIM115 - stdout, not ours to close


def _sleeper(clock: Clock) -> Sleep:
    """How the simulator waits: on a pinned clock (``VIGIL_NOW``) waiting moves the clock, so live
    mode and retries run in simulated time; otherwise it really sleeps."""
    if isinstance(clock, FakeClock):

        def fake_sleep(seconds: float) -> None:
            if seconds > 0:
                clock.tick(seconds)

        return fake_sleep
    import time

    return time.sleep


def _duration(text: str, flag: str, *, minimum: float = 0.0) -> float:
    try:
        d = float(parse_duration(text))
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from None
    if d < minimum or d <= 0:
        raise UsageError(f"{flag} must be at least {format_duration(max(minimum, 1))}")
    return d


def _scenario_help() -> str:
    return "; ".join(f"{s.name}: {s.summary}" for s in SCENARIOS.values())


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt():
    """`kill` stops the simulator as Ctrl-C does (flushed, summarised); returns the restorer."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


@click.command("simulate")
@click.option("--scenario", type=click.Choice(list(SCENARIOS)), default="steady", show_default=True, help="the traffic to simulate (--list-scenarios describes them)")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="random seed: the same seed, scenario, incident and range give byte-identical output")
@click.option("--from", "from_", metavar="TIME", help="backfill from TIME: RFC 3339, or relative like now-3d")
@click.option("--to", "to", metavar="TIME", help="backfill up to TIME (default now); without --to the simulator goes live after the backfill")
@click.option("--live/--no-live", "live_", default=None, help="after the backfill, keep emitting in real time (default: live unless --to is given)")
@click.option("--interval", metavar="DURATION", help="live mode: every DURATION of wall time (default 10s), emit the samples of the elapsed interval")
@click.option("--duration", metavar="DURATION", help="live mode: stop after DURATION and exit 0 (default: run until Ctrl-C, which also exits 0)")
@click.option("--incident-start", metavar="TIME", help="when the scenario's incident starts (default: 1h before the end of the backfill; with no backfill, when live mode starts)")
@click.option("--incident-duration", metavar="DURATION", help="how long the incident lasts (default 2h); outside it traffic is steady")
@click.option("--url", metavar="URL", help="push to a vigil server (its /api/v1/push) in batches under its 16 MiB body limit")
@click.option("--token-file", type=click.Path(dir_okay=False), help="with --url: file holding the server's API token (else $VIGIL_TOKEN)")
@click.option("--out", metavar="FILE", help="write NDJSON to FILE, overwriting it ('-': stdout, the default without --url)")
@click.option("--retries", type=click.IntRange(0, 20), default=3, show_default=True, help="with --url: retry a batch that failed with a network error, 429 or 5xx this often (backoff 1s, 2s, 4s, ...)")
@click.option("--list-scenarios", is_flag=True, help="describe the scenarios and exit")
@click.option("--costs", "costs", type=click.Choice(["focus", "cur2"]), default=None, help="instead of telemetry, write the platform's daily cost line items from --from to --to as FOCUS or CUR 2.0 CSV (vigil cost import reads them)")
@click.option("--cost-spike", "cost_spikes", multiple=True, metavar="DAY:ENV:SERVICE:FACTOR", help="with --costs: multiply one service's usage on one day (a labelled anomaly), repeatable")
@json_option
def simulate_cmd(
    scenario: str,
    seed: int,
    from_: str | None,
    to: str | None,
    live_: bool | None,
    interval: str | None,
    duration: str | None,
    incident_start: str | None,
    incident_duration: str | None,
    url: str | None,
    token_file: str | None,
    out: str | None,
    retries: int,
    list_scenarios: bool,
    costs: str | None = None,
    cost_spikes: tuple[str, ...] = (),
) -> int:
    """Synthetic traffic for the example platform (examples/platform/vigil.yaml).

    API and pages requests (status code, cache hit/miss, latency), checkout attempts with issuer
    declines, search index staleness, page revalidation times, queue depths, and a few dashboard
    counters, as NDJSON in the push format: per-minute aggregates (counters and weighted
    observations stamped at second 59, gauges at :00 and :30).

    Backfill a range as fast as possible (--from/--to), then optionally continue live (--live;
    the default when --to is not given). A scenario other than steady is an incident inside an
    otherwise steady run. Output goes to stdout, a file (--out) or a server (--url).
    """
    e = env()
    if costs is not None:
        from vigil.simulate.costs import simulate_costs

        return simulate_costs(costs, from_, to, out, seed, cost_spikes, e.clock.now(), e.json_mode)
    if list_scenarios:
        data = {"scenarios": [s.to_dict() for s in SCENARIOS.values()]}

        def text() -> None:
            for s in SCENARIOS.values():
                click.echo(f"{s.name}: {s.summary}")
                for d in s.details:
                    click.echo(f"    {d}")

        if e.json_mode:
            click.echo(json.dumps(data, indent=2))
        else:
            text()
        return exitcodes.OK

    clock = e.clock
    now = clock.now()
    now_s = int(now.timestamp())
    sc = SCENARIOS[scenario]

    # -- the time range ----------------------------------------------------------------------
    if to is not None and from_ is None:
        raise UsageError("--to needs --from", hint="backfill with --from TIME --to TIME, or give neither to run live from now")
    start_s = end_s = None
    if from_ is not None:
        start_s = int(parse_time(from_, now=now).timestamp())
        end_s = int(parse_time(to, now=now).timestamp()) if to is not None else now_s
        if end_s > now_s:
            raise UsageError(
                f"--to {to} is in the future ({ts_text(end_s)}; now is {ts_text(now_s)})",
                hint="a server rejects samples stamped ahead of its clock: backfill up to now, then use --live to keep going",
            )
        if start_s >= end_s:
            raise UsageError(f"--from ({ts_text(start_s)}) must be before --to ({ts_text(end_s)})")
    go_live = live_ if live_ is not None else to is None
    if start_s is None and not go_live:
        raise UsageError("nothing to simulate: --no-live without --from", hint="give --from TIME for a backfill, or drop --no-live")
    interval_s = _duration(interval, "--interval", minimum=1) if interval is not None else DEFAULT_INTERVAL
    duration_s = _duration(duration, "--duration", minimum=1) if duration is not None else None
    if not go_live:
        if duration is not None:
            raise UsageError("--duration applies to live mode", hint="add --live, or drop --duration")
        if interval is not None:
            raise UsageError("--interval applies to live mode", hint="add --live, or drop --interval")
    if go_live and duration_s is None and isinstance(clock, FakeClock):
        raise UsageError(
            "live mode on a pinned clock (VIGIL_NOW) needs --duration",
            hint="on a pinned clock live mode runs in simulated time as fast as it can; say how long with --duration",
        )

    # -- the incident -----------------------------------------------------------------------
    incident = None
    if not sc.has_incident:
        if incident_start is not None or incident_duration is not None:
            raise UsageError("the steady scenario has no incident", hint=f"pick an incident with --scenario ({', '.join(n for n in SCENARIOS if n != 'steady')})")
    else:
        inc_len = _duration(incident_duration, "--incident-duration", minimum=60) if incident_duration is not None else DEFAULT_INCIDENT
        if incident_start is not None:
            inc_start = int(parse_time(incident_start, now=now).timestamp())
        elif end_s is not None:
            inc_start = end_s - INCIDENT_LEAD
        else:
            inc_start = now_s
        incident = Incident.from_seconds(inc_start, int(inc_len))
    sim = Simulator(sc, seed, incident)
    warnings: list[str] = []
    if incident is not None and not go_live and start_s is not None and end_s is not None and not incident.overlaps(start_s, end_s):
        warnings.append(
            f"the incident ({ts_text(incident.start * 60)} to {ts_text(incident.end * 60)}) is outside the simulated range; the output is all steady"
        )

    # -- the output -------------------------------------------------------------------------
    if url and out:
        raise UsageError("--url and --out are exclusive", hint="push to a server with --url, or write a file with --out")
    if token_file and not url:
        raise UsageError("--token-file goes with --url")
    to_stdout = not url and (out is None or out == "-")
    quiet = e.json_mode
    stream: BinaryIO | None = None
    http: HttpSink | None = None
    client = None
    sleep = _sleeper(clock)
    if url:
        from vigil.client import VigilClient, read_token

        client = VigilClient(url, read_token(token_file))

        def on_retry(attempt: int, delay: float, err: VigilError) -> None:
            click.echo(f"push failed: {err.message}; retry {attempt}/{retries} in {delay:g}s", err=True)

        http = HttpSink(client, sleep=sleep, retries=retries, on_retry=on_retry)
        sink: Sink = http
        target = {"kind": "url", "url": url}
    elif to_stdout:
        sys.stdout.flush()
        stream = _binary_stdout()
        sink = StreamSink(stream)
        target = {"kind": "stdout"}
    else:
        assert out is not None
        try:
            stream = open(out, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from None
        sink = StreamSink(stream)
        target = {"kind": "file", "path": out}

    def note(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    for w in warnings:
        click.echo(f"warning: {w}", err=True)

    # -- run ---------------------------------------------------------------------------------
    totals = Totals()
    summary: dict = {
        "scenario": sc.name,
        "seed": seed,
        "from": None,
        "to": None,
        "backfill": None,
        "live": None,
        "incident": None if incident is None else {"start": ts_text(incident.start * 60), "end": ts_text(incident.end * 60)},
        "output": target,
    }
    stopped = "end"
    code = exitcodes.OK
    restore = _sigterm_as_interrupt()
    try:
        if start_s is not None and end_s is not None:
            summary["from"] = ts_text(start_s)
            progress = _Progress(start_s, end_s) if not quiet and end_s - start_s >= PROGRESS_MIN_SPAN else None
            cursor = Cursor(start_s)
            try:
                every = max(600, (end_s - start_s) // 50)
                backfill(sim, start_s, end_s, sink, totals, progress=progress, progress_every=every, cursor=cursor)
            except KeyboardInterrupt:  # a backfill cut short did not do what was asked: exit 130
                stopped = "interrupted"
                code = 130
                sink.flush(final=True)
            finally:
                if progress is not None:
                    progress.close()
            summary["backfill"] = {"from": ts_text(start_s), "to": ts_text(cursor.at), "lines": totals.lines}
            summary["to"] = ts_text(cursor.at)
        if go_live and stopped == "end":
            live_start = end_s if end_s is not None else now_s
            if summary["from"] is None:
                summary["from"] = ts_text(live_start)
            interval_text = format_duration(interval_s)
            if start_s is not None:
                note(f"backfill done: {totals.lines:,} lines up to {ts_text(live_start)}; going live, every {interval_text} (Ctrl-C stops)")
            else:
                note(f"going live from {ts_text(live_start)}, every {interval_text} (Ctrl-C stops)")
            lines_before = totals.lines
            res = live(sim, live_start, sink, clock=clock, sleep=sleep, interval=interval_s, duration=duration_s, totals=totals)
            stopped = res.stopped
            summary["live"] = {
                "from": ts_text(res.start),
                "to": ts_text(res.end),
                "ticks": res.ticks,
                "interval_seconds": interval_s,
                "lines": totals.lines - lines_before,
            }
            summary["to"] = ts_text(res.end)
    finally:
        restore()
        if stream is not None and not to_stdout:
            stream.close()
        if client is not None:
            client.close()

    summary["stopped"] = stopped
    summary.update(totals.to_dict())
    if http is not None:
        summary["push"] = {**http.stats.result.to_dict(), "requests": http.stats.requests, "retries": http.stats.retries, "bytes": http.stats.bytes}
        if http.stats.result.rejected_count and code == exitcodes.OK:
            code = exitcodes.USAGE
    summary["warnings"] = warnings

    to_err = to_stdout
    if e.json_mode:
        click.echo(json.dumps(summary, indent=2), err=to_err)
    else:
        _text_summary(summary, to_err)
    return code


def _text_summary(s: dict, to_err: bool) -> None:
    out = [
        f"simulated {s['scenario']} (seed {s['seed']}): {s['lines']:,} lines, {s['samples']:,} samples"
        + (f", {s['from']} to {s['to']}" if s["from"] else "")
        + ("" if s["stopped"] == "end" else f" (stopped: {s['stopped']})")
    ]
    if s["incident"]:
        out.append(f"incident {s['incident']['start']} to {s['incident']['end']}")
    t = s["output"]
    if t["kind"] == "file":
        out.append(f"wrote {t['path']}")
    if "push" in s:
        p = s["push"]
        out.append(f"pushed to {t['url']}: accepted {p['accepted']:,}, rejected {p['rejected']:,} ({p['requests']} requests, {p['retries']} retries)")
        for r in p["errors"][:20]:
            out.append(f"  line {r['line']}: {r['error']}")
    for line in out:
        click.echo(line, err=to_err)


class _Progress:
    """Backfill progress on stderr: a rich bar on a terminal, else a line every 10%."""

    def __init__(self, start_s: int, end_s: int) -> None:
        self.start = start_s
        self.total = end_s - start_s
        self.shown = 0
        self._bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("backfill"), BarColumn(), TaskProgressColumn(), TextColumn("{task.description}"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._task = self._bar.add_task("", total=self.total)
            self._bar.start()

    def __call__(self, at: int, totals: Totals) -> None:
        done = at - self.start
        if self._bar is not None:
            self._bar.update(self._task, completed=done, description=f"up to {ts_text(at)}, {totals.lines:,} lines")
            return
        tenth = done * 10 // self.total
        if tenth > self.shown:
            self.shown = tenth
            click.echo(f"backfill {tenth * 10}%: up to {ts_text(at)}, {totals.lines:,} lines", err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


COMMANDS = [simulate_cmd]
