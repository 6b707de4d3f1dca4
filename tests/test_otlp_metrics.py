"""OTLP metrics -> counters, gauges and observations (issue 10): the pure mapping by hand (what is
exact, what is approximated and in which direction), then /v1/metrics on a live vigil with the stock
SDK metric exporter, replays and the streams' state across a restart."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from fractions import Fraction

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otlp_helpers import AUTH, TOKEN, attr, counters, live, metrics_response, ns, observations, post, snapshot, utc
from vigil.clock import FakeClock, SystemClock
from vigil.histogram import DEFAULT_WIDTH, bucket_of, storage_bounds
from vigil.store import open_store
from vigil.telemetry.otlp.metrics import MAX_FLOAT, MetricRules, convert, map_metrics

NOW = utc("2026-11-20T12:00:00Z")
SINCE = ns(NOW - timedelta(hours=1))
RULES = MetricRules(now_ms=int(NOW.timestamp() * 1000), oldest_ms=int((NOW - timedelta(days=60)).timestamp() * 1000), max_future_ms=600_000)
DELTA, CUMULATIVE = 1, 2


def at(minutes: float) -> int:
    """ns at NOW - 30 min + minutes."""
    return ns(NOW - timedelta(minutes=30)) + int(minutes * 60 * 1e9)


def request(*metrics, service: str = "api") -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(attr("service.name", service))
    sm = rm.scope_metrics.add()
    sm.scope.name = "test"
    for m in metrics:
        sm.metrics.append(m)
    return req


def sum_metric(name: str, points, *, temporality: int = CUMULATIVE, monotonic: bool = True, unit: str = "", attrs=None):
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

    m = Metric(name=name, unit=unit)
    m.sum.aggregation_temporality = temporality
    m.sum.is_monotonic = monotonic
    for start, t, v in points:
        p = m.sum.data_points.add(start_time_unix_nano=start, time_unix_nano=t)
        if isinstance(v, float):
            p.as_double = v
        else:
            p.as_int = v
        p.attributes.extend([attr(k, x) for k, x in (attrs or {}).items()])
    return m


def hist_metric(name: str, points, *, temporality: int = DELTA, unit: str = "s"):
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

    m = Metric(name=name, unit=unit)
    m.histogram.aggregation_temporality = temporality
    for start, t, bounds, counts, mx in points:
        p = m.histogram.data_points.add(start_time_unix_nano=start, time_unix_nano=t, explicit_bounds=bounds, bucket_counts=counts,
                                        count=sum(counts))
        if mx is not None:
            p.max = mx
    return m


def exp_metric(name: str, points, *, temporality: int = DELTA, unit: str = "s"):
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

    m = Metric(name=name, unit=unit)
    m.exponential_histogram.aggregation_temporality = temporality
    for start, t, scale, zero, offset, counts in points:
        p = m.exponential_histogram.data_points.add(start_time_unix_nano=start, time_unix_nano=t, scale=scale, zero_count=zero)
        p.positive.offset = offset
        p.positive.bucket_counts.extend(counts)
    return m


def run(req, states=None, since=SINCE):
    batch = map_metrics(req, RULES)
    pts = [p for p in batch.points if p is not None]
    conv = convert(pts, {p.stream: (states or {}).get(p.stream) for p in pts if p.stream}, since)
    return batch, conv


def values(conv, field: str) -> list:
    return [(ln["metric"], ln[field], ln.get("count", 1)) if field == "observe" else (ln["metric"], ln[field])
            for _, ln in conv.lines if field in ln]


# -- sums ----------------------------------------------------------------------------------------------


def test_delta_sums_count_each_point_once_in_order():
    req = request(sum_metric("jobs.done", [(at(0), at(1), 5), (at(1), at(2), 7), (at(1), at(2), 7), (at(0), at(1), 5)], temporality=DELTA))
    batch, conv = run(req)
    assert values(conv, "inc") == [("jobs_done", 5), ("jobs_done", 7)]  # the repeats are retries, not new counts
    key = batch.points[0].stream
    # the next request: a point at or before the stream's last one is a duplicate
    _, conv2 = run(request(sum_metric("jobs.done", [(at(1), at(2), 7), (at(2), at(3), 1)], temporality=DELTA)), conv.states)
    assert values(conv2, "inc") == [("jobs_done", 1)]
    assert conv2.states[key].time_ns == at(3)


def test_cumulative_sums_count_increases_resets_and_a_first_point_by_its_start():
    s = SINCE + 1  # a process started after vigil began taking OTLP metrics
    pts = [(s, at(1), 10), (s, at(2), 25), (s, at(2), 25), (s, at(3), 30)]
    _, conv = run(request(sum_metric("orders", pts)))
    assert [v for _, v in values(conv, "inc")] == [10, 15, 5]
    # a restart: a new start time counts everything since it; a value below the last one is a reset too
    s2 = at(3.5)
    _, conv2 = run(request(sum_metric("orders", [(s2, at(4), 4), (s2, at(5), 2), (s, at(4.5), 99)])), conv.states)
    assert [v for _, v in values(conv2, "inc")] == [4, 2]  # 4 since the restart, then a reset to 2; the old incarnation ignored
    # a process that ran before vigil took metrics: its first point is the baseline
    _, conv3 = run(request(sum_metric("orders", [(SINCE - 10**9, at(1), 1000), (SINCE - 10**9, at(2), 1004)], attrs={"x": "y"})))
    assert [v for _, v in values(conv3, "inc")] == [4]
    # start == time (no interval) is a baseline too
    _, conv4 = run(request(sum_metric("orders", [(at(1), at(1), 9)], attrs={"x": "z"})))
    assert values(conv4, "inc") == [] and len(conv4.states) == 1


def test_counter_increases_must_be_whole_and_the_rest_maps_to_gauges():
    req = request(
        sum_metric("cpu.time", [(SINCE + 1, at(1), 1.5)]),                                  # not a whole number of events
        sum_metric("bytes", [(SINCE + 1, at(1), 2048.0)]),                                   # a whole double is fine
        sum_metric("queue.depth", [(at(0), at(1), 17)], monotonic=False),                  # an UpDownCounter: a level
        sum_metric("queue.delta", [(at(0), at(1), -3)], monotonic=False, temporality=DELTA),
    )
    batch, conv = run(req)
    assert "not a whole number" in conv.rejected[0]
    assert "non-monotonic delta sum" in batch.rejected[3]
    assert values(conv, "inc") == [("bytes", 2048)]
    assert values(conv, "set") == [("queue_depth", 17)]


def test_gauges_names_and_labels():
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

    m = Metric(name="index.staleness-seconds", unit="s")
    p = m.gauge.data_points.add(time_unix_nano=at(1), as_double=41.5)
    p.attributes.extend([attr("class", "hot"), attr("http.route", "/x"), attr("service", "shadow"), attr("9lives", True)])
    nan = m.gauge.data_points.add(time_unix_nano=at(1), as_double=math.nan)
    skipped = m.gauge.data_points.add(time_unix_nano=at(1), as_double=1.0, flags=1)
    del nan, skipped
    batch, conv = run(request(m))
    assert batch.skipped == 1 and "not a finite number" in batch.rejected[1]
    (_, line), = conv.lines
    assert line["metric"] == "index_staleness_seconds" and line["set"] == 41.5
    assert line["labels"] == {"service": "api", "class": "hot", "http_route": "/x", "attr_service": "shadow", "_9lives": "true"}
    assert line["ts"] == "2026-11-20T11:31:00.000Z"


# -- histograms -----------------------------------------------------------------------------------------


def test_histogram_buckets_are_observed_at_their_upper_bound():
    pts = [(at(0), at(1), [0.1, 0.3, 1.0], [5, 3, 2, 1], None), (at(1), at(2), [0.1, 0.3, 1.0], [0, 0, 1, 1], 2.5)]
    _, conv = run(request(hist_metric("http.server.request.duration", pts)))
    assert values(conv, "observe") == [
        ("http_server_request_duration_seconds", 0.1, 5), ("http_server_request_duration_seconds", 0.3, 3),
        ("http_server_request_duration_seconds", 1.0, 2), ("http_server_request_duration_seconds", MAX_FLOAT, 1),  # +Inf
        ("http_server_request_duration_seconds", 1.0, 1), ("http_server_request_duration_seconds", 2.5, 1),  # the overflow at max
    ]
    # milliseconds become seconds exactly: 300 ms is the float 0.3, vigil's bound
    _, conv = run(request(hist_metric("rpc.duration", [(at(0), at(1), [100.0, 300.0], [1, 2, 0], 250.0)], unit="ms")))
    assert values(conv, "observe") == [("rpc_duration_seconds", 0.1, 1), ("rpc_duration_seconds", 0.25, 2)]  # capped by max
    assert 300.0 / 1000 == 0.3


def test_cumulative_histograms_are_differenced_per_bucket():
    s = SINCE + 1
    b = [0.1, 0.3]
    pts = [(s, at(1), b, [1, 1, 0], None), (s, at(2), b, [3, 1, 1], None)]
    _, conv = run(request(hist_metric("lat", pts, temporality=CUMULATIVE)))
    assert values(conv, "observe") == [("lat_seconds", 0.1, 1), ("lat_seconds", 0.3, 1), ("lat_seconds", 0.1, 2), ("lat_seconds", MAX_FLOAT, 1)]
    # a reset (a bucket went down) counts the whole point; new bounds without a new start are a baseline
    _, conv2 = run(request(hist_metric("lat", [(s, at(3), b, [0, 1, 0], None), (s, at(4), [0.2], [5, 5], None)], temporality=CUMULATIVE)),
                   conv.states)
    assert values(conv2, "observe") == [("lat_seconds", 0.3, 1)]
    assert "bounds changed" in conv2.warnings[0]


def test_exponential_histograms_and_their_scale_changes():
    # scale 0: base 2, bucket k = (2^k, 2^(k+1)]; offset -1 -> (0.5, 1], (1, 2]
    _, conv = run(request(exp_metric("op", [(at(0), at(1), 0, 2, -1, [3, 1])])))
    assert values(conv, "observe") == [("op_seconds", 0.0, 2), ("op_seconds", 1.0, 3), ("op_seconds", 2.0, 1)]
    # scale 3: the upper bound of bucket 7 is 2^(8/8) = 2
    _, conv = run(request(exp_metric("op2", [(at(0), at(1), 3, 0, 7, [1])])))
    assert values(conv, "observe") == [("op2_seconds", 2.0, 1)]
    # cumulative with a downscale: at scale 1 buckets 2 and 3 are (2, 2^1.5] and (2^1.5, 4]; at scale 0
    # both are bucket 1, (2, 4]: the next point's 5 there is 3 more
    s = SINCE + 1
    pts = [(s, at(1), 1, 0, 2, [1, 1]), (s, at(2), 0, 0, 1, [5])]
    _, conv = run(request(exp_metric("op3", pts, temporality=CUMULATIVE)))
    assert values(conv, "observe") == [("op3_seconds", 2 ** 1.5, 1), ("op3_seconds", 4.0, 1), ("op3_seconds", 4.0, 3)]


def test_summaries_and_negative_buckets_are_refused():
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

    m = Metric(name="old.summary")
    m.summary.data_points.add(time_unix_nano=at(1), count=3, sum=1.0)
    e = exp_metric("neg", [(at(0), at(1), 0, 0, 0, [1])])
    e.exponential_histogram.data_points[0].negative.bucket_counts.append(2)
    batch, conv = run(request(m, e))
    assert "summary" in batch.rejected[0] and "negative" in batch.rejected[1] and conv.lines == []


# -- over HTTP -------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def test_the_sdk_metric_exporter_cumulative_counters_and_histograms_are_exact(store):
    with live(store, SystemClock()) as srv:
        exporter = OTLPMetricExporter(endpoint=srv.url + "/v1/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        mp = MeterProvider(resource=Resource.create({"service.name": "checkout"}), metric_readers=[reader])
        meter = mp.get_meter("test")
        attempts = meter.create_counter("checkout.attempts")
        lat = meter.create_histogram("http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 0.3, 1.0])
        attempts.add(5, {"outcome": "success"})
        attempts.add(1, {"outcome": "issuer_declined"})
        for v in (0.05, 0.25, 0.3, 0.7):
            lat.record(v, {"http.route": "/pay"})
        mp.force_flush()
        attempts.add(3, {"outcome": "success"})
        lat.record(0.31, {"http.route": "/pay"})
        mp.force_flush()
        mp.force_flush()  # nothing new: the same cumulative values again count nothing
        mp.shutdown()
    c = {tuple(sorted(json.loads(k).items())): v for k, v in counters(store, "checkout_attempts").items()}
    assert c == {(("outcome", "success"), ("service", "checkout")): 8, (("outcome", "issuer_declined"), ("service", "checkout")): 1}
    obs = {le: n for (_, le), n in observations(store, "http_server_request_duration_seconds").items()}
    # exact at 100 ms and 300 ms (bounds of both); the (0.3, 1] bucket is observed at the point's max,
    # 0.7 s, a tighter upper bound than 1 s, which falls in the bucket of the store's 2% layout that
    # holds 0.7 s (its upper bound, 0.7 s itself)
    _, upper = bucket_of(storage_bounds(DEFAULT_WIDTH), 0.7)
    assert upper == Fraction(7, 10)
    assert obs == {100_000_000: 1, 300_000_000: 2, 700_000_000: 2}


def test_metrics_replays_partial_success_and_state_across_a_restart(store):
    s = ns(NOW) + 1  # started after the receiver
    first = request(sum_metric("jobs", [(s, ns(NOW) + 60 * 10**9, 10)]), hist_metric("x", [(0, ns(NOW), [1.0], [1, 0], None)]))
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

    summ = Metric(name="legacy")
    summ.summary.data_points.add(time_unix_nano=ns(NOW), count=1)
    first.resource_metrics[0].scope_metrics[0].metrics.append(summ)
    body = first.SerializeToString()
    clock = FakeClock(NOW)
    with live(store, clock) as srv:
        r = post(srv.url, "/v1/metrics", body)
        ps = metrics_response(r).partial_success
        assert r.status_code == 200 and ps.rejected_data_points == 1 and "summary" in ps.error_message
        r2 = post(srv.url, "/v1/metrics", body)
        assert r2.headers["idempotent-replayed"] == "true" and r2.content == r.content
    assert sum(counters(store, "jobs").values()) == 10
    # a new server on the same store: the stream's last point was persisted
    with live(store, FakeClock(NOW + timedelta(minutes=5))) as srv:
        nxt = request(sum_metric("jobs", [(s, ns(NOW) + 120 * 10**9, 17), (s, ns(NOW) + 60 * 10**9, 10)]))
        r = post(srv.url, "/v1/metrics", nxt.SerializeToString())
        assert r.status_code == 200 and not metrics_response(r).HasField("partial_success")
        before = snapshot(store)
        r = post(srv.url, "/v1/metrics", b"\x12\x34", {**AUTH, "Content-Type": "application/x-protobuf"})
        assert r.status_code == 400 and snapshot(store) == before
    assert sum(counters(store, "jobs").values()) == 17
