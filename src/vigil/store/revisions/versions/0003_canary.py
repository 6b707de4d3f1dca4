"""Canary analysis: runs of the deploy loop, their events, and the judge's verdicts.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canary_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(128), nullable=True),
        sa.Column("active_key", sa.String(128), nullable=True),
        sa.Column("baseline", sa.Text, nullable=False),
        sa.Column("canary", sa.Text, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("step_started", sa.BigInteger, nullable=True),
        sa.Column("extensions", sa.Integer, nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("spec_sha256", sa.String(64), nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.UniqueConstraint("active_key", name="uq_canary_runs_active_key"),
    )
    op.create_index("ix_canary_runs_service", "canary_runs", ["service", "id"])
    op.create_table(
        "canary_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("canary_runs.id", name="fk_canary_events_run"), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=True),
        sa.Column("weight", sa.Integer, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_canary_events_run", "canary_events", ["run_id", "id"])
    op.create_table(
        "canary_verdicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("judged_at", sa.String(40), nullable=False),
        sa.Column("service", sa.String(128), nullable=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("baseline", sa.Text, nullable=False),
        sa.Column("canary", sa.Text, nullable=False),
        sa.Column("window_from", sa.String(40), nullable=False),
        sa.Column("window_to", sa.String(40), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("score", sa.Text, nullable=True),
        sa.Column("spec_sha256", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_canary_verdicts_service", "canary_verdicts", ["service", "id"])


def downgrade() -> None:
    op.drop_index("ix_canary_verdicts_service", "canary_verdicts")
    op.drop_table("canary_verdicts")
    op.drop_index("ix_canary_events_run", "canary_events")
    op.drop_table("canary_events")
    op.drop_index("ix_canary_runs_service", "canary_runs")
    op.drop_table("canary_runs")
