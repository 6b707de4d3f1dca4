"""The pure parts of backups and DR: RTO/RPO math, WAL continuity, pgBackRest config and output
parsing, backup metrics, the gap register, the report templates and the spec sections."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.dr import gaps as gap_register
from vigil.dr.postgres.archive import ArchiverStatus, archive_lag, failing, has_unarchived_wal, pending_segments
from vigil.dr.postgres.metrics import push_lines, status_metrics, status_problems
from vigil.dr.postgres.pgbackrest import PgPaths, parse_info, parse_verify, render_config
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.dr.postgres.wal import check_continuity, lsn_to_int, parse_segment, segment_name
from vigil.dr.report import render_html, render_markdown, verify_bundle, write_bundle
from vigil.dr.rpo import overhead, replay_cross_check, rpo, rto_seconds, seconds_between, verdict
from vigil.errors import SpecError
from vigil.spec import parse_spec

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


# --- RTO / RPO ---------------------------------------------------------------------------------------


def test_seconds_between_is_exact_to_the_microsecond():
    assert seconds_between(T0, T0 + timedelta(microseconds=1)) == Decimal("0.000001")
    assert seconds_between(T0, at(3600.5)) == Decimal("3600.5")
    assert seconds_between(at(10), at(4)) == Decimal(-6)
    with pytest.raises(ValueError):
        seconds_between(T0.replace(tzinfo=None), T0)


def test_rto_is_first_verified_write_minus_disaster():
    assert rto_seconds(at(0), at(754.25)) == Decimal("754.25")
    assert rto_seconds(at(0), None) is None
    with pytest.raises(ValueError):
        rto_seconds(at(10), at(5))


def test_rpo_is_last_committed_before_disaster_minus_newest_recovered():
    r = rpo(at(100), at(91.5))
    assert r.seconds == Decimal("8.5") and r.exact
    # nothing lost, and a commit in flight at the disaster that survived counts as nothing lost
    assert rpo(at(100), at(100)).seconds == 0
    assert rpo(at(100), at(100.2)).seconds == 0
    # no canary row survived: a lower bound back to the ledger's start
    lb = rpo(at(100), None, ledger_started=at(40))
    assert lb.seconds == 60 and not lb.exact
    assert rpo(at(100), None).seconds is None
    assert rpo(None, at(3)).seconds is None


@given(st.integers(0, 10**7), st.integers(0, 10**7))
def test_rpo_is_never_negative_and_matches_the_difference(a_us, b_us):
    last, newest = T0 + timedelta(microseconds=a_us), T0 + timedelta(microseconds=b_us)
    r = rpo(last, newest)
    assert r.seconds == max(Decimal(0), Decimal(a_us - b_us) / 10**6)


def test_replay_cross_check():
    ok = replay_cross_check(at(100), at(95), at(95.001))
    assert ok.consistent is True and ok.replay_rpo_seconds == Decimal("4.999")
    bad = replay_cross_check(at(100), at(95), at(90))
    assert bad.consistent is False and "older" in bad.note
    assert replay_cross_check(at(100), at(95), None).consistent is None
    # replay later than the canary (other writes): consistent, and the replay-implied loss is smaller
    later = replay_cross_check(at(100), at(95), at(99))
    assert later.consistent and later.replay_rpo_seconds == 1


def test_verdicts_and_overhead():
    assert verdict(Decimal(10), Decimal(900)) == "met"
    assert verdict(Decimal(900), Decimal(900)) == "met"
    assert verdict(Decimal("900.000001"), Decimal(900)) == "missed"
    assert verdict(None, Decimal(1)) == "unknown"
    assert overhead(Decimal(110), Decimal(100)) == Decimal("0.1")
    assert overhead(Decimal(1), Decimal(0)) is None


# --- WAL ---------------------------------------------------------------------------------------------


def test_segment_names_round_trip_and_the_xlogid_boundary():
    assert parse_segment("000000010000000000000001") == (1, 1)
    assert parse_segment("0000000100000001000000FF") == (1, 511)
    assert parse_segment("0000000200000000000000FF-54bd1aa6104647a320ec4e53bcc5251b61e8c230.gz") == (2, 255)
    assert parse_segment("15-1/0000000100000000/000000010000000000000003-b5ecbba01610c999cc36c92dd6d2628e5257733a.zst") == (1, 3)
    for bad in ("000000010000000000000002.00000028.backup", "00000002.history", "000000010000000000000100", "archive.info"):
        assert parse_segment(bad) is None
    assert segment_name(1, 256) == "000000010000000100000000"
    assert lsn_to_int("1/3000050") == (1 << 32) + 0x3000050


def test_wal_continuity_finds_gaps_from_the_oldest_backup_on():
    names = [segment_name(1, n) + "-" + "a" * 40 + ".gz" for n in (1, 2, 3, 5, 6, 9)] + ["00000001.history", "x.backup"]
    full = check_continuity(names)
    assert not full.ok and [(g.after, g.before, g.missing) for g in full.gaps] == [
        ("000000010000000000000003", "000000010000000000000005", 1),
        ("000000010000000000000006", "000000010000000000000009", 2),
    ]
    assert full.first == "000000010000000000000001" and full.last == "000000010000000000000009" and full.segments == 6
    ok = check_continuity(names[:3], start="000000010000000000000002")
    assert ok.ok and ok.segments == 2
    assert not check_continuity(names[3:], start="000000010000000000000004").ok  # 4 itself is missing
    assert not check_continuity([]).ok


def test_wal_continuity_across_a_timeline_switch_and_the_xlogid_boundary():
    names = [segment_name(1, n) for n in range(250, 260)] + [segment_name(2, n) for n in range(259, 263)]
    c = check_continuity(names, start=segment_name(1, 250), history="1\t1/3800000\tno recovery target specified\n")
    assert c.ok and c.timelines == [1, 2] and c.last == segment_name(2, 262)
    # without the history, which timeline a restore reads each segment from is unknown: not ok (issue 14)
    blind = check_continuity(names, start=segment_name(1, 250))
    assert not blind.ok and "no timeline history" in blind.problems[0]


# --- archiver facts ----------------------------------------------------------------------------------


def _arch(**kw) -> ArchiverStatus:
    base = dict(archived_count=5, last_archived_wal="000000010000000000000005", last_archived_time=at(0), failed_count=0,
                last_failed_wal=None, last_failed_time=None, stats_reset=at(-100), current_wal="000000010000000000000005",
                current_lsn="0/6000000", archive_mode="on", archive_command="pgbackrest ... archive-push %p", archive_timeout=60,
                wal_level="replica", in_recovery=False)
    base.update(kw)
    return ArchiverStatus(**base)


def test_archive_lag_is_zero_when_everything_written_is_archived():
    idle = _arch()
    assert has_unarchived_wal(idle) is False and archive_lag(idle, at(500)) == 0 and pending_segments(idle) == 0
    busy = _arch(current_wal="000000010000000000000008")
    assert archive_lag(busy, at(42)) == 42 and pending_segments(busy) == 2
    assert not failing(busy)
    broken = _arch(failed_count=3, last_failed_time=at(10), last_failed_wal="000000010000000000000006")
    assert failing(broken)
    assert archive_lag(_arch(last_archived_wal=None, last_archived_time=None, current_wal="000000010000000000000001"), at(1)) is None


# --- pgBackRest ----------------------------------------------------------------------------------------

SPEC_PG = {
    "stanza": "main",
    "data_dir": "/var/lib/postgresql/15/main",
    "socket_dir": "/var/run/postgresql",
    "archive_timeout": "60s",
    "config": "pgbackrest.conf",
    "work_dir": "work",
    "repos": [
        {"path": "/backups/repo1", "region": "eu-west-1"},
        {"path": "/mnt/dr", "retention": {"full_count": 4, "diff_count": 7}},
    ],
}


def test_render_config_from_the_spec(tmp_path):
    pg = PostgresBackupSpec.model_validate(SPEC_PG)
    paths = PgPaths.from_spec(pg, tmp_path)
    text = render_config(paths)
    assert "[global]\nrepo1-path=/backups/repo1\nrepo1-retention-full-type=time\nrepo1-retention-full=35\n" in text
    assert "repo2-path=/mnt/dr\nrepo2-retention-full-type=count\nrepo2-retention-full=4\nrepo2-retention-diff=7\n" in text
    assert f"log-path={tmp_path / 'work' / 'log'}\n" in text and "start-fast=y" in text
    assert text.endswith("[main]\npg1-path=/var/lib/postgresql/15/main\npg1-port=5432\npg1-socket-path=/var/run/postgresql\npg1-user=postgres\n")
    assert paths.config == tmp_path / "pgbackrest.conf"
    # a drill's restore sees only its repository, and a fresh data directory
    only2 = render_config(paths, repos=[2], pg_path=Path("/tmp/r/data"), with_connection=False)
    assert "repo1-" not in only2 and "repo2-path=/mnt/dr" in only2
    assert only2.endswith("[main]\npg1-path=/tmp/r/data\n")
    assert pg.repo_role(1) == "local" and pg.cross_region_repos() == [2]


INFO_JSON = json.loads("""[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000006","min":"000000010000000000000001"},
{"database":{"id":1,"repo-key":2},"id":"15-1","max":"000000010000000000000006","min":"000000010000000000000001"}],
"backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},
"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":22992568,"repository":{"delta":3043554,"size":3043554},"size":22992568},
"label":"20261126-111429F","lsn":{"start":"0/2000028","stop":"0/3000050"},"prior":null,"reference":null,"timestamp":{"start":1795691669,"stop":1795691672},"type":"full"},
{"archive":{"start":"000000010000000000000006","stop":"000000010000000000000006"},"backrest":{"format":5,"version":"2.45"},
"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":8192,"repository":{"delta":420,"size":3043554},"size":22992568},
"label":"20261126-111429F_20261126-111538I","lsn":{"start":"0/6000028","stop":"0/6000100"},"prior":"20261126-111429F","reference":["20261126-111429F"],
"timestamp":{"start":1795691738,"stop":1795691740},"type":"incr"}],
"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7712436984582998943,"version":"15"},{"id":1,"repo-key":2,"system-id":7712436984582998943,"version":"15"}],
"name":"demo","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}},{"cipher":"none","key":2,"status":{"code":2,"message":"no valid backups"}}],
"status":{"code":4,"lock":{"backup":{"held":false}},"message":"different across repos"}}]""")


def test_parse_info_of_pgbackrest_245():
    info = parse_info(INFO_JSON, "demo")
    assert info.status_code == 4 and [r.code for r in info.repos] == [0, 2]
    assert [b.label for b in info.backups_in(1)] == ["20261126-111429F", "20261126-111429F_20261126-111538I"]
    assert info.newest(1).type == "incr" and info.newest(1, "full").label == "20261126-111429F"
    assert info.oldest(1).wal_start == "000000010000000000000002"
    assert info.newest(2) is None
    assert info.backups[0].stop == datetime.fromtimestamp(1795691672, timezone.utc)
    d = info.to_dict()
    assert d["backups"][0]["duration_seconds"] == 3 and d["archives"][1] == {"repo": 2, "id": "15-1", "min": "000000010000000000000001", "max": "000000010000000000000006"}
    missing = parse_info(INFO_JSON, "nope")
    assert missing.status_code == 1 and not missing.backups


@pytest.mark.parametrize("end", ["start", "stop"])
def test_a_backup_without_its_start_or_stop_time_is_refused_not_kept_undated(end):
    """Observed (issue 7, Types): a backup whose timestamp was null was kept with start/stop None
    (typed datetime), so its age and duration failed later, far from the cause. It is refused at
    the parse, naming pgBackRest's JSON; in backup.info too."""
    from vigil.dr.postgres.pgbackrest import PgBackRestError, backups_from_info_file

    broken = json.loads(json.dumps(INFO_JSON))
    broken[0]["backup"][1]["timestamp"][end] = None
    with pytest.raises(PgBackRestError, match="pgbackrest info returned JSON vigil cannot read") as e:
        parse_info(broken, "demo")
    assert "without its start or stop time" in e.value.message and e.value.exit_code == 3
    info_file = (
        "[backup:current]\n"
        '20261202-130106F={"backup-timestamp-start":1796216466,"backup-timestamp-stop":null,"backup-type":"full","db-id":1}\n'
    )
    with pytest.raises(PgBackRestError, match="backup.info is not readable"):
        backups_from_info_file(info_file, 1)


