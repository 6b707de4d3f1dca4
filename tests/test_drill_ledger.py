"""DR drills judged against the test's own ledger of client-acknowledged commits.

Real PostgreSQL 15 and real pgBackRest. The test writes its own table (``client_ledger``) from its
own connection every 50 ms and keeps, for every row, the server's commit-time clock and the moment
the client saw the commit acknowledged; vigil's canary is never consulted. Each drill keeps its
restored cluster (``keep: true``) so the test can read what the restore really holds, and the
report (status, gap ids, RPO) is checked against that.

Scenarios (issue 14): a clean ``declare`` drill (the primary keeps writing and archiving: nothing
committed after the disaster may be restored, and the RPO must match the ledger's loss), a WAL
segment deleted from the repository and one corrupted (recovery stops at the hole; the drill fails
with critical gaps and an RPO from the replay figure, not the canary's lower bound), an unreadable
repository (the drill fails before touching the primary) and a ``destroy`` drill.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from pgcluster import PgCluster
from vigil.cli.main import main
from vigil.clock import parse_time
from vigil.dr.report import verify_bundle

pytestmark = pytest.mark.postgres

LEDGER_INTERVAL = 0.05
# No fixed tolerance between the report's RPO and the ledger's loss: how far apart two clocks'
# samples fall depends on the machine (a thread starved for a second on a loaded one, sub-ms
# commits on a fast one), so :func:`assert_rpo_matches_ledger` measures the gaps it allows.
EPSILON = 0.002  # microsecond timestamps taken on one host's clock, and float rounding

SPEC = """\
version: 1
services: {{db: {{}}}}
backups:
  postgres:
    stanza: ledger
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
  - name: declare
    phases:
      canary: {{table: canary_declare, interval: 250ms, warmup: 2s}}
      restore: {{dir: {base}/restore-declare, keep: true, timeout: 5m}}
  - name: declare-slow-snapshot
    phases:
      canary: {{table: canary_slow_snapshot, interval: 250ms, warmup: 1s}}
      restore: {{dir: {base}/restore-slow-snapshot, keep: true, timeout: 5m}}
  - name: deleted-segment
    objectives: {{rpo: 3s}}
    phases:
      canary: {{table: canary_deleted, interval: 250ms, warmup: 1500ms}}
      restore: {{dir: {base}/restore-deleted, keep: true, timeout: 5m}}
  - name: corrupted-segment
    objectives: {{rpo: 3s}}
    phases:
      canary: {{table: canary_corrupted, interval: 250ms, warmup: 1500ms}}
      restore: {{dir: {base}/restore-corrupted, keep: true, timeout: 5m}}
  - name: unreachable
    scenario: region-loss
    phases:
      canary: {{table: canary_unreachable, interval: 250ms, warmup: 1s}}
      restore: {{timeout: 5m}}
  - name: stop-vanishing-repo
    phases:
      canary: {{table: canary_vanishing, interval: 250ms, warmup: 1s}}
      disaster: {{mode: stop}}
      restore: {{timeout: 5m}}
  - name: destroy
    phases:
      canary: {{table: canary_destroy, interval: 250ms, warmup: 2s}}
      disaster: {{mode: destroy}}
      restore: {{dir: {base}/restore-destroy, keep: true, timeout: 5m}}
