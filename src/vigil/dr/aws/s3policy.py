"""Object storage policy: versioning, lifecycle and Object Lock, applied from the spec and audited.

The spec says what each bucket must look like (:class:`~vigil.dr.aws.spec.BucketPolicy`);
:func:`observe` reads a bucket back into a :class:`BucketState`; :func:`desired_state` turns the
spec into the same shape; :func:`diff` compares them field by field (pure) and :func:`plan`
turns the difference into the exact S3 calls (pure). :func:`apply` and :func:`audit` do the I/O.

Object Lock, the parts that bite:

- it needs versioning ``Enabled``, and once on it can never be turned off and versioning can
  never be suspended again;
- AWS S3 can enable it on an existing bucket (``PutObjectLockConfiguration`` with
  ``ObjectLockEnabled: Enabled``, since late 2023) once versioning is enabled. Several
  S3-compatible stores (and older AWS guidance) allow it only when the bucket is created with
  ``ObjectLockEnabledForBucket``: then the way is a new bucket with Object Lock, a copy of the
  objects, and a switch. :func:`apply` says so when the store refuses;
- vigil treats enabling it on an existing bucket as irreversible: ``apply`` does it only with
  ``confirm_irreversible``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vigil.dr.aws.client import Aws, AwsError, AwsNotFound
from vigil.dr.aws.spec import BucketPolicy, LifecycleRule, S3PolicySpec
from vigil.errors import UsageError

# --- state -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleState:
    """One lifecycle rule, normalised: what the spec can say, plus what it cannot (``extra``)."""

    id: str
    prefix: str
    enabled: bool
    transitions: tuple[tuple[int, str], ...] = ()
    expiration_days: int | None = None
    noncurrent_transitions: tuple[tuple[int, str], ...] = ()
    noncurrent_expiration_days: int | None = None
    abort_incomplete_multipart_days: int | None = None
    extra: tuple[tuple[str, str], ...] = ()  # e.g. ("filter", "tags x=y"), ("expiration", "date 2027-01-01")

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "prefix": self.prefix, "enabled": self.enabled}
        if self.transitions:
            d["transitions"] = [{"days": a, "storage_class": b} for a, b in self.transitions]
        if self.expiration_days is not None:
            d["expiration_days"] = self.expiration_days
        if self.noncurrent_transitions:
            d["noncurrent_transitions"] = [{"days": a, "storage_class": b} for a, b in self.noncurrent_transitions]
        if self.noncurrent_expiration_days is not None:
            d["noncurrent_expiration_days"] = self.noncurrent_expiration_days
        if self.abort_incomplete_multipart_days is not None:
            d["abort_incomplete_multipart_days"] = self.abort_incomplete_multipart_days
        if self.extra:
            d["not_managed_by_vigil"] = dict(self.extra)
        return d


@dataclass(frozen=True)
class BucketState:
    """A bucket as S3 reports it (or as the spec wants it, from :func:`desired_state`)."""

    name: str
    exists: bool = True
    versioning: str = "Disabled"  # Enabled | Suspended | Disabled (never enabled)
    lifecycle: tuple[RuleState, ...] | None = None  # None: no lifecycle configuration
    object_lock_enabled: bool = False
    lock_mode: str | None = None
    lock_days: int | None = None
    lock_years: int | None = None

    @property
    def lock_retention_days(self) -> int | None:
        if self.lock_days:
            return self.lock_days
        if self.lock_years:
            return 365 * self.lock_years
        return None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "exists": self.exists,
            "versioning": self.versioning,
            "lifecycle": None if self.lifecycle is None else [r.to_dict() for r in self.lifecycle],
            "object_lock": {"enabled": self.object_lock_enabled, "mode": self.lock_mode, "days": self.lock_days, "years": self.lock_years},
        }


def rule_state(rule: LifecycleRule) -> RuleState:
    return RuleState(
        id=rule.id,
        prefix=rule.prefix,
        enabled=rule.enabled,
        transitions=tuple((t.days, t.storage_class) for t in rule.transitions),
        expiration_days=rule.expiration_days,
        noncurrent_transitions=tuple((t.days, t.storage_class) for t in rule.noncurrent_transitions),
        noncurrent_expiration_days=rule.noncurrent_expiration_days,
        abort_incomplete_multipart_days=rule.abort_incomplete_multipart_days,
    )


def desired_state(b: BucketPolicy) -> BucketState:
    """What the spec wants, in the observed shape. Parts the spec leaves alone are None/False."""
    lock = b.object_lock
    return BucketState(
        name=b.name,
        exists=True,
        versioning="Enabled" if b.versioning else "Suspended",
        lifecycle=None if b.lifecycle is None else tuple(rule_state(r) for r in b.lifecycle),
        object_lock_enabled=lock is not None,
        lock_mode=lock.mode if lock else None,
        lock_days=lock.days if lock else None,
        lock_years=lock.years if lock else None,
    )


def parse_rule(r: dict) -> RuleState:
    """An S3 lifecycle rule (``GetBucketLifecycleConfiguration``) as a :class:`RuleState`."""
    extra: list[tuple[str, str]] = []
    prefix = ""
    flt = r.get("Filter")
    if flt is None:
        prefix = r.get("Prefix", "") or ""  # the legacy top-level prefix
    else:
        conds = flt.get("And", flt)
        prefix = conds.get("Prefix", "") or ""
        others = []
        tags = conds.get("Tags") or ([conds["Tag"]] if "Tag" in conds else [])
        if tags:
            others.append("tags " + ",".join(f"{t.get('Key')}={t.get('Value')}" for t in tags))
        for k in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
            if k in conds:
                others.append(f"{k}={conds[k]}")
        if others:
            extra.append(("filter", "; ".join(others)))
    transitions = []
    for t in r.get("Transitions", []) or []:
        if "Days" in t:
            transitions.append((int(t["Days"]), str(t.get("StorageClass"))))
        else:
            extra.append(("transition", f"on date {t.get('Date')} to {t.get('StorageClass')}"))
    exp = r.get("Expiration") or {}
    exp_days = exp.get("Days")
    if "Date" in exp:
        extra.append(("expiration", f"on date {exp['Date']}"))
    if exp.get("ExpiredObjectDeleteMarker"):
        extra.append(("expiration", "expired object delete markers"))
    nct = []
    for t in r.get("NoncurrentVersionTransitions", []) or []:
        nct.append((int(t.get("NoncurrentDays", 0)), str(t.get("StorageClass"))))
        if t.get("NewerNoncurrentVersions"):
            extra.append(("noncurrent_transition", f"keeps {t['NewerNoncurrentVersions']} newer versions"))
    nce = r.get("NoncurrentVersionExpiration") or {}
    if nce.get("NewerNoncurrentVersions"):
        extra.append(("noncurrent_expiration", f"keeps {nce['NewerNoncurrentVersions']} newer versions"))
    abort = (r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
    return RuleState(
        id=str(r.get("ID", "")),
        prefix=prefix,
        enabled=r.get("Status") == "Enabled",
        transitions=tuple(transitions),
        expiration_days=int(exp_days) if exp_days else None,
        noncurrent_transitions=tuple(nct),
        noncurrent_expiration_days=int(nce["NoncurrentDays"]) if nce.get("NoncurrentDays") else None,
        abort_incomplete_multipart_days=int(abort) if abort else None,
        extra=tuple(extra),
    )


def rule_to_aws(rule: LifecycleRule) -> dict:
    d: dict[str, Any] = {"ID": rule.id, "Filter": {"Prefix": rule.prefix}, "Status": "Enabled" if rule.enabled else "Disabled"}
    if rule.transitions:
        d["Transitions"] = [{"Days": t.days, "StorageClass": t.storage_class} for t in rule.transitions]
    if rule.expiration_days is not None:
        d["Expiration"] = {"Days": rule.expiration_days}
    if rule.noncurrent_transitions:
        d["NoncurrentVersionTransitions"] = [{"NoncurrentDays": t.days, "StorageClass": t.storage_class} for t in rule.noncurrent_transitions]
    if rule.noncurrent_expiration_days is not None:
        d["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule.noncurrent_expiration_days}
    if rule.abort_incomplete_multipart_days is not None:
        d["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": rule.abort_incomplete_multipart_days}
    return d


# --- reading -----------------------------------------------------------------------------------


def observe(s3: Aws, name: str) -> BucketState:
    """Read a bucket's versioning, lifecycle and Object Lock. A missing bucket is ``exists=False``."""
    try:
        s3.call("head_bucket", Bucket=name)
    except AwsNotFound:
        return BucketState(name=name, exists=False)
    v = s3.call("get_bucket_versioning", Bucket=name).get("Status") or "Disabled"
    try:
        rules = s3.call("get_bucket_lifecycle_configuration", Bucket=name).get("Rules", [])
        lifecycle: tuple[RuleState, ...] | None = tuple(parse_rule(r) for r in rules)
    except AwsError as e:
        if e.aws_code != "NoSuchLifecycleConfiguration":
            raise
        lifecycle = None
    lock_enabled = False
    mode = days = years = None
    try:
        cfg = s3.call("get_object_lock_configuration", Bucket=name).get("ObjectLockConfiguration", {})
        lock_enabled = cfg.get("ObjectLockEnabled") == "Enabled"
        ret = (cfg.get("Rule") or {}).get("DefaultRetention") or {}
        mode = ret.get("Mode")
        days = ret.get("Days") or None
        years = ret.get("Years") or None
    except AwsError as e:
        if e.aws_code not in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
            raise
    return BucketState(name, True, v, lifecycle, lock_enabled, mode, days, years)


