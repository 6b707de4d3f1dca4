"""The canary judge: baseline vs canary, per metric and as a whole. Pure: counts in, verdict out.

Every decision here gates production, so it is made on evidence that settles it: a metric passes
only when the data shows the canary did not regress by more than the spec tolerates; evidence that
cannot settle it (too few samples, buckets too coarse, an interval straddling a threshold) makes the
metric ``Inconclusive``, never a silent pass. Statistics in :mod:`vigil.deploy.canary.stats`.

**Per metric** (Kayenta's judge, adapted to vigil's bucketed telemetry):

- *Too few samples.* Fewer than ``min_samples`` observations (events, for a ratio) on either side
  classifies the metric ``NoData``; its ``no_data`` policy decides: ``inconclusive`` (default)
  makes the verdict inconclusive, ``fail`` counts it as a failed metric, ``ignore`` leaves it out
  of the score (with a warning; not allowed on a critical metric).
- *Distribution* (``metric:``, e.g. latency), three checks:

  1. *Shift*: Mann-Whitney U over the bucket counts (exact p-value for small samples). The canary
     is ``High`` when the direction allows an increase, the one-sided p-value is below ``alpha =
     1 - confidence`` (``alpha / 2`` each way for ``direction: either``), Cliff's delta is at least
     the effect-size floor ``min_effect``, and, when a ``margin`` is set, the Hodges-Lehmann shift
     surely exceeds ``margin`` x the baseline median (its resolution interval is above it; an
     interval that straddles the margin is inconclusive). ``Low`` mirrors it.
  2. *Resolution*: otherwise the shift would pass, but only if the buckets could have shown a
     shift of the tolerance ``max(margin, resolution)`` x the baseline median: when the raw data's
     shift could lie beyond it in a bad direction (the upper end of the shift's resolution
     interval is above it), the metric is ``Inconclusive``: *below the data's resolution*.
  3. *Quantiles* (``quantiles: {p95: 5%}``): the change of each quantile, canary / baseline - 1,
     with exact order-statistic bounds (both samples, Bonferroni) widened by the buckets: ``High``
     when the lower bound exceeds the tolerance, ``Pass`` when the upper bound is within it, else
     ``Inconclusive`` (too few observations, or below resolution). ``Low`` mirrors it.

- *Ratio* (``ratio: {bad, total}``), two checks:

  1. Fisher's exact test, one-sided; ``High`` when p < alpha and the canary's error ratio exceeds
     the baseline's by more than ``margin`` (default 0).
  2. ``ceiling`` (when set): the canary's error ratio against an absolute ceiling with exact
     Clopper-Pearson bounds at ``confidence``: ``High`` when the lower bound is above it, ``Pass``
     when the upper bound is at or under it, else ``Inconclusive`` (3 errors of 100 against a 1%
     ceiling cannot pass).

- A metric is ``High`` / ``Low`` when any of its checks is (only ever in a direction the metric
  cares about), else ``Inconclusive`` when any check is, else ``Pass``.

**Score**: 100 x (weight of passing metrics) / (weight of counted metrics). Counted: Pass, High,
Low, and NoData under ``no_data: fail``.

**Verdict**, in this order:

1. ``fail`` when a critical metric is High, Low or NoData under ``no_data: fail``, or an SLO
   check fails (the score is then reported as 0);
2. ``inconclusive`` when a metric is Inconclusive, has too little data under ``no_data:
   inconclusive``, or an SLO check is inconclusive, unless even counting every such metric as a pass
   would leave the score below ``marginal`` (then ``fail``); also when no metric could be counted at
   all (the score is then ``null``);
3. ``pass`` at a score >= ``thresholds.pass``, ``marginal`` at >= ``thresholds.marginal``,
   else ``fail``.

**SLO-aware** (:class:`SloInput`, one per SLO relevant to the canary): what would the canary do to
the error budget at full traffic? Its error ratio under the SLO's own SLI is bounded with
Clopper-Pearson at ``confidence`` on both sides and divided by the budget fraction ``1 -
objective``: the burn rate at full traffic, as an interval. Against the SLO's page threshold
(``page-1h``: 14.4 for 30 days, scaled to the window as in :func:`vigil.slo.math.mwmb_windows`) and
against the freeze rules of the budget policy (``consumed now + burn rate x horizon / window``,
``canary.slo_horizon``, default 1d at full traffic; ``budget_consumed_over``, ``budget_exhausted``,
with ``window_elapsed_at_least`` checked at the end of the horizon for a calendar window):

- ``fail`` when the lower end of the interval pages or newly trips a rule (3% errors on a 99.9%
  SLO is a 30x burn: with enough events it fails even when the baseline looks the same);
- ``inconclusive`` when only the upper end does: too few events to tell (3 errors of 100, or 0 of
  100 on a 99.9% SLO: the data cannot show the canary would not page). About
  ``ln(1 - confidence) / ln(1 - 14.4 x budget)`` events without an error are needed: 207 for 99.9%;
- ``ok`` otherwise. A rule the SLO already trips before the canary is reported as a warning, not a
  canary failure: the deploy gate owns that decision (and its overrides).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Mapping, Sequence

from vigil.deploy.canary import stats
from vigil.deploy.canary.spec import CanaryMetric, CanarySpec, quantile_of
from vigil.slo.math import mwmb_windows
from vigil.slo.spec import FreezeWhen

PASS, HIGH, LOW, NODATA, INCONCLUSIVE = "Pass", "High", "Low", "NoData", "Inconclusive"
VERDICTS = ("pass", "marginal", "fail", "inconclusive")
INF = math.inf


@dataclass(frozen=True)
class DistributionSamples:
    """Observations of a distribution metric as (value in seconds, count) pairs, per side, with the
    bucket bounds each side was counted in (``None``: raw values, exact)."""

    baseline: tuple[tuple[stats.Value, int], ...]
    canary: tuple[tuple[stats.Value, int], ...]
    baseline_bounds: tuple[Fraction, ...] | None = None
    canary_bounds: tuple[Fraction, ...] | None = None

    @classmethod
    def of(cls, baseline, canary, bounds=None, *, baseline_bounds=None) -> "DistributionSamples":
        """``bounds``: the sorted bucket bounds of the layout (both sides, unless ``baseline_bounds``
        gives the baseline's); None for raw values."""
        cb = None if bounds is None else stats.layout(bounds)
        bb = cb if baseline_bounds is None else stats.layout(baseline_bounds)
        return cls(stats.histogram(baseline), stats.histogram(canary), bb, cb)

    def samples(self) -> tuple[stats.CanarySample, stats.CanarySample]:
        return stats.CanarySample(self.baseline, self.baseline_bounds), stats.CanarySample(self.canary, self.canary_bounds)


@dataclass(frozen=True)
class RatioSamples:
    baseline_bad: int
    baseline_total: int
    canary_bad: int
    canary_total: int


MetricSamples = DistributionSamples | RatioSamples


@dataclass(frozen=True)
class SloInput:
    """One SLO relevant to the canary: its budget now and the canary's counts under its SLI."""

    slo: str
    service: str
    kind: str  # ratio | latency
    objective: Decimal
    window_seconds: int
    rolling: bool
    consumed: Decimal | None  # None: the SLO has no data yet
    elapsed_fraction: Decimal
    canary_bad: int
    canary_valid: int
    rules: tuple[tuple[str, FreezeWhen], ...] = ()  # freeze rules this SLO can trip
    metrics: tuple[str, ...] = ()  # the canary metrics that link this SLO


def _f(x: Fraction | Decimal | float | None, digits: int = 6) -> float | None:
    """A JSON number: None for None and for an unbounded (infinite) value."""
    if x is None:
        return None
    v = float(x)
    if not math.isfinite(v):
        return None
    return round(v, digits)


def _pct(x: Fraction | Decimal | float) -> str:
    if x == INF:
        return "+inf"
    return f"{float(x) * 100:.3g}%"


def _spct(x: Fraction | float) -> str:
    if x == INF:
        return "+inf"
    if x == -INF:
        return "-inf"
    return f"{float(x) * 100:+.3g}%"


def _secs(x: Fraction | float, sign: bool = True) -> str:
    if x == INF:
        return "+inf"
    if x == -INF:
        return "-inf"
    v = float(x)
    f = "+" if sign else ""
    if abs(v) < 1:
        return f"{v * 1000:{f}.4g}ms"
    return f"{v:{f}.4g}s"


def _bucket(iv: tuple) -> str:
    lo, hi = iv
    if lo == hi:
        return _secs(hi, False)
    return f"{_secs(lo, False)}..{_secs(hi, False)}"


def _p(p: float) -> str:
    return f"{p:.3g}" if p > 0 else "<1e-300"


def _rel_width(iv: tuple) -> float | None:
    """(upper - lower) / lower of a bucket; None when unbounded (an infinite edge or a 0 lower edge
    under a positive upper one)."""
    lo, hi = iv
    if lo == hi:
        return 0.0
    if hi == INF or lo == -INF or lo <= 0:
        return None
    return round(float((hi - lo) / lo), 6)


@dataclass
class MetricResult:
    name: str
    kind: str
    classification: str
    direction: str
    critical: bool
    weight: Decimal
    no_data: str
    reason: str
    details: dict = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        return self.classification not in (NODATA, INCONCLUSIVE) or (self.classification == NODATA and self.no_data == "fail")

    @property
    def passed(self) -> bool:
        return self.classification == PASS

    @property
    def failed(self) -> bool:
        return self.counted and not self.passed

    @property
    def open(self) -> bool:
        """Undecided: Inconclusive, or NoData under ``no_data: inconclusive``."""
        return self.classification == INCONCLUSIVE or (self.classification == NODATA and self.no_data == "inconclusive")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "classification": self.classification,
            "direction": self.direction,
            "critical": self.critical,
            "weight": float(self.weight),
            "counted": self.counted,
            "no_data": self.no_data,
            "reason": self.reason,
            **self.details,
        }


