"""The canary judge: statistics checked against scipy, golden cases, hypothesis properties, the
SLO-aware check, and ``vigil canary judge`` over telemetry pushed through the real ingest path."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact, mannwhitneyu

from canary_helpers import CANARY, T0, push_traffic, spec_text
from vigil.clock import isoformat, parse_time
from vigil.deploy.canary import stats
from vigil.deploy.canary.judge import DistributionSamples, RatioSamples, SloInput, judge
from vigil.slo.spec import FreezeWhen
from vigil.spec import load_spec, parse_spec

SPEC = parse_spec(spec_text())
C = SPEC.canary
assert C is not None

BASE_LAT = {Fraction(2, 100): 600, Fraction(5, 100): 300, Fraction(12, 100): 100}


def dist(b: dict, c: dict) -> DistributionSamples:
    return DistributionSamples.of(b, c)


def canary_text(base: str = CANARY, **over: str) -> str:
    """``base`` with top-level fields of the canary section replaced or added (YAML snippets)."""
    lines = base.splitlines()
    for k, v in over.items():
        hit = [i for i, ln in enumerate(lines) if ln.startswith(f"  {k}:")]
        if hit:
            lines[hit[0]] = f"  {k}: {v}"
        else:
            lines.append(f"  {k}: {v}")
    return "\n".join(lines) + "\n"


def canary_with(base: str = CANARY, **over: str):
    return parse_spec(spec_text(canary_text(base, **over))).canary


# -- statistics against scipy ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mann_whitney_matches_scipy_on_expanded_samples(seed):
    rng = np.random.default_rng(seed)
    a = np.round(rng.lognormal(0, 0.6, 80), 1)  # rounding makes plenty of ties
    b = np.round(rng.lognormal(0.15, 0.6, 90), 1)
    r = stats.rank_test(stats.histogram(a.tolist(), counted=False), stats.histogram(b.tolist(), counted=False))
    for alt, ours in (("greater", r.p_greater), ("less", r.p_less)):
        ref = mannwhitneyu(b, a, alternative=alt, method="asymptotic", use_continuity=True)
        assert ours == pytest.approx(ref.pvalue, rel=1e-12, abs=1e-300)
        assert float(r.u) == ref.statistic
    assert float(r.shift) == pytest.approx(float(np.median(np.subtract.outer(b, a))))
    assert float(r.median_baseline) == pytest.approx(float(np.median(a)))
    assert r.shift_low <= r.shift <= r.shift_high


def test_fisher_matches_scipy_and_clopper_pearson_is_exact():
    for bb, bt, cb, ct in ((0, 10000, 8, 10000), (3, 500, 9, 400), (50, 1000, 40, 1000)):
        t = stats.ratio_test(bb, bt, cb, ct)
        ref_g = fisher_exact([[cb, ct - cb], [bb, bt - bb]], alternative="greater").pvalue
        ref_l = fisher_exact([[cb, ct - cb], [bb, bt - bb]], alternative="less").pvalue
        assert t.p_greater == pytest.approx(ref_g, rel=1e-9)
        assert t.p_less == pytest.approx(ref_l, rel=1e-9)
    # the lower bound: P(X >= k | n, p_low) = 1 - confidence
    from scipy.stats import binom

    lo = float(stats.ratio_lower_bound(8, 40, 0.95))
    assert binom.sf(7, 40, lo) == pytest.approx(0.05, rel=1e-6)
    assert stats.ratio_lower_bound(0, 40, 0.95) == 0


def test_bucket_counts_scale_to_millions_exactly():
    b = {Fraction(1, 10): 3_000_000, Fraction(2, 10): 1_000_000}
    c = {Fraction(1, 10): 2_980_000, Fraction(2, 10): 1_020_000}
    r = stats.rank_test(stats.histogram(b), stats.histogram(c))
    # exact U: canary higher than baseline + half the ties
    assert r.u == Fraction(1_020_000 * 3_000_000) + Fraction(2_980_000 * 3_000_000 + 1_020_000 * 1_000_000, 2)
    assert r.p_greater < 1e-50 and r.effect == Fraction(5, 1000)  # 0.5% moved one bucket up: significant...
    v = judge(C, {"latency": DistributionSamples.of(b, c), "errors": RatioSamples(0, 4_000_000, 0, 4_000_000)})
    lat = v.metrics[0]
    assert lat.classification == "Pass" and "effect is small" in lat.reason  # ...but far below the effect floor
    assert v.verdict == "pass"


# -- golden cases ---------------------------------------------------------------------------------


def test_identical_samples_pass_with_score_100():
    v = judge(C, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(5, 1000, 5, 1000)})
    assert v.verdict == "pass" and v.score == 100
    assert [m.classification for m in v.metrics] == ["Pass", "Pass"]
    d = v.to_dict()
    assert d["metrics"][0]["p_value"] > 0.4 and d["metrics"][0]["effect"] == 0 and d["metrics"][0]["shift"] == 0


def test_a_clear_latency_shift_fails_a_critical_metric():
    shifted = {Fraction(5, 100): 600, Fraction(12, 100): 300, Fraction(25, 100): 100}
    v = judge(C, {"latency": dist(BASE_LAT, shifted), "errors": RatioSamples(5, 1000, 5, 1000)})
    lat = v.to_dict()["metrics"][0]
    assert lat["classification"] == "High" and lat["critical"]
    assert lat["p_value"] < 1e-10 and lat["effect"] > 0.5
    assert lat["shift"] == pytest.approx(0.03) and lat["shift_ci"][0] > 0
    assert v.verdict == "fail" and v.score == 0
    assert any("latency: High (critical)" in r for r in v.reasons)


def test_direction_decides_what_is_bad():
    faster = {Fraction(1, 100): 600, Fraction(2, 100): 300, Fraction(5, 100): 100}
    c = parse_spec(spec_text(CANARY.replace("direction: increase, critical: true}\n    - {name: errors", "direction: decrease, critical: true}\n    - {name: errors"))).canary
    assert judge(C, {"latency": dist(BASE_LAT, faster), "errors": RatioSamples(0, 1000, 0, 1000)}).metrics[0].classification == "Pass"
    assert judge(c, {"latency": dist(BASE_LAT, faster), "errors": RatioSamples(0, 1000, 0, 1000)}).metrics[0].classification == "Low"
    e = parse_spec(spec_text(CANARY.replace("direction: increase, critical: true}\n    - {name: errors", "direction: either, critical: true}\n    - {name: errors"))).canary
    assert judge(e, {"latency": dist(BASE_LAT, faster), "errors": RatioSamples(0, 1000, 0, 1000)}).metrics[0].classification == "Low"


def test_sparse_errors_are_judged_by_the_exact_proportion_test():
    # 8 errors in 10 000 canary requests against none in 10 000: Fisher's exact p = 0.0039
    v = judge(C, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(0, 10000, 8, 10000)})
    err = v.to_dict()["metrics"][1]
    assert err["test"] == "fisher-exact" and err["classification"] == "High"
    assert err["p_value"] == pytest.approx(0.0039, abs=1e-4)
    assert v.verdict == "fail"
    # a rank test over the per-minute error ratios (10 minutes of 1000 requests each side, the 8
    # errors in 2 minutes) sees mostly zeros and does not call it: the judge tests counts instead
    per_minute_canary = [0.0] * 8 + [0.004, 0.004]
    assert mannwhitneyu(per_minute_canary, [0.0] * 10, alternative="greater").pvalue > 0.05
    # one error against none is noise; 3 against 2 is noise
    assert judge(C, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(0, 10000, 1, 10000)}).metrics[1].classification == "Pass"
    assert judge(C, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(2, 10000, 3, 10000)}).verdict == "pass"


def test_too_little_data_is_inconclusive_never_a_silent_pass():
    few = {Fraction(2, 100): 30, Fraction(5, 100): 19}  # 49 < min_samples 50
    v = judge(C, {"latency": dist(BASE_LAT, few), "errors": RatioSamples(0, 1000, 0, 1000)})
    assert v.metrics[0].classification == "NoData"
    assert v.verdict == "inconclusive"
    assert "too few observations: baseline 1000, canary 49; 50 each needed" in v.metrics[0].reason
    # nothing at all: inconclusive with no score
    v = judge(C, {})
    assert v.verdict == "inconclusive" and v.score is None and v.to_dict()["score"] is None


def test_no_data_policies():
    text = CANARY.replace("direction: increase, critical: true}\n    - {name: errors", "direction: increase, no_data: fail}\n    - {name: errors")
    c = parse_spec(spec_text(text)).canary
    v = judge(c, {"errors": RatioSamples(0, 1000, 0, 1000)})
    assert v.metrics[0].counted and v.score == 50 and v.verdict == "fail"
    text = CANARY.replace("direction: increase, critical: true}\n    - {name: errors", "direction: increase, no_data: ignore}\n    - {name: errors")
    c = parse_spec(spec_text(text)).canary
    v = judge(c, {"errors": RatioSamples(0, 1000, 0, 1000)})
    assert v.verdict == "pass" and v.score == 100
    assert any("left out of the score" in w for w in v.warnings)
    with pytest.raises(Exception, match="critical metric cannot ignore"):
        parse_spec(spec_text(CANARY.replace("critical: true}", "critical: true, no_data: ignore}", 1)))


def test_weighted_score_marginal_and_fail():
    text = """\
