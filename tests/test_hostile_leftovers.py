"""Fail-closed leftovers of the hostile pass (issue 12): each test is an observed defect, written
to fail before its fix."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from live import LiveServer
from otlp_helpers import AUTH, CLIENT, TOKEN, live, post, sid, span, span_rows, tid, trace_request
from test_hostile_trust import GATE_SPEC
from vigil import exitcodes
from vigil.clock import FakeClock, SystemClock, isoformat
from vigil.spec import load_spec
from vigil.store import open_store
from vigil.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent

# == OTLP retention under VIGIL_NOW =====================================================================


def test_otlp_receiver_on_a_pinned_clock_deletes_no_real_trace(tmp_path):
    """Observed: the OTLP receiver purged traces and streams by the server's clock at its first export,
    so a server pinned a year ahead (VIGIL_NOW: a demo, a replay pointed at the real store) deleted
    every real trace. `vigil serve`'s retention pass is off under VIGIL_NOW; the receiver's is too."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        now = datetime.now(timezone.utc)
        spec = "\n".join(["version: 1", "services: {api: {}}", "slos: []", "telemetry:", "  traces: {retention: 2h, max_spans: 1000}"])
        with live(store, SystemClock(), spec=spec) as srv:  # real traffic, at the real clock
            real = [span(1, 1, start=now - timedelta(minutes=1), kind=CLIENT)]
            assert post(srv.url, "/v1/traces", trace_request([("api", real)]).SerializeToString()).status_code == 200
        assert (tid(1).hex(), sid(1).hex()) in span_rows(store)
        ahead = now + timedelta(days=365)
        with live(store, FakeClock(ahead), spec=spec) as srv:  # the same store, served pinned a year ahead
            replay = [span(2, 2, start=ahead - timedelta(minutes=1), kind=CLIENT)]
            assert post(srv.url, "/v1/traces", trace_request([("api", replay)]).SerializeToString()).status_code == 200
        kept = span_rows(store)
        assert (tid(1).hex(), sid(1).hex()) in kept, "a pinned server deleted a real trace"
        assert (tid(2).hex(), sid(2).hex()) in kept
    finally:
        store.close()


# == drill run and backup run under VIGIL_NOW ===========================================================


PLATFORM = ROOT / "examples" / "platform" / "vigil.yaml"


@pytest.mark.parametrize("args", [("drill", "run", "quarterly-region-loss"), ("backup", "run", "--type", "full")],
                         ids=["drill-run", "backup-run"])
def test_drill_and_backup_runs_are_refused_on_a_pinned_clock(tmp_path, cli, args):
    """Observed: `vigil backup run` under VIGIL_NOW ran pgBackRest and recorded the backup at the
    pinned time, evidence the gate and the DR reports read (a backup a year ahead is 'fresh' for a
    year). A drill run and a backup run are refused up front (exit 2, nothing run, nothing recorded),
    as a migration verdict for the gate is."""
    spec = tmp_path / "vigil.yaml"
    shutil.copy(PLATFORM, spec)
    db = tmp_path / "state.db"
    r = cli(*args, "--spec", spec, "--db", f"sqlite:///{db}", "--json", now="2027-12-01T00:00:00Z")
    assert r.code == exitcodes.USAGE, r.out + r.err
    assert "VIGIL_NOW" in r.out + r.err and "Traceback" not in r.out + r.err
    assert not db.exists()  # nothing recorded: the store is not even opened


# == the web overview answers what the gate answers ======================================================


def _overview(loaded_spec, db: str, at: str) -> dict:
    store = open_store(db)
    try:
        with LiveServer(create_app(loaded_spec, store, TOKEN, FakeClock(at))) as srv:
            r = httpx.get(srv.url + "/api/v1/overview", params={"at": at}, headers=AUTH, timeout=60)
            assert r.status_code == 200, r.text
            return r.json()
    finally:
        store.close()


def _answer(d: dict) -> dict:
    return {"allowed": d["allowed"], "freezes": sorted((f["rule_name"], f["slo"], f["message"]) for f in d["freezes"])}