@dataclass
class SloCheck:
    slo: str
    service: str
    kind: str
    metrics: tuple[str, ...]
    state: str  # ok | fail | inconclusive | no_data
    reason: str
    details: dict = field(default_factory=dict)

    @property
    def fails(self) -> bool:
        return self.state == "fail"

    def to_dict(self) -> dict:
        return {"slo": self.slo, "service": self.service, "kind": self.kind, "metrics": list(self.metrics),
                "state": self.state, "fails": self.fails, "reason": self.reason, **self.details}


@dataclass
class CanaryVerdict:
    verdict: str
    score: Fraction | None
    metrics: list[MetricResult]
    slos: list[SloCheck]
    reasons: list[str]
    warnings: list[str]
    thresholds: tuple[Decimal, Decimal]
    confidence: Decimal

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "score": None if self.score is None else round(float(self.score), 2),
            "thresholds": {"pass": float(self.thresholds[0]), "marginal": float(self.thresholds[1])},
            "confidence": float(self.confidence),
            "metrics": [m.to_dict() for m in self.metrics],
            "slos": [s.to_dict() for s in self.slos],
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
        }


def _combine(checks: list[tuple[str, str]]) -> tuple[str, str]:
    """A metric's classification from its checks' (classification, reason): High/Low first, then
    Inconclusive, then Pass (the first check's reason of the deciding kind)."""
    for want in ((HIGH, LOW), (INCONCLUSIVE,), (PASS,)):
        for cls, why in checks:
            if cls in want:
                return cls, why
    raise AssertionError("a metric has at least one check")  # pragma: no cover