canary:
  metrics:
    - {name: a, ratio: {bad: 'x{code="5"}', total: x}, weight: 3}
    - {name: b, ratio: {bad: 'y{code="5"}', total: y}, weight: 1}
    - {name: c, ratio: {bad: 'z{code="5"}', total: z}, weight: 1}
  thresholds: {pass: 95, marginal: 75}
"""
    c = parse_spec(spec_text(text)).canary
    ok, bad = RatioSamples(0, 1000, 0, 1000), RatioSamples(0, 1000, 50, 1000)
    v = judge(c, {"a": ok, "b": ok, "c": bad})
    assert v.verdict == "marginal" and v.score == 80
    v = judge(c, {"a": bad, "b": ok, "c": ok})
    assert v.verdict == "fail" and v.score == 40
    # c missing: the score over a and b is 100 but c could still fail it: inconclusive
    v = judge(c, {"a": ok, "b": ok})
    assert v.verdict == "inconclusive" and v.score == 100
    # a failed and c missing: even if c passed, 2/5 = 40 < 75: fail, not inconclusive
    v = judge(c, {"a": bad, "b": ok})
    assert v.verdict == "fail" and any("even if c passed" in r for r in v.reasons)


def test_margin_and_effect_floor():
    shifted = {Fraction(2, 100): 500, Fraction(5, 100): 350, Fraction(12, 100): 150}
    v = judge(C, {"latency": dist(BASE_LAT, shifted), "errors": RatioSamples(0, 1000, 0, 1000)})
    assert v.metrics[0].classification == "Pass" and "effect is small" in v.metrics[0].reason
    lower_floor = canary_with(min_effect="0.05")
    assert judge(lower_floor, {"latency": dist(BASE_LAT, shifted), "errors": RatioSamples(0, 1000, 0, 1000)}).metrics[0].classification == "High"
    # a 30 ms shift on a 20 ms median is within a 200% margin, not within 100%
    far = {Fraction(5, 100): 600, Fraction(12, 100): 300, Fraction(25, 100): 100}
    for margin, cls in (("200%", "Pass"), ("100%", "High")):
        c = parse_spec(spec_text(CANARY.replace("direction: increase, critical: true}\n    - {name: errors",
                                                f"direction: increase, critical: true, margin: '{margin}'}}\n    - {{name: errors"))).canary
        assert judge(c, {"latency": dist(BASE_LAT, far), "errors": RatioSamples(0, 1000, 0, 1000)}).metrics[0].classification == cls
    # a ratio margin: +0.5 percentage points tolerated
    c = parse_spec(spec_text(CANARY.replace("direction: increase, critical: true}\n  thresholds", "direction: increase, critical: true, margin: 0.5%}\n  thresholds"))).canary
    assert judge(c, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(0, 10000, 30, 10000)}).metrics[1].classification == "Pass"
    assert judge(c, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(0, 10000, 80, 10000)}).metrics[1].classification == "High"


# -- SLO-aware ------------------------------------------------------------------------------------


def slo_input(bad: int, valid: int, *, objective="0.999", consumed="0.1", rules=()) -> SloInput:
    return SloInput("api-availability", "api", "ratio", Decimal(objective), 30 * 86400, True,
                    None if consumed is None else Decimal(consumed), Decimal(1), bad, valid, tuple(rules), ("errors",))


def test_a_canary_like_its_baseline_fails_when_full_traffic_would_page():
    # 2% errors on both: the comparison passes, but 2% against a 99.9% objective burns 20x > 14.4
    same = RatioSamples(200, 10000, 200, 10000)
    v = judge(C, {"latency": dist(BASE_LAT, BASE_LAT), "errors": same}, [slo_input(200, 10000)])
    assert [m.classification for m in v.metrics] == ["Pass", "Pass"]
    assert v.verdict == "fail" and v.score == 0
    s = v.to_dict()["slos"][0]
    assert s["fails"] and s["page_threshold"] == 14.4 and s["burn_rate_at_full_traffic"] == 20
    assert 14.4 < s["burn_rate_lower"] < 20
    assert "page threshold 14.4x" in v.reasons[-1]
    # 1% burns 10x: no page
    assert judge(C, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(100, 10000, 100, 10000)}, [slo_input(100, 10000)]).verdict == "pass"
    # three errors in 60 requests is 5% but the evidence is thin: the lower bound does not page
    v = judge(C, {"latency": dist(BASE_LAT, BASE_LAT), "errors": RatioSamples(0, 1000, 3, 60)}, [slo_input(3, 60)])
    assert not v.slos[0].fails


def test_a_canary_fails_when_it_would_leave_less_budget_than_the_policy_allows():
    half = ("half-budget", FreezeWhen(budget_consumed_over=Decimal("0.5")))
    c = canary_with(slo_horizon="3d")
    same = RatioSamples(30, 10000, 30, 10000)  # 0.3%: burn 3 against 99.9%
    # 45% consumed + 3 x 3d/30d = 75% > 50%: the canary would trip the freeze rule
    v = judge(c, {"latency": dist(BASE_LAT, BASE_LAT), "errors": same}, [slo_input(30, 10000, consumed="0.45", rules=[half])])
    s = v.to_dict()["slos"][0]
    assert v.verdict == "fail" and s["freeze_rules_tripped"] == ["half-budget"]
    assert 0.5 < s["budget_consumed_projected"] < 0.75
    # with a 1d horizon: 45% + ~10% still trips; at 30% consumed it does not
    assert judge(C, {"errors": same, "latency": dist(BASE_LAT, BASE_LAT)}, [slo_input(30, 10000, consumed="0.30", rules=[half])]).verdict == "pass"
    # already past the rule before the canary: a warning, the gate's business
    v = judge(C, {"errors": same, "latency": dist(BASE_LAT, BASE_LAT)}, [slo_input(30, 10000, consumed="0.60", rules=[half])])
    assert v.verdict == "pass" and any("already trips the freeze rule half-budget" in w for w in v.warnings)


# -- properties ------------------------------------------------------------------------------------

values = st.integers(min_value=0, max_value=40)
samples = st.lists(values, min_size=1, max_size=60)


def _canary(min_samples: int = 5):
    return canary_with(min_samples=str(min_samples))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples, samples, st.randoms(use_true_random=False))
def test_the_verdict_does_not_depend_on_sample_order(b, c, rnd: random.Random):
    cs = _canary()
    v1 = judge(cs, {"latency": DistributionSamples.of([(x, 1) for x in b], [(x, 1) for x in c]), "errors": RatioSamples(0, 100, 0, 100)})
    b2, c2 = list(b), list(c)
    rnd.shuffle(b2)
    rnd.shuffle(c2)
    # shuffled, and grouped differently: the baseline as (value, count) pairs in a random order
    grouped = list(Counter(b2).items())
    rnd.shuffle(grouped)
    v2 = judge(cs, {"latency": DistributionSamples.of(grouped, [(x, 1) for x in c2]), "errors": RatioSamples(0, 100, 0, 100)})
    assert v1.to_dict() == v2.to_dict()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples, samples, st.sampled_from([Fraction(1, 1000), Fraction(1, 3), Fraction(2), Fraction(7, 2), Fraction(1000)]))
def test_scaling_both_samples_leaves_the_verdict_unchanged(b, c, k):
    """Multiplying every value of both samples by k (ms -> s, s -> ms) changes nothing but the
    shift and the medians, which scale by k."""
    cs = canary_with(min_samples="5", min_effect="0.1")
    cs_margin = canary_with(CANARY.replace("direction: increase, critical: true}", "direction: either, critical: true, margin: 10%}", 1), min_samples="5")
    for spec_ in (cs, cs_margin):
        base = judge(spec_, {"latency": DistributionSamples.of([(x, 1) for x in b], [(x, 1) for x in c])})
        scaled = judge(spec_, {"latency": DistributionSamples.of([(Fraction(x) * k, 1) for x in b], [(Fraction(x) * k, 1) for x in c])})
        assert base.verdict == scaled.verdict and base.score == scaled.score
        mb, ms_ = base.metrics[0].details, scaled.metrics[0].details
        assert base.metrics[0].classification == scaled.metrics[0].classification
        for key in ("p_value", "p_greater", "p_less", "u", "effect"):
            assert mb.get(key) == ms_.get(key), key
    if len(b) >= 1 and len(c) >= 1:
        r1 = stats.rank_test(stats.histogram(b, counted=False), stats.histogram(c, counted=False))
        r2 = stats.rank_test(stats.histogram([Fraction(x) * k for x in b], counted=False), stats.histogram([Fraction(x) * k for x in c], counted=False))
        assert r2.shift == r1.shift * k and r2.shift_low == r1.shift_low * k and r2.median_baseline == r1.median_baseline * k
        assert (r2.p_greater, r2.p_less, r2.effect) == (r1.p_greater, r1.p_less, r1.effect)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples.filter(lambda x: len(x) >= 5), samples.filter(lambda x: len(x) >= 5), st.integers(min_value=2, max_value=50))
def test_scaling_both_samples_counts_only_adds_evidence(b, c, factor):
    """Counts x c: the effect, medians and shift are unchanged (they describe the distributions);
    p-values can only fall (more of the same evidence), so a failing canary keeps failing, and
    samples with the same distribution keep passing at any volume."""
    hb = stats.histogram(b, counted=False)
    hc = stats.histogram(c, counted=False)
    r1 = stats.rank_test(hb, hc)
    r2 = stats.rank_test([(v, n * factor) for v, n in hb], [(v, n * factor) for v, n in hc])
    assert (r2.effect, r2.shift, r2.median_baseline, r2.median_canary) == (r1.effect, r1.shift, r1.median_baseline, r1.median_canary)
    if r1.effect > 0:
        assert r2.p_greater <= r1.p_greater + 1e-15
    if r1.effect < 0:
        assert r2.p_less <= r1.p_less + 1e-15
    cs = _canary()
    v1 = judge(cs, {"latency": DistributionSamples(hb, hc), "errors": RatioSamples(0, 100, 0, 100)})
    v2 = judge(cs, {"latency": DistributionSamples(tuple((v, n * factor) for v, n in hb), tuple((v, n * factor) for v, n in hc)),
                    "errors": RatioSamples(0, 100 * factor, 0, 100 * factor)})
    if v1.verdict == "fail":
        assert v2.verdict == "fail"
    same = judge(cs, {"latency": DistributionSamples(hb, tuple((v, n * factor) for v, n in hb)), "errors": RatioSamples(1, 100, factor, 100 * factor)})
    assert same.verdict == "pass"


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 50), st.integers(100, 2000), st.integers(0, 50), st.integers(100, 2000), st.integers(2, 20))
def test_ratio_test_counts_scale_monotonically(bb, bt, cb, ct, factor):
    t1 = stats.ratio_test(bb, bt, cb, ct)
    t2 = stats.ratio_test(bb * factor, bt * factor, cb * factor, ct * factor)
    if Fraction(cb, ct) > Fraction(bb, bt):
        assert t2.p_greater <= t1.p_greater + 1e-12
    if Fraction(cb, ct) == Fraction(bb, bt):  # the same error ratio passes at any volume
        assert judge(_canary(), {"errors": RatioSamples(bb * factor, bt * factor, cb * factor, ct * factor)}).metrics[1].classification == "Pass"


# -- through the store and the CLI -------------------------------------------------------------------


@pytest.fixture
def setup(tmp_path: Path, store):
    p = tmp_path / "vigil.yaml"
    p.write_text(spec_text())
    loaded = load_spec(p)
    return p, loaded.spec, store, f"sqlite:///{tmp_path / 'state.db'}"


def judge_cli(cli, p, db, *extra, frm=T0, to="2026-11-20T12:30:00Z", baseline='version="v1"', canary='version="v2"'):
    return cli("canary", "judge", "--baseline", baseline, "--canary", canary, "--from", frm, "--to", to,
               "--spec", p, "--db", db, "--json", *extra, now="2026-11-20T12:31:00Z")


def test_cli_contract_pass(cli, setup):
    p, spec, store, db = setup
    push_traffic(store, spec, T0, 30, "v1", per_minute=100)
    push_traffic(store, spec, T0, 30, "v2", per_minute=10)
    r = judge_cli(cli, p, db)
    assert r.code == 0, r.out + r.err
    d = r.json()
    assert d["verdict"] == "pass" and d["score"] == 100
    assert [(m["name"], m["classification"]) for m in d["metrics"]] == [("latency", "Pass"), ("errors", "Pass")]
    assert d["metrics"][0]["n_canary"] == 300 and d["metrics"][0]["n_baseline"] == 3000
    assert d["metrics"][1]["canary_total"] == 300
    assert {s["slo"] for s in d["slos"]} == {"api-availability", "api-latency"}
    assert d["baseline"] == 'version="v1"' and d["from"] == T0 and d["verdict_id"] == 1
    # the verdict is recorded for the gate and for history
    from vigil.deploy.canary.records import latest_verdict

    assert latest_verdict(store, "api")["verdict"] == "pass"
    h = cli("canary", "history", "--spec", p, "--db", db, "--json")
    assert h.code == 0 and h.json()["verdicts"][0]["id"] == 1


def test_cli_contract_fail_on_5xx_spike_and_inconclusive_on_thin_data(cli, setup):
    p, spec, store, db = setup
    push_traffic(store, spec, T0, 30, "v1", per_minute=100)
    push_traffic(store, spec, T0, 30, "v2", per_minute=10, errors_per_minute=2)
    r = judge_cli(cli, p, db)
    assert r.code == 1
    d = r.json()
    assert d["verdict"] == "fail" and d["score"] == 0
    assert {m["name"]: m["classification"] for m in d["metrics"]}["errors"] == "High"
    assert [s["slo"] for s in d["slos"] if s["fails"]] == ["api-availability"]
    # four minutes of canary traffic are 40 requests: too few for min_samples 50
    r = judge_cli(cli, p, db, to="2026-11-20T12:04:00Z")
    assert r.code == 1 and r.json()["verdict"] == "inconclusive"
    # readable output names the verdict and the metrics
    r = cli("canary", "judge", "--baseline", 'version="v1"', "--canary", 'version="v2"', "--from", T0, "--to", "2026-11-20T12:30:00Z",
            "--spec", p, "--db", db, now="2026-11-20T12:31:00Z")
    assert r.code == 1 and r.out.startswith("FAIL canary version=\"v2\"") and "errors" in r.out and "SLO api-availability: fail" in r.out


def test_cli_labels_select_series_with_extra_matchers_and_braces(cli, setup):
    p, spec, store, db = setup
    push_traffic(store, spec, T0, 30, "v1", per_minute=100)
    push_traffic(store, spec, T0, 30, "v2", per_minute=100, service="web")  # another service's v2 must not count
    r = judge_cli(cli, p, db, canary='{version="v2",zone=~".*"}')
    assert r.code == 1 and r.json()["verdict"] == "inconclusive"
    assert r.json()["metrics"][0]["n_canary"] == 0


def test_cli_usage_errors(cli, setup, tmp_path):
    p, spec, store, db = setup
    for args, msg in (
        (dict(canary='version=>"v2"'), "unknown label matcher"),
        (dict(canary='version="v1"'), "same series"),
        (dict(to="2026-11-20T11:00:00Z"), "window is empty"),
        (dict(frm="yesterday"), "--from: cannot read time"),
    ):
        r = judge_cli(cli, p, db, **args)
        assert r.code == 2, (args, r.out, r.err)
        assert msg in r.err, (msg, r.err)
    bare = tmp_path / "bare.yaml"
    bare.write_text("version: 1\nservices: {api: {}}\n")
    r = judge_cli(cli, bare, db)
    assert r.code == 2 and "no `canary:` section" in r.err
    bad_ref = tmp_path / "ref.yaml"
    bad_ref.write_text(spec_text(CANARY.replace("direction: increase, critical: true}\n  thresholds", "direction: increase, critical: true, slos: [api-availabilty]}\n  thresholds")))
    r = judge_cli(cli, bad_ref, db)
    assert r.code == 2 and "canary.metrics[1].slos[0]: unknown SLO 'api-availabilty'; did you mean 'api-availability'?" in r.err
    svc = tmp_path / "svc.yaml"
    svc.write_text(spec_text(CANARY.replace("service: api", "service: apii")))
    r = judge_cli(cli, svc, db)
    assert r.code == 2 and "canary.service: unknown service 'apii'" in r.err


def test_cli_store_failure_is_an_external_error(cli, setup, tmp_path):
    p, *_ = setup
    (tmp_path / "notadb").write_text("this is not a database " * 100)
    r = judge_cli(cli, p, f"sqlite:///{tmp_path / 'notadb'}")
    assert r.code == 3, r.out + r.err
    assert "error:" in r.err and "hint:" in r.err


def test_spec_section_errors_name_the_path():
    from vigil.errors import SpecError

    cases = (
        ("metrics: []", "canary.metrics needs at least one metric"),
        ("metrics: [{name: a, metric: x, ratio: {bad: y, total: z}}]", "exactly one of `metric`"),
        ("metrics: [{name: a, metric: x}]\n  thresholds: {pass: 70, marginal: 80}", "marginal cannot be above"),
        ("metrics: [{name: a, metric: x}]\n  run: {steps: [50, 25], hooks: {set_weight: {command: [x]}}}", "steps must be increasing"),
        ("metrics: [{name: a, metric: x}]\n  run: {interval: 90s, hooks: {set_weight: {command: [x]}}}", "whole minutes"),
        ("metrics: [{name: a, metric: x}]\n  run: {hooks: {set_weight: {webhook: {url: 'http://[fd00:ec2::254]/', secret_env: S}}}}", "cloud metadata address"),
        ("metrics: [{name: a, metric: x}]\n  run: {hooks: {set_weight: {webhook: {url: 'http://169.254.10.1/', secret_env: S}}}}", "link-local"),
        ("metrics: [{name: a, metric: x}]\n  run: {hooks: {set_weight: {webhook: {url: 'http://h.example/'}}}}", "never put the secret itself"),
        ("metrics: [{name: a, metric: x}]\n  run: {hooks: {set_weight: {webhook: {url: 'http://u:p@h.example/', secret_env: S}}}}", "must not carry credentials"),
    )
    for body, msg in cases:
        with pytest.raises(SpecError) as e:
            parse_spec(f"version: 1\nservices: {{api: {{}}}}\ncanary:\n  {body}\n")
        assert msg in str(e.value), (body, str(e.value))
        assert "canary" in str(e.value)
    ok = parse_spec("version: 1\nservices: {api: {}}\ncanary:\n  metrics: [{name: a, metric: x}]\n  run: {hooks: {set_weight: "
                    "{webhook: {url: 'http://169.254.169.254/', secret_env: S, allow_link_local: true}}}}\n")
    assert ok.canary.run.hooks.set_weight.webhook.allow_link_local


def test_embedded_source_reads_bucket_counts_over_hours_and_ragged_minutes(store):
    """``EmbeddedSource.observation_buckets``: whole hours from the hourly rollup plus the ragged
    minutes at both ends, summed over every matching series, exactly what was pushed."""
    from helpers import push, t
    from vigil.telemetry.ingest import INF_NS, seconds_to_ns
    from vigil.telemetry.selector import parse_selector
    from vigil.telemetry.source import EmbeddedSource

    rows = []
    start = t("2026-11-20T09:00:00Z")
    for i in range(150):  # 2.5 hours
        ts = isoformat(start + timedelta(minutes=i))
        for version, v, n in (("v1", 0.02, 3), ("v1", 0.3, 1), ("v2", 7000.0, 2), ("v2", 0.02, 1)):
            rows.append({"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api", "version": version}, "observe": v, "count": n})
    push(store, SPEC, rows, "2026-11-20T12:00:00Z")
    src = EmbeddedSource(store)
    m0 = int(start.timestamp()) // 60
    sel = parse_selector('http_request_duration_seconds{service="api",version="v1"}')
    # 20 ms is a bound of the store's 2% layout (with the documented bounds only it counted at 25 ms)
    assert src.observation_buckets(sel, m0 + 10, m0 + 140) == [(seconds_to_ns(Decimal("0.02")), 390), (seconds_to_ns(Decimal("0.3")), 130)]
    both = src.observation_buckets(parse_selector('http_request_duration_seconds{service="api"}'), m0, m0 + 150)
    assert both == [(seconds_to_ns(Decimal("0.02")), 600), (seconds_to_ns(Decimal("0.3")), 150), (INF_NS, 300)]
    assert src.observation_buckets(sel, m0 + 200, m0 + 300) == []


def test_the_overflow_bucket_keeps_every_number_finite():
    import json

    b = {Fraction(1, 10): 100}
    c = {Fraction(1, 10): 40, float("inf"): 60}  # 60 observations above the highest bound
    v = judge(C, {"latency": dist(b, c), "errors": RatioSamples(0, 100, 0, 100)})
    d = v.to_dict()
    json.dumps(d, allow_nan=False)  # no NaN or Infinity reaches a user
    lat = d["metrics"][0]
    assert lat["classification"] == "High" and lat["canary_median"] == 0.1 and lat["shift"] == 0


def test_judge_release_verdict_feeds_the_deploy_gate(cli, setup, monkeypatch):
    p, spec, store, db = setup
    push_traffic(store, spec, T0, 30, "v1", per_minute=100)
    push_traffic(store, spec, T0, 30, "v2", per_minute=10, errors_per_minute=2)
    # a verdict for a release gates production: recorded at the real clock only (issue 14)
    r = judge_cli(cli, p, db, "--release", "v2")
    assert r.code == 2 and "VIGIL_NOW pins the clock" in r.err and "release 'v2'" in r.err
    from vigil.deploy.verdicts import latest_verdicts

    assert latest_verdicts(store, "api", "v2") == {}
    monkeypatch.delenv("VIGIL_NOW")
    r = cli("canary", "judge", "--baseline", 'version="v1"', "--canary", 'version="v2"', "--from", T0, "--to", "2026-11-20T12:30:00Z",
            "--release", "v2", "--spec", p, "--db", db, "--json")
    assert r.code == 1, r.err
    v = latest_verdicts(store, "api", "v2")["canary"]
    assert v.verdict == "fail" and abs(parse_time(v.recorded_at).timestamp() - time.time()) < 600
    g = cli("gate", "deploy", "--service", "api", "--release", "v2", "--what-if", "--spec", p, "--db", db, "--json", now="2026-11-20T12:31:00Z")
    assert g.code == 1
    assert g.json()["blocks"][0].startswith("canary verdict for release 'v2' is fail")
    # another release has no canary verdict: nothing blocks it (the policy requires none)
    g = cli("gate", "deploy", "--service", "api", "--release", "v3", "--what-if", "--spec", p, "--db", db, "--json", now="2026-11-20T12:31:00Z")
    assert g.json()["blocks"] == []
    # without --release the verdict is not a release's and a pinned clock is fine (a replay)
    assert judge_cli(cli, p, db).code == 1
