"""Hourly rollups of counters and observations, filled from the minute rollups.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counter_hour",
        sa.Column("series_id", sa.Integer, primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "obs_hour",
        sa.Column("series_id", sa.Integer, primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("le", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    # minute // 60 for non-negative minutes in both SQLite and PostgreSQL (integer division)
    op.execute(
        "INSERT INTO counter_hour (series_id, hour, value) "
        "SELECT series_id, minute / 60, SUM(value) FROM counter_minute GROUP BY series_id, minute / 60"
    )
    op.execute(
        "INSERT INTO obs_hour (series_id, hour, le, count) "
        "SELECT series_id, minute / 60, le, SUM(count) FROM obs_minute GROUP BY series_id, minute / 60, le"
    )


def downgrade() -> None:
    op.drop_table("obs_hour")
    op.drop_table("counter_hour")
