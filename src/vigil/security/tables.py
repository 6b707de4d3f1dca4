"""State tables of security findings (created by migration 0007).

Times are RFC 3339 strings in UTC (as ``gate_decisions``). A finding row is one fingerprint in one
release of one service; ``first_seen`` is the earliest time the fingerprint was seen for the service
in any release (deadlines count from it). Waivers are per service and fingerprint, newest first.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from vigil.store.schema import metadata

security_imports = Table(
    "security_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(128), nullable=False),
    Column("release", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # secrets | sast | migration | pentest | probe | waf | data
    Column("tool", String(200), nullable=False),
    Column("window", String(128), nullable=True),  # a pen-test window's name
    Column("retest", Boolean, nullable=False),
    Column("found_at", String(40), nullable=False),
    Column("imported_at", String(40), nullable=False),
    Column("actor", Text, nullable=True),
    Column("file_sha256", String(64), nullable=False),
    Column("file_name", Text, nullable=True),
    Column("results", Integer, nullable=False),
    Column("new_findings", Integer, nullable=False),
    UniqueConstraint("service", "release", "file_sha256", name="uq_security_imports_file"),
    Index("ix_security_imports_release", "service", "release", "id"),
)

security_findings = Table(
    "security_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(128), nullable=False),
    Column("release", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("tool", String(200), nullable=False),
    Column("rule_id", String(255), nullable=False),
    Column("severity", String(16), nullable=False),  # critical | high | medium | low | info
    Column("title", Text, nullable=False),
    Column("path", Text, nullable=True),
    Column("line", Integer, nullable=True),
    Column("window", String(128), nullable=True),
    Column("first_seen", String(40), nullable=False),
    Column("import_id", Integer, nullable=False),
    Column("fixed_at", String(40), nullable=True),  # a pen-test retest no longer found it
    Column("details", Text, nullable=False),  # JSON: level, security-severity, snippet (redacted), tags, cwe, suppression
    UniqueConstraint("service", "release", "fingerprint", name="uq_security_findings_key"),
    Index("ix_security_findings_fp", "service", "fingerprint"),
)

security_waivers = Table(
    "security_waivers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("expires", String(40), nullable=False),  # the first instant the waiver no longer holds
    Column("created_at", String(40), nullable=False),
    Column("actor", Text, nullable=True),
    Index("ix_security_waivers_fp", "service", "fingerprint", "id"),
)
