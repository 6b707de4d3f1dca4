"""The exports against the real tools: the rule file passes ``promtool check rules`` and, on the
same data loaded into a real Prometheus (OpenMetrics -> ``promtool tsdb create-blocks-from``,
recording rules backfilled with ``create-blocks-from rules``, queried over HTTP on loopback), every
alert fires exactly when vigil's own engine says its condition holds; the Alertmanager config passes
``amtool check-config``; the CloudWatch alarms are accepted by boto3 (moto)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import EXAMPLE_SPEC
from prom_helpers import Prometheus
from vigil.alerting.evaluate import read_rules
from vigil.alerting.export import to_yaml
from vigil.alerting.export.prometheus import error_ratio_expr, prometheus_rules
from vigil.spec import load_spec, parse_spec
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS
from vigil.telemetry.sources.memory import MemorySource

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
AMTOOL = shutil.which("amtool")



def promtool(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is missing: run scripts/system-deps.sh"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=timeout)


# -- promtool check rules ------------------------------------------------------------------------------


def test_the_example_platforms_rules_pass_promtool(cli, tmp_path):
    out = tmp_path / "rules.yml"
    r = cli("export", "prometheus-rules", "--spec", EXAMPLE_SPEC, "--counter-suffix", "_total", "-o", out)
    assert r.code == 0, r.err
    p = promtool("check", "rules", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(json.dumps(__import__("ruamel.yaml", fromlist=["YAML"]).YAML(typ="safe").load(out.read_text())))
    names = [r.get("alert") for g in doc["groups"] for r in g["rules"] if "alert" in r]
    # the five kinds of the plan: spike, burn, backlog, search down, failover
    assert {"api-5xx-spike", "api-availability-burn", "outbox-backlog", "search-down", "db-failover"} <= set(names)
    rec = [r for g in doc["groups"] for r in g["rules"] if "record" in r]
    assert all("clamp_min(" in r["expr"] for r in rec if r["labels"]["slo"] != "search-freshness")
    assert "http_requests_total" in out.read_text()


def test_promtool_rejects_what_is_broken(tmp_path):
    """The check above can fail: a rule file with a bad expression does not pass."""
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: x\n  rules:\n  - alert: a\n    expr: sum(rate(x[5m])) >\n")
    assert promtool("check", "rules", str(bad)).returncode != 0


# -- the same data in vigil and in a real Prometheus ---------------------------------------------------

SPEC = parse_spec("""\
version: 1
services: {api: {}, pages: {}, search: {}, db: {}, jobs: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli: {ratio: {good: 'http_requests{service="api",code!~"5.."}', total: 'http_requests{service="api"}'}}
  - name: api-latency
    service: api
    objective: 99
    window: {rolling: 30d}
    sli: {latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 300ms}}
  - name: pages-availability
    service: pages
    objective: 99.5
    window: {rolling: 28d}
    sli: {ratio: {good: 'http_requests{service="pages",code!~"5.."}', total: 'http_requests{service="pages"}'}}
alerts:
  - name: api-burn
    burn_rate: {slo: api-availability}
  - name: latency-burn
    burn_rate: {slo: api-latency, severities: [page]}
  - name: pages-burn
    burn_rate: {slo: pages-availability}
  - name: backlog
    service: search
    threshold: {metric: 'queue_depth{queue="outbox"}', aggregate: max, over: 5m, value: 1000}
  - name: backlog-avg
    service: search
    threshold: {metric: 'queue_depth{queue="outbox"}', aggregate: avg, over: 10m, value: 2000}
  - name: jobs-stalled
    service: jobs
    threshold: {metric: jobs_done, type: counter, aggregate: rate, over: 5m, op: '<', value: 0.5}
  - name: jobs-burst
    service: jobs
    threshold: {metric: jobs_done, type: counter, aggregate: sum, over: 10m, op: '>', value: 1000}
  - name: slow
    service: api
    threshold: {metric: 'http_request_duration_seconds{service="api"}', type: latency, quantile: 95%, over: 5m, value: 250ms}
  - name: spike
    service: api
    spike: {metric: 'http_requests{service="api",code=~"5.."}', factor: 5, baseline: 1h, floor: 0.5/s}
  - name: heartbeat
    service: search
    absent: {metric: search_up, over: 5m}
  - name: failover
    service: db
    event: {event: db_failover, firing_for: 15m}
    labels: {component: database}
