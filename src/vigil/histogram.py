"""Bucket layouts of observation histograms: log-linear bounds with a relative-width guarantee, and
where a value falls. Shared kernel: pure functions over ``Decimal`` / ``Fraction``, no I/O.

A histogram counts observations in buckets ``(lower, upper]`` cut by a sorted set of *bounds*
(``le`` in Prometheus' words). An observation counted in a bucket is only known to lie in it, so
every statistic drawn from buckets is known up to the buckets' width: that width is the data's
**resolution**. The statistics of the canary judge take any sorted set of bounds and carry the
resolution with every estimate (:mod:`vigil.deploy.canary.stats`); this module says what a layout
guarantees.

**Log-linear bounds** (:func:`log_linear_bounds`), in the spirit of HDR histograms: each decade
``[10^k, 10^(k+1))`` is cut at its 1-2-5 points into ``[1, 2)``, ``[2, 5)`` and ``[5, 10)``
(times ``10^k``), and each of those is cut linearly by the coarsest decimal step
``m x 10^j`` (``m`` in 1, 2, 4, 5) that divides it evenly and keeps every bucket within the
relative width:

    every bucket (l, u] with low <= l < high has  (u - l) / l <= relative

so a value ``x`` in it is within ``relative`` of either edge (``(u - x) / x <= (u - l) / l``),
and so is any quantile drawn from the buckets and any ratio of two such quantiles, up to about
twice the width. At 2% that is 175 bounds a decade (1 ms .. 1 h: 1,150 bounds); at 1%, 350.
Every bound is a short decimal (exact in nanoseconds down to ``low = 1e-6``), and bounds that
must be exact, such as the spec's latency thresholds, are added with ``include``: an added bound
splits a bucket, which only makes buckets narrower. Below ``low`` the first bucket ``(0, low]``
and above ``high`` the overflow bucket ``(high, +inf)`` have no relative bound.

**The store's layout** (:func:`storage_bounds`): observations are bucketed at ingest by log-linear
bounds of ``telemetry.bucket_width`` (default :data:`DEFAULT_WIDTH`, 2%) from 1 us to 1 h
(:data:`STORAGE_LOW`, :data:`STORAGE_HIGH`), plus the documented bounds and every threshold any spec
declared (exact bounds). A store records each layout with the first minute it holds in full
(:func:`layout_at` gives the bounds of any minute); older minutes keep the coarser buckets they were
stored in.

**Quantiles** (:func:`quantile`): Prometheus' ``histogram_quantile`` over the same buckets, with the
bucket the quantile lies in. The estimate and the observation of that rank lie in one bucket
``(l, u]``, so it is off by less than ``(u - l) / l`` of the true value: at most the layout's width
for ``low <= l < high``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

STEPS = (1, 2, 4, 5)  # mantissas of a linear step
CUTS = (1, 2, 5, 10)  # the 1-2-5 points of a decade

STORAGE_LOW = Decimal("0.000001")
"""The store's log-linear layout starts at 1 us: below it one bucket ``(0, 1us]``."""
STORAGE_HIGH = Decimal(3600)
"""... and ends at 1 h: above it the overflow bucket ``(1h, +inf)``."""
DEFAULT_WIDTH = Decimal("0.02")
"""The default relative width of the store's buckets (``telemetry.bucket_width``): 2%."""
MIN_WIDTH = Decimal("0.005")
MAX_WIDTH = Decimal("0.5")
"""The widths ``telemetry.bucket_width`` accepts: 0.5% (about 7,100 bounds) to 50% (94 bounds)."""
INF = Decimal("Infinity")


def _step(start: Decimal, end: Decimal, relative: Decimal) -> Decimal:
    """The coarsest decimal step m x 10^j that divides [start, end) evenly with step <= relative * start."""
    limit = relative * start
    exp = limit.adjusted()  # 10^exp <= limit < 10^(exp+1)
    for e in (exp, exp - 1):
        for m in sorted(STEPS, reverse=True):
            s = Decimal(m).scaleb(e)
            if s <= limit and ((end - start) / s) == ((end - start) / s).to_integral_value():
                return s
    return Decimal(1).scaleb(exp - 1)  # 10^(exp-1) <= limit/10 always divides a 1-2-5 range


