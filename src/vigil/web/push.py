"""``POST /api/v1/push``: the body is read as a stream and checked as it arrives, into one store
transaction with the request's ``Idempotency-Key``.

- **Bounded.** At most ``max_pushes`` pushes are ingested at once; a push that waits longer than
  ``push_wait`` seconds for a slot is answered 429 with ``Retry-After`` (its body read and dropped,
  so the client sees the answer). Complete lines go to ingest about every MiB; lines checked but not
  yet written are held at most ``flush_lines`` at a time. Memory is bounded by those, not by the
  body or by how many clients push.
- **Idempotent.** With an ``Idempotency-Key`` (printable ASCII, at most 255 characters), the key,
  the body's SHA-256 and the response are committed with the rollup. A replay (same key, same body)
  gets the first response with ``Idempotent-Replayed: true`` and stores nothing; the same key with a
  different body is a 422. Of two requests with one key at once, exactly one stores (the key is a
  unique row). Keys are kept at least 24 hours.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vigil.aio import idle_chunks
from vigil.clock import Clock
from vigil.errors import PayloadTooLarge, UsageError, VigilError
from vigil.store import Store
from vigil.store.ingest_txn import KeyRow
from vigil.telemetry.ingest import BodySplitter
from vigil.telemetry.push import DEFAULT_MAX_BODY, Ingestor, PushResult, PushSession

KEY = re.compile(r"[\x21-\x7e]{1,255}")
CHAIN_KEY = re.compile(r"[0-9a-f]{64}")
"""The shape of a ``vigil push`` batch's chain key (a SHA-256 in hex). Sent with the header
``Vigil-Push-Chain: 1`` (``vigil push --url`` does), it is kept as long as the telemetry, like a local
push's, not forgotten after 24 hours (a re-push of the same file a day later must store nothing).
Without the header a key of that shape (a client hashing its bodies) is an HTTP key: 24 hours, so
such keys never pile up for the whole retention."""
FEED_BYTES = 1 << 20
KEY_PURGE_EVERY_MS = 3600 * 1000


class KeyReused(VigilError):
    code = "idempotency-key-reused"
    http_status = 422


class Busy(VigilError):
    code = "busy"
    http_status = 429


class BodyStalled(VigilError):
    code = "body-stalled"
    http_status = 408


class UnsupportedEncoding(VigilError):
    code = "unsupported-encoding"
    http_status = 415


def response_of(res: PushResult) -> tuple[int, dict]:
    """The status and body of a push's answer."""
    d = res.to_dict()
    if res.accepted == 0 and res.rejected_count > 0:
        # the push result plus the one error shape every failing route has
        first = res.rejected[0]
        d["error"] = {
            "code": "telemetry-invalid",
            "message": f"no line was accepted ({res.rejected_count} rejected; line {first.line}: {first.error})",
            "hint": "see `errors` for every rejected line and its reason",
        }
        return 400, d
    return 200, d


