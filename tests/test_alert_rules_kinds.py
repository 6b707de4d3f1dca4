"""Each rule kind over the in-memory twin of the store: the numbers a rule computes (by hand), when
it holds, missing data, labels and templated annotations; and the ``alerts:`` section's errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from vigil.alerting.evaluate import MemoryState, read_rules
from vigil.errors import SpecError
from vigil.spec import parse_spec
from vigil.telemetry.sources.memory import MemorySource

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
M0 = int(T0.timestamp()) // 60

BASE = """\
version: 1
services: {api: {}, search: {}, db: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli: {ratio: {good: 'http_requests{service="api",code!~"5.."}', total: 'http_requests{service="api"}'}}
alerts:
"""


def spec(rules: str):
    return parse_spec(BASE + rules)


def reading(sp, src, minutes: int, rule: str | None = None):
    r = read_rules(list(sp.alerts), list(sp.slos), src, T0 + timedelta(minutes=minutes))
    assert not r.failed, r.failed
    name = rule or sp.alerts[0].name
    return r.by_rule[name]


# -- threshold --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aggregate,value",
    [("sum", Decimal(480)), ("rate", Decimal("1.6")), ("max", Decimal(3)), ("min", Decimal(1)), ("avg", Decimal("1.6")), ("last", Decimal(1))],
)
def test_threshold_over_a_counter(aggregate, value):
    sp = spec(f"""\
  - name: jobs
    service: api
    threshold: {{metric: 'jobs_done{{queue="email"}}', type: counter, aggregate: {aggregate}, over: 5m, op: '>=', value: {value}}}
""")
    src = MemorySource()
    for i, inc in enumerate([60, 120, 180, 60, 60]):  # minutes 0..4: 1, 2, 3, 1, 1 per second
        src.add_counter("jobs_done", {"queue": "email"}, M0 + i, inc)
    src.add_counter("jobs_done", {"queue": "sms"}, M0 + 2, 10_000)  # not selected
    (r,) = reading(sp, src, 5)
    assert r.value == value and r.holds is True
    assert r.labels == {"alertname": "jobs", "service": "api", "severity": "page"}


def test_minutes_before_a_counters_first_sample_are_not_zero():
    sp = spec("""\
  - name: jobs
    service: api
    threshold: {metric: jobs_done, type: counter, aggregate: min, over: 10m, op: '<', value: 1}
""")
    src = MemorySource()
    src.add_counter("jobs_done", {}, M0 + 7, 120)
    src.add_counter("jobs_done", {}, M0 + 8, 120)
    src.add_counter("jobs_done", {}, M0 + 9, 120)
    (r,) = reading(sp, src, 10)
    assert r.value == Decimal(2) and r.holds is False  # minutes 0..6 had no series yet


@pytest.mark.parametrize("aggregate,value", [("max", 5), ("min", 3), ("avg", 4), ("last", 3)])
def test_threshold_over_a_gauge_reads_each_minutes_highest_sample(aggregate, value):
    sp = spec(f"""\
  - name: backlog
    service: api
    threshold: {{metric: queue_depth, aggregate: {aggregate}, over: 3m, value: 2}}
""")
    src = MemorySource()
    for i, v in enumerate([1, 5, 3]):
        src.set_gauge("queue_depth", {"queue": "a"}, M0 + i, v)
    for i, v in enumerate([4, 2]):
        src.set_gauge("queue_depth", {"queue": "b"}, M0 + i, v)
    (r,) = reading(sp, src, 3)
    assert r.value == Decimal(value) and r.holds is True
    assert "queue_depth" in r.annotations["summary"] and str(value) in r.annotations["summary"]


def test_threshold_over_a_latency_quantile_is_histogram_quantile():
    sp = spec("""\
  - name: slow
    service: api
    threshold: {metric: 'lat{service="api"}', type: latency, quantile: 95%, over: 5m, value: 400ms}
""")
    src = MemorySource()
    src.add_observation("lat", {"service": "api"}, M0 + 1, 0.09, 90)
    src.add_observation("lat", {"service": "api"}, M0 + 2, 0.45, 10)
    (r,) = reading(sp, src, 5)
    assert r.value == Decimal("0.45") and r.holds is True  # 0.4 + 0.1 * (95 - 90) / 10
    assert r.annotations["summary"].endswith("is 0.45s (> 0.4s)")


def test_no_data_is_missing_and_the_missing_policy_decides():
    sp = spec("""\
  - name: backlog-ok
    service: api
    threshold: {metric: queue_depth, value: 10}
  - name: backlog-alert
    service: api
    threshold: {metric: queue_depth, value: 10}
    missing: alert
""")
    src = MemorySource()
    got = read_rules(list(sp.alerts), [], src, T0)
    assert [r.holds for r in got.by_rule["backlog-ok"]] == [None]
    st = MemoryState()
    st.step(got)
    assert {i.rule: i.state for i in st.instances.values()} == {"backlog-alert": "firing"}


# -- spike -------------------------------------------------------------------------------------------


def _spike_src(last_minutes: list[int]) -> MemorySource:
    src = MemorySource()
    for i in range(60):
        src.add_counter("http_requests", {"service": "api", "code": "500"}, M0 + i, 30)  # 0.5/s for an hour
    for j, inc in enumerate(last_minutes):
        src.add_counter("http_requests", {"service": "api", "code": "500"}, M0 + 60 + j, inc)
    return src


SPIKE = """\
  - name: spike
    service: api
    spike: {metric: 'http_requests{service="api",code=~"5.."}', factor: 5, baseline: 1h, over: 5m, floor: 1/s}
"""


def test_spike_against_its_median_and_the_floor():
    sp = spec(SPIKE)
    # 5 minutes at 3/s: the 5m rate is 3/s; the median of the last 60 5m-rates is 0.5/s
    (r,) = reading(sp, _spike_src([180] * 5), 65)
    assert r.value == Decimal(3) and r.extra["baseline"] == Decimal("0.5") and r.holds is True
    assert "0.5/s" in r.annotations["description"]
    # 2.4/s is below 5 x 0.5 = 2.5/s
    (r,) = reading(sp, _spike_src([144] * 5), 65)
    assert r.value == Decimal("2.4") and r.holds is False


def test_spike_floor_silences_a_quiet_series():
    sp = spec(SPIKE)
    src = MemorySource()
    for i in range(60):
        src.add_counter("http_requests", {"service": "api", "code": "500"}, M0 + i, 1)
    for j in range(5):
        src.add_counter("http_requests", {"service": "api", "code": "500"}, M0 + 60 + j, 30)  # 30x, but 0.5/s
    (r,) = reading(sp, src, 65)
    assert r.value == Decimal("0.5") and r.holds is False


def test_spike_with_no_series_is_missing():
    (r,) = reading(spec(SPIKE), MemorySource(), 65)
    assert r.holds is None and r.value is None


# -- absent and event ---------------------------------------------------------------------------------


def test_absent_fires_when_no_series_of_any_kind_reports():
    sp = spec("""\
  - name: search-down
    service: search
    absent: {metric: 'search_up{cluster="a"}', over: 5m}
""")
    src = MemorySource()
    for i in range(10):
        src.set_gauge("search_up", {"cluster": "a"}, M0 + i, 1)
    assert reading(sp, src, 10)[0].holds is False  # minute 9 is in [5, 10)
    assert reading(sp, src, 14)[0].holds is False
    assert reading(sp, src, 15)[0].holds is True  # nothing in minutes 10..14
    src.add_counter("search_up", {"cluster": "b"}, M0 + 14, 1)  # another cluster does not count
    assert reading(sp, src, 15)[0].holds is True


def test_event_fires_for_a_set_time_after_the_push():
    sp = spec("""\
  - name: failover
    service: db
    event: {event: db_failover, firing_for: 10m, match: {cluster: main}}
    annotations: {summary: 'failover x{{ count }} on {{ labels.service }}'}
""")
    src = MemorySource()
    src.add_counter("vigil_event_total", {"event": "db_failover", "cluster": "main"}, M0 + 3, 1)
    src.add_counter("vigil_event_total", {"event": "db_failover", "cluster": "other"}, M0 + 20, 1)
    assert reading(sp, src, 3)[0].holds is False
    r = reading(sp, src, 4)[0]
    assert r.holds is True and r.annotations["summary"] == "failover x1 on db"
    assert reading(sp, src, 13)[0].holds is True
    assert reading(sp, src, 14)[0].holds is False
    assert reading(sp, src, 25)[0].holds is False  # another cluster's event


# -- burn rate ------------------------------------------------------------------------------------------


def test_burn_rate_instances_per_severity_with_the_numbers():
    sp = spec("""\
  - name: api-burn
    burn_rate: {slo: api-availability}
    labels: {team: core}
    runbook: https://runbooks.example.com/api
""")
    src = MemorySource()
    for i in range(120):
        src.add_counter("http_requests", {"service": "api", "code": "200"}, M0 + i, 980)
        src.add_counter("http_requests", {"service": "api", "code": "500"}, M0 + i, 20)  # 2%: burn 20
    rs = {r.labels["severity"]: r for r in reading(sp, src, 120)}
    assert set(rs) == {"page", "ticket"}
    page = rs["page"]
    assert page.holds is True and page.value == Decimal(20)
    assert page.labels == {"alertname": "api-burn", "service": "api", "severity": "page", "slo": "api-availability", "team": "core"}
    assert page.annotations["runbook_url"] == "https://runbooks.example.com/api"
    assert "burn rate 20x over 1h and 20x over 5m" in page.annotations["description"]
    assert "above 14.4x" in page.annotations["description"]
    assert rs["ticket"].holds is True  # 20 > 3 over 1d and 2h


def test_burn_rate_below_the_threshold_and_without_traffic():
    sp = spec("""\
  - name: api-burn
    burn_rate: {slo: api-availability, severities: [page]}
    missing: alert
""")
    src = MemorySource()
    for i in range(60):
        src.add_counter("http_requests", {"service": "api", "code": "200"}, M0 + i, 990)
        src.add_counter("http_requests", {"service": "api", "code": "500"}, M0 + i, 10)  # burn 10 < 14.4 and < 6? no: 10 > 6
    (r,) = reading(sp, src, 60)
    assert r.holds is True and r.value == Decimal(10)  # the 6h/30m condition (6x) holds
    # no traffic at all in any window: missing, and missing: alert fires
    (r,) = reading(sp, MemorySource(), 60)
    assert r.holds is None
    st = MemoryState()
    st.evaluate(list(sp.alerts), list(sp.slos), MemorySource(), T0)
    assert [i.state for i in st.instances.values()] == ["firing"]


# -- the spec section ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule,message",
    [
        ("  - name: x\n    service: api\n", "exactly one kind"),
        ("  - name: x\n    service: api\n    absent: {metric: a}\n    event: {event: e}\n", "got absent, event"),
        ("  - name: x\n    absent: {metric: a}\n", "needs `service:`"),
        ("  - name: x\n    service: nope\n    absent: {metric: a}\n", "unknown service 'nope'"),
        ("  - name: x\n    burn_rate: {slo: nope}\n", "unknown SLO 'nope'"),
        ("  - name: x\n    burn_rate: {slo: api-availability, severities: [sev1]}\n", "severity 'sev1' is not in the SLO's window catalog"),
        ("  - name: x\n    burn_rate: {slo: api-availability}\n    severity: page\n", "takes each condition's severity"),
        ("  - name: x\n    service: db\n    burn_rate: {slo: api-availability}\n", "belongs to 'api', not 'db'"),
        ("  - name: x\n    service: api\n    absent: {metric: a}\n    missing: alert\n", "`missing` does not apply"),
        ("  - name: x\n    service: api\n    threshold: {metric: q, value: 1, over: 90s}\n", "must be whole minutes"),
        ("  - name: x\n    service: api\n    threshold: {metric: q, value: 1, aggregate: rate}\n", "does not apply to a gauge"),
        ("  - name: x\n    service: api\n    threshold: {metric: q, type: latency, value: 1}\n", "needs `quantile:`"),
        ("  - name: x\n    service: api\n    threshold: {metric: 'q{a=>\"b\"}', value: 1}\n", "unknown label matcher"),
        ("  - name: x\n    service: api\n    absent: {metric: a}\n    labels: {severity: low}\n", "is set by vigil"),
        ("  - name: x\n    service: api\n    absent: {metric: a}\n    annotations: {summary: '{{ nope }}'}\n", "unknown variable {{ nope }}"),
        ("  - name: x\n    service: api\n    spike: {metric: a, factor: 5, floor: 1/d}\n", "cannot read rate '1/d'"),
        ("  - name: x y\n    service: api\n    absent: {metric: a}\n", "rule name 'x y'"),
        ("  - name: x\n    service: api\n    absent: {metric: a}\n  - name: x\n    service: api\n    absent: {metric: b}\n", "duplicate alert rule name 'x'"),
        ("  - name: x\n    service: api\n    absent: {metric: a}\n    runbook: javascript:alert(1)\n", "must be an http(s) URL"),
        ("  - name: x\n    service: api\n    absent: {metric: a}\n    fro: 5m\n", "unknown key 'fro'; did you mean 'for'?"),
    ],
)
def test_spec_errors_name_the_place_and_the_fix(rule, message):
    with pytest.raises(SpecError) as e:
        parse_spec(BASE + rule, filename="vigil.yaml")
    text = str(e.value.message)
    assert message in text, text
    assert "vigil.yaml:" in text and "alerts[" in text


def test_the_spec_round_trips_its_rules():
    sp = spec("""\
  - name: q
    service: api
    threshold: {metric: 'queue_depth{queue="email"}', aggregate: max, over: 10m, op: '>=', value: 1000}
    for: 10m
    keep_firing_for: 5m
  - name: s
    service: api
    spike: {metric: errors, factor: 5, floor: 60/m}
""")
    q, s = sp.alerts
    assert (q.kind, q.for_, q.keep_firing_for, q.threshold.agg) == ("threshold", Decimal(600), Decimal(300), "max")
    assert s.spike.floor == Decimal(1) and s.spike.baseline == Decimal(3600)
    dumped = sp.model_dump(mode="json", by_alias=True)["alerts"][0]
    assert dumped["for"] == "10m" and dumped["threshold"]["value"] == "1000"
