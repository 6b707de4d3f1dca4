"""The plan's three hops as real processes, for the end-to-end tracing test (issue 10).

    python tests/tracing_app.py web --port P --next URL --vigil URL
    python tests/tracing_app.py api --port P --next URL --vigil URL
    python tests/tracing_app.py fn  --port P --pg URL   --vigil URL

- ``web``: an ASGI app (TraceMiddleware); ``GET /items/{id}`` asks the API with a GraphQL query, sending
  ``traceparent`` (``?propagate=0`` leaves it out: a broken hop, for the negative test);
- ``api``: an ASGI GraphQL API (graphql-core) behind TraceMiddleware; the ``item`` field is resolved by
  invoking the function the way AppSync invokes a Lambda resolver: an event with ``arguments``,
  ``info`` and the GraphQL request's ``request.headers``, which carry ``traceparent``;
- ``fn``: a Lambda-style ``handler(event, context)`` under :func:`vigil.instrument.lambda_.traced_handler`,
  behind the Lambda invoke API path, querying a real PostgreSQL through
  :class:`vigil.instrument.db.TracedCursor`.

Every process exports its spans over OTLP/HTTP to vigil with :func:`vigil.instrument.setup`.
"""

from __future__ import annotations

import argparse
import os
import uuid

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import vigil.instrument as instrument
from vigil.instrument.asgi import TraceMiddleware
from vigil.instrument.http import client_span, set_response


def plain_fastapi() -> FastAPI:
    """A FastAPI app without FastAPI's own OpenTelemetry spans (the releases that have them): these
    apps are traced by vigil.instrument alone."""
    import inspect

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})  # type: ignore[call-arg]
    return FastAPI()

SDL = """
type Item { id: Int!, name: String! }
type Query { item(id: Int!): Item }
"""


def web_app(next_url: str) -> FastAPI:
    app = plain_fastapi()
    app.add_middleware(TraceMiddleware)
    client = httpx.Client(timeout=30)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/items/{item_id}")
    def item(item_id: int, propagate: int = 1) -> JSONResponse:
        body = {"query": "query Item($id: Int!) { item(id: $id) { id name } }", "variables": {"id": item_id}}
        with client_span("POST", next_url + "/graphql") as (span, headers):
            r = client.post(next_url + "/graphql", json=body, headers=headers if propagate else {})
            set_response(span, r.status_code)
        return JSONResponse(r.json(), status_code=r.status_code)

    return app


def api_app(next_url: str) -> FastAPI:
    from graphql import build_schema, graphql_sync

    schema = build_schema(SDL)
    app = plain_fastapi()
    app.add_middleware(TraceMiddleware)
    client = httpx.Client(timeout=30)

    def resolve_item(_root, info, id: int):  # noqa: A002 - the GraphQL argument's name
        url = next_url + "/2015-03-31/functions/fn-items/invocations"
        with client_span("POST", url, attributes={"faas.invoked_name": "fn-items"}) as (span, headers):
            event = {"arguments": {"id": id}, "info": {"fieldName": info.field_name, "parentTypeName": info.parent_type.name},
                     "request": {"headers": headers}}
            r = client.post(url, json=event)
            set_response(span, r.status_code)
        r.raise_for_status()
        return r.json()

    schema.query_type.fields["item"].resolve = resolve_item

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/graphql")
    async def gql(request: Request) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        q = await request.json()
        res = await run_in_threadpool(graphql_sync, schema, q["query"], variable_values=q.get("variables"))
        out: dict = {"data": res.data}
        if res.errors:
            out["errors"] = [{"message": e.message} for e in res.errors]
        return JSONResponse(out, status_code=200)

    return app


def fn_app(pg_url: str) -> FastAPI:
    from vigil.instrument.db import connect
    from vigil.instrument.lambda_ import traced_handler

    conn = connect(pg_url, autocommit=True)

    @traced_handler
    def handler(event: dict, context: object) -> dict:
        row = conn.execute("SELECT id, name FROM items WHERE id = %s", (event["arguments"]["id"],)).fetchone()
        if row is None:
            return {"id": event["arguments"]["id"], "name": "(none)"}
        return {"id": row[0], "name": row[1]}

    class Context:
        def __init__(self) -> None:
            self.function_name = "fn-items"
            self.aws_request_id = str(uuid.uuid4())

    app = plain_fastapi()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/2015-03-31/functions/{name}/invocations")
    def invoke(name: str, event: dict) -> dict:
        return handler(event, Context())

    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["web", "api", "fn"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--next")
    ap.add_argument("--pg")
    ap.add_argument("--vigil", required=True)
    a = ap.parse_args()
    instrument.setup(a.role, url=a.vigil, token=os.environ["VIGIL_TOKEN"])
    app = {"web": lambda: web_app(a.next), "api": lambda: api_app(a.next), "fn": lambda: fn_app(a.pg)}[a.role]()
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
