"""What a drill concludes, as pure functions: the reported RPO is the worse of the canary and replay
figures and a lower bound never meets an objective; where recovery ended against the archive at
the disaster; pgBackRest's archive-get errors; critical gaps fail the drill; the declared detection
delay is part of the RTO. Plus the repository snapshot on a real filesystem, and the shared
``sha256_file``. The observed failures of issue 14 are here with their own numbers."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.dr.drill.outcome import DrillFacts, Phase, conclude
from vigil.dr.drill.snapshot import RepoSnapshotError, snapshot_repository
from vigil.dr.drill_spec import DrillSpec
from vigil.dr.postgres.pgbackrest import (
    PgPaths,
    archive_id_from_info_file,
    backup_for_target,
    backups_from_info_file,
    error_lines,
    render_config,
)
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.dr.postgres.wal import parse_history, recovery_end, segment_before
from vigil.dr.report import render_html, render_markdown
from vigil.dr.rpo import ReplayCheck, Rpo, replay_cross_check, reported_rpo, rpo, verdict
from vigil.fileutil import sha256_file

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


# --- the reported RPO ---------------------------------------------------------------------------------


def test_the_issues_numbers_a_lower_bound_of_11s_and_a_replay_figure_of_46s_report_46s():
    # canary table absent after recovery: the canary says "at least 11 s"; the last replayed commit says 46 s
    canary = rpo(at(100), None, ledger_started=at(89))
    assert canary.seconds == 11 and canary.exact is False
    cross = replay_cross_check(at(100), None, at(54))
    r = reported_rpo(canary, cross)
    assert r.seconds == 46 and r.exact is True and r.source == "replay"
    assert verdict(r.seconds, Decimal(15), exact=r.exact) == "missed"
    # before: the lower bound alone was compared with the objective and "met" it
    assert verdict(canary.seconds, Decimal(15), exact=canary.exact) == "unknown"


def test_reported_rpo_takes_the_worse_figure_and_keeps_a_lower_bound_a_lower_bound():
    exact = Rpo(Decimal(3), True, "c", "canary")
    bound = Rpo(Decimal(20), False, "c", "canary")
    assert reported_rpo(exact, ReplayCheck(True, Decimal(1), "r")).seconds == 3  # canary worse
    assert reported_rpo(exact, ReplayCheck(True, Decimal(9), "r")).source == "replay"
    worse_bound = reported_rpo(bound, ReplayCheck(None, Decimal(9), "r"))
    assert worse_bound.seconds == 20 and worse_bound.exact is False and "lower bound" in worse_bound.note
    tie = reported_rpo(Rpo(Decimal(9), False, "c", "canary"), ReplayCheck(None, Decimal(9), "r"))
    assert tie.exact is True and tie.source == "replay"  # a measurement equal to the bound is a measurement
    none = Rpo(None, False, "nothing", None)
    assert reported_rpo(none, ReplayCheck(None, None, "r")) is none


@given(st.decimals(0, 10**6, places=6), st.decimals(0, 10**6, places=6), st.booleans())
def test_the_reported_rpo_is_never_below_either_figure(c, p, exact):
    r = reported_rpo(Rpo(c, exact, "c", "canary"), ReplayCheck(True, p, "r"))
    assert r.seconds == max(c, p) and r.seconds >= c and r.seconds >= p
    assert r.exact == (p >= c or exact)


def test_a_lower_bound_never_meets_an_objective():
    assert verdict(Decimal(1), Decimal(15), exact=False) == "unknown"
    assert verdict(Decimal(16), Decimal(15), exact=False) == "missed"
    assert verdict(Decimal(15), Decimal(15)) == "met" and verdict(None, Decimal(1)) == "unknown"


# --- where recovery ended ------------------------------------------------------------------------------


def test_history_and_the_segment_recovery_read_last():
    text = "1\t0/6000000\tno recovery target specified\n\n2\t0/9000028\tbefore 2026-11-01\n"
    assert parse_history(text) == [(1, "0/6000000", "no recovery target specified"), (2, "0/9000028", "before 2026-11-01")]
    assert segment_before("0/6000000", 1) == "000000010000000000000005"  # a switch point at a boundary: the previous segment
    assert segment_before("0/6000028", 1) == "000000010000000000000006"
    assert segment_before("1/0", 3) == "0000000300000000000000FF"


def test_recovery_that_reached_the_end_of_the_archive():
    e = recovery_end("000000010000000000000008", "1\t0/9000000\tno recovery target specified\n")
    assert e.ok is True and e.reached == "000000010000000000000008"
    # a record spanning into a segment that was never archived ends recovery inside the last one
    assert recovery_end("000000010000000000000008", "1\t0/8FFFF00\tx\n").ok is True


def test_recovery_that_stopped_at_a_hole_names_the_segment():
    # observed: segment 06 missing (or unreadable), the archive ended at 08; recovery stopped after 05
    e = recovery_end("000000010000000000000008", "1\t0/6000000\tno recovery target specified\n")
    assert e.ok is False and e.reached == "000000010000000000000005" and e.switch_lsn == "0/6000000"
    assert "recovery stopped at 000000010000000000000005" in e.note and "ended at 000000010000000000000008" in e.note
    assert "3 segment(s)" in e.note


def test_recovery_end_unknown_is_not_ok():
    assert recovery_end(None, "1\t0/6000000\tx").ok is None
    assert recovery_end("000000010000000000000008", None).ok is None
    assert recovery_end("000000010000000000000008", "garbage").ok is None


RESTORED_LOG = """\
2026-12-02 13:01:18.474 UTC [21740]  LOG:  restored log file "000000010000000000000005" from archive
2026-12-02 13:01:18.590 P00  ERROR: [042]: unable to get 000000010000000000000006:
                                    repo1: 15-1/0000000100000000/000000010000000000000006-982b5b46.gz [FormatError] unexpected eof in compressed data
