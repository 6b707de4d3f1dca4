"""A small HTTP client for a vigil server: push telemetry, read status, ask the gate.

Every push carries an ``Idempotency-Key`` (the caller's, or a fresh one per push), so a retry after a
timeout, a dropped connection, a 429 or a 5xx is answered from the first attempt's result when that
attempt was stored, and never stores anything twice.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Callable, TypeVar

import httpx

from vigil.errors import ExternalError, UsageError, VigilError


def read_token(token_file: str | None = None) -> str:
    """The API token from ``token_file`` or ``$VIGIL_TOKEN``; never from the spec."""
    if token_file:  # named explicitly: it wins over $VIGIL_TOKEN; it must be private (0600)
        from vigil.secrets import read_secret_file

        return read_secret_file(token_file, "API token")
    tok = os.environ.get("VIGIL_TOKEN", "").strip()
    if not tok:
        raise UsageError(
            "no API token", hint="set VIGIL_TOKEN or pass --token-file (vigil serve prints where its token is)"
        )
    return tok


class ServerUnavailable(ExternalError):
    """The server answered 429 or a 5xx: worth a retry. ``retry_after``: the seconds its
    ``Retry-After`` asked to wait (None when it did not say)."""

    def __init__(self, message: str, *, hint: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class VigilClient:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
        except ValueError:
            raise UsageError("the server URL cannot be read", hint="like http://127.0.0.1:8470") from None
        if "@" in parts.netloc:  # never echoed: it would print the password into a CI log
            raise UsageError(
                "the server URL must not carry credentials (user or password before '@')",
                hint="the API token goes in --token-file or $VIGIL_TOKEN; give the URL as http://host:port",
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"the server URL {url[:200]!r} must be http:// or https:// with a host", hint="like http://127.0.0.1:8470")
        self.base = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw) -> dict:
        return self._send(method, path, **kw)[0]

    def _send(self, method: str, path: str, **kw) -> tuple[dict, httpx.Response]:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise ExternalError(f"{self.base}{path}: timed out", hint="is the server overloaded? retry, or send smaller batches") from None
        except httpx.HTTPError as e:
            raise ExternalError(f"{self.base}{path}: {e}", hint="is `vigil serve` running at that address?") from None
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code >= 400 and not (r.status_code == 400 and "accepted" in body):
            err = body.get("error", {}) if isinstance(body, dict) else {}
            msg = err.get("message") or f"HTTP {r.status_code}"
            if r.status_code >= 500 or r.status_code == 429:
                raise ServerUnavailable(f"{self.base}{path}: {msg}", hint=err.get("hint"),
                                        retry_after=_retry_after(r.headers.get("retry-after")))
            raise VigilError(f"{self.base}{path}: {msg}", hint=err.get("hint"))
        return body, r

    def push(self, body: bytes, *, idempotency_key: str | None = None) -> dict:
        """POST one body (one attempt). Raises ExternalError for what may succeed on retry; retry
        with the same ``idempotency_key``."""
        return self.push_keyed(body, idempotency_key or new_key())[0]

    def push_keyed(self, body: bytes, key: str, *, chain: bool = False) -> tuple[dict, bool]:
        """POST one body with ``key``: (the result, whether the server replayed the result of an
        earlier push with this key instead of storing anything). ``chain``: ``key`` is a ``vigil
        push`` chain key, which the server keeps as long as the telemetry (header ``Vigil-Push-Chain``)."""
        headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": key}
        if chain:
            headers["Vigil-Push-Chain"] = "1"
        d, r = self._send("POST", "/api/v1/push", content=body, headers=headers)
        return d, r.headers.get("idempotent-replayed", "").lower() == "true"

    def slo_status(self, at: str | None = None) -> dict:
        return self._request("GET", "/api/v1/slos", params={"at": at} if at else None)

    def gate(self, service: str, **params) -> dict:
        return self._request("GET", "/api/v1/gate", params={"service": service, **params})


def new_key() -> str:
    """A fresh idempotency key for one logical push (kept across its retries)."""
    return "vigil-" + uuid.uuid4().hex


def _retry_after(v: str | None) -> float | None:
    try:
        return max(0.0, float(v)) if v else None
    except ValueError:
        return None


T = TypeVar("T")


def with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    on_retry: Callable[[int, float, VigilError], None] | None = None,
) -> tuple[T, int]:
    """``call()`` until it returns, retrying an ExternalError up to ``retries`` times after
    ``backoff`` seconds, then twice that, ... (at most ``max_backoff``; at least a 429's
    Retry-After). Returns (the result, retries used); the last error when they run out. Only for
    calls safe to repeat: a push with the same idempotency key, a read."""
    attempt = 0
    while True:
        try:
            return call(), attempt
        except ExternalError as e:
            if attempt >= retries:
                raise
            delay = min(max_backoff, backoff * (2**attempt))
            ra = e.retry_after if isinstance(e, ServerUnavailable) else None
            if ra:
                delay = max(delay, min(ra, max_backoff))
            attempt += 1
            if on_retry is not None:
                on_retry(attempt, delay, e)
            sleep(delay)