# -- per metric ---------------------------------------------------------------------------------


def classify(metric: CanaryMetric, samples: MetricSamples | None, canary: CanarySpec) -> MetricResult:
    """Classify one metric: Pass, High, Low, Inconclusive or NoData (see the module docstring)."""
    res = MetricResult(metric.name, metric.kind, NODATA, metric.direction, metric.critical, metric.weight, metric.no_data, "")
    if isinstance(samples, DistributionSamples) or (samples is None and metric.kind == "distribution"):
        _distribution(res, metric, samples, canary)
    else:
        _ratio(res, metric, samples if isinstance(samples, RatioSamples) else RatioSamples(0, 0, 0, 0), canary)
    return res


def _distribution(res: MetricResult, metric: CanaryMetric, samples: DistributionSamples | None, canary: CanarySpec) -> None:
    min_samples = metric.min_samples if metric.min_samples is not None else canary.min_samples
    conf = Fraction(canary.confidence)
    alpha = 1 - conf
    either = metric.direction == "either"
    level = alpha / 2 if either else alpha
    sb, sc = samples.samples() if samples else (stats.CanarySample(()), stats.CanarySample(()))
    nb, nc = sb.n, sc.n
    floor = Fraction(metric.min_effect if metric.min_effect is not None else canary.min_effect)
    resolution = Fraction(metric.resolution if metric.resolution is not None else canary.resolution)
    tolerance = max(Fraction(metric.margin) if metric.margin is not None else Fraction(0), resolution)
    res.details = {"n_baseline": nb, "n_canary": nc, "min_samples": min_samples, "alpha": float(alpha),
                   "min_effect": float(floor), "margin": _f(metric.margin), "resolution_required": _f(resolution)}
    if nb < min_samples or nc < min_samples:
        res.reason = f"too few observations: baseline {nb}, canary {nc}; {min_samples} each needed"
        return
    r = stats.rank_test(sb, sc, confidence=float(conf))
    scale = abs(r.median_baseline)
    margin_abs = None if metric.margin is None else Fraction(metric.margin) * scale
    tol_abs = tolerance * scale
    p_value = min(1.0, 2 * min(r.p_greater, r.p_less)) if either else (r.p_greater if metric.direction == "increase" else r.p_less)
    lo_s, hi_s = r.shift_bounds
    res.details.update(
        {
            "test": "mann-whitney-u",
            "p_value": p_value,
            "p_greater": r.p_greater,
            "p_less": r.p_less,
            "p_method": r.p_method,
            "u": float(r.u),
            "effect": _f(r.effect),
            "effect_bounds": None if r.effect_bounds is None else [_f(x) for x in r.effect_bounds],
            "baseline_median": _f(r.median_baseline, 9),
            "canary_median": _f(r.median_canary, 9),
            "baseline_median_bucket": [_f(x, 9) for x in r.median_baseline_bounds],
            "canary_median_bucket": [_f(x, 9) for x in r.median_canary_bounds],
            "resolution": _rel_width(r.median_baseline_bounds),
            "shift": _f(r.shift, 9),
            "shift_bounds": [_f(lo_s, 9), _f(hi_s, 9)],
            "shift_ci": [_f(r.shift_low, 9), _f(r.shift_high, 9)],
            "shift_relative": _f(r.shift / r.median_baseline) if r.median_baseline else None,
            "tolerance": _f(tolerance),
            "below_resolution": False,
        }
    )
    up = metric.direction in ("increase", "either")
    down = metric.direction in ("decrease", "either")
    if r.resolved:
        desc = f"Cliff's delta {float(r.effect):+.3f}, shift {_secs(r.shift)} (CI {_secs(r.shift_low)}..{_secs(r.shift_high)})"
    else:
        desc = (f"Cliff's delta {float(r.effect):+.3f}, shift {_secs(r.shift)}, which the buckets place between {_secs(lo_s)} and "
                f"{_secs(hi_s)} (CI {_secs(r.shift_low)}..{_secs(r.shift_high)}; baseline median {_bucket(r.median_baseline_bounds)})")
    checks: list[tuple[str, str]] = [_shift_check(r, metric, up, down, level, floor, margin_abs, tol_abs, tolerance, desc, res)]
    qdetails = []
    for name, tol in (metric.quantiles or {}).items():
        q = quantile_of(name)
        assert q is not None
        cls, why, d = _quantile_check(name, Fraction(q), Fraction(tol), sb, sc, up, down, float(level))
        checks.append((cls, why))
        qdetails.append(d)
    if qdetails:
        res.details["quantiles"] = qdetails
    res.classification, res.reason = _combine(checks)


