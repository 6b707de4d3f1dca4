"""The AWS calls for snapshots, copies and the cluster's state, each through one :class:`~vigil.dr.aws.client.Aws`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from vigil.clock import Clock
from vigil.dr.aws.aurora.model import CLUSTER_TAG, MANAGED_TAG, SNAPSHOT_FAILED, ClusterState, Progress, SnapshotInfo, _noop, _utc
from vigil.dr.aws.aurora.retention import copy_id, prune_plan, snapshot_id
from vigil.dr.aws.aurora.waiting import wait_for
from vigil.dr.aws.client import Aws, AwsError, AwsNotFound
from vigil.dr.aws.spec import AuroraBackupSpec
from vigil.errors import UsageError


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


def prune(rds: Aws, snaps: list[SnapshotInfo], *, at: datetime, retention_days: int, dry_run: bool = False) -> list[SnapshotInfo]:
    """Delete what :func:`prune_plan` picks (all in ``rds``'s region); return it."""
    plan = prune_plan(snaps, at=at, retention_days=retention_days)
    if not dry_run:
        for s in plan:
            rds.call("delete_db_cluster_snapshot", DBClusterSnapshotIdentifier=s.id)
    return plan
