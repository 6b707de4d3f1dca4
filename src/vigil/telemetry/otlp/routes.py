"""``POST /v1/traces`` and ``POST /v1/metrics``: the OTLP/HTTP receiver (added by
:func:`vigil.web.app.create_app`; loaded only by the web app, so FastAPI is imported at its top).

As the OTLP specification's "OTLP/HTTP" section says:

- the body is binary protobuf (``Content-Type: application/x-protobuf``) or OTLP/JSON
  (``application/json``), optionally ``Content-Encoding: gzip`` (or ``deflate``); the answer uses
  the request's Content-Type;
- success is ``200`` with an ``Export<signal>ServiceResponse``; when spans or points were rejected
  its ``partial_success`` says how many and why (the client must not retry);
- a body that cannot be decoded is ``400``, a wrong Content-Type or Content-Encoding ``415``, a
  body over the limit (before or after decompression) ``413``: none of these is retried, and
  nothing of the request is stored; failures carry a ``google.rpc.Status`` (in JSON it also carries
  vigil's error shape under ``error``);
- when the store cannot keep up -- as many exports or pushes are being ingested as the server takes
  at once (the push route's slots, shared) -- ``429`` with ``Retry-After``; when the store fails,
  ``503`` with ``Retry-After``. Both are retried by exporters, and a retry is stored once. The
  body is read holding that slot (at most that many bodies in memory at once); a body that sends
  nothing for the push route's ``body_idle`` (30 s) is ``408`` (``body-stalled``), frees its slot
  and stores nothing.

Authentication: ``Authorization: Bearer <token>`` with a pusher (or admin) token, as for
``/api/v1/push`` (an exporter sends it with ``OTEL_EXPORTER_OTLP_HEADERS``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from vigil.aio import idle_chunks
from vigil.clock import Clock, FakeClock
from vigil.errors import AuthError, ForbiddenError, VigilError
from vigil.telemetry.otlp.decode import (
    JSON,
    PROTOBUF,
    Encoding,
    OtlpError,
    OtlpTooLarge,
    Signal,
    decode,
    media_type,
    response_body,
    status_body,
)
from vigil.telemetry.otlp.receiver import Answer, OtlpReceiver

PATHS: dict[Signal, str] = {"traces": "/v1/traces", "metrics": "/v1/metrics"}
RETRY_AFTER = "1"


def _content_type(enc: Encoding) -> str:
    return PROTOBUF if enc == "protobuf" else JSON


def _fail(enc: Encoding, e: VigilError, *, headers: dict | None = None) -> Response:
    status = e.http_status
    h = dict(headers or {})
    if status == 401:
        h["WWW-Authenticate"] = "Bearer"
    if status in (429, 503) and "Retry-After" not in h:
        h["Retry-After"] = RETRY_AFTER
    return Response(status_body(enc, status, e.to_dict()), status_code=status, media_type=_content_type(enc), headers=h)


class Busy(VigilError):
    code = "busy"
    http_status = 429


class OtlpBodyStalled(VigilError):
    code = "body-stalled"
    http_status = 408


class OtlpEndpoint:
    """One OTLP signal's route (see the module doc)."""

    def __init__(self, signal: Signal, receiver: OtlpReceiver, clock: Clock, slots: Callable[[], asyncio.Semaphore], *,
                 max_body: int, wait: float, body_idle: float = 30.0) -> None:
        self.signal = signal
        self.receiver = receiver
        self.clock = clock
        self.slots = slots
        self.max_body = max_body
        self.wait = wait
        self.body_idle = body_idle  # seconds an export holding a slot may send nothing before it is dropped (408)

    async def __call__(self, request: Request, auth: Callable[[Request], Any]) -> Response:
        try:
            enc: Encoding = media_type(request.headers.get("content-type"))
        except OtlpError as e:
            enc = "json"
            try:
                auth(request)
            except (AuthError, ForbiddenError) as a:
                return _fail(enc, a)
            return _fail(enc, e)
        try:
            auth(request)
        except (AuthError, ForbiddenError) as a:
            return _fail(enc, a)
        try:
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_body:
                raise OtlpTooLarge(f"the body is {declared} bytes; the limit is {self.max_body}", hint="export smaller batches")
            # the body is read holding an ingest slot (the push route's, shared): at most that many
            # bodies are held in memory at once, and one that stalls is dropped after body_idle
            sem = self.slots()
            try:
                await asyncio.wait_for(sem.acquire(), self.wait)
            except (asyncio.TimeoutError, TimeoutError):
                await self._drain(request)
                raise Busy(
                    f"the server is ingesting as many exports and pushes as it takes at once; this one waited {self.wait:g}s",
                    hint="retry after Retry-After seconds (an OpenTelemetry exporter does; the retry is stored once)",
                ) from None
            try:
                body = await self._read(request)
                decoded = await run_in_threadpool(
                    decode, body, signal=self.signal, content_type=request.headers.get("content-type"),
                    content_encoding=request.headers.get("content-encoding"), max_bytes=self.max_body,
                )
                answer = await run_in_threadpool(self.receiver.replay, self.signal, decoded)
                if answer is None:
                    answer = await self._ingest(decoded)
            finally:
                sem.release()
        except VigilError as e:
            return _fail(enc, e)
        headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
        return Response(
            response_body(self.signal, enc, answer.rejected, answer.message), status_code=200, media_type=_content_type(enc),
            headers=headers,
        )

    async def _chunks(self, request: Request):
        """The body's chunks; a body that sends nothing for ``body_idle`` seconds is dropped (408),
        so a stalled exporter cannot keep an ingest slot (and every other export and push at 429)."""
        def stalled() -> OtlpBodyStalled:
            return OtlpBodyStalled(
                f"the body sent nothing for {self.body_idle:g}s: nothing of this export was stored",
                hint="send the body without pauses; a retry of the same export is stored once",
            )

        async for chunk in idle_chunks(request.stream(), self.body_idle, stalled):
            yield chunk

    async def _read(self, request: Request) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self._chunks(request):
            size += len(chunk)
            if size > self.max_body:
                raise OtlpTooLarge(f"the body is over the limit of {self.max_body} bytes", hint="export smaller batches")
            parts.append(chunk)
        return b"".join(parts)

    async def _drain(self, request: Request) -> None:
        """Read the rest of a body that is answered without it (never more than the limit, nothing kept)."""
        size = 0
        try:
            async for chunk in self._chunks(request):
                size += len(chunk)
                if size > self.max_body:
                    return
        except OtlpBodyStalled:
            return

    async def _ingest(self, decoded: Any) -> Answer:
        """Ingest ``decoded``; the caller holds an ingest slot."""
        now = self.clock.now()
        fn = self.receiver.export_traces if self.signal == "traces" else self.receiver.export_metrics
        return await run_in_threadpool(fn, decoded, now)


