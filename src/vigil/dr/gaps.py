"""The gap register: where the spec or what a drill observed falls short of the plan. Pure.

:func:`spec_gaps` reads only the spec (what the design can promise); :func:`observed_gaps` reads
facts a drill or ``vigil backup status`` gathered (what actually happened). Each gap has a stable
``id`` (search for it, suppress nothing silently), a ``severity`` (critical, high, medium, low), a
``message`` with the numbers, ``where`` (a spec path or ``observed``) and a ``fix``.

The plan (DESIGN.md): PITR; daily snapshots kept 35 days; a cross-region copy; search snapshot
nightly with rebuild <= 60 min; object versioning, lifecycle and Object Lock; RTO <= 4 h,
RPO <= 15 min; quarterly drills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from vigil.units import format_duration

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


@dataclass(frozen=True)
class DrPlan:
    rto: Decimal = Decimal(4 * 3600)
    rpo: Decimal = Decimal(15 * 60)
    retention_days: int = 35
    backup_interval: Decimal = Decimal(86400)
    rebuild: Decimal = Decimal(3600)
    drill_every: Decimal = Decimal(92 * 86400)  # quarterly


PLAN = DrPlan()


@dataclass(frozen=True)
class Gap:
    id: str
    severity: str
    message: str
    where: str
    fix: str

    def to_dict(self) -> dict:
        return {"id": self.id, "severity": self.severity, "message": self.message, "where": self.where, "fix": self.fix}


def _d(s: Decimal | int | float) -> str:
    return format_duration(Decimal(s).quantize(Decimal(1)) if Decimal(s) >= 1 else Decimal(s))


def spec_gaps(spec: Any, *, plan: DrPlan = PLAN, rpo_objective: Decimal | None = None) -> list[Gap]:
    """Gaps in the design as the spec declares it."""
    rpo_obj = rpo_objective if rpo_objective is not None else plan.rpo
    gaps: list[Gap] = []
    backups = getattr(spec, "backups", None)
    pg = getattr(backups, "postgres", None) if backups is not None else None
    aurora = getattr(backups, "aurora", None) if backups is not None else None
    if pg is None and aurora is None:
        gaps.append(Gap("db-backups-missing", "critical", "no database backup is declared (backups.postgres or backups.aurora)",
                        "backups", "declare backups.postgres (pgBackRest) or backups.aurora"))
    if pg is not None:
        gaps += _pg_gaps(pg, plan, rpo_obj)
    if aurora is not None:
        gaps += _aurora_gaps(aurora, plan, rpo_obj)
    s3 = getattr(backups, "s3", None) if backups is not None else None
    if s3 is not None:
        gaps += _s3_gaps(s3, plan)
    if backups is None or getattr(backups, "search", None) is None:
        gaps.append(Gap("search-snapshot-missing", "medium",
                        "no search index backup is declared: the plan promises a nightly snapshot with schema and export, and a rebuild within "
                        f"{_d(plan.rebuild)}", "backups.search", "declare backups.search (engine, snapshot_dir, outbox)"))
    if not getattr(spec, "drills", None):
        gaps.append(Gap("drill-missing", "medium", "no DR drill is declared: the plan promises quarterly drills with a report",
                        "drills", "declare a drill under drills: and run `vigil drill run NAME` every quarter"))
    return gaps


def _pg_gaps(pg: Any, plan: DrPlan, rpo_obj: Decimal) -> list[Gap]:
    gaps: list[Gap] = []
    for i, r in enumerate(pg.repos, 1):
        where = f"backups.postgres.repos[{i - 1}].retention"
        ret = r.retention
        if ret.kind == "time" and ret.days < plan.retention_days:
            gaps.append(Gap("pg-retention-below-plan", "high",
                            f"repo{i} keeps full backups {ret.days} days; the plan promises {plan.retention_days}",
                            where, f"set retention: {{full: {plan.retention_days}d}}"))
        elif ret.kind == "count":
            days = Decimal(ret.full_count) * pg.backup_interval / 86400
            gaps.append(Gap("pg-retention-count-based", "medium" if days >= plan.retention_days else "high",
                            f"repo{i} keeps {ret.full_count} full backups (count-based): how many days that covers depends on how often "
                            f"full backups run; the plan promises {plan.retention_days} days",
                            where, f"use time-based retention: retention: {{full: {plan.retention_days}d}}"))
    if not pg.cross_region_repos():
        gaps.append(Gap("pg-no-second-repo", "high",
                        f"only {len(pg.repos)} repository and none is a cross-region copy: a region loss loses every backup",
                        "backups.postgres.repos", "add a second repository in another region (role: cross-region)"))
    if pg.archive_timeout is None:
        gaps.append(Gap("pg-archive-timeout-unset", "high",
                        "archive_timeout is unset: on a quiet database a partly filled WAL segment waits until it fills up, "
                        "so the RPO has no bound", "backups.postgres.archive_timeout",
                        f"set archive_timeout well under the RPO objective ({_d(rpo_obj)}), e.g. 60s"))
    elif pg.archive_timeout > rpo_obj:
        gaps.append(Gap("pg-archive-timeout-above-rpo", "high",
                        f"archive_timeout {_d(pg.archive_timeout)} is longer than the RPO objective {_d(rpo_obj)}: a quiet database can lose more",
                        "backups.postgres.archive_timeout", f"set archive_timeout below {_d(rpo_obj)}"))
    if pg.backup_interval > plan.backup_interval:
        gaps.append(Gap("pg-backup-interval-above-plan", "medium",
                        f"backups run every {_d(pg.backup_interval)}; the plan promises daily",
                        "backups.postgres.backup_interval", "run `vigil backup run` daily (cron or a systemd timer)"))
    return gaps


def _aurora_gaps(a: Any, plan: DrPlan, rpo_obj: Decimal) -> list[Gap]:
    gaps: list[Gap] = []
    days = getattr(a, "retention_days", None)
    if days is not None and days < plan.retention_days:
        gaps.append(Gap("aurora-retention-below-plan", "high", f"Aurora snapshots are kept {days} days; the plan promises {plan.retention_days}",
                        "backups.aurora.retention_days", f"set retention_days: {plan.retention_days}"))
    cross = getattr(a, "cross_region", None)
    schedule = getattr(a, "schedule", None)
    if cross is None:
        gaps.append(Gap("aurora-no-cross-region-copy", "high", "Aurora snapshots are not copied to another region: a region loss loses them",
                        "backups.aurora.cross_region", "add cross_region: {region, kms_key_id}"))
    elif schedule is not None and Decimal(schedule) > rpo_obj:
        gaps.append(Gap("region-loss-rpo-unkeepable", "critical",
                        f"the cross-region copy is a snapshot every {_d(schedule)}: after a region loss the newest copy can be up to "
                        f"{_d(schedule)} old, so the RPO for a region loss is up to {_d(schedule)}, not {_d(rpo_obj)}",
                        "backups.aurora.cross_region",
                        "ship WAL / use an Aurora Global Database (or a cross-region replica) for region loss, or state the region-loss RPO honestly"))
    copy_days = getattr(a, "copy_retention_days", None)
    if cross is not None and copy_days is not None and copy_days < plan.retention_days:
        gaps.append(Gap("aurora-copy-retention-below-plan", "high",
                        f"cross-region copies are kept {copy_days} days; the plan promises {plan.retention_days}",
                        "backups.aurora.cross_region.retention_days", f"set retention_days: {plan.retention_days}"))
    return gaps


def _prefix_overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _s3_gaps(s3: Any, plan: DrPlan) -> list[Gap]:
    gaps: list[Gap] = []
    wal_days = getattr(s3, "wal_retention_days", plan.retention_days)
    for i, b in enumerate(getattr(s3, "buckets", []) or []):
        where = f"backups.s3.buckets[{i}]"
        if getattr(b, "critical", False) and getattr(b, "object_lock", None) is None:
            gaps.append(Gap("s3-object-lock-missing", "high",
                            f"bucket {b.name} is critical but has no Object Lock: a deleted or encrypted backup cannot be recovered",
                            where + ".object_lock", "set object_lock: {mode: COMPLIANCE, days: 35}"))
        if not getattr(b, "versioning", True):
            gaps.append(Gap("s3-versioning-off", "medium", f"bucket {b.name} keeps no object versions", where + ".versioning", "set versioning: true"))
        for j, rule in enumerate(getattr(b, "lifecycle", None) or []):
            if not getattr(rule, "enabled", True):
                continue
            for wp in getattr(b, "wal_prefixes", []) or []:
                if not _prefix_overlap(rule.prefix, wp):
                    continue
                cold = [t for t in rule.transitions if t.storage_class in ARCHIVE_CLASSES and t.days < wal_days]
                if cold:
                    gaps.append(Gap("s3-lifecycle-breaks-wal", "critical",
                                    f"bucket {b.name}: lifecycle rule {rule.id!r} moves WAL under {wp!r} to {cold[0].storage_class} after "
                                    f"{cold[0].days} days, before the {wal_days} days backups need it: a restore would wait hours for each segment",
                                    f"{where}.lifecycle[{j}]", "exclude the WAL prefix from archive-class transitions"))
                if rule.expiration_days is not None and rule.expiration_days < wal_days:
                    gaps.append(Gap("s3-lifecycle-breaks-wal", "critical",
                                    f"bucket {b.name}: lifecycle rule {rule.id!r} expires WAL under {wp!r} after {rule.expiration_days} days, "
                                    f"before the {wal_days} days backups need it: point-in-time recovery breaks",
                                    f"{where}.lifecycle[{j}]", f"expire WAL no earlier than {wal_days} days (pgBackRest's expire removes it when due)"))
    return gaps


@dataclass
class Observed:
    """Facts gathered by a drill (or a status check). Anything unknown stays None."""

    restore_ok: bool | None = None
    restore_error: str | None = None
    write_ok: bool | None = None
    rto_seconds: Decimal | None = None
    rpo_seconds: Decimal | None = None
    rpo_exact: bool = True
    rebuild_seconds: Decimal | None = None
    search_ok: bool | None = None
    search_problems: list[str] = field(default_factory=list)
    archive_timeout_seconds: int | None = None  # from the server
    archive_mode: str | None = None
    archive_failing: bool | None = None
    restored_archive_mode: str | None = None
    wal_problems: list[str] = field(default_factory=list)
    backup_age_seconds: dict[int, Decimal] = field(default_factory=dict)
    backup_count: dict[int, int] = field(default_factory=dict)
    last_drill_at: datetime | None = None
    now: datetime | None = None
    repo_unreachable: str | None = None  # the repository the drill restores from could not be read
    archive_get_errors: list[str] = field(default_factory=list)  # pgBackRest errors during recovery
    recovery_end_ok: bool | None = None  # recovery replayed the archive to its end (None: not checked)
    recovery_end_note: str | None = None
    recovery_end_checked: bool = False  # a check was due (target latest, the cluster came up)


def observed_gaps(o: Observed, *, rto: Decimal, rpo: Decimal, rebuild: Decimal, plan: DrPlan = PLAN,
                  backup_interval: Decimal | None = None) -> list[Gap]:
    gaps: list[Gap] = []
    if o.repo_unreachable:
        gaps.append(Gap("drill-repo-unreachable", "critical", o.repo_unreachable, "observed",
                        "check the repository's path, mount and permissions (`vigil backup list`), then drill again"))
    if o.archive_get_errors:
        n = len(o.archive_get_errors)
        gaps.append(Gap("drill-archive-get-failed", "critical",
                        f"pgBackRest could not get archived WAL during recovery ({n} error{'s' if n != 1 else ''}): {o.archive_get_errors[0]}",
                        "observed", "a WAL segment in the repository is unreadable: run `vigil backup verify`, take a new full backup, "
                        "find what damaged the repository"))
    if o.recovery_end_checked and o.recovery_end_ok is False:
        gaps.append(Gap("drill-recovery-stopped-early", "critical", o.recovery_end_note or "recovery ended before the end of the archive",
                        "observed", "the archive has a hole or an unreadable segment at that point: see the restored server's log; "
                        "take a new full backup so restores do not need the damaged WAL"))
    if o.recovery_end_checked and o.recovery_end_ok is None:
        gaps.append(Gap("drill-recovery-end-unknown", "critical",
                        o.recovery_end_note or "whether recovery reached the end of the archive could not be told", "observed",
                        "see the restore phase's evidence (recovery_end); a drill passes only when recovery is known to reach the archive's end"))
    if o.restore_ok is False:
        gaps.append(Gap("drill-restore-failed", "critical", f"the restore failed: {o.restore_error or 'see the restore phase'}",
                        "observed", "fix the cause in the restore phase's evidence, then drill again"))
    if o.restore_ok and o.write_ok is False:
        gaps.append(Gap("drill-write-failed", "critical", "the restored database did not accept a verified write", "observed",
                        "see the write-check phase's evidence"))
    if o.rto_seconds is not None and o.rto_seconds > rto:
        gaps.append(Gap("rto-missed", "critical", f"RTO achieved {_d(o.rto_seconds)} is above the objective {_d(rto)}", "observed",
                        "shorten the restore: more process-max, a closer repository, smaller backups (more frequent full/diff)"))
    if o.rpo_seconds is not None and o.rpo_seconds > rpo:
        gaps.append(Gap("rpo-missed", "critical",
                        f"RPO achieved {_d(o.rpo_seconds)}{'' if o.rpo_exact else ' (at least)'} is above the objective {_d(rpo)}", "observed",
                        "lower archive_timeout, check the archiver keeps up (pg_stat_archiver), ship WAL to the cross-region repository"))
    if o.rpo_seconds is not None and not o.rpo_exact and o.rpo_seconds <= rpo:
        gaps.append(Gap("rpo-lower-bound", "critical",
                        f"the RPO is only known to be at least {_d(o.rpo_seconds)}: a lower bound cannot meet the objective {_d(rpo)}",
                        "observed", "no canary row survived and nothing was replayed to measure against: see the restore's evidence, "
                        "let the canary run longer before the disaster"))
    if o.restore_ok and o.write_ok and o.rpo_seconds is None:
        gaps.append(Gap("rpo-unmeasured", "high", "the RPO could not be measured: no canary row was committed before the disaster", "observed",
                        "let the canary ledger run (phases.canary.warmup) before the disaster"))
    if o.rebuild_seconds is not None and o.rebuild_seconds > rebuild:
        gaps.append(Gap("rebuild-missed", "high", f"search rebuild took {_d(o.rebuild_seconds)}, above the objective {_d(rebuild)}", "observed",
                        "snapshot more often, or re-seed in larger batches"))
    if o.search_ok is False:
        gaps.append(Gap("search-index-mismatch", "high", "the rebuilt search index disagrees with the database: " + "; ".join(o.search_problems[:3]),
                        "observed", "see the search phase's evidence (counts and watermarks)"))
    if o.archive_timeout_seconds == 0:
        gaps.append(Gap("pg-archive-timeout-off-on-server", "high", "the server runs with archive_timeout = 0: the RPO of a quiet database is unbounded",
                        "observed", "run `vigil backup setup` (it sets archive_timeout from the spec)"))
    if o.archive_mode is not None and o.archive_mode not in ("on", "always"):
        gaps.append(Gap("pg-archive-mode-off", "critical", f"the server runs with archive_mode = {o.archive_mode}: no point-in-time recovery",
                        "observed", "run `vigil backup setup` and restart PostgreSQL"))
    if o.archive_failing:
        gaps.append(Gap("pg-archiving-failing", "critical", "WAL archiving is failing (pg_stat_archiver: last failure after last success)",
                        "observed", "read the server log for archive_command errors; `vigil backup status`"))
    if o.restored_archive_mode not in (None, "off"):
        gaps.append(Gap("drill-restored-cluster-archives", "critical",
                        f"the restored cluster runs with archive_mode = {o.restored_archive_mode}: it could write into the primary's repository",
                        "observed", "restore with --archive-mode=off (vigil does); report this as a bug"))
    for p in o.wal_problems:
        gaps.append(Gap("pg-wal-gap", "critical", p, "observed", "take a new full backup; find why segments are missing (archive_command failures)"))
    interval = backup_interval if backup_interval is not None else plan.backup_interval
    for repo, age in sorted(o.backup_age_seconds.items()):
        if age > interval * Decimal("1.5"):
            gaps.append(Gap("pg-backup-stale", "high", f"repo{repo}: the newest backup is {_d(age)} old (backups every {_d(interval)})",
                            "observed", "run `vigil backup run` and schedule it"))
    for repo, n in sorted(o.backup_count.items()):
        if n == 0:
            gaps.append(Gap("pg-repo-empty", "high", f"repo{repo} holds no backup: restoring from it is impossible", "observed",
                            f"run `vigil backup run --repo {repo}`"))
    if o.last_drill_at is not None and o.now is not None:
        from vigil.dr.rpo import seconds_between

        age = seconds_between(o.last_drill_at, o.now)
        if age > plan.drill_every:
            gaps.append(Gap("drill-overdue", "medium", f"the previous drill was {_d(age)} ago; the plan promises one every quarter", "observed",
                            "schedule drills quarterly"))
    return gaps


def register(spec_side: list[Gap], observed_side: list[Gap]) -> list[Gap]:
    """Both lists, most severe first, duplicates (same id and message) dropped."""
    seen: set[tuple[str, str]] = set()
    out: list[Gap] = []
    for g in sorted(spec_side + observed_side, key=lambda g: (SEVERITY_ORDER.get(g.severity, 9), g.id)):
        k = (g.id, g.message)
        if k not in seen:
            seen.add(k)
            out.append(g)
    return out
