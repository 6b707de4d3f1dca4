"""The charts' batched store reads (vigil.dashboards.fast) and the quantile over the bounds a step
can touch give the Source protocol's and the whole layout's numbers (issue 9, speed).

The minute rollup is read in sums per block when every boundary inside an hour is a multiple of
the block (a 1-day chart's 15-minute steps), per minute otherwise and for the ragged end; the
hourly rollup in sums per run of hours when every boundary is whole runs back from the end (a
30-day chart's 6-hour steps); a
quantile is computed over the layout bounds its counts can touch instead of the ~1,700 bounds of
the 2% layout. Both must change no number.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import push, spec_with, t
from vigil.clock import isoformat
from vigil.dashboards.fast import counter_tails, latency_tails, observation_tails
from vigil.dashboards.series import FiniteLayout, histogram_quantile
from vigil.histogram import INF, quantile
from vigil.selector import parse_selector
from vigil.slo.windows import now_minute
from vigil.store import open_store
from vigil.telemetry.ingest import INF_NS
from vigil.telemetry.source import EmbeddedSource
from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery

START = "2026-11-01T00:00:00Z"
MINUTES = 2 * 1440


def _fill(s) -> None:
    rng = random.Random(3)
    rows = []
    for i in range(MINUTES):
        if rng.random() < 0.03:
            continue  # minutes without traffic
        ts = isoformat(t(START) + timedelta(minutes=i, seconds=rng.randrange(60)))
        for code in ("200", "500"):
            rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": code}, "inc": rng.randrange(1, 50)})
        for _ in range(rng.randrange(1, 4)):
            rows.append({"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"},
                         "observe": round(rng.lognormvariate(-2.3, 0.8), 4)})
    slo = """\
  - name: api-latency
    service: api
    objective: 95
    window: {rolling: 30d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 200ms}
