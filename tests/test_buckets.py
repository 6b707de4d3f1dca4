"""Latency stored at a resolution that sees small regressions (issue 14, the storage part).

Observations are bucketed at ingest by log-linear bounds of ``telemetry.bucket_width`` (2% by
default) from 1 us to 1 h, plus the documented bounds and every spec threshold (exact). A store
records each layout with the first minute it holds in full; older data keeps its buckets. Quantiles
for dashboards and alerts come from the same buckets, within the same bound. Every figure is checked
against numpy on the raw values the buckets were filled from.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import push, t
from vigil.clock import isoformat
from vigil.errors import SpecError
from vigil.histogram import (
    DEFAULT_WIDTH,
    INF,
    STORAGE_HIGH,
    STORAGE_LOW,
    bucket_of,
    layout_at,
    max_relative_width,
    quantile,
    storage_bounds,
)
from vigil.spec import parse_spec
from vigil.store import REVISIONS, open_store, schema
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS, INF_NS, seconds_to_ns, storage_bounds_ns
from vigil.telemetry.push import Ingestor

DOC_NS = [seconds_to_ns(b) for b in DOCUMENTED_BOUNDS]
FINE_NS = storage_bounds_ns(DEFAULT_WIDTH)
T0 = "2026-11-20T12:00:00Z"
M0 = int(t(T0).timestamp()) // 60

SPEC_TEXT = """\
version: 1
services: {api: {}}
slos:
  - name: api-latency
    service: api
    objective: 95
    window: {rolling: 7d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 333ms}
"""


def spec(width: str | None = "default"):
    if width == "default":
        return parse_spec(SPEC_TEXT)
    return parse_spec(SPEC_TEXT + f"telemetry: {{bucket_width: {'null' if width is None else width}}}\n")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


def obs(minute: int, value: float, count: int = 1, version: str = "v1") -> dict:
    ts = isoformat(t(T0) + timedelta(minutes=minute - M0, seconds=1))
    return {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api", "version": version},
            "observe": value, "count": count}


def stored_buckets(store, minute: int | None = None) -> dict[int, int]:
    tm = schema.obs_minute
    q = sa.select(tm.c.le, sa.func.sum(tm.c["count"])).group_by(tm.c.le)
    if minute is not None:
        q = q.where(tm.c.minute == minute)
    with store.engine.connect() as conn:
        return dict(conn.execute(q).all())


def rank_value(xs: np.ndarray, q: float) -> float:
    """The observation of rank ceil(q n): what a quantile drawn from buckets estimates."""
    return float(np.quantile(xs, q, method="inverted_cdf"))


# == the layout (pure) ===================================================================================


@pytest.mark.parametrize("width", ["0.005", "0.01", "0.02", "0.03", "0.05", "0.1", "0.5"])
def test_the_storage_layout_keeps_its_width_from_1us_to_1h_in_whole_nanoseconds(width):
    b = storage_bounds(Decimal(width))
    assert list(b) == sorted(set(b))
    assert b[0] == STORAGE_LOW == Decimal("0.000001") and b[-1] == STORAGE_HIGH == 3600
    assert max_relative_width(b, STORAGE_LOW, STORAGE_HIGH) <= Fraction(width)
    assert all(x * 10**9 == int(x * 10**9) for x in b)  # exact in the store's nanoseconds
    ns = storage_bounds_ns(Decimal(width))
    assert [Decimal(n) / 10**9 for n in ns] == list(b)


def test_the_default_layout_is_2_percent_with_1666_bounds():
    assert DEFAULT_WIDTH == Decimal("0.02") and parse_spec(SPEC_TEXT).telemetry.bucket_width == DEFAULT_WIDTH
    assert len(storage_bounds(DEFAULT_WIDTH)) == 1666
    # with the documented bounds and a threshold added: still every bucket within 2%, both exact
    union = sorted(set(FINE_NS) | set(DOC_NS) | {seconds_to_ns(Decimal("0.333"))})
    assert max_relative_width([Fraction(x, 10**9) for x in union], Fraction(1, 10**6), Fraction(3600)) <= Fraction(1, 50)


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(3600), places=9),
       st.lists(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(3600), places=6), max_size=5))
def test_any_value_lies_in_a_bucket_at_most_2_percent_wide_and_thresholds_stay_exact(x, thresholds):
    ns = sorted(set(FINE_NS) | set(DOC_NS) | {seconds_to_ns(th) for th in thresholds})
    bounds = [Fraction(n, 10**9) for n in ns]
    lo, up = bucket_of(bounds, Fraction(x))
    assert lo < Fraction(x) <= up
    if lo > 0:
        assert (up - lo) / lo <= Fraction(1, 50)
    for th in thresholds:
        assert Fraction(th) in bounds  # "v <= threshold" is a question the buckets answer exactly


@pytest.mark.parametrize("bad", ["0.1%", "0.4%", "51%", "2", "-1%", "0"])
def test_a_bucket_width_out_of_range_is_a_spec_error_with_its_place(bad):
    with pytest.raises(SpecError) as e:
        parse_spec(SPEC_TEXT + f"telemetry: {{bucket_width: '{bad}'}}\n")
    text = str(e.value) + " ".join(str(i) for i in getattr(e.value, "issues", []))
    assert "bucket_width" in text and ("between 0.5% and 50%" in text or "cannot read" in text), text


def test_a_bucket_width_is_a_percentage_or_null():
    assert spec("1%").telemetry.bucket_width == Decimal("0.01")
    assert spec("0.05").telemetry.bucket_width == Decimal("0.05")
    assert spec(None).telemetry.bucket_width is None


def test_layout_at_is_the_bounds_exact_since_then():
    bounds = {10: 0, 20: 5, 30: 9, INF_NS: 0}
    assert layout_at(bounds, 4) == (10, INF_NS)
    assert layout_at(bounds, 5, below=INF_NS) == (10, 20)
    assert layout_at(bounds, 100, below=INF_NS) == (10, 20, 30)


# == quantiles (pure) ================================================================================


def bucketed_ns(xs: np.ndarray, layout_ns) -> dict[int, int]:
    """Raw seconds counted at their bucket's upper bound (ns), the way ingest does (floats)."""
    fl = np.array([b / 1e9 for b in layout_ns])
    idx = np.searchsorted(fl, xs, side="left")
    out: dict[int, int] = {}
    for i, n in zip(*np.unique(idx, return_counts=True)):
        le = layout_ns[i] if i < len(layout_ns) else INF_NS
        out[le] = out.get(le, 0) + int(n)
    return out


