"""vigil.instrument (issue 10), hop by hop, on the OpenTelemetry SDK with an in-memory exporter:
the ASGI middleware behind a real HTTP server, the Lambda-style decorator with the events AWS sends,
and psycopg spans against a real PostgreSQL."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from fastapi import HTTPException
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from live import LiveServer
from vigil.instrument.asgi import TraceMiddleware
from vigil.instrument.db import TracedCursor
from vigil.instrument.http import extract, inject
from vigil.instrument.lambda_ import event_headers, traced_handler

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TP = f"00-{TRACE}-{PARENT}-01"


@pytest.fixture
def tracing():
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    return tp, mem


def test_the_asgi_middleware_continues_the_callers_trace(tracing):
    tp, mem = tracing
    from tracing_app import plain_fastapi

    app = plain_fastapi()
    app.add_middleware(TraceMiddleware, tracer=tp.get_tracer("t"))

    @app.get("/items/{item_id}")
    def item(item_id: int, fail: int = 0) -> dict:
        if fail == 1:
            raise HTTPException(404)
        if fail == 2:
            raise HTTPException(503)
        return {"headers": inject()}

    with LiveServer(app) as srv:
        r = httpx.get(srv.url + "/items/7", headers={"TraceParent": TP}, timeout=10)
        httpx.get(srv.url + "/items/7?fail=1", timeout=10)
        httpx.get(srv.url + "/items/7?fail=2", headers={"traceparent": "00-zz-broken"}, timeout=10)
    ok, not_found, unavailable = mem.get_finished_spans()
    assert ok.context.trace_id == int(TRACE, 16) and ok.parent.span_id == int(PARENT, 16)
    assert ok.kind == SpanKind.SERVER and ok.name == "GET /items/{item_id}"
    assert ok.attributes["http.route"] == "/items/{item_id}" and ok.attributes["url.path"] == "/items/7"
    assert ok.attributes["http.response.status_code"] == 200 and ok.status.status_code == StatusCode.UNSET
    # the handler ran inside the span: what it would send carries the span as parent
    assert r.json()["headers"]["traceparent"] == f"00-{TRACE}-{ok.context.span_id:016x}-01"
    assert not_found.parent is None and not_found.status.status_code == StatusCode.UNSET  # a 4xx is the client's
    assert unavailable.parent is None and unavailable.status.status_code == StatusCode.ERROR  # a malformed traceparent: a new trace


class Ctx:
    function_name = "fn-items"
    aws_request_id = "req-1"


@pytest.mark.parametrize("event", [
    {"headers": {"Traceparent": TP}, "requestContext": {}},                      # API Gateway / function URL (any case)
    {"multiValueHeaders": {"traceparent": [TP]}, "requestContext": {}},          # REST API multi-value headers
    {"arguments": {"id": 1}, "info": {"fieldName": "item", "parentTypeName": "Query"}, "request": {"headers": {"traceparent": TP}}},
    {"traceparent": TP},                                                         # a direct invocation
])
def test_the_lambda_decorator_continues_the_trace_from_the_event(tracing, event):
    tp, mem = tracing

    @traced_handler(tracer_provider=tp)
    def handler(ev, context):
        return {"statusCode": 200, "body": "ok"} if "requestContext" in ev else {"id": 1}

    handler(event, Ctx())
    (s,) = mem.get_finished_spans()
    assert s.context.trace_id == int(TRACE, 16) and s.parent.span_id == int(PARENT, 16)
    assert s.kind == SpanKind.SERVER and s.name == "fn-items" and s.attributes["faas.invocation_id"] == "req-1"
    if "info" in event:
        assert s.attributes["faas.trigger"] == "other" and s.attributes["graphql.field.name"] == "item"
    if "requestContext" in event:
        assert s.attributes["faas.trigger"] == "http" and s.attributes["http.response.status_code"] == 200


def test_the_lambda_decorator_marks_failures_and_flushes(tracing):
    tp, mem = tracing
    flushed: list[bool] = []
    orig = tp.force_flush
    tp.force_flush = lambda *a, **k: flushed.append(True) or orig(*a, **k)  # type: ignore[method-assign]

    @traced_handler(tracer_provider=tp, name="checkout")
    def handler(ev, context):
        if ev.get("boom"):
            raise RuntimeError("card processor down")
        return {"statusCode": 502}

    handler({"headers": {}}, None)
    with pytest.raises(RuntimeError):
        handler({"boom": True}, None)
    a, b = mem.get_finished_spans()
    assert a.status.status_code == StatusCode.ERROR and a.attributes["http.response.status_code"] == 502 and a.parent is None
    assert b.status.status_code == StatusCode.ERROR and b.events[0].name == "exception" and b.name == "checkout"
    assert flushed == [True, True]
    assert event_headers("not an event") == {} and extract(None) is not None


@pytest.mark.postgres
def test_psycopg_statements_are_client_spans_with_the_database_conventions(tracing, pg_db_url):
    tp, mem = tracing
    TracedCursor.tracer = tp.get_tracer("db")
    try:
        url = pg_db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True, cursor_factory=TracedCursor) as conn:
            with tp.get_tracer("t").start_as_current_span("handler"):
                conn.execute("CREATE TABLE t (id int)")
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO t VALUES (%s)", [(1,), (2,)])
                assert conn.execute("/* app */ SELECT count(*) FROM t WHERE id > %s", (0,)).fetchone() == (2,)
                with pytest.raises(psycopg.errors.UndefinedTable):
                    conn.execute("SELECT * FROM missing")
    finally:
        TracedCursor.tracer = None
    create, insert, select, bad, handler = mem.get_finished_spans()
    dbname = url.rsplit("/", 1)[1]
    assert select.kind == SpanKind.CLIENT and select.name == f"SELECT {dbname}" and select.parent.span_id == handler.context.span_id
    a = select.attributes
    assert a["db.system"] == "postgresql" and a["db.namespace"] == dbname and a["db.operation.name"] == "SELECT"
    assert a["db.query.text"] == "/* app */ SELECT count(*) FROM t WHERE id > %s" and a["server.port"] > 0
    assert insert.attributes["db.operation.batch"] is True and create.attributes["db.operation.name"] == "CREATE"
    assert bad.status.status_code == StatusCode.ERROR and bad.attributes["error.type"] == "42P01"
