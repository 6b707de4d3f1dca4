"""PostgreSQL backups through the real pgBackRest against a real throwaway PostgreSQL 15 cluster:
config from the spec, WAL archiving, full and incremental backups into two repositories, list,
verify (with a WAL gap made on purpose), status metrics into the telemetry store, a PITR restore to
a target time with the later rows absent, and the failure paths (pgBackRest missing, a command
failing, a full disk)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from pgcluster import PgCluster
from vigil.cli.main import main
from vigil.dr import tables as dr_tables
from vigil.dr.postgres.cluster import LocalCluster
from vigil.dr.postgres.ops import engine_for
from vigil.dr.postgres.wal import parse_segment
from vigil.spec import load_spec
from vigil.store import open_store

pytestmark = pytest.mark.postgres

SPEC = """\
version: 1
services: {{db: {{}}}}
backups:
  postgres:
    stanza: {stanza}
    data_dir: {data}
    port: {port}
    socket_dir: {sock}
    pgbackrest: {pgbackrest}
    config: {base}/pgbackrest.conf
    work_dir: {base}/work
    archive_timeout: 1s
    repos:
      - {{path: {repo1}, region: here}}
      - {{path: {base}/repo2, region: there, role: cross-region}}
"""


def write_spec(pg: PgCluster, base: Path, *, stanza: str = "t", pgbackrest: str = "pgbackrest", repo1: Path | None = None) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    p = base / "vigil.yaml"
    p.write_text(SPEC.format(stanza=stanza, data=pg.data_dir, port=pg.port, sock=pg.socket_dir, pgbackrest=pgbackrest, base=base,
                             repo1=repo1 or base / "repo1"))
    return p


def vigil(*args: str, capsys=None) -> tuple[int, str, str]:
    if capsys is not None:
        capsys.readouterr()
    code = main([str(a) for a in args])
    if capsys is not None:
        out, err = capsys.readouterr()
        return code, out, err
    return code, "", ""


def conninfo(pg: PgCluster, db: str = "postgres") -> str:
    return f"host={pg.socket_dir} port={pg.port} user=postgres dbname={db}"


def wait_archived(pg: PgCluster, timeout: float = 30) -> str:
    """Switch WAL and wait (bounded) until the switched segment is archived; returns its name."""
    with psycopg.connect(conninfo(pg), autocommit=True) as conn:
        seg = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            if last and parse_segment(last) and parse_segment(last)[1] >= parse_segment(seg)[1]:
                return seg
            time.sleep(0.1)
    raise AssertionError(f"{seg} was not archived within {timeout}s")


@pytest.fixture(scope="module")
def env():
    """A cluster with WAL archiving set up by `vigil backup setup` and a full backup in both repositories."""
    pg = PgCluster(settings={"full_page_writes": "on"})
    base = Path(tempfile.mkdtemp(prefix="vigil-pgb-"))
    base.chmod(0o755)
    mounted = _mount_tmpfs(base / "repo2")
    try:
        pg.start()
        spec = write_spec(pg, base)
        db = f"sqlite:///{base / 'state.db'}"
        code, _, _ = vigil("backup", "setup", "--spec", spec, "--json")
        assert code == 1  # archive_mode was off: a restart is needed, and it says so
        pg.restart()
        code, _, _ = vigil("backup", "setup", "--spec", spec, "--json")
        assert code == 0
        code, _, _ = vigil("backup", "run", "--type", "full", "--spec", spec, "--db", db, "--json")
        assert code == 0
        yield pg, base, spec, db
    finally:
        pg.destroy()
        if mounted:
            subprocess.run(["umount", str(base / "repo2")], capture_output=True, timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def _mount_tmpfs(path: Path) -> bool:
    """Put ``path`` on a 64 MiB tmpfs owned by the postgres user (root only); False when impossible."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    import pwd

    pw = pwd.getpwnam("postgres")
    path.mkdir(parents=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=64m,mode=0750,uid={pw.pw_uid},gid={pw.pw_gid}", "tmpfs", str(path)],
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        path.rmdir()
        return False
    return True


def env_tmpfs(base: Path) -> bool:
    return os.path.ismount(base / "repo2")


def test_setup_writes_the_config_and_turns_on_archiving(env, capsys):
    pg, base, spec, _ = env
    conf = (base / "pgbackrest.conf").read_text()
    assert "repo1-retention-full-type=time\nrepo1-retention-full=35" in conf and f"repo2-path={base / 'repo2'}" in conf
    with psycopg.connect(conninfo(pg), autocommit=True) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'archive_timeout')").fetchall())
    assert settings["archive_mode"] == "on" and settings["archive_timeout"] == "1"
    assert settings["archive_command"] == f"{shutil.which('pgbackrest')} --config={base / 'pgbackrest.conf'} --stanza=t archive-push %p"
    code, out, _ = vigil("backup", "setup", "--spec", spec, "--json", capsys=capsys)  # idempotent
    assert code == 0 and json.loads(out)["archiving"]["changed"] == [] and json.loads(out)["checked"] is True


