"""`vigil search check` compares content, on a real PostgreSQL 15 outbox and the embedded (SQLite FTS5) engine.

The audit's observation: 5 deleted, 7 modified and 5 ghost documents (17 differences, counts
balanced, watermark equal) were reported "ok" by a check that compared counts and the watermark.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from vigil.search import EmbeddedEngine, SearchError, check_index, create_outbox_table, rebuild, repair_index
from vigil.search.content import leaf_of
from vigil.search.outbox import conninfo
from vigil.search.spec import CollectionSpec

SCHEMA = [{"name": "title", "type": "string"}, {"name": "price", "type": "float"}]
PRODUCTS = CollectionSpec(name="products", fields=SCHEMA)


@pytest.fixture
def db(pg_db_url: str):
    conn = psycopg.connect(conninfo(pg_db_url), autocommit=True)
    create_outbox_table(conn)
    conn.execute("CREATE TABLE products (id text PRIMARY KEY, title text NOT NULL, price float NOT NULL, deleted_at timestamptz)")
    yield conn
    conn.close()


def put(conn, key: str, doc: dict | None) -> None:
    """The platform's write: the entity and its outbox row in one transaction."""
    with conn.transaction():
        if doc is None:
            conn.execute("UPDATE products SET deleted_at = now() WHERE id = %s", (key,))
            conn.execute("INSERT INTO search_outbox (collection, doc_id, op) VALUES ('products', %s, 'delete')", (key,))
        else:
            conn.execute(
                "INSERT INTO products (id, title, price) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE "
                "SET title = excluded.title, price = excluded.price, deleted_at = NULL",
                (key, doc["title"], doc["price"]),
            )
            conn.execute("INSERT INTO search_outbox (collection, doc_id, document) VALUES ('products', %s, %s)", (key, json.dumps(doc)))


def seed(conn, n: int) -> None:
    with conn.transaction():
        for i in range(1, n + 1):
            put(conn, f"p{i}", {"title": f"shoe {i}", "price": float(i)})


@pytest.fixture
def eng(tmp_path: Path):
    e = EmbeddedEngine(tmp_path / "index.db")
    yield e
    e.close()


def diverge(eng: EmbeddedEngine) -> tuple[list[str], list[str], list[str]]:
    """The audit's 17 differences, written straight into the index: counts stay balanced."""
    deleted = ["p3", "p14", "p27", "p40", "p77"]
    modified = ["p1", "p9", "p10", "p33", "p51", "p60", "p99"]
    ghosts = ["g1", "g2", "g3", "old-42", "zz"]
    assert eng.delete_documents("products", deleted) == 5
    eng.import_documents("products", [{**eng.get("products", k), "title": "tampered"} for k in modified[:6]]).raise_for_errors()
    eng.import_documents("products", [{**eng.get("products", "p99"), "price": 99.01}]).raise_for_errors()  # a 1-cent change
    eng.import_documents("products", [{"id": g, "title": "ghost", "price": 1.0} for g in ghosts]).raise_for_errors()
    return deleted, modified, ghosts


def test_a_balanced_divergence_is_found_and_every_id_named(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    seed(db, 100)
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS])
    assert check_index(eng, pg_db_url).ok
    deleted, modified, ghosts = diverge(eng)
    assert eng.count("products") == 100  # what the old check compared, with the watermark: both still equal

    chk = check_index(eng, pg_db_url, collections=[PRODUCTS])
    assert not chk.ok
    d = chk.diffs["products"]
    assert (d.missing, d.modified, d.ghost) == (sorted(deleted), sorted(modified), sorted(ghosts))
    assert chk.problems == [
        "products: 17 document(s) differ from the database (the latest outbox row of each key): "
        "5 missing (p14, p27, p3, p40, p77); 7 modified (p1, p10, p33, p51, p60, p9, p99); "
        "5 ghost (g1, g2, g3, old-42, zz)"
    ]
    assert (chk.index_count, chk.db_count, chk.index_watermark, chk.db_watermark, chk.pending) == (100, 100, 100, 100, 0)
    j = chk.to_dict()
    assert j["differences"]["products"]["modified"] == {"count": 7, "ids": sorted(modified), "truncated": False}
    assert j["difference_count"] == 17 and j["content"]["products"]["source"] == "outbox"


