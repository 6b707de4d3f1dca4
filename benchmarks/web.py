"""Web UI latency: p50/p95 of every page and chart endpoint of `vigil serve` on 30 days of the
example platform's simulated traffic, under a bounded load from this (second) process on loopback,
beside a static file served by the same server. Prints figures; asserts nothing.

    python benchmarks/web.py                       # builds the dataset (a few minutes), then measures
    python benchmarks/web.py --dataset DIR         # reuse a dataset tests/webui_data.py built
    python benchmarks/web.py --requests 40 --clients 2
    python benchmarks/web.py --dataset DIR --only overview --only /    # the URLs containing any of these

Target (the plan's API SLO): p95 <= 300 ms for every page and endpoint on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from webui_data import NOW, TOKENS, build  # noqa: E402


def urls(spec_path: Path) -> list[str]:
    from vigil.spec import load_spec

    spec = load_spec(spec_path).spec
    out = ["/ui-static/vigil.css (static)", "/", "/slos/api-availability", "/dashboards/api", "/deploys", "/dr", "/alerts",
           "/api/v1/overview"]
    for s in spec.slos[:3] + [x for x in spec.slos if x.sli.freshness is not None][:1]:
        out += [f"/api/v1/charts/slos/{s.name}/burndown", f"/api/v1/charts/slos/{s.name}/burn-rates?range=1d",
                f"/api/v1/charts/slos/{s.name}/sli?range=1d"]
    out += ["/api/v1/charts/slos/api-availability/burn-rates?range=30d", "/api/v1/charts/slos/api-availability/sli?range=30d"]
    for d in spec.dashboards:
        for p in d.panels:
            out.append(f"/api/v1/dashboards/{d.name}/panels/{p.slug}?range=1d")
    out += ["/api/v1/dashboards/api/panels/api-latency?range=30d", "/api/v1/charts/backups?range=1d", "/api/v1/charts/drills",
            "/api/v1/charts/canary/1"]
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p * (len(xs) - 1)))))
    return xs[k]


def measure(base: str, path: str, cookie: str, requests: int, clients: int) -> list[float]:
    """Latencies (ms) of ``requests`` GETs of ``path`` from ``clients`` concurrent clients."""
    lat: list[float] = []
    lock = threading.Lock()
    todo = list(range(requests))

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60, cookies={"vigil_session": cookie}) as cl:
            cl.get(path)  # warm the connection
            while True:
                with lock:
                    if not todo:
                        return
                    todo.pop()
                t = time.perf_counter()
                resp = cl.get(path)
                el = (time.perf_counter() - t) * 1000
                if resp.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {resp.status_code}")
                with lock:
                    lat.append(el)

    ts = [threading.Thread(target=worker) for _ in range(clients)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, help="a directory tests/webui_data.py built (vigil.yaml, .vigil/vigil.db, tokens.yaml)")
    ap.add_argument("--requests", type=int, default=30, help="requests per URL (default 30)")
    ap.add_argument("--clients", type=int, default=2, help="concurrent clients (default 2)")
    ap.add_argument("--port", type=int, default=8479)
    ap.add_argument("--only", action="append", default=[], metavar="TEXT",
                    help="measure only the URLs containing TEXT ('/' alone: the overview page); repeatable")
    a = ap.parse_args()
    if a.dataset:
        os.environ["VIGIL_UI_DATASET"] = str(a.dataset)
    t0 = time.time()
    d = build(Path(tempfile.mkdtemp(prefix="vigil-web-bench-")))
    print(f"dataset: {d} ({time.time() - t0:.0f} s)")
    env = {**os.environ, "VIGIL_NOW": NOW}
    server = subprocess.Popen(
        [sys.executable, "-m", "vigil", "serve", "--spec", str(d / "vigil.yaml"), "--tokens-file", str(d / "tokens.yaml"),
         "--port", str(a.port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{a.port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # a real server starting: a bounded wait
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print("vigil serve did not start:", server.stderr.read().decode() if server.stderr else "")
                return 3
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=60) as c:
            r = c.get("/login")
            csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
            c.post("/login", data={"token": TOKENS["viewer"], "csrf": csrf})
            cookie = c.cookies.get("vigil_session")
        print(f"{a.requests} requests per URL from {a.clients} concurrent clients (a second process on loopback); load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"{'what':72} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        worst = 0.0
        for u in urls(d / "vigil.yaml"):
            path = u.split(" ")[0]
            if a.only and not any(path == "/" if o == "/" else o in path for o in a.only) and "static" not in u:
                continue
            lat = measure(base, path, cookie or "", a.requests, a.clients)
            p95 = pct(lat, 0.95)
            if "static" not in u:
                worst = max(worst, p95)
            print(f"{u:72} {statistics.median(lat):8.1f} {p95:8.1f} {max(lat):8.1f}")
        print(f"worst p95 of a page or chart endpoint: {worst:.0f} ms (target <= 300 ms); load average {os.getloadavg()[0]:.1f}")
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
