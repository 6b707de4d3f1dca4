"""The embedded search engine (SQLite FTS5): the real thing, on a temp file."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from vigil.errors import SpecError
from vigil.search import EmbeddedEngine, IndexSnapshotError, SearchEngine, SearchError, load_snapshot
from vigil.search.engine import Change, open_engine
from vigil.search.spec import SearchBackupSpec
from vigil.spec import parse_spec

PRODUCTS = {
    "name": "products",
    "fields": [
        {"name": "title", "type": "string"},
        {"name": "tags", "type": "string[]", "optional": True},
        {"name": "price", "type": "float"},
        {"name": "stock", "type": "int32", "optional": True},
        {"name": "brand.name", "type": "string", "optional": True},
    ],
}


@pytest.fixture
def eng(tmp_path: Path):
    e = EmbeddedEngine(tmp_path / "index.db")
    e.create_collection(PRODUCTS)
    yield e
    e.close()


def test_is_a_search_engine(eng: EmbeddedEngine) -> None:
    assert isinstance(eng, SearchEngine)
    assert eng.health() is True
    assert eng.collections() == ["products"]
    assert eng.schema("products")["fields"][0] == {"name": "title", "type": "string"}


def test_import_reports_every_refused_document(eng: EmbeddedEngine) -> None:
    res = eng.import_documents(
        "products",
        [
            {"id": "1", "title": "Red running shoe", "price": 79.5, "tags": ["footwear", "sport"]},
            {"id": "2", "title": "Blue hat", "price": "cheap"},
            {"id": "3", "price": 3},
            {"id": 4, "title": "numeric id", "price": 1},
            "not an object",
            {"id": "6", "title": "Wool scarf", "price": 12, "stock": 2**40},
            {"id": "7", "title": "Über Mütze", "price": 19, "brand": {"name": "Alpenwolle"}},
        ],
    )
    assert (res.total, res.succeeded) == (7, 2)
    assert not res.ok
    errs = {e.index: e.error for e in res.errors}
    assert errs == {
        1: "Field `price` must be a float.",
        2: "Field `title` has been declared in the schema, but is not found in the document.",
        3: "Document's `id` field should be a string.",
        4: "Bad JSON: not a JSON object.",
        5: "Field `stock` must be an int32.",
    }
    assert res.errors[0].doc_id == "2" and '"cheap"' in res.errors[0].document
    with pytest.raises(SearchError, match="5 of 7 documents were refused") as ei:
        res.raise_for_errors()
    assert len(ei.value.errors) == 5
    assert eng.count("products") == 2


def test_import_actions(eng: EmbeddedEngine) -> None:
    eng.import_documents("products", [{"id": "1", "title": "a", "price": 1}], action="create").raise_for_errors()
    r = eng.import_documents("products", [{"id": "1", "title": "b", "price": 2}], action="create")
    assert r.errors[0].error == "A document with id 1 already exists."
    r = eng.import_documents("products", [{"id": "1", "price": 5}, {"id": "9", "price": 1}], action="update")
    assert r.succeeded == 1 and r.errors[0].error == "Could not find a document with id: 9"
    assert eng.get("products", "1") == {"id": "1", "title": "a", "price": 5}
    eng.import_documents("products", [{"id": "1", "title": "c", "price": 7}], action="upsert").raise_for_errors()
    assert eng.get("products", "1") == {"id": "1", "title": "c", "price": 7}
    with pytest.raises(SearchError, match="unknown import action"):
        eng.import_documents("products", [], action="replace")


def test_search_matches_words_prefixes_fields_and_follows_updates(eng: EmbeddedEngine) -> None:
    eng.import_documents(
        "products",
        [
            {"id": "1", "title": "Red running shoe", "price": 79.5, "tags": ["footwear"]},
            {"id": "2", "title": "Blue hat", "price": 10, "tags": ["red-carpet"]},
            {"id": "3", "title": "Über Mütze", "price": 19, "brand": {"name": "Alpenwolle"}},
        ],
    ).raise_for_errors()
    ids = lambda hits: sorted(h["id"] for h in hits)  # noqa: E731
    assert ids(eng.search("products", "red")) == ["1", "2"]
    assert ids(eng.search("products", "red", query_by=["title"])) == ["1"]
    assert ids(eng.search("products", "foot")) == ["1"]  # prefix
    assert ids(eng.search("products", "uber mutze")) == ["3"]  # diacritics folded
    assert ids(eng.search("products", "alpen")) == ["3"]  # nested field brand.name
    assert ids(eng.search("products", "*", limit=2)) == ["1", "2"]
    assert eng.search("products", '"); DROP TABLE x; --') == []  # user text never reaches FTS syntax
    eng.import_documents("products", [{"id": "1", "title": "Green boot", "price": 1}]).raise_for_errors()
    assert ids(eng.search("products", "red")) == ["2"]
    assert ids(eng.search("products", "green")) == ["1"]
    assert eng.delete_documents("products", ["1", "nope"]) == 1
    assert eng.search("products", "green") == []
    with pytest.raises(SearchError, match="searchable string field"):
        eng.search("products", "x", query_by=["price"])


def test_wildcard_schema_indexes_every_string(tmp_path: Path) -> None:
    with EmbeddedEngine(tmp_path / "i.db") as e:
        e.create_collection({"name": "pages", "fields": [{"name": ".*", "type": "auto"}]})
        e.import_documents("pages", [{"id": "p1", "body": {"text": "hello world"}, "n": 3, "tags": ["alpha"]}]).raise_for_errors()
        assert [d["id"] for d in e.search("pages", "alpha")] == ["p1"]
        assert [d["id"] for d in e.search("pages", "hello")] == ["p1"]
        assert e.search("pages", "p1") == []  # the id is not text of the document


def test_collections_lifecycle_and_errors(eng: EmbeddedEngine) -> None:
    with pytest.raises(SearchError, match="already exists"):
        eng.create_collection(PRODUCTS)
    eng.create_collection(PRODUCTS, exist_ok=True)
    with pytest.raises(SearchError, match="no collection named 'nope'") as ei:
        eng.count("nope")
    assert "spec" in ei.value.hint
    eng.delete("nope", missing_ok=True)
    with pytest.raises(SearchError):
        eng.delete("nope")
    with pytest.raises(SearchError, match="collection name"):
        eng.create_collection({"name": "../etc", "fields": []})
    with pytest.raises(SearchError, match="list of"):
        eng.create_collection({"name": "x", "fields": "title"})
    eng.delete("products")
    assert eng.collections() == []


def test_apply_is_atomic_with_the_watermark(eng: EmbeddedEngine) -> None:
    assert eng.get_watermark() == 0
    r = eng.apply(
        [Change("products", "1", "upsert", {"title": "a", "price": 1}), Change("products", "2", "upsert", {"title": "b", "price": 2})],
        10,
    )
    assert (r.committed, r.upserts, eng.get_watermark(), eng.count("products")) == (True, 2, 10, 2)
    assert eng.get("products", "1")["id"] == "1"  # the outbox key becomes the document id
    # one bad document and max_errors=0: nothing of the batch is written, the watermark stays
    r = eng.apply([Change("products", "1", "delete"), Change("products", "3", "upsert", {"price": 1})], 20)
    assert not r.committed and r.errors[0].doc_id == "3"
    assert (eng.get_watermark(), eng.count("products")) == (10, 2)
    r = eng.apply([Change("products", "1", "delete"), Change("products", "3", "upsert", {"price": 1})], 20, max_errors=1)
    assert r.committed and (eng.get_watermark(), eng.count("products")) == (20, 1)


def test_apply_rolls_back_on_a_database_failure(eng: EmbeddedEngine, tmp_path: Path) -> None:
    eng.apply([Change("products", "1", "upsert", {"title": "a", "price": 1})], 5)
    other = sqlite3.connect(tmp_path / "index.db")
    other.execute("CREATE TRIGGER boom BEFORE DELETE ON docs_1 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    other.commit()
    other.close()
    with pytest.raises(SearchError, match="rolled back; the watermark did not move.*disk on fire"):
        eng.apply([Change("products", "2", "upsert", {"title": "b", "price": 1}), Change("products", "1", "delete")], 9)
    assert (eng.get_watermark(), eng.count("products")) == (5, 1)


def test_snapshot_is_consistent_verified_and_restorable(eng: EmbeddedEngine, tmp_path: Path) -> None:
    eng.apply([Change("products", str(i), "upsert", {"title": f"item {i}", "price": i}) for i in range(50)], 50)
    snap = eng.snapshot(tmp_path / "snap")
    assert (snap.engine, snap.watermark, snap.counts) == ("embedded", 50, {"products": 50})
    assert set(snap.checksums) == {"index.sqlite", "products.jsonl", "products.schema.json"}
    assert json.loads((tmp_path / "snap" / "manifest.json").read_text())["counts"] == {"products": 50}
    lines = (tmp_path / "snap" / "products.jsonl").read_text().splitlines()
    assert len(lines) == 50 and json.loads(lines[0]) == {"title": "item 0", "price": 0, "id": "0"}
    # later changes, then restore: back to the snapshot
    eng.apply([Change("products", "0", "delete"), Change("products", "x", "upsert", {"title": "new", "price": 1})], 60)
    loaded = load_snapshot(tmp_path / "snap")
    assert eng.restore(loaded) == 50
    assert (eng.get_watermark(), eng.count("products"), eng.get("products", "x")) == (50, 50, None)
    assert [d["id"] for d in eng.search("products", "item", limit=100)].__len__() == 50
    # another engine restores from the exports when it cannot take the SQLite file
    with EmbeddedEngine(tmp_path / "other.db") as other:
        from vigil.search.embedded import restore_from_exports

        assert restore_from_exports(other, loaded) == 50
        assert (other.get_watermark(), other.count("products")) == (50, 50)


def test_snapshot_refuses_corruption_and_unfinished_dirs(eng: EmbeddedEngine, tmp_path: Path) -> None:
    eng.import_documents("products", [{"id": "1", "title": "a", "price": 1}]).raise_for_errors()
    eng.snapshot(tmp_path / "s")
    with pytest.raises(Exception, match="not empty"):
        eng.snapshot(tmp_path / "s")
    p = tmp_path / "s" / "products.jsonl"
    p.write_text(p.read_text().replace('"a"', '"b"'))
    with pytest.raises(IndexSnapshotError, match="SHA-256 mismatch") as ei:
        load_snapshot(tmp_path / "s")
    assert "another" in ei.value.hint
    (tmp_path / "u").mkdir()
    with pytest.raises(IndexSnapshotError, match="no manifest.json; the snapshot is unfinished"):
        load_snapshot(tmp_path / "u")
    with pytest.raises(IndexSnapshotError, match="no such snapshot"):
        load_snapshot(tmp_path / "missing")


def test_snapshot_while_a_writer_runs(eng: EmbeddedEngine, tmp_path: Path) -> None:
    """The backup API copy is one instant: counts, export and watermark agree with each other."""
    stop = threading.Event()

    def writer() -> None:
        w = 1
        while not stop.is_set() and w < 5000:
            eng.apply([Change("products", str(w), "upsert", {"title": "t", "price": 1})], w)
            w += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        snaps = [eng.snapshot(tmp_path / f"s{i}") for i in range(3)]
    finally:
        stop.set()
        t.join()
    for s in snaps:
        lines = (s.path / "products.jsonl").read_text().splitlines()
        assert len(lines) == s.counts["products"] == s.watermark  # one document per applied batch


def test_open_engine_from_the_spec(tmp_path: Path) -> None:
    spec = SearchBackupSpec(engine="embedded", path="idx/search.db")
    e = open_engine(spec, base_dir=tmp_path)
    try:
        assert isinstance(e, EmbeddedEngine) and e.path == tmp_path / "idx" / "search.db"
    finally:
        e.close()


BASE = "version: 1\nservices: {api: {}}\n"


def test_spec_section_validates() -> None:
    s = parse_spec(
        BASE
        + """\
