"""Traces and OTLP metric streams (issue 10): spans received over OTLP (one row per trace id and
span id, so a span sent twice is stored and counted once), and the last point of each OTLP metric
stream (cumulative sums and histograms become deltas against it; delta points are taken in order).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_spans",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("parent_span_id", sa.String(16), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("attrs", sa.Text, nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_trace_spans_start", "trace_spans", ["start_ns"])
    op.create_table(
        "otlp_streams",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("seen_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_otlp_streams_seen", "otlp_streams", ["seen_ms"])


def downgrade() -> None:
    op.drop_index("ix_otlp_streams_seen", table_name="otlp_streams")
    op.drop_table("otlp_streams")
    op.drop_index("ix_trace_spans_start", table_name="trace_spans")
    op.drop_table("trace_spans")
