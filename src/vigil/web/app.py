"""The JSON API: push telemetry, SLO status, the deploy gate. Every /api route needs the token.

Errors have one shape: ``{"error": {"code", "message", "hint"}}``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from vigil import __version__
from vigil.auth import Identity, Role, Tokens
from vigil.clock import Clock, FakeClock, isoformat, parse_time
from vigil.deploy.gate import GateRecord, decision_json, gate_deploy
from vigil.errors import AuthError, ForbiddenError, NotFoundError, UsageError, VigilError
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import LoadedSpec
from vigil.store import Store
from vigil.telemetry.push import DEFAULT_MAX_BODY, Ingestor
from vigil.telemetry.sources import open_source
from vigil.web.push import PushEndpoint


def _error(status: int, code: str, message: str, hint: str | None = None, *, headers: dict | None = None, **extra) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "hint": hint, **extra}}
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, headers=headers or None)


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "hint"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": ["string", "null"]}},
        }
    },
}
_ERROR_TEXT = {
    400: "bad request parameters",
    401: "no token or a wrong one",
    403: "the token's role may not do this",
    404: "unknown service",
    413: "the body is too large",
}

ROUTE_ROLES: dict[tuple[str, str], Role] = {
    ("POST", "/api/v1/push"): "pusher",
    ("POST", "/api/v1/gate"): "deployer",
    ("POST", "/api/v1/findings/{ident}/waive"): "deployer",
    ("POST", "/v1/traces"): "pusher",
    ("POST", "/v1/metrics"): "pusher",
    ("POST", "/api/v1/silences"): "deployer",
    ("DELETE", "/api/v1/silences/{ident}"): "deployer",
}
"""The role each route needs beyond ``viewer`` (every other /api route needs a viewer token)."""


def _errors(*statuses: int) -> dict:
    """OpenAPI ``responses`` for error statuses, all in the one error shape."""
    return {st: {"description": _ERROR_TEXT[st], "content": {"application/json": {"schema": _ERROR_SCHEMA}}} for st in statuses}


def create_app(
    loaded: LoadedSpec, store: Store, tokens: Tokens | str, clock: Clock, *, max_body: int = DEFAULT_MAX_BODY,
    push_options: dict | None = None,
) -> FastAPI:
    """The API app. ``tokens`` are the accepted tokens (a plain string: one admin token).
    ``push_options``: bounds of the push route (:class:`vigil.web.push.PushEndpoint`)."""
    if isinstance(tokens, str):
        tokens = Tokens.single(tokens)
    spec = loaded.spec
    app = FastAPI(
        title="vigil",
        version=__version__,
        description="vigil's JSON API. Send `Authorization: Bearer <token>` on every /api route. "
        "Roles: viewer (read), pusher (+ push), deployer (+ recorded gate decisions and overrides), admin.",
    )
    ingestor = Ingestor(spec, store)
    push_endpoint = PushEndpoint(ingestor, store, clock, max_body=max_body, **(push_options or {}))
    from vigil.web.selfmetrics import HttpMetrics, SelfMetrics

    metrics = app.state.metrics = SelfMetrics(store)  # GET /metrics: a fresh registry per app
    push_endpoint.on_result = metrics.on_push
    app.add_middleware(HttpMetrics, metrics=metrics)
    write_lock = threading.Lock()

    def auth(request: Request) -> Identity:
        h = request.headers.get("authorization", "")
        scheme, _, given = h.partition(" ")
        who = tokens.authenticate(given.strip()) if scheme.lower() == "bearer" and given.strip() else None
        if who is None:
            raise AuthError("missing or wrong API token", hint="send the header Authorization: Bearer <token>")
        route = request.scope.get("route")
        need: Role = ROUTE_ROLES.get((request.method, getattr(route, "path", request.url.path)), "viewer")
        if not who.can(need):
            raise ForbiddenError(
                f"token {who.name!r} has role {who.role}; {request.method} {request.url.path} needs {need} or above",
                hint="use a token with that role (tokens file: vigil token add --role ...)",
            )
        request.state.identity = who
        return who

    Auth = Depends(auth)

    @app.exception_handler(VigilError)
    async def _vigil_error(_r: Request, e: VigilError) -> JSONResponse:
        d = e.to_dict()
        return _error(e.http_status, d.pop("code"), d.pop("message"), d.pop("hint"), **d)

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, e: RequestValidationError) -> JSONResponse:
        errs = [
            {"where": ".".join(str(x) for x in er.get("loc", ())), "message": er.get("msg", "")}
            for er in e.errors()
        ]
        msg = "; ".join(f"{x['where']}: {x['message']}" for x in errs) or "invalid request"
        return _error(400, "usage", msg, "see /docs for the parameters")

    @app.exception_handler(StarletteHTTPException)
    async def _http(r: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(e.status_code, "http")
        headers = dict(e.headers or {})
        if e.status_code == 405:  # every method of the path, not only those of the first route that matched it
            methods = {m for rt in app.routes if isinstance(rt, APIRoute) and rt.matches(r.scope)[0] != Match.NONE for m in rt.methods or ()}
            if methods:
                headers["Allow"] = ", ".join(sorted(methods))
        return _error(e.status_code, code, str(e.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _crash(_r: Request, e: Exception) -> JSONResponse:  # pragma: no cover - defensive
        return _error(500, "internal", f"internal error: {type(e).__name__}", "run vigil serve --debug and report the traceback")

    @app.get("/metrics", summary="vigil's own metrics in the Prometheus text format (viewer token)", dependencies=[Auth],
             responses=_errors(401), response_class=Response)
    def self_metrics(request: Request) -> Response:
        body, ctype = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=ctype)

    @app.get("/healthz", summary="Liveness and store health (no token)")
    def healthz() -> dict:
        store.ping()
        return {"status": "ok", "version": __version__}

    def _at(at: str | None) -> datetime:
        now = clock.now()
        return parse_time(at, now=now) if at else now

    @app.post(
        "/api/v1/push",
        summary="Push telemetry (NDJSON or a JSON array)",
        dependencies=[Auth],
        responses={
            400: {"description": "no line accepted (the push result plus the error shape), or a JSON array body that cannot be read (the error shape)"},
            **_errors(401, 413),
            408: {"description": "the body sent nothing for 30 s: nothing stored, retry with the same Idempotency-Key (the error shape)"},
            415: {"description": "a Content-Encoding other than identity: the route reads plain bodies (the error shape)"},
            422: {"description": "the Idempotency-Key was used for a different body (the error shape)"},
            429: {"description": "the server is ingesting as many pushes as it takes at once: retry after Retry-After seconds, with the same Idempotency-Key (the error shape)"},
        },
        openapi_extra={
            "requestBody": {
                "required": False,
                "description": "one JSON object per line (NDJSON), or a JSON array of objects",
                "content": {
                    "application/x-ndjson": {"schema": {}},  # any bytes: each line is read and judged on its own
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                },
            }
        },
    )
    async def push(request: Request) -> JSONResponse:
        return await push_endpoint(request)

    @app.get("/api/v1/slos", summary="SLO status: budgets, burn rates, alerts", dependencies=[Auth], responses=_errors(400, 401, 404))
    def slos(
        at: Annotated[str | None, Query(max_length=64, description="RFC 3339 time, 'now' or now-1h")] = None,
        service: Annotated[str | None, Query(max_length=128)] = None,
    ) -> dict:
        when = _at(at)
        chosen = list(spec.slos)
        if service is not None:
            if service not in spec.services:
                raise NotFoundError(f"unknown service {service!r}", hint=f"services: {', '.join(sorted(spec.services))}")
            chosen = [s for s in chosen if s.service == service]
        statuses = evaluate_slos(chosen, open_source(spec.telemetry, store), when)
        return {"at": isoformat(when), "slos": [s.to_dict() for s in statuses]}

    gate_get_doc = (
        "What the deploy gate answers (`allowed`, the freezes, the SLO inputs). Safe: records nothing "
        "(`what_if` is true). `at` asks about another time."
    )
    gate_post_doc = (
        "The deploy gate's decision, made now at the server's real clock and recorded with the token's "
        "name as the actor. Needs a deployer or admin token. `at` is refused: ask other times with GET."
    )

    def _http_hint(e: UsageError) -> UsageError:
        """The gate's errors speak the API's words, not the CLI's flags."""
        if "needs a reason" in e.message:
            return UsageError(e.message, hint="send `reason` (a query parameter) with the override label; it is recorded")
        return e

    @app.get("/api/v1/gate", summary="Ask the deploy gate (what-if, never recorded)", description=gate_get_doc,
             dependencies=[Auth], responses=_errors(400, 401, 403, 404))
    def gate_get(
        service: Annotated[str, Query(min_length=1, max_length=128)],
        label: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
        reason: Annotated[str | None, Query(max_length=2000)] = None,
        at: Annotated[str | None, Query(max_length=64, description="RFC 3339 time, 'now' or now-1h (default now)")] = None,
        release: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> dict:
        when = _at(at)
        try:
            d = gate_deploy(loaded, store, service, when, labels=label, reason=reason, release=release, record=False)
        except UsageError as e:
            raise _http_hint(e) from None
        return decision_json(d, what_if=True)

    @app.post("/api/v1/gate", summary="Record a deploy gate decision (now)", description=gate_post_doc,
              dependencies=[Auth], responses=_errors(400, 401, 403, 404))
    def gate_post(
        request: Request,
        service: Annotated[str, Query(min_length=1, max_length=128)],
        label: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
        reason: Annotated[str | None, Query(max_length=2000)] = None,
        release: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> dict:
        for bad, why in (
            ("at", "a recorded decision is made now, at the server's clock; ask about another time with GET /api/v1/gate?at=..."),
            ("actor", "the recorded actor is the token's name; it cannot be set"),
        ):
            if bad in request.query_params:
                raise UsageError(f"`{bad}` is not accepted on POST /api/v1/gate: {why}")
        who: Identity = request.state.identity
        if service not in spec.services:
            raise NotFoundError(f"unknown service {service!r}", hint=f"services: {', '.join(sorted(spec.services))}")
        if isinstance(clock, FakeClock):
            raise UsageError(
                "this server runs on a pinned clock (VIGIL_NOW), and a recorded decision is made at the real clock",
                hint="ask with GET /api/v1/gate (a what-if, never recorded), or restart vigil serve without VIGIL_NOW",
            )
        with write_lock:
            now = clock.now()
            try:
                d = gate_deploy(
                    loaded, store, service, now, decided_at=now, labels=label, reason=reason, actor=f"token:{who.name}",
                    release=release,
                )
            except UsageError as e:
                raise _http_hint(e) from None
        return decision_json(d, what_if=False)

    @app.get("/api/v1/gate/log", summary="Recorded gate decisions, newest first", dependencies=[Auth], responses=_errors(400, 401, 403))
    def gate_log(
        service: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict:
        rows = store.gate_decisions(service=service, limit=limit)
        return {"decisions": [GateRecord.from_row(r).to_dict() for r in rows]}

    from vigil.telemetry.otlp.routes import add_routes as add_otlp_routes
    from vigil.traces.routes import add_routes as add_trace_routes

    app.state.otlp = add_otlp_routes(app, auth, ingestor, push_endpoint, clock, spec.telemetry)
    add_trace_routes(app, Auth, store, _errors)

    from vigil.security.routes import add_routes as add_findings_routes

    add_findings_routes(app, Auth, store, spec, clock, write_lock, _errors)

    from vigil.finops.routes import add_routes as add_cost_routes

    add_cost_routes(app, Auth, store, loaded, clock, _errors)

    from vigil.alerting.routes import add_routes as add_alerting_routes

    add_alerting_routes(app, Auth, store, spec, clock, _errors)

    @app.get("/api/v1/spec", summary="The loaded spec (normalised)", dependencies=[Auth], responses=_errors(401))
    def spec_view() -> dict:
        """The normalised spec. The loader refuses secrets in a spec; anything that still looks like
        one is redacted here, so this route can never echo a secret."""
        from vigil.secretscan import redact

        def clean(v):
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return redact(v) if isinstance(v, str) else v

        return {"sha256": loaded.sha256, "spec": clean(spec.model_dump(mode="json", exclude_none=True))}

    def openapi() -> dict:
        """FastAPI's document, minus the 422 it adds to every route: a bad parameter is a 400 here."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for item in doc.get("paths", {}).values():
                for op in item.values():
                    op.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to change the schema ("Extending OpenAPI")

    from vigil.web.ui import install as install_ui  # the web UI: pages, chart endpoints, /docs offline

    app.state.ui_sessions = install_ui(app, loaded, store, tokens, clock, _errors)
    return app
