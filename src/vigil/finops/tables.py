"""The FinOps tables (created by migration 0011).

``cost_daily`` holds one row per import scope, day and {env, service, ServiceName, region, usage
type, charge category}: the line items of a file summed exactly (costs in 1e-9 of the currency,
quantities in 1e-6 of their unit). A scope is what one source reports once (a provider's billing
account and billing period, or one Cost Explorer day): re-importing it replaces its rows in one
transaction, so a re-import never adds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from vigil.store.schema import metadata

cost_daily = Table(
    "cost_daily",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, the charge period's start (UTC)
    Column("env", String(64), primary_key=True),  # '' untagged
    Column("service", String(128), primary_key=True),  # '' untagged
    Column("service_name", String(200), primary_key=True),
    Column("region", String(64), primary_key=True),
    Column("usage_type", String(200), primary_key=True),
    Column("charge_category", String(32), primary_key=True),
    Column("billed_nano", BigInteger, nullable=False),
    Column("effective_nano", BigInteger, nullable=False),
    Column("list_nano", BigInteger, nullable=False),
    Column("quantity_micro", BigInteger, nullable=False),
    Column("unit", String(64), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("line_items", BigInteger, nullable=False),
    Column("import_id", Integer, nullable=False),
    Index("ix_cost_daily_day", "day"),
    Index("ix_cost_daily_env_service", "env", "service", "day"),
    sqlite_with_rowid=False,
)

cost_imports = Table(
    "cost_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("imported_at", String(40), nullable=False),
    Column("kind", String(16), nullable=False),  # focus | cur2 | cost-explorer
    Column("files", Text, nullable=False),  # JSON: [{name, sha256, rows}]
    Column("scopes", Text, nullable=False),  # JSON list
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False),
    Column("rows_stored", BigInteger, nullable=False),
    Column("rows_replaced", BigInteger, nullable=False),
    Column("billed_nano", BigInteger, nullable=False),
    Column("actor", String(200), nullable=True),
)

cost_scopes = Table(
    "cost_scopes",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("import_id", Integer, nullable=False),
    Column("first_day", String(10), nullable=False),
    Column("last_day", String(10), nullable=False),
    Column("replaced", Integer, nullable=False),  # how many imports of this scope came before
)

# A budget breach is written here before its alert event is pushed (an outbox): ``event_sent_at``
# is set once the event is stored; a replay pushes the rest with the same idempotency key.
cost_breaches = Table(
    "cost_breaches",
    metadata,
    Column("key", String(300), primary_key=True),  # budget|month|threshold label
    Column("budget", String(128), nullable=False),
    Column("month", String(7), nullable=False),
    Column("kind", String(16), nullable=False),  # actual | forecast | anomaly
    Column("threshold", String(16), nullable=False),
    Column("env", String(64), nullable=True),
    Column("service", String(128), nullable=True),
    Column("amount_nano", BigInteger, nullable=False),
    Column("value_nano", BigInteger, nullable=False),
    Column("detected_at", String(40), nullable=False),
    Column("event_sent_at", String(40), nullable=True),
    Column("detail", Text, nullable=False),
)

cost_actions = Table(
    "cost_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(200), nullable=True),
    Column("kind", String(32), nullable=False),  # rightsize | audit-apply
    Column("service", String(128), nullable=True),
    Column("env", String(64), nullable=True),
    Column("target", String(300), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("reason", Text, nullable=True),
    Column("detail", Text, nullable=False),
    Index("ix_cost_actions_service", "service", "id"),
)
