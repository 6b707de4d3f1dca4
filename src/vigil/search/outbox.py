"""Re-seed a search index from the platform's transactional outbox, and check it against the database.

The outbox is a PostgreSQL table the platform writes in the same transaction as the entity change
(one row per change: collection, document id, upsert or delete, the whole document). The index
remembers the id of the last row it applied: its *watermark*. A rebuild is

1. restore a snapshot (its watermark W comes with it), or start empty (W = 0);
2. read the rows with ``W < id <= max(id)`` in id order, ``batch_size`` at a time (keyset
   pagination on the primary key: no long transaction on the database), collapse each batch to the
   last change per document, and apply it as upserts and deletes with the watermark set to the
   batch's last id, in one transaction on the embedded engine.

Replaying a row twice is harmless (an upsert of the whole document, or a delete), which is what
makes a snapshot taken while writes go on safe: the engine reads its watermark *before* exporting.

Limits, said plainly: ids come from a sequence, so on a live database a transaction can commit a
smaller id after a larger one was read; a rebuild meant to catch up a live index should run again
(it is idempotent). After a restore (the DR drill) nothing writes and the outbox is exact. An outbox
that is pruned needs ``count_sql`` on each collection for :func:`check_index`, and cannot re-seed
from a snapshot older than the pruning (a warning says so).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from vigil.search.engine import Change, ImportFailed, DocumentError, SearchEngine, SearchError, Snapshot, load_snapshot
from vigil.search.spec import CollectionSpec, OutboxSpec

try:  # psycopg is a dependency; keep import errors readable
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]
    sql = None  # type: ignore[assignment]


# --- connecting --------------------------------------------------------------------------------


def conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy-style one (``postgresql+psycopg://`` -> ``postgresql://``)."""
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgres+psycopg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a display helper never fails
        return url.split("@")[-1]


def connect(url: str, *, autocommit: bool = True) -> "psycopg.Connection":
    if psycopg is None:  # pragma: no cover
        raise SearchError("psycopg is not installed", hint="pip install 'psycopg[binary]'")
    try:
        return psycopg.connect(conninfo(url), autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as e:
        raise SearchError(
            f"cannot connect to the outbox database {_redact(url)}: {str(e).strip()}",
            hint="is PostgreSQL running there, and is the URL (outbox.url_env in the spec, or --outbox-url) right?",
        ) from None


def _table(outbox: OutboxSpec) -> "sql.Composable":
    return sql.Identifier(*outbox.table.split("."))


def _cols(outbox: OutboxSpec) -> dict[str, "sql.Identifier"]:
    return {
        "id": sql.Identifier(outbox.watermark_column),
        "collection": sql.Identifier(outbox.collection_column),
        "key": sql.Identifier(outbox.key_column),
        "op": sql.Identifier(outbox.op_column),
        "document": sql.Identifier(outbox.document_column),
    }


def _db_error(what: str, url: str, e: Exception, outbox: OutboxSpec) -> SearchError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return SearchError(
        f"{what} from {outbox.table} in {_redact(url)} failed: {msg}",
        hint=f"check backups.search.outbox in the spec (table {outbox.table!r}, columns "
        f"{outbox.watermark_column}, {outbox.collection_column}, {outbox.key_column}, {outbox.op_column}, {outbox.document_column})",
    )


def create_outbox_table(conn_or_url: Any, outbox: OutboxSpec | None = None) -> None:
    """Create the outbox table (if missing) with the columns ``outbox`` names. For demos and tests."""
    ob = outbox or OutboxSpec()
    c = _cols(ob)
    stmt = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} ("
        " {id} bigserial PRIMARY KEY,"
        " {collection} text NOT NULL,"
        " {key} text NOT NULL,"
        " {op} text NOT NULL DEFAULT 'upsert',"
        " {document} jsonb,"
        " created_at timestamptz NOT NULL DEFAULT now())"
    ).format(t=_table(ob), **c)
    if isinstance(conn_or_url, str):
        with connect(conn_or_url) as conn:
            conn.execute(stmt)
    else:
        conn_or_url.execute(stmt)


