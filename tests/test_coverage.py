"""Coverage: an SLO's window counts from no earlier than its first sample (or its `since:`), and
`no_data: allow | freeze` decides what an SLO without data does at the gate."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from helpers import push, spec_with, t

from vigil.clock import isoformat
from vigil.deploy.gate import decide
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import parse_spec
from vigil.telemetry.source import EmbeddedSource

API = """\
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli:
      ratio: {good: 'http_requests{service="api",code!~"5.."}', total: 'http_requests{service="api"}'}
"""

POLICY = """\
policy:
  freeze:
    - name: half-budget-by-mid-window
      when: {budget_consumed_over: 50%, window_elapsed_at_least: 50%}
    - name: budget-exhausted
      when: {budget_exhausted: true}
"""


def hourly(start: str, hours: int, ok: int, bad: int, service: str = "api") -> list[dict]:
    """One row per hour and code: ``ok`` good and ``bad`` failed requests each hour."""
    s = t(start)
    rows = []
    for h in range(hours):
        ts = isoformat(s + timedelta(hours=h))
        rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": service, "code": "200"}, "inc": ok})
        if bad:
            rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": service, "code": "503"}, "inc": bad})
    return rows


def evaluate(store, spec, at):
    return {s.slo.name: s for s in evaluate_slos(spec.slos, EmbeddedSource(store), t(at))}


# -- the window counts from the first sample ----------------------------------------------------


def test_a_new_rolling_slo_is_not_frozen_on_day_three(store):
    """3 days of data in a rolling 30d window at burn rate 2: 10% elapsed, 20% consumed. Before
    coverage the window was 100% elapsed, so 200% was consumed and both rules froze the service."""
    spec = spec_with(API, POLICY)
    push(store, spec, hourly("2026-11-20T00:00:00Z", 72, 998, 2), "2026-11-23T00:00:00Z")
    st = evaluate(store, spec, "2026-11-23T00:00:00Z")["api-availability"]
    assert st.burn_rate("window") == 2
    assert st.span.elapsed_fraction == D("0.1")
    assert st.consumed == D("0.2")
    assert st.allowed_bad == D("0.001") * 72 * 1000 / D("0.1")  # projected over the whole window
    cov = st.to_dict()["coverage"]
    assert cov == {
        "since": "2026-11-20T00:00:00Z",
        "from": "first_sample",
        "fraction": 0.1,
        "complete": False,
        "first_sample": "2026-11-20T00:00:00Z",
    }
    assert st.to_dict()["window"]["elapsed_fraction"] == 0.1
    d = decide(spec.policy, [st], "api", t("2026-11-23T00:00:00Z"))
    assert d.allowed and d.freezes == []
    (inp,) = d.inputs
    assert inp.window_elapsed == 0.1 and inp.coverage["from"] == "first_sample"


def test_a_new_slo_that_really_burns_its_budget_still_freezes(store):
    """Coverage does not hide a real burn: 3 days at burn rate 12 consume 120% of the 30d budget."""
    spec = spec_with(API, POLICY)
    push(store, spec, hourly("2026-11-20T00:00:00Z", 72, 988, 12), "2026-11-23T00:00:00Z")
    st = evaluate(store, spec, "2026-11-23T00:00:00Z")["api-availability"]
    assert st.consumed == D("1.2")
    d = decide(spec.policy, [st], "api", t("2026-11-23T00:00:00Z"))
    assert not d.allowed
    (f,) = d.freezes
    assert f.rule_name == "budget-exhausted"
    assert f.message == (
        "frozen by budget-exhausted (budget exhausted): SLO api-availability of service api has consumed 120% of its"
        " budget with 10% of the window elapsed (counted from its first sample, 2026-11-20T00:00:00Z)"
    )


def test_calendar_window_counts_from_the_later_of_its_start_and_the_first_sample(store):
    spec = spec_with(API.replace("{rolling: 30d}", "{calendar: month, timezone: UTC}"), POLICY)
    push(store, spec, hourly("2026-11-10T00:00:00Z", 72, 999, 1), "2026-11-13T00:00:00Z")
    st = evaluate(store, spec, "2026-11-13T00:00:00Z")["api-availability"]
    assert st.span.elapsed_fraction == D(3) / D(30)
    assert st.to_dict()["coverage"]["since"] == "2026-11-10T00:00:00Z"
    # data from before the month's start: the whole month so far counts (12 of 30 days)
    push(store, spec, hourly("2026-10-25T00:00:00Z", 24, 999, 1), "2026-11-13T00:00:00Z")
    st = evaluate(store, spec, "2026-11-13T00:00:00Z")["api-availability"]
    assert st.span.elapsed_fraction == D(12) / D(30)
    cov = st.to_dict()["coverage"]
    assert (cov["since"], cov["from"], cov["complete"], cov["first_sample"]) == (
        "2026-11-01T00:00:00Z", "window", True, "2026-10-25T00:00:00Z"
    )


def test_since_in_the_spec_starts_the_window_and_nothing_before_it_counts(store):
    since = API.replace("    window:", "    since: 2026-11-20T00:00:00Z\n    window:")
    spec = spec_with(since, POLICY)
    # a broken week of instrumentation, then healthy traffic from the declared start
    push(store, spec, hourly("2026-11-10T00:00:00Z", 240, 0, 1000), "2026-11-20T00:00:00Z")
    push(store, spec, hourly("2026-11-20T00:00:00Z", 72, 1000, 0), "2026-11-23T00:00:00Z")
    st = evaluate(store, spec, "2026-11-23T00:00:00Z")["api-availability"]
    assert (st.window_counts.good, st.window_counts.valid) == (72_000, 72_000)
    assert st.burn_counts["3d"].valid == 72_000  # burn-rate windows do not reach before `since` either
    assert st.span.elapsed_fraction == D("0.1")
    cov = st.to_dict()["coverage"]
    assert (cov["since"], cov["from"], cov["first_sample"]) == ("2026-11-20T00:00:00Z", "since", "2026-11-10T00:00:00Z")
    assert decide(spec.policy, [st], "api", t("2026-11-23T00:00:00Z")).allowed


def test_since_must_be_a_fixed_rfc3339_time():
    from vigil.errors import SpecError

    for bad, words in (("now-3d", "fixed time"), ("2026-11-20", "no time zone"), ("'2026-11-20 10:00:00'", "no time zone"), ("yesterday", "cannot read time")):
        with pytest.raises(SpecError) as ei:
            spec_with(API.replace("    window:", f"    since: {bad}\n    window:"))
        (issue,) = ei.value.issues
        assert issue.path == "slos[0].since" and words in issue.message, issue
    s = spec_with(API.replace("    window:", "    since: 2026-11-20T02:00:00+02:00\n    window:"))
    assert isoformat(s.slos[0].since) == "2026-11-20T00:00:00Z"


FRESH = """\
  - name: search-freshness
    service: search
    objective: 99
    window: {rolling: 1d}
    sli:
      freshness: {metric: 'index_staleness_seconds{class="hot"}', threshold: 5m, slice: 1m, missing: bad}
