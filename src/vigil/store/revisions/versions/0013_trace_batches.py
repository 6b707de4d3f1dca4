"""Compact traces (issue 10, OTLP ingest speed): a span is kept in its export request's batch
(``trace_batches``: the request's protobuf, compressed, once) and one narrow ``trace_keys`` row (its
trace id and span id, batch and place in it, start and service) instead of one wide ``trace_spans`` row.

The spans already in ``trace_spans`` stay there and get a ``trace_keys`` row with batch 0, so they
are still read, a span sent again is still counted once, and retention deletes them as before.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "trace_keys",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("batch", sa.BigInteger, nullable=False),
        sa.Column("pos", sa.Integer, nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_trace_keys_start", "trace_keys", ["start_ns"])
    op.create_index("ix_trace_keys_batch", "trace_keys", ["batch"])
    op.execute(
        "INSERT INTO trace_keys (trace_id, span_id, batch, pos, start_ns, service) "
        "SELECT trace_id, span_id, 0, 0, start_ns, service FROM trace_spans"
    )


def downgrade() -> None:
    op.drop_index("ix_trace_keys_batch", table_name="trace_keys")
    op.drop_index("ix_trace_keys_start", table_name="trace_keys")
    op.drop_table("trace_keys")
    op.drop_table("trace_batches")