# --- pure: drift and plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class BucketDrift:
    bucket: str
    field: str
    expected: Any
    actual: Any

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "field": self.field, "expected": self.expected, "actual": self.actual}

    def __str__(self) -> str:
        return f"{self.bucket}: {self.field}: expected {_show(self.expected)}, found {_show(self.actual)}"


def _show(v: Any) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]" if v else "none"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    return str(v)


_RULE_FIELDS = ("prefix", "enabled", "transitions", "expiration_days", "noncurrent_transitions",
                "noncurrent_expiration_days", "abort_incomplete_multipart_days")


def _jsonable(field_name: str, v: Any) -> Any:
    if field_name in ("transitions", "noncurrent_transitions"):
        return [{"days": a, "storage_class": b} for a, b in v]
    return v


def diff(policy: BucketPolicy, actual: BucketState) -> list[BucketDrift]:
    """Every field where the bucket differs from the spec. Parts the spec leaves alone are not compared."""
    name = policy.name
    if not actual.exists:
        return [BucketDrift(name, "exists", True, False)]
    out: list[BucketDrift] = []
    if policy.versioning and actual.versioning != "Enabled":
        out.append(BucketDrift(name, "versioning", "Enabled", actual.versioning))
    if not policy.versioning and actual.versioning == "Enabled":
        out.append(BucketDrift(name, "versioning", "Suspended", actual.versioning))
    if policy.lifecycle is not None:
        have = {r.id: r for r in actual.lifecycle or ()}
        want = {r.id: rule_state(r) for r in policy.lifecycle}
        for rid, w in want.items():
            a = have.get(rid)
            if a is None:
                out.append(BucketDrift(name, f"lifecycle[{rid}]", w.to_dict(), None))
                continue
            for f in _RULE_FIELDS:
                wv, av = getattr(w, f), getattr(a, f)
                if wv != av:
                    out.append(BucketDrift(name, f"lifecycle[{rid}].{f}", _jsonable(f, wv), _jsonable(f, av)))
            for k, v in a.extra:
                out.append(BucketDrift(name, f"lifecycle[{rid}].{k}", None, v))
        for rid, a in have.items():
            if rid not in want:
                out.append(BucketDrift(name, f"lifecycle[{rid}]", None, a.to_dict()))
    lock = policy.object_lock
    if lock is not None:
        if not actual.object_lock_enabled:
            out.append(BucketDrift(name, "object_lock.enabled", True, False))
        if actual.lock_mode != lock.mode:
            out.append(BucketDrift(name, "object_lock.mode", lock.mode, actual.lock_mode))
        if actual.lock_days != lock.days:
            out.append(BucketDrift(name, "object_lock.days", lock.days, actual.lock_days))
        if actual.lock_years != lock.years:
            out.append(BucketDrift(name, "object_lock.years", lock.years, actual.lock_years))
    return out


