"""The platform's custom metrics to CloudWatch (issue 10): job success (a counter), the outbox
backlog and index staleness (gauges), a job's duration (an observation), as Embedded Metric Format
lines and through PutMetricData, on moto (AWS cannot run here; moto does not extract metrics from
EMF logs, so the lines are checked against the EMF document structure AWS specifies and read back).

What is checked: the lines' structure and limits (100 metrics a directive, 100 values a metric,
dimension keys present), nothing lost or doubled (the lines and the stored datapoints add up to the
input), batches within PutMetricData's limits (1000 datums, 150 values a datum, 1 MB), every limit
checked before anything is sent, and retries only of what cannot have been stored."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import boto3
import jsonschema
import pytest
from aws_helpers import inject, moto_account
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from vigil.telemetry.out.cloudwatch import (
    MAX_DATUMS,
    OutError,
    PublishError,
    Target,
    batches,
    datums,
    emf_lines,
    put_metric_data,
)

REGION = "eu-west-1"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
TARGET = Target("Platform/Jobs", {"job": "JobName", "queue": "Queue", "class": "EntityClass"})

# the EMF document structure (AWS's specification: root node, metadata object, MetricDirective)
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array", "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {"type": "array", "items": {"type": "array", "maxItems": 30, "items": {"type": "string", "minLength": 1}}},
                            "Metrics": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
                                "type": "object", "required": ["Name"],
                                "properties": {"Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                                               "Unit": {"type": "string"}}}},
                        },
                    },
                },
            },
        }
    },
}


def ts(minutes_ago: float, second: int = 0) -> str:
    return (NOW - timedelta(minutes=minutes_ago) + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


def platform_rows(minutes: int = 30) -> list[dict]:
    rows = []
    for i in range(minutes):
        m = minutes - i
        for job, ok, failed in (("dsar", 3, 0), ("email", 40, 1 if i % 7 == 0 else 0), ("indexer", 12, 0)):
            rows.append({"ts": ts(m, 10), "metric": "job_runs", "labels": {"job": job, "outcome": "success"}, "inc": ok})
            if failed:
                rows.append({"ts": ts(m, 20), "metric": "job_runs", "labels": {"job": job, "outcome": "failure"}, "inc": failed})
            rows.append({"ts": ts(m, 30), "metric": "job_duration_seconds", "labels": {"job": job}, "observe": 0.25 + (i % 5) * 0.5, "count": ok})
        for s in (0, 30):
            rows.append({"ts": ts(m, s), "metric": "queue_depth", "labels": {"queue": "outbox"}, "set": 100 + (i * 37 + s) % 250})
            rows.append({"ts": ts(m, s), "metric": "index_staleness_seconds", "labels": {"class": "hot"}, "set": float((i * 11 + s) % 400)})
    return rows


def _minute(t: str) -> int:
    return int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()) // 60


def expected(rows: list[dict]) -> tuple[dict, dict]:
    """(counter sums, value multisets) per (metric, sorted dimensions, minute)."""
    sums: Counter = Counter()
    vals: dict = {}
    for r in rows:
        dims = tuple(sorted((TARGET.dimensions.get(k, k), v) for k, v in r["labels"].items()))
        key = (r["metric"], dims, _minute(r["ts"]))
        if "inc" in r:
            sums[key] += r["inc"]
        else:
            c = vals.setdefault(key, Counter())
            c[float(r.get("observe", r.get("set")))] += r.get("count", 1)
    return dict(sums), vals


# -- EMF --------------------------------------------------------------------------------------------


def test_emf_lines_follow_the_specification_and_lose_nothing():
    rows = platform_rows()
    lines = emf_lines(rows, TARGET, now_ms=NOW_MS)
    sums: Counter = Counter()
    vals: dict = {}
    for line in lines:
        doc = json.loads(line)
        jsonschema.validate(doc, EMF_SCHEMA)
        (d,) = doc["_aws"]["CloudWatchMetrics"]
        assert d["Namespace"] == "Platform/Jobs"
        for dimset in d["Dimensions"]:
            assert all(isinstance(doc[k], str) for k in dimset)  # every dimension key is a member of the root
        dims = tuple(sorted((k, doc[k]) for k in d["Dimensions"][0]))
        minute = doc["_aws"]["Timestamp"] // 60_000
        assert doc["_aws"]["Timestamp"] % 60_000 == 0
        for m in d["Metrics"]:
            v = doc[m["Name"]]
            key = (m["Name"], dims, minute)
            if m["Unit"] == "Count":
                sums[key] += v
            else:
                vs = v if isinstance(v, list) else [v]
                assert len(vs) <= 100
                vals.setdefault(key, Counter()).update(vs)
    want_sums, want_vals = expected(rows)
    assert dict(sums) == want_sums and vals == want_vals
    units = {m["Name"]: m["Unit"] for line in lines for m in json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"job_runs": "Count", "job_duration_seconds": "Seconds", "queue_depth": "None", "index_staleness_seconds": "None"}


def test_a_heavy_observation_is_spread_over_lines_of_100_values():
    rows = [{"ts": ts(3), "metric": "job_duration_seconds", "labels": {"job": "dsar"}, "observe": 0.5, "count": 250},
            {"ts": ts(3), "metric": "job_duration_seconds", "labels": {"job": "dsar"}, "observe": 1.5, "count": 1}]
    lines = [json.loads(x) for x in emf_lines(rows, TARGET, now_ms=NOW_MS)]
    assert [len(d["job_duration_seconds"]) if isinstance(d["job_duration_seconds"], list) else 1 for d in lines] == [100, 100, 51]
    assert Counter(v for d in lines for v in d["job_duration_seconds"]) == {0.5: 250, 1.5: 1}


def test_more_than_100_metrics_of_one_dimension_set_go_on_several_lines():
    rows = [{"ts": ts(2), "metric": f"m{i:03d}", "labels": {"job": "x"}, "inc": 1} for i in range(250)]
    lines = [json.loads(x) for x in emf_lines(rows, TARGET, now_ms=NOW_MS)]
    assert [len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for d in lines] == [100, 100, 50]


def test_a_metric_named_like_a_dimension_is_refused():
    with pytest.raises(OutError, match="name of a dimension"):
        emf_lines([{"ts": ts(1), "metric": "JobName", "labels": {"job": "x"}, "inc": 1}], TARGET, now_ms=NOW_MS)


# -- PutMetricData on moto -------------------------------------------------------------------------------


@pytest.fixture
def cw(monkeypatch):
    with moto_account(monkeypatch, REGION):
        yield boto3.client("cloudwatch", region_name=REGION, config=Config(retries={"max_attempts": 1}))


def _stored(cw, metric: str, dims: tuple, stat: str) -> dict[int, float]:
    r = cw.get_metric_statistics(Namespace="Platform/Jobs", MetricName=metric, Dimensions=[{"Name": n, "Value": v} for n, v in dims],
                                 StartTime=NOW - timedelta(hours=2), EndTime=NOW + timedelta(minutes=5), Period=60, Statistics=[stat])
    return {int(p["Timestamp"].timestamp()) // 60: p[stat] for p in r["Datapoints"]}


def test_put_metric_data_stores_exactly_what_was_pushed(cw):
    rows = platform_rows()
    sent: list[dict] = []
    cw.meta.events.register("provide-client-params.cloudwatch.PutMetricData", lambda params, **kw: sent.append(params))
    rep = put_metric_data(cw, rows, TARGET, now_ms=NOW_MS)
    assert rep.stored == rep.requests == len(sent) and not rep.retried
    want_sums, want_vals = expected(rows)
    for (metric, dims, minute), total in want_sums.items():
        assert _stored(cw, metric, dims, "Sum")[minute] == total
    for (metric, dims, minute), c in want_vals.items():
        assert _stored(cw, metric, dims, "SampleCount")[minute] == sum(c.values())
        assert _stored(cw, metric, dims, "Maximum")[minute] == max(c)
    assert {d["Unit"] for p in sent for d in p["MetricData"] if d["MetricName"] == "job_runs"} == {"Count"}


def test_batches_stay_within_putmetricdatas_limits(cw):
    # 2,600 series minutes, and one minute with 400 distinct values
    rows = [{"ts": ts(1 + i % 60), "metric": "job_runs", "labels": {"job": f"j{i // 60}", "outcome": "success"}, "inc": 1} for i in range(2600)]
    rows += [{"ts": ts(5), "metric": "job_duration_seconds", "labels": {"job": "wide"}, "observe": 0.001 * (k + 1)} for k in range(400)]
    ds = datums(rows, TARGET, now_ms=NOW_MS)
    plan = batches(ds)
    assert all(len(b) <= MAX_DATUMS for _, b in plan) and len(plan) == 3
    wide = [d for _, b in plan for d in b if d["MetricName"] == "job_duration_seconds"]
    assert [len(d["Values"]) for d in wide] == [150, 150, 100]
    sizes: list[int] = []
    cw.meta.events.register("before-send.cloudwatch.PutMetricData", lambda request, **kw: sizes.append(len(request.body or b"")))
    rep = put_metric_data(cw, rows, TARGET, now_ms=NOW_MS)
    assert rep.requests == 3 and max(sizes) < 1_000_000
    assert sum(_stored(cw, "job_duration_seconds", (("JobName", "wide"),), "SampleCount").values()) == 400


@pytest.mark.parametrize("row,match", [
    ({"set": float("nan")}, "not a value CloudWatch stores"),
    ({"inc": -1}, "whole number, 0 or more"),
    ({"inc": 1.5}, "whole number, 0 or more"),
    ({"observe": 0.2, "count": 0}, "count must be a whole number"),
    ({"inc": 1, "labels": {f"l{i}": "v" for i in range(31)}}, "at most 30 dimensions"),
    ({"inc": 1, "ts": "2026-11-01T00:00:00Z"}, "more than two weeks old"),
    ({"inc": 1, "ts": "2026-11-20T15:00:00Z"}, "more than two hours ahead"),
    ({"inc": 1, "labels": {"job": ""}}, "dimension value is 1 to 1024"),
    ({"inc": 1, "set": 2}, "exactly one of inc, observe, set"),
])
def test_a_bad_row_is_refused_with_its_number_and_nothing_is_sent(cw, row, match):
    rows = platform_rows(3)
    bad = {"ts": ts(1), "metric": "job_runs", "labels": {"job": "x"}, **row}
    calls: list = []
    cw.meta.events.register("before-call.cloudwatch.PutMetricData", lambda **kw: calls.append(1))
    with pytest.raises(OutError, match=match) as e:
        put_metric_data(cw, rows + [bad], TARGET, now_ms=NOW_MS)
    assert e.value.message.startswith(f"row {len(rows) + 1}:") and e.value.exit_code == 2
    assert calls == [] and cw.list_metrics()["Metrics"] == []


def test_throttling_is_sent_again_and_stored_once(cw):
    rows = platform_rows(5)
    waits: list[float] = []
    seen = inject(cw, "PutMetricData", ["Throttling", "Throttling"])
    rep = put_metric_data(cw, rows, TARGET, now_ms=NOW_MS, sleep=waits.append)
    assert seen == ["Throttling", "Throttling"] and rep.retried == 2 and rep.stored == 1 and len(waits) == 2
    want_sums, _ = expected(rows)
    for (metric, dims, minute), total in want_sums.items():
        assert _stored(cw, metric, dims, "Sum")[minute] == total  # once, not three times


def test_a_refused_connection_is_sent_again_because_nothing_left(cw):
    rows = platform_rows(2)
    left = [2]

    def refuse(**kw):
        if left[0]:
            left[0] -= 1
            raise EndpointConnectionError(endpoint_url="https://monitoring.eu-west-1.amazonaws.com")

    cw.meta.events.register("before-call.cloudwatch.PutMetricData", refuse)
    rep = put_metric_data(cw, rows, TARGET, now_ms=NOW_MS, sleep=lambda s: None)
    assert rep.retried == 2 and rep.stored == 1


def test_a_5xx_or_a_lost_answer_is_not_sent_again_and_is_reported(cw):
    rows = [{"ts": ts(1 + i % 60), "metric": "job_runs", "labels": {"job": f"j{i // 60}", "outcome": "success"}, "inc": 1} for i in range(2600)]
    n = [0]

    def second_fails(**kw):
        n[0] += 1
        if n[0] == 2:
            return inject_response(500, "InternalServiceError")
        return None

    cw.meta.events.register("before-call.cloudwatch.PutMetricData", second_fails)
    with pytest.raises(PublishError) as e:
        put_metric_data(cw, rows, TARGET, now_ms=NOW_MS, sleep=lambda s: None)
    rep = e.value.report
    assert rep.stored == 1 and rep.uncertain == [1] and rep.not_sent == [2] and rep.retried == 0 and n[0] == 2
    assert e.value.exit_code == 3 and "InternalServiceError" in e.value.message

    def lost(**kw):
        raise ReadTimeoutError(endpoint_url="https://monitoring.eu-west-1.amazonaws.com")

    cw.meta.events.unregister("before-call.cloudwatch.PutMetricData", second_fails)
    cw.meta.events.register("before-call.cloudwatch.PutMetricData", lost)
    with pytest.raises(PublishError, match="may have been stored") as e:
        put_metric_data(cw, rows[:10], TARGET, now_ms=NOW_MS, sleep=lambda s: None)
    assert e.value.report.uncertain == [0] and e.value.report.retried == 0


def inject_response(status: int, code: str):
    class _Resp:
        status_code = status
        headers: dict = {}
        content = b""

    return _Resp(), {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}}


# -- the CLI ---------------------------------------------------------------------------------------------


SPEC = """version: 1
services: {api: {}}
telemetry:
  source:
    kind: cloudwatch
    region: eu-west-1
    namespace: Platform/Jobs
    dimensions: {job: JobName, queue: Queue, class: EntityClass}
    metrics:
      job_duration_seconds: {kind: observation, unit_seconds: '0.001'}
