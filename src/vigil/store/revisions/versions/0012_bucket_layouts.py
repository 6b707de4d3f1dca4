"""Bucket layouts (issue 14): the relative-width layouts observations are bucketed by, each with the
first minute bucketed by it in full. Data stored before a layout was registered keeps its coarser
buckets; nothing is rewritten.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bucket_layouts",
        sa.Column("width", sa.String(32), primary_key=True),
        sa.Column("low_ns", sa.BigInteger, nullable=False),
        sa.Column("high_ns", sa.BigInteger, nullable=False),
        sa.Column("bounds", sa.Integer, nullable=False),
        sa.Column("since_minute", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bucket_layouts")
