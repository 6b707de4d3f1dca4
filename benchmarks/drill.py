"""A DR drill on a ~1 GB database: RTO, RPO under steady writes, and vigil's orchestration overhead.

1. a throwaway PostgreSQL 15 primary, WAL archiving through pgBackRest with ``archive_timeout=10s``
   (set by ``vigil backup setup``), two repositories;
2. ``pgbench -i -s 68`` (about 1 GB of tables and indexes), then a full backup into repo1;
3. a steady write load (``--tps`` small transactions per second) plus the drill's canary ledger;
4. the drill (``disaster: destroy``): RTO achieved, RPO achieved (the worse of the canary and replay
   figures), the time of the repository snapshot taken at the disaster instant, the archive end check;
5. side by side, after the drill, from the same repository and the same (now static) archived WAL,
   ``--rounds`` alternating runs of the raw restore by hand (``pgbackrest restore`` + ``pg_ctl
   start`` + waiting for the end of recovery, nothing else) and vigil's restore phase (restricted
   config naming a snapshot of the repository, the same restore, start, end of recovery, the
   checks; the snapshot itself is timed apart); the overhead is
   (median vigil - median raw) / median raw. The page cache is dropped before each run when this
   machine allows it (root, /proc/sys/vm/drop_caches writable).

Targets (issue 3): RPO achieved <= 15 s with archive_timeout=10s; overhead <= 10% of the restore.

Run: .venv/bin/python benchmarks/drill.py [--scale 68] [--tps 50] [--warmup 65] [--rounds 3] [--compress lz4] [--json]
Prints its figures; asserts nothing. Needs PostgreSQL 15 and pgBackRest (``make test`` installs them)
and about 3 GB of free space in the temp directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from vigil.clock import SystemClock
from vigil.dr.drill import Drill, prepare
from vigil.dr.postgres import osuser
from vigil.dr.postgres.cluster import LocalCluster
from vigil.dr.postgres.ops import engine_for, run_backups, setup
from vigil.dr.rpo import overhead
from vigil.spec import load_spec
from vigil.store import open_store

PG_BIN = "/usr/lib/postgresql/15/bin"

SPEC = """\
version: 1
services: {{db: {{}}}}
backups:
  postgres:
    stanza: bench
    data_dir: {base}/primary/data
    port: {port}
    socket_dir: {base}/primary/sock
    config: {base}/pgbackrest/pgbackrest.conf
    work_dir: {base}/pgbackrest
    archive_timeout: 10s
    compress_type: {compress}
    process_max: {procs}
    repos:
      - {{path: {base}/repo1}}
      - {{path: {base}/repo2}}
drills:
  - name: bench
    scenario: primary-loss
    phases:
      canary: {{interval: 1s, warmup: {warmup}s}}
      disaster: {{mode: destroy}}
      restore: {{dir: {base}/drill-restore}}
