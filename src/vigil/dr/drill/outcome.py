"""What a drill concludes from what it saw. Pure: plain facts in, the report (a dict) out; no I/O,
no clock (the finish time is passed in).

A drill passes only when every phase that ran succeeded, the RTO and the RPO *met* their objectives
(a lower bound never meets one), the search rebuild did not miss its objective, no critical gap was
observed (an archive-get failure, a recovery that stopped before the end of the archive, a
repository that could not be read, ...) and nobody interrupted it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from vigil.clock import isoformat
from vigil.dr import gaps as gapmod
from vigil.dr.drill_spec import DrillSpec
from vigil.dr.postgres.wal import RecoveryEnd
from vigil.dr.rpo import Rpo, replay_cross_check, reported_rpo, rpo, rto_seconds, seconds_between, verdict

PHASES = (
    ("canary", "Canary ledger on the primary"),
    ("disaster", "Disaster"),
    ("restore", "Restore into a fresh cluster"),
    ("write_check", "Verified write health"),
    ("search", "Search index rebuild"),
    ("report", "Report"),
)

Row = tuple[int, datetime]


class Skip(Exception):
    """A phase that does not apply (recorded as skipped, not failed)."""


@dataclass
class Phase:
    name: str
    title: str
    start: datetime
    end: datetime | None = None
    ok: bool | None = None
    skipped: bool = False
    error: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> Decimal | None:
        return None if self.end is None else seconds_between(self.start, self.end)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "start": isoformat(self.start),
            "end": isoformat(self.end) if self.end else None,
            "seconds": float(self.seconds) if self.seconds is not None else None,
            "ok": self.ok,
            "skipped": self.skipped,
            "error": self.error,
            "evidence": self.evidence,
        }


def row_dict(r: Row | None) -> dict | None:
    return None if r is None else {"seq": r[0], "committed_at": isoformat(r[1])}


@dataclass
class DrillFacts:
    """Everything a run observed, as plain data. The run fills it in; :func:`conclude` reads it."""

    drill: DrillSpec
    repo: int
    repo_role: str
    started_at: datetime
    phases: list[Phase] = field(default_factory=list)
    disaster_at: datetime | None = None
    first_write_at: datetime | None = None
    ledger_first: Row | None = None  # the canary's first and last rows committed before the disaster
    ledger_last: Row | None = None
    newest_recovered: Row | None = None  # the newest canary row in the recovered database
    replay_at: datetime | None = None  # pg_last_xact_replay_timestamp() after recovery
    rebuild_seconds: Decimal | None = None
    search_ok: bool | None = None
    search_problems: list[str] = field(default_factory=list)
    restored_archive_mode: str | None = None
    archiver_before: dict | None = None
    backups_in_repo: int | None = None  # good backups in the repository restored from
    newest_backup_stop: datetime | None = None
    repo_unreachable: str | None = None
    archive_get_errors: list[str] = field(default_factory=list)
    recovery_end: RecoveryEnd | None = None
    recovery_end_due: bool = False  # target latest and the cluster came up: the check must say yes
    wal_problems: list[str] = field(default_factory=list)
    last_drill_at: datetime | None = None
    observations: list[str] = field(default_factory=list)
    scope: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


@dataclass(frozen=True)
class Measures:
    rto: Decimal | None
    rto_measured: Decimal | None
    detection_delay: Decimal
    canary_rpo: Rpo
    rpo: Rpo
    cross: Any  # ReplayCheck
    verdicts: dict[str, str]


def measure(f: DrillFacts) -> Measures:
    """RTO (measured + declared detection delay), the canary and replay figures, the reported RPO
    (the worse of the two) and the verdicts against the objectives."""
    d = f.drill
    delay = d.phases.disaster.detection_delay
    measured = rto_seconds(f.disaster_at, f.first_write_at) if f.disaster_at else None
    total = measured + delay if measured is not None else None
    last = f.ledger_last[1] if f.ledger_last else None
    newest = f.newest_recovered[1] if f.newest_recovered else None
    canary = rpo(last, newest, ledger_started=f.ledger_first[1] if f.ledger_first else None)
    cross = replay_cross_check(last, newest, f.replay_at)
    if f.first_write_at is None:
        canary = Rpo(None, False, "the recovery did not finish: nothing to measure")
        reported = canary
    else:
        reported = reported_rpo(canary, cross)
    verdicts = {
        "rto": verdict(total, d.objectives.rto),
        "rpo": verdict(reported.seconds, d.objectives.rpo, exact=reported.exact),
        "rebuild": verdict(f.rebuild_seconds, d.objectives.rebuild),
    }
    return Measures(total, measured, delay, canary, reported, cross, verdicts)


def observed(f: DrillFacts, m: Measures, *, now: datetime) -> gapmod.Observed:
    """The gap register's view of the run."""
    restore_phase = next((p for p in f.phases if p.name == "restore"), None)
    write_phase = next((p for p in f.phases if p.name == "write_check"), None)
    obs = gapmod.Observed(
        restore_ok=None if restore_phase is None or restore_phase.skipped else bool(restore_phase.ok),
        restore_error=(restore_phase.error or "").splitlines()[0] if restore_phase and restore_phase.error else None,
        write_ok=None if write_phase is None or write_phase.skipped else bool(write_phase.ok),
        rto_seconds=m.rto,
        rpo_seconds=m.rpo.seconds,
        rpo_exact=m.rpo.exact,
        rebuild_seconds=f.rebuild_seconds,
        search_ok=f.search_ok,
        search_problems=list(f.search_problems),
        restored_archive_mode=f.restored_archive_mode,
        wal_problems=list(f.wal_problems),
        now=now,
        repo_unreachable=f.repo_unreachable,
        archive_get_errors=list(f.archive_get_errors),
        recovery_end_ok=f.recovery_end.ok if f.recovery_end is not None else None,
        recovery_end_note=f.recovery_end.note if f.recovery_end is not None else None,
        recovery_end_checked=f.recovery_end_due,
        last_drill_at=f.last_drill_at,
    )
    if f.archiver_before:
        obs.archive_timeout_seconds = f.archiver_before.get("archive_timeout_seconds")
        obs.archive_mode = f.archiver_before.get("archive_mode")
        lf, la = f.archiver_before.get("last_failed_time"), f.archiver_before.get("last_archived_time")
        obs.archive_failing = bool(lf and (not la or lf > la))
    if f.backups_in_repo is not None:
        obs.backup_count = {f.repo: f.backups_in_repo}
    if f.newest_backup_stop is not None:
        obs.backup_age_seconds = {f.repo: max(Decimal(0), seconds_between(f.newest_backup_stop, f.started_at))}
    return obs


