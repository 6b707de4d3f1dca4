"""State tables of backups and DR drills (created by migration 0004).

Times are RFC 3339 strings in UTC (as ``gate_decisions``); RTO and RPO are stored exactly, in
microseconds. A drill's row and each phase's row are written *before* the work they describe, so an
interrupted drill is still on record (status ``running`` with no end).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from vigil.store.schema import metadata

backup_runs = Table(
    "dr_backup_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("engine", String(32), nullable=False),  # pgbackrest
    Column("stanza", String(128), nullable=False),
    Column("repo", Integer, nullable=False),
    Column("type", String(16), nullable=False),  # full | diff | incr
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40), nullable=True),
    Column("status", String(16), nullable=False),  # running | ok | failed
    Column("label", String(128), nullable=True),  # the backup set label, once known
    Column("seconds", BigInteger, nullable=True),  # wall time in microseconds
    Column("error", Text, nullable=True),
    Column("detail", Text, nullable=True),  # JSON: the backup as pgBackRest's info reports it
    Index("ix_dr_backup_runs_stanza", "stanza", "id"),
)

drill_runs = Table(
    "dr_drill_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("scenario", String(32), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40), nullable=True),
    Column("status", String(16), nullable=False),  # running | passed | failed
    Column("rto_us", BigInteger, nullable=True),
    Column("rpo_us", BigInteger, nullable=True),
    Column("rto_objective_us", BigInteger, nullable=False),
    Column("rpo_objective_us", BigInteger, nullable=False),
    Column("gaps", Integer, nullable=True),
    Column("report_dir", Text, nullable=True),
    Column("spec_sha256", String(64), nullable=True),
    Column("report", Text, nullable=True),  # the JSON report
    Index("ix_dr_drill_runs_name", "name", "id"),
)

drill_phases = Table(
    "dr_drill_phases",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40), nullable=True),
    Column("ok", Boolean, nullable=True),
    Column("error", Text, nullable=True),
    Column("evidence", Text, nullable=True),  # JSON
)
