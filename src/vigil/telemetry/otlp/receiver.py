"""The OTLP receiver's ingest: a decoded export request -> one store transaction of the push path.

Spans and metric points become push-format lines checked by the same :class:`~vigil.telemetry.push.Ingestor`
(kinds, retention, bucket bounds, cardinality limits) and written by the same transaction
(:mod:`vigil.store.ingest_txn`), never by a second write path. Exactly once:

- **The request.** Its idempotency key is derived from the decoded payload (``otlp-traces:`` or
  ``otlp-metrics:`` + the SHA-256 of the protobuf bytes, after gzip). An exporter retrying after a
  timeout, a 429 or a 503 sends the same bytes: the transaction that claims the key first stores,
  any other finds its row and answers the first answer again, storing nothing.
- **The span.** In the same transaction, the request's bytes are stored once and a key row per span
  is inserted into the trace store only if its (trace id, span id) is new, and only new spans are
  counted: a span sent again in the same request or in another one (a Collector re-batching after
  a failure) is stored and counted once.
- **The stream.** A metric stream's last point is read (locked on PostgreSQL) and written back in
  the same transaction as the samples its new points became: cumulative points are differenced
  against it; a delta point at or before it is a duplicate.

**Whole units.** A span or a data point is taken whole or not at all. When the store rejects a line
(a metric registered as another kind, a cardinality limit), every span or point that line carries
is rejected; if that leaves a span or point partly written, the transaction is rolled back and run
again without the rejected ones (at most :data:`MAX_PASSES` times).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from vigil.errors import StoreError
from vigil.store.ingest_txn import KeyRow, write_failed
from vigil.telemetry.otlp.decode import Decoded, Signal
from vigil.telemetry.otlp.metrics import (
    SINCE_KEY,
    MetricBatch,
    MetricRules,
    Point,
    StreamState,
    convert,
    map_metrics,
)
from vigil.telemetry.otlp.spans import SpanBatch, SpanRules, map_spans, request_lines, stored_body
from vigil.telemetry.push import Ingestor, PushResult, PushSession
from vigil.traces.store import insert_batch

if TYPE_CHECKING:
    from vigil.telemetry.spec import TelemetrySpec

MAX_PASSES = 4
MAX_REASONS = 5
PURGE_EVERY_MS = 60_000


@dataclass
class Answer:
    """What the request got: how many of its spans or points were rejected and why (the
    ``partial_success``), and whether it is the replay of a request stored before."""

    total: int
    rejected: int = 0
    message: str = ""
    replayed: bool = False
    stored: int = 0
    """Spans or points newly stored (0 on a replay; duplicates are not counted again)."""

    def to_json(self) -> str:
        return json.dumps({"total": self.total, "rejected": self.rejected, "message": self.message, "stored": self.stored})

    @classmethod
    def from_row(cls, row: KeyRow) -> "Answer":
        d = row.result
        return cls(total=int(d.get("total", 0)), rejected=int(d.get("rejected", 0)), message=str(d.get("message", "")), replayed=True,
                   stored=0)


class _Redo(Exception):
    def __init__(self, bad: dict[int, str]) -> None:
        self.bad = bad


class _Session(PushSession):
    """A push session whose transaction also holds the trace store's rows and the streams' states.

    :meth:`open` begins the transaction and claims the key before any line is fed (the base
    session does that at its first flush; nothing is pending, so nothing else happens)."""

    def open(self) -> KeyRow | None:
        self._flush()
        return self.replay

    @property
    def conn(self) -> sa.Connection:
        assert self._txn is not None and self._txn.conn is not None
        return self._txn.conn


def _reasons(rejected: dict[int, str], total: int, what: str) -> str:
    if not rejected:
        return ""
    c = Counter(rejected.values())
    parts = [f"{why} ({n})" for why, n in c.most_common(MAX_REASONS)]
    more = len(c) - MAX_REASONS
    if more > 0:
        parts.append(f"and {more} other reason(s)")
    return f"{len(rejected)} of {total} {what} rejected: " + "; ".join(parts)


class OtlpReceiver:
    """Ingests decoded OTLP export requests through an :class:`Ingestor` (thread-safe)."""

    def __init__(self, ingestor: Ingestor, telemetry: "TelemetrySpec", *, started: datetime | None = None,
                 purging: bool = True) -> None:
        self.ingestor = ingestor
        self.purging = purging
        """Whether exports run the trace and stream retention: off under a pinned clock (VIGIL_NOW),
        as ``vigil serve``'s retention pass is: pinned a year ahead, it would delete every real trace."""
        self.store = ingestor.store
        self.telemetry = telemetry
        self._last_purge_ms = 0
        # SQLite takes one writer at a time and makes the others poll its lock (sleeping 1 to 100 ms
        # between tries): exports queue here instead, each let in as soon as the one before commits
        self._writer: contextlib.AbstractContextManager[Any] = threading.Lock() if self.store.dialect == "sqlite" else contextlib.nullcontext()
        self.started_ms = int(started.timestamp() * 1000) if started is not None else None
        """When this receiver began: the store's "taking OTLP metrics since" when it has none yet."""

    @staticmethod
    def key(signal: Signal, decoded: Decoded) -> str:
        return f"otlp-{signal}:{decoded.digest}"

    def replay(self, signal: Signal, decoded: Decoded) -> Answer | None:
        row = self.store.ingest_key(self.key(signal, decoded))
        return Answer.from_row(row) if row is not None else None

    # -- traces ---------------------------------------------------------------------------------------

    def export_traces(self, decoded: Decoded, now: datetime) -> Answer:
        ctx = self.ingestor.context(now)
        now_ms = int(now.timestamp() * 1000)
        rules = SpanRules.of(self.telemetry.traces, now_ms=now_ms, metric_oldest_ms=ctx.oldest_ms, max_future_ms=ctx.max_future_ms)
        batch = map_spans(decoded.message, rules, now_ms)
        if batch.total == 0:
            return Answer(total=0)  # an empty request: success, nothing to store (the specification's words)
        excluded: dict[int, str] = dict(batch.rejected)
        key = self.key("traces", decoded)
        copies = _copies(batch)
        for _ in range(MAX_PASSES):
            try:
                with self._writer:
                    return self._traces_pass(batch, excluded, key, decoded, now)
            except _Redo as r:
                excluded.update(r.bad)
                for i, why in r.bad.items():  # a span sent more than once: its copies go with it
                    k = batch.keys[i]
                    for j in copies.get((k[0], k[1]), ()) if k is not None else ():
                        excluded.setdefault(j, why)
        raise StoreError(
            "storing the spans failed: the store kept rejecting parts of the request", hint="retry the export (it is stored once)"
        )

    def _traces_pass(self, batch: SpanBatch, excluded: dict[int, str], key: str, decoded: Decoded, now: datetime) -> Answer:
        s = _Session(self.ingestor, now, key=key, source="http", flush_lines=2**62)
        try:
            row = s.open()
            if row is not None:
                return Answer.from_row(row)
            # the spans to store: not rejected, and each (trace id, span id) once (the first sent)
            idx: dict[tuple[bytes, bytes], int] = {}
            keys: list[tuple[bytes, bytes, int, int, str]] = []
            for i, k in enumerate(batch.keys):
                if k is not None and i not in excluded and (k[0], k[1]) not in idx:
                    idx[(k[0], k[1])] = i
                    keys.append((k[0], k[1], i, k[2], k[3]))
            keys.sort()  # in key order: the store's index is walked forward, not at random
            try:
                body = stored_body(decoded.message, decoded.data, len(keys))
                new = insert_batch(s.conn, self.store.dialect, body, int(now.timestamp() * 1000), keys)
            except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
                raise write_failed(e) from None
            fresh = [i for k, i in idx.items() if k in new]
            bounds = s.ctx.bounds_ns
            lines, carried = request_lines(batch, fresh, bounds)
            s.feed(lines)
            answer = Answer(total=batch.total)

            def respond(result: PushResult) -> str:
                bad = _bad_units(result, carried, len(lines), "spans")
                if bad:
                    raise _Redo(bad)
                if s.ctx.bounds_ns is not bounds and s.ctx.bounds_ns != bounds:  # the store's buckets changed under this pass: bucket again
                    raise _Redo({})
                answer.rejected = len(excluded)
                answer.message = _reasons(excluded, batch.total, "spans")
                answer.stored = len(fresh)
                return answer.to_json()

            out = s.finish(respond, decoded.digest)
        except BaseException:
            s.abort()
            raise
        if isinstance(out, KeyRow):
            return Answer.from_row(out)
        self.maybe_purge(now)
        return answer

    # -- metrics --------------------------------------------------------------------------------------

    def export_metrics(self, decoded: Decoded, now: datetime) -> Answer:
        ctx = self.ingestor.context(now)
        now_ms = int(now.timestamp() * 1000)
        rules = MetricRules(now_ms=now_ms, oldest_ms=ctx.oldest_ms, max_future_ms=ctx.max_future_ms)
        batch = map_metrics(decoded.message, rules)
        if batch.total == 0:
            return Answer(total=0)
        excluded: dict[int, str] = dict(batch.rejected)
        key = self.key("metrics", decoded)
        for _ in range(MAX_PASSES):
            try:
                with self._writer:
                    return self._metrics_pass(batch, excluded, key, decoded.digest, now)
            except _Redo as r:
                excluded.update(r.bad)
        raise StoreError(
            "storing the data points failed: the store kept rejecting parts of the request", hint="retry the export (it is stored once)"
        )

    def _metrics_pass(self, batch: MetricBatch, excluded: dict[int, str], key: str, digest: str, now: datetime) -> Answer:
        s = _Session(self.ingestor, now, key=key, source="http", flush_lines=2**62)
        now_ms = int(now.timestamp() * 1000)
        try:
            row = s.open()
            if row is not None:
                return Answer.from_row(row)
            points: list[Point] = [p for p in batch.points if p is not None and p.unit not in excluded]
            keys = sorted({p.stream for p in points if p.stream})
            try:
                states, since_ns = lock_streams(s.conn, self.store.dialect, keys, now_ms, since_ms=self.started_ms)
                conv = convert(points, states, since_ns)
                if conv.rejected:
                    raise _Redo(conv.rejected)
                save_streams(s.conn, self.store.dialect, conv.states, now_ms)
            except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
                raise write_failed(e) from None
            s.feed(conv.lines)
            answer = Answer(total=batch.total)
            carried = [[u] for u in conv.carried]

            def respond(result: PushResult) -> str:
                bad = _bad_units(result, carried, len(conv.lines), "data points")
                if bad:
                    raise _Redo(bad)
                answer.rejected = len(excluded)
                msg = _reasons(excluded, batch.total, "data points")
                if conv.warnings:
                    msg = "; ".join(([msg] if msg else []) + sorted(set(conv.warnings))[:MAX_REASONS])
                answer.message = msg
                answer.stored = len({p.unit for p in points})
                return answer.to_json()

            out = s.finish(respond, digest)
        except BaseException:
            s.abort()
            raise
        if isinstance(out, KeyRow):
            return Answer.from_row(out)
        self.maybe_purge(now)
        return answer

    # -- housekeeping ---------------------------------------------------------------------------------

    def maybe_purge(self, now: datetime) -> None:
        """Trace and stream retention, at most once a minute (of the receiver's clock). A failure
        is left for the next pass: housekeeping never fails an export. Nothing under a pinned clock
        (:attr:`purging` off): telemetry is deleted by the real clock only."""
        if not self.purging:
            return
        now_ms = int(now.timestamp() * 1000)
        if now_ms - self._last_purge_ms < PURGE_EVERY_MS:
            return
        self._last_purge_ms = now_ms
        try:
            self.purge(now)
        except StoreError:
            self._last_purge_ms = 0

    def purge(self, now: datetime) -> int:
        from vigil.traces.store import purge

        now_ms = int(now.timestamp() * 1000)
        tr = self.telemetry.traces
        n = purge(self.store, before_ns=(now_ms - int(tr.retention * 1000)) * 1_000_000, max_spans=tr.max_spans)
        purge_streams(self.store, before_ms=now_ms - self.ingestor.retention_ms)
        return n


