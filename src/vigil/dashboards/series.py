"""Time grids and panel queries over the :class:`~vigil.telemetry.sources.Source` protocol. Pure:
no clock, no I/O of its own (the source reads), plain data out.

A chart covers ``[start, end)`` in Unix minutes, cut into steps at multiples of ``step`` (so the
embedded store answers whole hours from its hourly rollup): the first step may begin before
``start``, the last one ends at ``end`` and may be shorter. A point is the value of one step,
plotted at the step's end (as Prometheus' range queries evaluate ``[t - step, t)`` at ``t``).

Every sum over a step comes from one read per query: sums over ``[b, end)`` for every step
boundary ``b``, differenced. Counts are exact integers; a ratio is a ratio of sums; a step with
nothing to count is ``None`` (never NaN).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from vigil.dashboards.spec import Panel, PanelQuery
from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery, ReadPlan, Source

RANGES: dict[str, tuple[int, int]] = {
    "1h": (60, 1),
    "6h": (360, 5),
    "1d": (1440, 15),
    "7d": (10080, 60),
    "30d": (43200, 360),
}
"""The time-range picker's choices: (span in minutes, step in minutes)."""

STEPS = (1, 5, 15, 30, 60, 120, 180, 360, 720, 1440)
MAX_POINTS = 240
MAX_SPAN = 400 * 1440


@dataclass(frozen=True)
class Grid:
    """Step boundaries ``b0 < b1 < ... < bn`` (Unix minutes); step i is ``[b_i, b_{i+1})``."""

    bounds: tuple[int, ...]
    step: int

    @property
    def start(self) -> int:
        return self.bounds[0]

    @property
    def end(self) -> int:
        return self.bounds[-1]

    @property
    def points(self) -> tuple[int, ...]:
        """Where each step is plotted: its end."""
        return self.bounds[1:]

    def steps(self) -> list[tuple[int, int]]:
        return list(zip(self.bounds, self.bounds[1:]))


def choose_step(span: int, max_points: int = MAX_POINTS) -> int:
    """The smallest step of :data:`STEPS` giving at most ``max_points`` points over ``span`` minutes."""
    for s in STEPS:
        if span / s <= max_points:
            return s
    return STEPS[-1] * max(1, math.ceil(span / (STEPS[-1] * max_points)))


