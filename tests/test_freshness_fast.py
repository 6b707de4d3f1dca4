"""Freshness SLIs read through the embedded store's per-hour summary give the plain engine's numbers.

The embedded source answers a freshness SLI from one grouped query (per block of an hour's slices:
the highest sample and how many slices hold one) and reads minutes only for blocks that are
neither wholly good nor unsampled (:func:`vigil.slo.evaluate.slice_classes`). The plain engine
reads every minute through :meth:`Source.gauge_max` and classifies each slice. Here both answer the
same adversarial data: gaps of a few minutes and of whole hours, hours good but for one minute,
wholly bad hours, samples exactly at the threshold, two series of which one is over, at times
inside an hour, every slice length, ``missing: bad | good | ignore``, with and without ``since:``,
on SQLite and PostgreSQL. And a new sample changes the next answer (nothing is kept between
evaluations).
"""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import push, spec_with, t
from vigil.clock import isoformat
from vigil.dashboards.series import range_grid
from vigil.dashboards.slo_charts import burn_rates, burndown, sli_steps
from vigil.slo.evaluate import BAD, GOOD, MISSING, classify_blocks, classify_slices, evaluate_slos, slice_classes
from vigil.slo.windows import now_minute
from vigil.store import open_store
from vigil.telemetry.source import EmbeddedSource

START = "2026-11-01T00:00:00Z"
DAYS = 3
THRESHOLD = 300.0
SLICES = ("1m", "2m", "5m", "15m", "30m", "1h")


class PlainSource:
    """The embedded source without its summary: the plain engine's per-minute read."""

    def __init__(self, inner: EmbeddedSource) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        if name == "gauge_summary":
            raise AttributeError(name)
        return getattr(self._inner, name)


class Counting:
    """The embedded source, counting the minutes it reads through gauge_max and its summaries."""

    def __init__(self, inner: EmbeddedSource) -> None:
        self._inner = inner
        self.minutes_read = 0
        self.summaries = 0

    def gauge_max(self, metric, start, end):
        self.minutes_read += max(0, end - start)
        return self._inner.gauge_max(metric, start, end)

    def gauge_summary(self, *a):
        self.summaries += 1
        return self._inner.gauge_summary(*a)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def _rows(seed: int) -> list[dict]:
    """Three days of two hot-index gauges, adversarial for a per-hour summary."""
    rng = random.Random(seed)
    s = t(START)
    out: list[dict] = []
    stalls = set()
    for _ in range(6):  # stalls of 1 minute to 3 hours, some covering whole hours
        a = rng.randrange(DAYS * 1440)
        stalls.update(range(a, a + rng.choice([1, 3, 7, 59, 60, 61, 125, 180])))
    bad_hours = {rng.randrange(DAYS * 24) for _ in range(3)}  # every sample over the threshold
    one_bad = {rng.randrange(DAYS * 1440) for _ in range(12)}  # an hour good but for one minute
    for i in range(DAYS * 1440):
        ts = isoformat(s + timedelta(minutes=i, seconds=rng.randrange(60)))
        if i in stalls:
            continue
        if i // 60 in bad_hours:
            v = THRESHOLD + 1 + rng.random() * 100
        elif i in one_bad:
            v = THRESHOLD + 0.5
        elif rng.random() < 0.05:
            v = THRESHOLD  # exactly at it: good
        else:
            v = rng.uniform(10, THRESHOLD - 1)
        out.append({"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": "hot", "region": "a"}, "set": v})
        # a second matching series, reporting every other minute; its worst minutes make the slice bad
        if i % 2 == 0 and i not in stalls:
            w = THRESHOLD + 10 if rng.random() < 0.01 else rng.uniform(0, THRESHOLD)
            out.append({"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": "hot", "region": "b"}, "set": w})
        if rng.random() < 0.02:  # a second sample in the same minute, over: the minute's max is over
            out.append({"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": "hot", "region": "a"},
                        "set": THRESHOLD + 2})
    return out


