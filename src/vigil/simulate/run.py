"""Driving the generator: a backfill as fast as it goes, and a live loop on an injected clock.

The live loop never reads the time itself: it asks ``clock.now()`` and waits with ``sleep``, so a
test drives it with a :class:`~vigil.clock.FakeClock` and a sleep that ticks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from vigil.clock import Clock, isoformat
from vigil.simulate.generator import COUNTER, GAUGE, OBSERVATION, Line, Simulator
from vigil.simulate.sinks import Sink, Sleep


def ts_text(s: int) -> str:
    """Unix seconds as RFC 3339 with a Z."""
    return isoformat(datetime.fromtimestamp(s, tz=timezone.utc))


@dataclass
class Totals:
    """What has been emitted: lines, and the events they stand for by kind."""

    lines: int = 0
    counter_increments: int = 0
    observations: int = 0
    gauge_sets: int = 0

    def add(self, rows: list[Line]) -> None:
        self.lines += len(rows)
        for _off, kind, n, _line in rows:
            if kind == COUNTER:
                self.counter_increments += n
            elif kind == OBSERVATION:
                self.observations += n
            elif kind == GAUGE:
                self.gauge_sets += n

    @property
    def samples(self) -> int:
        return self.counter_increments + self.observations + self.gauge_sets

    def to_dict(self) -> dict:
        return {
            "lines": self.lines,
            "samples": self.samples,
            "counter_increments": self.counter_increments,
            "observations": self.observations,
            "gauge_sets": self.gauge_sets,
        }


@dataclass
class Cursor:
    """The end of what has been emitted: every line stamped before ``at`` (Unix seconds) is out."""

    at: int


def emit_range(sim: Simulator, cursor: Cursor, end_s: int, sink: Sink, totals: Totals, on_minute: Callable[[int], None] | None = None) -> None:
    """Write the lines stamped in ``[cursor.at, end_s)`` to ``sink``, one minute per write, moving
    ``cursor`` after each minute (so an interrupt leaves it exact)."""
    for minute, rows in sim.lines(cursor.at, end_s):
        sink.write([r[3] for r in rows])
        totals.add(rows)
        cursor.at = min(end_s, (minute + 1) * 60)
        if on_minute is not None:
            on_minute(cursor.at)
    cursor.at = max(cursor.at, end_s)


def backfill(
    sim: Simulator,
    start_s: int,
    end_s: int,
    sink: Sink,
    totals: Totals | None = None,
    *,
    progress: Callable[[int, Totals], None] | None = None,
    progress_every: int = 6 * 3600,
    cursor: Cursor | None = None,
) -> Totals:
    """Emit ``[start_s, end_s)`` as fast as possible; ``progress(cursor, totals)`` every
    ``progress_every`` simulated seconds and at the end. ``cursor`` (optional) tracks how far it
    got, for a caller that is interrupted."""
    totals = totals if totals is not None else Totals()
    if cursor is None:
        cursor = Cursor(start_s)
    cursor.at = start_s
    next_report = start_s + progress_every

    def on_minute(at: int) -> None:
        nonlocal next_report
        if progress is not None and at >= next_report:
            next_report = at + progress_every
            progress(at, totals)

    emit_range(sim, cursor, end_s, sink, totals, on_minute)
    sink.flush()
    if progress is not None:
        progress(end_s, totals)
    return totals


@dataclass
class LiveResult:
    start: int
    end: int
    ticks: int
    stopped: str  # "duration" or "interrupted"


def live(
    sim: Simulator,
    start_s: int,
    sink: Sink,
    *,
    clock: Clock,
    sleep: Sleep,
    interval: float,
    duration: float | None = None,
    totals: Totals | None = None,
    on_tick: Callable[[int, Totals], None] | None = None,
) -> LiveResult:
    """Every ``interval`` seconds of ``clock`` time, emit the lines stamped since the last tick
    (the first tick catches up from ``start_s``). Stops after ``duration`` seconds, or cleanly on
    KeyboardInterrupt (whatever was emitted is flushed first)."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    totals = totals if totals is not None else Totals()
    t0 = clock.now().timestamp()
    deadline = None if duration is None else int(t0 + duration)
    cursor = Cursor(start_s)
    next_wake = t0
    ticks = 0
    try:
        while True:
            now = clock.now().timestamp()
            target = int(now) if deadline is None else min(int(now), deadline)
            if target > cursor.at:
                emit_range(sim, cursor, target, sink, totals)
            sink.flush()
            ticks += 1
            if on_tick is not None:
                on_tick(cursor.at, totals)
            if deadline is not None and cursor.at >= deadline:
                return LiveResult(start_s, cursor.at, ticks, "duration")
            next_wake += interval
            now = clock.now().timestamp()
            if next_wake < now:  # fell behind (a slow server, a suspended laptop): no burst of ticks
                next_wake = now
            delay = next_wake - now
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - now))
            sleep(delay)
    except KeyboardInterrupt:
        sink.flush(final=True)
        return LiveResult(start_s, cursor.at, ticks, "interrupted")
