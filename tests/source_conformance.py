"""The conformance suite every telemetry Source passes (issue 7).

A fixed, seeded dataset in the push format (counters, observations, gauges across label sets, with
gaps, a late first sample and series of every kind under one metric name) is loaded into the source
under test; every read of the Source protocol is then compared with a brute-force reference computed
here from the raw rows, for many selectors and windows. A new source (Prometheus, CloudWatch) adds a
loader to ``tests/test_source_conformance.py`` and must pass the same assertions.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from datetime import datetime, timedelta, timezone

from vigil.clock import isoformat
from vigil.histogram import DEFAULT_WIDTH
from vigil.selector import parse_selector
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS, INF_NS, seconds_to_ns, storage_bounds_ns
from vigil.telemetry.sources.protocol import CounterQuery, GaugeQuery, ObservationQuery, ReadPlan

START = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
MINUTES = 240
NOW = START + timedelta(minutes=MINUTES + 5)
BOUNDS = [seconds_to_ns(b) for b in DOCUMENTED_BOUNDS]
STORE_BOUNDS = sorted(set(BOUNDS) | set(storage_bounds_ns(DEFAULT_WIDTH)))
"""The embedded store's layout on a new store: the documented bounds and log-linear 2% buckets."""
M0 = int(START.timestamp()) // 60


def dataset(seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    rows: list[dict] = []
    for i in range(MINUTES):
        ts = isoformat(START + timedelta(minutes=i, seconds=rnd.randrange(60)))
        for svc in ("api", "checkout", "search"):
            if svc == "search" and i < 90:
                continue  # a late first sample
            if rnd.random() < 0.08:
                continue  # gaps
            for code in ("200", "404", "503"):
                n = {"200": rnd.randrange(50, 120), "404": rnd.randrange(0, 5), "503": rnd.randrange(0, 3)}[code]
                rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": svc, "code": code}, "inc": n})
            for _ in range(rnd.randrange(1, 4)):
                v = round(rnd.lognormvariate(math.log(0.12), 0.8), 4)
                rows.append({"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": svc},
                             "observe": v, "count": rnd.randrange(1, 20)})
        if rnd.random() < 0.9:
            rows.append({"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": "hot"}, "set": rnd.randrange(0, 600)})
        if i % 7 == 0:
            rows.append({"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": "cold"}, "set": rnd.randrange(0, 6000)})
    return rows


def _minute(r: dict) -> int:
    return int(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()) // 60


def _le(v: float, bounds: list[int] = BOUNDS) -> int:
    ns = int(round(v * 1_000_000_000))
    i = bisect_left(bounds, ns)
    return bounds[i] if i < len(bounds) else INF_NS


class Reference:
    """Brute force over the raw rows."""

    def __init__(self, rows: list[dict], bounds: list[int] = BOUNDS) -> None:
        self.rows = rows
        self.bounds = bounds

    def _rows(self, sel, field):
        return [r for r in self.rows if r["metric"] == sel.metric and field in r and sel.matches(r.get("labels") or {})]

    def counter_sums(self, q: CounterQuery, starts, end):
        inc = self._rows(q.include, "inc")
        if q.exclude is not None:
            ex = {id(r) for r in self._rows(q.exclude, "inc")}
            inc = [r for r in inc if id(r) not in ex]
        return [sum(r["inc"] for r in inc if st <= _minute(r) < end) for st in starts]

    def observation_counts(self, q: ObservationQuery, starts, end):
        obs = self._rows(q.metric, "observe")
        out = []
        for st in starts:
            sel = [r for r in obs if st <= _minute(r) < end]
            out.append((sum(r["count"] for r in sel if _le(r["observe"], self.bounds) <= q.le_ns), sum(r["count"] for r in sel)))
        return out

    def gauge_max(self, sel, start, end):
        out = [None] * (end - start)
        for r in self._rows(sel, "set"):
            m = _minute(r)
            if start <= m < end:
                out[m - start] = r["set"] if out[m - start] is None else max(out[m - start], r["set"])
        return out

    def first_minute(self, sel, field):
        ms = [_minute(r) for r in self._rows(sel, field)]
        return min(ms) if ms else None

    def observation_buckets(self, sel, start, end):
        acc: dict[int, int] = {}
        for r in self._rows(sel, "observe"):
            if start <= _minute(r) < end:
                le = _le(r["observe"], self.bounds)
                acc[le] = acc.get(le, 0) + r["count"]
        return sorted(acc.items())


