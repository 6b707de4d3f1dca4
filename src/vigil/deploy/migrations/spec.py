"""The ``migrations:`` section of the spec.

Shared by ``vigil migrate lint`` (static safety rules, pglast) and ``vigil migrate verify | apply |
status`` (a Stage database, a ledger). Example::

    migrations:
      dir: db/migrations              # relative to the spec file
      lock_timeout: 5s                # what the runner SETs before each migration (null: don't)
      statement_timeout: 15m
      ledger_table: vigil_schema_migrations
      stage:
        url_env: VIGIL_STAGE_DATABASE_URL   # the NAME of an env var holding the URL; never a URL here
      target:
        url_env: DATABASE_URL               # the database apply/status migrate (--db-url overrides)
      queries:                          # the app's queries, run against the migrated schema by verify
        previous: db/queries/previous   # the version running now (must keep working after expand)
        next: db/queries/next           # the version about to ship (must work after the migration)
      lint:
        disable: [missing-statement-timeout]
        severity: {add-column-volatile-default: warning}   # ids: vigil migrate lint --list-rules
      suppressions:
        - rule: drop-column
          file: 0007_drop_legacy_flag.sql
          reason: "column unused since 2026-03, contract step of #412"
          expires: 2027-01-31

File convention (one convention, shared by lint and the runner)
---------------------------------------------------------------
* A migration is one file ``<version>_<name>.sql`` in ``dir`` (no recursion): ``0001_create_users.sql``.
  ``<version>`` is one or more digits; migrations are ordered by its integer value, so ``0002``
  comes before ``0010`` however the files are padded. ``<name>`` is letters, digits, ``_``, ``-``
  and ``.``. Two files with the same integer version are an error.
* Its optional down migration is ``<version>_<name>.down.sql`` next to it. A ``.down.sql`` without
  its up file is an error. The linter lints up files only (a down file undoes an expand, so it is a
  contract by nature); down files are for the runner's rollbacks.
* Every other ``*.sql`` file in ``dir`` is an error (a typo must never silently skip a migration);
  files not ending in ``.sql`` (README.md, .gitkeep) are ignored.
* Files are UTF-8 (a BOM is tolerated and dropped), at most :data:`MAX_MIGRATION_BYTES`.

Transactions
------------
* By default the runner applies each up file in ONE transaction (all or nothing), after
  ``SET LOCAL lock_timeout`` / ``SET LOCAL statement_timeout`` from this section (when set).
* A file whose first lines (before any SQL) contain the directive ``-- vigil:no-transaction`` is run
  outside a transaction: the runner executes its statements one by one in autocommit
  (:func:`vigil.deploy.migrations.files.split_statements` gives them), after session-level ``SET``
  of the timeouts. Needed for ``CREATE INDEX CONCURRENTLY`` / ``DROP INDEX CONCURRENTLY`` /
  ``REINDEX CONCURRENTLY`` / ``ALTER TYPE ... ADD VALUE`` on old servers, which cannot run inside a
  transaction block. The linter flags a concurrent statement in a transactional file
  (``concurrently-in-transaction``) and explicit ``BEGIN``/``COMMIT`` in any file
  (``explicit-transaction``), since the runner owns the transaction.
* :attr:`Migration.no_transaction` carries the directive.

Inline directives (SQL comments, anywhere in an up file)
--------------------------------------------------------
* ``-- vigil:no-transaction`` (see above).
* ``-- vigil:ignore RULE[,RULE] reason="why" expires=YYYY-MM-DD``: suppresses those rules for the
  next statement (or, on the same line after SQL, for that statement). ``-- vigil:ignore-file ...``
  suppresses for the whole file. Both need a reason and an expiry; an expired suppression is an
  error finding naming it. A suppression is valid through its ``expires`` day. Spec
  ``suppressions`` apply to every statement of the files their ``file`` glob matches.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from vigil.deploy.migrations.files import MAX_MIGRATION_BYTES  # noqa: F401  (defined with the file reader)
from vigil.model import Duration, SpecModel

DEFAULT_DIR = "migrations"
DEFAULT_LEDGER_TABLE = "vigil_schema_migrations"
DEFAULT_STAGE_URL_ENV = "VIGIL_STAGE_DATABASE_URL"
DEFAULT_TARGET_URL_ENV = "DATABASE_URL"

Severity = Literal["error", "warning", "info"]

_RULE_ID = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


def _check_rule_id(v: str) -> str:
    from vigil.deploy.migrations.rules import RULES  # the catalog; imported lazily (rules imports pglast)

    if v not in RULES:
        import difflib

        close = difflib.get_close_matches(v, sorted(RULES), n=1)
        raise ValueError(
            f"unknown lint rule {v!r}"
            + (f"; did you mean {close[0]!r}?" if close else "; `vigil migrate lint --list-rules` lists them")
        )
    if RULES[v].locked:
        raise ValueError(f"rule {v!r} cannot be disabled, re-graded or suppressed: it reports unreadable input or a bad suppression")
    return v


def _check_env_name(v: str) -> str:
    if "://" in v or "@" in v:
        raise ValueError(
            "url_env is the NAME of an environment variable (like VIGIL_STAGE_DATABASE_URL), not a URL; "
            "never put a database URL or password in the spec"
        )
    if not _ENV_NAME.match(v):
        raise ValueError(f"{v!r} is not an environment variable name (letters, digits, '_', not starting with a digit)")
    return v


class StageSpec(SpecModel):
    """How ``verify`` reaches the Stage database: the URL comes from the environment, never the spec."""

    url_env: str = Field(
        DEFAULT_STAGE_URL_ENV,
        description="name of the environment variable holding the Stage PostgreSQL URL (postgresql://...)",
    )

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        return _check_env_name(v)


class TargetSpec(SpecModel):
    """How ``apply`` and ``status`` reach the database to migrate (``--db-url`` overrides)."""

    url_env: str = Field(
        DEFAULT_TARGET_URL_ENV,
        description="name of the environment variable holding the target PostgreSQL URL (keep the password in "
        "~/.pgpass or $PGPASSWORD, never in the spec)",
    )

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        return _check_env_name(v)


class QueriesSpec(SpecModel):
    """The application's queries, run by ``verify`` against the migrated schema (expand/contract check)."""

    previous: str | None = Field(
        None,
        description="a .sql file or a directory of .sql files: the queries of the app version running now "
        "(relative to the spec file); they must still work after an expand migration",
    )
    next: str | None = Field(
        None,
        description="a .sql file or a directory of .sql files: the queries of the app version about to ship",
    )


