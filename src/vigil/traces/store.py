"""The trace store: spans written inside an ingest transaction, traces read back, retention.

Writes go through :func:`insert_batch` on the connection of the OTLP receiver's ingest transaction
(so a span's key row and the request telemetry counted for it commit together, or not at all).
Reads and retention take a :class:`vigil.store.Store`.

A span is kept as its export request's bytes (one compressed ``trace_batches`` row per request)
and one narrow ``trace_keys`` row (see :mod:`vigil.traces.tables`): the receiver does no per-span
encoding, and a trace is read by its keys, then from the batches holding its spans.

Retention is bounded two ways (``telemetry.traces``): by age (traces that started before
``retention`` are deleted whole) and by size (past ``max_spans`` the traces of the earliest
received batches go, whole). A batch goes with the last span it holds.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from itertools import chain
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa

from vigil.errors import StoreError
from vigil.store import db_errors
from vigil.traces.tables import LEGACY_BATCH, trace_batches, trace_keys, trace_spans
from vigil.traces.tree import SpanRecord, Tree, build_tree

if TYPE_CHECKING:
    from vigil.store import Store

CHUNK = 180
"""Key rows per INSERT (5 parameters each: under SQLite's and psycopg's limits)."""
ZLIB_LEVEL = 1
MAX_TRACE_SPANS = 10_000
"""The most spans of one trace read back (the answer says when it was cut)."""


def insert_batch(conn: sa.Connection, dialect: str, body: bytes, received_ms: int,
                 keys: Sequence[tuple[bytes, bytes, int, int, str]]) -> set[tuple[bytes, bytes]]:
    """Store an export request's spans: ``body`` (the request's protobuf) once, and a key row per
    span of ``keys`` (trace id and span id as bytes, its place in the request, start ns, service). Returns the (trace id, span id) of the
    spans that were new. A span stored already keeps its row (and its batch). On PostgreSQL a key
    another open transaction inserted waits for it: new here only if that one rolls back. When no
    span is new the batch is not kept."""
    if not keys:
        return set()
    ph = "?" if dialect == "sqlite" else "%s"
    starts = [k[3] for k in keys]
    bid = conn.exec_driver_sql(
        f"INSERT INTO trace_batches (received_ms, min_start_ns, max_start_ns, body) VALUES ({ph}, {ph}, {ph}, {ph}) RETURNING id",
        (received_ms, min(starts), max(starts), zlib.compress(body, ZLIB_LEVEL)),
    ).scalar_one()
    new: set[tuple[bytes, bytes]] = set()
    one = f"({ph}, {ph}, {bid:d}, {ph}, {ph}, {ph})"
    head = "INSERT INTO trace_keys (trace_id, span_id, batch, pos, start_ns, service) VALUES "
    tail = " ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
    full = None
    for i in range(0, len(keys), CHUNK):
        part = keys[i : i + CHUNK]
        if len(part) == CHUNK:
            if full is None:
                full = head + ", ".join([one] * CHUNK) + tail
            sql = full
        else:
            sql = head + ", ".join([one] * len(part)) + tail
        params = tuple(chain.from_iterable(part))
        new.update(tuple(r) for r in conn.exec_driver_sql(sql, params))  # (str, str) rows
    if not new:
        conn.exec_driver_sql(f"DELETE FROM trace_batches WHERE id = {bid:d}")
    return new


def _db(what: str):
    return db_errors(what, hint="check --db / VIGIL_DB and that the database is up")


class BatchCache:
    """Decoded batches, the most recently used kept, at most ``max_bytes`` of their protobuf (``vigil
    trace check`` reads many traces whose spans share batches)."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._d: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def get(self, bid: int) -> Any:
        got = self._d.get(bid)
        if got is None:
            return None
        self._d.move_to_end(bid)
        return got[0]

    def put(self, bid: int, msg: Any, size: int) -> None:
        if bid in self._d:
            self._bytes -= self._d.pop(bid)[1]
        self._d[bid] = (msg, size)
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._d) > 1:
            self._bytes -= self._d.popitem(last=False)[1][1]


