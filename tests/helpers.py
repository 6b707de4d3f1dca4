"""Small builders for tests: push rows through the real ingest path into a real store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vigil.clock import isoformat, parse_time
from vigil.spec import Spec, parse_spec
from vigil.store import Store
from vigil.telemetry.push import Ingestor


def t(s: str) -> datetime:
    return parse_time(s)


def push(store: Store, spec: Spec, rows: list[dict], now: datetime | str):
    """Push rows (dicts in the push format) through the Ingestor; assert nothing was rejected."""
    now_dt = t(now) if isinstance(now, str) else now
    r = Ingestor(spec, store).push_lines(list(enumerate(rows, 1)), now_dt)
    assert r.rejected_count == 0, r.rejected[:5]
    return r


def per_minute(start: datetime | str, minutes: int, make) -> list[dict]:
    """Rows for each minute: ``make(ts_string, i)`` returns a list of rows."""
    s = t(start) if isinstance(start, str) else start
    out: list[dict] = []
    for i in range(minutes):
        out.extend(make(isoformat(s + timedelta(minutes=i)), i))
    return out


def spec_with(slos_yaml: str, policy_yaml: str = "", services: str = "{api: {}, checkout: {}, search: {}, pages: {}}") -> Spec:
    text = f"version: 1\nservices: {services}\nslos:\n{slos_yaml}\n{policy_yaml}"
    return parse_spec(text)


UTC = timezone.utc
