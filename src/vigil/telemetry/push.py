"""Push telemetry into the store: the one path behind ``POST /api/v1/push`` and ``vigil push``.

A push is a :class:`PushSession`: lines are checked as they arrive (:func:`~vigil.telemetry.ingest.ingest`)
and written into one store transaction, with the push's idempotency key if it has one
(:mod:`vigil.store.ingest_txn`). The checked-but-unwritten lines are held at most ``flush_lines`` at
a time, so memory is bounded by that, not by the body.

``vigil push FILE`` cuts its input into :class:`Batch` es (:func:`batches`): at most 50,000 lines and
8 MiB each, the same cut for the local store and for ``--url``. Each batch is keyed by a hash chain
over the batch bytes (key_i = sha256(key_{i-1} || batch_i)), recorded in the batch's transaction, so
pushing the same content again stores nothing, and a push after a crash stores exactly the rest.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from vigil.errors import StoreError
from vigil.store import Store
from vigil.store.ingest_txn import KEY_TTL_MS, IngestTxn, KeyRow, Recheck, SeriesLimits
from vigil.telemetry.ingest import (
    DOCUMENTED_BOUNDS,
    MAX_REJECTIONS_LISTED,
    BodySplitter,
    IngestContext,
    NotAnObject,
    Rejection,
    Rollup,
    SplitItem,
    TooLong,
    ingest,
    item_error,
    seconds_to_ns,
    split_body,
    storage_bounds_ns,
)

if TYPE_CHECKING:
    from vigil.spec import Spec

__all__ = [
    "DEFAULT_MAX_BODY", "KEY_TTL_MS", "Batch", "Ingestor", "PushResult", "PushSession", "batches", "chain_key",
]

DEFAULT_MAX_BODY = 16 * 1024 * 1024
FLUSH_LINES = 50_000
"""Lines checked before they are written into the push's (still open) transaction."""
BATCH_LINES = 50_000
BATCH_BYTES = 8 * 1024 * 1024
CHAIN_SEED = hashlib.sha256(b"vigil push chain v1").hexdigest()
MAX_RECHECKS = 8


@dataclass
class PushResult:
    accepted: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, r: Rollup, line_offset: int = 0) -> None:
        self.accepted += r.accepted
        self.rejected_count += r.rejected_count
        for x in r.rejected:
            if len(self.rejected) < MAX_REJECTIONS_LISTED:
                self.rejected.append(Rejection(x.line + line_offset, x.error))

    def add_remote(self, d: dict, line_offset: int = 0, *, replace: dict[int, str] | None = None) -> None:
        """Add a server's push response (the shape of :meth:`to_dict`). ``replace``: lines (of the
        body sent) this side rejected already: they were sent as blank lines, which the server does
        not count, so they are counted here (and listed with this side's reason)."""
        replace = replace or {}
        self.accepted += int(d.get("accepted", 0))
        self.rejected_count += int(d.get("rejected", 0)) + len(replace)
        for x in d.get("errors", []):
            line = int(x["line"])
            if line in replace:
                continue
            if len(self.rejected) < MAX_REJECTIONS_LISTED:
                self.rejected.append(Rejection(line + line_offset, str(x["error"])))
        for line, err in sorted(replace.items()):
            if len(self.rejected) < MAX_REJECTIONS_LISTED:
                self.rejected.append(Rejection(line + line_offset, err))

    def merge(self, other: "PushResult") -> None:
        self.accepted += other.accepted
        self.rejected_count += other.rejected_count
        for x in other.rejected:
            if len(self.rejected) < MAX_REJECTIONS_LISTED:
                self.rejected.append(x)

    def to_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected_count,
            "errors": [r.to_dict() for r in sorted(self.rejected, key=lambda r: r.line)],
            "errors_truncated": self.rejected_count > len(self.rejected),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PushResult":
        res = cls()
        res.add_remote(d)
        return res


