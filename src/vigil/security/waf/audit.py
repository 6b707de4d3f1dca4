"""``vigil waf audit``: the deployed AWS WAFv2 web ACL against the spec.

:func:`audit` (pure) checks a web ACL as ``GetWebACL`` returns it, and its logging configuration as
``GetLoggingConfiguration`` returns it (None: none), against :class:`~vigil.security.waf.spec.WafSpec`:

* ``managed-rule-group:<Name>``: each planned AWS managed rule group is a rule of the web ACL
  (``ManagedRuleGroupStatement`` with ``VendorName: AWS``), and it is enforced: its
  ``OverrideAction`` is ``None`` (``Count`` only counts);
* ``rate-based-rule``: with ``rate_limit`` planned, a ``RateBasedStatement`` whose ``Limit`` is the
  planned limit, whose ``EvaluationWindowSec`` is the planned window (default 300) and whose action
  is ``Block`` (``Count`` blocks nothing);
* ``logging``: logging is on (a destination is configured).

:func:`fetch` (adapter) reads both with boto3. What moto (the tests' AWS) does not model is stated
where it is used: it accepts any managed rule group name and never evaluates traffic, so the audit
proves the configuration, not that the rules block (that is what the WAF suite is for).
"""

from __future__ import annotations

from typing import Any

from vigil.errors import ExternalError, NotFoundError


def _rules(acl: dict) -> list[dict]:
    return [r for r in acl.get("Rules") or [] if isinstance(r, dict)]


def audit(acl: dict, logging: dict | None, spec) -> dict:
    aws = spec.aws
    checks: list[dict] = []

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    rules = _rules(acl)
    for group in aws.managed_rule_groups:
        hit = [r for r in rules if (r.get("Statement") or {}).get("ManagedRuleGroupStatement", {}).get("Name") == group
               and (r.get("Statement") or {}).get("ManagedRuleGroupStatement", {}).get("VendorName") == "AWS"]
        if not hit:
            add(f"managed-rule-group:{group}", False, f"the web ACL has no rule using the AWS managed rule group {group}")
            continue
        r = hit[0]
        counting = "Count" in (r.get("OverrideAction") or {})
        add(f"managed-rule-group:{group}", not counting,
            f"rule {r.get('Name')!r} (priority {r.get('Priority')}) " + ("only counts (OverrideAction Count): it blocks nothing" if counting else "is enforced"))
    rl = spec.rate_limit
    if rl is not None:
        rate = [r for r in rules if "RateBasedStatement" in (r.get("Statement") or {})]
        want_window = int(rl.window)
        if not rate:
            add("rate-based-rule", False, f"the web ACL has no rate-based rule; the plan limits a client to {rl.limit} per {want_window}s")
        else:
            problems = []
            best = None
            for r in rate:
                st = r["Statement"]["RateBasedStatement"]
                p = []
                if int(st.get("Limit", 0)) != rl.limit:
                    p.append(f"limit {st.get('Limit')} (planned {rl.limit})")
                window = int(st.get("EvaluationWindowSec", 300))
                if window != want_window:
                    p.append(f"window {window}s (planned {want_window}s)")
                if "Block" not in (r.get("Action") or {}):
                    p.append(f"action {next(iter(r.get('Action') or {'none': 0}))} (not Block)")
                if not p:
                    best = r
                    break
                problems.append(f"rule {r.get('Name')!r}: " + ", ".join(p))
            if best is not None:
                st = best["Statement"]["RateBasedStatement"]
                add("rate-based-rule", True, f"rule {best.get('Name')!r} blocks past {st['Limit']} requests per {int(st.get('EvaluationWindowSec', 300))}s "
                                             f"by {st.get('AggregateKeyType', 'IP')}")
            else:
                add("rate-based-rule", False, "; ".join(problems))
    if aws.logging:
        dests = (logging or {}).get("LogDestinationConfigs") or []
        add("logging", bool(dests), ("logs to " + ", ".join(dests)) if dests else "logging is off: blocked requests leave no record")
    return {"web_acl": acl.get("Name"), "arn": acl.get("ARN"), "scope": aws.scope, "passed": all(c["ok"] for c in checks), "checks": checks,
            "default_action": next(iter(acl.get("DefaultAction") or {"unknown": 0}))}


def fetch(spec, client: Any) -> tuple[dict, dict | None]:
    """(web ACL, logging configuration or None) of the spec's web ACL, read with ``client``."""
    from botocore.exceptions import BotoCoreError, ClientError

    aws = spec.aws
    try:
        found = None
        marker = None
        for _ in range(100):
            kw: dict = {"Scope": aws.scope, "Limit": 100}
            if marker:
                kw["NextMarker"] = marker
            page = client.list_web_acls(**kw)
            found = next((a for a in page.get("WebACLs", []) if a.get("Name") == aws.web_acl), None)
            marker = page.get("NextMarker")
            if found or not marker:
                break
        if found is None:
            raise NotFoundError(f"no {aws.scope} web ACL named {aws.web_acl!r}", hint="check security.waf.aws (web_acl, scope, region) and the account")
        acl = client.get_web_acl(Name=aws.web_acl, Scope=aws.scope, Id=found["Id"])["WebACL"]
        try:
            logging = client.get_logging_configuration(ResourceArn=acl["ARN"]).get("LoggingConfiguration")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "WAFNonexistentItemException":
                logging = None
            else:
                raise
        return acl, logging
    except (ClientError, BotoCoreError) as e:
        raise ExternalError(f"AWS WAFv2 failed: {e}", hint="check the credentials, the region and wafv2:GetWebACL/ListWebACLs/GetLoggingConfiguration") from None


def make_client(spec) -> Any:
    import boto3
    from botocore.config import Config

    region = "us-east-1" if spec.aws.scope == "CLOUDFRONT" else spec.aws.region
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30, user_agent_extra="vigil")
    return boto3.session.Session().client("wafv2", region_name=region, config=cfg)