@dataclass(frozen=True)
class PlannedCall:
    bucket: str
    operation: str  # the S3 API name: CreateBucket, PutBucketVersioning, ...
    params: dict
    reason: str
    irreversible: bool = False

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "operation": self.operation, "params": self.params, "reason": self.reason, "irreversible": self.irreversible}

    @property
    def method(self) -> str:
        return {
            "CreateBucket": "create_bucket",
            "PutBucketVersioning": "put_bucket_versioning",
            "PutObjectLockConfiguration": "put_object_lock_configuration",
            "PutBucketLifecycleConfiguration": "put_bucket_lifecycle_configuration",
            "DeleteBucketLifecycle": "delete_bucket_lifecycle",
        }[self.operation]


@dataclass(frozen=True)
class BucketPlan:
    bucket: str
    calls: tuple[PlannedCall, ...]
    blockers: tuple[str, ...]  # why the plan cannot run as is

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "calls": [c.to_dict() for c in self.calls], "blockers": list(self.blockers)}


def plan(policy: BucketPolicy, actual: BucketState, *, region: str | None, create_missing: bool = False) -> BucketPlan:
    """The S3 calls that make ``actual`` what ``policy`` says, in order, and what blocks them. Pure."""
    name = policy.name
    calls: list[PlannedCall] = []
    blockers: list[str] = []
    lock = policy.object_lock
    created = False
    state = actual
    if not actual.exists:
        if not create_missing:
            blockers.append(f"bucket {name} does not exist (create it, or pass --create-missing to let vigil create it)")
            return BucketPlan(name, (), tuple(blockers))
        params: dict[str, Any] = {"Bucket": name}
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if lock is not None:
            params["ObjectLockEnabledForBucket"] = True
        calls.append(PlannedCall(name, "CreateBucket", params,
                                 "the bucket does not exist" + (" (created with Object Lock, which also enables versioning)" if lock else "")))
        created = True
        state = BucketState(name, True, "Enabled" if lock else "Disabled", None, lock is not None)
    if policy.versioning and state.versioning != "Enabled":
        calls.append(PlannedCall(name, "PutBucketVersioning", {"Bucket": name, "VersioningConfiguration": {"Status": "Enabled"}},
                                 f"versioning is {state.versioning}, the spec wants it Enabled"))
    elif not policy.versioning and state.versioning == "Enabled":
        if state.object_lock_enabled:
            blockers.append(f"bucket {name} has Object Lock, so its versioning can never be suspended; set versioning: true in the spec")
        else:
            calls.append(PlannedCall(name, "PutBucketVersioning", {"Bucket": name, "VersioningConfiguration": {"Status": "Suspended"}},
                                     "the spec turns versioning off (S3 can only suspend it; existing versions stay)"))
    if lock is not None:
        same = (state.object_lock_enabled and state.lock_mode == lock.mode and state.lock_days == lock.days
                and state.lock_years == lock.years)
        if not same:
            retention: dict[str, Any] = {"Mode": lock.mode}
            if lock.days is not None:
                retention["Days"] = lock.days
            else:
                retention["Years"] = lock.years
            enabling = not state.object_lock_enabled and not created
            reason = (
                "enables Object Lock on an existing bucket: it can never be turned off, and versioning can never be suspended"
                if enabling
                else f"default retention {state.lock_mode or 'none'} {state.lock_retention_days or 0}d -> {lock.mode} {lock.retention_days}d"
            )
            if lock.mode == "COMPLIANCE":
                reason += "; COMPLIANCE: versions written from now on cannot be deleted by anyone before their retention ends"
            calls.append(PlannedCall(
                name, "PutObjectLockConfiguration",
                {"Bucket": name, "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}},
                reason, irreversible=enabling,
            ))
    if policy.lifecycle is not None:
        want = tuple(rule_state(r) for r in policy.lifecycle)
        have = state.lifecycle
        if not policy.lifecycle:
            if have is not None:
                calls.append(PlannedCall(name, "DeleteBucketLifecycle", {"Bucket": name},
                                         f"the spec wants no lifecycle rules; removes {', '.join(r.id for r in have) or 'an empty configuration'}"))
        elif have is None or sorted(have, key=lambda r: r.id) != sorted(want, key=lambda r: r.id):
            have_ids = {r.id for r in have or ()}
            want_ids = {r.id for r in want}
            parts = []
            if want_ids - have_ids:
                parts.append("adds " + ", ".join(sorted(want_ids - have_ids)))
            changed = sorted(r.id for r in want if r.id in have_ids and r not in (have or ()))
            if changed:
                parts.append("changes " + ", ".join(changed))
            if have_ids - want_ids:
                parts.append("removes " + ", ".join(sorted(have_ids - want_ids)) + " (not in the spec)")
            calls.append(PlannedCall(
                name, "PutBucketLifecycleConfiguration",
                {"Bucket": name, "LifecycleConfiguration": {"Rules": [rule_to_aws(r) for r in policy.lifecycle]}},
                "replaces the whole lifecycle configuration: " + "; ".join(parts),
            ))
    return BucketPlan(name, tuple(calls), tuple(blockers))


# --- I/O: audit and apply ----------------------------------------------------------------------


@dataclass(frozen=True)
class BucketAudit:
    bucket: str
    critical: bool
    state: BucketState
    drifts: tuple[BucketDrift, ...]

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "critical": self.critical, "in_policy": not self.drifts,
                "drifts": [d.to_dict() for d in self.drifts], "state": self.state.to_dict()}