# --- the rebuild -------------------------------------------------------------------------------


@dataclass
class RebuildResult:
    """What a rebuild did and where the index stands after it."""

    count: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    watermark: int = 0
    snapshot_watermark: int = 0
    target_watermark: int = 0
    restored: int = 0
    applied: int = 0
    upserts: int = 0
    deletes: int = 0
    batches: int = 0
    restore_seconds: float = 0.0
    reseed_seconds: float = 0.0
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshot: str | None = None

    @property
    def docs_per_second(self) -> float:
        return self.applied / self.reseed_seconds if self.reseed_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["docs_per_second"] = round(self.docs_per_second, 1)
        d["ok"] = self.ok
        for k in ("restore_seconds", "reseed_seconds", "seconds"):
            d[k] = round(d[k], 3)
        return d


def _specs(collections: Sequence[CollectionSpec | str] | None) -> list[CollectionSpec] | None:
    if not collections:  # None or empty: every collection (the spec's empty list means the same)
        return None
    return [c if isinstance(c, CollectionSpec) else CollectionSpec(name=c) for c in collections]


def outbox_bounds(conn: "psycopg.Connection", outbox: OutboxSpec) -> tuple[int, int]:
    """(min id, max id) of the outbox; (0, 0) when it is empty."""
    c = _cols(outbox)
    row = conn.execute(
        sql.SQL("SELECT coalesce(min({id}), 0), coalesce(max({id}), 0) FROM {t}").format(t=_table(outbox), **c)
    ).fetchone()
    return int(row[0]), int(row[1])


def read_outbox(
    conn: "psycopg.Connection",
    outbox: OutboxSpec,
    *,
    after: int,
    upto: int,
    batch_size: int,
    collections: Sequence[str] | None = None,
) -> Iterator[list[tuple[int, str, str, str, Any]]]:
    """Batches of outbox rows ``(id, collection, doc_id, op, document)`` with ``after < id <= upto``, in id order."""
    c = _cols(outbox)
    where = sql.SQL("{id} > %s AND {id} <= %s").format(**c)
    if collections is not None:
        where = sql.SQL("{w} AND {collection} = ANY(%s)").format(w=where, **c)
    q = sql.SQL(
        "SELECT {id}, {collection}, {key}, {op}, {document}::text FROM {t} WHERE {where} ORDER BY {id} LIMIT %s"
    ).format(t=_table(outbox), where=where, **c)
    last = after
    while last < upto:
        params: list[Any] = [last, upto]
        if collections is not None:
            params.append(list(collections))
        params.append(batch_size)
        rows = conn.execute(q, params).fetchall()
        if not rows:
            return
        yield rows
        last = int(rows[-1][0])


def _collapse(rows: list[tuple], delete_ops: frozenset[str]) -> tuple[list[Change], list[int], list[dict[str, Any]]]:
    """The last change per document (rows in id order), their outbox ids, and rows that are unusable."""
    last: dict[tuple[str, str], tuple[int, Change]] = {}
    bad: list[dict[str, Any]] = []
    for oid, coll, key, op, doc_text in rows:
        if op in delete_ops:
            last[(coll, key)] = (oid, Change(coll, key, "delete"))
            continue
        if doc_text is None:
            bad.append({"outbox_id": oid, "collection": coll, "doc_id": key, "error": f"op {op!r} without a document (NULL)"})
            last.pop((coll, key), None)
            continue
        try:
            doc = json.loads(doc_text)
        except ValueError as e:  # jsonb is always valid JSON; a text column may not be
            bad.append({"outbox_id": oid, "collection": coll, "doc_id": key, "error": f"document is not JSON: {e}"})
            last.pop((coll, key), None)
            continue
        last[(coll, key)] = (oid, Change(coll, key, "upsert", doc))
    ordered = sorted(last.values(), key=lambda x: x[0])
    return [c for _, c in ordered], [oid for oid, _ in ordered], bad


