"""The dispatcher: transitions in, notifications out, nothing lost, nothing twice.

One :meth:`Dispatcher.tick` (the leader runs one every second or so) does, each step in its own
fenced transaction (:mod:`vigil.alerting.leader`):

1. **route**: reads the transitions after its cursor (``alert_transitions``, by ``seq``), puts the
   notifiable ones (firing, and resolved after firing) in their aggregation groups
   (:mod:`vigil.alerting.routing`), and moves the cursor, in one transaction: each transition is
   routed exactly once, whatever crashes when.
2. **flush**: every group whose timer fired is flushed at the time now: silences and inhibition
   mute, the notification log decides, and a notification due is written to the outbox together
   with the group's new state.
3. **heartbeat**: the dead man's switch's notification of this interval, if none is pending.
4. **deliver**: each due outbox row (the oldest pending one of its group and receiver) is sent;
   the outcome is recorded (:func:`decide`): delivered; retried with backoff (a 429's Retry-After
   honoured up to the receiver's ``retry.max``); switched to the receiver's fallback after
   ``fallback_after`` failures, a permanent failure or an open circuit, the switch recorded; or
   failed for good after ``give_up_after`` (with no fallback left). A receiver failing
   ``circuit.failures`` times in a row is skipped for ``circuit.open_for``.

:func:`decide` and :func:`circuit_after` are pure.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping

from vigil.alerting.inhibit import Inhibitor
from vigil.alerting.model import fingerprint
from vigil.alerting.outbox import DELIVERED, FAILED, PENDING, Attempt, CircuitState, OutboxRow, _no_fence
from vigil.alerting.receivers import Outgoing, Result, Sender
from vigil.alerting.routing import (
    HEARTBEAT,
    GroupAlert,
    Notification,
    build_tree,
    dedup_key,
    due,
    firing_alerts,
    flush,
    group_alert,
    match,
    ms,
    route_alert,
    storage_key,
)

if TYPE_CHECKING:
    from vigil.alerting.outbox import Fence
    from vigil.alerting.routing_spec import AlertingSpec, Receiver
    from vigil.clock import Clock
    from vigil.store import Store


def to_ms(d: datetime) -> int:
    return int(round(d.timestamp() * 1000))


# -- the pure decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    status: str  # pending | delivered | failed
    target: str
    target_failures: int
    next_attempt_ms: int
    result: str  # the attempt's result: delivered | retry | failed
    switch_to: str | None = None
    why: str | None = None


def decide(res: Result, receiver: "Receiver", *, target_failures: int, created_ms: int, now_ms: int) -> Decision:
    """What happens to a notification after an attempt to ``receiver`` ended with ``res``."""
    name = receiver.name
    if res.outcome == "delivered":
        return Decision(DELIVERED, name, 0, now_ms, "delivered")
    fails = target_failures + 1
    fb = receiver.fallback
    if res.outcome == "permanent":
        if fb:
            return Decision(PENDING, fb, 0, now_ms, "failed", fb, f"{name} failed permanently: {res.error}")
        return Decision(FAILED, name, fails, now_ms, "failed", None, f"{name} failed permanently and has no fallback")
    if fb and fails >= receiver.fallback_after:
        return Decision(PENDING, fb, 0, now_ms, "retry", fb, f"{name} failed {fails} time(s) in a row (fallback_after {receiver.fallback_after})")
    if now_ms - created_ms >= ms(receiver.give_up_after):
        if fb:
            return Decision(PENDING, fb, 0, now_ms, "retry", fb, f"{name} did not take it within give_up_after")
        return Decision(FAILED, name, fails, now_ms, "failed", None, f"gave up: not delivered within give_up_after ({receiver.give_up_after}s)")
    wait = receiver.retry.delay(fails)
    if res.retry_after is not None:
        from decimal import Decimal

        wait = min(max(wait, Decimal(str(res.retry_after))), receiver.retry.max)
    return Decision(PENDING, name, fails, now_ms + ms(wait), "retry")


def circuit_after(state: CircuitState, res: Result, receiver: "Receiver", now_ms: int) -> CircuitState:
    """A receiver's circuit after an attempt: closed by a delivery; opened for ``open_for`` by
    ``circuit.failures`` retryable failures in a row (a permanent failure is about the
    notification, not the receiver's health, and leaves it as it was)."""
    if res.outcome == "delivered":
        return CircuitState(0, None, None)
    if res.outcome == "permanent":
        return state
    n = state.failures + 1
    open_until = now_ms + ms(receiver.circuit.open_for) if n >= receiver.circuit.failures else state.open_until_ms
    return CircuitState(n, open_until, res.error)


# -- the dispatcher ----------------------------------------------------------------------------------


@dataclass
class TickReport:
    routed: int = 0
    flushed: int = 0
    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    switched: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


HEARTBEAT_LABELS = {"alertname": "VigilHeartbeat", "severity": "none"}
PURGE_EVERY_MS = 3_600_000


class Dispatcher:
    """Routes, groups, writes and delivers (see the module). ``fence`` guards every write (the
    leader's :meth:`~vigil.alerting.leader.Lease.check`); ``held`` is asked before each send."""

    def __init__(
        self,
        store: "Store",
        spec: "AlertingSpec",
        senders: Mapping[str, Sender],
        clock: "Clock",
        *,
        fence: "Fence | None" = None,
        held: Callable[[], bool] = lambda: True,
        batch: int = 500,
        parallel: int = 4,
    ) -> None:
        self.store = store
        self.spec = spec
        self.senders = dict(senders)
        self.clock = clock
        self.fence: "Fence" = fence or _no_fence
        self.held = held
        self.batch = batch
        self.parallel = max(1, parallel)
        self.tree = build_tree(spec.route)
        self.inhibitor = Inhibitor(spec.inhibit_rules)
        self.receivers = {r.name: r for r in spec.receivers}
        self._circuit_lock = threading.Lock()
        self._circuits: dict[str, CircuitState] = {}
        self._purged_ms = -PURGE_EVERY_MS

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def tick(self) -> TickReport:
        rep = TickReport()
        now = self.now_ms()
        rep.routed = self.route(now)
        f, e = self.flush_due(now)
        rep.flushed, rep.enqueued = f, e
        rep.enqueued += self.heartbeat(now)
        self.deliver(rep)
        if now - self._purged_ms >= PURGE_EVERY_MS:
            from vigil.alerting.outbox import purge

            purge(self.store, self.fence, now)
            self._purged_ms = now
        return rep

    # -- 1. route ------------------------------------------------------------------------------------

    def route(self, now_ms: int) -> int:
        """Route every transition after the cursor; how many were read."""
        from vigil.alerting.leader import write_txn
        from vigil.alerting.outbox import cursor, load_groups, read_cursor, save_groups, write_cursor
        from vigil.alerting.state import read_transitions
        from vigil.store import db_errors

        total = 0
        while True:
            cur0 = cursor(self.store, "routing")
            batch = read_transitions(self.store, after=cur0, limit=self.batch)
            if not batch:
                return total
            with db_errors("routing alert transitions failed"), write_txn(self.store) as conn:
                self.fence(conn)
                if read_cursor(conn, "routing", lock=True) != cur0:
                    conn.rollback()
                    continue  # someone moved it (a leader before us): read again
                items: list[tuple[GroupAlert, int]] = []
                keys: set[str] = set()
                for a in batch:
                    ga = group_alert(a)
                    if ga is None:
                        continue
                    at = to_ms(a.at) if a.at is not None else now_ms
                    items.append((ga, at))
                    for r in match(self.tree, ga.labels):
                        keys.add(storage_key(r.id, r.group_labels(ga.labels)))
                groups = load_groups(conn, keys=keys)
                existing = set(groups)
                changed: dict[str, Any] = {}
                for ga, at in items:
                    got = route_alert(self.tree, groups, ga, at, now_ms)
                    groups.update(got)
                    changed.update(got)
                save_groups(conn, changed.values(), existing, now_ms)
                write_cursor(conn, "routing", batch[-1].seq, now_ms)
            total += len(batch)
            if len(batch) < self.batch:
                return total

    # -- 2. flush ------------------------------------------------------------------------------------

    def flush_due(self, now_ms: int) -> tuple[int, int]:
        """Flush the groups whose timer fired; (groups flushed, notifications written)."""
        from vigil.alerting.leader import write_txn
        from vigil.alerting.outbox import enqueue, load_groups, save_groups
        from vigil.alerting.silences import active_silences, silenced
        from vigil.store import db_errors

        sil = None
        with db_errors("flushing alert groups failed"), write_txn(self.store) as conn:
            token = self.fence(conn)
            ready = load_groups(conn, due_by=now_ms)
            if not ready:
                conn.rollback()
                return 0, 0
            firing: dict[str, GroupAlert] = {}
            if self.inhibitor.rules:
                firing = firing_alerts(load_groups(conn).values())
            from datetime import timezone

            when = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc)
            sil = active_silences(self.store, when)
            out = []
            written = 0
            for g in due(ready.values(), now_ms):
                labels = {fp: a.labels for fp, a in g.alerts.items()}
                silenced_fps = set(silenced(labels, sil, when))
                inhibited = self.inhibitor.muted(labels, {fp: a.labels for fp, a in firing.items()})
                rcv = self.receivers.get(g.receiver)
                sender = self.senders.get(g.receiver)
                f = flush(g, now_ms, silenced=silenced_fps, inhibited=inhibited,
                          send_resolved=rcv.send_resolved if rcv is not None else True,
                          can_acknowledge=bool(getattr(sender, "can_acknowledge", False)))
                out.append(f.group)
                if f.notification is not None and enqueue(conn, f.notification, now_ms, token):
                    written += 1
            save_groups(conn, out, set(ready), now_ms)
        return len(out), written

    # -- 3. heartbeat --------------------------------------------------------------------------------

    def heartbeat(self, now_ms: int) -> int:
        from vigil.alerting.leader import write_txn
        from vigil.alerting.outbox import enqueue, pending_heartbeat, read_cursor, write_cursor
        from vigil.store import db_errors
        from vigil.units import format_duration

        hb = self.spec.heartbeat
        if hb is None:
            return 0
        interval = ms(hb.interval)
        slot_ms = now_ms - now_ms % interval
        with db_errors("writing the heartbeat failed"), write_txn(self.store) as conn:
            token = self.fence(conn)
            if read_cursor(conn, "heartbeat") >= slot_ms:
                conn.rollback()
                return 0
            write_cursor(conn, "heartbeat", slot_ms, now_ms)
            if pending_heartbeat(conn, hb.receiver):
                return 0  # the last one is still on its way: a monitor needs the newest, not a backlog
            labels = dict(HEARTBEAT_LABELS)
            alert = GroupAlert(fingerprint(labels), "heartbeat", labels, {
                "summary": "vigil is alive: its leader evaluates the rules and dispatches notifications",
                "description": f"sent every {format_duration(hb.interval)}; when it stops arriving, vigil (or its leader) is down",
            }, "firing", slot_ms, None, None, 0)
            n = Notification(f"heartbeat-{slot_ms}", "heartbeat", "{}/heartbeat:{}", hb.receiver,
                             dedup_key("vigil-heartbeat", hb.receiver), HEARTBEAT, "heartbeat", now_ms, {}, (alert,))
            return int(enqueue(conn, n, now_ms, token))

    # -- 4. deliver ----------------------------------------------------------------------------------

    def deliver(self, rep: TickReport | None = None) -> TickReport:
        from vigil.alerting.outbox import circuits, due_rows

        rep = rep or TickReport()
        rows = due_rows(self.store, self.now_ms(), self.batch)
        if not rows:
            return rep
        self._circuits = circuits(self.store)
        if self.parallel == 1 or len(rows) == 1:
            for row in rows:
                if not self.held():
                    break
                self._one(row, rep)
            return rep
        from concurrent.futures import ThreadPoolExecutor

        lock = threading.Lock()

        def run(row: OutboxRow) -> None:
            if not self.held():
                return
            local = TickReport()
            self._one(row, local)
            with lock:
                for k in ("delivered", "retried", "failed", "switched"):
                    setattr(rep, k, getattr(rep, k) + getattr(local, k))
                rep.errors += local.errors

        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="vigil-send") as ex:
            list(ex.map(run, rows))
        return rep

    def _circuit(self, name: str) -> CircuitState:
        with self._circuit_lock:
            return self._circuits.get(name) or CircuitState()

    def _one(self, row: OutboxRow, rep: TickReport) -> None:
        from vigil.alerting.outbox import record

        now = self.now_ms()
        attempts: list[Attempt] = []
        target, fails = row.target, row.target_failures
        rcv = self.receivers.get(target)
        if rcv is None:
            attempts.append(Attempt(row.id, row.key, target, "unknown", row.action, now, "failed",
                                    error=f"receiver {target!r} is not in the spec any more"))
            record(self.store, self.fence, attempts, row.id,
                   {"status": FAILED, "last_error": attempts[-1].error, "attempts": row.attempts}, None, now)
            rep.failed += 1
            return
        # an open circuit: go to the fallback now, or wait until it closes
        hops = 0
        while self._circuit(target).open(now):
            cs = self._circuit(target)
            if rcv.fallback is None or hops > len(self.receivers):
                assert cs.open_until_ms is not None
                # wait for the circuit to close (the switches that led here are recorded)
                record(self.store, self.fence, attempts, row.id, {"next_attempt_ms": cs.open_until_ms, "target": target,
                                                                  "target_failures": fails}, None, now)
                return
            attempts.append(Attempt(row.id, row.key, target, rcv.kind, row.action, now, "fallback",
                                    error=f"the circuit of {target} is open (failing: {cs.last_error})",
                                    detail={"from": target, "to": rcv.fallback, "why": "circuit open"}))
            rep.switched += 1
            target, fails, hops = rcv.fallback, 0, hops + 1
            nxt = self.receivers.get(target)
            if nxt is None:  # pragma: no cover - the spec's cross-check refuses an unknown fallback
                break
            rcv = nxt
        sender = self.senders.get(target)
        if sender is None:
            res = Result("permanent", error=f"receiver {target!r} has no sender")
        else:
            out = Outgoing(row.key, row.action, row.dedup_key, row.payload, self.clock.now(), row.attempts + 1,
                           self.spec.external_url, target)
            try:
                res = sender.send(out)
            except Exception as e:  # a receiver's bug must not stop the others; recorded, retried
                res = Result("retry", error=f"{type(e).__name__}: {e}"[:500])
        now = self.now_ms()
        d = decide(res, rcv, target_failures=fails, created_ms=row.created_ms, now_ms=now)
        attempts.append(Attempt(row.id, row.key, target, rcv.kind, row.action, now, d.result, res.status_code,
                                res.latency_ms, res.error, res.detail or None))
        if d.switch_to:
            attempts.append(Attempt(row.id, row.key, target, rcv.kind, row.action, now, "fallback", error=d.why,
                                    detail={"from": target, "to": d.switch_to, "why": d.why}))
            rep.switched += 1
        with self._circuit_lock:
            cs = circuit_after(self._circuits.get(target) or CircuitState(), res, rcv, now)
            self._circuits[target] = cs
        changes: dict[str, Any] = {
            "status": d.status, "target": d.target, "target_failures": d.target_failures, "next_attempt_ms": d.next_attempt_ms,
            "attempts": row.attempts + 1, "last_error": res.error if res.outcome != "delivered" else None,
        }
        if d.status == DELIVERED:
            from vigil.alerting.outbox import _iso

            changes["delivered_at"] = _iso(now)
            rep.delivered += 1
        elif d.status == FAILED:
            rep.failed += 1
        else:
            rep.retried += int(d.switch_to is None)
        record(self.store, self.fence, attempts, row.id, changes, (target, cs.failures, cs.open_until_ms, cs.last_error), now)


def build_senders(spec: "AlertingSpec", *, base_dir: Any = None, environ: Mapping[str, str] | None = None, strict: bool = True,
                  resolver: Any = None) -> dict[str, Sender]:
    """A sender per receiver; with ``strict`` a secret that cannot be read is a UsageError now."""
    import socket

    from vigil.alerting.receivers import build_sender

    return {r.name: build_sender(r, base_dir=base_dir, environ=environ, strict=strict, resolver=resolver or socket.getaddrinfo)
            for r in spec.receivers}