def test_parse_verify_text():
    text = """stanza: demo
status: ok
  archiveId: 15-1, total WAL checked: 3, total valid WAL: 3
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261126-111429F, status: valid, total files checked: 964, total valid files: 964
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""
    v = parse_verify(text, 1)
    assert v.ok and v.backups == [{"label": "20261126-111429F", "status": "valid", "checked": 964, "valid": 964, "missing": 0,
                                   "checksum_invalid": 0, "size_invalid": 0, "other": 0}]
    assert v.archives[0]["checked"] == 3
    bad = parse_verify(text.replace("status: ok", "status: error").replace("total valid files: 964", "total valid files: 963")
                       .replace("status: valid", "status: invalid"), 1, 104)
    assert not bad.ok and bad.backups[0]["status"] == "invalid"


def test_status_metrics_and_problems():
    pg = PostgresBackupSpec.model_validate({**SPEC_PG, "repos": SPEC_PG["repos"][:1] + [{"path": "/mnt/dr"}]})
    info = parse_info(INFO_JSON, "demo")
    now = datetime.fromtimestamp(1795691740, timezone.utc) + timedelta(hours=2)
    arch = _arch(current_wal="000000010000000000000008", last_archived_time=now - timedelta(seconds=30))
    gauges = {(g.metric, tuple(sorted(g.labels.items()))): g.value for g in status_metrics(pg, info, arch, now)}
    assert gauges[("pgbackrest_backup_age_seconds", (("repo", "1"), ("stanza", "main"), ("type", "any")))] == 7200
    assert gauges[("pgbackrest_backup_age_seconds", (("repo", "1"), ("stanza", "main"), ("type", "full")))] == 7200 + 68
    assert gauges[("pgbackrest_backup_count", (("repo", "2"), ("stanza", "main")))] == 0
    assert gauges[("pgbackrest_repo_ok", (("repo", "2"), ("stanza", "main")))] == 0
    assert gauges[("pg_archive_lag_seconds", (("stanza", "main"),))] == 30
    assert gauges[("pg_archive_pending_segments", (("stanza", "main"),))] == 2
    problems = status_problems(pg, info, arch, now)
    assert any("repo2: no valid backups" in p for p in problems)
    stale = status_problems(pg, info, arch, now + timedelta(days=2))
    assert any("repo1: the newest backup" in p and "limit is 1d12h" in p for p in stale)
    lines = push_lines(status_metrics(pg, info, arch, now), now)
    assert lines[0][1]["set"] is not None and lines[0][1]["ts"].endswith("Z")


# --- gaps ----------------------------------------------------------------------------------------------

BASE = "version: 1\nservices: {api: {}}\n"


def test_gap_register_against_the_plan():
    spec = parse_spec(BASE + """
