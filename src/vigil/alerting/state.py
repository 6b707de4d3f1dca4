"""Alert state in the store: each rule instance's current state, the transition log, evaluations.

One evaluation is one write transaction: it takes the evaluators' lock (SQLite's write lock, a
PostgreSQL table lock that readers never wait for), refuses an instant already evaluated (or
older than the newest one), reads the instances, steps them (the pure
:func:`vigil.alerting.rules.advance`), writes the changed instances and appends one transition row
per state change with ``seq`` = one more than the largest so far. So ``seq`` is gap-free and
strictly increasing in commit order: a consumer that keeps its last ``seq`` sees each transition
once (:func:`read_transitions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from vigil.alerting.model import FIRING, PENDING, RESOLVED, Alert
from vigil.alerting.rules import Advance, Instance, Reading, Timing, advance, canonical_json

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from vigil.store import Store

Fence = Callable[["Connection"], "int | None"]
"""Called inside the evaluation's transaction, after its lock is taken: raises to abort (a leader
that lost its lease), or returns the fencing token recorded with the evaluation."""


def _t(d: datetime | None) -> str | None:
    from vigil.clock import isoformat

    return None if d is None else isoformat(d)


def _p(s: str | None) -> datetime | None:
    if s is None:
        return None
    from vigil.clock import parse_time

    return parse_time(s)


def _d(s: str | None) -> Decimal | None:
    return None if s is None else Decimal(s)


def at_ms(at: datetime) -> int:
    ts = at.timestamp()
    return int(round(ts * 1000))


def _instance(r: Any) -> Instance:
    return Instance(
        rule=r.rule,
        fingerprint=r.fingerprint,
        labels=json.loads(r.labels),
        annotations=json.loads(r.annotations),
        state=r.state,
        active_at=_p(r.active_at),
        fired_at=_p(r.fired_at),
        resolved_at=_p(r.resolved_at),
        last_true_at=_p(r.last_true_at),
        keep_firing_since=_p(r.keep_firing_since),
        value=_d(r.value),
        seq=int(r.seq),
    )


def _alert_from_transition(r: Any) -> Alert:
    return Alert(
        rule=r.rule,
        labels=json.loads(r.labels),
        annotations=json.loads(r.annotations),
        state=r.state,
        active_at=_p(r.active_at),
        fired_at=_p(r.fired_at),
        resolved_at=_p(r.resolved_at),
        value=_d(r.value),
        fingerprint=r.fingerprint,
        seq=int(r.seq),
        previous=r.previous,
        at=_p(r.at),
    )


# -- reads ------------------------------------------------------------------------------------------


def read_transitions(store: "Store", after: int = 0, limit: int = 1000) -> list[Alert]:
    """Transitions with ``seq > after``, oldest first, at most ``limit``: the dispatcher's input."""
    import sqlalchemy as sa

    from vigil.alerting.tables import alert_transitions as t
    from vigil.store import db_errors

    q = sa.select(t).where(t.c.seq > after).order_by(t.c.seq).limit(limit)
    with db_errors("reading alert transitions failed"), store.engine.connect() as conn:
        return [_alert_from_transition(r) for r in conn.execute(q)]


def last_seq(store: "Store") -> int:
    import sqlalchemy as sa

    from vigil.alerting.tables import alert_transitions as t
    from vigil.store import db_errors

    with db_errors("reading alert transitions failed"), store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.seq), 0))).scalar_one())


def instances(store: "Store", *, states: Sequence[str] = (PENDING, FIRING, RESOLVED)) -> list[Instance]:
    """Every stored rule instance in one of ``states``, by rule and fingerprint."""
    import sqlalchemy as sa

    from vigil.alerting.tables import alert_instances as t
    from vigil.store import db_errors

    q = sa.select(t).where(t.c.state.in_(list(states))).order_by(t.c.rule, t.c.fingerprint)
    with db_errors("reading alert state failed"), store.engine.connect() as conn:
        return [_instance(r) for r in conn.execute(q)]


def active_alerts(store: "Store") -> list[Alert]:
    """Pending and firing alerts now (``vigil alerts``), as :class:`Alert` at their last transition."""
    return [i.alert(at=None) for i in instances(store, states=(PENDING, FIRING))]


def evaluations(store: "Store", *, limit: int = 50) -> list[dict]:
    """The newest evaluations first: at, counts, seqs, errors."""
    import sqlalchemy as sa

    from vigil.alerting.tables import alert_evaluations as t
    from vigil.store import db_errors

    q = sa.select(t).order_by(t.c.at_ms.desc()).limit(limit)
    with db_errors("reading alert evaluations failed"), store.engine.connect() as conn:
        out = []
        for r in conn.execute(q):
            d = dict(r._mapping)
            d["errors"] = json.loads(d["errors"])
            out.append(d)
        return out


# -- the write ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """What one evaluation wrote (or why it wrote nothing)."""

    at: datetime
    recorded: bool
    reason: str | None = None
    """Why nothing was written: ``already evaluated`` (this instant is stored) or ``stale`` (a
    later instant is)."""
    evaluation_id: int | None = None
    transitions: list[Alert] = field(default_factory=list)
    current: list[Instance] = field(default_factory=list)
    fence: int | None = None


