"""``GET /metrics``: vigil's own metrics, for the Prometheus that watches the watcher.

One fresh :class:`prometheus_client.CollectorRegistry` per app (never the library's global one, so
two apps in a process, or a test, never share counts). Counted as things happen:

- ``vigil_http_requests_total{route,method,code}`` and ``vigil_http_request_duration_seconds{route}``:
  every answer of the app (a pure ASGI middleware; ``route`` is the route's template, ``other`` for
  no route), so rejections (400, 401, 413, 429) are counted by route and status;
- ``vigil_ingest_lines_total{outcome}``: telemetry lines of ``POST /api/v1/push`` accepted and
  rejected (the ingest rate is its ``rate()``);
- ``vigil_alert_evaluation_seconds``: each pass of the leader's rule evaluator (every due instant);
- ``vigil_dispatch_total{outcome}``: the leader's notification attempts, delivered, retried,
  failed, and switches to a fallback receiver.

Read at each scrape: ``vigil_store_bytes`` (the SQLite file and its WAL, or
``pg_database_size``), ``vigil_store_series``, ``vigil_leader`` (1 when this replica holds the
alerting lease), ``vigil_leader_fence``, ``vigil_alerting_evaluations_total``, and
``vigil_alerting_broken_receivers``. A store that does not answer makes ``vigil_store_up`` 0
rather than failing the scrape.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from vigil.store import Store

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
EVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STORE_SIZE_TTL = 30.0


def store_bytes(store: Store) -> int:
    """The store's size on disk: the SQLite file with its WAL and shared memory, or PostgreSQL's
    ``pg_database_size`` of the database."""
    import sqlalchemy as sa

    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar() or 0)
    path = store.engine.url.database
    if not path or path == ":memory:":
        return 0
    return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p))


class SelfMetrics:
    """The registry of one app and the hooks that feed it."""

    def __init__(self, store: Store) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.store = store
        self.alerting: Any = None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter("vigil_http_requests", "HTTP answers of vigil serve, by route template, method and status",
                                     ["route", "method", "code"], registry=r)
        self.http_seconds = Histogram("vigil_http_request_duration_seconds", "time to answer an HTTP request, by route template",
                                      ["route"], buckets=HTTP_BUCKETS, registry=r)
        self.ingest_lines = Counter("vigil_ingest_lines", "telemetry lines of POST /api/v1/push, by outcome (accepted, rejected)",
                                    ["outcome"], registry=r)
        self.evaluation_seconds = Histogram("vigil_alert_evaluation_seconds",
                                            "time of one pass of the leader's alert evaluator (every due instant)",
                                            buckets=EVAL_BUCKETS, registry=r)
        self.dispatch = Counter("vigil_dispatch", "the leader's notification attempts by outcome (delivered, retried, failed, switched)",
                                ["outcome"], registry=r)
        for o in ("accepted", "rejected"):
            self.ingest_lines.labels(o)
        for o in ("delivered", "retried", "failed", "switched"):
            self.dispatch.labels(o)
        self._size: tuple[float, int | None] = (0.0, None)
        self._lock = threading.Lock()
        r.register(_ScrapeTime(self))

    # -- hooks ---------------------------------------------------------------------------------------

    def on_push(self, result: Any) -> None:
        """A push's result (:class:`vigil.telemetry.push.PushResult`)."""
        self.ingest_lines.labels("accepted").inc(int(getattr(result, "accepted", 0)))
        self.ingest_lines.labels("rejected").inc(int(getattr(result, "rejected_count", 0)))

    def on_evaluated(self, seconds: float) -> None:
        self.evaluation_seconds.observe(seconds)

    def on_dispatched(self, report: Any) -> None:
        """A dispatcher tick's report (:class:`vigil.alerting.dispatch.TickReport`)."""
        for o in ("delivered", "retried", "failed", "switched"):
            n = int(getattr(report, o, 0) or 0)
            if n:
                self.dispatch.labels(o).inc(n)

    def watch(self, alerting: Any) -> None:
        """Follow an :class:`vigil.alerting.service.AlertingService`: its evaluations, dispatches and lease."""
        self.alerting = alerting
        alerting.on_evaluated = self.on_evaluated
        alerting.on_dispatched = self.on_dispatched

    # -- the HTTP side -------------------------------------------------------------------------------

    def count(self, scope: dict, code: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "other"
        self.http_requests.labels(route, scope.get("method", "?"), str(code)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The registry's text, in OpenMetrics when the scraper asks for it."""
        if accept and "application/openmetrics-text" in accept:
            from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest

            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import CONTENT_TYPE_LATEST as TEXT
        from prometheus_client import generate_latest as text

        return text(self.registry), TEXT

    def store_size(self) -> int | None:
        """The store's size, read at most every 30 s (a scrape must stay cheap)."""
        with self._lock:
            at, size = self._size
            if size is None or time.monotonic() - at > STORE_SIZE_TTL:
                try:
                    size = store_bytes(self.store)
                except Exception:
                    size = None
                self._size = (time.monotonic(), size)
            return size


class HttpMetrics:
    """A pure ASGI middleware counting every HTTP answer (``app.add_middleware(HttpMetrics, metrics=m)``)."""

    def __init__(self, app: Callable, metrics: SelfMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_(message: dict) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, send_)
        finally:
            self.metrics.count(scope, status["code"], time.perf_counter() - t0)


class _ScrapeTime:
    """Gauges read when scraped: the store, the alerting lease."""

    def __init__(self, m: SelfMetrics) -> None:
        self.m = m

    def describe(self) -> list:
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = self.m
        up = GaugeMetricFamily("vigil_store_up", "1 when the state store answered this scrape")
        size = m.store_size()
        series = None
        try:
            series = m.store.series_counts()[0]
            up.add_metric([], 1)
        except Exception:
            up.add_metric([], 0)
        yield up
        if size is not None:
            yield GaugeMetricFamily("vigil_store_bytes", "the state store's size on disk in bytes", value=size)
        if series is not None:
            yield GaugeMetricFamily("vigil_store_series", "telemetry series in the embedded store", value=series)
        a = m.alerting
        enabled = GaugeMetricFamily("vigil_alerting_enabled", "1 when this process runs the alerting lease keeper")
        enabled.add_metric([], 1 if a is not None else 0)
        yield enabled
        if a is None:
            return
        st = a.status()
        yield GaugeMetricFamily("vigil_leader", "1 when this replica holds the alerting lease (evaluates and dispatches)",
                                value=1 if st.get("leader") else 0)
        fence = st.get("fence")
        if fence is not None:
            yield GaugeMetricFamily("vigil_leader_fence", "the fence of the lease this replica last held", value=int(fence))
        yield CounterMetricFamily("vigil_alerting_evaluations", "instants this replica evaluated and recorded as leader",
                                  value=int(st.get("evaluations") or 0))
        yield GaugeMetricFamily("vigil_alerting_broken_receivers", "receivers whose secrets could not be read",
                                value=len(st.get("broken_receivers") or {}))
