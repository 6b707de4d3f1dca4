"""The JSON API: push telemetry, SLO status, the deploy gate. Every /api route needs the token.

Errors have one shape: ``{"error": {"code", "message", "hint"}}``.
"""

from __future__ import annotations

import hmac
import threading
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil import __version__
from vigil.clock import Clock, isoformat, parse_time
from vigil.deploy.gate import decision_record, gate_deploy
from vigil.errors import AuthError, NotFoundError, PayloadTooLarge, UsageError, VigilError
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import LoadedSpec
from vigil.store import Store
from vigil.telemetry.push import DEFAULT_MAX_BODY, Ingestor
from vigil.telemetry.source import EmbeddedSource


def _error(status: int, code: str, message: str, hint: str | None = None, **extra) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "hint": hint, **extra}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(loaded: LoadedSpec, store: Store, token: str, clock: Clock, *, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    if not token or len(token) < 16:
        raise UsageError("the API token must be at least 16 characters")
    spec = loaded.spec
    app = FastAPI(
        title="vigil",
        version=__version__,
        description="vigil's JSON API. Send `Authorization: Bearer <token>` on every /api route.",
    )
    ingestor = Ingestor(spec, store)
    write_lock = threading.Lock()
    token_b = token.encode()

    def auth(request: Request) -> None:
        h = request.headers.get("authorization", "")
        scheme, _, given = h.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token_b):
            raise AuthError("missing or wrong API token", hint="send the header Authorization: Bearer <token>")

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
    async def _http(_r: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(e.status_code, "http")
        return _error(e.status_code, code, str(e.detail))

    @app.exception_handler(Exception)
    async def _crash(_r: Request, e: Exception) -> JSONResponse:  # pragma: no cover - defensive
        return _error(500, "internal", f"internal error: {type(e).__name__}", "run vigil serve --debug and report the traceback")

    @app.get("/healthz", summary="Liveness and store health (no token)")
    def healthz() -> dict:
        store.ping()
        return {"status": "ok", "version": __version__}

    def _at(at: str | None) -> object:
        now = clock.now()
        return parse_time(at, now=now) if at else now

    @app.post(
        "/api/v1/push",
        summary="Push telemetry (NDJSON or a JSON array)",
        dependencies=[Auth],
        responses={400: {"description": "nothing accepted"}, 401: {"description": "no token"}, 413: {"description": "too large"}},
    )
    async def push(request: Request) -> JSONResponse:
        chunks: list[bytes] = []
        size = 0
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {max_body}", hint="send smaller batches")
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge(f"the body is over the limit of {max_body} bytes", hint="send smaller batches")
            chunks.append(chunk)
        body = b"".join(chunks)

        def work():
            with write_lock:
                return ingestor.push_body(body, clock.now(), max_bytes=max_body)

        res = await run_in_threadpool(work)
        d = res.to_dict()
        status = 400 if res.accepted == 0 and res.rejected_count > 0 else 200
        return JSONResponse(d, status_code=status)

    @app.get("/api/v1/slos", summary="SLO status: budgets, burn rates, alerts", dependencies=[Auth])
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
        statuses = evaluate_slos(chosen, EmbeddedSource(store), when)  # type: ignore[arg-type]
        return {"at": isoformat(when), "slos": [s.to_dict() for s in statuses]}  # type: ignore[arg-type]

    def _gate(service: str, label: list[str], reason: str | None, at: str | None, actor: str | None) -> dict:
        d = gate_deploy(
            loaded, store, service, _at(at), decided_at=clock.now(), labels=label, reason=reason, actor=actor  # type: ignore[arg-type]
        )
        return d.to_dict()

    gate_doc = "The deploy gate: `allowed` true or false, with the freezes, the SLO inputs and the decision id. Recorded."

    @app.get("/api/v1/gate", summary="Ask the deploy gate", description=gate_doc, dependencies=[Auth])
    def gate_get(
        service: Annotated[str, Query(min_length=1, max_length=128)],
        label: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
        reason: Annotated[str | None, Query(max_length=2000)] = None,
        at: Annotated[str | None, Query(max_length=64)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        with write_lock:
            return _gate(service, label, reason, at, actor)

    @app.post("/api/v1/gate", summary="Ask the deploy gate (same as GET)", description=gate_doc, dependencies=[Auth])
    def gate_post(
        service: Annotated[str, Query(min_length=1, max_length=128)],
        label: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
        reason: Annotated[str | None, Query(max_length=2000)] = None,
        at: Annotated[str | None, Query(max_length=64)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        with write_lock:
            return _gate(service, label, reason, at, actor)

    @app.get("/api/v1/gate/log", summary="Recorded gate decisions, newest first", dependencies=[Auth])
    def gate_log(
        service: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict:
        rows = store.gate_decisions(service=service, limit=limit)
        return {"decisions": [decision_record(r) for r in rows]}

    @app.get("/api/v1/spec", summary="The loaded spec (normalised)", dependencies=[Auth])
    def spec_view() -> dict:
        return {"sha256": loaded.sha256, "spec": spec.model_dump(mode="json", exclude_none=True)}

    return app
