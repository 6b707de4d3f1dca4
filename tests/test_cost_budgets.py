"""Budgets, forecasts and anomalies (issue 13): the pure math (property tests: no NaN on flat or
empty series, MAD = 0 handled), budgets over imported months, the alert events a breach becomes
(written before they are pushed, pushed once) and the alerting engine's event rule firing on them.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import t
from vigil.finops.anomaly import Params, contributors, modified_z, naive_scores, score_series
from vigil.finops.budgets import anomalies_of, breaches_of, budget_statuses, detect_anomalies, evaluate_budget, record_alerts
from vigil.finops.forecast import forecast_month, weekday_factors
from vigil.finops.importer import import_files
from vigil.finops.spec import Budget, CostsSpec, Threshold
from vigil.simulate.costs import Spike, items, write_csv
from vigil.spec import parse_spec

D = Decimal

# -- forecast -------------------------------------------------------------------------------------


def test_flat_month_forecasts_the_daily_cost_times_the_days():
    days = {date(2026, 11, 1) + timedelta(days=i): D("10") for i in range(10)}
    fc = forecast_month(days, date(2026, 11, 1), date(2026, 11, 10))
    assert fc.actual == 100 and fc.forecast == 300 and fc.days_left == 20


def test_a_weekly_pattern_is_forecast_exactly():
    pattern = [D(10), D(10), D(10), D(10), D(10), D(4), D(4)]  # weekends cheaper
    start = date(2026, 10, 5)  # a Monday, 4 weeks before November
    days = {start + timedelta(days=i): pattern[(start + timedelta(days=i)).weekday()] for i in range(27 + 14)}
    as_of = date(2026, 11, 14)
    fc = forecast_month(days, date(2026, 11, 1), as_of)
    expected = sum(pattern[(date(2026, 11, 1) + timedelta(days=i)).weekday()] for i in range(30))
    assert fc.forecast is not None
    assert abs(fc.forecast - expected) < D("0.000001")
    # a flat mean would forecast differently: the seasonality matters
    mean = sum(pattern) / 7
    assert abs(fc.actual + mean * fc.days_left - expected) > 1


def test_no_observation_is_no_forecast_not_zero():
    fc = forecast_month({}, date(2026, 11, 1), None)
    assert fc.forecast is None and fc.actual == 0
    st_ = evaluate_budget(Budget(name="b", amount=D(10)), fc)
    assert st_.state == "no_data" and not any(x.breached for x in st_.thresholds)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.decimals(min_value=-50, max_value=5000, places=2, allow_nan=False, allow_infinity=False), min_size=0, max_size=60),
       st.integers(min_value=0, max_value=29))
def test_forecast_is_finite_and_at_least_the_actual_for_nonnegative_costs(values, day_index):
    start = date(2026, 10, 3)
    days = {start + timedelta(days=i): v for i, v in enumerate(values)}
    as_of = date(2026, 11, 1) + timedelta(days=day_index)
    fc = forecast_month(days, date(2026, 11, 1), as_of)
    if fc.forecast is not None:
        assert fc.forecast.is_finite()
        if all(v >= 0 for v in values):
            assert fc.forecast >= fc.actual
    assert all(f.is_finite() and f > 0 for f in weekday_factors(days, as_of))


# -- budgets --------------------------------------------------------------------------------------


def test_thresholds_and_the_capped_overspend_while_frozen():
    b = Budget(name="api", amount=D(1000), thresholds=[Threshold(actual=D("0.8")), Threshold(forecast=D(1))])
    days = {date(2026, 11, 1) + timedelta(days=i): D(40) for i in range(21)}  # 840 so far, 1200 forecast
    fc = forecast_month(days, date(2026, 11, 1), date(2026, 11, 21))
    s = evaluate_budget(b, fc)
    assert [x.breached for x in s.thresholds] == [True, True] and s.state == "breached"
    frozen = evaluate_budget(b, fc, frozen=True, overspend=D("0.25"), freeze_reasons=["frozen by budget-exhausted"])
    # limits raised by 25%: 800 -> 1000 (840 is under), 1000 -> 1250 (1200 is under)
    assert [x.breached for x in frozen.thresholds] == [False, False] and frozen.state == "ok"
    capped = evaluate_budget(b, fc, frozen=True, overspend=D("0.1"))
    assert [x.breached for x in capped.thresholds] == [False, True], "past the cap the breach fires"


# -- anomaly math -----------------------------------------------------------------------------------

P = Params(window=28, min_history=14, z=3.5, min_impact=10, min_percent=0.2)


def test_flat_series_has_no_anomaly_and_no_nan():
    scores = score_series([100.0] * 60, P)
    assert scores and not any(s.anomalous for s in scores)
    assert all(not math.isnan(s.z) for s in scores)


def test_a_spike_on_a_flat_series_is_infinitely_far_when_mad_is_zero():
    x = [100.0] * 40
    x[30] = 300.0
    s = score_series(x, P, start=30)[0]
    assert s.index == 30 and math.isinf(s.z) and s.anomalous and s.impact == pytest.approx(200)
    assert modified_z(5.0, [0.0, 0.0, 0.0]) == math.inf and modified_z(0.0, [0.0, 0.0]) == 0.0


def test_floors_hold_back_small_rises():
    x = [1.0] * 40
    x[30] = 5.0  # +400% but +4 of currency: under the absolute floor
    assert not score_series(x, P, start=30)[0].anomalous
    y = [1000.0 + (i % 3) for i in range(40)]
    y[30] = 1060.0  # +60, far in z, but 6%: under the percentage floor
    s = score_series(y, P, start=30)[0]
    assert s.z > 3.5 and not s.anomalous


def test_weekly_seasonality_is_not_an_anomaly_but_a_spike_on_a_weekday_is():
    pattern = [100, 104, 103, 101, 98, 60, 55]
    x = [float(pattern[i % 7]) + (i * 7 % 5) * 0.5 for i in range(70)]
    assert not any(s.anomalous for s in score_series(x, P)), "Mondays after a weekend are not anomalies"
    x[60] *= 1.8
    flagged = [s.index for s in score_series(x, P) if s.anomalous]
    assert flagged == [60]
    # the naive baseline (mean + 3 sd of the window, weekends included) misses what the weekly model sees
    y = list(x)
    y[60] = pattern[60 % 7] * 1.35 + 0.0
    assert [s.index for s in score_series(y, P) if s.anomalous] == [60]
    assert 60 not in [s.index for s in naive_scores(y, P) if s.anomalous]


def test_drops_never_alarm():
    x = [100.0] * 40
    x[30] = 0.0
    assert not score_series(x, P, start=30)[0].anomalous


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=-1000, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=0, max_size=80))
def test_scores_are_never_nan(values):
    for s in score_series(values, P) + naive_scores(values, P):
        assert not math.isnan(s.z) and not math.isnan(s.expected) and not math.isnan(s.impact)
        d = s.to_dict()
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in d.values())


def test_nan_input_is_refused():
    with pytest.raises(ValueError):
        score_series([1.0, float("nan")], P)


def test_contributors_rank_what_rose():
    before = [{"service_name": "RDS", "region": "eu-west-1", "usage_type": "ACU", "effective": D(20)} for _ in range(7)]
    before += [{"service_name": "Lambda", "region": "eu-west-1", "usage_type": "GB-s", "effective": D(4)} for _ in range(7)]
    day = [{"service_name": "RDS", "region": "eu-west-1", "usage_type": "ACU", "effective": D(65)},
           {"service_name": "Lambda", "region": "eu-west-1", "usage_type": "GB-s", "effective": D(5)}]
    cs = contributors(day, before, 7)
    assert [(c.service_name, c.impact) for c in cs] == [("RDS", D(45)), ("Lambda", D(1))]


# -- over the store ---------------------------------------------------------------------------------

SPEC = """\
version: 1
services: {api: {}, checkout: {}, search: {}, pages: {}}
costs:
  budgets:
    - {name: api-prod, env: prod, service: api, amount: 900}
    - {name: pages-prod, env: prod, service: pages, amount: 100}
