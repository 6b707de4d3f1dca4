"""The example platform's 30 days evaluated on each source, beside Prometheus evaluating the
equivalent PromQL itself (issue 10).

The api-5xx-spike scenario's 30 days (one incident, 20 minutes, on the last day) are generated
once and loaded twice: pushed into the embedded store (SQLite), and backfilled into a real
Prometheus (vigil.telemetry.out.openmetrics, one file a day, ``promtool tsdb create-blocks-from
openmetrics``: 2-hour blocks). Then, at the end of the span:

- vigil evaluates the seven SLOs of examples/platform/vigil.yaml on the embedded source and on the
  Prometheus source (cold: a new source each round), and the two statuses are compared field by
  field (they must be equal);
- Prometheus evaluates the equivalent PromQL: the error ratios ``vigil export prometheus-rules``
  records (every burn-rate window of every SLO, as ``rate()`` ratios of sums) plus each SLO's whole
  window, as instant queries; the time is Prometheus' own, and the ratios are compared with
  vigil's exact ones;
- ``increase(x[5m])`` of the API's requests every 5 minutes over the 30 days, against the exact
  count of the same minutes: how far the extrapolation is off.

The CloudWatch source is not timed: moto is not CloudWatch, and its speed says nothing about
GetMetricData's (tests/test_source_cloudwatch.py checks its numbers).

Run: .venv/bin/python benchmarks/sources.py [--days 30] [--rounds 3]. Prints its figures; asserts
only that the two sources agree.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/ holds a secrets.py: keep it from shadowing the standard library's (numpy imports it)
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests"))
from prom_helpers import PROMTOOL, Prometheus  # noqa: E402
from vigil.alerting.export.prometheus import prometheus_rules  # noqa: E402
from vigil.simulate.generator import Incident, Simulator  # noqa: E402
from vigil.simulate.scenarios import get_scenario  # noqa: E402
from vigil.slo.evaluate import evaluate_slos  # noqa: E402
from vigil.spec import load_spec  # noqa: E402
from vigil.store import open_store  # noqa: E402
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS  # noqa: E402
from vigil.telemetry.out.openmetrics import OpenMetricsWriter  # noqa: E402
from vigil.telemetry.push import Ingestor  # noqa: E402
from vigil.telemetry.sources.embedded import EmbeddedSource  # noqa: E402
from vigil.telemetry.sources.prometheus import PrometheusSource  # noqa: E402
from vigil.telemetry.spec import PrometheusSourceSpec  # noqa: E402

EXAMPLE = ROOT / "examples" / "platform" / "vigil.yaml"
END = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)


def say(*a) -> None:
    print(*a, flush=True)


def load(days: int, work: Path, spec, sim, start_s: int, data: Path):
    """Push the days into a new SQLite store and backfill them into ``data``; the store."""
    store = open_store(f"sqlite:///{work / 'vigil.db'}", mode="create")
    ing = Ingestor(spec, store)
    writer = OpenMetricsWriter(bounds=sorted({*DOCUMENTED_BOUNDS, *spec.latency_thresholds()}))
    t_push = t_om = t_promtool = 0.0
    lines_total = 0
    for day in range(days):
        a, b = start_s + day * 86400, start_s + (day + 1) * 86400
        texts = [line for _, lines in sim.lines(a, b) for (_s, _k, _n, line) in lines]
        lines_total += len(texts)
        t0 = time.perf_counter()
        r = ing.push_lines(list(enumerate(texts, 1)), END)
        t_push += time.perf_counter() - t0
        assert r.rejected_count == 0, r.rejected[:3]
        t0 = time.perf_counter()
        om = work / f"day-{day:03d}.om"
        with open(om, "w") as f:
            writer.write([json.loads(x) for x in texts], f)
        t_om += time.perf_counter() - t0
        t0 = time.perf_counter()
        p = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)], capture_output=True, text=True)
        t_promtool += time.perf_counter() - t0
        assert p.returncode == 0, p.stderr[-2000:]
        om.unlink()
    say(f"loaded {days} days: {lines_total:,} push lines; {writer.samples:,} Prometheus samples")
    say(f"  push into SQLite {t_push:.1f} s; OpenMetrics written {t_om:.1f} s; promtool backfill {t_promtool:.1f} s")
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", help="keep the data here (default: a temporary directory, removed)")
    ap.add_argument("--reuse", action="store_true", help="with --work: evaluate the data a previous run left there")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="vigil-sources-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = load_spec(EXAMPLE).spec
    end_s = int(END.timestamp())
    start_s = end_s - args.days * 86400
    sim = Simulator(get_scenario("api-5xx-spike"), 42, Incident.from_seconds(end_s - 5 * 3600, 1200))

    # -- load: the embedded store, and the OpenMetrics files --------------------------------------------
    data = work / "prom"
    if args.reuse and (work / "vigil.db").exists() and data.exists():
        store = open_store(f"sqlite:///{work / 'vigil.db'}", mode="write")
        say(f"reusing {work}")
    else:
        store = load(args.days, work, spec, sim, start_s, data)
    prom = Prometheus(data, work).start()
    try:
        at = END
        src_spec = PrometheusSourceSpec.model_validate({"kind": "prometheus", "url": prom.url})
        # warm Prometheus' page cache and blocks once (both sides then measured alike: best of rounds)
        evaluate_slos(spec.slos, PrometheusSource(src_spec), at)
        emb_t, pro_t = [], []
        emb = pro = None
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            emb = [s.to_dict() for s in evaluate_slos(spec.slos, EmbeddedSource(store), at)]
            emb_t.append(time.perf_counter() - t0)
            src = PrometheusSource(src_spec)
            t0 = time.perf_counter()
            pro = [s.to_dict() for s in evaluate_slos(spec.slos, src, at)]
            pro_t.append(time.perf_counter() - t0)
        assert emb == pro, "the sources disagree"
        say(f"\nseven SLOs at {at:%Y-%m-%dT%H:%M:%SZ}, {args.days}-day windows, every burn-rate window; equal on both sources: yes")
        say(f"  embedded (SQLite)    {min(emb_t):7.3f} s  (median {statistics.median(emb_t):.3f} s of {args.rounds})")
        say(f"  Prometheus source    {min(pro_t):7.3f} s  (median {statistics.median(pro_t):.3f} s; {src.requests} HTTP requests)")

        # -- Prometheus evaluating the equivalent PromQL ---------------------------------------------------
        doc = prometheus_rules(list(spec.alerts), list(spec.slos), counter_suffix="_total").document
        exprs = [(r["labels"]["slo"], r["record"], r["expr"]) for g in doc["groups"] for r in g["rules"]
                 if r.get("record", "").startswith("vigil:slo_error_ratio:")]
        whole = {}
        for st in emb:
            one = next((e for e in exprs if e[0] == st["name"] and e[1].endswith(":rate1h")), None)
            if one is not None:
                since = datetime.fromisoformat(st["coverage"]["since"].replace("Z", "+00:00"))
                secs = int(at.timestamp() - since.timestamp())
                whole[st["name"]] = re.sub(r"\[1h\]", f"[{secs}s]", one[2])
        client = httpx.Client(timeout=600)

        def q(expr: str) -> float | None:
            r = client.get(prom.url + "/api/v1/query", params={"query": expr, "time": f"{at.timestamp():.3f}"}).json()
            assert r["status"] == "success", r
            res = r["data"]["result"]
            return float(res[0]["value"][1]) if res else None

        prom_t = []
        got = {}
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for name, rec, e in exprs:
                got[(name, rec.rsplit(":", 1)[1].removeprefix("rate"))] = q(e)
            for name, e in whole.items():
                got[(name, "window")] = q(e)
            prom_t.append(time.perf_counter() - t0)
        say(f"  Prometheus' own PromQL {min(prom_t):5.3f} s  ({len(exprs)} recorded error ratios + {len(whole)} whole windows, "
            f"rate() ratios of sums as vigil export prometheus-rules writes them)")
        worst: dict[str, tuple[float, str]] = {}
        for st in emb:
            obj = Decimal(str(st["objective"]))
            for w, br in st["burn_rates"].items():
                p = got.get((st["name"], w))
                if p is None or br is None:
                    continue
                mine = float(Decimal(str(br)) * (1 - obj))
                if mine > 0:
                    d = abs(p - mine) / mine
                    if d >= worst.get(w, (-1.0, ""))[0]:
                        worst[w] = (d, f"{st['name']}: {p:.4g} vs {mine:.4g}")
        say("  largest difference of a PromQL error ratio from vigil's exact one, per window:")
        order = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "window"]
        for w in sorted(worst, key=lambda x: order.index(x) if x in order else 99):
            say(f"    {w:>6}: {worst[w][0] * 100:6.2f}%  ({worst[w][1]})")

        # -- increase() over 5 minutes against the exact count -------------------------------------------
        r = client.get(prom.url + "/api/v1/query_range", params={
            "query": 'sum(increase(http_requests_total{service="api"}[5m]))', "start": start_s + 3600, "end": end_s, "step": "300s"}).json()
        series = {int(float(t)): float(v) for t, v in r["data"]["result"][0]["values"]}
        from vigil.selector import parse_selector
        from vigil.telemetry.sources.protocol import CounterQuery

        qsel = CounterQuery(parse_selector('http_requests{service="api"}'))
        es = EmbeddedSource(store)
        errs = []
        ends = sorted(series)
        for t in ends:
            m = t // 60
            exact = es.counter_sums(qsel, [m - 5], m)[0]
            if exact:
                errs.append((series[t] - exact) / exact)
        errs.sort()
        absd = sorted(abs(x) for x in errs)
        say(f"\nincrease(http_requests_total{{service=\"api\"}}[5m]) every 5 minutes ({len(errs)} windows) against the exact count:")
        say(f"  median |error| {statistics.median(absd) * 100:.2f}%, p99 {absd[int(len(absd) * 0.99)] * 100:.2f}%, "
            f"max {absd[-1] * 100:.2f}% (from {errs[0] * 100:+.2f}% to {errs[-1] * 100:+.2f}%)")
        say("  (samples a minute apart: increase() is 1.25 x the last four minutes' increments; the Prometheus source counts all five)")
    finally:
        prom.stop()
        store.close()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
