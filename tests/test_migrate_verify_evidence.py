"""``vigil migrate verify`` cannot pass vacuously (issue 14): each test is an observed failure.

Real PostgreSQL 15: a Stage database and a production ("target") database on the session
cluster, a 100k-row table where the issue saw one, and a cluster with pg_stat_statements.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from pgcluster import PgCluster, free_port
from vigil.deploy.migrations import runner
from vigil.deploy.migrations.files import load_migrations
from vigil.deploy.migrations.runner import ApplyOptions, apply
from vigil.deploy.migrations.suite import ParamUse, RelationRef, parameter_uses
from vigil.deploy.migrations.verify import VerifyOptions, read_target_ledger_file, verdict_covers, verdict_of, verify

LEDGER = "vigil_schema_migrations"

BASE = {
    "0001_users.sql": "create table users (id bigint generated always as identity primary key, email text not null);\n"
    "create table orders (id serial primary key, user_id bigint not null references users (id), amount int not null);\n",
    "0001_users.down.sql": "drop table orders;\ndrop table users;\n",
}
RENAME = {
    "0002_rename.sql": "alter table users rename column email to email_address;\n",
    "0002_rename.down.sql": "alter table users rename column email_address to email;\n",
}
PREVIOUS = "select id, email from users where id = $1;\ninsert into orders (user_id, amount) values ($1, $2);\n"


@pytest.fixture(autouse=True)
def _no_database_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("VIGIL_STAGE_DATABASE_URL", raising=False)


def q(url: str, sql: str, params=None):
    with psycopg.connect(runner.libpq_url(url), autocommit=True) as c:
        cur = c.execute(sql, params)
        return cur.fetchall() if cur.description else None


def write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (d / name).write_text(sql)
    return d


def migrate(url: str, d: Path, to: int | None = None) -> None:
    r = apply(url, load_migrations(d), ApplyOptions(ledger_table=LEDGER, target=to))
    assert r.status in ("ok", "nothing-to-do"), r.to_dict()


def spec(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text("version: 1\nservices: {api: {}}\nmigrations:\n  dir: db\n  lock_timeout: 2s\n  statement_timeout: 30s\n" + extra)
    return p


def checks(body: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in body["checks"]}


def scratch_dbs(url: str) -> list[str]:
    return [r[0] for r in q(url, "SELECT datname FROM pg_database WHERE datname LIKE 'vigil_verify_%'")]


@pytest.fixture
def prod(pg_cluster: PgCluster) -> Iterator[str]:
    """A second database on the session cluster: production, the target of apply."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


def seed(url: str) -> None:
    q(url, "insert into users (email) select 'u' || g || '@example.com' from generate_series(1, 30) g")
    q(url, "insert into orders (user_id, amount) select (g % 30) + 1, g from generate_series(1, 90) g")


# -- pure -----------------------------------------------------------------------------------------


def test_a_verdict_of_nothing_is_never_a_pass():
    assert verdict_of([]) == "inconclusive"
    assert verdict_of(["skipped"] * 6) == "inconclusive"
    assert verdict_of(["ok", "skipped"]) == "pass"
    assert verdict_of(["ok", "inconclusive", "ok"]) == "inconclusive"
    assert verdict_of(["ok", "inconclusive", "failed"]) == "fail"


def test_parameters_are_tied_to_the_columns_they_meet():
    uses, rels = parameter_uses(
        "SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id "
        "WHERE u.email = $1 AND o.id = ANY($2) AND o.amount IN ($3, $4::int) AND $5 < created LIMIT $6 OFFSET $7"
    )
    assert uses[1] == ParamUse(1, "compare", "email", ("u",))
    assert uses[2] == ParamUse(2, "any", "id", ("o",))
    assert uses[3].column == uses[4].column == "amount" and uses[4].qualifier == ("o",)
    assert uses[5] == ParamUse(5, "compare", "created", ())
    assert (uses[6].role, uses[7].role) == ("limit", "offset")
    assert set(rels) == {RelationRef(None, "users", "u"), RelationRef(None, "orders", "o")}
    ins, _ = parameter_uses("INSERT INTO app.orders (user_id, amount) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET amount = $3")
    assert ins[1] == ParamUse(1, "assign", "user_id", target=RelationRef("app", "orders"))
    assert ins[3].column == "amount" and ins[3].role == "assign"
    positional, _ = parameter_uses("insert into t values ($1, $2)")
    assert positional[2] == ParamUse(2, "assign", None, target=RelationRef(None, "t"), position=1)
    upd, _ = parameter_uses("UPDATE users SET email = $1 WHERE id = $2")
    assert upd[1].role == "assign" and upd[2] == ParamUse(2, "compare", "id", ())
    assert parameter_uses("not sql") == ({}, [])