"""
    push(s, spec_with(slo), rows, "2026-11-03T00:00:00Z")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = open_store(f"sqlite:///{tmp_path_factory.mktemp('fast') / 'state.db'}")
    _fill(s)
    yield s
    s.close()


def _keys(rng: random.Random, end: int, kind: str) -> list[int]:
    base = now_minute(t(START))
    if kind == "aligned":  # a chart's steps: multiples of 5 minutes to 6 hours
        step = rng.choice([5, 15, 20, 30, 60, 120, 180, 360])
        lo = base + rng.randrange(0, MINUTES // 2)
        return list(range(lo // step * step, end, step))
    if kind == "mixed":  # 15-minute steps and, as a burn-rate chart's windows back from a ragged end, a few odd minutes
        lo = base + rng.randrange(0, MINUTES // 2)
        odd = {end - w for w in (60, 360, 1440) if end - w > base}
        return sorted(set(range(lo // 15 * 15, end, 15)) | odd)
    if kind == "hours":  # whole hours, some runs of hours apart
        return sorted({x for x in (base + 60 * (rng.randrange(0, MINUTES // 60) // 3 * 3) for _ in range(10)) if x < end})
    return sorted({rng.randrange(base - 30, end) for _ in range(rng.randrange(1, 40))})


def _check(store, seed: int) -> None:
    rng = random.Random(seed)
    base = now_minute(t(START))
    end = base + rng.randrange(120, MINUTES + 30)  # inside an hour, on one, after the data
    if seed % 3 == 0:
        end = end // 60 * 60
    keys = _keys(rng, end, ("aligned", "any", "hours")[seed % 3] if seed < 9 else ("mixed", "hours", "aligned")[seed % 3])
    src = EmbeddedSource(store)
    q = CounterQuery(parse_selector('http_requests{service="api"}'), parse_selector('http_requests{code="500"}'))
    got = counter_tails(src, q, keys, end)
    assert got == dict(zip(keys, EmbeddedSource(store).counter_sums(q, keys, end)))
    lat = parse_selector('http_request_duration_seconds{service="api"}')
    le = 200_000_000
    pairs = EmbeddedSource(store).observation_counts(ObservationQuery(lat, le), keys, end)
    assert latency_tails(src, lat, le, keys, end) == dict(zip(keys, pairs))
    buckets = observation_tails(src, lat, keys, end)
    for x in keys:
        assert sorted((le_, n) for le_, n in buckets[x].items() if n) == EmbeddedSource(store).observation_buckets(lat, x, end)


@pytest.mark.parametrize("seed", range(18))
def test_block_sums_equal_the_protocol(store, seed):
    _check(store, seed)


def test_block_sums_and_latency_slis_on_postgresql(pg_db_url):
    s = open_store(pg_db_url)
    try:
        _fill(s)
        for seed in range(18):
            _check(s, seed)
        from vigil.slo.evaluate import evaluate_slos

        slos = spec_with(LATENCY_SLOS).slos
        for at in ("2026-11-02T13:07:30Z", "2026-11-05T09:59:59Z"):
            fast = [x.to_dict() for x in evaluate_slos(slos, EmbeddedSource(s), t(at))]
            assert fast == [x.to_dict() for x in evaluate_slos(slos, _Buckets(EmbeddedSource(s)), t(at))]
    finally:
        s.close()


layouts = st.lists(st.integers(1, 10**6), min_size=0, max_size=60, unique=True).map(sorted)


@settings(max_examples=400, deadline=None)
@given(layout=layouts, counts=st.dictionaries(st.one_of(st.integers(1, 2 * 10**6), st.just(INF_NS)), st.integers(0, 50), max_size=12),
       q=st.sampled_from(["0", "0.01", "0.5", "0.9", "0.95", "0.99", "1"]))
def test_a_quantile_over_the_bounds_it_can_touch_is_the_whole_layouts(layout, counts, q):
    want = quantile(Decimal(q), [(INF if le >= INF_NS else le, n) for le, n in counts.items()], layout)
    got = histogram_quantile(Decimal(q), counts, layout)
    assert got == (None if want is None else want.value / Decimal(10**9))
    assert histogram_quantile(Decimal(q), counts, FiniteLayout(layout)) == got  # a panel's prepared layout


class _Buckets:
    """The embedded source without its threshold prefetch: latency SLIs summed from every bucket."""

    def __init__(self, inner: EmbeddedSource) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        if name == "prefetch_thresholds":
            raise AttributeError(name)
        return getattr(self._inner, name)


LATENCY_SLOS = """\
  - name: api-latency
    service: api
    objective: 95
    window: {rolling: 30d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 200ms}
  - name: api-latency-week
    service: api
    objective: 90
    window: {calendar: week, timezone: Europe/Berlin}
    sli:
      latency: {metric: 'http_request_duration_seconds', threshold: 100ms}
  - name: api-latency-since
    service: api
    objective: 99
    since: 2026-11-01T07:13:00Z
    window: {rolling: 1d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 1s}
  - name: api-success
    service: api
    objective: 99
    window: {rolling: 7d}
    sli:
      ratio: {good: 'http_requests{code="200"}', total: 'http_requests'}
"""


@pytest.mark.parametrize("at", ["2026-11-01T00:30:00Z", "2026-11-02T13:07:30Z", "2026-11-03T00:00:00Z", "2026-11-05T09:59:59Z"])
def test_latency_slis_from_thresholds_equal_those_from_every_bucket(store, at):
    """An evaluation's latency SLIs read as (good, all) at each SLO's threshold per series and span
    (EmbeddedSource.prefetch_thresholds) are the sums of every bucket (the plain path)."""
    from vigil.slo.evaluate import evaluate_slos

    slos = spec_with(LATENCY_SLOS).slos
    fast = [s.to_dict() for s in evaluate_slos(slos, EmbeddedSource(store), t(at))]
    plain = [s.to_dict() for s in evaluate_slos(slos, _Buckets(EmbeddedSource(store)), t(at))]
    assert fast == plain
    assert any(s["valid"] > 0 and s["good"] < s["valid"] for s in fast[:3])  # thresholds inside the data