"""


class Ledger:
    """Client-acknowledged commits of the test's own table, written from its own connection.

    ``rows`` holds ``(seq, committed_at, acked_at)``: ``committed_at`` is the server's
    ``clock_timestamp()`` inside the transaction (the commit happens after it), ``acked_at`` the
    client's clock once the commit returned (the commit happened before it)."""

    def __init__(self, conninfo: str, table: str) -> None:
        self.conninfo, self.table = conninfo, table
        self.rows: list[tuple[int, datetime, datetime]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute(f"CREATE TABLE {table} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                      "committed_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    seq, at = self._conn.execute(f"INSERT INTO {self.table} DEFAULT VALUES RETURNING seq, committed_at").fetchone()
                except psycopg.Error as e:
                    self.error = str(e).strip() or type(e).__name__
                    return
                self.rows.append((seq, at, datetime.now(timezone.utc)))
                self._stop.wait(LEDGER_INTERVAL)
        finally:
            try:
                self._conn.close()
            except Exception:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def acked_by(self, t: datetime) -> list[tuple[int, datetime, datetime]]:
        return [r for r in list(self.rows) if r[2] <= t]


def archiver(pg: PgCluster) -> tuple[int, str | None, int]:
    out = pg.psql("SELECT archived_count, coalesce(last_archived_wal, ''), failed_count FROM pg_stat_archiver")
    n, wal, failed = out.split("|")
    return int(n), wal or None, int(failed)


def wait_archived(pg: PgCluster, more: int, timeout: float = 60) -> str:
    """Wait (bounded) until the primary's archiver has archived ``more`` further files; returns the last."""
    start = archiver(pg)[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n, wal, _ = archiver(pg)
        if n >= start + more and wal and len(wal) == 24:
            return wal
        time.sleep(0.1)  # polling the archiver of a real server, bounded by the deadline
    raise AssertionError(f"the primary archived fewer than {more} segments within {timeout}s")


def wait_archived_through(pg: PgCluster, segment: str, timeout: float = 60) -> None:
    """Wait (bounded) until the primary's archiver has archived ``segment`` (or a later one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wal = archiver(pg)[1]
        if wal and len(wal) == 24 and wal[8:] >= segment[8:]:
            return
        time.sleep(0.1)  # polling the archiver of a real server, bounded by the deadline
    raise AssertionError(f"the primary did not archive {segment} within {timeout}s")


def next_segment(name: str) -> str:
    tli, hi, lo = int(name[:8], 16), int(name[8:16], 16), int(name[16:], 16)
    n = hi * 256 + lo + 1
    return f"{tli:08X}{n // 256:08X}{n % 256:08X}"


def segment_file(repo: Path, segment: str) -> Path:
    found = list(repo.glob(f"archive/ledger/*/*/{segment}-*"))
    assert len(found) == 1, found
    return found[0]


def previous_segment(name: str) -> str:
    tli, hi, lo = int(name[:8], 16), int(name[8:16], 16), int(name[16:], 16)
    n = hi * 256 + lo - 1
    return f"{tli:08X}{n // 256:08X}{n % 256:08X}"


def drill(capsys, spec: Path, db: str, name: str, out: Path) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["drill", "run", name, "--spec", str(spec), "--db", db, "--out", str(out), "--json", "--allow-destroy"])
    text, _ = capsys.readouterr()
    return code, json.loads(text)


class Restored:
    """The restored cluster a drill kept running, read by the test, stopped and removed afterwards."""

    def __init__(self, report: dict) -> None:
        ev = next(p for p in report["phases"] if p["name"] == "restore")["evidence"]
        self.dir = Path(ev["data_dir"]).parent
        self.conninfo = f"host={self.dir / 'sock'} port={ev['port']} user=postgres dbname=postgres connect_timeout=10"

    def rows(self, table: str) -> list[tuple[int, datetime]]:
        with psycopg.connect(self.conninfo, autocommit=True) as c:
            if not c.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]:
                return []
            return c.execute(f"SELECT seq, committed_at FROM {table} ORDER BY seq").fetchall()

    def close(self) -> None:
        from vigil.dr.postgres.cluster import LocalCluster

        LocalCluster(self.dir / "data", socket_dir=self.dir / "sock", log_file=self.dir / "postgres.log").destroy(remove=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def ledger_loss(ledger: Ledger, recovered: list[tuple[int, datetime]], disaster_at: datetime) -> float:
    """Seconds of acknowledged commits lost, by the ledger alone: the last row acknowledged before
    the disaster minus the newest row the restore holds (0 when nothing acknowledged was lost)."""
    acked = ledger.acked_by(disaster_at)
    assert acked, "the ledger acknowledged nothing before the disaster"
    last = acked[-1]
    if not recovered:
        return (last[1] - ledger.rows[0][1]).total_seconds()
    newest = recovered[-1]
    return max(0.0, (last[1] - newest[1]).total_seconds())


def _t(x: str) -> datetime:
    return parse_time(x)


def assert_rpo_matches_ledger(r: dict, ledger: Ledger, recovered: list[tuple[int, datetime]], disaster: datetime) -> float:
    """The report's RPO against the test's own ledger, with only the slack the samples themselves
    show (measured, not assumed). Returns the ledger's loss.

    * The restore's cut (the last commit it replayed) lies between the newest ledger row it holds
      (committed, so replayed) and the moment the client saw the first row it lacks acknowledged:
      whatever figure the report gives (canary or replay), it is the canary's last row before the
      disaster minus a commit time no later than that cut, so it can never be *smaller* than
      ``canary_last - first_lost_acked``. That bound is exact on any machine.
    * It overstates by at most the canary's own sampling gap around the cut (its rows' largest gap).
    * Against the ledger's loss it differs by where each clock's last sample fell before the
      disaster, plus the ledger's gap around the cut: both measured here."""
    loss = ledger_loss(ledger, recovered, disaster)
    rpo = r["rpo_seconds"]
    assert rpo is not None, r["rpo"]
    canary_last = _t(r["rpo"]["last_committed_before_disaster"]["committed_at"])
    assert canary_last <= disaster
    canary_rows = json.loads(Path(r["report_dir"], "evidence", "canary-ledger.json").read_text())
    times = [_t(x["committed_at"]) for x in canary_rows]
    canary_gap = max(((b - a).total_seconds() for a, b in zip(times, times[1:])), default=0.0)
    acked = ledger.acked_by(disaster)
    ledger_last = acked[-1][1]
    newest = recovered[-1]
    lost = next((row for row in ledger.rows if row[0] > newest[0]), None)
    cut_high = lost[2] if lost is not None else disaster  # the cut is no later than this
    # never understated: exact, no tolerance
    assert rpo + EPSILON >= max(0.0, (canary_last - cut_high).total_seconds()), (r["rpo"], canary_last, cut_high)
    # never overstated by more than the canary's sampling gap
    ledger_gap = (cut_high - newest[1]).total_seconds()
    assert rpo <= max(0.0, (canary_last - newest[1]).total_seconds()) + canary_gap + ledger_gap + EPSILON, (r["rpo"], canary_gap)
    # the ledger's loss: the same cut, seen from the other clock's last sample before the disaster
    skew = max((disaster - canary_last).total_seconds(), (disaster - ledger_last).total_seconds())
    slack = skew + max(ledger_gap, canary_gap) + EPSILON
    assert abs(rpo - loss) <= slack, (r["rpo"], loss, {"skew": skew, "ledger_gap": ledger_gap, "canary_gap": canary_gap})
    return loss


@pytest.fixture(scope="module")
def env():
    pg = PgCluster(settings={"full_page_writes": "on"})
    base = Path(tempfile.mkdtemp(prefix="vigil-drill-ledger-"))
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
        conninfo = f"host={pg.socket_dir} port={pg.port} user=postgres dbname=postgres"
        yield pg, base, spec, db, conninfo
    finally:
        pg.destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_declare_restores_nothing_committed_after_the_disaster_and_reports_the_ledgers_loss(env, capsys):
    pg, base, spec, db, conninfo = env
    ledger = Ledger(conninfo, "ledger_declare")
    restored = None
    try:
        wait_archived(pg, 1)
        code, r = drill(capsys, spec, db, "declare", base / "reports")
        assert not ledger.error  # declare: the primary kept accepting writes throughout
        wait_archived(pg, 2)  # and kept archiving after the disaster: WAL the restore must not have seen
        ledger.stop()
        restored = Restored(r)
        recovered = restored.rows("ledger_declare")
        disaster = parse_time(r["disaster_at"])
        after = [row for row in ledger.rows if row[1] > disaster]
        assert len(after) >= 10  # the primary went on committing after the disaster ...
        assert recovered and all(at <= disaster for _, at in recovered), \
            f"{sum(at > disaster for _, at in recovered)} rows committed after the disaster were restored"  # ... none of it restored
        assert [s for s, _ in recovered] == [s for s, _, _ in ledger.rows[: len(recovered)]]  # a prefix of what was acknowledged
        assert code == 0 and r["status"] == "passed", r["gaps"]
        assert_rpo_matches_ledger(r, ledger, recovered, disaster)
        assert r["rpo"]["exact"] is True and r["verdicts"]["rpo"] == "met"
        assert r["recovery_end"]["ok"] is True
        by = {p["name"]: p for p in r["phases"]}
        snap = by["disaster"]["evidence"]["repository_snapshot"]
        assert snap["method"] == "hardlink" and snap["files"] > 0
        assert by["restore"]["evidence"]["repository"] == snap["path"]
        assert not any(g["severity"] == "critical" for g in r["gaps"])
        assert pg.running and verify_bundle(Path(r["report_dir"])) == []
    finally:
        ledger.stop()
        if restored is not None:
            restored.close()


def test_a_snapshot_that_finishes_after_the_primary_archived_more_restores_nothing_after_the_disaster(env, capsys, monkeypatch):
    """Hostile pass: the repository snapshot is hard links made file by file, so on a big repository
    (35 days of WAL) the walk outlasts an archive_timeout, and in `declare` mode the primary goes on
    archiving: a segment pushed after the disaster was linked into the snapshot and replayed, so rows
    committed after the disaster came back and the RPO read 0. The walk is slowed here until the
    primary has archived two more segments; the restore must still stop at what had been archived
    by the disaster instant (pg_stat_archiver's last segment then)."""
    import vigil.dr.drill.run as drill_run

    pg, base, spec, db, conninfo = env
    ledger = Ledger(conninfo, "ledger_slow_snapshot")
    real = drill_run.snapshot_repository
    seen: dict = {}

    def slow_walk(*a, **kw):
        seen["archived_before_walk"] = archiver(pg)[1]
        wait_archived(pg, 2)  # what a long walk lets the primary push meanwhile
        return real(*a, **kw)

    monkeypatch.setattr(drill_run, "snapshot_repository", slow_walk)
    restored = None
    try:
        wait_archived(pg, 1)
        code, r = drill(capsys, spec, db, "declare-slow-snapshot", base / "reports")
        ledger.stop()
        restored = Restored(r)
        recovered = restored.rows(ledger.table)
    finally:
        ledger.stop()
        if restored is not None:
            restored.close()
    disaster = parse_time(r["disaster_at"])
    after = [at for _, at in recovered if at > disaster]
    assert not after, f"{len(after)} rows committed after the disaster were restored (RPO reported {r['rpo_seconds']})"
    assert recovered and [s for s, _ in recovered] == [s for s, _, _ in ledger.rows[: len(recovered)]]
    snap = next(p for p in r["phases"] if p["name"] == "disaster")["evidence"]["repository_snapshot"]
    assert snap["excluded_after_disaster"], snap  # the segments pushed during the walk, named
    assert all(name[:24] > seen["archived_before_walk"][:24] for name in snap["excluded_after_disaster"])
    assert code == 0 and r["status"] == "passed", r["gaps"]
    assert r["recovery_end"]["ok"] is True and r["recovery_end"]["expected_last_segment"] <= seen["archived_before_walk"][:24]
    assert_rpo_matches_ledger(r, ledger, recovered, disaster)


def _damaged_drill(env, capsys, name: str, damage) -> tuple[int, dict, Ledger, list, str, datetime]:
    """The ledger runs; a segment archived after the backup is damaged; the ledger goes on long
    enough that the hole is well before the drill; then the drill. Returns the report, the ledger,
    the rows the restore holds and the damaged segment."""
    pg, base, spec, db, conninfo = env
    ledger = Ledger(conninfo, f"ledger_{name.replace('-', '_')}")
    victim_file = saved = None
    restored = None
    try:
        # the victim is the segment after the one the ledger's first acknowledged row is in, whatever
        # the archiver's lag (a backlog on a loaded machine made "the 2nd segment archived from now"
        # the one holding the ledger's CREATE TABLE, and the restore held no ledger at all)
        deadline = time.monotonic() + 30
        while not ledger.rows and time.monotonic() < deadline:
            time.sleep(0.05)  # the ledger's first commit, on a real server, bounded
        assert ledger.rows, ledger.error
        victim = next_segment(pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())"))
        wait_archived_through(pg, victim)
        victim_seen = datetime.now(timezone.utc)  # every commit in the victim segment (and before) precedes this
        wait_archived(pg, 4)  # four more segments: four archive_timeouts of acknowledged commits after the hole
        victim_file = segment_file(base / "repo1", victim)
        saved = base / (victim_file.name + ".saved")
        st = victim_file.stat()
        shutil.copy2(victim_file, saved)
        os.chown(saved, st.st_uid, st.st_gid)
        damage(victim_file)
        code, r = drill(capsys, spec, db, name, base / "reports")
        ledger.stop()
        restored = Restored(r)
        recovered = restored.rows(ledger.table)
        return code, r, ledger, recovered, victim, victim_seen
    finally:
        ledger.stop()
        if restored is not None:
            restored.close()
        if victim_file is not None and saved is not None:  # repair the archive for the next tests
            victim_file.unlink(missing_ok=True)
            shutil.move(saved, victim_file)


def _assert_stopped_at_the_hole(r: dict, ledger: Ledger, recovered: list, victim: str, victim_seen: datetime) -> None:
    disaster = parse_time(r["disaster_at"])
    ids = {g["id"]: g for g in r["gaps"]}
    before = previous_segment(victim)
    # the report names where recovery stopped and where the archive ended
    assert r["recovery_end"]["ok"] is False and r["recovery_end"]["reached_segment"] == before
    assert r["recovery_end"]["expected_last_segment"] > victim
    g = ids["drill-recovery-stopped-early"]
    assert g["severity"] == "critical" and before in g["message"] and r["recovery_end"]["expected_last_segment"] in g["message"]
    # the ledger: the restore holds what was committed before the hole, nothing after it (no clock
    # threshold: the victim was archived, so all it held was committed before the test saw that)
    assert recovered and all(at < victim_seen for _, at in recovered)
    lost = [row for row in ledger.acked_by(disaster) if row[1] >= victim_seen]
    assert len(lost) >= 4 and not {s for s, _ in recovered} & {s for s, _, _ in lost}  # four segments' worth, all lost
    loss = assert_rpo_matches_ledger(r, ledger, recovered, disaster)
    assert loss >= (lost[-1][1] - victim_seen).total_seconds()  # the hole is before everything acknowledged since
    # the RPO is the replay figure (exact), not the canary's lower bound: the canary's table was
    # created after the hole, so its lower bound spans only the canary's warmup, which began after
    # the victim was archived, while the replay figure reaches back before it
    assert r["rpo"]["canary"]["exact"] is False and r["rpo"]["canary"]["seconds"] < r["rpo_seconds"]
    canary_first = _t(r["phases"][0]["evidence"]["first"]["committed_at"])
    assert canary_first > victim_seen and r["rpo"]["canary"]["seconds"] <= (disaster - canary_first).total_seconds() + EPSILON
    assert r["rpo"]["source"] == "replay" and r["rpo"]["exact"] is True
    assert r["verdicts"]["rpo"] == "missed" and "rpo-missed" in ids
    assert r["status"] == "failed" and verify_bundle(Path(r["report_dir"])) == []


def test_a_deleted_segment_fails_the_drill_with_the_segment_recovery_stopped_at(env, capsys):
    code, r, ledger, recovered, victim, seen = _damaged_drill(env, capsys, "deleted-segment", lambda p: p.unlink())
    assert code == 1
    _assert_stopped_at_the_hole(r, ledger, recovered, victim, seen)
    ids = {g["id"]: g for g in r["gaps"]}
    assert ids["pg-wal-gap"]["severity"] == "critical" and previous_segment(victim) in ids["pg-wal-gap"]["message"]


def test_a_corrupted_segment_is_an_archive_get_failure_and_fails_the_drill(env, capsys):
    def corrupt(p: Path) -> None:
        data = bytearray(p.read_bytes())
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0xFF
        os.chmod(p, 0o640)
        p.write_bytes(bytes(data))

    code, r, ledger, recovered, victim, seen = _damaged_drill(env, capsys, "corrupted-segment", corrupt)
    assert code == 1
    _assert_stopped_at_the_hole(r, ledger, recovered, victim, seen)
    ids = {g["id"]: g for g in r["gaps"]}
    g = ids["drill-archive-get-failed"]
    assert g["severity"] == "critical" and "unable to get" in g["message"] and victim in g["message"]
    assert "pg-wal-gap" not in ids  # the file is there: only reading it shows the damage
    log = Path(r["report_dir"], "evidence", "restored-postgres.log").read_text()
    assert f"unable to get {victim}" in log


def test_an_unreadable_repository_fails_before_the_primary_is_touched(env, capsys):
    pg, base, spec, db, conninfo = env
    ledger = Ledger(conninfo, "ledger_unreachable")
    repo2 = base / "repo2"
    mode = repo2.stat().st_mode
    try:
        wait_archived(pg, 1)
        os.chmod(repo2, 0)
        try:
            code, r = drill(capsys, spec, db, "unreachable", base / "reports")
        finally:
            os.chmod(repo2, mode)
        written = len(ledger.rows)
        wait_archived(pg, 2)  # the archiver recovers once the repository is back
        assert len(ledger.rows) > written and not ledger.error  # the primary never stopped
    finally:
        ledger.stop()
    assert code == 1 and r["status"] == "failed" and r["repo"] == 2
    ids = {g["id"]: g for g in r["gaps"]}
    assert ids["drill-repo-unreachable"]["severity"] == "critical" and "Permission denied" in ids["drill-repo-unreachable"]["message"]
    by = {p["name"]: p for p in r["phases"]}
    assert by["canary"]["ok"] is False and "could not be read" in by["canary"]["error"]
    assert by["disaster"]["skipped"] and by["restore"]["skipped"]
    assert r["disaster_at"] is None and r["rpo_seconds"] is None and r["verdicts"]["rpo"] == "unknown"
    assert pg.running and verify_bundle(Path(r["report_dir"])) == []


def test_a_repository_gone_at_the_disaster_leaves_a_stop_mode_primary_running(env):
    """The repository passes the preflight and is gone when the disaster comes (its backup directory
    moved away during the warmup): the snapshot fails, so the primary is not stopped."""
    from vigil.clock import SystemClock
    from vigil.dr.drill import Drill, prepare
    from vigil.spec import load_spec

    pg, base, spec, db, conninfo = env
    ledger = Ledger(conninfo, "ledger_vanishing")
    ctx = prepare(load_spec(spec), "stop-vanishing-repo", clock=SystemClock(), out_dir=base / "reports")
    backup_dir, away = base / "repo1" / "backup" / "ledger", base / "repo1-backup-away"

    def warmup(seconds: float) -> None:
        time.sleep(seconds)  # the drill's own warmup, then the repository goes
        backup_dir.rename(away)

    ctx.sleep = warmup
    try:
        r = Drill(ctx).run()
        written = len(ledger.rows)
        wait_archived(pg, 1)
        assert len(ledger.rows) > written and not ledger.error  # the primary still takes writes
    finally:
        ledger.stop()
        if away.exists():
            away.rename(backup_dir)
    by = {p["name"]: p for p in r["phases"]}
    assert r["status"] == "failed" and by["canary"]["ok"] and by["disaster"]["ok"] is False
    assert "has no backup/ledger directory" in by["disaster"]["error"] and by["restore"]["skipped"]
    assert "stop_seconds" not in by["disaster"]["evidence"] and pg.running
    ids = {g["id"]: g for g in r["gaps"]}
    assert ids["drill-repo-unreachable"]["severity"] == "critical" and "at the disaster" in ids["drill-repo-unreachable"]["message"]
    assert r["rpo_seconds"] is None and verify_bundle(Path(r["report_dir"])) == []


def test_destroy_loses_what_the_ledger_says_and_nothing_after_the_disaster_comes_back(env, capsys):
    pg, base, spec, db, conninfo = env
    ledger = Ledger(conninfo, "ledger_destroy")
    restored = None
    try:
        wait_archived(pg, 1)
        code, r = drill(capsys, spec, db, "destroy", base / "reports")
        ledger.stop()
        assert ledger.error  # the server went away under the ledger
        restored = Restored(r)
        recovered = restored.rows("ledger_destroy")
    finally:
        ledger.stop()
        if restored is not None:
            restored.close()
    disaster = parse_time(r["disaster_at"])
    assert code == 0 and r["status"] == "passed", r["gaps"]
    assert not pg.running and not (pg.data_dir / "PG_VERSION").exists()
    assert recovered and all(at <= disaster for _, at in recovered)
    assert [s for s, _ in recovered] == [s for s, _, _ in ledger.rows[: len(recovered)]]
    assert_rpo_matches_ledger(r, ledger, recovered, disaster)
    assert r["recovery_end"]["ok"] is True and r["rpo"]["exact"] is True
    assert r["rto"]["measured_seconds"] == r["rto_seconds"] and r["rto"]["detection_delay_seconds"] == 0
