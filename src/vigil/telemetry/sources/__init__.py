"""Telemetry sources: the :class:`Source` protocol, the embedded store's source, an in-memory twin,
Prometheus and CloudWatch, and :func:`open_source`, the one place a source is made (chosen by the
spec's ``telemetry.source``, ``telemetry.sources`` and each SLO's ``source:``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vigil.telemetry.sources.protocol import CounterQuery, GaugeQuery, ObservationQuery, Plan, ReadPlan, Source

if TYPE_CHECKING:
    from vigil.store import Store

__all__ = [
    "CounterQuery", "GaugeQuery", "ObservationQuery", "Plan", "ReadPlan", "Source", "SourceSet", "open_source", "source_for",
]


def _build(spec: Any, store: Store) -> Source:
    kind = getattr(spec, "kind", "embedded")
    if kind == "embedded":
        from vigil.telemetry.sources.embedded import EmbeddedSource

        return EmbeddedSource(store)
    if kind == "prometheus":
        from vigil.telemetry.sources.prometheus import PrometheusSource

        return PrometheusSource(spec)
    if kind == "cloudwatch":
        from vigil.telemetry.sources.cloudwatch import CloudWatchSource

        return CloudWatchSource(spec)
    raise ValueError(f"unknown telemetry source {kind!r}")  # pragma: no cover - the spec model allows only these


def _spec_of(telemetry: Any, name: str | None) -> Any:
    if name is None or name == "default":
        return getattr(telemetry, "source", None)
    if name == "embedded":
        return None
    try:
        return telemetry.sources[name]
    except (AttributeError, KeyError):
        raise ValueError(f"unknown telemetry source {name!r}") from None  # the spec's cross-check names it first


class SourceSet:
    """The default source plus the named ones, built when first asked. It reads as the default
    source; :func:`vigil.slo.evaluate.evaluate_slos` asks :meth:`for_slo` and evaluates each SLO
    where its ``source:`` says."""

    def __init__(self, telemetry: Any, store: Store) -> None:
        self.telemetry = telemetry
        self._store = store
        self._built: dict[str, Source] = {}
        self.default = self.named("default")

    def named(self, name: str | None) -> Source:
        key = "default" if name is None else name
        spec = _spec_of(self.telemetry, key)
        cache_key = "embedded" if getattr(spec, "kind", "embedded") == "embedded" else key
        got = self._built.get(cache_key)
        if got is None:
            got = self._built[cache_key] = _build(spec, self._store)
        return got

    def for_slo(self, slo: Any) -> Source:
        return self.named(getattr(slo, "source", None))

    # the Source protocol, answered by the default source
    def prefetch(self, plan: ReadPlan) -> None:
        self.default.prefetch(plan)

    def counter_sums(self, q, starts, end):
        return self.default.counter_sums(q, starts, end)

    def observation_counts(self, q, starts, end):
        return self.default.observation_counts(q, starts, end)

    def gauge_max(self, metric, start, end):
        return self.default.gauge_max(metric, start, end)

    def matched(self, selector, kind):
        return self.default.matched(selector, kind)

    def first_minute(self, selector, kind):
        return self.default.first_minute(selector, kind)

    def bound_since(self, le_ns):
        return self.default.bound_since(le_ns)

    def observation_buckets(self, metric, start, end):
        return self.default.observation_buckets(metric, start, end)

    def bucket_bounds(self):
        return self.default.bucket_bounds()

    def __getattr__(self, name: str) -> Any:  # store, bounds_ns: what the default source has
        if name.startswith("__") or name in ("default", "telemetry", "_store", "_built"):
            raise AttributeError(name)
        return getattr(self.default, name)

    def close(self) -> None:
        for s in self._built.values():
            close = getattr(s, "close", None)
            if close is not None:
                close()


def open_source(telemetry: Any, store: Store, *, slo: Any = None, name: str | None = None) -> Source:
    """The source the spec's ``telemetry`` names, reading ``store`` when it is the embedded one.

    - ``open_source(telemetry, store)``: the default source (``telemetry.source``); when the spec
      has other sources too (``telemetry.sources``, or an SLO may name ``embedded``), a
      :class:`SourceSet` that evaluates each SLO where its ``source:`` says;
    - ``open_source(telemetry, store, slo=slo)``: the source of that SLO;
    - ``open_source(telemetry, store, name=...)``: a source by name (``default``, ``embedded`` or a
      key of ``telemetry.sources``).

    Build one per evaluation: a source may cache what it read.
    """
    if slo is not None:
        name = getattr(slo, "source", None)
    if name is not None:
        return _build(_spec_of(telemetry, name), store)
    spec = getattr(telemetry, "source", None)
    if getattr(telemetry, "sources", None) or getattr(spec, "kind", "embedded") != "embedded":
        return SourceSet(telemetry, store)
    return _build(spec, store)


def source_for(source: Source, slo: Any) -> Source:
    """The source an SLO is read from: ``source`` itself, or its member the SLO names when
    ``source`` is a :class:`SourceSet`."""
    pick = getattr(source, "for_slo", None)
    return source if pick is None else pick(slo)
