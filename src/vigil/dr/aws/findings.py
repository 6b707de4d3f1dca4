"""Gaps between the plan and what the AWS backups can deliver: pure functions for the DR gap register.

Each check reads the spec and, when given, what AWS reported (:class:`ClusterState` from
:func:`vigil.dr.aws.aurora.observe`, :class:`BucketState` from :func:`vigil.dr.aws.s3policy.observe`).
Where a bucket or the cluster was observed, the gap is about the real thing (``where="observed"``);
otherwise about what the spec declares (``where`` is the spec path). No I/O, no clock: ``at`` is given.

The gaps are :class:`vigil.dr.gaps.Gap` (the register's type), with the register's ids where the
meaning is the same, so ``vigil.dr.gaps.spec_gaps`` (the spec side) and
``findings(..., include_spec=False)`` (the observed side) combine without duplicates.

==============================  ========  ===============================================================
id                              severity  meaning
==============================  ========  ===============================================================
aurora-retention-below-plan     high      snapshot retention, or the cluster's backup retention period, < the plan
aurora-no-cross-region-copy     high      nothing leaves the region: a region loss loses every backup
aurora-copy-retention-below-plan high     cross-region copies are kept less than the plan
region-loss-rpo-unkeepable      critical  the copy schedule (daily) cannot meet the RPO objective (15 min)
aurora-cluster-missing          critical  the cluster in the spec does not exist
aurora-no-snapshots             critical  no available snapshot in the cluster's region
aurora-snapshot-stale           high      the newest snapshot is older than the schedule allows
aurora-snapshot-gap             medium    holes in the snapshot history within the retention
aurora-snapshot-history-short   medium    snapshots do not reach back the retention
aurora-no-copies                high      no copy in the cross region
aurora-copy-stale               high      the newest cross-region copy is older than the schedule allows
aurora-copy-gap                 medium    holes in the copies' history
aurora-copy-history-short       medium    copies do not reach back their retention
s3-bucket-missing               high      a bucket in the spec does not exist
s3-versioning-off               high      (critical bucket; medium otherwise) versioning is not Enabled
s3-object-lock-missing          high      a critical bucket has no Object Lock
s3-object-lock-short            medium    Object Lock keeps versions for less than the backup retention
s3-object-lock-governance       low       GOVERNANCE mode: s3:BypassGovernanceRetention can delete
s3-lifecycle-breaks-wal         critical  a rule moves WAL to GLACIER/DEEP_ARCHIVE, or expires it, before the backups are done with it
==============================  ========  ===============================================================
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Mapping

from vigil.dr.aws.aurora import ClusterState, retention_reports
from vigil.dr.aws.s3policy import BucketState, RuleState, desired_state
from vigil.dr.aws.spec import ARCHIVE_CLASSES, AuroraBackupSpec, S3PolicySpec
from vigil.dr.gaps import SEVERITY_ORDER, Gap
from vigil.units import format_duration

PLAN_RETENTION_DAYS = 35
OBSERVED = "observed"

__all__ = ["Gap", "aurora_findings", "bucket_findings", "findings", "s3_findings", "wal_findings"]


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


# --- Aurora ------------------------------------------------------------------------------------

_SOURCE_KINDS = {
    "no-snapshots": ("aurora-no-snapshots", "critical"),
    "stale": ("aurora-snapshot-stale", "high"),
    "gap": ("aurora-snapshot-gap", "medium"),
    "short-history": ("aurora-snapshot-history-short", "medium"),
}
_COPY_KINDS = {
    "no-snapshots": ("aurora-no-copies", "high"),
    "stale": ("aurora-copy-stale", "high"),
    "gap": ("aurora-copy-gap", "medium"),
    "short-history": ("aurora-copy-history-short", "medium"),
}


def aurora_findings(
    spec: AuroraBackupSpec | None,
    *,
    cluster: ClusterState | None = None,
    at: datetime | None = None,
    rpo_objective_seconds: Decimal | int | None = None,
    required_retention_days: int = PLAN_RETENTION_DAYS,
    include_spec: bool = True,
) -> list[Gap]:
    """Gaps of the Aurora backups. The snapshot checks need both ``cluster`` and ``at``."""
    if spec is None:
        return []
    gaps: list[Gap] = []
    if include_spec:
        gaps += _aurora_spec_findings(spec, rpo_objective_seconds, required_retention_days)
    if cluster is None:
        return gaps
    if not cluster.exists:
        gaps.append(Gap("aurora-cluster-missing", "critical", f"Aurora cluster {spec.cluster_id} does not exist in {cluster.region}",
                        OBSERVED, "check backups.aurora.cluster_id, region and the AWS account in use"))
        return gaps
    needed = min(required_retention_days, 35)
    if cluster.backup_retention_days is not None and cluster.backup_retention_days < needed:
        gaps.append(Gap(
            "aurora-retention-below-plan", "high",
            f"Aurora cluster {spec.cluster_id} has a backup retention period of {_days(cluster.backup_retention_days)}: point-in-time "
            f"restore and automated snapshots reach back only that far; the plan needs {_days(needed)}",
            OBSERVED,
            f"aws rds modify-db-cluster --db-cluster-identifier {spec.cluster_id} --backup-retention-period {needed} --apply-immediately",
        ))
    if at is not None:
        for i, rep in enumerate(retention_reports(cluster, spec, at=at)):
            kinds = _SOURCE_KINDS if i == 0 else _COPY_KINDS
            for p in rep.problems:
                if p.kind not in kinds:
                    continue  # automated-retention is reported above
                gid, sev = kinds[p.kind]
                gaps.append(Gap(gid, sev, f"Aurora: {p.message}", OBSERVED,
                                "`vigil backup aurora check-retention` shows the details; schedule `vigil backup aurora snapshot --copy` "
                                "to run every " + format_duration(spec.schedule)))
    return gaps


def _aurora_spec_findings(spec: AuroraBackupSpec, rpo: Decimal | int | None, required: int) -> list[Gap]:
    gaps: list[Gap] = []
    if spec.retention_days < required:
        gaps.append(Gap("aurora-retention-below-plan", "high",
                        f"Aurora snapshots of {spec.cluster_id} are kept {_days(spec.retention_days)}; the plan keeps {_days(required)}",
                        "backups.aurora.retention_days", f"set retention_days: {required}"))
    if spec.cross_region is None:
        gaps.append(Gap("aurora-no-cross-region-copy", "high",
                        f"no snapshot of {spec.cluster_id} leaves {spec.region}: a region loss loses the database and every backup",
                        "backups.aurora.cross_region",
                        "add cross_region: {region: ..., kms_key_id: <a key there>} and run `vigil backup aurora snapshot --copy` on schedule"))
        return gaps
    if spec.copy_retention_days < required:
        gaps.append(Gap("aurora-copy-retention-below-plan", "high",
                        f"cross-region copies of {spec.cluster_id} are kept {_days(spec.copy_retention_days)}; the plan keeps {_days(required)}",
                        "backups.aurora.cross_region.retention_days", f"set retention_days: {required}"))
    if rpo is not None and Decimal(spec.schedule) > Decimal(rpo):
        every = format_duration(spec.schedule)
        gaps.append(Gap(
            "region-loss-rpo-unkeepable", "critical",
            f"snapshots of {spec.cluster_id} are copied to {spec.cross_region.region} once every {every}: a region loss can lose up to "
            f"{every} of data (more while a copy runs), but the RPO objective is {format_duration(Decimal(rpo))}",
            "backups.aurora.cross_region",
            "snapshot copies cannot reach minutes: use continuous cross-region replication (an Aurora Global Database, typically "
            f"about 1 s behind) or state the region-loss RPO as {every} in the plan",
        ))
    return gaps


# --- S3 ----------------------------------------------------------------------------------------


def _overlaps(rule_prefix: str, wal_prefix: str) -> bool:
    """Does a rule over ``rule_prefix`` touch keys under ``wal_prefix``?"""
    return wal_prefix.startswith(rule_prefix) or rule_prefix.startswith(wal_prefix)


def _filter_note(r: RuleState) -> str:
    for k, v in r.extra:
        if k == "filter":
            return f" (for objects matching {v})"
    return ""


def wal_findings(state: BucketState, wal_prefixes: list[str], *, wal_retention_days: int, where: str) -> list[Gap]:
    """Lifecycle rules that break a WAL archive: to Glacier, or expired, before the backups are done with it.

    A transition to GLACIER or DEEP_ARCHIVE (restores take hours per object) or an expiration of
    current versions earlier than ``wal_retention_days`` on a prefix overlapping a WAL prefix.
    GLACIER_IR and the IA classes read instantly and are fine. Later than the retention, the backup
    tool has expired that WAL anyway.
    """
    gaps: list[Gap] = []
    for j, r in enumerate(state.lifecycle or ()):
        if not r.enabled:
            continue
        for wal in wal_prefixes:
            if not _overlaps(r.prefix, wal):
                continue
            what = f"bucket {state.name}: lifecycle rule {r.id!r} (prefix {r.prefix!r}){_filter_note(r)}"
            w = where if where == OBSERVED else f"{where}.lifecycle[{j}]"
            cold = [(d, c) for d, c in r.transitions if c in ARCHIVE_CLASSES and d < wal_retention_days]
            if cold:
                d, c = cold[0]
                gaps.append(Gap(
                    "s3-lifecycle-breaks-wal", "critical",
                    f"{what} moves WAL under {wal!r} to {c} after {_days(d)}, before the {wal_retention_days} days the backups need it: "
                    "a point-in-time restore would wait hours for each segment to come back from the archive, or fail",
                    w, f"exclude {wal!r} from the rule (narrow its prefix), or use GLACIER_IR / STANDARD_IA for WAL",
                ))
            if r.expiration_days is not None and r.expiration_days < wal_retention_days:
                gaps.append(Gap(
                    "s3-lifecycle-breaks-wal", "critical",
                    f"{what} expires WAL under {wal!r} after {_days(r.expiration_days)}, before the {wal_retention_days} days the backups "
                    "need it: point-in-time recovery to older points breaks",
                    w, f"let the backup tool expire WAL with its backups (pgBackRest does), or expire no earlier than {wal_retention_days} days",
                ))
    return gaps


def bucket_findings(state: BucketState, *, critical: bool, wal_prefixes: list[str], wal_retention_days: int,
                    required_retention_days: int, where: str) -> list[Gap]:
    """Gaps of one bucket, observed (``where="observed"``) or as the spec wants it (``where`` its spec path)."""
    spec_side = where != OBSERVED

    def at(field: str) -> str:
        return f"{where}.{field}" if spec_side else OBSERVED

    if not state.exists:
        return [Gap("s3-bucket-missing", "high", f"bucket {state.name} does not exist", OBSERVED,
                    "create it, or run `vigil backup s3-policy apply --create-missing`")]
    gaps: list[Gap] = []
    if state.versioning != "Enabled":
        gaps.append(Gap(
            "s3-versioning-off", "high" if critical else "medium",
            f"{'critical ' if critical else ''}bucket {state.name} keeps no object versions (versioning {state.versioning}): "
            "an overwrite or a delete loses the object",
            at("versioning"), "set versioning: true and run `vigil backup s3-policy apply`",
        ))
    if critical and not state.object_lock_enabled:
        gaps.append(Gap(
            "s3-object-lock-missing", "high",
            f"bucket {state.name} is critical but has no Object Lock: anyone with delete rights (or ransomware holding them) can destroy the backups",
            at("object_lock"), "set object_lock: {mode: COMPLIANCE, days: 35} and run `vigil backup s3-policy apply --confirm-irreversible`",
        ))
    elif critical:
        days = state.lock_retention_days
        if days is None or days < required_retention_days:
            gaps.append(Gap(
                "s3-object-lock-short", "medium",
                f"Object Lock on {state.name} keeps new versions {_days(days) if days else 'with no default retention'}; "
                f"backups are kept {_days(required_retention_days)}",
                at("object_lock"), f"set object_lock.days to at least {required_retention_days}",
            ))
        if state.lock_mode == "GOVERNANCE":
            gaps.append(Gap(
                "s3-object-lock-governance", "low",
                f"Object Lock on {state.name} is in GOVERNANCE mode: an identity with s3:BypassGovernanceRetention can still delete",
                at("object_lock.mode"), "use COMPLIANCE for backups that must survive a compromised admin account",
            ))
    gaps += wal_findings(state, wal_prefixes, wal_retention_days=wal_retention_days, where=where)
    return gaps


def s3_findings(
    spec: S3PolicySpec | None,
    *,
    buckets: Mapping[str, BucketState] | None = None,
    required_retention_days: int = PLAN_RETENTION_DAYS,
    include_spec: bool = True,
) -> list[Gap]:
    """Gaps of the object storage policy; each bucket judged on its observed state when given, else on the spec."""
    if spec is None:
        return []
    gaps: list[Gap] = []
    for i, b in enumerate(spec.buckets):
        observed = (buckets or {}).get(b.name)
        if observed is None and not include_spec:
            continue
        gaps += bucket_findings(
            observed if observed is not None else desired_state(b),
            critical=b.critical, wal_prefixes=list(b.wal_prefixes), wal_retention_days=spec.wal_retention_days,
            required_retention_days=required_retention_days,
            where=OBSERVED if observed is not None else f"backups.s3.buckets[{i}]",
        )
    return gaps


def findings(
    aurora: AuroraBackupSpec | None,
    s3: S3PolicySpec | None,
    *,
    at: datetime | None = None,
    cluster: ClusterState | None = None,
    buckets: Mapping[str, BucketState] | None = None,
    rpo_objective_seconds: Decimal | int | None = None,
    required_retention_days: int = PLAN_RETENTION_DAYS,
    include_spec: bool = True,
) -> list[Gap]:
    """Every AWS backup gap, most severe first (then by id; stable otherwise).

    ``aurora``/``s3``: the spec sections (``spec.backups.aurora``, ``spec.backups.s3``); either may be None.
    ``cluster``/``buckets``: what AWS reported (``aurora.observe``, ``{name: s3policy.observe(...)}``);
    ``at``: when (needed for snapshot freshness). ``rpo_objective_seconds``: the DR objective (the
    plan: 900) for the region-loss check. ``include_spec=False`` leaves out what the spec alone
    shows (``vigil.dr.gaps.spec_gaps`` covers it), keeping only the observed gaps.
    """
    gaps = aurora_findings(aurora, cluster=cluster, at=at, rpo_objective_seconds=rpo_objective_seconds,
                           required_retention_days=required_retention_days, include_spec=include_spec)
    gaps += s3_findings(s3, buckets=buckets, required_retention_days=required_retention_days, include_spec=include_spec)
    return sorted(gaps, key=lambda g: (SEVERITY_ORDER.get(g.severity, 9), g.id))
