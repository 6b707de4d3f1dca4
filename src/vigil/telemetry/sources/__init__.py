"""Telemetry sources: the :class:`Source` protocol, the embedded store's source, an in-memory twin,
and :func:`open_source`, the one place a source is made (chosen by the spec's ``telemetry``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vigil.telemetry.sources.protocol import CounterQuery, GaugeQuery, ObservationQuery, Plan, ReadPlan, Source

if TYPE_CHECKING:
    from vigil.store import Store

__all__ = ["CounterQuery", "GaugeQuery", "ObservationQuery", "Plan", "ReadPlan", "Source", "open_source"]


def open_source(telemetry: Any, store: Store) -> Source:
    """The source the spec's ``telemetry`` section names (today: the embedded store), reading
    ``store``. Build one per evaluation: a source may cache what it read."""
    kind = getattr(getattr(telemetry, "source", None), "kind", "embedded")
    if kind == "embedded":
        from vigil.telemetry.sources.embedded import EmbeddedSource

        return EmbeddedSource(store)
    raise ValueError(f"unknown telemetry source {kind!r}")  # pragma: no cover - the spec model allows only these