def rebuild(
    engine: SearchEngine,
    snapshot: Snapshot | str | Path | None,
    outbox_dsn: str,
    *,
    outbox: OutboxSpec | None = None,
    collections: Sequence[CollectionSpec | str] | None = None,
    batch_size: int = 5000,
    max_errors: int = 0,
    reset: bool = True,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RebuildResult:
    """Restore ``snapshot`` into ``engine``, then re-seed it from the outbox at ``outbox_dsn``.

    ``snapshot`` None: with ``reset`` (the default) the index's collections are dropped and the
    re-seed starts at watermark 0; without, it continues from the index's own watermark (catch-up).
    ``collections`` limits the rebuild to those collections (outbox rows of others are skipped) and
    gives the schemas to create missing collections with (default: every field auto-detected).
    Refused documents: up to ``max_errors`` are recorded in ``errors`` and the rebuild goes on;
    one more raises :class:`ImportFailed` with the watermark left at the last good batch.
    """
    ob = outbox or OutboxSpec()
    specs = _specs(collections)
    names = [c.name for c in specs] if specs is not None else None
    delete_ops = frozenset(ob.delete_ops)
    res = RebuildResult()
    t0 = clock()

    # 1. restore
    if snapshot is not None:
        snap = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)
        res.snapshot = str(snap.path)
        res.restored = engine.restore(snap)
        start = snap.watermark
    elif reset:
        for c in engine.collections():
            if names is None or c in names:
                engine.delete(c)
        engine.set_watermark(0)
        start = 0
    else:
        start = engine.get_watermark()
    res.snapshot_watermark = start
    t1 = clock()
    res.restore_seconds = t1 - t0

    # 2. re-seed
    known = set(engine.collections())
    with connect(outbox_dsn) as conn:
        try:
            lo, hi = outbox_bounds(conn, ob)
        except psycopg.Error as e:
            raise _db_error("reading the outbox bounds", outbox_dsn, e, ob) from None
        res.target_watermark = hi
        if start > hi:
            res.warnings.append(
                f"the index's watermark {start} is ahead of the outbox's last id {hi}: the index holds "
                f"{start - hi} change(s) the database does not have (lost by the restore?); rebuild from an "
                "older snapshot or from scratch to drop them"
            )
        elif start > 0 and lo > start + 1:
            res.warnings.append(
                f"the outbox starts at id {lo} but the index's watermark is {start}: rows {start + 1}..{lo - 1} "
                "may have been pruned, so changes can be missing; use a newer snapshot or rebuild from scratch"
            )
        applied_upto = start
        try:
            for rows in read_outbox(conn, ob, after=start, upto=hi, batch_size=batch_size, collections=names):
                batch_last = int(rows[-1][0])
                changes, ids, bad = _collapse(rows, delete_ops)
                for ch in changes:
                    if ch.collection not in known:
                        spec = next((s for s in specs or [] if s.name == ch.collection), None)
                        schema = spec.schema() if spec else CollectionSpec(name=ch.collection).schema()
                        engine.create_collection(schema, exist_ok=True)
                        known.add(ch.collection)
                budget = max_errors - len(res.errors) - len(bad)
                # a negative budget still validates the batch (so every refusal is reported) but commits nothing
                out = engine.apply(changes, batch_last, max_errors=budget)
                errs = sorted(
                    bad + [
                        {"outbox_id": ids[e.index], "collection": e.collection, "doc_id": e.doc_id, "error": e.error}
                        for e in out.errors
                    ],
                    key=lambda e: e["outbox_id"],
                )
                if not out.committed:
                    res.errors.extend(errs)
                    first = "; ".join(f"outbox id {e['outbox_id']} ({e['collection']}/{e['doc_id']}): {e['error']}" for e in errs[:3])
                    raise ImportFailed(
                        f"the re-seed stopped at watermark {applied_upto}: {len(res.errors)} document(s) refused, "
                        f"more than max_errors={max_errors}: {first}",
                        [DocumentError(e["collection"], e["outbox_id"], e["doc_id"], e["error"]) for e in res.errors],
                        hint="fix those outbox rows (or the collection schema) and run the rebuild again, "
                        "or allow them with --max-errors; the index is consistent up to the watermark",
                    )
                res.errors.extend(errs)
                res.applied += len(rows)
                res.upserts += out.upserts
                res.deletes += out.deletes
                res.batches += 1
                applied_upto = batch_last
                if progress is not None:
                    progress(res.applied, applied_upto)
        except psycopg.Error as e:
            raise _db_error("reading the outbox", outbox_dsn, e, ob) from None
    if hi > applied_upto:
        # rows of collections outside ``collections`` (or none at all) after the last batch
        engine.set_watermark(hi)
        applied_upto = hi
    t2 = clock()
    res.reseed_seconds = t2 - t1
    res.watermark = engine.get_watermark()
    res.counts = {c: engine.count(c) for c in engine.collections() if names is None or c in names}
    res.count = sum(res.counts.values())
    res.seconds = t2 - t0
    return res


