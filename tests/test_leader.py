"""The leader lease and its fencing, in one process, on SQLite and on a real PostgreSQL.

Lease times are injected (``now_ms``) so expiry is exact; PostgreSQL's row locks are real (the
takeover waits for the old leader's open transaction). The real-process failover (SIGKILL of a
``vigil serve``) is in test_leader_failover.py.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from vigil.alerting.dispatch import Dispatcher
from vigil.alerting.leader import Lease, LostLease, due_instants, evaluate_due, last_evaluation_ms
from vigil.alerting.outbox import cursor, outbox
from vigil.alerting.receivers import Result
from vigil.alerting.rules import Reading, Timing
from vigil.alerting.state import evaluations, record_evaluation
from vigil.clock import FakeClock
from vigil.spec import LoadedSpec, parse_spec
from vigil.store import open_store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


class Now:
    def __init__(self, ms: int = 1_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class Mono:
    """A monotonic clock the test moves (the lease's local view of its validity)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_one_leader_at_a_time_and_a_takeover_after_expiry(db_url):
    store = open_store(db_url)
    now, mono = Now(), Mono()
    a = Lease(store, ttl_s=10, holder="a", now_ms=now, monotonic=mono)
    b = Lease(store, ttl_s=10, holder="b", now_ms=now, monotonic=mono)
    assert a.try_acquire() and a.fence == 1 and a.held()
    assert not b.try_acquire() and not b.held()
    now.ms += 9_000
    assert a.try_acquire() and a.fence == 1  # renewed, same fence
    now.ms += 9_000
    assert not b.try_acquire()  # renewed 9 s ago: still a's
    now.ms += 1_001
    assert b.try_acquire() and b.fence == 2  # a stopped renewing: expired, taken with the next fence
    assert not a.try_acquire() and a.fence is None and not a.held()
    # a clean stop hands over at once
    b.release()
    assert a.try_acquire() and a.fence == 3
    store.close()


def test_a_leader_that_cannot_renew_stops_acting_before_its_lease_expires(db_url):
    store = open_store(db_url)
    mono = Mono()
    a = Lease(store, ttl_s=10, holder="a", now_ms=Now(), monotonic=mono)
    assert a.try_acquire()
    mono.t += 8.9
    assert a.held()
    mono.t += 0.2  # 9.1 s without a renewal: past 90% of the lease
    assert not a.held()
    store.close()


SPEC = """\
version: 1
services: {api: {}}
alerts:
  - {name: q, service: api, threshold: {metric: queue_depth, value: 10}}
alerting:
  evaluation_interval: 10s
  receivers:
    - {name: r, webhook: {url: 'http://127.0.0.1:9/x', secret_env: S}}
  route: {receiver: r, group_wait: 0s}
"""


class Sink:
    kind = "webhook"
    can_acknowledge = False

    def __init__(self) -> None:
        self.keys: list[str] = []

    def send(self, out):
        self.keys.append(out.key)
        return Result("delivered", 200)

    def close(self) -> None:
        return None


def _fire(store, at, fence=None):
    return record_evaluation(store, at, {"q": [Reading({"alertname": "q", "service": "api", "severity": "page"}, True, Decimal(11))]},
                             {"q": Timing()}, fence=fence)


def test_a_stale_leader_writes_nothing(db_url):
    """After a takeover, every write of the old leader is refused inside its transaction: the
    evaluation, the routing cursor, the outbox and the attempts."""
    store = open_store(db_url)
    spec = parse_spec(SPEC.encode(), filename="v.yaml")
    now, mono = Now(), Mono()
    a = Lease(store, ttl_s=10, holder="a", now_ms=now, monotonic=mono)
    b = Lease(store, ttl_s=10, holder="b", now_ms=now, monotonic=mono)
    assert a.try_acquire()
    clock = FakeClock("2026-05-01T00:00:00Z")
    assert _fire(store, clock.now(), fence=a.check).recorded
    now.ms += 10_001
    assert b.try_acquire()
    with pytest.raises(LostLease):
        _fire(store, datetime(2026, 5, 1, 0, 0, 10, tzinfo=timezone.utc), fence=a.check)
    assert len(evaluations(store)) == 1
    sink = Sink()
    a.fence = 1  # the old leader still believes it leads (a paused process)
    old = Dispatcher(store, spec.alerting, {"r": sink}, clock, fence=a.check)
    with pytest.raises(LostLease):
        old.tick()
    assert cursor(store, "routing") == 0 and outbox(store) == [] and sink.keys == []
    new = Dispatcher(store, spec.alerting, {"r": sink}, clock, fence=b.check, held=b.held)
    new.tick()
    assert cursor(store, "routing") == 1 and [r.status for r in outbox(store)] == ["delivered"] and len(sink.keys) == 1
    store.close()


@pytest.mark.postgres
def test_a_takeover_waits_for_the_old_leaders_open_transaction(pg_db_url):
    """On PostgreSQL the fenced write holds the lease row FOR SHARE; the takeover's FOR UPDATE waits
    for it, so the old leader's write commits before the new fence exists, never after."""
    store = open_store(pg_db_url)
    now = Now()
    a = Lease(store, ttl_s=10, holder="a", now_ms=now)
    b = Lease(store, ttl_s=10, holder="b", now_ms=now)
    assert a.try_acquire()
    conn = store.engine.connect()
    assert a.check(conn) == 1  # an open transaction of the leader
    now.ms += 10_000  # inside it, the lease runs out
    got: list[object] = []

    def take() -> None:
        try:
            got.append(b.try_acquire())
        except Exception as e:  # said in the assertion below, not lost in a thread
            got.append(e)

    t = threading.Thread(target=take)
    t.start()
    # the takeover is blocked on the row lock: wait (bounded) until PostgreSQL says so
    deadline = time.monotonic() + 20
    with store.engine.connect() as probe:
        while time.monotonic() < deadline and not got:
            n = probe.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
            )).scalar()
            probe.commit()
            if n:
                break
            time.sleep(0.02)
        assert n == 1 and got == [], got
    conn.execute(sa.text("SELECT 1"))
    conn.commit()
    conn.close()
    t.join(timeout=20)
    assert got == [True] and b.fence == 2
    store.close()


