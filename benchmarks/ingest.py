"""Ingest: throughput, backfill against a bare JSON parse, and memory under load.

Run: .venv/bin/python benchmarks/ingest.py [--samples N] [--rounds R] [--skip-memory]
Prints its figures; asserts nothing.

- Throughput in samples (lines) per second through `vigil push FILE` and through HTTP. One sample
  = one pushed line of one request's worth of telemetry (a counter `inc: 1`, an observation without
  `count`, or a gauge `set`).
- Backfill: 7 days of per-minute aggregates for 40 series (each line its own series-minute, the
  shape exporters push), `vigil push` (whole command, and the library alone) beside a bare
  `json.loads` of every line of the same file. ``--bucket-width null`` stores it in the documented
  bounds only (vigil before issue 14) for comparison; ``--raw-latency`` makes the 8 latency series'
  values raw (lognormal, microseconds) instead of two fixed values. Rounds are interleaved; the minimum of each is shown
  (this machine is shared: the minimum is the least disturbed run).
- Memory: peak RSS of `vigil serve` under 16 concurrent 16 MiB pushes, and of `vigil push` of a
  100 MB JSON array.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "platform" / "vigil.yaml"
VIGIL = [sys.executable, "-m", "vigil.cli"]
NOW = "2026-11-01T12:00:00Z"


def generate(path: Path, n: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    codes = ["200"] * 40 + ["201", "204", "304", "404", "500", "503"]
    with open(path, "w") as f:
        for i in range(n):
            sec = i * 3600 // n
            ts = f"2026-11-01T11:{sec // 60:02d}:{sec % 60:02d}Z"
            k = i % 10
            svc = "api" if k < 7 else "pages"
            cache = "hit" if rnd.random() < 0.7 else "miss"
            if k < 4:
                row = {"ts": ts, "metric": "http_requests", "labels": {"service": svc, "code": rnd.choice(codes), "cache": cache}, "inc": 1}
            elif k < 8:
                row = {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": svc, "cache": cache}, "observe": round(rnd.lognormvariate(-2.5, 0.6), 4)}
            elif k < 9:
                row = {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": rnd.choice(["success"] * 20 + ["issuer_declined", "error"])}, "inc": 1}
            else:
                row = {"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": rnd.choice(["hot", "cold"])}, "set": rnd.randint(5, 200)}
            f.write(json.dumps(row, separators=(",", ":")) + "\n")


BACKFILL_SERIES = (
    [("http_requests", {"service": svc, "code": code}, "inc") for svc in ("api", "pages")
     for code in ("200", "201", "204", "304", "404", "429", "500", "502", "503", "504")]
    + [("checkout_attempts", {"outcome": o}, "inc") for o in ("success", "error", "issuer_declined", "timeout")]
    + [("http_request_duration_seconds", {"service": svc, "cache": c, "le_hint": b}, "observe")
       for svc in ("api", "pages") for c in ("hit", "miss") for b in ("0.1", "0.3")]
    + [("index_staleness_seconds", {"class": c}, "set") for c in ("hot", "cold", "warm", "a", "b", "c", "d", "e")]
)


RAW_LATENCY = False
"""``--raw-latency``: observations are raw latencies instead of two fixed values."""


def generate_backfill(path: Path, days: int = 7) -> int:
    """Per-minute aggregates, 40 series, one line per series-minute; returns the line count."""
    assert len(BACKFILL_SERIES) == 40
    rnd = random.Random(3)
    n = 0
    start = calendar.timegm((2026, 10, 25, 0, 0, 0))
    with open(path, "w") as f:
        for m in range(days * 1440):
            t = start + m * 60
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
            for i, (metric, labels, kind) in enumerate(BACKFILL_SERIES):
                row: dict = {"ts": ts, "metric": metric, "labels": labels}
                if kind == "inc":
                    row["inc"] = 100 + (m * 7 + i) % 50
                elif kind == "observe":
                    if RAW_LATENCY:  # a raw latency in microseconds: a different 2% bucket almost every line
                        row["observe"] = round(rnd.lognormvariate(math.log(float(labels["le_hint"])), 0.5), 6)
                    else:
                        row["observe"] = float(labels["le_hint"])
                    row["count"] = 10 + i
                else:
                    row["set"] = (m + i) % 300
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
                n += 1
    return n


def bare_parse(path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            json.loads(line)
    return time.perf_counter() - t0


BACKFILL_SPEC = "version: 1\nservices: {api: {}}\ntelemetry: {retention: 90d}\n"
BUCKET_WIDTH = ""
"""``--bucket-width``: the backfill spec's ``telemetry.bucket_width`` (empty: the default, 2%)."""