# -- 1: the target's ledger, not Stage's ------------------------------------------------------------


def test_stage_already_migrated_still_verifies_what_production_lacks(pg_db_url: str, prod: str, tmp_path: Path, cli):
    """Observed: Stage had the rename applied, verify said "nothing pending", recorded PASS and the gate
    let a breaking column rename through that was never checked."""
    stage = pg_db_url
    d = write(tmp_path / "db", {**BASE, **RENAME})
    migrate(stage, d, to=1)
    seed(stage)
    migrate(stage, d)  # Stage: 0001 and 0002 (the release already went there)
    migrate(prod, d, to=1)  # production: 0001 only
    write(tmp_path / "queries", {"previous.sql": PREVIOUS})
    sp = spec(tmp_path, "  queries: {previous: queries/previous.sql}\n")
    res = cli("migrate", "verify", "--spec", sp, "--stage-url", stage, "--target-url", prod, "--service", "api",
              "--release", "r9", "--json")  # fmt: skip
    assert res.code == 1, res.out + res.err
    body = res.json()
    assert body["verdict"] == "fail" and [p["id"] for p in body["pending"]] == ["0002_rename"]
    assert body["target"] == runner.redact(prod) and checks(body)["plan"] == "ok"
    clone = next(c for c in body["checks"] if c["name"] == "clone")
    assert clone["status"] == "ok" and clone["data"]["reverted"] == ["0002_rename"] and "rolled back 0002_rename" in clone["summary"]
    back = next(c for c in body["checks"] if c["name"] == "backward-compat")
    assert back["status"] == "failed" and back["data"]["regressions"] == 1
    assert '42703 column "email" does not exist' in back["details"][0]
    down = next(c for c in body["checks"] if c["name"] == "down")
    assert down["status"] == "ok"  # and rolled back then forward again, Stage's schema came back
    assert scratch_dbs(stage) == [] and q(prod, f"SELECT count(*) FROM {LEDGER}") == [(1,)]  # production only read
    gate = cli("gate", "deploy", "--service", "api", "--release", "r9", "--spec", sp, "--json")
    assert gate.code == 1 and "migration verdict for release 'r9' is fail" in gate.json()["blocks"][0]


def test_without_the_targets_ledger_the_verdict_is_inconclusive_and_blocks(pg_db_url: str, tmp_path: Path, cli):
    stage = pg_db_url
    d = write(tmp_path / "db", {**BASE, **RENAME})
    migrate(stage, d)
    sp = spec(tmp_path)
    res = cli("migrate", "verify", "--spec", sp, "--stage-url", stage, "--service", "api", "--release", "r10")
    assert res.code == 1, res.out + res.err
    assert "INCONCLUSIVE plan: the target's ledger was not read" in res.out and "Stage lacks nothing" in res.out
    assert "verdict: INCONCLUSIVE" in res.out
    gate = cli("gate", "deploy", "--service", "api", "--release", "r10", "--spec", sp, "--json")
    assert gate.code == 1 and "migration verdict for release 'r10' is inconclusive" in gate.json()["blocks"][0]


