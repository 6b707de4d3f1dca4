"""Alert rules: time to evaluate 1,000 rules over the example platform, and record their state.

`vigil simulate` backfills the example platform's traffic (an api-5xx-spike incident in the last
hours, so some rules fire), `vigil push` stores it, then 1,000 rules (variants of the example's
five kinds: burn rate on its seven SLOs, thresholds on its queues, counters and latencies, 5xx
spikes, absent series, events) are evaluated in-process as the serve loop's leader does it: a
fresh source per evaluation, `evaluate_rules` reading through it and writing the instances and the
transition log in one transaction. The evaluation repeats a minute apart (steady state: most
instances unchanged).

Run: .venv/bin/python benchmarks/alerting.py [--days 3] [--rules 1000] [--part rules|dispatch|both]
Prints its figures; asserts nothing.

The dispatch part: N alerts fire at once (each its own group), and the dispatcher routes the
transitions, writes N notifications to the outbox and delivers them to a signed-webhook receiver on
loopback (a threaded HTTP server answering 200), sequentially and with 4 senders; then the same
with the receiver answering 503 to every other request (retries and their records).
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
    ap.add_argument("--part", choices=["rules", "dispatch", "both"], default="both")
    ap.add_argument("--notifications", type=int, default=2000, help="dispatch part: alerts fired at once")
    args = ap.parse_args()
    if args.part in ("dispatch", "both"):
        dispatch_part(args.notifications)
    if args.part == "dispatch":
        return
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



def dispatch_part(n: int) -> None:
    """Throughput of the dispatcher to a local webhook receiver (see the module)."""
    import threading
    from decimal import Decimal
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from vigil.alerting.dispatch import Dispatcher, build_senders
    from vigil.alerting.outbox import attempts_log, outbox
    from vigil.alerting.rules import Reading, Timing
    from vigil.alerting.state import record_evaluation
    from vigil.clock import FakeClock
    from vigil.spec import parse_spec
    from vigil.store import open_store

    state = {"n": 0, "flaky": False}
    lock = threading.Lock()

    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            return None

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                state["n"] += 1
                fail = state["flaky"] and state["n"] % 2 == 0
            self.send_response(503 if fail else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    text = f"""version: 1
services: {{api: {{}}}}
alerting:
  receivers:
    - {{name: hook, webhook: {{url: '{url}', secret_env: BENCH_SECRET}}, retry: {{initial: 1s, max: 1s}}, circuit: {{failures: 1000}}}}
  route: {{receiver: hook, group_by: [alertname, instance], group_wait: 0s}}
"""
    spec = parse_spec(text.encode(), filename="bench.yaml")
    assert spec.alerting is not None
    print(f"dispatch: {n:,} alerts firing at once, one group each, to a signed webhook on loopback (SQLite store)")
    for parallel, flaky in ((1, False), (4, False), (4, True)):
        work = Path(tempfile.mkdtemp(prefix="vigil-bench-dispatch-"))
        try:
            store = open_store(f"sqlite:///{work / 'vigil.db'}")
            clock = FakeClock(AT)
            readings = [Reading({"alertname": "bench", "service": "api", "severity": "page", "instance": f"i-{i:05d}"}, True, Decimal(i))
                        for i in range(n)]
            record_evaluation(store, clock.now(), {"bench": readings}, {"bench": Timing()})
            senders = build_senders(spec.alerting, environ={"BENCH_SECRET": "bench-secret-0123456789"})
            d = Dispatcher(store, spec.alerting, senders, clock, parallel=parallel, batch=500)
            state.update(n=0, flaky=flaky)
            now = d.now_ms()
            t0 = time.perf_counter()
            routed = d.route(now)
            t1 = time.perf_counter()
            _, written = d.flush_due(now)
            t2 = time.perf_counter()
            sends = 0
            while True:
                rep = d.deliver()
                sends += rep.delivered + rep.retried + rep.failed
                if not outbox(store, status="pending", limit=1):
                    break
                clock.tick(1)
            t3 = time.perf_counter()
            lat = sorted(a["latency_ms"] for a in attempts_log(store, limit=n * 3) if a["latency_ms"] is not None)
            delivered = sum(1 for r in outbox(store, limit=n) if r.status == "delivered")
            label = f"{parallel} sender{'s' if parallel > 1 else ''}" + (", every other answer 503" if flaky else "")
            print(f"  {label}: route {routed:,} transitions {(t1 - t0) * 1000:.0f} ms; flush -> {written:,} outbox rows "
                  f"{(t2 - t1) * 1000:.0f} ms; deliver {delivered:,} ({sends:,} attempts recorded) in {t3 - t2:.2f} s = "
                  f"{delivered / (t3 - t2):.0f} notifications/s; attempt latency p50 {lat[len(lat) // 2]} ms, "
                  f"p99 {lat[int(len(lat) * 0.99)]} ms")
            for s in senders.values():
                s.close()
            store.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    server.shutdown()


if __name__ == "__main__":
    main()
