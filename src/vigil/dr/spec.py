"""The ``backups:`` section: one subsection per backup engine, each owned by its engine's module."""

from __future__ import annotations

from pydantic import Field

from vigil.dr.aws.spec import AuroraBackupSpec, S3PolicySpec
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.model import SpecModel
from vigil.search.spec import SearchBackupSpec


class BackupsSpec(SpecModel):
    postgres: PostgresBackupSpec | None = Field(None, description="PostgreSQL through pgBackRest")
    aurora: AuroraBackupSpec | None = Field(None, description="Aurora PostgreSQL snapshots through the AWS API")
    s3: S3PolicySpec | None = Field(None, description="object storage policy: versioning, lifecycle, Object Lock")
    search: SearchBackupSpec | None = Field(None, description="search index snapshots, schema and exports")
