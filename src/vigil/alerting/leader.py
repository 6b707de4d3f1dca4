"""One leader among ``vigil serve`` replicas: a lease row with a fencing token.

Every replica serves the API and ingests; only the holder of the ``alerting`` lease evaluates the
rules and dispatches notifications. The lease is a row of ``leader_leases``: its holder, its
``fence`` (one more each time the holder changes) and when it expires. A replica renews it every
``poll`` (default a third of the lease); a replica that finds it expired takes it with the next
fence. Times are the database's clock on PostgreSQL (``clock_timestamp()``: replicas on machines
whose clocks differ agree), the process's clock on SQLite (one machine).

**Fencing.** Every write the leader makes (an evaluation, the routing cursor, a group, an outbox
row, an attempt) runs in a transaction that first reads the lease row (``FOR SHARE`` on
PostgreSQL; SQLite's write lock serialises everything) and aborts unless this replica still holds
it with its fence, unexpired. A takeover updates the row ``FOR UPDATE``, so it waits for the old
leader's open transaction; once it commits, no write of the old leader can commit. A paused old
leader may still *send* one notification it had in hand when it lost the lease: the receivers'
idempotency keys (PagerDuty's dedup_key, X-Vigil-Delivery, Message-ID) make that repeat harmless,
and :meth:`Lease.held` (checked before every send) keeps the window to the lease's length.

**Takeover bound.** A leader that dies (SIGKILL) stops renewing; its lease expires at most
``lease`` after its last renewal, and a follower polling every ``poll`` takes it within ``poll``
after that: another replica leads within ``lease + poll`` (20 s by default; the tests check
2 s + 0.5 s). A leader that stops cleanly releases the lease at once.

**Evaluations** are instants on a grid (multiples of ``evaluation_interval`` since the epoch). A new
leader evaluates every grid instant after the newest one recorded, oldest first (none skipped; at
most :data:`MAX_CATCH_UP`, the gap beyond that reported), and the store refuses an instant already
recorded (none doubled).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from vigil.errors import VigilError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from vigil.store import Store

LEASE = "alerting"
MAX_CATCH_UP = 1000


class LostLease(VigilError):
    """This replica no longer holds the leader lease: the write was not made."""

    code = "not-leader"
    http_status = 409


def holder_id() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def write_txn(store: "Store") -> Iterator["Connection"]:
    """A write transaction that takes SQLite's write lock at once (PostgreSQL: an ordinary one)."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


