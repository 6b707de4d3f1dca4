"""Compact traces (issue 10, OTLP ingest speed): a span is kept in its export request's batch
(``trace_batches``: the request's protobuf, compressed, once) and one narrow ``trace_keys`` row (its
trace id and span id as bytes, batch and place in it, start and service) instead of one wide
``trace_spans`` row.

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
        sa.Column("min_start_ns", sa.BigInteger, nullable=False),
        sa.Column("max_start_ns", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "trace_keys",
        sa.Column("trace_id", sa.LargeBinary, primary_key=True),
        sa.Column("span_id", sa.LargeBinary, primary_key=True),
        sa.Column("batch", sa.BigInteger, nullable=False),
        sa.Column("pos", sa.Integer, nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_trace_keys_batch", "trace_keys", ["batch"])
    # the spans kept in trace_spans (hex ids): a key row each, in batch 0
    conn = op.get_bind()
    keys = sa.table("trace_keys", sa.column("trace_id"), sa.column("span_id"), sa.column("batch"), sa.column("pos"),
                    sa.column("start_ns"), sa.column("service"))
    last = ("", "")
    while True:  # in pages, never the whole table in memory
        rows = conn.execute(
            sa.text("SELECT trace_id, span_id, start_ns, service FROM trace_spans WHERE trace_id > :t OR (trace_id = :t AND span_id > :s) "
                    "ORDER BY trace_id, span_id LIMIT 1000"),
            {"t": last[0], "s": last[1]},
        ).all()
        if not rows:
            break
        conn.execute(sa.insert(keys), [
            {"trace_id": bytes.fromhex(t), "span_id": bytes.fromhex(s), "batch": 0, "pos": 0, "start_ns": st, "service": svc}
            for t, s, st, svc in rows
        ])
        last = (rows[-1][0], rows[-1][1])


def downgrade() -> None:
    op.drop_index("ix_trace_keys_batch", table_name="trace_keys")
    op.drop_table("trace_keys")
    op.drop_table("trace_batches")