2026-12-02 13:01:18.592 UTC [21740]  LOG:  completed backup recovery with redo LSN 0/2000028 and end LSN 0/3000050
2026-12-02 13:01:18.667 P00  ERROR: [042]: unable to get 000000010000000000000006:
                                    repo1: 15-1/0000000100000000/000000010000000000000006-982b5b46.gz [FormatError] unexpected eof in compressed data
2026-12-02 13:01:18.670 UTC [21740]  LOG:  redo done at 0/5000090
2026-12-02 13:01:19.000 UTC [21740] postgres ERROR:  relation "nope" does not exist
"""


def test_archive_get_errors_are_read_from_the_restored_servers_log():
    errs = error_lines(RESTORED_LOG)
    assert errs == ["ERROR: [042]: unable to get 000000010000000000000006: repo1: 15-1/0000000100000000/000000010000000000000006-982b5b46.gz "
                    "[FormatError] unexpected eof in compressed data"]  # once, with its cause; PostgreSQL's own ERRORs are not pgBackRest's
    assert error_lines("LOG:  restored log file\n") == []


BACKUP_INFO = """\
[backrest]
backrest-format=5

[backup:current]
20261202-130106F={"backup-archive-start":"000000010000000000000002","backup-archive-stop":"000000010000000000000003","backup-error":false,"backup-timestamp-start":1796216466,"backup-timestamp-stop":1796216468,"backup-type":"full","db-id":1}
20261202-140000I={"backup-archive-start":"000000010000000000000010","backup-archive-stop":"000000010000000000000010","backup-error":false,"backup-prior":"20261202-130106F","backup-timestamp-start":1796220000,"backup-timestamp-stop":1796220005,"backup-type":"incr","db-id":1}
20261202-150000I={"backup-archive-start":"000000010000000000000020","backup-archive-stop":"000000010000000000000020","backup-error":true,"backup-timestamp-start":1796223600,"backup-timestamp-stop":1796223605,"backup-type":"incr","db-id":1}

