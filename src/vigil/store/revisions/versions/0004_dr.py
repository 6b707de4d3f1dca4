"""Backup runs, DR drill runs and their phases.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dr_backup_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("stanza", sa.String(128), nullable=False),
        sa.Column("repo", sa.Integer, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("seconds", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_dr_backup_runs_stanza", "dr_backup_runs", ["stanza", "id"])
    op.create_table(
        "dr_drill_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scenario", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rto_us", sa.BigInteger, nullable=True),
        sa.Column("rpo_us", sa.BigInteger, nullable=True),
        sa.Column("rto_objective_us", sa.BigInteger, nullable=False),
        sa.Column("rpo_objective_us", sa.BigInteger, nullable=False),
        sa.Column("gaps", sa.Integer, nullable=True),
        sa.Column("report_dir", sa.Text, nullable=True),
        sa.Column("spec_sha256", sa.String(64), nullable=True),
        sa.Column("report", sa.Text, nullable=True),
    )
    op.create_index("ix_dr_drill_runs_name", "dr_drill_runs", ["name", "id"])
    op.create_table(
        "dr_drill_phases",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("ended_at", sa.String(40), nullable=True),
        sa.Column("ok", sa.Boolean, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("evidence", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("dr_drill_phases")
    op.drop_index("ix_dr_drill_runs_name", table_name="dr_drill_runs")
    op.drop_table("dr_drill_runs")
    op.drop_index("ix_dr_backup_runs_stanza", table_name="dr_backup_runs")
    op.drop_table("dr_backup_runs")