@pytest.mark.parametrize("case", ["empty-store", "invalid-sli"])
def test_the_overview_policy_answer_is_the_gates_what_if(tmp_path, cli, case):
    """Observed: the web UI's overview (and GET /api/v1/overview) decided with the policy alone, so on
    a store that holds no telemetry at all it said ALLOWED for every service while `vigil gate
    deploy --what-if` said FROZEN (empty-store). The overview now asks the gate's own what-if; for
    each service its answer (allowed, every freeze and its message) is the gate's."""
    at = "2026-11-20T12:00:00Z"
    spec = tmp_path / "vigil.yaml"
    db = f"sqlite:///{tmp_path / 'state.db'}"
    if case == "empty-store":
        spec.write_text(GATE_SPEC)
        assert cli("store", "init", "--spec", spec, "--db", db).code == 0
    else:  # good without the service matcher: web's successes counted as api's
        spec.write_text(GATE_SPEC.replace('good: \'http_requests{service="api",code!~"5.."}\'', 'good: \'http_requests{code!~"5.."}\''))
        end = datetime.fromisoformat(at.replace("Z", "+00:00"))
        rows = []
        for i in range(120, 0, -1):
            ts = isoformat(end - timedelta(minutes=i))
            rows += [{"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "503"}, "inc": 50},
                     {"ts": ts, "metric": "http_requests", "labels": {"service": "web", "code": "200"}, "inc": 500},
                     {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 10}]
        data = tmp_path / "d.ndjson"
        data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        assert cli("push", data, "--spec", spec, "--db", db, now=at).code == 0
    ov = _overview(load_spec(spec), db, at)
    by_service = {s["service"]: s for s in ov["services"]}
    assert set(by_service) == {"api", "checkout"}
    for service in ("api", "checkout"):
        r = cli("gate", "deploy", "--service", service, "--what-if", "--spec", spec, "--db", db, "--json", now=at)
        gate = r.json()
        assert r.code == (0 if gate["allowed"] else 1), r.out
        assert _answer(by_service[service]) == _answer(gate), (service, by_service[service], gate)
        assert by_service[service]["frozen"] is (not gate["allowed"])
    if case == "empty-store":  # both services frozen, by the store's emptiness
        assert all(not s["allowed"] and {f["rule_name"] for f in s["freezes"]} == {"empty-store"} for s in ov["services"])
    else:  # api frozen by its unreadable SLI, checkout allowed
        assert [f["rule_name"] for f in by_service["api"]["freezes"]] == ["invalid-sli"] and by_service["checkout"]["allowed"]


# == OTLP bodies: read holding a slot, a stalled one dropped ==============================================


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/metrics"])
def test_an_otlp_export_whose_body_stalls_gives_its_slot_back(tmp_path, path):
    """Observed: /v1/traces and /v1/metrics read whole bodies before taking an ingest slot, with no
    bound on how many at once and no idle timeout: a client that sent headers and part of a body,
    then nothing, held its connection (and its buffered body) for ever, and any number of them
    could. The body is now read holding one of the push route's slots (others wait, then 429), and
    a body that sends nothing for `body_idle` seconds is answered 408 (body-stalled), freeing it."""
    import socket
    import time

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    body = trace_request([("api", [span(7, 7, start=now - timedelta(minutes=1), kind=CLIENT)])]).SerializeToString()
    try:
        with live(store, FakeClock(now), push_options={"max_pushes": 1, "push_wait": 0.2, "body_idle": 1.0}) as srv:
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/x-protobuf\r\n"
                      f"Content-Length: {len(body) + 100}\r\n\r\n".encode() + body[:10])
            # bounded waits on a real server: the stalled export holds the slot, then its idle timer frees it
            deadline = time.monotonic() + 30
            saw_busy = False
            while True:
                r = post(srv.url, "/v1/traces", body)
                if r.status_code == 429:
                    saw_busy = True
                    assert r.headers.get("Retry-After") == "1"
                elif r.status_code == 200:
                    break
                else:
                    raise AssertionError(r.status_code)
                assert time.monotonic() < deadline, "the stalled export never gave its slot back"
            assert saw_busy, "an export was read while another one held the only slot"
            s.settimeout(30)
            answer = s.recv(65536)
            s.close()
        assert b" 408 " in answer.split(b"\r\n")[0], answer[:300]
        assert (tid(7).hex(), sid(7).hex()) in span_rows(store)  # the export after it was stored
    finally:
        store.close()


# == slo status: an SLI whose good events exceed its valid ones ==========================================


def test_slo_status_says_an_sli_with_more_good_than_valid_events_is_invalid(tmp_path, cli):
    """Observed: with `good` missing `total`'s service matcher (another service's successes counted
    as api's good events), `vigil slo status` said `state: ok` at 100% while api failed every
    request (good is clamped to valid), and the gate froze api for the same SLO (rule invalid-sli).
    The status now says so: state `invalid_sli` (text, --json and the web UI), with the warning."""
    at = "2026-11-20T12:00:00Z"
    spec = tmp_path / "vigil.yaml"
    spec.write_text(GATE_SPEC.replace('good: \'http_requests{service="api",code!~"5.."}\'', 'good: \'http_requests{code!~"5.."}\''))
    db = f"sqlite:///{tmp_path / 'state.db'}"
    end = datetime.fromisoformat(at.replace("Z", "+00:00"))
    rows = []
    for i in range(60, 0, -1):
        ts = isoformat(end - timedelta(minutes=i))
        rows += [{"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "503"}, "inc": 50},
                 {"ts": ts, "metric": "http_requests", "labels": {"service": "web", "code": "200"}, "inc": 500},
                 {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 10}]
    data = tmp_path / "d.ndjson"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert cli("push", data, "--spec", spec, "--db", db, now=at).code == 0
    r = cli("slo", "status", "--spec", spec, "--db", db, "--json", now=at)
    assert r.code == 0, r.out
    by = {s["name"]: s for s in r.json()["slos"]}
    api = by["api-availability"]
    assert api["state"] == "invalid_sli", api
    assert any("good events exceed valid events" in w for w in api["warnings"])
    assert by["checkout-success"]["state"] == "ok"
    r = cli("slo", "status", "--spec", spec, "--db", db, now=at)
    line = next(x for x in r.out.splitlines() if x.startswith("api-availability"))
    assert "invalid_sli" in line and " ok" not in line, r.out
    assert "warning: api-availability: good events exceed valid events" in r.out
    gate = cli("gate", "deploy", "--service", "api", "--what-if", "--spec", spec, "--db", db, "--json", now=at).json()
    assert [f["rule_name"] for f in gate["freezes"]] == ["invalid-sli"]  # the same evidence, the gate's rule
    # the web UI's overview shows the state, not a check mark
    store = open_store(db)
    try:
        with LiveServer(create_app(load_spec(spec), store, TOKEN, FakeClock(at))) as srv:
            c = httpx.Client(base_url=srv.url, timeout=60)
            assert c.get("/api/v1/overview", headers=AUTH).json()["slos"][0]["state"] == "invalid_sli"
    finally:
        store.close()