def test_due_instants_catch_up_oldest_first_and_say_what_they_leave_out():
    assert due_instants(None, 125_000, 10_000) == ([120_000], 0)
    assert due_instants(100_000, 125_000, 10_000) == ([110_000, 120_000], 0)
    assert due_instants(120_000, 125_000, 10_000) == ([], 0)
    assert due_instants(100_000, 200_000, 10_000, max_catch_up=3) == ([180_000, 190_000, 200_000], 7)


def test_a_new_leader_evaluates_every_instant_the_old_one_missed_once(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    loaded = LoadedSpec(parse_spec(SPEC.encode(), filename="v.yaml"), None, "0" * 64)
    from vigil.telemetry.sources import open_source

    def src():
        return open_source(loaded.spec.telemetry, store)

    now = Now(1_800_000_000_000)
    a = Lease(store, ttl_s=10, holder="a", now_ms=now)
    b = Lease(store, ttl_s=10, holder="b", now_ms=now)
    assert a.try_acquire()
    t0 = 1_800_000_000_000
    for k in range(3):
        evaluate_due(store, loaded, src, a, t0 + k * 10_000)
    assert last_evaluation_ms(store) == t0 + 20_000
    # a dies; b takes over 45 s later and catches up every grid instant in between, in order
    now.ms = t0 + 65_000
    assert b.try_acquire()
    evs = evaluate_due(store, loaded, src, b, t0 + 65_000)
    assert [int(e.at.timestamp() * 1000) for e in evs] == [t0 + k * 10_000 for k in range(3, 7)]
    assert evaluate_due(store, loaded, src, b, t0 + 65_000) == []  # nothing twice
    got = sorted(e["at_ms"] for e in evaluations(store, limit=100))
    assert got == [t0 + k * 10_000 for k in range(7)]
    assert {e["fence"] for e in evaluations(store, limit=100)} == {1, 2}
    store.close()