def to_seconds(counts: dict[int, int]) -> list[tuple[Decimal, int]]:
    return [(INF if le >= INF_NS else Decimal(le) / 10**9, n) for le, n in counts.items()]


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_from_2_percent_buckets_are_within_2_percent_of_the_observation_of_that_rank(seed):
    rng = np.random.default_rng(seed)
    xs = rng.lognormal(math.log(0.12), 0.6, int(rng.integers(50, 5000)))
    layout = sorted(set(FINE_NS) | set(DOC_NS))
    counts = to_seconds(bucketed_ns(xs, layout))
    lay = [Decimal(b) / 10**9 for b in layout]
    for q in ("0.5", "0.9", "0.95", "0.99", "0.999", "1"):
        est = quantile(Decimal(q), counts, lay)
        true = rank_value(xs, float(q))
        assert est is not None and est.lower < Decimal(repr(true)) <= est.upper  # the observation is in its bucket
        assert est.relative_error is not None and est.relative_error <= Fraction(1, 50)
        assert abs(float(est.value) - true) <= 0.02 * true, (q, float(est.value), true)


def test_quantiles_from_the_documented_buckets_are_not_that_close():
    """The same check fails at the documented bounds (25-150% wide): the test can fail."""
    rng = np.random.default_rng(1)
    xs = rng.uniform(0.101, 0.125, 1000)
    est = quantile(Decimal("0.5"), to_seconds(bucketed_ns(xs, DOC_NS)), [Decimal(b) / 10**9 for b in DOC_NS])
    assert est is not None and (est.lower, est.upper) == (Decimal("0.1"), Decimal("0.15"))
    assert est.relative_error == Fraction(1, 2)
    assert abs(float(est.value) - rank_value(xs, 0.5)) > 0.02 * rank_value(xs, 0.5)


