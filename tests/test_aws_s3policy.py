"""Object storage policy (``backups.s3``): spec rules, apply, audit, and their failure paths.

AWS cannot run on this machine: these tests run boto3 against moto 5 (``mock_aws``), in process,
with fake credentials. What moto does not model, and how the tests deal with it:

- lifecycle transitions are stored and read back but never happen, and moto accepts rules real S3
  rejects (STANDARD_IA before 30 days): vigil's spec refuses those itself (tested without moto);
- Object Lock retention is stored and stamped on new object versions, but moto lets versioning be
  suspended on a locked bucket (S3 refuses): vigil's plan refuses it itself, so nothing here
  relies on moto enforcing it;
- moto enables Object Lock on an existing versioned bucket, as AWS S3 does since 2023; a store
  that refuses (several S3-compatible ones) is simulated by answering the call with an error at
  botocore's ``before-call`` hook, as are AccessDenied and throttling (moto enforces no IAM
  policy by default and never throttles).
"""

from __future__ import annotations

import random

import click
import pytest
from aws_helpers import inject, moto_account

from vigil.dr.aws import s3policy
from vigil.dr.aws.client import Aws, AwsAccessDenied, AwsError, AwsNotFound, AwsThrottled, make_client
from vigil.dr.aws.endpoint import check_endpoint_resolves, check_endpoint_url
from vigil.errors import SpecError, UsageError
from vigil.spec import parse_spec

REGION = "eu-west-1"

SPEC = """\
version: 1
services: {api: {}}
backups:
  s3:
    region: eu-west-1
    wal_retention_days: 35
    buckets:
      - name: platform-pgbackrest
        critical: true
        versioning: true
        wal_prefixes: [archive/]
        lifecycle:
          - id: backups-tiering
            prefix: backup/
            transitions: [{days: 30, storage_class: STANDARD_IA}, {days: 90, storage_class: GLACIER}]
            expiration_days: 400
            noncurrent_transitions: [{days: 30, storage_class: STANDARD_IA}]
            noncurrent_expiration_days: 90
            abort_incomplete_multipart_days: 7
        object_lock: {mode: COMPLIANCE, days: 35}
      - name: platform-assets
        versioning: true
        lifecycle:
          - id: old-uploads
            prefix: uploads/
            transitions: [{days: 30, storage_class: STANDARD_IA}]
"""


def load(text: str = SPEC):
    return parse_spec(text).backups.s3


@pytest.fixture
def aws(monkeypatch):
    with moto_account(monkeypatch, REGION):
        yield


@pytest.fixture
def s3(aws):
    return Aws(make_client("s3", REGION), sleep=lambda s: None)


def create(s3: Aws, name: str, lock: bool = False) -> None:
    kw = {"ObjectLockEnabledForBucket": True} if lock else {}
    s3.client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, **kw)


# --- the spec ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,why",
    [
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://169.254.10.1:9000", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://2852039166/", "non-standard"),
        ("http://0xa9fea9fe/", "non-standard"),
        ("http://0251.0376.0251.0376/", "non-standard"),
        ("http://metadata.google.internal/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://key:secret@minio.local:9000", "credentials come from the AWS environment"),
        ("ftp://minio.local", "http:// or https://"),
        ("http:///nohost", "no host"),
    ],
)
def test_endpoint_url_refuses_link_local_metadata_and_secrets(url, why):
    with pytest.raises(ValueError, match=why):
        check_endpoint_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000", "https://s3.example.net", "http://10.0.0.5:9000", "http://[::1]:9000", "http://minio:9000"])
def test_endpoint_url_allows_ordinary_stores(url):
    assert check_endpoint_url(url) == url


def test_endpoint_url_in_the_spec_and_the_explicit_allowance():
    bad = SPEC.replace("    region: eu-west-1\n", "    region: eu-west-1\n    endpoint_url: http://169.254.169.254\n", 1)
    with pytest.raises(SpecError) as e:
        parse_spec(bad)
    assert "backups.s3.endpoint_url" in str(e.value) and "endpoint_allow_link_local" in str(e.value)
    ok = bad.replace("    endpoint_url:", "    endpoint_allow_link_local: true\n    endpoint_url:")
    assert load(ok).endpoint_url == "http://169.254.169.254"


