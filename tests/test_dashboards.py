"""Dashboards: the spec section's errors, the time grid, and every panel aggregation over an
in-memory source with numbers worked out by hand; the example platform's panels over the store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vigil.dashboards.series import choose_step, histogram_quantile, make_grid, panel_series, query_values, range_grid
from vigil.dashboards.spec import Dashboard, Panel, PanelQuery
from vigil.errors import SpecError
from vigil.spec import parse_spec
from vigil.telemetry.sources.memory import MemorySource

BASE = """
version: 1
services: {api: {}}
dashboards:
  - name: api
    title: API
    service: SERVICE
    panels:
      - title: Latency
        unit: seconds
        queries:
          - {label: p95, quantile: {metric: 'lat{service="api"}', q: 0.95}}
"""


def test_example_platform_has_the_plans_three_dashboards(example_loaded):
    ds = {d.name: d for d in example_loaded.spec.dashboards}
    assert set(ds) == {"api", "jobs", "search"}
    titles = {d: [p.title for p in ds[d].panels] for d in ds}
    assert titles["api"] == ["API latency", "API error rate", "Lambda throttles", "WAF blocks"]
    assert titles["jobs"] == ["Indexer lag", "DSAR queue depth", "Email send failures"]
    assert titles["search"] == ["Search hit ratio", "Search CPU", "Search memory (heap)", "Search request rate"]
    kinds = {q.label: q.kind for p in ds["api"].panels for q in p.queries}
    assert kinds["p50"] == kinds["p95"] == "quantile" and kinds["5xx share"] == "ratio" and kinds["throttles/s"] == "rate"


@pytest.fixture
def example_loaded():
    from conftest import EXAMPLE_SPEC
    from vigil.spec import load_spec

    return load_spec(EXAMPLE_SPEC)


def test_spec_errors_name_the_place():
    parse_spec(BASE.replace("SERVICE", "api"))
    with pytest.raises(SpecError) as e:
        parse_spec(BASE.replace("SERVICE", "apx"))
    assert "dashboards[0].service" in str(e.value) and "unknown service 'apx'" in str(e.value)
    bad = BASE.replace("SERVICE", "api").replace("quantile: {metric: 'lat{service=\"api\"}', q: 0.95}", "rate: x, max: y")
    with pytest.raises(SpecError) as e:
        parse_spec(bad)
    assert "exactly one of rate, ratio, quantile, last, max" in str(e.value)
    with pytest.raises(SpecError) as e:
        parse_spec(BASE.replace("SERVICE", "api").replace("q: 0.95", "q: 95"))
    assert "q must be above 0 and at most 1" in str(e.value)
    dup = BASE.replace("SERVICE", "api") + BASE.replace("SERVICE", "api").split("dashboards:\n")[1]
    with pytest.raises(SpecError) as e:
        parse_spec(dup)
    assert "duplicate dashboard name 'api'" in str(e.value)
    with pytest.raises(SpecError) as e:
        parse_spec(BASE.replace("SERVICE", "api").replace("name: api\n", "name: API Board\n"))
    assert "lower-case" in str(e.value)


def test_grid_steps_are_aligned_and_end_at_the_end():
    g = make_grid(1000, 1130, 60)
    assert g.bounds == (960, 1020, 1080, 1130) and g.points == (1020, 1080, 1130)
    assert range_grid("30d", 29_000_003).step == 360 and range_grid("1h", 100_000).bounds[0] == 100_000 - 60
    assert choose_step(60) == 1 and choose_step(43200) == 180 and choose_step(43200, 120) == 360
    with pytest.raises(ValueError):
        make_grid(10, 10)


def _src() -> MemorySource:
    s = MemorySource()
    for m in range(0, 120):
        s.add_counter("req", {"code": "200"}, m, 60)  # 1/s
        if m >= 60:
            s.add_counter("req", {"code": "500"}, m, 6)  # 0.1/s in the second hour
        s.set_gauge("depth", {"q": "a"}, m, float(m))
        s.set_gauge("depth", {"q": "b"}, m, 200.0 if m == 30 else 0.0)
    for m in range(0, 60):
        s.add_observation("lat", {}, m, 0.1, 90)
        s.add_observation("lat", {}, m, 0.5, 10)
    return s


def _q(**kw) -> PanelQuery:
    return PanelQuery.model_validate({"label": "x", **kw})


def test_each_aggregation_by_hand():
    s = _src()
    g = make_grid(0, 120, 60)
    assert query_values(s, _q(rate="req"), g) == [Decimal(1), Decimal(66) / 60]
    assert query_values(s, _q(rate='req{code="500"}'), g) == [None, Decimal("0.1")]  # before its first sample: a gap
    ratio = query_values(s, _q(ratio={"numerator": 'req{code="500"}', "denominator": "req"}), g)
    assert ratio == [Decimal(0), Decimal(6) / Decimal(66)]  # a ratio of sums
    assert query_values(s, _q(max="depth"), g) == [200.0, 119.0]
    assert query_values(s, _q(last="depth"), g) == [59.0, 119.0]
    # 100 observations a minute: 90% at 0.1 s, 10% at 0.5 s. p50 falls in the bucket (0.075, 0.1]:
    # rank 0.5 x 6000 = 3000 of 5400 -> 0.075 + 0.025 x 3000/5400; p95 in (0.4, 0.5]: 0.4 + 0.1 x 300/600
    p50, p95 = (query_values(s, _q(quantile={"metric": "lat", "q": q}), g)[0] for q in ("0.5", "0.95"))
    assert p50 == Decimal("0.075") + Decimal("0.025") * Decimal(3000) / Decimal(5400)
    assert p95 == Decimal("0.45")
    assert query_values(s, _q(quantile={"metric": "lat", "q": "0.95"}), g)[1] is None  # nothing observed: a gap, not 0
    # a gauge with no sample and a counter before its first sample are gaps
    assert query_values(s, _q(max="nothing"), g) == [None, None]
    assert query_values(s, _q(ratio={"numerator": "nothing", "denominator": "nothing"}), g) == [None, None]


def test_partial_last_step_rate_uses_its_own_length():
    s = _src()
    g = make_grid(0, 90, 60)  # steps [0, 60) and [60, 90)
    assert query_values(s, _q(rate='req'), g) == [Decimal(1), Decimal(30 * 66) / (30 * 60)]


def test_quantile_matches_prometheus_rules():
    ns = 10**9
    layout = [int(0.1 * ns), int(0.2 * ns), int(0.4 * ns)]
    assert histogram_quantile(Decimal("0.5"), {int(0.2 * ns): 10}, layout) == Decimal("0.15")  # lower edge 0.1: empty bucket counts
    assert histogram_quantile(Decimal("0.99"), {2**62: 5, int(0.1 * ns): 5}, layout) == Decimal("0.4")  # overflow: highest finite bound
    assert histogram_quantile(Decimal("0.5"), {}, layout) is None


def test_panel_series_shape():
    p = Panel.model_validate({"title": "Errors / s", "unit": "per_second", "queries": [{"label": "5xx", "rate": 'req{code="500"}'}],
                              "thresholds": [{"value": 0.5, "label": "limit"}]})
    out = panel_series(_src(), p, make_grid(0, 120, 60))
    assert out["slug"] == "errors-s" and out["unit"] == "per_second" and out["thresholds"] == [{"value": 0.5, "label": "limit"}]
    assert out["series"] == [{"label": "5xx", "kind": "rate", "points": [[60, None], [120, 0.1]]}]
    assert Dashboard.model_validate({"name": "a", "title": "A", "panels": [p.model_dump()]}).panel("errors-s").title == "Errors / s"
