"""Tracing for the platform's own code, on the OpenTelemetry SDK (no tracer of vigil's own): W3C
trace-context across the hops web -> GraphQL API -> function -> database, exported over OTLP/HTTP
to ``vigil serve`` (or any OTLP endpoint, such as a Collector).

- :func:`setup` -- a ``TracerProvider`` for one service, exporting to ``{url}/v1/traces`` with the
  token vigil needs (a pusher token).
- :class:`vigil.instrument.asgi.TraceMiddleware` -- ASGI: a SERVER span per HTTP request, continuing
  the caller's ``traceparent``; :func:`vigil.instrument.http.client_span` for the outgoing call
  (a CLIENT span and the headers to send).
- :func:`vigil.instrument.lambda_.traced_handler` -- AWS Lambda-style ``handler(event, context)``:
  continues the trace from the event's HTTP headers (API Gateway, function URLs) or the GraphQL
  request context (AppSync's ``request.headers``), flushes before returning.
- :func:`vigil.instrument.db.connect` / :class:`vigil.instrument.db.TracedCursor` -- psycopg 3:
  a CLIENT span per statement with the database semantic conventions.

Only ``opentelemetry-api``/``-sdk`` and the OTLP/HTTP exporter are imported, when used.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

__all__ = ["setup", "W3C"]

W3C = "traceparent"


def setup(
    service: str,
    *,
    url: str | None = None,
    token: str | None = None,
    resource: Mapping[str, Any] | None = None,
    batch: bool = True,
    set_global: bool = True,
    timeout: float = 10.0,
) -> Any:
    """A ``TracerProvider`` for ``service`` exporting spans to ``{url}/v1/traces``.

    ``url``: vigil's base URL (default ``$VIGIL_URL``, else the SDK's own
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` rules). ``token``: a pusher token (default ``$VIGIL_TOKEN``),
    sent as ``Authorization: Bearer``. ``batch``: a ``BatchSpanProcessor`` (the default, for
    servers) or a ``SimpleSpanProcessor`` (exports each span as it ends). ``set_global``: make it
    the global provider, so instrumentation that calls ``trace.get_tracer`` uses it."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    base = url or os.environ.get("VIGIL_URL")
    tok = token or os.environ.get("VIGIL_TOKEN")
    headers = {"Authorization": f"Bearer {tok}"} if tok else None
    endpoint = base.rstrip("/") + "/v1/traces" if base else None
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout)
    attrs = {"service.name": service, **dict(resource or {})}
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider
