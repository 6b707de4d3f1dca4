"""The canary judge's statistics, exact where they can be, honest about resolution. Pure functions,
no I/O.

vigil keeps observations as per-minute bucket counts, never raw values, so every statistic here
takes a :class:`CanarySample`: ``(value, count)`` pairs and the sorted bucket bounds they were counted
in (any layout: the store's documented bounds, log-linear bounds from :mod:`vigil.histogram`, a
bound added later). An observation counted at ``value`` lies somewhere in the bucket
``(lower, value]`` whose lower edge is the largest bound below it (0 below the first; the overflow
bucket is ``(last bound, +inf)``). For tests and the order of the sample, an observation is worth
its bucket's upper bound (the *representative*; the overflow bucket counts as the highest finite
value present). Raw samples are the special case without bounds: count 1 per value, every bucket
of width 0, exact.

**Resolution.** Every estimate carries the interval the raw data's estimate lies in, whatever the
observations were inside their buckets: a median or quantile lies in its order statistic's bucket;
the Hodges-Lehmann shift lies between the median of the pairwise differences with every canary
observation at its bucket's lower edge and every baseline one at its upper edge, and the median
with the placements reversed (a median is monotone in every difference). So a shift within one
coarse bucket is reported as "somewhere between -50ms and +50ms", never as a confident zero-width
"+50ms (CI +50ms..+50ms)"; the judge calls such an effect *below resolution*.

**Mann-Whitney U** (:func:`rank_test`). Observations of equal value (one bucket) are ties and take
midranks. ``U`` is the canary's count of pairs (canary, baseline) where the canary is higher, a
tie counting one half, exact as a rational from the counts. A test on the bucket counts is a valid
test (buckets keep "same distribution" true), with less power than the raw values would have.

- *Exact* (``p_method: exact``) for small samples: the permutation distribution of ``U`` given the
  tie groups, computed by dynamic programming over the distinct values (every way to choose which
  ``n_canary`` of the ``N`` observations are the canary's is equally likely under "same
  distribution"). Without ties it is the exact null distribution of ``U``, the p-value of
  ``scipy.stats.mannwhitneyu(method="exact")``; with ties it is the exact conditional (permutation)
  p-value, which scipy's ``exact`` does not compute (it ignores ties), and equals
  ``scipy.stats.permutation_test`` enumerating every partition. Used while the work stays under
  :data:`EXACT_BUDGET` (about 50 observations a side, more when one side is small).
- *Normal* (``p_method: normal``) above that: the normal approximation with the tie correction and
  a continuity correction of 1/2, as ``scipy.stats.mannwhitneyu(method="asymptotic",
  use_continuity=True)`` on the expanded samples:

      sigma^2 = n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))     t: size of each tie group
      p_greater = 1 - Phi((U - n1 n2 / 2 - 1/2) / sigma),  p_less = Phi((U - n1 n2 / 2 + 1/2) / sigma)

When every observation ties (sigma = 0) nothing distinguishes the samples: both p-values are 1.

**Effect size**: Cliff's delta ``2U / (n1 n2) - 1``, exact, in [-1, 1].

**Hodges-Lehmann shift**: the median of every pairwise difference canary - baseline, exact
(``Fraction``), with the confidence interval of order statistics ``D(C)`` and ``D(n1 n2 + 1 - C)``,
``C = floor(n1 n2 / 2 - z_(1 - alpha/2) sigma)`` (Hollander & Wolfe), widened by resolution: the
lower limit from the low placements, the upper from the high ones.

**Quantiles** (:func:`quantile`, :func:`quantile_shift`): the sample quantile ``X_(ceil(q n))``
and a distribution-free confidence bound of the population quantile from order statistics:
``P(X_(l) <= Q_q) = P(Binomial(n, q) >= l)``, so the largest ``l`` with that >= 1 - a gives a lower
bound (the lower edge of ``X_(l)``'s bucket) and the smallest ``u`` with ``P(Binomial(n, q) <= u -
1) >= 1 - a`` an upper one (its upper edge). Exact for continuous data, conservative for ties, and
honest about small samples: with too few observations there is no bound (``None``). The change of
a quantile, canary / baseline - 1, is bounded by combining the two samples' bounds at ``a = alpha /
2`` each (Bonferroni): ``[L_c / U_b - 1, U_c / L_b - 1]``. Values are durations: 0 or more.

**Error ratios** (:func:`ratio_test`): Fisher's exact test on the 2x2 table, one-sided; exact for
sparse errors (8 of 10 000 against 0 of 10 000 gives p = 0.0039).

**Clopper-Pearson** (:func:`ratio_lower_bound`, :func:`ratio_upper_bound`): exact one-sided
confidence bounds of a binomial proportion, used against the SLO's budget and a ratio's ceiling.

Properties the tests check: results do not depend on the order of the input; multiplying every
value (and bound) by k > 0 leaves p-values, effect and classification unchanged (shifts scale by
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

from vigil.histogram import lower_edge

INF = math.inf
Value = Fraction | float  # a Fraction, or +-math.inf (the overflow bucket, an unbounded edge)
Interval = tuple[Value, Value]

EXACT_BUDGET = 50_000_000
"""Most element updates the exact distribution of U may take (about 0.1 s); above it, the normal
approximation."""


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


def _key(v: Value) -> tuple:
    return (v == INF, v if v != INF else 0)


def histogram(data: Mapping[object, int] | Iterable[tuple[object, int]] | Iterable[object], *, counted: bool = True) -> tuple[tuple[Value, int], ...]:
    """Normalise samples to sorted ``(value, count)`` pairs with positive counts.

    ``data`` is a mapping value -> count, an iterable of (value, count) pairs, or (``counted=False``)
    an iterable of raw values. The order of the input never matters.
    """
    acc: dict[Value, int] = {}
    if isinstance(data, Mapping):
        items: Iterable = data.items()
    elif counted:
        items = data
    else:
        items = ((v, 1) for v in data)
    for v, n in items:
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"a count is a whole number, got {n!r}")
        if n < 0:
            raise ValueError(f"a count cannot be negative, got {n}")
        if n:
            k = _value(v)
            acc[k] = acc.get(k, 0) + n
    return tuple(sorted(acc.items(), key=lambda kv: _key(kv[0])))


def layout(bounds: Iterable[object]) -> tuple[Fraction, ...]:
    """Sorted, distinct, finite bucket bounds (an +inf bound is the overflow bucket's, implied)."""
    out = {b for b in (_value(x) for x in bounds) if isinstance(b, Fraction)}  # the rest is +inf
    return tuple(sorted(out))


def size(h: Sequence[tuple[Value, int]]) -> int:
    return sum(n for _, n in h)


@dataclass(frozen=True)
class CanarySample:
    """Observations as sorted ``(value, count)`` pairs and the bounds they were counted in
    (``None``: raw values, exact)."""

    counts: tuple[tuple[Value, int], ...]
    bounds: tuple[Fraction, ...] | None = None

    @classmethod
    def of(cls, data: "CanarySample | Mapping | Iterable", bounds: Iterable[object] | None = None) -> "CanarySample":
        if isinstance(data, CanarySample):
            return data if bounds is None else cls(data.counts, layout(bounds))
        return cls(histogram(data), None if bounds is None else layout(bounds))

    @property
    def n(self) -> int:
        return size(self.counts)

    def edges(self) -> list[tuple[Value, Value, int]]:
        """``(lower, upper, count)`` per value, sorted: the interval each observation lies in. The
        lower edges rise with the upper ones, so one order serves both placements."""
        if self.bounds is None:
            top = _top_finite(self.counts)
            return [((top if v == INF else v), v, n) for v, n in self.counts]
        return [(lower_edge(self.bounds, v), v, n) for v, n in self.counts]


def _as_sample(x: "CanarySample | Sequence[tuple[Value, int]]") -> CanarySample:
    return x if isinstance(x, CanarySample) else CanarySample(histogram(x))


def _finite(h: Sequence[tuple[Value, int]], top: Fraction) -> list[tuple[Fraction, int]]:
    return [(top if v == INF else _exact(v), n) for v, n in h]


def _exact(v: Value | None) -> Fraction:
    """A value computed from finite values only: a Fraction (an infinity here is a bug)."""
    if not isinstance(v, Fraction):
        raise AssertionError(f"expected a finite value, got {v!r}")
    return v


def _top_finite(*hs: Sequence[tuple[Value, int]]) -> Fraction:
    finite = [v for h in hs for v, _ in h if isinstance(v, Fraction)]  # the rest is +inf
    return max(finite) if finite else Fraction(0)


def _order_stat(weighted: Sequence[tuple[Value, int]], k: int) -> Value:
    """The k-th smallest (1-based) of a sorted, weighted list."""
    c = 0
    for v, n in weighted:
        c += n
        if c >= k:
            return v
    return weighted[-1][0]


def _median(weighted: Sequence[tuple[Value, int]]) -> Value | None:
    total = sum(n for _, n in weighted)
    if total == 0:
        return None
    if total % 2:
        return _order_stat(weighted, total // 2 + 1)
    a, b = _order_stat(weighted, total // 2), _order_stat(weighted, total // 2 + 1)
    if a == b:
        return a
    return (a + b) / 2


def median(h: "CanarySample | Sequence[tuple[Value, int]]") -> Fraction | None:
    """The median of one histogram (the overflow bucket counts as its highest finite value)."""
    s = _as_sample(h)
    m = _median(_finite(s.counts, _top_finite(s.counts)))
    return None if m is None else _exact(m)


def median_bounds(h: "CanarySample | Sequence[tuple[Value, int]]") -> Interval | None:
    """Where the raw data's median lies, given the buckets: (lower, upper)."""
    e = _as_sample(h).edges()
    if not e:
        return None
    lo = _median([(a, n) for a, _, n in e])
    hi = _median([(b, n) for _, b, n in e])
    assert lo is not None and hi is not None
    return lo, hi


def normal_quantile(p: float) -> float:
    return float(_special.ndtri(p))


# -- Mann-Whitney U --------------------------------------------------------------------------------


def exact_cost(groups: Sequence[int], n_small: int, n_large: int) -> int:
    """Element updates of :func:`exact_two_u_pmf` for tie groups of these sizes."""
    width = 2 * n_small * n_large + 1
    return sum(min(t, n_small) + 1 for t in groups) * (n_small + 1) * width // 2


def exact_two_u_pmf(groups: Sequence[int], n_selected: int):
    """The distribution of 2U of ``n_selected`` observations chosen uniformly at random from the
    ``sum(groups)`` observations whose tie groups (in increasing value) have these sizes: a numpy
    array of probabilities indexed by 2U (U of the chosen sample: pairs where it is higher, ties 1/2).

    Dynamic programming over the groups: taking ``k`` of a group of ``t`` when ``j`` are chosen
    among the ``P`` observations below adds ``k (2 (P - j) + t - k)`` to 2U, in ``C(t, k)`` ways.
    """
    import numpy as np

    n = sum(groups)
    s = n_selected
    o = n - s
    dp: list = [None] * (s + 1)
    dp[0] = np.ones(1)
    below = 0
    for t in groups:
        new: list = [None] * (s + 1)
        for j in range(0, min(s, below) + 1):
            a = dp[j]
            if a is None:
                continue
            other_below = below - j
            if other_below > o:
                continue
            for k in range(max(0, t - (o - other_below)), min(t, s - j) + 1):
                add = k * (2 * other_below + t - k)
                w = math.comb(t, k)
                tgt = new[j + k]
                need = add + len(a)
                if tgt is None:
                    tgt = np.zeros(need)
                    new[j + k] = tgt
                elif len(tgt) < need:
                    tgt = np.concatenate([tgt, np.zeros(need - len(tgt))])
                    new[j + k] = tgt
                tgt[add:need] += w * a
        dp = new
        below += t
    out = dp[s]
    assert out is not None
    return out / math.comb(n, s)


@dataclass(frozen=True)
class RankTest:
    n_baseline: int
    n_canary: int
    u: Fraction  # pairs where the canary is higher, ties counting 1/2
    sigma: float  # tie-corrected standard deviation of U
    p_greater: float  # the canary is stochastically greater
    p_less: float  # the canary is stochastically smaller
    p_method: str  # exact | normal
    effect: Fraction  # Cliff's delta, canary vs baseline
    shift: Fraction  # Hodges-Lehmann estimate of canary - baseline (representatives)
    shift_low: Value  # confidence interval of the shift, widened by resolution
    shift_high: Value
    shift_bounds: Interval  # where the raw data's shift lies, given the buckets
    median_baseline: Fraction
    median_canary: Fraction
    median_baseline_bounds: Interval
    median_canary_bounds: Interval
    effect_bounds: tuple[Fraction, Fraction] | None = None  # where the raw data's Cliff's delta lies (None: unknown)

    @property
    def resolved(self) -> bool:
        """The shift is known exactly (raw data, or buckets that do not blur it)."""
        return self.shift_bounds[0] == self.shift_bounds[1]


def _pairs(fc: Sequence[tuple[Value, int]], fb: Sequence[tuple[Value, int]]) -> list[tuple[Value, int]]:
    """Every weighted pairwise difference c - b, sorted (the reference the fast path is tested on)."""
    diffs: dict[Value, int] = {}
    for vc, kc in fc:
        for vb, kb in fb:
            dd = vc - vb
            diffs[dd] = diffs.get(dd, 0) + kc * kb
    return sorted(diffs.items(), key=lambda kv: kv[0])


def pair_order_stats(fc: Sequence[tuple[Value, int]], fb: Sequence[tuple[Value, int]], ks: Sequence[int]) -> list[Value]:
    """The k-th smallest (1-based) of the weighted pairwise differences c - b for each k, exact,
    without listing the pairs: values are scaled to integers by their common denominator and each
    order statistic is found by binary search on the count of differences at or below a value
    (O(G log G) per probe). An infinite value makes its pairs' differences infinite."""
    neg = pos = 0
    cf: list[tuple[Fraction, int]] = []
    bf: list[tuple[Fraction, int]] = []
    wc_inf = {INF: 0, -INF: 0}
    wb_inf = {INF: 0, -INF: 0}
    for v, w in fc:  # a float here is an infinity (finite values are Fractions)
        if isinstance(v, float):
            wc_inf[v] += w
        else:
            cf.append((v, w))
    for v, w in fb:
        if isinstance(v, float):
            wb_inf[v] += w
        else:
            bf.append((v, w))
    nc = sum(w for _, w in fc)
    nb = sum(w for _, w in fb)
    # -inf: c = -inf or b = +inf; +inf: c = +inf or b = -inf (both at once cannot arise here)
    neg = wc_inf[-INF] * nb + (nc - wc_inf[-INF]) * wb_inf[INF]
    pos = wc_inf[INF] * nb + (nc - wc_inf[INF]) * wb_inf[-INF]
    m = nc * nb
    slots: list[Value | None] = []  # None: a finite order statistic, found below
    finite_ks = []
    for k in ks:
        if k <= neg:
            slots.append(-INF)
        elif k > m - pos:
            slots.append(INF)
        else:
            slots.append(None)
            finite_ks.append(k - neg)
    got = iter(_finite_pair_stats(cf, bf, finite_ks) if finite_ks else [])
    return [next(got) if v is None else v for v in slots]


def _finite_pair_stats(cf: list[tuple[Fraction, int]], bf: list[tuple[Fraction, int]], ks: list[int]) -> list[Fraction]:
    import numpy as np

    den = 1
    for v, _ in cf + bf:
        den = math.lcm(den, v.denominator)
        if den > 2**62:
            break
    ints = [v.numerator * (den // v.denominator) for v, _ in cf + bf] if den <= 2**62 else []
    wmax = sum(w for _, w in cf) * sum(w for _, w in bf)
    if not ints or max(abs(x) for x in ints) >= 2**61 or wmax >= 2**62:
        ref = _pairs(cf, bf)  # exact and slow: only for values no 64-bit integer scale holds
        return [_exact(_order_stat(ref, k)) for k in ks]
    c = np.array(ints[: len(cf)], dtype=np.int64)
    b = np.array(ints[len(cf):], dtype=np.int64)
    wc = np.array([w for _, w in cf], dtype=np.int64)
    wb = np.array([w for _, w in bf], dtype=np.int64)
    oc, ob = np.argsort(c, kind="stable"), np.argsort(b, kind="stable")
    c, wc, b, wb = c[oc], wc[oc], b[ob], wb[ob]
    suffix = np.concatenate([np.cumsum(wb[::-1])[::-1], np.zeros(1, dtype=np.int64)])

    def at_most(d: int) -> int:
        """Pairs with c - b <= d, i.e. b >= c - d."""
        idx = np.searchsorted(b, c - d, side="left")
        return int(np.dot(wc, suffix[idx]))

    res = []
    for k in ks:
        lo, hi = int(c[0] - b[-1]), int(c[-1] - b[0])
        while lo < hi:
            mid = (lo + hi) // 2
            if at_most(mid) >= k:
                hi = mid
            else:
                lo = mid + 1
        res.append(Fraction(lo, den))
    return res


def _pair_median(fc, fb) -> Value:
    m = sum(w for _, w in fc) * sum(w for _, w in fb)
    if m % 2:
        return pair_order_stats(fc, fb, [m // 2 + 1])[0]
    a, b = pair_order_stats(fc, fb, [m // 2, m // 2 + 1])
    return a if a == b else (a + b) / 2


def rank_test(baseline: "CanarySample | Sequence[tuple[Value, int]]", canary: "CanarySample | Sequence[tuple[Value, int]]", *,
              confidence: float = 0.95, exact: bool | None = None) -> RankTest:
    """Mann-Whitney U, Cliff's delta and the Hodges-Lehmann shift from two samples, with the
    resolution of the shift and the medians. ``exact``: None chooses by :data:`EXACT_BUDGET`,
    True / False force the method. Both samples need at least one observation."""
    sb, sc = _as_sample(baseline), _as_sample(canary)
    b, c = sb.counts, sc.counts
    n1, n2 = size(b), size(c)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one observation")
    bmap = dict(b)
    cmap = dict(c)
    values = sorted(set(bmap) | set(cmap), key=_key)
    below_b = 0
    two_u = 0  # 2U, an integer
    ties = 0
    groups: list[int] = []
    for v in values:
        nb = bmap.get(v, 0)
        nc = cmap.get(v, 0)
        two_u += nc * (2 * below_b + nb)
        t = nb + nc
        groups.append(t)
        ties += t * t * t - t
        below_b += nb
    m = n1 * n2
    u = Fraction(two_u, 2)
    n = n1 + n2
    var = Fraction(m, 12) * ((n + 1) - (Fraction(ties, n * (n - 1)) if n > 1 else 0))
    sigma = math.sqrt(var) if var > 0 else 0.0
    small, large = min(n1, n2), max(n1, n2)
    use_exact = exact if exact is not None else exact_cost(groups, small, large) <= EXACT_BUDGET
    if sigma == 0:
        p_greater = p_less = 1.0
        method = "exact"
    elif use_exact:
        if n2 <= n1:  # choose the canary's observations
            pmf = exact_two_u_pmf(groups, n2)
            x = two_u
        else:  # choose the baseline's: 2U_canary = 2m - 2U_baseline
            pmf = exact_two_u_pmf(groups, n1)[::-1]
            pmf = pmf if len(pmf) == 2 * m + 1 else _pad_front(pmf, 2 * m + 1)
            x = two_u
        p_greater = float(min(1.0, pmf[x:].sum()))
        p_less = float(min(1.0, pmf[: x + 1].sum()))
        method = "exact"
    else:
        d = u - Fraction(m, 2)
        z_g = float(d - Fraction(1, 2)) / sigma
        z_l = float(d + Fraction(1, 2)) / sigma
        p_greater = float(_special.ndtr(-z_g))
        p_less = float(_special.ndtr(z_l))
        method = "normal"
    effect = Fraction(two_u - m, m)
    # Hodges-Lehmann on the representatives, and on the two extreme placements
    top = _top_finite(b, c)
    fc, fb = _finite(c, top), _finite(b, top)
    shift = _exact(_pair_median(fc, fb))
    eb, ec = sb.edges(), sc.edges()
    exact_data = all(lo == hi for lo, hi, _ in eb + ec)
    low_c: Sequence[tuple[Value, int]]
    low_b: Sequence[tuple[Value, int]]
    high_c: Sequence[tuple[Value, int]]
    high_b: Sequence[tuple[Value, int]]
    if exact_data:
        low_c, low_b, high_c, high_b = fc, fb, fc, fb
    else:
        low_c, low_b = [(lo, k) for lo, _, k in ec], [(hi, k) for _, hi, k in eb]
        high_c, high_b = [(hi, k) for _, hi, k in ec], [(lo, k) for lo, _, k in eb]
    zq = normal_quantile(1 - (1 - confidence) / 2)
    cut = math.floor(m / 2 - zq * sigma) if sigma > 0 else 0
    cut = min(max(cut, 1), (m + 1) // 2)
    low = pair_order_stats(low_c, low_b, [cut])[0]
    high = pair_order_stats(high_c, high_b, [m + 1 - cut])[0]
    res_low = shift if exact_data else _pair_median(low_c, low_b)
    res_high = shift if exact_data else _pair_median(high_c, high_b)
    mb = _exact(_median(_finite(b, top)))
    mc = _exact(_median(_finite(c, top)))
    mbb = median_bounds(sb)
    mcb = median_bounds(sc)
    assert mbb is not None and mcb is not None
    if exact_data:
        effect_bounds: tuple[Fraction, Fraction] | None = (effect, effect)
    elif sb.bounds is not None and sc.bounds is not None:
        effect_bounds = _effect_bounds(eb, ec, m)
    else:
        effect_bounds = None
    return RankTest(n1, n2, u, sigma, p_greater, p_less, method, effect, shift, low, high, (res_low, res_high),
                    mb, mc, mbb, mcb, effect_bounds)


def _effect_bounds(eb: list[tuple[Value, Value, int]], ec: list[tuple[Value, Value, int]], m: int) -> tuple[Fraction, Fraction]:
    """Cliff's delta of the raw data, given the buckets ``(lower, upper]``: a canary observation is
    surely higher than a baseline one when its lower edge is at or above the other's upper edge, surely
    lower in the mirror case; every other pair could go either way."""
    import bisect

    highs = [hi for _, hi, _ in eb]  # rising
    lows = [lo for lo, _, _ in eb]  # rising with them
    cum = [0]
    for _, _, w in eb:
        cum.append(cum[-1] + w)
    total = cum[-1]
    higher = lower = 0
    for lo_c, hi_c, w in ec:
        higher += w * cum[bisect.bisect_right(highs, lo_c)]
        lower += w * (total - cum[bisect.bisect_left(lows, hi_c)])
    return Fraction(2 * higher - m, m), Fraction(m - 2 * lower, m)


def _pad_front(a, length: int):
    import numpy as np

    return np.concatenate([np.zeros(length - len(a)), a])


# -- quantiles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantileEstimate:
    q: Fraction
    n: int
    value: Fraction  # the representative of X_(ceil(q n)) (its bucket's upper bound)
    bucket: Interval  # where the sample quantile lies
    low: Value | None  # lower confidence bound of the quantile (a bucket's lower edge); None: none
    high: Value | None  # upper confidence bound (a bucket's upper edge, +inf past the last); None: none


def _rank_bounds(n: int, q: float, a: float) -> tuple[int | None, int | None]:
    """Ranks (l, u) with P(X_(l) <= Q_q) >= 1 - a and P(X_(u) >= Q_q) >= 1 - a (None: no such rank)."""
    dist = _stats.binom(n, q)
    # lower: the largest l in 1..n with P(B >= l) >= 1 - a, i.e. cdf(l - 1) <= a
    x = int(dist.ppf(a))
    while x >= 0 and dist.cdf(x) > a:
        x -= 1
    while x + 1 <= n - 1 and dist.cdf(x + 1) <= a:
        x += 1
    lo = x + 1 if x >= 0 else None
    # upper: the smallest u in 1..n with P(B <= u - 1) >= 1 - a
    y = int(dist.ppf(1 - a))
    while dist.cdf(y) < 1 - a:
        y += 1
    while y > 0 and dist.cdf(y - 1) >= 1 - a:
        y -= 1
    hi = y + 1 if y + 1 <= n else None
    return lo, hi


def quantile(sample: "CanarySample | Sequence[tuple[Value, int]]", q: Fraction | float, a: float) -> QuantileEstimate:
    """The sample quantile ``X_(ceil(q n))`` with its bucket, and one-sided confidence bounds of the
    population quantile, each at level ``1 - a`` (see the module docstring)."""
    s = _as_sample(sample)
    qf = Fraction(q)
    if not 0 < qf < 1:
        raise ValueError("a quantile is between 0 and 1 (exclusive)")
    n = s.n
    if n == 0:
        raise ValueError("a quantile needs at least one observation")
    e = s.edges()
    k = max(1, math.ceil(qf * n))
    lows = [(lo, c) for lo, _, c in e]
    highs = [(hi, c) for _, hi, c in e]
    top = _top_finite(s.counts)
    rep = _order_stat(highs, k)
    value = top if rep == INF else _exact(rep)
    lr, ur = _rank_bounds(n, float(qf), a)
    return QuantileEstimate(
        qf, n, value, (_order_stat(lows, k), rep),
        None if lr is None else _order_stat(lows, lr),
        None if ur is None else _order_stat(highs, ur),
    )


@dataclass(frozen=True)
class QuantileShift:
    q: Fraction
    baseline: QuantileEstimate
    canary: QuantileEstimate
    change: Fraction | None  # canary / baseline - 1 on the representatives (None: baseline 0)
    change_low: Value  # confidence bounds of the relative change (sampling and resolution)
    change_high: Value
    resolution: Interval  # where the relative change of the sample quantiles lies, given the buckets


def _ratio_change(num: Value | None, den: Value | None, *, upper: bool) -> Value:
    """num / den - 1 for non-negative values, as a bound: None is 'unbounded' (0 below, +inf above)."""
    if upper:
        if num is None or den is None or den <= 0 or num == INF:
            return INF
        return Fraction(num) / Fraction(den) - 1
    if num is None or num <= 0:
        return Fraction(-1)
    if den is None or den == INF:
        return Fraction(-1)
    if den <= 0:
        return INF if num > 0 else Fraction(-1)
    return Fraction(num) / Fraction(den) - 1


def quantile_shift(baseline: "CanarySample | Sequence[tuple[Value, int]]", canary: "CanarySample | Sequence[tuple[Value, int]]",
                   q: Fraction | float, alpha: float) -> QuantileShift:
    """The relative change of quantile ``q``, canary vs baseline, with bounds that hold together at
    ``1 - alpha`` one-sided each way (each sample's bound at ``alpha / 2``)."""
    eb = quantile(baseline, q, alpha / 2)
    ec = quantile(canary, q, alpha / 2)
    change = None if eb.value <= 0 else ec.value / eb.value - 1
    low = _ratio_change(ec.low, eb.high, upper=False)
    high = _ratio_change(ec.high, eb.low, upper=True)
    res = (_ratio_change(ec.bucket[0], eb.bucket[1], upper=False), _ratio_change(ec.bucket[1], eb.bucket[0], upper=True))
    return QuantileShift(Fraction(q), eb, ec, change, low, high, res)


# -- error ratios ----------------------------------------------------------------------------------


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


def ratio_upper_bound(bad: int, total: int, confidence: float) -> Fraction:
    """Clopper-Pearson one-sided upper bound of bad/total at ``confidence`` (1 when bad is total;
    1 - (1 - confidence)^(1/total) when bad is 0)."""
    if total <= 0 or bad >= total:
        return Fraction(1)
    if bad <= 0:
        hi = 1 - (1 - confidence) ** (1 / total)
    else:
        hi = float(_stats.beta.ppf(confidence, bad + 1, total - bad))
    return Fraction(hi)
