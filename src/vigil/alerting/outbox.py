"""The durable outbox and the dispatcher's other state in the store.

Nothing is sent that was not first written here: a flush that decides to notify writes an
``alert_outbox`` row (the payload, the delivery id, ``pending``) in the same transaction that
updates the group's notification log, so a crash between the two cannot lose a notification nor
make the next leader notify twice. The sender then records every attempt in ``alert_attempts``
and moves the row to ``delivered`` or ``failed``, or schedules its next attempt, in one transaction
per attempt. A row is sent again after a crash only if its outcome was not recorded, with the same
delivery id and dedup_key.

Every write here takes a ``fence`` (:meth:`vigil.alerting.leader.Lease.check`) run first in the
transaction: a replica that lost the lease writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from vigil.alerting.leader import write_txn
from vigil.alerting.routing import Group, GroupAlert, Notification

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from vigil.store import Store

Fence = Callable[["Connection"], "int | None"]
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def _no_fence(conn: "Connection") -> None:
    return None


def _iso(ms_: int) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-11-26T11:07:12.401Z``."""
    from datetime import datetime, timezone

    d = datetime.fromtimestamp(ms_ // 1000, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms_ % 1000:03d}Z"


def _cj(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- groups ---------------------------------------------------------------------------------------


def group_row(g: Group, now_ms: int) -> dict:
    return {
        "key": g.key, "group_key": g.group_key, "route": g.route_id, "receiver": g.receiver, "labels": _cj(g.labels),
        "alerts": _cj({fp: a.to_json() for fp, a in sorted(g.alerts.items())}),
        "group_wait_ms": g.group_wait_ms, "group_interval_ms": g.group_interval_ms, "repeat_interval_ms": g.repeat_interval_ms,
        "next_flush_ms": g.next_flush_ms, "has_flushed": int(g.has_flushed), "flushes": g.flushes,
        "notified_firing": _cj(sorted(g.notified_firing)), "notified_resolved": _cj(sorted(g.notified_resolved)),
        "notified_ms": g.notified_ms, "acked": int(g.acked), "updated_at": _iso(now_ms),
    }


def row_group(r: Any) -> Group:
    d = r._mapping
    return Group(
        key=d["key"], group_key=d["group_key"], route_id=d["route"], receiver=d["receiver"], labels=json.loads(d["labels"]),
        group_wait_ms=int(d["group_wait_ms"]), group_interval_ms=int(d["group_interval_ms"]),
        repeat_interval_ms=int(d["repeat_interval_ms"]),
        alerts={fp: GroupAlert.from_json(a) for fp, a in json.loads(d["alerts"]).items()},
        next_flush_ms=None if d["next_flush_ms"] is None else int(d["next_flush_ms"]), has_flushed=bool(d["has_flushed"]),
        flushes=int(d["flushes"]), notified_firing=frozenset(json.loads(d["notified_firing"])),
        notified_resolved=frozenset(json.loads(d["notified_resolved"])),
        notified_ms=None if d["notified_ms"] is None else int(d["notified_ms"]), acked=bool(d["acked"]),
    )


def load_groups(conn: "Connection", *, due_by: int | None = None, keys: Iterable[str] | None = None) -> dict[str, Group]:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_groups as t

    q = sa.select(t)
    if due_by is not None:
        q = q.where(t.c.next_flush_ms.is_not(None), t.c.next_flush_ms <= due_by)
    if keys is not None:
        ks = list(keys)
        if not ks:
            return {}
        q = q.where(t.c.key.in_(ks))
    return {r.key: row_group(r) for r in conn.execute(q)}


def save_groups(conn: "Connection", groups: Iterable[Group], existing: set[str], now_ms: int) -> None:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_groups as t

    for g in groups:
        row = group_row(g, now_ms)
        if g.key in existing:
            conn.execute(sa.update(t).where(t.c.key == g.key).values({k: v for k, v in row.items() if k != "key"}))
        else:
            conn.execute(sa.insert(t), [row])


def all_groups(store: "Store") -> list[Group]:
    from vigil.store import db_errors

    with db_errors("reading alert groups failed"), store.engine.connect() as conn:
        return sorted(load_groups(conn).values(), key=lambda g: g.group_key)


# -- cursors --------------------------------------------------------------------------------------


def read_cursor(conn: "Connection", name: str, *, lock: bool = False) -> int:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_cursors as t

    q = sa.select(t.c.seq).where(t.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    v = conn.execute(q).scalar()
    return 0 if v is None else int(v)


def write_cursor(conn: "Connection", name: str, seq: int, now_ms: int) -> None:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_cursors as t

    n = conn.execute(sa.update(t).where(t.c.name == name).values(seq=seq, updated_at=_iso(now_ms))).rowcount
    if not n:
        conn.execute(sa.insert(t), [{"name": name, "seq": seq, "updated_at": _iso(now_ms)}])


def cursor(store: "Store", name: str) -> int:
    from vigil.store import db_errors

    with db_errors("reading the dispatcher's cursor failed"), store.engine.connect() as conn:
        return read_cursor(conn, name)


# -- the outbox -------------------------------------------------------------------------------------


@dataclass
class OutboxRow:
    id: int
    key: str
    group_key: str
    receiver: str
    target: str
    action: str
    dedup_key: str
    payload: dict
    status: str
    created_ms: int
    next_attempt_ms: int
    attempts: int
    target_failures: int
    delivered_at: str | None
    last_error: str | None

    @classmethod
    def of(cls, r: Any) -> "OutboxRow":
        d = r._mapping
        return cls(int(d["id"]), d["key"], d["group_key"], d["receiver"], d["target"], d["action"], d["dedup_key"],
                   json.loads(d["payload"]), d["status"], int(d["created_ms"]), int(d["next_attempt_ms"]), int(d["attempts"]),
                   int(d["target_failures"]), d["delivered_at"], d["last_error"])

    def to_dict(self) -> dict:
        return {
            "id": self.id, "key": self.key, "group": self.group_key, "receiver": self.receiver, "target": self.target,
            "action": self.action, "dedup_key": self.dedup_key, "status": self.status, "created_at": _iso(self.created_ms),
            "next_attempt_at": None if self.status != PENDING else _iso(self.next_attempt_ms), "attempts": self.attempts,
            "delivered_at": self.delivered_at, "last_error": self.last_error,
            "alerts": len(self.payload.get("alerts", [])), "reason": self.payload.get("reason"),
        }


def enqueue(conn: "Connection", n: Notification, now_ms: int, fence: int | None) -> bool:
    """Write a notification to the outbox (False: its delivery id is there already, nothing written)."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_outbox as t

    if conn.execute(sa.select(t.c.id).where(t.c.key == n.key)).first() is not None:
        return False
    conn.execute(sa.insert(t), [{
        "key": n.key, "group_key": n.group, "receiver": n.receiver, "target": n.receiver, "action": n.action,
        "dedup_key": n.dedup_key, "payload": _cj(n.payload()), "status": PENDING, "created_at": _iso(now_ms),
        "created_ms": now_ms, "next_attempt_ms": now_ms, "attempts": 0, "target_failures": 0, "delivered_at": None,
        "last_error": None, "fence": fence,
    }])
    return True


def due_rows(store: "Store", now_ms: int, limit: int) -> list[OutboxRow]:
    """Pending rows due now, each the oldest pending row of its group and receiver (a group's
    notifications go out in order: a resolve never overtakes its trigger)."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_outbox as t
    from vigil.store import db_errors

    o2 = t.alias("o2")
    head = (
        sa.select(sa.func.min(o2.c.id))
        .where(o2.c.status == PENDING, o2.c.group_key == t.c.group_key, o2.c.receiver == t.c.receiver)
        .scalar_subquery()
    )
    q = sa.select(t).where(t.c.status == PENDING, t.c.next_attempt_ms <= now_ms, t.c.id == head).order_by(t.c.next_attempt_ms, t.c.id).limit(limit)
    with db_errors("reading the alert outbox failed"), store.engine.connect() as conn:
        return [OutboxRow.of(r) for r in conn.execute(q)]


def next_due_ms(store: "Store") -> int | None:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_outbox as t
    from vigil.store import db_errors

    with db_errors("reading the alert outbox failed"), store.engine.connect() as conn:
        v = conn.execute(sa.select(sa.func.min(t.c.next_attempt_ms)).where(t.c.status == PENDING)).scalar()
    return None if v is None else int(v)


def outbox(store: "Store", *, status: str | None = None, limit: int = 100) -> list[OutboxRow]:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_outbox as t
    from vigil.store import db_errors

    q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
    if status is not None:
        q = q.where(t.c.status == status)
    with db_errors("reading the alert outbox failed"), store.engine.connect() as conn:
        return [OutboxRow.of(r) for r in conn.execute(q)]


def pending_heartbeat(conn: "Connection", receiver: str) -> bool:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_outbox as t

    q = sa.select(t.c.id).where(t.c.status == PENDING, t.c.action == "heartbeat", t.c.receiver == receiver).limit(1)
    return conn.execute(q).first() is not None


@dataclass
class Attempt:
    """What one attempt (or a switch to a fallback) did to a row."""

    outbox_id: int
    key: str
    receiver: str
    kind: str
    action: str
    at_ms: int
    result: str  # delivered | retry | failed | fallback
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    detail: dict | None = None


def record(
    store: "Store",
    fence: Fence,
    attempts: Sequence[Attempt],
    row_id: int,
    changes: dict,
    circuit: tuple[str, int, int | None, str | None] | None,
    now_ms: int,
) -> None:
    """In one fenced transaction: the attempts, the row's new state (only if it is still pending:
    a row is finished once) and the receiver's circuit (name, consecutive failures, open until, last error)."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_attempts as ta
    from vigil.alerting.delivery_tables import alert_outbox as to
    from vigil.alerting.delivery_tables import alert_receivers as tr
    from vigil.store import db_errors

    with db_errors("recording a delivery attempt failed"), write_txn(store) as conn:
        token = fence(conn)
        done = conn.execute(sa.update(to).where(to.c.id == row_id, to.c.status == PENDING).values(changes)).rowcount
        if not done:
            conn.rollback()
            return
        if attempts:
            conn.execute(sa.insert(ta), [{
                "outbox_id": a.outbox_id, "key": a.key, "receiver": a.receiver, "kind": a.kind, "action": a.action,
                "at": _iso(a.at_ms), "at_ms": a.at_ms, "result": a.result, "status_code": a.status_code,
                "latency_ms": a.latency_ms, "error": a.error, "detail": None if not a.detail else _cj(a.detail), "fence": token,
            } for a in attempts])
        if circuit is not None:
            name, fails, open_until, err = circuit
            vals = {"consecutive_failures": fails, "open_until_ms": open_until, "last_error": err, "updated_at": _iso(now_ms)}
            if not conn.execute(sa.update(tr).where(tr.c.name == name).values(vals)).rowcount:
                conn.execute(sa.insert(tr), [{"name": name, **vals}])


@dataclass
class CircuitState:
    failures: int = 0
    open_until_ms: int | None = None
    last_error: str | None = None

    def open(self, now_ms: int) -> bool:
        return self.open_until_ms is not None and now_ms < self.open_until_ms


def circuits(store: "Store") -> dict[str, CircuitState]:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_receivers as t
    from vigil.store import db_errors

    with db_errors("reading receivers' state failed"), store.engine.connect() as conn:
        return {r.name: CircuitState(int(r.consecutive_failures), None if r.open_until_ms is None else int(r.open_until_ms), r.last_error)
                for r in conn.execute(sa.select(t))}


def attempts_log(
    store: "Store", *, limit: int = 100, receiver: str | None = None, key: str | None = None, result: str | None = None,
    since_ms: int | None = None,
) -> list[dict]:
    """Every attempt, newest first, with its notification's group, dedup key and status now."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_attempts as ta
    from vigil.alerting.delivery_tables import alert_outbox as to
    from vigil.store import db_errors

    q = (
        sa.select(ta, to.c.group_key, to.c.dedup_key, to.c.status.label("notification_status"), to.c.receiver.label("route_receiver"))
        .select_from(ta.outerjoin(to, to.c.id == ta.c.outbox_id))
        .order_by(ta.c.at_ms.desc(), ta.c.id.desc())
        .limit(limit)
    )
    if receiver is not None:
        q = q.where(ta.c.receiver == receiver)
    if key is not None:
        q = q.where(ta.c.key == key)
    if result is not None:
        q = q.where(ta.c.result == result)
    if since_ms is not None:
        q = q.where(ta.c.at_ms >= since_ms)
    with db_errors("reading the delivery log failed"), store.engine.connect() as conn:
        out = []
        for r in conn.execute(q):
            d = r._mapping
            out.append({
                "at": d["at"], "receiver": d["receiver"], "kind": d["kind"], "action": d["action"], "key": d["key"],
                "result": d["result"], "status_code": d["status_code"], "latency_ms": d["latency_ms"], "error": d["error"],
                "detail": None if d["detail"] is None else json.loads(d["detail"]), "notification_id": d["outbox_id"],
                "notification_status": d["notification_status"], "route_receiver": d["route_receiver"],
                "group": d["group_key"], "dedup_key": d["dedup_key"], "fence": d["fence"],
            })
        return out


# -- retention ------------------------------------------------------------------------------------

KEEP_DELIVERIES_MS = 30 * 86_400_000
"""Delivered and failed notifications and their attempts are kept 30 days."""
KEEP_NOTIFICATION_LOG_MS = 5 * 86_400_000
"""An empty group's notification log is kept 5 days (Alertmanager's nflog retention, 120h)."""


def purge(store: "Store", fence: Fence, now_ms: int) -> dict[str, int]:
    """Delete what retention lets go: finished notifications and their attempts older than
    :data:`KEEP_DELIVERIES_MS`, empty groups whose last notification is older than
    :data:`KEEP_NOTIFICATION_LOG_MS` (or that never notified). Pending notifications are never
    deleted."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_attempts as ta
    from vigil.alerting.delivery_tables import alert_groups as tg
    from vigil.alerting.delivery_tables import alert_outbox as to
    from vigil.store import db_errors

    cut = now_ms - KEEP_DELIVERIES_MS
    with db_errors("purging the alert outbox failed"), write_txn(store) as conn:
        fence(conn)
        old = sa.select(to.c.id).where(to.c.status != PENDING, to.c.created_ms < cut)
        attempts = conn.execute(sa.delete(ta).where(ta.c.outbox_id.in_(old), ta.c.at_ms < cut)).rowcount
        rows = conn.execute(sa.delete(to).where(to.c.status != PENDING, to.c.created_ms < cut)).rowcount
        groups = conn.execute(sa.delete(tg).where(
            tg.c.next_flush_ms.is_(None), tg.c.alerts == "{}",
            sa.or_(tg.c.notified_ms.is_(None), tg.c.notified_ms < now_ms - KEEP_NOTIFICATION_LOG_MS),
        )).rowcount
    return {"notifications": rows, "attempts": attempts, "groups": groups}