alerts:
  - name: cost-budget-pages
    service: pages
    event: {event: cost_budget, match: {service: pages}, firing_for: 1d}
"""


@pytest.fixture
def loaded_months(store, tmp_path):
    p = tmp_path / "costs.csv"
    spikes = [Spike(date(2026, 11, 12), "prod", "api", 3.0), Spike(date(2026, 10, 20), "prod", "pages", 2.5)]
    with open(p, "w", newline="") as f:
        write_csv(f, "focus", items(date(2026, 9, 1), 80, seed=7, spikes=spikes))
    spec = parse_spec(SPEC)
    import_files(store, [p], spec.costs, at=t("2026-11-20T12:00:00Z"))
    return spec


def test_anomalies_in_the_sample_months_are_the_injected_spikes(store, loaded_months):
    findings, judged = detect_anomalies(store, loaded_months.costs, date(2026, 10, 1), date(2026, 11, 19))
    assert judged >= 10
    assert [(f.day, f.env, f.service) for f in findings] == [(date(2026, 10, 20), "prod", "pages"), (date(2026, 11, 12), "prod", "api")]
    api = findings[1]
    assert api.contributors[0].usage_type == "EUW1-Aurora:ServerlessV2Usage"  # the largest rise first
    assert api.score.impact > 40


def test_budgets_over_the_store_and_the_breach_event_fires_an_alert_once(store, loaded_months, cli, tmp_path):
    statuses = budget_statuses(store, loaded_months.costs, date(2026, 11, 1), as_of=date(2026, 11, 19))
    by = {s.budget.name: s for s in statuses}
    assert by["pages-prod"].state == "breached" and by["api-prod"].state == "ok"
    assert by["pages-prod"].forecast.as_of == date(2026, 11, 19)
    pending = breaches_of(statuses)
    assert {p.threshold for p in pending} == {"actual_80", "actual_100", "forecast_100"}
    at = t("2026-11-20T12:00:00Z")
    first = record_alerts(store, loaded_months, pending, at)
    assert first == {"new": 3, "events_pushed": 3}
    again = record_alerts(store, loaded_months, pending, at)
    assert again == {"new": 0, "events_pushed": 0}, "a breach is recorded and pushed once"
    # the alerting engine's event rule fires on the events, through its own evaluation
    from vigil.alerting.evaluate import MemoryState
    from vigil.telemetry.sources import open_source

    ev = MemoryState({}).evaluate(list(loaded_months.alerts), [], open_source(loaded_months.telemetry, store), t("2026-11-20T12:01:00Z"))
    firing = [i for i in ev.current if i.state == "firing"]
    assert [i.alert().labels["alertname"] for i in firing] == ["cost-budget-pages"]
    assert firing[0].alert().value == 3  # three thresholds, three events, each counted once


def test_a_crash_between_the_outbox_and_the_push_replays_once(store, loaded_months, monkeypatch):
    from vigil.finops import budgets as mod

    statuses = budget_statuses(store, loaded_months.costs, date(2026, 11, 1), as_of=date(2026, 11, 19))
    pending = breaches_of(statuses)
    at = t("2026-11-20T12:00:00Z")
    real = mod._push_event
    calls = {"n": 0}

    def flaky(*a, **kw):
        calls["n"] += 1
        real(*a, **kw)  # the event is stored...
        if calls["n"] == 2:
            raise RuntimeError("killed before the breach was marked sent")

    monkeypatch.setattr(mod, "_push_event", flaky)
    with pytest.raises(RuntimeError):
        record_alerts(store, loaded_months, pending, at)
    monkeypatch.setattr(mod, "_push_event", real)
    out = record_alerts(store, loaded_months, pending, at)
    assert out == {"new": 0, "events_pushed": 2}  # the second (pushed, unmarked) and the third
    from vigil.alerting.spec import EVENT_METRIC  # noqa: F401 - the metric name the events use
    from vigil.selector import parse_selector
    from vigil.telemetry.sources import open_source
    from vigil.telemetry.sources.protocol import CounterQuery

    src = open_source(loaded_months.telemetry, store)
    end = int(at.timestamp()) // 60 + 1
    (n,) = src.counter_sums(CounterQuery(parse_selector('vigil_event_total{event="cost_budget"}')), [end - 60], end)
    assert n == 3, "the replayed push counted an event twice"


def test_anomaly_events_are_recorded_once(store, loaded_months):
    findings, _ = detect_anomalies(store, loaded_months.costs, date(2026, 10, 1), date(2026, 11, 19))
    at = t("2026-11-20T12:00:00Z")
    assert record_alerts(store, loaded_months, anomalies_of(findings), at) == {"new": 2, "events_pushed": 2}
    assert record_alerts(store, loaded_months, anomalies_of(findings), at) == {"new": 0, "events_pushed": 0}


def test_cli_budgets_and_anomalies(cli, tmp_path):
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    p = tmp_path / "c.csv"
    r = cli("simulate", "--costs", "focus", "--from", "2026-09-01", "--to", "2026-11-20", "--out", str(p), "--cost-spike", "2026-10-20:prod:pages:2.5")
    assert r.code == 0
    assert cli("cost", "import", str(p), "--spec", str(spec)).code == 0
    r = cli("cost", "budgets", "--spec", str(spec), "--json", now="2026-11-20T10:00:00Z")
    assert r.code == 1
    d = r.json()
    assert d["month"] == "2026-11" and {b["budget"]: b["state"] for b in d["budgets"]} == {"api-prod": "ok", "pages-prod": "breached"}
    r = cli("cost", "budgets", "--spec", str(spec), "--month", "2026-09", "--json", now="2026-11-20T10:00:00Z")
    sep = {b["budget"]: b for b in r.json()["budgets"]}
    assert sep["api-prod"]["days_left"] == 0 and sep["api-prod"]["forecast"] == sep["api-prod"]["actual"]
    r = cli("cost", "budgets", "--spec", str(spec), "--record", "--at", "now-1d", now="2026-11-20T10:00:00Z")
    assert r.code == 2 and "--record evaluates now" in r.err
    r = cli("cost", "anomalies", "--spec", str(spec), "--from", "2026-10-01", "--json")
    assert r.code == 1 and [(a["day"], a["service"]) for a in r.json()["anomalies"]] == [("2026-10-20", "pages")]
    r = cli("cost", "anomalies", "--spec", str(spec), "--from", "2026-10-21")
    assert r.code == 0
    r = cli("cost", "budgets", "--spec", str(spec), "--month", "2026-13")
    assert r.code == 2


def test_costs_spec_errors_name_the_path():
    from vigil.errors import SpecError

    with pytest.raises(SpecError) as ei:
        parse_spec("version: 1\nservices: {api: {}}\ncosts:\n  budgets:\n    - {name: x, env: qa, service: web, amount: 10}\n")
    text = str(ei.value)
    assert "costs.budgets[0].env: unknown environment 'qa'" in text and "costs.budgets[0].service: unknown service 'web'" in text
    with pytest.raises(SpecError) as ei:
        parse_spec("version: 1\nservices: {api: {}}\ncosts:\n  policies: {log_retention: {prod: 45}}\n")
    assert "45 days is not a value CloudWatch Logs accepts" in str(ei.value)
    with pytest.raises(SpecError):
        parse_spec("version: 1\nservices: {api: {}}\ncosts:\n  budgets:\n    - {name: x, amount: 10, thresholds: [{actual: 80%, forecast: 90%}]}\n")
    assert CostsSpec().anomalies.z == D("3.5")
