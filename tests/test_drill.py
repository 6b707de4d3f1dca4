"""DR drills end to end against a real throwaway PostgreSQL 15 cluster and the real pgBackRest:
the canary ledger, the disaster, the restore into a fresh cluster with archiving off, the verified
write, RTO and RPO in the report; a preflight failure and a failed restore that still write their
reports; `vigil drill history`; and `vigil drill demo` (with the search index rebuilt from its
snapshot plus the outbox)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from pgcluster import PgCluster
from vigil.cli.main import main
from vigil.dr.postgres.ops import engine_for
from vigil.dr.postgres.wal import parse_segment
from vigil.dr.report import verify_bundle
from vigil.spec import load_spec

pytestmark = pytest.mark.postgres

SPEC = """\
version: 1
services: {{db: {{}}}}
backups:
  postgres:
    stanza: drill
    data_dir: {data}
    port: {port}
    socket_dir: {sock}
    config: {base}/pgbackrest.conf
    work_dir: {base}/work
    archive_timeout: 1s
    repos:
      - {{path: {base}/repo1, region: here}}
      - {{path: {base}/repo2, region: there}}
drills:
  - name: primary-loss
    description: the primary is declared lost; restore repo1 to the latest point
    phases:
      canary: {{interval: 250ms, warmup: 3s}}
  - name: region-loss-empty-repo
    scenario: region-loss
    phases:
      canary: {{interval: 250ms, warmup: 1s}}
  - name: pitr-before-any-backup
    target: time
    target_time: "2001-01-01T00:00:00Z"
    phases:
      canary: {{interval: 250ms, warmup: 1s}}
  - name: destroy-me
    phases:
      disaster: {{mode: destroy}}
