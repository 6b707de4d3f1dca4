"""``backups.postgres``: PostgreSQL backups through pgBackRest, written from the spec.

vigil writes the pgBackRest configuration (one stanza, one ``repoN`` per entry of ``repos``),
creates the stanza, sets WAL archiving on the server (``archive_command``, ``archive_timeout``)
and runs backups, verification and status against it::

    backups:
      postgres:
        stanza: main
        data_dir: /var/lib/postgresql/15/main
        port: 5432
        socket_dir: /var/run/postgresql
        archive_timeout: 60s
        repos:
          - {path: /var/lib/pgbackrest, retention: {full: 35d}, region: eu-west-1}
          - {path: /mnt/dr-copy/pgbackrest, retention: {full: 35d}, region: eu-central-1, role: cross-region}

Relative paths are relative to the spec file's directory.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from vigil.model import Duration, SpecModel
from vigil.units import format_duration

STANZA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_REPOS = 4


class RetentionSpec(SpecModel):
    """How long a repository keeps full backups: for a time (pgBackRest ``retention-full-type=time``,
    whole days) or a count of full backups. Exactly one of ``full`` and ``full_count``."""

    full: Duration | None = Field(None, description="keep full backups this long, whole days (time-based retention), like 35d")
    full_count: int | None = Field(None, ge=1, le=9999999, description="keep this many full backups (count-based retention)")
    diff_count: int | None = Field(None, ge=1, le=9999999, description="keep this many differential backups (default: pgBackRest's)")

    @field_validator("full")
    @classmethod
    def _days(cls, v: Decimal | None) -> Decimal | None:
        if v is None:
            return v
        if v <= 0 or v % 86400 != 0:
            raise ValueError(f"full retention {format_duration(v)} must be whole days (pgBackRest counts days), like 35d")
        return v

    @model_validator(mode="after")
    def _one(self) -> "RetentionSpec":
        if (self.full is None) == (self.full_count is None):
            raise ValueError("give exactly one of `full` (a time, like 35d) and `full_count` (a number of full backups)")
        return self

    @property
    def kind(self) -> str:
        return "time" if self.full is not None else "count"

    @property
    def days(self) -> int | None:
        return int(self.full // 86400) if self.full is not None else None


class RepoSpec(SpecModel):
    """One pgBackRest repository (``repoN``, N = its position in ``repos``, from 1)."""

    path: str = Field(description="the repository directory (pgBackRest `repoN-path`)")
    retention: RetentionSpec = Field(
        default_factory=lambda: RetentionSpec(full=Decimal(35 * 86400)),
        description="full-backup retention (default: time-based, 35 days, the plan's promise)",
    )
    role: Literal["local", "cross-region"] | None = Field(
        None, description="`local`, or `cross-region` for the copy that survives a region loss (default: local for the first repo, cross-region for the others)"
    )
    region: str | None = Field(None, description="where the repository lives, free text shown in reports")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("path must not be empty")
        if any(c in v for c in "\n\r\0"):
            raise ValueError("path must be one line")
        return v


class PostgresBackupSpec(SpecModel):
    """One PostgreSQL cluster backed up by pgBackRest into one or more repositories."""

    stanza: str = Field(description="the pgBackRest stanza name, e.g. main")
    data_dir: str = Field(description="the cluster's data directory (pgBackRest `pg1-path`)")
    port: int = Field(5432, ge=1, le=65535, description="the server's port (pgBackRest `pg1-port`)")
    socket_dir: str | None = Field(None, description="the server's unix socket directory (pgBackRest `pg1-socket-path`)")
    host: str | None = Field(
        None, description="TCP host vigil's own SQL checks connect to (default: the unix socket in socket_dir, else 127.0.0.1)"
    )
    user: str = Field("postgres", description="database superuser vigil and pgBackRest connect as (pgBackRest `pg1-user`)")
    database: str = Field("postgres", description="database vigil connects to for archiver status, the canary ledger and checks")
    os_user: str | None = Field(
        None, description="OS user pgBackRest runs as (it must read the data directory); default `postgres` when vigil runs as root, else vigil's user"
    )
    pgbackrest: str = Field("pgbackrest", description="the pgBackRest command")
    pg_bin: str = Field("/usr/lib/postgresql/15/bin", description="PostgreSQL server binaries, for drills that start a restored cluster")
    config: str = Field(".vigil/pgbackrest/pgbackrest.conf", description="where vigil writes the pgBackRest configuration")
    work_dir: str = Field(".vigil/pgbackrest", description="pgBackRest's log, lock and spool directories go here")
    archive_timeout: Duration | None = Field(
        None, description="PostgreSQL `archive_timeout`: the longest an idle-ish database waits before a WAL segment is archived; bounds the RPO (unset: a gap)"
    )
    backup_interval: Duration = Field(
        Decimal(86400), description="how often backups are meant to run (the plan: daily); backup age above 1.5x this is a problem"
    )
    compress_type: Literal["gz", "lz4", "zst", "bz2", "none"] = Field("gz", description="pgBackRest `compress-type`")
    process_max: int = Field(1, ge=1, le=64, description="pgBackRest `process-max`: parallel processes for backup and restore")
    timeout: Duration = Field(
        Decimal(6 * 3600), description="the longest one pgBackRest command may run before vigil stops it (default 6h)"
    )
    repos: list[RepoSpec] = Field(description="the repositories, repo1 first; a second one is the cross-region copy", min_length=1)

    @field_validator("stanza")
    @classmethod
    def _stanza(cls, v: str) -> str:
        if not STANZA.match(v):
            raise ValueError(f"stanza {v!r} must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit")
        return v

    @field_validator("repos")
    @classmethod
    def _repos(cls, v: list[RepoSpec]) -> list[RepoSpec]:
        if len(v) > MAX_REPOS:
            raise ValueError(f"at most {MAX_REPOS} repositories")
        seen: set[str] = set()
        for r in v:
            if r.path in seen:
                raise ValueError(f"repository path {r.path!r} is listed twice")
            seen.add(r.path)
        return v

    @field_validator("archive_timeout")
    @classmethod
    def _archive_timeout(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and (v < 1 or v != v.to_integral_value() or v > 2**30):
            raise ValueError("archive_timeout must be whole seconds, at least 1s (0 or unset disables it)")
        return v

    def repo_role(self, key: int) -> str:
        """The role of repo ``key`` (1-based)."""
        r = self.repos[key - 1]
        if r.role is not None:
            return r.role
        return "local" if key == 1 else "cross-region"

    def cross_region_repos(self) -> list[int]:
        return [i for i in range(1, len(self.repos) + 1) if self.repo_role(i) == "cross-region"]