def _shift_check(r: stats.RankTest, metric: CanaryMetric, up: bool, down: bool, level: Fraction, floor: Fraction,
                 margin_abs: Fraction | None, tol_abs: Fraction, tolerance: Fraction, desc: str, res: MetricResult) -> tuple[str, str]:
    lo_s, hi_s = r.shift_bounds
    either = up and down
    p_value = res.details["p_value"]
    small = ""
    for sig, sign, cls, word in ((up and r.p_greater < level, 1, HIGH, "higher"), (down and r.p_less < level, -1, LOW, "lower")):
        if not sig:
            continue
        p = r.p_greater if sign > 0 else r.p_less
        if sign * r.effect < floor:
            small = f"the canary is {word} (p={_p(p)}) but the effect is small: {desc}; floor {float(floor):.3g}"
            break
        if margin_abs is not None and metric.margin is not None:  # (margin_abs is None exactly when margin is)
            beyond = lo_s > margin_abs if sign > 0 else hi_s < -margin_abs
            within = hi_s <= margin_abs if sign > 0 else lo_s >= -margin_abs
            if within:
                return PASS, f"the canary is {word} (p={_p(p)}) but within the margin of {_pct(metric.margin)} of the baseline median: {desc}"
            if not beyond:
                res.details["below_resolution"] = True
                return INCONCLUSIVE, (f"the canary is {word} (p={_p(p)}), but whether the shift exceeds the margin of "
                                      f"{_pct(metric.margin)} ({_secs(margin_abs, False)}) is below the data's resolution: {desc}")
        return cls, f"the canary is {word}: p={_p(p)}, {desc}"
    # would pass: only if the buckets could have shown a shift of the tolerance
    hidden_up = up and hi_s > tol_abs
    hidden_down = down and lo_s < -tol_abs
    if hidden_up or hidden_down:
        res.details["below_resolution"] = True
        bad = hi_s if hidden_up else lo_s
        return INCONCLUSIVE, (
            f"below the data's resolution: the buckets (baseline median {_bucket(r.median_baseline_bounds)}) place the shift "
            f"between {_secs(lo_s)} and {_secs(hi_s)}, so a shift of {_secs(bad)} (more than the {_pct(tolerance)} of the "
            f"baseline median this metric tolerates) cannot be ruled out (p={_p(p_value)}, Cliff's delta {float(r.effect):+.3f})"
        )
    if small:
        return PASS, small
    return PASS, f"no significant {'change' if either else metric.direction} (p={_p(p_value)}): {desc}"


