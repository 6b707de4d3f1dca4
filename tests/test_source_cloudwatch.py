"""The CloudWatch source on moto (AWS cannot run here; tests/cloudwatch_moto.py says what moto does
not model and what is taught to it: TC(x:y) statistics and SUM/MAX metric math).

The conformance dataset goes out through vigil's own PutMetricData writer (counters as per-minute
sums, observations as Values/Counts in milliseconds, gauges as values) and reads back through the
source: every read equals the brute-force reference, with metric math and without."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from aws_helpers import inject, moto_account
from cloudwatch_moto import with_tc_and_math
from source_conformance import NOW, check_source, dataset

from vigil.errors import ExternalError
from vigil.selector import parse_selector
from vigil.telemetry.out.cloudwatch import Target, put_metric_data
from vigil.telemetry.sources.cloudwatch import CloudWatchSource, segments, stat_tc
from vigil.telemetry.sources.prometheus import SourceError
from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery, ReadPlan
from vigil.telemetry.spec import CloudWatchSourceSpec

REGION = "eu-west-1"
NOW_MS = int(NOW.timestamp() * 1000)


def cw_spec(**extra) -> CloudWatchSourceSpec:
    return CloudWatchSourceSpec.model_validate({
        "kind": "cloudwatch", "region": REGION, "namespace": "Platform",
        "dimensions": {"service": "ServiceName"},
        "metrics": {
            "http_requests": {"kind": "counter"},
            "http_request_duration_seconds": {"kind": "observation", "name": "Latency", "unit_seconds": "0.001"},
            "index_staleness_seconds": {"kind": "gauge", "namespace": "Platform/Search"},
        },
        **extra,
    })


@pytest.fixture
def cloudwatch(monkeypatch):
    with moto_account(monkeypatch, REGION), with_tc_and_math():
        yield boto3.client("cloudwatch", region_name=REGION)


def test_cloudwatch_source_conforms_with_sums_made_by_vigil(cloudwatch):
    """metric_math: false (the metric-math run is tests/test_source_conformance.py's loader)."""
    rows = dataset()
    spec = cw_spec(metric_math=False)
    rep = put_metric_data(cloudwatch, rows, Target.of(spec), now_ms=NOW_MS)
    assert rep.stored == rep.requests and not rep.uncertain and not rep.not_sent
    src = CloudWatchSource(spec, client=cloudwatch, now_ms=lambda: NOW_MS)
    check_source(src, rows)


def test_metric_math_sums_in_cloudwatch_and_returns_only_the_sum(cloudwatch):
    """With metric_math the metrics are fetched with ReturnData false and one SUM([...]) comes back."""
    rows = dataset()
    spec = cw_spec()
    put_metric_data(cloudwatch, rows, Target.of(spec), now_ms=NOW_MS)
    sent: list[dict] = []
    cloudwatch.meta.events.register("provide-client-params.cloudwatch.GetMetricData", lambda params, **kw: sent.append(params))
    src = CloudWatchSource(spec, client=cloudwatch, now_ms=lambda: NOW_MS)
    m0 = int(NOW.timestamp()) // 60 - 200
    (total,) = src.counter_sums(CounterQuery(parse_selector('http_requests{service="api"}')), [m0], m0 + 120)
    assert total > 0
    qs = sent[-1]["MetricDataQueries"]
    exprs = [q for q in qs if "Expression" in q]
    stats = [q for q in qs if "MetricStat" in q]
    assert len(exprs) == 1 and exprs[0]["Expression"].startswith("SUM([") and exprs[0]["ReturnData"] is True
    assert len(stats) == 3 and all(q["ReturnData"] is False and q["MetricStat"]["Stat"] == "Sum" for q in stats)
    assert {d["Value"] for q in stats for d in q["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "ServiceName"} == {"api"}


def test_a_latency_threshold_is_a_trimmed_count_in_the_metrics_unit(cloudwatch):
    spec = cw_spec()
    ts = datetime.fromtimestamp(NOW_MS // 1000 - 600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [{"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": v, "count": n}
            for v, n in ((0.1, 5), (0.3, 7), (0.300001, 2), (2.5, 1))]
    put_metric_data(cloudwatch, rows, Target.of(spec), now_ms=NOW_MS)
    src = CloudWatchSource(spec, client=cloudwatch, now_ms=lambda: NOW_MS)
    m = NOW_MS // 60_000 - 10
    q = ObservationQuery(parse_selector('http_request_duration_seconds{service="api"}'), 300_000_000)
    assert src.observation_counts(q, [m], m + 1) == [(12, 15)]  # 0.3 s is good (at the threshold), 0.300001 s is not
    assert stat_tc(300_000_000, spec.metrics["http_request_duration_seconds"].unit_seconds) == "TC(:300)"


def test_resolution_zones_count_only_whole_periods():
    now = 30 * 1440 * 10 + 7  # a minute that is not on a 5-minute boundary
    day = 1440
    # a 30-day window: hours before 63 days (none), 5-minute periods from 30 to 15 days back, minutes after
    segs = segments(now - 30 * day + 3, now, now)
    assert [p for _, _, p in segs] == [5, 1]
    (a5, b5, _), (a1, b1, _) = segs
    assert a5 % 5 == 0 and a5 >= now - 30 * day + 3 and a5 - (now - 30 * day + 3) < 5  # the oldest partial period is left out
    assert b5 == a1 and b5 % 5 == 0 and b5 >= now - 15 * day  # no 1-minute read further back than 15 days
    assert b1 == now
    segs = segments(now - 100 * day, now - 50 * day, now)
    assert [p for _, _, p in segs] == [60, 5] and segs[0][0] % 60 == 0 and segs[0][1] == segs[1][0]
    assert segments(now - 10, now - 9, now) == [(now - 10, now - 9, 1)]


def test_aws_failures_are_external_errors_with_a_hint(cloudwatch):
    spec = cw_spec()
    put_metric_data(cloudwatch, dataset()[:50], Target.of(spec), now_ms=NOW_MS)
    src = CloudWatchSource(spec, client=cloudwatch, now_ms=lambda: NOW_MS)
    inject(cloudwatch, "ListMetrics", ["AccessDenied"], status=403)
    with pytest.raises(SourceError) as e:
        src.matched(parse_selector("http_requests"), "counter")
    assert isinstance(e.value, ExternalError) and e.value.exit_code == 3
    assert "AccessDenied" in e.value.message and "cloudwatch:ListMetrics" in e.value.hint
    src = CloudWatchSource(spec, client=cloudwatch, now_ms=lambda: NOW_MS)
    inject(cloudwatch, "GetMetricData", ["InternalServiceError"], status=500)
    m = NOW_MS // 60_000
    with pytest.raises(SourceError, match="InternalServiceError"):
        src.prefetch(ReadPlan(end=m, starts=[m - 300], counters=[CounterQuery(parse_selector("http_requests"))]))


def test_a_fractional_sum_is_an_error_not_a_rounded_count(cloudwatch):
    spec = cw_spec()
    ts = datetime.fromtimestamp(NOW_MS // 1000 - 600, timezone.utc)
    cloudwatch.put_metric_data(Namespace="Platform", MetricData=[
        {"MetricName": "http_requests", "Dimensions": [{"Name": "ServiceName", "Value": "api"}], "Timestamp": ts, "Value": 2.5}])
    src = CloudWatchSource(spec, client=cloudwatch, now_ms=lambda: NOW_MS)
    m = NOW_MS // 60_000
    with pytest.raises(SourceError, match="not a whole number"):
        src.counter_sums(CounterQuery(parse_selector("http_requests")), [m - 30], m)