def _copies(batch: SpanBatch) -> dict[tuple[bytes, bytes], list[int]]:
    """The spans sent more than once in the request: (trace id, span id) -> their places."""
    seen: dict[tuple[bytes, bytes], list[int]] = {}
    for i, k in enumerate(batch.keys):
        if k is not None:
            seen.setdefault((k[0], k[1]), []).append(i)
    return {k: v for k, v in seen.items() if len(v) > 1}


def _bad_units(result: PushResult, carried: list[list[int]], nlines: int, what: str) -> dict[int, str]:
    """The spans or points (units) carried by a rejected line, with the store's reason."""
    if not result.rejected_count:
        return {}
    if result.rejected_count > len(result.rejected):
        # too many rejections to name them all: refuse every unit that had a line
        return {u: f"the store rejected more than {len(result.rejected)} lines of this request; resend fewer {what} at a time"
                for units in carried for u in units}
    bad: dict[int, str] = {}
    for rj in result.rejected:
        if 1 <= rj.line <= nlines:
            for u in carried[rj.line - 1]:
                bad.setdefault(u, rj.error)
    return bad


# -- stream states -----------------------------------------------------------------------------------


def lock_streams(conn: sa.Connection, dialect: str, keys: list[str], now_ms: int, *, since_ms: int | None = None) -> tuple[dict[str, StreamState | None], int]:
    """The last point of each stream, locked to the end of the transaction (PostgreSQL: a row
    inserted as a placeholder when new, then ``FOR UPDATE``; SQLite: the write lock is held
    already), and when this store began taking OTLP metrics (ns): recorded once, from
    ``since_ms`` (when the receiver started) or else ``now_ms``."""
    ph = "?" if dialect == "sqlite" else "%s"
    first_ns = (since_ms if since_ms is not None and since_ms <= now_ms else now_ms) * 1_000_000
    want = sorted(set(keys) | {SINCE_KEY})
    out: dict[str, StreamState | None] = dict.fromkeys(keys)
    since_ns: int | None = None
    for i in range(0, len(want), 500):
        part = want[i : i + 500]
        if dialect != "sqlite":
            vals = ", ".join([f"({ph}, {ph}, 0, {ph}, '{{}}', {ph})"] * len(part))
            params: list[Any] = []
            for k in part:
                params += [k, "since" if k == SINCE_KEY else "new", first_ns if k == SINCE_KEY else 0, now_ms]
            conn.exec_driver_sql(
                f"INSERT INTO otlp_streams (key, kind, start_ns, time_ns, state, seen_ms) VALUES {vals} ON CONFLICT (key) DO NOTHING",
                tuple(params),
            )
        q = f"SELECT key, kind, start_ns, time_ns, state FROM otlp_streams WHERE key IN ({', '.join([ph] * len(part))}) ORDER BY key"
        if dialect != "sqlite":
            q += " FOR UPDATE"
        for k, kind, start, t, state in conn.exec_driver_sql(q, tuple(part)):
            if k == SINCE_KEY:
                since_ns = int(t)
            elif kind != "new":
                out[k] = StreamState(kind, int(start), int(t), json.loads(state))
    if since_ns is None:  # SQLite, first OTLP metrics in this store
        conn.exec_driver_sql(
            f"INSERT INTO otlp_streams (key, kind, start_ns, time_ns, state, seen_ms) VALUES ({ph}, 'since', 0, {ph}, '{{}}', {ph})",
            (SINCE_KEY, first_ns, now_ms),
        )
        since_ns = first_ns
    return out, since_ns


def save_streams(conn: sa.Connection, dialect: str, states: dict[str, StreamState], now_ms: int) -> None:
    if not states:
        return
    ph = "?" if dialect == "sqlite" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO otlp_streams (key, kind, start_ns, time_ns, state, seen_ms) VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph}) "
        "ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, start_ns = excluded.start_ns, time_ns = excluded.time_ns, "
        "state = excluded.state, seen_ms = excluded.seen_ms",
        [(k, st.kind, st.start_ns, st.time_ns, st.to_json(), now_ms) for k, st in sorted(states.items())],
    )


def purge_streams(store: Any, *, before_ms: int) -> int:
    """Forget streams not seen since ``before_ms`` (their next point is a first point again)."""
    from vigil.store import db_errors
    from vigil.telemetry.otlp.tables import otlp_streams as t

    with db_errors("purging OTLP streams failed"), store.engine.begin() as conn:
        return conn.execute(sa.delete(t).where(t.c.seen_ms < before_ms, t.c.key != SINCE_KEY)).rowcount or 0


__all__ = ["Answer", "OtlpReceiver", "lock_streams", "save_streams", "purge_streams"]
