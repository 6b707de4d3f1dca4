"""``vigil migrate verify``: the pending migrations rehearsed on a scratch clone of a real Stage database."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from pgcluster import PgCluster, free_port
from vigil.deploy.migrations import runner, schema_dump
from vigil.deploy.migrations.files import load_migrations
from vigil.deploy.migrations.runner import ApplyOptions, apply
from vigil.deploy.migrations.verify import (
    QueryOutcome,
    VerifyOptions,
    clone_database,
    compare,
    keep_captured,
    read_verdict,
    runner_url,
    sample_order,
    verdict_covers,
    verify,
)


@pytest.fixture(autouse=True)
def _no_database_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify reads the target from $DATABASE_URL and Stage from $VIGIL_STAGE_DATABASE_URL: tests say which."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("VIGIL_STAGE_DATABASE_URL", raising=False)

LEDGER = "vigil_schema_migrations"

BASE = {
    "0001_users.sql": "create table users (id bigint generated always as identity primary key, email text not null, "
    "boss bigint references users (id));\n"
    "create table orders (id serial primary key, user_id bigint not null references users (id), amount int not null);\n",
    "0001_users.down.sql": "drop table orders;\ndrop table users;\n",
}
PREVIOUS = "select id, email from users where id = $1;\ninsert into orders (user_id, amount) values (1, 10);\n" \
    "select o.amount, u.email from orders o join users u on u.id = o.user_id order by o.id limit 5;\n"


def q(url: str, sql: str, params=None):
    with psycopg.connect(runner.libpq_url(url), autocommit=True) as c:
        cur = c.execute(sql, params)
        return cur.fetchall() if cur.description else None


def write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (d / name).write_text(sql)
    return d


def scratch_dbs(url: str) -> list[str]:
    return [r[0] for r in q(url, "SELECT datname FROM pg_database WHERE datname LIKE 'vigil_verify_%'")]


@pytest.fixture
def stage(pg_db_url: str, tmp_path: Path) -> str:
    """A Stage database at release N: 0001 applied through the runner, and some rows."""
    write(tmp_path / "db", BASE)
    r = apply(pg_db_url, load_migrations(tmp_path / "db"), ApplyOptions(ledger_table=LEDGER))
    assert r.status == "ok"
    q(pg_db_url, "insert into users (email) select 'u' || g from generate_series(1, 40) g")
    q(pg_db_url, "update users set boss = 1 where id > 1")
    q(pg_db_url, "insert into orders (user_id, amount) select (g % 40) + 1, g from generate_series(1, 200) g")
    return pg_db_url


def spec(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text("version: 1\nservices: {api: {}}\nmigrations:\n  dir: db\n  lock_timeout: 2s\n  statement_timeout: 30s\n" + extra)
    return p


def checks(body: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in body["checks"]}


# -- pure ------------------------------------------------------------------------------------------


def test_sample_order_puts_parents_first_and_finds_cycles():
    order, cyclic = sample_order(
        ["orders", "users", "items", "a", "b"],
        [("orders", "users"), ("items", "orders"), ("users", "users"), ("a", "b"), ("b", "a")],
    )
    assert order.index("users") < order.index("orders") < order.index("items")
    assert cyclic == {("users", "users"), ("a", "b"), ("b", "a")}


def test_compare_never_ignores_a_statement_that_failed_on_the_reference():
    ok, bad = QueryOutcome(True, "executed"), QueryOutcome(False, "executed", "42703", "nope")
    c = compare([ok, ok, bad, bad], [ok, bad, bad, ok])
    assert (c.ok, c.regressions, c.unverified) == ([0], [1], [2, 3])
    assert c.status == "failed"
    assert compare([ok, bad], [ok, bad]).status == "inconclusive"  # was "not counted": a pass
    assert compare([ok], [ok]).status == "ok"


def test_captured_statements_keep_only_app_dml():
    assert keep_captured("SELECT id FROM users WHERE id = $1", ledger_table=LEDGER)
    assert keep_captured("UPDATE app.orders SET amount = $1 WHERE id = $2", ledger_table=LEDGER)
    assert not keep_captured("SELECT * FROM pg_catalog.pg_class", ledger_table=LEDGER)
    assert not keep_captured("SELECT * FROM pg_stat_statements", ledger_table=LEDGER)
    assert not keep_captured("SELECT * FROM vigil_schema_migrations", ledger_table=LEDGER)
    assert not keep_captured("BEGIN", ledger_table=LEDGER)
    assert not keep_captured("SET search_path = app", ledger_table=LEDGER)
    assert not keep_captured("not sql at all", ledger_table=LEDGER)


def test_schema_diff_names_what_differs():
    a = schema_dump.SchemaSnapshot({"table public.t": "", "index public.t_x": "CREATE INDEX ..."}, {"public.t": ("a", "b")})
    b = schema_dump.SchemaSnapshot({"table public.t": "UNLOGGED", "index public.t_y": "CREATE INDEX y"}, {"public.t": ("b", "a")})
    msgs = [d.message for d in schema_dump.diff(a, b)]
    assert msgs == ["index public.t_x is gone (was: CREATE INDEX ...)", "index public.t_y was not there before (now: CREATE INDEX y)",
                    "table public.t changed: (plain) -> UNLOGGED"]  # fmt: skip
    assert schema_dump.order_notes(a, b) == ["column order of public.t changed: (a, b) -> (b, a)"]
    assert schema_dump.diff(a, a) == []


# -- on a real Stage ---------------------------------------------------------------------------------


def test_expand_migration_passes_every_check_and_the_verdict_covers_it(stage: str, tmp_path: Path, cli):
    write(tmp_path / "db", {
        "0002_phone.sql": "alter table users add column phone text;\ncreate index users_phone on users (phone);\n",
        "0002_phone.down.sql": "drop index users_phone;\nalter table users drop column phone;\n",
        "0003_amount.sql": "-- vigil:no-transaction\ncreate index concurrently orders_amount on orders (amount);\n",
        "0003_amount.down.sql": "drop index orders_amount;\n",
    })  # fmt: skip
    write(tmp_path / "queries", {"previous.sql": PREVIOUS, "next.sql": "select id, email from users where boss = $1;\n"})
    p = spec(tmp_path, "  queries: {previous: queries/previous.sql, next: queries/next.sql}\n")
    out = tmp_path / "verdict.json"
    res = cli("migrate", "verify", "--spec", p, "--sample-rows", "10", "--release", "r42", "--out", out, "--json",
              env={"VIGIL_STAGE_DATABASE_URL": stage, "DATABASE_URL": stage})  # fmt: skip  (Stage is at the target's version)
    assert res.code == 0, res.out + res.err
    body = res.json()
    assert checks(body) == {"plan": "ok", "clone": "ok", "apply": "ok", "backward-compat": "ok", "forward-compat": "ok", "down": "ok"}
    assert body["verdict"] == "pass" and body["release"] == "r42" and body["target"] == runner.redact(stage)
    assert [p["id"] for p in body["pending"]] == ["0002_phone", "0003_amount"]
    clone = next(c for c in body["checks"] if c["name"] == "clone")
    # users sample: the self-referencing boss only where NULL (user 1); orders only of sampled users
    assert clone["data"]["ledger_rows"] == 1 and 0 < clone["data"]["sampled_rows"] <= 20
    back = next(c for c in body["checks"] if c["name"] == "backward-compat")
    assert back["data"]["statements"] == 3 and back["data"]["regressions"] == 0 and back["data"]["with_sampled_parameters"] == 1
    first = back["data"]["results"][0]  # select ... where id = $1: executed, with an id that exists
    assert first["old"]["mode"] == "executed-with-parameters" and "(sampled from users.id)" in first["old"]["parameters"][0]
    apply_check = next(c for c in body["checks"] if c["name"] == "apply")
    assert any("outside a transaction" in d for d in apply_check["details"])
    assert scratch_dbs(stage) == []  # dropped
    # Stage itself is untouched
    assert q(stage, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'phone'") == [(0,)]
    assert q(stage, f"SELECT count(*) FROM {LEDGER}") == [(1,)]

    verdict = read_verdict(out)
    assert verdict == json.loads(out.read_text())
    migrations = load_migrations(tmp_path / "db")
    assert verdict_covers(verdict, migrations) == (True, "verified")
    (tmp_path / "db" / "0002_phone.sql").write_text("alter table users add column phone varchar(20);\n")
    ok, why = verdict_covers(verdict, load_migrations(tmp_path / "db"))
    assert not ok and "0002_phone changed" in why


def test_a_contract_migration_breaks_the_previous_release(stage: str, tmp_path: Path, cli):
    write(tmp_path / "db", {
        "0002_rename.sql": "alter table users rename column email to email_address;\n",
        "0002_rename.down.sql": "alter table users rename column email_address to email;\n",
    })  # fmt: skip
    write(tmp_path / "queries", {"previous.sql": PREVIOUS, "next.sql": "select email_address from users;\n"})
    sp = spec(tmp_path)
    res = cli("migrate", "verify", "--spec", sp, "--previous-queries", tmp_path / "queries" / "previous.sql",
              "--next-queries", tmp_path / "queries" / "next.sql", "--stage-url", stage, "--target-url", stage,
              "--service", "api", "--release", "r7")  # fmt: skip
    assert res.code == 1, res.out + res.err
    assert "FAILED       backward-compat: 2 of 3 statements work on the old schema but fail on the new" in res.out
    assert "previous.sql:1: select id, email from users where id = $1 -> 42703 column \"email\" does not exist" in res.out
    assert "skipped      forward-compat: the pending migrations are not expand-only" in res.out
    assert "0002_rename.sql: contract" in res.out
    assert "ok           down:" in res.out and "verdict: FAIL" in res.out
    assert scratch_dbs(stage) == []
    # the verdict was recorded for (api, r7): the deploy gate blocks that release
    gate = cli("gate", "deploy", "--service", "api", "--release", "r7", "--spec", sp, "--json")
    assert gate.code == 1
    assert "migration verdict for release 'r7' is fail" in gate.json()["blocks"][0]
    assert "backward-compat: 2 of 3 statements" in gate.json()["blocks"][0]


def test_a_down_migration_that_forgets_something_fails_naming_it(stage: str, tmp_path: Path):
    write(tmp_path / "db", {
        "0002_idx.sql": "create index orders_user on orders (user_id);\nalter table orders add column note text default '';\n",
        "0002_idx.down.sql": "alter table orders drop column note;\n",
    })  # fmt: skip
    report = verify(stage, load_migrations(tmp_path / "db"), VerifyOptions(ledger_table=LEDGER, target_url=stage))
    down = report.check("down")
    assert report.verdict == "fail" and down.status == "failed"
    assert down.details == [
        "index public.orders_user was not there before (now: CREATE INDEX orders_user ON public.orders USING btree (user_id))"
    ]
    assert report.check("backward-compat").status == "skipped" and "no query suite" in report.check("backward-compat").summary


def test_a_migration_that_fails_on_the_sampled_rows_fails_apply_and_the_clone_is_dropped(stage: str, tmp_path: Path):
    write(tmp_path / "db", {
        "0002_required.sql": "alter table orders add column currency text;\nalter table orders alter column currency set not null;\n",
        "0002_required.down.sql": "alter table orders drop column currency;\n",
    })  # fmt: skip
    ms = load_migrations(tmp_path / "db")
    report = verify(stage, ms, VerifyOptions(ledger_table=LEDGER, target_url=stage))  # rows are sampled by default
    a = report.check("apply")
    assert a.status == "failed" and a.summary.startswith("0002_required failed at 0002_required.sql:2: 23502")
    assert [report.check(n).status for n in ("backward-compat", "forward-compat", "down")] == ["skipped"] * 3
    assert scratch_dbs(stage) == []


def test_nothing_pending_on_the_target_and_an_edited_applied_migration(stage: str, tmp_path: Path, cli):
    p = spec(tmp_path)
    res = cli("migrate", "verify", "--spec", p, "--stage-url", stage, "--target-url", stage, "--json")
    assert res.code == 0 and checks(res.json())["plan"] == "ok"
    assert "nothing pending: the target" in res.json()["checks"][0]["summary"] and res.json()["verdict"] == "pass"
    (tmp_path / "db" / "0001_users.sql").write_text(BASE["0001_users.sql"].replace("amount int", "amount bigint"))
    res = cli("migrate", "verify", "--spec", p, "--stage-url", stage, "--target-url", stage, "--json")
    assert res.code == 1 and checks(res.json())["plan"] == "failed"
    assert "someone edited a migration that already ran" in res.json()["checks"][0]["details"][0]


def test_clone_keeps_foreign_keys_consistent_in_the_sample(stage: str):
    with psycopg.connect(runner.libpq_url(stage), autocommit=True) as src:
        src.execute("insert into users (email, boss) select 'b' || g, 2 from generate_series(1, 5) g")
        info = clone_database(src, stage, "vigil_verify_fk_test", ledger_table=LEDGER, sample_rows=3, pg_bin="/usr/lib/postgresql/15/bin")
    scratch = runner_url(stage, "vigil_verify_fk_test")
    try:
        assert info.ledger_rows == 1 and info.tables == 2
        users = q(scratch, "select id, boss from users order by id")
        assert users == [(1, None)]  # the only root; its children would need it as boss (a cycle: NULL keys only)
        orders = q(scratch, "select user_id from orders")
        assert 0 < len(orders) <= 3 and {u for (u,) in orders} == {1}
        # the constraints were created after the data, so they hold
        assert q(scratch, "select count(*) from pg_constraint where contype = 'f'") == [(2,)]
        # sequences follow Stage: a new id does not collide with a sampled one
        assert q(scratch, "insert into orders (user_id, amount) values (1, 1) returning id")[0][0] > 200
    finally:
        q(stage, "DROP DATABASE vigil_verify_fk_test WITH (FORCE)")


def test_clone_samples_partitioned_tables_and_foreign_keys_into_them(stage: str):
    q(stage, """
        create table events (id int, k int, user_id bigint references users (id), primary key (id, k)) partition by range (k);
        create table events_a partition of events for values from (0) to (100);
        create table events_b partition of events for values from (100) to (200);
        create table notes (id serial primary key, event_id int, k int, foreign key (event_id, k) references events (id, k));
        insert into events select g, g * 7 %% 200, (g %% 40) + 1 from generate_series(1, 300) g;
        insert into notes (event_id, k) select id, k from events;
    """.replace("%%", "%"))  # fmt: skip
    with psycopg.connect(runner.libpq_url(stage), autocommit=True) as src:
        info = clone_database(src, stage, "vigil_verify_part_test", ledger_table=LEDGER, sample_rows=50, pg_bin="/usr/lib/postgresql/15/bin")
    scratch = runner_url(stage, "vigil_verify_part_test")
    try:
        assert info.tables == 5  # users, orders, events_a, events_b, notes (not the partitioned parent)
        events = q(scratch, "select user_id from events")
        assert events and {u for (u,) in events} == {1}
        notes = q(scratch, "select count(*), count(*) filter (where not exists "
                           "(select 1 from events e where e.id = n.event_id and e.k = n.k)) from notes n")  # fmt: skip
        assert notes[0][0] > 0 and notes[0][1] == 0
    finally:
        q(stage, "DROP DATABASE vigil_verify_part_test WITH (FORCE)")


def test_an_unreachable_stage_exits_3(tmp_path: Path, cli):
    write(tmp_path / "db", BASE)
    port = free_port()
    res = cli("migrate", "verify", "--spec", spec(tmp_path), "--stage-url", f"postgresql://v:pw@127.0.0.1:{port}/stage")
    assert res.code == 3 and f"cannot connect to the Stage database postgresql://v@127.0.0.1:{port}/stage" in res.err
    res = cli("migrate", "verify", "--spec", spec(tmp_path), env={"VIGIL_STAGE_DATABASE_URL": ""})
    assert res.code == 2 and "set $VIGIL_STAGE_DATABASE_URL" in res.err


def test_previous_suite_captured_from_pg_stat_statements(tmp_path: Path):
    with PgCluster(settings={"shared_preload_libraries": "'pg_stat_statements'"}) as pg:
        pg.psql("CREATE DATABASE stage")
        url = pg.url("stage")
        write(tmp_path / "db", BASE)
        assert apply(url, load_migrations(tmp_path / "db"), ApplyOptions(ledger_table=LEDGER)).status == "ok"
        q(url, "CREATE EXTENSION pg_stat_statements")
        q(url, "SELECT pg_stat_statements_reset()")
        with psycopg.connect(runner.libpq_url(url), autocommit=True) as app:  # the running release at work
            for i in range(3):
                app.execute("SELECT id, email FROM users WHERE id = %s", (i,))
                app.execute("SELECT sum(amount) FROM orders WHERE user_id = %s", (i,))
            app.execute("SELECT count(*) FROM pg_class")
        write(tmp_path / "db", {
            "0002_drop.sql": "alter table orders drop column amount;\n",
            "0002_drop.down.sql": "alter table orders add column amount int not null default 0;\n",
        })  # fmt: skip
        report = verify(url, load_migrations(tmp_path / "db"),
                        VerifyOptions(ledger_table=LEDGER, from_pg_stat_statements=True, target_url=url))
        back = report.check("backward-compat")
        assert back.status == "failed" and back.data["statements"] == 2 and back.data["with_sampled_parameters"] == 2
        assert len(back.details) == 1 and "pg_stat_statements queryid" in back.details[0]
        assert "sum(amount) FROM orders WHERE user_id = $1" in back.details[0] and "42703" in back.details[0]
        # the down re-adds the column but not where it was: a note, not a difference... yet NOT NULL DEFAULT 0 differs
        assert report.check("down").status == "failed"
        assert any("column public.orders.amount changed" in d for d in report.check("down").details)


def test_pg_stat_statements_missing_is_a_usage_error(stage: str, tmp_path: Path, cli):
    write(tmp_path / "db", {"0002_a.sql": "create table a (id int);\n", "0002_a.down.sql": "drop table a;\n"})
    res = cli("migrate", "verify", "--spec", spec(tmp_path), "--stage-url", stage, "--from-pg-stat-statements")
    assert res.code == 2 and "pg_stat_statements is not installed in the Stage database" in res.err
    assert scratch_dbs(stage) == []


def test_keep_leaves_the_scratch_database(stage: str, tmp_path: Path):
    write(tmp_path / "db", {"0002_a.sql": "create table a (id int);\n", "0002_a.down.sql": "drop table a;\n"})
    report = verify(stage, load_migrations(tmp_path / "db"), VerifyOptions(ledger_table=LEDGER, keep=True, target_url=stage))
    try:
        assert report.verdict == "pass" and report.kept and report.scratch_database in scratch_dbs(stage)
    finally:
        q(stage, f'DROP DATABASE IF EXISTS "{report.scratch_database}" WITH (FORCE)')