"""


def test_freshness_counts_no_slice_before_the_first_sample_ever_seen(store):
    """A new indexer reporting for 2 hours, fresh throughout: 120 good slices. Before coverage
    the 1,320 minutes before its first sample counted as missing, so 92% of the slices were bad."""
    spec = spec_with(FRESH)
    rows = [
        {"ts": isoformat(t("2026-11-20T10:00:00Z") + timedelta(minutes=i)), "metric": "index_staleness_seconds",
         "labels": {"class": "hot"}, "set": 20}
        for i in range(120)
    ]
    push(store, spec, rows, "2026-11-20T12:00:00Z")
    st = evaluate(store, spec, "2026-11-20T12:00:00Z")["search-freshness"]
    assert (st.window_counts.good, st.window_counts.valid) == (120, 120)
    assert st.burn_counts["6h"].valid == 120 and st.burn_counts["1h"].valid == 60
    assert st.state == "ok" and st.consumed == 0
    # the reporter stalls: the missing slices after its first sample do count (missing: bad)
    st = evaluate(store, spec, "2026-11-20T13:00:00Z")["search-freshness"]
    assert (st.window_counts.good, st.window_counts.valid) == (120, 180)
    assert st.burn_counts["1h"].good == 0


def test_no_sample_ever_is_no_data_and_nothing_is_counted(store):
    spec = spec_with(API + FRESH, POLICY)
    sts = evaluate(store, spec, "2026-11-20T12:00:00Z")
    for st in sts.values():
        assert st.no_data and st.state == "no_data"
        assert st.to_dict()["coverage"] == {"since": None, "from": "none", "fraction": 0.0, "complete": False, "first_sample": None}
    assert any("no slice counts before the first sample" in w for w in sts["search-freshness"].warnings)


def test_the_first_samples_are_read_in_one_query_per_evaluation(store):
    """Every SLO's coverage comes from one read of the first minutes (an index seek per series),
    whatever the number of SLOs."""
    import sqlalchemy as sa

    slos = "".join(
        API.replace("api-availability", f"api-{i}").replace('service="api"', f'service="s{i % 3}"') for i in range(12)
    )
    spec = spec_with(slos)
    for i in range(3):
        push(store, spec, hourly(f"2026-11-2{i}T00:00:00Z", 2, 10, 1, service=f"s{i}"), "2026-11-23T00:00:00Z")
    seen: list[str] = []

    def count(conn, cursor, statement, *a):
        if "min(counter_minute.minute)" in statement.lower():
            seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        sts = evaluate(store, spec, "2026-11-23T00:00:00Z")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert len(seen) == 1
    assert [sts[f"api-{i}"].to_dict()["coverage"]["since"] for i in range(3)] == [
        "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"
    ]


def test_first_minute_per_kind_and_selector(store):
    spec = spec_with(API)
    push(
        store,
        spec,
        [
            {"ts": "2026-11-20T10:00:30Z", "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 1},
            {"ts": "2026-11-20T09:00:00Z", "metric": "http_requests", "labels": {"service": "web", "code": "200"}, "inc": 0},
            {"ts": "2026-11-20T08:00:00Z", "metric": "lat", "observe": 0.2},
            {"ts": "2026-11-20T07:00:00Z", "metric": "stale", "set": 3},
        ],
        "2026-11-20T11:00:00Z",
    )
    from vigil.telemetry.selector import parse_selector as p

    src = EmbeddedSource(store)
    minute = lambda s: int(t(s).timestamp()) // 60  # noqa: E731
    assert src.first_minute(p('http_requests{service="api"}'), "counter") == minute("2026-11-20T10:00:00Z")
    assert src.first_minute(p("http_requests"), "counter") == minute("2026-11-20T09:00:00Z")  # a zero increment is data
    assert src.first_minute(p("lat"), "observation") == minute("2026-11-20T08:00:00Z")
    assert src.first_minute(p("stale"), "gauge") == minute("2026-11-20T07:00:00Z")
    assert src.first_minute(p("stale"), "counter") is None
    assert src.first_minute(p('http_requests{service="nope"}'), "counter") is None
    assert src.first_minute(p("never_pushed"), "counter") is None


# -- policy.no_data -------------------------------------------------------------------------------

CHECKOUT = """\
  - name: checkout-success
    service: checkout
    objective: 99.5
    window: {rolling: 30d}
    sli:
      ratio: {good: 'checkout_attempts{outcome="success"}', total: checkout_attempts}
