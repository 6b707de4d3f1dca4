"""What a run reports: the SQL failure, each migration's result, the apply and status reports,
and the run's options. Plain data with stable JSON shapes (``to_dict``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from vigil import exitcodes
from vigil.deploy.migrations.plan import DEFAULT_LOCK_RETRIES, DEFAULT_LOCK_WAIT, DEFAULT_RETRY_BACKOFF, MigrationPlan


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
    nothing_applied: bool | None = None
    """For a failure: the attempt left the schema as it was (so a lock timeout does not halt later runs)."""

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
            "nothing_applied": self.nothing_applied,
        }


@dataclass(frozen=True)
class LockOutcome:
    """Whether the run took the migration lock; when not, who holds it (nothing was applied)."""

    acquired: bool
    wait_seconds: float
    holder: dict | None = None
    message: str | None = None
    hint: str | None = None

    def to_dict(self) -> dict:
        return {"acquired": self.acquired, "wait_seconds": self.wait_seconds, "holder": self.holder,
                "message": self.message, "hint": self.hint}


@dataclass
class ApplyReport:
    database: str
    plan: MigrationPlan
    results: list[MigrationResult] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    lock: LockOutcome | None = None

    @property
    def lock_busy(self) -> bool:
        return self.lock is not None and not self.lock.acquired

    @property
    def status(self) -> str:
        if self.lock_busy:
            return "lock-busy"
        if self.plan.problems:
            return "refused"
        if any(r.status == "failed" for r in self.results):
            return "failed"
        return "ok" if self.results else "nothing-to-do"

    @property
    def exit_code(self) -> int:
        if self.lock_busy:
            return exitcodes.EXTERNAL  # nothing ran; the JSON says lock-busy, the text says BUSY
        return exitcodes.OK if self.status in ("ok", "nothing-to-do") else exitcodes.NO

    def to_dict(self) -> dict:
        return {
            "database": self.database,
            "direction": self.plan.direction,
            "status": self.status,
            "lock_busy": self.lock_busy,
            "lock": self.lock.to_dict() if self.lock else None,
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


@dataclass
class StatusReport:
    database: str
    ledger_table: str
    ledger_exists: bool
    plan: MigrationPlan
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

