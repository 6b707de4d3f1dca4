"""Tables of alert routing and delivery (created by migration 0009).

- ``leader_leases``: one row per lease (``alerting``): who holds it, its fencing token (one more at
  every change of holder), when it expires. Every write of the leader checks it in its transaction.
- ``alert_cursors``: the dispatcher's position in the transition log (``routing``), and the last
  heartbeat slot sent (``heartbeat``).
- ``alert_groups``: Alertmanager's aggregation groups, one row per (route, group labels): the alerts
  in the group, the timers (next flush), and the notification log entry (what was last notified).
- ``alert_outbox``: every notification, written before it is sent; ``key`` is its delivery id
  (stable across retries, replays and fallbacks).
- ``alert_attempts``: every attempt to deliver, and every switch to a fallback.
- ``alert_silences``: silences and maintenance windows.
- ``alert_receivers``: each receiver's consecutive failures and open circuit.

Times are RFC 3339 strings (for people) beside epoch milliseconds (for comparisons).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from vigil.store.schema import metadata

leader_leases = Table(
    "leader_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("fence", BigInteger, nullable=False),
    Column("acquired_ms", BigInteger, nullable=False),
    Column("renewed_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

alert_cursors = Table(
    "alert_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", String(40), nullable=False),
)

alert_groups = Table(
    "alert_groups",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of group_key
    Column("group_key", Text, nullable=False),  # route key + group labels, as Alertmanager prints it
    Column("route", Text, nullable=False),
    Column("receiver", String(200), nullable=False),
    Column("labels", Text, nullable=False),  # the group labels, canonical JSON
    Column("alerts", Text, nullable=False),  # fingerprint -> alert, canonical JSON
    Column("group_wait_ms", BigInteger, nullable=False),
    Column("group_interval_ms", BigInteger, nullable=False),
    Column("repeat_interval_ms", BigInteger, nullable=False),
    Column("next_flush_ms", BigInteger, nullable=True),  # None: no alerts, no timer
    Column("has_flushed", Integer, nullable=False),
    Column("flushes", Integer, nullable=False),  # notifications written so far
    Column("notified_firing", Text, nullable=False),  # JSON list of fingerprints
    Column("notified_resolved", Text, nullable=False),
    Column("notified_ms", BigInteger, nullable=True),
    Column("acked", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Index("ix_alert_groups_next", "next_flush_ms"),
)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),  # the delivery id
    Column("group_key", String(64), nullable=False),
    Column("receiver", String(200), nullable=False),  # the route's receiver
    Column("target", String(200), nullable=False),  # who it goes to now (a fallback after a switch)
    Column("action", String(16), nullable=False),  # trigger | acknowledge | resolve | heartbeat
    Column("dedup_key", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("created_at", String(40), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("target_failures", Integer, nullable=False),
    Column("delivered_at", String(40), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("fence", BigInteger, nullable=True),
    UniqueConstraint("key", name="uq_alert_outbox_key"),
    Index("ix_alert_outbox_due", "status", "next_attempt_ms"),
    Index("ix_alert_outbox_group", "group_key", "receiver", "id"),
)

alert_attempts = Table(
    "alert_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, nullable=False),
    Column("key", String(200), nullable=False),
    Column("receiver", String(200), nullable=False),
    Column("kind", String(32), nullable=False),  # pagerduty | email | webhook | slack | sns
    Column("action", String(16), nullable=False),
    Column("at", String(40), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("result", String(16), nullable=False),  # delivered | retry | failed | fallback | dropped
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("detail", Text, nullable=True),  # JSON
    Column("fence", BigInteger, nullable=True),
    Index("ix_alert_attempts_at", "at_ms"),
    Index("ix_alert_attempts_outbox", "outbox_id"),
)

alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("matchers", Text, nullable=False),  # JSON list of matcher strings
    Column("starts_at", String(40), nullable=False),
    Column("ends_at", String(40), nullable=False),
    Column("starts_ms", BigInteger, nullable=False),
    Column("ends_ms", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("expired_at", String(40), nullable=True),
    Column("expired_by", String(200), nullable=True),
    Index("ix_alert_silences_ends", "ends_ms"),
)

alert_receivers = Table(
    "alert_receivers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("open_until_ms", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", String(40), nullable=False),
)
