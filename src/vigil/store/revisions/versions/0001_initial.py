"""Initial tables: series catalog, minute rollups, bucket bounds, gate decisions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.UniqueConstraint("metric", "labels", name="uq_series_metric_labels"),
    )
    op.create_table(
        "counter_minute",
        sa.Column("series_id", sa.Integer, primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "obs_minute",
        sa.Column("series_id", sa.Integer, primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("le", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "gauge_minute",
        sa.Column("series_id", sa.Integer, primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.Column("last", sa.Float, nullable=False),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "bounds",
        sa.Column("le", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("since_minute", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "gate_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("decided_at", sa.String(40), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("overridden", sa.Boolean, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("spec_sha256", sa.String(64), nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
    )
    op.create_index("ix_gate_decisions_service", "gate_decisions", ["service", "id"])


def downgrade() -> None:
    op.drop_index("ix_gate_decisions_service", "gate_decisions")
    for t in ("gate_decisions", "bounds", "gauge_minute", "obs_minute", "counter_minute", "series"):
        op.drop_table(t)
