"""The trace store: spans written inside an ingest transaction, traces read back, retention.

Writes go through :func:`insert_spans` on the connection of the OTLP receiver's ingest transaction
(so a span's row and the request telemetry counted for it commit together, or not at all). Reads
and retention take a :class:`vigil.store.Store`.

Retention is bounded two ways (``telemetry.traces``): by age (traces that started before
``retention`` are deleted whole) and by size (past ``max_spans`` the oldest traces go, whole).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa

from vigil.errors import StoreError
from vigil.store import db_errors
from vigil.traces.tables import trace_spans
from vigil.traces.tree import SpanRecord, Tree, build_tree

if TYPE_CHECKING:
    from vigil.store import Store

COLUMNS = ("trace_id", "span_id", "parent_span_id", "service", "name", "kind", "start_ns", "end_ns", "status", "attrs", "received_ms")
CHUNK = 900
MAX_TRACE_SPANS = 10_000
"""The most spans of one trace read back (the answer says when it was cut)."""


def insert_spans(conn: sa.Connection, dialect: str, rows: Sequence[tuple]) -> set[tuple[str, str]]:
    """Insert span rows (in :data:`COLUMNS` order); returns the (trace id, span id) of the rows that
    were new. A row whose span is stored already is left as it is. On PostgreSQL a row another open
    transaction inserted waits for it: new here only if that one rolls back."""
    new: set[tuple[str, str]] = set()
    ph = "?" if dialect == "sqlite" else "%s"
    one = "(" + ", ".join([ph] * len(COLUMNS)) + ")"
    for i in range(0, len(rows), CHUNK):
        part = rows[i : i + CHUNK]
        sql = (
            f"INSERT INTO trace_spans ({', '.join(COLUMNS)}) VALUES {', '.join([one] * len(part))} "
            "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
        )
        params = tuple(v for r in part for v in r)
        for tid, sid in conn.exec_driver_sql(sql, params):
            new.add((tid, sid))
    return new


def _db(what: str):
    return db_errors(what, hint="check --db / VIGIL_DB and that the database is up")


def read_trace(store: "Store", trace_id: str, *, limit: int = MAX_TRACE_SPANS) -> Tree:
    """The trace as a tree (no spans: an empty tree). ``trace_id``: 32 hex digits, any case."""
    tid = trace_id.strip().lower()
    t = trace_spans
    q = (
        sa.select(t.c.trace_id, t.c.span_id, t.c.parent_span_id, t.c.service, t.c.name, t.c.kind, t.c.start_ns, t.c.end_ns, t.c.status, t.c.attrs)
        .where(t.c.trace_id == tid)
        .order_by(t.c.start_ns, t.c.span_id)
        .limit(limit + 1)
    )
    with _db("reading the trace failed"), store.engine.connect() as conn:
        rows = conn.execute(q).all()
    truncated = len(rows) > limit
    recs = [SpanRecord(*r) for r in rows[:limit]]  # type: ignore[call-arg]  # the selected columns, in field order
    return build_tree(tid, recs, truncated=truncated)


def recent_traces(store: "Store", since_ns: int, *, service: str | None = None, limit: int = 200) -> list[str]:
    """Trace ids with a span that started at or after ``since_ns`` (of ``service``, when given),
    newest first."""
    t = trace_spans
    q = sa.select(t.c.trace_id, sa.func.max(t.c.start_ns).label("last")).where(t.c.start_ns >= since_ns)
    if service is not None:
        q = q.where(t.c.service == service)
    q = q.group_by(t.c.trace_id).order_by(sa.desc("last")).limit(limit)
    with _db("reading traces failed"), store.engine.connect() as conn:
        return [r[0] for r in conn.execute(q)]


def counts(store: "Store") -> dict[str, Any]:
    t = trace_spans
    with _db("reading traces failed"), store.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        lo, hi = conn.execute(sa.select(sa.func.min(t.c.start_ns), sa.func.max(t.c.start_ns))).one()
    return {"spans": int(n), "oldest_start_ns": lo, "newest_start_ns": hi}


def purge(store: "Store", *, before_ns: int, max_spans: int) -> int:
    """Delete traces that started before ``before_ns``, then the oldest traces while more than
    ``max_spans`` spans are kept. Whole traces go (a trace's start is its earliest span's).
    Returns spans deleted."""
    t = trace_spans
    deleted = 0
    try:
        with store.engine.begin() as conn:
            old = sa.select(t.c.trace_id).where(t.c.start_ns < before_ns).distinct().scalar_subquery()
            deleted += conn.execute(sa.delete(t).where(t.c.trace_id.in_(old))).rowcount or 0
            n = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            if n > max_spans:
                # the start of the span that, oldest first, is the first of the ones to keep
                cut = conn.execute(
                    sa.select(t.c.start_ns).order_by(t.c.start_ns.desc()).offset(max_spans - 1).limit(1)
                ).scalar()
                if cut is not None:
                    old = sa.select(t.c.trace_id).where(t.c.start_ns < cut).distinct().scalar_subquery()
                    deleted += conn.execute(sa.delete(t).where(t.c.trace_id.in_(old))).rowcount or 0
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
        raise StoreError(f"trace retention failed: {getattr(e, 'orig', None) or e}", hint="it runs again on the next export") from None
    return deleted
