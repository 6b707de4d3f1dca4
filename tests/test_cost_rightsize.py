"""Rightsizing with the SLO guardrail and the gate's freeze (issue 13).

AWS runs on moto: RDS clusters with their ServerlessV2ScalingConfiguration and CloudWatch's
ServerlessDatabaseCapacity datapoints (put by the test). moto does not model Aurora's scaling, its
auto-pause, or which engine versions can scale to 0 ACUs (vigil's own table decides that), nor
IAM refusals or throttling (injected at botocore's hook, tests/aws_helpers.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest
import sqlalchemy as sa

from aws_helpers import inject, moto_account
from helpers import push, t
from vigil.dr.aws.client import Aws
from vigil.finops.rightsize import Recommendation, Usage, decide, guardrail, pause_supported, recommend, rightsize
from vigil.finops.spec import CapacityRange
from vigil.finops.tables import cost_actions
from vigil.spec import load_spec

D = Decimal
REGION = "eu-west-1"


def test_recommend_floor_and_ceiling_from_hourly_capacity():
    usage = Usage([(D(5), D(3)), (D(7), D("4.2")), (D("2.5"), D("1.3"))])
    r = recommend("c", "prod", "api", D(4), D(32), usage, CapacityRange(min_acu=D(1), max_acu=D(16)), headroom=D("0.3"), price=D("0.12"), pause_ok=True)
    assert (r.new_min, r.new_max) == (D(1), D("9.5"))  # 7 x 1.3 = 9.1 -> 9.5; quietest 1.3 -> 1
    assert r.direction == "lower" and r.cuts and not r.pause
    # hours cost max(floor, used): 4 + 4.2 + 4 -> 3 + 4.2 + 1.3 a day of 3 hours, x 730/3 hours x 0.12
    assert r.monthly_change == (D("8.5") - D("12.2")) * D("0.12") * 730 / 3


def test_dev_pauses_where_the_engine_can():
    dev = CapacityRange(min_acu=D(0), max_acu=D(4), pause_off_hours=True)
    usage = Usage([(D(1), D("0.5"))] * 10)
    assert recommend("d", "dev", "api", D(2), D(8), usage, dev, headroom=D("0.3"), price=D("0.12"), pause_ok=True).new_min == 0
    r = recommend("d", "dev", "api", D(2), D(8), usage, dev, headroom=D("0.3"), price=D("0.12"), pause_ok=False)
    assert r.new_min == D("0.5") and not r.pause and any("cannot scale to 0" in x for x in r.reasons)
    assert pause_supported("aurora-postgresql", "15.7") and not pause_supported("aurora-postgresql", "15.6")
    assert pause_supported("aurora-postgresql", "16.4") and pause_supported("aurora-mysql", "8.0.mysql_aurora.3.08.0")
    assert not pause_supported("aurora-mysql", "8.0.mysql_aurora.3.05.2")


def test_no_capacity_data_recommends_nothing():
    r = recommend("c", "prod", "api", D(4), D(32), Usage([]), None, headroom=D("0.3"), price=D("0.12"), pause_ok=True)
    assert r.direction == "keep" and r.withheld


def _rec(new_min: str, new_max: str, change: str = "-10") -> Recommendation:
    return Recommendation("c", "prod", "api", D(4), D(16), D(new_min), D(new_max), False, D(change))


def test_guardrail_withholds_cuts_while_an_slo_burns_or_has_no_data():
    r = _rec("2", "8")
    guardrail(r, [("api-availability", D("0.4"), D("0.9"))])
    assert not r.withheld
    guardrail(r, [("api-latency", D("1.5"), D("0.8"))])
    assert "api-latency burns its error budget at 1.50x" in r.withheld[0]
    r2 = _rec("2", "8")
    guardrail(r2, [("api-availability", None, None)])
    assert "no data" in r2.withheld[0]
    up = _rec("4", "24", "30")
    guardrail(up, [("api-availability", D(14), D(14))])
    assert not up.withheld, "a raise is never withheld by a burning SLO"


def test_freeze_refuses_cuts_and_caps_the_overspend():
    cut = _rec("2", "8")
    decide(cut, ["frozen by budget-exhausted"], allow_overspend=D(1000), cap=D(1000))
    assert cut.refused and "cost cuts wait until it lifts" in cut.refused[0] and "budget-exhausted" in cut.refused[0]
    up = _rec("4", "24", "30")
    decide(up, ["frozen"], allow_overspend=None, cap=D(100))
    assert "--allow-overspend" in up.refused[0]
    up = _rec("4", "24", "30")
    decide(up, ["frozen"], allow_overspend=D(20), cap=D(100))
    assert "does not cover" in up.refused[0]
    up = _rec("4", "24", "30")
    decide(up, ["frozen"], allow_overspend=D(150), cap=D(100))
    assert "over the cap" in up.refused[0]
    up = _rec("4", "24", "30")
    decide(up, ["frozen"], allow_overspend=D(50), cap=D(100))
    assert not up.refused
    free = _rec("2", "8")
    decide(free, [], allow_overspend=None, cap=D(0))
    assert not free.refused


SPEC = """\
version: 1
services: {api: {}}
slos:
  - name: api-availability
    service: api
    objective: 99
    window: {rolling: 7d}
    sli:
      ratio:
        good: 'http_requests{service="api",code!~"5.."}'
        total: 'http_requests{service="api"}'