def _select(spec: S3PolicySpec, names: list[str] | tuple[str, ...] | None) -> list[BucketPolicy]:
    if not spec.buckets:
        raise UsageError("backups.s3 lists no buckets", hint="add backups.s3.buckets: [{name: ..., critical: true, ...}]")
    if not names:
        return list(spec.buckets)
    out = []
    for n in names:
        try:
            out.append(spec.bucket(n))
        except KeyError:
            raise UsageError(
                f"bucket {n!r} is not in backups.s3.buckets",
                hint=f"known: {', '.join(b.name for b in spec.buckets)}",
            ) from None
    return out


def audit(s3: Aws, spec: S3PolicySpec, *, buckets: list[str] | None = None) -> list[BucketAudit]:
    """Read every bucket of the spec (or those named) and diff it against the spec. Read-only."""
    out = []
    for b in _select(spec, buckets):
        st = observe(s3, b.name)
        out.append(BucketAudit(b.name, b.critical, st, tuple(diff(b, st))))
    return out


@dataclass(frozen=True)
class PolicyApplyResult:
    dry_run: bool
    plans: tuple[BucketPlan, ...]
    done: tuple[PlannedCall, ...]
    after: tuple[BucketAudit, ...]  # the audit after applying (empty on a dry run)

    @property
    def in_policy(self) -> bool:
        return all(not a.drifts for a in self.after)

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "plans": [p.to_dict() for p in self.plans],
            "calls_made": [c.to_dict() for c in self.done],
            "after": [a.to_dict() for a in self.after],
            "in_policy": self.in_policy if not self.dry_run else None,
        }