class Ingestor:
    """What every push is checked against: the store's bucket bounds, the metrics' kinds, retention,
    limits. One per process (thread-safe); each push is a :meth:`session`."""

    def __init__(self, spec: Spec, store: Store) -> None:
        self.spec = spec
        self.store = store
        self._documented = [seconds_to_ns(b) for b in DOCUMENTED_BOUNDS]
        self._spec_bounds = sorted(set(self._documented) | {seconds_to_ns(t) for t in spec.latency_thresholds()})
        width = spec.telemetry.bucket_width
        self._layout = None if width is None else (width, storage_bounds_ns(width))
        self._bounds: tuple[int, ...] | None = None
        self.metric_kinds: dict[str, str] = store.metric_kinds()
        self.retention_ms = int(spec.retention_seconds() * 1000)
        self.max_future_ms = int(spec.telemetry.max_future * 1000)
        self.limits = SeriesLimits(per_metric=spec.telemetry.max_series_per_metric, total=spec.telemetry.max_series)
        self._lock = threading.Lock()

    @property
    def bounds_ns(self) -> list[int]:
        """The bounds observations are bucketed by: the store's (the documented ones, every threshold
        any spec declared, and the finest ``telemetry.bucket_width`` layout any spec gave it)."""
        return list(self._store_bounds())

    def _store_bounds(self) -> tuple[int, ...]:
        if self._bounds is None:
            with self._lock:
                if self._bounds is None:
                    self._bounds = tuple(sorted(self.store.register_bounds(self._spec_bounds, self._documented, layout=self._layout)))
        return self._bounds

    def reload_bounds(self) -> None:
        with self._lock:
            self._bounds = tuple(sorted(self.store.bounds()))

    def context(self, now: datetime, *, kinds: dict[str, str] | None = None) -> IngestContext:
        now_ms = int(now.timestamp() * 1000)
        return IngestContext(
            now_ms=now_ms,
            oldest_ms=now_ms - self.retention_ms,
            max_future_ms=self.max_future_ms,
            bounds_ns=self._store_bounds(),
            metric_kinds=self.metric_kinds if kinds is None else kinds,
        )

    def learn_kinds(self, kinds: dict[str, str]) -> None:
        with self._lock:
            self.metric_kinds.update(kinds)

    def session(self, now: datetime, *, key: str | None = None, source: str = "http", flush_lines: int = FLUSH_LINES) -> "PushSession":
        return PushSession(self, now, key=key, source=source, flush_lines=flush_lines)

    def push_lines(self, lines: Iterable[tuple[int, object]], now: datetime) -> Rollup:
        """Check and store one batch in one transaction; returns its rollup (what was written)."""
        s = self.session(now, flush_lines=2**62)
        try:
            s.feed(lines)
            s.finish()
        except BaseException:
            s.abort()
            raise
        return s.written

    def push_body(self, body: bytes, now: datetime, *, max_bytes: int = DEFAULT_MAX_BODY) -> PushResult:
        s = self.session(now)
        try:
            s.feed(split_body(body, max_bytes=max_bytes))
            s.finish()
        except BaseException:
            s.abort()
            raise
        return s.result


class PushSession:
    """One push: ``feed`` lines as they come, then ``finish`` (commits) or ``abort``.

    With a ``key``, the transaction claims it before writing; if a push with that key committed
    first, nothing is written and :attr:`replay` holds the stored row (its body hash and response)."""

    def __init__(self, ing: Ingestor, now: datetime, *, key: str | None, source: str, flush_lines: int) -> None:
        self.ing = ing
        self.now = now
        self.now_ms = int(now.timestamp() * 1000)
        self.key = key
        self.source = source
        self.flush_lines = flush_lines
        self.kinds = dict(ing.metric_kinds)
        self.ctx = ing.context(now, kinds=self.kinds)
        self.result = PushResult()
        self.replay: KeyRow | None = None
        self.written = Rollup()  # kept only when one flush (push_lines)
        self._pending: list[tuple[int, object]] = []
        self._rollup = Rollup()
        self._kinds_before = dict(self.kinds)
        self._txn: IngestTxn | None = None
        self._flushes = 0

    def feed(self, items: Iterable[tuple[int, object]]) -> None:
        if self.replay is not None:
            return
        items = items if isinstance(items, list) else list(items)
        n = 0
        while n < len(items):
            room = self.flush_lines - len(self._pending)
            part = items[n : n + room]
            n += len(part)
            self._pending.extend(part)
            ingest(part, self.ctx, self._rollup)
            if len(self._pending) >= self.flush_lines:
                self._flush()
                if self.replay is not None:
                    return

    def _flush(self) -> None:
        if self._txn is None:
            self._txn = self.ing.store.begin_ingest()
            if self.key is not None:
                row = self._txn.claim(self.key, source=self.source, now_ms=self.now_ms)
                if row is not None:
                    self.replay = row
                    self._txn.rollback()
                    self._pending = []
                    self._rollup = Rollup()
                    return
        for _ in range(MAX_RECHECKS):
            try:
                self._txn.write(self._rollup, self.ing.limits)
                break
            except Recheck as rc:
                self._recheck(rc)
        else:
            self.abort()
            raise StoreError(
                "writing telemetry failed; nothing of this batch was stored: the store kept changing under it"
                f" ({MAX_RECHECKS} rechecks)",
                hint="push again (a re-push with the same key or content stores it once)",
            )
        self.result.add(self._rollup)
        self._flushes += 1
        self.written = self._rollup if self._flushes == 1 else Rollup()
        self._pending = []
        self._rollup = Rollup()
        self._kinds_before = dict(self.kinds)
        self.ctx.admission = None  # the store checks the next lines afresh
        self.ctx.headroom = None

    def _recheck(self, rc: Recheck) -> None:
        if rc.bounds:
            self.ing.reload_bounds()
            old = self.ctx
            self.ctx = self.ing.context(self.now, kinds=self.kinds)
            self.ctx.admission, self.ctx.headroom = old.admission, old.headroom
        self.kinds.clear()
        self.kinds.update(self._kinds_before)
        if rc.kinds:
            self.kinds.update(rc.kinds)
            self._kinds_before.update(rc.kinds)
            self.ing.learn_kinds(rc.kinds)
        if rc.admission is not None:
            self.ctx.admission = rc.admission
        if rc.headroom is not None:
            self.ctx.headroom = rc.headroom
        self._rollup = ingest(self._pending, self.ctx)

    def finish(self, response: Callable[[PushResult], str] | None = None, body_sha256: str | None = None) -> PushResult | KeyRow:
        """Write what is pending and commit. Returns the result, or the stored row of a push that
        claimed the key first (nothing was written)."""
        if self.replay is None:
            self._flush()
        if self.replay is not None:
            return self.replay
        assert self._txn is not None
        text = response(self.result) if response is not None else json.dumps({"status": 200, "body": self.result.to_dict()})
        self._txn.commit(text if self.key is not None else None, body_sha256)
        self.ing.learn_kinds(self._txn.kinds_learnt)
        self._txn = None
        return self.result

    def abort(self) -> None:
        if self._txn is not None:
            self._txn.rollback()
            self._txn = None