def test_repair_fixes_exactly_the_differing_ids_and_says_so(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    seed(db, 100)
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS])
    untouched = eng.get("products", "p2")
    deleted, modified, ghosts = diverge(eng)
    chk = check_index(eng, pg_db_url, collections=[PRODUCTS])
    rep = repair_index(eng, pg_db_url, chk, collections=[PRODUCTS])
    assert rep.ok and rep.upserted == {"products": sorted(deleted + modified)} and rep.deleted == {"products": sorted(ghosts)}
    assert rep.remaining == {"products": []}
    assert eng.get("products", "p9") == {"id": "p9", "title": "shoe 9", "price": 9.0}
    assert eng.get("products", "p99")["price"] == 99.0 and eng.get("products", "g1") is None
    assert eng.get("products", "p2") == untouched
    after = check_index(eng, pg_db_url, collections=[PRODUCTS])
    assert after.ok, after.problems
    assert (eng.get_watermark(), eng.count("products")) == (100, 100)  # a repair is not a catch-up


def test_only_the_differing_ranges_are_read_again(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    with db.transaction():
        db.execute(
            "INSERT INTO search_outbox (collection, doc_id, document) SELECT 'products', 'p' || g, "
            "jsonb_build_object('title', 'shoe ' || g, 'price', g) FROM generate_series(1, 20000) g"
        )
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS], batch_size=5000)
    chk = check_index(eng, pg_db_url)
    assert chk.ok and chk.content["products"]["ranges_compared"] == 1  # equal roots: nothing more is read
    eng.import_documents("products", [{"id": "p17", "title": "x", "price": 1}, {"id": "p18000", "title": "y", "price": 2}]).raise_for_errors()
    eng.delete_documents("products", ["p4242"])
    chk = check_index(eng, pg_db_url)
    c = chk.content["products"]
    assert (chk.diffs["products"].modified, chk.diffs["products"].missing) == (["p17", "p18000"], ["p4242"])
    assert c["depth"] == 3 and c["ranges_differing"] == 3 and c["ranges_compared"] < 200
    # the second pass read ~5 documents a differing leaf on each side, not 20,000
    assert c["reread"]["source"] < 60 and c["reread"]["index"] < 60
    assert c["documents"] == {"index": 19999, "source": 20000}


def test_ranges_are_the_same_in_postgresql(db) -> None:
    ids = ["p1", "Ünïcödé-Straße", "🙂 smile", "x" * 300]
    rows = db.execute("SELECT k, left(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 5) FROM unnest(%s::text[]) k", (ids,)).fetchall()
    assert {k: leaf for k, leaf in rows} == {k: leaf_of(k, 5) for k in ids}


def test_documents_sql_compares_with_the_entity_tables(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    seed(db, 10)
    put(db, "p4", None)
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS])
    spec = CollectionSpec(
        name="products", fields=SCHEMA,
        documents_sql="SELECT id, jsonb_build_object('title', title, 'price', price) FROM products WHERE deleted_at IS NULL AND title NOT LIKE '%%secret%%'",
        count_sql="SELECT count(*) FROM products WHERE deleted_at IS NULL",
    )
    chk = check_index(eng, pg_db_url, collections=[spec])
    assert chk.ok, chk.problems
    assert chk.content["products"]["source"] == "documents_sql"
    # the table changed without an outbox row (a bug in the platform): the outbox says nothing, the tables do
    db.execute("UPDATE products SET price = 55 WHERE id = 'p5'")
    db.execute("INSERT INTO products (id, title, price) VALUES ('p11', 'no outbox row', 1)")
    chk = check_index(eng, pg_db_url, collections=[spec])
    assert (chk.diffs["products"].modified, chk.diffs["products"].missing) == (["p5"], ["p11"])
    assert "(documents_sql)" in chk.problems[-1]
    assert check_index(eng, pg_db_url, collections=[PRODUCTS]).ok  # the outbox's view agrees with the index
    rep = repair_index(eng, pg_db_url, chk, collections=[spec])
    assert rep.ok and eng.get("products", "p5")["price"] == 55
    assert check_index(eng, pg_db_url, collections=[spec]).diffs["products"].total == 0


