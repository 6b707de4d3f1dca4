"""The trace store's compact layout (issue 10, OTLP ingest speed): a request's spans are kept as the
request's protobuf (one compressed batch) and one narrow key row per span. What a user relies on:
every field of a span reads back as it did from the older one-row-per-span layout, a span is
counted and shown once however often it is sent (in one request or several; the copy that was
counted is the one shown), retention deletes batches with their last span, a damaged batch is a
clear error (never a trace with a silent hole), spans stored in the older layout keep being read,
deduplicated and purged after the migration, and durations summed per bucket in the request land
in exactly the buckets one observation per span would."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from otlp_helpers import (
    AUTH,
    CLIENT,
    SERVER,
    counters,
    hour_totals,
    live,
    loaded,
    minute_totals,
    ns,
    observations,
    post,
    sid,
    span,
    span_rows,
    tid,
    trace_request,
    traces_response,
    utc,
)
from vigil.clock import FakeClock
from vigil.errors import StoreError
from vigil.store import REVISIONS, open_store
from vigil.telemetry.push import Ingestor
from vigil.traces.store import counts, purge, read_trace

NOW = utc("2026-11-20T12:00:00Z")
T0 = NOW - timedelta(minutes=5)
ROUTE = {"http.route": "/graphql", "http.response.status_code": 200}
API_OK = json.dumps({"code": "200", "error": "false", "kind": "server", "route": "/graphql", "service": "api"}, separators=(",", ":"))


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


def kv(k: str, v: AnyValue) -> KeyValue:
    return KeyValue(key=k, value=v)


def test_a_span_sent_twice_in_one_request_is_counted_and_shown_once(store):
    """Regression: the older layout inserted both copies in one statement, kept one row, and
    counted both (the request's telemetry said 2 for one span)."""
    s1 = span(1, 1, start=T0, attrs=ROUTE)
    with live(store, FakeClock(NOW)) as srv:
        r = post(srv.url, "/v1/traces", trace_request([("api", [s1, s1, span(1, 2, parent=1, start=T0, kind=CLIENT)])]).SerializeToString())
        assert r.status_code == 200 and not traces_response(r).HasField("partial_success")
        t = httpx.get(srv.url + f"/api/v1/traces/{tid(1).hex()}", headers=AUTH, timeout=30).json()
    assert counters(store, "span_requests") == {API_OK: 1}
    assert sum(observations(store, "span_duration_seconds").values()) == 1
    assert minute_totals(store) == hour_totals(store) == (1, 1)
    assert [s["span_id"] for s in t["spans"]] == [sid(1).hex(), sid(2).hex()] and t["connected"]


def test_the_copy_stored_is_the_one_shown_when_an_earlier_copy_was_rejected(store):
    """Two spans with the same ids in one request, the first invalid (it ends before it starts):
    the second is stored and counted, and reading the trace shows the second, not the first."""
    bad = span(1, 1, start=T0, attrs=ROUTE, name="bad copy")
    bad.end_time_unix_nano = bad.start_time_unix_nano - 1
    good = span(1, 1, start=T0, attrs=ROUTE, name="good copy", ms=250)
    with live(store, FakeClock(NOW)) as srv:
        r = post(srv.url, "/v1/traces", trace_request([("api", [bad, good])]).SerializeToString())
    ps = traces_response(r).partial_success
    assert r.status_code == 200 and ps.rejected_spans == 1 and "end at or after" in ps.error_message
    (only,) = read_trace(store, tid(1).hex()).spans
    assert only["name"] == "good copy" and only["duration_ms"] == 250
    assert counters(store, "span_requests") == {API_OK: 1}


def test_every_field_reads_back_from_the_batch(store):
    """Attributes of every value kind (bounded as documented: 64 kept, the rest counted as
    dropped; strings cut at 1,024 characters), the status message, events and links, the service
    of each resource, a name cut at 1,024, parents across requests; a span sent again in a later
    request is shown once, as first stored."""
    root = span(7, 1, start=T0, ms=500, attrs=ROUTE, error=True)
    root.name = "n" * 2000
    root.attributes.extend([
        kv("b", AnyValue(bool_value=True)), kv("d", AnyValue(double_value=1.5)), kv("bytes", AnyValue(bytes_value=b"\x00\x01")),
        kv("arr", AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="x")]))),
        kv("kvl", AnyValue(kvlist_value=KeyValueList(values=[kv("k", AnyValue(string_value="v"))]))),
        kv("long", AnyValue(string_value="y" * 5000)),
    ])
    root.attributes.extend([kv(f"extra.{i}", AnyValue(int_value=i)) for i in range(70)])
    root.dropped_attributes_count = 3
    root.events.add(name="e1")
    root.events.add(name="e2")
    ln = root.links.add()
    ln.trace_id, ln.span_id = tid(9), sid(9)
    child = span(7, 2, parent=1, start=T0 + timedelta(milliseconds=10), ms=20, kind=CLIENT, attrs={"db.system": "postgresql"})
    grandchild = span(7, 3, parent=2, start=T0 + timedelta(milliseconds=12), ms=5, kind=SERVER, attrs=ROUTE)
    with live(store, FakeClock(NOW)) as srv:
        assert post(srv.url, "/v1/traces", trace_request([("web", [root]), ("api", [child])]).SerializeToString()).status_code == 200
        resent = span(7, 2, parent=1, start=T0 + timedelta(milliseconds=10), ms=999, kind=CLIENT)  # same ids, other content
        assert post(srv.url, "/v1/traces", trace_request([("fn", [grandchild, resent])]).SerializeToString()).status_code == 200
        t = httpx.get(srv.url + f"/api/v1/traces/{tid(7).hex()}", headers=AUTH, timeout=30).json()
    assert t["connected"] and t["span_count"] == 3 and t["services"] == ["api", "fn", "web"]
    r, c, g = t["spans"]
    assert (r["span_id"], r["depth"], r["service"], r["kind"], r["status"]) == (sid(1).hex(), 0, "web", "server", "error")
    assert r["name"] == "n" * 1024 and r["duration_ms"] == 500 and r["status_message"] == "boom"
    a = r["attributes"]
    assert len(a) == 64 and a["http.route"] == "/graphql" and a["http.response.status_code"] == 200
    assert (a["b"], a["d"], a["bytes"], a["arr"], a["kvl"]) == (True, 1.5, "AAE=", [1, "x"], {"k": "v"})
    assert a["long"] == "y" * 1024 + "..."
    assert (c["span_id"], c["parent_span_id"], c["depth"], c["service"], c["duration_ms"]) == (sid(2).hex(), sid(1).hex(), 1, "api", 20)
    assert c["attributes"] == {"db.system": "postgresql"}  # the first copy, not the one sent again
    assert (g["span_id"], g["depth"], g["service"]) == (sid(3).hex(), 2, "fn")
    with store.engine.connect() as conn:
        doc = conn.execute(sa.text("SELECT COUNT(*) FROM trace_batches")).scalar_one()
    assert doc == 2 and counts(store)["spans"] == 3
    # what the older layout kept beside the attributes: dropped count, events, links
    from vigil.telemetry.otlp.spans import span_doc

    d = span_doc(root)
    assert d["dropped_attributes"] == 2 + 6 + 70 - 64 + 3 and d["events"] == 2 and d["links"] == [{"trace_id": tid(9).hex(), "span_id": sid(9).hex()}]


