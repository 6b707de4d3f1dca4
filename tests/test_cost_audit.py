"""Cost policy as code (issue 13): vigil export aws-budgets (checked by botocore's validator and
created in moto), vigil cost audit against a live account (moto): budgets, CloudWatch Logs
retention, the log archive's lifecycle, Aurora capacity, the search scale rule; --apply fixes what
is safe and nothing else.

moto does not evaluate AWS Budgets (no spend, no notifications sent), does not expire logs, and
does not move objects to Glacier: the tests check the configuration vigil reads and writes.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.validate import validate_parameters

from aws_helpers import inject, moto_account
from vigil.dr.aws.client import Aws
from vigil.finops.audit import audit_budgets, audit_log_archive, audit_log_retention, audit_search_scale, aws_budgets
from vigil.spec import parse_spec

REGION = "eu-west-1"
SPEC = """\
version: 1
services: {api: {}, search: {}}
alerts:
  - name: search-scale-to-3
    service: search
    threshold: {metric: 'search_qps', type: gauge, aggregate: avg, over: 10m, op: '>', value: 200}
    for: 15m
    labels: {action: scale-search-to-3}
  - name: search-down
    service: search
    absent: {metric: 'search_qps', over: 5m}
costs:
  budgets:
    - {name: api-prod, env: prod, service: api, amount: 900, notify: ['arn:aws:sns:eu-west-1:123456789012:budgets']}
    - {name: lambda, service_name: AWS Lambda, amount: 300, thresholds: [{forecast: 110%}], notify: ['arn:aws:sns:eu-west-1:123456789012:budgets']}
  policies:
    region: eu-west-1
    log_retention: {prod: 90, dev: 7}
    log_groups:
      - {prefix: /aws/lambda/api-prod, env: prod}
      - {prefix: /aws/lambda/api-dev, env: dev}
    log_archive: {bucket: platform-logs, prefix: exported/, glacier_after: 30, expire_after: 400}
    search_scale_rule: search-scale-to-3