def _needed_for_bound(q: float, a: float) -> int:
    """Observations a side for an upper order-statistic bound of quantile q at level 1 - a (and by
    symmetry a lower bound of 1 - q): the smallest n with q^n <= a."""
    return math.ceil(math.log(a) / math.log(q))


def _quantile_check(name: str, q: Fraction, tol: Fraction, sb: stats.CanarySample, sc: stats.CanarySample, up: bool, down: bool,
                    level: float) -> tuple[str, str, dict]:
    s = stats.quantile_shift(sb, sc, q, level)
    lo, hi = s.change_low, s.change_high
    rlo, rhi = s.resolution
    d = {
        "quantile": name,
        "tolerance": _f(tol),
        "baseline": _f(s.baseline.value, 9),
        "canary": _f(s.canary.value, 9),
        "baseline_bucket": [_f(x, 9) for x in s.baseline.bucket],
        "canary_bucket": [_f(x, 9) for x in s.canary.bucket],
        "change": _f(s.change),
        "change_ci": [_f(lo), _f(hi)],
        "change_resolution": [_f(rlo), _f(rhi)],
    }
    point = "n/a" if s.change is None else _spct(s.change)
    desc = (f"{name} {_secs(s.canary.value, False)} vs {_secs(s.baseline.value, False)}: {point} "
            f"(between {_spct(lo)} and {_spct(hi)} at {100 * (1 - level):.3g}% confidence)")
    if up and lo > tol:
        cls, why = HIGH, f"{name} regressed by more than {_pct(tol)}: {desc}"
    elif down and hi < -tol:
        cls, why = LOW, f"{name} fell by more than {_pct(tol)}: {desc}"
    elif (not up or hi <= tol) and (not down or lo >= -tol):
        cls, why = PASS, f"{name} within {_pct(tol)}: {desc}"
    else:
        cls = INCONCLUSIVE
        unresolved = (up and rlo <= tol < rhi) or (down and rlo < -tol <= rhi)
        if unresolved:
            why = (f"{name}: below the data's resolution: the buckets ({_bucket(s.baseline.bucket)} vs "
                   f"{_bucket(s.canary.bucket)}) cannot tell a change of {_pct(tol)}: {desc}")
        else:
            need = _needed_for_bound(max(float(q), 1 - float(q)), level / 2)
            more = f"; a bound needs at least {need} observations a side" if min(sb.n, sc.n) < need else ""
            why = f"{name}: too few observations to tell a change of {_pct(tol)}: {desc}{more}"
        d["below_resolution"] = unresolved
    d["classification"] = cls
    return cls, why, d


