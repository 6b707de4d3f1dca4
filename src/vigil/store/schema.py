"""The state database's tables (SQLAlchemy Core). Alembic migrations under ``migrations/`` create them.

Telemetry rollups and state (gate decisions, overrides) live in one database, so PostgreSQL can
replace SQLite without a rewrite. Minutes are whole Unix minutes (epoch seconds // 60).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("metric", String(200), nullable=False),
    Column("labels", Text, nullable=False),  # canonical JSON: sorted keys, no spaces
    Column("kind", String(16), nullable=False),  # counter | observation | gauge
    UniqueConstraint("metric", "labels", name="uq_series_metric_labels"),
)

counter_minute = Table(
    "counter_minute",
    metadata,
    Column("series_id", Integer, primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("value", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Non-cumulative bucket counts: ``count`` observations fell in (previous bound, le].
# ``le`` is the bound in nanoseconds; INF_NS is the +Inf bucket.
obs_minute = Table(
    "obs_minute",
    metadata,
    Column("series_id", Integer, primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("le", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Hourly sums of the same rollups (hour = minute // 60), written in the same transaction as the
# minutes: a 30-day window is ~720 hour rows per series plus the minutes at its two ragged ends.
counter_hour = Table(
    "counter_hour",
    metadata,
    Column("series_id", Integer, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("value", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

obs_hour = Table(
    "obs_hour",
    metadata,
    Column("series_id", Integer, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("le", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

gauge_minute = Table(
    "gauge_minute",
    metadata,
    Column("series_id", Integer, primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("last", Float, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("samples", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Bucket bounds every push buckets observations by: the documented set plus every threshold any
# spec declared. ``since_minute``: the first minute exact at this bound -- 0 for the documented set
# and for a bound registered before any observation was stored, else one past the last minute that
# held observations when it was registered (backfills pushed later are bucketed by it, so exact).
bounds = Table(
    "bounds",
    metadata,
    Column("le", BigInteger, primary_key=True, autoincrement=False),
    Column("since_minute", BigInteger, nullable=False),
)

# Relative-width layouts (``telemetry.bucket_width``) whose bounds are in ``bounds``: every bucket
# (l, u] with low <= l < high has (u - l) / l <= width, for observations of minutes ``since_minute``
# on (one past the last minute observed when the layout was registered; 0 on a store with none).
# Older minutes keep the buckets they were stored in. ``width`` is a decimal fraction ("0.02").
bucket_layouts = Table(
    "bucket_layouts",
    metadata,
    Column("width", String(32), primary_key=True),
    Column("low_ns", BigInteger, nullable=False),
    Column("high_ns", BigInteger, nullable=False),
    Column("bounds", Integer, nullable=False),
    Column("since_minute", BigInteger, nullable=False),
)

# One kind per metric, registered in the same transaction as the metric's first series; ``series``
# counts its series (the per-metric cardinality limit is checked against it under a row lock).
metric_kinds = Table(
    "metric_kinds",
    metadata,
    Column("metric", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("series", BigInteger, nullable=False),
)

# Store-wide counts kept exact under concurrent writers: ``series`` (the overall cardinality limit).
telemetry_totals = Table(
    "telemetry_totals",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Idempotency keys of pushes, written in the same transaction as the rollup they stored: an HTTP
# ``Idempotency-Key`` (source ``http``) or a ``vigil push`` batch's chain key (source ``push``).
# ``response`` is the first answer, replayed for a retry; empty while the transaction is open.
ingest_keys = Table(
    "ingest_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("source", String(8), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("response", Text, nullable=False),
    Index("ix_ingest_keys_age", "source", "created_ms"),
)

# Which vigil last migrated the store, and other facts about the store itself.
store_meta = Table(
    "store_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

gate_decisions = Table(
    "gate_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),  # the evaluation time (RFC 3339, UTC)
    Column("decided_at", String(40), nullable=False),  # wall-clock time of the decision
    Column("service", String(128), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("overridden", Boolean, nullable=False),
    Column("labels", Text, nullable=False),  # JSON list
    Column("reason", Text, nullable=True),
    Column("actor", String(200), nullable=True),
    Column("spec_sha256", String(64), nullable=False),
    Column("decision", Text, nullable=False),  # the whole decision as JSON: freezes and inputs
    Index("ix_gate_decisions_service", "service", "id"),
)

