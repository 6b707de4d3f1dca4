"""``vigil backup s3-policy ...`` and ``vigil backup aurora ...``: the AWS backup commands.

Attached to the ``vigil backup`` group (``vigil.cli.backup.backup_group``), which imports this
module at its end. Credentials come from the standard AWS chain, never from the spec.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import click

from vigil import exitcodes
from vigil.cli.common import at_option, emit, env, json_option, spec_option
from vigil.clock import FakeClock, isoformat
from vigil.errors import UsageError


def _sleep() -> Callable[[float], None]:
    """A pinned clock (VIGIL_NOW) moves on its own during waits; the system clock waits for real."""
    clock = env().clock
    if isinstance(clock, FakeClock):
        fake = clock

        def tick(s: float) -> None:
            fake.tick(s)

        return tick
    return time.sleep


def _progress(msg: str) -> None:
    if not env().json_mode:
        click.echo(msg, err=True)


def _aws(service: str, region: str | None, **kw: Any):
    from vigil.dr.aws.client import Aws, make_client

    return Aws(make_client(service, region, **kw))


def _aurora_spec():
    b = env().loaded.spec.backups
    if b is None or b.aurora is None:
        raise UsageError(
            f"{env().spec_path} has no backups.aurora section",
            hint="add backups: {aurora: {cluster_id: ..., region: ..., retention_days: 35, cross_region: {region: ..., kms_key_id: ...}}}",
        )
    return b.aurora


def _s3_spec():
    b = env().loaded.spec.backups
    if b is None or b.s3 is None:
        raise UsageError(
            f"{env().spec_path} has no backups.s3 section",
            hint="add backups: {s3: {buckets: [{name: ..., critical: true, versioning: true, object_lock: {mode: COMPLIANCE, days: 35}}]}}",
        )
    return b.s3


def _s3_client(spec):
    return _aws("s3", spec.region, endpoint_url=spec.endpoint_url, allow_link_local=spec.endpoint_allow_link_local)


# --- s3-policy ---------------------------------------------------------------------------------


@click.group("s3-policy")
def s3_policy_group() -> None:
    """Object storage policy: versioning, lifecycle and Object Lock of the spec's buckets."""


@s3_policy_group.command("apply")
@click.option("--bucket", "buckets", multiple=True, metavar="NAME", help="only this bucket (repeatable; default every bucket in the spec)")
@click.option("--dry-run", is_flag=True, help="show the S3 calls that would be made; change nothing")
@click.option("--create-missing", is_flag=True, help="create buckets that do not exist (with Object Lock when the spec asks for it)")
@click.option("--confirm-irreversible", is_flag=True, help="allow steps that cannot be undone (enabling Object Lock on an existing bucket)")
@spec_option
@json_option
def s3_apply_cmd(buckets: tuple[str, ...], dry_run: bool, create_missing: bool, confirm_irreversible: bool) -> int:
    """Make the buckets match backups.s3 with the fewest S3 calls; exit 0 when they do afterwards.

    Every bucket is read and planned before anything changes; a missing bucket (exit 3), a spec
    S3 cannot follow (exit 2) or an unconfirmed irreversible step (exit 2) stops the whole run.
    """
    from vigil.dr.aws import s3policy

    spec = _s3_spec()
    res = s3policy.apply(_s3_client(spec), spec, buckets=list(buckets) or None, dry_run=dry_run,
                         create_missing=create_missing, confirm_irreversible=confirm_irreversible)

    def text() -> None:
        for p in res.plans:
            verb = "would call" if dry_run else "called"
            if not p.calls and not p.blockers:
                click.echo(f"{p.bucket}: in policy, nothing to do")
            for c in p.calls:
                mark = " [IRREVERSIBLE]" if c.irreversible else ""
                click.echo(f"{p.bucket}: {verb} {c.operation}{mark}: {c.reason}")
            for b in p.blockers:
                click.echo(f"{p.bucket}: blocked: {b}")
        if not dry_run:
            left = [d for a in res.after for d in a.drifts]
            for d in left:
                click.echo(f"still drifting: {d}")
            click.echo("in policy" if not left else f"{len(left)} drift(s) remain")

    emit(res.to_dict(), text)
    if dry_run:
        return exitcodes.OK
    return exitcodes.OK if res.in_policy else exitcodes.NO


