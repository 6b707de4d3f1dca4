"""The migration runner: ``vigil migrate apply`` and ``vigil migrate status``.

One run, against the target PostgreSQL database:

1. connect (psycopg 3, autocommit) and take ONE session advisory lock, waiting a bounded time;
   when another runner holds it the error names its pid and application;
2. create the ledger table if missing and read it;
3. plan (pure, :func:`make_plan`): which migrations are applied, which are pending, and what
   forbids going on (an applied migration edited since, a failed or interrupted one, a pending
   migration older than an applied one);
4. for each pending migration, in version order: write its ledger row as ``running`` (committed
   before anything of the migration runs: nothing is lost), then run it in ONE transaction with
   ``SET LOCAL lock_timeout`` / ``statement_timeout`` from the spec and mark the row ``applied`` in
   that same transaction, so the migration and its ledger row commit together. A migration with
   statements PostgreSQL forbids in a transaction block (``-- vigil:no-transaction``, or
   ``CREATE/DROP/REINDEX ... CONCURRENTLY``, ``VACUUM``, ...) runs statement by statement in
   autocommit, and the ledger says so;
5. a lock timeout (SQLSTATE 55P03) is retried with exponential backoff a bounded number of times
   (``sleep`` is injected; tests never wait). Any other error marks the row ``failed`` with the
   SQLSTATE, the message and the file line, stops the run (nothing after it runs) and the command
   exits 1 so the deploy halts. For a migration outside a transaction the report says what it
   left behind (a schema diff: an INVALID index, a table).

The ledger is append-only: one row per attempt (``direction`` up or down). The state of a
migration is its newest row. A ``failed`` or ``running`` newest row stops later runs until someone
looks: ``apply --retry-failed`` runs it again (after fixing the file or cleaning up).

Pure parts (tested without a database): :func:`checksum`, :func:`make_plan`,
:func:`make_revert_plan`, :func:`execution_of`, :func:`backoff_seconds`, :func:`error_line`.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from vigil import exitcodes
from vigil.deploy.migrations.files import Migration, MigrationFileError, Statement, has_no_transaction, split_statements
from vigil.errors import ExternalError, UsageError

LOCK_CLASS = 7307002
"""First key of the runner's two-key advisory lock; the second is derived from the ledger table name."""

DEFAULT_LOCK_RETRIES = 3
DEFAULT_RETRY_BACKOFF = 1.0
MAX_RETRY_BACKOFF = 30.0
DEFAULT_LOCK_WAIT = 120.0
APPLICATION_NAME = "vigil migrate"

DB_HINT = "check --db-url (or the environment variable named by the spec), that the server is up and accepts connections"

State = Literal["applied", "pending", "failed", "interrupted", "edited", "missing-file", "revert-failed"]


# -- errors -------------------------------------------------------------------------------------


class MigrationDbError(ExternalError):
    """The target database failed: refused the connection, went away mid-run, or refused the ledger."""

    code = "migration-db"


class MigrationLockBusy(ExternalError):
    """Another runner holds the migration lock and did not release it within the wait."""

    code = "migration-lock-busy"


# -- connections ------------------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    """A URL libpq understands: ``postgresql+psycopg://`` (SQLAlchemy style) becomes ``postgresql://``."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres+psycopg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """``postgresql://user@host:port/db``: the URL without its password or options, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(libpq_url(url))
    except Exception:
        return "<unreadable database URL>"
    user = f"{d['user']}@" if d.get("user") else ""
    host = str(d.get("host") or "localhost")
    port = f":{d['port']}" if d.get("port") else ""
    return f"postgresql://{user}{host}{port}/{d.get('dbname') or ''}"


def connect(url: str, *, application_name: str = APPLICATION_NAME, what: str = "the target database",
            connect_timeout: int = 10, hint: str = DB_HINT) -> Any:
    """A psycopg connection in autocommit mode, or :class:`MigrationDbError` (exit 3) saying why not."""
    import psycopg

    if not url or "://" not in url and "=" not in url:
        raise UsageError(f"{what}: {url!r} is not a PostgreSQL URL", hint="use postgresql://user@host:5432/dbname")
    try:
        return psycopg.connect(
            libpq_url(url), autocommit=True, application_name=application_name, connect_timeout=connect_timeout
        )
    except psycopg.ProgrammingError as e:
        raise UsageError(f"{what}: invalid database URL {redact(url)}: {first_line(e)}", hint="use postgresql://user@host:5432/dbname") from None
    except psycopg.Error as e:
        raise MigrationDbError(f"cannot connect to {what} {redact(url)}: {first_line(e)}", hint=hint) from None


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


