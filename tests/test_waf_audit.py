"""vigil waf audit against AWS WAFv2 as moto models it.

Gaps of moto, stated: it accepts any managed rule group name and vendor (the real API rejects an
unknown group), never evaluates a request against the rules, and does not check that a logging
destination exists or is named aws-waf-logs-*. So these tests prove the audit reads the
configuration right; that the rules block is what the WAF suite shows against a real WAF."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

VIS = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "m"}
SPEC = """version: 1
services: {api: {}}
security:
  waf:
    rate_limit: {limit: 1000, window: 5m}
    aws: {web_acl: platform, scope: REGIONAL, region: eu-west-1}
"""


def _managed(name, prio, count=False):
    return {"Name": name, "Priority": prio, "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": name}},
            "OverrideAction": {"Count": {}} if count else {"None": {}}, "VisibilityConfig": VIS}


def _rate(limit, window=300, action="Block"):
    return {"Name": "per-ip", "Priority": 10, "Statement": {"RateBasedStatement": {"Limit": limit, "AggregateKeyType": "IP", "EvaluationWindowSec": window}},
            "Action": {action: {}}, "VisibilityConfig": VIS}


@pytest.fixture
def aws(monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        yield boto3.client("wafv2", region_name="eu-west-1")


def _acl(client, rules, logging=True):
    r = client.create_web_acl(Name="platform", Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig=VIS, Rules=rules)
    if logging:
        client.put_logging_configuration(LoggingConfiguration={
            "ResourceArn": r["Summary"]["ARN"], "LogDestinationConfigs": ["arn:aws:firehose:eu-west-1:123456789012:deliverystream/aws-waf-logs-platform"]})


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "vigil.yaml"
    p.write_text(SPEC)
    return p


GROUPS = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesSQLiRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]


def test_a_web_acl_as_planned_passes(aws, spec, cli):
    _acl(aws, [_managed(g, i) for i, g in enumerate(GROUPS)] + [_rate(1000)])
    r = cli("waf", "audit", "--spec", str(spec), "--json")
    assert r.code == 0, r.out + r.err
    out = r.json()
    assert out["passed"] and out["web_acl"] == "platform" and {c["check"] for c in out["checks"]} == {
        *(f"managed-rule-group:{g}" for g in GROUPS), "rate-based-rule", "logging"}


def test_gaps_are_named(aws, spec, cli):
    _acl(aws, [_managed(GROUPS[0], 0), _managed(GROUPS[1], 1, count=True), _rate(2000, window=60, action="Count")], logging=False)
    r = cli("waf", "audit", "--spec", str(spec), "--json")
    assert r.code == 1
    checks = {c["check"]: c for c in r.json()["checks"]}
    assert checks[f"managed-rule-group:{GROUPS[0]}"]["ok"]
    assert not checks[f"managed-rule-group:{GROUPS[1]}"]["ok"] and "only counts" in checks[f"managed-rule-group:{GROUPS[1]}"]["detail"]
    assert not checks[f"managed-rule-group:{GROUPS[2]}"]["ok"] and "no rule" in checks[f"managed-rule-group:{GROUPS[2]}"]["detail"]
    d = checks["rate-based-rule"]["detail"]
    assert not checks["rate-based-rule"]["ok"] and "limit 2000 (planned 1000)" in d and "window 60s (planned 300s)" in d and "not Block" in d
    assert not checks["logging"]["ok"]
    r = cli("waf", "audit", "--spec", str(spec))
    assert "GAP  logging" in r.out


def test_no_rate_rule_and_a_missing_acl(aws, spec, cli):
    _acl(aws, [_managed(g, i) for i, g in enumerate(GROUPS)])
    r = cli("waf", "audit", "--spec", str(spec), "--json")
    assert r.code == 1 and any(c["check"] == "rate-based-rule" and not c["ok"] for c in r.json()["checks"])
    spec.write_text(SPEC.replace("web_acl: platform", "web_acl: other"))
    r = cli("waf", "audit", "--spec", str(spec))
    assert r.code == 2 and "no REGIONAL web ACL named 'other'" in r.err


def test_aws_failure_is_exit_3(spec, cli, monkeypatch):
    # no moto here: an unreachable endpoint
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_WAFV2", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    r = cli("waf", "audit", "--spec", str(spec))
    assert r.code == 3 and "AWS WAFv2 failed" in r.err and "Traceback" not in r.err


def test_audit_needs_the_section(cli, tmp_path):
    p = tmp_path / "vigil.yaml"
    p.write_text("version: 1\nservices: {api: {}}\n")
    r = cli("waf", "audit", "--spec", str(p))
    assert r.code == 2 and "security.waf" in r.err
