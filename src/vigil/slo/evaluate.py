"""Evaluate SLOs at a time through a :class:`~vigil.telemetry.source.Source`.

The counting here is plain arithmetic over what the source returns; the budget math is in
:mod:`vigil.slo.math`. Nothing reads the clock: ``at`` is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Sequence, TypedDict

import numpy as np

from vigil.clock import isoformat
from vigil.slo import math as budget_math
from vigil.slo.alert_windows import BurnCondition, burn_windows, conditions
from vigil.slo.spec import SLO
from vigil.slo.windows import Span, minute_to_datetime, span_at, with_coverage
from vigil.telemetry.ingest import seconds_to_ns
from vigil.telemetry.selector import Selector
from vigil.telemetry.sources.protocol import CounterQuery, GaugeQuery, ObservationQuery, ReadPlan, Source
from vigil.units import format_duration

BURN_WINDOWS: tuple[tuple[str, int], ...] = tuple(burn_windows())
"""Burn-rate windows (name, minutes) reported for every SLO, besides the whole window: every long
and short window of the alert-window catalogs (:mod:`vigil.slo.alert_windows`)."""

TTE_BASIS = "1h"
GOOD_EXCEEDS_VALID = "good events exceed valid events"
"""The start of the warning of an SLO whose good events outnumber its valid ones (good is clamped to
valid, so the SLI would read better than its evidence): the state ``invalid_sli``."""
"""The burn-rate window whose rate projects the time to exhaustion."""


CoverageJSON = TypedDict(
    "CoverageJSON",
    {"since": "str | None", "from": str, "fraction": float, "complete": bool, "first_sample": "str | None"},
)
"""The ``coverage`` of an SLO's JSON (status, gate inputs and freezes): see :meth:`SloStatus.coverage_dict`."""


@dataclass(frozen=True)
class Coverage:
    """Where an SLO's data begins: its ``since:``, or the first minute any series of its SLI has data.

    ``origin`` is ``since`` (the spec's ``since:``), ``first_sample`` or ``none`` (no sample ever:
    nothing is counted). ``first_sample`` is the first minute with data, whatever the origin.
    """

    origin: str
    first_sample: int | None
    since: int | None = None

    @property
    def minute(self) -> int | None:
        """The first minute covered; None when nothing is."""
        return self.since if self.origin == "since" else self.first_sample


def coverage_selectors(slo: SLO) -> list[tuple[Selector, str]]:
    """The selectors (and series kinds) whose first sample starts an SLO's coverage."""
    sli = slo.sli
    if sli.ratio is not None:
        return [(sli.ratio.total, "counter"), (sli.ratio.good, "counter")]
    if sli.latency is not None:
        return [(sli.latency.metric, "observation")]
    assert sli.freshness is not None
    return [(sli.freshness.metric, "gauge")]


