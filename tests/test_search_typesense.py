"""The Typesense adapter against an HTTP double.

Typesense cannot run on this machine (no server binary or container runtime here), so these tests
talk real HTTP over 127.0.0.1 to a small Starlette app under uvicorn that answers the way
Typesense's API reference documents it (v29.0, https://typesense.org/docs/29.0/api/):

* collections.md: ``POST /collections`` (201, 409 ``A collection with name `x` already exists.``),
  ``GET /collections``, ``GET /collections/:c`` (schema plus ``num_documents``), ``DELETE``;
* documents.md: ``POST /collections/:c/documents/import?action=create|upsert|update|emplace``: one
  JSON line per document, ``{"success": true}`` or ``{"success": false, "error": "...", "document":
  "..."}``, and HTTP 200 "regardless of the import results of the individual documents";
  ``GET .../documents/export`` (JSONL; ``filter_by`` and ``include_fields`` narrow it), ``DELETE .../documents?filter_by=id:[...]`` ->
  ``{"num_deleted": n}``, ``GET|DELETE .../documents/:id``, ``POST .../documents?action=upsert``,
  ``GET .../documents/search``;
* cluster-operations.md: ``POST /operations/snapshot?snapshot_path=...`` -> ``{"success": true}``,
  ``GET /health`` -> ``{"ok": true}``;
* every request needs ``X-TYPESENSE-API-KEY``; without a valid one the answer is 401
  ``{"message": "Forbidden - a valid `x-typesense-api-key` header must be sent."}``.

The double can be told to misbehave (an HTTP status, a hang, a malformed or short import answer, a
malformed export, a redirect) so the failure paths are exercised over a real socket.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from vigil.errors import UsageError
from vigil.search import EmbeddedEngine, SearchEngine, SearchError, TypesenseEngine, load_snapshot, rebuild
from vigil.search.engine import Change, open_engine
from vigil.search.spec import CollectionSpec, SearchBackupSpec

KEY = "test-admin-key"
FORBIDDEN = "Forbidden - a valid `x-typesense-api-key` header must be sent."
SCHEMA = {"name": "products", "fields": [{"name": "title", "type": "string"}, {"name": "price", "type": "float"}]}


# --- the double ------------------------------------------------------------------------------


class Double:
    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.faults: list[tuple[str, Any]] = []  # (path regex, Response or ("hang", seconds))
        self.snapshots: list[str] = []

    def fault(self, path: str, response: Any, times: int = 1) -> None:
        for _ in range(times):
            self.faults.append((path, response))

    def app(self) -> Starlette:
        def j(body: Any, status: int = 200) -> JSONResponse:
            return JSONResponse(body, status_code=status)

        def coll_view(c: dict[str, Any]) -> dict[str, Any]:
            return {**c["schema"], "num_documents": len(c["docs"]), "created_at": 1700000000}

        async def gate(request: Request, handler):
            self.log.append((request.method, request.url.path, dict(request.query_params)))
            for i, (pat, resp) in enumerate(self.faults):
                if re.search(pat, request.url.path):
                    del self.faults[i]
                    if isinstance(resp, tuple) and resp[0] == "hang":
                        await asyncio.sleep(resp[1])
                        return j({"message": "late"})
                    return resp
            if request.url.path != "/health" and request.headers.get("x-typesense-api-key") != KEY:
                return j({"message": FORBIDDEN}, 401)
            return await handler(request)

        def route(path: str, methods: list[str]):
            def deco(fn):
                async def endpoint(request: Request):
                    return await gate(request, fn)

                return Route(path, endpoint, methods=methods)

            return deco

        def missing(name: str) -> JSONResponse:
            return j({"message": "Not Found"}, 404)

        def validate(c: dict[str, Any], doc: dict[str, Any]) -> str | None:
            for f in c["schema"]["fields"]:
                if ".*" in f["name"] or f.get("optional"):
                    continue
                if f["name"] not in doc:
                    return f"Field `{f['name']}` has been declared in the schema, but is not found in the document."
                if f["type"] == "float" and not isinstance(doc[f["name"]], (int, float)):
                    return f"Field `{f['name']}` must be a float."
            return None

        @route("/health", ["GET"])
        async def health(request: Request):
            return j({"ok": True})

        @route("/collections", ["GET", "POST"])
        async def collections(request: Request):
            if request.method == "GET":
                return j([coll_view(c) for c in self.collections.values()])
            schema = await request.json()
            name = schema.get("name")
            if name in self.collections:
                return j({"message": f"A collection with name `{name}` already exists."}, 409)
            self.collections[name] = {"schema": schema, "docs": {}}
            return j(coll_view(self.collections[name]), 201)

        @route("/collections/{c}", ["GET", "DELETE"])
        async def collection(request: Request):
            c = self.collections.get(request.path_params["c"])
            if c is None:
                return missing(request.path_params["c"])
            if request.method == "DELETE":
                del self.collections[request.path_params["c"]]
            return j(coll_view(c))

        @route("/collections/{c}/documents/import", ["POST"])
        async def import_(request: Request):
            c = self.collections.get(request.path_params["c"])
            if c is None:
                return missing(request.path_params["c"])
            action = request.query_params.get("action", "create")
            out = []
            for line in (await request.body()).decode().split("\n"):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except ValueError:
                    out.append({"success": False, "error": "Bad JSON.", "document": line})
                    continue
                did = doc.setdefault("id", str(len(c["docs"]) + 1000))
                if action == "create" and did in c["docs"]:
                    out.append({"success": False, "error": f"A document with id {did} already exists.", "document": line})
                    continue
                if action in ("update", "emplace") and did in c["docs"]:
                    doc = {**c["docs"][did], **doc}
                elif action == "update":
                    out.append({"success": False, "error": f"Could not find a document with id: {did}", "document": line})
                    continue
                why = validate(c, doc)
                if why:
                    out.append({"success": False, "error": why, "document": line})
                    continue
                c["docs"][did] = doc
                out.append({"success": True})
            # documented: HTTP 200 whatever happened to the documents
            return PlainTextResponse("\n".join(json.dumps(o) for o in out), 200)

        @route("/collections/{c}/documents/export", ["GET"])
        async def export(request: Request):
            c = self.collections.get(request.path_params["c"])
            if c is None:
                return missing(request.path_params["c"])
            docs = list(c["docs"].values())
            flt = request.query_params.get("filter_by")
            if flt:  # the subset vigil sends: id:[`a`,`b`]
                m = re.fullmatch(r"id:\s*\[(.*)\]", flt)
                if not m:
                    return j({"message": "Could not parse the filter query."}, 400)
                ids = [x.strip().strip("`") for x in m.group(1).split(",")]
                docs = [c["docs"][i] for i in ids if i in c["docs"]]
            inc = request.query_params.get("include_fields")
            if inc:
                keep = inc.split(",")
                docs = [{k: v for k, v in d.items() if k in keep} for d in docs]
            return PlainTextResponse("\n".join(json.dumps(d) for d in docs))

        @route("/collections/{c}/documents/search", ["GET"])
        async def search(request: Request):
            c = self.collections.get(request.path_params["c"])
            if c is None:
                return missing(request.path_params["c"])
            q = request.query_params.get("q", "*").lower()
            by = request.query_params["query_by"].split(",")
            hits = [d for d in c["docs"].values() if q == "*" or any(q in str(d.get(f, "")).lower() for f in by)]
            per = int(request.query_params.get("per_page", 10))
            return j({"found": len(hits), "hits": [{"document": d} for d in hits[:per]], "page": 1})

        @route("/collections/{c}/documents", ["POST", "DELETE"])
        async def documents(request: Request):
            c = self.collections.get(request.path_params["c"])
            if c is None:
                return missing(request.path_params["c"])
            if request.method == "POST":
                doc = await request.json()
                c["docs"][doc["id"]] = doc
                return j(doc, 201)
            flt = request.query_params.get("filter_by", "")
            m = re.fullmatch(r"id:\s*\[(.*)\]", flt)
            if not m:
                return j({"message": "Could not parse the filter query."}, 400)
            ids = [x.strip().strip("`") for x in m.group(1).split(",")]
            n = sum(1 for i in ids if c["docs"].pop(i, None) is not None)
            return j({"num_deleted": n})

        @route("/collections/{c}/documents/{id}", ["GET", "DELETE"])
        async def document(request: Request):
            c = self.collections.get(request.path_params["c"])
            did = request.path_params["id"]
            if c is None or did not in c["docs"]:
                if request.method == "DELETE" and request.query_params.get("ignore_not_found") == "true" and c is not None:
                    return j({"id": did})
                return j({"message": f"Could not find a document with id: {did}"}, 404)
            doc = c["docs"][did] if request.method == "GET" else c["docs"].pop(did)
            return j(doc)

        @route("/operations/snapshot", ["POST"])
        async def snapshot(request: Request):
            path = request.query_params.get("snapshot_path")
            if not path:
                return j({"message": "Parameter `snapshot_path` is required."}, 400)
            self.snapshots.append(path)
            return j({"success": True})

        routes = [r for r in locals().values() if isinstance(r, Route)]
        return Starlette(routes=routes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    dbl = Double()
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(dbl.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert t.is_alive() and time.monotonic() < deadline, "the Typesense double did not start"
        time.sleep(0.02)
    dbl.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield dbl
    srv.should_exit = True
    t.join(timeout=10)


@pytest.fixture
def ts(server: Double):
    server.collections.clear()
    server.faults.clear()
    server.log.clear()
    server.snapshots.clear()
    sleeps: list[float] = []
    e = TypesenseEngine(server.url, KEY, timeout=5, sleep=sleeps.append, server_snapshot_dir="/var/lib/ts-snap")
    e.sleeps = sleeps  # type: ignore[attr-defined]
    yield e
    e.close()


# --- the protocol over HTTP ------------------------------------------------------------------


def test_round_trip(ts: TypesenseEngine, server: Double) -> None:
    assert isinstance(ts, SearchEngine)
    assert ts.health() is True
    ts.create_collection(SCHEMA)
    ts.create_collection(SCHEMA, exist_ok=True)
    with pytest.raises(SearchError, match="A collection with name `products` already exists"):
        ts.create_collection(SCHEMA)
    res = ts.import_documents("products", [{"id": "1", "title": "Red shoe", "price": 10}, {"id": "2", "title": "Blue hat", "price": 5}])
    assert res.ok and (res.total, res.succeeded) == (2, 2)
    assert ts.count("products") == 2
    assert ts.schema("products") == SCHEMA  # num_documents and created_at stripped
    assert [d["id"] for d in ts.export("products")] == ["1", "2"]
    assert [d["id"] for d in ts.search("products", "shoe")] == ["1"]
    assert ts.delete_documents("products", ["1", "nope", "odd`id"]) == 1
    assert ts.count("products") == 1
    assert ts.get_watermark() == 0  # no meta collection yet
    ts.set_watermark(42)
    assert ts.get_watermark() == 42
    assert ts.collections() == ["products"]  # vigil_meta is not listed
    ts.delete("products")
    ts.delete("products", missing_ok=True)
    with pytest.raises(SearchError, match="HTTP 404"):
        ts.delete("products")
    # every request carried the key, and the import used the documented query parameter
    assert ("POST", "/collections/products/documents/import", {"action": "upsert"}) in server.log
    flt = [q for m, p, q in server.log if m == "DELETE" and p == "/collections/products/documents"]
    assert flt == [{"filter_by": "id:[`1`,`nope`]", "batch_size": "100"}]


def test_import_errors_are_reported_although_http_200(ts: TypesenseEngine) -> None:
    ts.create_collection(SCHEMA)
    res = ts.import_documents(
        "products",
        [{"id": "1", "title": "ok", "price": 1}, {"id": "2", "price": 1}, {"id": "3", "title": "x", "price": "free"}],
    )
    assert (res.total, res.succeeded, res.ok) == (3, 1, False)
    assert [(e.index, e.doc_id, e.error) for e in res.errors] == [
        (1, "2", "Field `title` has been declared in the schema, but is not found in the document."),
        (2, "3", "Field `price` must be a float."),
    ]
    assert json.loads(res.errors[0].document) == {"id": "2", "price": 1}
    with pytest.raises(SearchError, match=r"products: 2 of 3 documents were refused: products: document '2': Field `title`"):
        res.raise_for_errors()
    res = ts.import_documents("products", [{"id": "1", "title": "again", "price": 2}], action="create")
    assert res.errors[0].error == "A document with id 1 already exists."


@pytest.mark.parametrize(
    "body, succeeded, expected",
    [
        ('{"success": true}\nnot json at all\n{"success": true}', 2, [(1, "unreadable result line: 'not json at all'")]),
        ('{"success": true}\n{"ok": 1}\n{"success": true}', 2, [(1, "result line without a success flag")]),
        ('{"success": true}', 1, [(1, "no result line for this document"), (2, "no result line for this document")]),
        ('{"success": true}\n{"success": false}\n{"success": true}\n{"success": true}', 2,
         [(1, "refused (no error message)"), (3, "answered 4 result lines for 3 documents")]),
        ("", 0, [(0, "no result line"), (1, "no result line"), (2, "no result line")]),
    ],
)
def test_malformed_import_answers_are_errors(ts: TypesenseEngine, server: Double, body: str, succeeded: int, expected) -> None:
    ts.create_collection(SCHEMA)
    server.fault(r"/import$", PlainTextResponse(body, 200))
    res = ts.import_documents("products", [{"id": str(i), "title": "t", "price": 1} for i in range(3)])
    assert not res.ok and res.succeeded == succeeded
    assert len(res.errors) == len(expected)
    for e, (index, msg) in zip(res.errors, expected):
        assert e.index == index and msg in e.error


def test_apply_advances_the_watermark_only_without_refusals(ts: TypesenseEngine) -> None:
    ts.create_collection(SCHEMA)
    r = ts.apply([Change("products", "1", "upsert", {"title": "a", "price": 1}), Change("products", "2", "upsert", {"title": "b", "price": 2})], 7)
    assert r.committed and ts.get_watermark() == 7 and ts.count("products") == 2
    r = ts.apply([Change("products", "1", "delete"), Change("products", "3", "upsert", {"price": 3})], 9)
    assert not r.committed and r.errors[0].index == 1 and r.errors[0].doc_id == "3"
    assert ts.get_watermark() == 7  # the batch will be replayed; the delete is idempotent
    r = ts.apply([Change("products", "1", "delete"), Change("products", "3", "upsert", {"price": 3})], 9, max_errors=1)
    assert r.committed and ts.get_watermark() == 9


def test_snapshot_schema_export_and_server_snapshot(ts: TypesenseEngine, server: Double, tmp_path: Path) -> None:
    ts.create_collection(SCHEMA)
    ts.create_collection({"name": "articles", "fields": [{"name": ".*", "type": "auto"}]})
    ts.import_documents("products", [{"id": str(i), "title": f"p{i}", "price": i} for i in range(25)]).raise_for_errors()
    ts.import_documents("articles", [{"id": "a1", "title": "laces"}]).raise_for_errors()
    ts.set_watermark(25)
    from datetime import datetime, timezone

    snap = ts.snapshot(tmp_path / "snap", created_at=datetime(2026, 11, 3, 2, 30, tzinfo=timezone.utc))
    assert server.snapshots == ["/var/lib/ts-snap/vigil-20261103T023000Z"]
    assert snap.server_snapshot_path == server.snapshots[0]
    assert (snap.engine, snap.watermark, snap.counts, snap.created_at) == ("typesense", 25, {"articles": 1, "products": 25}, "2026-11-03T02:30:00Z")
    assert set(snap.checksums) == {"articles.jsonl", "articles.schema.json", "products.jsonl", "products.schema.json"}
    assert json.loads((tmp_path / "snap" / "products.schema.json").read_text()) == SCHEMA
    loaded = load_snapshot(tmp_path / "snap")
    # the cluster is lost: restore recreates the collections from the schemas and imports the exports
    server.collections.clear()
    assert ts.restore(loaded) == 26
    assert (ts.count("products"), ts.count("articles"), ts.get_watermark()) == (25, 1, 25)
    creates = [q for m, p, q in server.log if p.endswith("/import") and m == "POST"]
    assert creates[-1] == {"action": "create"}
    # and a Typesense snapshot restores into the embedded engine too (the drill does this locally)
    with EmbeddedEngine(tmp_path / "local.db") as local:
        assert local.restore(loaded) == 26
        assert [d["id"] for d in local.search("articles", "laces")] == ["a1"]


def test_rebuild_through_typesense_from_a_real_outbox(ts: TypesenseEngine, pg_db_url: str, tmp_path: Path) -> None:
    import psycopg

    from vigil.search import check_index, create_outbox_table
    from vigil.search.outbox import conninfo

    with psycopg.connect(conninfo(pg_db_url), autocommit=True) as conn:
        create_outbox_table(conn)
        for i in range(1, 8):
            conn.execute("INSERT INTO search_outbox (collection, doc_id, document) VALUES ('products', %s, %s)",
                         (f"p{i}", json.dumps({"title": f"t{i}", "price": i})))
        conn.execute("INSERT INTO search_outbox (collection, doc_id, op) VALUES ('products', 'p2', 'delete')")
    spec = CollectionSpec(name="products", fields=SCHEMA["fields"])
    res = rebuild(ts, None, pg_db_url, collections=[spec], batch_size=3)
    assert (res.applied, res.batches, res.watermark, res.counts) == (8, 3, 8, {"products": 6})
    assert ts.schema("products") == SCHEMA
    assert check_index(ts, pg_db_url).ok


def _outbox(pg_db_url: str, n: int) -> None:
    import psycopg

    from vigil.search import create_outbox_table
    from vigil.search.outbox import conninfo

    with psycopg.connect(conninfo(pg_db_url), autocommit=True) as conn:
        create_outbox_table(conn)
        with conn.transaction():
            for i in range(1, n + 1):
                conn.execute("INSERT INTO search_outbox (collection, doc_id, document) VALUES ('products', %s, %s)",
                             (f"p{i}", json.dumps({"title": f"t{i}", "price": i})))


def test_content_check_and_repair_through_typesense(ts: TypesenseEngine, server: Double, pg_db_url: str) -> None:
    """The same content check over Typesense's API (the double, as Typesense cannot run here): range
    hashes from the export, then only the differing ids by ``filter_by=id:[...]``; --repair through import."""
    from vigil.search import check_index, repair_index

    _outbox(pg_db_url, 60)
    spec = CollectionSpec(name="products", fields=SCHEMA["fields"])
    rebuild(ts, None, pg_db_url, collections=[spec])
    assert check_index(ts, pg_db_url).ok
    docs = server.collections["products"]["docs"]
    del docs["p7"]  # missing
    docs["p8"] = {**docs["p8"], "title": "tampered"}  # modified
    docs["p9"] = {**docs["p9"], "price": 9.5}  # modified
    docs["ghost"] = {"id": "ghost", "title": "g", "price": 1}  # counts balanced again
    server.log.clear()
    chk = check_index(ts, pg_db_url, collections=[spec])
    assert not chk.ok and (chk.index_count, chk.db_count) == (60, 60)
    d = chk.diffs["products"]
    assert (d.missing, d.modified, d.ghost) == (["p7"], ["p8", "p9"], ["ghost"])
    exports = [q for m, p, q in server.log if p.endswith("/export")]
    assert exports[0] == {} and {"include_fields": "id"} in exports  # one full export, then ids only
    by_id = [q["filter_by"] for q in exports if "filter_by" in q]
    assert by_id and all(f.startswith("id:[`") for f in by_id)
    rep = repair_index(ts, pg_db_url, chk, collections=[spec])
    assert rep.ok and rep.upserted == {"products": ["p7", "p8", "p9"]} and rep.deleted == {"products": ["ghost"]}
    assert docs["p8"]["title"] == "t8" and "ghost" not in docs
    assert check_index(ts, pg_db_url, collections=[spec]).ok


def test_the_position_lives_in_the_watermark_document(ts: TypesenseEngine, server: Double, pg_db_url: str, tmp_path: Path) -> None:
    """An in-flight outbox row through Typesense: the position is written with the watermark, in one request."""
    import psycopg

    from vigil.search import check_index, create_outbox_table
    from vigil.search.outbox import Position, conninfo

    with psycopg.connect(conninfo(pg_db_url), autocommit=True) as c:
        create_outbox_table(c)
    slow = psycopg.connect(conninfo(pg_db_url))
    fast = psycopg.connect(conninfo(pg_db_url), autocommit=True)
    try:
        ins = "INSERT INTO search_outbox (collection, doc_id, document) VALUES ('products', %s, %s)"
        slow.execute(ins, ("late", json.dumps({"title": "late", "price": 1})))
        fast.execute(ins, ("early", json.dumps({"title": "early", "price": 2})))
        spec = CollectionSpec(name="products", fields=SCHEMA["fields"])
        rebuild(ts, None, pg_db_url, collections=[spec])
        meta = server.collections["vigil_meta"]["docs"]["watermark"]
        assert meta["value"] == 2 and Position.parse(meta["position"]).done is not None
        assert ts.get_position() == meta["position"]
        snap = ts.snapshot(tmp_path / "snap")
        assert snap.position == meta["position"]
        slow.commit()
        assert check_index(ts, pg_db_url).pending == 1
        res = rebuild(ts, None, pg_db_url, reset=False, collections=[spec])
        assert res.applied == 1 and "late" in server.collections["products"]["docs"]
        assert check_index(ts, pg_db_url).ok
        ts.set_watermark(5)
        assert ts.get_position() == res.position  # set_watermark keeps the position
        server.collections.clear()
        assert ts.restore(load_snapshot(tmp_path / "snap")) == 1 and ts.get_position() == snap.position
    finally:
        slow.close()
        fast.close()


def test_a_failing_export_during_the_check_is_an_external_error(ts: TypesenseEngine, server: Double, pg_db_url: str) -> None:
    from vigil.search import check_index

    _outbox(pg_db_url, 3)
    rebuild(ts, None, pg_db_url, collections=[CollectionSpec(name="products", fields=SCHEMA["fields"])])
    server.fault(r"/export$", PlainTextResponse("", 500))
    with pytest.raises(SearchError, match="HTTP 500") as ei:
        check_index(ts, pg_db_url)
    assert ei.value.exit_code == 3


# --- failure paths ---------------------------------------------------------------------------


def test_connection_refused() -> None:
    e = TypesenseEngine(f"http://127.0.0.1:{_free_port()}", KEY, sleep=lambda s: None)
    with pytest.raises(SearchError, match="ConnectError") as ei:
        e.health()
    assert "is Typesense running" in ei.value.hint and ei.value.exit_code == 3


def test_timeout(server: Double) -> None:
    e = TypesenseEngine(server.url, KEY, timeout=0.2, retries=0)
    server.faults.clear()
    server.fault(r"^/collections$", ("hang", 1.0))
    with pytest.raises(SearchError, match=r"GET .*/collections: timed out after 0.2s") as ei:
        e.collections()
    assert "timeout" in ei.value.hint


def test_wrong_api_key(server: Double) -> None:
    e = TypesenseEngine(server.url, "wrong", sleep=lambda s: None)
    with pytest.raises(SearchError, match=r"the API key was rejected \(HTTP 401: Forbidden - a valid") as ei:
        e.collections()
    assert "api_key_env" in ei.value.hint


def test_429_and_503_are_retried_then_reported(ts: TypesenseEngine, server: Double) -> None:
    server.fault(r"^/collections$", JSONResponse({"message": "Rate limit exceeded"}, 429, headers={"Retry-After": "2"}))
    server.fault(r"^/collections$", JSONResponse({"message": "Not Ready or Lagging"}, 503))
    assert ts.collections() == []
    assert ts.sleeps == [2.0, 1.0]  # Retry-After honoured, then exponential backoff
    server.fault(r"^/collections$", JSONResponse({"message": "Not Ready or Lagging"}, 503), times=3)
    with pytest.raises(SearchError, match=r"HTTP 503 \(Not Ready or Lagging\) after 3 attempts") as ei:
        ts.collections()
    assert "overloaded or not ready" in ei.value.hint


def test_a_create_import_is_not_retried(ts: TypesenseEngine, server: Double) -> None:
    ts.create_collection(SCHEMA)
    server.fault(r"/import$", JSONResponse({"message": "Not Ready or Lagging"}, 503))
    with pytest.raises(SearchError, match="HTTP 503"):
        ts.import_documents("products", [{"id": "1", "title": "t", "price": 1}], action="create")
    assert sum(1 for m, p, q in server.log if p.endswith("/import")) == 1


def test_malformed_export_and_non_json_answers(ts: TypesenseEngine, server: Double, tmp_path: Path) -> None:
    ts.create_collection(SCHEMA)
    server.fault(r"/export$", PlainTextResponse('{"id": "1"}\n{"id": "2", trunc', 200))
    with pytest.raises(SearchError, match=r"export of 'products': line 2 is not JSON"):
        list(ts.export("products"))
    server.fault(r"/export$", PlainTextResponse("", 500))
    with pytest.raises(SearchError, match="HTTP 500"):
        ts.snapshot(tmp_path / "s")
    server.fault(r"^/collections$", PlainTextResponse("<html>bad gateway</html>", 200))
    with pytest.raises(SearchError, match="the answer is not JSON") as ei:
        ts.collections()
    assert "proxy" in ei.value.hint


def test_redirects_are_not_followed(ts: TypesenseEngine, server: Double) -> None:
    server.fault(r"^/collections$", Response(status_code=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    with pytest.raises(SearchError, match=r"redirect \(HTTP 302\) to http://169.254.169.254/latest/meta-data/; vigil does not follow"):
        ts.collections()
    assert [p for _, p, _ in server.log] == ["/collections"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254", "http://169.254.170.2:8108", "http://[fd00:ec2::254]:8108", "http://[fe80::1]:8108",
        "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/", "http://100.100.100.200/",
        "http://2852039166:8108", "http://0xa9fea9fe/",  # 169.254.169.254 spelled as one number: caught after resolution
    ],
)
def test_link_local_and_metadata_urls_are_refused(url: str) -> None:
    calls: list = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200, json={"ok": True}))
    with pytest.raises(SearchError, match="refusing to contact") as ei:
        TypesenseEngine(url, KEY, transport=transport)
    assert "allow_link_local" in ei.value.hint and calls == []
    e = TypesenseEngine(url, KEY, transport=transport, allow_link_local=True)
    assert e.health() and len(calls) == 1


def test_a_hostname_resolving_to_metadata_is_refused() -> None:
    fake_dns = lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]  # noqa: E731
    with pytest.raises(SearchError, match=r"metadata.example resolves to 169.254.169.254, a link-local address"):
        TypesenseEngine("http://metadata.example:8108", KEY, resolve=fake_dns)


def test_open_engine_reads_the_key_from_env_or_file(server: Double, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SearchBackupSpec(engine="typesense", url=server.url, api_key_env="MY_TS_KEY")
    monkeypatch.delenv("MY_TS_KEY", raising=False)
    with pytest.raises(UsageError, match=r"no Typesense API key: \$MY_TS_KEY is not set"):
        open_engine(spec)
    monkeypatch.setenv("MY_TS_KEY", KEY)
    e = open_engine(spec)
    assert isinstance(e, TypesenseEngine) and e.collections() is not None
    (tmp_path / "key").write_text(KEY + "\n")
    with pytest.raises(UsageError, match="readable or writable by others"):  # a key file must be private
        open_engine(SearchBackupSpec(engine="typesense", url=server.url, api_key_file="key"), base_dir=tmp_path)
    (tmp_path / "key").chmod(0o600)
    e2 = open_engine(SearchBackupSpec(engine="typesense", url=server.url, api_key_file="key"), base_dir=tmp_path)
    assert e2.health()
    with pytest.raises(UsageError, match="cannot read the Typesense API key file"):
        open_engine(SearchBackupSpec(engine="typesense", url=server.url, api_key_file="nope"), base_dir=tmp_path)
