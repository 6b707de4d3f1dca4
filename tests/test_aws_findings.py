"""The DR gap checks for the AWS backups: pure functions over the spec and the observed state.

Everything here but the last test is plain data: no AWS, no moto. The last test reads the state
from moto 5 (``mock_aws``; AWS cannot run on this machine) to show the observed shapes feed the
checks; moto stores lifecycle rules and Object Lock settings faithfully, which is all it relies on
(it never runs a transition or an expiration, and the checks never need it to).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from vigil.dr.aws.aurora import ClusterState, SnapshotInfo
from vigil.dr import gaps as register
from vigil.dr.aws.findings import Gap, findings, s3_findings
from vigil.dr.aws.s3policy import BucketState, RuleState
from vigil.spec import parse_spec

AT = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)

GOOD = """\
version: 1
services: {api: {}}
backups:
  aurora:
    cluster_id: platform-prod
    region: eu-west-1
    schedule: daily
    retention_days: 35
    cross_region: {region: us-west-2, kms_key_id: alias/dr-copies}
  s3:
    wal_retention_days: 35
    buckets:
      - name: platform-pgbackrest
        critical: true
        wal_prefixes: [archive/]
        object_lock: {mode: COMPLIANCE, days: 35}
        lifecycle:
          - id: backups-tiering
            prefix: backup/
            transitions: [{days: 30, storage_class: STANDARD_IA}, {days: 90, storage_class: GLACIER}]
          - id: wal-ia
            prefix: archive/
            transitions: [{days: 30, storage_class: STANDARD_IA}, {days: 60, storage_class: GLACIER_IR}]
            expiration_days: 400
      - name: platform-assets
        lifecycle: []
