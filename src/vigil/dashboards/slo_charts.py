"""The SLO charts: budget burn-down over the window against the ideal line, burn rates over time
with the multiwindow thresholds, and the SLI and good/valid counts per step. Pure over a Source.

Every number is the SLO engine's (:mod:`vigil.slo.evaluate`) for the same window:

* **burn-down** at minute ``t``: the engine's ``budget.consumed`` of the current window as it stood
  at ``t`` (``Span(start, end, now=t)`` with the SLO's coverage). For a calendar window that is the
  engine evaluated at ``t``; a rolling window is read as the fixed window it covers at the chart's
  time, so the line ends at the engine's figure of now. The ideal line spends the budget evenly:
  remaining ``1 - elapsed fraction``, 0 at the window's end when the coverage is complete;
* **burn rates** at ``t``: the engine's burn rate over each long window of the SLO's multiwindow
  conditions (1h, 6h, 1d, 3d for 30 days), evaluated at ``t``, with each condition's threshold;
* **SLI per step**: good / valid over the step ``[a, b)`` from the coverage on, as the engine
  counts a window ``Span(a, b, now=b)``.

Ratio and latency SLIs are computed from one read of sums over ``[x, end)`` (differenced, exact
integers). Freshness SLIs (time slices aligned to the window): the burn-down classifies the
window's slices once and counts them up to each point; burn rates and the SLI per step run the
engine at each point over the slices they read. The tests compare every point with the engine.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from vigil.dashboards.series import Grid, choose_step
from vigil.slo import math as budget_math
from vigil.slo.alert_windows import alert_windows
from vigil.slo.evaluate import BAD, GOOD, MISSING, Coverage, covered_span, evaluate_slo, slice_classes, slo_coverage
from vigil.slo.spec import SLO
from vigil.slo.windows import Span, span_at
from vigil.telemetry.ingest import seconds_to_ns
from vigil.telemetry.sources.protocol import CounterQuery, GaugeQuery, ObservationQuery, ReadPlan, Source

BURNDOWN_POINTS = 180
FRESHNESS_POINTS = 60


def minute_dt(m: int) -> datetime:
    return datetime.fromtimestamp(m * 60, tz=timezone.utc)


def x_text(m: int) -> str:
    """A minute as the charts' x value: ``YYYY-MM-DD HH:MM`` in UTC (what plotly reads as a date)."""
    return minute_dt(m).strftime("%Y-%m-%d %H:%M")


def num(d: Decimal | None) -> float | None:
    return None if d is None else float(d)


class WindowSums:
    """Sums of an SLO's good and valid events over ``[x, end)`` for a set of ``x`` (one read per
    selector), answering the counts of any ``[a, b)`` between them. Ratio and latency SLIs."""

    def __init__(self, slo: SLO, source: Source, xs: set[int], end: int) -> None:
        from vigil.dashboards.fast import counter_tails, latency_tails

        self.end = end
        keys = sorted(x for x in xs if x < end)
        sli = slo.sli
        if sli.ratio is not None:
            r = sli.ratio
            tq, gq = CounterQuery(r.total, r.exclude), CounterQuery(r.good, r.exclude)
            tt = counter_tails(source, tq, keys, end)  # the embedded store: a few queries for every x
            gt = counter_tails(source, gq, keys, end) if tt is not None else None
            if tt is not None and gt is not None:
                totals, goods = [tt[x] for x in keys], [gt[x] for x in keys]
            else:
                totals = source.counter_sums(tq, keys, end) if keys else []
                goods = source.counter_sums(gq, keys, end) if keys else []
        else:
            assert sli.latency is not None
            le = seconds_to_ns(sli.latency.threshold)
            lt = latency_tails(source, sli.latency.metric, le, keys, end)
            if lt is not None:
                goods = [lt[x][0] for x in keys]
                totals = [lt[x][1] for x in keys]
            else:
                pairs = source.observation_counts(ObservationQuery(sli.latency.metric, le), keys, end) if keys else []
                goods = [g for g, _ in pairs]
                totals = [v for _, v in pairs]
        self.g = dict(zip(keys, goods))
        self.v = dict(zip(keys, totals))

    def _at(self, d: dict[int, int], x: int) -> int:
        return 0 if x >= self.end else d[x]

    def counts(self, a: int, b: int) -> tuple[int, int]:
        """(good, valid) over ``[a, b)``; good above valid is clamped, as the engine does."""
        if b <= a:
            return 0, 0
        v = self._at(self.v, a) - self._at(self.v, b)
        g = self._at(self.g, a) - self._at(self.g, b)
        return min(g, v), v


def _state(slo: SLO, source: Source, at: datetime) -> tuple[Coverage, Span]:
    cov = slo_coverage(slo, source)
    return cov, covered_span(slo, span_at(slo.window, at), cov)


