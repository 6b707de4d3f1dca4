"""``vigil migrate apply | status``: the runner, its ledger and its lock, on a real PostgreSQL 15.

Pure planning first, then the real thing: a migration that fails half-way in a transaction and
outside one, lock timeouts retried, two runs at once, a run cut off mid-migration, a refused
connection.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from pgcluster import free_port
from vigil.deploy.migrations import runner
from vigil.deploy.migrations.files import Migration, MigrationFileError, Statement, load_migrations
from vigil.deploy.migrations.runner import (
    ApplyOptions,
    LedgerRow,
    MigrationDbError,
    apply,
    backoff_seconds,
    checksum,
    error_line,
    execution_of,
    lock_key,
    make_plan,
    make_revert_plan,
    status,
)

LEDGER = "vigil_schema_migrations"


def write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (d / name).write_text(sql)
    return d


def mig(version: int, name: str, up: str, down: str | None = None) -> Migration:
    return Migration(version, name, Path(f"{version:04d}_{name}.sql"), up, None, down)


def row(id: int, m: Migration, status: str = "applied", direction: str = "up", transactional: bool = True, **kw) -> LedgerRow:
    return LedgerRow(id, m.version, m.name, kw.pop("checksum", checksum(m.up_sql)), direction, status, transactional, **kw)


def plain(url: str) -> str:
    return runner.libpq_url(url)


def q(url: str, sql: str, params=None):
    with psycopg.connect(plain(url), autocommit=True) as c:
        cur = c.execute(sql, params)
        return cur.fetchall() if cur.description else None


def ledger(url: str) -> list[tuple]:
    return q(url, f"SELECT version, direction, status, transactional, attempts, sqlstate, error_line FROM {LEDGER} ORDER BY id")


def opts(**kw) -> ApplyOptions:
    base = dict(ledger_table=LEDGER, lock_timeout_ms=2000, statement_timeout_ms=20000, lock_retries=3, retry_backoff=1.0, lock_wait=5)
    base.update(kw)
    return ApplyOptions(**base)


def spec_file(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text("version: 1\nservices: {api: {}}\nmigrations:\n  dir: db\n" + extra)
    (tmp_path / "db").mkdir(exist_ok=True)
    return p


# -- pure -----------------------------------------------------------------------------------------


def test_checksum_ignores_crlf_but_not_edits():
    assert checksum("create table a (x int);\n") == checksum("create table a (x int);\r\n")
    assert checksum("create table a (x int);") != checksum("create table a (x bigint);")


def test_plan_orders_pending_and_skips_applied():
    a, b, c = mig(1, "a", "select 1"), mig(2, "b", "select 2"), mig(10, "c", "select 3")
    plan = make_plan([c, a, b], [row(1, a)])
    assert [m.version for m in plan.to_run] == [2, 10]
    assert [s.state for s in plan.states] == ["applied", "pending", "pending"]
    assert make_plan([a, b, c], [row(1, a)], target=2).to_run == [b]
    assert not plan.problems


def test_plan_refuses_an_edited_applied_migration():
    a = mig(1, "a", "create table a (x int)")
    plan = make_plan([a], [row(1, a, checksum=checksum("create table a (y int)"))])
    assert [p.code for p in plan.problems] == ["edited"]
    assert "edited a migration that already ran" in plan.problems[0].message
    assert "new migration" in plan.problems[0].hint


def test_plan_stops_at_failed_until_retry_and_says_what_remains():
    a, b = mig(1, "a", "select 1"), mig(2, "b", "select 2")
    rows = [row(1, a), row(2, b, "failed", sqlstate="42703", error='column "x" does not exist', error_line=3)]
    plan = make_plan([a, b], rows)
    assert plan.to_run == [] and [p.code for p in plan.problems] == ["failed"]
    assert "42703" in plan.problems[0].message and "line 3" in plan.problems[0].message
    assert "nothing of it remains" in plan.problems[0].hint and "--retry-failed" in plan.problems[0].hint
    nontx = make_plan([a, b], [row(1, a), row(2, b, "failed", transactional=False)])
    assert "OUTSIDE a transaction" in nontx.problems[0].hint
    assert make_plan([a, b], rows, retry_failed=True).to_run == [b]


def test_plan_a_lock_timeout_that_changed_nothing_is_pending_not_failed():
    a, b = mig(1, "a", "select 1", "select -1"), mig(2, "b", "select 2")
    tx = row(1, a, "failed", sqlstate="55P03", error="canceling statement due to lock timeout")
    plan = make_plan([a, b], [tx])
    assert not plan.problems and plan.to_run == [a, b] and "changed nothing" in plan.states[0].note
    # outside a transaction only when the attempt says it changed nothing
    assert make_plan([a], [row(1, a, "failed", transactional=False, sqlstate="55P03", nothing_applied=True)]).to_run == [a]
    unknown = make_plan([a], [row(1, a, "failed", transactional=False, sqlstate="55P03")])
    assert [p.code for p in unknown.problems] == ["failed"]
    # any other failure still halts
    assert [p.code for p in make_plan([a], [row(1, a, "failed", sqlstate="23502")]).problems] == ["failed"]
    # a revert that timed out: still applied
    down = make_plan([a], [row(1, a), row(2, a, "failed", "down", sqlstate="55P03")])
    assert down.states[0].state == "applied" and not down.problems and down.to_run == []


def test_plan_running_row_is_interrupted_and_newest_row_wins():
    a = mig(1, "a", "select 1")
    assert [p.code for p in make_plan([a], [row(1, a, "running")]).problems] == ["interrupted"]
    # failed, then retried and applied: applied
    assert make_plan([a], [row(1, a, "failed"), row(2, a)]).states[0].state == "applied"
    # applied, then reverted: pending again
    assert make_plan([a], [row(1, a), row(2, a, "reverted", "down")]).to_run == [a]


def test_plan_refuses_out_of_order_and_warns_on_missing_files():
    a, b, c = mig(1, "a", "select 1"), mig(2, "b", "select 2"), mig(3, "c", "select 3")
    plan = make_plan([a, b, c], [row(1, a), row(2, c)])
    assert [(p.code, p.version) for p in plan.problems] == [("out-of-order", 2)]
    gone = make_plan([b], [row(1, a)])
    assert gone.warnings and "file is gone" in gone.warnings[0] and gone.to_run == [b]


def test_revert_plan_newest_first_and_needs_down_files():
    a, b, c = mig(1, "a", "select 1", "select -1"), mig(2, "b", "select 2", "select -2"), mig(3, "c", "select 3")
    plan = make_revert_plan([a, b, c], [row(1, a), row(2, b)], 0)
    assert [m.version for m in plan.to_run] == [2, 1] and not plan.problems
    plan = make_revert_plan([a, b, c], [row(1, a), row(2, b), row(3, c)], 1)
    assert [p.code for p in plan.problems] == ["no-down"] and "0003_c.down.sql" in plan.problems[0].message


def test_execution_runs_concurrently_and_vacuum_outside_a_transaction():
    exe = execution_of("create table t (x int);\ncreate index concurrently t_x on t (x);\n", "f.sql")
    assert not exe.transactional and "CREATE INDEX CONCURRENTLY (line 2)" in exe.reason
    assert exe.debris == frozenset({1})
    assert not execution_of("vacuum t;", "f.sql").transactional
    assert execution_of("analyze t;", "f.sql").transactional
    assert execution_of("alter type e add value 'x';", "f.sql").transactional
    assert not execution_of("alter type e add value 'x';", "f.sql", server_version_num=110000).transactional
    d = execution_of("-- vigil:no-transaction\nupdate t set x = 1;", "f.sql")
    assert not d.transactional and d.reason.startswith("-- vigil:no-transaction")
    assert [s.line for s in execution_of("select 1;\n\nselect 2;", "f.sql").statements] == [1, 3]


def test_execution_refuses_transaction_control_and_bad_sql():
    with pytest.raises(MigrationFileError, match=r"f.sql:2: COMMIT: a migration must not control transactions"):
        execution_of("create table t (x int);\ncommit;", "f.sql")
    with pytest.raises(MigrationFileError, match=r'f.sql:3: syntax error at or near "tabel"'):
        execution_of("select 1;\n\ncreate tabel t (x int);", "f.sql")


def test_error_line_and_backoff():
    st = Statement("alter table t\n  add column y nope", 7)
    assert error_line(st, None) == 7
    assert error_line(st, st.text.index("nope") + 1) == 8
    assert [backoff_seconds(i, 0.5) for i in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_seconds(10, 1) == 30


# -- the real thing -----------------------------------------------------------------------------------


def test_apply_then_nothing_to_do_and_status(pg_db_url: str, tmp_path: Path):
    d = write(tmp_path / "db", {
        "0001_users.sql": "create table users (id bigint primary key, email text);\n",
        "0002_orders.sql": "create table orders (id bigint primary key, user_id bigint references users);\n",
    })  # fmt: skip
    ms = load_migrations(d)
    events: list[str] = []
    r = apply(pg_db_url, ms, opts(), on_event=lambda k, e: events.append(f"{k} {e['id']}"))
    assert r.status == "ok" and r.exit_code == 0
    assert [x.status for x in r.results] == ["applied", "applied"]
    assert events == ["start 0001_users", "end 0001_users", "start 0002_orders", "end 0002_orders"]
    assert ledger(pg_db_url) == [(1, "up", "applied", True, 1, None, None), (2, "up", "applied", True, 1, None, None)]
    assert q(pg_db_url, "SELECT count(*) FROM orders") == [(0,)]
    again = apply(pg_db_url, ms, opts())
    assert again.status == "nothing-to-do" and again.exit_code == 0 and len(ledger(pg_db_url)) == 2
    st = status(pg_db_url, ms, LEDGER)
    assert st.counts() == {"applied": 2} and st.exit_code == 0 and st.running is None


def test_failure_half_way_in_a_transaction_leaves_nothing_and_stops_the_run(pg_db_url: str, tmp_path: Path, cli):
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {
        "0001_users.sql": "create table users (id bigint primary key);\n",
        "0002_half.sql": "create table audit (id int);\n-- the second statement fails\nalter table users\n  add column y nope;\n",
        "0003_later.sql": "create table later (id int);\n",
    })  # fmt: skip
    res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec)
    assert res.code == 1, res.out + res.err
    assert "FAILED 0002_half" in res.out and "0002_half.sql:4: 42704 type \"nope\" does not exist" in res.out
    assert "nothing of it remains" in res.out and "not run: 0003_later" in res.out
    # nothing of 0002 remains, 0003 never ran, the ledger is true
    assert q(pg_db_url, "SELECT to_regclass('audit'), to_regclass('later'), to_regclass('users')::text") == [(None, None, "users")]
    assert ledger(pg_db_url) == [(1, "up", "applied", True, 1, None, None), (2, "up", "failed", True, 1, "42704", 4)]

    st = cli("migrate", "status", "--db-url", pg_db_url, "--spec", spec, "--json")
    assert st.code == 1
    body = st.json()
    assert body["needs_attention"] and [m["state"] for m in body["migrations"]] == ["applied", "failed", "pending"]
    assert body["migrations"][1]["last_attempt"]["error_line"] == 4

    again = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--json")
    assert again.code == 1 and again.json()["status"] == "refused"
    assert again.json()["problems"][0]["code"] == "failed" and len(ledger(pg_db_url)) == 2

    (tmp_path / "db" / "0002_half.sql").write_text("create table audit (id int);\nalter table users add column y text;\n")
    fixed = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--retry-failed", "--json")
    assert fixed.code == 0, fixed.out
    assert [r["id"] for r in fixed.json()["results"]] == ["0002_half", "0003_later"]
    # the ledger keeps the failed attempt: one row per attempt
    assert [r[:3] for r in ledger(pg_db_url)] == [(1, "up", "applied"), (2, "up", "failed"), (2, "up", "applied"), (3, "up", "applied")]


def test_failed_concurrent_index_outside_a_transaction_reports_the_invalid_index(pg_db_url: str, tmp_path: Path, cli):
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {
        "0001_t.sql": "create table t (id int primary key, email text);\ninsert into t values (1, 'a'), (2, 'a');\n",
        "0002_uniq.sql": "create index concurrently t_id on t (id);\ncreate unique index concurrently t_email on t (email);\n",
    })  # fmt: skip
    res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--json")
    assert res.code == 1
    r = res.json()["results"][1]
    assert r["status"] == "failed" and r["transactional"] is False
    assert "CREATE INDEX CONCURRENTLY (line 1)" in r["no_transaction_reason"]
    assert r["error"]["sqlstate"] == "23505" and r["error"]["line"] == 2
    assert any("index public.t_email" in x and "(INVALID)" in x for x in r["remains"]), r["remains"]
    # everything the migration changed stays: the index of line 1 (valid) too
    assert any("index public.t_id" in x and "INVALID" not in x for x in r["remains"]), r["remains"]
    assert any("before line 2" in n for n in r["notes"])
    rows = ledger(pg_db_url)
    assert rows[-1][:5] == (2, "up", "failed", False, 1)
    err = q(pg_db_url, f"SELECT error FROM {LEDGER} WHERE version = 2")[0][0]
    assert "left behind: index public.t_email" in err
    text = cli("migrate", "status", "--db-url", pg_db_url, "--spec", spec)
    assert text.code == 1 and "OUTSIDE a transaction" in text.out


def test_lock_timeout_is_retried_with_backoff_then_succeeds(pg_db_url: str, tmp_path: Path):
    q(pg_db_url, "create table busy (id int)")
    d = write(tmp_path / "db", {"0001_col.sql": "alter table busy add column x int;\n"})
    blocker = psycopg.connect(plain(pg_db_url))
    blocker.execute("LOCK TABLE busy IN ACCESS SHARE MODE")  # holds until commit: ALTER TABLE must wait
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        if len(slept) == 2:
            blocker.commit()  # the lock goes away before the third attempt

    try:
        r = apply(pg_db_url, load_migrations(d), opts(lock_timeout_ms=100, retry_backoff=0.25), sleep=sleep)
    finally:
        blocker.close()
    assert r.status == "ok", r.to_dict()
    assert slept == [0.25, 0.5] and r.results[0].attempts == 3
    assert ledger(pg_db_url) == [(1, "up", "applied", True, 3, None, None)]


def test_lock_timeout_retries_run_out_and_the_run_fails(pg_db_url: str, tmp_path: Path):
    q(pg_db_url, "create table busy (id int)")
    d = write(tmp_path / "db", {"0001_col.sql": "alter table busy add column x int;\n", "0002_next.sql": "select 1;\n"})
    blocker = psycopg.connect(plain(pg_db_url))
    blocker.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
    slept: list[float] = []
    try:
        r = apply(pg_db_url, load_migrations(d), opts(lock_timeout_ms=50, lock_retries=2), sleep=slept.append)
    finally:
        blocker.close()
    assert r.status == "failed" and r.exit_code == 1 and r.not_run == ["0002_next"]
    f = r.results[0].failure
    assert f.sqlstate == "55P03" and "lock timeout" in f.message
    assert slept == [1.0, 2.0] and r.results[0].attempts == 3 and r.results[0].nothing_applied is True
    assert ledger(pg_db_url) == [(1, "up", "failed", True, 3, "55P03", 1)]


def test_a_lock_timeout_that_applied_nothing_does_not_halt_later_deploys(pg_db_url: str, tmp_path: Path, cli):
    """Observed: the run above left the ledger `failed`, and every later deploy was refused until a
    person ran `apply --retry-failed`, though nothing had been applied."""
    spec = spec_file(tmp_path)
    q(pg_db_url, "create table busy (id int)")
    write(tmp_path / "db", {"0001_col.sql": "alter table busy add column x int;\n", "0002_next.sql": "create table nxt (id int);\n"})
    blocker = psycopg.connect(plain(pg_db_url))
    blocker.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
    try:
        res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--lock-retries", "0")
    finally:
        blocker.close()
    assert res.code == 1, res.out + res.err  # this deploy halts: the migration did not apply
    assert "55P03" in res.out and "changed nothing: later runs are not blocked" in res.out and "--retry-failed" not in res.out
    assert q(pg_db_url, f"SELECT status, sqlstate, nothing_applied FROM {LEDGER}") == [("failed", "55P03", True)]
    st = cli("migrate", "status", "--db-url", pg_db_url, "--spec", spec, "--json")
    assert st.code == 0 and not st.json()["needs_attention"] and st.json()["pending"] == ["0001_col", "0002_next"]
    assert "timed out waiting for a lock and changed nothing" in st.json()["migrations"][0]["note"]
    again = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--json")  # no --retry-failed
    assert again.code == 0, again.out
    assert [r["id"] for r in again.json()["results"]] == ["0001_col", "0002_next"]
    assert [r[:3] for r in ledger(pg_db_url)] == [(1, "up", "failed"), (1, "up", "applied"), (2, "up", "applied")]


def test_a_lock_timeout_after_committed_statements_still_halts(pg_db_url: str, tmp_path: Path):
    """Outside a transaction, a lock timeout after earlier statements committed is not 'nothing applied'."""
    q(pg_db_url, "create table busy (id int)")
    d = write(tmp_path / "db", {"0001_two.sql": "-- vigil:no-transaction\ncreate table first (id int);\nalter table busy add column x int;\n"})
    blocker = psycopg.connect(plain(pg_db_url))
    blocker.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
    try:
        r = apply(pg_db_url, load_migrations(d), opts(lock_timeout_ms=50, lock_retries=0))
    finally:
        blocker.close()
    assert r.status == "failed" and r.results[0].nothing_applied is False
    assert any("table public.first" in x for x in r.results[0].remains)
    plan = status(pg_db_url, load_migrations(d), LEDGER).plan
    assert [p.code for p in plan.problems] == ["failed"] and "OUTSIDE a transaction" in plan.problems[0].hint


def test_a_ledger_from_an_older_vigil_gains_the_new_column(pg_db_url: str, tmp_path: Path):
    q(pg_db_url, f"""CREATE TABLE {LEDGER} (id bigserial PRIMARY KEY, version bigint NOT NULL, name text NOT NULL,
        checksum text NOT NULL, direction text NOT NULL DEFAULT 'up', status text NOT NULL, transactional boolean NOT NULL,
        started_at timestamptz NOT NULL DEFAULT clock_timestamp(), finished_at timestamptz, duration_ms bigint,
        attempts integer NOT NULL DEFAULT 1, sqlstate text, error text, error_line integer, actor text,
        runner text NOT NULL DEFAULT '')""")
    d = write(tmp_path / "db", {"0001_a.sql": "create table a (id int);\n"})
    assert status(pg_db_url, load_migrations(d), LEDGER).counts() == {"pending": 1}  # read-only: no column added
    assert q(pg_db_url, f"SELECT count(*) FROM pg_attribute WHERE attrelid = '{LEDGER}'::regclass AND attname = 'nothing_applied'") == [(0,)]
    assert apply(pg_db_url, load_migrations(d), opts()).status == "ok"
    assert q(pg_db_url, f"SELECT status, nothing_applied FROM {LEDGER}") == [("applied", None)]


def test_lock_timeout_outside_a_transaction_retries_the_statement_but_never_a_concurrent_build(pg_db_url: str, tmp_path: Path):
    q(pg_db_url, "create table busy (id int)")
    d = write(tmp_path / "db", {
        "0001_col.sql": "-- vigil:no-transaction\nalter table busy add column x int;\n",
        "0002_idx.sql": "create index concurrently busy_x on busy (x);\n",
    })  # fmt: skip
    blocker = psycopg.connect(plain(pg_db_url))
    blocker.execute("LOCK TABLE busy IN SHARE UPDATE EXCLUSIVE MODE")  # blocks ALTER TABLE and CREATE INDEX CONCURRENTLY
    slept: list[float] = []
    try:
        r = apply(pg_db_url, load_migrations(d), opts(lock_timeout_ms=100, retry_backoff=0.1, target=1),
                  sleep=lambda s: (slept.append(s), blocker.commit()))
        assert r.status == "ok" and r.results[0].attempts == 2 and not r.results[0].transactional and slept == [0.1]
        blocker.execute("LOCK TABLE busy IN SHARE UPDATE EXCLUSIVE MODE")
        slept.clear()
        r = apply(pg_db_url, load_migrations(d), opts(lock_timeout_ms=100), sleep=slept.append)
    finally:
        blocker.close()
    assert r.status == "failed" and slept == []  # a failed concurrent build may leave an INVALID index: not retried
    assert r.results[0].failure.sqlstate == "55P03" and r.results[0].attempts == 1


def test_two_runs_at_once_apply_each_migration_once(pg_db_url: str, tmp_path: Path):
    d = write(tmp_path / "db", {
        "0001_slow.sql": "create table a (id int);\nselect pg_sleep(0.4);\n",
        "0002_b.sql": "create table b (id int);\n",
    })  # fmt: skip
    ms = load_migrations(d)
    reports: list = []
    errors: list = []

    def run() -> None:
        try:
            reports.append(apply(pg_db_url, ms, opts(lock_wait=20)))
        except Exception as e:  # pragma: no cover - shown by the assert below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(reports) == 2
    assert sorted(r.status for r in reports) == ["nothing-to-do", "ok"]
    assert [r[:3] for r in ledger(pg_db_url)] == [(1, "up", "applied"), (2, "up", "applied")]


def test_a_held_lock_is_its_own_outcome_naming_the_holder(pg_db_url: str, tmp_path: Path, cli):
    """Observed: a busy lock exited 3 with the same kind of error as an unreachable database."""
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {"0001_a.sql": "create table a (id int);\n"})
    holder = psycopg.connect(plain(pg_db_url), autocommit=True, application_name="deploy-42")
    holder.execute("SELECT pg_advisory_lock(%s, %s)", lock_key(LEDGER))
    pid = holder.info.backend_pid
    try:
        r = apply(pg_db_url, load_migrations(tmp_path / "db"), opts(lock_wait=0.2))
        assert r.status == "lock-busy" and r.lock_busy and r.exit_code == 3 and r.results == []
        assert r.lock.holder["pid"] == pid and f"pid {pid} (application 'deploy-42'" in r.lock.message
        res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--lock-wait", "0s", "--json")
        assert res.code == 3
        body = res.json()
        assert "error" not in body and body["status"] == "lock-busy" and body["lock_busy"] is True
        assert body["lock"]["acquired"] is False and body["lock"]["holder"]["application_name"] == "deploy-42"
        assert f"pg_terminate_backend({pid})" in body["lock"]["hint"] and body["results"] == []
        text = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--lock-wait", "0s")
        assert text.code == 3 and text.out.startswith(f"BUSY: another migration run holds the migration lock: pid {pid}")
        assert "nothing was applied" in text.out
        st = cli("migrate", "status", "--db-url", pg_db_url, "--spec", spec, "--json")
        assert st.json()["running_now"]["pid"] == pid
    finally:
        holder.close()
    assert q(pg_db_url, "SELECT to_regclass('a'), to_regclass('vigil_schema_migrations')") == [(None, None)]
    # an unreachable database is a different outcome: an error, not a report
    down = cli("migrate", "apply", "--db-url", f"postgresql://x@127.0.0.1:{free_port()}/x", "--spec", spec, "--json")
    assert down.code == 3 and down.json()["error"]["code"] == "migration-db" and "status" not in down.json()


def test_a_run_cut_off_mid_migration_leaves_a_truthful_running_row(pg_db_url: str, tmp_path: Path, cli):
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {"0001_slow.sql": "create table a (id int);\nselect pg_sleep(30);\n"})
    ms = load_migrations(tmp_path / "db")
    caught: list[BaseException] = []

    def run() -> None:
        try:
            apply(pg_db_url, ms, opts())
        except BaseException as e:
            caught.append(e)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 20
    pid = None
    while pid is None and time.monotonic() < deadline:
        rows = q(pg_db_url, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'select pg_sleep(30)%%' AND state = 'active'")
        pid = rows[0][0] if rows else None
        time.sleep(0.05)
    assert pid, "the migration never started"
    q(pg_db_url, "SELECT pg_terminate_backend(%s)", (pid,))
    t.join(30)
    assert len(caught) == 1 and isinstance(caught[0], MigrationDbError)
    assert "lost the connection while applying 0001_slow" in caught[0].message and "'running'" in caught[0].hint
    assert ledger(pg_db_url) == [(1, "up", "running", True, 1, None, None)]
    assert q(pg_db_url, "SELECT to_regclass('a')") == [(None,)]  # PostgreSQL rolled it back

    st = cli("migrate", "status", "--db-url", pg_db_url, "--spec", spec)
    assert st.code == 1 and "INTERRUPTED" in st.out and "rolled it back" in st.out
    refused = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec)
    assert refused.code == 1 and "REFUSED 0001_slow" in refused.out and "never finished" in refused.out
    (tmp_path / "db" / "0001_slow.sql").write_text("create table a (id int);\n")
    ok = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--retry-failed")
    assert ok.code == 0, ok.out + ok.err
    assert [r[2] for r in ledger(pg_db_url)] == ["running", "applied"]


def test_statement_timeout_from_the_spec_fails_the_migration(pg_db_url: str, tmp_path: Path, cli):
    spec = spec_file(tmp_path, "  statement_timeout: 200ms\n")
    write(tmp_path / "db", {"0001_slow.sql": "create table a (id int);\nselect pg_sleep(5);\n"})
    res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--json")
    assert res.code == 1
    err = res.json()["results"][0]["error"]
    assert err["sqlstate"] == "57014" and "statement timeout" in err["message"] and err["line"] == 2


def test_an_edited_applied_migration_is_refused(pg_db_url: str, tmp_path: Path, cli):
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {"0001_a.sql": "create table a (id int);\n"})
    assert cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec).code == 0
    write(tmp_path / "db", {"0001_a.sql": "create table a (id bigint);\n", "0002_b.sql": "create table b (id int);\n"})
    res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec)
    assert res.code == 1 and "someone edited a migration that already ran" in res.out
    assert q(pg_db_url, "SELECT to_regclass('b')") == [(None,)]


def test_down_to_reverts_newest_first_and_records_it(pg_db_url: str, tmp_path: Path, cli):
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {
        "0001_a.sql": "create table a (id int);\n", "0001_a.down.sql": "drop table a;\n",
        "0002_b.sql": "create table b (id int);\n", "0002_b.down.sql": "drop table b;\n",
    })  # fmt: skip
    assert cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec).code == 0
    res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--down-to", "0", "--json")
    assert res.code == 0 and [r["id"] for r in res.json()["results"]] == ["0002_b", "0001_a"]
    assert q(pg_db_url, "SELECT to_regclass('a'), to_regclass('b')") == [(None, None)]
    assert [r[:3] for r in ledger(pg_db_url)][2:] == [(2, "down", "reverted"), (1, "down", "reverted")]
    st = cli("migrate", "status", "--db-url", pg_db_url, "--spec", spec, "--json").json()
    assert st["pending"] == ["0001_a", "0002_b"]
    assert cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec).code == 0


def test_a_schema_qualified_ledger_and_apply_json_shape(pg_db_url: str, tmp_path: Path, cli):
    q(pg_db_url, "create schema ops")
    spec = spec_file(tmp_path, "  ledger_table: ops.migrations\n")
    write(tmp_path / "db", {"0001_a.sql": "create table a (id int);\n"})
    res = cli("migrate", "apply", "--db-url", pg_db_url, "--spec", spec, "--json")
    assert res.code == 0
    body = res.json()
    assert set(body) == {"database", "direction", "status", "lock_busy", "lock", "results", "not_run", "problems", "warnings", "plan"}
    assert body["lock"]["acquired"] is True and body["lock_busy"] is False
    assert body["results"][0]["ledger_id"] == 1
    assert q(pg_db_url, "SELECT version, status FROM ops.migrations") == [(1, "applied")]


def test_a_refused_connection_exits_3_with_what_and_where(tmp_path: Path, cli):
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {"0001_a.sql": "create table a (id int);\n"})
    port = free_port()
    for cmd in ("apply", "status"):
        res = cli("migrate", cmd, "--db-url", f"postgresql://app:s3cret@127.0.0.1:{port}/app", "--spec", spec)
        assert res.code == 3, res.err
        assert f"cannot connect to the target database postgresql://app@127.0.0.1:{port}/app" in res.err
        assert "s3cret" not in res.err and "hint: check --db-url" in res.err


def test_missing_url_and_bad_files_are_usage_errors(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    spec = spec_file(tmp_path)
    res = cli("migrate", "apply", "--spec", spec)
    assert res.code == 2 and "no target database: pass --db-url or set $DATABASE_URL" in res.err
    write(tmp_path / "db", {"0001_a.sql": "begin;\ncreate table a (id int);\ncommit;\n"})
    res = cli("migrate", "apply", "--spec", spec, "--db-url", "postgresql://x@127.0.0.1:1/x")
    assert res.code == 3  # the connection comes first; files are parsed under the lock


def test_transaction_control_in_a_file_is_refused_before_anything_runs(pg_db_url: str, tmp_path: Path, cli):
    spec = spec_file(tmp_path)
    write(tmp_path / "db", {"0001_a.sql": "create table a (id int);\n", "0002_b.sql": "begin;\ncreate table b (id int);\ncommit;\n"})
    res = cli("migrate", "apply", "--spec", spec, "--db-url", pg_db_url)
    assert res.code == 2 and "0002_b.sql:1: BEGIN: a migration must not control transactions" in res.err
    assert q(pg_db_url, "SELECT to_regclass('a')") == [(None,)]  # parsed first: not even 0001 ran
