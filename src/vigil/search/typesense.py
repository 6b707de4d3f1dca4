"""Typesense over its HTTP API (httpx), behind the :class:`~vigil.search.engine.SearchEngine` protocol.

Endpoints used, as documented at https://typesense.org/docs/29.0/api/ (collections.md,
documents.md, cluster-operations.md):

* ``GET /health`` -> ``{"ok": true}``
* ``GET /collections``, ``POST /collections`` (schema), ``GET /collections/:c`` (schema plus
  ``num_documents``), ``DELETE /collections/:c``
* ``POST /collections/:c/documents/import?action=create|upsert|update|emplace`` with a JSONL body;
  the answer is one JSON line per document, ``{"success": true}`` or ``{"success": false, "error":
  "...", "document": "..."}``, and **always HTTP 200**, so every line is checked
* ``GET /collections/:c/documents/export`` -> JSONL; with ``include_fields=id`` (ids only, for the
  content check) or ``filter_by=id:[...]`` (the documents of the ranges that differ)
* ``GET /collections/:c/documents/:id`` (an id with a backtick, which a filter cannot quote)
* ``DELETE /collections/:c/documents?filter_by=id:[...]`` -> ``{"num_deleted": n}``
* ``GET /collections/:c/documents/search?q=&query_by=``
* ``GET|POST /collections/:meta/documents[/watermark]`` for vigil's watermark document (its
  ``value`` and ``position`` in one document, so one request writes both)
* ``POST /operations/snapshot?snapshot_path=DIR`` -> ``{"success": true}`` (a data snapshot written on
  the *server's* disk; restoring it means restarting Typesense on it, which no API does)

Every request carries ``X-TYPESENSE-API-KEY``. Errors come back as ``{"message": "..."}``.
Redirects are never followed, and a URL whose host is (or resolves to) a link-local or metadata
address is refused unless the spec says ``allow_link_local: true``.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import quote

import httpx

from vigil.netguard import resolve_problem
from vigil.search.embedded import restore_from_exports
from vigil.search.engine import (
    Change,
    ChangesApplyResult,
    DocumentError,
    DocumentImportResult,
    IndexSnapshot,
    SearchError,
    SnapshotWriter,
    prepare_snapshot_dir,
    strip_runtime_fields,
)

ACTIONS = ("create", "upsert", "update", "emplace")
IMPORT_BATCH = 10_000
DELETE_BATCH = 100
RETRY_STATUSES = (429, 502, 503, 504)


class TypesenseNotFound(SearchError):
    code = "search-not-found"


def _now() -> datetime:
    from vigil.clock import SystemClock

    return SystemClock().now()


def check_url(url: str, *, allow_link_local: bool = False, resolve: Callable[..., Any] = socket.getaddrinfo) -> None:
    """Refuse a URL whose host is, or resolves to, a link-local or cloud metadata address (:mod:`vigil.netguard`)."""
    if allow_link_local:
        return
    u = httpx.URL(url)
    try:  # a literal or a metadata name is refused before DNS
        problem = resolve_problem(u.host, u.port or (443 if u.scheme == "https" else 80), resolver=resolve)
    except (UnicodeError, OSError):
        problem = None  # unresolvable: the request fails on its own, with its own message
    if problem:
        raise SearchError(
            f"refusing to contact {url}: {problem}",
            hint="vigil never sends requests to metadata addresses; if this really is your Typesense, "
            "set `allow_link_local: true` under backups.search",
        )


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        text = r.text.strip()
        return text[:200] if text else f"HTTP {r.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return json.dumps(body)[:200]


def _filter_value(doc_id: str) -> str:
    return f"`{doc_id}`"


class TypesenseEngine:
    """A Typesense node or cluster endpoint."""

    kind = "typesense"

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        import_timeout: float = 300.0,
        allow_link_local: bool = False,
        meta_collection: str = "vigil_meta",
        server_snapshot_dir: str | None = None,
        retries: int = 2,
        retry_wait: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        resolve: Callable[..., Any] = socket.getaddrinfo,
    ) -> None:
        if not api_key:
            raise SearchError("no Typesense API key", hint="set the env var named by api_key_env (default TYPESENSE_API_KEY)")
        try:
            u = httpx.URL(url)
        except Exception as e:  # noqa: BLE001
            raise SearchError(f"not a URL: {url!r} ({e})", hint="backups.search.url is like https://search.internal:8108") from None
        if u.scheme not in ("http", "https") or not u.host:
            raise SearchError(f"not an http(s) URL: {url!r}", hint="backups.search.url is like https://search.internal:8108")
        check_url(url, allow_link_local=allow_link_local, resolve=resolve)
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.import_timeout = import_timeout
        self.meta_collection = meta_collection
        self.server_snapshot_dir = server_snapshot_dir
        self.retries = retries
        self.retry_wait = retry_wait
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base,
            headers={"X-TYPESENSE-API-KEY": api_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TypesenseEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP ---------------------------------------------------------------------------------

    def _fail(self, method: str, path: str, r: httpx.Response) -> SearchError:
        where = f"Typesense {method} {self.base}{path}"
        msg = _message(r)
        s = r.status_code
        if 300 <= s < 400:
            return SearchError(
                f"{where}: answered a redirect (HTTP {s}) to {r.headers.get('location', '?')}; vigil does not follow redirects",
                hint="point backups.search.url at the Typesense node itself (the final address)",
            )
        if s in (401, 403):
            return SearchError(
                f"{where}: the API key was rejected (HTTP {s}: {msg})",
                hint="check the key in the env var or file the spec names (api_key_env / api_key_file); "
                "backups need an admin key (or one allowing collections:*, documents:* and the snapshot operation)",
            )
        if s == 404:
            return TypesenseNotFound(f"{where}: {msg} (HTTP 404)", hint="check the collection name in the spec")
        if s in RETRY_STATUSES:
            return SearchError(
                f"{where}: HTTP {s} ({msg}) after {self.retries + 1} attempts",
                hint="Typesense is overloaded or not ready (a node catching up answers 503); retry later, or lower batch_size",
            )
        return SearchError(f"{where}: HTTP {s}: {msg}", hint="see Typesense's message above")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        idempotent: bool = True,
        ok: tuple[int, ...] = (200, 201),
    ) -> httpx.Response:
        attempts = self.retries + 1 if idempotent else 1
        for attempt in range(attempts):
            try:
                r = self._http.request(
                    method, path, params=params, json=json_body, content=content, headers=headers,
                    timeout=timeout if timeout is not None else self.timeout,
                )
            except httpx.TimeoutException:
                if attempt + 1 < attempts:
                    self._sleep(self.retry_wait * (2**attempt))
                    continue
                raise SearchError(
                    f"Typesense {method} {self.base}{path}: timed out after {timeout or self.timeout:g}s",
                    hint="is Typesense overloaded? raise backups.search.timeout (import_timeout for imports) or lower batch_size",
                ) from None
            except httpx.TransportError as e:
                if attempt + 1 < attempts and isinstance(e, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
                    self._sleep(self.retry_wait * (2**attempt))
                    continue
                raise SearchError(
                    f"Typesense {method} {self.base}{path}: {type(e).__name__}: {e or 'connection failed'}",
                    hint="is Typesense running at backups.search.url, and reachable from here?",
                ) from None
            if r.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                self._sleep(min(self._retry_after(r), 30.0) if r.headers.get("retry-after") else self.retry_wait * (2**attempt))
                continue
            if r.status_code not in ok:
                raise self._fail(method, path, r)
            return r
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_after(self, r: httpx.Response) -> float:
        try:
            return max(0.0, float(r.headers.get("retry-after", "0")))
        except ValueError:
            return self.retry_wait

    def _json(self, r: httpx.Response, path: str) -> Any:
        try:
            return r.json()
        except ValueError:
            raise SearchError(
                f"Typesense {self.base}{path}: the answer is not JSON: {r.text[:200]!r}",
                hint="is backups.search.url a Typesense node (not a proxy's error page)?",
            ) from None

    @staticmethod
    def _c(collection: str) -> str:
        return quote(collection, safe="")

    # -- protocol -----------------------------------------------------------------------------

    def health(self) -> bool:
        r = self._request("GET", "/health", ok=(200, 503))
        body = self._json(r, "/health")
        return bool(isinstance(body, dict) and body.get("ok") is True)

    def collections(self) -> list[str]:
        body = self._json(self._request("GET", "/collections"), "/collections")
        if not isinstance(body, list):
            raise SearchError(f"Typesense {self.base}/collections: expected a list, got {type(body).__name__}")
        return sorted(c["name"] for c in body if isinstance(c, dict) and c.get("name") != self.meta_collection)

    def create_collection(self, schema: dict[str, Any], *, exist_ok: bool = False) -> None:
        schema = strip_runtime_fields(schema)
        r = self._request("POST", "/collections", json_body=schema, idempotent=False, ok=(200, 201, 409))
        if r.status_code == 409 and not exist_ok:
            raise SearchError(f"Typesense: {_message(r)}", hint="delete the collection first, or restore over it")

    def _collection(self, collection: str) -> dict[str, Any]:
        path = f"/collections/{self._c(collection)}"
        body = self._json(self._request("GET", path), path)
        if not isinstance(body, dict):
            raise SearchError(f"Typesense {self.base}{path}: expected an object")
        return body

    def schema(self, collection: str) -> dict[str, Any]:
        return strip_runtime_fields(self._collection(collection))

    def count(self, collection: str) -> int:
        n = self._collection(collection).get("num_documents")
        if not isinstance(n, int):
            raise SearchError(f"Typesense {self.base}/collections/{collection}: no num_documents in the answer")
        return n

    def delete(self, collection: str, *, missing_ok: bool = False) -> None:
        try:
            self._request("DELETE", f"/collections/{self._c(collection)}")
        except TypesenseNotFound:
            if not missing_ok:
                raise

    def import_documents(self, collection: str, docs: Iterable[dict[str, Any]], *, action: str = "upsert") -> DocumentImportResult:
        if action not in ACTIONS:
            raise SearchError(f"unknown import action {action!r}; one of {', '.join(ACTIONS)}")
        res = DocumentImportResult(collection)
        batch: list[dict[str, Any]] = []
        for d in docs:
            batch.append(d)
            if len(batch) >= IMPORT_BATCH:
                self._import_batch(collection, batch, action, res)
                batch = []
        if batch:
            self._import_batch(collection, batch, action, res)
        return res

    def _import_batch(self, collection: str, batch: list[dict[str, Any]], action: str, res: DocumentImportResult) -> None:
        base = res.total
        res.total += len(batch)
        body = "\n".join(json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in batch).encode()
        path = f"/collections/{self._c(collection)}/documents/import"
        r = self._request(
            "POST", path, params={"action": action}, content=body,
            headers={"Content-Type": "text/plain"}, timeout=self.import_timeout,
            idempotent=action != "create",
        )
        # HTTP 200 says nothing about the documents: read every line.
        lines = [ln for ln in r.text.split("\n") if ln.strip()]
        for i, d in enumerate(batch):
            did = d.get("id") if isinstance(d, dict) and isinstance(d.get("id"), str) else None
            if i >= len(lines):
                res.errors.append(DocumentError(
                    collection, base + i, did,
                    f"no result line for this document (Typesense answered {len(lines)} lines for {len(batch)} documents)",
                ))
                continue
            try:
                line = json.loads(lines[i])
            except ValueError:
                res.errors.append(DocumentError(collection, base + i, did, f"unreadable result line: {lines[i][:200]!r}"))
                continue
            if not isinstance(line, dict) or not isinstance(line.get("success"), bool):
                res.errors.append(DocumentError(collection, base + i, did, f"result line without a success flag: {lines[i][:200]!r}"))
            elif line["success"]:
                res.succeeded += 1
            else:
                said = line.get("error")
                err = said if isinstance(said, str) else "refused (no error message)"
                doc = line.get("document") if isinstance(line.get("document"), str) else None
                res.errors.append(DocumentError(collection, base + i, did, err, doc))
        if len(lines) > len(batch):
            res.errors.append(DocumentError(
                collection, base + len(batch), None,
                f"Typesense answered {len(lines)} result lines for {len(batch)} documents; the extra lines cannot be matched",
            ))

    def delete_documents(self, collection: str, ids: Sequence[str]) -> int:
        n = 0
        plain = [i for i in ids if "`" not in i]
        odd = [i for i in ids if "`" in i]
        path = f"/collections/{self._c(collection)}/documents"
        for k in range(0, len(plain), DELETE_BATCH):
            part = plain[k : k + DELETE_BATCH]
            flt = "id:[" + ",".join(_filter_value(i) for i in part) + "]"
            body = self._json(self._request("DELETE", path, params={"filter_by": flt, "batch_size": DELETE_BATCH}), path)
            n += int(body.get("num_deleted", 0)) if isinstance(body, dict) else 0
        for i in odd:  # a backtick cannot be escaped in filter_by: delete one by one
            p = f"{path}/{quote(i, safe='')}"
            try:
                self._request("DELETE", p)
                n += 1
            except TypesenseNotFound:
                pass
        return n

    def export_raw(self, collection: str, *, params: dict[str, str] | None = None) -> Iterator[bytes]:
        """The collection's documents as JSONL lines (bytes), streamed; each line checked to be JSON.
        ``params``: the export's documented parameters (``filter_by``, ``include_fields``, ``exclude_fields``)."""
        path = f"/collections/{self._c(collection)}/documents/export"
        n = 0
        try:
            with self._http.stream("GET", path, params=params, timeout=self.import_timeout) as r:
                if r.status_code != 200:
                    r.read()
                    raise self._fail("GET", path, r)
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        raise SearchError(
                            f"Typesense export of {collection!r}: line {n + 1} is not JSON: {line[:200]!r}",
                            hint="the export is unusable; retry, and check the Typesense node's logs",
                        ) from None
                    if not isinstance(doc, dict):
                        raise SearchError(f"Typesense export of {collection!r}: line {n + 1} is not a JSON object")
                    n += 1
                    yield line.encode()
        except httpx.TimeoutException:
            raise SearchError(
                f"Typesense export of {collection!r} timed out after {n} documents",
                hint="raise backups.search.import_timeout",
            ) from None
        except httpx.TransportError as e:
            raise SearchError(
                f"Typesense export of {collection!r} was cut short after {n} documents: {type(e).__name__}: {e}",
                hint="is Typesense reachable? retry the snapshot",
            ) from None

    def export(self, collection: str) -> Iterator[dict[str, Any]]:
        for line in self.export_raw(collection):
            yield json.loads(line)

    def export_ids(self, collection: str) -> Iterator[str]:
        """Ids only: the export with ``include_fields=id``."""
        for line in self.export_raw(collection, params={"include_fields": "id"}):
            did = json.loads(line).get("id")
            if not isinstance(did, str):
                raise SearchError(f"Typesense export of {collection!r}: a line without a string id: {line[:200]!r}")
            yield did

    def get_many(self, collection: str, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The documents with these ids: the export filtered by ``id:[...]``, 100 ids a request (an id
        with a backtick, which a filter cannot quote, is fetched alone with ``GET .../documents/:id``)."""
        plain = [i for i in ids if "`" not in i]
        for k in range(0, len(plain), DELETE_BATCH):
            flt = "id:[" + ",".join(_filter_value(i) for i in plain[k : k + DELETE_BATCH]) + "]"
            for line in self.export_raw(collection, params={"filter_by": flt}):
                yield json.loads(line)
        for i in ids:
            if "`" in i:
                p = f"/collections/{self._c(collection)}/documents/{quote(i, safe='')}"
                try:
                    doc = self._json(self._request("GET", p), p)
                except TypesenseNotFound:
                    continue
                if isinstance(doc, dict):
                    yield doc

    def search(self, collection: str, q: str, *, query_by: Sequence[str] | None = None, limit: int = 10) -> list[dict[str, Any]]:
        if not query_by:
            fields = self.schema(collection).get("fields", [])
            query_by = [f["name"] for f in fields if f.get("type") in ("string", "string[]", "string*") and f.get("index", True) and ".*" not in f["name"]]
            if not query_by:
                raise SearchError(f"{collection}: no string field to search; pass query_by")
        path = f"/collections/{self._c(collection)}/documents/search"
        body = self._json(
            self._request("GET", path, params={"q": q or "*", "query_by": ",".join(query_by), "per_page": limit}), path
        )
        hits = body.get("hits", []) if isinstance(body, dict) else []
        return [h["document"] for h in hits if isinstance(h, dict) and isinstance(h.get("document"), dict)]

    # -- watermark ----------------------------------------------------------------------------

    def _meta(self) -> tuple[int, str | None]:
        """The watermark document: (``value``, ``position``). Both live in ONE document, so a
        batch's watermark and position are written by one request."""
        path = f"/collections/{self._c(self.meta_collection)}/documents/watermark"
        try:
            body = self._json(self._request("GET", path), path)
        except TypesenseNotFound:
            return 0, None
        v = body.get("value") if isinstance(body, dict) else None
        if not isinstance(v, int):
            raise SearchError(f"Typesense {self.base}{path}: the watermark document has no integer `value`: {body!r}")
        p = body.get("position")
        if p is not None and not isinstance(p, str):
            raise SearchError(f"Typesense {self.base}{path}: the watermark document's `position` is not a string: {p!r}")
        return v, p

    def get_watermark(self) -> int:
        return self._meta()[0]

    def get_position(self) -> str | None:
        return self._meta()[1]

    def set_watermark(self, watermark: int) -> None:
        self._write_meta(int(watermark), self._meta()[1])

    def set_position(self, position: str | None) -> None:
        self._write_meta(self._meta()[0], position)

    def _write_meta(self, watermark: int, position: str | None) -> None:
        path = f"/collections/{self._c(self.meta_collection)}/documents"
        doc: dict[str, Any] = {"id": "watermark", "value": int(watermark)}
        if position is not None:
            doc["position"] = position  # not in the meta schema: stored, not indexed
        try:
            self._request("POST", path, params={"action": "upsert"}, json_body=doc)
        except TypesenseNotFound:
            self.create_collection(
                {"name": self.meta_collection, "fields": [{"name": "value", "type": "int64"}]}, exist_ok=True
            )
            self._request("POST", path, params={"action": "upsert"}, json_body=doc)

    def apply(
        self, changes: Sequence[Change], watermark: int, *, max_errors: int = 0, position: str | None = None
    ) -> ChangesApplyResult:
        """Upserts through the import endpoint, deletes by id filter, then the watermark.

        Not atomic (Typesense has no transactions): the watermark is written last and only when
        at most ``max_errors`` documents were refused, so a failed batch is replayed next time,
        which is harmless because every change is a whole-document upsert or a delete.
        """
        res = ChangesApplyResult()
        ups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        dels: dict[str, list[str]] = {}
        for i, ch in enumerate(changes):
            if ch.op == "delete":
                dels.setdefault(ch.collection, []).append(ch.doc_id)
            else:
                doc = ch.document if isinstance(ch.document, dict) else {}
                ups.setdefault(ch.collection, []).append((i, {**doc, "id": ch.doc_id}))
        for coll, items in ups.items():
            r = self.import_documents(coll, [d for _, d in items], action="upsert")
            for e in r.errors:
                pos = items[e.index][0] if e.index < len(items) else e.index
                res.errors.append(DocumentError(coll, pos, e.doc_id, e.error, e.document))
            res.upserts += r.succeeded
        for coll, ids in dels.items():
            self.delete_documents(coll, ids)
            res.deletes += len(ids)
        if len(res.errors) > max_errors:
            return res
        self._write_meta(int(watermark), position if position is not None else self._meta()[1])
        res.committed = True
        return res

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot(self, directory: str | Path, *, created_at: datetime | None = None) -> IndexSnapshot:
        """Watermark first, then the server's data snapshot (when ``server_snapshot_dir`` is set),
        then each collection's schema and JSONL export. Reading the watermark before the exports
        makes the snapshot safe under concurrent writes: a re-seed replays from that watermark."""
        d = prepare_snapshot_dir(directory)
        when = created_at or _now()
        if not self.health():
            raise SearchError(f"Typesense {self.base}/health is not ok", hint="wait for the node to be healthy, then retry")
        watermark, position = self._meta()
        server_path = None
        if self.server_snapshot_dir:
            server_path = f"{self.server_snapshot_dir.rstrip('/')}/vigil-{when.strftime('%Y%m%dT%H%M%SZ')}"
            r = self._request(
                "POST", "/operations/snapshot", params={"snapshot_path": server_path}, timeout=self.import_timeout, idempotent=False
            )
            body = self._json(r, "/operations/snapshot")
            if not (isinstance(body, dict) and body.get("success") is True):
                raise SearchError(f"Typesense snapshot into {server_path} did not succeed: {body!r}", hint="check the server's logs and disk space")
        w = SnapshotWriter(d)
        for name in self.collections():
            w.write_schema(name, self.schema(name))
            w.write_export(name, self.export_raw(name))
        return w.finish(engine=self.kind, created_at=when, watermark=watermark, server_snapshot_path=server_path, position=position)

    def restore(self, snapshot: IndexSnapshot) -> int:
        """Recreate each collection from the snapshot's schema and import its export (action
        ``create``; every response line checked), then set the watermark. The server-side data
        snapshot is not used: restoring it means restarting Typesense on that directory."""
        return restore_from_exports(self, snapshot, batch=IMPORT_BATCH)
