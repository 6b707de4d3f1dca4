"""The OTLP/HTTP receiver (issue 10): /v1/traces on a live vigil on loopback, driven by the stock
OpenTelemetry SDK exporter and by requests built with the real protobuf classes.

What a user relies on: the SDK exporter just works (protobuf, gzip, the token header); spans become
request telemetry the plan's SLOs read; a retried export (a lost answer, a 429, a 503) is stored once;
a span sent again in another request is counted once; a span is taken whole or not at all; bad or
oversized requests are refused whole with the OTLP status codes and store nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from datetime import timedelta

import httpx
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from ingest_helpers import LosingProxy, wait_for
from otlp_helpers import (
    AUTH,
    CLIENT,
    INTERNAL,
    JS,
    PB,
    TOKEN,
    counters,
    gz,
    hour_totals,
    live,
    loaded,
    minute_totals,
    observations,
    post,
    sid,
    snapshot,
    span,
    span_rows,
    tid,
    trace_request,
    traces_response,
    utc,
)
from vigil.auth import TokenEntry, Tokens, digest
from vigil.clock import FakeClock, SystemClock
from vigil.store import open_store
from vigil.telemetry.push import Ingestor
from vigil.web.app import create_app

NOW = utc("2026-11-20T12:00:00Z")
T0 = NOW - timedelta(minutes=5)
API_OK = json.dumps({"code": "200", "error": "false", "kind": "server", "route": "/graphql", "service": "api"}, separators=(",", ":"))


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def sdk(url: str, service: str, **kw) -> tuple[TracerProvider, OTLPSpanExporter]:
    exp = OTLPSpanExporter(endpoint=url + "/v1/traces", headers={"Authorization": f"Bearer {TOKEN}"}, **kw)
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(exp))
    return tp, exp


# -- the stock SDK exporter --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_sdk_exporter_just_works_and_spans_become_the_plans_slis(store, cli, compression):
    with live(store, SystemClock()) as srv:
        tp, _ = sdk(srv.url, "api", compression=compression)
        tr = tp.get_tracer("test")
        ids = []
        for i in range(4):
            code = 503 if i == 3 else 200
            with tr.start_as_current_span("POST /graphql", kind=SpanKind.SERVER,
                                          attributes={"http.route": "/graphql", "http.response.status_code": code}) as root:
                with tr.start_as_current_span("SELECT app", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}):
                    pass
                if code >= 500:
                    root.set_status(Status(StatusCode.ERROR))
            ids.append(format(root.get_span_context().trace_id, "032x"))
        tp.shutdown()

        got = counters(store, "span_requests")
        assert got[API_OK] == 3
        err = json.dumps({"code": "503", "error": "true", "kind": "server", "route": "/graphql", "service": "api"}, separators=(",", ":"))
        assert got[err] == 1 and len(got) == 2, got  # the client (db) spans are no requests
        assert sum(observations(store, "span_duration_seconds").values()) == 4
        assert minute_totals(store) == hour_totals(store) == (4, 4)
        assert len(span_rows(store)) == 8

        # the plan's availability SLO written on spans alone
        r = httpx.get(srv.url + "/api/v1/slos", headers=AUTH, timeout=30)
        slo = next(s for s in r.json()["slos"] if s["name"] == "api-availability")
        assert (slo["good"], slo["valid"], slo["bad"]) == (3, 4, 1), slo

        r = httpx.get(srv.url + f"/api/v1/traces/{ids[0]}", headers=AUTH, timeout=30)
        assert r.status_code == 200
        t = r.json()
        assert t["connected"] and t["span_count"] == 2 and t["services"] == ["api"]
        root, child = t["spans"]
        assert root["depth"] == 0 and root["kind"] == "server" and root["children"] == [child["span_id"]]
        assert child["depth"] == 1 and child["parent_span_id"] == root["span_id"] and child["offset_ms"] >= 0
        assert child["attributes"] == {"db.system": "postgresql"}

    # and from the command line, read-only
    db = store.url
    res = cli("trace", "show", ids[3].upper(), "--db", db, "--json")
    assert res.code == 0, res.err
    d = json.loads(res.out)
    assert d["trace_id"] == ids[3] and d["spans"][0]["status"] == "error"
    res = cli("trace", "show", ids[3], "--db", db)
    assert res.code == 0 and "POST /graphql [server]" in res.out and "ERROR" in res.out


def test_a_lost_answer_makes_the_sdk_retry_and_the_retry_is_stored_once(store):
    """The proxy passes the export to vigil, lets it store and answer, then drops the answer: the
    exporter sees a broken connection and sends the same request again."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "api"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    with tp.get_tracer("t").start_as_current_span("POST /graphql", kind=SpanKind.SERVER,
                                                  attributes={"http.route": "/graphql", "http.response.status_code": 200}):
        pass
    with live(store, SystemClock()) as srv:
        proxy = LosingProxy(srv.port, lambda n: n == 1)
        seen: list[int] = []
        sess = requests.Session()
        sess.hooks["response"].append(lambda r, *a, **k: seen.append(r.status_code))
        exp = OTLPSpanExporter(endpoint=proxy.url + "/v1/traces", headers={"Authorization": f"Bearer {TOKEN}"}, session=sess)
        result = exp.export(mem.get_finished_spans())
        proxy.close()
    assert result == SpanExportResult.SUCCESS
    assert proxy.lost == 1, "the first answer was dropped"
    assert seen == [200], "only the retry's answer reached the exporter"
    assert counters(store, "span_requests") == {API_OK: 1}
    with store.engine.connect() as c:
        import sqlalchemy as sa

        assert c.execute(sa.text("SELECT COUNT(*) FROM ingest_keys WHERE key LIKE 'otlp-traces:%'")).scalar_one() == 1


