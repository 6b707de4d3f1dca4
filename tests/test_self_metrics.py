"""``GET /metrics``: vigil's own metrics, read by a Prometheus parser from a real server.

In process (uvicorn on loopback): pushes counted by outcome (lines accepted and rejected), every
answer by route template and status (rejections too), the store's size and series, a viewer token
needed, OpenMetrics when asked, and two apps never sharing counts. As a real ``vigil serve`` process
with alerting: the lease (vigil_leader 1), evaluations timed, notifications delivered to a webhook
on loopback counted by outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from live import LiveServer, free_port
from prometheus_client.parser import text_string_to_metric_families

from vigil.clock import FakeClock
from vigil.spec import LoadedSpec, parse_spec
from vigil.store import open_store
from vigil.web.app import create_app
from vigil.web.selfmetrics import SelfMetrics

TOKEN = "self-metrics-token-0123456789abcdef"
SPEC = """version: 1
services: {api: {}}
slos:
  - {name: api, service: api, objective: 99, window: {rolling: 30d}, sli: {ratio: {good: 'http_requests{code!~"5.."}', total: http_requests}}}
"""


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def server(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'vigil.db'}", mode="create")
    loaded = LoadedSpec(parse_spec(SPEC), None, "0" * 64)
    app = create_app(loaded, store, TOKEN, FakeClock(datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)))
    with LiveServer(app) as live:
        yield live, app, store
    store.close()


def _get_metrics(url: str, **kw) -> httpx.Response:
    return httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}, timeout=10, **kw)


def test_pushes_and_answers_are_counted(server):
    live, app, store = server
    h = {"Authorization": f"Bearer {TOKEN}"}
    lines = [{"ts": "2026-11-20T11:59:00Z", "metric": "http_requests", "labels": {"code": "200"}, "inc": 3}] * 4
    body = "\n".join(json.dumps(x) for x in lines) + "\n" + '{"ts": "nope", "metric": "x", "inc": 1}\n'
    assert httpx.post(live.url + "/api/v1/push", content=body, headers=h).status_code == 200
    bad = '{"metric": "x"}\n'
    assert httpx.post(live.url + "/api/v1/push", content=bad, headers=h).status_code == 400
    assert httpx.get(live.url + "/api/v1/slos").status_code == 401
    assert httpx.get(live.url + "/api/v1/slos", headers=h).status_code == 200
    r = _get_metrics(live.url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    s = samples(r.text)
    assert s[("vigil_ingest_lines_total", (("outcome", "accepted"),))] == 4
    assert s[("vigil_ingest_lines_total", (("outcome", "rejected"),))] == 2
    req = lambda route, method, code: s[("vigil_http_requests_total", (("code", code), ("method", method), ("route", route)))]  # noqa: E731
    assert req("/api/v1/push", "POST", "200") == 1 and req("/api/v1/push", "POST", "400") == 1
    assert req("/api/v1/slos", "GET", "401") == 1 and req("/api/v1/slos", "GET", "200") == 1
    assert s[("vigil_http_request_duration_seconds_count", (("route", "/api/v1/slos"),))] == 2
    assert s[("vigil_store_up", ())] == 1 and s[("vigil_store_bytes", ())] > 0 and s[("vigil_store_series", ())] == 1
    assert s[("vigil_alerting_enabled", ())] == 0
    assert httpx.get(live.url + "/nope", headers=h).status_code == 404
    assert samples(_get_metrics(live.url).text)[("vigil_http_requests_total", (("code", "404"), ("method", "GET"), ("route", "other")))] == 1


def test_metrics_need_a_token_and_speak_openmetrics_when_asked(server):
    live, _, _ = server
    assert httpx.get(live.url + "/metrics", timeout=10).status_code == 401
    r = _get_metrics(live.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text") and r.text.rstrip().endswith("# EOF")


def test_each_app_has_its_own_registry(tmp_path):
    a = SelfMetrics(open_store(f"sqlite:///{tmp_path / 'a.db'}", mode="create"))
    b = SelfMetrics(open_store(f"sqlite:///{tmp_path / 'b.db'}", mode="create"))

    class R:
        accepted, rejected_count = 5, 1

    a.on_push(R())
    assert samples(a.exposition(None)[0].decode())[("vigil_ingest_lines_total", (("outcome", "accepted"),))] == 5
    assert samples(b.exposition(None)[0].decode())[("vigil_ingest_lines_total", (("outcome", "accepted"),))] == 0


def test_a_store_that_does_not_answer_is_a_zero_not_a_failed_scrape(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}", mode="create")
    m = SelfMetrics(store)
    store.engine.dispose()
    (tmp_path / "c.db").unlink()
    (tmp_path / "c.db").mkdir()  # the file is gone and its path is a directory now
    s = samples(m.exposition(None)[0].decode())
    assert s[("vigil_store_up", ())] == 0


# -- a real vigil serve with alerting ----------------------------------------------------------------


class Hook:
    """A webhook receiver on loopback that takes every notification."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(n) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout  # a real process: a bounded wait
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_vigil_serve_exposes_the_lease_evaluations_and_dispatches(tmp_path):
    hook = Hook()
    spec = tmp_path / "vigil.yaml"
    spec.write_text(f"""\
version: 1
services: {{api: {{}}}}
alerts:
  - {{name: cache-poison, service: api, event: {{event: cache_poison, firing_for: 5m}}}}
alerting:
  evaluation_interval: 1s
  receivers:
    - {{name: bridge, webhook: {{url: '{hook.url}', secret_env: HOOK_SECRET}}}}
  route: {{receiver: bridge, group_by: [alertname], group_wait: 0s, group_interval: 1s}}
  leader: {{lease: 2s, poll: 500ms}}
""")
    db = f"sqlite:///{tmp_path / 'vigil.db'}"
    open_store(db, mode="create").close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("VIGIL_NOW", "VIGIL_SPEC")}
    env.update({"VIGIL_DB": db, "VIGIL_TOKEN": TOKEN, "HOOK_SECRET": "s3cret-signing-key-0123456789"})
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "vigil", "serve", "--spec", str(spec), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        def scrape() -> dict | None:
            if proc.poll() is not None:
                raise AssertionError("vigil serve exited: " + log.read_text())
            try:
                r = _get_metrics(url)
            except httpx.HTTPError:
                return None
            return samples(r.text) if r.status_code == 200 else None

        s = wait_for(lambda: (x := scrape()) and x.get(("vigil_leader", ())) == 1 and x, 60, "the lease")
        assert s[("vigil_alerting_enabled", ())] == 1 and s[("vigil_leader_fence", ())] >= 1
        line = json.dumps({"ts": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "metric": "vigil_event_total",
                           "labels": {"event": "cache_poison"}, "inc": 1})
        assert httpx.post(url + "/api/v1/push", content=line + "\n", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        s = wait_for(lambda: (x := scrape()) and x.get(("vigil_dispatch_total", (("outcome", "delivered"),)), 0) >= 1 and x,
                     60, "a delivered notification")
        assert hook.bodies and s[("vigil_alert_evaluation_seconds_count", ())] >= 1
        assert s[("vigil_alerting_evaluations_total", ())] >= 1
        assert s[("vigil_ingest_lines_total", (("outcome", "accepted"),))] == 1
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        hook.close()
    assert Path(log).exists()