def _prefetch_gauge(slo: SLO, source: Source, lo: int, hi: int) -> None:
    f = slo.sli.freshness
    assert f is not None
    longest = max(w.long_seconds for w in alert_windows(86400 * 30)) // 60
    size = int(f.slice) // 60
    source.prefetch(ReadPlan(end=hi, gauges=[GaugeQuery(f.metric, lo - longest - 2 * size, hi)]))


def burndown(slo: SLO, source: Source, at: datetime, max_points: int = BURNDOWN_POINTS) -> dict:
    """The budget remaining over the current window, against the ideal line."""
    cov, span = _state(slo, source, at)
    first, length = span.first, span.length
    stop = min(span.now, span.end)
    fresh = slo.sli.freshness is not None
    step = choose_step(max(1, stop - span.start), max_points)
    if stop - span.start > 1440:
        step = max(step, 60)  # whole hours: the store answers them from its hourly rollup
    pts = list(range((first // step + 1) * step, stop, step)) + ([stop] if stop > first else [])
    rows: list[tuple[int, int, int, Decimal | None]] = []
    if fresh:
        rows = _fresh_burndown(slo, source, span, pts)
    else:
        sums = WindowSums(slo, source, {first, *pts}, stop)
        for t in pts:
            g, v = sums.counts(first, t)
            rows.append((t, g, v, budget_math.budget_consumed(v - g, v, slo.objective, budget_math.elapsed_fraction(t - first, length))))
    ideal_end = budget_math.ONE - budget_math.elapsed_fraction(span.end - first, length)
    x = [x_text(t) for t, *_ in rows]
    remaining = [num(None if c is None else budget_math.ONE - c) for *_, c in rows]
    return {
        "slo": slo.name,
        "window": {"spec": slo.window.describe(), "start": x_text(span.start), "end": x_text(span.end), "counted_from": x_text(first)},
        "x": x,
        "remaining": remaining,
        "consumed": [num(c) for *_, c in rows],
        "good": [g for _, g, _, _ in rows],
        "valid": [v for _, _, v, _ in rows],
        "ideal": {"x": [x_text(first), x_text(span.end)], "remaining": [1.0, float(ideal_end)]},
        "chart": {
            "title": "Error budget remaining",
            "unit": "ratio",
            "series": [
                {"name": "remaining", "x": x, "y": remaining, "style": "line"},
                {"name": "ideal (even burn)", "x": [x_text(first), x_text(span.end)], "y": [1.0, float(ideal_end)], "style": "dash"},
            ],
        },
    }


def _fresh_burndown(slo: SLO, source: Source, span: Span, pts: list[int]) -> list[tuple[int, int, int, Decimal | None]]:
    """The engine's time-slice counting for a fixed window at each point, from one classification
    of the window's slices: a slice is good when every sample is at or under the threshold, bad
    when one is over, missing without a sample (counted as ``missing`` says); the window counts
    the whole slices from its coverage up to each point."""
    import numpy as np

    f = slo.sli.freshness
    assert f is not None
    if not pts:
        return []
    size = int(f.slice) // 60
    first = span.first  # on the window's slice grid (covered_span aligns it)

    def grid_end(t: int) -> int:
        return span.start + ((min(t, span.end) - span.start) // size) * size

    last = grid_end(max(pts))
    # the engine's classification (vigil.slo.evaluate.slice_classes): from the store's summary per
    # hour where an hour is wholly good or unsampled, the minutes elsewhere
    cls = slice_classes(source, f.metric, first, last, size, float(f.threshold)) if last > first else np.zeros(0, dtype=np.int8)
    good, bad, miss = cls == GOOD, cls == BAD, cls == MISSING
    g_inc = good.astype(np.int64) + (miss.astype(np.int64) if f.missing == "good" else 0)
    b_inc = bad.astype(np.int64) + (miss.astype(np.int64) if f.missing == "bad" else 0)
    cg = np.concatenate([[0], np.cumsum(g_inc)])
    cb = np.concatenate([[0], np.cumsum(b_inc)])
    rows: list[tuple[int, int, int, Decimal | None]] = []
    for t in pts:
        k = max(0, grid_end(t) - first) // size
        g, b = int(cg[k]), int(cb[k])
        rows.append((t, g, g + b, budget_math.budget_consumed(b, g + b, slo.objective, budget_math.elapsed_fraction(t - first, span.length))))
    return rows


def burn_rate_windows(slo: SLO, window_seconds: int) -> tuple[list[tuple[str, int]], list[dict]]:
    """The long windows (name, minutes) of the SLO's multiwindow conditions and the conditions."""
    conds = alert_windows(window_seconds)
    longs: dict[str, int] = {}
    for c in conds:
        longs.setdefault(c.long, c.long_seconds // 60)
    info = [
        {"name": c.name, "severity": c.severity, "long_window": c.long, "short_window": c.short, "threshold": float(c.threshold)}
        for c in conds
    ]
    return sorted(longs.items(), key=lambda kv: kv[1]), info


def burn_rates(slo: SLO, source: Source, at: datetime, grid: Grid) -> dict:
    """Burn rates over the long windows at each point of ``grid``, and the conditions' thresholds."""
    cov, span = _state(slo, source, at)
    windows, conds = burn_rate_windows(slo, span.length_seconds)
    pts = list(grid.points)
    values: dict[str, list[float | None]] = {name: [] for name, _ in windows}
    if slo.sli.freshness is not None:
        # the engine at each point reads the whole window's slices: fewer points, one read
        k = -(-len(pts) // FRESHNESS_POINTS)
        pts = pts[::-1][::k][::-1]
        if pts:
            _prefetch_gauge(slo, source, min(pts), max(pts))
        size = int(slo.sli.freshness.slice) // 60
        longest = max(m for _, m in windows)
        for t in pts:
            # the engine over the part of the window the burn rates read: the slices of the last
            # `longest` minutes, on the window's own slice grid (so the same slices)
            sp = span_at(slo.window, minute_dt(t))
            cut = sp.start + max(0, (t - longest - 2 * size - sp.start) // size) * size
            short = Span(cut, sp.end, sp.now, sp.rolling, covered_span(slo, sp, cov).covered_from)
            st = evaluate_slo(slo, source, minute_dt(t), span=short, coverage=cov)
            for name, _ in windows:
                values[name].append(num(st.burn_rate(name)))
    else:
        covm = cov.minute
        spans = {
            (name, t): (max(min(covm, t), t - mins), t) if covm is not None else (t, t)
            for name, mins in windows
            for t in pts
        }
        xs = {a for a, _ in spans.values()} | {b for _, b in spans.values()}
        sums = WindowSums(slo, source, xs, max(pts) if pts else span.now)
        for name, _ in windows:
            for t in pts:
                g, v = sums.counts(*spans[(name, t)])
                values[name].append(num(budget_math.burn_rate(v - g, v, slo.objective)))
    x = [x_text(t) for t in pts]
    series: list[dict[str, Any]] = [{"name": f"burn rate {name}", "x": x, "y": values[name], "style": "line"} for name, _ in windows]
    for c in conds:
        series.append({
            "name": f"{c['severity']} {c['long_window']}/{c['short_window']} > {c['threshold']:g}",
            "x": [x[0], x[-1]] if x else [], "y": [c["threshold"]] * (2 if x else 0), "style": "dash",
        })
    return {
        "slo": slo.name,
        "x": x,
        "burn_rates": values,
        "conditions": conds,
        "chart": {"title": "Burn rates (multiwindow thresholds dashed)", "unit": "burn", "log_y": True, "series": series},
    }


def sli_steps(slo: SLO, source: Source, at: datetime, grid: Grid) -> dict:
    """Good, valid and the SLI in each step of ``grid`` (nothing before the coverage counts)."""
    cov, _span = _state(slo, source, at)
    steps = grid.steps()
    rows: list[tuple[int, int]] = []
    if slo.sli.freshness is not None:
        if steps:
            _prefetch_gauge(slo, source, grid.start, grid.end)
        for a, b in steps:
            sp = covered_span(slo, Span(a, b, b, True), cov)
            st = evaluate_slo(slo, source, minute_dt(b), span=sp, coverage=cov)
            rows.append((st.window_counts.good, st.window_counts.valid))
    else:
        covm = cov.minute
        wins = [(max(a, covm), b) if covm is not None else (b, b) for a, b in steps]
        sums = WindowSums(slo, source, {a for a, _ in wins} | {b for _, b in wins}, grid.end)
        rows = [sums.counts(a, b) for a, b in wins]
    x = [x_text(b) for _, b in steps]
    sli = [None if v == 0 else float(Decimal(g) / Decimal(v)) for g, v in rows]
    unit = "slices" if slo.sli.freshness is not None else "events"
    good = [g for g, _ in rows]
    bad = [v - g for g, v in rows]
    return {
        "slo": slo.name,
        "unit": unit,
        "x": x,
        "sli": sli,
        "good": good,
        "valid": [v for _, v in rows],
        "bad": bad,
        "objective": float(slo.objective),
        "chart": {
            "title": "SLI per step",
            "unit": "ratio",
            "series": [
                {"name": "SLI", "x": x, "y": sli, "style": "line"},
                {"name": f"objective {float(slo.objective * 100):g}%", "x": [x[0], x[-1]] if x else [],
                 "y": [float(slo.objective)] * (2 if x else 0), "style": "dash"},
            ],
        },
        "counts_chart": {
            "title": f"Good and bad {unit} per step",
            "unit": "count",
            "stacked": True,
            "series": [
                {"name": f"good {unit}", "x": x, "y": good, "style": "bar"},
                {"name": f"bad {unit}", "x": x, "y": bad, "style": "bar"},
            ],
        },
    }