def test_a_request_of_only_spans_stored_before_keeps_no_batch(store):
    s1 = span(1, 1, start=T0, attrs=ROUTE)
    with live(store, FakeClock(NOW)) as srv:
        assert post(srv.url, "/v1/traces", trace_request([("api", [s1])]).SerializeToString()).status_code == 200
        other = trace_request([("api", [s1]), ("api", [])])  # other bytes, the same span: a new request, no new span
        r = post(srv.url, "/v1/traces", other.SerializeToString())
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    assert counts(store)["batches"] == 1 and counters(store, "span_requests") == {API_OK: 1}


def test_retention_deletes_a_batch_with_its_last_span(store):
    """A batch holding spans of an old trace and of a recent one stays while the recent trace is
    kept; it goes once the last of its spans has gone."""
    old = span(1, 1, start=NOW - timedelta(minutes=100), kind=CLIENT)
    new = span(2, 2, start=NOW - timedelta(minutes=30), kind=CLIENT)
    with live(store, FakeClock(NOW)) as srv:
        assert post(srv.url, "/v1/traces", trace_request([("api", [old, new])]).SerializeToString()).status_code == 200
    cut = ns(NOW - timedelta(minutes=60))
    assert purge(store, before_ns=cut, max_spans=1000) == 1
    assert span_rows(store) == {(tid(2).hex(), sid(2).hex())} and counts(store)["batches"] == 1
    assert read_trace(store, tid(2).hex()).spans[0]["span_id"] == sid(2).hex() and read_trace(store, tid(1).hex()).spans == []
    assert purge(store, before_ns=ns(NOW), max_spans=1000) == 1
    assert counts(store) == {"spans": 0, "oldest_start_ns": None, "newest_start_ns": None, "batches": 0}


