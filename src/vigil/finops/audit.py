"""Cost policy as code: AWS Budgets from the spec (export and audit), CloudWatch Logs retention per
environment, the log archive's lifecycle (the S3 policy code of vigil.dr.aws.s3policy), Aurora
capacity per environment and the search scale rule.

:func:`aws_budgets` is pure: the spec's budgets as ``CreateBudget`` arguments (a FilterExpression
of the env and service tags and the SERVICE dimension, ``AND``-ed; notifications to SNS). The audit
reads the live account and lists drifts; ``--apply`` fixes what is safe:

- a missing budget is created, a budget whose amount or notifications differ is updated;
- a log group's retention is raised to the spec's; shortening it (or setting one on a group that
  never expires) deletes logs, so it is done only with ``allow_shorten``;
- the log archive's lifecycle rule is written by the S3 policy code (no irreversible step);
- Aurora capacity outside its environment's range is only reported (``vigil cost rightsize
  --apply`` changes capacity, through the SLO guardrail and the gate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

VIGIL_PREFIX = ""


@dataclass
class Drift:
    kind: str  # budget | log-retention | log-archive | aurora-capacity | search-scale
    target: str
    message: str
    expected: Any = None
    actual: Any = None
    fixable: bool = False
    fixed: bool = False
    note: str | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "message": self.message, "expected": self.expected, "actual": self.actual,
                "fixable": self.fixable, "fixed": self.fixed, "note": self.note}


def _tag_key(keys: list[str]) -> str:
    return f"user:{keys[0]}"


def budget_definition(b: Any, costs: Any) -> dict:
    """One budget as ``CreateBudget``'s ``Budget`` and ``NotificationsWithSubscribers``."""
    parts: list[dict] = []
    if b.env is not None:
        vals = [b.env] + sorted(k for k, v in costs.tags.env_values.items() if v == b.env)
        parts.append({"Tags": {"Key": costs.tags.env[0], "Values": vals, "MatchOptions": ["EQUALS"]}})
    if b.service is not None:
        parts.append({"Tags": {"Key": costs.tags.service[0], "Values": [b.service], "MatchOptions": ["EQUALS"]}})
    if b.service_name is not None:
        parts.append({"Dimensions": {"Key": "SERVICE", "Values": [b.service_name], "MatchOptions": ["EQUALS"]}})
    budget: dict[str, Any] = {
        "BudgetName": b.name,
        "BudgetLimit": {"Amount": f"{b.amount.normalize():f}", "Unit": costs.currency},
        "TimeUnit": "MONTHLY",
        "BudgetType": "COST",
        # BilledCost is net of credits and refunds, unblended (not amortized), tax included
        "CostTypes": {"IncludeTax": True, "IncludeSubscription": True, "UseBlended": False, "IncludeRefund": True, "IncludeCredit": True,
                      "IncludeUpfront": True, "IncludeRecurring": True, "IncludeOtherSubscription": True, "IncludeSupport": True,
                      "IncludeDiscount": True, "UseAmortized": False},
    }
    if len(parts) == 1:
        budget["FilterExpression"] = parts[0]
    elif parts:
        budget["FilterExpression"] = {"And": parts}
    notes = []
    for t in b.thresholds:
        notes.append({
            "Notification": {"NotificationType": "ACTUAL" if t.kind == "actual" else "FORECASTED", "ComparisonOperator": "GREATER_THAN",
                             "Threshold": float(t.share * 100), "ThresholdType": "PERCENTAGE"},
            "Subscribers": [{"SubscriptionType": "SNS", "Address": a} for a in b.notify],
        })
    return {"Budget": budget, "NotificationsWithSubscribers": [n for n in notes if n["Subscribers"]]}


def aws_budgets(costs: Any) -> tuple[list[dict], list[str]]:
    """Every budget of the spec as CreateBudget arguments (AccountId left to the caller), and notes."""
    out, notes = [], []
    for b in costs.budgets:
        d = budget_definition(b, costs)
        out.append(d)
        if not b.notify:
            notes.append(f"budget {b.name}: no `notify` SNS topics, so AWS Budgets will not notify (vigil's own alert events still fire)")
    if out:
        notes.append("AWS Budgets evaluates its own data a few times a day; vigil's budgets evaluate the imported rows (FOCUS BilledCost)")
    return out, notes


def _amount(s: Any) -> Decimal:
    return Decimal(str(s)).normalize()