def _decode_batch(bid: int, body: bytes) -> tuple[Any, int]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    msg = ExportTraceServiceRequest()
    try:
        data = zlib.decompress(body)
        msg.ParseFromString(data)
    except (zlib.error, DecodeError, RecursionError, ValueError) as e:
        raise StoreError(f"batch {bid} of stored spans cannot be read: {e}",
                         hint="the store was changed by hand or is damaged; restore it from a backup") from None
    return msg, len(data)


def read_trace(store: "Store", trace_id: str, *, limit: int = MAX_TRACE_SPANS, cache: BatchCache | None = None) -> Tree:
    """The trace as a tree (no spans: an empty tree). ``trace_id``: 32 hex digits, any case."""
    from vigil.telemetry.otlp.spans import service_of, span_fields

    tid = trace_id.strip().lower()
    try:
        tb = bytes.fromhex(tid)
    except ValueError:
        return build_tree(tid, [])
    k = trace_keys
    q = sa.select(k.c.span_id, k.c.batch, k.c.pos).where(k.c.trace_id == tb).order_by(k.c.start_ns, k.c.span_id).limit(limit + 1)
    with _db("reading the trace failed"), store.engine.connect() as conn:
        rows = conn.execute(q).all()
        truncated = len(rows) > limit
        rows = rows[:limit]
        wanted: dict[int, set[Any]] = {}  # batch -> the places of the trace's spans in it (legacy: span ids)
        for span_id, batch, pos in rows:
            wanted.setdefault(int(batch), set()).add(bytes(span_id).hex() if batch == LEGACY_BATCH else int(pos))
        recs: list[SpanRecord] = []
        legacy = wanted.pop(LEGACY_BATCH, None)
        if legacy:
            t = trace_spans
            lq = sa.select(t.c.trace_id, t.c.span_id, t.c.parent_span_id, t.c.service, t.c.name, t.c.kind, t.c.start_ns, t.c.end_ns,
                           t.c.status, t.c.attrs).where(t.c.trace_id == tid)
            recs += [SpanRecord(**r._mapping) for r in conn.execute(lq) if r.span_id in legacy]
        msgs = {bid: cache.get(bid) if cache is not None else None for bid in wanted}
        missing = [bid for bid, m in msgs.items() if m is None]
        for i in range(0, len(missing), 100):
            b = trace_batches
            for bid, body in conn.execute(sa.select(b.c.id, b.c.body).where(b.c.id.in_(missing[i : i + 100]))):
                msgs[int(bid)], size = _decode_batch(int(bid), body)
                if cache is not None:
                    cache.put(int(bid), msgs[int(bid)], size)
    for bid, places in wanted.items():
        msg = msgs.get(bid)
        if msg is None:  # a key without its batch: the trace would be shown with a hole
            raise StoreError(f"trace {tid}: batch {bid} of its spans is missing from the store",
                             hint="the store was changed by hand or is damaged; restore it from a backup")
        last = max(places)
        pos = 0
        for rs in msg.resource_spans:
            service = None
            for ss in rs.scope_spans:
                n = len(ss.spans)
                if pos + n <= last and not any(pos <= p < pos + n for p in places):
                    pos += n
                    continue
                for sp in ss.spans:
                    if pos in places:
                        if service is None:
                            service = service_of(rs)
                        recs.append(SpanRecord(*span_fields(sp, service)))  # SpanRecord's fields, in order
                    pos += 1
                    if pos > last:
                        break
                if pos > last:
                    break
            if pos > last:
                break
    recs.sort(key=lambda r: (r.start_ns, r.span_id))
    return build_tree(tid, recs, truncated=truncated)


def _batches_from(since_ns: int) -> Any:
    """The batches holding a span that started at or after ``since_ns`` (and the older layout's)."""
    b = trace_batches
    return sa.union_all(sa.select(b.c.id).where(b.c.max_start_ns >= since_ns), sa.select(sa.literal(LEGACY_BATCH)))