class LintSpec(SpecModel):
    """Lint options: rules to turn off, severities to change."""

    disable: list[str] = Field(default_factory=list, description="rule ids not to run")
    severity: dict[str, Severity] = Field(
        default_factory=dict, description="rule id -> error | warning | info, overriding the rule's default"
    )

    @field_validator("disable")
    @classmethod
    def _disable(cls, v: list[str]) -> list[str]:
        for r in v:
            _check_rule_id(r)
        return v

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: dict[str, str]) -> dict[str, str]:
        for r in v:
            _check_rule_id(r)
        return v


class Suppression(SpecModel):
    """A finding accepted on purpose, with why and until when."""

    rule: str = Field(description="the rule id to suppress")
    file: str = Field(
        description="the migration file name (like 0007_drop_flag.sql) or a glob (0007_*.sql) it applies to"
    )
    reason: str = Field(min_length=3, max_length=500, description="why this is safe; shown in reports")
    expires: _dt.date = Field(description="YYYY-MM-DD; after this day the suppression is itself an error finding")

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str) -> str:
        return _check_rule_id(v)

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a suppression needs a reason: say why the finding is safe to accept")
        return v.strip()

    @field_validator("expires", mode="before")
    @classmethod
    def _expires(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                return _dt.date.fromisoformat(v.strip())
            except ValueError:
                raise ValueError(f"expires must be a date YYYY-MM-DD, got {v!r}") from None
        return v


class MigrationsSpec(SpecModel):
    """Database migration safety: lint, verify against Stage, apply with a ledger."""

    dir: str = Field(DEFAULT_DIR, description="the directory of migration files, relative to the spec file")
    lock_timeout: Duration | None = Field(
        "5s",
        validate_default=True,
        description="lock_timeout the runner sets before each migration (default 5s; null: don't set it). "
        "When set, the missing-lock-timeout lint rule is satisfied for every file",
    )
    statement_timeout: Duration | None = Field(
        "15m",
        validate_default=True,
        description="statement_timeout the runner sets before each migration (default 15m; null: don't set it)",
    )
    ledger_table: str = Field(
        DEFAULT_LEDGER_TABLE, description="the table (optionally schema.table) where applied migrations are recorded"
    )
    stage: StageSpec = Field(default_factory=StageSpec, description="how verify reaches the Stage database")
    target: TargetSpec = Field(default_factory=TargetSpec, description="how apply and status reach the database to migrate")
    queries: QueriesSpec = Field(default_factory=QueriesSpec, description="the app's query suites for verify")
    lint: LintSpec = Field(default_factory=LintSpec, description="lint options")
    suppressions: list[Suppression] = Field(default_factory=list, description="accepted findings, each with a reason and an expiry")

    @field_validator("dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        if not v.strip() or "\x00" in v:
            raise ValueError("dir must be a directory path")
        return v

    @field_validator("ledger_table")
    @classmethod
    def _ledger(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"ledger_table must be a plain SQL identifier (schema.table allowed), got {v!r}")
        return v

    @field_validator("lock_timeout", "statement_timeout")
    @classmethod
    def _timeout(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v <= 0:
            raise ValueError("a timeout of 0 means wait forever; give a positive duration, or null to leave it to the file")
        if v is not None and v > 86400:
            raise ValueError("a timeout above 1d is a typo; a migration that needs longer needs a backfill job instead")
        return v

    @model_validator(mode="after")
    def _sev_vs_disable(self) -> MigrationsSpec:
        both = sorted(set(self.lint.disable) & set(self.lint.severity))
        if both:
            raise ValueError(f"lint rule(s) {', '.join(both)} are both disabled and given a severity; keep one")
        return self

    def timeout_ms(self, which: Literal["lock_timeout", "statement_timeout"]) -> int | None:
        """A timeout in whole milliseconds for ``SET ... = '<n>ms'``; None when unset."""
        v = getattr(self, which)
        return None if v is None else int(v * 1000)