def test_quantile_follows_prometheus_histogram_quantile():
    inf = INF
    b = [(Decimal("0.1"), 50), (Decimal("0.5"), 40), (Decimal(1), 10), (inf, 0)]
    lay = [Decimal("0.1"), Decimal("0.5"), Decimal(1)]
    assert quantile(Decimal("0.5"), b, lay).value == Decimal("0.1")  # rank 50: the first bucket's top
    assert quantile(Decimal("0.25"), b, lay).value == Decimal("0.05")  # linear from 0
    assert quantile(Decimal("0.95"), b, lay).value == Decimal("0.75")
    assert quantile(Decimal("1"), b, lay).value == Decimal(1)
    over = quantile(Decimal("0.99"), [(Decimal(1), 1), (inf, 99)], [Decimal(1)])
    assert (over.value, over.lower, over.upper, over.relative_error) == (Decimal(1), Decimal(1), inf, None)
    assert quantile(Decimal("0.5"), [(Decimal(1), 0), (inf, 0)], [Decimal(1)]) is None
    assert quantile(Decimal("0.5"), {}, lay) is None
    # an empty bucket of the layout is the lower edge, as Prometheus reads le buckets
    assert quantile(Decimal("0.5"), {Decimal("0.5"): 10}, lay).value == Decimal("0.3")
    # no layout: the counts' own bounds (a Prometheus series' le labels)
    assert quantile(Decimal("0.5"), {Decimal("0.5"): 10}).value == Decimal("0.25")
    with pytest.raises(ValueError):
        quantile(Decimal("0.5"), {Decimal("0.5"): -1}, lay)


def test_counts_at_bounds_the_layout_lacks_fold_into_its_bucket():
    """A window whose layout is coarse (minutes stored before the fine layout) never gets a finer
    quantile than its coarsest minutes allow: a count at 0.124 is only known to lie in (0.1, 0.15]."""
    coarse = [Decimal(str(b)) for b in DOCUMENTED_BOUNDS]
    est = quantile(Decimal("0.5"), {Decimal("0.124"): 10, Decimal("0.15"): 10}, coarse)
    assert (est.lower, est.upper, est.value) == (Decimal("0.1"), Decimal("0.15"), Decimal("0.125"))
    assert est.relative_error == Fraction(1, 2)
    fine = quantile(Decimal("0.25"), {Decimal("0.124"): 10, Decimal("0.15"): 10}, sorted({*coarse, Decimal("0.122"), Decimal("0.124")}))
    assert (fine.lower, fine.upper) == (Decimal("0.122"), Decimal("0.124"))


# == the store: layouts registered, exactness kept =========================================================


def test_a_new_store_buckets_by_the_2_percent_layout_for_all_history(db_url):
    store = open_store(db_url)
    try:
        push(store, spec(), [obs(M0, 0.112), obs(M0, 0.11200001), obs(M0, 0.0), obs(M0, 0.333, 3), obs(M0, 0.3331), obs(M0, 3600),
                             obs(M0, 3600.5), obs(M0, 1e-7)], T0)
        assert [lay.to_dict() for lay in store.layouts()] == [
            {"width": "2%", "low_ns": 1000, "high_ns": 3_600_000_000_000, "bounds": 1666, "since_minute": 0}]
        bounds = store.bounds()
        assert all(bounds[b] == 0 for b in FINE_NS) and all(bounds[b] == 0 for b in DOC_NS)
        assert bounds[seconds_to_ns(Decimal("0.333"))] == 0  # the spec's threshold, exact too
        assert store.width_at(0) == store.width_at(M0) == Decimal("0.02")
        assert stored_buckets(store, M0) == {
            1000: 2,  # 0 and 0.1 us: the first bucket (0, 1us]
            112_000_000: 1,  # at a bound: in the bucket whose bound it equals
            114_000_000: 1,  # a hair above: the next 2% bucket (0.112, 0.114]
            333_000_000: 3,  # at the threshold: good
            336_000_000: 1,  # a hair above the threshold: (0.333, 0.336], not good
            3_600_000_000_000: 1,  # 1 h exactly
            INF_NS: 1,  # above 1 h: the overflow bucket
        }
        from vigil.slo.evaluate import evaluate_slos
        from vigil.telemetry.source import EmbeddedSource

        (st_,) = evaluate_slos(spec().slos, EmbeddedSource(store), t(T0) + timedelta(minutes=1))
        assert (st_.window_counts.good, st_.window_counts.valid) == (7, 10)
    finally:
        store.close()


