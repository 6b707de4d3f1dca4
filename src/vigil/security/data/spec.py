"""Data classification: the registry model and the ``security.data:`` settings (pydantic only).

The registry is in the spec (``security.data.tables``) or in a file of its own
(``security.data.registry: data-classes.yaml``, same shape under ``tables:``)::

    security:
      data:
        registry: data-classes.yaml
        schemas: [public]
        fail_on: [unclassified]          # also: pii_suspect, stale
        sample_rows: 200
        ignore_tables: [alembic_version]

    # data-classes.yaml
    tables:
      public.users:
        owner: identity-team
        roles: [app]                      # roles that may read every column (default for the columns)
        columns:
          id: internal                    # a class alone
          email: {class: pii, roles: [app, support, dsar]}
          password_hash: {class: sensitive, roles: [auth]}
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from vigil.model import SpecModel

Class = Literal["public", "internal", "pii", "sensitive"]
CLASSES = ("public", "internal", "pii", "sensitive")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def _ident(v: str, what: str) -> str:
    if not _IDENT.match(v):
        raise ValueError(f"{what} {v!r} is not a plain SQL identifier (letters, digits, _ and $; at most 63)")
    return v


class ColumnClass(SpecModel):
    class_: Class = Field(alias="class", description="public, internal, pii or sensitive")
    owner: str | None = Field(None, description="who answers for the column (default: the table's owner)")
    roles: list[str] | None = Field(None, description="database roles that may read the column (default: the table's roles)")
    note: str | None = Field(None, description="why the column has this class")

    model_config = SpecModel.model_config | {"populate_by_name": True}

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str] | None) -> list[str] | None:
        return [_ident(r, "role") for r in v] if v is not None else None


class TableClass(SpecModel):
    owner: str = Field(description="who answers for the table's data")
    roles: list[str] = Field(default_factory=list, description="database roles that may read its columns unless a column says otherwise")
    columns: dict[str, ColumnClass] = Field(description="column -> class (a class name alone, or {class, owner, roles, note})")

    @field_validator("columns", mode="before")
    @classmethod
    def _short(cls, v: object) -> object:
        if isinstance(v, dict):
            return {k: ({"class": c} if isinstance(c, str) else c) for k, c in v.items()}
        return v

    @field_validator("columns")
    @classmethod
    def _names(cls, v: dict[str, ColumnClass]) -> dict[str, ColumnClass]:
        for k in v:
            _ident(k, "column")
        return v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        return [_ident(r, "role") for r in v]


class Registry(SpecModel):
    tables: dict[str, TableClass] = Field(default_factory=dict, description="schema.table (or table, in public) -> owner, roles, columns")

    @field_validator("tables")
    @classmethod
    def _tables(cls, v: dict[str, TableClass]) -> dict[str, TableClass]:
        seen = set()
        for k in v:
            parts = k.split(".")
            if len(parts) > 2:
                raise ValueError(f"table {k!r}: write schema.table")
            for p in parts:
                _ident(p, "table")
            full = k if len(parts) == 2 else f"public.{k}"
            if full in seen:
                raise ValueError(f"table {full} is listed twice")
            seen.add(full)
        return v

    def qualified(self) -> dict[str, TableClass]:
        return {(k if "." in k else f"public.{k}"): t for k, t in self.tables.items()}


FailOn = Literal["unclassified", "pii_suspect", "stale"]


class DataSpec(SpecModel):
    registry: str | None = Field(None, description="a registry file (tables: ...) relative to the spec, instead of tables here")
    tables: dict[str, TableClass] | None = Field(None, description="the registry inline: schema.table -> owner, roles, columns")
    schemas: list[str] = Field(default_factory=lambda: ["public"], description="schemas vigil data scan compares")
    fail_on: list[FailOn] = Field(default_factory=lambda: list[FailOn](["unclassified"]),
                                  description="what fails the scan: unclassified columns, pii_suspect (PII-looking but not pii/sensitive), stale entries")
    sample_rows: int = Field(200, description="rows sampled per table to recognise PII in values (0: names only)")
    ignore_tables: list[str] = Field(default_factory=list, description="tables the scan leaves out (schema.table or table)")

    @model_validator(mode="after")
    def _one(self) -> DataSpec:
        if self.registry is not None and self.tables is not None:
            raise ValueError("give the registry in a file (registry:) or here (tables:), not both")
        if not 0 <= self.sample_rows <= 100_000:
            raise ValueError("sample_rows must be between 0 and 100000")
        for s in self.schemas:
            _ident(s, "schema")
        return self
