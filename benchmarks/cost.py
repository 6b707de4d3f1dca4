"""FinOps figures (issue 13): cost import speed, anomaly detection speed and quality.

    python benchmarks/cost.py [--rows 1000000] [--series 500] [--days 365] [--nab DIR] [--focus-sample FILE]

1. Import: a FOCUS CSV of ``--rows`` line items (365 days x services x usage types x environments,
   written here) is imported into a fresh SQLite store; printed beside a bare ``csv.reader`` pass
   over the same file (the floor any CSV importer pays), as rows/s.
2. Anomalies: ``--series`` daily series of ``--days`` days with a weekly pattern, level shifts and
   noise, spikes injected at known days (the labels); every day of every series is scored. Printed:
   the time, and precision and recall of vigil's detector beside the naive baseline (mean + 3 sd of
   the trailing window, the same floors).
3. ``--nab DIR``: NAB's weekly-seasonal series (data/realKnownCause/nyc_taxi.csv and
   data/realTweets/*.csv, labels in combined_windows.json), summed to days; a day is a true anomaly
   when a labelled window overlaps it. The NAB data is fetched by hand and never committed.
4. ``--focus-sample FILE``: the FinOps Foundation's FOCUS sample imported, rows and tags counted.

Figures depend on the machine (2 shared cores here): they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from vigil.finops.anomaly import Params, naive_scores, score_series  # noqa: E402
from vigil.finops.importer import read_files, store_rollup  # noqa: E402
from vigil.finops.rows import Attribution  # noqa: E402
from vigil.store import open_store  # noqa: E402

HEADER = ["BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory",
          "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "EffectiveCost", "ListCost", "ProviderName",
          "RegionId", "ServiceName", "Tags", "x_UsageType"]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def write_rows(path: Path, n: int) -> int:
    rng = random.Random(1)
    services = [f"svc{i:02d}" for i in range(50)]
    envs = ["prod", "stage", "dev"]
    usage = [("AWS Lambda", "EUW1-Request"), ("AWS Lambda", "EUW1-Lambda-GB-Second"), ("Amazon RDS", "EUW1-Aurora:ServerlessV2Usage"),
             ("Amazon S3", "EUW1-TimedStorage-ByteHrs"), ("Amazon CloudFront", "EU-DataTransfer-Out-Bytes"),
             ("AWS Data Transfer", "EUW1-DataTransfer-Out-Bytes")]
    per_day = len(services) * len(envs) * len(usage)
    days = -(-n // per_day)
    start = date(2025, 1, 1)
    written = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for d in range(days):
            day = start + timedelta(days=d)
            first = day.replace(day=1)
            nxt = (first + timedelta(days=32)).replace(day=1)
            for s in services:
                for e in envs:
                    tags = json.dumps({"env": e, "service": s})
                    for sname, ut in usage:
                        if written >= n:
                            return written
                        c = f"{rng.random() * 10:.10f}"
                        w.writerow([c, "111122223333", "USD", f"{nxt}T00:00:00Z", f"{first}T00:00:00Z", "Usage", f"{day + timedelta(days=1)}T00:00:00Z",
                                    f"{day}T00:00:00Z", "1.5", "Units", c, c, "AWS", "eu-west-1", sname, tags, ut])
                        written += 1
    return written


def bench_import(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "focus.csv"
        t0 = time.perf_counter()
        rows = write_rows(p, n)
        print(f"wrote {rows:,} FOCUS rows ({p.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        t0, c0 = time.perf_counter(), cpu()
        with open(p, newline="") as f:
            bare = sum(1 for _ in csv.reader(f)) - 1
        bare_s, bare_c = time.perf_counter() - t0, cpu() - c0
        store = open_store(f"sqlite:///{Path(d) / 'state.db'}")
        t0, c0 = time.perf_counter(), cpu()
        res = read_files([p], Attribution(), currency="USD")
        read_s = time.perf_counter() - t0
        out = store_rollup(store, res, at=datetime.now(timezone.utc), actor="bench")
        total_s, total_c = time.perf_counter() - t0, cpu() - c0
        t0 = time.perf_counter()
        store_rollup(store, read_files([p], Attribution(), currency="USD"), at=datetime.now(timezone.utc), actor="bench")
        again_s = time.perf_counter() - t0
        store.close()
        print(f"bare csv.reader pass:       {bare:,} rows in {bare_s:.2f} s ({bare / bare_s:,.0f} rows/s, CPU {bare_c:.2f} s)")
        print(f"vigil cost import:          {out.rows_read:,} rows in {total_s:.2f} s ({out.rows_read / total_s:,.0f} rows/s, CPU {total_c:.2f} s):"
              f" read and check {read_s:.2f} s, store {total_s - read_s:.2f} s, {out.rows_stored:,} daily rows; {total_s / bare_s:.1f}x the bare parse")
        print(f"re-import of the same file: {again_s:.2f} s (replaces {out.rows_stored:,} rows, adds none)")


def synthetic(series: int, days: int, seed: int = 3) -> tuple[list[list[float]], list[set[int]]]:
    rng = random.Random(seed)
    out, labels = [], []
    for _ in range(series):
        base = rng.uniform(20, 2000)
        weekly = [1.0 + rng.uniform(-0.35, 0.1) * (1 if wd >= 5 else 0) + rng.uniform(-0.05, 0.05) for wd in range(7)]
        noise = rng.uniform(0.02, 0.12)
        x = []
        lab: set[int] = set()
        level = base
        for t in range(days):
            if rng.random() < 0.004:  # a level shift (a new feature, a price change): not an anomaly after a week
                level *= rng.uniform(0.8, 1.3)
            v = level * weekly[t % 7] * max(0.0, rng.gauss(1, noise))
            x.append(v)
        for _ in range(rng.randint(1, 4)):
            t = rng.randint(35, days - 1)
            x[t] *= rng.uniform(1.6, 4.0)
            lab.add(t)
        out.append(x)
        labels.append(lab)
    return out, labels


def pr(flags: list[set[int]], labels: list[set[int]], tolerance: int = 0) -> tuple[float, float, int, int, int]:
    tp = fp = fn = 0
    for f, lab in zip(flags, labels):
        hit = {t for t in f if any(abs(t - x) <= tolerance for x in lab)}
        tp += len({x for x in lab if any(abs(t - x) <= tolerance for t in f)})
        fp += len(f - hit)
        fn += len({x for x in lab if not any(abs(t - x) <= tolerance for t in f)})
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    return prec, rec, tp, fp, fn


def bench_anomalies(series: int, days: int) -> None:
    xs, labels = synthetic(series, days)
    p = Params()
    t0, c0 = time.perf_counter(), cpu()
    ours = [{s.index for s in score_series(x, p) if s.anomalous} for x in xs]
    dt, dc = time.perf_counter() - t0, cpu() - c0
    t0 = time.perf_counter()
    naive = [{s.index for s in naive_scores(x, p) if s.anomalous} for x in xs]
    dn = time.perf_counter() - t0
    print(f"anomaly detection: {series} series x {days} days ({series * days:,} days scored) in {dt:.2f} s (CPU {dc:.2f} s); naive baseline {dn:.2f} s")
    for name, flags in (("vigil (weekly robust + modified z)", ours), ("naive (mean + 3 sd)", naive)):
        prec, rec, tp, fp, fn = pr(flags, labels)
        print(f"  injected spikes, {name:36s} precision {prec:.3f} recall {rec:.3f} (tp {tp}, fp {fp}, fn {fn})")


def nab_daily(path: Path) -> tuple[list[date], list[float]]:
    sums: dict[date, float] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            d = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").date()
            sums[d] = sums.get(d, 0.0) + float(row["value"])
    days = sorted(sums)
    full = [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    return full, [sums.get(d, 0.0) for d in full]


def bench_nab(root: Path) -> None:
    windows = json.loads((root / "combined_windows.json").read_text())
    files = sorted((root / "data").glob("realKnownCause/nyc_taxi.csv")) + sorted((root / "data").glob("realTweets/*.csv"))
    if not files:
        print(f"--nab {root}: no data/realKnownCause/nyc_taxi.csv or data/realTweets/*.csv")
        return
    p = Params(min_impact=0.0)  # NAB values are counts, not money: only the z-score and the percentage floor apply
    results: dict[str, list] = {"vigil": [], "naive": []}
    labels: list[set[int]] = []
    for f in files:
        key = f"{f.parent.name}/{f.name}"
        days, x = nab_daily(f)
        # the first and last days are partial (the series start and end inside them): not judged
        x = x[1:-1]
        days = days[1:-1]
        lab = set()
        for a, b in windows.get(key, []):
            wa = datetime.strptime(a[:19], "%Y-%m-%d %H:%M:%S").date()
            wb = datetime.strptime(b[:19], "%Y-%m-%d %H:%M:%S").date()
            lab |= {i for i, d in enumerate(days) if wa <= d <= wb and i >= p.min_history}
        labels.append(lab)
        wd = days[0].weekday()
        results["vigil"].append({s.index for s in score_series(x, p, first_weekday=wd) if s.anomalous})
        results["naive"].append({s.index for s in naive_scores(x, p) if s.anomalous})
    n_days = sum(len(nab_daily(f)[1]) for f in files)
    print(f"NAB, {len(files)} weekly-seasonal series summed to days ({n_days} days, {sum(len(x) for x in labels)} labelled anomalous days judged):")
    for name in ("vigil", "naive"):
        prec, rec, tp, fp, fn = pr(results[name], labels)
        print(f"  {name:6s} precision {prec:.3f} recall {rec:.3f} (tp {tp}, fp {fp}, fn {fn})")


def bench_focus_sample(path: Path) -> None:
    from vigil.finops.spec import CostsSpec

    costs = CostsSpec(tags={"service": ["application", "service"]})
    with tempfile.TemporaryDirectory() as d:
        store = open_store(f"sqlite:///{Path(d) / 'state.db'}")
        t0 = time.perf_counter()
        res = read_files([path], Attribution.from_spec(costs), currency="USD")
        out = store_rollup(store, res, at=datetime.now(timezone.utc), actor="bench")
        import sqlalchemy as sa

        from vigil.finops.tables import cost_daily as t

        with store.engine.connect() as c:
            env_rows = c.execute(sa.select(sa.func.sum(t.c.line_items)).where(t.c.env != "")).scalar()
            by_env = dict(c.execute(sa.select(t.c.env, sa.func.sum(t.c.line_items)).group_by(t.c.env)).all())
        store.close()
    print(f"FOCUS sample {path.name}: {out.rows_read} rows, {out.rows_rejected} rejected, {out.rows_stored} daily rows, billed"
          f" {out.billed.quantize(Decimal('0.01'))}, {env_rows} with an environment tag {by_env}, {len(out.scopes)} scopes,"
          f" {time.perf_counter() - t0:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--nab", type=Path)
    ap.add_argument("--focus-sample", type=Path)
    ap.add_argument("--skip-import", action="store_true")
    a = ap.parse_args()
    if not a.skip_import:
        bench_import(a.rows)
    bench_anomalies(a.series, a.days)
    if a.nab:
        bench_nab(a.nab)
    if a.focus_sample:
        bench_focus_sample(a.focus_sample)


if __name__ == "__main__":
    main()
