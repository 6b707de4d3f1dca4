"""Re-seed a search index from the platform's transactional outbox.

The outbox is a PostgreSQL table the platform writes in the same transaction as the entity change
(one row per change: collection, document id, upsert or delete, the whole document). A rebuild is

1. restore a snapshot (its watermark and position come with it), or start empty;
2. read the outbox rows the index has not seen, in id order, ``batch_size`` at a time (keyset
   pagination on the primary key: no long transaction on the database), collapse each batch to the
   last change per document, and apply it as upserts and deletes together with the index's new
   watermark and position (one transaction on the embedded engine).

Replaying a row twice is harmless (an upsert of the whole document, or a delete), which is what
makes a snapshot taken while writes go on safe: the engine reads its watermark before exporting.

**Transactions in flight.** Ids come from a sequence, so a transaction can take id 10, a second one
id 11 and commit first: a reader that remembers only "the last id applied" passes 10 while it is
invisible and never comes back for it. So each outbox row also records the id of the transaction
that wrote it (``txid xid8 DEFAULT pg_current_xact_id()``; :func:`create_outbox_table` adds it), and
the index remembers, besides the watermark, a **position**: the PostgreSQL snapshot
(``pg_current_snapshot()``, i.e. ``xmin:xmax:in-progress xids``) of the last pass it completed. A pass
applies exactly the rows whose transaction is visible in a new snapshot and was not visible in the
position's (``pg_visible_in_snapshot``), the way PgQ batches events between two ticks: a row whose
transaction was in flight last time is picked up as soon as it commits, however small its id, and
nothing is applied twice. Rows of one document keep their order: the later writer of a document
waits for the earlier one's row lock, so any snapshot that sees the later commit sees the earlier.
While a pass runs, the position also holds the pass's target snapshot and the last id applied, so a
crashed pass resumes where it stopped.

An outbox without the txid column (``outbox.txid_column``; default ``txid``) falls back to the id
watermark alone, with a warning: exact after a restore (nothing writes), but a live catch-up can
skip a late commit; ``vigil search check`` then finds it and ``--repair`` fixes it. Outbox txids
ahead of the database's own transaction counter (a logical copy of the table) also fall back, with
a warning, because a snapshot of that database cannot judge them.

An outbox that is pruned needs ``count_sql`` / ``documents_sql`` on each collection for the check,
and cannot re-seed from a snapshot older than the pruning (a warning says so).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import psycopg
from psycopg import sql

from vigil.pgconn import libpq_dsn as conninfo  # noqa: F401  (re-exported: one PostgreSQL helper, vigil.pgconn)
from vigil.pgconn import redact as _redact
from vigil.search.engine import Change, DocumentError, ImportFailed, IndexSnapshot, SearchEngine, SearchError, load_snapshot
from vigil.search.spec import CollectionSpec, OutboxSpec

# --- connecting --------------------------------------------------------------------------------




def one_row(cur: Any) -> tuple:
    """The row of a query that always returns exactly one (an aggregate, a SELECT without FROM)."""
    row = cur.fetchone()
    if row is None:
        raise AssertionError("the query returned no row")
    return tuple(row)


def connect(url: str, *, autocommit: bool = True) -> "psycopg.Connection":
    """A connection to the outbox database, or :class:`SearchError` (exit 3) naming it without secrets."""
    from vigil import pgconn

    return pgconn.connect(
        url, what="the outbox database", error=SearchError, autocommit=autocommit,
        hint="is PostgreSQL running there, and is the URL (outbox.url_env in the spec, or --outbox-url) right?",
    )


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
    """Create the outbox table (if missing) with the columns ``outbox`` names, and the txid column
    with an index on it (unless ``outbox.txid_column`` is None). For demos and tests; the DDL is
    what a platform's own migration should create."""
    ob = outbox or OutboxSpec()
    c = _cols(ob)
    txid = (
        sql.SQL(", {x} xid8 NOT NULL DEFAULT pg_current_xact_id()").format(x=sql.Identifier(ob.txid_column))
        if ob.txid_column else sql.SQL("")
    )
    stmts = [sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} ("
        " {id} bigserial PRIMARY KEY,"
        " {collection} text NOT NULL,"
        " {key} text NOT NULL,"
        " {op} text NOT NULL DEFAULT 'upsert',"
        " {document} jsonb,"
        " created_at timestamptz NOT NULL DEFAULT now(){txid})"
    ).format(t=_table(ob), txid=txid, **c)]
    if ob.txid_column:
        stmts.append(sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} ({x})").format(
            i=sql.Identifier(f"{ob.table.split('.')[-1]}_{ob.txid_column}_idx"), t=_table(ob), x=sql.Identifier(ob.txid_column)))
    if isinstance(conn_or_url, str):
        with connect(conn_or_url) as conn:
            for st in stmts:
                conn.execute(st)
    else:
        for st in stmts:
            conn_or_url.execute(st)


