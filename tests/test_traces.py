"""Traces (issue 10): the tree with timings (children under parents by start, missing parents and
cycles marked, any depth), the service-path check, and bounded retention (age and size, whole
traces) run by the receiver on its clock."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from otlp_helpers import CLIENT, live, post, sid, span, span_rows, tid, trace_request, utc
from vigil.clock import FakeClock
from vigil.store import open_store
from vigil.traces.store import counts, purge, read_trace, recent_traces
from vigil.traces.tree import SpanRecord, build_tree, check_path

NOW = utc("2026-11-20T12:00:00Z")
T0 = NOW - timedelta(minutes=5)


def rec(span_id: str, parent: str = "", *, service: str = "api", start: int = 0, end: int = 10, kind: int = 2,
        attrs: dict | None = None, name: str = "x") -> SpanRecord:
    return SpanRecord("t" * 32, span_id, parent, service, name, kind, start, end, 0, json.dumps({"attributes": attrs or {}}))


def test_tree_order_depths_and_timings():
    recs = [rec("c2", "a", start=30, end=40), rec("a", start=0, end=100), rec("c1", "a", start=10, end=20), rec("g", "c1", start=11, end=12)]
    t = build_tree("t" * 32, recs)
    assert [(s["span_id"], s["depth"]) for s in t.spans] == [("a", 0), ("c1", 1), ("g", 2), ("c2", 1)]
    a = t.spans[0]
    assert a["children"] == ["c1", "c2"] and a["duration_ms"] == 0.0001 and t.connected
    assert t.spans[2]["offset_ms"] == 0.000011
    assert t.to_dict()["duration_ms"] == 0.0001


def test_missing_parents_and_cycles_are_marked_not_hidden():
    recs = [rec("root"), rec("orphan", "gone", start=5), rec("x", "y", start=7), rec("y", "x", start=8)]
    t = build_tree("t" * 32, recs)
    assert not t.connected and t.missing_parents == ["gone"]
    roots = {s["span_id"]: s for s in t.spans if s["depth"] == 0}
    assert roots["orphan"]["parent_missing"] is True
    assert roots["x"]["cycle"] is True and [s["span_id"] for s in t.spans] == ["root", "orphan", "x", "y"]


def test_a_chain_deeper_than_the_recursion_limit():
    n = 5000
    recs = [rec(f"s{i}", f"s{i - 1}" if i else "", start=i, end=i + 1) for i in range(n)]
    t = build_tree("t" * 32, recs)
    assert t.spans[-1]["depth"] == n - 1 and t.connected
    json.dumps(t.to_dict())  # flat: serializable at any depth


def test_service_path():
    recs = [
        rec("w", service="web"), rec("wc", "w", service="web", kind=CLIENT),
        rec("a", "wc", service="api"), rec("ai", "a", service="api", kind=1), rec("ac", "ai", service="api", kind=CLIENT),
        rec("f", "ac", service="fn"), rec("d", "f", service="fn", kind=CLIENT, attrs={"db.system": "postgresql", "peer.service": "orders-db"}),
    ]
    t = build_tree("t" * 32, recs)
    assert check_path(t, ["web", "api", "fn", "db"]).ok
    assert check_path(t, ["web", "api", "fn", "postgresql"]).ok and check_path(t, ["api", "fn", "orders-db"]).ok
    r = check_path(t, ["web", "fn"])
    assert not r.ok and r.matched == ["web"] and r.missing == "fn"  # api sits between: not the next hop
    r = check_path(t, ["web", "api", "search"])
    assert r.why() == "no 'search' hop after web -> api"
    broken = build_tree("t" * 32, [x for x in recs if x.span_id != "ac"])  # the API's client span never arrived
    r = check_path(broken, ["web", "api", "fn", "db"])
    assert not r.ok and "missing (the trace is broken)" in r.why()


class _RealTime:
    """A clock that is not pinned (not VIGIL_NOW's FakeClock, under which the receiver deletes
    nothing), moved by the test: the real clock's passing time, without waiting for it."""

    def __init__(self, start):
        self._now = start

    def now(self):
        return self._now

    def tick(self, delta):
        self._now += delta


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def test_retention_keeps_whole_traces_within_age_and_size(store):
    spec = "\n".join([
        "version: 1", "services: {api: {}}", "slos: []",
        "telemetry:", "  traces: {retention: 2h, max_spans: 1000}",
    ])
    clock = _RealTime(NOW)
    with live(store, clock, spec=spec) as srv:
        # an old trace whose last span is recent: it goes whole when its start passes the retention
        old = [span(1, 1, start=NOW - timedelta(minutes=110)), span(1, 2, parent=1, start=NOW - timedelta(minutes=5), kind=CLIENT)]
        assert post(srv.url, "/v1/traces", trace_request([("api", old)]).SerializeToString()).status_code == 200
        for b in range(3):  # 1,200 spans in 3 requests, newest last
            spans = [span(100 + b * 400 + i, 100 + b * 400 + i, start=T0 + timedelta(seconds=b * 10 + i / 1000), kind=CLIENT)
                     for i in range(400)]
            assert post(srv.url, "/v1/traces", trace_request([("api", spans)]).SerializeToString()).status_code == 200
        assert counts(store)["spans"] == 1202  # the receiver purged at its first export only (once a minute)
        clock.tick(timedelta(minutes=15))
        fresh = [span(5000, 5000, start=NOW + timedelta(minutes=14), kind=CLIENT)]
        assert post(srv.url, "/v1/traces", trace_request([("api", fresh)]).SerializeToString()).status_code == 200
    kept = span_rows(store)
    assert (tid(1).hex(), sid(2).hex()) not in kept and (tid(1).hex(), sid(1).hex()) not in kept  # whole, by its start
    assert len(kept) <= 1000 and (tid(5000).hex(), sid(5000).hex()) in kept
    # the oldest go first: the last request's spans are all kept
    assert all((tid(100 + 800 + i).hex(), sid(100 + 800 + i).hex()) in kept for i in range(400))
    assert purge(store, before_ns=0, max_spans=1000) == 0  # within bounds: nothing to do


def test_read_and_recent(store):
    with live(store, FakeClock(NOW)) as srv:
        post(srv.url, "/v1/traces", trace_request([("api", [span(1, 1, start=T0), span(1, 2, parent=1, start=T0, kind=CLIENT)]),
                                                   ("web", [span(2, 3, start=T0 + timedelta(seconds=1))])]).SerializeToString())
    since = int((T0 - timedelta(minutes=1)).timestamp()) * 10**9
    assert recent_traces(store, since) == [tid(2).hex(), tid(1).hex()]
    assert recent_traces(store, since, service="api") == [tid(1).hex()]
    t = read_trace(store, tid(1).hex().upper(), limit=1)
    assert t.truncated and len(t.spans) == 1
    assert read_trace(store, "0" * 32).spans == []
