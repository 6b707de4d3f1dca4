"""Alert rules: time to evaluate 1,000 rules over the example platform, and record their state.

`vigil simulate` backfills the example platform's traffic (an api-5xx-spike incident in the last
hours, so some rules fire), `vigil push` stores it, then 1,000 rules (variants of the example's
five kinds: burn rate on its seven SLOs, thresholds on its queues, counters and latencies, 5xx
spikes, absent series, events) are evaluated in-process as the serve loop's leader does it: a
fresh source per evaluation, `evaluate_rules` reading through it and writing the instances and the
transition log in one transaction. The evaluation repeats a minute apart (steady state: most
instances unchanged).

Run: .venv/bin/python benchmarks/alerting.py [--days 3] [--rules 1000]
Prints its figures; asserts nothing. (The dispatch part of this benchmark, throughput to a local
receiver, belongs to the delivery side.)
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

from vigil.clock import isoformat, parse_time

VIGIL = [sys.executable, "-m", "vigil.cli"]
AT = "2026-11-26T00:00:00Z"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "platform" / "vigil.yaml"

QUEUES = ["dsar", "email", "outbox"]
AGGS = ["max", "min", "avg", "last"]


def rules_yaml(n: int) -> str:
    """``n`` rules cycling through the kinds, each with its own numbers."""
    slos = ["api-availability", "pages-availability", "api-latency", "api-cache-hit-latency", "search-freshness",
            "checkout-success", "pages-revalidation"]
    out = []
    for i in range(n):
        k = i % 10
        name = f"rule-{i:04d}"
        if k in (0, 1):
            sev = ["[page]", "[ticket]", "[page, ticket]"][i % 3]
            out.append(f"  - name: {name}\n    burn_rate: {{slo: {slos[i % len(slos)]}, severities: {sev}}}\n")
        elif k in (2, 3, 4):
            q = QUEUES[i % 3]
            out.append(
                f"  - name: {name}\n    service: api\n    threshold: {{metric: 'queue_depth{{queue=\"{q}\"}}', "
                f"aggregate: {AGGS[i % 4]}, over: {5 + i % 4 * 5}m, value: {10 + i % 50}}}\n    for: {i % 5}m\n"
            )
        elif k == 5:
            out.append(
                f"  - name: {name}\n    service: api\n    threshold: {{metric: 'http_requests{{service=\"api\"}}', type: counter, "
                f"aggregate: {['rate', 'sum', 'max', 'avg'][i % 4]}, over: {5 + i % 3 * 5}m, op: '<', value: {i % 40}}}\n"
            )
        elif k == 6:
            cache = ["", ',cache="hit"', ',cache="miss"'][i % 3]
            out.append(
                f"  - name: {name}\n    service: api\n    threshold: {{metric: 'http_request_duration_seconds{{service=\"api\"{cache}}}', "
                f"type: latency, quantile: {[50, 90, 95, 99][i % 4]}%, over: 5m, value: {100 + i % 400}ms}}\n"
            )
        elif k == 7:
            out.append(
                f"  - name: {name}\n    service: api\n    spike: {{metric: 'http_requests{{service=\"api\",code=~\"5..\"}}', "
                f"factor: {2 + i % 8}, floor: {i % 3}/s, baseline: {['30m', '1h', '2h'][i % 3]}}}\n    for: {i % 3}m\n"
            )
        elif k == 8:
            cls = ["hot", "cold"][i % 2]
            out.append(f"  - name: {name}\n    service: search\n    absent: {{metric: 'index_staleness_seconds{{class=\"{cls}\"}}', over: {1 + i % 10}m}}\n")
        else:
            out.append(f"  - name: {name}\n    service: api\n    event: {{event: event-{i % 20}, firing_for: {5 + i % 30}m}}\n")
    return "".join(out)


def spec_text(n: int) -> str:
    base = EXAMPLE.read_text()
    head, sep, _ = base.partition("\nalerts:\n")
    assert sep, "the example spec has an alerts: section"
    return head + "\nalerts:\n" + rules_yaml(n)


def run(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--evaluations", type=int, default=10)
    args = ap.parse_args()
    from vigil.alerting.evaluate import evaluate_rules, read_rules
    from vigil.alerting.state import last_seq
    from vigil.spec import load_spec
    from vigil.store import open_store
    from vigil.telemetry.sources import open_source

    work = Path(tempfile.mkdtemp(prefix="vigil-bench-alerts-"))
    try:
        spec_path = work / "vigil.yaml"
        spec_path.write_text(spec_text(args.rules))
        db = f"sqlite:///{work / 'vigil.db'}"
        env = dict(os.environ, VIGIL_NOW=AT)
        at = parse_time(AT)
        start = isoformat(at - timedelta(days=args.days))
        data = work / "history.ndjson"
        incident = isoformat(at - timedelta(hours=2))
        t_sim = run([*VIGIL, "simulate", "--from", start, "--to", AT, "--seed", "7", "--scenario", "api-5xx-spike",
                     "--incident-start", incident, "--incident-duration", "90m", "--out", str(data)], env)
        lines = sum(1 for _ in open(data, "rb"))
        print(f"vigil simulate: {args.days} days of the example platform, {lines:,} lines, in {t_sim:.1f} s")
        t_push = run([*VIGIL, "push", str(data), "--spec", str(spec_path), "--db", db], env)
        print(f"vigil push: {lines:,} lines in {t_push:.1f} s")

        spec = load_spec(spec_path).spec
        rules, slos = list(spec.alerts), list(spec.slos)
        store = open_store(db)
        # reading alone (what `vigil alerts --what-if` and `alerts test` do per step)
        reads = []
        for k in range(3):
            t0 = time.perf_counter()
            r = read_rules(rules, slos, open_source(spec.telemetry, store), at + timedelta(minutes=k))
            reads.append(time.perf_counter() - t0)
        holding = sum(1 for rs in r.by_rule.values() for x in rs if x.holds)
        instances = sum(len(rs) for rs in r.by_rule.values())
        print(f"read {len(rules):,} rules ({instances:,} instances, {holding} holding, {len(r.failed)} failed): "
              f"first {reads[0] * 1000:.0f} ms, median of 3 {statistics.median(reads) * 1000:.0f} ms")
        # evaluate and record, a minute apart, as the leader does
        times = []
        for k in range(args.evaluations):
            t0 = time.perf_counter()
            ev = evaluate_rules(store, open_source(spec.telemetry, store), rules, slos=slos, at=at + timedelta(minutes=10 + k))
            times.append(time.perf_counter() - t0)
            assert ev.recorded is not None and ev.recorded.recorded
        print(f"evaluate and record {len(rules):,} rules: first {times[0] * 1000:.0f} ms (instances created), "
              f"median of {len(times)} {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
              f"{last_seq(store)} transitions logged")
        store.close()
        t_cli = run([*VIGIL, "alerts", "--json", "--spec", str(spec_path), "--db", db], env)
        print(f"vigil alerts --json (whole command, process start included): {t_cli * 1000:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
