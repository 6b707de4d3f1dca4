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

# Bucket bounds tracked at ingest, and since when (a threshold added to the spec later is exact
# only from ``since_minute`` on).
bounds = Table(
    "bounds",
    metadata,
    Column("le", BigInteger, primary_key=True, autoincrement=False),
    Column("since_minute", BigInteger, nullable=False),
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


# Capability tables live with their capability and register on the same metadata.
from vigil.deploy.canary import tables as _canary_tables  # noqa: E402,F401
from vigil.dr import tables as _dr_tables  # noqa: E402,F401
from vigil.deploy import verdict_tables as _verdict_tables  # noqa: E402,F401
