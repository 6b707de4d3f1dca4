"""Compliance windows in whole minutes: rolling, and calendar (month, week, quarter) in a time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from vigil.slo.math import elapsed_fraction
from vigil.slo.spec import Window


@dataclass(frozen=True)
class Span:
    """A window at an evaluation time. Minutes are Unix minutes; ``[start, end)`` is the whole window.

    ``now`` is the first minute not yet counted: the minute containing the evaluation time counts.
    A rolling window ends at ``now``; a calendar window is elapsed up to ``now``.

    ``covered_from`` is the SLO's coverage: the first minute its data (or its ``since:``) covers.
    The window counts from the later of ``start`` and ``covered_from``, so a rolling 30d window
    with 3 days of data is 10% elapsed. None: covered from ``start`` on.
    """

    start: int
    end: int
    now: int
    rolling: bool
    covered_from: int | None = None

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def first(self) -> int:
        """The first minute the window counts: the later of its start and the coverage."""
        return self.start if self.covered_from is None else max(self.start, self.covered_from)

    @property
    def window_elapsed(self) -> int:
        """Minutes of the window before ``now``, whatever the coverage (the calendar's own clock)."""
        return max(0, min(self.now, self.end) - self.start)

    @property
    def elapsed(self) -> int:
        """Minutes counted so far: from :attr:`first` to ``now`` (or the end)."""
        return max(0, min(self.now, self.end) - self.first)

    @property
    def complete(self) -> bool:
        """Coverage reaches back to the window's start."""
        return self.covered_from is None or self.covered_from <= self.start

    @property
    def elapsed_fraction(self) -> Decimal:
        return elapsed_fraction(self.elapsed, self.length)

    @property
    def length_seconds(self) -> int:
        return self.length * 60


def now_minute(at: datetime) -> int:
    """The first minute not counted at ``at``: minutes that started before ``at`` count."""
    ts = at.timestamp()
    m = int(ts // 60)
    return m + 1 if ts > m * 60 else m


def span_at(window: Window, at: datetime, covered_from: int | None = None) -> Span:
    now = now_minute(at)
    if window.rolling is not None:
        w = int(window.rolling) // 60
        return Span(now - w, now, now, True, covered_from)
    assert window.calendar is not None  # a window is rolling or calendar (the spec's validator)
    start, end = calendar_bounds(window.calendar, window.tz, at)
    return Span(int(start.timestamp()) // 60, int(end.timestamp()) // 60, now, False, covered_from)


def with_coverage(span: Span, covered_from: int | None) -> Span:
    return Span(span.start, span.end, span.now, span.rolling, covered_from)


def calendar_bounds(kind: str, tz: str, at: datetime) -> tuple[datetime, datetime]:
    """Start and end (UTC) of the calendar period holding ``at``, in zone ``tz``."""
    z = ZoneInfo(tz)
    local = at.astimezone(z)
    if kind == "month":
        s = datetime(local.year, local.month, 1)
        e = datetime(local.year + (local.month == 12), local.month % 12 + 1, 1)
    elif kind == "quarter":
        q0 = (local.month - 1) // 3 * 3 + 1
        s = datetime(local.year, q0, 1)
        e = datetime(local.year + (q0 == 10), (q0 + 2) % 12 + 1, 1)
    elif kind == "week":
        d = local.date() - timedelta(days=local.weekday())
        s = datetime(d.year, d.month, d.day)
        e = s + timedelta(days=7)
    else:  # pragma: no cover - the spec model allows only the three
        raise ValueError(kind)
    return (
        s.replace(tzinfo=z).astimezone(timezone.utc),
        e.replace(tzinfo=z).astimezone(timezone.utc),
    )


def minute_to_datetime(m: int) -> datetime:
    return datetime.fromtimestamp(m * 60, tz=timezone.utc)
