"""Ingest throughput, in samples (lines) per second: through `vigil push FILE` and through HTTP.

Run: .venv/bin/python benchmarks/ingest.py [--samples N]
Prints its figures; asserts nothing. One sample = one pushed line of one request's worth of
telemetry (a counter `inc: 1`, an observation without `count`, or a gauge `set`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_push(data: Path, n: int, work: Path) -> float:
    env = dict(os.environ, VIGIL_NOW=NOW)
    db = f"sqlite:///{work / 'push.db'}"
    # the schema is created first so the timing covers ingest, not migrations
    subprocess.run([*VIGIL, "slo", "status", "--spec", str(SPEC), "--db", db], env=env, check=True, capture_output=True)
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
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    try:
        data = work / "samples.ndjson"
        generate(data, args.samples)
        print(f"samples: {args.samples:,} lines, {data.stat().st_size / 1e6:.1f} MB")
        push_rate = bench_push(data, args.samples, work)
        print(f"vigil push FILE:   {push_rate:,.0f} samples/s (whole command, process start included)")
        http_rate, rss = bench_http(data, args.samples, work)
        print(f"POST /api/v1/push: {http_rate:,.0f} samples/s (batches of 20,000 lines, one client)")
        print(f"vigil serve RSS after ingest: {rss:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
