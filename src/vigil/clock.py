"""The only place in vigil that reads the time. Everything else receives ``at`` or a clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Protocol

from vigil.errors import UsageError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, UTC."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FakeClock:
    """A clock that moves only when told to. Tests drive timelines with :meth:`tick`."""

    def __init__(self, start: datetime | str) -> None:
        self._now = parse_time(start) if isinstance(start, str) else _aware(start)

    def now(self) -> datetime:
        return self._now

    def tick(self, seconds: float | timedelta = 1) -> datetime:
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if delta < timedelta(0):
            raise ValueError("a clock does not go backwards")
        self._now += delta
        return self._now

    def set(self, when: datetime | str) -> None:
        self._now = parse_time(when) if isinstance(when, str) else _aware(when)


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: vigil needs a time zone (use UTC)")
    return dt.astimezone(timezone.utc)


_RELATIVE = re.compile(r"^(?:now)?\s*([+-])\s*([0-9][0-9a-z]*)$")


_HINT = "use RFC 3339 like 2026-11-01T12:00:00Z, or 'now', or a relative time like now-2h"


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """Parse an RFC 3339 time (``2026-11-01T12:00:00Z``), ``now``, or ``now-1h`` / ``-1h``.

    Relative forms need ``now``. The result is UTC, between the years 1971 and 9998; anything
    else is a :class:`UsageError` with a hint.
    """
    s = text.strip()
    try:
        dt = _parse_time(s, text, now)
    except (ValueError, OverflowError) as e:  # parse_duration's ValueError, a date past year 9999
        raise UsageError(f"cannot read time {text!r}: {e}", hint=_HINT) from None
    if not 1970 < dt.year < 9999:
        raise UsageError(f"time {text!r} is out of range (years 1971 to 9998)", hint=_HINT)
    return dt


def _parse_time(s: str, text: str, now: datetime | None) -> datetime:
    if s == "now":
        if now is None:
            raise UsageError("'now' needs a clock")
        return _aware(now)
    m = _RELATIVE.match(s)
    if m:
        if now is None:
            raise UsageError(f"relative time {text!r} needs a clock")
        from vigil.units import parse_duration

        secs = parse_duration(m.group(2))
        delta = timedelta(seconds=float(secs))
        return _aware(now) + (delta if m.group(1) == "+" else -delta)
    try:
        dt = datetime.fromisoformat(s.replace("z", "Z"))
    except ValueError:
        raise UsageError(f"cannot read time {text!r}", hint=_HINT) from None
    if dt.tzinfo is None:
        raise UsageError(f"time {text!r} has no time zone", hint="add 'Z' for UTC or an offset like +02:00")
    return dt.astimezone(timezone.utc)


def isoformat(dt: datetime) -> str:
    """RFC 3339 in UTC with a 'Z', seconds precision unless sub-second matters."""
    dt = dt.astimezone(timezone.utc)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
