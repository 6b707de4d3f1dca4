"""State tables of alert rules (created by migration 0008).

Times are RFC 3339 strings in UTC (as ``gate_decisions``). ``alert_instances`` holds one row per
rule instance (rule + fingerprint of its labels): its current state. ``alert_transitions`` is the
append-only log of state changes, written in the same transaction as the instances; ``seq`` is
assigned by the writer as one more than the largest so far, inside the write transaction, so seqs
become visible in commit order without gaps (a consumer's cursor never skips one).
``alert_evaluations`` holds one row per evaluation instant (``at_ms`` unique): an instant already
evaluated is never recorded twice, and a gap between instants is visible.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from vigil.store.schema import metadata

alert_evaluations = Table(
    "alert_evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("rules", Integer, nullable=False),
    Column("instances", Integer, nullable=False),
    Column("transitions", Integer, nullable=False),
    Column("first_seq", BigInteger, nullable=True),
    Column("last_seq", BigInteger, nullable=True),
    Column("spec_sha256", String(64), nullable=True),
    Column("fence", BigInteger, nullable=True),  # the leader's fencing token, when one evaluated
    Column("errors", Text, nullable=False),  # JSON list: rules whose evaluation failed
    UniqueConstraint("at_ms", name="uq_alert_evaluations_at"),
)

alert_instances = Table(
    "alert_instances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(200), nullable=False),
    Column("fingerprint", String(16), nullable=False),
    Column("labels", Text, nullable=False),  # canonical JSON
    Column("annotations", Text, nullable=False),  # canonical JSON
    Column("state", String(16), nullable=False),  # pending | firing | resolved
    Column("active_at", String(40), nullable=True),
    Column("fired_at", String(40), nullable=True),
    Column("resolved_at", String(40), nullable=True),
    Column("last_true_at", String(40), nullable=True),  # the last evaluation where the condition held
    Column("keep_firing_since", String(40), nullable=True),  # firing, condition cleared since (keep_firing_for)
    Column("value", Text, nullable=True),  # a Decimal's text
    Column("seq", BigInteger, nullable=False),  # the seq of its last transition
    Column("evaluated_at", String(40), nullable=False),
    UniqueConstraint("rule", "fingerprint", name="uq_alert_instances_key"),
    Index("ix_alert_instances_state", "state"),
)

alert_transitions = Table(
    "alert_transitions",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("evaluation_id", Integer, nullable=False),
    Column("at", String(40), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("fingerprint", String(16), nullable=False),
    Column("labels", Text, nullable=False),
    Column("annotations", Text, nullable=False),
    Column("previous", String(16), nullable=False),  # inactive | pending | firing | resolved
    Column("state", String(16), nullable=False),  # pending | firing | resolved
    Column("active_at", String(40), nullable=True),
    Column("fired_at", String(40), nullable=True),
    Column("resolved_at", String(40), nullable=True),
    Column("value", Text, nullable=True),
    Index("ix_alert_transitions_key", "rule", "fingerprint", "seq"),
)
