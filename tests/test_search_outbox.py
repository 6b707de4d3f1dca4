"""Re-seed from a real PostgreSQL 15 outbox into the embedded engine; the check against the database."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from vigil.search import EmbeddedEngine, ImportFailed, SearchError, check_index, create_outbox_table, rebuild
from vigil.search.outbox import conninfo
from vigil.search.spec import CollectionSpec, OutboxSpec

SCHEMA = {"name": "products", "fields": [{"name": "title", "type": "string"}, {"name": "price", "type": "float"}]}


@pytest.fixture
def db(pg_db_url: str):
    conn = psycopg.connect(conninfo(pg_db_url), autocommit=True)
    create_outbox_table(conn)
    conn.execute("CREATE TABLE products (id text PRIMARY KEY, title text, price float, deleted_at timestamptz)")
    yield conn
    conn.close()


def put(conn, coll: str, key: str, doc: dict | None, op: str = "upsert") -> int:
    """What the platform does: change the entity and write the outbox row in one transaction."""
    with conn.transaction():
        if coll == "products":
            if op == "delete":
                conn.execute("UPDATE products SET deleted_at = now() WHERE id = %s", (key,))
            else:
                conn.execute(
                    "INSERT INTO products (id, title, price) VALUES (%s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET title = excluded.title, price = excluded.price, deleted_at = NULL",
                    (key, doc.get("title"), doc.get("price")),
                )
        return conn.execute(
            "INSERT INTO search_outbox (collection, doc_id, op, document) VALUES (%s, %s, %s, %s) RETURNING id",
            (coll, key, op, json.dumps(doc) if doc is not None else None),
        ).fetchone()[0]


@pytest.fixture
def eng(tmp_path: Path):
    e = EmbeddedEngine(tmp_path / "index.db")
    yield e
    e.close()


COUNT = CollectionSpec(name="products", count_sql="SELECT count(*) FROM products WHERE deleted_at IS NULL")


def test_rebuild_from_scratch_then_check(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    for i in range(1, 26):
        put(db, "products", f"p{i}", {"title": f"shoe {i}", "price": i})
    put(db, "products", "p3", None, "delete")
    put(db, "products", "p4", {"title": "boot 4 renamed", "price": 4.5})
    put(db, "articles", "a1", {"title": "How to tie laces"})
    seen: list[tuple[int, int]] = []
    res = rebuild(eng, None, pg_db_url, batch_size=10, progress=lambda n, wm: seen.append((n, wm)))
    assert (res.applied, res.batches, res.watermark, res.target_watermark) == (28, 3, 28, 28)
    assert res.counts == {"articles": 1, "products": 24} and res.count == 25
    assert res.upserts + res.deletes <= 28 and res.ok and not res.warnings
    assert seen == [(10, 10), (20, 20), (28, 28)]
    assert eng.get("products", "p4")["title"] == "boot 4 renamed" and eng.get("products", "p3") is None
    assert [d["id"] for d in eng.search("articles", "laces")] == ["a1"]
    chk = check_index(eng, pg_db_url, collections=[COUNT, "articles"])
    assert chk.ok, chk.problems
    assert (chk.index_count, chk.db_count, chk.index_watermark, chk.db_watermark) == (25, 25, 28, 28)
    assert chk.collections["products"] == {"index": 24, "db": 24, "source": "count_sql"}
    assert chk.collections["articles"]["source"] == "outbox"
    d = res.to_dict()
    assert {"count", "watermark", "seconds", "docs_per_second", "errors", "warnings"} <= set(d)


def test_rebuild_from_snapshot_replays_only_after_its_watermark(db, pg_db_url: str, eng: EmbeddedEngine, tmp_path: Path) -> None:
    for i in range(1, 11):
        put(db, "products", f"p{i}", {"title": f"shoe {i}", "price": i})
    rebuild(eng, None, pg_db_url)
    snap = eng.snapshot(tmp_path / "snap")
    assert snap.watermark == 10
    put(db, "products", "p1", None, "delete")
    put(db, "products", "p11", {"title": "new shoe", "price": 11})
    put(db, "products", "p2", {"title": "shoe 2 v2", "price": 2})
    # the index is lost; a fresh one is rebuilt from the snapshot plus the outbox since its watermark
    with EmbeddedEngine(tmp_path / "fresh.db") as fresh:
        res = rebuild(fresh, tmp_path / "snap", pg_db_url, collections=[COUNT])
        assert (res.restored, res.snapshot_watermark, res.applied, res.watermark) == (10, 10, 3, 13)
        assert res.snapshot == str(tmp_path / "snap")
        assert fresh.count("products") == 10 and fresh.get("products", "p1") is None
        assert fresh.get("products", "p2")["title"] == "shoe 2 v2"
        chk = check_index(fresh, pg_db_url, collections=[COUNT])
        assert chk.ok and (chk.index_count, chk.db_watermark) == (10, 13)


def test_catch_up_mode_continues_from_the_index_watermark(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    put(db, "products", "p1", {"title": "a", "price": 1})
    rebuild(eng, None, pg_db_url)
    put(db, "products", "p2", {"title": "b", "price": 2})
    res = rebuild(eng, None, pg_db_url, reset=False, collections=[])  # an empty list (the spec's default) means all
    assert (res.snapshot_watermark, res.applied, res.watermark, res.count) == (1, 1, 2, 2)
    res = rebuild(eng, None, pg_db_url, reset=False)  # nothing new: nothing to do
    assert (res.applied, res.batches, res.watermark) == (0, 0, 2)


def test_check_finds_a_stale_and_a_diverged_index(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    for i in range(1, 4):
        put(db, "products", f"p{i}", {"title": "x", "price": i})
    rebuild(eng, None, pg_db_url)
    put(db, "products", "p9", {"title": "y", "price": 9})
    eng.delete_documents("products", ["p1"])
    chk = check_index(eng, pg_db_url, collections=[COUNT])
    assert not chk.ok
    assert chk.problems == [
        "products: the index holds 2 documents, the database 4 live entities (count_sql); 2 missing",
        # the content check names the document the index lost; p9 is lag (pending), not divergence
        "products: 1 document(s) differ from the database (the latest outbox row of each key): 1 missing (p1)",
        "watermark 3 is behind the outbox's last id 4: 1 change(s) not applied",
    ]
    assert chk.diffs["products"].missing == ["p1"] and chk.pending_ids["products"] == ["p9"] and chk.pending == 1
    eng.set_watermark(99)
    assert "ahead of the outbox's last id 4" in check_index(eng, pg_db_url).problems[-1]
    chk = check_index(eng, pg_db_url, collections=["products", "articles"])
    assert chk.collections["articles"] == {"index": None, "db": 0, "source": "outbox"}


def test_refused_documents_stop_the_rebuild_at_the_last_good_batch(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    for i in range(1, 6):
        put(db, "products", f"p{i}", {"title": f"t{i}", "price": i})
    put(db, "products", "bad", {"price": 1})  # id 6: no title
    put(db, "products", "p7", {"title": "t7", "price": 7})
    db.execute("INSERT INTO search_outbox (collection, doc_id, op, document) VALUES ('products', 'nodoc', 'upsert', NULL)")  # id 8
    eng.create_collection(SCHEMA)
    with pytest.raises(ImportFailed, match=r"stopped at watermark 4: 2 document\(s\) refused.*outbox id 6 \(products/bad\).*`title`") as ei:
        rebuild(eng, None, pg_db_url, batch_size=4, reset=False)
    assert ei.value.exit_code == 3 and "max-errors" in ei.value.hint
    assert (eng.get_watermark(), eng.count("products")) == (4, 4)
    res = rebuild(eng, None, pg_db_url, batch_size=4, reset=False, max_errors=2)
    assert [(e["outbox_id"], e["doc_id"]) for e in res.errors] == [(6, "bad"), (8, "nodoc")]
    assert "NULL" in res.errors[1]["error"] and not res.ok
    assert (res.watermark, eng.count("products")) == (8, 6)


def test_custom_outbox_columns_and_collection_filter(pg_db_url: str, eng: EmbeddedEngine) -> None:
    ob = OutboxSpec(table="app.changes", watermark_column="seq", collection_column="kind", key_column="entity_id",
                    op_column="action", document_column="body", delete_ops=["delete", "purge"])
    with psycopg.connect(conninfo(pg_db_url), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app")
        create_outbox_table(conn, ob)
        rows = [("products", "1", "upsert", {"title": "a", "price": 1}), ("users", "u1", "upsert", {"name": "n"}),
                ("products", "2", "upsert", {"title": "b", "price": 2}), ("products", "1", "purge", None)]
        for k, e, a, b in rows:
            conn.execute("INSERT INTO app.changes (kind, entity_id, action, body) VALUES (%s, %s, %s, %s)",
                         (k, e, a, json.dumps(b) if b else None))
    spec = CollectionSpec(name="products", fields=[{"name": "title", "type": "string"}, {"name": "price", "type": "float"}])
    res = rebuild(eng, None, pg_db_url, outbox=ob, collections=[spec])
    assert eng.collections() == ["products"] and res.counts == {"products": 1}
    assert eng.schema("products")["fields"][0] == {"name": "title", "type": "string"}
    assert res.watermark == 4  # the users row is skipped, the watermark still covers it
    assert check_index(eng, pg_db_url, outbox=ob, collections=["products"]).ok


def test_snapshot_ahead_of_the_database_is_reported(db, pg_db_url: str, eng: EmbeddedEngine, tmp_path: Path) -> None:
    """The DR case: the search snapshot is newer than the recovered database."""
    for i in range(1, 4):
        put(db, "products", f"p{i}", {"title": "x", "price": i})
    rebuild(eng, None, pg_db_url)
    snap = eng.snapshot(tmp_path / "snap")
    db.execute("DELETE FROM search_outbox WHERE id = 3")  # the restore lost the last change
    db.execute("UPDATE products SET deleted_at = now() WHERE id = 'p3'")
    with EmbeddedEngine(tmp_path / "f.db") as fresh:
        res = rebuild(fresh, snap, pg_db_url)
        assert "ahead of the outbox's last id 2" in res.warnings[0]
        chk = check_index(fresh, pg_db_url, collections=[COUNT])
        assert not chk.ok and len(chk.problems) == 3  # count, content (p3 is a ghost) and watermark
        assert chk.diffs["products"].ghost == ["p3"]


def test_pruned_outbox_warns(db, pg_db_url: str, eng: EmbeddedEngine, tmp_path: Path) -> None:
    for i in range(1, 4):
        put(db, "products", f"p{i}", {"title": "x", "price": i})
    rebuild(eng, None, pg_db_url)
    snap = eng.snapshot(tmp_path / "snap")
    for i in range(4, 8):
        put(db, "products", f"p{i}", {"title": "x", "price": i})
    db.execute("DELETE FROM search_outbox WHERE id <= 5")
    res = rebuild(eng, snap, pg_db_url)
    assert "rows 4..5 may have been pruned" in res.warnings[0]


def test_database_errors_say_what_and_where(pg_db_url: str, eng: EmbeddedEngine, pg_cluster) -> None:
    with pytest.raises(SearchError, match=r"from search_outbox in .* failed: relation \"search_outbox\" does not exist") as ei:
        rebuild(eng, None, pg_db_url)
    assert "backups.search.outbox" in ei.value.hint
    with pytest.raises(SearchError, match="count_sql of collection 'products' failed"):
        with psycopg.connect(conninfo(pg_db_url), autocommit=True) as c:
            create_outbox_table(c)
        check_index(eng, pg_db_url, collections=[CollectionSpec(name="products", count_sql="SELECT count(*) FROM nope")])
    with pytest.raises(SearchError, match="did not return one integer"):
        check_index(eng, pg_db_url, collections=[CollectionSpec(name="products", count_sql="SELECT 'x'")])
    from pgcluster import free_port

    bad = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/x"
    with pytest.raises(SearchError, match="cannot connect to the outbox database") as ei:
        rebuild(eng, None, bad)
    assert "secret" not in ei.value.message and ei.value.exit_code == 3


def test_count_sql_runs_read_only(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    sneaky = CollectionSpec(name="products", count_sql="WITH d AS (DELETE FROM products RETURNING 1) SELECT count(*) FROM d")
    with pytest.raises(SearchError, match="read-only transaction"):
        check_index(eng, pg_db_url, collections=[sneaky])


# --- the CLI (vigil search ...) over the same real database ------------------------------------


@pytest.fixture
def search_cli(cli):
    """``vigil search`` registered in the root group (a no-op once vigil.cli.main registers it)."""
    from vigil.cli.main import cli as root
    from vigil.cli.search import search_group

    if "search" not in root.commands:
        root.add_command(search_group)
    return cli


def test_cli_snapshot_rebuild_check(db, pg_db_url: str, tmp_path: Path, search_cli) -> None:
    spec = tmp_path / "vigil.yaml"
    spec.write_text(
        "version: 1\nservices: {search: {}}\nbackups:\n  search:\n    engine: embedded\n    path: idx/search.db\n"
        "    collections:\n      - name: products\n"
        "        count_sql: SELECT count(*) FROM products WHERE deleted_at IS NULL\n"
        "    outbox: {url_env: TEST_OUTBOX_URL}\n"
    )
    envs = {"TEST_OUTBOX_URL": pg_db_url}
    for i in range(1, 6):
        put(db, "products", f"p{i}", {"title": f"t{i}", "price": i})
    r = search_cli("search", "rebuild", "--snapshot", "none", "--spec", spec, env=envs)
    assert r.code == 0, r.err
    assert "rebuilt: 5 documents, watermark 5" in r.out and "check: ok" in r.out
    r = search_cli("search", "snapshot", "--spec", spec, "--json", now="2026-11-03T02:30:00Z")
    assert r.code == 0 and r.json()["watermark"] == 5
    snap_dir = tmp_path / ".vigil" / "search-snapshots" / "20261103T023000Z"
    assert (snap_dir / "manifest.json").is_file()
    r = search_cli("search", "list", "--spec", spec, "--json")
    assert [s["created_at"] for s in r.json()["snapshots"]] == ["2026-11-03T02:30:00Z"]
    assert search_cli("search", "verify", snap_dir).code == 0
    put(db, "products", "p1", None, "delete")
    r = search_cli("search", "check", "--spec", spec)
    assert r.code == 1 and "watermark 5 is behind" in r.out
    (tmp_path / "idx" / "search.db").unlink()  # the index is lost
    r = search_cli("search", "rebuild", "--spec", spec, "--json", env=envs)
    assert r.code == 0, r.out
    d = r.json()
    assert (d["restored"], d["applied"], d["count"], d["watermark"], d["check"]["ok"]) == (5, 1, 4, 6, True)
    r = search_cli("search", "status", "--spec", spec, "--json")
    assert r.json() == {"engine": "embedded", "healthy": True, "collections": {"products": 4}, "watermark": 6}
    (snap_dir / "products.jsonl").write_text("tampered\n")
    r = search_cli("search", "verify", snap_dir)
    assert r.code == 1 and "SHA-256 mismatch" in r.out
    r = search_cli("search", "rebuild", "--spec", spec, env=envs)
    assert r.code == 3 and "SHA-256 mismatch" in r.err


def test_cli_errors(tmp_path: Path, search_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "vigil.yaml"
    spec.write_text("version: 1\nservices: {api: {}}\n")
    r = search_cli("search", "status", "--spec", spec)
    assert r.code == 2 and "no backups.search section" in r.err and "hint:" in r.err
    spec.write_text("version: 1\nservices: {api: {}}\nbackups: {search: {outbox: {url_env: NOPE_URL}}}\n")
    monkeypatch.delenv("NOPE_URL", raising=False)
    r = search_cli("search", "check", "--spec", spec)
    assert r.code == 2 and "$NOPE_URL is not set" in r.err
    r = search_cli("search", "rebuild", "--spec", spec, "--outbox-url", "postgresql://x@127.0.0.1:1/x")
    assert r.code == 2 and "no snapshot under" in r.err