backups:
  search:
    engine: typesense
    url: https://search.internal:8108
    api_key_env: TS_KEY
    collections:
      - products
      - name: articles
        fields: [{name: title, type: string}, {name: year, type: int32, facet: true}]
        count_sql: "SELECT count(*) FROM articles WHERE deleted_at IS NULL;"
    schedule: nightly 02:30 UTC
    outbox: {table: app.search_outbox, key_column: entity_id, delete_ops: [delete, purge]}
"""
    )
    sb = s.backups.search
    assert [c.name for c in sb.collections] == ["products", "articles"]
    assert sb.collection("articles").typesense_schema() == {
        "name": "articles",
        "fields": [{"name": "title", "type": "string"}, {"name": "year", "type": "int32", "facet": True}],
    }
    assert sb.collection("products").typesense_schema()["fields"] == [{"name": ".*", "type": "auto"}]
    assert sb.collection("articles").count_sql.endswith("IS NULL")
    assert sb.outbox.table == "app.search_outbox" and sb.outbox.delete_ops == ["delete", "purge"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("engine: typesense", "needs `url`"),
        ("engine: typesense\n    url: http://x:8108\n    api_key: abc", "never put a secret in the spec"),
        ("engine: typesense\n    url: http://169.254.169.254/latest", "link-local"),
        ("engine: typesense\n    url: 'http://[fd00:ec2::254]/'", "metadata"),
        ("engine: typesense\n    url: ftp://x", "http:// or https://"),
        ("engine: typesense\n    url: http://user:pw@x:8108", "no credentials in the URL"),
        ("outbox: {table: 'outbox; drop table x'}", "not a plain SQL identifier"),
        ("collections: [{name: a, count_sql: 'DELETE FROM a'}]", "one SELECT"),
        ("collections: [a, a]", "listed twice"),
        ("collections: [{name: a, fields: [{name: t, type: text}]}]", "unknown field type"),
        ("engin: embedded", "engin"),
    ],
)
def test_spec_section_errors(body: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as ei:
        parse_spec(BASE + "backups:\n  search:\n    " + body + "\n")
    assert all(i.line for i in ei.value.issues)


def test_spec_allows_link_local_only_when_told() -> None:
    s = parse_spec(BASE + "backups:\n  search:\n    engine: typesense\n    url: http://169.254.10.10:8108\n    allow_link_local: true\n")
    assert s.backups.search.allow_link_local