class _SlotHolder:
    """A push that sent its headers and part of its body, holding one of the server's ingest slots
    until closed (the push route takes the slot before reading the body)."""

    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port))
        head = (f"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/x-ndjson\r\n"
                "Content-Length: 1000\r\n\r\n").encode()
        self.s.sendall(head + b'{"ts":')

    def close(self) -> None:
        self.s.close()


def test_backpressure_is_429_with_retry_after_and_the_sdk_retry_is_stored_once(store):
    with live(store, SystemClock(), push_options={"max_pushes": 1, "push_wait": 0.2}) as srv:
        holder = _SlotHolder(srv.port)
        body = trace_request([("api", [span(1, 1, start=utc("2026-01-01T00:00:00Z"), attrs={"http.route": "/x"})])]).SerializeToString()

        def busy() -> bool:
            r = post(srv.url, "/v1/traces", body)
            return r.status_code == 429

        wait_for(busy, "the held slot to make exports wait", timeout=30)
        r = post(srv.url, "/v1/traces", body)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.headers["content-type"] == "application/x-protobuf"
        from google.rpc.status_pb2 import Status as RpcStatus

        st = RpcStatus()
        st.ParseFromString(r.content)
        assert "at once" in st.message

        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        mem = InMemorySpanExporter()
        tp = TracerProvider(resource=Resource.create({"service.name": "api"}))
        tp.add_span_processor(SimpleSpanProcessor(mem))
        with tp.get_tracer("t").start_as_current_span("POST /graphql", kind=SpanKind.SERVER,
                                                      attributes={"http.route": "/graphql", "http.response.status_code": 200}):
            pass
        seen: list[int] = []
        sess = requests.Session()
        sess.hooks["response"].append(lambda resp, *a, **k: seen.append(resp.status_code))
        exp = OTLPSpanExporter(endpoint=srv.url + "/v1/traces", headers={"Authorization": f"Bearer {TOKEN}"}, session=sess, timeout=30)
        out: list = []
        t = threading.Thread(target=lambda: out.append(exp.export(mem.get_finished_spans())))
        t.start()
        wait_for(lambda: 429 in seen, "the exporter to be told 429", timeout=30)
        holder.close()  # the slot frees; the exporter retries after Retry-After
        t.join(timeout=60)
        assert out == [SpanExportResult.SUCCESS]
        assert seen[0] == 429 and seen[-1] == 200
        assert counters(store, "span_requests") == {API_OK: 1}


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (the tests run as root): a disk that really fills up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the tests run as root): {r.stderr.decode()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_is_503_with_retry_after_stores_nothing_and_the_retry_stores_once(small_disk):
    store = open_store(f"sqlite:///{small_disk / 'state.db'}")
    try:
        with live(store, FakeClock(NOW)) as srv:
            post(srv.url, "/v1/traces", trace_request([("api", [span(9, 9, start=T0, attrs={"http.route": "/warm"})])]).SerializeToString())
            before = snapshot(store)
            filler = small_disk / "filler"
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            spans = [span(1, i, start=T0, attrs={"http.route": f"/r{i}", "big": "x" * 900}) for i in range(1, 400)]
            body = trace_request([("api", spans)]).SerializeToString()
            r = post(srv.url, "/v1/traces", body)
            assert r.status_code == 503, r.content[:300]
            assert r.headers["retry-after"] == "1"
            filler.unlink()
            assert snapshot(store) == before
            r = post(srv.url, "/v1/traces", body)
            assert r.status_code == 200 and "idempotent-replayed" not in r.headers
            r = post(srv.url, "/v1/traces", body)
            assert r.headers.get("idempotent-replayed") == "true"
            assert sum(counters(store, "span_requests").values()) == 400
    finally:
        store.close()


# -- exactly once ------------------------------------------------------------------------------------


def test_the_same_request_is_stored_once_whatever_its_compression(store):
    req = trace_request([("api", [span(1, 1, start=T0, attrs={"http.route": "/graphql", "http.response.status_code": 200}),
                                  span(1, 2, parent=1, kind=CLIENT, start=T0, name="SELECT")])])
    body = req.SerializeToString()
    with live(store, FakeClock(NOW)) as srv:
        r1 = post(srv.url, "/v1/traces", body)
        assert r1.status_code == 200 and not traces_response(r1).HasField("partial_success")
        r2 = post(srv.url, "/v1/traces", gz(body), {**PB, "Content-Encoding": "gzip"})
        r3 = post(srv.url, "/v1/traces", body)
        for r in (r2, r3):
            assert r.status_code == 200 and r.headers["idempotent-replayed"] == "true" and r.content == r1.content
    assert counters(store, "span_requests") == {API_OK: 1}
    assert span_rows(store) == {(tid(1).hex(), sid(1).hex()), (tid(1).hex(), sid(2).hex())}


def test_a_span_sent_again_in_another_request_is_counted_once(store):
    """A Collector re-batching after a failure sends a span again with other spans: the span is
    stored once and its request counted once."""
    s = lambda n: span(n, n, start=T0, attrs={"http.route": "/graphql", "http.response.status_code": 200})  # noqa: E731
    with live(store, FakeClock(NOW)) as srv:
        assert post(srv.url, "/v1/traces", trace_request([("api", [s(1), s(2)])]).SerializeToString()).status_code == 200
        r = post(srv.url, "/v1/traces", trace_request([("api", [s(2), s(3)])]).SerializeToString())
        assert r.status_code == 200 and not traces_response(r).HasField("partial_success")
        r = post(srv.url, "/v1/traces", trace_request([("api", [s(3)]), ("api", [s(1)])]).SerializeToString())
        assert r.status_code == 200
    assert counters(store, "span_requests") == {API_OK: 3}
    assert sum(observations(store, "span_duration_seconds").values()) == 3
    assert minute_totals(store) == hour_totals(store) == (3, 3)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


def test_concurrent_exports_sharing_a_span_count_it_once(db_url):
    """Eight exports at once, each with a span of its own and one shared: on PostgreSQL they run
    in parallel transactions (the shared key waits for the first); on SQLite they queue for the
    one writer in the receiver (not in SQLite's lock polling)."""
    store = open_store(db_url)
    try:
        shared = span(100, 100, start=T0, attrs={"http.route": "/graphql", "http.response.status_code": 200})
        bodies = [
            trace_request([("api", [span(i, i, start=T0, attrs={"http.route": "/graphql", "http.response.status_code": 200}), shared])])
            .SerializeToString() for i in range(1, 9)
        ]
        with live(store, FakeClock(NOW), push_options={"max_pushes": 8, "push_wait": 30}) as srv:
            codes: list[int] = []
            barrier = threading.Barrier(8)

            def go(b: bytes) -> None:
                barrier.wait()
                codes.append(post(srv.url, "/v1/traces", b).status_code)

            ts = [threading.Thread(target=go, args=(b,)) for b in bodies]
            for t in ts:
                t.start()
            for t in ts:
                t.join(timeout=120)
        assert codes == [200] * 8
        assert counters(store, "span_requests") == {API_OK: 9}
        assert len(span_rows(store)) == 9
        assert minute_totals(store) == hour_totals(store) == (9, 9)
    finally:
        store.close()


# -- whole spans ---------------------------------------------------------------------------------------


def test_spans_that_cannot_be_stored_are_rejected_by_name_and_the_rest_stored(store):
    good = span(1, 1, start=T0, attrs={"http.route": "/graphql", "http.response.status_code": 200})
    bad = [
        span(2, 2, start=T0, raw_ids=(bytes(16), sid(2))),                      # all-zero trace id
        span(3, 3, start=T0, raw_ids=(tid(3), b"\x01\x02")),                    # short span id
        span(4, 4, start=T0, ms=-5),                                            # ends before it starts
        span(5, 5, start=NOW - timedelta(days=8)),                              # before the trace retention (7d)
        span(6, 6, start=NOW + timedelta(hours=1)),                             # an hour in the future
    ]
    with live(store, FakeClock(NOW)) as srv:
        r = post(srv.url, "/v1/traces", trace_request([("api", [good, *bad])]).SerializeToString())
    assert r.status_code == 200
    ps = traces_response(r).partial_success
    assert ps.rejected_spans == 5
    for words in ("5 of 6 spans rejected", "trace id must be 16 bytes", "span id must be 8 bytes", "end at or after",
                  "trace retention", "after the server's clock"):
        assert words in ps.error_message, ps.error_message
    assert span_rows(store) == {(tid(1).hex(), sid(1).hex())}
    assert counters(store, "span_requests") == {API_OK: 1}


def test_a_span_whose_telemetry_the_store_refuses_is_rejected_whole(store):
    """`span_duration_seconds` registered as a counter by someone's push: the request spans'
    durations cannot be stored, so those spans are rejected whole (no request counted, no trace
    row); the other spans are kept."""
    spec = loaded().spec
    Ingestor(spec, store).push_lines([(1, {"ts": "2026-11-20T11:50:00Z", "metric": "span_duration_seconds", "inc": 1})], NOW)
    spans = [span(1, 1, start=T0, attrs={"http.route": "/graphql", "http.response.status_code": 200}),
             span(1, 2, parent=1, kind=CLIENT, name="SELECT", start=T0),
             span(2, 3, start=T0, attrs={"http.route": "/graphql"})]
    with live(store, FakeClock(NOW)) as srv:
        r = post(srv.url, "/v1/traces", trace_request([("api", spans)]).SerializeToString())
    ps = traces_response(r).partial_success
    assert r.status_code == 200 and ps.rejected_spans == 2
    assert "span_duration_seconds" in ps.error_message and "counter" in ps.error_message
    assert counters(store, "span_requests") == {}
    assert span_rows(store) == {(tid(1).hex(), sid(2).hex())}
    assert minute_totals(store) == hour_totals(store) == (1, 0)  # the push's own counter only


def test_the_cardinality_limit_rejects_the_spans_of_new_routes_whole(store):
    spec = loaded().spec.model_dump(mode="json", exclude_none=True)  # noqa: F841 - documents the base
    text = open_spec_with_limit(3)
    spans = [span(i, i, start=T0, attrs={"http.route": f"/r{i}"}) for i in range(1, 6)]
    with live(store, FakeClock(NOW), spec=text) as srv:
        r = post(srv.url, "/v1/traces", trace_request([("api", spans)]).SerializeToString())
    ps = traces_response(r).partial_success
    assert r.status_code == 200 and ps.rejected_spans == 2, ps
    assert "max_series_per_metric" in ps.error_message
    routes = {json.loads(k)["route"] for k in counters(store, "span_requests")}
    assert routes == {"/r1", "/r2", "/r3"}
    assert {s for _, s in span_rows(store)} == {sid(i).hex() for i in (1, 2, 3)}


def open_spec_with_limit(n: int) -> str:
    from otlp_helpers import SPEC

    return SPEC.replace("telemetry:\n", f"telemetry:\n  max_series_per_metric: {n}\n")


def test_span_labels_follow_the_documented_mapping(store):
    spans = [
        span(1, 1, start=T0, attrs={"http.route": "/items/{id}", "http.response.status_code": 404, "app.cache": "hit"}),
        span(2, 2, start=T0, name="checkout", kind=5),                                # a consumer, no route: its name
        span(3, 3, start=T0, attrs={"http.status_code": 502}),                        # the older attribute; 5xx is an error
        span(4, 4, start=T0, kind=INTERNAL),                                          # not a request
        span(5, 5, start=T0, error=True, attrs={"http.route": "/pay"}),               # status ERROR
    ]
    with live(store, FakeClock(NOW)) as srv:
        assert post(srv.url, "/v1/traces", trace_request([("web", spans)]).SerializeToString()).status_code == 200
    got = {tuple(sorted(json.loads(k).items())): v for k, v in counters(store, "span_requests").items()}
    assert got == {
        (("cache", "hit"), ("code", "404"), ("error", "false"), ("kind", "server"), ("route", "/items/{id}"), ("service", "web")): 1,
        (("error", "false"), ("kind", "consumer"), ("route", "checkout"), ("service", "web")): 1,
        (("code", "502"), ("error", "true"), ("kind", "server"), ("route", "GET /items"), ("service", "web")): 1,
        (("error", "true"), ("kind", "server"), ("route", "/pay"), ("service", "web")): 1,
    }
    # durations exact in nanoseconds: 100 ms is the 0.1 s bucket's, 300 ms is at the SLO's threshold
    assert {le for (_, le) in observations(store, "span_duration_seconds")} == {100_000_000}


def test_a_duration_at_the_threshold_is_good_and_one_nanosecond_more_is_not(store):
    start = T0
    s_at = span(1, 1, start=start, ms=300, attrs={"http.route": "/graphql"})
    s_over = span(2, 2, start=start, ms=300.000001, attrs={"http.route": "/graphql"})
    with live(store, FakeClock(NOW)) as srv:
        post(srv.url, "/v1/traces", trace_request([("api", [s_at, s_over])]).SerializeToString())
        r = httpx.get(srv.url + "/api/v1/slos", headers=AUTH, timeout=30)
    slo = next(s for s in r.json()["slos"] if s["name"] == "api-latency")
    assert (slo["good"], slo["valid"]) == (1, 2), slo


# -- OTLP/JSON -----------------------------------------------------------------------------------------


def test_otlp_json_with_hex_ids_is_read_and_answered_in_json(store):
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
                              "scopeSpans": [{"scope": {"name": "x"}, "spans": [{
                                  "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
                                  "name": "POST /graphql", "kind": 2, "startTimeUnixNano": str(int(T0.timestamp()) * 10**9),
                                  "endTimeUnixNano": str(int(T0.timestamp()) * 10**9 + 120_000_000),
                                  "attributes": [{"key": "http.route", "value": {"stringValue": "/graphql"}},
                                                 {"key": "http.response.status_code", "value": {"intValue": "200"}}],
                                  "futureField": {"ignored": True}}]}]}]}
    with live(store, FakeClock(NOW)) as srv:
        r = post(srv.url, "/v1/traces", json.dumps(doc).encode(), JS)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.json() == {}
        t = httpx.get(srv.url + "/api/v1/traces/5b8efff798038103d269b633813fc60c", headers=AUTH, timeout=30).json()
        assert t["spans"][0]["span_id"] == "eee19b7ec3c1b174"
        # the same content as protobuf is the same request
        from google.protobuf import json_format  # noqa: F401
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "not-hex"
        r = post(srv.url, "/v1/traces", json.dumps(doc).encode(), JS)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        e = r.json()
        assert e["code"] == 3 and "not hex" in e["message"] and e["error"]["hint"]
        # a partial success in JSON: int64 as a string, lowerCamelCase
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "00000000000000000000000000000000"
        r = post(srv.url, "/v1/traces", json.dumps(doc).encode(), JS)
        assert r.status_code == 200
        assert r.json()["partialSuccess"]["rejectedSpans"] == "1" and "trace id" in r.json()["partialSuccess"]["errorMessage"]
    assert counters(store, "span_requests") == {API_OK: 1}