# --- the check against the database ------------------------------------------------------------


@dataclass
class IndexCheck:
    """The index compared with the database: document counts and the watermark."""

    ok: bool
    index_count: int
    db_count: int
    index_watermark: int
    db_watermark: int
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("SET LOCAL statement_timeout = '120s'")
            row = conn.execute(query).fetchone()
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


def check_index(
    engine: SearchEngine,
    outbox_dsn: str,
    *,
    outbox: OutboxSpec | None = None,
    collections: Sequence[CollectionSpec | str] | None = None,
) -> IndexCheck:
    """Compare the index with the database.

    Expected documents per collection: the collection's ``count_sql`` when it has one, else the
    keys whose last outbox event is not a delete. Expected watermark: ``max(id)`` of the outbox.
    """
    ob = outbox or OutboxSpec()
    specs = _specs(collections)
    with connect(outbox_dsn) as conn:
        try:
            _, db_wm = outbox_bounds(conn, ob)
            derived = live_counts_from_outbox(conn, ob)
        except psycopg.Error as e:
            raise _db_error("reading", outbox_dsn, e, ob) from None
        in_index = set(engine.collections())
        if specs is None:
            specs = [CollectionSpec(name=n) for n in sorted(in_index | set(derived))]
        per: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        for s in specs:
            expected = _count_sql(conn, s.name, s.count_sql, outbox_dsn) if s.count_sql else derived.get(s.name, 0)
            source = "count_sql" if s.count_sql else "outbox"
            have = engine.count(s.name) if s.name in in_index else None
            per[s.name] = {"index": have, "db": expected, "source": source}
            if have is None:
                if expected:
                    problems.append(f"{s.name}: missing from the index; the database has {expected} live entities")
                    per[s.name]["index"] = 0
                continue
            if have != expected:
                problems.append(
                    f"{s.name}: the index holds {have} documents, the database {expected} live entities ({source}); "
                    f"{abs(have - expected)} {'extra' if have > expected else 'missing'}"
                )
    wm = engine.get_watermark()
    if wm < db_wm:
        problems.append(f"watermark {wm} is behind the outbox's last id {db_wm}: {db_wm - wm} change(s) not applied")
    elif wm > db_wm:
        problems.append(f"watermark {wm} is ahead of the outbox's last id {db_wm}: the index has changes the database lost")
    return IndexCheck(
        ok=not problems,
        index_count=sum(int(v["index"] or 0) for v in per.values()),
        db_count=sum(int(v["db"]) for v in per.values()),
        index_watermark=wm,
        db_watermark=db_wm,
        collections=per,
        problems=problems,
    )