def test_endpoint_host_resolving_to_metadata_is_refused_at_connect_time():
    def resolver(host, port, proto=0):
        return [(2, 1, 6, "", ("169.254.169.254", port))]

    with pytest.raises(ValueError, match="resolves to 169.254.169.254"):
        check_endpoint_resolves("http://innocent.example:9000", resolver=resolver)
    check_endpoint_resolves("http://innocent.example:9000", resolver=resolver, allow_link_local=True)

    def private(host, port, proto=0):
        return [(2, 1, 6, "", ("10.1.2.3", port))]

    check_endpoint_resolves("http://minio.internal:9000", resolver=private)


def test_client_refuses_a_metadata_endpoint_even_if_the_spec_was_bypassed():
    with pytest.raises(UsageError, match="cloud metadata address"):
        make_client("s3", REGION, endpoint_url="http://169.254.169.254:80")


@pytest.mark.parametrize(
    "rule,message",
    [
        ("{id: r, transitions: [{days: 10, storage_class: STANDARD_IA}]}", "after 30 days at the earliest"),
        ("{id: r, transitions: [{days: 90, storage_class: GLACIER}, {days: 120, storage_class: STANDARD_IA}]}", "goes up the waterfall"),
        ("{id: r, transitions: [{days: 60, storage_class: STANDARD_IA}, {days: 60, storage_class: GLACIER}]}", "days must increase"),
        ("{id: r, transitions: [{days: 30, storage_class: STANDARD_IA}], expiration_days: 20}", "comes before the last transition"),
        ("{id: r, noncurrent_transitions: [{days: 5, storage_class: ONEZONE_IA}]}", "after 30 days at the earliest"),
        ("{id: r}", "has no action"),
        ("{id: r, transitions: [{days: 30, storage_class: REDUCED_REDUNDANCY}]}", "storage_class"),
    ],
)
def test_lifecycle_rules_s3_would_reject_are_spec_errors(rule, message):
    text = f"version: 1\nservices: {{api: {{}}}}\nbackups:\n  s3:\n    buckets:\n      - name: b-1\n        lifecycle: [{rule}]\n"
    with pytest.raises(SpecError) as e:
        parse_spec(text)
    assert message in str(e.value) and "backups.s3.buckets[0].lifecycle[0]" in str(e.value)


def test_bucket_spec_errors():
    base = "version: 1\nservices: {api: {}}\nbackups:\n  s3:\n    buckets:\n"
    cases = {
        "      - {name: b-1, versioning: false, object_lock: {mode: COMPLIANCE, days: 3}}\n": "object_lock requires versioning: true",
        "      - {name: b-1, object_lock: {mode: COMPLIANCE, days: 3, years: 1}}\n": "exactly one of days or years",
        "      - {name: b-1, object_lock: {mode: LEGAL, days: 3}}\n": "object_lock.mode",
        "      - {name: B_1}\n": "bucket name",
        "      - {name: b-1}\n      - {name: b-1}\n": "listed twice",
        "      - {name: b-1, lifecycle: [{id: a, expiration_days: 9}, {id: a, expiration_days: 9}]}\n": "duplicate lifecycle rule id",
        "      - {name: b-1, versioning: yes-please}\n": "versioning",
        "      - {name: b-1, access_key: AKIA}\n": "unknown key 'access_key'",
    }
    for body, msg in cases.items():
        with pytest.raises(SpecError) as e:
            parse_spec(base + body)
        assert msg in str(e.value), (body, str(e.value))


# --- pure plan and diff ------------------------------------------------------------------------


def test_plan_orders_calls_and_marks_enabling_object_lock_irreversible():
    spec = load()
    b = spec.bucket("platform-pgbackrest")
    p = s3policy.plan(b, s3policy.BucketState("platform-pgbackrest"), region=REGION)
    assert [c.operation for c in p.calls] == ["PutBucketVersioning", "PutObjectLockConfiguration", "PutBucketLifecycleConfiguration"]
    assert [c.irreversible for c in p.calls] == [False, True, False]
    lock = p.calls[1].params["ObjectLockConfiguration"]
    assert lock == {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 35}}}
    # in policy already: nothing to do
    assert s3policy.plan(b, s3policy.desired_state(b), region=REGION).calls == ()
    # missing: blocked unless created, and a created bucket gets Object Lock at creation
    assert s3policy.plan(b, s3policy.BucketState("platform-pgbackrest", exists=False), region=REGION).blockers
    p = s3policy.plan(b, s3policy.BucketState("platform-pgbackrest", exists=False), region=REGION, create_missing=True)
    assert p.calls[0].params == {"Bucket": "platform-pgbackrest", "CreateBucketConfiguration": {"LocationConstraint": REGION},
                                 "ObjectLockEnabledForBucket": True}
    assert [c.operation for c in p.calls] == ["CreateBucket", "PutObjectLockConfiguration", "PutBucketLifecycleConfiguration"]
    assert not any(c.irreversible for c in p.calls)