def _slo(missing: str, slice_: str, window: str = "{rolling: 1d}", since: str | None = None) -> str:
    return f"""\
  - name: fresh
    service: search
    objective: 99
    window: {window}
{f"    since: {since}" + chr(10) if since else ""}    sli:
      freshness: {{metric: 'index_staleness_seconds{{class="hot"}}', threshold: 5m, slice: {slice_}, missing: {missing}}}
"""


def _specs():
    out = []
    for missing in ("bad", "good", "ignore"):
        for slice_ in SLICES:
            out.append(spec_with(_slo(missing, slice_)))
        out.append(spec_with(_slo(missing, "5m", "{calendar: week, timezone: America/New_York}")))
        out.append(spec_with(_slo(missing, "1m", "{rolling: 7d}", since="2026-10-31T10:17:00Z")))
    return out


def _push_all(store) -> None:
    spec = spec_with(_slo("bad", "1m"))
    push(store, spec, _rows(11), "2026-11-04T00:00:00Z")


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    s = open_store(f"sqlite:///{tmp_path_factory.mktemp('fresh') / 'state.db'}")
    _push_all(s)
    yield s
    s.close()


ATS = ["2026-11-02T00:00:00Z", "2026-11-02T13:07:30Z", "2026-11-03T23:59:59Z", "2026-11-04T00:31:00Z", "2026-11-01T00:20:00Z"]


def _same_as_plain(store) -> None:
    for spec in _specs():
        for at in ATS:
            fast = Counting(EmbeddedSource(store))
            got = [s.to_dict() for s in evaluate_slos(spec.slos, fast, t(at))]
            want = [s.to_dict() for s in evaluate_slos(spec.slos, PlainSource(EmbeddedSource(store)), t(at))]
            assert got == want, (spec.slos[0].sli.freshness, spec.slos[0].window, at)
            assert fast.summaries == 1  # the fast path answered


def test_the_summarised_read_equals_the_plain_engine_on_sqlite(sqlite_store):
    _same_as_plain(sqlite_store)


def test_the_summarised_read_equals_the_plain_engine_on_postgresql(pg_db_url):
    s = open_store(pg_db_url)
    try:
        _push_all(s)
        _same_as_plain(s)
    finally:
        s.close()


def test_the_data_is_adversarial(sqlite_store):
    """Every class occurs in the data the comparisons run on, and `since:` counts before the data."""
    spec = spec_with(_slo("bad", "1m", "{rolling: 7d}", since="2026-10-31T10:17:00Z"))
    st_ = evaluate_slos(spec.slos, EmbeddedSource(sqlite_store), t("2026-11-04T00:00:00Z"))[0]
    f = spec.slos[0].sli.freshness
    cls = slice_classes(EmbeddedSource(sqlite_store), f.metric, now_minute(t(START)), now_minute(t("2026-11-04T00:00:00Z")), 1, THRESHOLD)
    counts = {c: int((cls == c).sum()) for c in (GOOD, BAD, MISSING)}
    assert counts[GOOD] > 3000 and counts[BAD] > 150 and counts[MISSING] > 100, counts
    # since: every slice from 2026-10-31T10:17 counts (3 days 13 h 43 min), those before the data as missing (bad)
    assert st_.window_counts.valid == 3 * 1440 + 13 * 60 + 43


