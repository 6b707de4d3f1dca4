"""Fuzzing the OTLP endpoints over real HTTP (issue 10): malformed protobuf, mutated requests, wrong
content types and encodings, huge and deeply nested payloads. Every answer is 200 or a clean 4xx
(400, 413, 415) in the OTLP shape, never a 5xx; a refused request stores nothing; and whatever is
stored is whole: every stored request span is counted exactly once, every counted span is stored."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otlp_helpers import AUTH, live, snapshot, span, stored_spans, trace_request, utc
from vigil.clock import FakeClock
from vigil.store import open_store

NOW = utc("2026-11-20T12:00:00Z")
T0 = NOW - timedelta(minutes=3)
LIMIT = 256 * 1024
OK = {200, 400, 413, 415}
TYPES = ["application/x-protobuf", "application/json", "text/plain", "", "application/x-protobuf; charset=utf-8", "APPLICATION/JSON"]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'state.db'}")
    srv = live(store, FakeClock(NOW), max_body=LIMIT).start()
    client = httpx.Client(timeout=60)
    yield srv, store, client
    client.close()
    srv.stop()
    store.close()


def send(server, path: str, body: bytes, ctype: str | None, encoding: str | None = None) -> httpx.Response:
    srv, _, client = server
    headers = dict(AUTH)
    if ctype is not None:
        headers["Content-Type"] = ctype
    if encoding:
        headers["Content-Encoding"] = encoding
    return client.post(srv.url + path, content=body, headers=headers)


def whole(store) -> None:
    """Every stored request span is counted once, and nothing else is counted."""
    with store.engine.connect() as c:
        q = lambda s: int(c.execute(sa.text(s)).scalar() or 0)  # noqa: E731
        spans = sum(1 for sp in stored_spans(store) if sp["kind"] in ("server", "consumer"))
        counted = q("SELECT SUM(v.value) FROM counter_minute v JOIN series s ON s.id = v.series_id WHERE s.metric = 'span_requests'")
        observed = q("SELECT SUM(v.count) FROM obs_minute v JOIN series s ON s.id = v.series_id WHERE s.metric = 'span_duration_seconds'")
        hours = q("SELECT SUM(v.value) FROM counter_hour v JOIN series s ON s.id = v.series_id WHERE s.metric = 'span_requests'")
    assert spans == counted == observed == hours, (spans, counted, observed, hours)


def answered_cleanly(r: httpx.Response, before: dict, store) -> None:
    assert r.status_code in OK, (r.status_code, r.content[:300])
    assert "traceback" not in r.text.lower()
    if r.status_code != 200:
        assert snapshot(store) == before
        if r.headers.get("content-type", "").startswith("application/json"):
            assert r.json()["error"]["message"]


VALID = trace_request([("api", [span(1, 1, start=T0, attrs={"http.route": "/graphql", "http.response.status_code": 200}),
                                span(1, 2, parent=1, kind=3, start=T0, name="SELECT"),
                                span(2, 3, start=T0, kind=5, name="consume")])]).SerializeToString()


@SETTINGS
@given(body=st.binary(max_size=2048), ctype=st.sampled_from(TYPES), path=st.sampled_from(["/v1/traces", "/v1/metrics"]),
       gzipped=st.booleans())
def test_random_bytes(server, body, ctype, path, gzipped):
    store = server[1]
    before = snapshot(store)
    r = send(server, path, gzip.compress(body) if gzipped else body, ctype, "gzip" if gzipped else None)
    answered_cleanly(r, before, store)
    whole(store)


@SETTINGS
@given(data=st.data())
def test_mutated_valid_requests(server, data):
    store = server[1]
    b = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        i = data.draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "insert":
            b[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and b:
            del b[i : i + data.draw(st.integers(1, 8))]
        elif op == "truncate":
            del b[i:]
    before = snapshot(store)
    r = send(server, "/v1/traces", bytes(b), "application/x-protobuf")
    answered_cleanly(r, before, store)
    whole(store)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "name", "kind", "attributes", "key", "value",
         "stringValue", "arrayValue", "values", "startTimeUnixNano", "endTimeUnixNano", "resource", "resourceMetrics",
         "scopeMetrics", "metrics", "sum", "dataPoints", "asInt", "gauge", "histogram"]), inner, max_size=4),
    max_leaves=30,
)


@SETTINGS
@given(doc=json_values, path=st.sampled_from(["/v1/traces", "/v1/metrics"]))
def test_random_otlp_json(server, doc, path):
    store = server[1]
    before = snapshot(store)
    r = send(server, path, json.dumps(doc).encode(), "application/json")
    answered_cleanly(r, before, store)
    whole(store)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def nested_pb(depth: int) -> bytes:
    """A request whose one span has an attribute of arrays in arrays ``depth`` deep (raw protobuf)."""
    value = _field(1, b"x")  # AnyValue.string_value
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value { values: value }
    kv = _field(1, b"deep") + _field(2, value)
    s = span(7, 7, start=T0, attrs={"http.route": "/deep"}).SerializeToString() + _field(9, kv)
    scope = _field(2, s)
    rs = _field(2, scope)
    return _field(1, rs)


def nested_json(depth: int) -> bytes:
    value: dict = {"stringValue": "x"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "deep", "kind": 2,
        "startTimeUnixNano": str(int(T0.timestamp()) * 10**9), "endTimeUnixNano": str(int(T0.timestamp()) * 10**9 + 1000),
        "attributes": [{"key": "deep", "value": value}]}]}]}]}
    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, depth * 4 + 1000))
    try:
        return json.dumps(doc).encode()
    finally:
        sys.setrecursionlimit(old)


@pytest.mark.parametrize("depth", [5, 40, 99, 101, 400, 5000])
def test_deeply_nested_attributes(server, depth):
    store = server[1]
    for body, ctype in ((nested_pb(depth), "application/x-protobuf"), (nested_json(depth), "application/json")):
        before = snapshot(store)
        r = send(server, "/v1/traces", body, ctype)
        answered_cleanly(r, before, store)
        if depth <= 40:
            assert r.status_code == 200
        if depth >= 400:
            assert r.status_code in (400, 413), r.status_code
        whole(store)


def test_huge_payloads_are_413(server):
    store = server[1]
    before = snapshot(store)
    many = trace_request([("api", [span(10_000 + i, 10_000 + i, start=T0, attrs={"http.route": "/r", "pad": "p" * 200})
                                   for i in range(2000)])]).SerializeToString()
    assert len(many) > LIMIT
    for body, enc in ((many, None), (gzip.compress(many), "gzip"), (gzip.compress(b"\0" * (50 * 1024 * 1024)), "gzip")):
        r = send(server, "/v1/traces", body, "application/x-protobuf", enc)
        assert r.status_code == 413, r.status_code
    assert snapshot(store) == before
