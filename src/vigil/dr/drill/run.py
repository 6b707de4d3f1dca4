"""A DR drill: a timed checklist of phases, each recorded with start, end and evidence.

1. **canary** - a heartbeat table on the primary written every ``interval`` (sequence, commit time),
   after a preflight: the chosen repository must hold a backup (else the primary is left alone);
2. **disaster** - the primary is declared lost, stopped at once, or stopped and its data directory
   destroyed (``phases.disaster.mode``);
3. **restore** - ``pgbackrest restore`` from the chosen repository (the cross-region one for a
   region loss; the restore's configuration names *only* that repository) to the latest point or a
   target time, into a fresh cluster started with ``archive_mode=off`` (pgBackRest's
   ``--archive-mode=off`` plus ``-c archive_mode=off``): the restored cluster never archives into
   the primary's repositories;
4. **write_check** - an insert and its read-back through the recovered database; its time is the
   end of the RTO. Then the newest canary row recovered gives the RPO;
5. **search** - the search index rebuilt from its snapshot plus the outbox re-seed, its count and
   watermark checked against the recovered database (:mod:`vigil.search`);
6. **report** - Markdown, HTML and JSON with the gap register, beside an evidence bundle with the
   SHA-256 of every file.

A phase that fails is recorded with its error; the phases that depend on it are skipped and the
report is still written. The run and every phase are written to the state store before they start.

Time comes from the injected clock (RTO is measured on it); the only real waits are the canary's
interval and warmup (the ledger must really run) and PostgreSQL's own recovery, each bounded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from vigil.clock import Clock, isoformat, parse_time
from vigil.dr import gaps as gapmod
from vigil.dr import records
from vigil.dr.drill_spec import DrillSpec
from vigil.dr.postgres import osuser
from vigil.dr.postgres.archive import read_archiver
from vigil.dr.postgres.cluster import LocalCluster, ensure_traversable
from vigil.dr.postgres.pgbackrest import PgBackRest, PgPaths, render_config
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.dr.rpo import Rpo, replay_cross_check, rpo, rto_seconds, seconds_between, verdict
from vigil.errors import ExternalError, NotFoundError, UsageError, VigilError

PHASES = (
    ("canary", "Canary ledger on the primary"),
    ("disaster", "Disaster"),
    ("restore", "Restore into a fresh cluster"),
    ("write_check", "Verified write health"),
    ("search", "Search index rebuild"),
    ("report", "Report"),
)


class Skip(Exception):
    """A phase that does not apply (recorded as skipped, not failed)."""


@dataclass
class Phase:
    name: str
    title: str
    start: datetime
    end: datetime | None = None
    ok: bool | None = None
    skipped: bool = False
    error: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> Decimal | None:
        return None if self.end is None else seconds_between(self.start, self.end)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "start": isoformat(self.start),
            "end": isoformat(self.end) if self.end else None,
            "seconds": float(self.seconds) if self.seconds is not None else None,
            "ok": self.ok,
            "skipped": self.skipped,
            "error": self.error,
            "evidence": self.evidence,
        }


# --- the canary ledger -----------------------------------------------------------------------------


class CanaryWriter:
    """Writes one row per ``interval`` into the canary table from its own thread and connection.

    ``confirmed`` holds every row whose commit the client saw: (seq, commit time from the server's
    ``clock_timestamp()``). The writer stops on :meth:`stop` or at the first error (the disaster)."""

    def __init__(self, connect: Callable[[], Any], table: str, interval: float, label: str) -> None:
        self.connect = connect
        self.table = table
        self.interval = interval
        self.label = label
        self.confirmed: list[tuple[int, datetime]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @staticmethod
    def create_table(conn: Any, table: str) -> None:
        from psycopg import sql

        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "committed_at timestamptz NOT NULL DEFAULT clock_timestamp(), drill text)"
            ).format(sql.Identifier(table))
        )

    def start(self) -> None:
        conn = self.connect()  # connect in the caller: a refused connection fails the phase at once
        self._thread = threading.Thread(target=self._run, args=(conn,), name="vigil-canary", daemon=True)
        self._thread.start()

    def _run(self, conn: Any) -> None:
        from psycopg import sql

        q = sql.SQL("INSERT INTO {} (drill) VALUES (%s) RETURNING seq, committed_at").format(sql.Identifier(self.table))
        try:
            while not self._stop.is_set():
                try:
                    seq, ts = conn.execute(q, (self.label,)).fetchone()
                except Exception as e:  # the server went away: that is the disaster
                    self.error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    return
                with self._lock:
                    self.confirmed.append((int(seq), ts))
                self._stop.wait(self.interval)
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def last(self) -> tuple[int, datetime] | None:
        with self._lock:
            return self.confirmed[-1] if self.confirmed else None

    @property
    def first(self) -> tuple[int, datetime] | None:
        with self._lock:
            return self.confirmed[0] if self.confirmed else None


# --- what the drill acts on ----------------------------------------------------------------------------


def primary_conninfo(pg: PostgresBackupSpec, paths: PgPaths, db: str | None = None) -> str:
    """libpq conninfo of the primary: ``host`` when the spec gives one, else the socket directory, else 127.0.0.1."""
    host = pg.host or (str(paths.socket_dir) if paths.socket_dir is not None else "127.0.0.1")
    return f"host={host} port={pg.port} user={pg.user} dbname={db or pg.database} connect_timeout=10"


def connect(conninfo: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as e:
        raise ExternalError(f"cannot connect to PostgreSQL ({_redact(conninfo)}): {str(e).strip()}",
                            hint="check backups.postgres port, socket_dir, host and user, and that the server runs") from None


def _redact(conninfo: str) -> str:
    return " ".join(p for p in conninfo.split() if not p.startswith("password="))


@dataclass
class DrillContext:
    """Everything a drill run needs, resolved from the spec."""

    drill: DrillSpec
    pg: PostgresBackupSpec
    paths: PgPaths
    pgbackrest: PgBackRest
    base_dir: Path
    clock: Clock
    out_dir: Path
    search: Any = None  # backups.search (vigil.search.spec.SearchBackupSpec) or None
    store: Any = None  # vigil.store.Store or None
    spec: Any = None  # the whole Spec, for the gap register
    spec_sha256: str | None = None
    allow_destroy: bool = False
    progress: Callable[[str], None] = lambda _m: None
    sleep: Callable[[float], None] = time.sleep


def prepare(loaded: Any, name: str, *, clock: Clock, store: Any = None, out_dir: str | Path | None = None,
            allow_destroy: bool = False, progress: Callable[[str], None] | None = None) -> DrillContext:
    """Resolve drill ``name`` of a loaded spec. Raises UsageError / NotFoundError before anything runs."""
    spec = loaded.spec
    drill = next((d for d in spec.drills if d.name == name), None)
    if drill is None:
        known = ", ".join(d.name for d in spec.drills) or "none"
        raise NotFoundError(f"no drill named {name!r} in the spec (drills: {known})", hint="declare it under drills:, or try `vigil drill demo`")
    pg = spec.backups.postgres if spec.backups is not None else None
    if pg is None:
        raise UsageError("a drill restores a PostgreSQL backup, and the spec has no backups.postgres",
                         hint="declare backups.postgres (stanza, data_dir, repos)")
    base = loaded.path.parent if loaded.path is not None else Path.cwd()
    paths = PgPaths.from_spec(pg, base)
    repo = drill_repo(drill, pg)
    if drill.phases.disaster.mode == "destroy" and not allow_destroy:
        raise UsageError(
            f"drill {name!r} destroys the primary's data directory ({paths.data_dir}); vigil does that only when told twice",
            hint="pass --allow-destroy (meant for throwaway clusters), or use disaster mode declare or stop",
        )
    if not 1 <= repo <= len(pg.repos):
        raise UsageError(f"drill {name!r} restores from repo {repo}, but backups.postgres.repos has {len(pg.repos)}",
                         hint="fix the drill's repo")
    out = Path(out_dir) if out_dir is not None else (base / drill.report_dir)
    return DrillContext(
        drill=drill, pg=pg, paths=paths, pgbackrest=PgBackRest(paths), base_dir=base, clock=clock, out_dir=out,
        search=getattr(spec.backups, "search", None), store=store, spec=spec, spec_sha256=getattr(loaded, "sha256", None),
        allow_destroy=allow_destroy, progress=progress or (lambda _m: None),
    )


def drill_repo(drill: DrillSpec, pg: PostgresBackupSpec) -> int:
    if drill.repo is not None:
        return drill.repo
    if drill.scenario == "region-loss":
        cross = pg.cross_region_repos()
        if not cross:
            raise UsageError(
                f"drill {drill.name!r} simulates a region loss but no repository is a cross-region copy",
                hint="add a second repository (role: cross-region) to backups.postgres.repos, or set the drill's repo",
            )
        return cross[0]
    return 1


# --- the run ---------------------------------------------------------------------------------------------


class Drill:
    """One run of a drill. :meth:`run` returns the report (a dict) and never raises for a phase
    failure: the report says what failed. Only an interrupt (Ctrl-C) is re-raised, after the report."""

    def __init__(self, ctx: DrillContext) -> None:
        self.ctx = ctx
        self.drill = ctx.drill
        self.repo = drill_repo(ctx.drill, ctx.pg)
        self.phases: list[Phase] = []
        self.run_id: int | None = None
        self.started_at = ctx.clock.now()
        stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        self.bundle = ctx.out_dir / f"{self.drill.name}-{stamp}"
        self.evidence_dir = self.bundle / "evidence"
        self.canary: CanaryWriter | None = None
        self.restored: LocalCluster | None = None
        self.work: Path | None = None
        self.restore_config: Path | None = None
        self.disaster_at: datetime | None = None
        self.first_write_at: datetime | None = None
        self.newest_recovered: tuple[int, datetime] | None = None
        self.replay_at: datetime | None = None
        self.restored_archive_mode: str | None = None
        self.rebuild_seconds: Decimal | None = None
        self.search_ok: bool | None = None
        self.search_problems: list[str] = []
        self.archiver_before: dict | None = None
        self.observations: list[str] = []
        self.scope: dict[str, Any] = {}
        self.info_dict: dict | None = None
        self.interrupted = False

    # -- plumbing --------------------------------------------------------------------------------

    def _say(self, msg: str) -> None:
        self.ctx.progress(msg)

    def _evidence_file(self, name: str, data: Any) -> str:
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        p = self.evidence_dir / name
        if isinstance(data, (dict, list)):
            p.write_text(json.dumps(data, indent=2, default=str) + "\n")
        elif isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(str(data))
        return f"evidence/{name}"

    def _phase(self, name: str, fn: Callable[[Phase], None], *, skip_reason: str | None = None) -> Phase:
        title = dict(PHASES)[name]
        ph = Phase(name, title, self.ctx.clock.now())
        self.phases.append(ph)
        seq = len(self.phases)
        if self.ctx.store is not None and self.run_id is not None:
            records.phase_started(self.ctx.store, self.run_id, seq, name, isoformat(ph.start))
        if skip_reason is not None:
            ph.skipped = True
            ph.error = None
            ph.evidence["skipped"] = skip_reason
        else:
            self._say(f"[{seq}/6] {title} ...")
            try:
                fn(ph)
                ph.ok = True
            except Skip as s:
                ph.skipped = True
                ph.evidence["skipped"] = str(s)
            except KeyboardInterrupt:
                ph.ok = False
                ph.error = "interrupted (Ctrl-C)"
                self.interrupted = True
            except VigilError as e:
                ph.ok = False
                ph.error = e.message + (f" (hint: {e.hint})" if e.hint else "")
            except Exception as e:  # a bug or an unexpected failure: still a report
                ph.ok = False
                ph.error = f"{type(e).__name__}: {str(e).strip() or 'no message'}"
                ph.evidence["traceback"] = traceback.format_exc(limit=8)
        ph.end = self.ctx.clock.now()
        state = "skipped" if ph.skipped else ("ok" if ph.ok else f"FAILED: {ph.error}")
        self._say(f"      {name}: {state} ({float(ph.seconds or 0):.1f}s)")
        if self.ctx.store is not None and self.run_id is not None:
            records.phase_finished(self.ctx.store, self.run_id, seq, ended_at=isoformat(ph.end), ok=None if ph.skipped else ph.ok,
                                   error=ph.error, evidence=ph.evidence)
        return ph

    def _conninfo(self, db: str | None = None) -> str:
        return primary_conninfo(self.ctx.pg, self.ctx.paths, db)

    # -- phases ----------------------------------------------------------------------------------

    def _canary(self, ph: Phase) -> None:
        ctx, d = self.ctx, self.drill
        os_user = ctx.pgbackrest.os_user
        # preflight: the restore's own configuration, naming only the chosen repository
        if d.phases.restore.dir:
            self.work = Path(d.phases.restore.dir)
            if not self.work.is_absolute():
                self.work = ctx.base_dir / self.work
            if self.work.exists() and any(self.work.iterdir()):
                raise UsageError(f"the restore directory {self.work} is not empty", hint="name an empty or new directory in phases.restore.dir")
            ensure_traversable(self.work, os_user)
            osuser.make_dir(self.work, os_user, mode=0o755)
        else:
            self.work = Path(tempfile.mkdtemp(prefix=f"vigil-drill-{d.name}-"))
            self.work.chmod(0o755)
            osuser.hand_over(self.work, os_user)
            ensure_traversable(self.work, os_user)
        ctx.pgbackrest.ensure_dirs()
        self.restore_config = self.work / "pgbackrest.conf"
        text = render_config(ctx.paths, repos=[self.repo], pg_path=self.work / "data", with_connection=False)
        self.restore_config.write_text(text)
        osuser.hand_over(self.restore_config, os_user)
        ph.evidence["restore_config"] = self._evidence_file("pgbackrest-restore.conf", text)
        from vigil.dr.postgres.pgbackrest import parse_info

        data = ctx.pgbackrest.info_raw(config=self.restore_config)
        info = parse_info(data, ctx.pg.stanza)
        self.info_dict = info.to_dict()
        ph.evidence["pgbackrest_info"] = self._evidence_file("pgbackrest-info.json", data)
        backups = [b for b in info.backups_in(self.repo) if not b.error]
        ph.evidence["repo"] = self.repo
        ph.evidence["repo_role"] = ctx.pg.repo_role(self.repo)
        ph.evidence["backups_in_repo"] = len(backups)
        if not backups:
            raise ExternalError(
                f"repo{self.repo} holds no backup: the restore could not succeed, so the primary was left untouched",
                hint=f"run `vigil backup run --repo {self.repo}` first",
            )
        newest = max(backups, key=lambda b: b.stop)
        ph.evidence["newest_backup"] = newest.to_dict()
        self.scope["newest_backup"] = newest.label
        # the ledger
        with connect(self._conninfo()) as conn:
            CanaryWriter.create_table(conn, d.phases.canary.table)
            try:
                self.archiver_before = read_archiver(conn).to_dict()
            except VigilError:
                self.archiver_before = None
            self.scope["postgres_version"] = conn.execute("SHOW server_version").fetchone()[0]
        self.canary = CanaryWriter(lambda: connect(self._conninfo()), d.phases.canary.table, float(d.phases.canary.interval),
                                   f"{d.name}@{isoformat(self.started_at)}")
        self.canary.start()
        warm = float(d.phases.canary.warmup)
        self._say(f"      canary: one row every {float(d.phases.canary.interval):g}s, {warm:g}s before the disaster")
        ctx.sleep(warm)
        if self.canary.error:
            raise ExternalError(f"the canary ledger stopped before the disaster: {self.canary.error}")
        first, last = self.canary.first, self.canary.last
        ph.evidence["table"] = d.phases.canary.table
        ph.evidence["interval_seconds"] = float(d.phases.canary.interval)
        ph.evidence["rows_before_disaster"] = len(self.canary.confirmed)
        ph.evidence["first"] = _row(first)
        ph.evidence["last"] = _row(last)
        if self.archiver_before:
            ph.evidence["archiver"] = self.archiver_before

    def _disaster(self, ph: Phase) -> None:
        ctx = self.ctx
        mode = self.drill.phases.disaster.mode
        ph.evidence["mode"] = mode
        try:
            with connect(self._conninfo()) as conn:
                self.archiver_before = read_archiver(conn).to_dict()
                ph.evidence["archiver_at_disaster"] = self._evidence_file("archiver-at-disaster.json", self.archiver_before)
        except VigilError as e:
            ph.evidence["archiver_at_disaster"] = f"unreadable: {e.message}"
        primary = LocalCluster(ctx.paths.data_dir, port=ctx.pg.port, socket_dir=ctx.paths.socket_dir, pg_bin=ctx.pg.pg_bin,
                               os_user=ctx.pg.os_user) if mode != "declare" else None
        if mode == "declare":
            assert self.canary is not None
            self.canary.stop()
            self.disaster_at = ctx.clock.now()
            self.observations.append(
                "disaster mode `declare`: the primary kept running, so WAL it archived after the disaster time may have been "
                "replayed; the RPO achieved is a best case"
            )
        else:
            assert primary is not None
            if not (ctx.paths.data_dir / "PG_VERSION").is_file():
                raise UsageError(f"{ctx.paths.data_dir} is not a PostgreSQL data directory (no PG_VERSION)",
                                 hint="check backups.postgres.data_dir")
            self.disaster_at = ctx.clock.now()
            t0 = time.monotonic()
            primary.stop("immediate", timeout=60)
            ph.evidence["stop_seconds"] = round(time.monotonic() - t0, 3)
            if mode == "destroy":
                shutil.rmtree(ctx.paths.data_dir)
                ph.evidence["data_dir_destroyed"] = str(ctx.paths.data_dir)
            else:
                self.observations.append(f"the primary was stopped (immediate) and left stopped; its data is in {ctx.paths.data_dir}")
            assert self.canary is not None
            t0 = time.monotonic()
            self.canary.stop()
            ph.evidence["canary_join_seconds"] = round(time.monotonic() - t0, 3)
        ph.evidence["disaster_at"] = isoformat(self.disaster_at)
        assert self.canary is not None
        last = self.canary.last
        ph.evidence["last_canary_committed"] = _row(last)
        ph.evidence["canary_rows_committed"] = len(self.canary.confirmed)
        ph.evidence["canary_stopped_by"] = self.canary.error or "the drill"
        ph.evidence["canary"] = self._evidence_file(
            "canary-ledger.json", [{"seq": s, "committed_at": isoformat(t)} for s, t in self.canary.confirmed]
        )

    def _restore(self, ph: Phase) -> None:
        ctx, d = self.ctx, self.drill
        assert self.work is not None and self.restore_config is not None and self.disaster_at is not None
        os_user = ctx.pgbackrest.os_user
        data = self.work / "data"
        osuser.make_dir(data, os_user, mode=0o700)
        target_type, target = "default", None
        if d.target == "time":
            target_type = "time"
            when = parse_time(d.target_time) if d.target_time else self.disaster_at - timedelta(seconds=float(d.offset()))
            target = when.strftime("%Y-%m-%d %H:%M:%S.%f+00")
            ph.evidence["target_time"] = isoformat(when)
        ph.evidence.update({"repo": self.repo, "repo_role": ctx.pg.repo_role(self.repo), "target": d.describe_target(),
                            "data_dir": str(data), "archive_mode_option": "off"})
        timeout = float(d.phases.restore.timeout)
        t0 = time.monotonic()
        res = ctx.pgbackrest.restore(data, repo=self.repo, target_type=target_type, target=target, archive_mode="off",
                                     config=self.restore_config, timeout=timeout)
        restore_secs = time.monotonic() - t0
        ph.evidence["pgbackrest_restore_seconds"] = round(restore_secs, 3)
        ph.evidence["restore_log"] = self._evidence_file("pgbackrest-restore.log", f"$ {' '.join(res.command)} restore\n{res.output}")
        self.restored = LocalCluster(data, port=d.phases.restore.port, socket_dir=self.work / "sock", log_file=self.work / "postgres.log",
                                     pg_bin=ctx.pg.pg_bin, os_user=ctx.pg.os_user,
                                     settings={"archive_mode": "off", "hot_standby": "on"})
        ph.evidence["port"] = self.restored.port
        t1 = time.monotonic()
        remaining = max(30.0, timeout - restore_secs)
        self.restored.start(timeout=int(min(remaining, 3600)))
        self.restored.wait_promoted(timeout=remaining, db=ctx.pg.database)
        ph.evidence["recovery_seconds"] = round(time.monotonic() - t1, 3)
        with self.restored.connect(ctx.pg.database) as conn:
            self.replay_at = conn.execute("SELECT pg_last_xact_replay_timestamp()").fetchone()[0]
            self.restored_archive_mode = conn.execute("SHOW archive_mode").fetchone()[0]
            tli = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0]
        ph.evidence["last_replayed_commit"] = isoformat(self.replay_at) if self.replay_at else None
        ph.evidence["restored_archive_mode"] = self.restored_archive_mode
        ph.evidence["timeline"] = tli
        if self.restored_archive_mode != "off":
            raise ExternalError(f"the restored cluster runs with archive_mode = {self.restored_archive_mode}; stopping it",
                                hint="this must never happen: report it")

    def _write_check(self, ph: Phase) -> None:
        from psycopg import sql

        ctx, d = self.ctx, self.drill
        assert self.restored is not None
        table = d.phases.write_check.table
        marker = f"{d.name}@{isoformat(self.started_at)}"
        with self.restored.connect(ctx.pg.database) as conn:
            conn.execute(f"SET statement_timeout = {int(float(d.phases.write_check.timeout) * 1000)}")
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                                 "drill text NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())").format(sql.Identifier(table)))
            rid, wrote_at = conn.execute(sql.SQL("INSERT INTO {} (drill) VALUES (%s) RETURNING id, written_at").format(sql.Identifier(table)),
                                         (marker,)).fetchone()
            back = conn.execute(sql.SQL("SELECT drill FROM {} WHERE id = %s").format(sql.Identifier(table)), (rid,)).fetchone()
            if back is None or back[0] != marker:
                raise ExternalError(f"the verified write did not read back (wrote {marker!r}, read {back!r})")
            self.first_write_at = ctx.clock.now()
            ph.evidence["first_verified_write_at"] = isoformat(self.first_write_at)
            ph.evidence["write"] = {"table": table, "id": rid, "server_time": isoformat(wrote_at)}
            # the RPO: the newest canary row present after recovery
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (d.phases.canary.table,)).fetchone()[0]
            if exists:
                row = conn.execute(sql.SQL("SELECT seq, committed_at FROM {} ORDER BY seq DESC LIMIT 1").format(
                    sql.Identifier(d.phases.canary.table))).fetchone()
                label = f"{d.name}@{isoformat(self.started_at)}"
                mine = conn.execute(sql.SQL("SELECT count(*), max(seq) FROM {} WHERE drill = %s").format(
                    sql.Identifier(d.phases.canary.table)), (label,)).fetchone()
                self.newest_recovered = (int(row[0]), row[1]) if row else None
                ph.evidence["canary_rows_recovered_this_drill"] = int(mine[0])
            else:
                self.observations.append(f"the canary table {d.phases.canary.table} is absent from the recovered database: no WAL after its creation was restored")
            ph.evidence["newest_canary_recovered"] = _row(self.newest_recovered)
            counts = _row_counts(conn)
        ph.evidence["row_counts"] = self._evidence_file("row-counts.json", counts)

    def _search(self, ph: Phase) -> None:
        ctx, d = self.ctx, self.drill
        if not d.phases.search.enabled:
            raise Skip("disabled in the drill (phases.search.enabled: false)")
        if ctx.search is None:
            raise Skip("no backups.search in the spec: no search index to rebuild")
        if ctx.search.engine != "embedded":
            raise Skip(f"the drill rebuilds into a scratch embedded index only; engine {ctx.search.engine} is not rebuilt by drills yet")
        try:
            from vigil.search import EmbeddedEngine, check_index, load_snapshot, rebuild
        except (ImportError, AttributeError) as e:
            raise Skip(f"vigil.search is not available ({e})") from None
        assert self.restored is not None and self.work is not None
        snap_dir = Path(d.phases.search.snapshot) if d.phases.search.snapshot else _newest_snapshot(ctx.base_dir / ctx.search.snapshot_dir)
        if snap_dir is None:
            raise ExternalError(f"no search snapshot under {ctx.base_dir / ctx.search.snapshot_dir}",
                                hint="take one (`vigil search snapshot`) before drilling")
        if not snap_dir.is_absolute():
            snap_dir = ctx.base_dir / snap_dir
        snapshot = load_snapshot(snap_dir)
        ph.evidence["snapshot"] = {"path": str(snap_dir), "watermark": snapshot.watermark, "count": snapshot.count, "created_at": snapshot.created_at}
        url = self.restored.url(ctx.pg.database)
        index_path = self.work / "search-index.sqlite"
        engine = EmbeddedEngine(index_path)
        try:
            collections = list(ctx.search.collections) or None
            t0 = time.monotonic()
            result = rebuild(engine, snapshot, url, outbox=ctx.search.outbox, batch_size=ctx.search.batch_size, collections=collections)
            self.rebuild_seconds = Decimal(str(round(time.monotonic() - t0, 6)))
            check = check_index(engine, url, outbox=ctx.search.outbox, collections=collections)
        finally:
            engine.close()
        rd, cd = result.to_dict(), check.to_dict()
        ph.evidence["rebuild"] = rd
        ph.evidence["check"] = cd
        ph.evidence["rebuild_seconds"] = float(self.rebuild_seconds)
        ph.evidence["search"] = self._evidence_file("search-rebuild.json", {"rebuild": rd, "check": cd})
        self.search_ok = bool(check.ok)
        self.search_problems = list(check.problems)
        if not check.ok:
            raise ExternalError("the rebuilt index disagrees with the database: " + "; ".join(check.problems[:3]))

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> dict:
        ctx, d = self.ctx, self.drill
        if ctx.store is not None:
            self.run_id = records.drill_started(ctx.store, name=d.name, scenario=d.scenario, started_at=isoformat(self.started_at),
                                                rto_objective=d.objectives.rto, rpo_objective=d.objectives.rpo, spec_sha256=ctx.spec_sha256)
        self.bundle.mkdir(parents=True, exist_ok=True)
        self.scope.update({
            "stanza": ctx.pg.stanza,
            "database": ctx.pg.database,
            "primary": {"data_dir": str(ctx.paths.data_dir), "port": ctx.pg.port},
            "repositories": [{"repo": i, "path": str(p), "role": ctx.pg.repo_role(i), "region": ctx.pg.repos[i - 1].region}
                             for i, p in enumerate(ctx.paths.repos, 1)],
        })
        try:
            c = self._phase("canary", self._canary)
            dep = None if c.ok else "the canary phase failed: nothing was done to the primary"
            dis = self._phase("disaster", self._disaster, skip_reason=dep)
            dep = dep or (None if dis.ok else "the disaster phase failed")
            r = self._phase("restore", self._restore, skip_reason=dep)
            dep = dep or (None if r.ok else "the restore failed")
            self._phase("write_check", self._write_check, skip_reason=dep)
            self._phase("search", self._search, skip_reason=dep)
        finally:
            if self.canary is not None:
                self.canary.stop()
        self._keep_server_log()
        rep = self._phase("report", lambda ph: None)
        report = self.build_report(rep)
        from vigil.dr.report import write_bundle

        written = write_bundle(self.bundle, report)
        report["files"] = written
        self._cleanup()
        if ctx.store is not None and self.run_id is not None:
            records.drill_finished(ctx.store, self.run_id, finished_at=report["finished_at"], passed=report["status"] == "passed",
                                   rto=_dec(report["rto_seconds"]), rpo=_dec(report["rpo_seconds"]), gaps=len(report["gaps"]),
                                   report_dir=str(self.bundle), report=report)
        if self.interrupted:
            raise KeyboardInterrupt
        return report

    def _keep_server_log(self) -> None:
        """The restored cluster's server log goes into the evidence (before the checksums are taken)."""
        if self.restored is None:
            return
        try:
            if self.restored.log_file.exists():
                self.evidence_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.restored.log_file, self.evidence_dir / "restored-postgres.log")
        except OSError:
            pass

    def _cleanup(self) -> None:
        keep = self.drill.phases.restore.keep
        if self.restored is not None:
            if not keep:
                try:
                    self.restored.destroy(remove=False)
                except VigilError:
                    pass
        if self.work is not None and not keep and not self.drill.phases.restore.dir:
            shutil.rmtree(self.work, ignore_errors=True)

    def build_report(self, report_phase: Phase) -> dict:
        ctx, d = self.ctx, self.drill
        last = self.canary.last if self.canary else None
        first = self.canary.first if self.canary else None
        rto = rto_seconds(self.disaster_at, self.first_write_at) if self.disaster_at else None
        r: Rpo = rpo(last[1] if last else None, self.newest_recovered[1] if self.newest_recovered else None,
                     ledger_started=first[1] if first else None)
        if self.first_write_at is None:
            r = Rpo(None, False, "the recovery did not finish: nothing to measure")
        cross = replay_cross_check(last[1] if last else None, self.newest_recovered[1] if self.newest_recovered else None, self.replay_at)
        restore_phase = next((p for p in self.phases if p.name == "restore"), None)
        write_phase = next((p for p in self.phases if p.name == "write_check"), None)
        obs = gapmod.Observed(
            restore_ok=None if restore_phase is None or restore_phase.skipped else bool(restore_phase.ok),
            restore_error=(restore_phase.error or "").splitlines()[0] if restore_phase and restore_phase.error else None,
            write_ok=None if write_phase is None or write_phase.skipped else bool(write_phase.ok),
            rto_seconds=rto,
            rpo_seconds=r.seconds,
            rpo_exact=r.exact,
            rebuild_seconds=self.rebuild_seconds,
            search_ok=self.search_ok,
            search_problems=self.search_problems,
            restored_archive_mode=self.restored_archive_mode,
            now=ctx.clock.now(),
        )
        if self.archiver_before:
            obs.archive_timeout_seconds = self.archiver_before.get("archive_timeout_seconds")
            obs.archive_mode = self.archiver_before.get("archive_mode")
            lf, la = self.archiver_before.get("last_failed_time"), self.archiver_before.get("last_archived_time")
            obs.archive_failing = bool(lf and (not la or lf > la))
        if self.info_dict is not None:
            good = [b for b in self.info_dict["backups"] if b["repo"] == self.repo and not b["error"]]
            obs.backup_count = {self.repo: len(good)}
            if good:
                newest_stop = max(parse_time(b["stop"]) for b in good)
                obs.backup_age_seconds = {self.repo: max(Decimal(0), seconds_between(newest_stop, self.started_at))}
        if ctx.store is not None:
            prev = [h for h in records.drill_history(ctx.store, name=d.name, limit=5) if h["id"] != self.run_id and h["finished_at"]]
            if prev:
                obs.last_drill_at = parse_time(prev[0]["started_at"])
        spec_side = gapmod.spec_gaps(ctx.spec, rpo_objective=d.objectives.rpo) if ctx.spec is not None else []
        gaps = gapmod.register(spec_side, gapmod.observed_gaps(obs, rto=d.objectives.rto, rpo=d.objectives.rpo, rebuild=d.objectives.rebuild,
                                                                backup_interval=ctx.pg.backup_interval))
        verdicts = {
            "rto": verdict(rto, d.objectives.rto),
            "rpo": verdict(r.seconds, d.objectives.rpo),
            "rebuild": verdict(self.rebuild_seconds, d.objectives.rebuild),
        }
        phases_ok = all(p.ok or p.skipped for p in self.phases if p.name != "report")
        passed = phases_ok and verdicts["rto"] == "met" and verdicts["rpo"] == "met" and verdicts["rebuild"] != "missed" and not self.interrupted
        if cross.consistent is False:
            self.observations.append("cross-check: " + cross.note)
        ato = (self.archiver_before or {}).get("archive_timeout_seconds")
        if ato and r.seconds is not None and r.exact:
            self.observations.append(
                f"with archive_timeout = {ato}s a disaster loses up to about {ato}s of commits plus the time to push a segment; "
                "one drill samples one point of that range"
            )
        if self.replay_at is not None and r.seconds is not None:
            self.observations.append(f"pg_last_xact_replay_timestamp() after recovery: {isoformat(self.replay_at)}")
        report_phase.ok = True
        finished = ctx.clock.now()
        report_phase.end = finished
        return {
            "format": 1,
            "drill": d.name,
            "description": d.description,
            "scenario": d.scenario,
            "repo": self.repo,
            "repo_role": ctx.pg.repo_role(self.repo),
            "target": {"type": d.target, "describe": d.describe_target()},
            "status": "passed" if passed else "failed",
            "started_at": isoformat(self.started_at),
            "finished_at": isoformat(finished),
            "disaster_at": isoformat(self.disaster_at) if self.disaster_at else None,
            "first_verified_write_at": isoformat(self.first_write_at) if self.first_write_at else None,
            "rto_seconds": float(rto) if rto is not None else None,
            "rpo_seconds": float(r.seconds) if r.seconds is not None else None,
            "rebuild_seconds": float(self.rebuild_seconds) if self.rebuild_seconds is not None else None,
            "rpo": {**r.to_dict(), "last_committed_before_disaster": _row(last), "newest_recovered": _row(self.newest_recovered)},
            "rpo_cross_check": {**cross.to_dict(), "last_replayed_commit": isoformat(self.replay_at) if self.replay_at else None},
            "objectives": {"rto_seconds": float(d.objectives.rto), "rpo_seconds": float(d.objectives.rpo),
                           "rebuild_seconds": float(d.objectives.rebuild)},
            "verdicts": verdicts,
            "phases": [p.to_dict() for p in self.phases],
            "gaps": [g.to_dict() for g in gaps],
            "observations": list(self.observations),
            "scope": self.scope,
            "report_dir": str(self.bundle),
            "spec_sha256": ctx.spec_sha256,
            "run_id": self.run_id,
        }


def run_drill(ctx: DrillContext) -> dict:
    return Drill(ctx).run()


# --- helpers ----------------------------------------------------------------------------------------------


def _row(r: tuple[int, datetime] | None) -> dict | None:
    return None if r is None else {"seq": r[0], "committed_at": isoformat(r[1])}


def _dec(v: float | None) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _row_counts(conn: Any, limit: int = 200) -> dict[str, int]:
    """Exact row counts of the user tables (at most ``limit`` tables) of the recovered database."""
    from psycopg import sql

    rows = conn.execute(
        "SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY schemaname, relname LIMIT %s", (limit,)
    ).fetchall()
    out: dict[str, int] = {}
    for schema, rel in rows:
        out[f"{schema}.{rel}"] = int(conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(rel))).fetchone()[0])
    return out


def _newest_snapshot(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    cands = [p for p in root.iterdir() if (p / "manifest.json").is_file()]
    return max(cands, key=lambda p: (p / "manifest.json").stat().st_mtime) if cands else None