def passed(f: DrillFacts, m: Measures, observed_gaps: list[gapmod.Gap]) -> bool:
    phases_ok = all(p.ok or p.skipped for p in f.phases if p.name != "report")
    critical = any(g.severity == "critical" for g in observed_gaps)
    return (phases_ok and m.verdicts["rto"] == "met" and m.verdicts["rpo"] == "met" and m.verdicts["rebuild"] != "missed"
            and not critical and not f.interrupted)


def conclude(f: DrillFacts, *, spec_gaps: list[gapmod.Gap], backup_interval: Decimal | None, finished_at: datetime,
             run_id: int | None = None, report_dir: str | None = None, spec_sha256: str | None = None) -> dict:
    """The report (format 1, the fields documented in the README) from the facts."""
    d = f.drill
    m = measure(f)
    seen = gapmod.observed_gaps(observed(f, m, now=finished_at), rto=d.objectives.rto, rpo=d.objectives.rpo,
                                rebuild=d.objectives.rebuild, backup_interval=backup_interval)
    gaps = gapmod.register(spec_gaps, seen)
    ok = passed(f, m, seen)
    observations = list(f.observations)
    if m.cross.consistent is False:
        observations.append("cross-check: " + m.cross.note)
    ato = (f.archiver_before or {}).get("archive_timeout_seconds")
    short = bool(f.archive_get_errors) or (f.recovery_end is not None and f.recovery_end.ok is False)
    if ato and m.rpo.seconds is not None and m.rpo.exact and not short:
        observations.append(
            f"with archive_timeout = {ato}s a disaster loses up to about {ato}s of commits plus the time to push a segment; "
            "one drill samples one point of that range"
        )
    if f.replay_at is not None and m.rpo.seconds is not None:
        observations.append(f"pg_last_xact_replay_timestamp() after recovery: {isoformat(f.replay_at)}")
    if m.detection_delay:
        observations.append(f"the RTO includes a declared detection and decision delay of {float(m.detection_delay):g}s "
                            "(phases.disaster.detection_delay); the drill measured the rest")

    def num(x: Decimal | None) -> float | None:
        return float(x) if x is not None else None

    return {
        "format": 1,
        "drill": d.name,
        "description": d.description,
        "scenario": d.scenario,
        "repo": f.repo,
        "repo_role": f.repo_role,
        "target": {"type": d.target, "describe": d.describe_target()},
        "status": "passed" if ok else "failed",
        "started_at": isoformat(f.started_at),
        "finished_at": isoformat(finished_at),
        "disaster_at": isoformat(f.disaster_at) if f.disaster_at else None,
        "first_verified_write_at": isoformat(f.first_write_at) if f.first_write_at else None,
        "rto_seconds": num(m.rto),
        "rto": {"measured_seconds": num(m.rto_measured), "detection_delay_seconds": float(m.detection_delay),
                "covers": "disaster to the first verified write on the recovered database, plus the declared detection delay"},
        "rpo_seconds": num(m.rpo.seconds),
        "rebuild_seconds": num(f.rebuild_seconds),
        "rpo": {**m.rpo.to_dict(), "canary": m.canary_rpo.to_dict(),
                "replay_seconds": num(m.cross.replay_rpo_seconds),
                "last_committed_before_disaster": row_dict(f.ledger_last), "newest_recovered": row_dict(f.newest_recovered)},
        "rpo_cross_check": {**m.cross.to_dict(), "last_replayed_commit": isoformat(f.replay_at) if f.replay_at else None},
        "recovery_end": f.recovery_end.to_dict() if f.recovery_end is not None else None,
        "objectives": {"rto_seconds": float(d.objectives.rto), "rpo_seconds": float(d.objectives.rpo),
                       "rebuild_seconds": float(d.objectives.rebuild)},
        "verdicts": m.verdicts,
        "phases": [p.to_dict() for p in f.phases],
        "gaps": [g.to_dict() for g in gaps],
        "observations": observations,
        "scope": f.scope,
        "report_dir": report_dir,
        "spec_sha256": spec_sha256,
        "run_id": run_id,
    }
