"""What ``vigil backup setup | run | list | verify | status`` do, as a library (the CLI only prints).

Each function takes the resolved :class:`PgBackRest` and plain arguments and returns plain data
(dicts with stable field names); errors are :class:`~vigil.errors.VigilError` subclasses.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

from vigil.clock import Clock, isoformat
from vigil.dr import records
from vigil.dr.postgres.archive import ArchiverStatus, configure_archiving, read_archiver
from vigil.dr.postgres.metrics import push, status_metrics, status_problems
from vigil.dr.postgres.pgbackrest import BACKUP_TYPES, PgBackRest, PgBackRestError, PgPaths, StanzaInfo, connect_primary, primary_conninfo
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.dr.postgres.wal import check_continuity, newest_history_name, parse_segment
from vigil.errors import ExternalError, UsageError


def pg_spec(loaded: Any) -> PostgresBackupSpec:
    spec = loaded.spec
    pg = spec.backups.postgres if spec.backups is not None else None
    if pg is None:
        raise UsageError("the spec has no backups.postgres section",
                         hint="declare backups.postgres: stanza, data_dir, repos (see `vigil drill demo` for a working example)")
    return pg


def engine_for(loaded: Any) -> PgBackRest:
    pg = pg_spec(loaded)
    base = loaded.path.parent if loaded.path is not None else Path.cwd()
    return PgBackRest(PgPaths.from_spec(pg, base))


def conninfo(pgb: PgBackRest) -> str:
    return primary_conninfo(pgb.spec, pgb.paths)


def _connect(pgb: PgBackRest) -> Any:
    return connect_primary(pgb.spec, pgb.paths)


def _repos(pgb: PgBackRest, repos: Sequence[int] | None) -> list[int]:
    keys = list(repos) if repos else pgb.paths.repo_keys()
    for k in keys:
        pgb._repo(k)
    return keys


# -- setup --------------------------------------------------------------------------------------------


def setup(pgb: PgBackRest, *, check: bool = True) -> dict:
    """Write the configuration, set WAL archiving on the server, create the stanza, then check."""
    out: dict[str, Any] = {"stanza": pgb.stanza, "config": str(pgb.config)}
    pgb.write_config()
    out["archive_command"] = pgb.archive_command()
    timeout = int(pgb.spec.archive_timeout) if pgb.spec.archive_timeout is not None else None
    with _connect(pgb) as conn:
        arch = configure_archiving(conn, pgb.archive_command(), timeout)
    out["archiving"] = arch.to_dict()
    if arch.restart_needed:
        out["stanza_created"] = False
        out["checked"] = False
        out["restart_needed"] = True
        out["next"] = "restart PostgreSQL (archive_mode changes need a restart), then run `vigil backup setup` again"
        return out
    out["restart_needed"] = False
    pgb.stanza_create()
    out["stanza_created"] = True
    if check:
        pgb.check()
        out["checked"] = True
    return out


# -- backups ----------------------------------------------------------------------------------------------


def run_backups(pgb: PgBackRest, *, type_: str, repos: Sequence[int] | None, clock: Clock, store: Any = None,
                progress: Callable[[str], None] = lambda _m: None) -> dict:
    """One backup of ``type_`` into each repository (all by default), each recorded before it starts.
    pgBackRest expires backups past the repository's retention after each successful backup."""
    if type_ not in BACKUP_TYPES:
        raise UsageError(f"backup type {type_!r}: use full, diff or incr")
    keys = _repos(pgb, repos)
    pgb.write_config()
    results = []
    failed: PgBackRestError | None = None
    for k in keys:
        started = clock.now()
        rid = records.backup_started(store, stanza=pgb.stanza, repo=k, type_=type_, started_at=isoformat(started)) if store else None
        progress(f"repo{k}: {type_} backup ...")
        t0 = time.monotonic()
        try:
            res = pgb.backup(type_, k)
        except PgBackRestError as e:
            secs = Decimal(str(round(time.monotonic() - t0, 6)))
            if store and rid is not None:
                records.backup_finished(store, rid, finished_at=isoformat(clock.now()), ok=False, seconds=secs, error=e.message)
            results.append({"repo": k, "type": type_, "ok": False, "error": e.message, "hint": e.hint, "seconds": float(secs)})
            failed = failed or e
            continue
        secs = Decimal(str(round(time.monotonic() - t0, 6)))
        info = pgb.info()
        newest = info.newest(k, type_)
        detail = newest.to_dict() if newest else None
        if store and rid is not None:
            records.backup_finished(store, rid, finished_at=isoformat(clock.now()), ok=True, seconds=secs,
                                    label=newest.label if newest else None, detail=detail)
        results.append({"repo": k, "type": type_, "ok": True, "label": newest.label if newest else None, "seconds": float(secs),
                        "backup": detail, "output": res.output.strip()[-2000:]})
    out = {"stanza": pgb.stanza, "type": type_, "results": results, "ok": failed is None}
    if failed is not None and all(not r["ok"] for r in results):
        raise PgBackRestError(failed.message, hint=failed.hint, output=failed.output, command=failed.command)
    return out