class Lease:
    """This replica's view of the lease. ``now_ms`` overrides the clock (tests)."""

    def __init__(self, store: "Store", *, ttl_s: float, name: str = LEASE, holder: str | None = None,
                 now_ms: Callable[[], int] | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.name = name
        self.holder = holder or holder_id()
        self.ttl_ms = int(ttl_s * 1000)
        self._now_ms = now_ms
        self._mono = monotonic
        self.fence: int | None = None
        self._valid_until = 0.0  # monotonic time until which this replica may act as leader
        self._lock = threading.Lock()

    # -- time -----------------------------------------------------------------------------------

    def _db_now(self, conn: "Connection") -> int:
        if self._now_ms is not None:
            return int(self._now_ms())
        if conn.dialect.name == "postgresql":
            import sqlalchemy as sa

            return int(conn.execute(sa.text("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")).scalar_one())
        return int(time.time() * 1000)

    # -- acquire, renew, release -----------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Renew the lease if this replica holds it, take it if it expired; True when this replica
        leads now. A database error is raised (the caller stops leading at :meth:`held`'s bound)."""
        import sqlalchemy as sa

        from vigil.alerting.delivery_tables import leader_leases as t
        from vigil.store import db_errors

        started = self._mono()
        with db_errors("the leader lease"), write_txn(self.store) as conn:
            q = sa.select(t).where(t.c.name == self.name)
            if conn.dialect.name == "postgresql":
                q = q.with_for_update()
            row = conn.execute(q).first()
            now = self._db_now(conn)
            exp = now + self.ttl_ms
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(t), [{"name": self.name, "holder": self.holder, "fence": 1, "acquired_ms": now,
                                                     "renewed_ms": now, "expires_ms": exp}])
                except sa.exc.IntegrityError:
                    return self._lost()  # another replica created it first
                fence = 1
            elif row.holder == self.holder and row.fence == self.fence and row.expires_ms > now:
                conn.execute(sa.update(t).where(t.c.name == self.name).values(renewed_ms=now, expires_ms=exp))
                fence = int(row.fence)
            elif row.expires_ms <= now:
                fence = int(row.fence) + 1
                conn.execute(sa.update(t).where(t.c.name == self.name).values(
                    holder=self.holder, fence=fence, acquired_ms=now, renewed_ms=now, expires_ms=exp))
            else:
                return self._lost()
        with self._lock:
            self.fence = fence
            # act as leader for the lease's length from before the renewal began, less a margin
            self._valid_until = started + self.ttl_ms / 1000 * 0.9
        return True

    def _lost(self) -> bool:
        with self._lock:
            self.fence = None
            self._valid_until = 0.0
        return False

    def held(self) -> bool:
        """Does this replica hold the lease now, as far as it knows without asking the database?"""
        with self._lock:
            return self.fence is not None and self._mono() < self._valid_until

    def release(self) -> None:
        """Give the lease up now (a clean shutdown): a follower takes it at its next poll."""
        import sqlalchemy as sa

        from vigil.alerting.delivery_tables import leader_leases as t
        from vigil.store import db_errors

        fence = self.fence
        self._lost()
        if fence is None:
            return
        with db_errors("releasing the leader lease"), write_txn(self.store) as conn:
            conn.execute(sa.update(t).where(t.c.name == self.name, t.c.holder == self.holder, t.c.fence == fence)
                         .values(expires_ms=0))

    # -- fencing ---------------------------------------------------------------------------------

    def check(self, conn: "Connection") -> int:
        """Inside a write transaction: the fence, or :class:`LostLease` (the transaction must abort)."""
        import sqlalchemy as sa

        from vigil.alerting.delivery_tables import leader_leases as t

        fence = self.fence
        if fence is None:
            raise LostLease("this replica is not the leader", hint="only the leader evaluates and dispatches")
        q = sa.select(t).where(t.c.name == self.name)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(read=True)
        row = conn.execute(q).first()
        if row is None or row.holder != self.holder or int(row.fence) != fence or row.expires_ms <= self._db_now(conn):
            self._lost()
            raise LostLease(f"the leader lease moved on (fence {fence} is stale)", hint="another replica leads now")
        return fence


def current(store: "Store", name: str = LEASE) -> dict | None:
    """Who holds the lease (for status pages): holder, fence, times; None when nobody ever did."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import leader_leases as t
    from vigil.store import db_errors

    with db_errors("reading the leader lease"), store.engine.connect() as conn:
        r = conn.execute(sa.select(t).where(t.c.name == name)).first()
    return None if r is None else dict(r._mapping)


# -- evaluation instants ------------------------------------------------------------------------------


def due_instants(last_ms: int | None, now_ms: int, interval_ms: int, *, max_catch_up: int = MAX_CATCH_UP) -> tuple[list[int], int]:
    """Grid instants (multiples of ``interval_ms``) after ``last_ms`` up to ``now_ms``, oldest first,
    and how many older ones were left out beyond ``max_catch_up``. Without a last instant, only the
    newest grid instant is due."""
    newest = now_ms - now_ms % interval_ms
    if last_ms is None:
        return [newest], 0
    first = last_ms - last_ms % interval_ms + interval_ms
    if first > newest:
        return [], 0
    n = (newest - first) // interval_ms + 1
    skipped = max(0, n - max_catch_up)
    start = first + skipped * interval_ms
    return list(range(start, newest + 1, interval_ms)), skipped


def last_evaluation_ms(store: "Store") -> int | None:
    import sqlalchemy as sa

    from vigil.alerting.tables import alert_evaluations as t
    from vigil.store import db_errors

    with db_errors("reading alert evaluations failed"), store.engine.connect() as conn:
        v = conn.execute(sa.select(sa.func.max(t.c.at_ms))).scalar()
    return None if v is None else int(v)


def evaluate_due(store: "Store", loaded: Any, source_factory: Callable[[], Any], lease: Lease | None, now_ms: int,
                 *, log: Callable[[str], None] = lambda s: None) -> list[Any]:
    """Evaluate every due grid instant (see the module) under the lease's fence; the evaluations."""
    from datetime import datetime, timezone

    from vigil.alerting.evaluate import evaluate_rules

    spec = loaded.spec
    if not spec.alerts:
        return []
    interval = int(spec.alerting.evaluation_interval * 1000) if spec.alerting is not None else 60_000
    instants, skipped = due_instants(last_evaluation_ms(store), now_ms, interval)
    if skipped:
        log(f"alert evaluation: {skipped} instant(s) older than the last {MAX_CATCH_UP} were not evaluated (no leader for that long)")
    out = []
    for ms_ in instants:
        if lease is not None and not lease.held():
            break
        at = datetime.fromtimestamp(ms_ / 1000, tz=timezone.utc)
        fence = lease.check if lease is not None else None
        out.append(evaluate_rules(store, source_factory(), list(spec.alerts), slos=list(spec.slos), at=at,
                                  spec_sha256=loaded.sha256, fence=fence))
    return out
