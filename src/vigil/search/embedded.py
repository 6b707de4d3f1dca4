"""The embedded search engine: one SQLite file, one table and one FTS5 index per collection.

Made for running vigil locally (and for the DR drill and the rebuild benchmark on a machine without
Typesense). It speaks the same :class:`~vigil.search.engine.SearchEngine` protocol and takes
Typesense collection schemas:

* ``vigil_collections`` lists the collections: their schema (JSON) and which fields are full-text
  indexed. Each collection has a table ``docs_<cid>`` (``id`` text, ``doc`` JSON) and an FTS5
  table ``fts_<cid>`` kept in step by triggers, so a write through any SQLite client keeps the
  index right. ``string``, ``string[]`` and ``string*`` fields are searchable; a wildcard field
  (``.*``) or a schema without string fields indexes every string value of the document.
* ``vigil_meta`` holds the watermark (the id of the last outbox change applied). :meth:`apply`
  writes a batch of changes and the new watermark in one transaction: a crash leaves the index at
  the previous batch, never between.
* Documents are validated against the schema the way Typesense does (declared fields present unless
  ``optional``, types), and refusals are reported per document with Typesense's wording.
* :meth:`snapshot` copies the database with SQLite's online backup API (consistent while writers
  run), then reads schemas, exports, counts and the watermark from that copy, so every file of
  the snapshot describes the same instant.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from vigil.search.engine import (
    Change,
    ChangesApplyResult,
    DocumentError,
    DocumentImportResult,
    IndexSnapshot,
    IndexSnapshotError,
    SearchError,
    SnapshotWriter,
    prepare_snapshot_dir,
    strip_runtime_fields,
)
from vigil.search.spec import check_collection_name

SNAPSHOT_DB = "index.sqlite"
_REGEX_CHARS = re.compile(r"[*+?\[\](){}^$|\\]")
_BAD_FIELD_CHARS = re.compile(r"[\"'`\x00-\x1f]")
_TEXT_TYPES = ("string", "string[]", "string*")
_CHUNK = 5000
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
ACTIONS = ("create", "upsert", "update", "emplace")


def _now() -> datetime:
    from vigil.clock import SystemClock

    return SystemClock().now()


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _json_path(name: str) -> str:
    return "$." + ".".join(f'"{p}"' for p in name.split("."))


def _lookup(doc: dict[str, Any], name: str) -> tuple[bool, Any]:
    """A field's value by its (possibly dotted, nested) name: (present, value)."""
    if name in doc:
        return True, doc[name]
    cur: Any = doc
    for part in name.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _type_ok(t: str, v: Any) -> bool:
    def is_int(x: Any, lo_hi: tuple[int, int]) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and lo_hi[0] <= x <= lo_hi[1]

    def is_float(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    scalar = {
        "string": lambda x: isinstance(x, str),
        "int32": lambda x: is_int(x, _INT32),
        "int64": lambda x: is_int(x, _INT64),
        "float": is_float,
        "bool": lambda x: isinstance(x, bool),
        "object": lambda x: isinstance(x, dict),
        "geopoint": lambda x: isinstance(x, list) and len(x) == 2 and all(is_float(i) for i in x),
    }
    if t in ("auto", "image"):
        return True
    if t == "string*":
        return isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
    if t.endswith("[]"):
        inner = scalar.get(t[:-2])
        return isinstance(v, list) and inner is not None and all(inner(i) for i in v)
    check = scalar.get(t)
    return check is not None and check(v)


def _type_words(t: str) -> str:
    if t.endswith("[]"):
        return f"an array of {t[:-2]}"
    return {"int32": "an int32", "int64": "an int64", "object": "an object", "geopoint": "a geopoint"}.get(t, f"a {t}")


class _Collection:
    __slots__ = ("cid", "name", "schema", "fields", "docs", "fts")

    def __init__(self, cid: int, name: str, schema: dict[str, Any]) -> None:
        self.cid = cid
        self.name = name
        self.schema = schema
        self.docs = f"docs_{cid}"
        self.fts = f"fts_{cid}"
        # declared (non-regex) fields: (name, type, optional)
        self.fields = [
            (f["name"], f["type"], bool(f.get("optional")))
            for f in schema.get("fields", [])
            if not _REGEX_CHARS.search(f["name"]) and f["type"] not in ("auto",)
        ]

    def validate(self, doc: Any) -> str | None:
        """Typesense's reason for refusing ``doc``, or None."""
        if not isinstance(doc, dict):
            return "Bad JSON: not a JSON object."
        if "id" in doc and not isinstance(doc["id"], str):
            return "Document's `id` field should be a string."
        if doc.get("id") == "":
            return "The `id` should not be empty."
        for name, t, optional in self.fields:
            present, v = _lookup(doc, name)
            if not present or v is None:
                if optional:
                    continue
                return f"Field `{name}` has been declared in the schema, but is not found in the document."
            if not _type_ok(t, v):
                return f"Field `{name}` must be {_type_words(t)}."
        return None


def _validate_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise SearchError("a collection schema must be a JSON object", hint="pass {'name': ..., 'fields': [...]}")
    name = schema.get("name")
    if not isinstance(name, str):
        raise SearchError("the collection schema has no `name`", hint="add a name to the schema")
    try:
        check_collection_name(name)
    except ValueError as e:
        raise SearchError(str(e)) from None
    fields = schema.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("type"), str) for f in fields):
        raise SearchError(f"{name}: `fields` must be a list of {{name, type}} objects")
    for f in fields:
        if _BAD_FIELD_CHARS.search(f["name"]) or not f["name"]:
            raise SearchError(f"{name}: field name {f['name']!r} is not supported by the embedded engine (quotes or control characters)")
    return strip_runtime_fields(schema)