def test_the_targets_ledger_from_a_saved_status_file(pg_db_url: str, prod: str, tmp_path: Path, cli):
    stage = pg_db_url
    d = write(tmp_path / "db", {**BASE, **RENAME, "0003_phone.sql": "alter table users add column phone text;\n",
                                "0003_phone.down.sql": "alter table users drop column phone;\n"})  # fmt: skip
    migrate(stage, d, to=1)  # Stage is BEHIND production here
    migrate(prod, d, to=2)
    sp = spec(tmp_path)
    saved = cli("migrate", "status", "--spec", sp, "--db-url", prod, "--json")
    (tmp_path / "prod-ledger.json").write_text(saved.out)
    res = cli("migrate", "verify", "--spec", sp, "--stage-url", stage, "--target-ledger", tmp_path / "prod-ledger.json", "--json")
    assert res.code == 0, res.out + res.err
    body = res.json()
    assert [p["id"] for p in body["pending"]] == ["0003_phone"] and body["target"] == str(tmp_path / "prod-ledger.json")
    clone = next(c for c in body["checks"] if c["name"] == "clone")
    assert clone["data"]["applied"] == ["0002_rename"] and clone["data"]["reverted"] == []
    assert body["verdict"] == "pass"  # expand only, down restores: no suite needed
    (tmp_path / "bad.json").write_text(json.dumps({"migrations": "nope"}))
    bad = cli("migrate", "verify", "--spec", sp, "--stage-url", stage, "--target-ledger", tmp_path / "bad.json")
    assert bad.code == 2 and "not the JSON of `vigil migrate status --json`" in bad.err
    assert read_target_ledger_file(tmp_path / "prod-ledger.json").rows[-1].version == 2


def test_a_stage_that_cannot_be_rolled_back_to_the_target_is_inconclusive(pg_db_url: str, prod: str, tmp_path: Path):
    stage = pg_db_url
    d = write(tmp_path / "db", {**BASE, "0002_rename.sql": RENAME["0002_rename.sql"]})  # no down file
    migrate(stage, d)
    migrate(prod, d, to=1)
    report = verify(stage, load_migrations(d), VerifyOptions(ledger_table=LEDGER, target_url=prod))
    clone = report.check("clone")
    assert clone.status == "inconclusive" and "cannot be rolled to the target's version" in clone.summary
    assert any("0002_rename has no down migration" in x for x in clone.details)
    assert report.verdict == "inconclusive" and report.exit_code == 1
    assert scratch_dbs(stage) == []


def test_an_unreachable_target_exits_3(pg_db_url: str, tmp_path: Path, cli):
    write(tmp_path / "db", BASE)
    port = free_port()
    res = cli("migrate", "verify", "--spec", spec(tmp_path), "--stage-url", pg_db_url,
              "--target-url", f"postgresql://ro:secret@127.0.0.1:{port}/prod")  # fmt: skip
    assert res.code == 3 and f"cannot connect to the target database postgresql://ro@127.0.0.1:{port}/prod" in res.err
    assert "secret" not in res.err


# -- 2: data by default, and no statement silently ignored -----------------------------------------


def test_a_required_column_fails_on_100k_rows_by_default(pg_db_url: str, tmp_path: Path):
    """Observed: with the default --sample-rows 0, ADD COLUMN channel text NOT NULL passed (it applies
    on an empty clone and fails with 23502 on production's 100k rows)."""
    stage = pg_db_url
    d = write(tmp_path / "db", {
        "0001_notifications.sql": "create table notifications (id bigserial primary key, body text not null);\n",
        "0001_notifications.down.sql": "drop table notifications;\n",
    })  # fmt: skip
    migrate(stage, d)
    q(stage, "insert into notifications (body) select 'n' || g from generate_series(1, 100000) g")
    write(d, {"0002_channel.sql": "alter table notifications add column channel text not null;\n",
              "0002_channel.down.sql": "alter table notifications drop column channel;\n"})  # fmt: skip
    ms = load_migrations(d)
    report = verify(stage, ms, VerifyOptions(ledger_table=LEDGER, target_url=stage))
    a = report.check("apply")
    assert a.status == "failed" and "23502" in a.summary and "1000 sampled rows" in a.summary
    assert report.check("clone").data["sampled_rows"] == 1000 and report.verdict == "fail"
    # told to copy no rows, the rehearsal cannot see it: never a pass
    empty = verify(stage, ms, VerifyOptions(ledger_table=LEDGER, target_url=stage, sample_rows=0))
    assert empty.check("apply").status == "inconclusive" and "WITHOUT rows" in empty.check("apply").summary
    assert empty.verdict == "inconclusive"


