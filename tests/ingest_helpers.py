"""Helpers for the exact-ingest tests: a real `vigil serve` in a subprocess, a TCP proxy that loses
responses, store totals read straight from the tables, peak memory of a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from pgcluster import free_port

VIGIL = [sys.executable, "-m", "vigil.cli"]
TOKEN = "ingest-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def engine_for(url: str) -> sa.Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def stored(url: str) -> dict:
    """What the store holds, summed: counter total, observation count, gauge samples, series, and
    the counter total per metric."""
    e = engine_for(url)
    try:
        with e.connect() as c:
            q = lambda sql: c.execute(sa.text(sql)).scalar() or 0  # noqa: E731
            per_metric = dict(c.execute(sa.text(
                "SELECT s.metric, SUM(v.value) FROM counter_minute v JOIN series s ON s.id = v.series_id GROUP BY s.metric"
            )).all())
            return {
                "counters": int(q("SELECT SUM(value) FROM counter_minute")),
                "counter_hours": int(q("SELECT SUM(value) FROM counter_hour")),
                "observations": int(q("SELECT SUM(count) FROM obs_minute")),
                "gauge_samples": int(q("SELECT SUM(samples) FROM gauge_minute")),
                "series": int(q("SELECT COUNT(*) FROM series")),
                "per_metric": {m: int(v) for m, v in per_metric.items()},
            }
    finally:
        e.dispose()


def wait_for(pred, what: str, timeout: float = 60.0, every: float = 0.05) -> None:
    """A bounded wait for a real external process to get somewhere."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class Serve:
    """`vigil serve` in a subprocess on a free loopback port (kill -9 and restart it)."""

    def __init__(self, spec: Path, db: str, *, now: str | None = None, port: int | None = None) -> None:
        self.spec = spec
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, VIGIL_TOKEN=TOKEN)
        if now:
            self.env["VIGIL_NOW"] = now
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Serve":
        self.proc = subprocess.Popen(
            [*VIGIL, "serve", "--spec", str(self.spec), "--db", self.db, "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"vigil serve exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, "vigil serve to answer /healthz", timeout=60, every=0.1)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def __enter__(self) -> "Serve":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_peak_rss(args: list[str], env: dict, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    """Run a command; its result and its peak resident memory in MB (ru_maxrss of a fresh parent
    whose only child it is)."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(p.returncode)\n"
    )
    p = subprocess.run([sys.executable, "-c", wrapper, *args], env=env, capture_output=True, timeout=timeout)
    err = p.stderr.decode().rstrip().splitlines()
    rss_kb = int(err[-1])
    p.stderr = "\n".join(err[:-1]).encode()
    return p, rss_kb / 1024


class LosingProxy:
    """A TCP proxy on loopback in front of a server. For the connections ``lose(n)`` says (the
    n-th accepted, counting from 1), it forwards the whole request, lets the server answer, then
    closes the client's side without passing the answer on: the server did the work, the client
    saw a dropped connection (as after a timeout) and retries."""

    def __init__(self, target_port: int, lose) -> None:
        self.target_port = target_port
        self.lose = lose
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lost = 0
        self.n = 0
        self._lock = threading.Lock()
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.n += 1
                n = self.n
            threading.Thread(target=self._handle, args=(c, self.lose(n)), daemon=True).start()

    def _handle(self, c: socket.socket, lose: bool) -> None:
        s = socket.create_connection(("127.0.0.1", self.target_port))
        done = threading.Event()

        def up() -> None:  # client -> server
            try:
                while True:
                    d = c.recv(1 << 16)
                    if not d:
                        break
                    s.sendall(d)
            except OSError:
                pass
            finally:
                done.set()

        threading.Thread(target=up, daemon=True).start()
        try:
            first = True
            while True:
                d = s.recv(1 << 16)
                if not d:
                    break
                if lose:
                    if first:
                        with self._lock:
                            self.lost += 1
                        first = False
                    # the server has answered: the request was processed; drop the answer
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            for x in (c, s):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                x.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def ndjson(rows: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n").encode()