"""


def test_cli_emf_and_put(cli, tmp_path, monkeypatch):
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    f = tmp_path / "jobs.ndjson"
    rows = platform_rows(4)
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    now = "2026-11-20T12:00:00Z"
    r = cli("cloudwatch", "emf", f, "--spec", spec, now=now)
    assert r.code == 0, r.err
    docs = [json.loads(x) for x in r.out.splitlines()]
    assert docs and all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Platform/Jobs" for d in docs)
    ms = [d["job_duration_seconds"] for d in docs if "job_duration_seconds" in d]
    assert 250.0 in [v for x in ms for v in (x if isinstance(x, list) else [x])]  # 0.25 s in milliseconds
    r = cli("cloudwatch", "emf", f, "--namespace", "Other", now=now)
    assert r.code == 0 and json.loads(r.out.splitlines()[0])["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Other"
    with moto_account(monkeypatch, REGION):
        r = cli("cloudwatch", "put", f, "--spec", spec, "--json", now=now)
        assert r.code == 0, r.err
        assert json.loads(r.out)["batches_stored"] == 1
        f.write_text(f.read_text() + '{"ts": "2026-11-20T11:59:00Z", "metric": "job_runs", "inc": -3}\n')
        before = len(boto3.client("cloudwatch", region_name=REGION).list_metrics()["Metrics"])
        r = cli("cloudwatch", "put", f, "--spec", spec, now=now)
        assert r.code == 2 and f"row {len(rows) + 1}" in r.err
        assert len(boto3.client("cloudwatch", region_name=REGION).list_metrics()["Metrics"]) == before
    r = cli("cloudwatch", "put", f, "--spec", tmp_path / "nope.yaml", now=now)
    assert r.code == 2