def make_grid(start: int, end: int, step: int | None = None) -> Grid:
    """The grid over ``[start, end)``: boundaries at multiples of ``step`` (chosen from the span when
    None), the first at or before ``start``, the last ``end`` itself."""
    if end <= start:
        raise ValueError("a chart's range must end after it starts")
    if step is None:
        step = choose_step(end - start)
    if step < 1:
        raise ValueError("a step is at least one minute")
    first = (start // step) * step
    bounds = list(range(first, end, step))
    bounds.append(end)
    return Grid(tuple(bounds), step)


def range_grid(range_name: str, end: int) -> Grid:
    """The grid of a picker choice (1h, 6h, 1d, 7d, 30d) ending at ``end``."""
    span, step = RANGES[range_name]
    return make_grid(end - span, end, step)


# -- step sums -----------------------------------------------------------------------------------


def step_diffs(tail_sums: Sequence[int], n_steps: int) -> list[int]:
    """Per-step sums from sums over ``[b_i, end)`` for ``i = 0..n-1`` (the sum over ``[end, end)``
    is 0)."""
    t = list(tail_sums) + [0]
    return [t[i] - t[i + 1] for i in range(n_steps)]


def counter_steps(source: Source, q: CounterQuery, grid: Grid) -> list[int]:
    """The increase of the matching counters in each step."""
    from vigil.dashboards.fast import counter_tails

    starts = list(grid.bounds[:-1])
    tails = counter_tails(source, q, starts, grid.end)  # the embedded store: two queries
    if tails is not None:
        return step_diffs([tails[x] for x in starts], len(starts))
    return step_diffs(source.counter_sums(q, starts, grid.end), len(starts))


def bucket_steps(source: Source, metric: Any, grid: Grid) -> list[dict[int, int]]:
    """The observations of each step as ``{bucket bound in ns: count}`` (non-cumulative)."""
    from vigil.dashboards.fast import observation_tails

    starts = list(grid.bounds[:-1])
    got = observation_tails(source, metric, starts, grid.end)  # the embedded store: two queries
    if got is not None:
        tails = [got[x] for x in starts]
    else:
        source.prefetch(ReadPlan(end=grid.end, starts=starts, observations=[ObservationQuery(metric, 0)]))
        tails = [dict(source.observation_buckets(metric, st, grid.end)) for st in starts]
    tails.append({})
    out = []
    for a, b in zip(tails, tails[1:]):
        out.append({le: n - b.get(le, 0) for le, n in a.items() if n - b.get(le, 0)})
    return out


def histogram_quantile(q: Decimal, buckets: dict[int, int], layout: Sequence[int]) -> Decimal | None:
    """Prometheus' ``histogram_quantile`` over non-cumulative buckets ``{upper bound ns: count}``:
    the bucket holding rank ``q x total``, linear inside it from the layout's bound below (0 below
    the first), the highest finite bound when the rank falls in the overflow bucket. Counts at a
    bound the layout lacks count in the layout's bucket holding it. Seconds, exact; None with no
    observations. (:func:`vigil.histogram.quantile`, the alert engine's too: within the layout's
    bucket width of the true value, 2% in the store's default layout.)"""
    from vigil.histogram import INF, quantile
    from vigil.telemetry.ingest import INF_NS

    finite = layout if isinstance(layout, FiniteLayout) else sorted(b for b in layout if b < INF_NS)
    lay = _bounds_used(finite, buckets, INF_NS)
    est = quantile(q, [(INF if le >= INF_NS else le, n) for le, n in buckets.items()], lay)
    return None if est is None else est.value / Decimal(10**9)


class FiniteLayout(tuple):
    """A layout's finite bounds, sorted (a step's layout, built once per layout, not per step), with
    each bound's index."""

    @property
    def positions(self) -> dict[int, int]:
        got = self.__dict__.get("_index")
        if got is None:
            got = self.__dict__["_index"] = {b: i for i, b in enumerate(self)}
        return got


def _bounds_used(finite: Sequence[int], buckets: dict[int, int], inf_ns: int) -> list[int]:
    """The bounds of the sorted ``finite`` layout a quantile over ``buckets`` can touch: for each
    counted bound, the layout's bound holding it and the bound below that one, and the lowest and
    highest bounds. :func:`vigil.histogram.quantile` answers the same over them as over the whole
    layout (no bound between a bucket's and the one below it is dropped), in time of the counts,
    not of the ~1,700 bounds of the store's 2% layout."""
    if not finite:
        return []
    keep = {finite[0], finite[-1]}
    n_b = len(finite)
    index = finite.positions if isinstance(finite, FiniteLayout) else {}
    for le, n in buckets.items():
        if not n or le >= inf_ns:
            continue
        i = index.get(le)
        if i is None:
            i = bisect.bisect_left(finite, le)
        if i < n_b:
            keep.add(finite[i])
        if i > 0:
            keep.add(finite[i - 1])
    return sorted(keep)


def source_bounds(source: Source) -> dict[int, int]:
    """The bucket bounds of a source's observations as ``{le_ns: first minute bucketed by it}``: the
    embedded store's (its layout is coarser before a finer one was registered), a source's own
    ``bounds_ns``, else the documented bounds (both for all history)."""
    return source.bucket_bounds() or dict.fromkeys(documented_layout(), 0)


def documented_layout() -> tuple[int, ...]:
    """The store's documented bucket bounds (ns): exact for all history, empty buckets included."""
    from vigil.telemetry.ingest import DOCUMENTED_BOUNDS

    return tuple(int(Decimal(str(b)) * 10**9) for b in DOCUMENTED_BOUNDS)


# -- panels --------------------------------------------------------------------------------------


def query_values(source: Source, q: PanelQuery, grid: Grid, memo: dict[Any, Any] | None = None) -> list[Decimal | float | None]:
    """One value per step of ``grid`` for a panel query (None: nothing to show in that step).
    ``memo`` (one per panel and grid) keeps each metric's buckets per step, so a panel's p50 and
    p95 of one metric read its buckets once."""
    steps = grid.steps()
    kind = q.kind
    if kind == "rate":
        assert q.rate is not None
        first = source.first_minute(q.rate, "counter")
        incs = counter_steps(source, CounterQuery(q.rate), grid)
        return [
            None if first is None or b <= first else Decimal(n) / Decimal((b - a) * 60)
            for (a, b), n in zip(steps, incs)
        ]
    if kind == "ratio":
        assert q.ratio is not None
        num = counter_steps(source, CounterQuery(q.ratio.numerator), grid)
        den = counter_steps(source, CounterQuery(q.ratio.denominator), grid)
        return [Decimal(n) / Decimal(d) if d > 0 else None for n, d in zip(num, den)]
    if kind == "quantile":
        assert q.quantile is not None
        from vigil.histogram import layout_at
        from vigil.telemetry.ingest import INF_NS

        bounds = source_bounds(source)
        sinces = sorted(set(bounds.values()))
        layouts: dict[int, tuple[int, ...]] = {}  # the newest registration a step sees -> its layout
        out_q: list[Decimal | float | None] = []
        key = ("buckets", q.quantile.metric)
        per_step = memo.get(key) if memo is not None else None
        if per_step is None:
            per_step = bucket_steps(source, q.quantile.metric, grid)
            if memo is not None:
                memo[key] = per_step
        for (first, _), counts in zip(steps, per_step):
            seen = max((x for x in sinces if x <= first), default=-1)
            if seen not in layouts:
                layouts[seen] = FiniteLayout(layout_at(bounds, first, below=INF_NS))
            out_q.append(histogram_quantile(q.quantile.q, counts, layouts[seen]))
        return out_q
    sel = q.last if kind == "last" else q.max
    assert sel is not None
    arr = source.gauge_max(sel, grid.start, grid.end)
    out: list[Decimal | float | None] = []
    for a, b in steps:
        seg = arr[a - grid.start : b - grid.start]
        vals = [float(x) for x in seg if not math.isnan(x)]
        out.append(None if not vals else (vals[-1] if kind == "last" else max(vals)))
    return out


def panel_series(source: Source, panel: Panel, grid: Grid) -> dict:
    """A panel's lines over ``grid`` as plain data: ``{"title", "unit", "thresholds", "series":
    [{"label", "kind", "points": [[minute, value], ...]}]}`` (values as numbers, None for gaps)."""
    series = []
    memo: dict[Any, Any] = {}
    for q in panel.queries:
        vals = query_values(source, q, grid, memo)
        series.append({"label": q.label, "kind": q.kind, "points": [[m, _num(v)] for m, v in zip(grid.points, vals)]})
    return {
        "title": panel.title,
        "slug": panel.slug,
        "description": panel.description,
        "unit": panel.unit,
        "thresholds": [{"value": float(t.value), "label": t.label} for t in panel.thresholds],
        "series": series,
    }


def _num(v: Decimal | float | None) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) or math.isinf(f) else f