"""


def vigil(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def env():
    pg = PgCluster(settings={"full_page_writes": "on"})
    base = Path(tempfile.mkdtemp(prefix="vigil-drill-t-"))
    base.chmod(0o755)
    try:
        pg.start()
        spec = base / "vigil.yaml"
        spec.write_text(SPEC.format(data=pg.data_dir, port=pg.port, sock=pg.socket_dir, base=base))
        db = f"sqlite:///{base / 'state.db'}"
        assert main(["backup", "setup", "--spec", str(spec)]) == 1  # restart needed for archive_mode
        pg.restart()
        assert main(["backup", "setup", "--spec", str(spec), "--no-check"]) == 0
        assert main(["backup", "run", "--type", "full", "--repo", "1", "--spec", str(spec), "--db", db]) == 0
        yield pg, base, spec, db
    finally:
        pg.destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_a_drill_that_destroys_needs_to_be_told_twice(env, capsys):
    _, base, spec, db = env
    code, out, err = vigil(capsys, "drill", "run", "destroy-me", "--spec", spec, "--db", db)
    assert code == 2 and "--allow-destroy" in err
    code, _, err = vigil(capsys, "drill", "run", "no-such", "--spec", spec, "--db", db)
    assert code == 2 and "no drill named 'no-such'" in err and "primary-loss" in err


def test_preflight_failure_leaves_the_primary_alone_and_still_reports(env, capsys):
    pg, base, spec, db = env
    code, out, _ = vigil(capsys, "drill", "run", "region-loss-empty-repo", "--spec", spec, "--db", db, "--out", base / "reports", "--json")
    r = json.loads(out)
    assert code == 1 and r["status"] == "failed" and r["repo"] == 2 and r["repo_role"] == "cross-region"
    canary = r["phases"][0]
    assert canary["name"] == "canary" and canary["ok"] is False and "repo2 holds no backup" in canary["error"]
    assert [p["skipped"] for p in r["phases"][1:5]] == [True] * 4 and r["phases"][5]["name"] == "report"
    assert r["rto_seconds"] is None and r["rpo_seconds"] is None and r["disaster_at"] is None
    assert "pg-repo-empty" in {g["id"] for g in r["gaps"]}
    assert pg.running and pg.psql("SELECT 1") == "1"  # nothing was done to the primary
    assert Path(r["files"]["markdown"]).is_file() and verify_bundle(Path(r["report_dir"])) == []


def test_a_failed_restore_still_writes_its_report(env, capsys):
    pg, base, spec, db = env
    code, out, _ = vigil(capsys, "drill", "run", "pitr-before-any-backup", "--spec", spec, "--db", db, "--out", base / "reports", "--json")
    r = json.loads(out)
    assert code == 1 and r["status"] == "failed"
    by = {p["name"]: p for p in r["phases"]}
    assert by["canary"]["ok"] and by["disaster"]["ok"] and by["disaster"]["evidence"]["mode"] == "declare"
    assert by["restore"]["ok"] is False and by["restore"]["error"]
    assert by["restore"]["evidence"]["target_time"] == "2001-01-01T00:00:00Z"
    assert by["write_check"]["skipped"] and by["search"]["skipped"]
    assert r["rto_seconds"] is None and r["verdicts"]["rto"] == "unknown"
    assert r["gaps"][0]["id"] == "drill-restore-failed" and r["gaps"][0]["severity"] == "critical"
    bundle = Path(r["report_dir"])
    md = (bundle / "report.md").read_text()
    assert "**FAILED**" in md and "drill-restore-failed" in md and "| Restore into a fresh cluster |" in md
    assert (bundle / "evidence" / "pgbackrest-restore.conf").is_file() and verify_bundle(bundle) == []
    assert pg.running  # declare mode: the primary was never touched


def test_drill_end_to_end_measures_rto_and_rpo_and_never_archives_into_the_repository(env, capsys):
    pg, base, spec, db = env
    pgb = engine_for(load_spec(spec))
    before = set(pgb.archive_files(1))
    code, out, _ = vigil(capsys, "drill", "run", "primary-loss", "--spec", spec, "--db", db, "--out", base / "reports", "--json")
    r = json.loads(out)
    assert code == 0, json.dumps(r["phases"], indent=1)[:3000]
    assert r["status"] == "passed" and r["scenario"] == "primary-loss" and r["repo"] == 1
    # the contract fields
    assert r["rto_seconds"] > 0 and r["rpo_seconds"] >= 0
    assert r["objectives"] == {"rto_seconds": 14400.0, "rpo_seconds": 900.0, "rebuild_seconds": 3600.0}
    assert [p["name"] for p in r["phases"]] == ["canary", "disaster", "restore", "write_check", "search", "report"]
    for p in r["phases"]:
        assert {"name", "start", "end", "ok", "evidence"} <= set(p) and p["start"] <= p["end"]
    assert all({"id", "severity", "message"} <= set(g) for g in r["gaps"])
    by = {p["name"]: p for p in r["phases"]}
    # RTO exactly as defined: first verified write minus the disaster
    from vigil.clock import parse_time
    from vigil.dr.rpo import seconds_between

    assert abs(float(seconds_between(parse_time(r["disaster_at"]), parse_time(r["first_verified_write_at"]))) - r["rto_seconds"]) < 1e-6
    # RPO exactly as defined: last canary committed before the disaster minus the newest recovered
    last, newest = r["rpo"]["last_committed_before_disaster"], r["rpo"]["newest_recovered"]
    assert last["seq"] >= newest["seq"] >= 1 and by["canary"]["evidence"]["rows_before_disaster"] >= 5
    canary = max(0.0, float(seconds_between(parse_time(newest["committed_at"]), parse_time(last["committed_at"]))))
    assert r["rpo"]["canary"]["seconds"] == pytest.approx(canary)
    # the reported RPO is the worse of the canary figure and the replay figure
    replay = max(0.0, float(seconds_between(parse_time(r["rpo_cross_check"]["last_replayed_commit"]), parse_time(last["committed_at"]))))
    assert r["rpo"]["replay_seconds"] == pytest.approx(replay) and r["rpo_seconds"] == pytest.approx(max(canary, replay))
    assert r["rpo"]["exact"] is True and r["verdicts"]["rpo"] == "met"
    assert r["rpo_cross_check"]["consistent"] is True and r["rpo_cross_check"]["last_replayed_commit"]
    # the restore read the repository as it was at the disaster, and replayed it to its end
    snap = by["disaster"]["evidence"]["repository_snapshot"]
    assert snap["method"] == "hardlink" and snap["files"] > 0 and by["restore"]["evidence"]["repository"] == snap["path"]
    assert r["recovery_end"]["ok"] is True and by["restore"]["evidence"]["archive_at_disaster"]["ok"] is True
    assert r["rto"]["measured_seconds"] == r["rto_seconds"] and r["rto"]["detection_delay_seconds"] == 0
    # the restored cluster never archives into the primary's repository
    assert by["restore"]["evidence"]["restored_archive_mode"] == "off" and by["restore"]["evidence"]["timeline"] == 2
    conf = (Path(r["report_dir"]) / "evidence" / "pgbackrest-restore.conf").read_text()
    assert "repo2" not in conf and "pg1-port" not in conf and f"repo1-path={snap['path']}" in conf
    after = set(pgb.archive_files(1))
    new_tl = [f for f in after - before if (parse_segment(f) or (0,))[0] >= 2 or ".history" in f]
    assert new_tl == [], new_tl
    assert by["search"]["skipped"] and "backups.search" in by["search"]["evidence"]["skipped"]
    assert "write" in by["write_check"]["evidence"] and Path(r["report_dir"], "evidence", "row-counts.json").is_file()
    assert verify_bundle(Path(r["report_dir"])) == []
    html = Path(r["files"]["html"]).read_text()
    assert "<h2>Gap register</h2>" in html and "RTO (disaster to first verified write)" in html
    assert pg.running  # declare mode
    # history: every run, newest first, with a trend once two runs measured something
    code, out, _ = vigil(capsys, "drill", "history", "--spec", spec, "--db", db, "--json")
    h = json.loads(out)
    assert code == 0 and [x["name"] for x in h["runs"]][:3] == ["primary-loss", "pitr-before-any-backup", "region-loss-empty-repo"]
    assert h["runs"][0]["status"] == "passed" and h["runs"][0]["rto_seconds"] == pytest.approx(r["rto_seconds"])
    assert [p["name"] for p in h["runs"][0]["phases"]] == [p["name"] for p in r["phases"]]
    code, out, _ = vigil(capsys, "drill", "history", "--spec", spec, "--db", db)
    assert code == 0 and "primary-loss" in out and "passed" in out


def test_drill_demo_runs_the_whole_thing_and_cleans_up(capsys, tmp_path, monkeypatch):
    # a temp dir of its own (traversable by the postgres user), so demos run by other processes at the
    # same time cannot make its cleanup look wrong
    private = Path(tempfile.mkdtemp(prefix="vigil-demo-t-"))
    private.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    try:
        code, out, err = vigil(capsys, "drill", "demo", "--out", tmp_path / "out", "--warmup", "3", "--json")
        left = sorted(p.name for p in private.iterdir())
    finally:
        shutil.rmtree(private, ignore_errors=True)
    r = json.loads(out)
    assert code == 0, (err[-3000:], json.dumps(r.get("phases"), indent=1)[:3000])
    assert r["status"] == "passed" and r["scenario"] == "region-loss" and r["repo"] == 2
    assert r["rto_seconds"] > 0 and r["rpo_seconds"] is not None and r["rpo_seconds"] <= r["objectives"]["rpo_seconds"]
    by = {p["name"]: p for p in r["phases"]}
    assert by["disaster"]["evidence"]["mode"] == "destroy" and by["disaster"]["evidence"]["data_dir_destroyed"]
    s = by["search"]
    assert s["ok"] and s["evidence"]["check"]["ok"] and s["evidence"]["rebuild"]["snapshot_watermark"] > 0
    assert s["evidence"]["rebuild"]["applied"] > 0  # rows written after the snapshot were re-seeded from the outbox
    assert r["rebuild_seconds"] is not None and r["verdicts"]["rebuild"] == "met"
    assert Path(r["report_dir"]).parent == tmp_path / "out" and verify_bundle(Path(r["report_dir"])) == []
    assert left == []  # the throwaway cluster, repositories and restore are gone
