"""``vigil canary judge | run | history``: canary analysis and the canary deploy loop."""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import click

from vigil import exitcodes
from vigil.cli.common import console, db_option, emit, env, json_option, spec_option
from vigil.clock import FakeClock, parse_time
from vigil.deploy.canary.analysis import judge_window, parse_matchers
from vigil.deploy.canary.records import Records, run_record
from vigil.deploy.canary.run import CanaryRunner, RunRequest
from vigil.deploy.verdicts import record_verdict
from vigil.errors import NotFoundError, UsageError


@click.group("canary")
def canary_group() -> None:
    """Canary analysis: judge a canary against its baseline, and the canary deploy loop."""


def _time(text: str, what: str):
    e = env()
    try:
        return parse_time(text, now=e.clock.now())
    except UsageError as err:
        raise UsageError(f"--{what}: {err.message}", hint=err.hint) from None


def _fmt(x, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _secs(x: float | None, sign: str = "") -> str:
    if x is None:
        return "inf"
    if abs(x) < 1:
        return f"{x * 1000:{sign}.4g}ms"
    return f"{x:{sign}.4g}s"


def _median_text(value: float | None, bucket: list | None) -> str:
    """A median with its resolution: ``112ms`` (exact) or ``150ms (100ms..150ms)`` (the bucket it lies in)."""
    if value is None:
        return "-"
    if not bucket or bucket[0] == bucket[1]:
        return _secs(value)
    return f"{_secs(value)} ({_secs(bucket[0])}..{_secs(bucket[1])})"


def _shift_text(m: dict) -> str:
    lo, hi = m.get("shift_bounds") or (m.get("shift"), m.get("shift"))
    if lo == hi:
        return _secs(m["shift"], "+")
    low = "-inf" if lo is None else _secs(lo, "+")
    high = "+inf" if hi is None else _secs(hi, "+")
    return f"{low}..{high}" + (" (below resolution)" if m.get("below_resolution") else "")


def _print_verdict(d: dict) -> None:
    from rich.table import Table

    word = d["verdict"].upper()
    score = "-" if d["score"] is None else f"{d['score']:g}"
    click.echo(f"{word} canary {d['canary']} vs baseline {d['baseline']} over {d['from']} .. {d['to']}: score {score}"
               f" (pass {d['thresholds']['pass']:g}, marginal {d['thresholds']['marginal']:g})")
    t = Table(show_edge=False)
    for col in ("metric", "class", "baseline", "canary", "p", "effect / change", "reason"):
        t.add_column(col)
    for m in d["metrics"]:
        if m["kind"] == "distribution":
            base = f"n={m['n_baseline']} med {_median_text(m.get('baseline_median'), m.get('baseline_median_bucket'))}"
            can = f"n={m['n_canary']} med {_median_text(m.get('canary_median'), m.get('canary_median_bucket'))}"
            eff = "-" if m.get("effect") is None else f"delta {m['effect']:+.3f}, shift {_shift_text(m)}"
        else:
            base = f"{m['baseline_bad']}/{m['baseline_total']}"
            can = f"{m['canary_bad']}/{m['canary_total']}"
            eff = "-" if m.get("difference") is None else f"{m['difference'] * 100:+.3g} pp"
        cls = m["classification"] + (" !" if m["critical"] else "")
        t.add_row(m["name"], cls, base, can, _fmt(m.get("p_value")), eff, m["reason"])
    console().print(t)
    for s in d["slos"]:
        click.echo(f"  SLO {s['slo']}: {s['state']}: {s['reason']}")
    if d["verdict"] != "pass":
        for r in d["reasons"]:
            click.echo(f"  - {r}")
    for w in d["warnings"]:
        click.echo(f"  warning: {w}")
    if d.get("verdict_id") is not None:
        click.echo(f"  verdict #{d['verdict_id']} recorded (vigil canary history)")


def release_option(f):
    return click.option(
        "--release", metavar="ID",
        help="record the verdict for this release of canary.service: `vigil gate deploy --release` reads it "
        "(at the real clock: refused under VIGIL_NOW)",
    )(f)


def _release_service(release: str | None) -> str | None:
    """The service a --release verdict is recorded for: the spec's canary.service."""
    if release is None:
        return None
    c = env().loaded.spec.canary
    if c is None or not getattr(c, "service", None):
        raise UsageError("--release records a verdict for canary.service: set `service:` in the spec's canary section")
    return c.service


@canary_group.command("judge")
@click.option("--baseline", required=True, metavar="SEL", help="label matchers of the baseline, like 'version=\"v1\"'")
@click.option("--canary", "canary_sel", required=True, metavar="SEL", help="label matchers of the canary, like 'version=\"v2\"'")
@click.option("--from", "from_", required=True, metavar="TIME", help="start of the window: RFC 3339 or relative like now-30m")
@click.option("--to", "to", default="now", show_default=True, metavar="TIME", help="end of the window (exclusive); SLOs are evaluated here")
@release_option
@spec_option
@db_option
@json_option
def judge_cmd(baseline: str, canary_sel: str, from_: str, to: str, release: str | None) -> int:
    """Judge the canary against the baseline over a window, per the spec's canary section.

    Exit 0 only on pass; 1 on marginal, fail or inconclusive. The verdict is recorded.
    """
    e = env()
    service = _release_service(release)
    # a verdict for a release gates its deploy: it is made at the real clock, never a pinned one
    clock = e.decision_clock(f"the canary verdict for release {release!r}") if release else e.clock
    b = parse_matchers(baseline, "baseline")
    c = parse_matchers(canary_sel, "canary")
    start, end = _time(from_, "from"), _time(to, "to")
    j = judge_window(e.loaded, e.store, b, c, start, end, judged_at=clock.now())
    d = j.to_dict()
    if release and service:
        why = "; ".join(d["reasons"]) or f"score {d['score']}"
        record_verdict(e.store, "canary", service, release, d["verdict"], why, d, clock.now())
    emit(d, lambda: _print_verdict(d))
    return exitcodes.OK if d["verdict"] == "pass" else exitcodes.NO


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (a cancelled CI job) interrupts the loop like Ctrl-C, so the run records it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_sig, _frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _held_release(e) -> str | None:
    """The release of the unfinished run of canary.service, if one holds it."""
    import json

    c = e.loaded.spec.canary
    if c is None:
        return None
    row = Records(e.store).unfinished(c.service)
    return json.loads(row["plan"]).get("release") if row else None


def _sleeper(clock):
    if isinstance(clock, FakeClock):  # VIGIL_NOW pins the clock: time moves only when the loop waits
        return clock.tick
    return time.sleep


@canary_group.command("run")
@click.option("--baseline", metavar="SEL", help="label matchers of the baseline (needed to start a run)")
@click.option("--canary", "canary_sel", metavar="SEL", help="label matchers of the canary (needed to start a run)")
@click.option("--resume", "action", flag_value="resume", help="continue the unfinished run (a paused one is judged again)")
@click.option("--approve", "action", flag_value="approve", help="count the paused step as passed and go on")
@click.option("--rollback", "action", flag_value="rollback", help="roll the unfinished run back")
@click.option("--takeover", is_flag=True, help="drive the unfinished run even if another process holds its lease")
@release_option
@spec_option
@db_option
@json_option
def run_cmd(baseline: str | None, canary_sel: str | None, action: str | None, takeover: bool, release: str | None) -> int:
    """The canary deploy loop: step the weight, judge each interval, promote or roll back.

    Exit 0 when promoted, 1 when rolled back or paused, 3 when a hook failed. Every step is
    recorded (vigil canary history); an interrupted run is resumed or rolled back on restart.
    With --release the run holds that release: its verdict is "unfinished" until the run ends,
    "pass" only when promoted, whichever invocation finishes it.
    """
    e = env()
    _release_service(release)
    # the run records the verdict of its release (stored when it starts) at every state it reaches:
    # a decision that gates production, so at the real clock, also when continued without --release
    held = _held_release(e)
    if release or held:
        e.decision_clock(f"the canary verdict for release {release or held!r}")
    progress = (lambda m: click.echo(m, err=True)) if e.json_mode else click.echo
    runner = CanaryRunner(e.loaded, e.store, e.clock, _sleeper(e.clock), progress=progress)
    with _sigterm_interrupts():
        out = runner.run(RunRequest(action or "start", baseline, canary_sel, takeover, release))
    d = out.to_dict()

    def text() -> None:
        click.echo(out.message)
        if out.error:
            click.echo(f"error: {out.error['message']}")
            if out.error.get("hint"):
                click.echo(f"hint: {out.error['hint']}")

    emit(d, text)
    return out.exit_code


@canary_group.command("history")
@click.option("--service", metavar="NAME", help="only runs of this service")
@click.option("--run", "run_id", type=int, metavar="ID", help="one run, with every event")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="newest N runs")
@spec_option
@db_option
@json_option
def history_cmd(service: str | None, run_id: int | None, limit: int) -> int:
    """Canary runs, newest first, with their steps, verdicts and hook calls."""
    e = env()
    rec = Records(e.store)
    rows = rec.runs(service=service, run_id=run_id, limit=limit)
    if run_id is not None and not rows:
        raise NotFoundError(f"no canary run #{run_id}", hint="`vigil canary history` lists runs")
    runs = [run_record(r, rec.events(r["id"])) for r in rows]
    verdicts = rec.verdicts(service=service, run_id=run_id, limit=limit)

    def text() -> None:
        from rich.table import Table

        if not runs:
            click.echo("no canary runs recorded")
        for r in runs:
            click.echo(f"run #{r['id']} {r['service'] or '-'} {r['baseline']} -> {r['canary']}: {r['state']} at weight {r['weight']}"
                       f" (steps {r['steps']}, started {r['started_at']}{', finished ' + r['finished_at'] if r['finished_at'] else ''})")
            if r["outcome"]:
                click.echo(f"  {r['outcome']}")
            t = Table(show_edge=False)
            for col in ("at", "step", "weight", "event", "status", "detail"):
                t.add_column(col)
            for ev in r["events"]:
                det = ev["detail"]
                note = det.get("summary") or det.get("error") or ""
                t.add_row(ev["at"], "-" if ev["step"] is None else str(ev["step"] + 1), "-" if ev["weight"] is None else str(ev["weight"]),
                          ev["kind"], ev["status"], str(note))
            console().print(t)
        for v in verdicts:
            click.echo(f"verdict #{v['id']} {v['judged_at']} {v['verdict']} score {v['score']} ({v['from']} .. {v['to']})")

    emit({"runs": runs, "verdicts": verdicts}, text)
    return exitcodes.OK


COMMANDS = [canary_group]
