"""Canary judge figures (issue 14): what resolution costs and what it buys.

Prints, for latency drawn from a lognormal (median 120 ms, sigma 0.35) unless said:

1. storage, through the real ingest path into real SQLite stores, before (``telemetry.bucket_width:
   null``: the documented bounds and the spec's thresholds, what vigil stored before issue 14) and
   after (the default 2%, and 1% / 5% for comparison): rollup rows per series-minute and per
   series-hour, bytes of the two observation tables per series-minute (SQLite's dbstat), and the
   push rate, for the example platform's traffic (``vigil simulate``'s steady scenario: per-minute
   aggregates on its latency grid) and for one series of 100 and 1,000 raw requests a minute;
2. judge time at 2% for 1e3 .. 1e7 observations a side (the statistics run over distinct buckets,
   so time grows with the layout, not with traffic), with p50/p95/p99 checks;
3. the exact Mann-Whitney distribution: time at 20, 50 and 80 observations a side;
4. detection: the smallest uniform regression the judge calls High at each resolution, for 1,000
   and 10,000 requests a side, and what it says of a healthy canary at each.

    .venv/bin/python -P benchmarks/canary.py [--storage-only] [--minutes N]

(``-P``: benchmarks/secrets.py would otherwise shadow the standard library's ``secrets``.)
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from fractions import Fraction

import numpy as np

from vigil.deploy.canary import stats
from vigil.deploy.canary.judge import DistributionSamples, RatioSamples, judge
from vigil.histogram import storage_bounds
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

def store_layout(width: str) -> tuple[Decimal, ...]:
    """The store's layout at ``telemetry.bucket_width``: log-linear from 1 us to 1 h and the documented bounds."""
    return tuple(sorted(set(storage_bounds(Decimal(width))) | set(DOCUMENTED_BOUNDS)))


LAYOUTS = {
    "documented": tuple(DOCUMENTED_BOUNDS),
    "log-linear 5%": store_layout("0.05"),
    "log-linear 2%": store_layout("0.02"),
    "log-linear 1%": store_layout("0.01"),
}


def counts(xs: np.ndarray, bounds) -> Counter:
    fl = [float(b) for b in bounds]
    up = [Fraction(b) for b in bounds]
    idx = np.searchsorted(fl, xs, side="left")
    c = Counter(idx.tolist())
    return Counter({(up[i] if i < len(up) else float("inf")): n for i, n in c.items()})


def lognormal(rng, n: int) -> np.ndarray:
    return rng.lognormal(np.log(0.12), 0.35, n)


def _push_all(store, spec, lines: list[str], now) -> float:
    from vigil.telemetry.push import Ingestor

    ing = Ingestor(spec, store)
    _ = ing.bounds_ns  # the layout registered before the clock starts
    t0 = time.perf_counter()
    for i in range(0, len(lines), 50_000):
        r = ing.push_lines(list(enumerate(lines[i : i + 50_000], 1)), now)
        assert r.rejected_count == 0, r.rejected[:3]
    return time.perf_counter() - t0


def _figures(store) -> tuple[float, float, float, int]:
    """(rows per series-minute, rows per series-hour, bytes per series-minute, observation series)
    of the observation rollups (minutes and hours), bytes by SQLite's dbstat."""
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        q = lambda sql: conn.execute(sa.text(sql)).scalar_one()  # noqa: E731
        rows_m = q("SELECT count(*) FROM obs_minute")
        sm = q("SELECT count(*) FROM (SELECT DISTINCT series_id, minute FROM obs_minute)")
        rows_h = q("SELECT count(*) FROM obs_hour")
        sh = q("SELECT count(*) FROM (SELECT DISTINCT series_id, hour FROM obs_hour)")
        nbytes = q("SELECT sum(pgsize) FROM dbstat WHERE name IN ('obs_minute', 'obs_hour')")
        series = q("SELECT count(DISTINCT series_id) FROM obs_minute")
    return rows_m / sm, rows_h / sh, nbytes / sm, series


