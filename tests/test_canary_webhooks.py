"""A captured canary webhook cannot be replayed to move the weight (issue 14): the receiver helper
checks freshness, repeats and order besides the signature; through a real HTTP receiver (the e2e
harness's weighted proxy), and the README's receiver example, run as written.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from canary_harness import WeightedProxy, free_port
from vigil.clock import FakeClock, isoformat
from vigil.deploy.canary.hooks import HookCall, HookError, WebhookHook
from vigil.deploy.canary.receiver import DeliveryGuard, Rejected, sign
from vigil.deploy.canary.spec import WebhookSpec

SECRET = b"replay-test-secret"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent


def body(delivery: str = "7-3", at: datetime | str = T0, **over) -> bytes:
    d = {"action": "set_weight", "weight": 25, "run_id": 7, "service": "api", "baseline": "v1", "canary": "v2", "step": 0,
         "at": at if isinstance(at, str) else isoformat(at), "delivery": delivery, **over}
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def test_the_guard_refuses_forgeries_stale_repeated_and_out_of_order_deliveries():
    g = DeliveryGuard(SECRET)
    b = body()
    got = g.check(b, sign(SECRET, b), now=T0 + timedelta(seconds=5))
    assert not got.duplicate and got.payload["weight"] == 25 and got.delivery == "7-3"
    # the same delivery again (vigil's retry after a lost answer, or a replay): acknowledged, never acted on twice
    assert g.check(b, sign(SECRET, b), now=T0 + timedelta(seconds=60)).duplicate
    cases = [
        (b, sign(b"wrong", b), T0, 401, "signature"),
        (b + b" ", sign(SECRET, b), T0, 401, "signature"),
        (b"[1]", sign(SECRET, b"[1]"), T0, 400, "not a JSON object"),
        (b"{nope", sign(SECRET, b"{nope"), T0, 400, "not JSON"),
        (body(delivery=""), None, T0, 400, "no `delivery`"),
        (body(delivery="7-9", at=T0 - timedelta(minutes=6)), None, T0, 409, "stale"),  # captured 6 minutes ago
        (body(delivery="7-9", at=T0 + timedelta(minutes=6)), None, T0, 409, "stale"),  # from the future
        (body(delivery="7-9", at="yesterday"), None, T0, 400, "RFC 3339"),
        (body(delivery="7-2"), None, T0, 409, "out-of-order"),  # older than 7-3, never seen: held back, released late
    ]
    for raw, sig, now, status, why in cases:
        with pytest.raises(Rejected) as e:
            g.check(raw, sig if sig is not None else sign(SECRET, raw), now=now)
        assert e.value.status == status and why in e.value.reason, (raw, e.value.reason)
    # a later delivery of the run, and another run's, are fine
    assert not g.check(body("7-4"), sign(SECRET, body("7-4")), now=T0).duplicate
    assert not g.check(body("8-1"), sign(SECRET, body("8-1")), now=T0).duplicate
    # outside the window an id is forgotten, but its body is stale by then
    later = T0 + timedelta(minutes=10)
    with pytest.raises(Rejected, match="stale"):
        g.check(b, sign(SECRET, b), now=later)
    g.check(body("9-1", at=later), sign(SECRET, body("9-1", at=later)), now=later)
    assert "7-3" not in g._seen
    # bounded memory: refuses (503) rather than forget an id inside the window
    small = DeliveryGuard(SECRET, max_remembered=2)
    for i in (1, 2):
        small.check(body(f"1-{i}"), sign(SECRET, body(f"1-{i}")), now=T0)
    with pytest.raises(Rejected) as e:
        small.check(body("1-3"), sign(SECRET, body("1-3")), now=T0)
    assert e.value.status == 503
    with pytest.raises(ValueError):
        DeliveryGuard(b"")


def hook(url: str, clock) -> WebhookHook:
    return WebhookHook(WebhookSpec(url=url, secret_env="X", retries=0), 5.0, secret=SECRET, sleep=lambda s: None)


def call(action: str, weight: int, delivery: str, clock: FakeClock) -> HookCall:
    return HookCall(action, weight, 7, "api", "v1", "v2", 0, isoformat(clock.now()), delivery)


def test_a_captured_set_weight_replayed_after_the_rollback_moves_nothing():
    clock = FakeClock("2026-11-20T12:00:00Z")
    proxy = WeightedProxy(free_port(), free_port(), SECRET, clock)
    try:
        h = hook(proxy.url + "/admin/weight", clock)
        h(call("set_weight", 25, "7-3", clock))
        clock.tick(120)
        h(call("rollback", 0, "7-4", clock))
        assert proxy.weight == 0 and proxy.history == [("set_weight", 25), ("rollback", 0)]
        captured_body, captured_headers = proxy.posts[0]  # what an eavesdropper kept of set_weight 25
        headers = {k: v for k, v in captured_headers.items() if k.lower().startswith(("x-vigil", "content-type"))}
        clock.tick(30)
        r = httpx.post(proxy.url + "/admin/weight", content=captured_body, headers=headers)
        assert r.status_code == 409 and proxy.weight == 0  # it used to pass the signature check and set 25 again
        assert proxy.rejected[-1][1].startswith("out-of-order delivery 7-3")
        # the rollback replayed: a duplicate, acknowledged, nothing moves
        r = httpx.post(proxy.url + "/admin/weight", content=proxy.posts[1][0], headers={k: v for k, v in proxy.posts[1][1].items()
                                                                                           if k.lower().startswith("x-vigil")})
        assert r.status_code == 200 and proxy.duplicates == 1 and proxy.history == [("set_weight", 25), ("rollback", 0)]
        # much later, any captured body is stale
        clock.tick(3600)
        r = httpx.post(proxy.url + "/admin/weight", content=captured_body, headers=headers)
        assert r.status_code == 409 and "stale" in proxy.rejected[-1][1] and proxy.weight == 0
        # vigil's own delivery of the same call twice (a retry after a lost answer) succeeds, applies once
        c = call("set_weight", 50, "7-5", clock)
        h(c)
        h(c)
        assert proxy.history[-1] == ("set_weight", 50) and proxy.history.count(("set_weight", 50)) == 1
        # and a hook signed with another secret is refused (4xx: not retried, the hook fails)
        bad = WebhookHook(WebhookSpec(url=proxy.url + "/admin/weight", secret_env="X"), 5.0, secret=b"other", sleep=lambda s: None)
        with pytest.raises(HookError, match="answered HTTP 401"):
            bad(call("set_weight", 100, "7-6", clock))
        assert proxy.weight == 50
    finally:
        proxy.stop()


def readme_receiver() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- receiver example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "the README's canary section has a receiver example"
    return m.group(1)


def test_the_readme_receiver_example_refuses_replays(monkeypatch):
    code = readme_receiver()
    assert "DeliveryGuard" in code and "serve_forever" in code
    monkeypatch.setenv("DEPLOY_HOOK_SECRET", SECRET.decode())
    monkeypatch.setenv("PORT", str(free_port()))
    ns: dict = {"__name__": "readme_receiver"}
    exec(compile(code.replace("server.serve_forever()", "pass"), "README.md", "exec"), ns)  # the example, as written
    applied: list[int] = []
    ns["set_weight"] = applied.append  # its traffic switch
    server: ThreadingHTTPServer = ns["server"]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        now = datetime.now(timezone.utc)
        h = WebhookHook(WebhookSpec(url=url, secret_env="X", retries=0), 5.0, secret=SECRET, sleep=lambda s: None)
        h(HookCall("set_weight", 10, 3, "api", "v1", "v2", 0, isoformat(now), "3-1"))
        h(HookCall("rollback", 0, 3, "api", "v1", "v2", 0, isoformat(now), "3-2"))
        h(HookCall("rollback", 0, 3, "api", "v1", "v2", 0, isoformat(now), "3-2"))  # a retry: acknowledged, not applied
        assert applied == [10, 0]
        with pytest.raises(HookError, match="HTTP 409"):  # the first call replayed: out of order
            h(HookCall("set_weight", 10, 3, "api", "v1", "v2", 0, isoformat(now), "3-1"))
        with pytest.raises(HookError, match="HTTP 409"):  # a fresh id on a stale body
            h(HookCall("set_weight", 10, 4, "api", "v1", "v2", 0, isoformat(now - timedelta(minutes=10)), "4-1"))
        assert applied == [10, 0]
    finally:
        server.shutdown()
        server.server_close()