def _fts_plan(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(FTS column, SQL expression over ``new.doc``) for each full-text indexed field."""
    plan: list[tuple[str, str]] = []
    wildcard = False
    for f in schema.get("fields", []):
        if f.get("index") is False:
            continue
        name, t = f["name"], f["type"]
        if _REGEX_CHARS.search(name):
            if t in ("auto", "string", "string*", "string[]"):
                wildcard = True
            continue
        if t in _TEXT_TYPES:
            plan.append((f"c{len(plan)}", f"json_extract(new.doc, '{_json_path(name)}')"))
    if wildcard or not plan:
        plan.append(
            ("_all", "(SELECT group_concat(value, ' ') FROM json_tree(new.doc) WHERE type = 'text' AND key IS NOT 'id')")
        )
    return plan


class EmbeddedEngine:
    """A search index in one SQLite file. Thread-safe (one connection behind a lock)."""

    kind = "embedded"

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._cache: dict[str, _Collection] = {}
        try:
            if read_only:
                self._conn = sqlite3.connect(f"file:{self.path}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
                self._setup()
        except sqlite3.Error as e:
            raise SearchError(f"{self.path}: cannot open the search index: {e}", hint="check the path and its permissions") from None
        except OSError as e:
            raise SearchError(f"{self.path}: cannot create the search index: {e.strerror}", hint="check the path and its permissions") from None

    def _setup(self) -> None:
        c = self._conn
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA recursive_triggers=OFF")
        c.execute("PRAGMA temp_store=MEMORY")
        c.execute("PRAGMA cache_size=-65536")
        c.execute("CREATE TABLE IF NOT EXISTS vigil_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        c.execute(
            "CREATE TABLE IF NOT EXISTS vigil_collections ("
            " cid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, schema TEXT NOT NULL, fts_columns TEXT NOT NULL)"
        )
        try:
            c.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vigil_fts_probe USING fts5(x)")
            c.execute("DROP TABLE temp.vigil_fts_probe")
        except sqlite3.OperationalError:
            raise SearchError(
                "this Python's SQLite has no FTS5", hint="use a Python built with SQLite FTS5 (Debian's and python.org's have it)"
            ) from None

    # -- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "EmbeddedEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _err(self, what: str, e: sqlite3.Error) -> SearchError:
        return SearchError(f"{self.path}: {what}: {e}", hint="is the disk full or the file damaged? `vigil search check` compares the index with the database")

    def _coll(self, name: str) -> _Collection:
        c = self._cache.get(name)
        if c is not None:
            return c
        row = self._conn.execute("SELECT cid, schema FROM vigil_collections WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise SearchError(
                f"{self.path}: no collection named {name!r}",
                hint="create it (a snapshot restore or a rebuild does), or check the name in the spec",
            )
        c = _Collection(row[0], name, json.loads(row[1]))
        self._cache[name] = c
        return c

    def health(self) -> bool:
        with self._lock:
            try:
                return self._conn.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
            except sqlite3.Error as e:
                raise self._err("health check failed", e) from None

    # -- collections --------------------------------------------------------------------------

    def collections(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT name FROM vigil_collections ORDER BY name")]

    def create_collection(self, schema: dict[str, Any], *, exist_ok: bool = False) -> None:
        schema = _validate_schema(schema)
        name = schema["name"]
        plan = _fts_plan(schema)
        with self._lock:
            c = self._conn
            if c.execute("SELECT 1 FROM vigil_collections WHERE name = ?", (name,)).fetchone():
                if exist_ok:
                    return
                raise SearchError(f"A collection with name `{name}` already exists.", hint="delete it first, or restore over it")
            try:
                c.execute("BEGIN IMMEDIATE")
                cur = c.execute(
                    "INSERT INTO vigil_collections (name, schema, fts_columns) VALUES (?, ?, ?)",
                    (name, _dumps(schema), _dumps([p[0] for p in plan])),
                )
                cid = cur.lastrowid
                docs, fts = f"docs_{cid}", f"fts_{cid}"
                cols = ", ".join(p[0] for p in plan)
                vals = ", ".join(p[1] for p in plan)
                c.execute(f"CREATE TABLE {docs} (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)")
                c.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, tokenize = 'unicode61 remove_diacritics 2')")
                c.execute(f"CREATE TRIGGER {docs}_ai AFTER INSERT ON {docs} BEGIN INSERT INTO {fts} (rowid, {cols}) VALUES (new.rowid, {vals}); END")
                c.execute(f"CREATE TRIGGER {docs}_ad AFTER DELETE ON {docs} BEGIN DELETE FROM {fts} WHERE rowid = old.rowid; END")
                c.execute(
                    f"CREATE TRIGGER {docs}_au AFTER UPDATE OF doc ON {docs} WHEN old.doc IS NOT new.doc BEGIN "
                    f"DELETE FROM {fts} WHERE rowid = old.rowid; INSERT INTO {fts} (rowid, {cols}) VALUES (new.rowid, {vals}); END"
                )
                c.execute("COMMIT")
            except sqlite3.Error as e:
                c.execute("ROLLBACK")
                raise self._err(f"cannot create collection {name!r}", e) from None

    def schema(self, collection: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._coll(collection).schema)

    def count(self, collection: str) -> int:
        with self._lock:
            c = self._coll(collection)
            return self._conn.execute(f"SELECT count(*) FROM {c.docs}").fetchone()[0]

    def delete(self, collection: str, *, missing_ok: bool = False) -> None:
        with self._lock:
            try:
                c = self._coll(collection)
            except SearchError:
                if missing_ok:
                    return
                raise
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(f"DROP TABLE {c.docs}")
                self._conn.execute(f"DROP TABLE {c.fts}")
                self._conn.execute("DELETE FROM vigil_collections WHERE cid = ?", (c.cid,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as e:
                self._conn.execute("ROLLBACK")
                raise self._err(f"cannot delete collection {collection!r}", e) from None
            finally:
                self._cache.pop(collection, None)

    # -- documents ----------------------------------------------------------------------------

    def import_documents(self, collection: str, docs: Iterable[dict[str, Any]], *, action: str = "upsert") -> DocumentImportResult:
        if action not in ACTIONS:
            raise SearchError(f"unknown import action {action!r}; one of {', '.join(ACTIONS)}")
        res = DocumentImportResult(collection)
        with self._lock:
            c = self._coll(collection)
            chunk: list[Any] = []
            for d in docs:
                chunk.append(d)
                if len(chunk) >= _CHUNK:
                    self._import_chunk(c, chunk, action, res)
                    chunk = []
            if chunk:
                self._import_chunk(c, chunk, action, res)
        return res

    def _import_chunk(self, c: _Collection, chunk: list[Any], action: str, res: DocumentImportResult) -> None:
        base = res.total
        res.total += len(chunk)
        conn = self._conn
        existing: dict[str, dict[str, Any]] = {}
        if action != "upsert":
            ids = [d["id"] for d in chunk if isinstance(d, dict) and isinstance(d.get("id"), str)]
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                q = f"SELECT id, doc FROM {c.docs} WHERE id IN ({','.join('?' * len(part))})"
                for k, v in conn.execute(q, part):
                    existing[k] = json.loads(v)
        rows: list[tuple[str, str]] = []
        for i, d in enumerate(chunk):
            if isinstance(d, dict) and "id" not in d and action in ("create", "upsert", "emplace"):
                d = {**d, "id": uuid.uuid4().hex}
            did = d.get("id") if isinstance(d, dict) else None
            if action in ("update", "emplace") and isinstance(did, str) and did in existing:
                d = {**existing[did], **d}
            elif action == "update" and isinstance(d, dict):
                res.errors.append(DocumentError(c.name, base + i, did, f"Could not find a document with id: {did}", _clip(d)))
                continue
            elif action == "create" and isinstance(did, str) and did in existing:
                res.errors.append(DocumentError(c.name, base + i, did, f"A document with id {did} already exists.", _clip(d)))
                continue
            why = c.validate(d)
            if why:
                res.errors.append(DocumentError(c.name, base + i, did if isinstance(did, str) else None, why, _clip(d)))
                continue
            assert isinstance(did, str)  # every action but update gave the document an id; update refused one without
            rows.append((did, _dumps(d)))
            if action in ("create", "emplace", "update"):
                existing[did] = d
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO {c.docs} (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc", rows
            )
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            conn.execute("ROLLBACK")
            raise self._err(f"import into {c.name!r} failed", e) from None
        res.succeeded += len(rows)

    def delete_documents(self, collection: str, ids: Sequence[str]) -> int:
        with self._lock:
            c = self._coll(collection)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                n = 0
                for i in range(0, len(ids), 500):
                    part = list(ids[i : i + 500])
                    n += self._conn.execute(
                        f"DELETE FROM {c.docs} WHERE id IN ({','.join('?' * len(part))}) RETURNING 1", part
                    ).fetchall().__len__()
                self._conn.execute("COMMIT")
            except sqlite3.Error as e:
                self._conn.execute("ROLLBACK")
                raise self._err(f"delete from {collection!r} failed", e) from None
        return n

    def export(self, collection: str) -> Iterator[dict[str, Any]]:
        for raw in self.export_raw(collection):
            yield json.loads(raw)

    def export_raw(self, collection: str) -> Iterator[bytes]:
        """The collection's documents as JSON bytes, one per document, in insertion order."""
        with self._lock:
            c = self._coll(collection)
            last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT rowid, doc FROM {c.docs} WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, _CHUNK)
                ).fetchall()
            if not rows:
                return
            for _rid, doc in rows:
                yield doc.encode()
            last = rows[-1][0]

    def export_ids(self, collection: str) -> Iterator[str]:
        """The collection's document ids, streamed in chunks (the lock is not held between chunks)."""
        with self._lock:
            c = self._coll(collection)
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT rowid, id FROM {c.docs} WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, _CHUNK * 4)
                ).fetchall()
            if not rows:
                return
            for _rid, did in rows:
                yield did
            last = rows[-1][0]

    def get_many(self, collection: str, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The documents with these ids that exist, 500 ids a query."""
        with self._lock:
            c = self._coll(collection)
        ids = list(ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            with self._lock:
                rows = self._conn.execute(f"SELECT doc FROM {c.docs} WHERE id IN ({','.join('?' * len(part))})", part).fetchall()
            for (doc,) in rows:
                yield json.loads(doc)

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            c = self._coll(collection)
            row = self._conn.execute(f"SELECT doc FROM {c.docs} WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def search(self, collection: str, q: str, *, query_by: Sequence[str] | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """Full-text search: every word must match (as a prefix), best matches first (BM25)."""
        with self._lock:
            c = self._coll(collection)
            if q.strip() in ("", "*"):
                rows = self._conn.execute(f"SELECT doc FROM {c.docs} ORDER BY rowid LIMIT ?", (limit,)).fetchall()
                return [json.loads(r[0]) for r in rows]
            words = re.findall(r"\w+", q, re.UNICODE)
            if not words:
                return []
            match = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
            if query_by:
                cols = json.loads(self._conn.execute("SELECT fts_columns FROM vigil_collections WHERE cid = ?", (c.cid,)).fetchone()[0])
                names = [f["name"] for f in c.schema.get("fields", []) if f.get("index") is not False and not _REGEX_CHARS.search(f["name"]) and f["type"] in _TEXT_TYPES]
                picked = [cols[names.index(n)] for n in query_by if n in names]
                if not picked:
                    raise SearchError(f"{collection}: none of {list(query_by)} is a searchable string field", hint=f"searchable fields: {', '.join(names) or '(all text)'}")
                match = "{" + " ".join(picked) + "} : (" + match + ")"
            try:
                rows = self._conn.execute(
                    f"SELECT d.doc FROM {c.fts} JOIN {c.docs} d ON d.rowid = {c.fts}.rowid WHERE {c.fts} MATCH ? ORDER BY rank LIMIT ?",
                    (match, limit),
                ).fetchall()
            except sqlite3.Error as e:
                raise self._err(f"search in {collection!r} failed", e) from None
        return [json.loads(r[0]) for r in rows]

    # -- watermark and outbox batches ----------------------------------------------------------

    def get_watermark(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM vigil_meta WHERE key = 'watermark'").fetchone()
        return int(row[0]) if row else 0

    def set_watermark(self, watermark: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO vigil_meta (key, value) VALUES ('watermark', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(int(watermark)),),
            )

    def get_position(self) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM vigil_meta WHERE key = 'position'").fetchone()
        return row[0] if row else None

    def set_position(self, position: str | None) -> None:
        with self._lock:
            if position is None:
                self._conn.execute("DELETE FROM vigil_meta WHERE key = 'position'")
            else:
                self._conn.execute(
                    "INSERT INTO vigil_meta (key, value) VALUES ('position', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (position,),
                )

    def apply(
        self, changes: Sequence[Change], watermark: int, *, max_errors: int = 0, position: str | None = None
    ) -> ChangesApplyResult:
        """Apply a batch and set the watermark (and the position, when given) in ONE transaction.

        Documents the schema refuses are reported in ``errors``; when there are more than
        ``max_errors`` of them nothing of the batch is written and the watermark stays.
        """
        res = ChangesApplyResult()
        by_coll: dict[str, tuple[list[tuple[str, str]], list[tuple[str]]]] = {}
        with self._lock:
            for i, ch in enumerate(changes):
                c = self._coll(ch.collection)
                ups, dels = by_coll.setdefault(ch.collection, ([], []))
                if ch.op == "delete":
                    dels.append((ch.doc_id,))
                    continue
                doc = ch.document
                if isinstance(doc, dict) and doc.get("id") != ch.doc_id:
                    doc = {**doc, "id": ch.doc_id}
                why = c.validate(doc)
                if why:
                    res.errors.append(DocumentError(ch.collection, i, ch.doc_id, why, _clip(doc)))
                    continue
                ups.append((ch.doc_id, _dumps(doc)))
            if len(res.errors) > max_errors:
                res.committed = False
                return res
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                for name, (ups, dels) in by_coll.items():
                    c = self._coll(name)
                    if ups:
                        conn.executemany(
                            f"INSERT INTO {c.docs} (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc", ups
                        )
                    if dels:
                        conn.executemany(f"DELETE FROM {c.docs} WHERE id = ?", dels)
                    res.upserts += len(ups)
                    res.deletes += len(dels)
                conn.execute(
                    "INSERT INTO vigil_meta (key, value) VALUES ('watermark', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(int(watermark)),),
                )
                if position is not None:
                    conn.execute(
                        "INSERT INTO vigil_meta (key, value) VALUES ('position', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (position,),
                    )
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                conn.execute("ROLLBACK")
                raise self._err("applying an outbox batch failed (rolled back; the watermark did not move)", e) from None
        res.committed = True
        return res

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot(self, directory: str | Path, *, created_at: datetime | None = None) -> IndexSnapshot:
        d = prepare_snapshot_dir(directory)
        dst_path = d / SNAPSHOT_DB
        try:
            dst = sqlite3.connect(str(dst_path))
            with self._lock:
                self._conn.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.close()
        except sqlite3.Error as e:
            raise self._err(f"snapshot into {d} failed", e) from None
        w = SnapshotWriter(d)
        copy = EmbeddedEngine(dst_path, read_only=True)
        try:
            watermark = copy.get_watermark()
            position = copy.get_position()
            for name in copy.collections():
                w.write_schema(name, copy.schema(name))
                w.write_export(name, copy.export_raw(name))
        finally:
            copy.close()
        w.add_file(SNAPSHOT_DB)
        return w.finish(engine=self.kind, created_at=created_at or _now(), watermark=watermark, position=position)

    def restore(self, snapshot: IndexSnapshot) -> int:
        """Restore a snapshot. An embedded snapshot replaces the whole index file (SQLite backup
        API); any other engine's snapshot is re-imported from its schemas and JSONL exports."""
        if snapshot.engine == self.kind and SNAPSHOT_DB in snapshot.checksums:
            src_path = snapshot.path / SNAPSHOT_DB
            with self._lock:
                try:
                    src = sqlite3.connect(f"file:{src_path}?immutable=1", uri=True)
                    src.backup(self._conn)
                    src.close()
                    self._cache.clear()
                    self._setup()
                except sqlite3.Error as e:
                    raise self._err(f"restore from {src_path} failed", e) from None
            counts = {c: self.count(c) for c in self.collections()}
            if counts != snapshot.counts or self.get_watermark() != snapshot.watermark or self.get_position() != snapshot.position:
                raise IndexSnapshotError(
                    f"{snapshot.path}: restored index holds {counts} at watermark {self.get_watermark()}, "
                    f"the manifest says {snapshot.counts} at {snapshot.watermark}",
                    hint="the snapshot is inconsistent; use another one",
                )
            return sum(counts.values())
        return restore_from_exports(self, snapshot)


def restore_from_exports(engine: Any, snapshot: IndexSnapshot, *, batch: int = _CHUNK) -> int:
    """Any engine: recreate each collection of ``snapshot`` from its schema and import its export."""
    total = 0
    for name in snapshot.counts:
        schema = strip_runtime_fields(snapshot.schema(name))
        engine.delete(name, missing_ok=True)
        engine.create_collection(schema)
        buf: list[dict[str, Any]] = []
        n = 0
        for doc in snapshot.documents(name):
            buf.append(doc)
            if len(buf) >= batch:
                n += engine.import_documents(name, buf, action="create").raise_for_errors().succeeded
                buf = []
        if buf:
            n += engine.import_documents(name, buf, action="create").raise_for_errors().succeeded
        if n != snapshot.counts[name]:
            raise IndexSnapshotError(
                f"{snapshot.path}: {name}: restored {n} documents, the manifest says {snapshot.counts[name]}",
                hint="the export is inconsistent with its manifest; use another snapshot",
            )
        total += n
    engine.set_watermark(snapshot.watermark)
    engine.set_position(snapshot.position)
    return total


def _clip(doc: Any, limit: int = 500) -> str:
    try:
        s = json.dumps(doc, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        s = repr(doc)
    return s if len(s) <= limit else s[:limit] + "..."


__all__ = ["EmbeddedEngine", "restore_from_exports"]
