"""The ledger table and the runner's advisory lock: the runner's I/O with the target database.

The ledger is append-only: one row per attempt (``direction`` up or down); the newest row of a
version is its state (:func:`vigil.deploy.migrations.plan.migration_states`). One session advisory
lock per ledger table keeps two runs apart; a run that cannot take it within its wait reports who
holds it.
"""

from __future__ import annotations

from typing import Any

from vigil.deploy.migrations.files import Migration
from vigil.deploy.migrations.plan import LedgerRow, checksum, lock_key
from vigil.deploy.migrations.report import SqlFailure
from vigil.errors import ExternalError


class MigrationDbError(ExternalError):
    """The target database failed: refused the connection, went away mid-run, or refused the ledger."""

    code = "migration-db"


class MigrationLockBusy(ExternalError):
    """Another runner holds the migration lock and did not release it within the wait.

    Not a failure of the database: :func:`vigil.deploy.migrations.runner.apply_on` turns it into a
    report with status ``lock-busy`` (nothing was applied; run again later)."""

    code = "migration-lock-busy"

    def __init__(self, message: str, *, hint: str | None = None, holder: dict | None = None, waited: float = 0.0) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder
        self.waited = waited


# -- the ledger (I/O) --------------------------------------------------------------------------------


def _ident(table: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*table.split("."))


LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS {t} (
    id            bigserial PRIMARY KEY,
    version       bigint      NOT NULL,
    name          text        NOT NULL,
    checksum      text        NOT NULL,
    direction     text        NOT NULL DEFAULT 'up' CHECK (direction IN ('up', 'down')),
    status        text        NOT NULL CHECK (status IN ('running', 'applied', 'failed', 'reverted')),
    transactional boolean     NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    duration_ms   bigint,
    attempts      integer     NOT NULL DEFAULT 1,
    sqlstate      text,
    error         text,
    error_line    integer,
    actor         text,
    runner        text        NOT NULL DEFAULT '',
    nothing_applied boolean
)"""

LEDGER_UPGRADE = "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS nothing_applied boolean"
"""Ledgers created by an older vigil gain the column that says a failed attempt changed nothing."""

_COLUMNS = ("id, version, name, checksum, direction, status, transactional, started_at, finished_at, duration_ms, "
            "attempts, sqlstate, error, error_line, actor")


class Ledger:
    """The ledger table on a connection (autocommit unless inside a ``conn.transaction()``)."""

    def __init__(self, conn: Any, table: str) -> None:
        self.conn = conn
        self.table = table
        self.t = _ident(table)

    def exists(self) -> bool:
        from vigil.deploy.migrations.schema_dump import qualified

        return self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified(self.table),)).fetchone()[0]

    def create(self) -> None:
        from psycopg import sql

        self.conn.execute(sql.SQL(LEDGER_DDL).format(t=self.t))
        if not self._has_nothing_applied():
            self.conn.execute(sql.SQL(LEDGER_UPGRADE).format(t=self.t))

    def _has_nothing_applied(self) -> bool:
        from vigil.deploy.migrations.schema_dump import qualified

        return bool(self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'nothing_applied' "
            "AND NOT attisdropped)", (qualified(self.table),)).fetchone()[0])  # fmt: skip

    def rows(self) -> list[LedgerRow]:
        from psycopg import sql

        if not self.exists():
            return []
        extra = ", nothing_applied" if self._has_nothing_applied() else ", NULL"  # read-only readers of an old ledger
        cur = self.conn.execute(sql.SQL("SELECT " + _COLUMNS + extra + " FROM {t} ORDER BY id").format(t=self.t))
        return [LedgerRow(*r) for r in cur.fetchall()]

    def start(self, m: Migration, direction: str, transactional: bool, actor: str | None) -> int:
        from psycopg import sql

        from vigil import __version__

        q = sql.SQL(
            "INSERT INTO {t} (version, name, checksum, direction, status, transactional, actor, runner) "
            "VALUES (%s, %s, %s, %s, 'running', %s, %s, %s) RETURNING id"
        ).format(t=self.t)
        runner = f"vigil {__version__} pid {self.conn.info.backend_pid}"
        return int(self.conn.execute(q, (m.version, m.name, checksum(m.up_sql), direction, transactional, actor, runner)).fetchone()[0])

    def finish(self, row_id: int, status: str, *, attempts: int, failure: SqlFailure | None = None,
               extra: str | None = None, nothing_applied: bool | None = None) -> int:
        """Record the outcome; returns the duration in ms (measured by the server's clock).
        ``nothing_applied`` (failures only): the attempt left the schema as it was."""
        from psycopg import sql

        error = None
        if failure:
            error = failure.message + (f" ({failure.detail})" if failure.detail else "")
        if extra:
            error = (error + "; " if error else "") + extra
        q = sql.SQL(
            "UPDATE {t} SET status = %s, finished_at = clock_timestamp(), "
            "duration_ms = round(extract(epoch FROM clock_timestamp() - started_at) * 1000), attempts = %s, "
            "sqlstate = %s, error = %s, error_line = %s, nothing_applied = %s WHERE id = %s RETURNING duration_ms"
        ).format(t=self.t)
        row = self.conn.execute(
            q, (status, attempts, failure.sqlstate if failure else None, error, failure.line if failure else None,
                nothing_applied, row_id)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def note_attempt(self, row_id: int, attempts: int, failure: SqlFailure) -> None:
        from psycopg import sql

        q = sql.SQL("UPDATE {t} SET attempts = %s, sqlstate = %s, error = %s, error_line = %s WHERE id = %s").format(t=self.t)
        self.conn.execute(q, (attempts, failure.sqlstate, "retrying after: " + failure.message, failure.line, row_id))


# -- the advisory lock -------------------------------------------------------------------------------


def lock_holder(conn: Any, key: tuple[int, int]) -> dict | None:
    """Who holds the runner's advisory lock: pid, application, client, since when, state."""
    row = conn.execute(
        """SELECT l.pid, a.application_name, a.client_addr::text, a.backend_start, a.state, a.usename
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
              AND l.objsubid = 2 AND l.granted
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            LIMIT 1""",
        key,
    ).fetchone()
    if not row:
        return None
    pid, app, client, since, state, user = row
    return {"pid": pid, "application_name": app, "client_addr": client, "backend_start": since.isoformat() if since else None,
            "state": state, "user": user}


def acquire_lock(conn: Any, ledger_table: str, wait: float) -> tuple[int, int]:
    """Take the session advisory lock, waiting at most ``wait`` seconds; :class:`MigrationLockBusy` names the holder."""
    import psycopg

    key = lock_key(ledger_table)
    if wait <= 0:
        got = conn.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", key).fetchone()[0]
    else:
        got = True
        try:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(wait * 1000)}ms",))
            conn.execute("SELECT pg_advisory_lock(%s::int, %s::int)", key)
        except psycopg.errors.LockNotAvailable:
            got = False
        finally:
            if not conn.broken:
                conn.execute("RESET lock_timeout")
    if not got:
        h = lock_holder(conn, key)
        who = (
            f"pid {h['pid']} (application {h['application_name'] or '-'!r}, user {h['user']}, client {h['client_addr'] or 'local'}, "
            f"connected since {h['backend_start']}, {h['state']})"
            if h
            else "another session"
        )
        raise MigrationLockBusy(
            f"another migration run holds the migration lock: {who}; waited {wait:g}s; nothing was applied",
            hint="let it finish (`vigil migrate status` shows progress) and run again, or raise --lock-wait; "
            f"if that session is stuck: SELECT pg_terminate_backend({h['pid'] if h else 'PID'})",
            holder=h, waited=wait,
        )
    return key

