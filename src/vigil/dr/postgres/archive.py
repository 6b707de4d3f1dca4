"""WAL archiving on the server: ``pg_stat_archiver``, the archive settings, and setting them.

:func:`read_archiver` reads the facts (one query); :func:`archive_lag` and friends are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from vigil.dr.postgres.wal import DEFAULT_SEGMENT_SIZE, parse_segment
from vigil.dr.rpo import seconds_between
from vigil.errors import ExternalError


class ArchiveError(ExternalError):
    code = "postgres-archive"


@dataclass(frozen=True)
class ArchiverStatus:
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    stats_reset: datetime | None
    current_wal: str | None  # pg_walfile_name(pg_current_wal_lsn()); at a segment boundary, the previous one
    current_lsn: str | None
    archive_mode: str
    archive_command: str
    archive_timeout: int  # seconds; 0 = off
    wal_level: str
    in_recovery: bool
    segment_size: int = DEFAULT_SEGMENT_SIZE
    server_time: datetime | None = None

    def to_dict(self) -> dict:
        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat().replace("+00:00", "Z")

        return {
            "archived_count": self.archived_count,
            "last_archived_wal": self.last_archived_wal,
            "last_archived_time": iso(self.last_archived_time),
            "failed_count": self.failed_count,
            "last_failed_wal": self.last_failed_wal,
            "last_failed_time": iso(self.last_failed_time),
            "stats_reset": iso(self.stats_reset),
            "current_wal": self.current_wal,
            "current_lsn": self.current_lsn,
            "archive_mode": self.archive_mode,
            "archive_command": self.archive_command,
            "archive_timeout_seconds": self.archive_timeout,
            "wal_level": self.wal_level,
            "in_recovery": self.in_recovery,
            "server_time": iso(self.server_time),
        }


QUERY = """
SELECT a.archived_count, a.last_archived_wal, a.last_archived_time,
       a.failed_count, a.last_failed_wal, a.last_failed_time, a.stats_reset,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
       current_setting('archive_mode'), current_setting('archive_command'),
       (SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout'),
       current_setting('wal_level'), pg_is_in_recovery(),
       (SELECT setting::bigint * CASE unit WHEN 'B' THEN 1 WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576 ELSE 1 END
          FROM pg_settings WHERE name = 'wal_segment_size'),
       clock_timestamp()
FROM pg_stat_archiver a
"""


def read_archiver(conn: Any) -> ArchiverStatus:
    """One round trip on a psycopg connection."""
    import psycopg

    try:
        row = conn.execute(QUERY).fetchone()
    except psycopg.Error as e:
        raise ArchiveError(f"reading pg_stat_archiver failed: {str(e).strip()}", hint="vigil needs a superuser (or pg_monitor) connection") from None
    return ArchiverStatus(
        archived_count=int(row[0]),
        last_archived_wal=row[1],
        last_archived_time=row[2],
        failed_count=int(row[3]),
        last_failed_wal=row[4],
        last_failed_time=row[5],
        stats_reset=row[6],
        current_wal=row[7],
        current_lsn=row[8],
        archive_mode=row[9],
        archive_command=row[10],
        archive_timeout=int(row[11] or 0),
        wal_level=row[12],
        in_recovery=bool(row[13]),
        segment_size=int(row[14] or DEFAULT_SEGMENT_SIZE),
        server_time=row[15],
    )


def _last_segment(s: ArchiverStatus) -> tuple[int, int] | None:
    """The WAL position the last archived file stands for: a segment, or the segment a
    ``.backup`` / ``.partial`` file is named after; None for a ``.history`` file or nothing yet."""
    name = s.last_archived_wal
    if not name:
        return None
    return parse_segment(name[:24], s.segment_size) if len(name) >= 24 else None


def pending_segments(s: ArchiverStatus) -> int | None:
    """Complete WAL segments written but not archived yet (None when unknown)."""
    if s.current_wal is None:
        return None
    cur = parse_segment(s.current_wal, s.segment_size)
    if cur is None:
        return None
    if s.last_archived_wal is None:
        return None
    last = _last_segment(s)
    if last is None:  # a .history file was the last one archived
        return 0
    # the current segment is being written: not complete, not pending
    return max(0, cur[1] - last[1] - 1)


def has_unarchived_wal(s: ArchiverStatus) -> bool | None:
    """Whether WAL exists beyond the last archived segment (``pg_walfile_name`` of the insert
    position names the previous segment at a boundary, so an idle server after a switch is False)."""
    if s.current_wal is None or s.last_archived_wal is None:
        return None
    cur = parse_segment(s.current_wal, s.segment_size)
    last = _last_segment(s)
    if cur is None or last is None:
        return None
    return (cur[1], cur[0]) > (last[1], last[0])


def archive_lag(s: ArchiverStatus, now: datetime) -> Decimal | None:
    """Seconds of WAL at risk: ``now - last_archived_time`` while WAL newer than the last archived
    segment exists, 0 when everything written is archived. None when nothing was ever archived."""
    newer = has_unarchived_wal(s)
    if newer is False:
        return Decimal(0)
    if s.last_archived_time is None:
        return None
    return max(Decimal(0), seconds_between(s.last_archived_time, now))


def failing(s: ArchiverStatus) -> bool:
    """The archiver's last attempt failed (its last failure is newer than its last success)."""
    if s.last_failed_time is None:
        return False
    return s.last_archived_time is None or s.last_failed_time > s.last_archived_time


@dataclass
class ArchiveSetup:
    changed: list[str]
    restart_needed: bool
    archive_mode: str

    def to_dict(self) -> dict:
        return {"changed": self.changed, "restart_needed": self.restart_needed, "archive_mode": self.archive_mode}


def configure_archiving(conn: Any, archive_command: str, archive_timeout: int | None) -> ArchiveSetup:
    """``ALTER SYSTEM`` the archive settings and reload. ``archive_mode`` only takes effect after a
    restart: when it is off, it is set and ``restart_needed`` says so."""
    import psycopg
    from psycopg import sql

    changed: list[str] = []
    try:
        cur = {r[0]: r[1] for r in conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode','archive_command','archive_timeout','wal_level')"
        ).fetchall()}
        pending = {r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart").fetchall()}
        want: dict[str, str] = {"archive_command": archive_command}
        if archive_timeout is not None:
            want["archive_timeout"] = str(int(archive_timeout))
        restart = False
        if cur.get("archive_mode") not in ("on", "always"):
            want["archive_mode"] = "on"
            restart = True
        if cur.get("wal_level") == "minimal":
            want["wal_level"] = "replica"
            restart = True
        for k, v in want.items():
            if cur.get(k) != v:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(k), sql.Literal(v)))
                changed.append(k)
        if changed:
            conn.execute("SELECT pg_reload_conf()")
        restart = restart or bool(pending & {"archive_mode", "wal_level"})
    except psycopg.Error as e:
        raise ArchiveError(
            f"setting WAL archiving failed: {str(e).strip()}",
            hint="vigil needs a superuser connection (backups.postgres.user) to ALTER SYSTEM",
        ) from None
    return ArchiveSetup(changed, restart, cur.get("archive_mode", "?"))
