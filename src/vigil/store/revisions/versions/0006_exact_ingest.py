"""Exact ingest: one kind per metric (with its series count), the store-wide series count,
idempotency keys of pushes, and store_meta (which vigil last migrated the store).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "metric_kinds",
        sa.Column("metric", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("series", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "telemetry_totals",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ingest_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )
    op.create_index("ix_ingest_keys_age", "ingest_keys", ["source", "created_ms"])
    # A metric keeps the kind of its first series (the lowest id), even in a store where an older
    # vigil let two processes register it as two kinds.
    op.execute(
        "INSERT INTO metric_kinds (metric, kind, series) "
        "SELECT s.metric, (SELECT s2.kind FROM series s2 WHERE s2.metric = s.metric ORDER BY s2.id LIMIT 1), COUNT(*) "
        "FROM series s GROUP BY s.metric"
    )
    op.execute("INSERT INTO telemetry_totals (name, value) SELECT 'series', COUNT(*) FROM series")


def downgrade() -> None:
    op.drop_index("ix_ingest_keys_age", "ingest_keys")
    op.drop_table("ingest_keys")
    op.drop_table("telemetry_totals")
    op.drop_table("metric_kinds")
    op.drop_table("store_meta")