def test_bucket_width_null_keeps_the_documented_bounds_and_the_thresholds_only(db_url):
    store = open_store(db_url)
    try:
        push(store, spec(None), [obs(M0, 0.112), obs(M0, 0.3331)], T0)
        assert store.layouts() == [] and store.width_at(M0) is None
        assert sorted(store.bounds()) == sorted(set(DOC_NS) | {333_000_000})
        assert stored_buckets(store, M0) == {150_000_000: 1, 400_000_000: 1}
    finally:
        store.close()


def _old_store(url: str) -> None:
    """A store as the vigil before this change left it: schema 0011, the documented bounds (and a
    threshold) only, and observations of minutes M0 .. M0+9 in those buckets."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            cfg = Config()
            cfg.set_main_option("script_location", str(REVISIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0011")
            conn.execute(sa.insert(schema.series), [{"id": 1, "metric": "http_request_duration_seconds",
                                                     "labels": json.dumps({"service": "api", "version": "v1"}, separators=(",", ":")),
                                                     "kind": "observation"}])
            conn.execute(sa.insert(schema.metric_kinds), [{"metric": "http_request_duration_seconds", "kind": "observation", "series": 1}])
            conn.execute(sa.update(schema.telemetry_totals).where(schema.telemetry_totals.c.name == "series").values(value=1))
            conn.execute(sa.insert(schema.bounds), [{"le": b, "since_minute": 0} for b in DOC_NS])
            conn.execute(sa.insert(schema.bounds), [{"le": 333_000_000, "since_minute": 0}])
            minutes = [{"series_id": 1, "minute": m, "le": 150_000_000, "count": 100} for m in range(M0, M0 + 10)]
            conn.execute(sa.insert(schema.obs_minute), minutes)
            conn.execute(sa.insert(schema.obs_hour), [{"series_id": 1, "hour": M0 // 60, "le": 150_000_000, "count": 1000}])
            conn.commit()
    finally:
        engine.dispose()


def test_an_existing_store_keeps_its_coarse_history_and_buckets_new_minutes_at_2_percent(db_url):
    """Migrated to 0012, the store holds no layout; the first push registers the 2% layout from one
    past the last minute observed. Nothing stored before is rewritten; a backfill of older minutes
    is bucketed finely but those minutes' layout stays coarse."""
    _old_store(db_url)
    store = open_store(db_url, mode="write")  # migrated to head
    try:
        with store.engine.connect() as conn:
            before = sorted(tuple(r) for r in conn.execute(sa.select(schema.obs_minute)))
        assert store.layouts() == [] and len(before) == 10
        push(store, spec(), [obs(M0 + 12, 0.112), obs(M0 + 3, 0.112)], t(T0) + timedelta(minutes=15))
        (lay,) = store.layouts()
        assert lay.width == Decimal("0.02") and lay.since_minute == M0 + 10
        bounds = store.bounds()
        assert all(bounds[b] == 0 for b in DOC_NS) and bounds[333_000_000] == 0  # exact for all history, as before
        assert all(bounds[b] == M0 + 10 for b in FINE_NS if b not in DOC_NS and b != 333_000_000)
        with store.engine.connect() as conn:
            after = sorted(tuple(r) for r in conn.execute(sa.select(schema.obs_minute)))
        assert [r for r in after if r in before] == before  # history untouched
        assert stored_buckets(store, M0 + 12) == {112_000_000: 1}
        assert stored_buckets(store, M0 + 3) == {150_000_000: 100, 112_000_000: 1}  # backfill: fine row next to coarse
        assert store.width_at(M0 + 9) is None and store.width_at(M0 + 10) == Decimal("0.02")
        coarse, fine = layout_at(bounds, M0 + 3, below=INF_NS), layout_at(bounds, M0 + 10, below=INF_NS)
        assert 112_000_000 not in coarse and set(coarse) == set(DOC_NS) | {333_000_000}
        assert set(fine) == set(DOC_NS) | set(FINE_NS) | {333_000_000}
        # a quantile of a window starting in the coarse minutes is only as fine as those minutes
        from vigil.dashboards.series import histogram_quantile
        from vigil.selector import parse_selector
        from vigil.telemetry.source import EmbeddedSource

        got = dict(EmbeddedSource(store).observation_buckets(parse_selector("http_request_duration_seconds"), M0 + 3, M0 + 4))
        assert got == {112_000_000: 1, 150_000_000: 100}
        assert histogram_quantile(Decimal("0.005"), got, coarse) == Decimal("0.1") + Decimal("0.05") * Decimal("0.505") / 101
    finally:
        store.close()


