"""How a migration's SQL runs: statement by statement, in one transaction or outside one. Pure.

PostgreSQL refuses some statements inside a transaction block (``CREATE INDEX CONCURRENTLY``,
``VACUUM``, ``CREATE DATABASE``, ...); a migration holding one runs in autocommit, statement by
statement, and :class:`Execution` says why. ``BEGIN`` / ``COMMIT`` in a file is refused: the
runner owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vigil.deploy.migrations.files import MigrationFileError, Statement, has_no_transaction, split_statements


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

