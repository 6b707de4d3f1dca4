"""The runner's pure core: what ``apply`` runs, in which order, and what forbids running it.

Plain functions over plain data (migration files and ledger rows); no database, no clock. The
ledger's I/O is :mod:`vigil.deploy.migrations.ledger`; the runner that acts on a plan is
:mod:`vigil.deploy.migrations.runner`.

A migration's state is read from its NEWEST ledger row (the ledger is append-only: one row per
attempt). ``failed`` and ``running`` (a run cut off) stop later runs until someone looks
(``apply --retry-failed``), except a transient failure that left nothing behind: a migration that
timed out waiting for a lock (SQLSTATE 55P03) and was rolled back, or ran outside a transaction
and changed nothing, is simply pending again (the next run tries it).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Literal, Sequence

from vigil.deploy.migrations.files import Migration, Statement

LOCK_CLASS = 7307002
"""First key of the runner's two-key advisory lock; the second is derived from the ledger table name."""

DEFAULT_LOCK_RETRIES = 3
DEFAULT_RETRY_BACKOFF = 1.0
MAX_RETRY_BACKOFF = 30.0
DEFAULT_LOCK_WAIT = 120.0
LOCK_TIMEOUT_SQLSTATE = "55P03"

State = Literal["applied", "pending", "failed", "interrupted", "edited", "missing-file", "revert-failed"]


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
    nothing_applied: bool | None = None
    """A failed attempt that left the schema as it was (always, for one in a transaction); None when unknown."""

    @property
    def changed_nothing(self) -> bool:
        """Whether this failed attempt certainly left nothing behind."""
        return self.status == "failed" and (self.transactional or bool(self.nothing_applied))

    @property
    def transient(self) -> bool:
        """A failed attempt that timed out waiting for a lock (SQLSTATE 55P03) and changed nothing:
        the next run simply tries again; no one needs to clean up or pass ``--retry-failed``."""
        return self.sqlstate == LOCK_TIMEOUT_SQLSTATE and self.changed_nothing

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
            "nothing_applied": self.nothing_applied,
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
            "applied_at": (r.finished_at.isoformat() if r and r.finished_at and self.state == "applied" and r.status == "applied"
                           else None),
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
class MigrationPlan:
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
        if r is None:
            assert m is not None  # v is a file's version or a ledger row's
            out.append(MigrationState(v, m.name, "pending", m, None))
            continue
        name = m.name if m else r.name
        if m is None:
            if r.direction == "up" and r.status == "applied":
                out.append(MigrationState(v, name, "missing-file", None, r, "applied, but its file is gone from the directory"))
            continue  # reverted or never applied, and gone: nothing to say
        if r.status == "running":
            out.append(MigrationState(v, name, "interrupted", m, r, f"a run that started {_when(r)} ended without recording an outcome"))
        elif r.status == "failed" and r.transient:
            # a lock timeout that changed nothing: where it was before the attempt, and not a reason to halt
            if r.direction == "up":
                out.append(MigrationState(v, name, "pending", m, r, f"the last attempt ({_when(r)}) timed out waiting for a lock "
                                          "and changed nothing; the next run tries again"))
            elif r.checksum != checksum(m.up_sql):
                out.append(MigrationState(v, name, "edited", m, r, "the file changed after it was applied"))
            else:
                out.append(MigrationState(v, name, "applied", m, r, f"reverting it timed out waiting for a lock ({_when(r)}) "
                                          "and changed nothing"))
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
    if r is None:
        return None  # never run: pending, which blocks nothing (every blocking state has a ledger row)
    if s.state == "edited":
        assert s.migration is not None  # edited: the file is there and differs from what ran
        return Problem(
            "edited",
            s.version,
            f"{s.id}: applied {_when(r)} with checksum {r.checksum[:12]}, but the file's checksum is now "
            f"{checksum(s.migration.up_sql)[:12]}: someone edited a migration that already ran",
            "restore the applied file from version control and put the change in a new migration",
        )
    if retry_failed:
        return None
    if s.state == "failed":
        if r.transactional:
            hint = (f"it ran in one transaction, so nothing of it remains; fix {s.migration.filename if s.migration else s.id}, "
                    f"then run `vigil migrate apply --retry-failed`")
        else:
            hint = ("it ran OUTSIDE a transaction: the statements before the failing one are committed and the failing one "
                    "may have left objects behind (see `vigil migrate status`); clean up, then run `vigil migrate apply --retry-failed`")
        return Problem("failed", s.version, f"{s.id} failed {_when(r)}: {s.note}", hint)
    if s.state == "interrupted":
        tx = r.transactional
        hint = (
            "the run was cut off (crash, kill, lost connection) while it ran in a transaction, so PostgreSQL rolled it "
            "back; run `vigil migrate apply --retry-failed`"
            if tx
            else "it ran OUTSIDE a transaction and was cut off: check what it changed, clean up, then run "
            "`vigil migrate apply --retry-failed`"
        )
        verb = "applying" if r.direction == "up" else "reverting"
        return Problem("interrupted", s.version, f"{s.id}: {verb} it started {_when(r)} and never finished", hint)
    if s.state == "revert-failed":
        return Problem(
            "revert-failed",
            s.version,
            f"{s.id}: reverting it failed {_when(r)}: {s.note}",
            "fix its .down.sql and run `vigil migrate apply --down-to VERSION --retry-failed`, or re-apply it with "
            "`vigil migrate apply --retry-failed`",
        )
    return None


def make_plan(migrations: Sequence[Migration], rows: Iterable[LedgerRow], *, retry_failed: bool = False,
              target: int | None = None) -> MigrationPlan:
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
        assert s.migration is not None  # only a missing file (skipped above) has none
        to_run.append(s.migration)
    return MigrationPlan(states, to_run, problems, warnings, "up")


def make_revert_plan(migrations: Sequence[Migration], rows: Iterable[LedgerRow], to_version: int, *,
                     retry_failed: bool = False) -> MigrationPlan:
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
    return MigrationPlan(states, to_run, problems, [], "down")