def audit_budgets(budgets: Any, account: str, costs: Any, *, do_apply: bool) -> list[Drift]:
    """The live account's budgets against the spec's; with ``do_apply`` create or update them."""
    live = {b["BudgetName"]: b for b in budgets.call("describe_budgets", AccountId=account, MaxResults=1000).get("Budgets", [])}
    out: list[Drift] = []
    for b in costs.budgets:
        want = budget_definition(b, costs)
        have = live.get(b.name)
        if have is None:
            d = Drift("budget", b.name, f"budget {b.name} is not in the account", expected=want["Budget"]["BudgetLimit"], fixable=True)
            if do_apply:
                budgets.call("create_budget", AccountId=account, **want)
                d.fixed = True
            out.append(d)
            continue
        lim = have.get("BudgetLimit") or {}
        if _amount(lim.get("Amount", "0")) != b.amount.normalize() or lim.get("Unit") != costs.currency:
            d = Drift("budget", b.name, f"budget {b.name} is {lim.get('Amount')} {lim.get('Unit')}, the spec says {b.amount} {costs.currency}",
                      expected=want["Budget"]["BudgetLimit"], actual=lim, fixable=True)
            if do_apply:
                nb = dict(want["Budget"])
                budgets.call("update_budget", AccountId=account, NewBudget=nb)
                d.fixed = True
            out.append(d)
        live_n = budgets.call("describe_notifications_for_budget", AccountId=account, BudgetName=b.name).get("Notifications", [])
        have_n = sorted((n["NotificationType"], float(n["Threshold"])) for n in live_n)
        want_n = sorted((n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in want["NotificationsWithSubscribers"])
        if have_n != want_n:
            d = Drift("budget", b.name, f"budget {b.name}'s notifications are {have_n}, the spec says {want_n}", expected=want_n, actual=have_n,
                      fixable=True)
            if do_apply:
                for n in live_n:
                    budgets.call("delete_notification", AccountId=account, BudgetName=b.name, Notification=n)
                for n in want["NotificationsWithSubscribers"]:
                    budgets.call("create_notification", AccountId=account, BudgetName=b.name, Notification=n["Notification"],
                                 Subscribers=n["Subscribers"])
                d.fixed = True
            out.append(d)
    return out


def audit_log_retention(logs: Any, policies: Any, *, do_apply: bool, allow_shorten: bool) -> list[Drift]:
    out: list[Drift] = []
    for g in policies.log_groups:
        want = policies.log_retention.get(g.env)
        if want is None:
            continue
        groups: list[dict] = []
        token = None
        for _ in range(1000):
            kw: dict[str, Any] = {"logGroupNamePrefix": g.prefix}
            if token:
                kw["nextToken"] = token
            page = logs.call("describe_log_groups", **kw)
            groups += page.get("logGroups", [])
            token = page.get("nextToken")
            if not token:
                break
        for lg in groups:
            have = lg.get("retentionInDays")
            if have == want:
                continue
            name = lg["logGroupName"]
            shorten = have is None or have > want
            d = Drift("log-retention", name, f"log group {name} ({g.env}) keeps logs {'forever' if have is None else f'{have} days'}, the spec says {want} days",
                      expected=want, actual=have, fixable=True)
            if shorten and not allow_shorten:
                d.note = "shortening retention deletes the logs older than that: run with --allow-shorten to do it"
            elif do_apply:
                logs.call("put_retention_policy", logGroupName=name, retentionInDays=want)
                d.fixed = True
            out.append(d)
    return out


def archive_policy(archive: Any, versioning: bool) -> Any:
    from vigil.dr.aws.spec import BucketPolicy, LifecycleRule, Transition

    rule = LifecycleRule(id="vigil-log-archive", prefix=archive.prefix, transitions=[Transition(days=archive.glacier_after, storage_class="GLACIER")],
                         expiration_days=archive.expire_after)
    return BucketPolicy(name=archive.bucket, versioning=versioning, lifecycle=[rule])


def audit_log_archive(s3: Any, policies: Any, *, do_apply: bool) -> list[Drift]:
    from vigil.dr.aws import s3policy
    from vigil.dr.aws.spec import S3PolicySpec

    a = policies.log_archive
    if a is None:
        return []
    state = s3policy.observe(s3, a.bucket)
    if not state.exists:
        return [Drift("log-archive", a.bucket, f"log archive bucket {a.bucket} does not exist", fixable=False)]
    bp = archive_policy(a, state.versioning == "Enabled")  # versioning is not this policy's business: keep it as it is
    out = [Drift("log-archive", a.bucket, str(d), expected=d.expected, actual=d.actual, fixable=True) for d in s3policy.diff(bp, state)]
    if out and do_apply:
        s3policy.apply(s3, S3PolicySpec(region=policies.region, buckets=[bp]), settle_checks=1, settle_seconds=0)
        for d in out:
            d.fixed = True
    return out


def audit_aurora(rds: Any, costs: Any) -> list[Drift]:
    from vigil.finops.rightsize import read_cluster

    rs = costs.rightsizing
    if rs is None:
        return []
    out = []
    for c in rs.clusters:
        rng = rs.capacity.get(c.env)
        if rng is None:
            continue
        info = read_cluster(rds, c.cluster_id)
        if info["min"] < rng.min_acu or info["max"] > rng.max_acu or info["min"] > rng.max_acu:
            out.append(Drift(
                "aurora-capacity", c.cluster_id,
                f"cluster {c.cluster_id} ({c.env}) runs {info['min']}-{info['max']} ACU, outside {c.env}'s {rng.min_acu}-{rng.max_acu}",
                expected={"min_acu": float(rng.min_acu), "max_acu": float(rng.max_acu)}, actual={"min_acu": float(info["min"]), "max_acu": float(info["max"])},
                note="vigil cost rightsize --apply changes capacity (through the SLO guardrail and the deploy gate)",
            ))
    return out


def audit_search_scale(spec: Any) -> list[Drift]:
    p = spec.costs.policies
    if p is None or p.search_scale_rule is None:
        return []
    rule = next((r for r in spec.alerts if r.name == p.search_scale_rule), None)
    if rule is None:  # pragma: no cover - the spec's cross-check refuses it
        return [Drift("search-scale", p.search_scale_rule, "the search scale rule is not in `alerts:`")]
    if rule.threshold is None or rule.for_ <= 0:
        return [Drift("search-scale", rule.name, f"alert rule {rule.name} must be a threshold rule with a `for:` duration (QPS or heap over a threshold for a while)")]
    return []


@dataclass
class AuditResult:
    drifts: list[Drift] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"in_policy": not [d for d in self.drifts if not d.fixed], "checked": self.checked, "drifts": [d.to_dict() for d in self.drifts]}
