"""The one set of migration file rules (``vigil.deploy.migrations.files``) that apply, verify and lint share."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from vigil.deploy.migrations import runner
from vigil.deploy.migrations.files import (
    MigrationFileError,
    empty_problem,
    is_empty_sql,
    load_migrations,
    name_problem,
    scan_migrations,
)


def write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (d / name).write_text(sql)
    return d


def test_empty_means_no_statement_at_all():
    for text in ("", "  \n\t", ";", "-- nothing yet\n", "/* outer /* nested */ still */ ;\n-- x", "\ufeff"[1:]):
        assert is_empty_sql(text), repr(text)
    for text in ("select 1", "-- c\nselect 1", "/* c */ select 1", "/* unterminated", "';'"):
        assert not is_empty_sql(text), repr(text)
    assert empty_problem(Path("0001_a.sql"), "-- todo\n").code == "empty"
    assert empty_problem(Path("0001_a.sql"), "select 1;") is None


def test_names_follow_one_convention():
    assert name_problem(Path("0001_users.sql")) is None
    assert name_problem(Path("0001_users.down.sql")) is None
    for bad in ("users.sql", "0001-users.sql", "0001_.sql", "v1_users.sql"):
        assert name_problem(Path(bad)).code == "misnamed", bad
    upper = name_problem(Path("0003_users.SQL"))
    assert upper.code == "misnamed" and "lower-case .sql" in upper.message


def test_scan_reports_every_problem_with_a_stable_code(tmp_path: Path):
    d = write(tmp_path / "db", {
        "0001_users.sql": "create table users (id int);\n",
        "0001_again.sql": "create table again (id int);\n",      # duplicate version
        "0002_empty.sql": "-- TODO: write this\n",                # empty: only a comment
        "0003_ok.sql": "create table ok (id int);\n",
        "0003_ok.down.sql": "\n",                                  # empty down file
        "0004_gone.down.sql": "drop table gone;\n",               # down without up
        "add_orders.sql": "create table orders (id int);\n",      # misnamed
        "0005_caps.SQL": "create table caps (id int);\n",         # misnamed (case)
        "README.md": "ignored",
    })  # fmt: skip
    (d / "0006_dir.sql").mkdir()
    scan = scan_migrations(d)
    got = sorted((p.path.name, p.code) for p in scan.problems)
    assert got == [
        ("0001_users.sql", "duplicate-version"),  # sorted by name: 0001_again.sql comes first and keeps the version
        ("0002_empty.sql", "empty"),
        ("0003_ok.down.sql", "empty"),
        ("0004_gone.down.sql", "orphan-down"),
        ("0005_caps.SQL", "misnamed"),
        ("0006_dir.sql", "not-a-file"),
        ("add_orders.sql", "misnamed"),
    ]
    assert [m.id for m in scan.migrations] == ["0001_again"]  # the valid ones only
    with pytest.raises(MigrationFileError) as e:
        load_migrations(d)
    assert len(e.value.problems) == 7 and {p.code for p in e.value.file_problems} >= {"empty", "duplicate-version"}
    assert any("0002_empty.sql: holds no SQL statement" in p for p in e.value.problems)


def test_apply_refuses_an_empty_migration_and_runs_nothing(pg_db_url: str, tmp_path: Path, cli):
    """Observed: an empty file was applied silently (a ledger row 'applied' for a migration that did nothing)."""
    spec = tmp_path / "vigil.yaml"
    spec.write_text("version: 1\nservices: {api: {}}\nmigrations:\n  dir: db\n")
    write(tmp_path / "db", {"0001_a.sql": "create table a (id int);\n", "0002_b.sql": "-- forgot the SQL\n\n"})
    res = cli("migrate", "apply", "--spec", spec, "--db-url", pg_db_url)
    assert res.code == 2, res.out + res.err
    assert "0002_b.sql: holds no SQL statement" in res.err
    with psycopg.connect(runner.libpq_url(pg_db_url), autocommit=True) as c:
        assert c.execute("SELECT to_regclass('a'), to_regclass('vigil_schema_migrations')").fetchone() == (None, None)
