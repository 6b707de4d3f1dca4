"""The trace store's tables (``trace_spans`` created by migration 0010, the others by 0013).

Spans are kept compactly, in two tables written in the OTLP receiver's ingest transaction:

- ``trace_batches``: one row per export request that brought new spans, holding the request's
  protobuf encoding as received (zlib-compressed). A span is read back from it.
- ``trace_keys``: one narrow row per stored span, keyed by its trace id and span id (bytes),
  naming the batch that holds it and the span's place in it, its start (Unix ns) and its service. A span received twice
  (an exporter's retry, a Collector re-batching) has one row, naming the first batch: the receiver
  counts a span's request telemetry only when this row is new, in the same transaction. A span of
  a batch without its row (rejected, or a duplicate) is not part of any trace.

Only two indexes are written per span: the key (random: ids are random) and the batch (appended
at its end). Spans are found by time through their batches' start range (``min_start_ns``,
``max_start_ns``), not through an index of every span's start, which costs as much as the key.

``trace_spans`` is the older layout, one wide row per span (attributes as bounded JSON). It is no
longer written; migration 0013 gave each of its spans a ``trace_keys`` row with batch 0 ("in
``trace_spans``"), so such spans are still read, deduplicated and purged until they age out.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, String, Table, Text

from vigil.store.schema import metadata

LEGACY_BATCH = 0
"""``trace_keys.batch`` of a span kept in the older ``trace_spans`` table."""

trace_spans = Table(
    "trace_spans",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16), nullable=False),  # '' for a root span
    Column("service", String(200), nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", SmallInteger, nullable=False),  # OTLP SpanKind: 0 unspecified .. 5 consumer
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("status", SmallInteger, nullable=False),  # OTLP StatusCode: 0 unset, 1 ok, 2 error
    Column("attrs", Text, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Index("ix_trace_spans_start", "start_ns"),
    sqlite_with_rowid=False,
)

trace_batches = Table(
    "trace_batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_ms", BigInteger, nullable=False),
    Column("min_start_ns", BigInteger, nullable=False),  # the earliest start of the spans it stored
    Column("max_start_ns", BigInteger, nullable=False),  # the latest
    Column("body", LargeBinary, nullable=False),  # zlib(ExportTraceServiceRequest as received)
)

trace_keys = Table(
    "trace_keys",
    metadata,
    Column("trace_id", LargeBinary, primary_key=True),  # 16 bytes
    Column("span_id", LargeBinary, primary_key=True),  # 8 bytes
    Column("batch", BigInteger, nullable=False),  # trace_batches.id, or LEGACY_BATCH
    Column("pos", Integer, nullable=False),  # the span's place in its batch (0 = the first sent); 0 in LEGACY_BATCH
    Column("start_ns", BigInteger, nullable=False),
    Column("service", String(200), nullable=False),
    Index("ix_trace_keys_batch", "batch"),
    sqlite_with_rowid=False,
)
