"""Outbox rows whose transactions commit out of id order, on a real PostgreSQL 15 with two connections.

The audit's observation: `search rebuild --catch-up` skipped a change whose transaction committed
after a later one (the watermark passed its outbox id while it was in flight), and running it again
did not bring it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from vigil.search import EmbeddedEngine, SearchError, check_index, create_outbox_table, load_snapshot, rebuild, repair_index
from vigil.search.outbox import Position, conninfo
from vigil.search.spec import CollectionSpec, OutboxSpec

PRODUCTS = CollectionSpec(name="products", fields=[{"name": "title", "type": "string"}])


@pytest.fixture
def url(pg_db_url: str) -> str:
    with psycopg.connect(conninfo(pg_db_url), autocommit=True) as c:
        create_outbox_table(c)
        c.execute("CREATE TABLE products (id text PRIMARY KEY, title text NOT NULL)")
    return pg_db_url


def connection(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(conninfo(url), autocommit=autocommit)


def write(conn: psycopg.Connection, key: str, title: str, *, table: str = "search_outbox") -> int:
    """Change the entity and write its outbox row (the caller commits)."""
    conn.execute("INSERT INTO products (id, title) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET title = excluded.title", (key, title))
    return conn.execute(
        f"INSERT INTO {table} (collection, doc_id, document) VALUES ('products', %s, %s) RETURNING id",
        (key, json.dumps({"title": title})),
    ).fetchone()[0]


@pytest.fixture
def eng(tmp_path: Path):
    e = EmbeddedEngine(tmp_path / "index.db")
    yield e
    e.close()


def test_a_change_committed_after_a_later_one_is_caught_up(url: str, eng: EmbeddedEngine) -> None:
    slow, fast = connection(url), connection(url, autocommit=True)
    try:
        assert write(slow, "late", "committed last") == 1  # id 1, its transaction still open
        assert write(fast, "early", "committed first") == 2  # id 2, committed
        res = rebuild(eng, None, url, reset=False, collections=[PRODUCTS])
        assert (res.mode, res.applied, res.watermark) == ("txid", 1, 2)
        assert eng.get("products", "early") is not None and eng.get("products", "late") is None
        assert check_index(eng, url).ok  # id 1 is invisible: nothing is missing yet
        slow.commit()
        # now the index passed id 1 with the watermark; the check sees the late commit as pending
        chk = check_index(eng, url)
        assert not chk.ok and chk.pending == 1 and chk.pending_ids["products"] == ["late"]
        assert "1 change(s) committed after the index's position are not applied" in chk.problems[-1]
        assert chk.diffs["products"].total == 0  # lag, not divergence
        res = rebuild(eng, None, url, reset=False, collections=[PRODUCTS])  # "run again" brings it back
        assert (res.applied, res.watermark) == (1, 2)
        assert eng.get("products", "late") == {"id": "late", "title": "committed last"}
        assert check_index(eng, url).ok
        res = rebuild(eng, None, url, reset=False, collections=[PRODUCTS])
        assert res.applied == 0  # and nothing is applied twice
    finally:
        slow.close()
        fast.close()


def test_a_snapshot_taken_while_a_change_was_in_flight_replays_it(url: str, eng: EmbeddedEngine, tmp_path: Path) -> None:
    """The DR path: the nightly snapshot passed an in-flight id; the rebuild from it must not skip it."""
    slow, fast = connection(url), connection(url, autocommit=True)
    try:
        write(slow, "late", "in flight at snapshot time")
        write(fast, "early", "before the snapshot")
        rebuild(eng, None, url, reset=False)
        snap = eng.snapshot(tmp_path / "snap")
        assert snap.watermark == 2 and Position.parse(snap.position).done is not None
        assert load_snapshot(tmp_path / "snap").position == snap.position
        slow.commit()
        with EmbeddedEngine(tmp_path / "fresh.db") as fresh:
            res = rebuild(fresh, tmp_path / "snap", url)
            assert (res.restored, res.applied) == (1, 1)
            assert fresh.get("products", "late")["title"] == "in flight at snapshot time"
            assert check_index(fresh, url).ok
    finally:
        slow.close()
        fast.close()


def test_rows_of_one_document_keep_their_order_when_xids_do_not(url: str, eng: EmbeddedEngine) -> None:
    """A transaction id order is not commit order. T2 takes its xid first, an unrelated T0 stays open,
    T1 writes p1 and commits, then T2 writes p1 (after T1's row lock) and commits: p1 ends as T2 wrote it.
    A horizon at pg_snapshot_xmin alone would apply T2's row now and T1's older row later."""
    t2, t0, t1 = connection(url), connection(url), connection(url)
    try:
        x2 = int(t2.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        x0 = int(t0.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        write(t1, "p1", "v1 from T1")
        x1 = int(t1.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        t1.commit()
        write(t2, "p1", "v2 from T2")
        t2.commit()
        assert x2 < x0 < x1
        rebuild(eng, None, url, reset=False)
        assert eng.get("products", "p1")["title"] == "v2 from T2"
        t0.commit()
        rebuild(eng, None, url, reset=False)
        assert eng.get("products", "p1")["title"] == "v2 from T2"
        assert check_index(eng, url).ok
    finally:
        for c in (t0, t1, t2):
            c.close()


def test_a_crashed_pass_resumes_where_it_stopped(url: str, eng: EmbeddedEngine) -> None:
    with connection(url, autocommit=True) as c:
        for i in range(1, 11):
            write(c, f"p{i}", f"t{i}")
        c.execute("UPDATE search_outbox SET document = '{\"nope\": 1}' WHERE id = 6")  # refused by the schema
        with pytest.raises(SearchError, match="stopped at watermark 4"):
            rebuild(eng, None, url, collections=[PRODUCTS], batch_size=4)
        pos = Position.parse(eng.get_position())
        assert (pos.done, pos.after, eng.get_watermark(), eng.count("products")) == (None, 4, 4, 4)
        c.execute("UPDATE search_outbox SET document = '{\"title\": \"t6\"}' WHERE id = 6")
        write(c, "p11", "after the crash")
        res = rebuild(eng, None, url, reset=False, collections=[PRODUCTS], batch_size=4)
        assert (res.applied, res.watermark, res.count) == (7, 11, 11)  # rows 5..10 of the old pass, then row 11
        assert Position.parse(res.position).cur is None
        assert check_index(eng, url).ok


def test_an_index_without_a_position_warns_and_gets_one(url: str, eng: EmbeddedEngine) -> None:
    with connection(url, autocommit=True) as c:
        write(c, "p1", "a")
        rebuild(eng, None, url)
        eng.set_position(None)  # an index made by an older vigil: a watermark, no position
        write(c, "p2", "b")
    res = rebuild(eng, None, url, reset=False)
    assert res.applied == 1 and "has no outbox position" in res.warnings[0] and "--repair" in res.warnings[0]
    assert Position.parse(eng.get_position()).done is not None
    assert rebuild(eng, None, url, reset=False).warnings == []


def test_without_a_txid_column_the_gap_is_found_by_the_check_and_repaired(pg_db_url: str, eng: EmbeddedEngine) -> None:
    ob = OutboxSpec(table="plain_outbox", txid_column=None)
    with connection(pg_db_url, autocommit=True) as c:
        create_outbox_table(c, ob)
        c.execute("CREATE TABLE products (id text PRIMARY KEY, title text NOT NULL)")
    spec_ob = OutboxSpec(table="plain_outbox")  # the spec's default names a txid column the table lacks
    slow, fast = connection(pg_db_url), connection(pg_db_url, autocommit=True)
    try:
        write(slow, "late", "x", table="plain_outbox")
        write(fast, "early", "y", table="plain_outbox")
        res = rebuild(eng, None, pg_db_url, outbox=spec_ob)
        assert res.mode == "id" and "has no column 'txid'" in res.warnings[0]  # said even on a fresh rebuild
        slow.commit()
        res = rebuild(eng, None, pg_db_url, outbox=spec_ob, reset=False)
        assert res.mode == "id" and res.applied == 0 and eng.get("products", "late") is None  # by id alone it is skipped...
        assert "has no column 'txid'" in res.warnings[0] and "ADD COLUMN txid xid8" in res.warnings[0]
        chk = check_index(eng, pg_db_url, outbox=spec_ob)
        assert chk.mode == "id" and not chk.ok and chk.diffs["products"].missing == ["late"]  # ...and the check names it
        assert repair_index(eng, pg_db_url, chk, outbox=spec_ob).ok
        assert check_index(eng, pg_db_url, outbox=spec_ob).ok
    finally:
        slow.close()
        fast.close()


def test_a_null_txid_column_is_tracked_by_id_and_said_so(pg_db_url: str, eng: EmbeddedEngine) -> None:
    ob = OutboxSpec(txid_column=None)
    with connection(pg_db_url, autocommit=True) as c:
        create_outbox_table(c, ob)
        c.execute("CREATE TABLE products (id text PRIMARY KEY, title text NOT NULL)")
        write(c, "p1", "a")
        assert c.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'txid'").fetchone()[0] == 0
    res = rebuild(eng, None, pg_db_url, outbox=ob)
    assert res.mode == "id" and res.count == 1 and "outbox.txid_column is null" in res.warnings[0]
    assert check_index(eng, pg_db_url, outbox=ob).mode == "id"


def test_txids_from_another_cluster_fall_back_to_ids(url: str, eng: EmbeddedEngine) -> None:
    with connection(url, autocommit=True) as c:
        write(c, "p1", "a")
        c.execute("UPDATE search_outbox SET txid = '900000000'::xid8")  # a logical copy keeps the old cluster's values
    res = rebuild(eng, None, url, reset=False)
    assert res.mode == "id" and res.count == 1 and "ahead of this database's transaction counter" in res.warnings[0]


def test_an_unreadable_position_is_an_error(url: str, eng: EmbeddedEngine) -> None:
    eng.set_position('{"v": 1, "done": "9:3:"}')
    with pytest.raises(SearchError, match="position is unreadable") as ei:
        rebuild(eng, None, url, reset=False)
    assert "--snapshot none" in ei.value.hint
    with pytest.raises(SearchError, match="position is unreadable"):
        check_index(eng, url)
    assert rebuild(eng, None, url).ok  # a rebuild from scratch replaces it


# --- the CLI: the audit's command sequence ------------------------------------------------------


@pytest.fixture
def search_cli(cli):
    from vigil.cli.main import cli as root
    from vigil.cli.search import search_group

    if "search" not in root.commands:
        root.add_command(search_group)
    return cli


def test_cli_catch_up_twice_brings_the_late_commit(url: str, tmp_path: Path, search_cli) -> None:
    spec = tmp_path / "vigil.yaml"
    spec.write_text(
        "version: 1\nservices: {search: {}}\nbackups:\n  search:\n    engine: embedded\n    path: idx.db\n"
        "    outbox: {url_env: TEST_OUTBOX_URL}\n"
    )
    envs = {"TEST_OUTBOX_URL": url}
    slow, fast = connection(url), connection(url, autocommit=True)
    try:
        write(slow, "late", "x")
        write(fast, "early", "y")
        r = search_cli("search", "rebuild", "--catch-up", "--spec", spec, "--json", env=envs)
        assert r.code == 0 and r.json()["applied"] == 1 and r.json()["mode"] == "txid"
        slow.commit()
        r = search_cli("search", "check", "--spec", spec, env=envs)
        assert r.code == 1 and "1 change(s) pending (txid tracking)" in r.out
        r = search_cli("search", "rebuild", "--catch-up", "--spec", spec, "--json", env=envs)
        assert r.code == 0 and r.json()["applied"] == 1 and r.json()["check"]["ok"]
        assert r.json()["count"] == 2
    finally:
        slow.close()
        fast.close()
