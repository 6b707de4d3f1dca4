"""Check a search index against its source of truth, document by document, and repair what differs.

:func:`check_index` compares, per collection,

* the **counts**: the index's document count with the database's live entities (the collection's
  ``count_sql``, else the keys whose latest outbox row is not a delete);
* the **content**: every document's digest (:mod:`vigil.search.content`) against the source of truth:
  the collection's ``documents_sql`` (the entity tables) when given, else the latest outbox row of
  each key (a delete means "absent"). Each side is read once to hash ranges of the id space; only
  the ranges that differ are read again, document by document, and the ids that differ are named:
  ``missing`` (in the source, not in the index), ``modified`` (in both, different content) and
  ``ghost`` (in the index, not in the source);
* the **position**: outbox changes the index has not applied yet (by transaction visibility when the
  outbox has a txid column, else by id), reported as ``pending``. Documents whose keys have pending
  changes are left out of the content comparison (they are lag, which the catch-up fixes, not
  divergence), and listed as pending.

The database side is read in one REPEATABLE READ, READ ONLY transaction (one consistent snapshot).
The index may change while it is read (a live indexer), so every difference found is read again
from both sides before it is reported; one that agrees by then is counted as ``settled``, not
reported.

:func:`repair_index` takes a check's differences and fixes exactly those ids: upserts the source's
current document for the missing and modified ones, deletes the ghosts (after confirming, again,
what the source holds now), then reads each repaired id back from both sides to verify it. The
watermark and position do not move: a repair is not a catch-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from vigil.search.content import (
    Differences,
    RangeHashes,
    canonical_text,
    choose_depth,
    classify,
    differing_leaves,
    digest,
    digest_canonical,
    leaf_of,
)
from vigil.search.engine import SearchEngine, SearchError
from vigil.search.outbox import (
    Position,
    _cols,
    _db_error,
    _redact,
    _specs,
    _table,
    connect,
    one_row,
    outbox_bounds,
    parse_pg_snapshot,
    psycopg,
    sql,
    txid_expr,
)
from vigil.search.spec import CollectionSpec, OutboxSpec

LIST_LIMIT = 1000
"""Ids listed per kind and collection in the JSON (the counts are always complete)."""
TEXT_LIMIT = 10
"""Ids named per kind in a readable problem line."""
FETCH_SHARE = 8
"""Pass 2 fetches the index's documents by id when they are at most 1/FETCH_SHARE of the collection,
else it reads the whole export again."""


# --- the database side -------------------------------------------------------------------------


def live_counts_from_outbox(conn: "psycopg.Connection", outbox: OutboxSpec) -> dict[str, int]:
    """Per collection, the documents whose last outbox event is not a delete."""
    c = _cols(outbox)
    q = sql.SQL(
        "SELECT {collection}, count(*) FILTER (WHERE NOT ({op} = ANY(%s))) FROM ("
        " SELECT DISTINCT ON ({collection}, {key}) {collection}, {op} FROM {t}"
        " ORDER BY {collection}, {key}, {id} DESC) s GROUP BY {collection}"
    ).format(t=_table(outbox), **c)
    return {r[0]: int(r[1]) for r in conn.execute(q, [list(outbox.delete_ops)])}


def _count_sql(conn: "psycopg.Connection", name: str, query: str, url: str) -> int:
    try:
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '120s'")
            row = conn.execute(query).fetchone()
            conn.execute("SET LOCAL statement_timeout TO DEFAULT")
    except psycopg.Error as e:
        raise SearchError(
            f"count_sql of collection {name!r} failed on {_redact(url)}: {str(e).strip().splitlines()[0]}",
            hint="fix backups.search.collections[].count_sql in the spec: one SELECT returning one number",
        ) from None
    if row is None or len(row) != 1 or not isinstance(row[0], int) or isinstance(row[0], bool):
        raise SearchError(
            f"count_sql of collection {name!r} did not return one integer (got {row!r})",
            hint="write it as SELECT count(*) FROM ... WHERE <the entity is live>",
        )
    return row[0]


def _pending(
    conn: "psycopg.Connection", outbox: OutboxSpec, tx: Any, watermark: int, pos: Position | None
) -> tuple[int, set[tuple[str, str]]]:
    """Outbox rows visible now that the index has not applied: (rows, {(collection, key)})."""
    c = _cols(outbox)
    params: dict[str, Any] = {"wm": watermark}
    where: sql.Composable
    if tx is None or pos is None:
        where = sql.SQL("{id} > %(wm)s").format(**c)
    else:
        covered: list[sql.Composable] = []
        if pos.done is not None:
            params["done"] = pos.done
            covered.append(sql.SQL("pg_visible_in_snapshot({x}, %(done)s::pg_snapshot)").format(x=tx))
        if pos.cur is not None:
            params["cur"], params["after"] = pos.cur, pos.after
            covered.append(sql.SQL("(pg_visible_in_snapshot({x}, %(cur)s::pg_snapshot) AND {id} <= %(after)s)").format(x=tx, **c))
        where = sql.SQL("NOT ({cov})").format(cov=sql.SQL(" OR ").join(covered)) if covered else sql.SQL("true")
        if pos.done is not None and pos.cur is None:
            where = sql.SQL("{x} >= pg_snapshot_xmin(%(done)s::pg_snapshot) AND {w}").format(x=tx, w=where)
    rows = conn.execute(
        sql.SQL("SELECT {collection}, {key}::text FROM {t} WHERE {w}").format(t=_table(outbox), w=where, **c), params
    ).fetchall()
    return len(rows), {(r[0], r[1]) for r in rows}


def _source_query(outbox: OutboxSpec, spec: CollectionSpec, *, leaves: tuple[int, list[str]] | None = None,
                  ids: list[str] | None = None) -> tuple["sql.Composed", dict[str, Any]]:
    """Rows ``(key, op, document text)`` of the source of truth of one collection; ``op`` is NULL for
    documents_sql (every row is live), else the latest outbox op of the key."""
    c = _cols(outbox)
    params: dict[str, Any] = {"coll": spec.name}
    key: sql.Composable = sql.SQL("k") if spec.documents_sql else sql.SQL("{key}::text").format(**c)
    filt: sql.Composable = sql.SQL("")
    if leaves is not None:
        params["depth"], params["leaves"] = leaves[0], leaves[1]
        filt = sql.SQL(" AND left(encode(sha256(convert_to({k}, 'UTF8')), 'hex'), %(depth)s) = ANY(%(leaves)s)").format(k=key)
    elif ids is not None:
        params["ids"] = ids
        filt = sql.SQL(" AND {k} = ANY(%(ids)s)").format(k=key)
    if spec.documents_sql:
        user = sql.SQL(spec.documents_sql.replace("%", "%%"))  # the query runs with parameters around it
        q = sql.SQL(
            "SELECT k, NULL::text, d FROM (SELECT s.k::text AS k, s.d::text AS d FROM ({user}) AS s(k, d)) x WHERE true{f}"
        ).format(user=user, f=filt)
    else:
        # the latest row of each key: group the small (key, id) pairs, then fetch those rows, so
        # the documents are streamed once and never sorted
        q = sql.SQL(
            "SELECT o.{key}::text, o.{op}, o.{document}::text FROM {t} o JOIN ("
            "SELECT max({id}) AS latest FROM {t} WHERE {collection} = %(coll)s{f} GROUP BY {key}::text"
            ") l ON o.{id} = l.latest"
        ).format(t=_table(outbox), f=filt, **c)
    return q, params


class _SourceRows:
    """Streams the source of truth of one collection as (key, document or None for absent)."""

    def __init__(self, conn: "psycopg.Connection", outbox: OutboxSpec, spec: CollectionSpec, url: str) -> None:
        self.conn, self.outbox, self.spec, self.url = conn, outbox, spec, url
        self.delete_ops = frozenset(outbox.delete_ops)
        self.bad: dict[str, str] = {}
        self._n = 0
        self.what = "documents_sql" if spec.documents_sql else "the latest outbox rows"

    def rows(self, **kw: Any) -> Iterator[tuple[str, str | None]]:
        """(key, document text), or (key, None) when the key's latest outbox row is a delete."""
        q, params = _source_query(self.outbox, self.spec, **kw)
        self._n += 1
        seen: set[str] | None = set() if self.spec.documents_sql else None
        try:
            with self.conn.cursor(name=f"vigil_check_{self._n}") as cur:
                cur.itersize = 2000
                cur.execute(q, params)
                for k, op, text in cur:
                    if k is None:
                        self.bad.setdefault("(NULL)", f"{self.what} returned a NULL id")
                        continue
                    if seen is not None:
                        if k in seen:
                            self.bad[k] = "documents_sql returned this id twice"
                            continue
                        seen.add(k)
                    if op is not None and op in self.delete_ops:
                        yield k, None
                    elif text is None:
                        self.bad[k] = f"{self.what}: no document (NULL)"
                    else:
                        yield k, text
        except psycopg.Error as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if self.spec.documents_sql:
                raise SearchError(
                    f"documents_sql of collection {self.spec.name!r} failed on {_redact(self.url)}: {msg}",
                    hint="fix backups.search.collections[].documents_sql: one SELECT returning (id, document as json/jsonb)",
                ) from None
            raise _db_error("reading the documents", self.url, e, self.outbox) from None

    def digests(self, **kw: Any) -> Iterator[tuple[str, int]]:
        """(key, digest) of every live document; unreadable ones are recorded in ``bad``."""
        for k, text in self.rows(**kw):
            if text is None:
                continue
            try:
                yield k, digest_canonical(k, canonical_text(text)[1])
            except ValueError as e:
                self.bad[k] = f"{self.what}: the document is not a JSON object ({e})"

    def docs(self, **kw: Any) -> Iterator[tuple[str, dict[str, Any] | None]]:
        import json

        for k, text in self.rows(**kw):
            if text is None:
                yield k, None
                continue
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                yield k, doc
            else:
                self.bad[k] = f"{self.what}: the document is not a JSON object"