LOCK_HELP = (
    "AWS S3 enables Object Lock on an existing bucket once its versioning is Enabled (vigil enables versioning first) "
    "and the identity has s3:PutBucketObjectLockConfiguration. Stores that allow Object Lock only at creation (several "
    "S3-compatible ones) need a new bucket: create it with Object Lock (`aws s3api create-bucket --object-lock-enabled-for-bucket`, "
    "or rename the bucket in the spec and run `vigil backup s3-policy apply --create-missing`), copy the objects with their "
    "versions (S3 Batch Replication, or `aws s3 sync` for current versions), point the writers at it, then retire the old bucket"
)


def apply(
    s3: Aws,
    spec: S3PolicySpec,
    *,
    buckets: list[str] | None = None,
    dry_run: bool = False,
    create_missing: bool = False,
    confirm_irreversible: bool = False,
    settle_checks: int = 3,
    settle_seconds: float = 2.0,
) -> PolicyApplyResult:
    """Make the buckets match the spec with the fewest calls, then audit them again.

    Every bucket is read and planned before any call is made; a blocker anywhere (a missing
    bucket, versioning that cannot be suspended) or an unconfirmed irreversible step stops the
    whole run before it changes anything. S3 applies bucket configuration eventually, so a drift
    left right after the calls is read again up to ``settle_checks`` times before it counts.
    """
    selected = _select(spec, buckets)
    region = spec.region or s3.region
    plans = tuple(plan(b, observe(s3, b.name), region=region, create_missing=create_missing) for b in selected)
    if dry_run:
        return PolicyApplyResult(True, plans, (), ())
    blockers = [x for p in plans for x in p.blockers]
    if blockers:
        missing = [p.bucket for p in plans if any("does not exist" in x for x in p.blockers)]
        msg = "cannot apply the S3 policy:\n" + "\n".join(f"  - {x}" for x in blockers)
        if missing and len(missing) == len(blockers):
            raise AwsNotFound(msg, hint="create the bucket(s), or rerun with --create-missing", service="s3", operation="HeadBucket", aws_code="NoSuchBucket")
        raise UsageError(msg, hint="fix the spec (or the bucket) and run apply again; nothing was changed")
    irreversible = [c for p in plans for c in p.calls if c.irreversible]
    if irreversible and not confirm_irreversible:
        raise UsageError(
            "the plan has a step that cannot be undone:\n" + "\n".join(f"  - {c.bucket}: {c.operation}: {c.reason}" for c in irreversible),
            hint="review it with --dry-run, then rerun with --confirm-irreversible; nothing was changed",
        )
    done: list[PlannedCall] = []
    for p in plans:
        for c in p.calls:
            try:
                s3.call(c.method, **c.params)
            except AwsError as e:
                if c.operation == "PutObjectLockConfiguration" and c.irreversible and e.code not in ("aws-access-denied", "aws-throttled"):
                    raise AwsError(
                        f"could not enable Object Lock on the existing bucket {c.bucket}: {e.aws_code}: {e.message}",
                        hint=LOCK_HELP,
                        service="s3",
                        operation="PutObjectLockConfiguration",
                        aws_code=e.aws_code,
                    ) from None
                raise
            done.append(c)
    after = tuple(audit(s3, spec, buckets=[b.name for b in selected]))
    for _ in range(settle_checks if done else 0):
        if all(not a.drifts for a in after):
            break
        s3.sleep(settle_seconds)  # S3 bucket configuration is eventually consistent: give it a moment
        after = tuple(audit(s3, spec, buckets=[b.name for b in selected]))
    return PolicyApplyResult(False, plans, tuple(done), after)