def _ratio(res: MetricResult, metric: CanaryMetric, rs: RatioSamples, canary: CanarySpec) -> None:
    min_samples = metric.min_samples if metric.min_samples is not None else canary.min_samples
    conf = Fraction(canary.confidence)
    alpha = 1 - conf
    either = metric.direction == "either"
    level = alpha / 2 if either else alpha
    res.details = {"baseline_bad": rs.baseline_bad, "baseline_total": rs.baseline_total, "canary_bad": rs.canary_bad,
                   "canary_total": rs.canary_total, "min_samples": min_samples, "alpha": float(alpha), "margin": _f(metric.margin),
                   "ceiling": _f(metric.ceiling)}
    if rs.baseline_total < min_samples or rs.canary_total < min_samples:
        res.reason = f"too few events: baseline {rs.baseline_total}, canary {rs.canary_total}; {min_samples} each needed"
        return
    over = [f"{side} {bad}/{total}" for side, bad, total in (("baseline", rs.baseline_bad, rs.baseline_total),
                                                             ("canary", rs.canary_bad, rs.canary_total)) if bad > total]
    if over:  # contradictory evidence is not evidence: never clamped into a verdict
        res.classification = INCONCLUSIVE
        res.reason = (f"more bad events than total ({', '.join(over)}): the bad and total selectors disagree, or one of them "
                      "is missing data; fix the selectors (`vigil check`) or wait for complete data")
        return
    cbad = min(rs.canary_bad, rs.canary_total)
    t = stats.ratio_test(min(rs.baseline_bad, rs.baseline_total), rs.baseline_total, cbad, rs.canary_total)
    rb, rc = t.baseline_ratio, t.canary_ratio
    assert rb is not None and rc is not None
    p_value = min(1.0, 2 * min(t.p_greater, t.p_less)) if either else (t.p_greater if metric.direction == "increase" else t.p_less)
    margin = Fraction(metric.margin) if metric.margin is not None else Fraction(0)
    res.details.update(
        {
            "test": "fisher-exact",
            "p_value": p_value,
            "p_greater": t.p_greater,
            "p_less": t.p_less,
            "baseline_ratio": _f(rb, 9),
            "canary_ratio": _f(rc, 9),
            "difference": _f(rc - rb, 9),
            "relative_risk": _f(rc / rb) if rb else None,
        }
    )
    desc = f"canary {rs.canary_bad}/{rs.canary_total} ({_pct(rc)}) vs baseline {rs.baseline_bad}/{rs.baseline_total} ({_pct(rb)})"
    up = metric.direction in ("increase", "either")
    down = metric.direction in ("decrease", "either")
    checks: list[tuple[str, str]] = []
    for sig, diff, cls, word, p in ((up and t.p_greater < level, rc - rb, HIGH, "higher", t.p_greater),
                                    (down and t.p_less < level, rb - rc, LOW, "lower", t.p_less)):
        if not sig:
            continue
        if not diff > margin:
            checks.append((PASS, f"the canary's ratio is {word} (p={_p(p)}) but within the margin of {_pct(margin)}: {desc}"))
        else:
            checks.append((cls, f"the canary's ratio is {word}: p={_p(p)}, {desc}"))
        break
    if not checks:
        checks.append((PASS, f"no significant {'change' if either else metric.direction} (p={_p(p_value)}): {desc}"))
    if metric.ceiling is not None:
        ceiling = Fraction(metric.ceiling)
        lo = stats.ratio_lower_bound(cbad, rs.canary_total, float(conf))
        hi = stats.ratio_upper_bound(cbad, rs.canary_total, float(conf))
        res.details["canary_ratio_bounds"] = [_f(lo, 9), _f(hi, 9)]
        bounds = f"{_pct(lo)}..{_pct(hi)} at {_pct(conf)} confidence"
        if lo > ceiling:
            checks.append((HIGH, f"the canary's error ratio is above the ceiling {_pct(ceiling)}: {desc}; {bounds}"))
        elif hi <= ceiling:
            checks.append((PASS, f"the canary's error ratio is under the ceiling {_pct(ceiling)}: {desc}; {bounds}"))
        else:
            need = _zero_error_events(ceiling, float(conf))
            checks.append((INCONCLUSIVE, f"too few events to show the canary's error ratio is under the ceiling {_pct(ceiling)}: "
                                         f"{desc}; {bounds} (with no error, {need} events would show it)"))
    res.classification, res.reason = _combine(checks)


def _zero_error_events(ratio: Fraction, confidence: float) -> int:
    """Events without an error that bound the error ratio under ``ratio`` at ``confidence``."""
    r = float(ratio)
    if r >= 1:
        return 1
    return math.ceil(math.log(1 - confidence) / math.log(1 - r))


