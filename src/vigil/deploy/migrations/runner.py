"""The migration runner: ``vigil migrate apply`` and ``vigil migrate status``.

One run, against the target PostgreSQL database:

1. connect (psycopg 3, autocommit) and take ONE session advisory lock, waiting a bounded time;
   when another runner holds it the report says ``lock-busy`` and names its pid and application
   (nothing ran; exit 3, told apart from a database failure by the report's ``status``);
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
   left behind (a schema diff: an INVALID index, a table); the row records whether the attempt
   changed nothing (``nothing_applied``).

The ledger is append-only: one row per attempt (``direction`` up or down). The state of a
migration is its newest row. A ``failed`` or ``running`` newest row stops later runs until someone
looks: ``apply --retry-failed`` runs it again (after fixing the file or cleaning up). The one
exception is a lock timeout whose retries ran out and that changed nothing: the run exits 1, but
the migration is simply pending for the next run.

The pure parts live apart and are tested without a database: planning and the ledger's rows in
:mod:`~vigil.deploy.migrations.plan`, how a file runs in :mod:`~vigil.deploy.migrations.execution`,
the reports in :mod:`~vigil.deploy.migrations.report`; the ledger table and the advisory lock in
:mod:`~vigil.deploy.migrations.ledger`. This module connects and runs (and re-exports the names
above, so ``from vigil.deploy.migrations.runner import make_plan`` keeps working).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Iterator, Sequence

from vigil.deploy.migrations.execution import Execution, execution_of
from vigil.deploy.migrations.files import Migration, Statement
from vigil.deploy.migrations.ledger import Ledger, MigrationDbError, MigrationLockBusy, acquire_lock, lock_holder
from vigil.deploy.migrations.plan import (
    LedgerRow,
    MigrationPlan,
    MigrationState,
    Problem,
    backoff_seconds,
    checksum,
    error_line,
    lock_key,
    make_plan,
    make_revert_plan,
)
from vigil.deploy.migrations.report import (
    ApplyOptions,
    ApplyReport,
    Event,
    LockOutcome,
    MigrationResult,
    SqlFailure,
    StatusReport,
)
from vigil.errors import UsageError
from vigil.pgconn import first_line, redact  # re-exported: one helper for every PostgreSQL connection
from vigil.pgconn import libpq_dsn as libpq_url

__all__ = [  # the runner's public surface; the pure parts live in plan, execution and report
    "APPLICATION_NAME", "ApplyOptions", "ApplyReport", "DB_HINT", "Execution", "Ledger", "LedgerRow", "LockOutcome", "MigrationDbError",
    "MigrationLockBusy", "MigrationResult", "MigrationState", "MigrationPlan", "Problem", "SqlFailure", "StatusReport", "apply",
    "apply_on", "backoff_seconds", "checksum", "connect", "error_line", "execution_of", "first_line", "libpq_url",
    "lock_key", "make_plan", "make_revert_plan", "read_plan", "redact", "run_migration", "status",
]  # fmt: skip

APPLICATION_NAME = "vigil migrate"

DB_HINT = "check --db-url (or the environment variable named by the spec), that the server is up and accepts connections"


# -- connections ------------------------------------------------------------------------------------


def connect(url: str, *, application_name: str = APPLICATION_NAME, what: str = "the target database",
            connect_timeout: int = 10, hint: str = DB_HINT) -> Any:
    """A psycopg connection in autocommit mode (:func:`vigil.pgconn.connect`), or
    :class:`MigrationDbError` (exit 3) saying why not; a URL that cannot be read is a usage error."""
    from vigil import pgconn

    return pgconn.connect(url, what=what, hint=hint, error=MigrationDbError, autocommit=True,
                          connect_timeout=connect_timeout, application_name=application_name)


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
                res.nothing_applied = not done and not res.remains
        if res.status == "failed":
            assert failure is not None
            res.failure = failure
            if exe.transactional:
                res.nothing_applied = True  # PostgreSQL rolled the whole migration back
            extra = ("left behind: " + "; ".join(res.remains)) if res.remains else None
            res.duration_ms = ledger.finish(row_id, "failed", attempts=attempts, failure=failure, extra=extra,
                                            nothing_applied=res.nothing_applied)
        res.attempts = attempts
    finally:
        if not conn.broken and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:  # idle: drop what the migration SET
            conn.execute("RESET ALL")
    if on_event:
        on_event("end", res.to_dict())
    return res


def read_plan(conn: Any, migrations: Sequence[Migration], opts: ApplyOptions) -> MigrationPlan:
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
    """Apply (or, with ``opts.down_to``, revert) on an open autocommit connection, under the advisory lock.

    When another run holds the lock past ``opts.lock_wait`` the report's status is ``lock-busy``
    (nothing ran, nothing was written; exit 3 with the holder named), not an error."""
    ledger = Ledger(conn, opts.ledger_table)
    try:
        key = acquire_lock(conn, opts.ledger_table, opts.lock_wait)
    except MigrationLockBusy as e:
        direction = "down" if opts.down_to is not None else "up"
        return ApplyReport(database, MigrationPlan([], [], [], [], direction),
                           lock=LockOutcome(False, opts.lock_wait, e.holder, e.message, e.hint))
    try:
        with _ledger_errors("cannot prepare the migration ledger", opts.ledger_table):
            ledger.create()
            server_version_num = int(conn.info.server_version)
            plan = read_plan(conn, migrations, opts)
        report = ApplyReport(database, plan, lock=LockOutcome(True, opts.lock_wait))
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
    """Connect to ``url`` and :func:`apply_on`. Raises :class:`MigrationDbError` (exit 3) when the database
    fails; a busy migration lock is a report with status ``lock-busy``."""
    import psycopg

    conn = connect(url, application_name=application_name)
    try:
        return apply_on(conn, migrations, opts, database=redact(url), sleep=sleep, on_event=on_event)
    except psycopg.Error as e:
        raise MigrationDbError(f"the migration run on {redact(url)} failed: {first_line(e)}", hint=DB_HINT) from None
    finally:
        conn.close()


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
