"""Aurora backups (``backups.aurora``): snapshots, cross-region copies, point-in-time restore, retention.

AWS cannot run on this machine: these tests run boto3 against moto 5 (``mock_aws``), in process,
with fake credentials, on a fake clock (waits tick it; nothing sleeps). What moto does not model,
and what that means for what is proven here:

- a point-in-time restore ignores the restore time: moto makes a cluster from the source's
  metadata whatever ``RestoreToTime`` says (even a time before the cluster existed), and there is
  no data in it. vigil checks the time against ``EarliestRestorableTime``/``LatestRestorableTime``
  itself before calling AWS, and that check is what the tests pin; whether the rows after the
  target time are absent can only be shown on PostgreSQL (the pgBackRest tests) or real AWS;
- clusters, instances, snapshots and copies are ``available`` at once (or on the next describe):
  the bounded waiter is tested on its own with a scripted status sequence;
- snapshot times are moto's wall clock, so retention over weeks is judged by moving ``at`` (the
  retention check is a pure function; the long histories are synthetic data);
- KMS: moto checks that a key ARN or id exists in the destination region (so a key from the
  wrong region fails as on AWS) but does not encrypt anything, and crashes on alias names;
- no IAM and no throttling: AccessDenied and Throttling are injected at botocore's ``before-call``
  hook; subnet groups and security groups are not validated.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import click
import pytest
from aws_helpers import inject, moto_account

from vigil.clock import FakeClock
from vigil.dr.aws import aurora
from vigil.dr.aws.aurora import SnapshotInfo, check_retention, prune_plan
from vigil.dr.aws.client import Aws, AwsAccessDenied, AwsError, AwsKmsError, AwsNotFound, make_client
from vigil.errors import SpecError, UsageError
from vigil.spec import parse_spec

SRC, DST = "eu-west-1", "us-west-2"


def spec_text(kms: str = "KEY", extra: str = "") -> str:
    return f"""\
