"""The alerting routes over real HTTP (uvicorn on loopback): alerts, the delivery log, silences
with roles (a viewer reads, a deployer or admin silences; the author is the token's name)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from live import LiveServer
from vigil.alerting.dispatch import Dispatcher
from vigil.alerting.outbox import outbox
from vigil.alerting.receivers import Result
from vigil.alerting.rules import Reading, Timing
from vigil.alerting.state import record_evaluation
from vigil.auth import TokenEntry, Tokens, digest
from vigil.clock import FakeClock, SystemClock
from vigil.spec import LoadedSpec, parse_spec
from vigil.store import open_store
from vigil.web.app import create_app

SPEC = """\
version: 1
services: {api: {}, search: {}}
alerting:
  receivers:
    - {name: r, webhook: {url: 'http://127.0.0.1:9/x', secret_env: S}}
  route: {receiver: r, group_by: [alertname], group_wait: 0s}
"""
TOKENS = {"viewer": "viewer-token-0123456789", "deployer": "deployer-token-0123456789", "admin": "admin-token-0123456789"}


@pytest.fixture
def served(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    loaded = LoadedSpec(parse_spec(SPEC.encode(), filename="v.yaml"), None, "0" * 64)
    tokens = Tokens([TokenEntry(f"ci-{role}", role, digest(tok)) for role, tok in TOKENS.items()])
    with LiveServer(create_app(loaded, store, tokens, SystemClock())) as srv:
        yield srv, store, loaded
    store.close()


def client(srv, role: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {TOKENS[role]}"}, timeout=10)


def err(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body["error"]) >= {"code", "message", "hint"}
    return body["error"]


def test_silences_need_a_deployer_and_record_the_tokens_name(served):
    srv, store, _ = served
    q = {"match": ['service="search"', 'alertname=~"search-.*"'], "reason": "reindexing", "duration": "2h"}
    err(client(srv, "viewer").post("/api/v1/silences", params=q), 403)
    r = client(srv, "deployer").post("/api/v1/silences", params=q)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["created_by"] == "token:ci-deployer" and s["state"] == "active" and s["matchers"] == ['service="search"', 'alertname=~"search-.*"']
    listed = client(srv, "viewer").get("/api/v1/silences").json()["silences"]
    assert [x["id"] for x in listed] == [s["id"]]
    err(client(srv, "viewer").delete(f"/api/v1/silences/{s['id']}"), 403)
    e = client(srv, "admin").delete(f"/api/v1/silences/{s['id']}").json()
    assert e["state"] == "expired" and e["expired_by"] == "token:ci-admin"
    assert client(srv, "viewer").get("/api/v1/silences", params={"state": "active"}).json()["silences"] == []
    assert client(srv, "viewer").get("/api/v1/silences", params={"state": "expired"}).json()["silences"][0]["id"] == s["id"]
    err(client(srv, "admin").delete("/api/v1/silences/s-nope"), 404)


@pytest.mark.parametrize(
    "params,words",
    [
        ({"match": ["service"], "reason": "x", "duration": "1h"}, "cannot read matcher"),
        ({"match": ['service=~".*"'], "reason": "x", "duration": "1h"}, "mute every alert"),
        ({"match": ['service="api"'], "reason": "x"}, "duration"),
        ({"match": ['service="api"'], "reason": "x", "duration": "1h", "until": "now+2h"}, "one of duration"),
        ({"match": ['service="api"'], "reason": "x", "duration": "soon"}, "cannot read duration"),
        ({"match": ['service="api"'], "reason": "x", "until": "now-1h"}, "end after it starts"),
        ({"match": ['service="api"'], "reason": "x", "starts": "now-3h", "until": "now-1h"}, "already be over"),
        ({"match": ['service="api"'], "reason": "x", "duration": "1h", "author": "mallory"}, "author is the token's name"),
    ],
)
def test_bad_silences_are_400_and_store_nothing(served, params, words):
    srv, store, _ = served
    e = err(client(srv, "admin").post("/api/v1/silences", params=params), 400)
    assert words in e["message"]
    assert client(srv, "viewer").get("/api/v1/silences").json()["silences"] == []


def test_a_maintenance_window_starts_later(served):
    srv, _, _ = served
    s = client(srv, "admin").post("/api/v1/silences", params={"match": ['service="api"'], "reason": "db upgrade",
                                                              "starts": "now+1h", "duration": "30m"}).json()
    assert s["state"] == "pending"


def test_a_pinned_server_refuses_to_record_a_silence(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    loaded = LoadedSpec(parse_spec(SPEC.encode(), filename="v.yaml"), None, "0" * 64)
    with LiveServer(create_app(loaded, store, TOKENS["admin"], FakeClock("2026-01-01T00:00:00Z"))) as srv:
        e = err(httpx.post(srv.url + "/api/v1/silences", params={"match": ['a="b"'], "reason": "x", "duration": "1h"},
                           headers={"Authorization": f"Bearer {TOKENS['admin']}"}), 400)
        assert "pinned clock" in e["message"]
    store.close()


def test_alerts_and_the_delivery_log_over_the_api_and_a_silence_that_mutes(served):
    srv, store, loaded = served
    sent: list[str] = []

    class Sink:
        kind, can_acknowledge = "webhook", False

        def send(self, out):
            sent.append(out.payload["group_labels"]["alertname"])
            return Result("delivered", 200, latency_ms=3)

        def close(self):
            return None

    clock = SystemClock()
    # search-down is silenced through the API before it fires
    client(srv, "deployer").post("/api/v1/silences", params={"match": ['alertname="search-down"'], "reason": "planned", "duration": "1h"})
    readings = {n: [Reading({"alertname": n, "service": "search", "severity": "page"}, True, Decimal(1))] for n in ("search-down", "outbox-backlog")}
    assert record_evaluation(store, clock.now(), readings, {n: Timing() for n in readings}).recorded
    d = Dispatcher(store, loaded.spec.alerting, {"r": Sink()}, clock)
    d.tick()
    assert sent == ["outbox-backlog"]
    v = client(srv, "viewer")
    got = v.get("/api/v1/alerts").json()
    assert sorted(a["rule"] for a in got["alerts"]) == ["outbox-backlog", "search-down"] and got["evaluated_at"]
    log = v.get("/api/v1/alerts/log").json()["attempts"]
    assert [(a["receiver"], a["result"], a["latency_ms"]) for a in log] == [("r", "delivered", 3)]
    row = outbox(store)[0]
    assert v.get("/api/v1/alerts/log", params={"key": row.key}).json()["attempts"][0]["key"] == row.key
    assert v.get("/api/v1/alerts/log", params={"receiver": "other"}).json()["attempts"] == []
    grp = v.get("/api/v1/alerts", params={"group": row.group_key}).json()
    assert [a["rule"] for a in grp["alerts"]] == ["outbox-backlog"] and grp["group"]["receiver"] == "r"
    err(v.get("/api/v1/alerts", params={"group": "f" * 64}), 404)
    err(v.get("/api/v1/alerts/log", params={"result": "maybe"}), 400)