# --- the index side ----------------------------------------------------------------------------


def _index_digests_all(engine: SearchEngine, name: str, bad_ids: list[str]) -> Iterator[tuple[str, int]]:
    """(id, digest) of every document of the index, from the raw export when the engine has one."""
    raw = getattr(engine, "export_raw", None)
    if raw is not None:
        for line in raw(name):
            try:
                did, canon = canonical_text(line)
            except ValueError:
                bad_ids.append(repr(line[:80]))
                continue
            if not isinstance(did, str):
                bad_ids.append(repr(did))
                continue
            yield did, digest_canonical(did, canon)
        return
    for doc in engine.export(name):
        did = doc.get("id") if isinstance(doc, dict) else None
        if not isinstance(did, str):
            bad_ids.append(repr(did))
            continue
        yield did, digest(did, doc)


def _index_digests_in(engine: SearchEngine, name: str, depth: int, leaves: set[str], count: int,
                      bad_ids: list[str]) -> Iterator[tuple[str, int]]:
    """(id, digest) of the index's documents whose ids fall in ``leaves``: fetched by id when they
    are few, else from a full export."""
    wanted = [i for i in engine.export_ids(name) if leaf_of(i, depth) in leaves]
    if len(wanted) * FETCH_SHARE <= max(count, 1):
        yield from _index_digests(engine, name, wanted).items()
        return
    for did, d in _index_digests_all(engine, name, bad_ids):
        if leaf_of(did, depth) in leaves:
            yield did, d