def list_backups(pgb: PgBackRest, *, repos: Sequence[int] | None = None) -> dict:
    info = pgb.info()
    keys = _repos(pgb, repos)
    d = info.to_dict()
    d["backups"] = [b for b in d["backups"] if b["repo"] in keys]
    d["archives"] = [a for a in d["archives"] if a["repo"] in keys]
    return d


# -- verify -----------------------------------------------------------------------------------------------


def verify(pgb: PgBackRest, *, repos: Sequence[int] | None = None) -> dict:
    """pgBackRest's ``verify`` of each repository plus a WAL continuity check from its oldest
    backup's first segment to the newest archived segment (of the current database)."""
    keys = _repos(pgb, repos)
    info = pgb.info()
    out = []
    ok = True
    for k in keys:
        v = pgb.verify(k)
        oldest = info.oldest(k)
        archives = info.archive(k)
        current = archives[-1].id if archives else None
        files = [f for f in pgb.archive_files(k) if current is None or f.startswith(current + "/")]
        history = None
        if len({p[0] for p in map(parse_segment, files) if p is not None}) > 1:  # a switch: read the newest history
            name = newest_history_name(files)
            if name is not None and not name.endswith((".gz", ".lz4", ".zst", ".bz2")):
                try:
                    history = pgb.run("repo-get", f"--repo={k}", params=[f"archive/{pgb.stanza}/{name}"], timeout=60).output
                except ExternalError:
                    history = None  # the continuity check says the history is unknown
        wal = check_continuity(files, start=oldest.wal_start if oldest else None, history=history)
        if oldest is None:
            wal.problems.append(f"repo{k} holds no backup: nothing to verify a restore against")
            wal.ok = False
        entry = {"repo": k, "ok": v.ok and wal.ok, "verify": v.to_dict(), "wal": wal.to_dict(), "archive_id": current}
        ok = ok and v.ok and wal.ok
        out.append(entry)
    return {"stanza": pgb.stanza, "ok": ok, "repos": out}


# -- status -----------------------------------------------------------------------------------------------


def gather(pgb: PgBackRest) -> tuple[StanzaInfo, ArchiverStatus | None, str | None]:
    info = pgb.info()
    archiver = None
    err = None
    try:
        with _connect(pgb) as conn:
            archiver = read_archiver(conn)
    except ExternalError as e:
        err = e.message
    return info, archiver, err


def status(pgb: PgBackRest, *, now: datetime, ingestor: Any = None) -> dict:
    """Backup age and archive lag, as data, as problems and (with ``ingestor``) as stored gauges."""
    info, archiver, err = gather(pgb)
    gauges = status_metrics(pgb.spec, info, archiver, now)
    problems = status_problems(pgb.spec, info, archiver, now)
    if err:
        problems.append(f"cannot read pg_stat_archiver: {err}")
    out: dict[str, Any] = {
        "stanza": pgb.stanza,
        "at": isoformat(now),
        "ok": not problems,
        "problems": problems,
        "repos": [],
        "archiver": archiver.to_dict() if archiver else None,
        "metrics": [g.to_dict() for g in gauges],
    }
    for k in pgb.paths.repo_keys():
        newest = info.newest(k)
        out["repos"].append({
            "repo": k,
            "role": pgb.spec.repo_role(k),
            "path": str(pgb.paths.repos[k - 1]),
            "backups": len([b for b in info.backups_in(k) if not b.error]),
            "newest": newest.to_dict() if newest else None,
            "status": next((r.to_dict() for r in info.repos if r.key == k), None),
        })
    if ingestor is not None:
        out["pushed"] = push(ingestor, gauges, now)
    return out
