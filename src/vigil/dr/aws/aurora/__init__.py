"""Aurora through boto3: cluster snapshots, cross-region copies, point-in-time restore, retention.

The AWS calls live in functions taking an :class:`~vigil.dr.aws.client.Aws` (one client, the retry
policy, error translation); the judgements (is the restore time inside the window, is retention
met, which snapshots are past it) are pure functions over :class:`SnapshotInfo` lists and ``at``.
Waiting is a bounded poll on an injected clock and sleep, so tests run on a fake clock.

What a restore is: ``RestoreDBClusterToPointInTime`` makes a cluster with no instance, then
``CreateDBInstance`` adds the writer; the database answers only once the writer is available.

Modules: :mod:`.model` (data), :mod:`.retention` (pure: names, windows, retention), :mod:`.waiting`
(the bounded poll), :mod:`.calls` (snapshots, copies, observe, prune) and :mod:`.restore`.
"""

from vigil.dr.aws.aurora.calls import (
                                       CopyResult,
                                       copy_snapshot,
                                       create_snapshot,
                                       describe_cluster,
                                       list_snapshots,
                                       observe,
                                       prune,
                                       writer_instance_class,
)
from vigil.dr.aws.aurora.model import (
                                       CLUSTER_FAILED,
                                       CLUSTER_TAG,
                                       INSTANCE_FAILED,
                                       MANAGED_TAG,
                                       RESTORED_FROM_TAG,
                                       SNAPSHOT_FAILED,
                                       ClusterState,
                                       Progress,
                                       SnapshotInfo,
)
from vigil.dr.aws.aurora.restore import RestoreResult, discard_restore, restore_from_snapshot, restore_point_in_time
from vigil.dr.aws.aurora.retention import (
                                       AURORA_MAX_BACKUP_RETENTION,
                                       RetentionProblem,
                                       RetentionReport,
                                       check_restore_time,
                                       check_retention,
                                       copy_id,
                                       newest_snapshot,
                                       prune_plan,
                                       retention_reports,
                                       snapshot_id,
)
from vigil.dr.aws.aurora.waiting import wait_for

__all__ = [
    "AURORA_MAX_BACKUP_RETENTION", "CLUSTER_FAILED", "CLUSTER_TAG", "INSTANCE_FAILED", "MANAGED_TAG", "RESTORED_FROM_TAG",
    "SNAPSHOT_FAILED", "ClusterState", "CopyResult", "Progress", "RestoreResult", "RetentionProblem", "RetentionReport",
    "SnapshotInfo", "check_restore_time", "check_retention", "copy_id", "copy_snapshot", "create_snapshot", "describe_cluster",
    "discard_restore", "list_snapshots", "newest_snapshot", "observe", "prune", "prune_plan", "restore_from_snapshot",
    "restore_point_in_time", "retention_reports", "snapshot_id", "wait_for", "writer_instance_class",
]
