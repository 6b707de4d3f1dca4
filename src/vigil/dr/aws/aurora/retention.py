"""Pure: snapshot names, the restorable window, retention judged over snapshot lists. No I/O; ``at`` is given."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from vigil.clock import isoformat
from vigil.dr.aws.aurora.model import ClusterState, SnapshotInfo
from vigil.dr.aws.spec import AuroraBackupSpec
from vigil.errors import UsageError
from vigil.units import format_duration


def snapshot_id(spec: AuroraBackupSpec, at: datetime) -> str:
    """``vigil-platform-prod-20261126-1116``: sorts by time, valid as an RDS identifier."""
    return _identifier(f"{spec.snapshot_prefix}-{spec.cluster_id}-{at.astimezone(timezone.utc):%Y%m%d-%H%M}")


def copy_id(spec: AuroraBackupSpec, source_id: str) -> str:
    """The identifier of a snapshot's copy in the other region: the same name; automated ones get a prefix."""
    if source_id.startswith("rds:"):
        return _identifier(f"{spec.snapshot_prefix}-auto-{source_id[4:]}")
    return _identifier(source_id)


def _identifier(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9-]", "-", s).lower()
    s = re.sub(r"-{2,}", "-", s).strip("-")
    if not s or not s[0].isalpha():
        s = "s-" + s
    return s[:255].rstrip("-")


def _created(s: SnapshotInfo) -> datetime:
    """When an available snapshot was made (``available`` implies the time is known)."""
    if s.created is None:
        raise ValueError(f"snapshot {s.id} has no creation time; only available snapshots are judged")
    return s.created


def check_restore_time(to: datetime, earliest: datetime | None, latest: datetime | None, *, cluster_id: str) -> None:
    """Raise :class:`UsageError` when ``to`` lies outside the cluster's restorable window."""
    to = to.astimezone(timezone.utc)
    window = f"{isoformat(earliest) if earliest else '?'} .. {isoformat(latest) if latest else '?'}"
    if earliest is not None and to < earliest:
        raise UsageError(
            f"cannot restore {cluster_id} to {isoformat(to)}: that is before the earliest restorable time (window {window})",
            hint="pick a time inside the window; the window's length is the cluster's backup retention period (at most 35 days); "
            "older points need a snapshot: restore --from-snapshot",
        )
    if latest is not None and to > latest:
        raise UsageError(
            f"cannot restore {cluster_id} to {isoformat(to)}: that is after the latest restorable time (window {window})",
            hint="pick an earlier time, or --latest for the newest restorable point (usually within 5 minutes of now)",
        )


@dataclass(frozen=True)
class RetentionProblem:
    kind: str  # no-snapshots | stale | gap | short-history | automated-retention
    message: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class RetentionReport:
    """The snapshots of one region judged against the schedule and the retention."""

    at: datetime
    region: str
    cluster_id: str
    retention_days: int
    interval_seconds: int
    considered: int
    newest: SnapshotInfo | None
    newest_age_seconds: int | None
    oldest_age_seconds: int | None
    gaps: tuple[tuple[datetime, datetime], ...]
    expired: tuple[SnapshotInfo, ...]
    problems: tuple[RetentionProblem, ...]
    backup_retention_days: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "at": isoformat(self.at),
            "region": self.region,
            "cluster_id": self.cluster_id,
            "ok": self.ok,
            "retention_days": self.retention_days,
            "interval_seconds": self.interval_seconds,
            "snapshots_considered": self.considered,
            "newest": self.newest.to_dict() if self.newest else None,
            "newest_age_seconds": self.newest_age_seconds,
            "oldest_age_seconds": self.oldest_age_seconds,
            "backup_retention_days": self.backup_retention_days,
            "gaps": [{"from": isoformat(a), "to": isoformat(b), "seconds": int((b - a).total_seconds())} for a, b in self.gaps],
            "expired": [s.to_dict() for s in self.expired],
            "problems": [p.to_dict() for p in self.problems],
        }


AURORA_MAX_BACKUP_RETENTION = 35


def _human(seconds: float) -> str:
    s = int(seconds)
    if s >= 86400:
        d, rem = divmod(s, 86400)
        return f"{d}d{rem // 3600}h" if rem >= 3600 else f"{d}d"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m"