backups:
  postgres:
    stanza: main
    data_dir: /data
    repos: [{path: /r1, retention: {full: 14d}}]
  aurora:
    cluster_id: platform-prod
    region: eu-west-1
    schedule: daily
    cross_region: {region: us-west-2, kms_key_id: alias/dr}
  s3:
    buckets:
      - name: platform-backups
        critical: true
        wal_prefixes: [pgbackrest/archive/]
        lifecycle:
          - {id: cold, prefix: pgbackrest/, transitions: [{days: 20, storage_class: GLACIER}]}
          - {id: ia, prefix: pgbackrest/, transitions: [{days: 30, storage_class: STANDARD_IA}], expiration_days: 40}
          - {id: short, prefix: pgbackrest/archive/, expiration_days: 14}
""")
    ids = {g.id: g for g in gap_register.spec_gaps(spec)}
    assert ids["pg-retention-below-plan"].severity == "high" and "14 days" in ids["pg-retention-below-plan"].message
    assert "pg-no-second-repo" in ids
    assert "pg-archive-timeout-unset" in ids
    r = ids["region-loss-rpo-unkeepable"]
    assert r.severity == "critical" and "up to 1d" in r.message and "not 15m" in r.message
    assert ids["s3-object-lock-missing"].where == "backups.s3.buckets[0].object_lock"
    wal = [g.message for g in gap_register.spec_gaps(spec) if g.id == "s3-lifecycle-breaks-wal"]
    assert len(wal) == 2 and "'cold' moves WAL under 'pgbackrest/archive/' to GLACIER after 20 days" in wal[0]
    assert "'short' expires WAL" in wal[1] and "after 14 days" in wal[1]
    assert "search-snapshot-missing" in ids and "drill-missing" in ids
    reg = gap_register.register(gap_register.spec_gaps(spec), [])
    assert [g.severity for g in reg] == sorted((g.severity for g in reg), key=gap_register.SEVERITY_ORDER.get)


def test_a_spec_that_keeps_the_plan_has_no_design_gaps():
    spec = parse_spec(BASE + """