# -- vigil push: batches keyed by a hash chain ---------------------------------------------------------


def chain_key(prev: str, body: bytes, extra: bytes = b"") -> str:
    h = hashlib.sha256(prev.encode("ascii"))
    h.update(body)
    h.update(extra)
    return h.hexdigest()


@dataclass
class Batch:
    """Consecutive lines of a push: ``items`` to check locally, ``body`` (NDJSON) to send (b"" when
    cut with ``keep_body=False``), its SHA-256 and the chain ``key``. ``local_errors``: lines this
    side rejects (too long, an array item that is not an object); the body holds an empty line in
    their place, so line numbers stay the same."""

    first: int
    last: int
    items: list[tuple[int, SplitItem]]
    body: bytes
    key: str
    body_sha256: str
    local_errors: dict[int, str]


def batches(read: Callable[[int], bytes], *, max_lines: int = BATCH_LINES, max_bytes: int = BATCH_BYTES,
            chunk: int = 1 << 20, keep_body: bool = True) -> Iterator[Batch]:
    """Cut a stream (``read(n)`` returns up to n bytes, b"" at the end) into keyed batches, reading
    it once in chunks: never the whole input in memory. A JSON array's items are sent as NDJSON
    lines (line breaks between tokens become spaces), numbered by position as before.

    The cut and the keys depend only on the bytes: the same input gives the same batches and keys
    (whichever way it is read, to the local store or to a server)."""
    sp = BodySplitter()
    prev = CHAIN_SEED
    items: list[tuple[int, SplitItem]] = []
    lines: list[bytes] = []
    extra: list[bytes] = []
    local: dict[int, str] = {}
    size = 0
    chain = hashlib.sha256(prev.encode("ascii"))
    whole = hashlib.sha256()

    def cut() -> Batch:
        nonlocal prev, items, lines, extra, local, size, chain, whole
        for x in extra:
            chain.update(x)
        key = chain.hexdigest()
        b = Batch(items[0][0], items[-1][0], items, b"".join(lines), key, whole.hexdigest(), local)
        prev = key
        items, lines, extra, local, size = [], [], [], {}, 0
        chain = hashlib.sha256(prev.encode("ascii"))
        whole = hashlib.sha256()
        return b

    def take(got: list[tuple[int, SplitItem]]) -> Iterator[Batch]:
        nonlocal size
        for n, raw in got:
            if isinstance(raw, bytes):
                line = raw + b"\n"
            elif isinstance(raw, str):
                line = raw.replace("\n", " ").replace("\r", " ").encode("utf-8", "surrogatepass") + b"\n"
            else:  # TooLong / NotAnObject: judged here, an empty line in the body
                line = b"\n"
                local[n] = item_error(raw)
                extra.append(f"{n}:{raw!r}".encode())
            if items and (len(items) >= max_lines or size + len(line) > max_bytes):
                yield cut()
            items.append((n, raw))
            chain.update(line)
            whole.update(line)
            if keep_body:
                lines.append(line)
            size += len(line)

    while True:
        data = read(chunk)
        if not data:
            break
        yield from take(sp.feed(data))
    tail = sp.close()
    if tail and tail[-1][1] == b"":  # the empty rest after the last newline is no line
        tail.pop()
    yield from take(tail)
    if items:
        yield cut()


__all__ += ["TooLong", "NotAnObject"]
