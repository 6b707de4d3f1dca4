"""The traces pages' data: recent traces summarized, and a trace's waterfall rows with their bars.

:func:`bars` and :func:`summary` are pure (a tree's dict in, plain data out); :func:`recent` reads
the trace store. A bar's offset and width are percentages of the trace's duration (its earliest
span's start to its latest span's end), so the page lays them out with CSS alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from vigil.store import Store

RECENT_LIMIT = 100
"""The most traces the list shows (newest first)."""


class TraceSummary(TypedDict):
    """One line of the traces list."""

    trace_id: str
    root_service: str | None
    root_name: str | None
    start: str | None
    duration_ms: float
    span_count: int
    errors: int
    """How many of its spans have the status error."""
    connected: bool
    truncated: bool


def _pct(part_ms: float, whole_ms: float) -> float:
    if whole_ms <= 0:
        return 0.0
    return round(min(max(part_ms / whole_ms * 100.0, 0.0), 100.0), 4)


def bars(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Each span of ``tree`` (:meth:`vigil.traces.tree.Tree.to_dict`) in waterfall order with
    ``bar_left`` and ``bar_width`` in % of the trace (a trace of zero duration: every bar full)."""
    total = float(tree.get("duration_ms") or 0)
    rows = []
    for s in tree["spans"]:
        if total > 0:
            left = _pct(s["offset_ms"], total)
            width = min(_pct(s["duration_ms"], total), round(100.0 - left, 4))
        else:
            left, width = 0.0, 100.0
        rows.append({**s, "bar_left": left, "bar_width": width})
    return rows


def summary(tree: dict[str, Any]) -> TraceSummary:
    """One line of the traces list: the root (the earliest root span), start, duration, span
    count, whether any span is an error and whether the trace is connected."""
    spans = tree["spans"]
    root = spans[0] if spans else {}
    return TraceSummary(
        trace_id=tree["trace_id"],
        root_service=root.get("service"),
        root_name=root.get("name"),
        start=tree["start"],
        duration_ms=tree["duration_ms"],
        span_count=tree["span_count"],
        errors=sum(1 for s in spans if s["status"] == "error"),
        connected=tree["connected"],
        truncated=tree["truncated"],
    )


def recent(store: "Store", since_ns: int, service: str | None, limit: int = RECENT_LIMIT) -> list[TraceSummary]:
    """Summaries of the traces with a span started at or after ``since_ns`` (with a span of
    ``service``, when given), newest first."""
    from vigil.traces.store import BatchCache, read_trace, recent_traces

    cache = BatchCache()
    out: list[TraceSummary] = []
    for tid in recent_traces(store, since_ns, service=service, limit=limit):
        tree = read_trace(store, tid, cache=cache)
        if tree.spans:  # purged between the two reads
            out.append(summary(tree.to_dict()))
    return out


def dur_ms(ms: Any) -> str:
    """A span's duration for people: µs under a millisecond, ms under a second, else s."""
    v = float(ms)
    if v < 1:
        return f"{v * 1000:.0f} µs"
    if v < 1000:
        return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"
    return f"{v / 1000:.3f} s"