def check_retention(
    snapshots: list[SnapshotInfo] | tuple[SnapshotInfo, ...],
    *,
    at: datetime,
    retention_days: int,
    interval: Decimal | int,
    cluster_id: str,
    region: str,
    cluster_created: datetime | None = None,
    backup_retention_days: int | None = None,
) -> RetentionReport:
    """Judge one region's snapshots: fresh enough for the schedule, no holes, history as long as the retention.

    A snapshot is on time when it is at most ``interval`` plus a quarter of it (6 h for daily) old;
    the history is long enough when the oldest snapshot reaches back the retention minus that
    slack, or the cluster is younger than that. ``expired`` lists the vigil-made manual snapshots
    past the retention (what :func:`prune_plan` would delete); keeping them is a cost, not a gap.
    Pure: no I/O, ``at`` given.
    """
    at = at.astimezone(timezone.utc)
    iv = int(interval)
    slack = timedelta(seconds=iv + iv // 4)
    window = timedelta(days=retention_days)
    avail = sorted((s for s in snapshots if s.available and _created(s) <= at), key=_created)
    problems: list[RetentionProblem] = []
    gaps: list[tuple[datetime, datetime]] = []
    newest = avail[-1] if avail else None
    newest_age = int((at - _created(newest)).total_seconds()) if newest else None
    oldest_age = int((at - _created(avail[0])).total_seconds()) if avail else None
    every = format_duration(iv)
    if newest is None:
        problems.append(RetentionProblem("no-snapshots", f"{cluster_id} has no available snapshot in {region}"))
    else:
        if at - _created(newest) > slack:
            problems.append(
                RetentionProblem(
                    "stale",
                    f"the newest snapshot of {cluster_id} in {region} ({newest.id}) is {_human(newest_age or 0)} old; "
                    f"the schedule takes one every {every}",
                )
            )
        in_window = [_created(s) for s in avail if _created(s) >= at - window]
        for a, b in zip(in_window, in_window[1:]):
            if b - a > slack:
                gaps.append((a, b))
        if gaps:
            worst = max(gaps, key=lambda g: g[1] - g[0])
            problems.append(
                RetentionProblem(
                    "gap",
                    f"{len(gaps)} gap{'s' if len(gaps) != 1 else ''} longer than {_human(slack.total_seconds())} between snapshots of "
                    f"{cluster_id} in {region} in the last {retention_days} days; the longest is "
                    f"{_human((worst[1] - worst[0]).total_seconds())} from {isoformat(worst[0])}",
                )
            )
        history_needed = window - slack
        old_enough_cluster = cluster_created is None or at - cluster_created > window
        if old_enough_cluster and timedelta(seconds=oldest_age or 0) < history_needed:
            problems.append(
                RetentionProblem(
                    "short-history",
                    f"the oldest snapshot of {cluster_id} in {region} is {_human(oldest_age or 0)} old; "
                    f"the plan keeps {retention_days} days",
                )
            )
    if backup_retention_days is not None:
        needed = min(retention_days, AURORA_MAX_BACKUP_RETENTION)
        if backup_retention_days < needed:
            problems.append(
                RetentionProblem(
                    "automated-retention",
                    f"{cluster_id}'s backup retention period is {backup_retention_days} days (point-in-time restore and automated "
                    f"snapshots reach back that far); the plan needs {needed}",
                )
            )
    expired = tuple(
        s for s in avail if s.type == "manual" and s.managed and at - _created(s) > window
    )
    return RetentionReport(
        at=at,
        region=region,
        cluster_id=cluster_id,
        retention_days=retention_days,
        interval_seconds=iv,
        considered=len(avail),
        newest=newest,
        newest_age_seconds=newest_age,
        oldest_age_seconds=oldest_age,
        gaps=tuple(gaps),
        expired=expired,
        problems=tuple(problems),
        backup_retention_days=backup_retention_days,
    )


def prune_plan(snapshots: list[SnapshotInfo] | tuple[SnapshotInfo, ...], *, at: datetime, retention_days: int) -> list[SnapshotInfo]:
    """The snapshots a prune deletes: manual, made by vigil, older than the retention; never vigil's newest one.

    Automated snapshots expire on their own (the cluster's backup retention period); snapshots
    that someone else made are not vigil's to delete.
    """
    mine = sorted((s for s in snapshots if s.available and s.type == "manual" and s.managed), key=_created)
    window = timedelta(days=retention_days)
    return [s for s in mine[:-1] if at - _created(s) > window]




def newest_snapshot(snaps: list[SnapshotInfo]) -> SnapshotInfo | None:
    avail = [s for s in snaps if s.available]
    return max(avail, key=_created) if avail else None




def retention_reports(state: ClusterState, spec: AuroraBackupSpec, *, at: datetime) -> list[RetentionReport]:
    """The source region's report, and the copies' when the state has them. Pure."""
    out = [
        check_retention(
            state.snapshots,
            at=at,
            retention_days=spec.retention_days,
            interval=spec.schedule,
            cluster_id=spec.cluster_id,
            region=state.region,
            cluster_created=state.created,
            backup_retention_days=state.backup_retention_days,
        )
    ]
    if state.copies is not None and state.copy_region:
        out.append(
            check_retention(
                state.copies,
                at=at,
                retention_days=spec.copy_retention_days,
                interval=spec.schedule,
                cluster_id=spec.cluster_id,
                region=state.copy_region,
                cluster_created=state.created,
            )
        )
    return out