def backfill_spec() -> str:
    if not BUCKET_WIDTH:
        return BACKFILL_SPEC
    return BACKFILL_SPEC.replace("{retention: 90d}", f"{{retention: 90d, bucket_width: {BUCKET_WIDTH}}}")
BACKFILL_NOW = "2026-11-01T12:00:00Z"


def backfill_command(data: Path, work: Path, r: int) -> float:
    spec = work / "backfill.yaml"
    spec.write_text(backfill_spec())
    db = f"sqlite:///{work / f'backfill-{r}.db'}"
    env = dict(os.environ, VIGIL_NOW=BACKFILL_NOW)
    subprocess.run([*VIGIL, "store", "init", "--spec", str(spec), "--db", db], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    subprocess.run([*VIGIL, "push", str(data), "--spec", str(spec), "--db", db], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def backfill_library(data: Path, work: Path, r: int) -> float:
    """The same push in-process: reading, batching, checking and writing (no interpreter start)."""
    from vigil.clock import parse_time
    from vigil.spec import parse_spec
    from vigil.store import open_store
    from vigil.telemetry.push import Ingestor, batches

    st = open_store(f"sqlite:///{work / f'backfill-lib-{r}.db'}")
    ing = Ingestor(parse_spec(backfill_spec()), st)
    now = parse_time(BACKFILL_NOW)
    t0 = time.perf_counter()
    with open(data, "rb") as f:
        for b in batches(f.read1, keep_body=False):
            s = ing.session(now, key=b.key, source="push", flush_lines=2**62)
            s.feed(b.items)
            s.finish(body_sha256=b.body_sha256)
    dt = time.perf_counter() - t0
    st.close()
    return dt


def bench_backfill(work: Path, rounds: int) -> None:
    data = work / "backfill.ndjson"
    n = generate_backfill(data)
    bare, cmd, lib = [], [], []
    for r in range(rounds):  # interleaved: each round sees the same machine
        bare.append(bare_parse(data))
        cmd.append(backfill_command(data, work, r))
        lib.append(backfill_library(data, work, r))
    b, c, li = min(bare), min(cmd), min(lib)
    print(f"backfill: {n:,} lines (7 days x 40 series, each its own series-minute), {data.stat().st_size / 1e6:.1f} MB;"
          f" bucket_width {BUCKET_WIDTH or 'default (2%)'}{', raw latencies' if RAW_LATENCY else ''}")
    print(f"  bare json.loads of every line: {b:.2f} s (min of {rounds})")
    print(f"  vigil push FILE, whole command: {c:.2f} s = {c / b:.1f}x the bare parse (process start included)")
    print(f"  vigil push in the library:      {li:.2f} s = {li / b:.1f}x the bare parse")
    print(f"  all rounds: bare {', '.join(f'{x:.2f}' for x in bare)}; command {', '.join(f'{x:.2f}' for x in cmd)};"
          f" library {', '.join(f'{x:.2f}' for x in lib)}")


def bench_memory(work: Path) -> None:
    import threading

    spec = work / "mem.yaml"
    spec.write_text("version: 1\nservices: {api: {}}\ntelemetry: {retention: 40d}\n")
    env = dict(os.environ, VIGIL_NOW="2026-11-20T12:00:00Z", VIGIL_TOKEN="benchmark-token-0123456789")
    now_min = 1795176000 // 60
    bodies = []
    for w in range(16):
        out, size, n = [], 0, 0
        while True:
            m = now_min - 1 - n % 1440
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m * 60))
            line = f'{{"ts":"{ts}","metric":"big_push","labels":{{"w":"{w}","s":"{n // 1440}"}},"inc":1}}\n'
            if size + len(line) > 16 * 1024 * 1024:
                break
            out.append(line)
            size += len(line)
            n += 1
        bodies.append("".join(out).encode())
    with serving(spec, f"sqlite:///{work / 'mem.db'}", env) as (base, pid):
        idle = _hwm_mb(pid)
        statuses: list[int] = []

        def send(body: bytes) -> None:
            key = os.urandom(16).hex()
            with httpx.Client(base_url=base, timeout=900) as c:
                while True:
                    r = c.post("/api/v1/push", content=body, headers={
                        "Authorization": "Bearer benchmark-token-0123456789", "Idempotency-Key": key})
                    statuses.append(r.status_code)
                    if r.status_code != 429:
                        return
                    time.sleep(float(r.headers.get("retry-after", "1")))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        peak = _hwm_mb(pid)
    nlines = sum(b.count(b"\n") for b in bodies)
    print(f"vigil serve, 16 concurrent 16 MiB pushes ({sum(len(b) for b in bodies) / 2**20:.0f} MiB, "
          f"{nlines:,} lines): peak RSS {peak:.0f} MB (idle {idle:.0f} MB); "
          f"{statuses.count(429)} answers 429, all stored in {dt:.0f} s")
    arr = work / "big.json"
    with open(arr, "w") as f:
        f.write("[")
        n = 0
        while f.tell() < 100 * 1024 * 1024:
            m = now_min - 1 - n % 20000
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m * 60))
            f.write(("," if n else "") + json.dumps({"ts": ts, "metric": "arr", "labels": {"k": f"s{n % 40}", "pad": "x" * 40}, "inc": 1}))
            n += 1
        f.write("]")
    db = f"sqlite:///{work / 'arr.db'}"
    subprocess.run([*VIGIL, "store", "init", "--spec", str(spec), "--db", db], env=env, check=True, capture_output=True)
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *VIGIL, "push", str(arr), "--spec", str(spec), "--db", db],
                         env=env, check=True, capture_output=True)
    dt = time.perf_counter() - t0
    print(f"vigil push of a {arr.stat().st_size / 1e6:.0f} MB JSON array ({n:,} items): peak RSS "
          f"{int(out.stdout) / 1024:.0f} MB, {dt:.0f} s")


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_push(data: Path, n: int, work: Path) -> float:
    env = dict(os.environ, VIGIL_NOW=NOW)
    db = f"sqlite:///{work / 'push.db'}"
    # the schema is created first so the timing covers ingest, not migrations
    subprocess.run([*VIGIL, "store", "init", "--spec", str(SPEC), "--db", db], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    subprocess.run([*VIGIL, "push", str(data), "--spec", str(SPEC), "--db", db], env=env, check=True, capture_output=True)
    dt = time.perf_counter() - t0
    return n / dt


@contextlib.contextmanager
def serving(spec: Path, db: str, env: dict) -> Iterator[tuple[str, int]]:
    """`vigil serve` in a subprocess on a free loopback port: yields (base URL, pid)."""
    port = free_port()
    proc = subprocess.Popen(
        [*VIGIL, "serve", "--spec", str(spec), "--db", db, "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("vigil serve did not start within 30 s")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_http(data: Path, n: int, work: Path, batch_lines: int = 20000) -> tuple[float, float]:
    env = dict(os.environ, VIGIL_NOW=NOW, VIGIL_TOKEN="benchmark-token-0123456789")
    with serving(SPEC, f"sqlite:///{work / 'http.db'}", env) as (base, pid):
        lines = data.read_bytes().splitlines(keepends=True)
        bodies = [b"".join(lines[i : i + batch_lines]) for i in range(0, len(lines), batch_lines)]
        headers = {"Authorization": "Bearer benchmark-token-0123456789", "Content-Type": "application/x-ndjson"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
            t0 = time.perf_counter()
            for body in bodies:
                r = c.post("/api/v1/push", content=body)
                r.raise_for_status()
                assert r.json()["rejected"] == 0, r.text[:500]
            dt = time.perf_counter() - t0
        return n / dt, _rss_mb(pid)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the backfill comparison")
    ap.add_argument("--skip-memory", action="store_true", help="leave out the memory figures (they take minutes)")
    ap.add_argument("--only-backfill", action="store_true")
    ap.add_argument("--bucket-width", default="", help="telemetry.bucket_width of the backfill (default 2%%; null: the documented bounds only)")
    ap.add_argument("--raw-latency", action="store_true",
                    help="backfill observations as raw latencies (lognormal, microseconds) instead of two fixed values")
    args = ap.parse_args()
    global BUCKET_WIDTH, RAW_LATENCY
    BUCKET_WIDTH, RAW_LATENCY = args.bucket_width, args.raw_latency
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    try:
        bench_backfill(work, args.rounds)
        if args.only_backfill:
            return
        data = work / "samples.ndjson"
        generate(data, args.samples)
        print(f"samples: {args.samples:,} lines, {data.stat().st_size / 1e6:.1f} MB")
        push_rate = bench_push(data, args.samples, work)
        print(f"vigil push FILE:   {push_rate:,.0f} samples/s (whole command, process start included)")
        http_rate, rss = bench_http(data, args.samples, work)
        print(f"POST /api/v1/push: {http_rate:,.0f} samples/s (batches of 20,000 lines, one client)")
        print(f"vigil serve RSS after ingest: {rss:.0f} MB")
        if not args.skip_memory:
            bench_memory(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
