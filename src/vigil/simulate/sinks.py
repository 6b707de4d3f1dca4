"""Where simulated lines go: a byte stream (a file, stdout) or a vigil server's push API."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Protocol

from vigil.errors import ExternalError, VigilError
from vigil.telemetry.push import DEFAULT_MAX_BODY, PushResult, chain_key

Sleep = Callable[[float], None]


class Sink(Protocol):
    def write(self, lines: list[str]) -> None:
        """Take whole NDJSON lines (without newlines). May buffer."""

    def flush(self, *, final: bool = False) -> None:
        """Deliver everything buffered (a live tick ends with a flush). ``final``: the user is
        stopping the run; deliver what can be delivered now, without waiting to retry."""


class StreamSink:
    """Writes lines to a binary stream, buffering up to ``buffer_bytes``."""

    def __init__(self, stream: BinaryIO, *, buffer_bytes: int = 1 << 20) -> None:
        self.stream = stream
        self.buffer_bytes = buffer_bytes
        self._buf: list[str] = []
        self._size = 0

    def write(self, lines: list[str]) -> None:
        self._buf.append("\n".join(lines) + "\n")
        self._size += sum(len(s) for s in lines) + len(lines)
        if self._size >= self.buffer_bytes:
            self._drain()

    def _drain(self) -> None:
        if self._buf:
            self.stream.write("".join(self._buf).encode())
            self._buf = []
            self._size = 0

    def flush(self, *, final: bool = False) -> None:
        self._drain()
        self.stream.flush()


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    bytes: int = 0
    result: PushResult = field(default_factory=PushResult)


class HttpSink:
    """Pushes lines to a vigil server in batches under its body limit (16 MiB by default).

    A batch that fails with a network error, a timeout, a 429 or a 5xx is retried up to
    ``retries`` times, waiting ``backoff`` seconds, then twice that, and so on (at most
    ``max_backoff``, and at least a 429's Retry-After), through the injected ``sleep``. Other
    errors (a wrong token, 413) fail at once. When the retries run out, the error says which
    timestamp to resume from.

    Each batch carries an ``Idempotency-Key``, the same on every retry: a chain over the batch
    bytes from a seed drawn per sink (key_i = sha256(key_{i-1} || batch_i)), so a retry after a
    timeout whose first attempt was stored is answered from that attempt, never stored twice.
    """

    def __init__(
        self,
        client: "PushClient",
        *,
        sleep: Sleep,
        batch_bytes: int = 4 * 1024 * 1024,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        on_retry: Callable[[int, float, VigilError], None] | None = None,
    ) -> None:
        if batch_bytes > DEFAULT_MAX_BODY:
            raise ValueError("batch_bytes must stay under the server's body limit")
        self.client = client
        self.sleep = sleep
        self.batch_bytes = batch_bytes
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_retry = on_retry
        self.stats = HttpStats()
        self._buf: list[str] = []
        self._size = 0
        self._lines = 0  # lines sent before the buffer: for line numbers in rejections
        self._key = hashlib.sha256(os.urandom(32)).hexdigest()

    def write(self, lines: list[str]) -> None:
        # Batches are cut between writes only. The runner writes at most one minute at a time and
        # no two writes share a timestamp, so "resume from the first unsent line's ts" is exact.
        n = sum(len(s) for s in lines) + len(lines)
        if self._size + n > self.batch_bytes and self._buf:
            self._send()
        self._buf.extend(lines)
        self._size += n

    def flush(self, *, final: bool = False) -> None:
        if self._buf:
            self._send(retries=0 if final else self.retries)

    def _send(self, retries: int | None = None) -> None:
        retries = self.retries if retries is None else retries
        body = ("\n".join(self._buf) + "\n").encode()
        key = chain_key(self._key, body)
        attempt = 0
        while True:
            try:
                self.stats.requests += 1
                resp = self.client.push(body, idempotency_key=key)
                break
            except ExternalError as e:
                if attempt >= retries:
                    first_ts = self._buf[0][7:27]
                    raise ExternalError(
                        f"{e.message} (gave up after {attempt + 1} attempts)",
                        hint=(e.hint + "; " if e.hint else "")
                        + f"every line before {first_ts} was delivered: to resume, rerun with --from {first_ts}"
                        + " and the same --to, --seed, --scenario and incident options",
                    ) from None
                delay = min(self.max_backoff, self.backoff * (2**attempt))
                ra = getattr(e, "retry_after", None)
                if ra:
                    delay = max(delay, min(ra, self.max_backoff))
                attempt += 1
                self.stats.retries += 1
                if self.on_retry is not None:
                    self.on_retry(attempt, delay, e)
                self.sleep(delay)
        ok = isinstance(resp, dict) and all(type(resp.get(k)) is int for k in ("accepted", "rejected"))
        if not ok or resp["accepted"] + resp["rejected"] != len(self._buf):  # a proxy's page, another service
            first_ts = self._buf[0][7:27]
            raise ExternalError(
                f"the server answered {len(self._buf)} lines with something that is not a vigil push result for them"
                f" ({str(resp)[:120]!r}): they are not known to be stored",
                hint=f"check --url: it must be a vigil server (vigil serve); every line before {first_ts} was delivered",
            )
        self._key = key
        self.stats.bytes += len(body)
        self.stats.result.add_remote(resp, self._lines)
        self._lines += len(self._buf)
        self._buf = []
        self._size = 0


class PushClient(Protocol):
    def push(self, body: bytes, *, idempotency_key: str | None = None) -> dict:
        """POST one NDJSON body with its idempotency key; raise ExternalError for what may succeed
        on retry (the retry sends the same key)."""