COUNTER_SELECTORS = [
    ('http_requests', None),
    ('http_requests{service="api"}', None),
    ('http_requests{service="api",code!~"5.."}', None),
    ('http_requests{code=~"2..|4.."}', 'http_requests{code="404"}'),
    ('http_requests{service!="checkout"}', 'http_requests{service="search"}'),
    ('http_requests{service="nope"}', None),
    ('no_such_metric', None),
]
OBS_SELECTORS = ['http_request_duration_seconds', 'http_request_duration_seconds{service=~"api|search"}']
GAUGE_SELECTORS = ['index_staleness_seconds{class="hot"}', 'index_staleness_seconds', 'index_staleness_seconds{class="warm"}']
ENDS = [M0 + 61, M0 + 150, M0 + MINUTES + 3]


def _starts(end: int) -> list[int]:
    return sorted({max(M0 - 30, end - d) for d in (1, 5, 30, 60, 61, 120, 179, 10_000)})


def check_source(source, rows: list[dict], bounds: list[int] = BOUNDS) -> None:
    """Assert that ``source`` (already holding ``rows``, bucketed by ``bounds``: the documented ones
    unless said) answers every read as the reference does."""
    ref = Reference(rows, bounds)
    for end in ENDS:
        starts = _starts(end)
        plan = ReadPlan(end=end, starts=list(starts))
        for inc, exc in COUNTER_SELECTORS:
            plan.counters.append(CounterQuery(parse_selector(inc), parse_selector(exc) if exc else None))
        for o in OBS_SELECTORS:
            for le in (BOUNDS[5], BOUNDS[9], BOUNDS[-1]):
                plan.observations.append(ObservationQuery(parse_selector(o), le))
        for g in GAUGE_SELECTORS:
            plan.gauges.append(GaugeQuery(parse_selector(g), end - 180, end))
        source.prefetch(plan)
        for q in plan.counters:
            assert source.counter_sums(q, starts, end) == ref.counter_sums(q, starts, end), (q, end)
        for q in plan.observations:
            assert source.observation_counts(q, starts, end) == ref.observation_counts(q, starts, end), (q, end)
        for g in plan.gauges:
            got = [None if x != x else float(x) for x in source.gauge_max(g.metric, g.start, g.end)]
            want = [None if x is None else float(x) for x in ref.gauge_max(g.metric, g.start, g.end)]
            assert got == want, (g, end)
            sub = [None if x != x else float(x) for x in source.gauge_max(g.metric, g.start + 10, g.end - 10)]
            assert sub == want[10:-10], (g, end)  # a narrower range than prefetched
        for o in OBS_SELECTORS:
            sel = parse_selector(o)
            assert source.observation_buckets(sel, end - 90, end) == ref.observation_buckets(sel, end - 90, end), (o, end)
    for text, kind, field in (
        ('http_requests', "counter", "inc"),
        ('http_requests{service="search"}', "counter", "inc"),
        ('http_request_duration_seconds{service="search"}', "observation", "observe"),
        ('index_staleness_seconds{class="cold"}', "gauge", "set"),
        ('http_requests{service="nope"}', "counter", "inc"),
        ('http_requests', "gauge", "set"),
    ):
        sel = parse_selector(text)
        assert source.first_minute(sel, kind) == ref.first_minute(sel, field), text
    # series of another kind under a name: matched tells them apart
    assert source.matched(parse_selector('http_requests{service="api"}'), "counter") == (3, 0)
    assert source.matched(parse_selector('http_requests{service="api"}'), "gauge") == (0, 3)
    assert source.matched(parse_selector('index_staleness_seconds'), "gauge") == (2, 0)
    for b in bounds:
        assert source.bound_since(b) is not None and source.bound_since(b) <= M0
    # the layout quantiles are read in: every bound the data was counted in, consistent with bound_since
    layout = source.bucket_bounds()
    assert set(bounds) <= set(layout), sorted(set(bounds) - set(layout))
    assert all(source.bound_since(le) == since for le, since in layout.items())
    assert all(le < INF_NS for le in layout)
