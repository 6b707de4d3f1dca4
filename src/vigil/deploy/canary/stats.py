"""The canary judge's statistics, exact where they can be. Pure functions, no I/O.

vigil keeps observations as per-minute bucket counts, never raw values, so every statistic here
takes a *histogram*: ``(value, count)`` pairs. An individual observation is worth its bucket's
upper bound (the overflow bucket is +inf). Raw samples are the special case of count 1 per value,
so the same code serves golden tests on raw data and production on millions of bucketed
observations at the cost of (distinct values)^2 at most (~38^2 for vigil's documented bounds).

**Mann-Whitney U** (:func:`rank_test`). Observations of equal value are ties and take midranks.
``U`` is the canary's count of pairs (canary, baseline) where the canary is higher, a tie counting
one half; it is computed exactly as a rational from the counts. The p-values use the normal
approximation with the tie correction and a continuity correction of 1/2, exactly as
``scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True)`` on the expanded samples
(tests/test_canary_judge.py checks this):

    sigma^2 = n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))     t: size of each tie group
    z_greater = (U - n1 n2 / 2 - 1/2) / sigma,  p_greater = 1 - Phi(z_greater)
    z_less    = (U - n1 n2 / 2 + 1/2) / sigma,  p_less    = Phi(z_less)

When every observation ties (sigma = 0) nothing distinguishes the samples: both p-values are 1.

**Effect size**: Cliff's delta ``(#canary higher - #canary lower) / (n1 n2) = 2U / (n1 n2) - 1``,
exact, in [-1, 1], invariant to the scale of the values and to scaling both samples' counts.

**Hodges-Lehmann shift**: the median of every pairwise difference canary - baseline, computed from
the at most (distinct values)^2 weighted differences, exact (``Fraction``). Its confidence interval
is the pair of order statistics ``D(C)`` and ``D(n1 n2 + 1 - C)`` with
``C = floor(n1 n2 / 2 - z_(1 - alpha/2) sigma)`` (Hollander & Wolfe; sigma tie-corrected). Over
bucketed data the shift moves in bucket steps. For shifts, medians and means the overflow bucket
(+inf) counts as the highest finite value present, so the numbers stay finite.

**Error ratios** (:func:`ratio_test`): Fisher's exact test on the 2x2 table (bad, good) x
(canary, baseline), one-sided. It conditions on the total of bad events, so it stays exact for
sparse errors (8 of 10 000 against 0 of 10 000 gives p = 0.0039), where a rank test over per-minute
ratios sees mostly zeros. In the sparse limit it is the binomial (Poisson-rate) conditional test.

**Clopper-Pearson** (:func:`ratio_lower_bound`): the exact one-sided lower confidence bound of a
binomial proportion, used by the SLO-aware check so that a canary fails the budget only on evidence.

Properties the tests check: results do not depend on the order of the input; multiplying every
value of both samples by k > 0 leaves p-values, effect and classification unchanged (shifts scale by
k); multiplying both samples' counts by c >= 1 leaves the effect, medians and shift unchanged and
never raises a p-value (more of the same evidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Iterable, Mapping, Sequence

from scipy import special as _special
from scipy import stats as _stats

INF = math.inf
Value = Fraction | float  # a Fraction, or math.inf for the overflow bucket


def _value(v: object) -> Value:
    if isinstance(v, bool):
        raise ValueError("a value is a number, not a boolean")
    if isinstance(v, Fraction):
        return v
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, Decimal):
        if v.is_infinite() and v > 0:
            return INF
        if not v.is_finite():
            raise ValueError(f"value {v} is not finite")
        return Fraction(v)
    if isinstance(v, float):
        if v == INF:
            return INF
        if not math.isfinite(v):
            raise ValueError(f"value {v} is not finite")
        return Fraction(v)
    raise ValueError(f"a value must be a number, got {type(v).__name__}")


def histogram(data: Mapping[object, int] | Iterable[tuple[object, int]] | Iterable[object], *, counted: bool = True) -> tuple[tuple[Value, int], ...]:
    """Normalise samples to sorted ``(value, count)`` pairs with positive counts.

    ``data`` is a mapping value -> count, an iterable of (value, count) pairs, or (``counted=False``)
    an iterable of raw values. The order of the input never matters.
    """
    acc: dict[Value, int] = {}
    if isinstance(data, Mapping):
        items: Iterable = data.items()
    elif counted:
        items = data  # type: ignore[assignment]
    else:
        items = ((v, 1) for v in data)  # type: ignore[union-attr]
    for v, n in items:
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"a count is a whole number, got {n!r}")
        if n < 0:
            raise ValueError(f"a count cannot be negative, got {n}")
        if n:
            k = _value(v)
            acc[k] = acc.get(k, 0) + n
    return tuple(sorted(acc.items(), key=lambda kv: (kv[0] == INF, kv[0] if kv[0] != INF else 0)))


def size(h: Sequence[tuple[Value, int]]) -> int:
    return sum(n for _, n in h)


def _finite(h: Sequence[tuple[Value, int]], top: Fraction) -> list[tuple[Fraction, int]]:
    return [(top if v == INF else v, n) for v, n in h]  # type: ignore[misc]


def _top_finite(*hs: Sequence[tuple[Value, int]]) -> Fraction:
    finite = [v for h in hs for v, _ in h if v != INF]
    return max(finite) if finite else Fraction(0)  # type: ignore[return-value]


def _order_stat(weighted: Sequence[tuple[Fraction, int]], k: int) -> Fraction:
    """The k-th smallest (1-based) of a sorted, weighted list."""
    c = 0
    for v, n in weighted:
        c += n
        if c >= k:
            return v
    return weighted[-1][0]


def _median(weighted: Sequence[tuple[Fraction, int]]) -> Fraction | None:
    total = sum(n for _, n in weighted)
    if total == 0:
        return None
    if total % 2:
        return _order_stat(weighted, total // 2 + 1)
    return (_order_stat(weighted, total // 2) + _order_stat(weighted, total // 2 + 1)) / 2


def median(h: Sequence[tuple[Value, int]]) -> Fraction | None:
    """The median of one histogram (the overflow bucket counts as its highest finite value)."""
    return _median(_finite(h, _top_finite(h)))


def normal_quantile(p: float) -> float:
    return float(_special.ndtri(p))


@dataclass(frozen=True)
class RankTest:
    n_baseline: int
    n_canary: int
    u: Fraction  # pairs where the canary is higher, ties counting 1/2
    sigma: float  # tie-corrected standard deviation of U
    p_greater: float  # the canary is stochastically greater
    p_less: float  # the canary is stochastically smaller
    effect: Fraction  # Cliff's delta, canary vs baseline
    shift: Fraction  # Hodges-Lehmann estimate of canary - baseline
    shift_low: Fraction
    shift_high: Fraction
    median_baseline: Fraction
    median_canary: Fraction


def rank_test(baseline: Sequence[tuple[Value, int]], canary: Sequence[tuple[Value, int]], *, confidence: float = 0.95) -> RankTest:
    """Mann-Whitney U, Cliff's delta and the Hodges-Lehmann shift from two histograms.

    Both histograms need at least one observation; see the module docstring for the method.
    """
    b = histogram(baseline)
    c = histogram(canary)
    n1, n2 = size(b), size(c)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one observation")
    # U of the canary and the tie groups, in one pass over the merged distinct values
    bmap = dict(b)
    cmap = dict(c)
    values = sorted(set(bmap) | set(cmap), key=lambda v: (v == INF, v if v != INF else 0))
    below_b = 0
    two_u = 0  # 2U, an integer
    ties = 0
    for v in values:
        nb = bmap.get(v, 0)
        nc = cmap.get(v, 0)
        two_u += nc * (2 * below_b + nb)
        t = nb + nc
        ties += t * t * t - t
        below_b += nb
    m = n1 * n2
    u = Fraction(two_u, 2)
    n = n1 + n2
    var = Fraction(m, 12) * ((n + 1) - (Fraction(ties, n * (n - 1)) if n > 1 else 0))
    sigma = math.sqrt(var) if var > 0 else 0.0
    if sigma > 0:
        d = u - Fraction(m, 2)
        z_g = float(d - Fraction(1, 2)) / sigma
        z_l = float(d + Fraction(1, 2)) / sigma
        p_greater = float(_special.ndtr(-z_g))
        p_less = float(_special.ndtr(z_l))
    else:
        p_greater = p_less = 1.0
    effect = Fraction(two_u - m, m)
    # Hodges-Lehmann: weighted pairwise differences
    top = _top_finite(b, c)
    fb = _finite(b, top)
    fc = _finite(c, top)
    diffs: dict[Fraction, int] = {}
    for vc, kc in fc:
        for vb, kb in fb:
            dd = vc - vb
            diffs[dd] = diffs.get(dd, 0) + kc * kb
    weighted = sorted(diffs.items())
    shift = _median(weighted)
    assert shift is not None
    zq = normal_quantile(1 - (1 - confidence) / 2)
    cut = math.floor(m / 2 - zq * sigma) if sigma > 0 else 0
    cut = min(max(cut, 1), (m + 1) // 2)
    low = _order_stat(weighted, cut)
    high = _order_stat(weighted, m + 1 - cut)
    mb = _median(fb)
    mc = _median(fc)
    assert mb is not None and mc is not None
    return RankTest(n1, n2, u, sigma, p_greater, p_less, effect, shift, low, high, mb, mc)


@dataclass(frozen=True)
class RatioTest:
    baseline_bad: int
    baseline_total: int
    canary_bad: int
    canary_total: int
    p_greater: float  # the canary's error ratio is higher
    p_less: float

    @property
    def baseline_ratio(self) -> Fraction | None:
        return Fraction(self.baseline_bad, self.baseline_total) if self.baseline_total else None

    @property
    def canary_ratio(self) -> Fraction | None:
        return Fraction(self.canary_bad, self.canary_total) if self.canary_total else None


def ratio_test(baseline_bad: int, baseline_total: int, canary_bad: int, canary_total: int) -> RatioTest:
    """Fisher's exact test, one-sided both ways, on bad/total of baseline and canary.

    Under "same error ratio", given the K bad events of both, the canary's bad events are
    hypergeometric: K draws from N = both totals, of which the canary's total are "canary".
    """
    for name, x in (("baseline_bad", baseline_bad), ("baseline_total", baseline_total), ("canary_bad", canary_bad), ("canary_total", canary_total)):
        if isinstance(x, bool) or not isinstance(x, int) or x < 0:
            raise ValueError(f"{name} must be a whole number, 0 or more")
    if baseline_bad > baseline_total or canary_bad > canary_total:
        raise ValueError("bad events cannot exceed the total")
    if baseline_total == 0 or canary_total == 0:
        raise ValueError("both totals need at least one event")
    n = baseline_total + canary_total
    k = baseline_bad + canary_bad
    if k == 0 or k == n:
        p_g = p_l = 1.0
    else:
        dist = _stats.hypergeom(n, k, canary_total)
        p_g = float(min(1.0, dist.sf(canary_bad - 1)))
        p_l = float(min(1.0, dist.cdf(canary_bad)))
    return RatioTest(baseline_bad, baseline_total, canary_bad, canary_total, p_g, p_l)


def ratio_lower_bound(bad: int, total: int, confidence: float) -> Fraction:
    """Clopper-Pearson one-sided lower bound of bad/total at ``confidence`` (0 when bad is 0)."""
    if total <= 0 or bad <= 0:
        return Fraction(0)
    if bad >= total:
        lo = (1 - confidence) ** (1 / total)
    else:
        lo = float(_stats.beta.ppf(1 - confidence, bad, total - bad + 1))
    return Fraction(lo).limit_denominator(10**12)