def test_a_statement_that_fails_on_both_schemas_makes_the_verdict_inconclusive(pg_db_url: str, tmp_path: Path, cli):
    """Observed: the old app's INSERT failed on both schemas (FK 23503) and was dropped as "not counted"."""
    stage = pg_db_url
    d = write(tmp_path / "db", BASE)
    migrate(stage, d)
    seed(stage)
    write(d, {"0002_phone.sql": "alter table users add column phone text;\n", "0002_phone.down.sql": "alter table users drop column phone;\n"})
    write(tmp_path / "queries", {"previous.sql": "select id from users where id = $1;\ninsert into orders (user_id, amount) values (999999, 1);\n"})
    sp = spec(tmp_path)
    res = cli("migrate", "verify", "--spec", sp, "--stage-url", stage, "--target-url", stage, "--previous-queries",
              tmp_path / "queries" / "previous.sql", "--service", "api", "--release", "r11", "--json")  # fmt: skip
    assert res.code == 1, res.out + res.err
    body = res.json()
    assert body["verdict"] == "inconclusive"
    assert checks(body) == {"plan": "ok", "clone": "ok", "apply": "ok", "backward-compat": "inconclusive",
                            "forward-compat": "skipped", "down": "ok"}  # fmt: skip
    back = next(c for c in body["checks"] if c["name"] == "backward-compat")
    assert back["data"]["unverified"] == 1 and back["data"]["ok"] == 1
    assert "fails on the old schema already, so it proves nothing" in back["details"][0] and "23503" in back["details"][0]
    gate = cli("gate", "deploy", "--service", "api", "--release", "r11", "--spec", sp, "--json")
    assert gate.code == 1 and "is inconclusive" in gate.json()["blocks"][0]
    assert verdict_covers(body, load_migrations(d)) == (False, "verify was inconclusive (backward-compat)")


def test_no_suite_for_a_contract_migration_is_inconclusive(pg_db_url: str, tmp_path: Path):
    stage = pg_db_url
    d = write(tmp_path / "db", BASE)
    migrate(stage, d)
    write(d, RENAME)
    report = verify(stage, load_migrations(d), VerifyOptions(ledger_table=LEDGER, target_url=stage))
    back = report.check("backward-compat")
    assert back.status == "inconclusive" and "nothing shows that the release running now survives it" in back.summary
    assert any("0002_rename.sql: contract" in x for x in back.details) and report.verdict == "inconclusive"


# -- 3: parameterised statements are executed ----------------------------------------------------------


def test_captured_statements_run_with_sampled_values_and_catch_a_now_required_column(tmp_path: Path):
    """Observed: pg_stat_statements' $n statements were only prepared, so an INSERT that leaves out a
    column the migration makes required (a runtime failure) was never seen."""
    with PgCluster(settings={"shared_preload_libraries": "'pg_stat_statements'"}) as pg:
        pg.psql("CREATE DATABASE stage")
        url = pg.url("stage")
        d = write(tmp_path / "db", BASE)
        migrate(url, d)
        seed(url)
        q(url, "CREATE EXTENSION pg_stat_statements")
        q(url, "SELECT pg_stat_statements_reset()")
        with psycopg.connect(runner.libpq_url(url)) as app:  # the running release at work
            for i in range(1, 4):
                app.execute("INSERT INTO orders (user_id, amount) VALUES (%s, %s)", (i, 10 * i))
                app.execute("SELECT email FROM users WHERE id = %s", (i,))
            app.rollback()
        write(d, {
            # applies fine on the data (backfilled first), but the old app's INSERT now fails at run time
            "0002_currency.sql": "alter table orders add column currency text;\nupdate orders set currency = 'EUR';\n"
                                 "alter table orders alter column currency set not null;\n",
            "0002_currency.down.sql": "alter table orders drop column currency;\n",
        })  # fmt: skip
        report = verify(url, load_migrations(d), VerifyOptions(ledger_table=LEDGER, from_pg_stat_statements=True, target_url=url))
        assert report.check("apply").status == "ok"
        back = report.check("backward-compat")
        assert back.status == "failed", back.details
        assert back.data["statements"] == 2 and back.data["regressions"] == 1 and back.data["with_sampled_parameters"] == 2
        assert "INSERT INTO orders (user_id, amount) VALUES ($1, $2)" in back.details[0] and "23502" in back.details[0]
        # the user id came from the parent table of the foreign key, so the INSERT worked on the old schema
        insert = next(r for r in back.data["results"] if r["source"] in back.details[0])
        assert insert["old"]["ok"] and "the parent of orders.user_id" in insert["old"]["parameters"][0]
        assert report.verdict == "fail"