def test_a_damaged_batch_is_a_clear_error_not_a_trace_with_a_hole(store, cli):
    with live(store, FakeClock(NOW)) as srv:
        body = trace_request([("api", [span(1, 1, start=T0), span(1, 2, parent=1, start=T0, kind=CLIENT)])]).SerializeToString()
        assert post(srv.url, "/v1/traces", body).status_code == 200
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE trace_batches SET body = :b"), {"b": b"not zlib"})
    with pytest.raises(StoreError) as e:
        read_trace(store, tid(1).hex())
    assert "cannot be read" in str(e.value) and e.value.hint
    res = cli("trace", "show", tid(1).hex(), "--db", store.url)
    assert res.code == 3 and "cannot be read" in res.err and "Traceback" not in res.err
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM trace_batches"))
    res = cli("trace", "show", tid(1).hex(), "--db", store.url, "--json")
    assert res.code == 3 and "missing from the store" in json.loads(res.out)["error"]["message"]


def test_spans_stored_in_the_older_layout_are_read_deduplicated_and_purged(db_url):
    """A store at revision 0012 holding spans in ``trace_spans``: migrated, its spans are still read
    (beside new ones of the same trace), one of them sent again is not counted again, and they are
    purged whole with their trace."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            cfg = Config()
            cfg.set_main_option("script_location", str(REVISIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0012")
            row = {"trace_id": tid(1).hex(), "span_id": sid(1).hex(), "parent_span_id": "", "service": "api", "name": "GET /graphql",
                   "kind": SERVER, "start_ns": ns(T0), "end_ns": ns(T0) + 100_000_000, "status": 0,
                   "attrs": json.dumps({"attributes": {"http.route": "/graphql"}}), "received_ms": 0}
            conn.execute(sa.text("INSERT INTO trace_spans VALUES (:trace_id, :span_id, :parent_span_id, :service, :name, :kind, "
                                 ":start_ns, :end_ns, :status, :attrs, :received_ms)"), row)
            conn.commit()
    finally:
        engine.dispose()
    store = open_store(db_url)
    try:
        assert counts(store)["spans"] == 1
        again = span(1, 1, start=T0, attrs=ROUTE)  # sent again after the upgrade: stored before, not counted
        child = span(1, 2, parent=1, start=T0 + timedelta(milliseconds=5), ms=10, kind=CLIENT)
        with live(store, FakeClock(NOW)) as srv:
            r = post(srv.url, "/v1/traces", trace_request([("api", [again, child])]).SerializeToString())
            assert r.status_code == 200
        assert counters(store, "span_requests") == {}
        t = read_trace(store, tid(1).hex())
        assert t.connected and [(s["span_id"], s["name"]) for s in t.spans] == [(sid(1).hex(), "GET /graphql"), (sid(2).hex(), "GET /items")]
        assert t.spans[0]["attributes"] == {"http.route": "/graphql"}  # the row of the older layout
        assert purge(store, before_ns=ns(NOW), max_spans=1000) == 2
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM trace_spans")).scalar_one() == 0
        assert counts(store)["batches"] == 0
    finally:
        store.close()


def test_durations_summed_per_bucket_land_where_one_observation_per_span_would(tmp_path):
    """The receiver sums a request's durations per series, minute and bucket before the store
    sees them; the store must hold exactly what one observation line per span (the exact duration
    in seconds) gives: at bounds, one nanosecond over, far past the last bound, and at random."""
    rnd = random.Random(7)
    via_otlp = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    via_lines = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        ing = Ingestor(loaded().spec, via_lines)
        bounds = ing.context(NOW).bounds_ns
        picks = [bounds[0], bounds[0] + 1, 300_000_000, 300_000_001, bounds[-1], bounds[-1] + 1, 2 * bounds[-1], 1]
        picks += [bounds[rnd.randrange(len(bounds))] + rnd.choice((-1, 0, 1)) for _ in range(200)]
        picks += [int(rnd.lognormvariate(-3, 2) * 1e9) + 1 for _ in range(300)]
        spans, lines = [], []
        for i, d in enumerate(picks):
            sp = span(1000 + i, 1000 + i, start=NOW - timedelta(hours=3, seconds=i % 90), attrs=ROUTE)
            sp.end_time_unix_nano = sp.start_time_unix_nano + d
            spans.append(sp)
            end = sp.end_time_unix_nano // 1_000_000_000
            lines.append((i + 1, {"ts": f"{utc_ts(end)}", "metric": "span_duration_seconds", "labels": json.loads(API_OK), "observe": d / 1e9}))
        with live(via_otlp, FakeClock(NOW)) as srv:
            assert post(srv.url, "/v1/traces", trace_request([("api", spans)]).SerializeToString()).status_code == 200
        ing.push_lines(lines, NOW)
        got, want = observations(via_otlp, "span_duration_seconds"), observations(via_lines, "span_duration_seconds")
        assert got == want and sum(got.values()) == len(picks)
        assert len(got) > 100  # many buckets exercised
    finally:
        via_otlp.close()
        via_lines.close()


def utc_ts(sec: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")



def test_past_max_spans_the_traces_of_the_earliest_batches_go_whole(store):
    """Size retention without an index of every span's start: the earliest received batches that
    hold the excess, and every trace with a span in them, also its spans in later batches."""
    reqs = [
        [span(1, 1, start=T0, kind=CLIENT), span(2, 2, start=T0, kind=CLIENT)],                          # batch 1
        [span(1, 3, parent=1, start=T0, kind=CLIENT), span(3, 4, start=T0, kind=CLIENT)],                # batch 2
        [span(4, 5, start=T0, kind=CLIENT), span(4, 6, parent=5, start=T0, kind=CLIENT)],                # batch 3
    ]
    with live(store, FakeClock(NOW)) as srv:
        for spans in reqs:
            assert post(srv.url, "/v1/traces", trace_request([("api", spans)]).SerializeToString()).status_code == 200
    assert purge(store, before_ns=0, max_spans=6) == 0  # within bounds
    assert purge(store, before_ns=0, max_spans=5) == 3  # one too many: batch 1's traces, whole (1 and 2, and 1's span in batch 2)
    assert span_rows(store) == {(tid(3).hex(), sid(4).hex()), (tid(4).hex(), sid(5).hex()), (tid(4).hex(), sid(6).hex())}
    assert counts(store)["batches"] == 2 and read_trace(store, tid(1).hex()).spans == []
    assert purge(store, before_ns=0, max_spans=1) == 3  # batches 2 and 3 hold the excess of 2
    assert counts(store)["spans"] == 0 and counts(store)["batches"] == 0


def test_copies_of_a_span_whose_telemetry_the_store_refuses_are_rejected_together(store):
    """A span sent five times in one request whose telemetry the store refuses (its metric
    registered as another kind): every copy is rejected at once, not one per pass until the passes
    run out (that answered 503, and the exporter would retry the request forever)."""
    Ingestor(loaded().spec, store).push_lines([(1, {"ts": "2026-11-20T11:50:00Z", "metric": "span_duration_seconds", "inc": 1})], NOW)
    s1 = span(1, 1, start=T0, attrs=ROUTE)
    with live(store, FakeClock(NOW)) as srv:
        r = post(srv.url, "/v1/traces", trace_request([("api", [s1] * 5 + [span(1, 2, parent=1, start=T0, kind=CLIENT)])]).SerializeToString())
    ps = traces_response(r).partial_success
    assert r.status_code == 200 and ps.rejected_spans == 5 and "span_duration_seconds" in ps.error_message
    assert span_rows(store) == {(tid(1).hex(), sid(2).hex())} and counters(store, "span_requests") == {}


def test_a_huge_span_is_kept_trimmed_to_what_is_shown(store):
    """A request of 2 MB for one span (thousands of long attributes, events and links, a long name,
    values nested past the rendering depth): the store keeps no more of it than the span's shown
    document takes, and the span reads back exactly as the request as sent would: a span costs the
    store no more than its bounds."""
    import zlib

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from vigil.telemetry.otlp.spans import span_doc, span_fields

    def nested(depth: int) -> AnyValue:
        v = AnyValue(string_value="z" * 3000)
        for d in range(depth):
            v = AnyValue(array_value=ArrayValue(values=[v] * 3)) if d % 2 else AnyValue(
                kvlist_value=KeyValueList(values=[kv("k" * 300, v), kv("b", AnyValue(bytes_value=b"\x07" * 2000))]))
        return v

    sp = span(1, 1, start=T0, attrs=ROUTE, error=True)
    sp.name = "n" * 100_000
    sp.status.message = "m" * 50_000
    sp.attributes.extend([kv(f"a{i}" + "k" * 300, AnyValue(string_value="v" * 600)) for i in range(3000)])
    sp.attributes.insert(0, kv("deep", nested(12)))
    sp.attributes.insert(1, kv("wide", AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=i) for i in range(5000)]))))
    sp.dropped_attributes_count = 7
    for i in range(5000):
        sp.events.add(name=f"event {i}" * 20)
    for i in range(50):
        ln = sp.links.add(trace_id=tid(100 + i), span_id=sid(100 + i), trace_state="x" * 1000)
        ln.attributes.append(kv("a", AnyValue(string_value="y" * 1000)))
    req = trace_request([("api", [sp])])
    req.resource_spans[0].resource.attributes.extend([kv(f"r{i}", AnyValue(string_value="r" * 1000)) for i in range(200)])
    body = req.SerializeToString()
    assert len(body) > 2_000_000
    with live(store, FakeClock(NOW)) as srv:
        r = post(srv.url, "/v1/traces", body)
        assert r.status_code == 200 and not traces_response(r).HasField("partial_success")
    with store.engine.connect() as conn:
        (kept,) = conn.execute(sa.text("SELECT body FROM trace_batches")).one()
    data = zlib.decompress(kept)
    shown = len(json.dumps(span_doc(sp), separators=(",", ":")))
    assert len(data) < shown + 8 * 1024 and len(data) < len(body) // 10, (len(data), shown)
    back = ExportTraceServiceRequest()
    back.ParseFromString(data)
    got = back.resource_spans[0].scope_spans[0].spans[0]
    assert span_fields(got, "api") == span_fields(sp, "api")  # ids, name, kind, times, status and the shown document
    d = span_doc(sp)
    assert d["dropped_attributes"] == 3002 + 2 + 7 - 64 and d["events"] == 5000 and len(d["links"]) == 16
    (node,) = read_trace(store, tid(1).hex()).spans
    assert node["attributes"] == d["attributes"] and node["name"] == "n" * 1024 and node["status_message"] == "m" * 1024
    assert counters(store, "span_requests") == {API_OK.replace('"error":"false"', '"error":"true"'): 1}


def test_recent_traces_and_reads_through_the_batches(db_url):
    """recent_traces finds spans by time through their batches' start range (no index of every
    span's start), newest first, by service; on SQLite and PostgreSQL."""
    from vigil.traces.store import recent_traces

    store = open_store(db_url)
    try:
        with live(store, FakeClock(NOW)) as srv:
            for n, (svc, minutes) in enumerate([("api", 50), ("web", 30), ("api", 10)], start=1):
                spans = [span(n, 10 * n, start=NOW - timedelta(minutes=minutes)),
                         span(n, 10 * n + 1, parent=10 * n, start=NOW - timedelta(minutes=minutes - 1), kind=CLIENT)]
                assert post(srv.url, "/v1/traces", trace_request([(svc, spans)]).SerializeToString()).status_code == 200
        since = ns(NOW - timedelta(minutes=40))
        assert recent_traces(store, since) == [tid(3).hex(), tid(2).hex()]
        assert recent_traces(store, since, service="api") == [tid(3).hex()]
        assert recent_traces(store, ns(NOW - timedelta(hours=2)), service="api") == [tid(3).hex(), tid(1).hex()]
        assert recent_traces(store, ns(NOW)) == []
        t = read_trace(store, tid(2).hex().upper())
        assert t.connected and [s["service"] for s in t.spans] == ["web", "web"]
    finally:
        store.close()