[db]
db-id=1
db-version="15"
"""


def test_the_snapshots_backup_and_archive_info_files():
    backups = backups_from_info_file(BACKUP_INFO, 1)
    assert [b.label for b in backups] == ["20261202-130106F", "20261202-140000I", "20261202-150000I"]
    assert backup_for_target(backups).label == "20261202-140000I"  # the newest good one
    assert backup_for_target(backups, datetime(2026, 12, 2, 13, 30, tzinfo=timezone.utc)).wal_start == "000000010000000000000002"
    assert backup_for_target(backups, datetime(2020, 1, 1, tzinfo=timezone.utc)) is None
    assert archive_id_from_info_file('[db]\ndb-id=2\ndb-version="15"\n') == "15-2" and archive_id_from_info_file("") is None


def test_restore_config_can_point_the_repository_at_the_snapshot():
    pg = PostgresBackupSpec.model_validate({"stanza": "m", "data_dir": "/d", "repos": [{"path": "/r1"}, {"path": "/r2"}]})
    text = render_config(PgPaths.from_spec(pg, "/spec"), repos=[2], repo_paths={2: Path("/work/snap")}, with_connection=False)
    assert "repo2-path=/work/snap" in text and "repo1" not in text and "/r2" not in text


# --- the conclusion --------------------------------------------------------------------------------------


def facts(**over) -> DrillFacts:
    spec = over.pop("spec", {"name": "q", "objectives": {"rpo": "15s"}})
    f = DrillFacts(drill=DrillSpec.model_validate(spec), repo=1, repo_role="local", started_at=at(0))
    f.phases = [Phase(n, n, at(0), at(1), ok=True) for n in ("canary", "disaster", "restore", "write_check")]
    f.phases.append(Phase("search", "search", at(1), at(1), skipped=True, evidence={"skipped": "no backups.search"}))
    f.disaster_at, f.first_write_at = at(100), at(130)
    f.ledger_first, f.ledger_last = (1, at(89)), (45, at(99.8))
    f.newest_recovered, f.replay_at = (44, at(99.5)), at(99.55)
    f.backups_in_repo, f.newest_backup_stop = 1, at(-60)
    f.recovery_end_due = True
    f.scope = {"stanza": "s", "database": "d", "primary": {"data_dir": "/d", "port": 5432},
               "repositories": [{"repo": 1, "path": "/r1", "role": "local", "region": None}]}
    f.recovery_end = recovery_end("000000010000000000000008", "1\t0/9000000\tno recovery target specified\n")
    for k, v in over.items():
        setattr(f, k, v)
    return f


def judge(f: DrillFacts) -> dict:
    return conclude(f, spec_gaps=[], backup_interval=Decimal(86400), finished_at=at(140))


def test_a_clean_drill_passes():
    r = judge(facts())
    assert r["status"] == "passed" and r["rpo_seconds"] == pytest.approx(0.3) and r["rpo"]["source"] == "canary"
    assert r["rto_seconds"] == 30 and r["rto"] == {"measured_seconds": 30.0, "detection_delay_seconds": 0.0,
                                                   "covers": "disaster to the first verified write on the recovered database, plus the declared detection delay"}
    assert r["recovery_end"]["ok"] is True and not [g for g in r["gaps"] if g["severity"] == "critical"]


def test_observed_46s_loss_behind_an_11s_lower_bound_fails():
    r = judge(facts(newest_recovered=None, ledger_first=(1, at(89)), ledger_last=(45, at(100)), replay_at=at(54),
                    recovery_end=recovery_end("000000010000000000000009", "1\t0/9000000\tx\n")))
    assert r["status"] == "failed" and r["rpo_seconds"] == 46 and r["rpo"]["source"] == "replay"
    assert r["rpo"]["canary"] == {"seconds": 11.0, "exact": False, "note": r["rpo"]["canary"]["note"], "source": "canary"}
    ids = {g["id"]: g for g in r["gaps"]}
    assert ids["rpo-missed"]["severity"] == "critical" and ids["drill-recovery-stopped-early"]["severity"] == "critical"
    assert "000000010000000000000008" in ids["drill-recovery-stopped-early"]["message"]


def test_a_lower_bound_alone_within_the_objective_fails_with_a_gap():
    r = judge(facts(newest_recovered=None, replay_at=None))
    assert r["rpo_seconds"] == pytest.approx(10.8) and r["rpo"]["exact"] is False and r["verdicts"]["rpo"] == "unknown"
    assert r["status"] == "failed" and "rpo-lower-bound" in {g["id"] for g in r["gaps"]}
    assert "(at least)" in render_markdown({**r, "evidence": []})


def test_an_archive_get_failure_fails_a_drill_whose_numbers_are_fine():
    r = judge(facts(archive_get_errors=error_lines(RESTORED_LOG)))
    assert r["verdicts"] == {"rto": "met", "rpo": "met", "rebuild": "unknown"}
    g = next(g for g in r["gaps"] if g["id"] == "drill-archive-get-failed")
    assert r["status"] == "failed" and g["severity"] == "critical" and "unable to get 000000010000000000000006" in g["message"]


def test_an_unknown_archive_end_fails_and_a_time_target_is_not_checked():
    r = judge(facts(recovery_end=recovery_end("000000010000000000000008", None)))
    assert r["status"] == "failed" and "drill-recovery-end-unknown" in {g["id"] for g in r["gaps"]}
    r = judge(facts(recovery_end_due=False, recovery_end=None))
    assert r["status"] == "passed" and r["recovery_end"] is None


def test_an_unreachable_repository_is_critical():
    f = facts(repo_unreachable="repo2 (/r2) could not be read: [PathOpenError] ... [13] Permission denied")
    f.phases[0].ok = False
    g = next(g for g in judge(f)["gaps"] if g["id"] == "drill-repo-unreachable")
    assert g["severity"] == "critical" and "Permission denied" in g["message"]


def test_the_declared_detection_delay_is_part_of_the_rto():
    spec = {"name": "q", "objectives": {"rto": "10m", "rpo": "15s"}, "phases": {"disaster": {"detection_delay": "9m40s"}}}
    r = judge(facts(spec=spec))
    assert r["rto"]["measured_seconds"] == 30 and r["rto"]["detection_delay_seconds"] == 580 and r["rto_seconds"] == 610
    assert r["verdicts"]["rto"] == "missed" and r["status"] == "failed" and "rto-missed" in {g["id"] for g in r["gaps"]}
    md, html = render_markdown({**r, "evidence": []}), render_html({**r, "evidence": []})
    assert "plus 9m40s of declared detection and decision delay" in md and "are not measured by the drill" in html
    assert any("declared detection and decision delay of 580s" in o for o in r["observations"])
    with pytest.raises(ValueError):
        DrillSpec.model_validate({"name": "q", "phases": {"disaster": {"detection_delay": "-1s"}}})


def test_report_says_where_recovery_stopped():
    r = judge(facts(recovery_end=recovery_end("000000010000000000000008", "1\t0/6000000\tx\n")))
    md = render_markdown({**r, "evidence": []})
    assert "Archive end: recovery stopped at 000000010000000000000005" in md


# --- the repository snapshot -------------------------------------------------------------------------------


def test_snapshot_is_frozen_at_its_instant(tmp_path):
    repo = tmp_path / "repo"
    seg = repo / "archive/s/15-1/0000000100000000"
    seg.mkdir(parents=True)
    (repo / "archive/s/archive.info").write_text('[db]\ndb-id=1\ndb-version="15"\n')
    (seg / "000000010000000000000002-aa.gz").write_bytes(b"two")
    (seg / "000000010000000000000003-bb.gz.pgbackrest.tmp").write_bytes(b"half")  # being pushed: not complete
    bk = repo / "backup/s/20261202-130106F"
    bk.mkdir(parents=True)
    (bk / "backup.manifest").write_text("m")
    (repo / "backup/s/backup.info").write_text(BACKUP_INFO)
    os.symlink("20261202-130106F", repo / "backup/s/latest")
    snap = snapshot_repository(repo, tmp_path / "snap", "s", os_user=None)
    assert snap.archive_files == ["15-1/0000000100000000/000000010000000000000002-aa.gz", "archive.info"]
    assert snap.method == "hardlink" and snap.files == 4 and snap.copied == 0
    assert os.readlink(tmp_path / "snap/backup/s/latest") == "20261202-130106F"
    assert snap.backup_info == BACKUP_INFO and "db-id=1" in snap.archive_info
    # after the instant: pgBackRest renames a new segment in and rewrites backup.info by rename
    os.rename(seg / "000000010000000000000003-bb.gz.pgbackrest.tmp", seg / "000000010000000000000003-bb.gz")
    (repo / "backup/s/backup.info.tmp").write_text("changed")
    os.rename(repo / "backup/s/backup.info.tmp", repo / "backup/s/backup.info")
    assert not (tmp_path / "snap/archive/s/15-1/0000000100000000/000000010000000000000003-bb.gz").exists()
    assert (tmp_path / "snap/backup/s/backup.info").read_text() == BACKUP_INFO
    # expire deleting a segment does not reach into the snapshot
    (seg / "000000010000000000000002-aa.gz").unlink()
    assert (tmp_path / "snap/archive/s/15-1/0000000100000000/000000010000000000000002-aa.gz").read_bytes() == b"two"


def test_snapshot_of_a_missing_or_unreadable_repository_fails(tmp_path):
    with pytest.raises(RepoSnapshotError, match="has no backup/s directory"):
        snapshot_repository(tmp_path / "nowhere", tmp_path / "snap", "s", os_user=None, repo_name="repo2")


def test_sha256_file_gives_digest_and_size(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    d = sha256_file(p)
    assert d.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" and d.size == 3
    digest, size = sha256_file(p)  # unpacks as the search snapshot's (digest, size)
    assert (digest, size) == d