""")

MINUTES = 180


def _mins(a: int, b: int, m: int) -> bool:
    return a <= m < b


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    kind: str  # counter | gauge
    per_minute: list[float] = field(default_factory=list)  # counter: increment in the minute; gauge: value (nan: none)


def scenario() -> list[Series]:
    """Three hours of the platform, minute by minute. Counter increments are multiples of 4 (one
    quarter per 15 s sample); every change sits well away from the rules' thresholds."""
    s: list[Series] = []
    ok = Series("http_requests", {"service": "api", "code": "200"}, "counter")
    bad = Series("http_requests", {"service": "api", "code": "500"}, "counter")
    pages = Series("http_requests", {"service": "pages", "code": "200"}, "counter")  # a series that never moves
    q = Series("queue_depth", {"queue": "outbox"}, "gauge")
    jobs = Series("jobs_done", {}, "counter")
    up = Series("search_up", {}, "gauge")
    ev = Series("vigil_event_total", {"event": "db_failover", "service": "db"}, "counter")
    for m in range(MINUTES):
        ok.per_minute.append(1200)
        bad.per_minute.append(240 if _mins(100, 130, m) else (4 if m % 10 == 0 else 0))
        pages.per_minute.append(0)
        q.per_minute.append(5000 if _mins(30, 60, m) else 10 + (m % 7))
        jobs.per_minute.append(0 if _mins(140, 160, m) else (1600 if _mins(20, 26, m) else 60))
        up.per_minute.append(1 if m < 150 else math.nan)
        ev.per_minute.append(4 if m == 40 else 0)
    s += [ok, bad, pages, q, jobs, up, ev]
    return s


def latency_minutes() -> list[dict[Decimal, int]]:
    """Observations per minute by the value observed: fast, then 20% at 0.6 s for half an hour."""
    out = []
    for m in range(MINUTES):
        if _mins(60, 90, m):
            out.append({Decimal("0.05"): 320, Decimal("0.6"): 80})
        else:
            out.append({Decimal("0.05"): 396, Decimal("0.12"): 4})
    return out


def memory_source(start_minute: int) -> MemorySource:
    src = MemorySource()
    for se in scenario():
        for i, v in enumerate(se.per_minute):
            if se.kind == "counter":
                src.add_counter(se.name, se.labels, start_minute + i, int(v))
            elif not math.isnan(v):
                src.set_gauge(se.name, se.labels, start_minute + i, v)
    for i, obs in enumerate(latency_minutes()):
        for secs, n in obs.items():
            src.add_observation("http_request_duration_seconds", {"service": "api"}, start_minute + i, float(secs), n)
    return src


def _labels(d: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(d.items())) + "}" if d else ""


def _le(b: Decimal) -> str:
    return f"{b.normalize():f}"


