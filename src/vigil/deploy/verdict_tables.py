"""The state table of deploy-check verdicts (created by migration 0005)."""

from sqlalchemy import Column, Index, Integer, String, Table, Text

from vigil.store.schema import metadata

deploy_verdicts = Table(
    "deploy_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # migration | canary
    Column("service", String(128), nullable=False),
    Column("release", String(200), nullable=False),
    Column("verdict", String(32), nullable=False),  # pass | fail | marginal | inconclusive | ...
    Column("recorded_at", String(40), nullable=False),
    Column("summary", Text, nullable=False),
    Column("details", Text, nullable=False),  # the check's whole JSON output
    Index("ix_deploy_verdicts_lookup", "service", "release", "kind", "id"),
)
