"""A small HTTP client for a vigil server: push telemetry, read status, ask the gate."""

from __future__ import annotations

import os

import httpx

from vigil.errors import ExternalError, UsageError, VigilError


def read_token(token_file: str | None = None) -> str:
    """The API token from ``token_file`` or ``$VIGIL_TOKEN``; never from the spec."""
    if token_file:  # named explicitly: it wins over $VIGIL_TOKEN; it must be private (0600)
        from vigil.secrets import read_secret_file

        return read_secret_file(token_file, "token file")
    tok = os.environ.get("VIGIL_TOKEN", "").strip()
    if not tok:
        raise UsageError(
            "no API token", hint="set VIGIL_TOKEN or pass --token-file (vigil serve prints where its token is)"
        )
    return tok


class VigilClient:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
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
            exc = ExternalError if r.status_code >= 500 or r.status_code == 429 else VigilError
            raise exc(f"{self.base}{path}: {msg}", hint=err.get("hint"))
        return body

    def push(self, body: bytes) -> dict:
        return self._request("POST", "/api/v1/push", content=body, headers={"Content-Type": "application/x-ndjson"})

    def slo_status(self, at: str | None = None) -> dict:
        return self._request("GET", "/api/v1/slos", params={"at": at} if at else None)

    def gate(self, service: str, **params) -> dict:
        return self._request("GET", "/api/v1/gate", params={"service": service, **params})
