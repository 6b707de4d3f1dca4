"""A real Prometheus on loopback for the source tests: push-format rows backfilled with
``promtool tsdb create-blocks-from openmetrics`` (vigil.telemetry.out.openmetrics writes the
files, one per two hours: this promtool makes 2-hour blocks and has no block-duration flag), then
``prometheus`` started on a free port over that storage."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping

from vigil.telemetry.out.openmetrics import OpenMetricsWriter, ts_ms

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
BLOCK_MS = 2 * 3600 * 1000


def need_prometheus() -> None:
    if PROMTOOL is None or PROMETHEUS is None:
        import pytest

        pytest.fail("promtool and prometheus are needed: run scripts/system-deps.sh (Debian's prometheus)", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backfill(rows: Iterable[Mapping], data: Path, work: Path, *, bounds=None) -> int:
    """Write ``rows`` as OpenMetrics files of two hours each and backfill them into ``data``.
    Returns the number of samples written."""
    need_prometheus()
    by_block: dict[int, list[Mapping]] = {}
    for r in rows:
        by_block.setdefault(ts_ms(str(r["ts"])) // BLOCK_MS, []).append(r)
    w = OpenMetricsWriter(bounds=bounds)
    data.mkdir(parents=True, exist_ok=True)
    for i, b in enumerate(sorted(by_block)):
        f = work / f"block-{i:05d}.om"
        with open(f, "w") as out:
            w.write(by_block[b], out)
        p = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(f), str(data)],
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        f.unlink()
    return w.samples


class Prometheus:
    """``prometheus`` over a storage directory, on 127.0.0.1 and a free port."""

    def __init__(self, data: Path, work: Path) -> None:
        self.data, self.work = data, work
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Prometheus":
        need_prometheus()
        cfg = self.work / "prometheus.yml"
        cfg.write_text("global: {scrape_interval: 15s}\n")
        log = open(self.work / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={self.data}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=3650d", "--log.level=warn", "--query.max-samples=200000000"],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 60  # a real process starting: a bounded wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited: " + (self.work / "prometheus.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("prometheus did not get ready in 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def query(self, expr: str, at_s: float) -> list[dict]:
        import json
        import urllib.parse

        qs = urllib.parse.urlencode({"query": expr, "time": f"{at_s:.3f}"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=60) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]


def prometheus_spec(url: str, **extra):
    from vigil.telemetry.spec import PrometheusSourceSpec

    return PrometheusSourceSpec.model_validate({"kind": "prometheus", "url": url, **extra})