def log_linear_bounds(
    low: Decimal | str | int, high: Decimal | str | int, relative: Decimal | str, *, include: Iterable[Decimal | str | int] = ()
) -> tuple[Decimal, ...]:
    """Sorted, distinct bucket bounds from ``low`` to at least ``high`` with every bucket ``(l, u]``
    (``low <= l``) at most ``relative`` wide relative to ``l``; ``include`` adds exact bounds.

    ``low`` must be a power of ten (the decades start there) and ``0 < relative <= 1``.
    """
    lo, hi, rel = Decimal(low), Decimal(high), Decimal(relative)
    if lo <= 0 or hi <= lo:
        raise ValueError("log_linear_bounds needs 0 < low < high")
    if lo != Decimal(1).scaleb(lo.adjusted()):
        raise ValueError(f"low must be a power of ten (1e-3, 0.01, 1, ...), got {lo}")
    if not 0 < rel <= 1:
        raise ValueError("relative must be above 0 and at most 1 (100%)")
    out: set[Decimal] = {_clean(lo)}
    decade = lo
    while decade < hi:
        for a, b in zip(CUTS, CUTS[1:]):
            start, end = decade * a, decade * b
            step = _step(start, end, rel)
            n = int((end - start) / step)
            for i in range(1, n + 1):
                out.add(_clean(start + step * i))
            if end >= hi:
                break
        decade *= 10
    for x in include:
        d = Decimal(x)
        if d <= 0:
            raise ValueError(f"an included bound must be above 0, got {d}")
        out.add(_clean(d))
    return tuple(sorted(out))


def _clean(d: Decimal) -> Decimal:
    """A short decimal without exponent notation: 5000, not 5E+3; 0.00102, not 0.001020."""
    if d == d.to_integral_value():
        return d.quantize(Decimal(1))
    return d.normalize()


def max_relative_width(bounds: Sequence[Decimal | Fraction], low: Decimal | Fraction | None = None,
                       high: Decimal | Fraction | None = None) -> Fraction:
    """The largest ``(u - l) / l`` over consecutive bounds ``l < u`` with ``low <= l < high``
    (the layout's documented guarantee; 0 for fewer than two bounds in range)."""
    bs = sorted(Fraction(b) for b in bounds)
    worst = Fraction(0)
    for a, b in zip(bs, bs[1:]):
        if a <= 0 or (low is not None and a < Fraction(low)) or (high is not None and a >= Fraction(high)):
            continue
        worst = max(worst, (b - a) / a)
    return worst


def bucket_of(bounds: Sequence[Fraction | Decimal], value: Fraction | Decimal | float) -> tuple[Fraction | float, Fraction | float]:
    """The bucket ``(lower, upper]`` of the sorted ``bounds`` holding ``value``: upper is the first
    bound at or above it (+inf past the last), lower the bound before (0 below the first positive
    bound, -inf below a first bound that is 0 or negative)."""
    if value == float("inf"):
        return (Fraction(bounds[-1]) if bounds else float("-inf")), float("inf")
    v = Fraction(value)
    i = bisect.bisect_left(bounds, v)
    if i == len(bounds):
        return (Fraction(bounds[-1]) if bounds else float("-inf")), float("inf")
    upper = Fraction(bounds[i])
    if i > 0:
        return Fraction(bounds[i - 1]), upper
    return (Fraction(0) if upper > 0 else float("-inf")), upper


def lower_edge(bounds: Sequence[Fraction], upper: Fraction | float, *, _index: int | None = None) -> Fraction | float:
    """The lower edge of the bucket whose upper edge is ``upper`` in the sorted ``bounds``: the
    largest bound strictly below it; 0 when there is none and ``upper`` is positive (observations
    are durations, sizes, counts), else -inf. ``upper`` need not be one of the bounds (a bound added
    to the store later than the data's start counts inside the coarser bucket it splits)."""
    if upper == float("inf"):
        return bounds[-1] if bounds else float("-inf")
    i = bisect.bisect_left(bounds, upper) if _index is None else _index
    if i > 0:
        return bounds[i - 1]
    return Fraction(0) if upper > 0 else float("-inf")


