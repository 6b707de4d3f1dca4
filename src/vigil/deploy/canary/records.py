"""Canary runs, their events and verdicts in the state store (tables in ``tables.py``).

Writes are small transactions; a record of an action exists before its side effect (the run loop
writes ``started``, calls the hook, then writes ``done`` or ``failed``). Public read API for other
capabilities (the deploy gate, the web UI):

- :func:`latest_verdict` ``(store, service) -> CanaryVerdictJSON | None``: the newest verdict for a service;
- :func:`unfinished_run` ``(store, service) -> CanaryRunJSON | None``: a run still holding the service.

The records' shapes (:data:`CanaryEventJSON`, :data:`CanaryVerdictJSON`, :data:`CanaryRunJSON`)
are what ``vigil canary history --json``, the JSON API and the web UI show.
"""

from __future__ import annotations

import json
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa

from vigil.deploy.canary.tables import canary_events, canary_runs, canary_verdicts
from vigil.errors import UsageError
from vigil.store import Store, db_errors

FINAL_STATES = ("promoted", "rolled_back")
UNFINISHED_STATES = ("running", "paused", "rollback_failed", "promote_failed")
NO_SERVICE = "-"  # active_key of a run without a service


class CanaryEventJSON(TypedDict):
    """One event of a run (an action, a judgement, a pause), as :func:`event_record` makes it."""

    id: int
    run_id: int
    at: str
    kind: str
    status: str
    step: int | None
    weight: int | None
    detail: dict[str, Any]


CanaryVerdictJSON = TypedDict(
    "CanaryVerdictJSON",
    {
        "id": int,
        "judged_at": str,
        "service": "str | None",
        "run_id": "int | None",
        "baseline": str,
        "canary": str,
        "from": str,
        "to": str,
        "verdict": str,
        "score": "float | None",
        "spec_sha256": str,
        "detail": "dict[str, Any]",
    },
)
"""A recorded verdict (from ``vigil canary judge`` or a run's step), as :func:`verdict_record` makes it."""


class CanaryRunJSON(TypedDict):
    """A run, as :func:`run_record` makes it (``events`` only when asked for)."""

    id: int
    service: str | None
    baseline: str
    canary: str
    state: str
    release: str | None
    finished: bool
    step: int
    weight: int
    steps: list[Any] | None
    interval_seconds: int | None
    started_at: str
    updated_at: str
    finished_at: str | None
    owner: str | None
    spec_sha256: str
    outcome: str | None
    events: NotRequired[list[CanaryEventJSON]]


def active_key(service: str | None) -> str:
    return service or NO_SERVICE


def _row(r: Any) -> dict:
    return dict(r._mapping)