def _lock(conn: "Connection") -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("LOCK TABLE alert_evaluations IN EXCLUSIVE MODE")


def load(conn: "Connection") -> dict[tuple[str, str], Instance]:
    import sqlalchemy as sa

    from vigil.alerting.tables import alert_instances as t

    return {(r.rule, r.fingerprint): _instance(r) for r in conn.execute(sa.select(t))}


def _row(i: Instance, at: datetime) -> dict:
    return {
        "rule": i.rule,
        "fingerprint": i.fingerprint,
        "labels": canonical_json(i.labels),
        "annotations": canonical_json(i.annotations),
        "state": i.state,
        "active_at": _t(i.active_at),
        "fired_at": _t(i.fired_at),
        "resolved_at": _t(i.resolved_at),
        "last_true_at": _t(i.last_true_at),
        "keep_firing_since": _t(i.keep_firing_since),
        "value": None if i.value is None else str(i.value),
        "seq": i.seq,
        "evaluated_at": _t(at),
    }


def record_evaluation(
    store: "Store",
    at: datetime,
    readings: Mapping[str, Sequence[Reading]],
    timings: Mapping[str, Timing],
    *,
    failed: Mapping[str, str] | None = None,
    spec_sha256: str | None = None,
    fence: Fence | None = None,
) -> Recorded:
    """Step every instance at ``at`` and store the outcome in one transaction (see the module)."""
    import sqlalchemy as sa

    from vigil.alerting.tables import alert_evaluations as te
    from vigil.alerting.tables import alert_instances as ti
    from vigil.alerting.tables import alert_transitions as tt
    from vigil.store import db_errors

    failed = dict(failed or {})
    ms = at_ms(at)
    with db_errors("recording the alert evaluation failed"), store.engine.connect() as conn:
        _lock(conn)
        token = fence(conn) if fence is not None else None
        newest = conn.execute(sa.select(sa.func.max(te.c.at_ms))).scalar()
        if newest is not None and int(newest) >= ms:
            conn.rollback()
            return Recorded(at, False, "already evaluated" if int(newest) == ms else "stale", fence=token)
        prev = load(conn)
        adv: Advance = advance(prev, readings, timings, at, failed=failed)
        seq = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(tt.c.seq), 0))).scalar_one())
        first = seq + 1 if adv.transitions else None
        seqs: dict[tuple[str, str], int] = {}
        for _before, inst in adv.transitions:
            seq += 1
            seqs[inst.key] = seq
        ev_id = int(
            conn.execute(
                sa.insert(te).returning(te.c.id),
                [
                    {
                        "at": _t(at),
                        "at_ms": ms,
                        "rules": len(timings),
                        "instances": len(adv.current),
                        "transitions": len(adv.transitions),
                        "first_seq": first,
                        "last_seq": seq if adv.transitions else None,
                        "spec_sha256": spec_sha256,
                        "fence": token,
                        "errors": json.dumps([{"rule": k, "error": v} for k, v in sorted(failed.items())]),
                    }
                ],
            ).scalar_one()
        )
        out_transitions: list[Alert] = []
        final: dict[tuple[str, str], Instance] = dict(adv.current)
        changed = {i.key: i for i in adv.changed}
        for key, n in seqs.items():
            changed[key] = final[key] = replace(final[key], seq=n)
        trans_rows = []
        for before, inst in adv.transitions:
            cur = final[inst.key]
            trans_rows.append(
                {
                    "seq": cur.seq,
                    "evaluation_id": ev_id,
                    "at": _t(at),
                    "rule": cur.rule,
                    "fingerprint": cur.fingerprint,
                    "labels": canonical_json(cur.labels),
                    "annotations": canonical_json(cur.annotations),
                    "previous": before,
                    "state": cur.state,
                    "active_at": _t(cur.active_at),
                    "fired_at": _t(cur.fired_at),
                    "resolved_at": _t(cur.resolved_at),
                    "value": None if cur.value is None else str(cur.value),
                }
            )
            out_transitions.append(cur.alert(previous=before, at=at))
        if trans_rows:
            conn.execute(sa.insert(tt), trans_rows)
        inserts = [_row(i, at) for k, i in changed.items() if k not in prev]
        updates = [i for k, i in changed.items() if k in prev]
        if inserts:
            conn.execute(sa.insert(ti), inserts)
        if updates:
            cols = [k for k in _row(updates[0], at) if k not in ("rule", "fingerprint")]
            stmt = (
                sa.update(ti)
                .where(ti.c.rule == sa.bindparam("k_rule"), ti.c.fingerprint == sa.bindparam("k_fp"))
                .values({c: sa.bindparam(c) for c in cols})
            )
            conn.execute(stmt, [{**{c: r[c] for c in cols}, "k_rule": r["rule"], "k_fp": r["fingerprint"]}
                                for r in (_row(i, at) for i in updates)])
        conn.commit()
    return Recorded(at, True, None, ev_id, out_transitions, sorted(final.values(), key=lambda i: i.key), token)