# --- positions: which transactions the index has seen ------------------------------------------


def parse_pg_snapshot(text: str) -> tuple[int, int, frozenset[int]]:
    """``xmin:xmax:xip,...`` (PostgreSQL's pg_snapshot text) as (xmin, xmax, in-progress xids)."""
    try:
        a, b, c = text.split(":")
        xmin, xmax = int(a), int(b)
        xip = frozenset(int(x) for x in c.split(",") if x)
    except ValueError:
        raise ValueError(f"not a pg_snapshot: {text!r}") from None
    if not (0 < xmin <= xmax) or any(not (xmin <= x < xmax) for x in xip):
        raise ValueError(f"not a pg_snapshot: {text!r}")
    return xmin, xmax, xip


@dataclass(frozen=True)
class Position:
    """What the index has applied, in transaction terms.

    ``done``: every outbox row whose transaction is visible in this snapshot is applied (None: no
    pass completed yet). ``cur`` and ``after``: a pass towards snapshot ``cur`` is under way, and its
    rows (visible in ``cur``, not in ``done``) with id <= ``after`` are applied too.
    """

    done: str | None = None
    cur: str | None = None
    after: int = 0

    def text(self) -> str:
        return json.dumps({"v": 1, "done": self.done, "cur": self.cur, "after": self.after}, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None) -> "Position | None":
        if text is None:
            return None
        try:
            d = json.loads(text)
            if not isinstance(d, dict) or d.get("v") != 1:
                raise ValueError("unknown format")
            pos = cls(done=d.get("done"), cur=d.get("cur"), after=int(d.get("after") or 0))
            for snap in (pos.done, pos.cur):
                if snap is not None:
                    parse_pg_snapshot(snap)
        except (ValueError, TypeError) as e:
            raise SearchError(
                f"the index's outbox position is unreadable ({e}): {text[:200]!r}",
                hint="rebuild the index from a snapshot or from scratch (`vigil search rebuild --snapshot none`)",
            ) from None
        return pos

    @property
    def xmax(self) -> int | None:
        snap = self.cur or self.done
        return parse_pg_snapshot(snap)[1] if snap else None


def txid_expr(conn: "psycopg.Connection", outbox: OutboxSpec, warnings: list[str] | None = None) -> "sql.Composable | None":
    """The SQL expression of a row's transaction id (xid8), or None when the outbox has no usable
    txid column (``warnings`` says why, when the spec named one)."""
    if not outbox.txid_column:
        if warnings is not None:
            warnings.append(
                "outbox.txid_column is null: changes are tracked by outbox id alone, so on a live database a transaction "
                "that commits after a later one can be skipped; `vigil search check` finds such documents"
            )
        return None
    row = conn.execute(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        (_table(outbox).as_string(conn), outbox.txid_column),
    ).fetchone()
    col = sql.Identifier(outbox.txid_column)
    if row is not None and row[0] == "xid8":
        return col
    if row is not None and row[0] == "bigint":  # txid_current() before PostgreSQL 13
        return sql.SQL("({c}::text::xid8)").format(c=col)
    if warnings is not None:
        what = "has no column" if row is None else f"has a column of type {row[0]}, not xid8,"
        warnings.append(
            f"the outbox {outbox.table} {what} {outbox.txid_column!r}: changes are tracked by outbox id alone, so a "
            "transaction that commits after a later one can be skipped on a live database; add it with "
            f"`ALTER TABLE {outbox.table} ADD COLUMN {outbox.txid_column} xid8 NOT NULL DEFAULT pg_current_xact_id()` "
            "(and an index on it), or run `vigil search check` after each catch-up"
        )
    return None


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
    position: str | None = None
    mode: str = "id"
    """``txid``: rows tracked by transaction (in-flight safe); ``id``: by outbox id alone."""

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
    row = one_row(conn.execute(
        sql.SQL("SELECT coalesce(min({id}), 0), coalesce(max({id}), 0) FROM {t}").format(t=_table(outbox), **c)
    ))
    return int(row[0]), int(row[1])


