"""Canary judge figures (issue 14): what resolution costs and what it buys.

Prints, for latency drawn from a lognormal (median 120 ms, sigma 0.35):

1. storage: distinct buckets a series-minute touches (rollup rows) at the documented bounds and at
   log-linear bounds of 1%, 2% and 5% relative width, for 100 and 1,000 requests a minute, and the
   number of bounds each layout registers;
2. judge time on bucket counts at 2% for 1e3 .. 1e7 observations a side (the statistics run over
   distinct buckets, so time grows with the layout, not with traffic), with p50/p95/p99 checks;
3. the exact Mann-Whitney distribution: time at 20, 50 and 80 observations a side;
4. detection: the smallest uniform regression the judge calls High at each resolution, for 1,000
   and 10,000 requests a side, and what it says of a healthy canary at each.

    .venv/bin/python benchmarks/canary.py
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from fractions import Fraction

import numpy as np

from vigil.deploy.canary import stats
from vigil.deploy.canary.judge import DistributionSamples, RatioSamples, judge
from vigil.histogram import log_linear_bounds
from vigil.spec import parse_spec
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS

SPEC = """\
version: 1
services: {api: {}}
canary:
  metrics:
    - {name: latency, metric: 'http_request_duration_seconds{service="api"}', direction: increase, critical: true,
       quantiles: {p50: 10%, p95: 10%, p99: 20%}}
    - {name: errors, ratio: {bad: 'http_requests{code=~"5.."}', total: http_requests}, ceiling: 5%}
"""
SPEC_SHIFT_ONLY = SPEC.replace(",\n       quantiles: {p50: 10%, p95: 10%, p99: 20%}", "")

LAYOUTS = {
    "documented": tuple(DOCUMENTED_BOUNDS),
    "log-linear 5%": log_linear_bounds("0.001", "3600", "0.05", include=DOCUMENTED_BOUNDS),
    "log-linear 2%": log_linear_bounds("0.001", "3600", "0.02", include=DOCUMENTED_BOUNDS),
    "log-linear 1%": log_linear_bounds("0.001", "3600", "0.01", include=DOCUMENTED_BOUNDS),
}


def counts(xs: np.ndarray, bounds) -> Counter:
    fl = [float(b) for b in bounds]
    up = [Fraction(b) for b in bounds]
    idx = np.searchsorted(fl, xs, side="left")
    c = Counter(idx.tolist())
    return Counter({(up[i] if i < len(up) else float("inf")): n for i, n in c.items()})


def lognormal(rng, n: int) -> np.ndarray:
    return rng.lognormal(np.log(0.12), 0.35, n)


def storage() -> None:
    print("1. storage: distinct buckets per series-minute (rollup rows), mean of 200 minutes")
    rng = np.random.default_rng(1)
    print(f"   {'layout':<16} {'bounds':>7} {'100 req/min':>12} {'1000 req/min':>13}")
    for name, b in LAYOUTS.items():
        fl = [float(x) for x in b]
        rows = []
        for per in (100, 1000):
            rows.append(np.mean([len(set(bisect.bisect_left(fl, x) for x in lognormal(rng, per))) for _ in range(200)]))
        print(f"   {name:<16} {len(b):>7} {rows[0]:>12.1f} {rows[1]:>13.1f}")


def judge_time() -> None:
    print("2. judge time at 2% buckets (p50/p95/p99 checks, ceiling), median of 3 runs")
    c = parse_spec(SPEC).canary
    b = LAYOUTS["log-linear 2%"]
    rng = np.random.default_rng(2)
    base = counts(lognormal(rng, 100_000), b)
    can = counts(lognormal(rng, 100_000), b)
    for n in (1_000, 100_000, 10_000_000):
        scale = n / 100_000
        hb = {v: max(1, round(k * scale)) for v, k in base.items()} if n != 100_000 else base
        hc = {v: max(1, round(k * scale)) for v, k in can.items()} if n != 100_000 else can
        samples = {"latency": DistributionSamples.of(hb, hc, b), "errors": RatioSamples(n // 1000, n, n // 1000, n)}
        times = []
        for _ in range(3):
            t = time.perf_counter()
            v = judge(c, samples)
            times.append(time.perf_counter() - t)
        print(f"   {n:>10,} a side: {sorted(times)[1] * 1000:7.1f} ms  ({len(hb)} + {len(hc)} buckets; verdict {v.verdict})")


def exact_time() -> None:
    print("3. exact Mann-Whitney p-value (no ties)")
    rng = np.random.default_rng(3)
    for n in (20, 50, 80):
        a, b = rng.normal(0, 1, n).tolist(), rng.normal(0.3, 1, n).tolist()
        t = time.perf_counter()
        r = stats.rank_test(stats.histogram(a, counted=False), stats.histogram(b, counted=False), exact=True)
        dt = time.perf_counter() - t
        auto = stats.rank_test(stats.histogram(a, counted=False), stats.histogram(b, counted=False)).p_method
        print(f"   {n:>3} a side: {dt * 1000:7.1f} ms (p = {r.p_greater:.4g}; chosen by default: {auto})")


def detection() -> None:
    print("4. smallest uniform latency regression called High (shift test only; 1% steps)")
    c = parse_spec(SPEC_SHIFT_ONLY).canary
    rng = np.random.default_rng(4)
    for n in (1_000, 10_000):
        base = lognormal(rng, n)
        fresh = lognormal(rng, n)
        line = []
        for name, b in LAYOUTS.items():
            found = "-"
            for pct in range(1, 51):
                can = fresh * (1 + pct / 100)
                v = judge(c, {"latency": DistributionSamples.of(counts(base, b), counts(can, b), b),
                              "errors": RatioSamples(0, n, 0, n)})
                if v.metrics[0].classification == "High":
                    found = f"+{pct}%"
                    break
            line.append(f"{name}: {found}")
        print(f"   {n:>6,} a side: " + "; ".join(line))
    print("   a healthy canary (the same distribution), 1,000 a side: the verdict at each layout")
    base, same = lognormal(rng, 1000), lognormal(rng, 1000)
    out = []
    for name, b in LAYOUTS.items():
        v = judge(c, {"latency": DistributionSamples.of(counts(base, b), counts(same, b), b), "errors": RatioSamples(0, 1000, 0, 1000)})
        m = v.metrics[0]
        out.append(f"{name}: {v.verdict} (resolution at the median {m.details.get('resolution')})")
    print("   " + "; ".join(out))


if __name__ == "__main__":
    storage()
    judge_time()
    exact_time()
    detection()