def test_unreadable_source_rows_are_a_visible_no(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    seed(db, 3)
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS])
    db.execute("INSERT INTO search_outbox (collection, doc_id, op, document) VALUES ('products', 'p2', 'upsert', NULL)")
    eng.set_position(None)
    eng.set_watermark(4)  # as if applied: the check must still not say ok
    chk = check_index(eng, pg_db_url, collections=[PRODUCTS])
    assert not chk.ok and chk.content["products"]["unreadable"] == 1
    assert "1 key(s) whose source row cannot be read (p2: the latest outbox rows: no document (NULL))" in chk.problems[0]
    assert chk.diffs["products"].total == 0  # p2 is not called a ghost: nobody can tell what it should be
    dup = CollectionSpec(name="products", documents_sql="SELECT id, to_jsonb(p) - 'id' FROM products p UNION ALL SELECT 'p1', '{}'::jsonb")
    chk = check_index(eng, pg_db_url, collections=[dup])
    assert not chk.ok and "documents_sql returned this id twice" in chk.problems[0]


def test_database_errors_during_the_check(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    seed(db, 2)
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS])
    bad = CollectionSpec(name="products", documents_sql="SELECT id, nope FROM products")
    with pytest.raises(SearchError, match=r"documents_sql of collection 'products' failed on .*column \"nope\" does not exist") as ei:
        check_index(eng, pg_db_url, collections=[bad])
    assert "documents_sql" in ei.value.hint and ei.value.exit_code == 3
    sneaky = CollectionSpec(name="products", documents_sql="WITH d AS (DELETE FROM products RETURNING id, title) SELECT id, to_jsonb(title) FROM d")
    with pytest.raises(SearchError, match="data-modifying statement"):
        check_index(eng, pg_db_url, collections=[sneaky])
    writer = CollectionSpec(name="products", documents_sql="SELECT id, to_jsonb(nextval('search_outbox_id_seq')) FROM products")
    with pytest.raises(SearchError, match="read-only transaction"):
        check_index(eng, pg_db_url, collections=[writer])
    assert db.execute("SELECT count(*) FROM products").fetchone()[0] == 2
    assert db.execute("SELECT last_value FROM search_outbox_id_seq").fetchone()[0] == 2
    from pgcluster import free_port

    with pytest.raises(SearchError, match="cannot connect to the outbox database") as ei:
        check_index(eng, f"postgresql://postgres:pw@127.0.0.1:{free_port()}/x")
    assert "pw" not in ei.value.message


class LaggingRead(EmbeddedEngine):
    """The index as a live indexer leaves it: the full export was read just before p2 was updated."""

    def export_raw(self, collection):
        for line in super().export_raw(collection):
            doc = json.loads(line)
            yield json.dumps({**doc, "title": "the old title"}).encode() if doc["id"] == "p2" else line


def test_a_difference_that_settles_while_the_check_runs_is_not_reported(db, pg_db_url: str, tmp_path: Path) -> None:
    seed(db, 5)
    with LaggingRead(tmp_path / "i.db") as e:
        rebuild(e, None, pg_db_url, collections=[PRODUCTS])
        chk = check_index(e, pg_db_url)
        assert chk.ok, chk.problems
        assert chk.content["products"]["settled"] == 1 and chk.content["products"]["ranges_differing"] == 1