class PushEndpoint:
    def __init__(
        self,
        ingestor: Ingestor,
        store: Store,
        clock: Clock,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        max_pushes: int = 4,
        push_wait: float = 2.0,
        flush_lines: int = 20_000,
        body_idle: float = 30.0,
    ) -> None:
        self.ingestor = ingestor
        self.store = store
        self.clock = clock
        self.max_body = max_body
        self.max_pushes = max_pushes
        self.push_wait = push_wait
        self.flush_lines = flush_lines
        self.body_idle = body_idle  # seconds a push holding a slot may send nothing before it is dropped (408)
        self._slots: asyncio.Semaphore | None = None
        self._last_key_purge = 0
        self.on_result: Callable[[PushResult], None] | None = None  # vigil's own /metrics counts lines here

    async def __call__(self, request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {self.max_body}", hint="send smaller batches")
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):  # never read a compressed body as lines
            raise UnsupportedEncoding(
                f"Content-Encoding {encoding[:40]!r} is not read by this route: nothing was stored",
                hint="send the push uncompressed (vigil push batches it); OTLP exporters may compress on /v1/metrics",
            )
        key = request.headers.get("idempotency-key")
        chain = key is not None and request.headers.get("vigil-push-chain") == "1" and CHAIN_KEY.fullmatch(key) is not None
        if key is not None and not KEY.fullmatch(key):
            raise UsageError(
                "the Idempotency-Key header must be 1 to 255 printable ASCII characters without spaces",
                hint="send a unique key per push, e.g. a UUID, and the same key when you retry that push",
            )
        if key is not None:
            row = await run_in_threadpool(self.store.ingest_key, key)
            if row is not None:
                return self._replay(row, await self._drain(request, hashing=True))
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_pushes)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.push_wait)
        except (asyncio.TimeoutError, TimeoutError):
            await self._drain(request, hashing=False)
            e = Busy(
                f"the server is ingesting {self.max_pushes} pushes already; this one waited {self.push_wait:g}s",
                hint="retry after Retry-After seconds with the same Idempotency-Key",
            )
            d = e.to_dict()
            return JSONResponse({"error": d}, status_code=429, headers={"Retry-After": "1"})
        try:
            outcome, digest = await self._ingest(request, key, chain=chain)
        finally:
            self._slots.release()
        if isinstance(outcome, KeyRow):  # a push with this key committed while this one streamed
            return self._replay(outcome, digest)
        status, d = response_of(outcome)
        if self.on_result is not None:
            self.on_result(outcome)
        await self._maybe_purge_keys()
        return JSONResponse(d, status_code=status)

    async def _ingest(self, request: Request, key: str | None, *, chain: bool = False) -> tuple[PushResult | KeyRow, str]:
        now = self.clock.now()
        session: PushSession = await run_in_threadpool(
            self.ingestor.session, now, key=key, source="push" if chain else "http",
            flush_lines=self.flush_lines,
        )
        splitter = BodySplitter()
        hasher = hashlib.sha256()
        size = 0
        buf: list[bytes] = []
        held = 0

        def feed(data: bytes, last: bool) -> None:
            items = splitter.feed(data)
            if last:
                items += splitter.close()
            session.feed(items)

        try:
            async for chunk in self._chunks(request):
                size += len(chunk)
                if size > self.max_body:
                    raise PayloadTooLarge(f"the body is over the limit of {self.max_body} bytes", hint="send smaller batches")
                hasher.update(chunk)
                buf.append(chunk)
                held += len(chunk)
                if held >= FEED_BYTES:
                    data, buf, held = b"".join(buf), [], 0
                    await run_in_threadpool(feed, data, False)
            await run_in_threadpool(feed, b"".join(buf), True)
            digest = hasher.hexdigest()

            def answer(res: PushResult) -> str:
                status, d = response_of(res)
                return json.dumps({"status": status, "body": d})

            outcome = await run_in_threadpool(session.finish, answer, digest)
        except BaseException:
            await run_in_threadpool(session.abort)
            raise
        return outcome, digest

    async def _chunks(self, request: Request):
        """The body's chunks; a body that sends nothing for ``body_idle`` seconds is dropped, so a
        stalled client cannot keep an ingest slot (and every other push at 429) for ever."""
        def stalled() -> BodyStalled:
            return BodyStalled(
                f"the body sent nothing for {self.body_idle:g}s: nothing of this push was stored",
                hint="send the body without pauses; retry with the same Idempotency-Key",
            )

        async for chunk in idle_chunks(request.stream(), self.body_idle, stalled):
            yield chunk

    async def _drain(self, request: Request, *, hashing: bool) -> str:
        """Read the rest of the body (never more than the limit), dropping it; its SHA-256."""
        hasher = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLarge(f"the body is over the limit of {self.max_body} bytes", hint="send smaller batches")
            if hashing:
                hasher.update(chunk)
        return hasher.hexdigest()

    def _replay(self, row: KeyRow, digest: str) -> JSONResponse:
        if row.body_sha256 != digest:
            raise KeyReused(
                f"the Idempotency-Key {row.key!r} was used for a different body (SHA-256 {row.body_sha256[:12]}...,"
                f" this one {digest[:12]}...); nothing was stored",
                hint="use a new key for new content; retry a push only with its own key and its own bytes",
            )
        first = row.result
        return JSONResponse(first.get("body", {}), status_code=int(first.get("status", 200)), headers={"Idempotent-Replayed": "true"})

    async def _maybe_purge_keys(self) -> None:
        now_ms = int(self.clock.now().timestamp() * 1000)
        if now_ms - self._last_key_purge < KEY_PURGE_EVERY_MS:
            return
        self._last_key_purge = now_ms
        try:
            await run_in_threadpool(self.store.purge_keys, now_ms)
        except VigilError:  # housekeeping: the next push tries again
            self._last_key_purge = 0