"""


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Load:
    """Steady small write transactions from one connection until the server goes away."""

    def __init__(self, conninfo: str, tps: float) -> None:
        self.conninfo, self.tps = conninfo, tps
        self.done = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS bench_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), pad text)")
                period = 1.0 / self.tps
                nxt = time.monotonic()
                while not self.stop.is_set():
                    conn.execute("INSERT INTO bench_writes (pad) VALUES (repeat('x', 200))")
                    self.done += 1
                    nxt += period
                    self.stop.wait(max(0.0, nxt - time.monotonic()))
        except Exception:
            return


def vigil_restore(loaded, clock, work: Path) -> dict:
    """vigil's restore phase alone (the restore from the repository snapshot, start, end of recovery,
    the archive checks on the restored cluster), into ``work``, then cleaned up; timed on the drill's
    clock. The snapshot of the repository (taken in the drill's disaster phase, inside the RTO) is
    taken first and timed apart."""
    from vigil.dr.drill import Phase
    from vigil.dr.drill.run import SNAPSHOT_DIR
    from vigil.dr.drill.snapshot import snapshot_repository

    ctx = prepare(loaded, "bench", clock=clock, allow_destroy=True)
    d = Drill(ctx)
    d.work = work
    osuser.make_dir(work, ctx.pgbackrest.os_user, mode=0o755)
    d.evidence_dir = work / "evidence"
    d.facts.disaster_at = clock.now()
    t0 = time.monotonic()
    d.snapshot = snapshot_repository(ctx.paths.repos[d.repo - 1], work / SNAPSHOT_DIR, ctx.pg.stanza, os_user=ctx.pgbackrest.os_user)
    snapshot_seconds = time.monotonic() - t0
    d.restore_config, _ = d._write_restore_config("pgbackrest.conf", d.snapshot.path)
    ph = Phase("restore", "Restore", clock.now())
    try:
        d._restore(ph)
        ph.end = clock.now()
    finally:
        if d.restored is not None:
            d.restored.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return {"seconds": float(ph.seconds), "pgbackrest_restore_seconds": ph.evidence["pgbackrest_restore_seconds"],
            "snapshot_seconds": snapshot_seconds, "snapshot_files": d.snapshot.files}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=68, help="pgbench scale (68 ~ 1 GB)")
    ap.add_argument("--tps", type=float, default=50, help="steady write transactions per second during the drill")
    ap.add_argument("--warmup", type=int, default=65,
                    help="seconds of canary + load before the disaster (not a multiple of archive_timeout: the backup's own WAL "
                         "switch starts the 10s cadence, and a disaster right after a forced switch would show a flattering RPO)")
    ap.add_argument("--compress", default="lz4", choices=["gz", "lz4", "zst", "none"])
    ap.add_argument("--procs", type=int, default=2, help="pgBackRest process-max")
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw / vigil restores for the overhead (medians compared)")
    ap.add_argument("--keep", action="store_true", help="keep the throwaway directory")
    ap.add_argument("--out", metavar="DIR", help="write the drill's report bundle here (default: inside the throwaway directory)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    os_user = osuser.effective_user(None)
    base = Path(tempfile.mkdtemp(prefix="vigil-bench-drill-"))
    base.chmod(0o755)
    clock = SystemClock()
    figures: dict = {"scale": a.scale, "tps": a.tps, "archive_timeout_seconds": 10, "compress": a.compress, "process_max": a.procs}
    primary = LocalCluster(base / "primary" / "data", socket_dir=base / "primary" / "sock", log_file=base / "primary" / "pg.log",
                           pg_bin=PG_BIN, settings={"max_wal_size": "4GB", "checkpoint_timeout": "15min"})
    raw: LocalCluster | None = None
    load: Load | None = None

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        osuser.make_dir(base / "primary", os_user, mode=0o755)
        primary.initdb()
        primary.start()
        spec_path = base / "vigil.yaml"
        spec_path.write_text(SPEC.format(base=base, port=primary.port, compress=a.compress, procs=a.procs, warmup=a.warmup))
        loaded = load_spec(spec_path)
        pgb = engine_for(loaded)
        if setup(pgb, check=False)["restart_needed"]:
            primary.stop()
            primary.start()
            setup(pgb, check=True)
        say(f"loading pgbench scale {a.scale} ...")
        t0 = time.monotonic()
        primary.run(["pgbench", "-i", "-s", str(a.scale), "-q", "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", "postgres", "postgres"],
                    timeout=3600)
        figures["load_seconds"] = round(time.monotonic() - t0, 1)
        figures["database_bytes"] = int(primary.sql("SELECT pg_database_size('postgres')")[0][0])
        say(f"  {figures['database_bytes'] / 2**30:.2f} GiB in {figures['load_seconds']}s; full backup into repo1 ...")
        store = open_store(f"sqlite:///{base / 'state.db'}")
        t0 = time.monotonic()
        run_backups(pgb, type_="full", repos=[1], clock=clock, store=store)
        figures["full_backup_seconds"] = round(time.monotonic() - t0, 1)
        figures["repo1_bytes"] = du(base / "repo1")
        say(f"  backup {figures['full_backup_seconds']}s, repo1 {figures['repo1_bytes'] / 2**20:.0f} MiB; steady load {a.tps:g} tx/s + drill ...")
        load = Load(primary.conninfo(), a.tps)
        load.thread.start()
        figures["page_cache_dropped"] = drop_caches()
        ctx = prepare(loaded, "bench", clock=clock, store=store, out_dir=Path(a.out).absolute() if a.out else base / "reports", allow_destroy=True, progress=say)
        report = Drill(ctx).run()
        load.stop.set()
        by = {p["name"]: p for p in report["phases"]}
        figures["writes_during_drill"] = load.done
        figures["drill_status"] = report["status"]
        figures["rto_seconds"] = report["rto_seconds"]
        figures["rpo_seconds"] = report["rpo_seconds"]
        figures["rpo_cross_check"] = report["rpo_cross_check"]
        ev = by["restore"]["evidence"]
        figures["drill_restore_phase_seconds"] = by["restore"]["seconds"]
        figures["drill_pgbackrest_restore_seconds"] = ev.get("pgbackrest_restore_seconds")
        figures["drill_recovery_seconds"] = ev.get("recovery_seconds")
        snap = by["disaster"]["evidence"].get("repository_snapshot") or {}
        figures["drill_snapshot_seconds"] = snap.get("seconds")
        figures["drill_snapshot_files"] = snap.get("files")
        figures["drill_snapshot_method"] = snap.get("method")
        figures["recovery_end"] = (report.get("recovery_end") or {}).get("note")
        figures["report"] = report["files"]["markdown"]
        # side by side, alternating, from the same repository and the same (now static) archive:
        # the raw restore by hand and vigil's restore phase; the page cache dropped before each
        say(f"restore side by side, {a.rounds} round(s): raw by hand vs vigil's restore phase ...")
        raw_times, raw_pgb, vig_times, vig_pgb, vig_snap = [], [], [], [], []
        cache_ok = figures["page_cache_dropped"]
        for i in range(a.rounds):
            rdir = base / f"raw{i}"
            osuser.make_dir(rdir, os_user, mode=0o755)
            osuser.make_dir(rdir / "data", os_user, mode=0o700)
            cache_ok = drop_caches() and cache_ok
            t0 = time.monotonic()
            subprocess.run(osuser.wrap([shutil.which("pgbackrest"), f"--config={pgb.config}", "--stanza=bench", f"--pg1-path={rdir / 'data'}",
                                        "--repo=1", "--type=default", "--archive-mode=off", "restore"], os_user),
                           check=True, capture_output=True, timeout=7200)
            t1 = time.monotonic()
            raw = LocalCluster(rdir / "data", socket_dir=rdir / "sock", log_file=rdir / "pg.log", pg_bin=PG_BIN, settings={"archive_mode": "off"})
            raw.start(timeout=3600)
            raw.wait_promoted(timeout=7200)
            t2 = time.monotonic()
            raw.destroy()
            raw = None
            shutil.rmtree(rdir, ignore_errors=True)
            raw_times.append(t2 - t0)
            raw_pgb.append(t1 - t0)
            cache_ok = drop_caches() and cache_ok
            v = vigil_restore(loaded, clock, base / f"vigil{i}")
            vig_times.append(v["seconds"])
            vig_pgb.append(v["pgbackrest_restore_seconds"])
            vig_snap.append(v["snapshot_seconds"])
        figures["page_cache_dropped"] = cache_ok
        med = statistics.median
        figures["raw_restore_and_recovery_seconds"] = [round(x, 3) for x in raw_times]
        figures["raw_pgbackrest_restore_seconds"] = [round(x, 3) for x in raw_pgb]
        figures["vigil_restore_phase_seconds"] = [round(x, 3) for x in vig_times]
        figures["vigil_pgbackrest_restore_seconds"] = [round(x, 3) for x in vig_pgb]
        figures["vigil_snapshot_seconds"] = [round(x, 3) for x in vig_snap]
        ov = overhead(Decimal(str(med(vig_times))), Decimal(str(med(raw_times))))
        figures["orchestration_overhead"] = None if ov is None else float(round(ov, 4))
        figures["targets"] = {
            "rpo_at_most_15s": figures["rpo_seconds"] is not None and figures["rpo_seconds"] <= 15,
            "overhead_at_most_10pct": ov is not None and ov <= Decimal("0.10"),
        }
        store.close()
    finally:
        if load is not None:
            load.stop.set()
        for c in (raw, primary):
            if c is not None:
                try:
                    c.destroy(remove=False)
                except Exception:
                    pass
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    if a.json:
        print(json.dumps(figures, indent=2, default=str))
    else:
        print(f"database: {figures['database_bytes'] / 2**30:.2f} GiB (pgbench scale {a.scale}); full backup {figures['full_backup_seconds']}s "
              f"({a.compress}, process-max {a.procs}), repo1 {figures['repo1_bytes'] / 2**20:.0f} MiB")
        print(f"drill: {figures['drill_status']}; RTO achieved {figures['rto_seconds']:.2f}s; RPO achieved {figures['rpo_seconds']:.2f}s "
              f"with archive_timeout=10s under {a.tps:g} tx/s ({figures['writes_during_drill']} writes)")
        print(f"restore inside the drill: {figures['drill_restore_phase_seconds']:.2f}s (pgbackrest {figures['drill_pgbackrest_restore_seconds']:.2f}s "
              f"+ start and recovery {figures['drill_recovery_seconds']:.2f}s); repository snapshot at the disaster "
              f"{figures['drill_snapshot_seconds']}s ({figures['drill_snapshot_files']} files, {figures['drill_snapshot_method']}); "
              f"archive end: {figures['recovery_end']}")
        print(f"side by side ({a.rounds} alternating rounds, page cache dropped before each: {figures['page_cache_dropped']}): "
              f"raw by hand {figures['raw_restore_and_recovery_seconds']} s vs vigil's restore phase {figures['vigil_restore_phase_seconds']} s "
              f"-> overhead of the medians {100 * (figures['orchestration_overhead'] or 0):.1f}% "
              f"(the snapshot before each vigil restore, not in the overhead: {figures['vigil_snapshot_seconds']} s)")
        print(f"targets: RPO <= 15s {'met' if figures['targets']['rpo_at_most_15s'] else 'MISSED'}; "
              f"overhead <= 10% {'met' if figures['targets']['overhead_at_most_10pct'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
