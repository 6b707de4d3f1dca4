"""The last point of each OTLP metric stream (created by migration 0010).

A stream is what the OpenTelemetry data model calls one: a metric of one resource and scope with
one set of point attributes; ``key`` is the SHA-256 of that identity. ``state`` is JSON: a
cumulative sum's value, a cumulative histogram's count, bounds and bucket counts, an exponential
histogram's buckets. Written in the same transaction as the samples the point became, so a crash
or a retry never counts an increase twice.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from vigil.store.schema import metadata

otlp_streams = Table(
    "otlp_streams",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # sum | histogram | exphistogram
    Column("start_ns", BigInteger, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("seen_ms", BigInteger, nullable=False),
    Index("ix_otlp_streams_seen", "seen_ms"),
)