backups:
  postgres:
    stanza: main
    data_dir: /data
    archive_timeout: 60s
    repos: [{path: /r1}, {path: /r2, region: other}]
  search: {engine: embedded}
drills: [{name: quarterly}]
""")
    assert gap_register.spec_gaps(spec) == []


def test_observed_gaps():
    o = gap_register.Observed(restore_ok=True, write_ok=True, rto_seconds=Decimal(5 * 3600), rpo_seconds=Decimal(1200), rebuild_seconds=Decimal(10),
                   archive_timeout_seconds=0, archive_mode="on", restored_archive_mode="off", wal_problems=["WAL gap: x"],
                   backup_age_seconds={1: Decimal(3 * 86400)}, backup_count={2: 0}, last_drill_at=T0, now=T0 + timedelta(days=100))
    ids = [g.id for g in gap_register.observed_gaps(o, rto=Decimal(4 * 3600), rpo=Decimal(900), rebuild=Decimal(3600))]
    assert ids == ["rto-missed", "rpo-missed", "pg-archive-timeout-off-on-server", "pg-wal-gap", "pg-backup-stale", "pg-repo-empty", "drill-overdue"]
    failed = gap_register.observed_gaps(gap_register.Observed(restore_ok=False, restore_error="boom"), rto=Decimal(1), rpo=Decimal(1), rebuild=Decimal(1))
    assert [g.id for g in failed] == ["drill-restore-failed"] and "boom" in failed[0].message
    leak = gap_register.observed_gaps(gap_register.Observed(restored_archive_mode="on"), rto=Decimal(1), rpo=Decimal(1), rebuild=Decimal(1))
    assert leak[0].id == "drill-restored-cluster-archives" and leak[0].severity == "critical"


# --- the spec sections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,message",
    [
        ("backups: {postgres: {stanza: 'a b', data_dir: /d, repos: [{path: /r}]}}", "stanza 'a b'"),
        ("backups: {postgres: {stanza: m, data_dir: /d, repos: []}}", "at least 1"),
        ("backups: {postgres: {stanza: m, data_dir: /d, repos: [{path: /r, retention: {full: 36h}}]}}", "whole days"),
        ("backups: {postgres: {stanza: m, data_dir: /d, repos: [{path: /r, retention: {full: 2d, full_count: 2}}]}}", "exactly one"),
        ("backups: {postgres: {stanza: m, data_dir: /d, repos: [{path: /r}, {path: /r}]}}", "listed twice"),
        ("backups: {postgres: {stanza: m, data_dir: /d, archive_timeout: 500ms, repos: [{path: /r}]}}", "whole seconds"),
        ("backups: {postgres: {stanza: m, data_dir: /d, repos: [{path: /r, rol: local}]}}", "did you mean 'role'"),
        ("drills: [{name: Q1}]", "drill name"),
        ("drills: [{name: q, target: latest, target_offset: 5m}]", "go with `target: time`"),
        ("drills: [{name: q, target: time, target_time: yesterday}]", "cannot read time"),
        ("drills: [{name: q, phases: {disaster: {mode: nuke}}}]", "declare"),
        ("drills: [{name: q, phases: {canary: {table: 'x;drop'}}}]", "plain SQL table name"),
    ],
)
def test_spec_errors_name_the_path(body, message):
    with pytest.raises(SpecError) as e:
        parse_spec(BASE + body + "\n")
    assert message in str(e.value)


def test_drill_defaults_are_the_plan():
    spec = parse_spec(BASE + "backups:\n  postgres: {stanza: m, data_dir: /d, repos: [{path: /r1}]}\ndrills: [{name: q, target: time}]\n")
    d = spec.drills[0]
    assert d.objectives.rto == 4 * 3600 and d.objectives.rpo == 900 and d.objectives.rebuild == 3600
    assert d.scenario == "primary-loss" and d.phases.canary.interval == 1 and d.phases.disaster.mode == "declare"
    assert d.offset() == 60 and d.describe_target() == "time: disaster - 1m"


# --- the report ----------------------------------------------------------------------------------------


def _report(**over) -> dict:
    r = {
        "format": 1, "drill": "q1", "description": "pipes | and\nnewlines", "scenario": "region-loss", "repo": 2, "repo_role": "cross-region",
        "target": {"type": "latest", "describe": "latest"}, "status": "failed", "started_at": "2026-11-01T12:00:00Z",
        "finished_at": "2026-11-01T12:10:00Z", "disaster_at": "2026-11-01T12:01:00Z", "first_verified_write_at": None,
        "rto_seconds": None, "rpo_seconds": None, "rebuild_seconds": None,
        "rpo": {"seconds": None, "exact": False, "note": "n", "last_committed_before_disaster": None, "newest_recovered": None},
        "rpo_cross_check": {"consistent": None, "replay_rpo_seconds": None, "note": "c", "last_replayed_commit": None},
        "objectives": {"rto_seconds": 14400.0, "rpo_seconds": 900.0, "rebuild_seconds": 3600.0},
        "verdicts": {"rto": "unknown", "rpo": "unknown", "rebuild": "unknown"},
        "phases": [{"name": "restore", "title": "Restore", "start": "a", "end": "b", "seconds": 1.5, "ok": False, "skipped": False,
                    "error": "pgbackrest <restore> failed | x", "evidence": {}},
                   {"name": "write_check", "title": "Write", "start": "b", "end": "b", "seconds": 0.0, "ok": None, "skipped": True,
                    "error": None, "evidence": {"skipped": "the restore failed"}}],
        "gaps": [{"id": "drill-restore-failed", "severity": "critical", "message": "<b>m</b>", "where": "observed", "fix": "f"}],
        "observations": [], "scope": {"stanza": "s", "database": "d", "primary": {"data_dir": "/d", "port": 1},
                                      "repositories": [{"repo": 2, "path": "/r2", "role": "cross-region", "region": None}]},
        "report_dir": "x", "spec_sha256": None, "run_id": None,
    }
    r.update(over)
    return r


def test_report_renders_markdown_and_escaped_html(tmp_path):
    r = _report()
    md = render_markdown({**r, "evidence": []})
    assert "**FAILED**" in md and "| critical | `drill-restore-failed` |" in md and "FAILED: pgbackrest <restore> failed \\| x" in md
    assert "skipped: the restore failed" in md
    html = render_html({**r, "evidence": []})
    assert "&lt;b&gt;m&lt;/b&gt;" in html and "<b>m</b>" not in html


def test_bundle_checksums_cover_every_file(tmp_path):
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "a.json").write_text("{}")
    files = write_bundle(tmp_path, _report())
    assert Path(files["json"]).is_file() and Path(files["html"]).is_file() and Path(files["markdown"]).is_file()
    data = json.loads(Path(files["json"]).read_text())
    assert data["evidence"][0]["file"] == "evidence/a.json" and len(data["evidence"][0]["sha256"]) == 64
    assert verify_bundle(tmp_path) == []
    (tmp_path / "evidence" / "a.json").write_text("{ }")
    assert verify_bundle(tmp_path) == ["evidence/a.json: SHA-256 mismatch"]


def test_drill_cross_check_for_the_root_spec():
    import pytest
    from ruamel.yaml import YAML

    from vigil.dr.drill_spec import cross_check
    from vigil.errors import SpecError
    from vigil.spec import Spec

    def model(text: str) -> Spec:  # the models alone, without the loader's cross-checks
        return Spec.model_validate(YAML(typ="safe").load(text))

    text = BASE + """