def _select(outbox: OutboxSpec) -> "sql.Composable":
    c = _cols(outbox)
    return sql.SQL("SELECT {id}, {collection}, {key}::text, {op}, {document}::text FROM {t}").format(t=_table(outbox), **c)


def read_outbox(
    conn: "psycopg.Connection",
    outbox: OutboxSpec,
    *,
    after: int,
    upto: int,
    batch_size: int,
    collections: Sequence[str] | None = None,
) -> Iterator[list[tuple[int, str, str, str, Any]]]:
    """Batches of outbox rows ``(id, collection, doc_id, op, document)`` with ``after < id <= upto``, in id order
    (the id watermark alone: for outboxes without a txid column)."""
    c = _cols(outbox)
    where = sql.SQL("{id} > %s AND {id} <= %s").format(**c)
    if collections is not None:
        where = sql.SQL("{w} AND {collection} = ANY(%s)").format(w=where, **c)
    q = sql.SQL("{sel} WHERE {where} ORDER BY {id} LIMIT %s").format(sel=_select(outbox), where=where, **c)
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


def read_outbox_between(
    conn: "psycopg.Connection",
    outbox: OutboxSpec,
    tx: "sql.Composable",
    *,
    done: str | None,
    target: str,
    after: int,
    batch_size: int,
    collections: Sequence[str] | None = None,
) -> Iterator[list[tuple[int, str, str, str, Any]]]:
    """Batches of the rows whose transaction is visible in snapshot ``target`` and was not visible in
    ``done`` (None: any), with id > ``after``, in id order. Each batch is its own statement."""
    c = _cols(outbox)
    where = sql.SQL("pg_visible_in_snapshot({x}, %(target)s::pg_snapshot) AND {id} > %(after)s").format(x=tx, **c)
    if done is not None:
        where = sql.SQL(
            "{w} AND {x} >= pg_snapshot_xmin(%(done)s::pg_snapshot) AND NOT pg_visible_in_snapshot({x}, %(done)s::pg_snapshot)"
        ).format(w=where, x=tx)
    if collections is not None:
        where = sql.SQL("{w} AND {collection} = ANY(%(colls)s)").format(w=where, **c)
    q = sql.SQL("{sel} WHERE {where} ORDER BY {id} LIMIT %(n)s").format(sel=_select(outbox), where=where, **c)
    params: dict[str, Any] = {"target": target, "done": done, "colls": list(collections or []), "n": batch_size, "after": after}
    while True:
        rows = conn.execute(q, params).fetchall()
        if not rows:
            return
        yield rows
        params["after"] = int(rows[-1][0])


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


@dataclass
class _Pass:
    """One re-seed pass: by id (``target`` None: ``after < id <= upto``) or by snapshot."""

    after: int
    upto: int = 0
    done: str | None = None
    target: str | None = None


