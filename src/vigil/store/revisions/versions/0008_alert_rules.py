"""Alert rules' state (issue 8): one row per rule instance (its current state), the append-only
transition log the dispatcher consumes by sequence number, and one row per evaluation instant (so
an evaluation is never recorded twice and none is skipped unseen).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_evaluations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("rules", sa.Integer, nullable=False),
        sa.Column("instances", sa.Integer, nullable=False),
        sa.Column("transitions", sa.Integer, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=True),
        sa.Column("last_seq", sa.BigInteger, nullable=True),
        sa.Column("spec_sha256", sa.String(64), nullable=True),
        sa.Column("fence", sa.BigInteger, nullable=True),
        sa.Column("errors", sa.Text, nullable=False),
        sa.UniqueConstraint("at_ms", name="uq_alert_evaluations_at"),
    )
    op.create_table(
        "alert_instances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active_at", sa.String(40), nullable=True),
        sa.Column("fired_at", sa.String(40), nullable=True),
        sa.Column("resolved_at", sa.String(40), nullable=True),
        sa.Column("last_true_at", sa.String(40), nullable=True),
        sa.Column("keep_firing_since", sa.String(40), nullable=True),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("evaluated_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("rule", "fingerprint", name="uq_alert_instances_key"),
    )
    op.create_index("ix_alert_instances_state", "alert_instances", ["state"])
    op.create_table(
        "alert_transitions",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("evaluation_id", sa.Integer, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("previous", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active_at", sa.String(40), nullable=True),
        sa.Column("fired_at", sa.String(40), nullable=True),
        sa.Column("resolved_at", sa.String(40), nullable=True),
        sa.Column("value", sa.Text, nullable=True),
    )
    op.create_index("ix_alert_transitions_key", "alert_transitions", ["rule", "fingerprint", "seq"])


def downgrade() -> None:
    op.drop_index("ix_alert_transitions_key", "alert_transitions")
    op.drop_table("alert_transitions")
    op.drop_index("ix_alert_instances_state", "alert_instances")
    op.drop_table("alert_instances")
    op.drop_table("alert_evaluations")