"""


def load(text: str = GOOD):
    b = parse_spec(text).backups
    return b.aurora, b.s3


def ids(gaps: list[Gap]) -> list[str]:
    return [g.id for g in gaps]


def test_the_plan_as_specified_has_no_gaps():
    aurora, s3 = load()
    assert findings(aurora, s3) == []


def test_a_daily_copy_cannot_meet_a_15_minute_rpo():
    aurora, s3 = load()
    gaps = findings(aurora, s3, rpo_objective_seconds=Decimal(900))
    assert ids(gaps) == ["region-loss-rpo-unkeepable"]
    g = gaps[0]
    assert g.severity == "critical" and "once every 1d" in g.message and "up to 1d of data" in g.message and "15m" in g.message
    assert "Global Database" in g.fix and g.where == "backups.aurora.cross_region"
    hourly = load(GOOD.replace("schedule: daily", "schedule: hourly"))[0]
    assert ids(findings(hourly, None, rpo_objective_seconds=900)) == ["region-loss-rpo-unkeepable"]
    assert findings(hourly, None, rpo_objective_seconds=86400) == []


def test_retention_below_plan_and_no_cross_region_copy():
    aurora, _ = load(GOOD.replace("retention_days: 35", "retention_days: 7").replace(
        "    cross_region: {region: us-west-2, kms_key_id: alias/dr-copies}\n", ""))
    gaps = findings(aurora, None, rpo_objective_seconds=900)
    assert ids(gaps) == ["aurora-no-cross-region-copy", "aurora-retention-below-plan"]
    assert "kept 7 days; the plan keeps 35 days" in gaps[1].message and gaps[1].where == "backups.aurora.retention_days"
    assert "a region loss loses the database and every backup" in gaps[0].message
    copies = load(GOOD.replace("kms_key_id: alias/dr-copies}", "kms_key_id: alias/dr-copies, retention_days: 14}"))[0]
    assert ids(findings(copies, None)) == ["aurora-copy-retention-below-plan"]
    assert findings(aurora, None, required_retention_days=7) != [] and "aurora-retention-below-plan" not in ids(
        findings(aurora, None, required_retention_days=7))


def test_object_lock_gaps_on_critical_buckets():
    _, s3 = load(GOOD.replace("        object_lock: {mode: COMPLIANCE, days: 35}\n", ""))
    gaps = s3_findings(s3)
    assert ids(gaps) == ["s3-object-lock-missing"] and "bucket platform-pgbackrest is critical but has no Object Lock" in gaps[0].message
    assert gaps[0].where == "backups.s3.buckets[0].object_lock"
    _, s3 = load(GOOD.replace("{mode: COMPLIANCE, days: 35}", "{mode: GOVERNANCE, days: 7}"))
    gaps = s3_findings(s3)
    assert ids(gaps) == ["s3-object-lock-short", "s3-object-lock-governance"]
    assert [g.severity for g in gaps] == ["medium", "low"] and gaps[1].where == "backups.s3.buckets[0].object_lock.mode"
    _, s3 = load(GOOD.replace("{mode: COMPLIANCE, days: 35}", "{mode: COMPLIANCE, years: 1}"))
    assert s3_findings(s3) == []
    # a bucket that is not critical needs no lock, but versioning still matters
    _, s3 = load(GOOD.replace("      - name: platform-assets\n", "      - name: platform-assets\n        versioning: false\n"))
    gaps = s3_findings(s3)
    assert ids(gaps) == ["s3-versioning-off"] and gaps[0].severity == "medium"


@pytest.mark.parametrize(
    "prefix,transitions,expiration,expected",
    [
        ("", "[{days: 30, storage_class: GLACIER}]", None, ["glacier"]),
        ("arch", "[{days: 0, storage_class: DEEP_ARCHIVE}]", None, ["DEEP_ARCHIVE"]),
        ("archive/main/", "[{days: 1, storage_class: GLACIER}]", None, ["glacier"]),
        ("archive/", "[]", 14, ["expires"]),
        ("", "[{days: 0, storage_class: GLACIER}]", 20, ["glacier", "expires"]),
        ("", "[{days: 90, storage_class: GLACIER}]", None, []),
        ("archive/", "[]", 35, []),
        ("archive/", "[{days: 0, storage_class: GLACIER_IR}]", None, []),
        ("backup/", "[{days: 1, storage_class: GLACIER}]", 3, []),
        ("archived-reports/", "[{days: 1, storage_class: GLACIER}]", 3, []),
    ],
)
def test_lifecycle_rules_that_break_wal(prefix, transitions, expiration, expected):
    rule = f"          - id: risky\n            prefix: '{prefix}'\n            transitions: {transitions}\n"
    if expiration:
        rule += f"            expiration_days: {expiration}\n"
    text = GOOD.replace("          - id: wal-ia\n", rule + "          - id: wal-ia\n")
    _, s3 = load(text)
    gaps = s3_findings(s3)
    assert ids(gaps) == ["s3-lifecycle-breaks-wal"] * len(expected)
    for g, word in zip(gaps, expected):
        assert word.lower() in g.message.lower(), g.message
        assert g.severity == "critical" and "rule 'risky'" in g.message and "'archive/'" in g.message
        assert g.where == "backups.s3.buckets[0].lifecycle[1]"  # after backups-tiering


def test_a_disabled_rule_breaks_nothing():
    text = GOOD.replace("          - id: wal-ia\n", "          - id: off\n            enabled: false\n            expiration_days: 3\n          - id: wal-ia\n")
    assert s3_findings(load(text)[1]) == []


def test_observed_state_wins_over_the_spec():
    aurora, s3 = load()
    observed = {
        "platform-pgbackrest": BucketState(
            "platform-pgbackrest", True, "Suspended",
            (RuleState("cleanup", "", True, (), 7, extra=(("filter", "tags tier=cold"),)),),
            object_lock_enabled=False,
        ),
        "platform-assets": BucketState("platform-assets", exists=False),
    }
    gaps = findings(aurora, s3, buckets=observed)
    assert ids(gaps) == ["s3-lifecycle-breaks-wal", "s3-bucket-missing", "s3-object-lock-missing", "s3-versioning-off"]
    assert all(g.where == "observed" for g in gaps)
    assert "(for objects matching tags tier=cold)" in gaps[0].message


def snap(days_ago: float, region: str = "eu-west-1") -> SnapshotInfo:
    return SnapshotInfo(f"s{days_ago}", "platform-prod", region, AT - timedelta(days=days_ago), "available", "manual",
                        tags={"managed-by": "vigil"})


def test_observed_cluster_gaps():
    aurora, _ = load()
    fresh = tuple(snap(d + 0.2) for d in range(36))
    ok = ClusterState("platform-prod", "eu-west-1", True, "available", 35, AT - timedelta(days=400),
                      snapshots=fresh, copy_region="us-west-2", copies=tuple(snap(d + 0.3, "us-west-2") for d in range(36)))
    assert findings(aurora, None, cluster=ok, at=AT) == []
    assert findings(aurora, None, cluster=ok) == [], "without `at` the freshness checks are skipped"
    short = ClusterState("platform-prod", "eu-west-1", True, "available", 7, AT - timedelta(days=400),
                         snapshots=tuple(snap(d + 3) for d in range(36)), copy_region="us-west-2", copies=())
    gaps = findings(aurora, None, cluster=short, at=AT)
    assert ids(gaps) == ["aurora-no-copies", "aurora-retention-below-plan", "aurora-snapshot-stale"]
    assert "backup retention period of 7 days" in gaps[1].message and "--backup-retention-period 35" in gaps[1].fix
    assert "in eu-west-1" in gaps[2].message and "us-west-2" in gaps[0].message
    missing = ClusterState("platform-prod", "eu-west-1", False)
    assert ids(findings(aurora, None, cluster=missing, at=AT)) == ["aurora-cluster-missing"]


def test_order_and_shape():
    aurora, s3 = load(GOOD.replace("{mode: COMPLIANCE, days: 35}", "{mode: GOVERNANCE, days: 7}"))
    gaps = findings(aurora, s3, rpo_objective_seconds=900)
    assert [g.severity for g in gaps] == ["critical", "medium", "low"]
    assert isinstance(gaps[0], register.Gap) and set(gaps[0].to_dict()) == {"id", "severity", "message", "where", "fix"}
    assert findings(None, None) == []


def test_observed_side_combines_with_the_registers_spec_side_without_duplicates():
    text = GOOD.replace("        object_lock: {mode: COMPLIANCE, days: 35}\n", "")
    spec = parse_spec(text)
    b = spec.backups
    observed = {"platform-pgbackrest": BucketState("platform-pgbackrest", True, "Enabled", None, object_lock_enabled=False)}
    ours = findings(b.aurora, b.s3, buckets=observed, rpo_objective_seconds=900, include_spec=False)
    assert [(g.id, g.where) for g in ours] == [("s3-object-lock-missing", "observed")], "platform-assets was not observed: left out"
    theirs = register.spec_gaps(spec, rpo_objective=Decimal(900))
    assert {"s3-object-lock-missing", "region-loss-rpo-unkeepable"} <= {g.id for g in theirs}
    combined = register.register(theirs, ours)
    assert [g.where for g in combined if g.id == "s3-object-lock-missing"] == ["backups.s3.buckets[0].object_lock", "observed"]
    assert len([g for g in combined if g.id == "region-loss-rpo-unkeepable"]) == 1


def test_findings_from_state_read_from_moto(monkeypatch):
    from moto import mock_aws

    from vigil.dr.aws import s3policy
    from vigil.dr.aws.client import Aws, make_client

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    _, s3spec = load()
    with mock_aws():
        s3 = Aws(make_client("s3", "eu-west-1"))
        s3.client.create_bucket(Bucket="platform-pgbackrest", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.client.put_bucket_lifecycle_configuration(
            Bucket="platform-pgbackrest",
            LifecycleConfiguration={"Rules": [{"ID": "all-to-glacier", "Filter": {"Prefix": ""}, "Status": "Enabled",
                                               "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]},
        )
        observed = {b.name: s3policy.observe(s3, b.name) for b in s3spec.buckets}
    gaps = s3_findings(s3spec, buckets=observed)
    assert ids(gaps) == ["s3-versioning-off", "s3-object-lock-missing", "s3-lifecycle-breaks-wal", "s3-bucket-missing"]