def test_a_store_keeps_the_finest_width_it_was_given(db_url):
    store = open_store(db_url)
    try:
        push(store, spec(), [obs(M0, 0.2)], T0)
        n = len(store.bounds())
        push(store, spec("5%"), [obs(M0 + 1, 0.2)], T0)  # coarser: the store's 2% stays, nothing added
        push(store, spec(None), [obs(M0 + 2, 0.1125)], T0)  # none: the pusher still buckets by the store's bounds
        assert len(store.bounds()) == n and [lay.width for lay in store.layouts()] == [Decimal("0.02")]
        assert stored_buckets(store, M0 + 2) == {114_000_000: 1}  # (0.112, 0.114] at 2%
        push(store, spec("1%"), [obs(M0 + 3, 0.1125)], t(T0) + timedelta(minutes=4))  # finer: registered from M0+3
        lays = {lay.width: lay.since_minute for lay in store.layouts()}
        assert lays == {Decimal("0.02"): 0, Decimal("0.01"): M0 + 3}
        assert store.width_at(M0 + 2) == Decimal("0.02") and store.width_at(M0 + 3) == Decimal("0.01")
        assert stored_buckets(store, M0 + 3) == {113_000_000: 1}  # (0.112, 0.113] at 1%
        layout = [Fraction(b, 10**9) for b in layout_at(store.bounds(), M0 + 3, below=INF_NS)]
        assert max_relative_width(layout, Fraction(1, 10**6), Fraction(3600)) <= Fraction(1, 100)
    finally:
        store.close()


def test_a_layout_registered_while_a_batch_is_in_flight_rebuckets_the_batch(db_url):
    """Process A (bucket_width: null) checked a batch against the coarse bounds; process B registers
    the 2% layout before A commits. A's write sees the bounds changed and buckets again, so no coarse
    minute is stored after the layout's first minute."""
    a_store, b_store = open_store(db_url), open_store(db_url)
    try:
        a = Ingestor(spec(None), a_store)
        s = a.session(t(T0))
        s.feed([(1, json.dumps(obs(M0, 0.112, 7)))])
        assert 112_000_000 not in s.ctx.bounds_ns
        Ingestor(spec(), b_store).context(t(T0))  # registers the layout (nothing observed yet: since 0)
        s.finish()
        assert stored_buckets(a_store, M0) == {112_000_000: 7}
        assert [lay.since_minute for lay in a_store.layouts()] == [0]
    finally:
        a_store.close()
        b_store.close()


# == dashboards and alerts read quantiles from the same buckets =============================================


def _raw_traffic(store, sp, minutes: range, seed: int = 7) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = {m: np.round(rng.lognormal(math.log(0.12), 0.5, 300), 6) for m in minutes}
    push(store, sp, [obs(m, float(x)) for m, xs in raw.items() for x in xs], t(T0) + timedelta(minutes=max(minutes) + 1 - M0))
    return raw


