"""The canary judge and the UI's SLO charts on the Prometheus source (issue 10: "the gate, canary
and UI work on any source"). Two versions of the API in the embedded store and, backfilled with the
same bucket layout, in a real Prometheus: the judge gives the same verdict from either (a healthy
canary passes, one answering 10% 503s fails), reading its layout from the source; and an SLO whose
``source:`` names the Prometheus has its burn-down drawn from Prometheus while the embedded store is
empty."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from canary_helpers import CANARY, FINE_BOUNDS, SLOS, spec_text, traffic_rows
from helpers import push, t
from live import LiveServer
from prom_helpers import Prometheus, backfill, need_prometheus

from vigil.clock import FakeClock
from vigil.deploy.canary.analysis import judge_window, parse_matchers
from vigil.spec import LoadedSpec, parse_spec
from vigil.store import open_store
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS
from vigil.web.app import create_app

START = t("2026-11-20T10:00:00Z")
TOKEN = "canary-prometheus-token-0123456789"


def rows(bad_canary: bool) -> list[dict]:
    out = traffic_rows(START, 60, "v1", per_minute=200)
    out += traffic_rows(START + timedelta(minutes=30), 30, "v2", per_minute=100, errors_per_minute=10 if bad_canary else 0)
    return out


@pytest.fixture(scope="module", params=[False, True], ids=["healthy-canary", "canary-with-503s"])
def loaded(request, tmp_path_factory):
    need_prometheus()
    work = tmp_path_factory.mktemp("canary")
    data = rows(request.param)
    spec = parse_spec(spec_text())
    store = open_store(f"sqlite:///{work / 'vigil.db'}", mode="create")
    push(store, spec, data, START + timedelta(minutes=61))
    backfill(data, work / "prom", work, bounds=sorted({*FINE_BOUNDS, *DOCUMENTED_BOUNDS, *spec.latency_thresholds()}))
    prom = Prometheus(work / "prom", work).start()
    try:
        yield request.param, store, prom
    finally:
        prom.stop()
        store.close()


def _judge(spec_text_: str, store) -> dict:
    loaded = LoadedSpec(parse_spec(spec_text_), None, "0" * 64)
    j = judge_window(loaded, store, parse_matchers('version="v1"', "baseline"), parse_matchers('version="v2"', "canary"),
                     START + timedelta(minutes=30), START + timedelta(minutes=60), judged_at=START + timedelta(minutes=61), record=False)
    return j.to_dict()


def test_the_canary_verdict_is_the_same_on_prometheus(loaded):
    bad, store, prom = loaded
    on_embedded = _judge(spec_text(), store)
    prom_spec = spec_text() + f"telemetry:\n  source: {{kind: prometheus, url: '{prom.url}'}}\n"
    on_prometheus = _judge(prom_spec, store)
    assert on_prometheus == on_embedded
    assert on_prometheus["verdict"] == ("fail" if bad else "pass")


def test_an_slos_charts_come_from_the_source_it_names(loaded, tmp_path):
    bad, _, prom = loaded
    text = spec_text(slos=SLOS.replace("  - name: api-availability\n", "  - name: api-availability\n    source: prom\n"), canary=CANARY)
    text += f"telemetry:\n  sources:\n    prom: {{kind: prometheus, url: '{prom.url}'}}\n"
    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}", mode="create")
    app = create_app(
        LoadedSpec(parse_spec(text), None, "0" * 64), empty, TOKEN, FakeClock(START + timedelta(minutes=61)))
    try:
        with LiveServer(app) as live:
            h = {"Authorization": f"Bearer {TOKEN}"}
            r = httpx.get(live.url + "/api/v1/charts/slos/api-availability/burndown", headers=h, timeout=60)
            assert r.status_code == 200, r.text
            st = httpx.get(live.url + "/api/v1/slos", headers=h, timeout=60).json()["slos"]
    finally:
        empty.close()
    by = {s["name"]: s for s in st}
    assert by["api-availability"]["valid"] == 200 * 60 + 100 * 30
    assert by["api-availability"]["bad"] == (300 if bad else 0)
    assert by["api-latency"]["state"] == "no_data"  # the embedded store is empty
    chart = r.json()
    assert chart["valid"][-1] == 200 * 60 + 100 * 30 and chart["good"][-1] == 200 * 60 + 100 * 30 - (300 if bad else 0)