"""


def _no_data_spec(policy_nd: str | None = None, rule_nd: str | None = None, slo_nd: str | None = None, scope: str = "service"):
    slo = API if slo_nd is None else API.replace("    window:", f"    no_data: {slo_nd}\n    window:")
    rule = "    - name: budget-exhausted\n      when: {budget_exhausted: true}\n"
    if rule_nd is not None:
        rule += f"      no_data: {rule_nd}\n"
    if scope != "service":
        rule += f"      scope: {scope}\n"
    pol = "policy:\n  freeze:\n" + rule + (f"  no_data: {policy_nd}\n" if policy_nd else "")
    return spec_with(slo + CHECKOUT, pol)


@pytest.mark.parametrize(
    "policy_nd,rule_nd,slo_nd,frozen,by",
    [
        (None, None, None, False, None),  # default: allow, with the warning
        ("allow", None, None, False, None),
        ("freeze", None, None, True, "no data; policy.no_data: freeze"),
        (None, "freeze", None, True, "no data; no_data: freeze on the rule"),
        ("freeze", "allow", None, False, None),  # the rule wins over the policy
        (None, None, "freeze", True, "no data; no_data: freeze on SLO api-availability"),
        ("freeze", "freeze", "allow", False, None),  # the SLO wins over the rule and the policy
        ("allow", "allow", "freeze", True, "no data; no_data: freeze on SLO api-availability"),
    ],
)
def test_no_data_allow_or_freeze_slo_wins_over_rule_over_policy(store, policy_nd, rule_nd, slo_nd, frozen, by):
    spec = _no_data_spec(policy_nd, rule_nd, slo_nd)
    at = t("2026-11-23T00:00:00Z")
    d = decide(spec.policy, list(evaluate(store, spec, "2026-11-23T00:00:00Z").values()), "api", at)
    assert d.allowed is (not frozen)
    if frozen:
        (f,) = d.freezes
        assert f.no_data and f.condition == by and f.slo == "api-availability" and f.consumed is None
        assert "SLO api-availability of service api has no data in its window" in f.message
        assert any("has no data in its window" in r for r in d.reasons)
        fd = f.to_dict()
        assert fd["no_data"] is True and fd["budget_consumed"] is None and fd["coverage"]["from"] == "none"
        assert d.warnings == []
    else:
        assert d.freezes == []
        assert d.warnings == ["SLO api-availability has no data; it cannot freeze a deploy"]
    # the other service's SLO has no data too, but a service-scoped setting freezes only its own service
    other = decide(spec.policy, list(evaluate(store, spec, "2026-11-23T00:00:00Z").values()), "checkout", at)
    assert [f.slo for f in other.freezes] == (["checkout-success"] if policy_nd == "freeze" and rule_nd is None or rule_nd == "freeze" else [])


def test_no_data_freeze_on_a_global_rule_freezes_every_service(store):
    spec = _no_data_spec(rule_nd="freeze", scope="global")
    push(store, spec, hourly("2026-11-20T00:00:00Z", 72, 1000, 0), "2026-11-23T00:00:00Z")  # api has data, checkout none
    sts = list(evaluate(store, spec, "2026-11-23T00:00:00Z").values())
    d = decide(spec.policy, sts, "api", t("2026-11-23T00:00:00Z"))
    assert not d.allowed
    (f,) = d.freezes
    assert (f.slo, f.scope, f.rule_name, f.no_data) == ("checkout-success", "global", "budget-exhausted", True)
    assert ", scope global" in f.message


def test_data_in_the_window_is_not_no_data(store):
    spec = _no_data_spec(policy_nd="freeze")
    push(store, spec, hourly("2026-11-20T00:00:00Z", 72, 1000, 0), "2026-11-23T00:00:00Z")
    d = decide(spec.policy, list(evaluate(store, spec, "2026-11-23T00:00:00Z").values()), "api", t("2026-11-23T00:00:00Z"))
    assert d.allowed and d.freezes == [] and d.warnings == []
    # 31 days later the data has left the rolling window: no data again, frozen
    d = decide(spec.policy, list(evaluate(store, spec, "2026-12-24T00:00:00Z").values()), "api", t("2026-12-24T00:00:00Z"))
    assert not d.allowed and d.freezes[0].no_data


def test_no_data_is_validated():
    from vigil.errors import SpecError

    with pytest.raises(SpecError) as ei:
        parse_spec("version: 1\nservices: {api: {}}\npolicy: {no_data: block}\n")
    assert ei.value.issues[0].path == "policy.no_data" and "'allow' or 'freeze'" in ei.value.issues[0].message