def test_only_hours_neither_wholly_good_nor_unsampled_are_read_minute_by_minute(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        spec = spec_with(_slo("bad", "1m"))
        day = t("2026-11-03T00:00:00Z")
        stalled = set(range(8 * 60, 10 * 60)) | set(range(14 * 60 + 10, 14 * 60 + 20))  # two whole hours; 10 minutes
        rows = [{"ts": isoformat(day + timedelta(minutes=i, seconds=5)), "metric": "index_staleness_seconds",
                 "labels": {"class": "hot"}, "set": 900 if i == 5 * 60 + 30 else 20} for i in range(1440) if i not in stalled]
        push(store, spec, rows, "2026-11-04T00:00:00Z")
        src = Counting(EmbeddedSource(store))
        st_ = evaluate_slos(spec.slos, src, t("2026-11-04T00:00:00Z"))[0]
        assert (st_.window_counts.good, st_.window_counts.valid) == (1440 - 1 - 130, 1440)
        assert src.summaries == 1 and src.minutes_read == 120  # 05:00-06:00 (one bad minute) and 14:00-15:00
    finally:
        store.close()


def test_the_charts_give_the_plain_engines_numbers(sqlite_store):
    at = t("2026-11-03T13:07:30Z")
    for slice_ in ("1m", "5m", "1h"):
        for missing in ("bad", "ignore"):
            slo = spec_with(_slo(missing, slice_)).slos[0]
            assert burndown(slo, EmbeddedSource(sqlite_store), at) == burndown(slo, PlainSource(EmbeddedSource(sqlite_store)), at)
            for rng in ("6h", "1d"):
                grid = range_grid(rng, now_minute(at))
                for chart in (burn_rates, sli_steps):
                    assert chart(slo, EmbeddedSource(sqlite_store), at, grid) == chart(slo, PlainSource(EmbeddedSource(sqlite_store)), at, grid)


def test_a_new_sample_changes_the_next_answer(tmp_path):
    """Nothing is kept between evaluations: a bad minute pushed into a wholly good hour counts at once."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        spec = spec_with(_slo("bad", "1m"))
        rows = [{"ts": isoformat(t(START) + timedelta(minutes=i, seconds=5)), "metric": "index_staleness_seconds",
                 "labels": {"class": "hot"}, "set": 20} for i in range(1440)]
        push(store, spec, rows, "2026-11-02T00:00:00Z")
        at = t("2026-11-02T00:00:00Z")
        before = evaluate_slos(spec.slos, EmbeddedSource(store), at)[0]
        assert (before.window_counts.good, before.window_counts.valid) == (1440, 1440)
        push(store, spec, [{"ts": "2026-11-01T05:30:40Z", "metric": "index_staleness_seconds", "labels": {"class": "hot"},
                            "set": 900}], at)
        after = evaluate_slos(spec.slos, EmbeddedSource(store), at)[0]
        assert (after.window_counts.good, after.window_counts.valid) == (1439, 1440)
    finally:
        store.close()


# -- the pure classification -----------------------------------------------------------------------

values = st.one_of(st.just(float("nan")), st.just(THRESHOLD), st.floats(0, 2 * THRESHOLD, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(size=st.sampled_from([1, 2, 5, 15, 30, 60]), n=st.integers(0, 200), data=st.data())
def test_a_block_summary_never_contradicts_the_per_slice_classes(size, n, data):
    """What classify_blocks decides from each block's highest sample and sampled slices is the class
    classify_slices gives every slice of that block; the rest it leaves undecided (-1)."""
    pattern = data.draw(st.lists(values, min_size=1, max_size=8))
    arr = np.array([pattern[data.draw(st.integers(0, len(pattern) - 1))] if data.draw(st.booleans()) else float("nan")
                    for _ in range(n * size)] if n * size <= 400 else [pattern[i % len(pattern)] for i in range(n * size)])
    per = max(1, 60 // size)
    nb = -(-n // per)
    block = per * size
    padded = np.full(nb * block, np.nan)
    padded[: n * size] = arr
    present = ~np.isnan(padded)
    bmax = np.where(present.reshape(nb, block).any(axis=1), np.where(present, padded, -np.inf).reshape(nb, block).max(axis=1), np.nan)
    bslices = present.reshape(nb, per, size).any(axis=2).sum(axis=1)
    want = classify_slices(arr, size, THRESHOLD)
    got = classify_blocks(bmax, bslices, n, per, THRESHOLD)
    decided = got >= 0
    assert (got[decided] == want[decided]).all()
    if per == 1:
        assert decided.all()  # a block of one slice is always decided
