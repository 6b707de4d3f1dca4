"""The rate-limit check against a real nginx ``limit_req`` front on loopback (bounded requests and
time), and the pure judge on timelines built by hand."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from wafstack import NginxRateLimit, free_port  # noqa: E402

from vigil.security.waf.ratelimit import Event, judge, send_until_blocked  # noqa: E402


@pytest.fixture(scope="module")
def nginx():
    # the plan's limit of 20 per 2s as nginx writes it: 10r/s with a bucket of 20 (burst 19 + 1)
    n = NginxRateLimit("10r/s", 19, buckets=4)  # a full bucket for each test
    yield n
    n.close()


def test_the_front_blocks_past_the_limit_within_the_tolerance(nginx, cli):
    r = cli("waf", "ratelimit", "--target", nginx.url + "/b1/api/products", "--limit", "20", "--window", "2s", "--tolerance", "25%",
            "--max-requests", "300", "--max-seconds", "20", "--json")
    assert r.code == 0, r.out
    out = r.json()
    fb = out["first_block"]
    assert fb["status"] == 429 and out["passed_before_block"] >= 15
    assert out["passed_before_block"] <= out["upper_bound"]
    assert out["blocked_after_first"] >= 15 and out["sent_after_first"] == 21  # it holds, then the check stops
    assert out["sent"] <= 300


def test_a_plan_stricter_than_the_front_fails_as_late_blocking(nginx, cli):
    # the front lets about 20 through; a plan of 5 per 2s is not what it enforces
    r = cli("waf", "ratelimit", "--target", nginx.url + "/b2/", "--limit", "5", "--window", "2s", "--tolerance", "10%",
            "--max-requests", "200", "--max-seconds", "20", "--json")
    assert r.code == 1
    assert any("blocking came late" in x for x in r.json()["reasons"])


def test_a_plan_looser_than_the_front_fails_as_early_blocking(nginx, cli):
    r = cli("waf", "ratelimit", "--target", nginx.url + "/b3/", "--limit", "100", "--window", "10s", "--tolerance", "10%",
            "--max-requests", "400", "--max-seconds", "20", "--json")
    assert r.code == 1
    assert any("blocking came early" in x for x in r.json()["reasons"])


def test_no_block_within_the_bounds_is_a_no(nginx, cli):
    # a backend without a limit: the nginx's own backend, straight
    r = cli("waf", "ratelimit", "--target", f"http://127.0.0.1:{nginx.backend.port}/", "--limit", "20", "--window", "2s",
            "--max-requests", "60", "--max-seconds", "20", "--json")
    assert r.code == 1
    out = r.json()
    assert out["first_block"] is None and out["sent"] == 60 and "no request was blocked" in out["reasons"][0]


def test_a_front_that_does_not_answer_is_exit_3(cli):
    r = cli("waf", "ratelimit", "--target", f"http://127.0.0.1:{free_port()}/", "--limit", "5", "--window", "1s",
            "--max-requests", "10", "--max-seconds", "5", "--json")
    assert r.code == 3
    assert r.json()["errors"] == 10


def test_bounds_that_cannot_show_the_limit_are_a_usage_error(cli):
    r = cli("waf", "ratelimit", "--target", "http://127.0.0.1:9/", "--limit", "100", "--max-requests", "50")
    assert r.code == 2 and "at least 122" in r.err
    r = cli("waf", "ratelimit", "--target", "http://127.0.0.1:9/")
    assert r.code == 2 and "no limit" in r.err


def _tl(statuses, step=0.01):
    return [Event(i * step, s) for i, s in enumerate(statuses)]


def test_judge_on_timelines():
    w, tol = Decimal(2), Decimal("0.2")
    ok = judge(_tl([200] * 20 + [429] * 21), limit=20, window=w, tolerance=tol)
    assert ok["passed"] and ok["passed_before_block"] == 20 and ok["first_block"]["request"] == 21
    late = judge(_tl([200] * 40 + [429] * 5), limit=20, window=w, tolerance=tol)
    assert not late["passed"] and "late" in late["reasons"][0]
    # refill counts: after 3 s at 10/s, 50 passes are within 20 + 30 (+20%)
    slow = judge(_tl([200] * 50 + [429], step=0.06), limit=20, window=w, tolerance=tol)
    assert slow["passed"], slow
    early = judge(_tl([200] * 3 + [429] * 5), limit=20, window=w, tolerance=tol)
    assert not early["passed"] and "early" in early["reasons"][0]
    errs = judge([Event(0, None, "ConnectError: refused")] + _tl([200] * 20 + [429]), limit=20, window=w, tolerance=tol)
    assert not errs["passed"] and "incomplete" in errs["reasons"][0]
    none = judge(_tl([200] * 30), limit=20, window=w, tolerance=tol)
    assert not none["passed"] and none["first_block"] is None


def test_send_until_blocked_stops_at_its_bounds():
    t = [0.0]

    def clock():
        t[0] += 0.5
        return t[0]

    ev = send_until_blocked(lambda: (200, None), max_requests=1000, max_seconds=3, clock=clock)
    assert len(ev) < 10  # time bound
    ev = send_until_blocked(lambda: (200, None), max_requests=7, max_seconds=1e9)
    assert len(ev) == 7
    seq = iter([200] * 3 + [429] * 100)
    ev = send_until_blocked(lambda: (next(seq), None), max_requests=1000, max_seconds=1e9)
    assert len(ev) == 3 + 1 + 20
