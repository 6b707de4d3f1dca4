"""Aurora as vigil sees it: the tags and states it knows, one snapshot, one cluster's state. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from vigil.clock import isoformat

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