version: 1
services: {{api: {{}}}}
backups:
  aurora:
    cluster_id: platform-prod
    region: {SRC}
    schedule: daily
    retention_days: 35
    cross_region: {{region: {DST}, kms_key_id: "{kms}"}}
    restore: {{poll_interval: 10s, timeout: 1h}}
{extra}"""


def load(kms: str = "0b9b3b5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", extra: str = ""):
    return parse_spec(spec_text(kms, extra)).backups.aurora


@pytest.fixture
def aws(monkeypatch):
    with moto_account(monkeypatch, SRC):
        yield


@pytest.fixture
def world(aws):
    """A cluster with a writer in eu-west-1 (35-day backup retention) and a KMS key in us-west-2."""
    rds = Aws(make_client("rds", SRC), sleep=lambda s: None)
    rds.client.create_db_cluster(
        DBClusterIdentifier="platform-prod", Engine="aurora-postgresql", MasterUsername="app",
        MasterUserPassword="not-a-real-secret-1", StorageEncrypted=True, BackupRetentionPeriod=35,
    )
    rds.client.create_db_instance(DBInstanceIdentifier="platform-prod-1", DBInstanceClass="db.r6g.large",
                                  Engine="aurora-postgresql", DBClusterIdentifier="platform-prod")
    key = make_client("kms", DST).create_key(Description="dr copies")["KeyMetadata"]
    dst = Aws(make_client("rds", DST), sleep=lambda s: None)
    return rds, dst, key


def now() -> datetime:
    return datetime.now(timezone.utc)  # moto stamps snapshots with the wall clock


# --- the spec ----------------------------------------------------------------------------------


def test_spec_defaults_and_checks():
    s = load()
    assert s.schedule == 86400 and s.retention_days == 35 and s.restore_target == "platform-prod-restore"
    assert s.copy_retention_days == 35 and s.engine == "aurora-postgresql"
    assert load(extra="").restore.restore_type == "full-copy"
    with pytest.raises(SpecError) as e:
        load(kms="arn:aws:kms:eu-west-1:123456789012:key/0b9b3b5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    assert "backups.aurora.cross_region" in str(e.value) and "a KMS key is regional" in str(e.value) and "us-west-2" in str(e.value)
    load(kms="arn:aws:kms:us-west-2:123456789012:key/0b9b3b5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    load(kms="alias/dr-copies")
    bad = {
        spec_text().replace(f"region: {DST}", f"region: {SRC}"): "another region",
        spec_text().replace("cluster_id: platform-prod", "cluster_id: 9prod"): "cluster_id",
        spec_text().replace("schedule: daily", "schedule: 10m"): "at least 1h",
        spec_text().replace("retention_days: 35", "retention_days: 0"): "retention_days",
        spec_text().replace("kms_key_id: \"KEY\"", "kms_key_id: \"my key\""): "is not a KMS key",
        spec_text().replace("poll_interval: 10s, timeout: 1h", "poll_interval: 2h, timeout: 1h"): "longer than timeout",
        spec_text().replace("poll_interval: 10s,", "target_cluster_id: platform-prod, poll_interval: 10s,"): "source cluster",
        spec_text() + "    master_password: hunter2\n": "unknown key 'master_password'",
    }
    for text, msg in bad.items():
        with pytest.raises(SpecError) as e:
            parse_spec(text.replace("\"KEY\"", "alias/dr"))
        assert msg in str(e.value), (msg, str(e.value))
    assert parse_spec(spec_text().replace("schedule: daily", "schedule: 12h").replace("\"KEY\"", "alias/dr")).backups.aurora.schedule == 43200


def test_names():
    s = load()
    at = datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)
    assert aurora.snapshot_id(s, at) == "vigil-platform-prod-20261126-0300"
    assert aurora.copy_id(s, "vigil-platform-prod-20261126-0300") == "vigil-platform-prod-20261126-0300"
    assert aurora.copy_id(s, "rds:platform-prod-2026-11-26-03-00") == "vigil-auto-platform-prod-2026-11-26-03-00"


# --- retention: pure ---------------------------------------------------------------------------

AT = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def snap(days_ago: float, *, managed: bool = True, kind: str = "manual", status: str = "available", i: int = 0) -> SnapshotInfo:
    created = AT - timedelta(days=days_ago)
    return SnapshotInfo(
        id=f"s-{days_ago}-{i}", cluster_id="platform-prod", region=SRC, created=created, status=status, type=kind,
        tags={"managed-by": "vigil"} if managed else {},
    )


def daily(n: int, start: float = 0.1) -> list[SnapshotInfo]:
    return [snap(start + d) for d in range(n)]


def test_retention_ok_for_35_daily_snapshots_and_lists_what_is_past_it():
    snaps = daily(40) + [snap(50, managed=False), snap(45, kind="automated")]
    r = check_retention(snaps, at=AT, retention_days=35, interval=86400, cluster_id="platform-prod", region=SRC,
                        cluster_created=AT - timedelta(days=400), backup_retention_days=35)
    assert r.ok, r.problems
    assert r.considered == 42 and r.newest_age_seconds == 8640
    assert sorted(s.id for s in r.expired) == sorted(s.id for s in daily(40) if AT - s.created > timedelta(days=35))
    assert all(s.managed and s.type == "manual" for s in r.expired), "only vigil's manual snapshots are vigil's to prune"


def test_retention_problems():
    kw = dict(at=AT, retention_days=35, interval=86400, cluster_id="platform-prod", region=SRC, cluster_created=AT - timedelta(days=400))
    stale = check_retention(daily(36, start=2), **kw)
    assert [p.kind for p in stale.problems] == ["stale"] and "2d old" in stale.problems[0].message
    holes = [s for s in daily(36) if not 10 <= (AT - s.created).days <= 13]
    r = check_retention(holes, **kw)
    assert [p.kind for p in r.problems] == ["gap"] and "the longest is 5d" in r.problems[0].message
    short = check_retention(daily(10), **kw)
    assert [p.kind for p in short.problems] == ["short-history"] and "the plan keeps 35 days" in short.problems[0].message
    young = check_retention(daily(10), **{**kw, "cluster_created": AT - timedelta(days=10)})
    assert young.ok, "a cluster younger than the retention cannot have a longer history"
    auto = check_retention(daily(36), **{**kw, "backup_retention_days": 7})
    assert [p.kind for p in auto.problems] == ["automated-retention"] and "7 days" in auto.problems[0].message
    none = check_retention([snap(1, status="creating")], **kw)
    assert [p.kind for p in none.problems] == ["no-snapshots"]
    # a weekly schedule tolerates six days
    weekly = check_retention([snap(d) for d in range(0, 36, 7)], **{**kw, "interval": 7 * 86400})
    assert weekly.ok, weekly.problems
    # 42 days kept under a plan of 50: AWS caps the backup retention period at 35
    capped = check_retention(daily(51), **{**kw, "retention_days": 50, "backup_retention_days": 35})
    assert capped.ok


def test_prune_plan_never_takes_the_newest_or_someone_elses():
    old = [snap(40, i=1), snap(39, i=2), snap(38, managed=False), snap(37, kind="automated")]
    assert [s.id for s in prune_plan(old, at=AT, retention_days=35)] == ["s-40-1"], "vigil's newest stays, however old"
    assert [s.id for s in prune_plan(old + daily(3), at=AT, retention_days=35)] == ["s-40-1", "s-39-2"]
    assert prune_plan([], at=AT, retention_days=35) == []


def test_restore_time_window():
    e, l = AT - timedelta(days=35), AT - timedelta(minutes=5)
    aurora.check_restore_time(AT - timedelta(days=1), e, l, cluster_id="c")
    with pytest.raises(UsageError, match="before the earliest restorable time") as x:
        aurora.check_restore_time(AT - timedelta(days=36), e, l, cluster_id="c")
    assert "--from-snapshot" in x.value.hint and x.value.exit_code == 2
    with pytest.raises(UsageError, match="after the latest restorable time"):
        aurora.check_restore_time(AT, e, l, cluster_id="c")


# --- the bounded waiter ------------------------------------------------------------------------


def test_waiter_polls_on_the_fake_clock_and_gives_up_at_the_timeout():
    clock = FakeClock(AT)
    states = iter(["creating", "creating", "backing-up", "available"])
    seen: list[str] = []
    done = aurora.wait_for(lambda: next(states), what="cluster x", timeout=600, interval=30, clock=clock, sleep=clock.tick,
                           progress=seen.append)
    assert done == AT + timedelta(seconds=90) and len(seen) == 3  # one line per change of state
    clock = FakeClock(AT)
    sleeps: list[float] = []

    def tick(s: float) -> None:
        sleeps.append(s)
        clock.tick(s)

    with pytest.raises(AwsError, match="still creating after 10m") as e:
        aurora.wait_for(lambda: "creating", what="cluster x", timeout=600, interval=45, clock=clock, sleep=tick)
    assert e.value.exit_code == 3 and "goes on in AWS" in e.value.hint
    assert sum(sleeps) == 600 and sleeps[-1] == 15, "the last sleep stops at the deadline"
    with pytest.raises(AwsError, match="went to state 'incompatible-restore'"):
        aurora.wait_for(lambda: "incompatible-restore", what="cluster x", timeout=600, interval=30, clock=FakeClock(AT),
                        sleep=lambda s: None, failed=aurora.CLUSTER_FAILED)


# --- against moto ------------------------------------------------------------------------------


def test_snapshot_then_cross_region_copy_with_the_destination_key(world):
    rds, dst, key = world
    spec = load(kms=key["Arn"])
    clock = FakeClock(now())
    s = aurora.create_snapshot(rds, spec, at=clock.now(), wait=True, clock=clock, sleep=clock.tick)
    assert s.available and s.managed and s.id.startswith("vigil-platform-prod-")
    assert aurora.create_snapshot(rds, spec, at=clock.now()).id == s.id, "a retried run in the same minute takes no second snapshot"
    snaps = aurora.list_snapshots(rds, "platform-prod", region=SRC)
    assert {x.type for x in snaps} == {"automated", "manual"} and aurora.newest_snapshot(snaps).id == s.id
    res = aurora.copy_snapshot(dst, spec, s, wait=True, clock=clock, sleep=clock.tick)
    assert res.created and res.copy.region == DST and res.copy.id == s.id and res.copy.kms_key_id == key["Arn"]
    assert res.copy.arn.startswith(f"arn:aws:rds:{DST}:") and res.copy.managed
    again = aurora.copy_snapshot(dst, spec, s)
    assert not again.created and again.copy.id == s.id, "copying twice is harmless"
    copies = aurora.list_snapshots(dst, "platform-prod", region=DST, manual_only=True)
    assert [c.id for c in copies] == [s.id]


def test_copy_with_a_key_that_is_not_in_the_destination_region(world):
    rds, dst, key = world
    src_key = make_client("kms", SRC).create_key()["KeyMetadata"]["KeyId"]  # exists in eu-west-1 only
    spec = load(kms=src_key)  # a bare key id: the spec cannot see its region, AWS can
    s = aurora.create_snapshot(rds, spec, at=now())
    with pytest.raises(AwsKmsError) as e:
        aurora.copy_snapshot(dst, spec, s)
    assert e.value.exit_code == 3 and "KMSKeyNotAccessibleFault" in e.value.message and "a KMS key is regional" in e.value.hint
    assert DST in e.value.hint


def test_observe_and_retention_reports(world):
    rds, dst, key = world
    spec = load(kms=key["KeyId"])
    s = aurora.create_snapshot(rds, spec, at=now())
    aurora.copy_snapshot(dst, spec, s)
    state = aurora.observe(rds, spec, dst=dst)
    assert state.exists and state.backup_retention_days == 35 and state.writer_instance_class == "db.r6g.large"
    assert state.copy_region == DST and [c.id for c in state.copies] == [s.id]
    src_rep, dst_rep = aurora.retention_reports(state, spec, at=now() + timedelta(hours=1))
    assert src_rep.ok and dst_rep.ok, (src_rep.problems, dst_rep.problems)
    later = aurora.retention_reports(state, spec, at=now() + timedelta(days=3))
    assert [p.kind for p in later[0].problems] == ["stale"] and [p.kind for p in later[1].problems] == ["stale"]
    assert aurora.observe(rds, load(kms=key["KeyId"]).model_copy(update={"cluster_id": "nope"})).exists is False


def test_prune_deletes_only_vigils_expired_snapshots(world):
    rds, dst, key = world
    spec = load(kms=key["KeyId"])
    first = aurora.create_snapshot(rds, spec, at=now() - timedelta(minutes=5))
    second = aurora.create_snapshot(rds, spec, at=now())
    rds.client.create_db_cluster_snapshot(DBClusterIdentifier="platform-prod", DBClusterSnapshotIdentifier="someone-elses")
    snaps = aurora.list_snapshots(rds, "platform-prod", region=SRC, manual_only=True)
    later = now() + timedelta(days=40)
    assert [s.id for s in aurora.prune(rds, snaps, at=later, retention_days=35, dry_run=True)] == [first.id]
    assert len(aurora.list_snapshots(rds, "platform-prod", region=SRC, manual_only=True)) == 3
    aurora.prune(rds, snaps, at=later, retention_days=35)
    left = {s.id for s in aurora.list_snapshots(rds, "platform-prod", region=SRC, manual_only=True)}
    assert left == {second.id, "someone-elses"}


def test_point_in_time_restore_makes_a_cluster_and_its_writer(world):
    rds, dst, key = world
    spec = load(kms=key["KeyId"])
    clock = FakeClock(now())
    lines: list[str] = []
    to = now() - timedelta(seconds=1)
    cluster = rds.client.describe_db_clusters(DBClusterIdentifier="platform-prod")["DBClusters"][0]
    to = max(to, cluster["EarliestRestorableTime"])
    res = aurora.restore_point_in_time(rds, spec, to=to, clock=clock, sleep=clock.tick, progress=lines.append)
    assert res.target_cluster_id == "platform-prod-restore" and res.writer_instance_id == "platform-prod-restore-writer"
    assert res.calls == ("RestoreDBClusterToPointInTime", "CreateDBInstance") and res.mode == "point-in-time"
    assert res.seconds is not None and res.endpoint and res.endpoint.startswith("platform-prod-restore.")
    inst = rds.client.describe_db_instances(DBInstanceIdentifier="platform-prod-restore-writer")["DBInstances"][0]
    assert inst["DBInstanceClass"] == "db.r6g.large", "the writer copies the source writer's class"
    assert inst["DBClusterIdentifier"] == "platform-prod-restore"
    restored = rds.client.describe_db_clusters(DBClusterIdentifier="platform-prod-restore")["DBClusters"][0]
    assert {"Key": "vigil-restored-from", "Value": "platform-prod"} in restored["TagList"]
    assert any("started" in x for x in lines)
    # the same target again: refused before any call
    with pytest.raises(UsageError, match="already exists"):
        aurora.restore_point_in_time(rds, spec, to=None, clock=clock, sleep=clock.tick)
    # and cleaned up by vigil only because vigil made it
    calls = aurora.discard_restore(rds, spec, target="platform-prod-restore")
    assert calls == ["DeleteDBInstance platform-prod-restore-writer", "DeleteDBCluster platform-prod-restore"]
    with pytest.raises(UsageError, match="source cluster"):
        aurora.discard_restore(rds, spec, target="platform-prod")
    rds.client.create_db_cluster(DBClusterIdentifier="other", Engine="aurora-postgresql", MasterUsername="a", MasterUserPassword="not-a-secret-12")
    with pytest.raises(UsageError, match="vigil did not restore it"):
        aurora.discard_restore(rds, spec, target="other")


def test_restore_time_outside_the_window_is_refused_before_any_call(world):
    rds, _dst, key = world
    spec = load(kms=key["KeyId"])
    clock = FakeClock(now())
    with pytest.raises(UsageError, match="before the earliest restorable time"):
        aurora.restore_point_in_time(rds, spec, to=now() - timedelta(days=30), clock=clock, sleep=clock.tick)
    with pytest.raises(UsageError, match="after the latest restorable time"):
        aurora.restore_point_in_time(rds, spec, to=now() + timedelta(days=1), clock=clock, sleep=clock.tick)
    assert [c["DBClusterIdentifier"] for c in rds.client.describe_db_clusters()["DBClusters"]] == ["platform-prod"]


def test_restore_of_a_cluster_that_does_not_exist(world):
    rds, _dst, key = world
    spec = load(kms=key["KeyId"]).model_copy(update={"cluster_id": "platform-typo"})
    with pytest.raises(AwsNotFound) as e:
        aurora.restore_point_in_time(rds, spec, to=None, clock=FakeClock(now()))
    assert e.value.exit_code == 3 and "platform-typo" in e.value.message and SRC in e.value.hint


def test_region_loss_restore_from_the_cross_region_copy(world):
    rds, dst, key = world
    spec = load(kms=key["KeyId"], extra="    writer_instance_class: db.r6g.xlarge\n")
    s = aurora.create_snapshot(rds, spec, at=now())
    aurora.copy_snapshot(dst, spec, s)
    clock = FakeClock(now())
    res = aurora.restore_from_snapshot(dst, spec, snapshot=s.id, clock=clock, sleep=clock.tick, target="platform-dr")
    assert res.region == DST and res.mode == "snapshot" and res.calls == ("RestoreDBClusterFromSnapshot", "CreateDBInstance")
    inst = dst.client.describe_db_instances(DBInstanceIdentifier="platform-dr-writer")["DBInstances"][0]
    assert inst["DBInstanceClass"] == "db.r6g.xlarge"
    with pytest.raises(AwsNotFound):
        aurora.restore_from_snapshot(dst, spec, snapshot="no-such-snapshot", clock=clock, target="platform-dr2")


def test_throttling_and_access_denied_on_rds(aws):
    slept: list[float] = []
    rds = Aws(make_client("rds", SRC), sleep=slept.append, rng=random.Random(7))
    rds.client.create_db_cluster(DBClusterIdentifier="platform-prod", Engine="aurora-postgresql", MasterUsername="a",
                                 MasterUserPassword="not-a-secret-12")
    spec = load()
    seen = inject(rds.client, "CreateDBClusterSnapshot", ["Throttling", "ThrottlingException"])
    s = aurora.create_snapshot(rds, spec, at=now())
    assert s.id.startswith("vigil-") and seen == ["Throttling", "ThrottlingException"] and len(slept) == 2
    inject(rds.client, "CreateDBClusterSnapshot", ["AccessDenied"], status=403)
    with pytest.raises(AwsAccessDenied) as e:
        aurora.create_snapshot(rds, spec, at=now() + timedelta(minutes=1))
    assert "rds:CreateDBClusterSnapshot" in e.value.hint and "platform-prod" in e.value.message


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def backup_cli(cli, monkeypatch):
    from vigil.cli import backup, backup_aws
    from vigil.cli.main import cli as root

    grp = getattr(backup, "backup_group", None)
    if grp is None or "backup" not in root.commands:
        grp = click.Group("backup")
        monkeypatch.setitem(root.commands, "backup", grp)
    backup_aws.register(grp)
    return lambda *a, **kw: cli("backup", *a, **kw)


def test_cli_snapshot_copy_check_restore(world, backup_cli, tmp_path):
    rds, dst, key = world
    f = tmp_path / "vigil.yaml"
    f.write_text(spec_text(key["Arn"]))
    pinned = now().strftime("%Y-%m-%dT%H:%M:%SZ")
    r = backup_cli("aurora", "snapshot", "--copy", "--spec", f, "--json", now=pinned)
    assert r.code == 0, r.err
    d = r.json()
    assert d["snapshot"]["status"] == "available" and d["copy"]["created"] and d["copy"]["copy"]["region"] == DST
    r = backup_cli("aurora", "copy", "--spec", f, "--json")
    assert r.code == 0 and r.json()["created"] is False, r.err
    r = backup_cli("aurora", "check-retention", "--spec", f, "--json", "--at", "now+1h")
    assert r.code == 0, r.out + r.err
    assert [x["region"] for x in r.json()["reports"]] == [SRC, DST] and r.json()["ok"] is True
    r = backup_cli("aurora", "check-retention", "--spec", f, "--at", "now+3d")
    assert r.code == 1 and "PROBLEM" in r.out and "the schedule takes one every 1d" in r.out
    r = backup_cli("aurora", "restore", "--latest", "--spec", f, "--json", now=pinned)
    assert r.code == 0, r.err
    assert r.json()["target_cluster_id"] == "platform-prod-restore" and r.json()["restore_to"] == "latest"
    r = backup_cli("aurora", "restore", "--to", "2020-01-01T00:00:00Z", "--target", "again", "--spec", f)
    assert r.code == 2 and "before the earliest restorable time" in r.err
    r = backup_cli("aurora", "restore", "--to", "now-1h", "--latest", "--spec", f)
    assert r.code == 2
    r = backup_cli("aurora", "prune", "--dry-run", "--at", "now+40d", "--spec", f, "--json")
    assert r.code == 0 and r.json()["snapshots"] == [], "the newest snapshot is never pruned"
    r = backup_cli("aurora", "discard", "--target", "platform-prod-restore", "--spec", f, "--json")
    assert r.code == 0 and r.json()["calls"][-1] == "DeleteDBCluster platform-prod-restore"


def test_cli_missing_cluster_exits_3(aws, backup_cli, tmp_path):
    f = tmp_path / "vigil.yaml"
    f.write_text(spec_text("alias/dr"))
    r = backup_cli("aurora", "check-retention", "--spec", f, "--json")
    assert r.code == 3 and r.json()["error"]["code"] == "aws-not-found"
    r = backup_cli("aurora", "snapshot", "--spec", f)
    assert r.code == 3 and "platform-prod" in r.err and "hint:" in r.err