@lru_cache(maxsize=16)
def storage_bounds(width: Decimal) -> tuple[Decimal, ...]:
    """The log-linear bounds (seconds) the store buckets observations by at relative ``width``:
    from :data:`STORAGE_LOW` (1 us) to :data:`STORAGE_HIGH` (1 h) inclusive, every bucket ``(l, u]``
    in between at most ``width`` wide relative to ``l``, each bound a whole number of nanoseconds.
    At 2%: 1,666 bounds."""
    w = Decimal(width)
    if not MIN_WIDTH <= w <= MAX_WIDTH:
        raise ValueError(f"a bucket width is between {(MIN_WIDTH * 100).normalize():f}% and {(MAX_WIDTH * 100).normalize():f}%, got {(w * 100).normalize():f}%")
    out = tuple(b for b in log_linear_bounds(STORAGE_LOW, STORAGE_HIGH, w, include=(STORAGE_HIGH,)) if b <= STORAGE_HIGH)
    for b in out:
        ns = b * 1_000_000_000
        if ns != ns.to_integral_value():  # pragma: no cover - every width in range gives whole ns
            raise ValueError(f"bound {b} is not a whole number of nanoseconds")
    return out


def layout_at(bounds: Mapping[int, int], minute: int, *, below: int | None = None) -> tuple[int, ...]:
    """The sorted bounds (ns) every observation of minute ``minute`` on was bucketed by: those of a
    store's ``{le_ns: since_minute}`` (:meth:`vigil.store.Store.bounds`) exact since then, finite
    only (below ``below``, e.g. the overflow marker, when given). A bound registered later splits a
    bucket of this layout; a value counted at it is only known to lie in the coarser bucket."""
    return tuple(sorted(le for le, since in bounds.items() if since <= minute and (below is None or le < below)))


@dataclass(frozen=True)
class Quantile:
    """A quantile estimate and the bucket ``(lower, upper]`` it lies in (``upper`` is
    :data:`INF` for the overflow bucket, where ``value`` is the highest finite bound, as Prometheus
    answers). The observation of that rank lies in the same bucket."""

    value: Decimal
    lower: Decimal
    upper: Decimal

    @property
    def relative_error(self) -> Fraction | None:
        """The most the estimate can be off, relative to the true value: ``(upper - lower) / lower``
        (None when unbounded: the first bucket from 0, or the overflow bucket)."""
        if self.lower <= 0 or not self.upper.is_finite():
            return None
        return (Fraction(self.upper) - Fraction(self.lower)) / Fraction(self.lower)


def quantile(q: Decimal | str | int, counts: Mapping[Decimal | int, int] | Iterable[tuple[Decimal | int, int]],
             layout: Sequence[Decimal | int] = ()) -> Quantile | None:
    """Prometheus' ``histogram_quantile`` over non-cumulative bucket counts ``{upper bound: count}``
    (any unit; :data:`INF` for the overflow bucket), in the buckets of the sorted finite ``layout``.

    Counts at a bound the layout lacks (registered after the layout's minute) are folded into the
    layout's bucket holding it, so the estimate never claims a resolution the data lacks. An empty
    ``layout`` takes the counts' own bounds (as Prometheus takes a series' ``le`` labels).

    The rank ``q x total`` falls in the first bucket whose cumulative count reaches it; the value is
    linear inside that bucket from the layout's bound below it (0 below the first), its upper bound
    for ``q >= 1``, 0 for ``q <= 0``, and the highest finite bound when the rank falls in the
    overflow bucket. Exact ``Decimal`` arithmetic; None with no observations."""
    items = counts.items() if isinstance(counts, Mapping) else counts
    lay = [Decimal(b) for b in layout]
    folded: dict[Decimal, int] = {}
    for le, n in items:
        if not n:
            continue
        if n < 0:
            raise ValueError("a bucket count cannot be negative")
        up = Decimal(le)
        if lay and up.is_finite():
            i = bisect.bisect_left(lay, up)
            up = lay[i] if i < len(lay) else INF
        folded[up] = folded.get(up, 0) + n
    total = sum(folded.values())
    if total <= 0:
        return None
    edges = lay if lay else sorted(b for b in folded if b.is_finite())
    top = edges[-1] if edges else None
    qd = Decimal(q)
    if qd <= 0:
        return Quantile(Decimal(0), Decimal(0), edges[0] if edges else INF)
    rank = qd * total
    cum = 0
    for up in sorted(folded):
        n = folded[up]
        if cum + n >= rank:
            if not up.is_finite():
                return None if top is None else Quantile(top, top, INF)
            i = bisect.bisect_left(edges, up)
            lower = edges[i - 1] if i > 0 else Decimal(0)
            if qd >= 1:
                return Quantile(up, lower, up)
            return Quantile(lower + (up - lower) * (rank - cum) / n, lower, up)
        cum += n
    return None if top is None else Quantile(top, top, INF)