def openmetrics(start_s: int) -> str:
    """The same data as Prometheus would scrape it about every 15 s: counters as running totals,
    gauges as their value. Each minute's samples are stamped at :02 (nothing of the minute counted
    yet), :14, :29, :44 and :59 (a quarter of its increments each), inside the minute vigil counts
    them in: queried one second after a minute, a window holds the same minutes in vigil
    ([t-5m, t)) and in Prometheus, and no sample sits on its edge (open in Prometheus 3, closed
    in 2)."""
    lines: list[str] = []
    by_family: dict[str, list[Series]] = {}
    for se in scenario():
        by_family.setdefault(se.name, []).append(se)
    for name, series in by_family.items():
        kind = series[0].kind
        # an OpenMetrics counter family `x` has samples named `x_total`
        fam = name.removesuffix("_total") if kind == "counter" else name
        lines.append(f"# TYPE {fam} {kind}")
        for se in series:
            name = fam + ("_total" if kind == "counter" else "")
            total = 0.0
            lab = _labels(se.labels)
            if kind == "counter":
                lines.append(f"{name}{lab} 0 {start_s - 1}")
            for i, v in enumerate(se.per_minute):
                for qt in range(0, 5):
                    ts = start_s + i * 60 + (2 if qt == 0 else qt * 15 - 1)
                    if kind == "counter":
                        total += v / 4 if qt else 0
                        lines.append(f"{name}{lab} {total:g} {ts}")
                    elif not math.isnan(v):
                        lines.append(f"{name}{lab} {v:g} {ts}")
    # the latency histogram: cumulative buckets over vigil's documented bounds
    bounds = list(DOCUMENTED_BOUNDS) + [None]
    lat = latency_minutes()
    for suffix in ("_bucket", "_count"):
        fam = "http_request_duration_seconds" + suffix
        lines.append(f"# TYPE {fam} unknown")
        for b in bounds if suffix == "_bucket" else [None]:
            lab = {"service": "api"}
            if suffix == "_bucket":
                lab["le"] = "+Inf" if b is None else _le(b)
            total = 0.0
            lines.append(f"{fam}{_labels(lab)} 0 {start_s - 1}")
            for i, obs in enumerate(lat):
                n = sum(c for v, c in obs.items() if b is None or v <= b)
                for qt in range(0, 5):
                    total += n / 4 if qt else 0
                    lines.append(f"{fam}{_labels(lab)} {total:g} {start_s + i * 60 + (2 if qt == 0 else qt * 15 - 1)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def loaded_prometheus(tmp_path_factory):
    if PROMTOOL is None or PROMETHEUS is None:
        pytest.fail("promtool and prometheus are needed: run scripts/system-deps.sh", pytrace=False)
    work = tmp_path_factory.mktemp("prom")
    now = int(time.time()) // 3600 * 3600
    start_s = now - 6 * 3600  # three hours of data ending three hours ago
    om = work / "data.om"
    om.write_text(openmetrics(start_s))
    data = work / "data"
    p = promtool("tsdb", "create-blocks-from", "openmetrics", str(om), str(data), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    exported = prometheus_rules(list(SPEC.alerts), list(SPEC.slos), counter_suffix="_total")
    rules = work / "rules.yml"
    rules.write_text(to_yaml(exported.document))
    assert promtool("check", "rules", str(rules)).returncode == 0
    prom = Prometheus(data, work)
    prom.start()
    try:
        # the recording rules, evaluated every minute over the whole range by Prometheus' engine
        rec_out = work / "recorded"
        p = promtool("tsdb", "create-blocks-from", "rules", f"--url={prom.url}", f"--start={start_s}",
                     f"--end={start_s + MINUTES * 60 + 60}", f"--output-dir={rec_out}", "--eval-interval=60s", str(rules), timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        prom.stop()
        for block in rec_out.iterdir():
            if block.is_dir():
                shutil.move(str(block), str(data / block.name))
        prom.start()
        yield prom, exported.document, start_s
    finally:
        prom.stop()


def _alert_rules(doc: dict) -> list[dict]:
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


RECORDED = re.compile(r'vigil:slo_error_ratio:rate(\w+)\{slo="([^"]+)"\}')


def _inline(expr: str) -> str:
    """An alert expression with each recorded series replaced by its recording rule's expression
    (labelled as the recording is). A backfilled recording holds the value of its evaluation at a
    time promtool offsets within the minute; inlined, the expression is evaluated exactly at the
    instant asked (test_recorded_series_are_their_expressions checks the recordings themselves)."""
    slos = {s.name: s for s in SPEC.slos}

    def sub(m: "re.Match[str]") -> str:
        slo = slos[m.group(2)]
        e = error_ratio_expr(slo, m.group(1), "_total")
        return f'label_replace(label_replace(({e}), "slo", "{slo.name}", "", ""), "service", "{slo.service}", "", "")'

    return RECORDED.sub(sub, expr)


def _prom_alerts(prom: Prometheus, doc: dict, at: float) -> dict[tuple, float]:
    """The alerts whose expression returns a sample at ``at`` (queried one second later: the
    same minutes, since samples sit at :02, :14, :29, :44 and :59)."""
    out = {}
    for rule in _alert_rules(doc):
        for s in prom.query(_inline(rule["expr"]), at + 1):
            labels = {**s["metric"], **rule.get("labels", {}), "alertname": rule["alert"]}
            labels.pop("__name__", None)
            out[tuple(sorted(labels.items()))] = float(s["value"][1])
    return out


def _vigil_alerts(src: MemorySource, at) -> dict[tuple, float]:
    from datetime import datetime, timezone

    r = read_rules(list(SPEC.alerts), list(SPEC.slos), src, datetime.fromtimestamp(at, timezone.utc))
    assert not r.failed, r.failed
    return {tuple(sorted(x.labels.items())): float(x.value) for xs in r.by_rule.values() for x in xs if x.holds}


def test_prometheus_fires_when_vigil_fires(loaded_prometheus):
    prom, doc, start_s = loaded_prometheus
    src = memory_source(start_s // 60)
    fired: set[str] = set()
    mismatches = []
    for minute in range(62, MINUTES + 1, 1):
        at = start_s + minute * 60
        ours = _vigil_alerts(src, at)
        theirs = _prom_alerts(prom, doc, at)
        if set(ours) != set(theirs):
            mismatches.append((minute, sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))))
            continue
        for k, v in ours.items():
            # the numbers agree too, within Prometheus' extrapolation of rate() to the window's
            # edges (3 s of 300 s for a 5m window)
            assert theirs[k] == pytest.approx(v, rel=0.02), (minute, k, v, theirs[k])
            fired.add(dict(k)["alertname"])
    assert not mismatches, "\n".join(f"{m}: only vigil {a}; only Prometheus {b}" for m, a, b in mismatches[:10])
    # every kind had its moment
    assert fired >= {"api-burn", "latency-burn", "backlog", "jobs-stalled", "slow", "spike", "heartbeat"}


def test_early_alerts_agree_too(loaded_prometheus):
    """The first hour: the backlog, the job burst and the failover event."""
    prom, doc, start_s = loaded_prometheus
    src = memory_source(start_s // 60)
    seen: set[str] = set()
    spike = {"spike"}  # its 1h median is not over a full hour yet: compared after the first hour
    for minute in range(5, 62):
        at = start_s + minute * 60
        ours = {k for k in _vigil_alerts(src, at) if dict(k)["alertname"] not in spike}
        theirs = {k for k in _prom_alerts(prom, doc, at) if dict(k)["alertname"] not in spike}
        assert ours == theirs, (minute, ours ^ theirs)
        seen |= {dict(k)["alertname"] for k in ours}
    assert {"backlog", "backlog-avg", "jobs-burst", "failover"} <= seen


def test_recorded_series_are_their_expressions(loaded_prometheus):
    """The recording rules as Prometheus' rule engine evaluated them (backfilled every minute):
    each recorded sample is its expression's value at the sample's time."""
    prom, doc, start_s = loaded_prometheus
    checked = 0
    for rec in [r for g in doc["groups"] for r in g["rules"] if "record" in r]:
        slo = next(s for s in SPEC.slos if s.name == rec["labels"]["slo"])
        window = rec["record"].rpartition("rate")[2]
        sel = f'{rec["record"]}{{slo="{slo.name}"}}'
        for minute in (65, 103, 135):
            got = prom.query(f"{sel}[3m]", start_s + minute * 60)
            assert len(got) == 1, (sel, got)
            for ts, v in got[0]["values"]:
                want = prom.query(error_ratio_expr(slo, window, "_total"), ts)
                assert float(v) == pytest.approx(float(want[0]["value"][1]), rel=1e-9, abs=1e-15), (sel, ts)
                checked += 1
    assert checked >= 3 * 3 * 10


def test_zero_traffic_is_zero_and_no_series_is_no_data_never_nan(loaded_prometheus):
    prom, doc, start_s = loaded_prometheus
    at = start_s + 120 * 60
    got = prom.query('vigil:slo_error_ratio:rate5m{slo="pages-availability"}', at)
    assert [float(s["value"][1]) for s in got] == [0.0]  # the pages series exist and never move
    for s in prom.query('{__name__=~"vigil:slo_error_ratio:.*"}', at):
        assert not math.isnan(float(s["value"][1])), s
    # a window before any data: no sample at all (vigil's no_data), not NaN
    assert prom.query('vigil:slo_error_ratio:rate5m{slo="api-availability"}', start_s - 3600) == []


# -- Alertmanager -------------------------------------------------------------------------------------------


def test_the_alertmanager_config_passes_amtool(cli, tmp_path):
    assert AMTOOL, "amtool is missing: run scripts/system-deps.sh (Debian's prometheus-alertmanager)"
    out = tmp_path / "alertmanager.yml"
    r = cli("export", "alertmanager", "--spec", EXAMPLE_SPEC, "-o", out)
    assert r.code == 0, r.err
    p = subprocess.run([AMTOOL, "check-config", str(out)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("route: {receiver: nobody}\nreceivers: [{name: someone}]\n")
    assert subprocess.run([AMTOOL, "check-config", str(bad)], capture_output=True, timeout=60).returncode != 0


ALERTING_SPEC = Path(__file__).parent / "data" / "alerting_export_spec.yaml"


def test_an_alerting_section_becomes_a_config_amtool_routes_as_vigil_does(cli, tmp_path):
    """Receivers (PagerDuty EU, SMTP with auth, webhook, Slack, SNS), a route tree with matchers,
    regexes, continue and nesting, and an inhibit rule: amtool accepts the export, and for every
    label set `amtool config routes test` names the receivers vigil's own routing picks."""
    import itertools

    from vigil.alerting.routing import build_tree, match

    assert AMTOOL, "amtool is missing: run scripts/system-deps.sh (Debian's prometheus-alertmanager)"
    out = tmp_path / "alertmanager.yml"
    r = cli("export", "alertmanager", "--spec", ALERTING_SPEC, "-o", out)
    assert r.code == 0, r.err
    p = subprocess.run([AMTOOL, "check-config", str(out)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "5 receivers" in p.stdout and "1 inhibit rules" in p.stdout
    text = out.read_text()
    assert "SMTP_PASSWORD" not in r.out and "/etc/alertmanager/secrets/SMTP_PASSWORD" in text
    assert "routing_key_file: /etc/alertmanager/secrets/PAGERDUTY_ROUTING_KEY" in text
    assert "falls back to sre-email" in r.err and "not HMAC-signed" in r.err
    tree = build_tree(load_spec(ALERTING_SPEC).spec.alerting.route)
    checked = 0
    for sev, svc, team in itertools.product(["page", "ticket", "info"], ["api", "search", "pages"], ["data", "web", None]):
        labels = {"alertname": "x", "severity": sev, "service": svc, **({"team": team} if team else {})}
        ours = [n.receiver for n in match(tree, labels)]
        args = [f"{k}={v}" for k, v in labels.items()]
        p = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={out}", *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip().split(",") == ours, (labels, p.stdout, ours)
        checked += 1
    assert checked == 27


# -- CloudWatch ----------------------------------------------------------------------------------------------


def test_cloudwatch_alarms_are_accepted_by_boto3(cli, tmp_path):
    import boto3
    from botocore.validate import ParamValidator
    from moto import mock_aws

    topic = "arn:aws:sns:eu-west-1:123456789012:pages"
    r = cli("export", "cloudwatch-alarms", "--spec", EXAMPLE_SPEC, "--action", topic, "--json")
    assert r.code == 0, r.err
    j = r.json()
    doc, notes = j["document"], j["notes"]
    with mock_aws():
        cw = boto3.client("cloudwatch", region_name="eu-west-1")
        for a in doc["metric_alarms"]:
            cw.put_metric_alarm(**a)
        names = {a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]}
        # moto has no put_composite_alarm: botocore's own validator checks the arguments
        model = cw.meta.service_model.operation_model("PutCompositeAlarm").input_shape
        for c in doc["composite_alarms"]:
            report = ParamValidator().validate(c, model)
            assert not report.has_errors(), report.generate_report()
            for ref in __import__("re").findall(r'ALARM\("([^"]+)"\)', c["AlarmRule"]):
                assert ref in names
    by = {a["AlarmName"]: a for a in doc["metric_alarms"]}
    backlog = by["outbox-backlog"]
    # max over 5m > 1000 for 10m: 5m periods, 3 of 3 (the window plus `for`)
    assert (backlog["Statistic"], backlog["Period"], backlog["EvaluationPeriods"], backlog["DatapointsToAlarm"]) == ("Maximum", 300, 3, 3)
    assert backlog["TreatMissingData"] == "notBreaching" and backlog["AlarmActions"] == [topic]
    down = by["search-down"]
    assert (down["Statistic"], down["ComparisonOperator"], down["TreatMissingData"]) == ("SampleCount", "LessThanThreshold", "breaching")
    assert by["db-failover"]["Dimensions"] == [{"Name": "event", "Value": "db_failover"}]
    burn = [a for a in doc["metric_alarms"] if a["AlarmName"].startswith("checkout-success-burn")]
    expr = [m["Expression"] for m in burn[0]["Metrics"] if "Expression" in m][0]
    assert expr.startswith("IF((valid - excluded) > 0,")  # no traffic is 0, not a missing point
    assert [c["AlarmName"] for c in doc["composite_alarms"]] == ["checkout-success-burn-page", "checkout-success-burn-ticket"]
    text = "\n".join(notes)
    assert "api-5xx-spike: left out" in text and "api-availability-burn: left out" in text and 'code!~"5.."' in text
    assert "ticket-3d condition (3d/6h) needs a 3d period" in text


def test_cloudwatch_missing_maps_to_treat_missing_data():
    from vigil.alerting.export.cloudwatch import cloudwatch_alarms

    sp = parse_spec("""\
version: 1
services: {api: {}}
alerts:
  - {name: a, service: api, threshold: {metric: q, aggregate: max, value: 1}, missing: ok}
  - {name: b, service: api, threshold: {metric: q, aggregate: max, value: 1}, missing: alert}
  - {name: c, service: api, threshold: {metric: q, value: 1, over: 1m}, missing: keep, for: 150s}
  - {name: d, service: api, threshold: {metric: q, aggregate: max, value: 1, over: 30m}, for: 1d}
""")
    ex = cloudwatch_alarms(list(sp.alerts), [])
    got = {a["AlarmName"]: (a["TreatMissingData"], a["Period"], a["EvaluationPeriods"]) for a in ex.document["metric_alarms"]}
    assert got == {"a": ("notBreaching", 300, 1), "b": ("breaching", 300, 1), "c": ("ignore", 60, 4)}
    # 49 periods of 30m exceed the day CloudWatch evaluates for periods under an hour
    assert any(n.startswith("d: left out: for 1d needs 49 periods of 30m") for n in ex.notes), ex.notes


def test_export_writes_nothing_on_a_bad_spec(cli, tmp_path):
    bad = tmp_path / "vigil.yaml"
    bad.write_text("version: 1\nservices: {api: {}}\nalerts:\n  - {name: a, service: api}\n")
    out = tmp_path / "out.yml"
    r = cli("export", "prometheus-rules", "--spec", bad, "-o", out)
    assert r.code == 2 and "exactly one kind" in r.err and not out.exists()


def test_example_export_is_stable(cli):
    """Two exports of the same spec are byte-identical (a diff in review means a change)."""
    a = cli("export", "prometheus-rules", "--spec", EXAMPLE_SPEC).out
    b = cli("export", "prometheus-rules", "--spec", EXAMPLE_SPEC).out
    assert a == b and a.startswith("# Generated by vigil export prometheus-rules")
    load_spec(EXAMPLE_SPEC)
