"""The canary judge: baseline vs canary, per metric and as a whole. Pure: counts in, verdict out.

**Per metric** (Kayenta's judge, adapted to vigil's bucketed telemetry; statistics in
:mod:`vigil.deploy.canary.stats`):

- *Too few samples.* Fewer than ``min_samples`` observations (events, for a ratio) on either side
  classifies the metric ``NoData``; its ``no_data`` policy decides: ``inconclusive`` (default)
  makes the verdict inconclusive, ``fail`` counts it as a failed metric, ``ignore`` leaves it out
  of the score (with a warning; not allowed on a critical metric). Never a silent pass.
- *Distribution* (``metric:``, e.g. latency): Mann-Whitney U over the bucket counts. The canary is
  ``High`` when the direction allows an increase, the one-sided p-value is below
  ``alpha = 1 - confidence`` (``alpha / 2`` each way for ``direction: either``), Cliff's delta is at
  least the effect-size floor ``min_effect``, and, when a ``margin`` is set, the Hodges-Lehmann
  shift exceeds ``margin`` x the baseline median. ``Low`` mirrors it. Otherwise ``Pass``.
- *Ratio* (``ratio: {bad, total}``): Fisher's exact test, one-sided; ``High`` when p < alpha and
  the canary's error ratio exceeds the baseline's by more than ``margin`` (default 0).
- A ``High`` or ``Low`` classification is only ever given in a direction the metric cares about.

**Score**: 100 x (weight of passing metrics) / (weight of counted metrics). Counted: Pass, High,
Low, and NoData under ``no_data: fail``.

**Verdict**, in this order:

1. ``fail`` when a critical metric is High, Low or NoData under ``no_data: fail``, or an SLO
   check fails (the score is then reported as 0);
2. ``inconclusive`` when a metric has too little data under ``no_data: inconclusive``, unless even
   counting it as a pass would leave the score below ``marginal`` (then ``fail``); also when no
   metric could be counted at all (the score is then ``null``);
3. ``pass`` at a score >= ``thresholds.pass``, ``marginal`` at >= ``thresholds.marginal``,
   else ``fail``.

**SLO-aware** (:class:`SloInput`, one per SLO relevant to the canary): what would the canary do to
the error budget at full traffic? Its error ratio under the SLO's own SLI is bounded from below
with Clopper-Pearson at ``confidence`` (so a handful of requests cannot fail a canary on one
unlucky error), and divided by the budget fraction ``1 - objective``: the burn rate at full traffic.
The canary fails when

- that burn rate exceeds the SLO's page threshold (``page-1h``: 14.4 for 30 days, scaled to the
  window as in :func:`vigil.slo.math.mwmb_windows`), or
- ``consumed now + burn rate x horizon / window`` (``canary.slo_horizon``, default 1d, at full
  traffic) would newly trip a freeze rule of the budget policy (``budget_consumed_over``,
  ``budget_exhausted``, with ``window_elapsed_at_least`` checked at the end of the horizon for a
  calendar window). A rule the SLO already trips before the canary is reported as a warning, not a
  canary failure: the deploy gate owns that decision (and its overrides).

The canary fails on these even when it looks exactly like the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Mapping, Sequence

from vigil.deploy.canary import stats
from vigil.deploy.canary.spec import CanaryMetric, CanarySpec
from vigil.slo.math import mwmb_windows
from vigil.slo.spec import FreezeWhen

PASS, HIGH, LOW, NODATA = "Pass", "High", "Low", "NoData"
VERDICTS = ("pass", "marginal", "fail", "inconclusive")


@dataclass(frozen=True)
class DistributionSamples:
    """Observations of a distribution metric as (value in seconds, count) pairs, per side."""

    baseline: tuple[tuple[stats.Value, int], ...]
    canary: tuple[tuple[stats.Value, int], ...]

    @classmethod
    def of(cls, baseline, canary) -> "DistributionSamples":
        return cls(stats.histogram(baseline), stats.histogram(canary))


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


def _f(x: Fraction | Decimal | None, digits: int = 6) -> float | None:
    if x is None:
        return None
    return round(float(x), digits)


def _pct(x: Fraction | Decimal) -> str:
    return f"{float(x) * 100:.3g}%"


def _secs(x: Fraction) -> str:
    v = float(x)
    if abs(v) < 1:
        return f"{v * 1000:+.4g}ms"
    return f"{v:+.4g}s"


def _p(p: float) -> str:
    return f"{p:.3g}"


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
        return self.classification != NODATA or self.no_data == "fail"

    @property
    def passed(self) -> bool:
        return self.classification == PASS

    @property
    def failed(self) -> bool:
        return self.counted and not self.passed

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
    state: str  # ok | fail | no_data
    reason: str
    details: dict = field(default_factory=dict)

    @property
    def fails(self) -> bool:
        return self.state == "fail"

    def to_dict(self) -> dict:
        return {"slo": self.slo, "service": self.service, "kind": self.kind, "metrics": list(self.metrics),
                "state": self.state, "fails": self.fails, "reason": self.reason, **self.details}


@dataclass
class Verdict:
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


# -- per metric ---------------------------------------------------------------------------------


def classify(metric: CanaryMetric, samples: MetricSamples | None, canary: CanarySpec) -> MetricResult:
    """Classify one metric: Pass, High, Low or NoData (see the module docstring)."""
    min_samples = metric.min_samples if metric.min_samples is not None else canary.min_samples
    conf = Fraction(canary.confidence)
    alpha = 1 - conf
    res = MetricResult(metric.name, metric.kind, NODATA, metric.direction, metric.critical, metric.weight, metric.no_data, "")
    either = metric.direction == "either"
    level = alpha / 2 if either else alpha
    if isinstance(samples, DistributionSamples) or (samples is None and metric.kind == "distribution"):
        b = samples.baseline if samples else ()
        c = samples.canary if samples else ()
        nb, nc = stats.size(b), stats.size(c)
        floor = Fraction(metric.min_effect if metric.min_effect is not None else canary.min_effect)
        res.details = {"n_baseline": nb, "n_canary": nc, "min_samples": min_samples, "alpha": float(alpha),
                       "min_effect": float(floor), "margin": _f(metric.margin)}
        if nb < min_samples or nc < min_samples:
            res.reason = f"too few observations: baseline {nb}, canary {nc}; {min_samples} each needed"
            return res
        r = stats.rank_test(b, c, confidence=float(conf))
        margin_abs = None if metric.margin is None else Fraction(metric.margin) * abs(r.median_baseline)
        p_value = min(1.0, 2 * min(r.p_greater, r.p_less)) if either else (r.p_greater if metric.direction == "increase" else r.p_less)
        res.details.update(
            {
                "test": "mann-whitney-u",
                "p_value": p_value,
                "p_greater": r.p_greater,
                "p_less": r.p_less,
                "u": float(r.u),
                "effect": _f(r.effect),
                "baseline_median": _f(r.median_baseline, 9),
                "canary_median": _f(r.median_canary, 9),
                "shift": _f(r.shift, 9),
                "shift_ci": [_f(r.shift_low, 9), _f(r.shift_high, 9)],
                "shift_relative": _f(r.shift / r.median_baseline) if r.median_baseline else None,
            }
        )
        up = metric.direction in ("increase", "either")
        down = metric.direction in ("decrease", "either")
        sig_up = up and r.p_greater < level
        sig_down = down and r.p_less < level
        desc = f"Cliff's delta {float(r.effect):+.3f}, shift {_secs(r.shift)} (CI {_secs(r.shift_low)}..{_secs(r.shift_high)})"
        for sig, sign, cls, word in ((sig_up, 1, HIGH, "higher"), (sig_down, -1, LOW, "lower")):
            if not sig:
                continue
            p = r.p_greater if sign > 0 else r.p_less
            if sign * r.effect < floor:
                res.classification = PASS
                res.reason = f"the canary is {word} (p={_p(p)}) but the effect is small: {desc}; floor {float(floor):.3g}"
                return res
            if margin_abs is not None and not sign * r.shift > margin_abs:
                res.classification = PASS
                res.reason = f"the canary is {word} (p={_p(p)}) but within the margin of {_pct(metric.margin)} of the baseline median: {desc}"  # type: ignore[arg-type]
                return res
            res.classification = cls
            res.reason = f"the canary is {word}: p={_p(p)}, {desc}"
            return res
        res.classification = PASS
        res.reason = f"no significant {'change' if either else metric.direction} (p={_p(p_value)}): {desc}"
        return res

    # ratio
    rs = samples if isinstance(samples, RatioSamples) else RatioSamples(0, 0, 0, 0)
    res.details = {"baseline_bad": rs.baseline_bad, "baseline_total": rs.baseline_total, "canary_bad": rs.canary_bad,
                   "canary_total": rs.canary_total, "min_samples": min_samples, "alpha": float(alpha), "margin": _f(metric.margin)}
    if rs.baseline_total < min_samples or rs.canary_total < min_samples:
        res.reason = f"too few events: baseline {rs.baseline_total}, canary {rs.canary_total}; {min_samples} each needed"
        return res
    t = stats.ratio_test(min(rs.baseline_bad, rs.baseline_total), rs.baseline_total, min(rs.canary_bad, rs.canary_total), rs.canary_total)
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
    for sig, diff, cls, word, p in ((up and t.p_greater < level, rc - rb, HIGH, "higher", t.p_greater),
                                    (down and t.p_less < level, rb - rc, LOW, "lower", t.p_less)):
        if not sig:
            continue
        if not diff > margin:
            res.classification = PASS
            res.reason = f"the canary's ratio is {word} (p={_p(p)}) but within the margin of {_pct(margin)}: {desc}"
            return res
        res.classification = cls
        res.reason = f"the canary's ratio is {word}: p={_p(p)}, {desc}"
        return res
    res.classification = PASS
    res.reason = f"no significant {'change' if either else metric.direction} (p={_p(p_value)}): {desc}"
    return res


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
    burn = ratio / budget
    burn_low = low / budget
    window = Fraction(s.window_seconds)
    consumed = Fraction(s.consumed) if s.consumed is not None else Fraction(0)
    elapsed = Fraction(s.elapsed_fraction)
    projected = consumed + burn_low * horizon / window
    elapsed_after = Fraction(1) if s.rolling else min(Fraction(1), elapsed + horizon / window)
    d.update(
        {
            "canary_error_ratio": _f(ratio, 9),
            "canary_error_ratio_lower": _f(low, 9),
            "burn_rate_at_full_traffic": _f(burn),
            "burn_rate_lower": _f(burn_low),
            "budget_consumed": _f(s.consumed),
            "budget_consumed_projected": _f(projected),
            "window_elapsed": _f(elapsed),
            "window_elapsed_projected": _f(elapsed_after),
        }
    )
    fails: list[str] = []
    if burn_low > page.threshold:
        fails.append(
            f"at full traffic the canary would burn SLO {s.slo}'s budget {float(burn_low):.3g}x or faster "
            f"(error ratio >= {_pct(low)} at {_pct(conf)} confidence), above the page threshold {float(page.threshold):.3g}x ({page.name})"
        )
    tripped, already = [], []
    for name, when in s.rules:
        now_holds = s.consumed is not None and rule_holds(when, consumed, elapsed)
        if now_holds:
            already.append(name)
        elif rule_holds(when, projected, elapsed_after):
            tripped.append(name)
            fails.append(
                f"{float(horizon) / 3600:.3g}h at full traffic would take SLO {s.slo}'s budget from {_pct(consumed)} to "
                f"{_pct(projected)} consumed, tripping the freeze rule {name} ({when.describe()})"
            )
    d["freeze_rules_tripped"] = tripped
    d["freeze_rules_already_tripped"] = already
    if fails:
        check.state = "fail"
        check.reason = "; ".join(fails)
    else:
        check.reason = (
            f"at full traffic the canary would burn SLO {s.slo}'s budget at most {float(burn_low):.3g}x "
            f"(point estimate {float(burn):.3g}x; page at {float(page.threshold):.3g}x), leaving {_pct(1 - projected)} after the horizon"
        )
    return check


# -- the verdict --------------------------------------------------------------------------------


def judge(
    canary: CanarySpec,
    samples: Mapping[str, MetricSamples | None],
    slos: Sequence[SloInput] = (),
    *,
    warnings: Sequence[str] = (),
) -> Verdict:
    """Classify every metric of ``canary.metrics``, check the SLOs, score and decide."""
    results = [classify(m, samples.get(m.name), canary) for m in canary.metrics]
    checks = [check_slo(s, canary) for s in slos]
    warn = list(warnings)
    reasons: list[str] = []
    for m in results:
        if m.classification == NODATA and m.no_data == "ignore":
            warn.append(f"metric {m.name} has too little data and is left out of the score (no_data: ignore): {m.reason}")
    for c in checks:
        if c.state == "no_data":
            warn.append(c.reason)
        for name in c.details.get("freeze_rules_already_tripped", []):
            warn.append(f"SLO {c.slo} already trips the freeze rule {name} without the canary; the deploy gate decides on that")
    counted = [m for m in results if m.counted]
    missing = [m for m in results if m.classification == NODATA and m.no_data == "inconclusive"]
    cw = sum((m.weight for m in counted), Decimal(0))
    pw = sum((m.weight for m in counted if m.passed), Decimal(0))
    mw = sum((m.weight for m in missing), Decimal(0))
    score = Fraction(pw * 100) / Fraction(cw) if cw else None
    best = Fraction((pw + mw) * 100) / Fraction(cw + mw) if cw + mw else None
    p_thr, m_thr = canary.thresholds.pass_, canary.thresholds.marginal
    critical = [m for m in results if m.critical and m.failed]
    slo_fails = [c for c in checks if c.fails]
    for m in results:
        if m.failed:
            reasons.append(f"{m.name}: {m.classification}{' (critical)' if m.critical else ''}: {m.reason}")
    for c in slo_fails:
        reasons.append(f"SLO {c.slo}: {c.reason}")
    if critical or slo_fails:
        verdict = "fail"
        score = Fraction(0)
    elif missing and best is not None and best < Fraction(m_thr):
        verdict = "fail"
        reasons.append(f"even if {', '.join(m.name for m in missing)} passed, the score would be {float(best):.4g} (< marginal {m_thr})")
    elif missing or score is None:
        verdict = "inconclusive"
        for m in missing:
            reasons.append(f"{m.name}: {m.reason}")
        if score is None and not missing:
            reasons.append("no metric could be judged")
    elif score >= Fraction(p_thr):
        verdict = "pass"
    elif score >= Fraction(m_thr):
        verdict = "marginal"
    else:
        verdict = "fail"
    if verdict in ("pass", "marginal", "fail") and not critical and not slo_fails and score is not None:
        reasons.insert(0, f"score {float(score):.4g} (pass at {p_thr}, marginal at {m_thr})")
    return Verdict(verdict, score, results, checks, reasons, warn, (p_thr, m_thr), canary.confidence)
