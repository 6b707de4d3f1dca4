"""Time to evaluate 100 SLOs over a 30-day window of per-minute data, and `vigil serve` memory.

30 days of the example platform's traffic are backfilled by `vigil simulate` into a file, pushed
with `vigil push`, then 100 SLOs (variants of the example's seven: objectives, thresholds and
windows) are evaluated in-process and through `vigil slo status` and `GET /api/v1/slos`.

Run: .venv/bin/python benchmarks/evaluate.py [--days 30]
Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import _rss_mb, serving  # noqa: E402

from vigil.clock import isoformat, parse_time  # noqa: E402
from vigil.slo.evaluate import evaluate_slos  # noqa: E402
from vigil.spec import load_spec  # noqa: E402
from vigil.store import open_store  # noqa: E402
from vigil.telemetry.source import EmbeddedSource  # noqa: E402

VIGIL = [sys.executable, "-m", "vigil.cli"]
AT = "2026-11-26T00:00:00Z"
TOKEN = "benchmark-token-0123456789"

WINDOWS = ["{rolling: 30d}", "{rolling: 28d}", "{rolling: 7d}", "{calendar: month, timezone: UTC}", "{calendar: month, timezone: Europe/Berlin}"]
OBJECTIVES = ["99", "99.5", "99.9", "99.95"]
LAT_THRESHOLDS = ["100ms", "200ms", "250ms", "300ms", "500ms", "1s"]


def hundred_slos() -> str:
    out = []
    for i in range(100):
        w = WINDOWS[i % len(WINDOWS)]
        o = OBJECTIVES[i % len(OBJECTIVES)]
        kind = i % 6
        if kind == 0:
            sli = "ratio: {good: 'http_requests{service=\"api\",code!~\"5..\"}', total: 'http_requests{service=\"api\"}'}"
        elif kind == 1:
            sli = "ratio: {good: 'http_requests{service=\"pages\",code!~\"5..\"}', total: 'http_requests{service=\"pages\"}'}"
        elif kind == 2:
            sli = "ratio: {good: 'checkout_attempts{outcome=\"success\"}', total: checkout_attempts, exclude: 'checkout_attempts{outcome=\"issuer_declined\"}'}"
        elif kind == 3:
            th = LAT_THRESHOLDS[i % len(LAT_THRESHOLDS)]
            cache = ["", ',cache="hit"', ',cache="miss"'][i % 3]
            sli = f"latency: {{metric: 'http_request_duration_seconds{{service=\"api\"{cache}}}', threshold: {th}}}"
        elif kind == 4:
            th = ["5m", "2m", "10m"][i % 3]
            sli = f"freshness: {{metric: 'index_staleness_seconds{{class=\"hot\"}}', threshold: {th}, slice: 1m, missing: bad}}"
        else:
            sli = "latency: {metric: page_revalidation_seconds, threshold: 10m}"
        out.append(f"  - name: slo-{i:03d}\n    service: api\n    objective: {o}\n    window: {w}\n    sli:\n      {sli}\n")
    return "version: 1\nservices: {api: {}}\nslos:\n" + "".join(out) + (
        "policy:\n  freeze:\n    - when: {budget_consumed_over: 50%, window_elapsed_at_least: 50%}\n"
    )


def run(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-eval-"))
    try:
        spec_path = work / "vigil.yaml"
        spec_path.write_text(hundred_slos())
        db = f"sqlite:///{work / 'vigil.db'}"
        env = dict(os.environ, VIGIL_NOW=AT, VIGIL_TOKEN=TOKEN)
        start = isoformat(parse_time(AT) - timedelta(days=args.days))
        data = work / "history.ndjson"
        t_sim = run([*VIGIL, "simulate", "--from", start, "--to", AT, "--seed", "7", "--out", str(data)], env)
        lines = sum(1 for _ in open(data, "rb"))
        print(f"vigil simulate: {args.days} days backfilled, {lines:,} lines, {data.stat().st_size / 1e6:.0f} MB, in {t_sim:.1f} s")
        t_push = run([*VIGIL, "push", str(data), "--spec", str(spec_path), "--db", db], env)
        print(f"vigil push: {lines:,} lines in {t_push:.1f} s ({lines / t_push:,.0f} lines/s)")

        loaded = load_spec(spec_path)
        store = open_store(db)
        at = parse_time(AT)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            st = evaluate_slos(loaded.spec.slos, EmbeddedSource(store), at)
            times.append(time.perf_counter() - t0)
        assert len(st) == 100
        states = {s.state for s in st}
        print(
            f"evaluate 100 SLOs over {args.days} days of minutes (in-process): first {times[0] * 1000:.0f} ms, "
            f"median of 5 {statistics.median(times) * 1000:.0f} ms (states: {', '.join(sorted(states))})"
        )
        store.close()
        t_cli = run([*VIGIL, "slo", "status", "--json", "--spec", str(spec_path), "--db", db], env)
        print(f"vigil slo status --json (whole command, process start included): {t_cli * 1000:.0f} ms")

        with serving(spec_path, db, env) as (base, pid):
            h = {"Authorization": f"Bearer {TOKEN}"}
            api_times = []
            for _ in range(5):
                t0 = time.perf_counter()
                r = httpx.get(base + "/api/v1/slos", headers=h, timeout=60)
                api_times.append(time.perf_counter() - t0)
                r.raise_for_status()
            print(f"GET /api/v1/slos (100 SLOs): median of 5 {statistics.median(api_times) * 1000:.0f} ms")
            print(f"vigil serve resident memory after those requests: {_rss_mb(pid):.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
