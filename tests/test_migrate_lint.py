"""vigil migrate lint: every rule has a failing and a passing SQL case; suppressions, classes, files,
SARIF, the CLI, and arbitrary text never crashing the linter."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.deploy.migrations.files import MigrationFileError, load_migrations, split_statements
from vigil.deploy.migrations.lint import LintConfig, lint_paths, lint_sql, lint_texts
from vigil.deploy.migrations.rules import RULES
from vigil.deploy.migrations.sarif import to_sarif
from vigil.deploy.migrations.spec import MigrationsSpec

TODAY = dt.date(2026, 6, 1)
CFG = LintConfig(today=TODAY)
NOTX = "-- vigil:no-transaction\n"
OK_TIMEOUTS = "SET lock_timeout = '5s';\nSET statement_timeout = '15min';\n"

# rule -> (failing SQL cases, passing SQL cases)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "index-not-concurrent": (
        ["CREATE INDEX users_email ON users (email);", "CREATE UNIQUE INDEX u ON users (lower(email));"],
        [NOTX + "CREATE INDEX CONCURRENTLY users_email ON users (email);",
         "CREATE TABLE users (email text);\nCREATE INDEX users_email ON users (email);",
         NOTX + "REINDEX (CONCURRENTLY) TABLE users;", "REINDEX TABLE users;"],
    ),
    # REINDEX has its own rule now, split from index-not-concurrent (whose fix talks about CREATE INDEX)
    "reindex-not-concurrent": (
        ["REINDEX TABLE users;", "REINDEX INDEX users_email;", NOTX + "REINDEX TABLE users;"],
        [NOTX + "REINDEX (CONCURRENTLY) TABLE users;", NOTX + "REINDEX TABLE CONCURRENTLY users;",
         "CREATE TABLE t (a int);\nREINDEX TABLE t;"],
    ),
    "detach-partition-not-concurrent": (
        ["ALTER TABLE events DETACH PARTITION events_2024;"],
        [NOTX + "ALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY;",
         "ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');"],
    ),
    "vacuum-full": (
        [NOTX + "VACUUM FULL users;", NOTX + "VACUUM (FULL, ANALYZE) users;", NOTX + "VACUUM FULL;"],
        [NOTX + "VACUUM users;", NOTX + "VACUUM (FULL false) users;", "ANALYZE users;"],
    ),
    "cluster": (
        ["CLUSTER users USING users_pkey;", "CLUSTER users;"],
        ["CREATE TABLE t (a int PRIMARY KEY);\nCLUSTER t USING t_pkey;", "ALTER TABLE users CLUSTER ON users_pkey;"],
    ),
    "table-rewrite": (
        ["ALTER TABLE users SET TABLESPACE slow;", "ALTER TABLE users SET LOGGED;", "ALTER TABLE users SET UNLOGGED;",
         "ALTER TABLE users SET ACCESS METHOD heap2;"],
        ["CREATE TABLE t (a int);\nALTER TABLE t SET UNLOGGED;", "ALTER TABLE users SET (fillfactor = 90);"],
    ),
    "refresh-matview-not-concurrent": (
        ["REFRESH MATERIALIZED VIEW totals;"],
        ["REFRESH MATERIALIZED VIEW CONCURRENTLY totals;"],
    ),
    "alter-domain-add-constraint": (
        ["ALTER DOMAIN pos ADD CONSTRAINT p CHECK (VALUE > 0);"],  # NOT VALID: a warning (tests/test_hostile_evidence.py)
        ["ALTER DOMAIN pos DROP CONSTRAINT p;", "CREATE DOMAIN pos AS int;\nALTER DOMAIN pos ADD CONSTRAINT p CHECK (VALUE > 0);"],
    ),
    "create-domain-with-constraint": (
        ["CREATE DOMAIN pos AS int CHECK (VALUE > 0);"],
        ["CREATE DOMAIN pos AS int;", "CREATE DOMAIN pos AS int NOT NULL;"],
    ),
    "drop-index-not-concurrent": (
        ["DROP INDEX users_email;"],
        [NOTX + "DROP INDEX CONCURRENTLY IF EXISTS users_email;"],
    ),
    "concurrently-in-transaction": (
        ["CREATE INDEX CONCURRENTLY i ON users (email);", "DROP INDEX CONCURRENTLY i;", "REINDEX (CONCURRENTLY) INDEX i;",
         "ALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY;", "VACUUM users;", "VACUUM FULL users;",
         "CREATE DATABASE scratch;", "DROP DATABASE scratch;", "REINDEX SCHEMA public;", "CLUSTER;"],
        [NOTX + "CREATE INDEX CONCURRENTLY i ON users (email);", "-- the email index\n" + NOTX + "DROP INDEX CONCURRENTLY i;",
         NOTX + "VACUUM users;", "ANALYZE users;", "CLUSTER users USING users_pkey;"],
    ),
    "no-transaction-mixed": (
        [NOTX + "CREATE INDEX CONCURRENTLY i ON users (email);\nALTER TABLE users ADD COLUMN x int;",
         NOTX + "CREATE INDEX CONCURRENTLY i ON users (email);\nUPDATE users SET x = 1;"],
        [NOTX + "SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY i ON users (email);\nCREATE INDEX CONCURRENTLY j ON users (name);"],
    ),
    "explicit-transaction": (
        ["BEGIN;\nALTER TABLE users ADD COLUMN x int;\nCOMMIT;", "SAVEPOINT a;"],
        ["ALTER TABLE users ADD COLUMN x int;"],
    ),
    "add-column-volatile-default": (
        ["ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
         "ALTER TABLE users ADD COLUMN r float8 DEFAULT random() * 10;",
         "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT clock_timestamp();",
         "ALTER TABLE users ADD COLUMN n bigserial;",
         "ALTER TABLE users ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;",
         "ALTER TABLE users ADD COLUMN lower_email text GENERATED ALWAYS AS (lower(email)) STORED;"],
        ["ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();",
         "ALTER TABLE users ADD COLUMN flag boolean NOT NULL DEFAULT false;",
         "ALTER TABLE users ADD COLUMN at timestamptz DEFAULT CURRENT_TIMESTAMP;",
         "CREATE TABLE t (id uuid DEFAULT gen_random_uuid());"],
    ),
    "add-column-unknown-default": (
        ["ALTER TABLE users ADD COLUMN code text DEFAULT make_code();"],
        ["ALTER TABLE users ADD COLUMN code text DEFAULT lower('X');", "ALTER TABLE users ADD COLUMN code text DEFAULT 'x';"],
    ),
    "alter-column-type": (
        ["ALTER TABLE users ALTER COLUMN age TYPE bigint;", "ALTER TABLE users ALTER COLUMN age SET DATA TYPE text USING age::text;"],
        ["CREATE TABLE users2 (age int);\nALTER TABLE users2 ALTER COLUMN age TYPE bigint;",
         "ALTER TABLE users ADD COLUMN age_new bigint;"],
    ),
    "set-not-null": (
        ["ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
         # a CHECK added NOT VALID but never validated does not prove anything
         "ALTER TABLE users ADD CONSTRAINT c CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"],
        ["ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
         "ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n"
         "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
         "ALTER TABLE users DROP CONSTRAINT email_nn;",
         "CREATE TABLE n (a int);\nALTER TABLE n ALTER COLUMN a SET NOT NULL;"],
    ),
    "add-constraint-not-valid": (
        ["ALTER TABLE users ADD CONSTRAINT age_pos CHECK (age > 0);",
         "ALTER TABLE orders ADD CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users (id);",
         "ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users (id);"],
        ["ALTER TABLE users ADD CONSTRAINT age_pos CHECK (age > 0) NOT VALID;",
         "ALTER TABLE orders ADD CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
         "ALTER TABLE orders VALIDATE CONSTRAINT fk_user;"],
    ),
    "add-unique-constraint": (
        ["ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
         "ALTER TABLE users ADD PRIMARY KEY (id);",
         "ALTER TABLE users ADD COLUMN handle text UNIQUE;"],
        ["ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;",
         "CREATE TABLE t (id int);\nALTER TABLE t ADD PRIMARY KEY (id);"],
    ),
    "drop-table": (
        ["DROP TABLE legacy_events;", "DROP VIEW IF EXISTS report CASCADE;"],
        ["CREATE TABLE scratch (a int);\nDROP TABLE scratch;"],
    ),
    "drop-column": (
        ["ALTER TABLE users DROP COLUMN legacy_flag;"],
        ["ALTER TABLE users ADD COLUMN legacy_flag boolean;"],
    ),
    "rename-table": (
        ["ALTER TABLE users RENAME TO accounts;"],
        ["ALTER INDEX users_email RENAME TO users_email_idx;", "CREATE TABLE a (x int);\nALTER TABLE a RENAME TO b;"],
    ),
    "rename-column": (
        ["ALTER TABLE users RENAME COLUMN name TO full_name;"],
        ["CREATE TABLE a (x int);\nALTER TABLE a RENAME COLUMN x TO y;", "ALTER TABLE users ADD COLUMN full_name text;"],
    ),
    "add-column-required": (
        ["ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;"],
        ["ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL DEFAULT 0;", "ALTER TABLE users ADD COLUMN tenant_id bigint;"],
    ),
    "truncate": (
        ["TRUNCATE sessions;"],
        ["CREATE TABLE staging (a int);\nTRUNCATE staging;"],
    ),
    "drop-object": (
        ["DROP FUNCTION compute(int);", "DROP TYPE mood CASCADE;", "DROP SCHEMA old;", "DROP TRIGGER t_audit ON users;",
         # dropped and created again, but CASCADE also dropped what depended on it
         "DROP FUNCTION f() CASCADE;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1';",
         # in a no-transaction file there is a moment without the trigger
         NOTX + "DROP TRIGGER t_audit ON users;\nCREATE TRIGGER t_audit AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION audit();"],
        ["CREATE TYPE mood AS ENUM ('happy', 'sad');",
         "DROP TRIGGER IF EXISTS t_audit ON users;\nCREATE TRIGGER t_audit AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION audit();",
         "DROP FUNCTION IF EXISTS f(int);\nCREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'select a';",
         "DROP POLICY p ON users;\nCREATE POLICY p ON users USING (owner = current_user);"],
    ),
    "drop-default": (
        ["ALTER TABLE users ALTER COLUMN plan DROP DEFAULT;",
         # a required column added with a default to fill the old rows, then the default dropped: the
         # running app's INSERTs do not know the column and fail
         "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';\nALTER TABLE users ALTER COLUMN plan DROP DEFAULT;"],
        ["CREATE TABLE t (plan text NOT NULL DEFAULT 'free');\nALTER TABLE t ALTER COLUMN plan DROP DEFAULT;",
         "ALTER TABLE users ADD COLUMN plan text DEFAULT 'free';\nALTER TABLE users ALTER COLUMN plan DROP DEFAULT;",
         "ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'free';"],
    ),
    "drop-not-null": (
        ["ALTER TABLE users ALTER COLUMN nickname DROP NOT NULL;"],
        ["CREATE TABLE t (a int NOT NULL);\nALTER TABLE t ALTER COLUMN a DROP NOT NULL;",
         "ALTER TABLE users ALTER COLUMN nickname SET NOT NULL;"],
    ),
    "drop-constraint": (
        ["ALTER TABLE users DROP CONSTRAINT users_email_key;", "ALTER TABLE orders DROP CONSTRAINT orders_user_fk CASCADE;"],
        ["ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE users DROP CONSTRAINT c;",
         "CREATE TABLE t (a int CONSTRAINT pos CHECK (a > 0));\nALTER TABLE t DROP CONSTRAINT pos;"],
    ),
    "rename-type": (
        ["ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy';", "ALTER TYPE mood RENAME TO feeling;",
         "ALTER TYPE address RENAME ATTRIBUTE zip TO postcode;", "ALTER DOMAIN email RENAME TO email_address;"],
        ["ALTER TYPE mood ADD VALUE 'meh';",
         "CREATE TYPE mood AS ENUM ('happy', 'sad');\nALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy';"],
    ),
    "rename-object": (
        ["ALTER FUNCTION compute(int) RENAME TO compute_v2;", "ALTER SEQUENCE order_no RENAME TO order_number;",
         "ALTER SCHEMA billing RENAME TO payments;", "ALTER TABLE users RENAME CONSTRAINT users_email_key TO users_email_uq;"],
        ["ALTER INDEX users_email RENAME TO users_email_idx;", "ALTER TRIGGER t_audit ON users RENAME TO t_audit_v2;",
         "CREATE SEQUENCE s;\nALTER SEQUENCE s RENAME TO s2;"],
    ),
    "set-schema": (
        ["ALTER TABLE users SET SCHEMA accounts;", "ALTER TYPE mood SET SCHEMA shared;",
         "ALTER FUNCTION compute(int) SET SCHEMA util;"],
        ["CREATE TABLE t (a int);\nALTER TABLE t SET SCHEMA archive;", "ALTER TABLE users SET (fillfactor = 90);"],
    ),
    "drop-database": (
        [NOTX + "DROP DATABASE legacy;", "DROP DATABASE IF EXISTS legacy;"],
        [NOTX + "CREATE DATABASE reports;"],
    ),
    "missing-lock-timeout": (
        ["ALTER TABLE users ADD COLUMN x int;",
         "SET lock_timeout = 0;\nALTER TABLE users ADD COLUMN x int;",
         "ALTER TABLE users ADD COLUMN x int;\nSET lock_timeout = '5s';",
         NOTX + "SET LOCAL lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY i ON t (a);\nDROP INDEX j;"],
        ["SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN x int;",
         "SET LOCAL lock_timeout TO '2s';\nALTER TABLE users ADD COLUMN x int;",
         "CREATE TABLE fresh (a int);\nCREATE INDEX ON fresh (a);"],
    ),
    "missing-statement-timeout": (
        ["ALTER TABLE users ADD COLUMN x int;", "TRUNCATE t;"],
        ["SET statement_timeout = '15min';\nALTER TABLE users ADD COLUMN x int;"],
    ),
    "backfill-in-migration": (
        ["UPDATE users SET plan = 'free' WHERE plan IS NULL;", "DELETE FROM sessions;",
         "INSERT INTO archive SELECT * FROM events WHERE at < now() - interval '1 year';",
         "UPDATE users SET plan = 'free' WHERE id > 5;", "UPDATE users SET plan = 'free' WHERE id = 5 OR true;"],
        ["INSERT INTO plans (name) VALUES ('free'), ('pro');", "INSERT INTO plans (name) SELECT 'free';",
         "CREATE TABLE t (a int);\nUPDATE t SET a = 1;",
         # a system catalog is not a backfill
         "UPDATE pg_catalog.pg_index SET indisvalid = true WHERE indexrelid = 'users_email'::regclass;",
         "UPDATE pg_index SET indisready = true WHERE indexrelid = 'users_email'::regclass;",
         # one row, by its key
         "UPDATE users SET plan = 'pro' WHERE id = 42;", "DELETE FROM users WHERE 42 = id AND plan = 'free';"],
    ),
    "parse-error": (
        ["SELEC 1;", "ALTER TABLE users ADD COLUMN;", "SELECT 'unterminated;"],
        ["SELECT 1;", "", "-- only a comment\n"],
    ),
    "suppression-invalid": (
        ["-- vigil:ignore drop-column\nALTER TABLE users DROP COLUMN a;",
         '-- vigil:ignore drop-column reason="unused"\nALTER TABLE users DROP COLUMN a;',
         '-- vigil:ignore drop-colum reason="unused since march" expires=2027-01-31\nALTER TABLE users DROP COLUMN a;',
         '-- vigil:ignore drop-column reason="unused since march" expires=2027-02-30\nALTER TABLE users DROP COLUMN a;',
         '-- vigil:ignore parse-error reason="x y z" expires=2027-01-31\nSELECT 1;',
         "-- vigil:ignor drop-column\nSELECT 1;",
         "SELECT 1;\n-- vigil:no-transaction\nSELECT 2;"],
        ['-- vigil:ignore drop-column reason="unused since march" expires=2027-01-31\nALTER TABLE users DROP COLUMN a;'],
    ),
    "suppression-expired": (
        ['-- vigil:ignore drop-column reason="unused since march" expires=2026-05-31\nALTER TABLE users DROP COLUMN a;'],
        ['-- vigil:ignore drop-column reason="unused since march" expires=2026-06-01\nALTER TABLE users DROP COLUMN a;'],
    ),
    "suppression-unused": (
        ['-- vigil:ignore drop-column reason="unused since march" expires=2027-01-31\nALTER TABLE users ADD COLUMN a int;'],
        ['ALTER TABLE users DROP COLUMN a; -- vigil:ignore drop-column reason="unused since march" expires=2027-01-31'],
    ),
    # opt-in rules: run with OPT_IN here (off by default: tested below)
    "prefer-text": (
        ["CREATE TABLE t (name varchar(100));", "ALTER TABLE users ADD COLUMN code char(3);",
         "ALTER TABLE users ALTER COLUMN name TYPE varchar(50);", "CREATE TABLE t (tags varchar(20)[]);"],
        ["CREATE TABLE t (name text, b varchar);", "CREATE TABLE t (flag \"char\");"],
    ),
    "prefer-timestamptz": (
        ["CREATE TABLE t (at timestamp);", "ALTER TABLE users ADD COLUMN seen timestamp(3) without time zone;"],
        ["CREATE TABLE t (at timestamptz, b timestamp with time zone);"],
    ),
    "prefer-bigint": (
        ["CREATE TABLE t (id int PRIMARY KEY);", "ALTER TABLE users ADD COLUMN n integer;", "CREATE TABLE t (id serial);",
         "CREATE TABLE t (n smallint);"],
        ["CREATE TABLE t (id bigint, n int8, x numeric);"],
    ),
    "prefer-identity": (
        ["CREATE TABLE t (id serial PRIMARY KEY);", "CREATE TABLE t (id bigserial);"],
        ["CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);"],
    ),
}
FILE_RULES = {"file-invalid", "misnamed-file", "duplicate-version", "orphan-down", "empty-migration"}  # files on disk: below
OPT_IN = LintConfig(today=TODAY, enabled=frozenset(r for r in RULES if RULES[r].opt_in))


def _rules(sql: str, config: LintConfig = CFG) -> set[str]:
    return {f.rule for f in lint_sql(sql, "m.sql", config).findings}


def _config(rule: str) -> LintConfig:
    return OPT_IN if RULES[rule].opt_in else CFG


def test_every_rule_has_failing_and_passing_cases() -> None:
    assert set(CASES) | FILE_RULES == set(RULES)
    for rule, (bad, good) in CASES.items():
        assert bad and good, rule


@pytest.mark.parametrize(
    ("rule", "sql"), [(r, s) for r, (bad, _) in CASES.items() for s in bad], ids=lambda x: x if len(x) < 40 else x[:40]
)
def test_rule_fails(rule: str, sql: str) -> None:
    report = lint_sql(sql, "m.sql", _config(rule))
    hits = [f for f in report.findings if f.rule == rule]
    assert hits, f"{rule} did not fire on {sql!r}: {[f.rule for f in report.findings]}"
    for f in hits:
        assert f.severity == RULES[rule].severity
        assert f.file == "m.sql" and f.line >= 1 and f.message and f.fix


@pytest.mark.parametrize(
    ("rule", "sql"), [(r, s) for r, (_, good) in CASES.items() for s in good], ids=lambda x: x if len(x) < 40 else x[:40]
)
def test_rule_passes(rule: str, sql: str) -> None:
    assert rule not in _rules(sql, _config(rule))


def test_file_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "0001_bad.sql"
    bad.write_bytes(b"SELECT '\xff\xfe';")
    big = tmp_path / "0002_big.sql"
    big.write_bytes(b"SELECT 1;\n" * 200_000)
    good = tmp_path / "0003_good.sql"
    good.write_text("SELECT 'h\u00e9llo';")
    r = lint_paths([tmp_path], CFG)
    by = {Path(f.file).name: f for f in r.findings if f.rule == "file-invalid"}
    assert set(by) == {"0001_bad.sql", "0002_big.sql"}
    assert "UTF-8" in by["0001_bad.sql"].message and "KiB" in by["0002_big.sql"].message
    assert not r.ok


# --- findings: lines, fixes, severity -------------------------------------------------------------


def test_lines_and_columns_point_at_the_statement() -> None:
    sql = "-- header\nSET lock_timeout = '5s';\nSET statement_timeout = '1min';\n\nCREATE INDEX i\n  ON users (email);\nALTER TABLE users\n  ADD COLUMN t uuid DEFAULT gen_random_uuid();\n"
    r = lint_sql(sql, "m.sql", CFG)
    got = {(f.rule, f.line) for f in r.findings}
    assert ("index-not-concurrent", 6) in got  # the table name's line
    assert ("add-column-volatile-default", 8) in got
    assert not any(f.rule.startswith("missing-") for f in r.findings)


def test_parse_error_line_and_other_statements_still_checked() -> None:
    sql = "SELECT 1;\nCREATE INDEX i ON users (email);\n\nSELEC oops;\nDROP TABLE t;\n"
    r = lint_sql(sql, "m.sql", CFG)
    pe = [f for f in r.findings if f.rule == "parse-error"]
    assert len(pe) == 1 and pe[0].line == 4 and 'at or near "SELEC"' in pe[0].message
    assert {"index-not-concurrent", "drop-table"} <= {f.rule for f in r.findings}
    assert r.migrations[0].cls == "unknown"


def test_fix_is_a_concrete_rewrite() -> None:
    (f,) = [f for f in lint_sql("CREATE INDEX users_email ON public.users (email);", "m", CFG).findings if f.rule == "index-not-concurrent"]
    assert "CREATE INDEX CONCURRENTLY users_email ON public.users (email)" in f.fix
    (f,) = [f for f in lint_sql("ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);", "m", CFG).findings if f.rule == "add-unique-constraint"]
    assert "CREATE UNIQUE INDEX CONCURRENTLY u ON users (email)" in f.fix and "UNIQUE USING INDEX u" in f.fix
    (f,) = [f for f in lint_sql("ALTER TABLE o ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users (id);", "m", CFG).findings if f.rule == "add-constraint-not-valid"]
    assert "NOT VALID" in f.fix and "VALIDATE CONSTRAINT fk" in f.fix


def test_spec_lint_options_disable_and_regrade() -> None:
    ms = MigrationsSpec.model_validate({"lint": {"disable": ["drop-column"], "severity": {"backfill-in-migration": "error"}}})
    cfg = LintConfig.from_spec(ms, today=TODAY)
    r = lint_sql("ALTER TABLE users DROP COLUMN a;\nUPDATE users SET b = 1;", "m.sql", cfg)
    assert "drop-column" not in {f.rule for f in r.findings}
    (f,) = [f for f in r.findings if f.rule == "backfill-in-migration"]
    assert f.severity == "error" and not r.ok
    # the spec's timeouts are set by the runner: the timeout rules are satisfied
    assert not any(f.rule.startswith("missing-") for f in r.findings)
    no_runner = LintConfig.from_spec(MigrationsSpec.model_validate({"lock_timeout": None}), today=TODAY)
    assert {f.rule for f in lint_sql("ALTER TABLE users ADD COLUMN x int;", "m", no_runner).findings} == {"missing-lock-timeout"}


def test_spec_rejects_unknown_and_locked_rules() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="did you mean 'drop-column'"):
        MigrationsSpec.model_validate({"lint": {"disable": ["drop-colum"]}})
    with pytest.raises(ValidationError, match="cannot be disabled"):
        MigrationsSpec.model_validate({"lint": {"disable": ["parse-error"]}})
    with pytest.raises(ValidationError, match="NAME of an environment variable"):
        MigrationsSpec.model_validate({"stage": {"url_env": "postgresql://u:secret@db/x"}})
    with pytest.raises(ValidationError, match="expires"):
        MigrationsSpec.model_validate({"suppressions": [{"rule": "drop-column", "file": "x.sql", "reason": "why not", "expires": "soon"}]})
    with pytest.raises(ValidationError, match="reason"):
        MigrationsSpec.model_validate({"suppressions": [{"rule": "drop-column", "file": "x.sql", "expires": "2027-01-01"}]})


# --- suppressions ---------------------------------------------------------------------------------


def test_inline_suppression_targets_next_statement_only() -> None:
    sql = (
        '-- vigil:ignore drop-column reason="unused since 2026-03" expires=2027-01-31\n'
        "ALTER TABLE users DROP COLUMN a;\n"
        "ALTER TABLE users DROP COLUMN b;\n"
    )
    r = lint_sql(sql, "m.sql", CFG)
    assert [f.line for f in r.findings if f.rule == "drop-column"] == [3]
    (s,) = r.suppressed
    assert s.finding.line == 2 and s.reason == "unused since 2026-03" and s.expires == dt.date(2027, 1, 31)
    assert s.source == "inline m.sql:1"


def test_ignore_file_and_several_rules() -> None:
    sql = (
        "-- vigil:ignore-file drop-column,rename-column reason='contract step of #412' expires=2027-01-31\n"
        "ALTER TABLE users DROP COLUMN a;\nALTER TABLE users RENAME COLUMN b TO c;\nALTER TABLE users DROP COLUMN d;\n"
    )
    r = lint_sql(sql, "m.sql", CFG)
    assert not {"drop-column", "rename-column"} & {f.rule for f in r.findings}
    assert len(r.suppressed) == 3


def test_expired_inline_suppression_no_longer_suppresses() -> None:
    sql = '-- vigil:ignore drop-column reason="unused" expires=2026-01-01\nALTER TABLE users DROP COLUMN a;'
    r = lint_sql(sql, "m.sql", CFG)
    rules = [f.rule for f in r.findings]
    assert "suppression-expired" in rules and "drop-column" in rules
    (f,) = [f for f in r.findings if f.rule == "suppression-expired"]
    assert f.line == 1 and "2026-01-01" in f.message and "drop-column" in f.message


def test_spec_suppressions_glob_expiry_and_unused() -> None:
    ms = MigrationsSpec.model_validate(
        {
            "suppressions": [
                {"rule": "drop-column", "file": "0007_*.sql", "reason": "unused since march", "expires": "2027-01-31"},
                {"rule": "drop-table", "file": "0007_*.sql", "reason": "old table", "expires": "2026-01-01"},
                {"rule": "truncate", "file": "0007_*.sql", "reason": "nothing truncates", "expires": "2027-01-01"},
            ]
        }
    )
    cfg = LintConfig.from_spec(ms, today=TODAY)
    r = lint_texts([("db/0007_drop.sql", "ALTER TABLE u DROP COLUMN a;\nDROP TABLE old;"), ("db/0008_x.sql", "ALTER TABLE u DROP COLUMN b;")], cfg)
    rules = [(Path(f.file).name, f.rule) for f in r.findings]
    assert ("0007_drop.sql", "drop-column") not in rules and ("0008_x.sql", "drop-column") in rules
    assert ("0007_drop.sql", "drop-table") in rules  # its suppression expired
    assert ("0007_drop.sql", "suppression-expired") in rules
    assert ("0007_drop.sql", "suppression-unused") in rules
    assert [s.source for s in r.suppressed] == ["spec suppressions[0]"]


def test_trailing_same_line_suppression_applies_to_that_statement() -> None:
    sql = 'ALTER TABLE u DROP COLUMN a; -- vigil:ignore drop-column reason="gone" expires=2027-01-01\nALTER TABLE u DROP COLUMN b;'
    r = lint_sql(sql, "m.sql", CFG)
    assert [f.line for f in r.findings if f.rule == "drop-column"] == [2]


def test_suppression_needs_no_date_without_today_but_still_needs_reason() -> None:
    r = lint_sql('-- vigil:ignore drop-column reason="x y" expires=2000-01-01\nALTER TABLE u DROP COLUMN a;', "m", LintConfig())
    assert "drop-column" not in {f.rule for f in r.findings}  # no clock: nothing expires


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "cls"),
    [
        ("CREATE TABLE t (id bigint PRIMARY KEY);", "expand"),
        ("ALTER TABLE users ADD COLUMN nick text;", "expand"),
        (NOTX + "CREATE INDEX CONCURRENTLY i ON users (email);", "expand"),
        ("ALTER TABLE users ALTER COLUMN a DROP NOT NULL;", "expand"),
        ("SELECT 1;", "expand"),
        ("ALTER TABLE users DROP COLUMN a;", "contract"),
        ("ALTER TABLE users RENAME COLUMN a TO b;", "contract"),
        ("ALTER TABLE users ALTER COLUMN a SET NOT NULL;", "contract"),
        ("ALTER TABLE users ADD COLUMN t bigint NOT NULL;", "contract"),
        ("DROP TABLE t;", "contract"),
        ("UPDATE users SET a = 1;", "data-dependent"),
        ("INSERT INTO a SELECT * FROM b;", "data-dependent"),
        ("DELETE FROM sessions WHERE at < now();", "data-dependent"),
        ("ALTER TABLE u ADD COLUMN n text;\nUPDATE u SET n = 'x';", "data-dependent"),
        ("SELEC 1;", "unknown"),
    ],
)
def test_classification(sql: str, cls: str) -> None:
    (m,) = lint_sql(sql, "m.sql", CFG).migrations
    assert m.cls == cls, m.why


def test_mixed_expand_and_contract_is_contract_and_says_so() -> None:
    (m,) = lint_sql("ALTER TABLE u ADD COLUMN n text;\nALTER TABLE u DROP COLUMN o;", "m.sql", CFG).migrations
    assert m.cls == "contract" and "mixes expand and contract" in m.why and "drops column u.o" in m.why


def test_not_null_pattern_across_migrations() -> None:
    files = [
        ("0001.sql", "ALTER TABLE u ADD CONSTRAINT u_e_nn CHECK (email IS NOT NULL) NOT VALID;"),
        ("0002.sql", "ALTER TABLE u VALIDATE CONSTRAINT u_e_nn;"),
        ("0003.sql", "ALTER TABLE u ALTER COLUMN email SET NOT NULL;\nALTER TABLE u DROP CONSTRAINT u_e_nn;"),
    ]
    r = lint_texts(files, CFG)
    assert "set-not-null" not in {f.rule for f in r.findings}
    assert [m.cls for m in r.migrations] == ["contract", "data-dependent", "contract"]
    # the last file alone does not prove it
    assert "set-not-null" in _rules(files[2][1])


# --- robustness -----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    r = lint_sql(text, "fuzz.sql", CFG)
    for f in r.findings:
        assert f.rule in RULES and f.line >= 1 and f.column >= 1
    json.dumps(r.to_dict())
    json.dumps(to_sarif(r))


_SQLISH = st.lists(
    st.sampled_from(
        ["ALTER", "TABLE", "t", "ADD", "COLUMN", "DROP", "CREATE", "INDEX", "ON", "(", ")", ";", "--", "vigil:ignore",
         "reason=\"x y\"", "expires=2027-01-01", "\n", "NOT", "NULL", "DEFAULT", "random()", "CONCURRENTLY", "'", "$$",
         "SET", "lock_timeout", "=", "0", "RENAME", "TO", "UNIQUE", "CHECK", "VALID", "/*", "*/", "BEGIN", "é", "日本"]
    ),
    max_size=60,
).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SQLISH)
def test_sql_like_text_never_crashes(text: str) -> None:
    r = lint_sql(text, "fuzz.sql", CFG)
    assert all(f.rule in RULES for f in r.findings)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "1+" * 200_000 + "1;",  # deep left-recursive tree: must not overflow the C stack
        "SELECT " + "(" * 50_000 + "1" + ")" * 50_000 + ";",
        "ALTER TABLE t ADD COLUMN a int DEFAULT " + "1+" * 100_000 + "1;",
        ";" * 100_000,
    ],
    ids=["plus-chain", "parens", "deep-default", "semicolons"],
)
def test_hostile_input_is_a_finding_or_clean(sql: str) -> None:
    r = lint_sql(sql, "h.sql", CFG)
    assert all(f.rule in RULES for f in r.findings)


def test_non_ascii_positions_are_characters() -> None:
    sql = "-- ünïcödé 日本語\nSELECT '日本';\nDROP TABLE t;"
    (f,) = [f for f in lint_sql(sql, "m", CFG).findings if f.rule == "drop-table"]
    assert (f.line, f.column) == (3, 1)


# --- files ----------------------------------------------------------------------------------------


def test_load_migrations_orders_pairs_and_flags(tmp_path: Path) -> None:
    (tmp_path / "0010_later.sql").write_text("SELECT 10;")
    (tmp_path / "0002_add_x.sql").write_text(NOTX + "CREATE INDEX CONCURRENTLY i ON t (a);")
    (tmp_path / "0002_add_x.down.sql").write_text("DROP INDEX i;")
    (tmp_path / "1_first.sql").write_text("\ufeffSELECT 1;")
    (tmp_path / "README.md").write_text("not sql")
    ms = load_migrations(tmp_path)
    assert [(m.version, m.name) for m in ms] == [(1, "first"), (2, "add_x"), (10, "later")]
    assert ms[0].up_sql == "SELECT 1;" and ms[0].down_sql is None
    assert ms[1].no_transaction and ms[1].down_sql == "DROP INDEX i;" and ms[1].id == "0002_add_x"
    assert not ms[0].no_transaction


def test_load_migrations_reports_every_problem(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "001_b.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.down.sql").write_text("SELECT 1;")
    (tmp_path / "add_stuff.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationFileError) as ei:
        load_migrations(tmp_path)
    text = "\n".join(ei.value.problems)
    assert "version 1 is already used" in text and "without its up migration" in text and "add_stuff.sql" in text
    assert ei.value.exit_code == 2
    with pytest.raises(MigrationFileError, match="directory not found"):
        load_migrations(tmp_path / "nope")


def test_split_statements_lines() -> None:
    st_ = split_statements("-- c\nSELECT 1;\n\n  CREATE TABLE t (a int);\nSELECT ';';")
    assert [(s.line, s.text) for s in st_] == [(2, "SELECT 1"), (4, "CREATE TABLE t (a int)"), (5, "SELECT ';'")]


# --- SARIF ----------------------------------------------------------------------------------------


def test_sarif_shape() -> None:
    sql = 'CREATE INDEX i ON users (a);\nALTER TABLE u DROP COLUMN x; -- vigil:ignore drop-column reason="gone" expires=2027-01-01\n'
    log = to_sarif(lint_sql(sql, "db/migrations/0001_x.sql", CFG))
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(RULES)
    for r in rules:
        assert r["shortDescription"]["text"] and r["help"]["text"] and r["defaultConfiguration"]["level"] in ("error", "warning", "note")
    res = {r["ruleId"]: r for r in run["results"]}
    inc = res["index-not-concurrent"]
    assert inc["level"] == "error" and rules[inc["ruleIndex"]]["id"] == "index-not-concurrent"
    loc = inc["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "db/migrations/0001_x.sql", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 1
    assert res["missing-lock-timeout"]["level"] == "warning"
    assert res["drop-column"]["suppressions"][0]["kind"] == "inSource"
    # opt-in rules are listed, off by default
    by_id = {r["id"]: r for r in rules}
    assert by_id["prefer-text"]["defaultConfiguration"]["enabled"] is False
    assert by_id["drop-default"]["defaultConfiguration"]["enabled"] is True


# --- CLI ------------------------------------------------------------------------------------------

SPEC = """\
version: 1
services: {api: {}}
migrations:
  dir: db/migrations
  suppressions:
    - {rule: drop-column, file: 0003_*.sql, reason: "unused since 2026-03, contract step", expires: 2027-01-31}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "db" / "migrations"
    d.mkdir(parents=True)
    (d / "0001_create_users.sql").write_text("CREATE TABLE users (id bigint PRIMARY KEY, email text);\n")
    (d / "0002_index_email.sql").write_text(NOTX + "CREATE INDEX CONCURRENTLY users_email ON users (email);\n")
    (d / "0002_index_email.down.sql").write_text(NOTX + "DROP INDEX CONCURRENTLY users_email;\n")
    (d / "0003_drop_legacy.sql").write_text("ALTER TABLE users DROP COLUMN legacy;\n")
    (tmp_path / "vigil.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_lints_spec_dir_clean(cli, project: Path) -> None:
    r = cli("migrate", "lint", "--json", now="2026-06-01T00:00:00Z")
    assert r.code == 0, r.out + r.err
    data = r.json()
    assert data["findings"] == []
    assert [(m["file"], m["class"]) for m in data["migrations"]] == [
        ("db/migrations/0001_create_users.sql", "expand"),
        ("db/migrations/0002_index_email.sql", "expand"),
        ("db/migrations/0003_drop_legacy.sql", "contract"),
    ]
    assert data["suppressed"][0]["rule"] == "drop-column"


def test_cli_exit_1_on_error_and_json_shape(cli, project: Path) -> None:
    (project / "db/migrations/0004_bad.sql").write_text("CREATE INDEX i ON users (email);\n")
    r = cli("migrate", "lint", "--json", now="2026-06-01T00:00:00Z")
    assert r.code == 1
    f = r.json()["findings"][0]
    assert {"file", "line", "rule", "severity", "message", "fix"} <= set(f)
    assert f["file"] == "db/migrations/0004_bad.sql" and f["rule"] == "index-not-concurrent" and f["line"] == 1
    # the suppression expires: the drop shows again
    r = cli("migrate", "lint", "--format", "json", now="2027-02-01T00:00:00Z")
    rules = {x["rule"] for x in r.json()["findings"]}
    assert {"drop-column", "suppression-expired"} <= rules


def test_cli_paths_text_and_sarif(cli, project: Path) -> None:
    p = project / "x.sql"
    p.write_text("ALTER TABLE users RENAME COLUMN email TO mail;\n")
    r = cli("migrate", "lint", "x.sql", now="2026-06-01T00:00:00Z")
    assert r.code == 1
    assert "x.sql:1:1: error rename-column" in r.out and "fix:" in r.out and "FAILED" in r.out
    # x.sql is not a migration's name: apply would refuse it, so lint says so too (issue 14)
    assert "x.sql:1:1: error misnamed-file" in r.out
    r = cli("migrate", "lint", "x.sql", "--format", "sarif", now="2026-06-01T00:00:00Z")
    assert r.code == 1
    log = json.loads(r.out)
    assert {x["ruleId"] for x in log["runs"][0]["results"]} == {"rename-column", "misnamed-file"}
    r = cli("migrate", "lint", "db/migrations", "--json", now="2026-06-01T00:00:00Z")
    assert r.code == 0 and len(r.json()["migrations"]) == 3  # the .down.sql is not linted


def test_cli_usage_errors(cli, project: Path, tmp_path: Path) -> None:
    r = cli("migrate", "lint", "nope.sql")
    assert r.code == 2 and "path not found" in r.err
    r = cli("migrate", "lint", "--json", "--format", "sarif")
    assert r.code == 2
    (project / "vigil.yaml").write_text("version: 1\nservices: {api: {}}\n")
    r = cli("migrate", "lint", "--json")
    assert r.code == 2 and "no `migrations:` section" in r.json()["error"]["message"]


def test_cli_list_rules(cli, project: Path) -> None:
    r = cli("migrate", "lint", "--list-rules", "--json")
    assert r.code == 0 and {x["id"] for x in r.json()["rules"]} == set(RULES)


# --- issue 14: what squawk caught and vigil missed -----------------------------------------------


def test_drop_default_on_a_not_null_column_is_an_error_across_files() -> None:
    """Observed: DROP DEFAULT on a NOT NULL column passed; the old app's INSERTs that leave it out fail."""
    files = [
        ("0001.sql", "CREATE TABLE orders (id bigint PRIMARY KEY, channel text NOT NULL DEFAULT 'web', note text DEFAULT '');"),
        ("0002.sql", "ALTER TABLE orders ALTER COLUMN channel DROP DEFAULT;\nALTER TABLE orders ALTER COLUMN note DROP DEFAULT;"),
    ]
    r = lint_texts(files, CFG)
    (f,) = [f for f in r.findings if f.rule == "drop-default"]
    assert (f.file, f.line, f.severity) == ("0002.sql", 1, "error")
    assert "orders.channel is NOT NULL" in f.message and "INSERTs" in f.message
    assert r.migrations[1].cls == "contract"
    # lint did not see the column: assume the risky case, and say so
    (g,) = [f for f in lint_sql("ALTER TABLE orders ALTER COLUMN channel DROP DEFAULT;", "m", CFG).findings if f.rule == "drop-default"]
    assert "assumes it is" in g.message


def test_drop_not_null_and_drop_constraint_are_warned() -> None:
    r = lint_sql("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_email_key;", "m", CFG)
    got = {(f.rule, f.line, f.severity) for f in r.findings}
    assert {("drop-not-null", 1, "warning"), ("drop-constraint", 2, "warning")} <= got


def test_dropping_the_not_null_helper_check_is_not_a_finding() -> None:
    files = [
        ("0001.sql", "ALTER TABLE u ADD CONSTRAINT u_e_nn CHECK (email IS NOT NULL) NOT VALID;"),
        ("0002.sql", "ALTER TABLE u VALIDATE CONSTRAINT u_e_nn;"),
        ("0003.sql", "ALTER TABLE u ALTER COLUMN email SET NOT NULL;\nALTER TABLE u DROP CONSTRAINT u_e_nn;"),
    ]
    assert not {"set-not-null", "drop-constraint"} & {f.rule for f in lint_texts(files, CFG).findings}
    # without the SET NOT NULL, dropping the check relaxes a guarantee
    assert "drop-constraint" in {f.rule for f in lint_texts([*files[:2], ("0003.sql", "ALTER TABLE u DROP CONSTRAINT u_e_nn;")], CFG).findings}


def test_enum_value_rename_is_a_breaking_contract_not_expand() -> None:
    """Observed: ALTER TYPE ... RENAME VALUE was classified "expand: no schema change"."""
    r = lint_sql("ALTER TYPE order_status RENAME VALUE 'shipped' TO 'dispatched';", "m", CFG)
    (m,) = r.migrations
    assert m.cls == "contract" and "renames value 'shipped' of enum order_status to 'dispatched'" in m.why
    (f,) = [f for f in r.findings if f.rule == "rename-type"]
    assert f.severity == "error" and "ADD VALUE 'dispatched'" in f.fix
    for sql in ("ALTER TYPE mood RENAME TO feeling;", "ALTER DOMAIN email RENAME TO mail;", "ALTER TABLE t SET SCHEMA s;"):
        (m,) = lint_sql(sql, "m", CFG).migrations
        assert m.cls == "contract", sql


@pytest.mark.parametrize(
    "sql",
    ["DROP TRIGGER t_audit ON users;", "DROP FUNCTION audit() CASCADE;", "DROP SCHEMA legacy CASCADE;",
     "DROP TYPE mood CASCADE;", "DROP POLICY p ON users;", "CREATE POLICY p ON users USING (true);",
     "DROP TRIGGER IF EXISTS t_audit ON users;\nCREATE TRIGGER t_audit AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION audit();"],
)  # fmt: skip
def test_drops_that_lock_a_table_need_a_lock_timeout(sql: str) -> None:
    """Observed: no missing-lock-timeout before DROP TRIGGER / DROP FUNCTION CASCADE / DROP SCHEMA CASCADE."""
    assert "missing-lock-timeout" in _rules(sql)
    assert "missing-lock-timeout" not in _rules("SET lock_timeout = '5s';\n" + sql)


@pytest.mark.parametrize("sql", ["DROP FUNCTION audit();", "DROP SCHEMA legacy;", "DROP TYPE mood;", "DROP SEQUENCE s;"])
def test_drops_that_cannot_lock_a_table_need_no_lock_timeout(sql: str) -> None:
    assert "missing-lock-timeout" not in _rules(sql)


def test_prefer_rules_are_opt_in() -> None:
    sql = "CREATE TABLE t (id serial PRIMARY KEY, name varchar(20), at timestamp, code char(2));"
    assert not {r for r in _rules(sql) if r.startswith("prefer-")}
    ms = MigrationsSpec.model_validate({"lint": {"severity": {"prefer-text": "error"}}})
    r = lint_sql(sql, "m", LintConfig.from_spec(ms, today=TODAY))
    got = sorted((f.rule, f.severity, f.column) for f in r.findings if f.rule.startswith("prefer-"))
    assert got == [("prefer-text", "error", 45), ("prefer-text", "error", 77)]  # where the types are
    r = lint_sql(sql, "m", LintConfig.from_spec(None, today=TODAY, enable=["prefer-timestamptz", "prefer-identity"]))
    assert {f.rule for f in r.findings if f.rule.startswith("prefer-")} == {"prefer-timestamptz", "prefer-identity"}
    (f,) = [f for f in r.findings if f.rule == "prefer-identity"]
    assert "GENERATED BY DEFAULT AS IDENTITY" in f.fix


# --- issue 14: false positives --------------------------------------------------------------------


def test_trigger_dropped_and_recreated_in_the_same_file_is_a_replacement() -> None:
    """Observed: DROP TRIGGER followed by CREATE TRIGGER of the same trigger was reported as a drop."""
    sql = (
        "SET lock_timeout = '5s';\n"
        "DROP TRIGGER IF EXISTS users_audit ON public.users;\n"
        "CREATE OR REPLACE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n"
        "CREATE TRIGGER users_audit AFTER UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION audit();\n"
    )
    r = lint_sql(sql, "m", CFG)
    assert "drop-object" not in {f.rule for f in r.findings}
    (m,) = r.migrations
    assert m.cls == "expand" and "replaces trigger users_audit on public.users" in m.why
    # a different trigger name is a real drop
    assert "drop-object" in _rules(sql.replace("CREATE TRIGGER users_audit", "CREATE TRIGGER users_audit2"))


def test_view_dropped_and_recreated_is_not_a_dropped_table() -> None:
    sql = "DROP VIEW IF EXISTS active_users;\nCREATE VIEW active_users AS SELECT id, email FROM users WHERE active;"
    r = lint_sql(sql, "m", CFG)
    assert "drop-table" not in {f.rule for f in r.findings}
    assert "drop-table" in _rules("DROP VIEW IF EXISTS active_users;")


def test_update_of_a_one_row_table_is_not_a_backfill() -> None:
    """Observed: UPDATEs of one-row tables were described as backfills."""
    files = [
        ("0001.sql", "CREATE TABLE site_settings (id int PRIMARY KEY DEFAULT 1 CHECK (id = 1), name text);\n"
                     "CREATE TABLE singleton (v int);\nCREATE UNIQUE INDEX singleton_one ON singleton ((true));\n"
                     "CREATE TABLE posts (id bigint PRIMARY KEY, title text);"),
        ("0002.sql", "UPDATE site_settings SET name = 'vigil';\nUPDATE singleton SET v = 2;\nUPDATE posts SET title = '';"),
    ]  # fmt: skip
    r = lint_texts(files, CFG)
    assert [(f.file, f.line) for f in r.findings if f.rule == "backfill-in-migration"] == [("0002.sql", 3)]
    assert "the one-row table site_settings" in r.migrations[1].why and "the one-row table singleton" in r.migrations[1].why


def test_catalog_updates_are_not_backfills() -> None:
    """Observed: UPDATEs of system catalogs were described as backfills."""
    sql = "UPDATE pg_index SET indisvalid = true WHERE indexrelid = 'users_email'::regclass;\nUPDATE pg_catalog.pg_class SET relhasrules = false;"
    r = lint_sql(sql, "m", CFG)
    assert "backfill-in-migration" not in {f.rule for f in r.findings}
    assert "system catalog pg_index" in r.migrations[0].why
    # a table of the app that happens to start with pg_ is not a catalog
    files = [("0001.sql", "CREATE TABLE pg_jobs (id bigint PRIMARY KEY, state text);"), ("0002.sql", "UPDATE pg_jobs SET state = 'new';")]
    assert "backfill-in-migration" in {f.rule for f in lint_texts(files, CFG).findings}


def test_update_by_key_is_one_row_and_by_another_column_is_a_backfill() -> None:
    files = [("0001.sql", "CREATE TABLE accounts (id bigint PRIMARY KEY, slug text UNIQUE, plan text, tenant int);")]
    for where, backfill in (("id = 7", False), ("slug = 'acme'", False), ("tenant = 7", True), ("id = 7 OR tenant = 1", True)):
        r = lint_texts([*files, ("0002.sql", f"UPDATE accounts SET plan = 'pro' WHERE {where};")], CFG)
        assert ("backfill-in-migration" in {f.rule for f in r.findings}) is backfill, where


# --- issue 14: messages ---------------------------------------------------------------------------


def test_drop_schema_names_the_schema_not_a_parser_object() -> None:
    """Observed: `DROP SCHEMA <String sval='r'> CASCADE`."""
    r = lint_sql("DROP SCHEMA r CASCADE;", "m", CFG)
    (f,) = [f for f in r.findings if f.rule == "drop-object"]
    assert "DROP SCHEMA r CASCADE" in f.message
    for text in [f.message for f in r.findings] + [m.why for m in r.migrations]:
        assert "sval" not in text and "<String" not in text, text


def test_reindex_fix_is_about_reindex() -> None:
    """Observed: REINDEX's fix text talked about CREATE INDEX."""
    (f,) = [f for f in lint_sql("REINDEX TABLE users;", "m", CFG).findings if f.rule == "reindex-not-concurrent"]
    assert "REINDEX (CONCURRENTLY) TABLE users" in f.fix
    assert "CREATE INDEX" not in f.fix and "CREATE INDEX" not in f.message


# --- issue 14: the same file rules as apply -------------------------------------------------------


def _messy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "db"
    d.mkdir()
    (d / "0001_users.sql").write_text("CREATE TABLE users (id bigint PRIMARY KEY, email text);\n")
    (d / "0001_again.sql").write_text("CREATE TABLE again (id bigint);\n")  # duplicate version
    (d / "0002_empty.sql").write_text("-- TODO: write this\n")  # empty
    (d / "add_orders.sql").write_text("CREATE INDEX users_email ON users (email);\n")  # misnamed, still linted
    (d / "0004_gone.down.sql").write_text("DROP TABLE gone;\n")  # down without up
    (d / "0005_caps.SQL").write_text("SELECT 1;\n")  # misnamed (case)
    return d


def test_lint_and_apply_share_the_file_rules(tmp_path: Path) -> None:
    """Observed: lint passed a misnamed file, a duplicate version and an empty file that apply rejects."""
    from vigil.deploy.migrations.lint import FILE_PROBLEM_RULES

    d = _messy_dir(tmp_path)
    r = lint_paths([d], CFG)
    got = {(Path(f.file).name, f.rule) for f in r.findings if RULES[f.rule].group == "input"}
    assert got == {
        ("0001_users.sql", "duplicate-version"),
        ("0002_empty.sql", "empty-migration"),
        ("add_orders.sql", "misnamed-file"),
        ("0004_gone.down.sql", "orphan-down"),
        ("0005_caps.SQL", "misnamed-file"),
    }
    assert not r.ok and all(f.severity == "error" for f in r.findings if RULES[f.rule].group == "input")
    # the misnamed file's SQL is linted as well
    assert ("add_orders.sql", "index-not-concurrent") in {(Path(f.file).name, f.rule) for f in r.findings}
    # the runner refuses the same directory for the same files
    with pytest.raises(MigrationFileError) as e:
        load_migrations(d)
    assert {(p.path.name, FILE_PROBLEM_RULES[p.code]) for p in e.value.file_problems} == got


def test_explicit_files_get_the_name_and_empty_rules(tmp_path: Path) -> None:
    (tmp_path / "0001_todo.sql").write_text("/* nothing yet */\n;\n")
    (tmp_path / "0002_ok.sql").write_text("SELECT 1;\n")
    r = lint_paths([tmp_path / "0001_todo.sql", tmp_path / "0002_ok.sql"], CFG)
    assert [(Path(f.file).name, f.rule) for f in r.findings] == [("0001_todo.sql", "empty-migration")]


def test_cli_spec_dir_file_problems_are_lint_errors(cli, project: Path) -> None:
    """Before, a duplicate version in the spec's directory stopped lint with a usage error (exit 2)
    and listed nothing else; now every file problem is an error finding beside the SQL findings."""
    (project / "db/migrations/0001_dup.sql").write_text("SELECT 1;")
    (project / "db/migrations/0009_todo.sql").write_text("-- later\n")
    r = cli("migrate", "lint", "--json", now="2026-06-01T00:00:00Z")
    assert r.code == 1, r.out + r.err
    got = {(Path(f["file"]).name, f["rule"]) for f in r.json()["findings"]}
    assert {("0001_dup.sql", "duplicate-version"), ("0009_todo.sql", "empty-migration")} <= got
    (f,) = [f for f in r.json()["findings"] if f["rule"] == "duplicate-version"]
    assert "already used by 0001_create_users.sql" in f["message"]


def test_cli_enable_opt_in_rules(cli, project: Path) -> None:
    p = project / "0001_t.sql"
    p.write_text("CREATE TABLE t (at timestamp, n int);\n")
    r = cli("migrate", "lint", "0001_t.sql", "--json", now="2026-06-01T00:00:00Z")
    assert r.code == 0 and r.json()["findings"] == []
    r = cli("migrate", "lint", "0001_t.sql", "--json", "--enable", "prefer-timestamptz,prefer-bigint", now="2026-06-01T00:00:00Z")
    assert r.code == 0 and {f["rule"] for f in r.json()["findings"]} == {"prefer-timestamptz", "prefer-bigint"}
    for bad, says in (("prefer-txt", "did you mean prefer-text"), ("drop-column", "not an opt-in rule")):
        r = cli("migrate", "lint", "0001_t.sql", "--enable", bad)
        assert r.code == 2 and says in r.err
    r = cli("migrate", "lint", "--list-rules", "--json")
    assert {x["id"] for x in r.json()["rules"] if x["opt_in"]} == {"prefer-text", "prefer-timestamptz", "prefer-bigint", "prefer-identity"}


def test_lint_command_loads_no_heavy_library(tmp_path: Path) -> None:
    """`vigil migrate lint` imports neither the database, statistics or HTTP libraries nor the spec
    models when no spec is involved: they are most of what made it 16-22x slower than squawk."""
    import subprocess
    import sys

    (tmp_path / "0001_a.sql").write_text("CREATE INDEX i ON users (email);\n")
    code = (
        "import json, sys\n"
        "from vigil.cli.main import main\n"
        f"rc = main(['migrate', 'lint', {str(tmp_path)!r}, '--json'])\n"
        "heavy = {'sqlalchemy', 'scipy', 'numpy', 'httpx', 'pydantic', 'boto3', 'psycopg', 'yaml'}\n"
        "print(json.dumps({'rc': rc, 'loaded': sorted({m.split('.')[0] for m in sys.modules} & heavy)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last == {"rc": 1, "loaded": []}, out.stderr


def test_update_of_a_table_seeded_with_one_row_is_not_a_backfill() -> None:
    """A settings table the migrations created and seeded with exactly one row (the shape of the
    corpora where the issue saw the false positive) is one-row; seeded from a query, it is not."""
    create = "CREATE TABLE local_site (id serial PRIMARY KEY, site_id int NOT NULL UNIQUE, theme text);\n"
    for seed, backfill in (
        ("INSERT INTO local_site (site_id) SELECT id FROM site ORDER BY id LIMIT 1;", False),
        ("INSERT INTO local_site (site_id, theme) VALUES (1, 'dark');", False),
        ("INSERT INTO local_site (site_id) SELECT id FROM site;", True),
        ("INSERT INTO local_site (site_id) VALUES (1), (2);", True),
    ):
        r = lint_texts([("0001.sql", create + seed), ("0002.sql", "UPDATE local_site SET theme = 'light';")], CFG)
        assert ("backfill-in-migration" in {f.rule for f in r.findings}) is backfill, seed
        if not backfill:
            assert "one-row table local_site (created and seeded with one row in 0001.sql)" in r.migrations[1].why


# --- the corpus and its golden file ----------------------------------------------------------------

CORPUS = Path(__file__).parent / "data" / "migrate_lint_corpus"
PROJECTS = ("shop", "forum", "files", "jobs")
CORPUS_CFG = LintConfig(today=TODAY, enabled=frozenset(r for r in RULES if RULES[r].opt_in))


def _corpus_report(project: str, jobs: int) -> dict:
    r = lint_paths([CORPUS / project], CORPUS_CFG, display=lambda p: Path(p).relative_to(CORPUS).as_posix(), jobs=jobs)
    return r.to_dict()


def test_corpus_matches_the_golden_file() -> None:
    """Every finding (line, column, severity, message, fix), class and suppression of four
    migration histories, against expected.json. VIGIL_UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    import os

    got = {p: _corpus_report(p, 1) for p in PROJECTS}
    golden = CORPUS / "expected.json"
    if os.environ.get("VIGIL_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(golden.read_text())
    for p in PROJECTS:
        for key in ("migrations", "suppressed", "summary", "ok"):
            assert got[p][key] == expected[p][key], (p, key)
        g = {(f["file"], f["line"], f["column"], f["rule"]): f for f in got[p]["findings"]}
        e = {(f["file"], f["line"], f["column"], f["rule"]): f for f in expected[p]["findings"]}
        assert sorted(set(g) - set(e)) == [], f"{p}: findings not in expected.json"
        assert sorted(set(e) - set(g)) == [], f"{p}: expected findings missing"
        for k in g:
            assert g[k] == e[k], k


def test_corpus_covers_every_rule_and_prints_no_parser_object() -> None:
    expected = json.loads((CORPUS / "expected.json").read_text())
    seen = {f["rule"] for p in PROJECTS for f in expected[p]["findings"]}
    seen |= {s["rule"] for p in PROJECTS for s in expected[p]["suppressed"]}
    assert seen == set(RULES)
    for p in PROJECTS:
        for f in expected[p]["findings"]:
            for text in (f["message"], f["fix"]):
                assert "sval=" not in text and "<String" not in text and "<Node" not in text, text
        for m in expected[p]["migrations"]:
            assert "sval=" not in m["why"] and m["class"] in ("expand", "contract", "data-dependent", "unknown")


def test_corpus_report_is_the_same_in_worker_processes() -> None:
    """Linting in parallel processes gives exactly the serial report: what a file tells about the
    schema reaches the later files through the ordered fold, not through shared state."""
    for p in PROJECTS:
        assert _corpus_report(p, 3) == _corpus_report(p, 1), p


def test_parallel_only_when_it_pays() -> None:
    from vigil.deploy.migrations.lint import PARALLEL_MIN_CHARS, PARALLEL_MIN_FILES, plan_jobs

    small = [(f"{i}.sql", "SELECT 1;") for i in range(PARALLEL_MIN_FILES * 2)]
    assert plan_jobs(small) == 1  # many files, little SQL
    big = [(f"{i}.sql", "x" * (PARALLEL_MIN_CHARS // 10)) for i in range(PARALLEL_MIN_FILES)]
    assert plan_jobs(big) >= 1 and plan_jobs(big[:3]) == 1
    assert plan_jobs(small, 4) == 4 and plan_jobs(big, 1) == 1


def test_parallel_needs_idle_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from vigil.deploy.migrations.lint import PARALLEL_MIN_CHARS, PARALLEL_MIN_FILES, plan_jobs

    big = [(f"{i}.sql", "x" * (PARALLEL_MIN_CHARS // 10)) for i in range(PARALLEL_MIN_FILES)]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert plan_jobs(big) == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 2.0, 1.0))
    assert plan_jobs(big) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (7.5, 6.0, 4.0))  # every CPU busy: workers would not pay
    assert plan_jobs(big) == 1


def test_readme_lists_every_rule() -> None:
    """The README's rule table is the catalog: id, severity (opt-in marked) and summary of every rule."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("| rule | severity | catches |")
    rows = readme[start:].split("\n\n", 1)[0].splitlines()[2:]
    expected = [
        f"| `{r.id}` | {r.severity}{' (opt-in)' if r.opt_in else ''} | {r.summary.replace('|', chr(92) + '|')} |"
        for r in RULES.values()
    ]
    assert rows == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["-", "--", " ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u00a0", "\ufeff",
                         "vigil:no-transaction", "SELECT 1;", "/*", "*/", "x"]),
        max_size=30,
    ).map("".join)
)  # fmt: skip
def test_lint_reads_no_transaction_exactly_as_the_runner(text: str) -> None:
    from vigil.deploy.migrations.files import has_no_transaction
    from vigil.deploy.migrations.lint import _has_no_transaction

    assert _has_no_transaction(text) == has_no_transaction(text)


def test_lint_command_leaves_the_garbage_collector_as_it_found_it(cli, project: Path) -> None:
    import gc

    assert gc.isenabled()
    r = cli("migrate", "lint", "--json", now="2026-06-01T00:00:00Z")
    assert r.code == 0 and gc.isenabled()