# -- refusals ------------------------------------------------------------------------------------------


def test_refused_requests_get_the_otlp_status_codes_and_store_nothing(store):
    body = trace_request([("api", [span(1, 1, start=T0)])]).SerializeToString()
    viewer, pusher = "viewer-token-0123456789", "pusher-token-0123456789"
    toks = Tokens([TokenEntry("admin", "admin", digest(TOKEN)), TokenEntry("v", "viewer", digest(viewer)),
                   TokenEntry("p", "pusher", digest(pusher))])
    with __import__("live").LiveServer(create_app(loaded(), store, toks, FakeClock(NOW), max_body=64 * 1024)) as srv:
        before = snapshot(store)
        cases = [
            ({"Content-Type": "application/x-protobuf"}, body, 401),
            ({"Authorization": f"Bearer {viewer}", "Content-Type": "application/x-protobuf"}, body, 403),
            ({**AUTH, "Content-Type": "text/plain"}, body, 415),
            ({**AUTH}, body, 415),
            ({**PB, "Content-Encoding": "br"}, body, 415),
            ({**PB, "Content-Encoding": "gzip"}, body, 400),                      # not gzip
            ({**PB, "Content-Encoding": "gzip"}, gz(body)[:-9], 400),             # truncated gzip
            (PB, b"\x0a\xff\xff\xff\xff\x0f", 400),                               # a length past the end
            (PB, b"x" * (65 * 1024), 413),
            ({**PB, "Content-Encoding": "gzip"}, gz(b"\x00" * (10 * 1024 * 1024)), 413),  # inflates past the limit
            (JS, b"[1, 2]", 400),
            (JS, b'{"resourceSpans": 5}', 400),
            (JS, b"\xff\xfe", 400),
        ]
        for headers, b, want in cases:
            r = post(srv.url, "/v1/traces", b, headers)
            assert r.status_code == want, (headers, b[:20], r.status_code, r.content[:300])
            ct = r.headers["content-type"]
            if "json" in ct:
                e = r.json()
                assert e["message"] and e["error"]["message"] and "Traceback" not in r.text
            else:
                from google.rpc.status_pb2 import Status as RpcStatus

                st = RpcStatus()
                st.ParseFromString(r.content)
                assert st.message
        assert r.status_code == 400
        r = httpx.get(srv.url + "/v1/traces", headers=AUTH, timeout=30)
        assert r.status_code == 405
        assert snapshot(store) == before
        r = post(srv.url, "/v1/traces", body, {"Authorization": f"Bearer {pusher}", "Content-Type": "application/x-protobuf"})
        assert r.status_code == 200
    assert len(span_rows(store)) == 1


def test_trace_route_and_cli_errors(store, cli):
    with live(store, FakeClock(NOW)) as srv:
        r = httpx.get(srv.url + "/api/v1/traces/xyz", headers=AUTH, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["code"] == "usage"
        r = httpx.get(srv.url + "/api/v1/traces/" + "ab" * 16, headers=AUTH, timeout=30)
        assert r.status_code == 404 and r.json()["error"]["hint"]
        r = httpx.get(srv.url + "/api/v1/traces/" + "ab" * 16, timeout=30)
        assert r.status_code == 401
    res = cli("trace", "show", "ab" * 16, "--db", store.url)
    assert res.code == 2 and "no span of trace" in res.err and "Traceback" not in res.err
    res = cli("trace", "show", "nope", "--db", store.url, "--json")
    assert res.code == 2 and json.loads(res.out)["error"]["code"] == "usage"