class Records:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- runs ----------------------------------------------------------------------------------

    def create_run(self, row: dict) -> int:
        """Insert a run holding its service; refuse when an unfinished run holds it already."""
        row = {**row, "active_key": active_key(row.get("service"))}
        with db_errors("recording the canary run failed"):
            try:
                with self.engine.begin() as conn:
                    return int(conn.execute(sa.insert(canary_runs).returning(canary_runs.c.id), [row]).scalar_one())
            except sa.exc.IntegrityError:
                other = self.unfinished(row.get("service"))
                n = f"#{other['id']} ({other['state']})" if other else "another run"
                raise UsageError(
                    f"canary run {n} for service {row.get('service') or '(none)'} is unfinished",
                    hint="resume it (`vigil canary run --resume`), roll it back (`vigil canary run --rollback`), "
                    "or look at it with `vigil canary history`",
                ) from None

    def get(self, run_id: int) -> dict | None:
        with db_errors("reading canary runs failed"), self.engine.connect() as conn:
            r = conn.execute(sa.select(canary_runs).where(canary_runs.c.id == run_id)).first()
        return _row(r) if r else None

    def unfinished(self, service: str | None) -> dict | None:
        t = canary_runs
        with db_errors("reading canary runs failed"), self.engine.connect() as conn:
            r = conn.execute(sa.select(t).where(t.c.active_key == active_key(service))).first()
        return _row(r) if r else None

    def update(self, run_id: int, **fields: Any) -> None:
        with db_errors("recording the canary run failed"), self.engine.begin() as conn:
            conn.execute(sa.update(canary_runs).where(canary_runs.c.id == run_id).values(**fields))

    def claim(self, run_id: int, owner: str, now_s: int, lease_s: int, *, takeover: bool = False, dead_owner: str | None = None) -> bool:
        """Become the run's driver: an atomic compare-and-set on the lease. False when another
        process holds an unexpired lease (and ``takeover`` is not given). ``dead_owner``: a driver
        known to be gone; its lease is taken over at once, but only if it still holds it (two
        processes that both saw it gone cannot both win)."""
        t = canary_runs
        cond = t.c.id == run_id
        if not takeover:
            free = [t.c.owner.is_(None), t.c.owner == owner, t.c.lease_until.is_(None), t.c.lease_until < now_s]
            if dead_owner is not None:
                free.append(t.c.owner == dead_owner)
            cond = cond & sa.or_(*free)
        with db_errors("claiming the canary run failed"), self.engine.begin() as conn:
            n = conn.execute(sa.update(t).where(cond).values(owner=owner, lease_until=now_s + lease_s)).rowcount
        return n == 1

    def renew(self, run_id: int, owner: str, until_s: int) -> bool:
        t = canary_runs
        with db_errors("renewing the canary run's lease failed"), self.engine.begin() as conn:
            n = conn.execute(sa.update(t).where((t.c.id == run_id) & (t.c.owner == owner)).values(lease_until=until_s)).rowcount
        return n == 1

    def runs(self, *, service: str | None = None, run_id: int | None = None, limit: int = 20) -> list[dict]:
        t = canary_runs
        q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if service:
            q = q.where(t.c.service == service)
        if run_id is not None:
            q = q.where(t.c.id == run_id)
        with db_errors("reading canary runs failed"), self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    # -- events --------------------------------------------------------------------------------

    def add_event(self, run_id: int, at: str, kind: str, status: str, *, step_index: int | None = None,
                  weight: int | None = None, detail: dict | None = None) -> int:
        row = {"run_id": run_id, "at": at, "kind": kind, "status": status, "step_index": step_index, "weight": weight,
               "detail": json.dumps(detail or {}, sort_keys=True, default=str)}
        with db_errors("recording a canary event failed"), self.engine.begin() as conn:
            return int(conn.execute(sa.insert(canary_events).returning(canary_events.c.id), [row]).scalar_one())

    def finish_event(self, event_id: int, status: str, detail: dict | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        if detail is not None:
            values["detail"] = json.dumps(detail, sort_keys=True, default=str)
        with db_errors("recording a canary event failed"), self.engine.begin() as conn:
            conn.execute(sa.update(canary_events).where(canary_events.c.id == event_id).values(**values))

    def events(self, run_id: int) -> list[CanaryEventJSON]:
        t = canary_events
        with db_errors("reading canary events failed"), self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.run_id == run_id).order_by(t.c.id)).all()
        return [event_record(_row(r)) for r in rows]

    def pending_action(self, run_id: int) -> CanaryEventJSON | None:
        """An action whose hook was called but whose outcome was never written (a crash)."""
        t = canary_events
        q = (
            sa.select(t)
            .where((t.c.run_id == run_id) & (t.c.status == "started") & t.c.kind.in_(("set_weight", "rollback", "promote")))
            .order_by(t.c.id.desc())
        )
        with db_errors("reading canary events failed"), self.engine.connect() as conn:
            r = conn.execute(q).first()
        return event_record(_row(r)) if r else None

    # -- verdicts ------------------------------------------------------------------------------

    def record_verdict(self, row: dict) -> int:
        with db_errors("recording the canary verdict failed"), self.engine.begin() as conn:
            return int(conn.execute(sa.insert(canary_verdicts).returning(canary_verdicts.c.id), [row]).scalar_one())

    def verdicts(self, *, service: str | None = None, run_id: int | None = None, limit: int = 20) -> list[CanaryVerdictJSON]:
        t = canary_verdicts
        q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if service:
            q = q.where(t.c.service == service)
        if run_id is not None:
            q = q.where(t.c.run_id == run_id)
        with db_errors("reading canary verdicts failed"), self.engine.connect() as conn:
            return [verdict_record(_row(r)) for r in conn.execute(q)]


def event_record(row: dict) -> CanaryEventJSON:
    return {
        "id": row["id"],
        "run_id": row["run_id"],
        "at": row["at"],
        "kind": row["kind"],
        "status": row["status"],
        "step": row["step_index"],
        "weight": row["weight"],
        "detail": json.loads(row["detail"]),
    }


def verdict_record(row: dict) -> CanaryVerdictJSON:
    return {
        "id": row["id"],
        "judged_at": row["judged_at"],
        "service": row["service"],
        "run_id": row["run_id"],
        "baseline": row["baseline"],
        "canary": row["canary"],
        "from": row["window_from"],
        "to": row["window_to"],
        "verdict": row["verdict"],
        "score": None if row["score"] is None else float(row["score"]),
        "spec_sha256": row["spec_sha256"],
        "detail": json.loads(row["detail"]),
    }


def run_record(row: dict, events: list[CanaryEventJSON] | None = None) -> CanaryRunJSON:
    plan = json.loads(row["plan"])
    out: CanaryRunJSON = {
        "id": row["id"],
        "service": row["service"],
        "baseline": row["baseline"],
        "canary": row["canary"],
        "state": row["state"],
        "release": plan.get("release"),
        "finished": row["state"] in FINAL_STATES,
        "step": row["step_index"],
        "weight": row["weight"],
        "steps": plan.get("steps"),
        "interval_seconds": plan.get("interval_seconds"),
        "started_at": row["started_at"],
        "updated_at": row["updated_at"],
        "finished_at": row["finished_at"],
        "owner": row["owner"],
        "spec_sha256": row["spec_sha256"],
        "outcome": row["outcome"],
    }
    if events is not None:
        out["events"] = events
    return out


# -- the read API for other capabilities -----------------------------------------------------------


def latest_verdict(store: Store, service: str) -> CanaryVerdictJSON | None:
    """The newest canary verdict recorded for ``service`` (from `canary judge` or a run), or None.

    The shape is :func:`verdict_record`'s: ``verdict``, ``score``, ``judged_at``, ``run_id``, ...
    """
    got = Records(store).verdicts(service=service, limit=1)
    return got[0] if got else None


def unfinished_run(store: Store, service: str | None) -> CanaryRunJSON | None:
    """The run holding ``service`` (running, paused, or waiting for a rollback or promotion to
    be retried), as :func:`run_record`; None when the service is free."""
    r = Records(store).unfinished(service)
    return run_record(r) if r else None
