"""``backups.aurora`` and ``backups.s3``: Aurora snapshots and PITR, object storage policy.

Credentials never appear here: boto3 reads them from the standard AWS chain (``AWS_PROFILE``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, SSO, the instance or task role). The spec names
what to protect and how; an S3 ``endpoint_url`` for S3-compatible stores passes the SSRF rule
(:func:`vigil.dr.aws.endpoint.check_endpoint_url`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, ValidationInfo, field_validator, model_validator

from vigil.dr.aws.endpoint import check_endpoint_url
from vigil.model import Duration, SpecModel
from vigil.units import format_duration, parse_duration

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
CLUSTER_ID = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=,.@:-]+$")
KMS_BARE = re.compile(r"^(alias/[A-Za-z0-9/_-]{1,250}|(mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32})$")
INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9-]+\.[a-z0-9]+$")

_SCHEDULE_WORDS = {"hourly": Decimal(3600), "daily": Decimal(86400), "weekly": Decimal(604800)}


def _schedule_duration(v: Any) -> Decimal:
    if isinstance(v, str) and v.strip().lower() in _SCHEDULE_WORDS:
        return _SCHEDULE_WORDS[v.strip().lower()]
    return parse_duration(v)


Schedule = Annotated[Decimal, BeforeValidator(_schedule_duration), PlainSerializer(format_duration, return_type=str)]
"""How often a snapshot is taken: ``daily``, ``hourly``, ``weekly`` or a duration like 12h."""


def _region(v: str, what: str = "region") -> str:
    if not REGION.match(v):
        raise ValueError(f"{what} {v!r} is not an AWS region name like eu-west-1 or us-gov-west-1")
    return v


def kms_key_region(key: str) -> str | None:
    """The region of a KMS key ARN or alias ARN; None for a bare key id or alias (the client's region)."""
    m = KMS_ARN.match(key)
    return m.group(1) if m else None


# --- Aurora ------------------------------------------------------------------------------------


class CrossRegionCopy(SpecModel):
    """Where each snapshot is copied for a region loss, and with which key."""

    region: str = Field(description="the destination region of the copies, e.g. us-west-2 (the cold standby region)")
    kms_key_id: str = Field(
        description="KMS key in the destination region that encrypts the copies: key id, key ARN, alias/NAME or alias ARN"
    )
    retention_days: int | None = Field(
        None, ge=1, le=3650, description="how long copies are kept (default: the same as `retention_days`)"
    )

    @field_validator("region")
    @classmethod
    def _r(cls, v: str) -> str:
        return _region(v)

    @field_validator("kms_key_id")
    @classmethod
    def _kms(cls, v: str) -> str:
        if not (KMS_ARN.match(v) or KMS_BARE.match(v)):
            raise ValueError(
                f"kms_key_id {v!r} is not a KMS key id, key ARN, alias/NAME or alias ARN "
                "(like arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab)"
            )
        return v

    @model_validator(mode="after")
    def _key_in_region(self) -> "CrossRegionCopy":
        kr = kms_key_region(self.kms_key_id)
        if kr is not None and kr != self.region:
            raise ValueError(
                f"kms_key_id is a key in {kr}, but the copies are made in {self.region}; a KMS key is regional: "
                f"use a key (or a multi-Region replica key) in {self.region}"
            )
        return self


class RestoreDefaults(SpecModel):
    """Defaults for a point-in-time restore into a new cluster plus its writer instance."""

    target_cluster_id: str | None = Field(
        None, description="identifier of the restored cluster (default `<cluster_id>-restore`); never the source"
    )
    restore_type: Literal["full-copy", "copy-on-write"] = Field(
        "full-copy", description="`full-copy` (an independent cluster) or `copy-on-write` (a fast clone, same region)"
    )
    db_subnet_group: str | None = Field(None, description="DB subnet group of the restored cluster (default: the account's default VPC)")
    vpc_security_group_ids: list[str] = Field(default_factory=list, description="VPC security groups of the restored cluster")
    kms_key_id: str | None = Field(None, description="KMS key of the restored cluster (default: the source cluster's key)")
    deletion_protection: bool = Field(False, description="turn on deletion protection on the restored cluster")
    timeout: Duration = Field("2h", validate_default=True, description="give up waiting for the restored cluster and writer after this (default 2h)")
    poll_interval: Duration = Field("30s", validate_default=True, description="how often to poll the restore's status (default 30s)")

    @field_validator("target_cluster_id")
    @classmethod
    def _tid(cls, v: str | None) -> str | None:
        if v is not None and not CLUSTER_ID.match(v):
            raise ValueError(f"target_cluster_id {v!r}: 1-63 letters, digits or hyphens, starting with a letter, no '--', not ending with '-'")
        return v

    @field_validator("vpc_security_group_ids")
    @classmethod
    def _sg(cls, v: list[str]) -> list[str]:
        for g in v:
            if not re.match(r"^sg-[0-9a-f]{8,17}$", g):
                raise ValueError(f"security group {g!r} is not an id like sg-0123456789abcdef0")
        return v

    @field_validator("kms_key_id")
    @classmethod
    def _kms(cls, v: str | None) -> str | None:
        if v is not None and not (KMS_ARN.match(v) or KMS_BARE.match(v)):
            raise ValueError(f"kms_key_id {v!r} is not a KMS key id, key ARN, alias/NAME or alias ARN")
        return v

    @model_validator(mode="after")
    def _times(self) -> "RestoreDefaults":
        if self.poll_interval <= 0 or self.timeout <= 0:
            raise ValueError("timeout and poll_interval must be above zero")
        if self.poll_interval > self.timeout:
            raise ValueError(f"poll_interval {format_duration(self.poll_interval)} is longer than timeout {format_duration(self.timeout)}")
        if self.timeout > 86400:
            raise ValueError("timeout is at most 24h: a restore that takes longer has failed")
        return self


class AuroraBackupSpec(SpecModel):
    """An Aurora cluster's snapshots, their cross-region copies and point-in-time restores."""

    cluster_id: str = Field(description="the Aurora DB cluster identifier, e.g. platform-prod")
    region: str = Field(description="the cluster's region, e.g. eu-west-1")
    engine: Literal["aurora-postgresql", "aurora-mysql"] = Field(
        "aurora-postgresql", description="the cluster's engine; a restored writer instance uses it"
    )
    writer_instance_class: str | None = Field(
        None, description="instance class of a restored cluster's writer, e.g. db.r6g.large (default: the source writer's class)"
    )
    schedule: Schedule = Field(
        "daily", validate_default=True, description="how often a snapshot is taken: daily (the plan), hourly, weekly or a duration like 12h"
    )
    retention_days: int = Field(35, ge=1, le=3650, description="snapshots are kept this many days (the plan: 35)")
    snapshot_prefix: str = Field("vigil", description="prefix of the snapshots vigil creates: `<prefix>-<cluster_id>-<UTC time>`")
    cross_region: CrossRegionCopy | None = Field(None, description="copy every snapshot to another region, encrypted with a key there")
    restore: RestoreDefaults = Field(default_factory=RestoreDefaults, description="defaults of `vigil backup aurora restore`")

    @field_validator("cluster_id")
    @classmethod
    def _cid(cls, v: str) -> str:
        if not CLUSTER_ID.match(v):
            raise ValueError(f"cluster_id {v!r}: 1-63 letters, digits or hyphens, starting with a letter, no '--', not ending with '-'")
        return v

    @field_validator("region")
    @classmethod
    def _r(cls, v: str) -> str:
        return _region(v)

    @field_validator("writer_instance_class")
    @classmethod
    def _cls(cls, v: str | None) -> str | None:
        if v is not None and not INSTANCE_CLASS.match(v):
            raise ValueError(f"writer_instance_class {v!r} is not an RDS instance class like db.r6g.large")
        return v

    @field_validator("snapshot_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.match(r"^[a-z](?!.*--)[a-z0-9-]{0,31}(?<!-)$", v):
            raise ValueError(f"snapshot_prefix {v!r}: 1-32 lowercase letters, digits or hyphens, starting with a letter")
        return v

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Decimal) -> Decimal:
        if v < 3600 or v % 60 != 0:
            raise ValueError(f"schedule {format_duration(v)}: whole minutes, at least 1h")
        if v > 30 * 86400:
            raise ValueError(f"schedule {format_duration(v)}: at most 30d between snapshots")
        return v

    @model_validator(mode="after")
    def _cross(self) -> "AuroraBackupSpec":
        if self.cross_region is not None and self.cross_region.region == self.region:
            raise ValueError(
                f"cross_region.region is the cluster's own region ({self.region}); a copy for a region loss must go to another region"
            )
        if self.restore.target_cluster_id is not None and self.restore.target_cluster_id == self.cluster_id:
            raise ValueError("restore.target_cluster_id is the source cluster; a restore always makes a new cluster")
        return self

    @property
    def restore_target(self) -> str:
        return self.restore.target_cluster_id or f"{self.cluster_id}-restore"[:63].rstrip("-")

    @property
    def copy_retention_days(self) -> int:
        if self.cross_region is not None and self.cross_region.retention_days is not None:
            return self.cross_region.retention_days
        return self.retention_days


# --- S3 ----------------------------------------------------------------------------------------

def _upper(v: Any) -> Any:
    return v.strip().upper() if isinstance(v, str) else v


StorageClass = Annotated[
    Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], BeforeValidator(_upper)
]
# the waterfall: a later transition goes to a class at the same rank or lower in this list
_RANK = {"STANDARD_IA": 1, "INTELLIGENT_TIERING": 1, "ONEZONE_IA": 2, "GLACIER_IR": 3, "GLACIER": 4, "DEEP_ARCHIVE": 5}
IA_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA"})
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
"""Classes whose objects must be restored (hours) before they can be read: never for WAL."""


