"""The Prometheus source: counting against a real Prometheus (resets, gaps, a first sample, whole
numbers, bucket bounds), and every failure of the HTTP API answered by a real HTTP server on
loopback (refused connection, timeout, 429 with Retry-After, 5xx, a refused query, a partial answer,
not JSON, a redirect, 401), headers from the environment and from a private file, and the
netguard rules for the URL."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prom_helpers import Prometheus, free_port, need_prometheus, prometheus_spec

from vigil.errors import ExternalError, UsageError
from vigil.selector import parse_selector
from vigil.telemetry.sources.prometheus import (
    PrometheusSource,
    SourceError,
    increments,
    parse_le,
    promql_selector,
    promql_string,
)
from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery

T0 = 1_795_000_000 // 3600 * 3600  # a whole hour in 2026
M0 = T0 // 60


# -- a real Prometheus over hand-written OpenMetrics ------------------------------------------------


def _om(lines: list[str]) -> str:
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    """Series written by hand, as a scrape would: a counter that resets, one with a two-day gap,
    one that starts at 40 (no zero), one with fractional values, and a histogram."""
    import subprocess

    from prom_helpers import PROMTOOL

    need_prometheus()
    work = tmp_path_factory.mktemp("prom")
    lines = ["# TYPE jobs counter"]
    # resets: 0 5 9 | 3 7 (a restart between 9 and 3) -> 5 + 4 + 3 + 4 = 16, one sample a minute from T0
    for i, v in enumerate([0, 5, 9, 3, 7]):
        lines.append(f'jobs_total{{job="reset"}} {v} {T0 + 60 * i + 10}')
    # a gap: 0 at T0, 10 at T0+1m, then 25 two days later: the 15 count in that later minute
    for ts, v in ((T0, 0), (T0 + 60, 10), (T0 + 2 * 86400 + 120, 25)):
        lines.append(f'jobs_total{{job="gap"}} {v} {ts}')
    # a first sample of 40 is its baseline: only what came after counts
    for i, v in enumerate([40, 41, 43]):
        lines.append(f'jobs_total{{job="late"}} {v} {T0 + 60 * i + 5}')
    lines.append("# TYPE cpu_seconds counter")
    lines += [f'cpu_seconds_total{{job="a"}} {v} {T0 + 60 * i}' for i, v in enumerate([0, 1.5, 2.25])]
    lines.append("# TYPE lat_seconds_bucket unknown")
    for le, vals in (("0.1", [0, 3, 5]), ("0.25", [0, 6, 9]), ("+Inf", [0, 8, 12])):
        lines += [f'lat_seconds_bucket{{le="{le}"}} {v} {T0 + 60 * i + 1}' for i, v in enumerate(vals)]
    lines.append("# TYPE depth gauge")
    lines += [f"depth {v} {T0 + 60 * i + s}" for i, v in enumerate([3, 8]) for s in (0, 30)]
    om = work / "hand.om"
    om.write_text(_om(lines))
    data = work / "data"
    p = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    pr = Prometheus(data, work).start()
    yield pr
    pr.stop()


def _src(url: str, **kw) -> PrometheusSource:
    return PrometheusSource(prometheus_spec(url), **kw)


def test_resets_count_what_came_after_the_restart(prom):
    src = _src(prom.url)
    q = CounterQuery(parse_selector('jobs{job="reset"}'))
    assert src.counter_sums(q, [M0, M0 + 3], M0 + 10) == [16, 7]  # 5+4+3+4, and 3+4 from the restart's minute
    assert src.counter_sums(q, [M0 + 1], M0 + 2) == [5]  # one minute: the sample in it less the one before


def test_the_value_before_a_window_is_found_however_old(prom):
    """Two days without a sample: the window after the gap still counts 25 - 10 (a lookback of
    minutes would take 25 as a baseline and count nothing)."""
    src = _src(prom.url, chunk_ms=3_600_000)
    q = CounterQuery(parse_selector('jobs{job="gap"}'))
    m = M0 + 2 * 1440 + 2
    assert src.counter_sums(q, [m, m - 60], m + 1) == [15, 15]
    assert src.counter_sums(q, [M0], M0 + 2) == [10]


def test_a_series_first_sample_is_its_baseline(prom):
    src = _src(prom.url)
    assert src.counter_sums(CounterQuery(parse_selector('jobs{job="late"}')), [M0 - 60], M0 + 10) == [3]
    assert src.first_minute(parse_selector('jobs{job="late"}'), "counter") == M0
    assert src.first_minute(parse_selector('jobs{job="nope"}'), "counter") is None


def test_a_counter_that_is_not_whole_numbers_is_an_error(prom):
    with pytest.raises(SourceError, match="not a whole number"):
        _src(prom.url).counter_sums(CounterQuery(parse_selector("cpu_seconds")), [M0], M0 + 5)


def test_thresholds_read_the_bucket_at_that_bound_or_count_fewer_good(prom):
    src = _src(prom.url)
    sel = parse_selector("lat_seconds")
    assert src.observation_counts(ObservationQuery(sel, 250_000_000), [M0], M0 + 5) == [(9, 12)]
    assert src.observation_counts(ObservationQuery(sel, 100_000_000), [M0], M0 + 5) == [(5, 12)]
    # 0.2 s is not a bucket bound: the 0.1 s bucket is the most that is known to be good
    assert src.observation_counts(ObservationQuery(sel, 200_000_000), [M0], M0 + 5) == [(5, 12)]
    assert src.bound_since(200_000_000) is None and src.bound_since(250_000_000) == 0
    assert src.observation_buckets(sel, M0, M0 + 5) == [(100_000_000, 5), (250_000_000, 4), (2**62, 3)]
    assert src.bounds_ns == [100_000_000, 250_000_000]


def test_gauges_per_minute_highest_and_kinds_by_name(prom):
    src = _src(prom.url)
    assert list(src.gauge_max(parse_selector("depth"), M0 - 1, M0 + 3)[1:3]) == [3.0, 8.0]
    assert src.matched(parse_selector("jobs"), "counter") == (3, 0)
    assert src.matched(parse_selector("jobs"), "gauge") == (0, 3)
    assert src.matched(parse_selector("lat_seconds"), "observation") == (1, 0)


def test_a_selector_already_named_with_the_suffix_reads_that_name(prom):
    src = _src(prom.url)
    assert src.counter_sums(CounterQuery(parse_selector('jobs_total{job="reset"}')), [M0], M0 + 10) == [16]


# -- pure helpers ----------------------------------------------------------------------------------------


def test_increments_and_promql_text():
    inc = increments([(60_000, 10), (61_000, 12), (120_500, 3)], baseline=7)
    assert inc.window(1, 2) == 5 and inc.window(2, 3) == 3  # 10-7 + 12-10 in minute 1; a reset to 3 in minute 2
    assert increments([(60_000, 10)], baseline=None).window(0, 10) == 0
    assert promql_string('a"b\\c\nd\x01') == '"a\\"b\\\\c\\nd\\u0001"'
    sel = parse_selector('http_requests{code!~"5..",path="/a\\"b"}')
    assert promql_selector(["http_requests_total"], sel.matchers) == '{__name__="http_requests_total",code!~"5..",path="/a\\"b"}'
    assert parse_le("0.3") == 300_000_000 and parse_le("+Inf") == 2**62 and parse_le("1e+06") == 10**15


# -- failures over HTTP ------------------------------------------------------------------------------------


class Scripted:
    """A real HTTP server on loopback answering each request with the next scripted answer:
    (status, headers, body) or "hang" (no answer until the test ends)."""

    def __init__(self, answers: list) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict]] = []
        self.release = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append((self.path, dict(self.headers)))
                a = outer.answers.pop(0) if outer.answers else (200, {}, {"status": "success", "data": {"resultType": "vector", "result": []}})
                if a == "hang":
                    outer.release.wait(10)
                    return
                status, headers, body = a
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    made: list[Scripted] = []

    def make(answers):
        s = Scripted(answers)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


OK_EMPTY = (200, {}, {"status": "success", "data": {"resultType": "matrix", "result": []}})
SEL = CounterQuery(parse_selector("jobs"))


def test_a_refused_connection_is_an_external_error_after_retries():
    waits: list[float] = []
    src = _src(f"http://127.0.0.1:{free_port()}", sleep=waits.append)
    with pytest.raises(SourceError) as e:
        src.counter_sums(SEL, [M0], M0 + 5)
    assert e.value.exit_code == 3 and "cannot reach Prometheus" in e.value.message and "tried 3 times" in e.value.message
    assert waits == [0.2, 0.4]


def test_a_server_that_does_not_answer_times_out(scripted):
    s = scripted(["hang", "hang", "hang"])
    src = PrometheusSource(prometheus_spec(s.url, timeout="200ms"), sleep=lambda _s: None)
    with pytest.raises(SourceError, match=r"did not answer within 0.2s"):
        src.counter_sums(SEL, [M0], M0 + 5)


def test_429_is_retried_after_retry_after_and_counted_once(scripted):
    data = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "jobs_total"}, "values": [[T0 + 1, "0"], [T0 + 61, "4"]]}]}}
    s = scripted([(429, {"Retry-After": "3"}, {"status": "error", "error": "busy"}), (200, {}, data), OK_EMPTY])
    waits: list[float] = []
    src = _src(s.url, sleep=waits.append)
    assert src.counter_sums(SEL, [M0], M0 + 5) == [4]
    assert waits == [3.0] and len(s.requests) == 3  # the range read twice (refused, then answered), the value before once


def test_5xx_every_time_fails_closed(scripted):
    s = scripted([(503, {}, b"overloaded")] * 3)
    with pytest.raises(SourceError, match="HTTP 503: overloaded"):
        _src(s.url, sleep=lambda _s: None).counter_sums(SEL, [M0], M0 + 5)


@pytest.mark.parametrize("answer,match", [
    ((400, {}, {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}), "bad_data: parse error"),
    ((200, {}, {"status": "success", "warnings": ["store 10.0.0.3 unavailable"], "data": {"resultType": "matrix", "result": []}}),
     "warnings .*store 10.0.0.3 unavailable"),
    ((200, {}, b"<html>not the api</html>"), "not JSON"),
    ((302, {"Location": "http://elsewhere/"}, b""), "redirected .* not followed"),
    ((401, {}, b"no"), "refused the request: HTTP 401"),
    ((200, {}, {"status": "success", "data": {"resultType": "string", "result": "x"}}), "unexpected result type"),
])
def test_answers_vigil_cannot_count_on_are_errors(scripted, answer, match):
    s = scripted([answer])
    with pytest.raises(SourceError, match=match):
        _src(s.url).counter_sums(SEL, [M0], M0 + 5)


def test_headers_come_from_the_environment_or_a_private_file(scripted, tmp_path):
    f = tmp_path / "tenant"
    f.write_text("team-a\n")
    os.chmod(f, 0o600)
    s = scripted([])
    spec = prometheus_spec(s.url, headers={"Authorization": {"env": "PROM_AUTH"}, "X-Scope-OrgID": {"file": str(f)},
                                           "X-Plain": {"value": "yes"}})
    src = PrometheusSource(spec, environ={"PROM_AUTH": "Bearer s3cret"})
    src.counter_sums(SEL, [M0], M0 + 5)
    h = {k.lower(): v for k, v in s.requests[0][1].items()}
    assert h["authorization"] == "Bearer s3cret" and h["x-scope-orgid"] == "team-a" and h["x-plain"] == "yes"
    os.chmod(f, 0o644)
    with pytest.raises(UsageError, match="readable or writable by others"):
        PrometheusSource(spec, environ={"PROM_AUTH": "x"}).counter_sums(SEL, [M0], M0 + 5)
    with pytest.raises(UsageError, match=r"\$PROM_AUTH is not set"):
        PrometheusSource(spec, environ={}).counter_sums(SEL, [M0], M0 + 5)


@pytest.mark.parametrize("url,match", [
    ("http://169.254.169.254:9090", "link-local"),
    ("http://metadata.google.internal/", "metadata"),
    ("http://user:pw@prom:9090", "credentials"),
    ("ftp://prom", "http:// or https://"),
    ("http://prom:9090/?x=1", "no query"),
])
def test_the_spec_refuses_urls_vigil_must_not_follow(url, match):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=match):
        prometheus_spec(url)


def test_a_name_that_resolves_to_a_metadata_address_is_refused_before_any_request():
    def resolver(host, port, *a, **k):
        return [(2, 1, 6, "", ("169.254.169.254", port))]

    src = PrometheusSource(prometheus_spec("http://prom.internal:9090"), resolver=resolver)
    with pytest.raises(SourceError, match="resolves to 169.254.169.254") as e:
        src.counter_sums(SEL, [M0], M0 + 5)
    assert isinstance(e.value, ExternalError) and src.requests == 0


def test_a_secret_header_value_in_the_spec_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="carries a secret"):
        prometheus_spec("http://127.0.0.1:9090", headers={"Authorization": {"value": "Bearer abc"}})
    with pytest.raises(ValidationError, match="absolute path"):
        prometheus_spec("http://127.0.0.1:9090", headers={"X-Token": {"file": "token.txt"}})
    assert Path("/").is_absolute()


# -- the spec ---------------------------------------------------------------------------------------------


def test_an_slo_names_a_source_the_spec_has():
    from helpers import spec_with

    from vigil.errors import SpecError

    slo = "  - {name: a, service: api, objective: 99, window: {rolling: 30d}, source: %s, sli: {ratio: {good: x, total: x}}}"
    ok = spec_with(slo % "prom", "telemetry: {sources: {prom: {kind: prometheus, url: 'http://127.0.0.1:9090'}}}")
    assert ok.slos[0].source == "prom" and ok.telemetry.sources["prom"].kind == "prometheus"
    assert spec_with(slo % "embedded").slos[0].source == "embedded"
    with pytest.raises(SpecError) as e:
        spec_with(slo % "nope")
    (issue,) = e.value.issues
    assert issue.path == "slos[0].source" and "unknown source 'nope'" in issue.message and "default, embedded" in issue.message
    with pytest.raises(SpecError, match="built-in source name"):
        spec_with(slo % "embedded", "telemetry: {sources: {embedded: {kind: embedded}}}")
    with pytest.raises(SpecError, match="not an AWS region"):
        spec_with(slo % "embedded", "telemetry: {source: {kind: cloudwatch, region: mars, namespace: X}}")
    with pytest.raises(SpecError, match="telemetry.source"):
        spec_with(slo % "embedded", "telemetry: {source: {kind: influx}}")