backups:
  postgres: {stanza: m, data_dir: /d, repos: [{path: /r1}]}
drills: [{name: a, repo: 3}, {name: a, scenario: region-loss}]
"""
    assert cross_check(model(text)) == [
        (("drills", 0, "repo"), "repo 3 does not exist: backups.postgres.repos has 1"),
        (("drills", 1, "name"), "duplicate drill name 'a' (first at drills[0])"),
        (("drills", 1, "scenario"), "a region-loss drill restores from a cross-region repository, and backups.postgres.repos has none"),
    ]
    assert cross_check(model(BASE + "drills: [{name: q}]\n")) == [(("drills", 0), "a drill restores a PostgreSQL backup: declare backups.postgres")]
    # the loader (and so `vigil check`) reports them with their lines
    with pytest.raises(SpecError) as ei:
        parse_spec(text)
    assert [(i.path, i.line) for i in ei.value.issues] == [
        ("drills[0].repo", BASE.count("\n") + 4),
        ("drills[1].name", BASE.count("\n") + 4),
        ("drills[1].scenario", BASE.count("\n") + 4),
    ]


def test_archive_position_of_a_backup_history_file():
    s = _arch(last_archived_wal="00000001000000000000000B.00000028.backup", current_wal="00000001000000000000000B")
    assert has_unarchived_wal(s) is False and pending_segments(s) == 0 and archive_lag(s, at(9)) == 0
    assert pending_segments(_arch(last_archived_wal="00000002.history")) == 0