@s3_policy_group.command("audit")
@click.option("--bucket", "buckets", multiple=True, metavar="NAME", help="only this bucket (repeatable; default every bucket in the spec)")
@spec_option
@json_option
def s3_audit_cmd(buckets: tuple[str, ...]) -> int:
    """Compare each bucket with backups.s3 field by field; exit 1 on any drift."""
    from vigil.dr.aws import s3policy

    spec = _s3_spec()
    audits = s3policy.audit(_s3_client(spec), spec, buckets=list(buckets) or None)
    drifts = [d for a in audits for d in a.drifts]

    def text() -> None:
        for a in audits:
            if not a.drifts:
                click.echo(f"{a.bucket}: in policy")
            for d in a.drifts:
                click.echo(f"DRIFT {d}")
        click.echo(f"{len(audits)} bucket(s), {len(drifts)} drift(s)" + ("; `vigil backup s3-policy apply --dry-run` shows the fix" if drifts else ""))

    emit({"in_policy": not drifts, "drifts": [d.to_dict() for d in drifts], "buckets": [a.to_dict() for a in audits]}, text)
    return exitcodes.NO if drifts else exitcodes.OK


# --- aurora ------------------------------------------------------------------------------------


@click.group("aurora")
def aurora_group() -> None:
    """Aurora: snapshots, cross-region copies, point-in-time restore, retention."""


@aurora_group.command("snapshot")
@click.option("--wait", is_flag=True, help="wait until the snapshot is available (bounded by restore.timeout)")
@click.option("--copy", "copy_", is_flag=True, help="then copy it to cross_region (implies --wait)")
@spec_option
@json_option
def aurora_snapshot_cmd(wait: bool, copy_: bool) -> int:
    """Take a manual cluster snapshot now, tagged as vigil's (run it daily from a scheduler)."""
    from vigil.dr.aws import aurora

    spec = _aurora_spec()
    e = env()
    rds = _aws("rds", spec.region)
    snap = aurora.create_snapshot(rds, spec, at=e.clock.now(), wait=wait or copy_, clock=e.clock, sleep=_sleep(), progress=_progress)
    out: dict[str, Any] = {"snapshot": snap.to_dict(), "copy": None}
    if copy_:
        if spec.cross_region is None:
            raise UsageError("--copy needs backups.aurora.cross_region", hint="add cross_region: {region: ..., kms_key_id: ...}")
        dst = _aws("rds", spec.cross_region.region)
        res = aurora.copy_snapshot(dst, spec, snap, wait=True, clock=e.clock, sleep=_sleep(), progress=_progress)
        out["copy"] = res.to_dict()

    def text() -> None:
        click.echo(f"snapshot {snap.id} of {spec.cluster_id} in {spec.region}: {snap.status}")
        if out["copy"]:
            c = out["copy"]["copy"]
            click.echo(f"copy {c['id']} in {c['region']}: {c['status']}")

    emit(out, text)
    return exitcodes.OK