def rebuild(
    engine: SearchEngine,
    snapshot: IndexSnapshot | str | Path | None,
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
    re-seed starts from nothing; without, it continues from the index's own position (catch-up).
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
        snap = snapshot if isinstance(snapshot, IndexSnapshot) else load_snapshot(snapshot)
        res.snapshot = str(snap.path)
        res.restored = engine.restore(snap)
        start, pos_text = snap.watermark, snap.position
    elif reset:
        for c in engine.collections():
            if names is None or c in names:
                engine.delete(c)
        engine.set_position(None)
        engine.set_watermark(0)
        start, pos_text = 0, None
    else:
        start, pos_text = engine.get_watermark(), engine.get_position()
    pos = Position.parse(pos_text)
    res.snapshot_watermark = start
    t1 = clock()
    res.restore_seconds = t1 - t0

    # 2. re-seed
    known = set(engine.collections())
    watermark = start
    with connect(outbox_dsn) as conn:
        try:
            tx = txid_expr(conn, ob, res.warnings)
            now_snap = None
            if tx is not None:
                # one statement: the snapshot and the bounds it sees
                row = one_row(conn.execute(
                    sql.SQL("SELECT pg_current_snapshot()::text, coalesce(min({id}), 0), coalesce(max({id}), 0), max({x})::text FROM {t}").format(
                        t=_table(ob), x=tx, **_cols(ob))
                ))
                now_snap, lo, hi = row[0], int(row[1]), int(row[2])
                if row[3] is not None and int(row[3]) >= parse_pg_snapshot(now_snap)[1]:
                    res.warnings.append(
                        f"the outbox's {ob.txid_column} values (up to {row[3]}) are ahead of this database's transaction counter "
                        f"({parse_pg_snapshot(now_snap)[1]}): the table was copied from another cluster, so rows are tracked by id alone"
                    )
                    tx = None
            else:
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
        passes: list[_Pass] = []
        res.mode = "id" if tx is None else "txid"
        if tx is None:
            passes.append(_Pass(after=start, upto=hi))
        else:
            assert now_snap is not None
            if pos is None:
                if start > 0:
                    res.warnings.append(
                        f"the index has no outbox position (made by an older vigil, or fed without a txid column): "
                        f"it resumes after outbox id {start}, so a change that was in flight below that id can be "
                        "missing; `vigil search check` finds such documents and `--repair` fixes them"
                    )
                passes.append(_Pass(after=start, target=now_snap))
            else:
                if pos.xmax is not None and pos.xmax > parse_pg_snapshot(now_snap)[1]:
                    res.warnings.append(
                        f"the index's position has seen transactions up to {pos.xmax - 1}, beyond this database's "
                        f"({parse_pg_snapshot(now_snap)[1] - 1}): the database lost changes the index holds (restored "
                        "to an earlier point?); rebuild from an older snapshot or from scratch"
                    )
                done = pos.done
                if pos.cur is not None:  # finish the pass that was under way
                    passes.append(_Pass(after=pos.after, done=pos.done, target=pos.cur))
                    done = pos.cur
                if done != now_snap:
                    passes.append(_Pass(after=0, done=done, target=now_snap))
        try:
            for p in passes:
                if p.target is None:
                    batches = read_outbox(conn, ob, after=p.after, upto=p.upto, batch_size=batch_size, collections=names)
                else:
                    assert tx is not None  # a pass with a target is made in txid mode only
                    batches = read_outbox_between(
                        conn, ob, tx, done=p.done, target=p.target, after=p.after, batch_size=batch_size, collections=names
                    )
                for rows in batches:
                    batch_last = int(rows[-1][0])
                    changes, ids, bad = _collapse(rows, delete_ops)
                    for ch in changes:
                        if ch.collection not in known:
                            spec = next((s for s in specs or [] if s.name == ch.collection), None)
                            schema = spec.typesense_schema() if spec else CollectionSpec(name=ch.collection).typesense_schema()
                            engine.create_collection(schema, exist_ok=True)
                            known.add(ch.collection)
                    budget = max_errors - len(res.errors) - len(bad)
                    new_wm = max(watermark, batch_last)
                    position = Position(done=p.done, cur=p.target, after=batch_last).text() if p.target is not None else None
                    # a negative budget still validates the batch (so every refusal is reported) but commits nothing
                    out = engine.apply(changes, new_wm, max_errors=budget, position=position)
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
                            f"the re-seed stopped at watermark {watermark}: {len(res.errors)} document(s) refused, "
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
                    watermark = new_wm
                    if progress is not None:
                        progress(res.applied, watermark)
                if p.target is not None:
                    engine.set_position(Position(done=p.target).text())
        except psycopg.Error as e:
            raise _db_error("reading the outbox", outbox_dsn, e, ob) from None
    if tx is None and pos is not None:
        engine.set_position(None)  # tracked by id from now on; a stale position would mislead the next pass
    if hi > watermark:
        # rows of collections outside ``collections`` (or none at all) after the last batch
        engine.set_watermark(hi)
    t2 = clock()
    res.reseed_seconds = t2 - t1
    res.watermark = engine.get_watermark()
    res.position = engine.get_position()
    res.counts = {c: engine.count(c) for c in engine.collections() if names is None or c in names}
    res.count = sum(res.counts.values())
    res.seconds = t2 - t0
    return res


def __getattr__(name: str) -> Any:
    """The check against the database lives in :mod:`vigil.search.check`; old imports keep working."""
    if name in ("check_index", "IndexCheck", "live_counts_from_outbox", "repair_index", "RepairResult"):
        from vigil.search import check

        return getattr(check, name)
    raise AttributeError(f"module 'vigil.search.outbox' has no attribute {name!r}")