def storage(minutes: int) -> None:
    import tempfile
    from datetime import datetime, timezone
    from pathlib import Path

    from vigil.simulate.generator import Simulator
    from vigil.simulate.scenarios import SCENARIOS
    from vigil.spec import load_spec
    from vigil.store import open_store

    root = Path(__file__).resolve().parent.parent
    example = load_spec(root / "examples" / "platform" / "vigil.yaml").spec
    start = 1_795_176_000 // 60 - minutes  # minutes before 2026-11-20T12:00Z
    now = datetime.fromtimestamp((start + minutes) * 60, tz=timezone.utc)
    sim = Simulator(SCENARIOS["steady"], seed=0)
    traffic: dict[str, list[str]] = {"example platform (steady)": [r[3] for m in range(start, start + minutes) for r in sim.minute(m)]}
    rng = np.random.default_rng(1)
    for per in (100, 1000):
        lines = []
        for m in range(start, start + minutes):
            ts = datetime.fromtimestamp(m * 60 + 30, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            head = f'{{"ts":"{ts}","metric":"http_request_duration_seconds","labels":{{"service":"api"}},"observe":'
            lines += [f"{head}{x!r}}}" for x in np.round(lognormal(rng, per), 6).tolist()]
        traffic[f"{per} req/min, 1 series"] = lines
    print(f"1. storage through the real ingest path (SQLite), {minutes} minutes of each traffic")
    for name, b in LAYOUTS.items():
        print(f"   {name:<16} {len(b):>5} bounds")
    print(f"   {'traffic':<27} {'layout':<20} {'series':>6} {'rows/series-min':>16} {'rows/series-hour':>17}"
          f" {'bytes/series-min':>17} {'lines/s':>9}")
    widths = {"before: documented": None, "after: 2% (default)": Decimal("0.02"), "1%": Decimal("0.01"), "5%": Decimal("0.05")}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        for tname, lines in traffic.items():
            for i, (lname, width) in enumerate(widths.items()):
                spec = example.model_copy(update={"telemetry": example.telemetry.model_copy(update={"bucket_width": width})})
                store = open_store(f"sqlite:///{Path(tmp) / f'{len(tname)}-{i}.db'}")
                dt = _push_all(store, spec, lines, now)
                per_m, per_h, nbytes, series = _figures(store)
                store.close()
                print(f"   {tname if i == 0 else '':<27} {lname:<20} {series:>6} {per_m:>16.1f} {per_h:>17.1f}"
                      f" {nbytes:>17.0f} {len(lines) / dt:>9,.0f}")


def evaluation(days: int) -> None:
    """A 30-day latency SLO read from the hourly and minute rollups of one series of 1,000 requests a
    minute, in each layout (rows written straight into the rollup tables, as ingest would bucket
    them: pushing 43 million lines would take the benchmark's whole budget)."""
    import math
    import tempfile
    from datetime import datetime, timezone
    from pathlib import Path

    from vigil.slo.evaluate import evaluate_slos
    from vigil.spec import parse_spec
    from vigil.store import open_store
    from vigil.telemetry.ingest import INF_NS
    from vigil.telemetry.push import Ingestor
    from vigil.telemetry.source import EmbeddedSource

    text = ("version: 1\nservices: {api: {}}\nslos:\n  - {name: lat, service: api, objective: 95, window: {rolling: 30d},"
            " sli: {latency: {metric: 'lat{service=\"api\"}', threshold: 300ms}}}\n")
    at = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    end = int(at.timestamp()) // 60
    print(f"1b. a 30-day latency SLO evaluated over {days} days of one series at 1,000 requests a minute (median of 3)")
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        for name, width in (("before: documented", "null"), ("after: 2% (default)", "2%"), ("5%", "5%")):
            spec = parse_spec(text + f"telemetry: {{bucket_width: {width}}}\n")
            store = open_store(f"sqlite:///{Path(tmp) / (width + '.db')}")
            ing = Ingestor(spec, store)
            ing.push_lines([(1, '{"ts":"2026-11-20T11:00:00Z","metric":"lat","labels":{"service":"api"},"observe":0.1}')], at)
            bounds = np.array(sorted(ing.bounds_ns)) / 1e9
            sid = store.series()[0].id
            rng = np.random.default_rng(1)
            minutes, hours = [], {}
            for m in range(end - days * 1440, end):
                idx, n = np.unique(np.searchsorted(bounds, rng.lognormal(math.log(0.12), 0.35, 1000)), return_counts=True)
                for i, k in zip(idx.tolist(), n.tolist()):
                    le = int(round(bounds[i] * 1e9)) if i < len(bounds) else INF_NS
                    minutes.append((sid, m, le, k))
                    hours[(sid, m // 60, le)] = hours.get((sid, m // 60, le), 0) + k
            with store.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM obs_minute")
                conn.exec_driver_sql("DELETE FROM obs_hour")
                conn.exec_driver_sql("INSERT INTO obs_minute VALUES (?, ?, ?, ?)", minutes)
                conn.exec_driver_sql("INSERT INTO obs_hour VALUES (?, ?, ?, ?)", [(*k, v) for k, v in hours.items()])
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                evaluate_slos(spec.slos, EmbeddedSource(store), at)
                times.append(time.perf_counter() - t0)
            store.close()
            print(f"   {name:<20} {len(hours):>9,} hour rows {sorted(times)[1] * 1000:8.0f} ms")


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
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--storage-only", action="store_true", help="print the storage figures only")
    ap.add_argument("--minutes", type=int, default=240, help="minutes of each traffic pushed for the storage figures")
    ap.add_argument("--eval-days", type=int, default=30, help="days of rollups the SLO evaluation figure reads (0: leave it out)")
    args = ap.parse_args()
    storage(args.minutes)
    if args.eval_days:
        evaluation(args.eval_days)
    if not args.storage_only:
        judge_time()
        exact_time()
        detection()