def test_full_and_incremental_backups_are_listed_and_recorded(env, capsys):
    pg, base, spec, db = env
    with psycopg.connect(conninfo(pg), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS growth (id serial, pad text)")
        conn.execute("INSERT INTO growth (pad) SELECT repeat('x', 100) FROM generate_series(1, 2000)")
    code, out, _ = vigil("backup", "run", "--type", "incr", "--repo", "1", "--spec", spec, "--db", db, "--json", capsys=capsys)
    assert code == 0, out
    run = json.loads(out)
    assert run["ok"] and [r["repo"] for r in run["results"]] == [1] and run["results"][0]["label"].endswith("I")
    code, out, _ = vigil("backup", "list", "--spec", spec, "--json", capsys=capsys)
    assert code == 0
    listed = json.loads(out)
    by_repo = {k: [b for b in listed["backups"] if b["repo"] == k] for k in (1, 2)}
    assert [b["type"] for b in by_repo[1]] == ["full", "incr"] and [b["type"] for b in by_repo[2]] == ["full"]
    assert by_repo[1][1]["prior"] == by_repo[1][0]["label"]
    assert all(b["wal_start"] and b["size"] > 0 for b in listed["backups"])
    code, out, _ = vigil("backup", "list", "--spec", spec, capsys=capsys)
    assert code == 0 and by_repo[1][1]["label"] in out
    store = open_store(db)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(dr_tables.backup_runs).order_by(dr_tables.backup_runs.c.id)).all()
    store.close()
    assert [(r.repo, r.type, r.status) for r in rows] == [(1, "full", "ok"), (2, "full", "ok"), (1, "incr", "ok")]
    assert rows[-1].label == by_repo[1][1]["label"] and rows[-1].finished_at


def test_status_pushes_backup_age_and_archive_lag_as_gauges(env, capsys):
    pg, base, spec, db = env
    code, out, _ = vigil("backup", "status", "--spec", spec, "--db", db, "--json", capsys=capsys)
    st = json.loads(out)
    assert code == 0, st["problems"]
    metrics = {(m["metric"], m["labels"].get("repo"), m["labels"].get("type")) for m in st["metrics"]}
    assert {("pgbackrest_backup_age_seconds", "1", "any"), ("pgbackrest_backup_age_seconds", "2", "full"),
            ("pg_archive_lag_seconds", None, None), ("pg_archive_failing", None, None)} <= metrics
    assert st["archiver"]["archive_mode"] == "on" and st["pushed"]["rejected"] == 0 and st["pushed"]["accepted"] == len(st["metrics"])
    store = open_store(db)
    names = {s.metric for s in store.series()}
    store.close()
    assert {"pgbackrest_backup_age_seconds", "pg_archive_lag_seconds", "pgbackrest_repo_ok"} <= names
    code, out, _ = vigil("backup", "status", "--spec", spec, "--db", db, "--no-push", capsys=capsys)
    assert code == 0 and "pgbackrest_backup_age_seconds{stanza=\"t\",repo=\"1\",type=\"any\"}" in out