# -- pure core ----------------------------------------------------------------------------------


def checksum(sql: str) -> str:
    """sha256 of a migration's up SQL, line endings normalised (a CRLF checkout is not an edit)."""
    return hashlib.sha256(sql.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def lock_key(ledger_table: str) -> tuple[int, int]:
    """The advisory lock of runners sharing one ledger table (non-negative, so pg_locks shows it as is)."""
    from vigil.deploy.migrations.schema_dump import qualified

    return LOCK_CLASS, zlib.crc32(qualified(ledger_table).encode()) & 0x7FFFFFFF


def backoff_seconds(attempt: int, base: float = DEFAULT_RETRY_BACKOFF, cap: float = MAX_RETRY_BACKOFF) -> float:
    """The wait before retry ``attempt`` (1-based): base, 2*base, 4*base, ... at most ``cap``."""
    return min(cap, base * (2 ** (attempt - 1)))


def error_line(statement: Statement, position: int | None) -> int:
    """The file line of an error at 1-based character ``position`` of ``statement`` (its start when unknown)."""
    if not position or position < 1:
        return statement.line
    return statement.line + statement.text.count("\n", 0, position - 1)


@dataclass(frozen=True)
class LedgerRow:
    """One attempt recorded in the ledger table."""

    id: int
    version: int
    name: str
    checksum: str
    direction: str  # up | down
    status: str  # running | applied | failed | reverted
    transactional: bool
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    attempts: int = 1
    sqlstate: str | None = None
    error: str | None = None
    error_line: int | None = None
    actor: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "checksum": self.checksum,
            "direction": self.direction,
            "status": self.status,
            "transactional": self.transactional,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "sqlstate": self.sqlstate,
            "error": self.error,
            "error_line": self.error_line,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class MigrationState:
    """Where one migration stands: the files and the ledger's newest row, read together."""

    version: int
    name: str
    state: State
    migration: Migration | None
    row: LedgerRow | None
    note: str | None = None

    @property
    def id(self) -> str:
        return self.migration.id if self.migration else f"{self.version:04d}_{self.name}"

    def to_dict(self) -> dict:
        r = self.row
        return {
            "version": self.version,
            "id": self.id,
            "state": self.state,
            "file": str(self.migration.path) if self.migration else None,
            "checksum": checksum(self.migration.up_sql) if self.migration else None,
            "applied_at": (r.finished_at.isoformat() if r and r.finished_at and self.state == "applied" else None),
            "last_attempt": r.to_dict() if r else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class Problem:
    """Why a run must not go on (exit 1 without touching the schema)."""

    code: str  # edited | failed | interrupted | out-of-order | no-down | revert-failed
    version: int
    message: str
    hint: str

    def to_dict(self) -> dict:
        return {"code": self.code, "version": self.version, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class Plan:
    states: list[MigrationState]
    to_run: list[Migration]
    problems: list[Problem]
    warnings: list[str]
    direction: str = "up"

    @property
    def pending(self) -> list[MigrationState]:
        return [s for s in self.states if s.state != "applied"]

    def to_dict(self) -> dict:
        return {
            "direction": self.direction,
            "migrations": [s.to_dict() for s in self.states],
            "to_run": [m.id for m in self.to_run],
            "problems": [p.to_dict() for p in self.problems],
            "warnings": list(self.warnings),
        }


def newest_rows(rows: Iterable[LedgerRow]) -> dict[int, LedgerRow]:
    """The newest ledger row (highest id) of each version."""
    out: dict[int, LedgerRow] = {}
    for r in rows:
        if r.version not in out or r.id > out[r.version].id:
            out[r.version] = r
    return out


def _when(r: LedgerRow) -> str:
    t = r.finished_at or r.started_at
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "an unknown time"


def _failure_text(r: LedgerRow) -> str:
    where = f" at line {r.error_line}" if r.error_line else ""
    return f"{r.sqlstate + ' ' if r.sqlstate else ''}{r.error or 'no error recorded'}{where}"


def migration_states(migrations: Sequence[Migration], rows: Iterable[LedgerRow]) -> list[MigrationState]:
    """Files and ledger merged, by version. Pure."""
    newest = newest_rows(rows)
    by_version = {m.version: m for m in migrations}
    out: list[MigrationState] = []
    for v in sorted(by_version.keys() | newest.keys()):
        m, r = by_version.get(v), newest.get(v)
        name = m.name if m else r.name  # type: ignore[union-attr]
        if r is None:
            out.append(MigrationState(v, name, "pending", m, None))
            continue
        if m is None:
            if r.direction == "up" and r.status == "applied":
                out.append(MigrationState(v, name, "missing-file", None, r, "applied, but its file is gone from the directory"))
            continue  # reverted or never applied, and gone: nothing to say
        if r.status == "running":
            out.append(MigrationState(v, name, "interrupted", m, r, f"a run that started {_when(r)} ended without recording an outcome"))
        elif r.status == "failed" and r.direction == "up":
            out.append(MigrationState(v, name, "failed", m, r, _failure_text(r)))
        elif r.status == "failed":
            out.append(MigrationState(v, name, "revert-failed", m, r, _failure_text(r)))
        elif r.status == "applied":
            if r.checksum != checksum(m.up_sql):
                out.append(MigrationState(v, name, "edited", m, r, "the file changed after it was applied"))
            else:
                out.append(MigrationState(v, name, "applied", m, r))
        else:  # reverted: pending again
            out.append(MigrationState(v, name, "pending", m, r, f"reverted {_when(r)}"))
    return out


def _blocking(s: MigrationState, retry_failed: bool) -> Problem | None:
    r = s.row
    if s.state == "edited":
        return Problem(
            "edited",
            s.version,
            f"{s.id}: applied {_when(r)} with checksum {r.checksum[:12]}, but the file's checksum is now "  # type: ignore[union-attr]
            f"{checksum(s.migration.up_sql)[:12]}: someone edited a migration that already ran",  # type: ignore[union-attr]
            "restore the applied file from version control and put the change in a new migration",
        )
    if retry_failed:
        return None
    if s.state == "failed":
        if r and r.transactional:
            hint = (f"it ran in one transaction, so nothing of it remains; fix {s.migration.filename if s.migration else s.id}, "
                    f"then run `vigil migrate apply --retry-failed`")
        else:
            hint = ("it ran OUTSIDE a transaction: the statements before the failing one are committed and the failing one "
                    "may have left objects behind (see `vigil migrate status`); clean up, then run `vigil migrate apply --retry-failed`")
        return Problem("failed", s.version, f"{s.id} failed {_when(r)}: {s.note}", hint)  # type: ignore[arg-type]
    if s.state == "interrupted":
        tx = r.transactional if r else True
        hint = (
            "the run was cut off (crash, kill, lost connection) while it ran in a transaction, so PostgreSQL rolled it "
            "back; run `vigil migrate apply --retry-failed`"
            if tx
            else "it ran OUTSIDE a transaction and was cut off: check what it changed, clean up, then run "
            "`vigil migrate apply --retry-failed`"
        )
        verb = "applying" if (r is None or r.direction == "up") else "reverting"
        return Problem("interrupted", s.version, f"{s.id}: {verb} it started {_when(r)} and never finished", hint)  # type: ignore[arg-type]
    if s.state == "revert-failed":
        return Problem(
            "revert-failed",
            s.version,
            f"{s.id}: reverting it failed {_when(r)}: {s.note}",  # type: ignore[arg-type]
            "fix its .down.sql and run `vigil migrate apply --down-to VERSION --retry-failed`, or re-apply it with "
            "`vigil migrate apply --retry-failed`",
        )
    return None


def make_plan(migrations: Sequence[Migration], rows: Iterable[LedgerRow], *, retry_failed: bool = False,
              target: int | None = None) -> Plan:
    """What ``apply`` runs, in order, and what forbids running it. Pure."""
    states = migration_states(migrations, rows)
    problems: list[Problem] = []
    warnings: list[str] = []
    applied_versions = [s.version for s in states if s.state in ("applied", "edited", "missing-file")]
    top = max(applied_versions, default=None)
    to_run: list[Migration] = []
    for s in states:
        if s.state == "missing-file":
            warnings.append(f"{s.id} is applied but its file is gone from the migrations directory")
            continue
        p = _blocking(s, retry_failed)
        if p:
            problems.append(p)
            continue
        if s.state in ("applied", "edited"):
            continue
        if target is not None and s.version > target:
            continue
        if top is not None and s.version < top:
            problems.append(
                Problem(
                    "out-of-order",
                    s.version,
                    f"{s.id} is pending but a later migration (version {top}) is already applied",
                    "migrations apply in version order: renumber it above the newest applied version",
                )
            )
            continue
        to_run.append(s.migration)  # type: ignore[arg-type]
    return Plan(states, to_run, problems, warnings, "up")


def make_revert_plan(migrations: Sequence[Migration], rows: Iterable[LedgerRow], to_version: int, *,
                     retry_failed: bool = False) -> Plan:
    """What ``apply --down-to VERSION`` reverts (applied versions above it, newest first). Pure."""
    states = migration_states(migrations, rows)
    problems: list[Problem] = []
    to_run: list[Migration] = []
    for s in sorted(states, key=lambda s: -s.version):
        if s.version <= to_version:
            continue
        if s.state == "missing-file":
            problems.append(Problem("no-down", s.version, f"{s.id} is applied but its files are gone", "restore its files from version control"))
            continue
        if s.state == "pending":
            continue
        if s.state == "revert-failed" and retry_failed:
            pass
        else:
            p = _blocking(s, retry_failed)
            if p:
                problems.append(p)
                continue
            if s.state in ("failed", "interrupted"):
                continue  # with --retry-failed: a failed up has nothing to revert (transactional) or is the user's to clean
        m = s.migration
        if m is None or m.down_sql is None:
            problems.append(
                Problem("no-down", s.version, f"{s.id} has no down migration ({s.id}.down.sql)",
                        f"write {s.id}.down.sql (verify checks that it restores the schema)")
            )
            continue
        to_run.append(m)
    return Plan(states, to_run, problems, [], "down")


# -- what PostgreSQL refuses inside a transaction block -------------------------------------------


@dataclass(frozen=True)
class Execution:
    """How a migration's SQL runs: its statements, and in a transaction or not (and why not)."""

    statements: list[Statement]
    transactional: bool
    reason: str | None = None
    debris: frozenset[int] = frozenset()
    """Indexes of statements that leave an object behind when they fail (CONCURRENTLY builds): never retried."""


def _no_tx_reason(stmt: Any, server_version_num: int) -> tuple[str | None, bool]:
    """(why this statement cannot run in a transaction block, whether a failure leaves debris)."""
    kind = type(stmt).__name__
    if kind == "IndexStmt" and getattr(stmt, "concurrent", False):
        return "CREATE INDEX CONCURRENTLY", True
    if kind == "DropStmt" and getattr(stmt, "concurrent", False):
        return "DROP INDEX CONCURRENTLY", False
    if kind == "ReindexStmt":
        params = getattr(stmt, "params", None) or ()
        if any(getattr(p, "defname", "") == "concurrently" for p in params):
            return "REINDEX CONCURRENTLY", True
        if getattr(stmt, "relation", None) is None:
            return "REINDEX SYSTEM/DATABASE", False
    if kind == "VacuumStmt" and getattr(stmt, "is_vacuumcmd", False):
        return "VACUUM", False
    if kind == "ClusterStmt" and getattr(stmt, "relation", None) is None:
        return "CLUSTER without a table", False
    if kind == "AlterEnumStmt" and getattr(stmt, "oldVal", None) is None and server_version_num < 120000:
        return "ALTER TYPE ... ADD VALUE (before PostgreSQL 12)", False
    simple = {
        "CreatedbStmt": "CREATE DATABASE",
        "DropdbStmt": "DROP DATABASE",
        "CreateTableSpaceStmt": "CREATE TABLESPACE",
        "DropTableSpaceStmt": "DROP TABLESPACE",
        "AlterSystemStmt": "ALTER SYSTEM",
        "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
        "DropSubscriptionStmt": "DROP SUBSCRIPTION",
    }
    return simple.get(kind), False


def execution_of(sql: str, where: str, *, server_version_num: int = 150000) -> Execution:
    """Split ``sql`` (pglast, the PostgreSQL parser) and decide how it runs. Pure.

    Raises :class:`MigrationFileError` (exit 2) for SQL the parser rejects and for ``BEGIN`` /
    ``COMMIT`` / ``ROLLBACK`` in a file: the runner owns the transaction.
    """
    import pglast

    try:
        statements = split_statements(sql)
        trees = [raw.stmt for raw in pglast.parse_sql(sql)]
    except pglast.parser.ParseError as e:
        loc = e.args[1] if len(e.args) > 1 else None  # a character index into sql
        line = sql.count("\n", 0, loc) + 1 if isinstance(loc, int) and loc >= 0 else None
        raise MigrationFileError(
            [f"{where}{':' + str(line) if line else ''}: {e.args[0] if e.args else e}"],
            hint="fix the SQL (`vigil migrate lint` shows every problem); nothing was run",
        ) from None
    reasons: list[str] = []
    debris: set[int] = set()
    for i, (st, tree) in enumerate(zip(statements, trees)):
        kind = type(tree).__name__
        if kind == "TransactionStmt":
            raise MigrationFileError(
                [f"{where}:{st.line}: {st.text.split()[0].upper()}: a migration must not control transactions"],
                hint="remove BEGIN/COMMIT/ROLLBACK: the runner runs each migration in its own transaction "
                "(or none, with `-- vigil:no-transaction`)",
            )
        why, leaves = _no_tx_reason(tree, server_version_num)
        if why:
            reasons.append(f"{why} (line {st.line})")
            if leaves:
                debris.add(i)
    if has_no_transaction(sql):
        return Execution(statements, False, "-- vigil:no-transaction" + (f"; {', '.join(reasons)}" if reasons else ""), frozenset(debris))
    if reasons:
        return Execution(statements, False, ", ".join(reasons) + " cannot run in a transaction block", frozenset(debris))
    return Execution(statements, True, None, frozenset(debris))


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlFailure:
    """A statement PostgreSQL refused: where and why."""

    file: str
    line: int
    statement: str
    sqlstate: str | None
    message: str
    detail: str | None = None
    hint: str | None = None

    @property
    def text(self) -> str:
        out = f"{self.file}:{self.line}: {self.sqlstate or ''} {self.message}".replace("  ", " ")
        if self.detail:
            out += f" ({self.detail})"
        return out

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "statement": self.statement,
            "sqlstate": self.sqlstate,
            "message": self.message,
            "detail": self.detail,
            "hint": self.hint,
        }


@dataclass
class MigrationResult:
    id: str
    version: int
    direction: str
    status: str  # applied | reverted | failed
    transactional: bool
    reason: str | None = None
    ledger_id: int | None = None
    duration_ms: int | None = None
    attempts: int = 1
    failure: SqlFailure | None = None
    remains: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "version": self.version,
            "direction": self.direction,
            "status": self.status,
            "transactional": self.transactional,
            "no_transaction_reason": self.reason,
            "ledger_id": self.ledger_id,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "error": self.failure.to_dict() if self.failure else None,
            "remains": list(self.remains),
            "notes": list(self.notes),
        }


@dataclass
class ApplyReport:
    database: str
    plan: Plan
    results: list[MigrationResult] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.plan.problems:
            return "refused"
        if any(r.status == "failed" for r in self.results):
            return "failed"
        return "ok" if self.results else "nothing-to-do"

    @property
    def exit_code(self) -> int:
        return exitcodes.OK if self.status in ("ok", "nothing-to-do") else exitcodes.NO

    def to_dict(self) -> dict:
        return {
            "database": self.database,
            "direction": self.plan.direction,
            "status": self.status,
            "results": [r.to_dict() for r in self.results],
            "not_run": list(self.not_run),
            "problems": [p.to_dict() for p in self.plan.problems],
            "warnings": list(self.plan.warnings),
            "plan": [s.to_dict() for s in self.plan.states],  # the states read before the run
        }


@dataclass(frozen=True)
class ApplyOptions:
    ledger_table: str
    lock_timeout_ms: int | None = 5000
    statement_timeout_ms: int | None = 900_000
    lock_retries: int = DEFAULT_LOCK_RETRIES
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    lock_wait: float = DEFAULT_LOCK_WAIT
    retry_failed: bool = False
    target: int | None = None
    down_to: int | None = None
    actor: str | None = None


Event = Callable[[str, dict], None]


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
    runner        text        NOT NULL DEFAULT ''
)"""

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

    def rows(self) -> list[LedgerRow]:
        from psycopg import sql

        if not self.exists():
            return []
        cur = self.conn.execute(sql.SQL("SELECT " + _COLUMNS + " FROM {t} ORDER BY id").format(t=self.t))
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
               extra: str | None = None) -> int:
        """Record the outcome; returns the duration in ms (measured by the server's clock)."""
        from psycopg import sql

        error = None
        if failure:
            error = failure.message + (f" ({failure.detail})" if failure.detail else "")
        if extra:
            error = (error + "; " if error else "") + extra
        q = sql.SQL(
            "UPDATE {t} SET status = %s, finished_at = clock_timestamp(), "
            "duration_ms = round(extract(epoch FROM clock_timestamp() - started_at) * 1000), attempts = %s, "
            "sqlstate = %s, error = %s, error_line = %s WHERE id = %s RETURNING duration_ms"
        ).format(t=self.t)
        row = self.conn.execute(
            q, (status, attempts, failure.sqlstate if failure else None, error, failure.line if failure else None, row_id)
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
            f"another migration run holds the migration lock: {who}; waited {wait:g}s",
            hint="let it finish (`vigil migrate status` shows progress) and run again, or raise --lock-wait; "
            f"if that session is stuck: SELECT pg_terminate_backend({h['pid'] if h else 'PID'})",
        )
    return key


# -- running ---------------------------------------------------------------------------------------


def _failure_from(e: Any, st: Statement, file: str) -> SqlFailure:
    diag = getattr(e, "diag", None)
    pos = None
    if diag is not None and diag.statement_position:
        try:
            pos = int(diag.statement_position)
        except ValueError:
            pos = None
    msg = (diag.message_primary if diag is not None and diag.message_primary else first_line(e))
    return SqlFailure(
        file=file,
        line=error_line(st, pos),
        statement=st.text if len(st.text) <= 2000 else st.text[:1997] + "...",
        sqlstate=getattr(e, "sqlstate", None),
        message=msg,
        detail=diag.message_detail if diag is not None else None,
        hint=diag.message_hint if diag is not None else None,
    )


def _set_timeouts(conn: Any, opts: ApplyOptions, local: bool) -> None:
    for name, ms in (("lock_timeout", opts.lock_timeout_ms), ("statement_timeout", opts.statement_timeout_ms)):
        if ms is not None:
            conn.execute("SELECT set_config(%s, %s, %s)", (name, f"{int(ms)}ms", local))


def _lost(conn: Any, m: Migration, direction: str, e: BaseException) -> MigrationDbError:
    return MigrationDbError(
        f"lost the connection while {'applying' if direction == 'up' else 'reverting'} {m.id}: {first_line(e)}",
        hint="the ledger row of this migration still says 'running'; `vigil migrate status` shows it. "
        "A transactional migration was rolled back by PostgreSQL: run `vigil migrate apply --retry-failed` once the "
        "database is back. One outside a transaction may be half done: check it first",
    )


def run_migration(conn: Any, ledger: Ledger, m: Migration, direction: str, opts: ApplyOptions, *,
                  server_version_num: int, sleep: Callable[[float], None], on_event: Event | None = None) -> MigrationResult:
    """Run one migration (up or down) and record it in the ledger. The ledger row is committed as
    'running' before anything runs, and updated (in the migration's transaction when there is one)."""
    import psycopg

    from vigil.deploy.migrations import schema_dump

    sql_text = m.up_sql if direction == "up" else (m.down_sql or "")
    path = m.path if direction == "up" else (m.down_path or m.path)
    exe = execution_of(sql_text, str(path), server_version_num=server_version_num)
    done_status = "applied" if direction == "up" else "reverted"
    res = MigrationResult(m.id, m.version, direction, "failed", exe.transactional, exe.reason)
    res.ledger_id = row_id = ledger.start(m, direction, exe.transactional, opts.actor)
    if on_event:
        on_event("start", {"id": m.id, "direction": direction, "transactional": exe.transactional, "reason": exe.reason})
    attempts = 1
    failure: SqlFailure | None = None
    current = exe.statements[0] if exe.statements else Statement("", 1)
    try:
        if exe.transactional:
            while True:
                try:
                    with conn.transaction():
                        _set_timeouts(conn, opts, local=True)
                        for st in exe.statements:
                            current = st
                            conn.execute(st.text)
                        res.duration_ms = ledger.finish(row_id, done_status, attempts=attempts)
                    res.status = done_status
                    break
                except psycopg.Error as e:
                    if conn.broken:
                        raise _lost(conn, m, direction, e) from None
                    failure = _failure_from(e, current, str(path))
                    if failure.sqlstate == "55P03" and attempts <= opts.lock_retries:
                        wait = backoff_seconds(attempts, opts.retry_backoff)
                        ledger.note_attempt(row_id, attempts, failure)
                        if on_event:
                            on_event("retry", {"id": m.id, "attempt": attempts, "wait": wait, "error": failure.text})
                        sleep(wait)
                        attempts += 1
                        continue
                    break
        else:
            before = schema_dump.snapshot(conn, exclude=[ledger.table])
            _set_timeouts(conn, opts, local=False)
            for i, st in enumerate(exe.statements):
                current = st
                pre = schema_dump.snapshot(conn, exclude=[ledger.table]) if i > 0 else before
                while True:
                    try:
                        conn.execute(st.text)
                        failure = None
                        break
                    except psycopg.Error as e:
                        if conn.broken:
                            raise _lost(conn, m, direction, e) from None
                        failure = _failure_from(e, st, str(path))
                        if (failure.sqlstate == "55P03" and attempts <= opts.lock_retries and i not in exe.debris
                                and not schema_dump.diff(pre, schema_dump.snapshot(conn, exclude=[ledger.table]))):
                            wait = backoff_seconds(attempts, opts.retry_backoff)
                            ledger.note_attempt(row_id, attempts, failure)
                            if on_event:
                                on_event("retry", {"id": m.id, "attempt": attempts, "wait": wait, "error": failure.text})
                            sleep(wait)
                            attempts += 1
                            continue
                        break
                if failure:
                    break
            if failure is None:
                res.duration_ms = ledger.finish(row_id, done_status, attempts=attempts)
                res.status = done_status
            else:
                left = schema_dump.diff(before, schema_dump.snapshot(conn, exclude=[ledger.table]))
                res.remains = [d.message for d in left]
                done = [s for s in exe.statements if s.offset < current.offset]
                if done:
                    res.notes.append(f"statements before line {current.line} ran outside a transaction and are committed")
        if res.status == "failed":
            assert failure is not None
            res.failure = failure
            extra = ("left behind: " + "; ".join(res.remains)) if res.remains else None
            res.duration_ms = ledger.finish(row_id, "failed", attempts=attempts, failure=failure, extra=extra)
        res.attempts = attempts
    finally:
        if not conn.broken and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:  # idle: drop what the migration SET
            conn.execute("RESET ALL")
    if on_event:
        on_event("end", res.to_dict())
    return res


def read_plan(conn: Any, migrations: Sequence[Migration], opts: ApplyOptions) -> Plan:
    rows = Ledger(conn, opts.ledger_table).rows()
    if opts.down_to is not None:
        return make_revert_plan(migrations, rows, opts.down_to, retry_failed=opts.retry_failed)
    return make_plan(migrations, rows, retry_failed=opts.retry_failed, target=opts.target)


def _ledger_errors(what: str, table: str) -> Any:
    import contextlib

    import psycopg

    @contextlib.contextmanager
    def cm() -> Iterator[None]:
        try:
            yield
        except psycopg.errors.InvalidSchemaName as e:
            raise UsageError(
                f"{what}: {first_line(e)}", hint=f"create the schema of ledger_table {table!r} first, or use a table in public"
            ) from None
        except psycopg.errors.InsufficientPrivilege as e:
            raise MigrationDbError(f"{what}: {first_line(e)}", hint="the migration role needs CREATE on the schema of the ledger table") from None
        except psycopg.Error as e:
            raise MigrationDbError(f"{what}: {first_line(e)}", hint=DB_HINT) from None

    return cm()


def apply_on(conn: Any, migrations: Sequence[Migration], opts: ApplyOptions, *, database: str = "",
             sleep: Callable[[float], None] = time.sleep, on_event: Event | None = None) -> ApplyReport:
    """Apply (or, with ``opts.down_to``, revert) on an open autocommit connection, under the advisory lock."""
    ledger = Ledger(conn, opts.ledger_table)
    key = acquire_lock(conn, opts.ledger_table, opts.lock_wait)
    try:
        with _ledger_errors("cannot prepare the migration ledger", opts.ledger_table):
            ledger.create()
            server_version_num = int(conn.info.server_version)
            plan = read_plan(conn, migrations, opts)
        report = ApplyReport(database, plan)
        if plan.problems:
            return report
        # parse everything first: a syntax error in the third file must not leave the first two applied
        for m in plan.to_run:
            if plan.direction == "up":
                execution_of(m.up_sql, str(m.path), server_version_num=server_version_num)
            else:
                execution_of(m.down_sql or "", str(m.down_path), server_version_num=server_version_num)
        for i, m in enumerate(plan.to_run):
            res = run_migration(conn, ledger, m, plan.direction, opts, server_version_num=server_version_num,
                                sleep=sleep, on_event=on_event)
            report.results.append(res)
            if res.status == "failed":
                report.not_run = [x.id for x in plan.to_run[i + 1 :]]
                break
        return report
    finally:
        if not conn.broken:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", key)
            except Exception:
                pass


def apply(url: str, migrations: Sequence[Migration], opts: ApplyOptions, *, sleep: Callable[[float], None] = time.sleep,
          on_event: Event | None = None, application_name: str = APPLICATION_NAME + " apply") -> ApplyReport:
    """Connect to ``url`` and :func:`apply_on`. Raises :class:`MigrationDbError` / :class:`MigrationLockBusy` (exit 3)."""
    import psycopg

    conn = connect(url, application_name=application_name)
    try:
        return apply_on(conn, migrations, opts, database=redact(url), sleep=sleep, on_event=on_event)
    except psycopg.Error as e:
        raise MigrationDbError(f"the migration run on {redact(url)} failed: {first_line(e)}", hint=DB_HINT) from None
    finally:
        conn.close()


@dataclass
class StatusReport:
    database: str
    ledger_table: str
    ledger_exists: bool
    plan: Plan
    running: dict | None = None

    @property
    def attention(self) -> bool:
        return bool(self.plan.problems) and self.running is None

    @property
    def exit_code(self) -> int:
        return exitcodes.NO if self.attention else exitcodes.OK

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.plan.states:
            out[s.state] = out.get(s.state, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {
            "database": self.database,
            "ledger_table": self.ledger_table,
            "ledger_exists": self.ledger_exists,
            "counts": self.counts(),
            "migrations": [s.to_dict() for s in self.plan.states],
            "pending": [s.id for s in self.plan.states if s.state == "pending"],
            "problems": [p.to_dict() for p in self.plan.problems],
            "warnings": list(self.plan.warnings),
            "running_now": self.running,
            "needs_attention": self.attention,
        }


def status(url: str, migrations: Sequence[Migration], ledger_table: str) -> StatusReport:
    """Read-only: files and ledger merged, and whether a runner holds the lock right now."""
    import psycopg

    conn = connect(url, application_name=APPLICATION_NAME + " status")
    try:
        ledger = Ledger(conn, ledger_table)
        with _ledger_errors("cannot read the migration ledger", ledger_table):
            exists = ledger.exists()
            rows = ledger.rows() if exists else []
            running = lock_holder(conn, lock_key(ledger_table))
        plan = make_plan(migrations, rows)
        if running is not None:
            # a 'running' row is a live run, not an interrupted one
            states = [replace(s, note=f"in progress (pid {running['pid']})") if s.state == "interrupted" else s for s in plan.states]
            plan = replace(plan, states=states, problems=[p for p in plan.problems if p.code != "interrupted"])
        return StatusReport(redact(url), ledger_table, exists, plan, running)
    except psycopg.Error as e:
        raise MigrationDbError(f"reading the migration status of {redact(url)} failed: {first_line(e)}", hint=DB_HINT) from None
    finally:
        conn.close()
