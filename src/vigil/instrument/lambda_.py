"""A decorator for AWS Lambda-style handlers ``handler(event, context)`` that continues the trace
from the incoming event.

The caller's W3C ``traceparent`` is read from, in order:

1. ``event["headers"]`` / ``event["multiValueHeaders"]`` -- API Gateway (REST and HTTP APIs),
   function URLs, an ALB;
2. ``event["request"]["headers"]`` -- the GraphQL request context of an AppSync Lambda resolver
   (the headers of the GraphQL request the API received);
3. ``event["traceparent"]`` -- a direct invocation that passes it itself.

The handler runs in a SERVER span (``faas.trigger`` ``http``, or ``other`` for a GraphQL resolver
with ``graphql.field.name``), named after the function (``context.function_name``, else the
handler's name). A returned ``{"statusCode": ...}`` is recorded as ``http.response.status_code``
(5xx: an error); an exception marks the span an error and is raised again. Spans are flushed
before the handler returns (``flush=True``): a Lambda is frozen between invocations, and a span
still buffered then may never leave.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

from vigil.instrument.http import extract


def event_headers(event: Any) -> Mapping[str, Any]:
    """The headers a Lambda event carries (see the module doc), {} when none."""
    if not isinstance(event, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key in ("multiValueHeaders", "headers"):
        h = event.get(key)
        if isinstance(h, Mapping):
            out.update(h)
    req = event.get("request")
    if isinstance(req, Mapping) and isinstance(req.get("headers"), Mapping):
        for k, v in req["headers"].items():
            out.setdefault(k, v)
    tp = event.get("traceparent")
    if isinstance(tp, str) and not any(str(k).lower() == "traceparent" for k in out):
        out["traceparent"] = tp
        if isinstance(event.get("tracestate"), str):
            out["tracestate"] = event["tracestate"]
    return out


def traced_handler(fn: Callable | None = None, *, name: str | None = None, tracer_provider: Any = None, flush: bool = True) -> Any:
    """Decorate ``handler(event, context)`` (see the module doc)."""

    def wrap(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def traced(event: Any, context: Any = None) -> Any:
            from opentelemetry import trace
            from opentelemetry.trace import Status, StatusCode

            provider = tracer_provider or trace.get_tracer_provider()
            tracer = provider.get_tracer("vigil.instrument.lambda")
            fname = name or getattr(context, "function_name", None) or handler.__name__
            attrs: dict[str, Any] = {"faas.name": fname}
            rid = getattr(context, "aws_request_id", None)
            if rid:
                attrs["faas.invocation_id"] = str(rid)
            info = event.get("info") if isinstance(event, Mapping) else None
            if isinstance(info, Mapping) and info.get("fieldName"):
                attrs["faas.trigger"] = "other"
                attrs["graphql.field.name"] = str(info["fieldName"])
                if info.get("parentTypeName"):
                    attrs["graphql.parent_type"] = str(info["parentTypeName"])
            elif isinstance(event, Mapping) and ("headers" in event or "requestContext" in event):
                attrs["faas.trigger"] = "http"
            parent = extract(event_headers(event))
            try:
                with tracer.start_as_current_span(fname, context=parent, kind=trace.SpanKind.SERVER, attributes=attrs,
                                                  record_exception=True, set_status_on_exception=True) as span:
                    result = handler(event, context)
                    if isinstance(result, Mapping) and isinstance(result.get("statusCode"), int):
                        code = int(result["statusCode"])
                        span.set_attribute("http.response.status_code", code)
                        if code >= 500:
                            span.set_status(Status(StatusCode.ERROR))
                    return result
            finally:
                if flush and hasattr(provider, "force_flush"):
                    provider.force_flush()

        return traced

    return wrap(fn) if fn is not None else wrap