# -- SLO-aware ----------------------------------------------------------------------------------


def rule_holds(when: FreezeWhen, consumed: Fraction, elapsed: Fraction) -> bool:
    """The conditions of a freeze rule on a budget (the semantics of the deploy gate's rules)."""
    if when.budget_consumed_over is not None and not consumed > Fraction(when.budget_consumed_over):
        return False
    if when.budget_exhausted and not consumed >= 1:
        return False
    if when.window_elapsed_at_least is not None and not elapsed >= Fraction(when.window_elapsed_at_least):
        return False
    return True


def check_slo(s: SloInput, canary: CanarySpec) -> SloCheck:
    conf = Fraction(canary.confidence)
    horizon = Fraction(canary.slo_horizon)
    budget = 1 - Fraction(s.objective)
    page = mwmb_windows(s.window_seconds)[0]
    check = SloCheck(s.slo, s.service, s.kind, s.metrics, "ok", "")
    d: dict = {
        "objective": float(s.objective),
        "canary_bad": s.canary_bad,
        "canary_valid": s.canary_valid,
        "page_threshold": float(page.threshold),
        "page_rule": page.name,
        "horizon_seconds": float(horizon),
    }
    check.details = d
    if s.canary_valid < canary.min_samples:
        check.state = "no_data"
        check.reason = f"the canary has {s.canary_valid} valid events under SLO {s.slo}; {canary.min_samples} needed to project its burn"
        return check
    bad = min(s.canary_bad, s.canary_valid)
    ratio = Fraction(bad, s.canary_valid)
    low = stats.ratio_lower_bound(bad, s.canary_valid, float(conf))
    high = stats.ratio_upper_bound(bad, s.canary_valid, float(conf))
    burn = ratio / budget
    burn_low = low / budget
    burn_high = high / budget
    window = Fraction(s.window_seconds)
    consumed = Fraction(s.consumed) if s.consumed is not None else Fraction(0)
    elapsed = Fraction(s.elapsed_fraction)
    projected = consumed + burn_low * horizon / window
    projected_high = consumed + burn_high * horizon / window
    elapsed_after = Fraction(1) if s.rolling else min(Fraction(1), elapsed + horizon / window)
    d.update(
        {
            "canary_error_ratio": _f(ratio, 9),
            "canary_error_ratio_lower": _f(low, 9),
            "canary_error_ratio_upper": _f(high, 9),
            "burn_rate_at_full_traffic": _f(burn),
            "burn_rate_lower": _f(burn_low),
            "burn_rate_upper": _f(burn_high),
            "budget_consumed": _f(s.consumed),
            "budget_consumed_projected": _f(projected),
            "budget_consumed_projected_upper": _f(projected_high),
            "window_elapsed": _f(elapsed),
            "window_elapsed_projected": _f(elapsed_after),
        }
    )
    what = f"{bad} bad of {s.canary_valid} canary events ({_pct(ratio)}) is a {float(burn):.3g}x burn of SLO {s.slo}'s budget at full traffic"
    span = f"{float(burn_low):.3g}x..{float(burn_high):.3g}x at {_pct(conf)} confidence"
    fails: list[str] = []
    open_: list[str] = []
    if burn_low > page.threshold:
        fails.append(f"{what} ({span}), above the page threshold {float(page.threshold):.3g}x ({page.name})")
    elif burn_high > page.threshold:
        need = _zero_error_events(budget * Fraction(page.threshold), float(conf))
        open_.append(f"{what}; it could be {span}, so the data cannot show it stays under the page threshold "
                     f"{float(page.threshold):.3g}x ({page.name}); about {need} events without an error would")
    tripped, already, maybe = [], [], []
    for name, when in s.rules:
        now_holds = s.consumed is not None and rule_holds(when, consumed, elapsed)
        if now_holds:
            already.append(name)
        elif rule_holds(when, projected, elapsed_after):
            tripped.append(name)
            fails.append(
                f"{float(horizon) / 3600:.3g}h at full traffic would take SLO {s.slo}'s budget from {_pct(consumed)} to "
                f"{_pct(projected)} consumed or more, tripping the freeze rule {name} ({when.describe()})"
            )
        elif rule_holds(when, projected_high, elapsed_after):
            maybe.append(name)
            open_.append(
                f"{float(horizon) / 3600:.3g}h at full traffic could take SLO {s.slo}'s budget from {_pct(consumed)} to "
                f"{_pct(projected_high)} consumed ({span}), tripping the freeze rule {name} ({when.describe()}): too few events to tell"
            )
    d["freeze_rules_tripped"] = tripped
    d["freeze_rules_already_tripped"] = already
    d["freeze_rules_unresolved"] = maybe
    if fails:
        check.state = "fail"
        check.reason = "; ".join(fails)
    elif open_:
        check.state = "inconclusive"
        check.reason = "; ".join(open_)
    else:
        check.reason = (
            f"at full traffic the canary would burn SLO {s.slo}'s budget at most {float(burn_high):.3g}x "
            f"(point estimate {float(burn):.3g}x; page at {float(page.threshold):.3g}x), leaving {_pct(1 - projected_high)} or more after the horizon"
        )
    return check