# -- 4: comments and privileges count in the down check --------------------------------------------


@pytest.fixture
def reporting_role(pg_url: str) -> Iterator[str]:
    q(pg_url, "DROP ROLE IF EXISTS vigil_test_reporting")
    q(pg_url, "CREATE ROLE vigil_test_reporting")
    try:
        yield "vigil_test_reporting"
    finally:
        q(pg_url, "DROP ROLE IF EXISTS vigil_test_reporting")


def test_the_down_check_sees_comments_and_grants(reporting_role: str, pg_db_url: str, tmp_path: Path):
    """Observed: a down migration that left a COMMENT or a GRANT of its up migration behind passed."""
    stage = pg_db_url
    d = write(tmp_path / "db", BASE)
    migrate(stage, d)
    q(stage, f"GRANT SELECT ON orders TO {reporting_role}")  # Stage's own grant: the clone must have it too
    write(d, {
        "0002_docs.sql": f"comment on column users.email is 'login name';\ngrant select on users to {reporting_role};\n"
                         f"revoke select on orders from {reporting_role};\n",
        "0002_docs.down.sql": f"grant select on orders to {reporting_role};\n",  # forgets the comment and the grant
    })  # fmt: skip
    report = verify(stage, load_migrations(d), VerifyOptions(ledger_table=LEDGER, target_url=stage))
    down = report.check("down")
    assert down.status == "failed", down.summary
    assert [(x["object"], x["change"]) for x in down.data["differences"]] == [
        ("comment on column email of table public.users", "extra"),
        ("privileges on table public.users", "changed"),
    ], down.details  # orders' grant is back as on Stage: no false difference
    assert down.data["differences"][1]["after"].endswith(f"{reporting_role}=SELECT")
    assert report.check("clone").data["privileges"] >= 1
    write(d, {"0002_docs.down.sql": f"comment on column users.email is null;\nrevoke select on users from {reporting_role};\n"
                                    f"grant select on orders to {reporting_role};\n"})  # fmt: skip
    fixed = verify(stage, load_migrations(d), VerifyOptions(ledger_table=LEDGER, target_url=stage))
    assert fixed.check("down").status == "ok" and "comments and privileges included" in fixed.check("down").summary
    assert fixed.verdict == "pass"


def test_losing_the_scratch_database_mid_rehearsal_is_exit_3_and_no_verdict(pg_db_url: str, tmp_path: Path):
    stage = pg_db_url
    d = write(tmp_path / "db", BASE)
    migrate(stage, d)
    write(d, {"0002_phone.sql": "alter table users add column phone text;\n", "0002_phone.down.sql": "alter table users drop column phone;\n"})

    def cut_off(pending):  # runs inside the rehearsal: the server ends the scratch session (a restart, an admin)
        q(stage, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname LIKE 'vigil_verify_%%' AND pid <> pg_backend_pid()")
        return True, [], "test"

    with pytest.raises(runner.MigrationDbError, match="the rehearsal lost the scratch database vigil_verify_"):
        verify(stage, load_migrations(d), VerifyOptions(ledger_table=LEDGER, target_url=stage), classify=cut_off)
    assert scratch_dbs(stage) == []