"""


@pytest.fixture
def spec():
    return parse_spec(SPEC)


@pytest.fixture
def aws(monkeypatch):
    with moto_account(monkeypatch, REGION):
        yield


def test_export_is_valid_create_budget_input_and_moto_accepts_it(spec, aws):
    import botocore.session

    defs, notes = aws_budgets(spec.costs)
    model = botocore.session.get_session().get_service_model("budgets").operation_model("CreateBudget")
    for d in defs:
        validate_parameters({"AccountId": "123456789012", **d}, model.input_shape)
    api = defs[0]["Budget"]
    assert api["FilterExpression"] == {"And": [
        {"Tags": {"Key": "env", "Values": ["prod", "production"], "MatchOptions": ["EQUALS"]}},
        {"Tags": {"Key": "service", "Values": ["api"], "MatchOptions": ["EQUALS"]}},
    ]}
    assert defs[1]["Budget"]["FilterExpression"] == {"Dimensions": {"Key": "SERVICE", "Values": ["AWS Lambda"], "MatchOptions": ["EQUALS"]}}
    assert [n["Notification"]["NotificationType"] for n in defs[0]["NotificationsWithSubscribers"]] == ["ACTUAL", "ACTUAL", "FORECASTED"]
    assert defs[1]["NotificationsWithSubscribers"][0]["Notification"]["Threshold"] == 110.0
    b = boto3.client("budgets", region_name="us-east-1")
    for d in defs:
        b.create_budget(AccountId="123456789012", **d)
    assert sorted(x["BudgetName"] for x in b.describe_budgets(AccountId="123456789012")["Budgets"]) == ["api-prod", "lambda"]


def test_audit_budgets_finds_and_fixes_drift(spec, aws):
    b = boto3.client("budgets", region_name="us-east-1")
    client = Aws(b, sleep=lambda s: None)
    drifts = audit_budgets(client, "123456789012", spec.costs, do_apply=False)
    assert [(d.target, d.fixed) for d in drifts] == [("api-prod", False), ("lambda", False)]
    assert b.describe_budgets(AccountId="123456789012").get("Budgets", []) == [], "an audit without --apply changed the account"
    fixed = audit_budgets(client, "123456789012", spec.costs, do_apply=True)
    assert all(d.fixed for d in fixed)
    assert audit_budgets(client, "123456789012", spec.costs, do_apply=False) == []
    # someone raised a budget by hand (moto has no UpdateBudget: recreated here) and dropped a notification
    d = aws_budgets(spec.costs)[0][0]
    b.delete_budget(AccountId="123456789012", BudgetName="api-prod")
    b.create_budget(AccountId="123456789012", Budget=dict(d["Budget"], BudgetLimit={"Amount": "5000", "Unit": "USD"}),
                    NotificationsWithSubscribers=d["NotificationsWithSubscribers"][1:])
    msgs = [x.message for x in audit_budgets(client, "123456789012", spec.costs, do_apply=False)]
    assert any("is 5000 USD, the spec says 900 USD" in m for m in msgs) and any("notifications" in m for m in msgs)
    # moto does not implement UpdateBudget: the call vigil makes is answered at botocore's hook and its
    # arguments checked by botocore's validator against the real API model
    import botocore.session

    calls: list[dict] = []

    def update_budget(params, **_kw):
        calls.append(params)
        return _Ok(), {"ResponseMetadata": {"HTTPStatusCode": 200}}

    b.meta.events.register("before-call.budgets.UpdateBudget", update_budget)
    fixed = audit_budgets(client, "123456789012", spec.costs, do_apply=True)
    assert all(x.fixed for x in fixed) and len(calls) == 1
    model = botocore.session.get_session().get_service_model("budgets").operation_model("UpdateBudget")
    sent = json.loads(calls[0]["body"])
    validate_parameters(sent, model.input_shape)
    assert sent["NewBudget"]["BudgetLimit"] == {"Amount": "900", "Unit": "USD"}
    left = audit_budgets(client, "123456789012", spec.costs, do_apply=False)
    assert [x.message for x in left if "notifications" in x.message] == [], "the notifications were put back"


class _Ok:
    status_code = 200
    headers: dict = {}
    content = b"{}"


def test_log_retention_is_raised_and_shortened_only_when_allowed(spec, aws):
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/aws/lambda/api-prod")
    logs.put_retention_policy(logGroupName="/aws/lambda/api-prod", retentionInDays=30)
    logs.create_log_group(logGroupName="/aws/lambda/api-dev")  # never expires
    logs.create_log_group(logGroupName="/aws/lambda/other")
    c = Aws(logs)
    out = audit_log_retention(c, spec.costs.policies, do_apply=True, allow_shorten=False)
    by = {d.target: d for d in out}
    assert by["/aws/lambda/api-prod"].fixed and by["/aws/lambda/api-prod"].expected == 90
    assert not by["/aws/lambda/api-dev"].fixed and "--allow-shorten" in by["/aws/lambda/api-dev"].note
    ret = {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]}
    assert ret == {"/aws/lambda/api-prod": 90, "/aws/lambda/api-dev": None, "/aws/lambda/other": None}
    out = audit_log_retention(c, spec.costs.policies, do_apply=True, allow_shorten=True)
    assert [d.target for d in out if d.fixed] == ["/aws/lambda/api-dev"]
    assert audit_log_retention(c, spec.costs.policies, do_apply=False, allow_shorten=False) == []


def test_log_archive_lifecycle_through_the_s3_policy_code(spec, aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="platform-logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    c = Aws(s3, sleep=lambda s: None)
    out = audit_log_archive(c, spec.costs.policies, do_apply=False)
    assert out and not out[0].fixed and "lifecycle" in out[0].message
    out = audit_log_archive(c, spec.costs.policies, do_apply=True)
    assert all(d.fixed for d in out)
    rules = s3.get_bucket_lifecycle_configuration(Bucket="platform-logs")["Rules"]
    assert rules[0]["ID"] == "vigil-log-archive" and rules[0]["Transitions"][0] == {"Days": 30, "StorageClass": "GLACIER"}
    assert rules[0]["Expiration"]["Days"] == 400
    assert audit_log_archive(c, spec.costs.policies, do_apply=False) == []
    assert s3.get_bucket_versioning(Bucket="platform-logs").get("Status") is None, "versioning is left as it was"


def test_log_retention_refused_is_an_external_error(spec, aws):
    from vigil.dr.aws.client import AwsError

    logs = boto3.client("logs", region_name=REGION)
    inject(logs, "DescribeLogGroups", ["AccessDeniedException"], status=400)
    with pytest.raises(AwsError) as ei:
        audit_log_retention(Aws(logs), spec.costs.policies, do_apply=False, allow_shorten=False)
    assert ei.value.exit_code == 3


def test_search_scale_rule(spec):
    assert audit_search_scale(spec) == []
    bad = parse_spec(SPEC.replace("search_scale_rule: search-scale-to-3", "search_scale_rule: search-down"))
    assert "threshold rule with a `for:`" in audit_search_scale(bad)[0].message


def test_cli_audit_and_export(spec, aws, cli, tmp_path):
    p = tmp_path / "vigil.yaml"
    p.write_text(SPEC)
    out = tmp_path / "budgets.json"
    r = cli("export", "aws-budgets", "--spec", str(p), "--account", "123456789012", "-o", str(out))
    assert r.code == 0 and json.loads(out.read_text())[0]["AccountId"] == "123456789012"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="platform-logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    r = cli("cost", "audit", "--spec", str(p), "--json")
    assert r.code == 1 and not r.json()["in_policy"]
    assert set(r.json()["checked"]) == {"budgets", "log-retention", "log-archive", "search-scale"}
    r = cli("cost", "audit", "--spec", str(p), "--apply")
    assert r.code == 0, r.out + r.err
    r = cli("cost", "audit", "--spec", str(p))
    assert r.code == 0 and "in policy" in r.out
    r = cli("cost", "audit", "--spec", str(p), "--allow-shorten")
    assert r.code == 2