class Transition(SpecModel):
    days: int = Field(ge=0, le=36500, description="days after creation (or after becoming noncurrent)")
    storage_class: StorageClass = Field(description="STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER or DEEP_ARCHIVE")


def _check_transitions(ts: list[Transition], what: str, expiration: int | None) -> None:
    prev: Transition | None = None
    for t in ts:
        if t.storage_class in IA_CLASSES and t.days < 30:
            raise ValueError(f"{what}: S3 moves objects to {t.storage_class} after 30 days at the earliest (got {t.days})")
        if prev is not None:
            if t.days <= prev.days:
                raise ValueError(f"{what}: days must increase ({prev.days} then {t.days})")
            if _RANK[t.storage_class] < _RANK[prev.storage_class] or t.storage_class == prev.storage_class:
                raise ValueError(
                    f"{what}: {prev.storage_class} then {t.storage_class} goes up the waterfall; "
                    "S3 transitions go Standard -> IA -> Glacier Instant -> Glacier -> Deep Archive"
                )
        prev = t
    if expiration is not None and prev is not None and expiration <= prev.days:
        raise ValueError(f"{what}: expiration at {expiration} days comes before the last transition at {prev.days} days")


class LifecycleRule(SpecModel):
    """One lifecycle rule over a prefix: transitions down the storage classes, then expiration."""

    id: str = Field(description="rule id, unique in the bucket (S3's rule ID)")
    prefix: str = Field("", description="key prefix the rule applies to; empty means the whole bucket")
    enabled: bool = Field(True, description="false keeps the rule but disables it")
    transitions: list[Transition] = Field(
        default_factory=list, description="storage-class transitions of current versions, e.g. STANDARD_IA at 30 days, GLACIER at 90"
    )
    expiration_days: int | None = Field(None, ge=1, le=36500, description="current versions expire (become noncurrent or deleted) after this many days")
    noncurrent_transitions: list[Transition] = Field(
        default_factory=list, description="transitions of noncurrent versions, days after they became noncurrent"
    )
    noncurrent_expiration_days: int | None = Field(
        None, ge=1, le=36500, description="noncurrent versions are deleted this many days after becoming noncurrent"
    )
    abort_incomplete_multipart_days: int | None = Field(
        None, ge=1, le=36500, description="abort incomplete multipart uploads after this many days"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not 1 <= len(v) <= 255:
            raise ValueError("a lifecycle rule id is 1-255 characters")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if len(v.encode()) > 1024:
            raise ValueError("a key prefix is at most 1024 bytes")
        return v

    @model_validator(mode="after")
    def _check(self) -> "LifecycleRule":
        _check_transitions(self.transitions, "transitions", self.expiration_days)
        _check_transitions(self.noncurrent_transitions, "noncurrent_transitions", self.noncurrent_expiration_days)
        if not (self.transitions or self.expiration_days or self.noncurrent_transitions or self.noncurrent_expiration_days
                or self.abort_incomplete_multipart_days):
            raise ValueError(f"lifecycle rule {self.id!r} has no action: give transitions, an expiration or abort_incomplete_multipart_days")
        return self


class ObjectLock(SpecModel):
    """The bucket's default Object Lock retention for new object versions."""

    mode: Annotated[Literal["GOVERNANCE", "COMPLIANCE"], BeforeValidator(_upper)] = Field(
        description="COMPLIANCE: nobody, root included, can delete a version before it expires; GOVERNANCE: holders of s3:BypassGovernanceRetention can"
    )
    days: int | None = Field(None, ge=1, le=36500, description="default retention in days (exactly one of days, years)")
    years: int | None = Field(None, ge=1, le=100, description="default retention in years (exactly one of days, years)")

    @model_validator(mode="after")
    def _one(self) -> "ObjectLock":
        if (self.days is None) == (self.years is None):
            raise ValueError("object_lock needs exactly one of days or years")
        return self

    @property
    def retention_days(self) -> int:
        return self.days if self.days is not None else 365 * (self.years or 0)


class BucketPolicy(SpecModel):
    """What one bucket must look like."""

    name: str = Field(description="the bucket name")
    critical: bool = Field(False, description="holds backups or data that must survive deletion and ransomware: Object Lock expected")
    versioning: bool = Field(True, description="keep every version of every object (required by Object Lock)")
    lifecycle: list[LifecycleRule] | None = Field(
        None, description="the bucket's whole lifecycle configuration; [] means no rules; omitted means vigil leaves it alone"
    )
    object_lock: ObjectLock | None = Field(None, description="Object Lock default retention; omitted means vigil leaves it alone")
    wal_prefixes: list[str] = Field(
        default_factory=list,
        description="key prefixes holding a WAL archive (e.g. pgBackRest's archive/<stanza>/): never sent to Glacier or expired early",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not BUCKET.match(v) or ".." in v or re.match(r"^\d+\.\d+\.\d+\.\d+$", v):
            raise ValueError(f"bucket name {v!r}: 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit")
        return v

    @field_validator("object_lock")
    @classmethod
    def _lock_needs_versioning(cls, v: ObjectLock | None, info: ValidationInfo) -> ObjectLock | None:
        if v is not None and info.data.get("versioning") is False:
            raise ValueError("object_lock requires versioning: true (S3 keeps locked data as object versions)")
        return v

    @model_validator(mode="after")
    def _check(self) -> "BucketPolicy":
        if self.lifecycle is not None:
            seen: set[str] = set()
            for r in self.lifecycle:
                if r.id in seen:
                    raise ValueError(f"duplicate lifecycle rule id {r.id!r}")
                seen.add(r.id)
            if len(self.lifecycle) > 1000:
                raise ValueError("S3 allows at most 1000 lifecycle rules per bucket")
        return self


class S3PolicySpec(SpecModel):
    """Versioning, lifecycle and Object Lock of the platform's buckets."""

    region: str | None = Field(None, description="region of the buckets (default: from the AWS environment, AWS_REGION)")
    endpoint_allow_link_local: bool = Field(
        False, description="allow endpoint_url to be a link-local or cloud metadata address (almost never right)"
    )
    endpoint_url: str | None = Field(
        None, description="an S3-compatible endpoint (MinIO, Ceph...); link-local and metadata addresses are refused"
    )
    wal_retention_days: int = Field(
        35, ge=1, le=36500, description="WAL must be kept at least this long: as long as the oldest backup that needs it (the plan: 35)"
    )
    buckets: list[BucketPolicy] = Field(default_factory=list, description="the buckets whose policy vigil applies and audits")

    @field_validator("region")
    @classmethod
    def _r(cls, v: str | None) -> str | None:
        return _region(v) if v is not None else None

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            check_endpoint_url(v, allow_link_local=bool(info.data.get("endpoint_allow_link_local")))
        return v

    @model_validator(mode="after")
    def _check(self) -> "S3PolicySpec":
        seen: set[str] = set()
        for b in self.buckets:
            if b.name in seen:
                raise ValueError(f"bucket {b.name!r} is listed twice")
            seen.add(b.name)
        return self

    def bucket(self, name: str) -> BucketPolicy:
        for b in self.buckets:
            if b.name == name:
                return b
        raise KeyError(name)