@aurora_group.command("copy")
@click.option("--snapshot", "snapshot_id", metavar="ID", help="the snapshot to copy (default: the newest available one)")
@click.option("--wait", is_flag=True, help="wait until the copy is available (bounded by restore.timeout)")
@spec_option
@json_option
def aurora_copy_cmd(snapshot_id: str | None, wait: bool) -> int:
    """Copy a snapshot to cross_region.region, encrypted with cross_region.kms_key_id; idempotent."""
    from vigil.dr.aws import aurora

    spec = _aurora_spec()
    if spec.cross_region is None:
        raise UsageError("backups.aurora has no cross_region", hint="add cross_region: {region: us-west-2, kms_key_id: <a key in us-west-2>}")
    e = env()
    rds = _aws("rds", spec.region)
    snaps = aurora.list_snapshots(rds, spec.cluster_id, region=spec.region)
    if snapshot_id:
        src = next((s for s in snaps if s.id == snapshot_id), None)
        if src is None:
            raise UsageError(f"snapshot {snapshot_id!r} of {spec.cluster_id} not found in {spec.region}",
                             hint="`vigil backup aurora check-retention` lists the snapshots")
    else:
        src = aurora.newest_snapshot(snaps)
        if src is None:
            raise UsageError(f"{spec.cluster_id} has no available snapshot in {spec.region} to copy",
                             hint="take one: `vigil backup aurora snapshot --wait`")
    dst = _aws("rds", spec.cross_region.region)
    res = aurora.copy_snapshot(dst, spec, src, wait=wait, clock=e.clock, sleep=_sleep(), progress=_progress)
    emit(res.to_dict(), f"{'copied' if res.created else 'already copied'}: {src.id} ({src.region}) -> {res.copy.id} ({res.copy.region}): {res.copy.status}")
    return exitcodes.OK


@aurora_group.command("restore")
@click.option("--to", "to", metavar="TIME", help="restore to this time (RFC 3339 or now-1h); default: the latest restorable time")
@click.option("--latest", is_flag=True, help="restore to the latest restorable time (the default)")
@click.option("--target", metavar="ID", help="the new cluster's identifier (default restore.target_cluster_id or <cluster>-restore)")
@click.option("--from-snapshot", "from_snapshot", metavar="ID", help="restore this snapshot instead of a point in time")
@click.option("--region", metavar="REGION", help="with --from-snapshot: the snapshot's region (e.g. the cross region, for a region loss)")
@click.option("--no-wait", is_flag=True, help="start the restore and return; do not wait for the cluster and writer")
@spec_option
@json_option
def aurora_restore_cmd(to: str | None, latest: bool, target: str | None, from_snapshot: str | None, region: str | None, no_wait: bool) -> int:
    """Restore into a new cluster plus its writer instance and report the timeline; never touches the source."""
    from vigil.dr.aws import aurora

    spec = _aurora_spec()
    e = env()
    if to and latest:
        raise UsageError("give --to TIME or --latest, not both")
    if from_snapshot and (to or latest):
        raise UsageError("--from-snapshot restores the snapshot's own point; drop --to/--latest")
    if region and not from_snapshot:
        raise UsageError("--region goes with --from-snapshot; a point-in-time restore runs in the cluster's region")
    if from_snapshot:
        rds = _aws("rds", region or spec.region)
        res = aurora.restore_from_snapshot(rds, spec, snapshot=from_snapshot, clock=e.clock, target=target, wait=not no_wait,
                                           sleep=_sleep(), progress=_progress)
    else:
        rds = _aws("rds", spec.region)
        when = e.at(to) if to else None
        res = aurora.restore_point_in_time(rds, spec, to=when, clock=e.clock, target=target, wait=not no_wait,
                                           sleep=_sleep(), progress=_progress)

    def text() -> None:
        click.echo(f"restored {res.source} -> {res.target_cluster_id} (writer {res.writer_instance_id}) in {res.region}")
        click.echo(f"  point: {isoformat(res.restore_to) if res.restore_to else 'latest restorable time'}")
        if res.seconds is not None:
            cluster_at = isoformat(res.cluster_available) if res.cluster_available else "-"
            writer_at = isoformat(res.writer_available) if res.writer_available else "-"
            click.echo(f"  took {res.seconds:.0f}s (cluster at {cluster_at}, writer at {writer_at})")
        else:
            click.echo("  started; not waited for (--no-wait)")
        if res.endpoint:
            click.echo(f"  endpoint: {res.endpoint}")

    emit(res.to_dict(), text)
    return exitcodes.OK


