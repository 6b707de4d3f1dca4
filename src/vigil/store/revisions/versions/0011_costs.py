"""FinOps (issue 13): daily cost rows per import scope and {env, service, ServiceName, region, usage
type, charge category}; the imports and the scopes they replaced; budget breaches written before
their alert event is pushed (an outbox); cost actions (rightsize and audit --apply) with the gate's
answer.

Costs are integers of 1e-9 of the currency (``*_nano``), quantities of 1e-6 of their unit.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_daily",
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("env", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(128), primary_key=True),
        sa.Column("service_name", sa.String(200), primary_key=True),
        sa.Column("region", sa.String(64), primary_key=True),
        sa.Column("usage_type", sa.String(200), primary_key=True),
        sa.Column("charge_category", sa.String(32), primary_key=True),
        sa.Column("billed_nano", sa.BigInteger, nullable=False),
        sa.Column("effective_nano", sa.BigInteger, nullable=False),
        sa.Column("list_nano", sa.BigInteger, nullable=False),
        sa.Column("quantity_micro", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("line_items", sa.BigInteger, nullable=False),
        sa.Column("import_id", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_cost_daily_day", "cost_daily", ["day"])
    op.create_index("ix_cost_daily_env_service", "cost_daily", ["env", "service", "day"])
    op.create_table(
        "cost_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("imported_at", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("rows_read", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("rows_stored", sa.BigInteger, nullable=False),
        sa.Column("rows_replaced", sa.BigInteger, nullable=False),
        sa.Column("billed_nano", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
    )
    op.create_table(
        "cost_scopes",
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("import_id", sa.Integer, nullable=False),
        sa.Column("first_day", sa.String(10), nullable=False),
        sa.Column("last_day", sa.String(10), nullable=False),
        sa.Column("replaced", sa.Integer, nullable=False),
    )
    op.create_table(
        "cost_breaches",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("budget", sa.String(128), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("threshold", sa.String(16), nullable=False),
        sa.Column("env", sa.String(64), nullable=True),
        sa.Column("service", sa.String(128), nullable=True),
        sa.Column("amount_nano", sa.BigInteger, nullable=False),
        sa.Column("value_nano", sa.BigInteger, nullable=False),
        sa.Column("detected_at", sa.String(40), nullable=False),
        sa.Column("event_sent_at", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "cost_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("service", sa.String(128), nullable=True),
        sa.Column("env", sa.String(64), nullable=True),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_cost_actions_service", "cost_actions", ["service", "id"])


def downgrade() -> None:
    op.drop_index("ix_cost_actions_service", table_name="cost_actions")
    op.drop_table("cost_actions")
    op.drop_table("cost_breaches")
    op.drop_table("cost_scopes")
    op.drop_table("cost_imports")
    op.drop_index("ix_cost_daily_env_service", table_name="cost_daily")
    op.drop_index("ix_cost_daily_day", table_name="cost_daily")
    op.drop_table("cost_daily")