def _batches_before(before_ns: int) -> Any:
    """The batches holding a span that started before ``before_ns`` (and the older layout's)."""
    b = trace_batches
    return sa.union_all(sa.select(b.c.id).where(b.c.min_start_ns < before_ns), sa.select(sa.literal(LEGACY_BATCH)))


def recent_traces(store: "Store", since_ns: int, *, service: str | None = None, limit: int = 200) -> list[str]:
    """Trace ids (hex) with a span that started at or after ``since_ns`` (of ``service``, when given),
    newest first."""
    t = trace_keys
    q = sa.select(t.c.trace_id, sa.func.max(t.c.start_ns).label("last")).where(t.c.batch.in_(_batches_from(since_ns)), t.c.start_ns >= since_ns)
    if service is not None:
        q = q.where(t.c.service == service)
    q = q.group_by(t.c.trace_id).order_by(sa.desc("last"), t.c.trace_id).limit(limit)
    with _db("reading traces failed"), store.engine.connect() as conn:
        return [bytes(r[0]).hex() for r in conn.execute(q)]


def counts(store: "Store") -> dict[str, Any]:
    t = trace_keys
    with _db("reading traces failed"), store.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        lo, hi = conn.execute(sa.select(sa.func.min(t.c.start_ns), sa.func.max(t.c.start_ns))).one()
        batches = conn.execute(sa.select(sa.func.count()).select_from(trace_batches)).scalar_one()
    return {"spans": int(n), "oldest_start_ns": lo, "newest_start_ns": hi, "batches": int(batches)}


def purge(store: "Store", *, before_ns: int, max_spans: int) -> int:
    """Delete traces that started before ``before_ns``, then, while more than ``max_spans`` spans
    are kept, the traces of the earliest received batches. Whole traces go (a trace's start is its
    earliest span's), and every batch left without a span. Returns spans deleted."""
    t = trace_keys
    b = trace_batches
    deleted = 0

    def drop(traces: Any) -> int:
        return conn.execute(sa.delete(t).where(t.c.trace_id.in_(traces))).rowcount or 0

    try:
        with store.engine.begin() as conn:
            # spans that started before the cut are found through the batches that can hold one
            deleted += drop(sa.select(t.c.trace_id).where(t.c.batch.in_(_batches_before(before_ns)), t.c.start_ns < before_ns)
                            .distinct().scalar_subquery())
            n = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            if n > max_spans:
                # the earliest batches holding at least the excess (the older layout's first), then
                # every trace with a span in them (no index of every span's start to sort by)
                excess, old = n - max_spans, []
                ids = conn.execute(sa.union_all(sa.select(sa.literal(LEGACY_BATCH).label("id")), sa.select(b.c.id)).order_by("id")).all()
                for (bid,) in ids:
                    old.append(bid)
                    excess -= conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.batch == bid)).scalar_one()
                    if excess <= 0:
                        break
                for i in range(0, len(old), 500):
                    deleted += drop(sa.select(t.c.trace_id).where(t.c.batch.in_(old[i : i + 500])).distinct().scalar_subquery())
            if deleted:
                conn.execute(sa.delete(b).where(~sa.exists().where(t.c.batch == b.c.id)))
                s = trace_spans
                if conn.execute(sa.select(s.c.trace_id).limit(1)).first() is not None:
                    # the older layout's rows whose key went (hex ids there, bytes in the keys)
                    kept = {(bytes(x).hex(), bytes(y).hex()) for x, y in conn.execute(
                        sa.select(t.c.trace_id, t.c.span_id).where(t.c.batch == LEGACY_BATCH))}
                    gone = [r for r in conn.execute(sa.select(s.c.trace_id, s.c.span_id)) if (r[0], r[1]) not in kept]
                    for i in range(0, len(gone), 400):
                        conn.execute(sa.delete(s).where(sa.tuple_(s.c.trace_id, s.c.span_id).in_([tuple(r) for r in gone[i : i + 400]])))
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
        raise StoreError(f"trace retention failed: {getattr(e, 'orig', None) or e}", hint="it runs again on the next export") from None
    return deleted
