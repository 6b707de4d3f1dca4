"""The run: each phase does its I/O and records what it saw into :class:`~vigil.dr.drill.outcome.DrillFacts`;
:func:`~vigil.dr.drill.outcome.conclude` (pure) turns the facts into the report."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import traceback
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from vigil.clock import isoformat, parse_time
from vigil.dr import gaps as gapmod
from vigil.dr import records
from vigil.dr.drill.canary import CanaryWriter
from vigil.dr.drill.context import DrillContext, connect, drill_repo
from vigil.dr.drill.outcome import PHASES, DrillFacts, Phase, Skip, conclude, row_dict
from vigil.dr.drill.snapshot import RepoSnapshot, RepoSnapshotError, snapshot_repository
from vigil.dr.postgres import osuser
from vigil.dr.postgres.archive import read_archiver
from vigil.dr.postgres.cluster import LocalCluster, ensure_traversable
from vigil.dr.postgres.pgbackrest import (
    archive_id_from_info_file,
    backup_for_target,
    backups_from_info_file,
    error_lines,
    parse_info,
    render_config,
)
from vigil.dr.postgres.wal import DEFAULT_SEGMENT_SIZE, check_continuity, newest_history_name, parse_segment, read_history, recovery_end
from vigil.errors import ExternalError, UsageError, VigilError

SNAPSHOT_DIR = "repo-snapshot"


class Drill:
    """One run of a drill. :meth:`run` returns the report (a dict) and never raises for a phase
    failure: the report says what failed. Only an interrupt (Ctrl-C) is re-raised, after the report."""

    def __init__(self, ctx: DrillContext) -> None:
        self.ctx = ctx
        self.drill = ctx.drill
        self.repo = drill_repo(ctx.drill, ctx.pg)
        self.run_id: int | None = None
        self.started_at = ctx.clock.now()
        self.facts = DrillFacts(drill=ctx.drill, repo=self.repo, repo_role=ctx.pg.repo_role(self.repo), started_at=self.started_at)
        stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        self.bundle = ctx.out_dir / f"{self.drill.name}-{stamp}"
        self.evidence_dir = self.bundle / "evidence"
        self.canary: CanaryWriter | None = None
        self.restored: LocalCluster | None = None
        self.work: Path | None = None
        self.restore_config: Path | None = None
        self.snapshot: RepoSnapshot | None = None
        self.preflight_backups: list = []

    @property
    def phases(self) -> list[Phase]:
        return self.facts.phases

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
                self.facts.interrupted = True
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

    def _connect_primary(self) -> Any:
        return connect(self.ctx.pg, self.ctx.paths)

    def _write_restore_config(self, name: str, repo_path: Path | None) -> tuple[Path, str]:
        """A pgBackRest configuration naming only the drill's repository (at ``repo_path`` when given),
        the restore target as ``pg1-path``, and no connection to the primary."""
        assert self.work is not None
        path = self.work / name
        text = render_config(self.ctx.paths, repos=[self.repo], pg_path=self.work / "data", with_connection=False,
                             repo_paths={self.repo: repo_path} if repo_path is not None else None)
        path.write_text(text)
        osuser.hand_over(path, self.ctx.pgbackrest.os_user)
        return path, text

    # -- phases ----------------------------------------------------------------------------------

    def _canary(self, ph: Phase) -> None:
        """Preflight (the repository holds a backup and can be read, else the primary is left
        alone), then the ledger, written for ``warmup``."""
        ctx, d = self.ctx, self.drill
        os_user = ctx.pgbackrest.os_user
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
        preflight, text = self._write_restore_config("pgbackrest-preflight.conf", None)
        ph.evidence["preflight_config"] = self._evidence_file("pgbackrest-preflight.conf", text)
        data = ctx.pgbackrest.info_raw(config=preflight)
        info = parse_info(data, ctx.pg.stanza)
        ph.evidence["pgbackrest_info"] = self._evidence_file("pgbackrest-info.json", data)
        ph.evidence["repo"] = self.repo
        ph.evidence["repo_role"] = ctx.pg.repo_role(self.repo)
        status = next((r for r in info.repos if r.key == self.repo), None)
        backups = [b for b in info.backups_in(self.repo) if not b.error]
        ph.evidence["backups_in_repo"] = len(backups)
        if status is not None and status.code not in (0, 2):  # 2: "no valid backups", judged below
            self.facts.repo_unreachable = f"repo{self.repo} ({ctx.paths.repos[self.repo - 1]}) could not be read: {status.message}"
            raise ExternalError(f"{self.facts.repo_unreachable}; the restore could not succeed, so the primary was left untouched",
                                hint="check the repository's path, mount and permissions (`vigil backup list`)")
        self.facts.backups_in_repo = len(backups)
        if not backups:
            raise ExternalError(
                f"repo{self.repo} holds no backup: the restore could not succeed, so the primary was left untouched",
                hint=f"run `vigil backup run --repo {self.repo}` first",
            )
        newest = max(backups, key=lambda b: b.stop)
        self.preflight_backups = backups
        self.facts.newest_backup_stop = newest.stop
        ph.evidence["newest_backup"] = newest.to_dict()
        self.facts.scope["newest_backup"] = newest.label
        # the ledger
        with self._connect_primary() as conn:
            CanaryWriter.create_table(conn, d.phases.canary.table)
            try:
                self.facts.archiver_before = read_archiver(conn).to_dict()
            except VigilError:
                self.facts.archiver_before = None
            self.facts.scope["postgres_version"] = conn.execute("SHOW server_version").fetchone()[0]
        self.canary = CanaryWriter(self._connect_primary, d.phases.canary.table, float(d.phases.canary.interval),
                                   f"{d.name}@{isoformat(self.started_at)}")
        self.canary.start()
        warm = float(d.phases.canary.warmup)
        self._say(f"      canary: one row every {float(d.phases.canary.interval):g}s, {warm:g}s before the disaster")
        ctx.sleep(warm)
        if self.canary.error:
            raise ExternalError(f"the canary ledger stopped before the disaster: {self.canary.error}")
        ph.evidence["table"] = d.phases.canary.table
        ph.evidence["interval_seconds"] = float(d.phases.canary.interval)
        ph.evidence["rows_before_disaster"] = len(self.canary.rows())
        ph.evidence["first"] = row_dict(self.canary.first)
        ph.evidence["last"] = row_dict(self.canary.last)
        if self.facts.archiver_before:
            ph.evidence["archiver"] = self.facts.archiver_before

    def _disaster(self, ph: Phase) -> None:
        """The disaster instant, the repository snapshot taken at it, then the primary's fate."""
        ctx, f = self.ctx, self.facts
        mode = self.drill.phases.disaster.mode
        ph.evidence["mode"] = mode
        archiver = None
        try:
            with self._connect_primary() as conn:
                archiver = read_archiver(conn)
                f.archiver_before = archiver.to_dict()
                ph.evidence["archiver_at_disaster"] = self._evidence_file("archiver-at-disaster.json", f.archiver_before)
        except VigilError as e:
            ph.evidence["archiver_at_disaster"] = f"unreadable: {e.message}"
        primary = None
        if mode != "declare":
            primary = LocalCluster(ctx.paths.data_dir, port=ctx.pg.port, socket_dir=ctx.paths.socket_dir, pg_bin=ctx.pg.pg_bin,
                                   os_user=ctx.pg.os_user)
            if not (ctx.paths.data_dir / "PG_VERSION").is_file():
                raise UsageError(f"{ctx.paths.data_dir} is not a PostgreSQL data directory (no PG_VERSION)",
                                 hint="check backups.postgres.data_dir")
        assert self.canary is not None and self.work is not None
        if mode == "declare":
            # the ledger stops first: what it saw committed is what was committed before the disaster
            self.canary.stop()
        f.disaster_at = ctx.clock.now()
        acknowledged = len(self.canary.rows())  # rows the client saw committed by the disaster instant (no clock comparison)
        # what had left the primary by now is all the restore may see (a failure here leaves the primary alone)
        try:
            self.snapshot = snapshot_repository(ctx.paths.repos[self.repo - 1], self.work / SNAPSHOT_DIR, ctx.pg.stanza,
                                                os_user=ctx.pgbackrest.os_user, repo_name=f"repo{self.repo}")
        except RepoSnapshotError as e:
            f.repo_unreachable = f"at the disaster: {e.message}"
            raise
        # what the primary had archived at the disaster (read just before it) is the end of what the
        # restore may see: segments pushed while the snapshot was being linked are taken out again
        last = archiver.last_archived_wal if archiver is not None else None
        if archiver is not None and last and len(last) >= 24 and parse_segment(last[:24], archiver.segment_size) is not None:
            self.snapshot.exclude_after(last[:24], archiver.segment_size)
        else:
            self.facts.observations.append(
                f"the primary's last archived segment at the disaster is unknown ({last or 'pg_stat_archiver unreadable or empty'}): "
                "the repository snapshot was not cut at it, so a segment archived while it was taken may have been restored"
            )
        ph.evidence["repository_snapshot"] = self.snapshot.to_dict()
        if mode == "declare":
            self.facts.observations.append(
                f"disaster mode `declare`: the primary kept running; the restore read a snapshot of repo{self.repo} taken at the "
                "disaster instant, so nothing it archived afterwards was restored"
            )
        else:
            assert primary is not None
            t0 = time.monotonic()
            primary.stop("immediate", timeout=60)
            ph.evidence["stop_seconds"] = round(time.monotonic() - t0, 3)
            if mode == "destroy":
                shutil.rmtree(ctx.paths.data_dir)
                ph.evidence["data_dir_destroyed"] = str(ctx.paths.data_dir)
            else:
                self.facts.observations.append(f"the primary was stopped (immediate) and left stopped; its data is in {ctx.paths.data_dir}")
            t0 = time.monotonic()
            self.canary.stop()
            ph.evidence["canary_join_seconds"] = round(time.monotonic() - t0, 3)
        self.restore_config, text = self._write_restore_config("pgbackrest.conf", self.snapshot.path)
        ph.evidence["restore_config"] = self._evidence_file("pgbackrest-restore.conf", text)
        ph.evidence["disaster_at"] = isoformat(f.disaster_at)
        rows = self.canary.rows()
        before = rows[:acknowledged]
        f.ledger_first = before[0] if before else None
        f.ledger_last = before[-1] if before else None
        ph.evidence["last_canary_committed"] = row_dict(f.ledger_last)
        ph.evidence["canary_rows_committed"] = len(before)
        if len(rows) > len(before):
            ph.evidence["canary_rows_after_disaster"] = len(rows) - len(before)
        ph.evidence["canary_stopped_by"] = self.canary.error or "the drill"
        ph.evidence["canary"] = self._evidence_file("canary-ledger.json", [{"seq": s, "committed_at": isoformat(t)} for s, t in rows])

    def _restore(self, ph: Phase) -> None:
        ctx, d, f = self.ctx, self.drill, self.facts
        assert self.work is not None and self.restore_config is not None and f.disaster_at is not None
        os_user = ctx.pgbackrest.os_user
        data = self.work / "data"
        osuser.make_dir(data, os_user, mode=0o700)
        target_type, target, when = "default", None, None
        if d.target == "time":
            target_type = "time"
            when = parse_time(d.target_time) if d.target_time else f.disaster_at - timedelta(seconds=float(d.offset()))
            target = when.strftime("%Y-%m-%d %H:%M:%S.%f+00")
            ph.evidence["target_time"] = isoformat(when)
        ph.evidence.update({"repo": self.repo, "repo_role": ctx.pg.repo_role(self.repo), "target": d.describe_target(),
                            "data_dir": str(data), "archive_mode_option": "off",
                            "repository": str(self.snapshot.path) if self.snapshot else None})
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
            f.replay_at = conn.execute("SELECT pg_last_xact_replay_timestamp()").fetchone()[0]
            f.restored_archive_mode = conn.execute("SHOW archive_mode").fetchone()[0]
            tli = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0]
            seg_size = conn.execute("SELECT setting::bigint * CASE unit WHEN 'B' THEN 1 WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576 "
                                    "ELSE 1 END FROM pg_settings WHERE name = 'wal_segment_size'").fetchone()[0]
            hist = conn.execute("SELECT name FROM pg_ls_waldir() WHERE name LIKE '%.history' ORDER BY name DESC LIMIT 1").fetchone()
            history = conn.execute("SELECT pg_read_file('pg_wal/' || %s)", (hist[0],)).fetchone()[0] if hist else None
        ph.evidence["last_replayed_commit"] = isoformat(f.replay_at) if f.replay_at else None
        ph.evidence["restored_archive_mode"] = f.restored_archive_mode
        ph.evidence["timeline"] = tli
        if history is not None:
            ph.evidence["timeline_history"] = history.strip()
        self._check_archive(ph, when, history, int(seg_size or DEFAULT_SEGMENT_SIZE))
        if f.restored_archive_mode != "off":
            raise ExternalError(f"the restored cluster runs with archive_mode = {f.restored_archive_mode}; stopping it",
                                hint="this must never happen: report it")

    def _check_archive(self, ph: Phase, target_time: datetime | None, history: str | None, seg_size: int) -> None:
        """What the snapshot held (continuity from the restored backup's first segment to the last
        archived one), whether recovery replayed it to its end, and any archive-get error it hit."""
        f, snap = self.facts, self.snapshot
        assert snap is not None and self.restored is not None
        try:
            log = self.restored.log_file.read_text(errors="replace")
        except OSError:
            log = ""
        f.archive_get_errors = error_lines(log)
        if f.archive_get_errors:
            ph.evidence["archive_get_errors"] = f.archive_get_errors[:10]
        archive_id = archive_id_from_info_file(snap.archive_info or "")
        backups = backups_from_info_file(snap.backup_info or "", self.repo) if snap.backup_info else self.preflight_backups
        chosen = backup_for_target(backups, target_time)
        names = [n for n in snap.archive_files if archive_id is None or n.startswith(archive_id + "/")]
        wal = check_continuity(names, start=chosen.wal_start if chosen else None, segment_size=seg_size,
                               history=_newest_history(snap.path / "archive" / snap.stanza, names))
        f.wal_problems = [f"repo{self.repo} at the disaster: {p}" for p in wal.problems]
        ph.evidence["archive_at_disaster"] = {"archive_id": archive_id, "restored_backup": chosen.label if chosen else None,
                                              **wal.to_dict()}
        if target_time is None:
            f.recovery_end_due = True
            f.recovery_end = recovery_end(wal.last, history, segment_size=seg_size)
            ph.evidence["recovery_end"] = f.recovery_end.to_dict()
        else:
            ph.evidence["recovery_end"] = "not checked: with a target time PostgreSQL itself refuses to end recovery before the target"

    def _write_check(self, ph: Phase) -> None:
        from psycopg import sql

        ctx, d, f = self.ctx, self.drill, self.facts
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
            f.first_write_at = ctx.clock.now()
            ph.evidence["first_verified_write_at"] = isoformat(f.first_write_at)
            ph.evidence["write"] = {"table": table, "id": rid, "server_time": isoformat(wrote_at)}
            # the RPO: the newest canary row present after recovery
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (d.phases.canary.table,)).fetchone()[0]
            if exists:
                row = conn.execute(sql.SQL("SELECT seq, committed_at FROM {} ORDER BY seq DESC LIMIT 1").format(
                    sql.Identifier(d.phases.canary.table))).fetchone()
                label = f"{d.name}@{isoformat(self.started_at)}"
                mine = conn.execute(sql.SQL("SELECT count(*), max(seq) FROM {} WHERE drill = %s").format(
                    sql.Identifier(d.phases.canary.table)), (label,)).fetchone()
                f.newest_recovered = (int(row[0]), row[1]) if row else None
                ph.evidence["canary_rows_recovered_this_drill"] = int(mine[0])
            else:
                f.observations.append(f"the canary table {d.phases.canary.table} is absent from the recovered database: no WAL after its creation was restored")
            ph.evidence["newest_canary_recovered"] = row_dict(f.newest_recovered)
            counts = _row_counts(conn)
        ph.evidence["row_counts"] = self._evidence_file("row-counts.json", counts)

    def _search(self, ph: Phase) -> None:
        ctx, d, f = self.ctx, self.drill, self.facts
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
            f.rebuild_seconds = Decimal(str(round(time.monotonic() - t0, 6)))
            check = check_index(engine, url, outbox=ctx.search.outbox, collections=collections)
        finally:
            engine.close()
        rd, cd = result.to_dict(), check.to_dict()
        ph.evidence["rebuild"] = rd
        ph.evidence["check"] = cd
        ph.evidence["rebuild_seconds"] = float(f.rebuild_seconds)
        ph.evidence["search"] = self._evidence_file("search-rebuild.json", {"rebuild": rd, "check": cd})
        f.search_ok = bool(check.ok)
        f.search_problems = list(check.problems)
        if not check.ok:
            raise ExternalError("the rebuilt index disagrees with the database: " + "; ".join(check.problems[:3]))

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> dict:
        ctx, d = self.ctx, self.drill
        if ctx.store is not None:
            self.run_id = records.drill_started(ctx.store, name=d.name, scenario=d.scenario, started_at=isoformat(self.started_at),
                                                rto_objective=d.objectives.rto, rpo_objective=d.objectives.rpo, spec_sha256=ctx.spec_sha256)
        self.bundle.mkdir(parents=True, exist_ok=True)
        self.facts.scope.update({
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
        if self.facts.interrupted:
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
        if self.work is not None and not keep:
            if self.drill.phases.restore.dir:  # the user's directory keeps the restored files; the snapshot goes
                shutil.rmtree(self.work / SNAPSHOT_DIR, ignore_errors=True)
            else:
                shutil.rmtree(self.work, ignore_errors=True)

    def build_report(self, report_phase: Phase) -> dict:
        """Read the previous drill from the store, then conclude (pure)."""
        ctx, d = self.ctx, self.drill
        if ctx.store is not None:
            prev = [h for h in records.drill_history(ctx.store, name=d.name, limit=5) if h["id"] != self.run_id and h["finished_at"]]
            if prev:
                self.facts.last_drill_at = parse_time(prev[0]["started_at"])
        spec_side = gapmod.spec_gaps(ctx.spec, rpo_objective=d.objectives.rpo) if ctx.spec is not None else []
        finished = ctx.clock.now()
        report_phase.ok = True
        report_phase.end = finished
        return conclude(self.facts, spec_gaps=spec_side, backup_interval=ctx.pg.backup_interval, finished_at=finished,
                        run_id=self.run_id, report_dir=str(self.bundle), spec_sha256=ctx.spec_sha256)


def run_drill(ctx: DrillContext) -> dict:
    return Drill(ctx).run()


# --- helpers ----------------------------------------------------------------------------------------------


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


def _newest_history(root: Path, names: list[str]) -> str | None:
    name = newest_history_name(names)
    if name is None:
        return None
    try:
        return read_history((root / name).read_bytes(), name)
    except (OSError, ValueError):
        return None  # the continuity check then says the history is unknown


def _newest_snapshot(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    cands = [p for p in root.iterdir() if (p / "manifest.json").is_file()]
    return max(cands, key=lambda p: (p / "manifest.json").stat().st_mtime) if cands else None