def _index_digests(engine: SearchEngine, name: str, ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc in engine.get_many(name, ids):
        did = doc.get("id")
        if isinstance(did, str):
            out[did] = digest(did, doc)
    return out


# --- the result --------------------------------------------------------------------------------


def _listing(ids: list[str]) -> dict[str, Any]:
    return {"count": len(ids), "ids": ids[:LIST_LIMIT], "truncated": len(ids) > LIST_LIMIT}


def _name(ids: list[str]) -> str:
    more = f", ... ({len(ids) - TEXT_LIMIT} more)" if len(ids) > TEXT_LIMIT else ""
    return ", ".join(ids[:TEXT_LIMIT]) + more


@dataclass
class IndexCheck:
    """The index compared with the database: counts, content (document by document) and position."""

    ok: bool
    index_count: int
    db_count: int
    index_watermark: int
    db_watermark: int
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    mode: str = "id"
    """``txid`` when the outbox records transaction ids (pending = not visible in the index's position), else ``id``."""
    pending: int = 0
    """Outbox rows committed that the index has not applied yet."""
    content: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per collection: source, depth, ranges compared, documents on each side, settled."""
    diffs: dict[str, Differences] = field(default_factory=dict, repr=False)
    """Per collection: every id that differs (the JSON lists at most LIST_LIMIT per kind)."""
    pending_ids: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def differences(self) -> int:
        return sum(d.total for d in self.diffs.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "index_count": self.index_count,
            "db_count": self.db_count,
            "index_watermark": self.index_watermark,
            "db_watermark": self.db_watermark,
            "mode": self.mode,
            "pending": self.pending,
            "collections": self.collections,
            "content": self.content,
            "differences": {
                name: {
                    "missing": _listing(d.missing),
                    "modified": _listing(d.modified),
                    "ghost": _listing(d.ghost),
                    "pending": _listing(self.pending_ids.get(name, [])),
                }
                for name, d in self.diffs.items()
            },
            "difference_count": self.differences,
            "problems": self.problems,
        }


# --- the check ---------------------------------------------------------------------------------


def _begin(conn: "psycopg.Connection") -> None:
    """One consistent, read-only snapshot for everything read from the database until rollback."""
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.execute("SET LOCAL work_mem = '64MB'")  # grouping a million keys stays in memory


def _compare(conn: "psycopg.Connection", engine: SearchEngine, ob: OutboxSpec, spec: CollectionSpec, url: str, *,
             in_index: bool, expected: int, pending: set[str]) -> tuple[Differences, dict[str, Any], list[str]]:
    """Range hashes on both sides, then the differing leaves document by document."""
    name = spec.name
    have = engine.count(name) if in_index else 0
    depth = choose_depth(max(have, expected))
    src = _SourceRows(conn, ob, spec, url)
    bad_index: list[str] = []
    a, b = RangeHashes(depth), RangeHashes(depth)
    for k, d in src.digests():
        if k not in pending:
            a.add(k, d)
    skip = pending | set(src.bad)
    if in_index:
        for k, d in _index_digests_all(engine, name, bad_index):
            if k not in skip:
                b.add(k, d)
    leaves, compared = differing_leaves(a, b)
    diffs = Differences()
    sd: dict[str, int] = {}
    idx: dict[str, int] = {}
    if leaves:
        sd = {k: d for k, d in src.digests(leaves=(depth, leaves)) if k not in skip}
        if in_index:
            idx = {k: d for k, d in _index_digests_in(engine, name, depth, set(leaves), have, bad_index) if k not in skip}
        diffs = classify(sd, idx)
    problems: list[str] = []
    if src.bad:
        first = "; ".join(f"{k}: {why}" for k, why in sorted(src.bad.items())[:3])
        problems.append(
            f"{name}: {len(src.bad)} key(s) whose source row cannot be read ({first}); the check cannot say what the "
            "index should hold for them"
        )
    if bad_index:
        problems.append(f"{name}: {len(bad_index)} document(s) in the index without a string id (first: {bad_index[0]})")
    stats = {
        "source": "documents_sql" if spec.documents_sql else "outbox",
        "depth": depth,
        "leaf_ranges": 16**depth,
        "ranges_compared": compared,
        "ranges_differing": len(leaves),
        "documents": {"index": b.documents, "source": a.documents},
        "reread": {"index": len(idx), "source": len(sd)},
        "unreadable": len(src.bad),
    }
    return diffs, stats, problems


def _recheck(conn: "psycopg.Connection", engine: SearchEngine, ob: OutboxSpec, spec: CollectionSpec, url: str,
             ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Digests of ``ids`` now, on both sides: (source, index)."""
    src = _SourceRows(conn, ob, spec, url)
    s = dict(src.digests(ids=ids))
    i = _index_digests(engine, spec.name, ids) if spec.name in engine.collections() else {}
    return s, i


def check_index(
    engine: SearchEngine,
    outbox_dsn: str,
    *,
    outbox: OutboxSpec | None = None,
    collections: Sequence[CollectionSpec | str] | None = None,
) -> IndexCheck:
    """Compare the index with the database: counts, every document's content, and the position."""
    ob = outbox or OutboxSpec()
    specs = _specs(collections)
    wm = engine.get_watermark()
    pos = Position.parse(engine.get_position())
    in_index = set(engine.collections())
    per: dict[str, dict[str, Any]] = {}
    content: dict[str, dict[str, Any]] = {}
    diffs: dict[str, Differences] = {}
    pending_ids: dict[str, list[str]] = {}
    problems: list[str] = []
    with connect(outbox_dsn, autocommit=False) as conn:
        _begin(conn)
        try:
            _, db_wm = outbox_bounds(conn, ob)
            derived = live_counts_from_outbox(conn, ob)
            tx = txid_expr(conn, ob)
            db_xmax = parse_pg_snapshot(one_row(conn.execute("SELECT pg_current_snapshot()::text"))[0])[1]
            n_pending, pending_keys = _pending(conn, ob, tx, wm, pos)
        except psycopg.Error as e:
            raise _db_error("reading", outbox_dsn, e, ob) from None
        if specs is None:
            specs = [CollectionSpec(name=n) for n in sorted(in_index | set(derived))]
        for s in specs:
            expected = _count_sql(conn, s.name, s.count_sql, outbox_dsn) if s.count_sql else derived.get(s.name, 0)
            source = "count_sql" if s.count_sql else "outbox"
            have = engine.count(s.name) if s.name in in_index else None
            per[s.name] = {"index": have, "db": expected, "source": source}
            if have is None:
                if expected:
                    per[s.name]["index"] = 0
                    problems.append(f"{s.name}: missing from the index; the database has {expected} live entities")
            elif have != expected:
                problems.append(
                    f"{s.name}: the index holds {have} documents, the database {expected} live entities ({source}); "
                    f"{abs(have - expected)} {'extra' if have > expected else 'missing'}"
                )
            pend = {k for c, k in pending_keys if c == s.name}
            d, stats, probs = _compare(conn, engine, ob, s, outbox_dsn, in_index=s.name in in_index,
                                       expected=max(expected, derived.get(s.name, 0)), pending=pend)
            problems += probs
            diffs[s.name], content[s.name] = d, stats
            pending_ids[s.name] = sorted(pend)
        conn.rollback()

        # every difference is read again (a live indexer may have moved on while the index was read)
        if any(d.total for d in diffs.values()):
            _begin(conn)
            try:
                pos2 = Position.parse(engine.get_position())
                _, keys2 = _pending(conn, ob, tx, engine.get_watermark(), pos2)
                for s in specs:
                    d = diffs[s.name]
                    ids = d.ids()
                    if not ids:
                        continue
                    now_pending = {k for c, k in keys2 if c == s.name}
                    sd, idx = _recheck(conn, engine, ob, s, outbox_dsn, ids)
                    sd = {k: v for k, v in sd.items() if k not in now_pending}
                    idx = {k: v for k, v in idx.items() if k not in now_pending}
                    again = classify(sd, idx)
                    moved = sorted(set(ids) & now_pending)
                    content[s.name]["settled"] = len(ids) - again.total - len(moved)
                    if moved:
                        pending_ids[s.name] = sorted(set(pending_ids[s.name]) | set(moved))
                    diffs[s.name] = again
            except psycopg.Error as e:
                raise _db_error("reading", outbox_dsn, e, ob) from None
            conn.rollback()

    for s in specs:
        d = diffs[s.name]
        if d.total:
            src = "documents_sql" if s.documents_sql else "the latest outbox row of each key"
            kinds = [f"{len(ids)} {kind} ({_name(ids)})" for kind, ids in
                     (("missing", d.missing), ("modified", d.modified), ("ghost", d.ghost)) if ids]
            problems.append(f"{s.name}: {d.total} document(s) differ from the database ({src}): " + "; ".join(kinds))

    mode = "id" if tx is None else "txid"
    if wm < db_wm:
        problems.append(f"watermark {wm} is behind the outbox's last id {db_wm}: {n_pending} change(s) not applied")
    elif wm > db_wm:
        problems.append(f"watermark {wm} is ahead of the outbox's last id {db_wm}: the index has changes the database lost")
    elif n_pending:
        problems.append(
            f"{n_pending} change(s) committed after the index's position are not applied (their transactions were in "
            "flight when the index passed their outbox ids); run `vigil search rebuild --catch-up`"
        )
    if pos is not None and pos.xmax is not None and tx is not None and pos.xmax > db_xmax:
        problems.append(
            f"the index's position has seen transactions up to {pos.xmax - 1}, beyond this database's ({db_xmax - 1}): "
            "the database lost changes the index holds"
        )
    return IndexCheck(
        ok=not problems,
        index_count=sum(int(v["index"] or 0) for v in per.values()),
        db_count=sum(int(v["db"]) for v in per.values()),
        index_watermark=wm,
        db_watermark=db_wm,
        collections=per,
        problems=problems,
        mode=mode,
        pending=n_pending,
        content=content,
        diffs=diffs,
        pending_ids=pending_ids,
    )


# --- the repair --------------------------------------------------------------------------------


@dataclass
class RepairResult:
    """What :func:`repair_index` did, per collection, and what still differs after it."""

    upserted: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    remaining: dict[str, list[str]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused and not any(self.remaining.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "upserted": {k: _listing(v) for k, v in self.upserted.items()},
            "deleted": {k: _listing(v) for k, v in self.deleted.items()},
            "created_collections": list(self.created),
            "refused": self.refused[:LIST_LIMIT],
            "remaining": {k: _listing(v) for k, v in self.remaining.items() if v},
        }


def repair_index(
    engine: SearchEngine,
    outbox_dsn: str,
    check: IndexCheck,
    *,
    outbox: OutboxSpec | None = None,
    collections: Sequence[CollectionSpec | str] | None = None,
    batch_size: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> RepairResult:
    """Fix the ids ``check`` found different, and verify each one afterwards."""
    ob = outbox or OutboxSpec()
    specs = {s.name: s for s in (_specs(collections) or [])}
    res = RepairResult()
    with connect(outbox_dsn, autocommit=False) as conn:
        for name, d in check.diffs.items():
            ids = d.ids()
            if not ids:
                continue
            spec = specs.get(name) or CollectionSpec(name=name)
            if name not in engine.collections():
                engine.create_collection(spec.typesense_schema(), exist_ok=True)
                res.created.append(name)
            ups: list[str] = []
            dels: list[str] = []
            for k in range(0, len(ids), batch_size):
                part = ids[k : k + batch_size]
                _begin(conn)
                src = _SourceRows(conn, ob, spec, outbox_dsn)
                try:
                    now = {key: doc for key, doc in src.docs(ids=part) if doc is not None}
                except psycopg.Error as e:
                    raise _db_error("reading the documents", outbox_dsn, e, ob) from None
                conn.rollback()
                docs = [{**now[i], "id": i} for i in part if i in now]
                gone = [i for i in part if i not in now and i not in src.bad]  # unreadable: never deleted
                for i in sorted(set(part) & set(src.bad)):
                    res.refused.append({"collection": name, "doc_id": i, "error": f"not repaired: {src.bad[i]}"})
                if docs:
                    r = engine.import_documents(name, docs, action="upsert")
                    refused = {de.index for de in r.errors}
                    for de in r.errors:
                        res.refused.append({"collection": name, "doc_id": de.doc_id, "error": de.error})
                    ups += [docs[j]["id"] for j in range(len(docs)) if j not in refused]
                if gone:
                    engine.delete_documents(name, gone)
                    dels += gone
                if progress is not None:
                    progress(f"{name}: {len(ups)} upserted, {len(dels)} deleted of {len(ids)}")
            res.upserted[name], res.deleted[name] = sorted(ups), sorted(dels)
            # read back: the source now and the index now agree on every repaired id?
            _begin(conn)
            try:
                sd, idx = _recheck(conn, engine, ob, spec, outbox_dsn, ids)
            except psycopg.Error as e:
                raise _db_error("reading the documents", outbox_dsn, e, ob) from None
            conn.rollback()
            res.remaining[name] = classify(sd, idx).ids()
    return res


__all__ = ["IndexCheck", "RepairResult", "check_index", "live_counts_from_outbox", "repair_index"]