def test_plan_refuses_to_suspend_versioning_on_a_locked_bucket():
    spec = load(SPEC.replace("      - name: platform-assets\n        versioning: true", "      - name: platform-assets\n        versioning: false"))
    b = spec.bucket("platform-assets")
    locked = s3policy.BucketState("platform-assets", True, "Enabled", None, True, "GOVERNANCE", 1, None)
    p = s3policy.plan(b, locked, region=REGION)
    assert p.blockers and "can never be suspended" in p.blockers[0]


# --- against moto ------------------------------------------------------------------------------


def test_apply_then_audit_is_in_policy_and_a_second_apply_does_nothing(s3):
    spec = load()
    create(s3, "platform-pgbackrest", lock=True)
    create(s3, "platform-assets")
    res = s3policy.apply(s3, spec)
    assert [(c.bucket, c.operation) for c in res.done] == [
        ("platform-pgbackrest", "PutObjectLockConfiguration"),
        ("platform-pgbackrest", "PutBucketLifecycleConfiguration"),
        ("platform-assets", "PutBucketVersioning"),
        ("platform-assets", "PutBucketLifecycleConfiguration"),
    ]
    assert res.in_policy
    st = s3policy.observe(s3, "platform-pgbackrest")
    assert st.versioning == "Enabled" and st.object_lock_enabled and st.lock_mode == "COMPLIANCE" and st.lock_days == 35
    assert st.lifecycle[0].transitions == ((30, "STANDARD_IA"), (90, "GLACIER"))
    assert st.lifecycle[0].noncurrent_expiration_days == 90 and st.lifecycle[0].abort_incomplete_multipart_days == 7
    again = s3policy.apply(s3, spec)
    assert again.done == () and again.in_policy
    # Object Lock stamps new versions with the default retention (moto records it; it does not enforce it the same way)
    s3.client.put_object(Bucket="platform-pgbackrest", Key="backup/full.tar", Body=b"x")
    assert s3.client.head_object(Bucket="platform-pgbackrest", Key="backup/full.tar")["ObjectLockMode"] == "COMPLIANCE"


