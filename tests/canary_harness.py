"""A real deployment on loopback for the canary loop's end-to-end test, and a webhook receiver.

- :class:`LiveVigil`: the vigil app (``create_app``) under uvicorn, on a FakeClock.
- :class:`Service`: a tiny HTTP service of one version doing a few milliseconds of (sleeping) work
  per request, optionally with a 5xx spike (every Nth request answers 503) or extra latency. Each request is measured in
  the handler and pushed to vigil as ``http_requests`` / ``http_request_duration_seconds`` with
  ``version`` and ``service`` labels, stamped with the FakeClock's time, through ``POST /api/v1/push``.
- :class:`WeightedProxy`: a reverse proxy sending ``weight``% of requests to the canary (smooth,
  deterministic), whose weight is set by a signed webhook on ``POST /admin/weight``, checked like a
  careful receiver does (signature, freshness, repeats, order: ``DeliveryGuard``).
- :class:`Load`: a bounded load generator through the proxy.
- :class:`HookReceiver`: a webhook endpoint answering a script of responses, checking signatures.

Everything listens on 127.0.0.1 on free ports, in threads of the test process.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import uvicorn

from vigil.clock import FakeClock, isoformat
from vigil.deploy.canary.hooks import verify
from vigil.deploy.canary.receiver import DeliveryGuard, Rejected


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *_a) -> None:  # keep test output clean
        pass


def _serve(handler) -> tuple[_Server, threading.Thread]:
    srv = _Server(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    return srv, th


class LiveVigil:
    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "LiveVigil":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("vigil did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Telemetry:
    """Buffers a service's samples and pushes them to vigil's real push API."""

    def __init__(self, vigil_url: str, token: str) -> None:
        self.url = vigil_url + "/api/v1/push"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        self.rows: list[dict] = []
        self.lock = threading.Lock()
        self.pushed = 0

    def add(self, rows: list[dict]) -> None:
        with self.lock:
            self.rows.extend(rows)

    def flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
        if not rows:
            return
        body = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
        r = httpx.post(self.url, content=body, headers=self.headers, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["rejected"] == 0, r.json()
        self.pushed += len(rows)


class Service:
    # real work per request, cycling: each value sits well inside one documented bucket, so both
    # versions have the same multi-bucket latency distribution up to the scheduler's jitter
    WORK = (0.0017, 0.0017, 0.0037, 0.0037, 0.0075)

    def __init__(self, version: str, clock: FakeClock, telemetry: Telemetry, *, error_every: int = 0, extra_latency: float = 0.0) -> None:
        self.version = version
        self.requests = 0
        lock = threading.Lock()
        svc = self

        class H(_Quiet):
            def do_GET(self) -> None:
                t0 = time.perf_counter()
                with lock:
                    svc.requests += 1
                    n = svc.requests
                time.sleep(Service.WORK[n % len(Service.WORK)] + extra_latency)
                code = 503 if error_every and n % error_every == 0 else 200
                body = json.dumps({"version": version, "n": n}).encode()
                duration = time.perf_counter() - t0
                ts = isoformat(clock.now())
                labels = {"service": "api", "version": version}
                telemetry.add(
                    [
                        {"ts": ts, "metric": "http_requests", "labels": {**labels, "code": str(code)}, "inc": 1},
                        {"ts": ts, "metric": "http_request_duration_seconds", "labels": labels, "observe": duration},
                    ]
                )
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server, self.thread = _serve(H)
        self.port = self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WeightedProxy:
    """``POST /admin/weight`` is checked with :class:`vigil.deploy.canary.receiver.DeliveryGuard` at
    the deployment's clock: a bad signature is 401, a stale, out-of-order or malformed delivery 409/400
    (``rejected`` keeps the reasons), a repeated delivery 200 without moving the weight again."""

    def __init__(self, baseline_port: int, canary_port: int, secret: bytes, clock: FakeClock) -> None:
        self.weight = 0
        self.history: list[tuple[str, int]] = []
        self.rejected_signatures = 0
        self.rejected: list[tuple[int, str]] = []
        self.duplicates = 0
        self.posts: list[tuple[bytes, dict]] = []  # every POST as received (body, headers): what an eavesdropper has
        self._acc = 0
        guard = DeliveryGuard(secret)
        lock = threading.Lock()
        proxy = self

        class H(_Quiet):
            def do_GET(self) -> None:
                with lock:
                    proxy._acc += proxy.weight
                    to_canary = proxy._acc >= 100
                    if to_canary:
                        proxy._acc -= 100
                port = canary_port if to_canary else baseline_port
                conn = HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("GET", self.path)
                    r = conn.getresponse()
                    body = r.read()
                    status = r.status
                finally:
                    conn.close()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    proxy.posts.append((body, dict(self.headers)))
                try:
                    if self.path != "/admin/weight":
                        raise Rejected("not found", 404)
                    got = guard.check(body, self.headers.get("X-Vigil-Signature-256"), now=clock.now())
                except Rejected as e:
                    with lock:
                        proxy.rejected.append((e.status, e.reason))
                        if e.status == 401:
                            proxy.rejected_signatures += 1
                    self.send_response(e.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                d = got.payload
                with lock:
                    if got.duplicate:
                        proxy.duplicates += 1
                    else:
                        proxy.weight = {"rollback": 0, "promote": 100}.get(d["action"], int(d["weight"]))
                        proxy.history.append((d["action"], proxy.weight))
                out = json.dumps({"weight": proxy.weight}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server, self.thread = _serve(H)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Load:
    """Sends bounded bursts of GET requests through the proxy from a few threads."""

    def __init__(self, url: str, workers: int = 4) -> None:
        self.url = url
        self.workers = workers
        self.statuses: dict[int, int] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._clients = [httpx.Client(timeout=10) for _ in range(workers)]

    def send(self, n: int) -> None:
        def part(i: int) -> dict[int, int]:
            got: dict[int, int] = {}
            c = self._clients[i]
            for _ in range(n // self.workers + (1 if i < n % self.workers else 0)):
                s = c.get(self.url + "/").status_code
                got[s] = got.get(s, 0) + 1
            return got

        for got in self._pool.map(part, range(self.workers)):
            for s, k in got.items():
                self.statuses[s] = self.statuses.get(s, 0) + k

    def close(self) -> None:
        self._pool.shutdown()
        for c in self._clients:
            c.close()


class HookReceiver:
    """A webhook endpoint answering from a script: each item is (status, delay seconds, headers)."""

    def __init__(self, secret: bytes, script: list[tuple[int, float, dict]] | None = None) -> None:
        self.script = list(script or [])
        self.received: list[dict] = []
        rec = self

        class H(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, delay, headers = rec.script.pop(0) if rec.script else (200, 0.0, {})
                rec.received.append(
                    {"body": json.loads(body), "raw": body, "headers": dict(self.headers),
                     "signed": verify(secret, body, self.headers.get("X-Vigil-Signature-256"))}
                )
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server, self.thread = _serve(H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
