"""Reading and writing backup and drill records in the state store (tables in :mod:`vigil.dr.tables`).

Every record is written before the work it describes and completed after it ("nothing is lost"):
a backup or drill that dies half-way stays on record as ``running``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, TypedDict

import sqlalchemy as sa

from vigil.dr import tables
from vigil.store import Store, db_errors


class BackupRunJSON(TypedDict):
    """A recorded backup (``vigil backup history``, the web UI's DR page): seconds of wall time,
    ``detail`` the backup as pgBackRest's info reports it."""

    id: int
    engine: str
    stanza: str
    repo: int
    type: str
    started_at: str
    finished_at: str | None
    status: str  # running | ok | failed
    label: str | None
    seconds: float | None
    error: str | None
    detail: Any


class DrillPhaseJSON(TypedDict):
    name: str
    start: str
    end: str | None
    ok: bool | None
    error: str | None


class DrillObjectivesJSON(TypedDict):
    rto_seconds: float | None
    rpo_seconds: float | None


class DrillRunJSON(TypedDict):
    """A drill run with its phases (``vigil drill history``, the DR report's trend, the web UI)."""

    id: int
    name: str
    scenario: str
    started_at: str
    finished_at: str | None
    status: str  # running | passed | failed
    rto_seconds: float | None
    rpo_seconds: float | None
    objectives: DrillObjectivesJSON
    gaps: int | None
    report_dir: str | None
    phases: list[DrillPhaseJSON]


def _us(seconds: Decimal | None) -> int | None:
    return None if seconds is None else int((seconds * 1_000_000).to_integral_value())


def _secs(us: int | None) -> float | None:
    return None if us is None else us / 1_000_000


# -- backups -------------------------------------------------------------------------------------


def backup_started(store: Store, *, stanza: str, repo: int, type_: str, started_at: str, engine: str = "pgbackrest") -> int:
    row = {"engine": engine, "stanza": stanza, "repo": repo, "type": type_, "started_at": started_at, "status": "running"}
    with db_errors("recording the backup failed"), store.engine.begin() as conn:
        return int(conn.execute(sa.insert(tables.backup_runs).returning(tables.backup_runs.c.id), [row]).scalar_one())


def backup_finished(store: Store, run_id: int, *, finished_at: str, ok: bool, seconds: Decimal, label: str | None = None,
                    error: str | None = None, detail: Any = None) -> None:
    with db_errors("recording the backup failed"), store.engine.begin() as conn:
        conn.execute(
            sa.update(tables.backup_runs)
            .where(tables.backup_runs.c.id == run_id)
            .values(
                finished_at=finished_at,
                status="ok" if ok else "failed",
                seconds=_us(seconds),
                label=label,
                error=error,
                detail=json.dumps(detail, default=str) if detail is not None else None,
            )
        )


def backup_runs(store: Store, *, stanza: str | None = None, limit: int = 50) -> list[BackupRunJSON]:
    q = sa.select(tables.backup_runs).order_by(tables.backup_runs.c.id.desc()).limit(limit)
    if stanza:
        q = q.where(tables.backup_runs.c.stanza == stanza)
    with db_errors("reading backup records failed"), store.engine.connect() as conn:
        rows = [r._mapping for r in conn.execute(q)]
    return [
        {
            "id": r["id"],
            "engine": r["engine"],
            "stanza": r["stanza"],
            "repo": r["repo"],
            "type": r["type"],
            "started_at": r["started_at"],
            "finished_at": r["finished_at"],
            "status": r["status"],
            "label": r["label"],
            "seconds": _secs(r["seconds"]),
            "error": r["error"],
            "detail": json.loads(r["detail"]) if r["detail"] else None,
        }
        for r in rows
    ]


# -- drills --------------------------------------------------------------------------------------


def drill_started(store: Store, *, name: str, scenario: str, started_at: str, rto_objective: Decimal,
                  rpo_objective: Decimal, spec_sha256: str | None) -> int:
    row = {
        "name": name,
        "scenario": scenario,
        "started_at": started_at,
        "status": "running",
        "rto_objective_us": _us(rto_objective),
        "rpo_objective_us": _us(rpo_objective),
        "spec_sha256": spec_sha256,
    }
    with db_errors("recording the drill failed"), store.engine.begin() as conn:
        return int(conn.execute(sa.insert(tables.drill_runs).returning(tables.drill_runs.c.id), [row]).scalar_one())


def phase_started(store: Store, run_id: int, seq: int, name: str, started_at: str) -> None:
    with db_errors("recording the drill phase failed"), store.engine.begin() as conn:
        conn.execute(sa.insert(tables.drill_phases), [{"run_id": run_id, "seq": seq, "name": name, "started_at": started_at}])


def phase_finished(store: Store, run_id: int, seq: int, *, ended_at: str, ok: bool | None, error: str | None, evidence: Any) -> None:
    with db_errors("recording the drill phase failed"), store.engine.begin() as conn:
        conn.execute(
            sa.update(tables.drill_phases)
            .where(tables.drill_phases.c.run_id == run_id, tables.drill_phases.c.seq == seq)
            .values(ended_at=ended_at, ok=ok, error=error, evidence=json.dumps(evidence, default=str))
        )


def drill_finished(store: Store, run_id: int, *, finished_at: str, passed: bool, rto: Decimal | None, rpo: Decimal | None,
                   gaps: int, report_dir: str | None, report: dict) -> None:
    with db_errors("recording the drill failed"), store.engine.begin() as conn:
        conn.execute(
            sa.update(tables.drill_runs)
            .where(tables.drill_runs.c.id == run_id)
            .values(
                finished_at=finished_at,
                status="passed" if passed else "failed",
                rto_us=_us(rto),
                rpo_us=_us(rpo),
                gaps=gaps,
                report_dir=report_dir,
                report=json.dumps(report, default=str),
            )
        )


def drill_history(store: Store, *, name: str | None = None, limit: int = 20) -> list[DrillRunJSON]:
    """Drill runs, newest first, with their phases; no full report (see ``report_dir``)."""
    r = tables.drill_runs
    q = sa.select(
        r.c.id, r.c.name, r.c.scenario, r.c.started_at, r.c.finished_at, r.c.status, r.c.rto_us, r.c.rpo_us,
        r.c.rto_objective_us, r.c.rpo_objective_us, r.c.gaps, r.c.report_dir,
    ).order_by(r.c.id.desc()).limit(limit)
    if name:
        q = q.where(r.c.name == name)
    with db_errors("reading drill records failed"), store.engine.connect() as conn:
        runs: list[dict[str, Any]] = [dict(r._mapping) for r in conn.execute(q)]
        ids = [r["id"] for r in runs]
        phases: dict[int, list[dict]] = {}
        if ids:
            p = tables.drill_phases
            for row in conn.execute(sa.select(p).where(p.c.run_id.in_(ids)).order_by(p.c.run_id, p.c.seq)):
                d = dict(row._mapping)
                d["evidence"] = None  # in the report bundle; kept out of the history listing
                phases.setdefault(d.pop("run_id"), []).append(d)
    out: list[DrillRunJSON] = []
    for x in runs:
        out.append(
            {
                "id": x["id"],
                "name": x["name"],
                "scenario": x["scenario"],
                "started_at": x["started_at"],
                "finished_at": x["finished_at"],
                "status": x["status"] if x["finished_at"] or x["status"] != "running" else "running",
                "rto_seconds": _secs(x["rto_us"]),
                "rpo_seconds": _secs(x["rpo_us"]),
                "objectives": {"rto_seconds": _secs(x["rto_objective_us"]), "rpo_seconds": _secs(x["rpo_objective_us"])},
                "gaps": x["gaps"],
                "report_dir": x["report_dir"],
                "phases": [
                    {"name": ph["name"], "start": ph["started_at"], "end": ph["ended_at"], "ok": ph["ok"], "error": ph["error"]}
                    for ph in phases.get(x["id"], [])
                ],
            }
        )
    return out