def test_pitr_restore_to_a_target_time_leaves_the_later_rows_out(env):
    pg, base, spec, _ = env
    pgb = engine_for(load_spec(spec))
    with psycopg.connect(conninfo(pg), autocommit=True) as conn:
        conn.execute("CREATE TABLE pitr (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        conn.execute("INSERT INTO pitr (id) SELECT g FROM generate_series(1, 5) g")
        target = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(0.01)
        conn.execute("INSERT INTO pitr (id) SELECT g FROM generate_series(6, 10) g")
    wait_archived(pg)
    work = base / "pitr"
    restored = LocalCluster(work / "data", socket_dir=work / "sock", log_file=work / "pg.log", settings={"archive_mode": "off"})
    from vigil.dr.postgres import osuser

    osuser.make_dir(work, restored.os_user, mode=0o755)
    osuser.make_dir(work / "data", restored.os_user, mode=0o700)
    try:
        res = pgb.restore(work / "data", repo=1, target_type="time", target=target.strftime("%Y-%m-%d %H:%M:%S.%f+00"), archive_mode="off")
        assert res.exit_code == 0
        auto = (work / "data" / "postgresql.auto.conf").read_text()
        assert "archive_mode = 'off'" in auto and "recovery_target_time" in auto and "--repo=1" in auto
        restored.start()
        restored.wait_promoted(timeout=60)
        ids = [r[0] for r in restored.sql("SELECT id FROM pitr ORDER BY id")]
        assert ids == [1, 2, 3, 4, 5]  # 6..10 were committed after the target
        assert restored.sql("SHOW archive_mode") == [("off",)]
    finally:
        restored.destroy()


def test_pgbackrest_missing_is_an_external_error(env, capsys, tmp_path):
    pg, base, _, _ = env
    spec = write_spec(pg, Path(tempfile.mkdtemp(prefix="vigil-pgb-missing-")), pgbackrest="/nonexistent/pgbackrest")
    try:
        code, out, err = vigil("backup", "list", "--spec", spec, "--json", capsys=capsys)
        assert code == 3
        e = json.loads(out)["error"]
        assert e["code"] == "pgbackrest" and "not installed" in e["message"] and "apt-get install pgbackrest" in e["hint"]
        assert "hint:" in err
    finally:
        shutil.rmtree(spec.parent, ignore_errors=True)


def test_a_failing_pgbackrest_command_names_itself_and_what_to_do(env, capsys):
    pg, base, _, _ = env
    spec = write_spec(pg, Path(tempfile.mkdtemp(prefix="vigil-pgb-nostanza-")), stanza="never_created")
    try:
        code, out, _ = vigil("backup", "run", "--type", "full", "--repo", "1", "--spec", spec, "--json", capsys=capsys)
        assert code == 3
        e = json.loads(out)["error"]
        assert e["message"].startswith("pgbackrest backup failed (exit ") and "never_created" in e["message"]
        assert "vigil backup setup" in e["hint"]
    finally:
        shutil.rmtree(spec.parent, ignore_errors=True)


def test_a_full_repository_disk_fails_the_backup_with_exit_3_and_recovers(env, capsys):
    """repo2 sits on its own 64 MiB tmpfs (when the tests run as root and may mount): fill it up to
    half a backup's size, back up into it, expect pgBackRest's ENOSPC as exit 3 with the disk-full hint;
    free the space and the next backup succeeds. Without root, a repository directory nobody may
    write gives the same exit 3 (a permission error), which is what this test then checks."""
    pg, base, spec, _ = env
    if env_tmpfs(base):
        # leave half a full backup free: the backup cannot fit, the archiver's small WAL pushes still do
        # (so PostgreSQL's backup stop does not wait on a stuck archiver)
        full = engine_for(load_spec(spec)).info().newest(1, "full")
        leave = full.repo_size // 2
        filler = base / "repo2" / "filler"
        st = os.statvfs(base / "repo2")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
        try:
            code, out, _ = vigil("backup", "run", "--type", "full", "--repo", "2", "--spec", spec, "--json", capsys=capsys)
            assert code == 3
            e = json.loads(out)["error"]
            # pgBackRest 2.45 says "unable to write '<file>'" (the errno is lost across its local
            # protocol); vigil looks at the filesystem and says the disk is full, naming it
            assert "unable to write" in e["message"] and "/repo2/backup/t/" in e["message"], e
            assert e["hint"].startswith("the disk is full") and f"repo2 ({base / 'repo2'}) has " in e["hint"], e
        finally:
            filler.unlink()
        code, out, _ = vigil("backup", "run", "--type", "full", "--repo", "2", "--spec", spec, "--json", capsys=capsys)
        assert code == 0, out
    else:
        ro = Path(tempfile.mkdtemp(prefix="vigil-pgb-ro-"))
        try:
            (ro / "repo").mkdir()
            (ro / "repo").chmod(0o555)
            spec2 = write_spec(pg, ro, repo1=ro / "repo")
            code, out, _ = vigil("backup", "run", "--type", "full", "--repo", "1", "--spec", spec2, "--json", capsys=capsys)
            assert code == 3 and "ermission denied" in json.loads(out)["error"]["message"]
        finally:
            shutil.rmtree(ro, ignore_errors=True)


def test_verify_passes_then_finds_a_wal_gap(env, capsys):
    """Last in the module: it deletes a WAL segment from repo2 on purpose."""
    pg, base, spec, _ = env
    wait_archived(pg)
    code, out, _ = vigil("backup", "verify", "--spec", spec, "--json", capsys=capsys)
    v = json.loads(out)
    assert code == 0, v
    assert all(r["verify"]["status"] == "ok" and r["wal"]["ok"] and r["wal"]["segments"] >= 2 for r in v["repos"])
    wait_archived(pg)
    wait_archived(pg)
    pgb = engine_for(load_spec(spec))
    files = [f for f in pgb.archive_files(2) if parse_segment(f)]
    victim = sorted(files, key=lambda f: parse_segment(f)[1])[-2]  # not the newest: a hole in the middle
    (base / "repo2" / "archive" / "t" / victim).unlink()
    code, out, _ = vigil("backup", "verify", "--repo", "2", "--spec", spec, "--json", capsys=capsys)
    v = json.loads(out)
    assert code == 1
    wal = v["repos"][0]["wal"]
    seg = victim.split("/")[-1][:24]
    assert not wal["ok"] and len(wal["gaps"]) == 1 and wal["gaps"][0]["missing"] == 1
    assert wal["gaps"][0]["after"] < seg < wal["gaps"][0]["before"]
    code, out, _ = vigil("backup", "verify", "--repo", "2", "--spec", spec, capsys=capsys)
    assert code == 1 and "PROBLEMS" in out and "WAL gap" in out
