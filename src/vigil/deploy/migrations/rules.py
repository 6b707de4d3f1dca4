"""The catalog of ``vigil migrate lint`` rules: id, default severity, what it catches, why, the fix.

Pure data (no pglast import), so the spec can validate rule ids cheaply. The checks themselves are
in :mod:`vigil.deploy.migrations.lint`. Severities: ``error`` blocks or breaks production (a table
rewrite, a long ACCESS EXCLUSIVE lock, a change the running app version cannot survive),
``warning`` is risky, ``info`` is a note. The target is PostgreSQL 12 or later.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LintRule:
    id: str
    severity: str
    group: str
    summary: str
    why: str
    fix: str
    locked: bool = False
    """Locked rules cannot be disabled, re-graded or suppressed (parse errors, bad suppressions)."""
    opt_in: bool = False
    """Opt-in rules run only when turned on: ``--enable RULE``, or a severity for the rule in the
    spec's ``migrations.lint.severity``."""


_RULES = [
    # --- blocking locks and table rewrites ------------------------------------------------------
    LintRule(
        "index-not-concurrent",
        "error",
        "locks",
        "CREATE INDEX without CONCURRENTLY on an existing table",
        "A plain CREATE INDEX holds a SHARE lock on the table for the whole build: every INSERT, UPDATE "
        "and DELETE waits, for minutes on a big table.",
        "CREATE INDEX CONCURRENTLY in its own migration file that starts with `-- vigil:no-transaction`.",
    ),
    LintRule(
        "drop-index-not-concurrent",
        "warning",
        "locks",
        "DROP INDEX without CONCURRENTLY",
        "A plain DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table; behind a long query it "
        "queues every read and write of the table.",
        "DROP INDEX CONCURRENTLY in its own migration file that starts with `-- vigil:no-transaction`.",
    ),
    LintRule(
        "concurrently-in-transaction",
        "error",
        "locks",
        "a statement that cannot run in a transaction block (CONCURRENTLY, VACUUM, CREATE/DROP DATABASE) "
        "in a migration the runner wraps in a transaction",
        "CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION CONCURRENTLY, VACUUM, "
        "REINDEX SCHEMA/DATABASE, CLUSTER without a table and CREATE/DROP DATABASE cannot run inside a "
        "transaction block; the migration fails on apply.",
        "Move the statement to its own migration file whose first line is `-- vigil:no-transaction`.",
    ),
    LintRule(
        "reindex-not-concurrent",
        "error",
        "locks",
        "REINDEX without CONCURRENTLY",
        "A plain REINDEX blocks every write to the table for the whole rebuild, and takes an ACCESS "
        "EXCLUSIVE lock on each index it rebuilds, so reads that would use the index wait too.",
        "REINDEX (CONCURRENTLY) (PostgreSQL 12+) in its own migration file that starts with "
        "`-- vigil:no-transaction`.",
    ),
    LintRule(
        "detach-partition-not-concurrent",
        "warning",
        "locks",
        "ALTER TABLE ... DETACH PARTITION without CONCURRENTLY",
        "A plain DETACH PARTITION takes an ACCESS EXCLUSIVE lock on the partitioned table; behind a long "
        "query it queues every read and write of every partition.",
        "ALTER TABLE parent DETACH PARTITION part CONCURRENTLY (PostgreSQL 14+) in its own migration file "
        "that starts with `-- vigil:no-transaction`.",
    ),
    LintRule(
        "vacuum-full",
        "error",
        "locks",
        "VACUUM FULL in a migration",
        "VACUUM FULL rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock: no reads or "
        "writes until it ends, for minutes to hours on a big table.",
        "Reclaim space outside the deploy, online: pg_repack or pg_squeeze (or REPACK (CONCURRENTLY) on "
        "PostgreSQL 19+); plain VACUUM needs no migration at all.",
    ),
    LintRule(
        "table-rewrite",
        "error",
        "locks",
        "ALTER TABLE ... SET TABLESPACE, SET LOGGED, SET UNLOGGED or SET ACCESS METHOD on an existing table",
        "Each copies the whole table and its indexes under an ACCESS EXCLUSIVE lock: no reads or writes "
        "until it ends, for minutes to hours on a big table.",
        "Do it outside the deploy, online: pg_repack (--tablespace for a move), or a new table filled in "
        "batches and swapped in by a rename in a later release.",
    ),
    LintRule(
        "refresh-matview-not-concurrent",
        "warning",
        "locks",
        "REFRESH MATERIALIZED VIEW without CONCURRENTLY",
        "A plain refresh holds an ACCESS EXCLUSIVE lock on the view while its query runs: every read of "
        "the view waits.",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY (the view needs a unique index), or refresh from a job "
        "outside the deploy.",
    ),
    LintRule(
        "alter-domain-add-constraint",
        "error",
        "locks",
        "ALTER DOMAIN ... ADD CONSTRAINT (squawk: ban-alter-domain-with-add-constraint)",
        "PostgreSQL checks the new constraint against every column of every table that uses the domain, "
        "scanning them under lock; with NOT VALID it skips the check, but a domain's constraints still "
        "cannot be changed online later.",
        "Use a table CHECK constraint added NOT VALID, then VALIDATE CONSTRAINT in a later migration.",
    ),
    LintRule(
        "create-domain-with-constraint",
        "warning",
        "locks",
        "CREATE DOMAIN with a constraint (squawk: ban-create-domain-with-constraint)",
        "A domain's constraints can only be changed by ALTER DOMAIN, which checks every table using the "
        "domain at once: the constraint cannot be changed online later.",
        "Create the domain without constraints and put CHECK constraints on the tables' columns.",
    ),
    LintRule(
        "cluster",
        "error",
        "locks",
        "CLUSTER in a migration",
        "CLUSTER rewrites the whole table in index order under an ACCESS EXCLUSIVE lock: no reads or "
        "writes until it ends.",
        "Reorder the table online with pg_repack --order-by (or REPACK (CONCURRENTLY) ... USING INDEX on "
        "PostgreSQL 19+), outside the deploy.",
    ),
    LintRule(
        "no-transaction-mixed",
        "warning",
        "locks",
        "a `-- vigil:no-transaction` file that also holds ordinary DDL or data changes",
        "Without a transaction a failure half-way leaves the earlier statements applied and the migration "
        "unrecorded; only statements that cannot run in a transaction belong there.",
        "Keep only the CONCURRENTLY statements (and SETs) in the no-transaction file; move the rest to "
        "a normal migration.",
    ),
    LintRule(
        "explicit-transaction",
        "error",
        "locks",
        "BEGIN / COMMIT / ROLLBACK / SAVEPOINT in a migration file",
        "The runner owns the transaction (one per file); a COMMIT inside the file ends it early, so a later "
        "failure leaves the schema half-migrated and the ledger wrong.",
        "Remove the transaction statements; split the file if parts must commit separately.",
    ),
    LintRule(
        "add-column-volatile-default",
        "error",
        "rewrite",
        "ADD COLUMN with a volatile default (random(), gen_random_uuid(), clock_timestamp(), serial, "
        "identity, GENERATED ... STORED)",
        "PostgreSQL 11+ adds a column with a constant or stable default without touching rows, but a "
        "volatile default (or a serial, identity or stored generated column) is computed per row: the "
        "whole table is rewritten under an ACCESS EXCLUSIVE lock.",
        "Add the column without a default (or with a constant one), SET DEFAULT for new rows, backfill "
        "existing rows in batches from a job, then tighten.",
    ),
    LintRule(
        "add-column-unknown-default",
        "warning",
        "rewrite",
        "ADD COLUMN whose default calls a function vigil does not know",
        "If the function is VOLATILE, PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock; "
        "lint cannot see the function's volatility.",
        "Check the function's volatility (`\\df+`); if VOLATILE, add the column without a default and "
        "backfill; if IMMUTABLE or STABLE, suppress with that reason.",
    ),
    LintRule(
        "alter-column-type",
        "error",
        "rewrite",
        "ALTER COLUMN ... TYPE on an existing table",
        "Changing a column's type rewrites the table and its indexes under an ACCESS EXCLUSIVE lock "
        "(except binary-compatible changes such as varchar(n) -> varchar(m > n) or -> text), and the "
        "running app may not read the new type.",
        "Expand/contract: add a column of the new type, dual-write, backfill in batches, switch reads, "
        "then drop the old column in a later release. For a binary-compatible widening, suppress with that reason.",
    ),
    LintRule(
        "set-not-null",
        "error",
        "locks",
        "ALTER COLUMN ... SET NOT NULL without a validated CHECK (col IS NOT NULL) first",
        "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock to prove no NULL exists. "
        "PostgreSQL 12+ skips the scan when a validated CHECK (col IS NOT NULL) constraint already proves it.",
        "Migration 1: ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID. Migration 2: VALIDATE CONSTRAINT c "
        "(a SHARE UPDATE EXCLUSIVE lock; writes continue). Migration 3: SET NOT NULL (no scan), then DROP CONSTRAINT c.",
    ),
    LintRule(
        "add-constraint-not-valid",
        "error",
        "locks",
        "ADD CONSTRAINT CHECK / FOREIGN KEY without NOT VALID on an existing table",
        "Adding a validated CHECK or FOREIGN KEY scans the whole table (and for a foreign key the "
        "referenced one) while holding a lock that blocks writes.",
        "ADD CONSTRAINT ... NOT VALID (instant; enforced for new rows), then VALIDATE CONSTRAINT in a "
        "separate migration (SHARE UPDATE EXCLUSIVE: reads and writes continue).",
    ),
    LintRule(
        "add-unique-constraint",
        "error",
        "locks",
        "ADD CONSTRAINT UNIQUE / PRIMARY KEY / EXCLUDE that builds its index under the table lock",
        "The constraint builds a unique index while holding an ACCESS EXCLUSIVE lock: no reads or writes "
        "for the whole build.",
        "CREATE UNIQUE INDEX CONCURRENTLY idx ON t (cols) in a no-transaction migration, then "
        "ALTER TABLE t ADD CONSTRAINT c UNIQUE USING INDEX idx (or PRIMARY KEY USING INDEX).",
    ),
    # --- non-additive changes -------------------------------------------------------------------
    LintRule(
        "drop-table",
        "error",
        "breaking",
        "DROP TABLE (or view, materialized view) the running app may still use",
        "The version of the app running during and right after the deploy still reads and writes it; "
        "dropping is a contract step that must come after no deployed code uses the object.",
        "Stop using the table in a release first, verify (vigil migrate verify with the previous query suite), "
        "then drop it in a later migration and suppress this finding with that reason and an expiry.",
    ),
    LintRule(
        "drop-column",
        "error",
        "breaking",
        "ALTER TABLE ... DROP COLUMN the running app may still use",
        "The running app version still selects or inserts the column: its queries fail the moment the "
        "migration commits.",
        "Release code that no longer reads or writes the column (for ORMs: mark it ignored), then drop it in a "
        "later migration and suppress with that reason and an expiry.",
    ),
    LintRule(
        "rename-table",
        "error",
        "breaking",
        "ALTER TABLE ... RENAME TO",
        "Every query of the running app version that names the table fails after the rename.",
        "Expand/contract: create the new table (or a view with the new name over the old table), dual-write, "
        "switch reads, and drop the old name in a later release.",
    ),
    LintRule(
        "rename-column",
        "error",
        "breaking",
        "ALTER TABLE ... RENAME COLUMN",
        "Every query of the running app version that names the column fails after the rename.",
        "Expand/contract: add the new column, dual-write, backfill, switch reads, drop the old column later.",
    ),
    LintRule(
        "add-column-required",
        "error",
        "breaking",
        "ADD COLUMN ... NOT NULL without a DEFAULT on an existing table",
        "It fails on a table that has rows, and the running app's INSERTs (which do not know the column) "
        "fail once it exists.",
        "Add the column nullable (or NOT NULL with a constant DEFAULT), backfill, then tighten with the "
        "CHECK NOT VALID / VALIDATE / SET NOT NULL sequence.",
    ),
    LintRule(
        "truncate",
        "error",
        "breaking",
        "TRUNCATE in a migration",
        "TRUNCATE deletes every row under an ACCESS EXCLUSIVE lock; the data is gone for the running app too.",
        "Delete data from a job with a reviewed plan; if the table is really disposable, suppress with that reason.",
    ),
    LintRule(
        "drop-default",
        "error",
        "breaking",
        "ALTER COLUMN ... DROP DEFAULT on a column that is (or may be) NOT NULL",
        "The running app's INSERTs that leave the column out relied on the default: on a NOT NULL column "
        "they fail with a not-null violation the moment the migration commits.",
        "Ship code that always writes the column first (verify it with the previous release's queries), "
        "then drop the default in a later migration; lint knows a column is nullable when it saw it created "
        "that way, and then does not report.",
    ),
    LintRule(
        "drop-not-null",
        "warning",
        "breaking",
        "ALTER COLUMN ... DROP NOT NULL",
        "The running app reads the column assuming it is never NULL; once new code (or a backfill) writes "
        "NULLs, old readers may fail.",
        "Make sure every deployed reader handles NULL before new code writes it (this is the usual first step "
        "of removing a column: then suppress with that reason), or keep a marker value instead of NULL.",
    ),
    LintRule(
        "drop-constraint",
        "warning",
        "breaking",
        "ALTER TABLE ... DROP CONSTRAINT on an existing table",
        "The running app may rely on the guarantee (uniqueness, a foreign key, a check); dropping a UNIQUE or "
        "PRIMARY KEY constraint also drops its index, so ON CONFLICT on it fails and lookups by it slow down.",
        "Drop a constraint only after no deployed code relies on it; replace a unique constraint's index "
        "first (CREATE UNIQUE INDEX CONCURRENTLY) if queries still need it.",
    ),
    LintRule(
        "rename-type",
        "error",
        "breaking",
        "ALTER TYPE ... RENAME VALUE / RENAME TO / RENAME ATTRIBUTE, ALTER DOMAIN ... RENAME",
        "The running app still writes the old enum value or casts to the old type name: its statements fail "
        "(invalid input value for enum, type does not exist) the moment the migration commits.",
        "Expand/contract: ALTER TYPE ... ADD VALUE for the new value (or create the new type), release code "
        "that writes the new one and reads both, migrate rows in a backfill job, and retire the old value later. "
        "For values that change, a lookup table or text with a CHECK constraint is easier to evolve.",
    ),
    LintRule(
        "rename-object",
        "warning",
        "breaking",
        "ALTER ... RENAME of a schema, function, procedure, sequence or constraint",
        "The running app may call the function, use the sequence (nextval('...')), qualify names with the "
        "schema or name the constraint (ON CONFLICT ON CONSTRAINT): those statements fail after the rename.",
        "Create the new name beside the old one (a wrapper function, a new constraint), switch the code, and "
        "drop the old name in a later release.",
    ),
    LintRule(
        "set-schema",
        "error",
        "breaking",
        "ALTER ... SET SCHEMA (moves a table, type, function or other object to another schema)",
        "Every query of the running app that names the object's old schema, or finds it through "
        "search_path, fails after the move: it is a rename.",
        "Expand/contract as for a rename: create the object (or a view) in the new schema, switch the code, "
        "then remove the old one in a later release.",
    ),
    LintRule(
        "drop-database",
        "error",
        "breaking",
        "DROP DATABASE in a migration",
        "It deletes a whole database, irreversibly, from a deploy step; it cannot even run in a transaction.",
        "Drop databases by hand with a reviewed plan and a backup, never from a migration.",
    ),
    LintRule(
        "drop-object",
        "warning",
        "breaking",
        "DROP of a schema, type, function, sequence, trigger or other object",
        "The running app or other objects may depend on it; CASCADE drops dependents silently.",
        "Drop only what no deployed code uses, in a contract migration after the release that stopped "
        "using it; avoid CASCADE.",
    ),
    # --- timeouts -------------------------------------------------------------------------------
    LintRule(
        "missing-lock-timeout",
        "warning",
        "timeouts",
        "a migration that locks existing tables without a lock_timeout",
        "A DDL statement waiting for its lock behind one long query makes every later query on the table "
        "wait behind it: a short migration becomes an outage. lock_timeout makes it give up instead.",
        "SET lock_timeout = '5s'; at the top of the file (or set `migrations.lock_timeout` in the spec, "
        "which the runner applies), and retry the migration if it times out.",
    ),
    LintRule(
        "missing-statement-timeout",
        "warning",
        "timeouts",
        "a migration that locks existing tables without a statement_timeout",
        "Without a statement_timeout a slow statement holds its locks for as long as it runs.",
        "SET statement_timeout = '15min'; at the top of the file (or set `migrations.statement_timeout` "
        "in the spec, which the runner applies).",
    ),
    # --- data -----------------------------------------------------------------------------------
    LintRule(
        "backfill-in-migration",
        "warning",
        "data",
        "UPDATE / DELETE / INSERT ... SELECT in a schema migration",
        "A backfill in the migration's transaction locks every row it touches until commit, for as long "
        "as the table is big, and its run time depends on production data.",
        "Backfill from a job in batches (e.g. 1,000 rows per transaction by primary key range) between "
        "the expand and the contract migrations.",
    ),
    # --- style (opt-in) ---------------------------------------------------------------------------
    LintRule(
        "prefer-text",
        "warning",
        "style",
        "varchar(n) or char(n) column",
        "Changing a varchar(n) limit later needs ALTER COLUMN TYPE under an ACCESS EXCLUSIVE lock (shrinking "
        "it rewrites the table); char(n) pads values with spaces and compares them ignoring the padding.",
        "Use text, with a CHECK (length(col) <= n) constraint when the limit matters: a CHECK can be replaced "
        "NOT VALID without a rewrite.",
        opt_in=True,
    ),
    LintRule(
        "prefer-timestamptz",
        "warning",
        "style",
        "timestamp without time zone column",
        "timestamp drops the UTC offset: 21:11+02 and 21:11-06 are stored as the same value, eight hours apart "
        "in reality, and what a client reads depends on where it wrote from.",
        "Use timestamptz (timestamp with time zone); it stores an instant and costs the same 8 bytes.",
        opt_in=True,
    ),
    LintRule(
        "prefer-bigint",
        "warning",
        "style",
        "integer or smallint column",
        "A 32-bit id or counter runs out at 2,147,483,647 (a smallint at 32,767), and widening it later "
        "rewrites the table and its indexes under an ACCESS EXCLUSIVE lock.",
        "Use bigint (bigserial / bigint GENERATED ... AS IDENTITY for ids); it is 4 bytes more per row.",
        opt_in=True,
    ),
    LintRule(
        "prefer-identity",
        "warning",
        "style",
        "serial / bigserial column",
        "A serial column's sequence is a separate object with its own owner and grants, and it is easy to "
        "insert ids that collide with it; identity columns are the SQL-standard replacement.",
        "Use `bigint GENERATED BY DEFAULT AS IDENTITY` (or GENERATED ALWAYS) instead of serial types.",
        opt_in=True,
    ),
    # --- the linter itself ----------------------------------------------------------------------
    LintRule(
        "parse-error",
        "error",
        "input",
        "SQL the PostgreSQL parser rejects",
        "PostgreSQL will reject it too, and lint could not check the statement.",
        "Fix the syntax at the line shown (the parser's message names the token).",
        locked=True,
    ),
    LintRule(
        "file-invalid",
        "error",
        "input",
        "a migration file that cannot be read (too large, not UTF-8, NUL bytes)",
        "vigil cannot lint what it cannot read, and PostgreSQL would not run it.",
        "Save the file as UTF-8 text under the size limit; split large migrations; load bulk data with COPY from a job.",
        locked=True,
    ),
    LintRule(
        "misnamed-file",
        "error",
        "input",
        "a .sql file in a migrations directory whose name is not <version>_<name>.sql",
        "`vigil migrate apply` refuses a directory that holds it, so the deploy would stop at apply; a "
        "typo must never silently skip a migration.",
        "Rename it to <version>_<name>.sql (like 0007_add_orders.sql), lower-case `.sql`, or move it out of "
        "the migrations directory.",
        locked=True,
    ),
    LintRule(
        "duplicate-version",
        "error",
        "input",
        "two migration files with the same version",
        "The runner orders and records migrations by version: `vigil migrate apply` refuses the directory.",
        "Give the newer file the next free version (versions are compared as integers: 0007 and 7 collide).",
        locked=True,
    ),
    LintRule(
        "orphan-down",
        "error",
        "input",
        "a <version>_<name>.down.sql without its up file",
        "`vigil migrate apply` refuses the directory: a down migration belongs to exactly one up migration.",
        "Rename it to match its up file, or delete it.",
        locked=True,
    ),
    LintRule(
        "empty-migration",
        "error",
        "input",
        "a migration file with no SQL statement (empty, or only comments)",
        "`vigil migrate apply` refuses it: recording a migration that did nothing hides a mistake.",
        "Write its SQL, or delete the file.",
        locked=True,
    ),
    LintRule(
        "suppression-invalid",
        "error",
        "suppressions",
        "a malformed `vigil:` comment: unknown directive or rule, no reason, no expiry, or misplaced",
        "Every accepted risk needs a reason a reviewer can read and a date when it is looked at again.",
        'Write `-- vigil:ignore RULE reason="why this is safe" expires=YYYY-MM-DD`.',
        locked=True,
    ),
    LintRule(
        "suppression-expired",
        "error",
        "suppressions",
        "a suppression past its expiry date",
        "The reason it was accepted was meant to be looked at again by this date; it no longer suppresses.",
        "Re-check the finding: fix it, or renew the suppression with a new reason and date.",
        locked=True,
    ),
    LintRule(
        "suppression-unused",
        "info",
        "suppressions",
        "a suppression that matched no finding",
        "Stale suppressions hide future findings of the same rule.",
        "Remove it.",
    ),
]

RULES: dict[str, LintRule] = {r.id: r for r in _RULES}
"""Every rule by id, in catalog order."""

SEVERITIES = ("error", "warning", "info")