def test_missing_collection_is_repaired_by_creating_it(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    seed(db, 4)
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS])
    eng.delete("products")
    chk = check_index(eng, pg_db_url, collections=[PRODUCTS])
    assert chk.diffs["products"].missing == ["p1", "p2", "p3", "p4"]
    rep = repair_index(eng, pg_db_url, chk, collections=[PRODUCTS])
    assert rep.created == ["products"] and eng.schema("products")["fields"] == SCHEMA
    assert check_index(eng, pg_db_url, collections=[PRODUCTS]).ok


def test_refused_repairs_are_reported(db, pg_db_url: str, eng: EmbeddedEngine) -> None:
    seed(db, 3)
    rebuild(eng, None, pg_db_url, collections=[PRODUCTS])
    eng.delete_documents("products", ["p2"])
    db.execute("UPDATE search_outbox SET document = '{\"title\": \"no price\"}' WHERE doc_id = 'p2'")  # the schema refuses it
    chk = check_index(eng, pg_db_url, collections=[PRODUCTS])
    assert chk.diffs["products"].missing == ["p2"]
    rep = repair_index(eng, pg_db_url, chk, collections=[PRODUCTS])
    assert not rep.ok and rep.remaining == {"products": ["p2"]}
    assert rep.refused == [{"collection": "products", "doc_id": "p2",
                            "error": "Field `price` has been declared in the schema, but is not found in the document."}]


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def search_cli(cli):
    from vigil.cli.main import cli as root
    from vigil.cli.search import search_group

    if "search" not in root.commands:
        root.add_command(search_group)
    return cli


def test_cli_check_names_the_ids_and_repairs_them(db, pg_db_url: str, tmp_path: Path, search_cli) -> None:
    spec = tmp_path / "vigil.yaml"
    spec.write_text(
        "version: 1\nservices: {search: {}}\nbackups:\n  search:\n    engine: embedded\n    path: idx.db\n"
        "    collections:\n      - name: products\n        fields: [{name: title, type: string}, {name: price, type: float}]\n"
        "    outbox: {url_env: TEST_OUTBOX_URL}\n"
    )
    envs = {"TEST_OUTBOX_URL": pg_db_url}
    seed(db, 100)
    assert search_cli("search", "rebuild", "--snapshot", "none", "--spec", spec, env=envs).code == 0
    with EmbeddedEngine(tmp_path / "idx.db") as e:
        deleted, modified, ghosts = diverge(e)
    r = search_cli("search", "check", "--spec", spec, env=envs)
    assert r.code == 1
    assert "FAILED: index 100 / database 100 documents, watermark 100 / 100, 0 change(s) pending (txid tracking)" in r.out
    assert "products: index 100, database 100 (outbox); 17 differ: 5 missing, 7 modified, 5 ghost" in r.out
    assert "5 ghost (g1, g2, g3, old-42, zz)" in r.out
    r = search_cli("search", "check", "--repair", "--spec", spec, "--json", env=envs)
    assert r.code == 0, r.out
    d = r.json()
    assert not d["ok"] and d["difference_count"] == 17
    assert d["repair"]["upserted"]["products"]["ids"] == sorted(deleted + modified)
    assert d["repair"]["deleted"]["products"]["ids"] == sorted(ghosts) and d["repair"]["ok"]
    assert d["after_repair"]["ok"] and d["after_repair"]["difference_count"] == 0
    r = search_cli("search", "check", "--repair", "--spec", spec, env=envs)
    assert r.code == 0 and "ok: index 100" in r.out and "nothing to repair" in r.out
    with EmbeddedEngine(tmp_path / "idx.db") as e:
        e.delete_documents("products", ["p5"])
    r = search_cli("search", "check", "--repair", "--spec", spec, env=envs)
    assert r.code == 0
    assert "repaired products: upserted 1 (1 missing, 0 modified): p5; deleted 0" in r.out
    assert "after repair: ok" in r.out
