"""Alert routing and delivery (issue 8): the dispatcher's cursors over the transition log, the
aggregation groups with their timers and notification log, the durable outbox, every delivery
attempt, silences, receivers' circuit state, and the leader lease with its fencing token.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leader_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("fence", sa.BigInteger, nullable=False),
        sa.Column("acquired_ms", sa.BigInteger, nullable=False),
        sa.Column("renewed_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alert_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "alert_groups",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("alerts", sa.Text, nullable=False),
        sa.Column("group_wait_ms", sa.BigInteger, nullable=False),
        sa.Column("group_interval_ms", sa.BigInteger, nullable=False),
        sa.Column("repeat_interval_ms", sa.BigInteger, nullable=False),
        sa.Column("next_flush_ms", sa.BigInteger, nullable=True),
        sa.Column("has_flushed", sa.Integer, nullable=False),
        sa.Column("flushes", sa.Integer, nullable=False),
        sa.Column("notified_firing", sa.Text, nullable=False),
        sa.Column("notified_resolved", sa.Text, nullable=False),
        sa.Column("notified_ms", sa.BigInteger, nullable=True),
        sa.Column("acked", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_alert_groups_next", "alert_groups", ["next_flush_ms"])
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("group_key", sa.String(64), nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("target_failures", sa.Integer, nullable=False),
        sa.Column("delivered_at", sa.String(40), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("fence", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("key", name="uq_alert_outbox_key"),
    )
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["status", "next_attempt_ms"])
    op.create_index("ix_alert_outbox_group", "alert_outbox", ["group_key", "receiver", "id"])
    op.create_table(
        "alert_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("fence", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_alert_attempts_at", "alert_attempts", ["at_ms"])
    op.create_index("ix_alert_attempts_outbox", "alert_attempts", ["outbox_id"])
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("starts_at", sa.String(40), nullable=False),
        sa.Column("ends_at", sa.String(40), nullable=False),
        sa.Column("starts_ms", sa.BigInteger, nullable=False),
        sa.Column("ends_ms", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expired_at", sa.String(40), nullable=True),
        sa.Column("expired_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_alert_silences_ends", "alert_silences", ["ends_ms"])
    op.create_table(
        "alert_receivers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("open_until_ms", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_receivers")
    op.drop_index("ix_alert_silences_ends", "alert_silences")
    op.drop_table("alert_silences")
    op.drop_index("ix_alert_attempts_outbox", "alert_attempts")
    op.drop_index("ix_alert_attempts_at", "alert_attempts")
    op.drop_table("alert_attempts")
    op.drop_index("ix_alert_outbox_group", "alert_outbox")
    op.drop_index("ix_alert_outbox_due", "alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_alert_groups_next", "alert_groups")
    op.drop_table("alert_groups")
    op.drop_table("alert_cursors")
    op.drop_table("leader_leases")