policy:
  freeze:
    - name: budget-exhausted
      when: {budget_exhausted: true}
costs:
  freeze_overspend: 20%
  budgets:
    - {name: api-prod, env: prod, service: api, amount: 1000}
  rightsizing:
    region: eu-west-1
    headroom: 30%
    capacity:
      prod: {min_acu: 1, max_acu: 16}
      dev: {min_acu: 0, max_acu: 4, pause_off_hours: true}
    clusters:
      - {cluster_id: platform-prod, env: prod, service: api}
      - {cluster_id: platform-dev, env: dev, service: api}
"""

AT = t("2026-11-20T12:00:00Z")


def _traffic(store, spec, *, errors_at: datetime | None, clean_hours: int):
    rows = []
    start = AT - timedelta(hours=clean_hours)
    if errors_at is not None:  # a burst that exhausts the 1% budget, long before the last 6 hours
        for m in range(30):
            ts = (errors_at + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "500"}, "inc": 500})
            rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 500})
    for m in range(0, clean_hours * 60, 5):
        ts = (start + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 100})
    push(store, spec, rows, AT)


def _aws(cluster_caps: dict[str, tuple[float, float, list[float]]]):
    rds = boto3.client("rds", region_name=REGION)
    cw = boto3.client("cloudwatch", region_name=REGION)
    for cid, (lo, hi, hourly) in cluster_caps.items():
        rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion="15.7", MasterUsername="u",
                              MasterUserPassword="password123", ServerlessV2ScalingConfiguration={"MinCapacity": lo, "MaxCapacity": hi})
        cw.put_metric_data(Namespace="AWS/RDS", MetricData=[
            {"MetricName": "ServerlessDatabaseCapacity", "Dimensions": [{"Name": "DBClusterIdentifier", "Value": cid}],
             "Timestamp": AT - timedelta(hours=h + 1), "Value": v} for h, v in enumerate(hourly)
        ])
    return rds, cw


def _scaling(rds, cid: str) -> dict:
    return rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]["ServerlessV2ScalingConfiguration"]


@pytest.fixture
def env_(tmp_path, store, monkeypatch):
    p = tmp_path / "vigil.yaml"
    p.write_text(SPEC)
    with moto_account(monkeypatch, REGION):
        yield load_spec(p), store


def test_apply_cuts_when_the_slo_is_healthy_and_records_it(env_):
    loaded, store = env_
    _traffic(store, loaded.spec, errors_at=None, clean_hours=8)
    rds, cw = _aws({"platform-prod": (4, 32, [2.0, 3.0, 6.0, 2.5] * 6), "platform-dev": (2, 8, [0.5, 1.0] * 12)})
    recs = rightsize(loaded, store, Aws(rds, sleep=lambda s: None), Aws(cw, sleep=lambda s: None), AT, do_apply=True, actor="test")
    by = {r.cluster_id: r for r in recs}
    assert by["platform-prod"].applied and (by["platform-prod"].new_min, by["platform-prod"].new_max) == (D(2), D(8))
    assert _scaling(rds, "platform-prod") == {"MinCapacity": 2.0, "MaxCapacity": 8.0}
    assert by["platform-dev"].applied and by["platform-dev"].pause
    assert _scaling(rds, "platform-dev")["MinCapacity"] == 0.0 and _scaling(rds, "platform-dev")["SecondsUntilAutoPause"] == 300
    with store.engine.connect() as c:
        rows = c.execute(sa.select(cost_actions).order_by(cost_actions.c.id)).mappings().all()
    assert [(r["target"], r["allowed"], r["applied"], r["actor"]) for r in rows] == [
        ("rds:cluster:platform-prod", True, True, "test"), ("rds:cluster:platform-dev", True, True, "test")]


def test_a_burning_slo_withholds_the_prod_cut_and_nothing_is_changed(env_):
    loaded, store = env_
    _traffic(store, loaded.spec, errors_at=AT - timedelta(minutes=40), clean_hours=0)
    rds, cw = _aws({"platform-prod": (4, 32, [2.0, 3.0, 6.0] * 8)})
    recs = rightsize(loaded, store, Aws(rds), Aws(cw), AT, do_apply=True, clusters=["platform-prod"])
    assert recs[0].withheld and "api-availability burns its error budget" in recs[0].withheld[0] and not recs[0].applied
    assert _scaling(rds, "platform-prod") == {"MinCapacity": 4.0, "MaxCapacity": 32.0}


def test_a_freeze_refuses_the_cut_and_a_capped_overspend_raises(env_):
    loaded, store = env_
    # the budget was exhausted two days ago (freeze), the last 8 hours are clean (burn 0 < 1x)
    _traffic(store, loaded.spec, errors_at=AT - timedelta(days=2), clean_hours=8)
    rds, cw = _aws({"platform-prod": (4, 32, [2.0, 3.0, 6.0] * 8)})
    recs = rightsize(loaded, store, Aws(rds), Aws(cw), AT, do_apply=True, clusters=["platform-prod"])
    assert not recs[0].withheld, "the SLO burns below 1x now"
    assert recs[0].refused and "freeze holds for service api" in recs[0].refused[0] and "budget-exhausted" in recs[0].refused[0]
    assert _scaling(rds, "platform-prod") == {"MinCapacity": 4.0, "MaxCapacity": 32.0}
    # a cluster at its ceiling: the raise is allowed during the freeze only with an explicit, capped overspend
    rds.create_db_cluster(DBClusterIdentifier="platform-dev", Engine="aurora-postgresql", EngineVersion="15.6", MasterUsername="u",
                          MasterUserPassword="password123", ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 1})
    cw.put_metric_data(Namespace="AWS/RDS", MetricData=[
        {"MetricName": "ServerlessDatabaseCapacity", "Dimensions": [{"Name": "DBClusterIdentifier", "Value": "platform-dev"}],
         "Timestamp": AT - timedelta(hours=h + 1), "Value": 2.5} for h in range(24)])
    up = rightsize(loaded, store, Aws(rds), Aws(cw), AT, do_apply=True, clusters=["platform-dev"])[0]
    assert up.direction == "raise" and "--allow-overspend" in up.refused[0]
    assert up.monthly_change == D("1.5") * D("0.12") * 730  # 1 ACU -> 2.5 ACU every hour
    up = rightsize(loaded, store, Aws(rds), Aws(cw), AT, do_apply=True, clusters=["platform-dev"], allow_overspend=D(100))[0]
    assert "does not cover the raise's 131.40" in up.refused[0]
    up = rightsize(loaded, store, Aws(rds), Aws(cw), AT, do_apply=True, clusters=["platform-dev"], allow_overspend=D(250))[0]
    assert "over the cap 200.00" in up.refused[0]  # 20% of the 1,000 budget
    assert _scaling(rds, "platform-dev") == {"MinCapacity": 0.5, "MaxCapacity": 1.0}
    up = rightsize(loaded, store, Aws(rds), Aws(cw), AT, do_apply=True, clusters=["platform-dev"], allow_overspend=D(150))[0]
    assert up.applied and _scaling(rds, "platform-dev") == {"MinCapacity": 2.5, "MaxCapacity": 3.5}


def test_aws_failures_are_external_errors(env_):
    loaded, store = env_
    rds, cw = _aws({"platform-prod": (4, 32, [2.0] * 5)})
    inject(rds, "DescribeDBClusters", ["AccessDenied"], status=403)
    from vigil.dr.aws.client import AwsError

    with pytest.raises(AwsError) as ei:
        rightsize(loaded, store, Aws(rds, sleep=lambda s: None), Aws(cw), AT, clusters=["platform-prod"])
    assert ei.value.exit_code == 3
    inject(cw, "GetMetricStatistics", ["Throttling", "Throttling"])
    recs = rightsize(loaded, store, Aws(rds, sleep=lambda s: None), Aws(cw, sleep=lambda s: None), AT, clusters=["platform-prod"])
    assert recs[0].direction == "lower", "throttling was retried"


def test_cli_rightsize(env_, cli, tmp_path):
    loaded, store = env_
    rds, cw = _aws({"platform-prod": (4, 32, [2.0, 3.0, 6.0] * 8)})
    db = store.url if store.url.startswith("sqlite") else None
    args = ["cost", "rightsize", "--spec", str(loaded.path), "--db", f"sqlite:///{tmp_path / 'state.db'}"]
    r = cli(*args, "--json", "--cluster", "platform-prod", now="2026-11-20T12:00:00Z")
    assert r.code == 1, r.err  # no telemetry: the cut is withheld (no data), and says so
    d = r.json()["clusters"][0]
    assert d["direction"] == "lower" and "no burn rate" in d["withheld"][0]
    r = cli(*args, "--apply", now="2026-11-20T12:00:00Z")
    assert r.code == 2 and "VIGIL_NOW" in r.err
    r = cli(*args, "--allow-overspend", "10")
    assert r.code == 2 and "--apply" in r.err
    r = cli(*args, "--cluster", "nope", now="2026-11-20T12:00:00Z")
    assert r.code == 2 and "unknown cluster" in r.err
    assert db is not None and datetime.now(timezone.utc)
