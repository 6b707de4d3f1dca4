"""Verdicts of deploy checks (migration verify, canary analysis) per service and release.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_verdicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("release", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_deploy_verdicts_lookup", "deploy_verdicts", ["service", "release", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_deploy_verdicts_lookup", "deploy_verdicts")
    op.drop_table("deploy_verdicts")