def add_routes(app: Any, auth: Callable[[Request], Any], ingestor: Any, push_endpoint: Any, clock: Clock, telemetry: Any) -> OtlpReceiver:
    """Add ``POST /v1/traces`` and ``POST /v1/metrics``. Their ingest shares the push route's slots
    (``push_endpoint``'s bound on concurrent ingests) and its body limit."""
    # VIGIL_NOW pins the clock: no retention then (vigil serve's rule), telemetry is deleted by the real clock only
    receiver = OtlpReceiver(ingestor, telemetry, started=clock.now(), purging=not isinstance(clock, FakeClock))

    def slots() -> asyncio.Semaphore:
        # the push route's semaphore, made on first use in the serving loop as the push route does
        if push_endpoint._slots is None:
            push_endpoint._slots = asyncio.Semaphore(push_endpoint.max_pushes)
        return push_endpoint._slots

    body_doc = {
        "requestBody": {
            "required": True,
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {"schema": {"type": "object"}},
            },
        }
    }
    responses = {
        200: {"description": "accepted; partial_success names what was rejected", "content": {PROTOBUF: {}, JSON: {}}},
        400: {"description": "the body cannot be decoded (google.rpc.Status)"},
        401: {"description": "no token or a wrong one"},
        403: {"description": "the token's role may not push"},
        413: {"description": "the body is over the limit, before or after decompression"},
        408: {"description": "the body sent nothing for 30 s: nothing stored, its ingest slot freed (google.rpc.Status)"},
        415: {"description": "not application/x-protobuf or application/json, or an unknown Content-Encoding"},
        429: {"description": "the store is busy: retry after Retry-After seconds"},
        503: {"description": "the store failed: retry after Retry-After seconds"},
    }
    for signal, path in PATHS.items():
        ep = OtlpEndpoint(signal, receiver, clock, slots, max_body=push_endpoint.max_body, wait=push_endpoint.push_wait,
                          body_idle=push_endpoint.body_idle)

        def make(ep: OtlpEndpoint) -> Callable:
            async def route(request: Request) -> Response:
                return await ep(request, auth)

            return route

        app.add_api_route(
            path, make(ep), methods=["POST"], summary=f"OTLP/HTTP {signal} export (protobuf or JSON, gzip)",
            responses=responses, openapi_extra=body_doc, response_class=Response,
        )
    return receiver
