"""Builders for OTLP tests: export requests made with the real protobuf classes, a live vigil app
on loopback, and what the store holds (read straight from the tables)."""

from __future__ import annotations

import gzip
import hashlib
import os
from datetime import datetime, timezone
from typing import Any, Iterable

import httpx
import sqlalchemy as sa
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from live import LiveServer
from vigil.clock import Clock
from vigil.spec import LoadedSpec, parse_spec
from vigil.store import Store
from vigil.web.app import create_app

TOKEN = "otlp-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PB = {**AUTH, "Content-Type": "application/x-protobuf"}
JS = {**AUTH, "Content-Type": "application/json"}
SERVER, CLIENT, INTERNAL, CONSUMER = 2, 3, 1, 5

SPEC = """\
version: 1
services: {api: {}, web: {}, fn: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli:
      ratio:
        good: 'span_requests{service="api",error="false"}'
        total: 'span_requests{service="api"}'
  - name: api-latency
    service: api
    objective: 95
    window: {rolling: 30d}
    sli:
      latency: {metric: 'span_duration_seconds{service="api",kind="server"}', threshold: 300ms}
telemetry:
  traces: {labels: {cache: app.cache}}
"""


def loaded(text: str = SPEC) -> LoadedSpec:
    return LoadedSpec(parse_spec(text), None, "0" * 64)


def live(store: Store, clock: Clock, *, spec: str = SPEC, **kw: Any) -> LiveServer:
    return LiveServer(create_app(loaded(spec), store, TOKEN, clock, **kw))


def ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def tid(n: int) -> bytes:
    return hashlib.sha256(f"trace {n}".encode()).digest()[:16]


def sid(n: int) -> bytes:
    return hashlib.sha256(f"span {n}".encode()).digest()[:8]


def attr(k: str, v: Any) -> KeyValue:
    if isinstance(v, bool):
        return KeyValue(key=k, value=AnyValue(bool_value=v))
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    if isinstance(v, float):
        return KeyValue(key=k, value=AnyValue(double_value=v))
    return KeyValue(key=k, value=AnyValue(string_value=str(v)))


def span(trace: int, span_: int, *, parent: int | None = None, name: str = "GET /items", kind: int = SERVER,
         start: datetime, ms: float = 100.0, attrs: dict | None = None, error: bool = False, raw_ids: tuple | None = None) -> Span:
    s0 = ns(start)
    sp = Span(
        trace_id=tid(trace) if raw_ids is None else raw_ids[0],
        span_id=sid(span_) if raw_ids is None else raw_ids[1],
        parent_span_id=sid(parent) if parent is not None else b"",
        name=name, kind=kind, start_time_unix_nano=s0, end_time_unix_nano=s0 + int(ms * 1_000_000),
        attributes=[attr(k, v) for k, v in (attrs or {}).items()],
    )
    if error:
        sp.status.CopyFrom(Status(code=2, message="boom"))
    return sp


def trace_request(groups: Iterable[tuple[str, list[Span]]]) -> ExportTraceServiceRequest:
    """One ResourceSpans per (service, spans)."""
    req = ExportTraceServiceRequest()
    for service, spans in groups:
        rs = req.resource_spans.add()
        rs.resource.attributes.append(attr("service.name", service))
        ss = rs.scope_spans.add()
        ss.scope.name = "test"
        ss.spans.extend(spans)
    return req


def post(url: str, path: str, body: bytes, headers: dict | None = None, **kw: Any) -> httpx.Response:
    return httpx.post(url + path, content=body, headers=headers if headers is not None else PB, timeout=60, **kw)


def traces_response(r: httpx.Response) -> ExportTraceServiceResponse:
    out = ExportTraceServiceResponse()
    out.ParseFromString(r.content)
    return out


def metrics_response(r: httpx.Response) -> ExportMetricsServiceResponse:
    out = ExportMetricsServiceResponse()
    out.ParseFromString(r.content)
    return out


def gz(b: bytes) -> bytes:
    return gzip.compress(b)


def counters(store: Store, metric: str | None = None) -> dict[str, int]:
    """Counter totals per series (labels JSON), of one metric or all (metric|labels)."""
    q = "SELECT s.metric, s.labels, SUM(v.value) FROM counter_minute v JOIN series s ON s.id = v.series_id GROUP BY s.metric, s.labels"
    with store.engine.connect() as c:
        rows = c.execute(sa.text(q)).all()
    return {(lj if metric else f"{m}|{lj}"): int(n) for m, lj, n in rows if metric is None or m == metric}


def observations(store: Store, metric: str) -> dict[tuple[str, int], int]:
    """(labels JSON, le ns) -> count."""
    q = ("SELECT s.labels, v.le, SUM(v.count) FROM obs_minute v JOIN series s ON s.id = v.series_id WHERE s.metric = :m "
         "GROUP BY s.labels, v.le")
    with store.engine.connect() as c:
        return {(lj, int(le)): int(n) for lj, le, n in c.execute(sa.text(q), {"m": metric})}


def hour_totals(store: Store) -> tuple[int, int]:
    """Counter and observation totals of the hour rollups (must equal the minutes')."""
    with store.engine.connect() as c:
        a = c.execute(sa.text("SELECT COALESCE(SUM(value), 0) FROM counter_hour")).scalar_one()
        b = c.execute(sa.text("SELECT COALESCE(SUM(count), 0) FROM obs_hour")).scalar_one()
    return int(a), int(b)


def minute_totals(store: Store) -> tuple[int, int]:
    with store.engine.connect() as c:
        a = c.execute(sa.text("SELECT COALESCE(SUM(value), 0) FROM counter_minute")).scalar_one()
        b = c.execute(sa.text("SELECT COALESCE(SUM(count), 0) FROM obs_minute")).scalar_one()
    return int(a), int(b)


def span_rows(store: Store) -> set[tuple[str, str]]:
    """The (trace id, span id) of every stored span (its key row)."""
    with store.engine.connect() as c:
        return {(bytes(a).hex(), bytes(b).hex()) for a, b in c.execute(sa.text("SELECT trace_id, span_id FROM trace_keys"))}


def stored_spans(store: Store) -> list[dict]:
    """Every stored span as the trace store reads it back (each trace read whole)."""
    from vigil.traces.store import read_trace

    with store.engine.connect() as c:
        ids = [bytes(r[0]).hex() for r in c.execute(sa.text("SELECT DISTINCT trace_id FROM trace_keys ORDER BY trace_id"))]
    return [s for t in ids for s in read_trace(store, t).to_dict()["spans"]]


def snapshot(store: Store) -> dict:
    """Everything the OTLP path writes, to compare before and after a refused request."""
    with store.engine.connect() as c:
        q = lambda sql: c.execute(sa.text(sql)).all()  # noqa: E731
        return {
            "spans": sorted(q("SELECT trace_id, span_id, batch, pos FROM trace_keys")),
            "batches": sorted(q("SELECT id, body FROM trace_batches")),
            "counters": sorted(q("SELECT series_id, minute, value FROM counter_minute")),
            "obs": sorted(q("SELECT series_id, minute, le, count FROM obs_minute")),
            "gauges": sorted(q("SELECT series_id, minute, samples FROM gauge_minute")),
            "series": sorted(q("SELECT metric, labels FROM series")),
            "keys": sorted(q("SELECT key FROM ingest_keys")),
            "streams": sorted(q("SELECT key, time_ns, state FROM otlp_streams")),
        }


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc)


def sdk_env() -> dict:
    """The environment for a subprocess exporting with the SDK (nothing of this process's OTEL_*)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