def test_audit_reports_drift_field_by_field(s3):
    spec = load()
    create(s3, "platform-pgbackrest", lock=True)
    create(s3, "platform-assets")
    s3policy.apply(s3, spec)
    # out-of-band changes
    s3.client.put_bucket_versioning(Bucket="platform-assets", VersioningConfiguration={"Status": "Suspended"})
    s3.client.put_object_lock_configuration(
        Bucket="platform-pgbackrest",
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 7}}},
    )
    s3.client.put_bucket_lifecycle_configuration(
        Bucket="platform-pgbackrest",
        LifecycleConfiguration={"Rules": [
            {"ID": "backups-tiering", "Filter": {"Prefix": "backup/"}, "Status": "Enabled",
             "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}], "Expiration": {"Days": 400}},
            {"ID": "wal-cleanup", "Filter": {"And": {"Prefix": "archive/", "Tags": [{"Key": "k", "Value": "v"}]}}, "Status": "Enabled",
             "Expiration": {"Days": 7}},
        ]},
    )
    audits = {a.bucket: a for a in s3policy.audit(s3, spec)}
    got = {(d.bucket, d.field): (d.expected, d.actual) for a in audits.values() for d in a.drifts}
    assert got[("platform-assets", "versioning")] == ("Enabled", "Suspended")
    assert got[("platform-pgbackrest", "object_lock.mode")] == ("COMPLIANCE", "GOVERNANCE")
    assert got[("platform-pgbackrest", "object_lock.days")] == (35, 7)
    assert got[("platform-pgbackrest", "lifecycle[backups-tiering].transitions")] == (
        [{"days": 30, "storage_class": "STANDARD_IA"}, {"days": 90, "storage_class": "GLACIER"}],
        [{"days": 30, "storage_class": "STANDARD_IA"}],
    )
    assert got[("platform-pgbackrest", "lifecycle[backups-tiering].noncurrent_expiration_days")] == (90, None)
    exp, act = got[("platform-pgbackrest", "lifecycle[wal-cleanup]")]
    assert exp is None and act["expiration_days"] == 7 and act["not_managed_by_vigil"] == {"filter": "tags k=v"}
    # the plan repairs it, says what it removes
    res = s3policy.apply(s3, spec, dry_run=True)
    lc = next(c for p in res.plans for c in p.calls if c.operation == "PutBucketLifecycleConfiguration")
    assert "removes wal-cleanup (not in the spec)" in lc.reason and "changes backups-tiering" in lc.reason
    assert s3policy.audit(s3, spec)[0].drifts, "a dry run changes nothing"
    assert s3policy.apply(s3, spec).in_policy


def test_missing_bucket_is_a_drift_for_audit_and_an_error_for_apply(s3):
    spec = load()
    create(s3, "platform-assets")
    a = {x.bucket: x for x in s3policy.audit(s3, spec)}
    assert [d.to_dict() for d in a["platform-pgbackrest"].drifts] == [
        {"bucket": "platform-pgbackrest", "field": "exists", "expected": True, "actual": False}
    ]
    with pytest.raises(AwsNotFound) as e:
        s3policy.apply(s3, spec)
    assert e.value.exit_code == 3 and "platform-pgbackrest does not exist" in e.value.message and "--create-missing" in e.value.hint
    assert s3policy.observe(s3, "platform-assets").versioning == "Disabled", "nothing changed: planning comes before any call"
    res = s3policy.apply(s3, spec, create_missing=True)
    assert res.in_policy and res.done[0].operation == "CreateBucket"
    assert s3policy.observe(s3, "platform-pgbackrest").object_lock_enabled


def test_enabling_object_lock_on_an_existing_bucket_needs_confirmation(s3):
    spec = load()
    create(s3, "platform-pgbackrest")  # made without Object Lock
    create(s3, "platform-assets")
    with pytest.raises(UsageError) as e:
        s3policy.apply(s3, spec)
    assert "cannot be undone" in e.value.message and "--confirm-irreversible" in e.value.hint and e.value.exit_code == 2
    assert s3policy.observe(s3, "platform-pgbackrest").versioning == "Disabled"
    # AWS S3 (and moto) enable Object Lock on an existing bucket once versioning is on; vigil enables versioning first
    res = s3policy.apply(s3, spec, confirm_irreversible=True)
    assert res.in_policy
    assert [c.operation for c in res.done[:2]] == ["PutBucketVersioning", "PutObjectLockConfiguration"]


def test_a_store_that_only_allows_object_lock_at_creation_gets_an_explanation(s3):
    spec = load()
    create(s3, "platform-pgbackrest")
    create(s3, "platform-assets")
    inject(s3.client, "PutObjectLockConfiguration", ["InvalidBucketState"])
    with pytest.raises(AwsError) as e:
        s3policy.apply(s3, spec, confirm_irreversible=True)
    assert e.value.exit_code == 3 and "could not enable Object Lock on the existing bucket platform-pgbackrest" in e.value.message
    assert "new bucket" in e.value.hint and "--object-lock-enabled-for-bucket" in e.value.hint and "Batch Replication" in e.value.hint


def test_access_denied_names_the_iam_action(s3):
    spec = load()
    create(s3, "platform-pgbackrest", lock=True)
    create(s3, "platform-assets")
    inject(s3.client, "PutBucketLifecycleConfiguration", ["AccessDenied"], status=403)
    with pytest.raises(AwsAccessDenied) as e:
        s3policy.apply(s3, spec)
    assert e.value.exit_code == 3 and "access denied" in e.value.message and "platform-pgbackrest" in e.value.message
    assert "s3:PutLifecycleConfiguration" in e.value.hint and "AWS_PROFILE" in e.value.hint


def test_throttling_is_retried_with_bounded_backoff(aws):
    slept: list[float] = []
    s3 = Aws(make_client("s3", REGION), sleep=slept.append, rng=random.Random(1), max_attempts=4)
    create(s3, "platform-assets")
    seen = inject(s3.client, "GetBucketVersioning", ["SlowDown", "Throttling"], status=503)
    assert s3policy.observe(s3, "platform-assets").versioning == "Disabled"
    assert seen == ["SlowDown", "Throttling"] and len(slept) == 2 and 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0
    inject(s3.client, "GetBucketVersioning", ["Throttling"] * 4, status=400)
    with pytest.raises(AwsThrottled) as e:
        s3policy.observe(s3, "platform-assets")
    assert "after 4 attempts" in e.value.message and e.value.exit_code == 3
    assert len(slept) == 2 + 3 and max(slept) <= 20


def test_no_credentials_is_a_clear_error():
    from botocore.exceptions import NoCredentialsError

    class NoCreds:  # what boto3 raises when the credential chain finds nothing
        def get_bucket_versioning(self, **_):
            raise NoCredentialsError()

    with pytest.raises(AwsAccessDenied) as e:
        Aws(NoCreds()).call("get_bucket_versioning", Bucket="x")
    assert "no usable AWS credentials" in e.value.message and "never go in the spec" in e.value.hint and e.value.exit_code == 3


def test_mode_and_storage_class_are_case_insensitive():
    spec = load(SPEC.replace("mode: COMPLIANCE", "mode: compliance").replace("storage_class: GLACIER}", "storage_class: glacier}"))
    b = spec.bucket("platform-pgbackrest")
    assert b.object_lock.mode == "COMPLIANCE" and b.lifecycle[0].transitions[1].storage_class == "GLACIER"


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def backup_cli(cli, monkeypatch, aws):
    """``vigil backup ...``: the real backup group when it exists, else a stand-in holding our subcommands."""
    from vigil.cli import backup, backup_aws
    from vigil.cli.main import cli as root

    grp = getattr(backup, "backup_group", None)
    if grp is None or "backup" not in root.commands:
        grp = click.Group("backup")
        monkeypatch.setitem(root.commands, "backup", grp)
    backup_aws.register(grp)
    return lambda *a, **kw: cli("backup", *a, **kw)


def test_cli_audit_apply_dry_run_and_exit_codes(backup_cli, tmp_path):
    spec_file = tmp_path / "vigil.yaml"
    spec_file.write_text(SPEC)
    s3 = Aws(make_client("s3", REGION))
    create(s3, "platform-pgbackrest", lock=True)
    create(s3, "platform-assets")
    r = backup_cli("s3-policy", "audit", "--spec", spec_file, "--json")
    assert r.code == 1, r.err
    d = r.json()
    assert d["in_policy"] is False and {"bucket", "field", "expected", "actual"} <= set(d["drifts"][0])
    r = backup_cli("s3-policy", "apply", "--dry-run", "--spec", spec_file, "--json")
    assert r.code == 0, r.err
    ops = [c["operation"] for p in r.json()["plans"] for c in p["calls"]]
    assert ops == ["PutObjectLockConfiguration", "PutBucketLifecycleConfiguration", "PutBucketVersioning", "PutBucketLifecycleConfiguration"]
    assert r.json()["calls_made"] == []
    r = backup_cli("s3-policy", "apply", "--dry-run", "--spec", spec_file)
    assert "platform-pgbackrest: would call PutObjectLockConfiguration" in r.out
    r = backup_cli("s3-policy", "apply", "--spec", spec_file)
    assert r.code == 0 and "in policy" in r.out, r.err
    r = backup_cli("s3-policy", "audit", "--spec", spec_file)
    assert r.code == 0 and "platform-assets: in policy" in r.out and "0 drift(s)" in r.out
    r = backup_cli("s3-policy", "audit", "--bucket", "nope", "--spec", spec_file)
    assert r.code == 2 and "not in backups.s3.buckets" in r.err


def test_cli_errors_exit_3_for_aws_and_2_for_the_spec(backup_cli, tmp_path):
    spec_file = tmp_path / "vigil.yaml"
    spec_file.write_text(SPEC)
    r = backup_cli("s3-policy", "apply", "--spec", spec_file, "--json")
    assert r.code == 3 and "does not exist" in r.err
    assert r.json()["error"]["code"] == "aws-not-found"
    bare = tmp_path / "bare.yaml"
    bare.write_text("version: 1\nservices: {api: {}}\n")
    r = backup_cli("s3-policy", "audit", "--spec", bare)
    assert r.code == 2 and "no backups.s3 section" in r.err
