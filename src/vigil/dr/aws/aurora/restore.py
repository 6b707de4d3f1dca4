"""Restores: point in time or from a snapshot, as a new cluster plus its writer; and discarding them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from vigil.clock import Clock, isoformat
from vigil.dr.aws.aurora.calls import _cluster_status, _describe_snapshot, _instance_status, describe_cluster, writer_instance_class
from vigil.dr.aws.aurora.model import CLUSTER_FAILED, INSTANCE_FAILED, MANAGED_TAG, RESTORED_FROM_TAG, Progress, _noop, _utc
from vigil.dr.aws.aurora.retention import check_restore_time
from vigil.dr.aws.aurora.waiting import wait_for
from vigil.dr.aws.client import Aws
from vigil.dr.aws.spec import AuroraBackupSpec
from vigil.errors import UsageError


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
