"""W3C trace-context over HTTP: reading the caller's ``traceparent`` and sending ours.

:func:`extract` reads a context from request headers (any case); :func:`inject` adds
``traceparent`` (and ``tracestate``) for the current span to outgoing headers; :func:`client_span`
is the outgoing call itself: a CLIENT span, and the headers to send with the request."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping


def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def extract(headers: Mapping[str, Any] | None) -> Any:
    """The OpenTelemetry context of the caller, from its headers (names in any case; a list value,
    as in API Gateway's ``multiValueHeaders``, counts by its first item). No or a malformed
    ``traceparent``: an empty context (the span starts a new trace)."""
    carrier: dict[str, str] = {}
    for k, v in (headers or {}).items():
        if isinstance(v, (list, tuple)):
            v = v[0] if v else ""
        if isinstance(k, bytes):
            k = k.decode("latin-1")
        if isinstance(v, bytes):
            v = v.decode("latin-1")
        if isinstance(k, str) and isinstance(v, str):
            carrier[k.lower()] = v
    return _propagator().extract(carrier)


def inject(headers: dict[str, str] | None = None, context: Any = None) -> dict[str, str]:
    """``headers`` plus ``traceparent`` (and ``tracestate``) of the current span (or ``context``)."""
    out = dict(headers or {})
    _propagator().inject(out, context=context)
    return out


@contextmanager
def client_span(method: str, url: str, *, tracer: Any = None, attributes: Mapping[str, Any] | None = None) -> Iterator[tuple[Any, dict[str, str]]]:
    """A CLIENT span around an outgoing HTTP call; yields (span, headers to send). Set the
    response's status with :func:`set_response`."""
    from urllib.parse import urlsplit

    from opentelemetry import trace

    tr = tracer or trace.get_tracer("vigil.instrument.http")
    u = urlsplit(url)
    attrs: dict[str, Any] = {"http.request.method": method.upper(), "url.full": url, "server.address": u.hostname or ""}
    if u.port:
        attrs["server.port"] = u.port
    attrs.update(attributes or {})
    with tr.start_as_current_span(method.upper(), kind=trace.SpanKind.CLIENT, attributes=attrs) as span:
        yield span, inject()


def set_response(span: Any, status_code: int, *, server: bool = False) -> None:
    """Record an HTTP status on a span; 5xx (and, for a client span, 4xx) marks it an error."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", int(status_code))
    if status_code >= 500 or (not server and status_code >= 400):
        span.set_status(Status(StatusCode.ERROR))
