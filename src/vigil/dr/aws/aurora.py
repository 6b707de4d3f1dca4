"""Aurora through boto3: cluster snapshots, cross-region copies, point-in-time restore, retention.

The AWS calls live in functions taking an :class:`~vigil.dr.aws.client.Aws` (one client, the retry
policy, error translation); the judgements (is the restore time inside the window, is retention
met, which snapshots are past it) are pure functions over :class:`SnapshotInfo` lists and ``at``.
Waiting is a bounded poll on an injected clock and sleep, so tests run on a fake clock.

What a restore is: ``RestoreDBClusterToPointInTime`` makes a cluster with no instance, then
``CreateDBInstance`` adds the writer; the database answers only once the writer is available.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from vigil.clock import Clock, isoformat
from vigil.dr.aws.client import Aws, AwsError, AwsNotFound
from vigil.dr.aws.spec import AuroraBackupSpec
from vigil.errors import UsageError
from vigil.units import format_duration

MANAGED_TAG = ("managed-by", "vigil")
CLUSTER_TAG = "vigil-cluster"
RESTORED_FROM_TAG = "vigil-restored-from"

CLUSTER_FAILED = frozenset(
    {
        "failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "incompatible-network",
        "incompatible-parameters",
        "incompatible-restore",
        "migration-failed",
    }
)
INSTANCE_FAILED = frozenset(
    {"failed", "incompatible-network", "incompatible-option-group", "incompatible-parameters", "incompatible-restore",
     "inaccessible-encryption-credentials", "restore-error", "storage-full"}
)
SNAPSHOT_FAILED = frozenset({"failed", "error"})

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def _utc(dt: Any) -> datetime | None:
    if not isinstance(dt, datetime):
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotInfo:
    """One DB cluster snapshot as vigil needs it."""

    id: str
    cluster_id: str
    region: str
    created: datetime | None
    status: str
    type: str  # manual | automated
    arn: str = ""
    encrypted: bool = False
    kms_key_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.status == "available" and self.created is not None

    @property
    def managed(self) -> bool:
        return self.tags.get(MANAGED_TAG[0]) == MANAGED_TAG[1]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "cluster_id": self.cluster_id,
            "region": self.region,
            "created": isoformat(self.created) if self.created else None,
            "status": self.status,
            "type": self.type,
            "arn": self.arn,
            "encrypted": self.encrypted,
            "kms_key_id": self.kms_key_id,
            "managed_by_vigil": self.managed,
        }

    @classmethod
    def from_aws(cls, d: dict, region: str) -> "SnapshotInfo":
        return cls(
            id=d.get("DBClusterSnapshotIdentifier", ""),
            cluster_id=d.get("DBClusterIdentifier", ""),
            region=region,
            created=_utc(d.get("SnapshotCreateTime")),
            status=d.get("Status", ""),
            type=d.get("SnapshotType", ""),
            arn=d.get("DBClusterSnapshotArn", ""),
            encrypted=bool(d.get("StorageEncrypted")),
            kms_key_id=d.get("KmsKeyId"),
            tags={t["Key"]: t.get("Value", "") for t in d.get("TagList", []) or []},
        )


@dataclass(frozen=True)
class ClusterState:
    """What AWS says about the cluster and its backups, read by :func:`observe`; input of the findings."""

    cluster_id: str
    region: str
    exists: bool
    status: str | None = None
    backup_retention_days: int | None = None
    created: datetime | None = None
    earliest_restorable: datetime | None = None
    latest_restorable: datetime | None = None
    writer_instance_class: str | None = None
    snapshots: tuple[SnapshotInfo, ...] = ()
    copy_region: str | None = None
    copies: tuple[SnapshotInfo, ...] | None = None  # None: not looked at (no cross_region)

    def to_dict(self) -> dict:
        return {
            "cluster_id": self.cluster_id,
            "region": self.region,
            "exists": self.exists,
            "status": self.status,
            "backup_retention_days": self.backup_retention_days,
            "created": isoformat(self.created) if self.created else None,
            "earliest_restorable": isoformat(self.earliest_restorable) if self.earliest_restorable else None,
            "latest_restorable": isoformat(self.latest_restorable) if self.latest_restorable else None,
            "writer_instance_class": self.writer_instance_class,
            "snapshots": [s.to_dict() for s in self.snapshots],
            "copy_region": self.copy_region,
            "copies": None if self.copies is None else [s.to_dict() for s in self.copies],
        }


# --- pure: names, windows, retention ----------------------------------------------------------


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
    avail = sorted((s for s in snapshots if s.available and s.created <= at), key=lambda s: s.created)  # type: ignore[arg-type, return-value]
    problems: list[RetentionProblem] = []
    gaps: list[tuple[datetime, datetime]] = []
    newest = avail[-1] if avail else None
    newest_age = int((at - newest.created).total_seconds()) if newest else None  # type: ignore[operator]
    oldest_age = int((at - avail[0].created).total_seconds()) if avail else None  # type: ignore[operator]
    every = format_duration(iv)
    if not avail:
        problems.append(RetentionProblem("no-snapshots", f"{cluster_id} has no available snapshot in {region}"))
    else:
        if at - newest.created > slack:  # type: ignore[union-attr, operator]
            problems.append(
                RetentionProblem(
                    "stale",
                    f"the newest snapshot of {cluster_id} in {region} ({newest.id}) is {_human(newest_age or 0)} old; "  # type: ignore[union-attr]
                    f"the schedule takes one every {every}",
                )
            )
        in_window = [s for s in avail if s.created >= at - window]  # type: ignore[operator]
        for a, b in zip(in_window, in_window[1:]):
            if b.created - a.created > slack:  # type: ignore[operator]
                gaps.append((a.created, b.created))  # type: ignore[arg-type]
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
        s for s in avail if s.type == "manual" and s.managed and at - s.created > window  # type: ignore[operator]
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
    mine = sorted((s for s in snapshots if s.available and s.type == "manual" and s.managed), key=lambda s: s.created)  # type: ignore[arg-type, return-value]
    window = timedelta(days=retention_days)
    return [s for s in mine[:-1] if at - s.created > window]  # type: ignore[operator]


# --- waiting -----------------------------------------------------------------------------------


def wait_for(
    poll: Callable[[], str | None],
    *,
    what: str,
    timeout: float,
    interval: float,
    clock: Clock,
    sleep: Callable[[float], None],
    ok: frozenset[str] = frozenset({"available"}),
    failed: frozenset[str] = frozenset(),
    progress: Progress = _noop,
    hint: str = "",
) -> datetime:
    """Poll until ``poll()`` returns a state in ``ok``; return when that was seen (the clock's time).

    Bounded: gives up after ``timeout`` seconds of clock time with an :class:`AwsError`. A state in
    ``failed`` fails at once. ``sleep`` is injected (a fake clock's tick in tests).
    """
    start = clock.now()
    deadline = start + timedelta(seconds=timeout)
    last = None
    while True:
        state = poll()
        now = clock.now()
        if state != last:
            progress(f"{what}: {state or 'not visible yet'} after {_human((now - start).total_seconds()) if now > start else '0m'}")
            last = state
        if state in ok:
            return now
        if state in failed:
            raise AwsError(f"{what} went to state {state!r}", hint=hint or "see the RDS events of the resource in the AWS console or `aws rds describe-events`")
        if now >= deadline:
            raise AwsError(
                f"{what} is still {state or 'not visible'} after {format_duration(int(timeout))}; stopped waiting",
                hint=(hint + "; " if hint else "") + "the operation goes on in AWS; raise backups.aurora.restore.timeout or check again later",
            )
        sleep(min(interval, (deadline - now).total_seconds()))


# --- AWS calls ---------------------------------------------------------------------------------


def describe_cluster(rds: Aws, cluster_id: str) -> dict:
    out = rds.call("describe_db_clusters", DBClusterIdentifier=cluster_id)
    clusters = out.get("DBClusters", [])
    if not clusters:
        raise AwsNotFound(f"rds DescribeDBClusters in {rds.region}: cluster {cluster_id} not found", service="rds", operation="DescribeDBClusters")
    return clusters[0]


def _cluster_status(rds: Aws, cluster_id: str) -> str | None:
    try:
        return describe_cluster(rds, cluster_id).get("Status")
    except AwsNotFound:
        return None


def _instance_status(rds: Aws, instance_id: str) -> str | None:
    try:
        out = rds.call("describe_db_instances", DBInstanceIdentifier=instance_id)
    except AwsNotFound:
        return None
    items = out.get("DBInstances", [])
    return items[0].get("DBInstanceStatus") if items else None


def _snapshot_status(rds: Aws, snap_id: str) -> str | None:
    try:
        out = rds.call("describe_db_cluster_snapshots", DBClusterSnapshotIdentifier=snap_id)
    except AwsNotFound:
        return None
    items = out.get("DBClusterSnapshots", [])
    return items[0].get("Status") if items else None


def writer_instance_class(rds: Aws, cluster: dict) -> str | None:
    for m in cluster.get("DBClusterMembers", []) or []:
        if m.get("IsClusterWriter"):
            out = rds.call("describe_db_instances", DBInstanceIdentifier=m["DBInstanceIdentifier"])
            items = out.get("DBInstances", [])
            if items:
                return items[0].get("DBInstanceClass")
    return None


def list_snapshots(rds: Aws, cluster_id: str, *, region: str, manual_only: bool = False) -> list[SnapshotInfo]:
    """Every snapshot of ``cluster_id`` in the client's region, oldest first.

    Copies in another region keep the source's cluster identifier, so this finds them too: it lists
    the region's snapshots and keeps those whose cluster identifier matches.
    """
    params: dict[str, Any] = {}
    if manual_only:
        params["SnapshotType"] = "manual"
    else:
        params["DBClusterIdentifier"] = cluster_id
    items = rds.paginate("describe_db_cluster_snapshots", "DBClusterSnapshots", **params)
    snaps = [SnapshotInfo.from_aws(d, region) for d in items if d.get("DBClusterIdentifier") == cluster_id]
    return sorted(snaps, key=lambda s: (s.created or datetime.max.replace(tzinfo=timezone.utc), s.id))


def create_snapshot(
    rds: Aws,
    spec: AuroraBackupSpec,
    *,
    at: datetime,
    wait: bool = False,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = _noop,
) -> SnapshotInfo:
    """Take a manual cluster snapshot named :func:`snapshot_id`, tagged as vigil's; idempotent within a minute."""
    sid = snapshot_id(spec, at)
    try:
        out = rds.call(
            "create_db_cluster_snapshot",
            DBClusterIdentifier=spec.cluster_id,
            DBClusterSnapshotIdentifier=sid,
            Tags=[{"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]}, {"Key": CLUSTER_TAG, "Value": spec.cluster_id}],
        )
        info = SnapshotInfo.from_aws(out["DBClusterSnapshot"], spec.region)
    except AwsError as e:
        if e.aws_code != "DBClusterSnapshotAlreadyExistsFault":
            raise
        info = _describe_snapshot(rds, sid, spec.region)  # taken this minute already (a retried schedule): the same one
    progress(f"snapshot {sid} of {spec.cluster_id} in {spec.region}: {info.status}")
    if wait and info.status != "available":
        _wait_snapshot(rds, sid, spec, clock, sleep, progress)
        info = _describe_snapshot(rds, sid, spec.region)
    return info


def _describe_snapshot(rds: Aws, sid: str, region: str) -> SnapshotInfo:
    out = rds.call("describe_db_cluster_snapshots", DBClusterSnapshotIdentifier=sid)
    items = out.get("DBClusterSnapshots", [])
    if not items:
        raise AwsNotFound(f"rds: snapshot {sid} not found in {region}", service="rds", operation="DescribeDBClusterSnapshots")
    return SnapshotInfo.from_aws(items[0], region)


def _wait_snapshot(rds: Aws, sid: str, spec: AuroraBackupSpec, clock: Clock | None, sleep: Callable[[float], None], progress: Progress) -> None:
    if clock is None:
        raise ValueError("waiting needs a clock")
    wait_for(
        lambda: _snapshot_status(rds, sid),
        what=f"snapshot {sid} in {rds.region}",
        timeout=float(spec.restore.timeout),
        interval=float(spec.restore.poll_interval),
        clock=clock,
        sleep=sleep,
        failed=SNAPSHOT_FAILED,
        progress=progress,
    )


def newest_snapshot(snaps: list[SnapshotInfo]) -> SnapshotInfo | None:
    avail = [s for s in snaps if s.available]
    return max(avail, key=lambda s: s.created) if avail else None  # type: ignore[arg-type, return-value]


@dataclass(frozen=True)
class CopyResult:
    source: SnapshotInfo
    copy: SnapshotInfo
    created: bool  # False: the copy was already there

    def to_dict(self) -> dict:
        return {"source": self.source.to_dict(), "copy": self.copy.to_dict(), "created": self.created}


def copy_snapshot(
    dst: Aws,
    spec: AuroraBackupSpec,
    source: SnapshotInfo,
    *,
    wait: bool = False,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = _noop,
) -> CopyResult:
    """Copy ``source`` into ``spec.cross_region.region``, encrypted with its KMS key; idempotent.

    The call goes to the destination region's endpoint with ``SourceRegion`` (boto3 then signs the
    pre-signed URL AWS needs for an encrypted cross-region copy) and the source snapshot's ARN.
    A copy that already exists under the same name is returned, not made twice.
    """
    cr = spec.cross_region
    if cr is None:
        raise UsageError(
            f"backups.aurora has no cross_region: nowhere to copy {source.id}",
            hint="add backups.aurora.cross_region: {region: us-west-2, kms_key_id: <a key in us-west-2>}",
        )
    if not source.available:
        raise UsageError(f"snapshot {source.id} is {source.status!r}, not available; copy it once it is", hint="or take one with `vigil backup aurora snapshot --wait`")
    if not source.arn:
        raise UsageError(f"snapshot {source.id} has no ARN; a cross-region copy names its source by ARN")
    target = copy_id(spec, source.id)
    try:
        out = dst.call(
            "copy_db_cluster_snapshot",
            SourceDBClusterSnapshotIdentifier=source.arn,
            TargetDBClusterSnapshotIdentifier=target,
            KmsKeyId=cr.kms_key_id,
            SourceRegion=source.region,
            CopyTags=False,
            Tags=[
                {"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]},
                {"Key": CLUSTER_TAG, "Value": spec.cluster_id},
                {"Key": "vigil-copied-from", "Value": source.arn},
            ],
        )
        created = True
        info = SnapshotInfo.from_aws(out["DBClusterSnapshot"], cr.region)
    except AwsError as e:
        if e.aws_code != "DBClusterSnapshotAlreadyExistsFault":
            raise
        created = False
        info = _describe_snapshot(dst, target, cr.region)
    progress(f"copy {target} in {cr.region}: {'started' if created else 'already there'} ({info.status})")
    if wait and info.status != "available":
        _wait_snapshot(dst, target, spec, clock, sleep, progress)
        info = _describe_snapshot(dst, target, cr.region)
    return CopyResult(source, info, created)


def observe(rds: Aws, spec: AuroraBackupSpec, *, dst: Aws | None = None) -> ClusterState:
    """Read the cluster, its snapshots and (with ``dst``) the copies in the cross region. Read-only."""
    try:
        c = describe_cluster(rds, spec.cluster_id)
    except AwsNotFound:
        return ClusterState(spec.cluster_id, spec.region, exists=False,
                            copy_region=spec.cross_region.region if spec.cross_region else None)
    snaps = list_snapshots(rds, spec.cluster_id, region=spec.region)
    copies = None
    if dst is not None and spec.cross_region is not None:
        copies = tuple(list_snapshots(dst, spec.cluster_id, region=spec.cross_region.region, manual_only=True))
    return ClusterState(
        cluster_id=spec.cluster_id,
        region=spec.region,
        exists=True,
        status=c.get("Status"),
        backup_retention_days=c.get("BackupRetentionPeriod"),
        created=_utc(c.get("ClusterCreateTime")),
        earliest_restorable=_utc(c.get("EarliestRestorableTime")),
        latest_restorable=_utc(c.get("LatestRestorableTime")),
        writer_instance_class=writer_instance_class(rds, c),
        snapshots=tuple(snaps),
        copy_region=spec.cross_region.region if spec.cross_region else None,
        copies=copies,
    )


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


def prune(rds: Aws, snaps: list[SnapshotInfo], *, at: datetime, retention_days: int, dry_run: bool = False) -> list[SnapshotInfo]:
    """Delete what :func:`prune_plan` picks (all in ``rds``'s region); return it."""
    plan = prune_plan(snaps, at=at, retention_days=retention_days)
    if not dry_run:
        for s in plan:
            rds.call("delete_db_cluster_snapshot", DBClusterSnapshotIdentifier=s.id)
    return plan


# --- restore -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    """A restore's outcome and timeline (the drill's RTO evidence)."""

    source: str
    region: str
    target_cluster_id: str
    writer_instance_id: str
    mode: str  # point-in-time | snapshot
    restore_to: datetime | None  # None: latest restorable time (point-in-time) or the snapshot's
    snapshot_id: str | None
    started: datetime
    cluster_available: datetime | None
    writer_available: datetime | None
    endpoint: str | None
    calls: tuple[str, ...]

    @property
    def seconds(self) -> float | None:
        return (self.writer_available - self.started).total_seconds() if self.writer_available else None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "region": self.region,
            "target_cluster_id": self.target_cluster_id,
            "writer_instance_id": self.writer_instance_id,
            "mode": self.mode,
            "restore_to": isoformat(self.restore_to) if self.restore_to else "latest",
            "snapshot_id": self.snapshot_id,
            "started": isoformat(self.started),
            "cluster_available": isoformat(self.cluster_available) if self.cluster_available else None,
            "writer_available": isoformat(self.writer_available) if self.writer_available else None,
            "seconds": self.seconds,
            "endpoint": self.endpoint,
            "calls": list(self.calls),
        }


def _ensure_absent(rds: Aws, target: str) -> None:
    if _cluster_status(rds, target) is not None:
        raise UsageError(
            f"a cluster named {target} already exists in {rds.region}; a restore never overwrites one",
            hint="pass --target NEW-NAME, or delete the old restore first (`vigil backup aurora discard --target ...`)",
        )


def _restore_common(spec: AuroraBackupSpec, target: str, source_label: str) -> dict[str, Any]:
    r = spec.restore
    kw: dict[str, Any] = {
        "DBClusterIdentifier": target,
        "DeletionProtection": r.deletion_protection,
        "Tags": [{"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]}, {"Key": RESTORED_FROM_TAG, "Value": source_label}],
    }
    if r.db_subnet_group:
        kw["DBSubnetGroupName"] = r.db_subnet_group
    if r.vpc_security_group_ids:
        kw["VpcSecurityGroupIds"] = list(r.vpc_security_group_ids)
    if r.kms_key_id:
        kw["KmsKeyId"] = r.kms_key_id
    return kw


def _finish_restore(
    rds: Aws,
    spec: AuroraBackupSpec,
    *,
    target: str,
    instance_class: str,
    started: datetime,
    wait: bool,
    clock: Clock,
    sleep: Callable[[float], None],
    progress: Progress,
    calls: list[str],
) -> tuple[datetime | None, datetime | None, str | None, str]:
    r = spec.restore
    writer = f"{target}-writer"[:63].rstrip("-")
    hint = f"the half-made restore {target} in {rds.region} may need deleting: `vigil backup aurora discard --target {target}`"
    cluster_at = writer_at = None
    if wait:
        cluster_at = wait_for(
            lambda: _cluster_status(rds, target), what=f"restored cluster {target}", timeout=float(r.timeout),
            interval=float(r.poll_interval), clock=clock, sleep=sleep, failed=CLUSTER_FAILED, progress=progress, hint=hint,
        )
    rds.call(
        "create_db_instance",
        DBInstanceIdentifier=writer,
        DBClusterIdentifier=target,
        DBInstanceClass=instance_class,
        Engine=spec.engine,
        Tags=[{"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]}, {"Key": RESTORED_FROM_TAG, "Value": spec.cluster_id}],
    )
    calls.append("CreateDBInstance")
    progress(f"writer {writer} ({instance_class}) requested")
    if wait:
        left = float(r.timeout) - (clock.now() - started).total_seconds()
        writer_at = wait_for(
            lambda: _instance_status(rds, writer), what=f"writer instance {writer}", timeout=max(left, float(r.poll_interval)),
            interval=float(r.poll_interval), clock=clock, sleep=sleep, failed=INSTANCE_FAILED, progress=progress, hint=hint,
        )
    endpoint = describe_cluster(rds, target).get("Endpoint")
    return cluster_at, writer_at, endpoint, writer


def restore_point_in_time(
    rds: Aws,
    spec: AuroraBackupSpec,
    *,
    to: datetime | None,
    clock: Clock,
    target: str | None = None,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = _noop,
) -> RestoreResult:
    """Restore the cluster to ``to`` (None: the latest restorable time) as a new cluster, then add its writer.

    Checks first: the source exists, ``to`` is inside its restorable window, the target name is
    free. Then ``RestoreDBClusterToPointInTime``, a bounded wait for the cluster, ``CreateDBInstance``
    for the writer (the source writer's class unless the spec names one) and a bounded wait for it.
    """
    target = target or spec.restore_target
    if target == spec.cluster_id:
        raise UsageError("the restore target is the source cluster; a restore always makes a new cluster", hint="pass another --target")
    cluster = describe_cluster(rds, spec.cluster_id)
    if to is not None:
        check_restore_time(to, _utc(cluster.get("EarliestRestorableTime")), _utc(cluster.get("LatestRestorableTime")), cluster_id=spec.cluster_id)
    _ensure_absent(rds, target)
    instance_class = spec.writer_instance_class or writer_instance_class(rds, cluster)
    if not instance_class:
        raise UsageError(
            f"{spec.cluster_id} has no writer instance to copy the class from",
            hint="set backups.aurora.writer_instance_class, e.g. db.r6g.large",
        )
    started = clock.now()
    kw = _restore_common(spec, target, spec.cluster_id)
    kw.update(SourceDBClusterIdentifier=spec.cluster_id, RestoreType=spec.restore.restore_type)
    if to is None:
        kw["UseLatestRestorableTime"] = True
    else:
        kw["RestoreToTime"] = to.astimezone(timezone.utc)
    rds.call("restore_db_cluster_to_point_in_time", **kw)
    calls = ["RestoreDBClusterToPointInTime"]
    progress(f"restore of {spec.cluster_id} to {isoformat(to) if to else 'the latest restorable time'} as {target} started")
    cluster_at, writer_at, endpoint, writer = _finish_restore(
        rds, spec, target=target, instance_class=instance_class, started=started, wait=wait, clock=clock, sleep=sleep,
        progress=progress, calls=calls,
    )
    return RestoreResult(spec.cluster_id, rds.region or spec.region, target, writer, "point-in-time", to, None, started,
                         cluster_at, writer_at, endpoint, tuple(calls))


def restore_from_snapshot(
    rds: Aws,
    spec: AuroraBackupSpec,
    *,
    snapshot: str,
    clock: Clock,
    target: str | None = None,
    instance_class: str | None = None,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = _noop,
) -> RestoreResult:
    """Restore a snapshot (e.g. a cross-region copy, for a region loss) as a new cluster plus writer, in ``rds``'s region."""
    target = target or spec.restore_target
    region = rds.region or spec.region
    snap = _describe_snapshot(rds, snapshot, region)
    if not snap.available:
        raise UsageError(f"snapshot {snapshot} in {region} is {snap.status!r}, not available")
    _ensure_absent(rds, target)
    cls = instance_class or spec.writer_instance_class
    if not cls:
        raise UsageError(
            "a restore from a snapshot needs the writer's instance class",
            hint="set backups.aurora.writer_instance_class, e.g. db.r6g.large",
        )
    started = clock.now()
    kw = _restore_common(spec, target, snap.arn or snap.id)
    kw.update(SnapshotIdentifier=snap.id, Engine=spec.engine)
    if "KmsKeyId" not in kw and spec.cross_region is not None and region == spec.cross_region.region:
        kw["KmsKeyId"] = spec.cross_region.kms_key_id
    rds.call("restore_db_cluster_from_snapshot", **kw)
    calls = ["RestoreDBClusterFromSnapshot"]
    progress(f"restore of snapshot {snapshot} as {target} in {region} started")
    cluster_at, writer_at, endpoint, writer = _finish_restore(
        rds, spec, target=target, instance_class=cls, started=started, wait=wait, clock=clock, sleep=sleep,
        progress=progress, calls=calls,
    )
    return RestoreResult(spec.cluster_id, region, target, writer, "snapshot", snap.created, snapshot, started,
                         cluster_at, writer_at, endpoint, tuple(calls))


def discard_restore(rds: Aws, spec: AuroraBackupSpec, *, target: str) -> list[str]:
    """Delete a cluster vigil restored (its instances, then the cluster, no final snapshot).

    Refuses the source cluster and any cluster without vigil's ``vigil-restored-from`` tag: a drill
    cleans up after itself and never touches anything else.
    """
    if target == spec.cluster_id:
        raise UsageError(f"{target} is the source cluster; vigil deletes only clusters it restored")
    c = describe_cluster(rds, target)
    tags = {t["Key"]: t.get("Value", "") for t in c.get("TagList", []) or []}
    if RESTORED_FROM_TAG not in tags:
        raise UsageError(
            f"{target} in {rds.region} has no {RESTORED_FROM_TAG} tag: vigil did not restore it and will not delete it",
            hint="delete it yourself if it really must go",
        )
    calls = []
    for m in c.get("DBClusterMembers", []) or []:
        rds.call("delete_db_instance", DBInstanceIdentifier=m["DBInstanceIdentifier"], SkipFinalSnapshot=True)
        calls.append(f"DeleteDBInstance {m['DBInstanceIdentifier']}")
    if c.get("DeletionProtection"):
        rds.call("modify_db_cluster", DBClusterIdentifier=target, DeletionProtection=False, ApplyImmediately=True)
        calls.append(f"ModifyDBCluster {target} DeletionProtection=false")
    rds.call("delete_db_cluster", DBClusterIdentifier=target, SkipFinalSnapshot=True)
    calls.append(f"DeleteDBCluster {target}")
    return calls