def slo_coverage(slo: SLO, source: Source) -> Coverage:
    firsts = [m for m in (source.first_minute(sel, kind) for sel, kind in coverage_selectors(slo)) if m is not None]
    first = min(firsts) if firsts else None
    if slo.since is not None:
        return Coverage("since", first, int(slo.since.timestamp()) // 60)
    return Coverage("first_sample" if first is not None else "none", first)


@dataclass(frozen=True)
class Counts:
    good: int
    valid: int

    @property
    def bad(self) -> int:
        return max(0, self.valid - self.good)


@dataclass
class SloStatus:
    slo: SLO
    at: datetime
    span: Span
    window_counts: Counts
    burn_counts: dict[str, Counts]
    window_seconds: int
    unit: str  # "events" or "slices"
    warnings: list[str] = field(default_factory=list)
    coverage: Coverage | None = None

    # -- derived, exact -------------------------------------------------------------------------

    @property
    def objective(self) -> Decimal:
        return self.slo.objective

    @property
    def no_data(self) -> bool:
        return self.window_counts.valid == 0

    @property
    def sli(self) -> Decimal | None:
        c = self.window_counts
        return Decimal(c.good) / Decimal(c.valid) if c.valid else None

    @property
    def consumed(self) -> Decimal | None:
        c = self.window_counts
        return budget_math.budget_consumed(c.bad, c.valid, self.objective, self.span.elapsed_fraction)

    @property
    def remaining(self) -> Decimal | None:
        c = self.consumed
        return None if c is None else budget_math.ONE - c

    @property
    def allowed_bad(self) -> Decimal | None:
        c = self.window_counts
        return budget_math.allowed_bad(c.valid, self.objective, self.span.elapsed_fraction)

    def burn_rate(self, window: str) -> Decimal | None:
        c = self.window_counts if window == "window" else self.burn_counts[window]
        return budget_math.burn_rate(c.bad, c.valid, self.objective)

    @property
    def burn_rates(self) -> dict[str, Decimal | None]:
        out = {name: self.burn_rate(name) for name, _ in BURN_WINDOWS}
        out["window"] = self.burn_rate("window")
        return out

    @property
    def mwmb(self) -> list[BurnCondition]:
        """The multiwindow, multi-burn-rate conditions of the SLO's window length, evaluated."""
        return conditions(self.window_seconds, self.burn_rates)

    @property
    def time_to_exhaustion(self) -> Decimal | None:
        return budget_math.time_to_exhaustion(self.remaining, self.window_seconds, self.burn_rate(TTE_BASIS))

    def coverage_dict(self) -> CoverageJSON:
        """``since`` (the first minute the window counts), ``from`` (``window``: the data reaches back
        to the window's start; ``first_sample``; ``since``: the spec's ``since:``; ``none``: no sample
        yet), ``fraction`` (of the whole window covered up to now: what the budget math uses),
        ``complete`` and ``first_sample``."""
        cov = self.coverage
        sp = self.span
        origin = "window" if cov is None else cov.origin
        if origin != "none" and sp.complete:
            origin = "window"
        first = None if cov is None or cov.first_sample is None else isoformat(minute_to_datetime(cov.first_sample))
        return {
            "since": None if origin == "none" else isoformat(minute_to_datetime(sp.first)),
            "from": origin,
            "fraction": float(sp.elapsed_fraction),
            "complete": origin == "window",
            "first_sample": first,
        }

    @property
    def invalid(self) -> bool:
        """Whether good events exceeded valid ones (clamped, so the SLI reads better than its
        evidence): the gate freezes on it (rule ``invalid-sli``), the state is ``invalid_sli``."""
        return any(GOOD_EXCEEDS_VALID in w for w in self.warnings)

    @property
    def state(self) -> str:
        if self.invalid:  # before no_data: good events with no valid ones contradict themselves too
            return "invalid_sli"
        if self.no_data:
            return "no_data"
        c = self.consumed
        return "breaching" if c is not None and c > 1 else "ok"

    def to_dict(self) -> dict:
        """The stable JSON shape of ``vigil slo status --json`` (numbers are JSON numbers)."""
        s = self.slo
        c = self.window_counts
        mw = self.mwmb
        return {
            "name": s.name,
            "service": s.service,
            "objective": _num(s.objective),
            "objective_percent": _num(s.objective * 100),
            "window": {
                "type": "rolling" if self.span.rolling else "calendar",
                "spec": s.window.describe(),
                "start": isoformat(minute_to_datetime(self.span.start)),
                "end": isoformat(minute_to_datetime(self.span.end)),
                "length_seconds": self.window_seconds,
                "elapsed_fraction": _num(self.span.elapsed_fraction),
            },
            "coverage": self.coverage_dict(),
            "sli": {"kind": s.sli.kind, "value": _num(self.sli), "unit": self.unit},
            "good": c.good,
            "valid": c.valid,
            "bad": c.bad,
            "budget": {
                "consumed": _num(self.consumed),
                "remaining": _num(self.remaining),
                "allowed_bad": _num(self.allowed_bad),
                "error_budget_seconds": _num(budget_math.error_budget_seconds(self.window_seconds, s.objective)),
            },
            "burn_rates": {k: _num(v) for k, v in self.burn_rates.items()},
            "mwmb": [c.to_dict() for c in mw],
            "mwmb_holding": [c.name for c in mw if c.holds],
            "time_to_exhaustion": _num(self.time_to_exhaustion),
            "time_to_exhaustion_basis": TTE_BASIS,
            "state": self.state,
            "warnings": list(self.warnings),
        }


def _num(d: Decimal | None) -> float | None:
    return None if d is None else float(d)


# -- evaluation -------------------------------------------------------------------------------


def evaluate_slos(slos: Sequence[SLO], source: Source, at: datetime) -> list[SloStatus]:
    """Evaluate every SLO at ``at``. One plan is handed to the source first, so it can batch.

    First the coverage of every SLO (one read of the first samples), then the sums: a window
    counts from the later of its start and its coverage. A source that routes SLOs
    (:class:`~vigil.telemetry.sources.SourceSet`: an SLO's ``source:``) evaluates each group of
    SLOs on its own source.
    """
    route = getattr(source, "for_slo", None)
    if route is not None:
        return _evaluate_by_source(slos, route, at)
    spans = [span_at(s.window, at) for s in slos]
    if slos:
        source.prefetch(ReadPlan(end=spans[0].now, firsts=[q for s in slos for q in coverage_selectors(s)]))
    coverages = [slo_coverage(s, source) for s in slos]
    spans = [covered_span(s, sp, c) for s, sp, c in zip(slos, spans, coverages)]
    plans: dict[int, ReadPlan] = {}
    for slo, span in zip(slos, spans):
        plan = plans.setdefault(span.now, ReadPlan(end=span.now))
        if slo.sli.freshness is not None:
            if not callable(getattr(source, "gauge_summary", None)):  # else read per SLO, summarised
                fetch_start, grid_end = _slice_range(slo, span)
                plan.gauges.append(GaugeQuery(slo.sli.freshness.metric, fetch_start, grid_end))
            continue
        plan.starts.extend(_starts(span))
        if slo.sli.ratio is not None:
            r = slo.sli.ratio
            plan.counters += [CounterQuery(r.total, r.exclude), CounterQuery(r.good, r.exclude)]
        elif slo.sli.latency is not None:
            plan.observations.append(ObservationQuery(slo.sli.latency.metric, seconds_to_ns(slo.sli.latency.threshold)))
    thresholds = getattr(source, "prefetch_thresholds", None)
    for plan in plans.values():
        if callable(thresholds) and plan.observations:
            # the embedded store: (good, all) at each SLO's threshold, not every bucket
            thresholds(plan.observations, plan.starts, plan.end)
            plan.observations = []
        source.prefetch(plan)
    return [evaluate_slo(slo, source, at, span, cov) for slo, span, cov in zip(slos, spans, coverages)]


def _evaluate_by_source(slos: Sequence[SLO], route, at: datetime) -> list[SloStatus]:
    """SLOs grouped by the source each is read from, each group evaluated there, in the given order."""
    groups: dict[int, tuple[Source, list[int]]] = {}
    for i, slo in enumerate(slos):
        src = route(slo)
        groups.setdefault(id(src), (src, []))[1].append(i)
    out: list[SloStatus | None] = [None] * len(slos)
    for src, idx in groups.values():
        for i, st in zip(idx, evaluate_slos([slos[i] for i in idx], src, at)):
            out[i] = st
    return [st for st in out if st is not None]


def covered_span(slo: SLO, span: Span, cov: Coverage) -> Span:
    """``span`` counted from the SLO's coverage. No sample ever (and no ``since:``): nothing is
    covered yet. A time-slice SLI's coverage starts at the slice holding its first minute."""
    first = cov.minute
    if first is None:
        return with_coverage(span, max(span.now, span.start))
    if slo.sli.freshness is not None and first > span.start:
        size = int(slo.sli.freshness.slice) // 60
        first = span.start + (first - span.start) // size * size
    return with_coverage(span, first)


def _starts(span: Span) -> list[int]:
    """The whole window's start, then each burn-rate window's start; all end at ``span.now``.
    Nothing before the coverage counts (``since:`` or the first sample); a burn-rate window may
    reach back before a calendar window's start."""
    if span.covered_from is None:
        return [span.start] + [span.now - mins for _, mins in BURN_WINDOWS]
    floor = min(span.covered_from, span.now)
    return [min(span.first, span.now)] + [max(floor, span.now - mins) for _, mins in BURN_WINDOWS]


def evaluate_slo(
    slo: SLO, source: Source, at: datetime, span: Span | None = None, coverage: Coverage | None = None
) -> SloStatus:
    if coverage is None:
        coverage = slo_coverage(slo, source)
    if span is None:
        span = covered_span(slo, span_at(slo.window, at), coverage)
    warnings: list[str] = []
    if slo.sli.freshness is not None:
        wc, bc = _time_slices(slo, source, span, warnings)
        unit = "slices"
    else:
        starts = _starts(span)
        if slo.sli.ratio is not None:
            r = slo.sli.ratio
            totals = source.counter_sums(CounterQuery(r.total, r.exclude), starts, span.now)
            goods = source.counter_sums(CounterQuery(r.good, r.exclude), starts, span.now)
            for sel, what in ((r.total, "total"), (r.good, "good")):
                same, other = source.matched(sel, "counter")
                if other and not same:
                    warnings.append(f"{what} selector {sel} matches no counter, only series of another kind")
            pairs = list(zip(goods, totals))
        else:
            lat = slo.sli.latency
            assert lat is not None
            le = seconds_to_ns(lat.threshold)
            pairs = source.observation_counts(ObservationQuery(lat.metric, le), starts, span.now)
            since = source.bound_since(le)
            first = min(starts)
            if since is None or since > first:
                warnings.append(
                    f"threshold {format_duration(lat.threshold)} is exact only for observations since "
                    + ("the threshold was first declared" if since is None else isoformat(minute_to_datetime(since)))
                    + "; earlier observations count as good only when at or under the next lower documented bound"
                )
        clamped = []
        for g, v in pairs:
            if g > v:
                if not any("exceed" in w for w in warnings):
                    warnings.append(f"{GOOD_EXCEEDS_VALID}; check that `good` is a subset of `total`")
                g = v
            clamped.append(Counts(g, v))
        wc = clamped[0]
        bc = {name: c for (name, _), c in zip(BURN_WINDOWS, clamped[1:])}
        unit = "events"
    return SloStatus(slo, at, span, wc, bc, span.length_seconds, unit, warnings, coverage)


def _slice_range(slo: SLO, span: Span) -> tuple[int, int]:
    """The minutes a time-slice SLI reads: whole slices of the window so far and of the longest
    burn-rate window. Slices are aligned to the window start (a rolling window's start moves with
    ``now``)."""
    f = slo.sli.freshness
    assert f is not None
    size = int(f.slice) // 60
    grid_end = span.start + (span.window_elapsed // size) * size
    longest = max(mins for _, mins in BURN_WINDOWS)
    return min(span.start, grid_end - ((longest + size - 1) // size) * size), grid_end


MISSING, GOOD, BAD = 0, 1, 2
"""A time slice's class (:func:`classify_slices`)."""

DETAIL_RUNS = 16
"""At most this many separate reads of the minutes of blocks a summary cannot classify; more, and
one read spans them all."""


def classify_slices(arr: np.ndarray, size: int, threshold: float) -> np.ndarray:
    """The class of each whole ``size``-minute slice of ``arr`` (per-minute maxima, NaN where no
    sample; slices aligned to its end): GOOD when every sample is at or under ``threshold``, BAD
    when one is over, MISSING without a sample. Pure."""
    n = len(arr) // size
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    sl = arr[len(arr) - n * size :].reshape(n, size)
    present = ~np.isnan(sl)
    worst = np.where(present, sl, -np.inf).max(axis=1)
    return np.where(present.any(axis=1), np.where(worst <= threshold, GOOD, BAD), MISSING).astype(np.int8)


def classify_blocks(bmax: np.ndarray, bslices: np.ndarray, n: int, per: int, threshold: float) -> np.ndarray:
    """What a per-block summary tells of ``n`` slices cut into blocks of ``per`` slices (the last
    block may hold fewer): ``bmax`` each block's highest sample (NaN: none), ``bslices`` how many of
    its slices hold a sample. Per slice: GOOD or MISSING where the block says so for every slice
    (every slice sampled and the highest at or under ``threshold``; no sample at all), GOOD or BAD
    where a block is one slice, else -1 (read the block's minutes). Pure."""
    nb = len(bmax)
    expected = np.minimum(per, n - np.arange(nb) * per)
    cls = np.full(nb, -1, dtype=np.int8)
    full = bslices == expected
    good = full & (bmax <= threshold)
    cls[good] = GOOD
    cls[bslices == 0] = MISSING
    if per == 1:
        cls[full & ~good] = BAD
    return np.repeat(cls, per)[:n]


def slice_classes(source: Source, metric: Selector, start: int, end: int, size: int, threshold: float) -> np.ndarray:
    """The class of each whole ``size``-minute slice of ``[start, end)`` (aligned to ``end``), as
    :func:`classify_slices` gives it from the per-minute maxima.

    A source that summarises gauges (``gauge_summary``: the embedded store) answers per block of
    an hour's slices (one slice when a slice is an hour or longer) the highest sample and how many
    slices hold one; a block wholly sampled and at or under the threshold is good throughout, one
    without a sample missing throughout, and only the other blocks' minutes are read. So 30 days
    of a healthy 1-minute freshness gauge are 720 summary rows instead of 43,200 minutes."""
    n = max(0, end - start) // size
    start = end - n * size
    summary = getattr(source, "gauge_summary", None)
    if summary is None or n == 0:
        return classify_slices(source.gauge_max(metric, start, end), size, threshold)
    per = max(1, 60 // size)
    block = per * size
    got = summary(metric, start, end, block, size)
    if got is None:
        return classify_slices(source.gauge_max(metric, start, end), size, threshold)
    bmax, bslices = got
    cls = classify_blocks(np.asarray(bmax, dtype=np.float64), np.asarray(bslices), n, per, threshold)
    todo = np.flatnonzero(cls[::per] < 0)
    if len(todo):
        runs: list[list[int]] = []
        for b in todo.tolist():
            if runs and runs[-1][1] == b:
                runs[-1][1] = b + 1
            else:
                runs.append([b, b + 1])
        if len(runs) > DETAIL_RUNS:
            runs = [[runs[0][0], runs[-1][1]]]
        for b0, b1 in runs:
            s0, s1 = b0 * per, min(b1 * per, n)
            part = classify_slices(source.gauge_max(metric, start + s0 * size, start + s1 * size), size, threshold)
            # a span over several runs re-reads blocks already classified: the same answer
            cls[s0:s1] = part
    return cls


def _time_slices(slo: SLO, source: Source, span: Span, warnings: list[str]) -> tuple[Counts, dict[str, Counts]]:
    f = slo.sli.freshness
    assert f is not None
    size = int(f.slice) // 60
    fetch_start, grid_end = _slice_range(slo, span)
    # whole slices from the coverage on (``span.first`` is aligned to the grid): none before the
    # first sample ever seen, or before ``since:``
    k = max(0, grid_end - span.first) // size
    cls = slice_classes(source, f.metric, fetch_start, grid_end, size, float(f.threshold))
    same, other = source.matched(f.metric, "gauge")
    if not same:
        warnings.append(
            f"no gauge series match {f.metric}"
            + ("; series of another kind do" if other else "")
            + (
                f"; every slice since {isoformat(minute_to_datetime(span.first))} counts as missing ({f.missing})"
                if slo.since is not None
                else "; no slice counts before the first sample (set `since:` to count missing slices from a fixed time)"
            )
        )
    n_all = len(cls)
    good_mask = cls == GOOD
    bad_mask = cls == BAD
    missing_mask = cls == MISSING

    def counts(last_n: int) -> Counts:
        last_n = min(last_n, n_all)
        if last_n <= 0:
            return Counts(0, 0)
        sl = slice(n_all - last_n, n_all)
        g = int(good_mask[sl].sum())
        b = int(bad_mask[sl].sum())
        miss = int(missing_mask[sl].sum())
        if f.missing == "bad":
            b += miss
        elif f.missing == "good":
            g += miss
        return Counts(g, g + b)

    # burn-rate windows may reach back before a calendar window's start, not before the coverage
    n_cov = n_all if span.covered_from is None else max(0, -(-(grid_end - span.covered_from) // size))
    wc = counts(k)
    bc = {name: counts(min(n_cov, max(1, mins // size))) for name, mins in BURN_WINDOWS}
    return wc, bc
