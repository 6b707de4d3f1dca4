"""Alert state in a real store (SQLite and PostgreSQL): one transaction per evaluation, gap-free
transition numbers read exactly once by a cursor, restarts that neither forget a firing alert nor
page it again, an instant never evaluated twice, the embedded source giving the same readings as
the in-memory twin, and a failing store reported, not swallowed."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from helpers import push
from vigil.alerting.evaluate import MemoryState, evaluate_rules, read_rules
from vigil.alerting.rules import Reading, Timing
from vigil.alerting.state import active_alerts, evaluations, instances, last_seq, read_transitions, record_evaluation
from vigil.errors import StoreError
from vigil.spec import parse_spec
from vigil.store import open_store
from vigil.telemetry.sources import open_source
from vigil.telemetry.sources.memory import MemorySource

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)

SPEC = parse_spec("""\
version: 1
services: {api: {}, search: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli: {ratio: {good: 'http_requests{service="api",code!~"5.."}', total: 'http_requests{service="api"}'}}
alerts:
  - name: backlog
    service: api
    threshold: {metric: 'queue_depth{queue="outbox"}', aggregate: max, over: 5m, value: 1000}
    for: 3m
  - name: api-burn
    burn_rate: {slo: api-availability, severities: [page]}
  - name: search-down
    service: search
    absent: {metric: search_up, over: 5m}
  - name: spike
    service: api
    spike: {metric: 'http_requests{service="api",code=~"5.."}', factor: 5, floor: 0.1/s}
  - name: slow
    service: api
    threshold: {metric: lat, type: latency, quantile: 90%, over: 10m, value: 250ms}
""")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


def _rows(minutes: range) -> list[dict]:
    rows = []
    for i in minutes:
        ts = (T0 + timedelta(minutes=i, seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append({"ts": ts, "metric": "queue_depth", "labels": {"queue": "outbox"}, "set": 50 if i < 20 else 5000})
        rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 990})
        bad = 10 if i < 40 else 100
        rows.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "500"}, "inc": bad})
        if i < 30:
            rows.append({"ts": ts, "metric": "search_up", "set": 1})
        rows.append({"ts": ts, "metric": "lat", "observe": 0.1 if i < 25 else 0.4, "count": 5})
    return rows


def _mem(minutes: range, bounds=None) -> MemorySource:
    """The in-memory twin; ``bounds``: the store's layout it mirrors (the documented bounds unless given)."""
    src = MemorySource(bounds)
    src.add_rows(_rows(minutes))
    return src


def _evaluate(store, minute: int):
    return evaluate_rules(store, open_source(SPEC.telemetry, store), list(SPEC.alerts), slos=list(SPEC.slos),
                          at=T0 + timedelta(minutes=minute), spec_sha256="ab" * 32)


def test_the_embedded_store_reads_what_the_in_memory_twin_reads(db_url):
    store = open_store(db_url)
    try:
        push(store, SPEC, _rows(range(0, 60)), T0 + timedelta(minutes=61))
        mem = _mem(range(0, 60), sorted(store.bounds()))  # the twin of the store's layout (2% buckets)
        for minute in (5, 21, 26, 31, 36, 45, 60):
            at = T0 + timedelta(minutes=minute)
            a = read_rules(list(SPEC.alerts), list(SPEC.slos), open_source(SPEC.telemetry, store), at)
            b = read_rules(list(SPEC.alerts), list(SPEC.slos), mem, at)
            assert not a.failed and not b.failed
            flat = lambda r: {k: [(x.holds, x.value, x.annotations) for x in v] for k, v in r.by_rule.items()}
            assert flat(a) == flat(b), minute
    finally:
        store.close()


def test_transitions_persist_once_and_survive_a_restart(db_url):
    store = open_store(db_url)
    push(store, SPEC, _rows(range(0, 60)), T0 + timedelta(minutes=61))
    seen = []
    cursor = 0
    for minute in range(18, 26):
        ev = _evaluate(store, minute)
        assert ev.recorded.recorded
        got = read_transitions(store, after=cursor)
        cursor = got[-1].seq if got else cursor
        seen += got
    backlog = [(a.at, a.previous, a.state) for a in seen if a.rule == "backlog"]
    # the outbox passes 1000 at minute 20: in the 5m window from 21 on; pending 21, firing 24 (for 3m)
    assert backlog == [(T0 + timedelta(minutes=21), "inactive", "pending"), (T0 + timedelta(minutes=24), "pending", "firing")]
    seqs = [a.seq for a in seen]
    assert seqs == list(range(1, len(seqs) + 1))  # gap-free, from 1
    firing_at = {a.rule: a.fired_at for a in active_alerts(store) if a.state == "firing"}
    assert firing_at["backlog"] == T0 + timedelta(minutes=24)
    store.close()

    # a restart: the same store opened again, evaluation goes on
    store = open_store(db_url)
    try:
        before = last_seq(store)
        ev = _evaluate(store, 26)
        assert ev.recorded.recorded
        assert [t for t in ev.transitions if t.rule == "backlog"] == []  # still firing: not paged again
        assert {i.rule: i.state for i in instances(store)}["backlog"] == "firing"
        assert read_transitions(store, after=cursor) == list(read_transitions(store, after=before))
        # the same instant again: nothing written
        n = last_seq(store)
        again = _evaluate(store, 26)
        assert (again.recorded.recorded, again.recorded.reason) == (False, "already evaluated")
        older = _evaluate(store, 25)
        assert (older.recorded.recorded, older.recorded.reason) == (False, "stale")
        assert last_seq(store) == n
        assert len(evaluations(store, limit=100)) == 9
    finally:
        store.close()


def test_a_pending_alert_keeps_its_start_across_a_restart(db_url):
    store = open_store(db_url)
    push(store, SPEC, _rows(range(0, 40)), T0 + timedelta(minutes=41))
    _evaluate(store, 21)
    store.close()
    store = open_store(db_url)
    try:
        pend = {i.rule: i for i in instances(store)}["backlog"]
        assert pend.state == "pending" and pend.active_at == T0 + timedelta(minutes=21)
        ev = _evaluate(store, 23)  # 2 minutes: not yet
        assert "backlog" not in {t.rule for t in ev.transitions}
        ev = _evaluate(store, 24)  # 3 minutes after the first pending evaluation
        assert [(t.previous, t.state) for t in ev.transitions if t.rule == "backlog"] == [("pending", "firing")]
    finally:
        store.close()


def test_a_fence_that_says_no_writes_nothing_and_its_token_is_recorded(db_url):
    store = open_store(db_url)
    try:
        push(store, SPEC, _rows(range(0, 30)), T0 + timedelta(minutes=31))

        class NotLeader(Exception):
            pass

        def lost(conn):
            raise NotLeader()

        with pytest.raises(NotLeader):
            evaluate_rules(store, open_source(SPEC.telemetry, store), list(SPEC.alerts), slos=list(SPEC.slos),
                           at=T0 + timedelta(minutes=25), fence=lost)
        assert last_seq(store) == 0 and evaluations(store) == []
        ev = evaluate_rules(store, open_source(SPEC.telemetry, store), list(SPEC.alerts), slos=list(SPEC.slos),
                            at=T0 + timedelta(minutes=25), fence=lambda conn: 42)
        assert ev.recorded.recorded and evaluations(store)[0]["fence"] == 42
    finally:
        store.close()


def test_a_failing_rule_is_recorded_and_keeps_its_state(db_url):
    store = open_store(db_url)
    try:
        lab = {"alertname": "r", "service": "api", "severity": "page"}
        t = {"r": Timing()}
        record_evaluation(store, T0, {"r": [Reading(lab, True, Decimal(1))]}, t)
        rec = record_evaluation(store, T0 + timedelta(minutes=1), {}, t, failed={"r": "ValueError: boom"})
        assert rec.recorded and rec.transitions == []
        assert [i.state for i in instances(store)] == ["firing"]
        assert evaluations(store)[0]["errors"] == [{"rule": "r", "error": "ValueError: boom"}]
    finally:
        store.close()


@pytest.mark.postgres
def test_concurrent_evaluators_never_share_or_skip_a_number(pg_db_url):
    """Two evaluators racing (a leader and a stale one): every transition gets its own number,
    numbers are gap-free in commit order, and an instant is recorded once."""
    stores = [open_store(pg_db_url) for _ in range(4)]
    try:
        errors: list[BaseException] = []
        recorded: list[tuple[int, bool]] = []

        def run(k: int) -> None:
            try:
                for i in range(15):
                    minute = i * 4 + k
                    lab = {"alertname": f"r{minute % 3}", "service": "api", "severity": "page"}
                    r = record_evaluation(stores[k], T0 + timedelta(minutes=minute),
                                          {f"r{j}": [Reading({**lab, 'alertname': f'r{j}'}, (minute + j) % 2 == 0)] for j in range(3)},
                                          {f"r{j}": Timing() for j in range(3)})
                    recorded.append((minute, r.recorded))
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not errors, errors
        seqs = [a.seq for a in read_transitions(stores[0], after=0, limit=10_000)]
        assert seqs == list(range(1, len(seqs) + 1))
        with stores[0].engine.connect() as conn:
            ats = conn.execute(sa.text("SELECT at_ms FROM alert_evaluations ORDER BY id")).scalars().all()
        assert ats == sorted(ats) and len(ats) == len(set(ats)) == sum(1 for _, ok in recorded if ok)
    finally:
        for s in stores:
            s.close()


def test_a_broken_store_is_an_external_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    try:
        store.engine.dispose()
        (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
        with pytest.raises(StoreError) as e:
            record_evaluation(store, T0, {}, {})
        assert e.value.exit_code == 3 and "recording the alert evaluation failed" in e.value.message
    finally:
        store.close()


def test_memory_state_replays_like_the_store(tmp_path):
    """The replay used by `vigil alerts test` and --what-if numbers and steps like the store."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        push(store, SPEC, _rows(range(0, 60)), T0 + timedelta(minutes=61))
        mem = MemoryState()
        src = _mem(range(0, 60), sorted(store.bounds()))
        for minute in range(15, 50, 3):
            _evaluate(store, minute)
            mem.evaluate(list(SPEC.alerts), list(SPEC.slos), src, T0 + timedelta(minutes=minute))
        stored = [a.to_dict() for a in read_transitions(store)]
        assert stored == [a.to_dict() for a in mem.log]
        assert len(stored) >= 5
    finally:
        store.close()
