"""Cost against reliability (issue 13): cost per 1,000 requests and per 1,000 valid events of an SLO
from the same store as the SLOs (exact numbers by hand), in vigil cost report, slo status --json
and the API; the data-transfer split and the cross-region finding."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from helpers import push, t
from test_api import LiveServer, _free_port
from vigil.clock import FakeClock
from vigil.finops.importer import import_files
from vigil.finops.unitcost import per_thousand, transfer_report, unit_costs
from vigil.spec import load_spec

SPEC = """\
version: 1
services: {api: {}, checkout: {}, search: {}, pages: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {calendar: month, timezone: UTC}
    sli:
      ratio:
        good: 'http_requests{service="api",code!~"5.."}'
        total: 'http_requests{service="api"}'
  - name: api-latency
    service: api
    objective: 95
    window: {rolling: 30d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 300ms}
  - name: checkout-success
    service: checkout
    objective: 99.5
    window: {calendar: month, timezone: UTC}
    sli:
      ratio:
        good: 'checkout_attempts{outcome="success"}'
        total: 'checkout_attempts'
        exclude: 'checkout_attempts{outcome="issuer_declined"}'
costs:
  requests: {api: 'http_requests{service="api"}'}
"""

HEADER = "BilledCost,BillingAccountId,BillingCurrency,BillingPeriodStart,ChargeCategory,ChargePeriodStart,EffectiveCost,ProviderName,RegionId,ServiceName,Tags,x_UsageType,ConsumedQuantity\n"


def _row(day: str, billed: str, eff: str, env: str, svc: str, sname: str = "AWS Lambda", utype: str = "EUW1-Request", region: str = "eu-west-1", qty: str = "1") -> str:
    tags = '"{""env"":""%s"",""service"":""%s""}"' % (env, svc)
    return f"{billed},111,USD,2026-11-01T00:00:00Z,Usage,{day}T00:00:00Z,{eff},AWS,{region},{sname},{tags},{utype},{qty}\n"


@pytest.fixture
def setup(tmp_path: Path, store):
    spec_path = tmp_path / "vigil.yaml"
    spec_path.write_text(SPEC)
    loaded = load_spec(spec_path)
    spec = loaded.spec
    csv = tmp_path / "nov.csv"
    csv.write_text(
        HEADER
        + _row("2026-11-01", "30.00", "24.00", "prod", "api")
        + _row("2026-11-02", "30.00", "26.00", "prod", "api")
        + _row("2026-11-01", "10.00", "10.00", "prod", "checkout")
        + _row("2026-11-01", "5.00", "5.00", "stage", "api")
        + _row("2026-11-02", "2.00", "2.00", "prod", "search", "AWS Data Transfer", "EUW1-EUC1-AWS-Out-Bytes", qty="100")
        + _row("2026-11-02", "8.50", "8.50", "prod", "pages", "Amazon CloudFront", "EU-DataTransfer-Out-Bytes", "global", "100")
        + _row("2026-11-02", "0.90", "0.90", "prod", "api", "AWS Data Transfer", "EUW1-DataTransfer-Out-Bytes", qty="10")
    )
    old = tmp_path / "oct.csv"  # a cost day inside api-latency's 30 days, before its telemetry starts
    old.write_text(HEADER + _row("2026-10-25", "99.00", "99.00", "prod", "api").replace("2026-11-01T00:00:00Z,Usage", "2026-10-01T00:00:00Z,Usage"))
    import_files(store, [old], spec.costs, at=t("2026-11-03T06:00:00Z"))
    import_files(store, [csv], spec.costs, at=t("2026-11-03T06:00:00Z"))
    rows = []
    for day, n in (("2026-11-01", 1), ("2026-11-02", 3)):  # 1,000 requests on the 1st, 3,000 on the 2nd, 10 of them 5xx
        for m in range(10):
            ts = f"{day}T10:{m:02d}:00Z"
            rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 100 * n - 1})
            rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "500"}, "inc": 1})
            rows.append({"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.1, "count": 50 * n})
            rows.append({"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 40})
            rows.append({"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "issuer_declined"}, "inc": 10})
    rows.append({"ts": "2026-11-03T01:00:00Z", "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 7777})  # a day with no cost data
    push(store, spec, rows, "2026-11-03T06:00:00Z")
    return loaded, spec_path


def test_per_thousand_never_divides_by_zero():
    assert per_thousand(Decimal(5), 0) is None and per_thousand(Decimal(5), None) is None
    assert per_thousand(Decimal(5), 2000) == Decimal("2.5")


def test_unit_costs_by_hand(store, setup):
    loaded, _ = setup
    units = {(u.env, u.service): u for u in unit_costs(store, loaded.spec, date(2026, 11, 1), date(2026, 11, 2))}
    api = units[("prod", "api")]
    assert api.effective == Decimal("50.90") and api.billed == Decimal("60.90")
    assert api.requests == 4000  # the 3rd has no cost data and is not counted
    assert api.per_1000_requests == Decimal("50.90") * 1000 / 4000
    slos = {s["slo"]: s for s in api.slos}
    assert slos["api-availability"]["valid_events"] == 4000
    assert slos["api-latency"]["valid_events"] == 2000
    assert slos["api-latency"]["cost_per_1000_valid_events"] == str((Decimal("50.90") * 1000 / 2000).quantize(Decimal("0.0001")))
    chk = {s["slo"]: s for s in units[("prod", "checkout")].slos}
    assert chk["checkout-success"]["valid_events"] == 800, "issuer declines are not valid events"
    assert units[("stage", "api")].requests is None and units[("stage", "api")].slos == []  # telemetry is prod's


def test_transfer_split_and_cross_region_finding(store, setup):
    from vigil.finops import query

    rep = transfer_report(query.transfer_rows(store, "2026-11-01", "2026-11-30"), {"api", "checkout", "search", "pages"})
    assert rep["by_env"]["prod"] == {"edge": "8.50", "inter-region": "2.00", "internet": "0.90"}
    assert [(f["service"], f["effective_cost"], f["gigabytes"]) for f in rep["findings"]] == [("search", "2.00", "100.00")]


def test_cli_report_and_slo_status_show_unit_cost(cli, setup):
    _, spec_path = setup
    db = f"sqlite:///{spec_path.parent / 'state.db'}"
    r = cli("cost", "report", "--month", "2026-11", "--spec", str(spec_path), "--db", db, "--json", now="2026-11-03T06:00:00Z")
    assert r.code == 0, r.err
    d = r.json()
    api = next(s for s in d["services"] if s["env"] == "prod" and s["service"] == "api")
    assert api["requests"] == 4000 and api["cost_per_1000_requests"] == "12.7250"
    assert d["transfer"]["findings"][0]["service"] == "search"
    r = cli("slo", "status", "--spec", str(spec_path), "--db", db, "--json", now="2026-11-03T06:00:00Z")
    assert r.code == 0, r.err
    by = {s["name"]: s for s in r.json()["slos"]}
    u = by["api-availability"]["unit_cost"]
    assert u == {"env": "prod", "from": "2026-11-01", "to": "2026-11-02", "effective_cost": "50.90", "valid_events": 4000,
                 "cost_per_1000_valid_events": "12.7250"}
    lat = by["api-latency"]["unit_cost"]  # a rolling 30d window: counted from the day its telemetry starts, not the 25th
    assert (lat["from"], lat["effective_cost"], lat["valid_events"]) == ("2026-11-01", "50.90", 2000)
    r = cli("cost", "report", "--month", "2026-09", "--spec", str(spec_path), "--db", db, now="2026-11-03T06:00:00Z")
    assert r.code == 2 and "no cost rows for 2026-09" in r.err


def test_api_cost_routes(store, setup):
    loaded, _ = setup
    from vigil.web.app import create_app

    app = create_app(loaded, store, "tok-123456789012345678901234", FakeClock(t("2026-11-03T06:00:00Z")))
    srv = LiveServer(app, _free_port())
    srv.start()
    try:
        h = {"Authorization": "Bearer tok-123456789012345678901234"}
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            r = c.get("/api/v1/costs/report", params={"month": "2026-11"}, headers=h)
            assert r.status_code == 200, r.text
            assert next(s for s in r.json()["services"] if s["service"] == "api" and s["env"] == "prod")["requests"] == 4000
            assert c.get("/api/v1/costs/report", params={"month": "2026-11"}).status_code == 401
            assert c.get("/api/v1/costs/report", params={"month": "2026-13"}, headers=h).status_code == 400
            assert c.get("/api/v1/costs/report", params={"month": "2026-09"}, headers=h).status_code == 404
            r = c.get("/api/v1/costs/budgets", headers=h)
            assert r.status_code == 200 and r.json()["budgets"] == []
            r = c.get("/api/v1/costs/anomalies", params={"from": "2026-11-01"}, headers=h)
            assert r.status_code == 200 and r.json()["anomalies"] == []
            assert [i["rows_stored"] for i in c.get("/api/v1/costs/imports", headers=h).json()["imports"]] == [7, 1]  # newest first: November after the October day
    finally:
        srv.stop()