def test_dashboard_quantiles_are_within_2_percent_of_the_raw_values(tmp_path):
    from vigil.dashboards.series import make_grid, query_values
    from vigil.dashboards.spec import PanelQuery
    from vigil.telemetry.source import EmbeddedSource

    for width, within in (("default", True), (None, False)):
        store = open_store(f"sqlite:///{tmp_path / f'{width}.db'}")
        raw = _raw_traffic(store, spec(width), range(M0, M0 + 5))
        grid = make_grid(M0, M0 + 5, 1)
        errors = []
        for q in ("0.5", "0.95", "0.99"):
            pq = PanelQuery.model_validate({"label": "p", "quantile": {"metric": "http_request_duration_seconds", "q": q}})
            for m, v in zip(range(M0, M0 + 5), query_values(EmbeddedSource(store), pq, grid)):
                true = rank_value(raw[m], float(q))
                errors.append(abs(float(v) - true) / true)
        store.close()
        assert (max(errors) <= 0.02) == within, (width, max(errors))


def test_dashboard_steps_before_the_layout_are_read_in_their_coarse_buckets(tmp_path):
    """The steps of a chart before the store's 2% layout are in the documented buckets (folded), the
    ones after are fine: each estimate lies in the bucket its step's data allows."""
    from vigil.dashboards.series import histogram_quantile, make_grid, query_values
    from vigil.dashboards.spec import PanelQuery
    from vigil.telemetry.source import EmbeddedSource

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        raw = _raw_traffic(store, spec(None), range(M0, M0 + 3))
        raw.update(_raw_traffic(store, spec(), range(M0 + 3, M0 + 6), seed=8))
        assert [lay.since_minute for lay in store.layouts()] == [M0 + 3]
        push(store, spec(), [obs(M0 + 1, 0.1131, 40)], t(T0) + timedelta(minutes=7))  # a late backfill: fine buckets in a coarse minute
        pq = PanelQuery.model_validate({"label": "p95", "quantile": {"metric": "http_request_duration_seconds", "q": "0.95"}})
        vals = query_values(EmbeddedSource(store), pq, make_grid(M0, M0 + 6, 1))
        src = EmbeddedSource(store)
        from vigil.selector import parse_selector

        for m, v in zip(range(M0, M0 + 6), vals):
            true = rank_value(raw[m], 0.95)
            got = dict(src.observation_buckets(parse_selector("http_request_duration_seconds"), m, m + 1))
            if m < M0 + 3:
                coarse = layout_at(store.bounds(), m, below=INF_NS)
                assert set(coarse) == set(DOC_NS) | {333_000_000}
                assert v == histogram_quantile(Decimal("0.95"), got, coarse)
                if m == M0 + 1:
                    assert any(le not in coarse for le in got)  # the backfill's fine counts, folded
            else:
                assert abs(float(v) - true) <= 0.02 * true
    finally:
        store.close()


def test_the_alert_engine_and_the_dashboards_share_one_quantile(tmp_path):
    from vigil.alerting.rules import histogram_quantile as alert_quantile
    from vigil.dashboards.series import histogram_quantile as dash_quantile

    rng = np.random.default_rng(3)
    counts = bucketed_ns(rng.lognormal(math.log(0.2), 0.7, 2000), sorted(set(FINE_NS) | set(DOC_NS)))
    layout = sorted(set(FINE_NS) | set(DOC_NS))
    for q in ("0.5", "0.95", "0.99", "1"):
        every = dict.fromkeys(layout, 0) | counts
        dec = [(INF if le >= INF_NS else Decimal(le) / 10**9, n) for le, n in sorted(every.items())]
        assert alert_quantile(Decimal(q), dec) == dash_quantile(Decimal(q), counts, layout)


# == what the store costs ===============================================================================


def test_rows_per_series_minute_grow_with_the_distinct_buckets_only(tmp_path):
    """The growth is distinct buckets touched, never observations: 1,000 identical values in a
    minute are one row at any width; lognormal traffic touches more 2% buckets than documented ones."""
    counts = {}
    for width in ("default", None):
        store = open_store(f"sqlite:///{tmp_path / f'{width}.db'}")
        push(store, spec(width), [obs(M0, 0.112, 1000)], T0)
        assert len(stored_buckets(store, M0)) == 1
        rng = np.random.default_rng(5)
        push(store, spec(width), [obs(M0 + 1, float(x)) for x in np.round(rng.lognormal(math.log(0.12), 0.35, 1000), 6)], T0)
        counts[width] = len(stored_buckets(store, M0 + 1))
        store.close()
    assert counts[None] <= len(DOC_NS) + 1 < counts["default"] <= len(FINE_NS) + 1

