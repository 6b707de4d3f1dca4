"""The trace store's table (created by migration 0010).

One row per span, keyed by its trace id and span id (lower-case hex): a span received twice (an
exporter's retry, a Collector re-batching) is stored once, and the OTLP receiver counts a span's
request telemetry only when this row is new, in the same transaction. Times are Unix nanoseconds;
``received_ms`` is the receiver's clock. ``attrs`` is the span's attributes, status message and
resource service as bounded JSON.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, SmallInteger, String, Table, Text

from vigil.store.schema import metadata

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