# -- the verdict --------------------------------------------------------------------------------


def judge(
    canary: CanarySpec,
    samples: Mapping[str, MetricSamples | None],
    slos: Sequence[SloInput] = (),
    *,
    warnings: Sequence[str] = (),
) -> CanaryVerdict:
    """Classify every metric of ``canary.metrics``, check the SLOs, score and decide."""
    results = [classify(m, samples.get(m.name), canary) for m in canary.metrics]
    checks = [check_slo(s, canary) for s in slos]
    warn = list(warnings)
    reasons: list[str] = []
    for m in results:
        if m.classification == NODATA and m.no_data == "ignore":
            warn.append(f"metric {m.name} has too little data and is left out of the score (no_data: ignore): {m.reason}")
    linked = {name for c in checks for name in c.metrics}
    for spec_m in canary.metrics:
        if spec_m.kind == "ratio" and spec_m.ceiling is None and spec_m.name not in linked:
            warn.append(f"metric {spec_m.name} is judged only against the baseline (a significance test): give it a ceiling "
                        "or link an SLO so that too few events cannot pass it")
    for c in checks:
        if c.state == "no_data":
            warn.append(c.reason)
        for name in c.details.get("freeze_rules_already_tripped", []):
            warn.append(f"SLO {c.slo} already trips the freeze rule {name} without the canary; the deploy gate decides on that")
    counted = [m for m in results if m.counted]
    undecided = [m for m in results if m.open]
    cw = sum((m.weight for m in counted), Decimal(0))
    pw = sum((m.weight for m in counted if m.passed), Decimal(0))
    mw = sum((m.weight for m in undecided), Decimal(0))
    score = Fraction(pw * 100) / Fraction(cw) if cw else None
    best = Fraction((pw + mw) * 100) / Fraction(cw + mw) if cw + mw else None
    p_thr, m_thr = canary.thresholds.pass_, canary.thresholds.marginal
    critical = [m for m in results if m.critical and m.failed]
    slo_fails = [c for c in checks if c.fails]
    slo_open = [c for c in checks if c.state == "inconclusive"]
    for m in results:
        if m.failed:
            reasons.append(f"{m.name}: {m.classification}{' (critical)' if m.critical else ''}: {m.reason}")
    for c in slo_fails:
        reasons.append(f"SLO {c.slo}: {c.reason}")
    if critical or slo_fails:
        verdict = "fail"
        score = Fraction(0)
    elif undecided and best is not None and best < Fraction(m_thr):
        verdict = "fail"
        reasons.append(f"even if {', '.join(m.name for m in undecided)} passed, the score would be {float(best):.4g} (< marginal {m_thr})")
    elif undecided or slo_open or score is None:
        verdict = "inconclusive"
        for m in undecided:
            reasons.append(f"{m.name}: {m.classification}: {m.reason}")
        for c in slo_open:
            reasons.append(f"SLO {c.slo}: inconclusive: {c.reason}")
        if score is None and not undecided:
            reasons.append("no metric could be judged")
    elif score >= Fraction(p_thr):
        verdict = "pass"
    elif score >= Fraction(m_thr):
        verdict = "marginal"
    else:
        verdict = "fail"
    if verdict in ("pass", "marginal", "fail") and not critical and not slo_fails and score is not None:
        reasons.insert(0, f"score {float(score):.4g} (pass at {p_thr}, marginal at {m_thr})")
    return CanaryVerdict(verdict, score, results, checks, reasons, warn, (p_thr, m_thr), canary.confidence)
