"""ASGI middleware: one SERVER span per HTTP request, continuing the caller's W3C ``traceparent``.

The span is named ``METHOD route`` and carries ``http.route`` when the framework routed the
request (Starlette and FastAPI put the matched route in the scope), else ``METHOD`` alone (never the
raw path: paths hold ids, span names must not). It records ``http.request.method``, ``url.path``
and ``http.response.status_code``; a 5xx answer or an exception marks it an error (as the HTTP
semantic conventions say for server spans; a 4xx is the client's error, not the server's).

    app = TraceMiddleware(app)            # any ASGI app
    app.add_middleware(TraceMiddleware)   # Starlette / FastAPI
"""

from __future__ import annotations

from typing import Any

from vigil.instrument.http import extract


class TraceMiddleware:
    def __init__(self, app: Any, *, tracer: Any = None, excluded_paths: tuple[str, ...] = ("/healthz",)) -> None:
        self.app = app
        self.tracer = tracer
        self.excluded = excluded_paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("path") in self.excluded:
            await self.app(scope, receive, send)
            return
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        tracer = self.tracer or trace.get_tracer("vigil.instrument.asgi")
        method = scope.get("method", "GET")
        parent = extract(dict(scope.get("headers", [])))
        span = tracer.start_span(
            method, context=parent, kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope.get("path", ""), "url.scheme": scope.get("scheme", "http")},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status_code = 500

        async def send_wrapper(message: dict) -> None:
            nonlocal status_code
            if message.get("type") == "http.response.start":
                status_code = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as e:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, f"{type(e).__name__}"))
            status_code = 500
            raise
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) if route is not None else None
            if template:
                span.set_attribute("http.route", template)
                span.update_name(f"{method} {template}")
            span.set_attribute("http.response.status_code", status_code)
            if status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            otel_context.detach(token)