@aurora_group.command("check-retention")
@at_option
@spec_option
@json_option
def aurora_check_retention_cmd(at: str | None) -> int:
    """Check the snapshots (and the cross-region copies) against the schedule and retention; exit 1 on a problem."""
    from vigil.dr.aws import aurora

    spec = _aurora_spec()
    e = env()
    rds = _aws("rds", spec.region)
    dst = _aws("rds", spec.cross_region.region) if spec.cross_region else None
    state = aurora.observe(rds, spec, dst=dst)
    if not state.exists:
        from vigil.dr.aws.client import AwsNotFound

        raise AwsNotFound(f"cluster {spec.cluster_id} not found in {spec.region}",
                          hint="check backups.aurora.cluster_id, region and the AWS account in use", service="rds",
                          operation="DescribeDBClusters", aws_code="DBClusterNotFoundFault")
    reports = aurora.retention_reports(state, spec, at=e.at(at))
    ok = all(r.ok for r in reports)

    def text() -> None:
        for r in reports:
            newest = f"newest {r.newest.id}, {r.newest_age_seconds // 3600 if r.newest_age_seconds is not None else '?'}h old" if r.newest else "no snapshot"
            click.echo(f"{r.region}: {r.considered} snapshot(s), {newest}: {'OK' if r.ok else 'PROBLEM'}")
            for p in r.problems:
                click.echo(f"  - {p.message}")
            if r.expired:
                click.echo(f"  {len(r.expired)} vigil snapshot(s) past {r.retention_days} days (`vigil backup aurora prune` deletes them)")

    emit({"ok": ok, "reports": [r.to_dict() for r in reports]}, text)
    return exitcodes.OK if ok else exitcodes.NO


@aurora_group.command("prune")
@click.option("--dry-run", is_flag=True, help="list what would be deleted; delete nothing")
@at_option
@spec_option
@json_option
def aurora_prune_cmd(dry_run: bool, at: str | None) -> int:
    """Delete vigil's manual snapshots and copies older than their retention (never the newest one)."""
    from vigil.dr.aws import aurora

    spec = _aurora_spec()
    e = env()
    when = e.at(at)
    rds = _aws("rds", spec.region)
    out = []
    deleted = aurora.prune(rds, aurora.list_snapshots(rds, spec.cluster_id, region=spec.region, manual_only=True), at=when,
                           retention_days=spec.retention_days, dry_run=dry_run)
    out += deleted
    if spec.cross_region is not None:
        dst = _aws("rds", spec.cross_region.region)
        out += aurora.prune(dst, aurora.list_snapshots(dst, spec.cluster_id, region=spec.cross_region.region, manual_only=True),
                            at=when, retention_days=spec.copy_retention_days, dry_run=dry_run)

    def text() -> None:
        for s in out:
            click.echo(f"{'would delete' if dry_run else 'deleted'} {s.id} ({s.region}, {isoformat(s.created) if s.created else '?'})")
        click.echo(f"{len(out)} snapshot(s) {'to delete' if dry_run else 'deleted'}")

    emit({"dry_run": dry_run, "at": isoformat(when), "snapshots": [s.to_dict() for s in out]}, text)
    return exitcodes.OK


@aurora_group.command("discard")
@click.option("--target", required=True, metavar="ID", help="the restored cluster to delete (must carry vigil's restore tag)")
@click.option("--region", metavar="REGION", help="its region (default the cluster's region)")
@spec_option
@json_option
def aurora_discard_cmd(target: str, region: str | None) -> int:
    """Delete a cluster that vigil restored (instances, then the cluster; no final snapshot)."""
    from vigil.dr.aws import aurora

    spec = _aurora_spec()
    calls = aurora.discard_restore(_aws("rds", region or spec.region), spec, target=target)
    emit({"target": target, "calls": calls}, "\n".join(calls))
    return exitcodes.OK


# --- attach ------------------------------------------------------------------------------------

GROUPS = (s3_policy_group, aurora_group)


def register(group: click.Group) -> None:
    """Add the AWS subcommands to ``group`` (idempotent)."""
    for g in GROUPS:
        if g.name not in group.commands:
            group.add_command(g)


def _attach() -> None:
    from vigil.cli import backup

    group = getattr(backup, "backup_group", None)
    if group is not None:
        register(group)


_attach()
