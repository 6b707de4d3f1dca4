"""``backups.search``: which search engine, how to reach it, what to snapshot, where the outbox is.

Example (the reference plan: Typesense fed from a transactional outbox)::

    backups:
      search:
        engine: typesense
        url: https://search.internal:8108
        api_key_env: TYPESENSE_API_KEY          # never the key itself
        collections:
          - name: products
            count_sql: "SELECT count(*) FROM products WHERE deleted_at IS NULL"
            documents_sql: "SELECT id, jsonb_build_object('title', title, 'price', price) FROM products WHERE deleted_at IS NULL"
        snapshot_dir: .vigil/search-snapshots
        server_snapshot_dir: /var/lib/typesense-snapshots
        schedule: nightly 02:30 UTC
        outbox: {table: search_outbox, url_env: VIGIL_OUTBOX_URL}   # txid_column: txid (the default)

Locally, ``engine: embedded`` keeps the index in a SQLite file (FTS5) at ``path``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vigil.model import Duration, SpecModel
from vigil.netguard import host_problem

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_COLLECTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

FIELD_TYPES = frozenset(
    {
        "string", "string[]", "string*", "int32", "int32[]", "int64", "int64[]", "float", "float[]",
        "bool", "bool[]", "geopoint", "geopoint[]", "object", "object[]", "auto", "image",
    }
)


def check_identifier(name: str, what: str) -> str:
    """A SQL identifier, optionally schema-qualified: ``outbox`` or ``app.search_outbox``."""
    parts = name.split(".")
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(
            f"{what} {name!r} is not a plain SQL identifier (letters, digits, '_', '$'; optionally schema.name)"
        )
    return name


def check_collection_name(name: str) -> str:
    if not _COLLECTION.match(name):
        raise ValueError(
            f"collection name {name!r}: use letters, digits, '_', '-' and '.' (it appears in URLs and file names)"
        )
    return name


class FieldSpec(SpecModel):
    """One field of a Typesense collection schema (the subset vigil needs to recreate a collection)."""

    name: str = Field(description="field name; a regular expression like `.*` for auto-detected fields")
    type: str = Field(description="Typesense field type: string, string[], int32, int64, float, bool, auto, ...")
    facet: bool = Field(False, description="facetable")
    optional: bool = Field(False, description="documents may lack this field")
    index: bool = Field(True, description="index the field (false: stored only)")
    sort: bool | None = Field(None, description="sortable (Typesense's default when unset)")

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in FIELD_TYPES:
            raise ValueError(f"unknown field type {v!r}; one of {', '.join(sorted(FIELD_TYPES))}")
        return v

    def to_typesense(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.facet:
            d["facet"] = True
        if self.optional:
            d["optional"] = True
        if not self.index:
            d["index"] = False
        if self.sort is not None:
            d["sort"] = self.sort
        return d


class CollectionSpec(SpecModel):
    """A collection to snapshot, rebuild and check. A bare string is the same as ``{name: ...}``."""

    name: str = Field(description="the collection's name in the search engine (and in the outbox's collection column)")
    fields: list[FieldSpec] | None = Field(
        None,
        description="schema used when the collection must be created and no snapshot holds it (default: every field auto-detected)",
    )
    default_sorting_field: str | None = Field(None, description="Typesense default_sorting_field for a created collection")
    count_sql: str | None = Field(
        None,
        description="a SELECT returning the number of live entities in the database (run read-only); default: keys whose last outbox event is not a delete",
    )
    documents_sql: str | None = Field(
        None,
        description="a SELECT returning (id, document as json/jsonb) of every live entity: what the index must hold, compared "
        "document by document by `vigil search check` (run read-only); default: the latest outbox row of each key",
    )

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_collection_name(v)

    @field_validator("count_sql", "documents_sql")
    @classmethod
    def _one_select(cls, v: str | None, info: Any) -> str | None:
        if v is None:
            return v
        s = v.strip().rstrip(";").strip()
        if not re.match(r"^(select|with)\b", s, re.IGNORECASE) or ";" in s:
            what = "one number" if info.field_name == "count_sql" else "two columns: the id and the document"
            raise ValueError(f"{info.field_name} must be one SELECT (or WITH ... SELECT) statement returning {what}")
        return s

    def typesense_schema(self) -> dict[str, Any]:
        """The Typesense collection schema to create this collection with."""
        fields = [f.to_typesense() for f in self.fields] if self.fields else [{"name": ".*", "type": "auto"}]
        d: dict[str, Any] = {"name": self.name, "fields": fields}
        if self.default_sorting_field:
            d["default_sorting_field"] = self.default_sorting_field
        return d


class OutboxSpec(SpecModel):
    """The platform's transactional outbox table: one row per change to a searchable entity."""

    table: str = Field("search_outbox", description="outbox table, optionally schema-qualified")
    watermark_column: str = Field(
        "id", description="monotonic bigint id of each change; the index's watermark is the last one applied"
    )
    collection_column: str = Field("collection", description="column naming the collection a change belongs to")
    key_column: str = Field("doc_id", description="column holding the document id (text)")
    op_column: str = Field("op", description="column holding the operation: an upsert, or one of `delete_ops`")
    document_column: str = Field("document", description="jsonb column holding the whole document for an upsert")
    delete_ops: list[str] = Field(default_factory=lambda: ["delete"], description="op values that delete a document")
    txid_column: str | None = Field(
        "txid",
        description="xid8 column holding the id of the transaction that wrote each row (`DEFAULT pg_current_xact_id()`), so a "
        "catch-up picks up changes that commit out of id order; null: the outbox has none (tracked by id alone, with a warning)",
    )
    url_env: str | None = Field(
        None, description="environment variable holding the outbox database URL (postgresql://...); never the URL in the spec"
    )

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        return check_identifier(v, "table")

    @field_validator("watermark_column", "collection_column", "key_column", "op_column", "document_column")
    @classmethod
    def _col(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"column {v!r} is not a plain SQL identifier (letters, digits, '_', '$')")
        return v

    @field_validator("txid_column")
    @classmethod
    def _txcol(cls, v: str | None) -> str | None:
        if v is not None and not _IDENT.match(v):
            raise ValueError(f"column {v!r} is not a plain SQL identifier (letters, digits, '_', '$')")
        return v

    @field_validator("delete_ops")
    @classmethod
    def _ops(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("delete_ops needs at least one value (the op that deletes a document)")
        return v

    @field_validator("url_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV.match(v):
            raise ValueError(f"{v!r} is not an environment variable name")
        return v


class SearchBackupSpec(SpecModel):
    """Search index backups: snapshot, schema and JSONL export; rebuild from a snapshot plus the outbox."""

    engine: Literal["typesense", "embedded"] = Field("embedded", description="the search engine: Typesense over HTTP, or the embedded SQLite FTS5 engine")
    url: str | None = Field(None, description="Typesense base URL, like https://search.internal:8108 (engine typesense)")
    api_key_env: str | None = Field(
        None, description="environment variable holding the Typesense API key (default TYPESENSE_API_KEY when no api_key_file)"
    )
    api_key_file: str | None = Field(None, description="file holding the Typesense API key (relative to the spec)")
    allow_link_local: bool = Field(
        False, description="allow a URL that resolves to a link-local or metadata address (169.254.0.0/16, fd00:ec2::254); off by default"
    )
    timeout: Duration = Field(Decimal(30), description="timeout of one request to the engine")
    import_timeout: Duration = Field(Decimal(300), description="timeout of one import or export request (Typesense advises >= 5 minutes)")
    path: str = Field(".vigil/search.db", description="the embedded engine's SQLite file (relative to the spec)")
    collections: list[CollectionSpec] = Field(
        default_factory=list, description="collections to snapshot, rebuild and check (default: every collection the engine has)"
    )
    snapshot_dir: str = Field(".vigil/search-snapshots", description="where snapshots (manifest, schemas, JSONL exports) are written, relative to the spec")
    server_snapshot_dir: str | None = Field(
        None,
        description="Typesense: a directory on the search server; each snapshot also asks the server for its own data snapshot there (POST /operations/snapshot)",
    )
    schedule: str | None = Field(None, description="when snapshots run, free text for reports (the plan: nightly)")
    batch_size: int = Field(5000, ge=1, le=1_000_000, description="outbox rows applied per batch (and per import request)")
    meta_collection: str = Field("vigil_meta", description="Typesense collection where vigil keeps the index's watermark")
    outbox: OutboxSpec = Field(default_factory=OutboxSpec, description="the transactional outbox the index is re-seeded from")

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for k in ("api_key", "apikey", "key", "token", "password"):
                if k in v:
                    raise ValueError(
                        f"`{k}`: never put a secret in the spec; name an environment variable with `api_key_env` "
                        "or a file with `api_key_file`"
                    )
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit  # not httpx: loading a spec stays light

        try:
            u = urlsplit(v)
            u.port  # noqa: B018 - a bad port raises here
        except ValueError as e:
            raise ValueError(f"not a URL: {e}") from None
        if u.scheme not in ("http", "https") or not u.hostname or any(c.isspace() for c in v):
            raise ValueError("use an http:// or https:// URL with a host, like https://search.internal:8108")
        if u.username is not None or u.password is not None:
            raise ValueError("no credentials in the URL; the API key comes from api_key_env or api_key_file")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _key_env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV.match(v):
            raise ValueError(f"{v!r} is not an environment variable name")
        return v

    @field_validator("meta_collection")
    @classmethod
    def _meta(cls, v: str) -> str:
        return check_collection_name(v)

    @model_validator(mode="after")
    def _consistent(self) -> "SearchBackupSpec":
        if self.engine == "typesense":
            if not self.url:
                raise ValueError("engine typesense needs `url` (like https://search.internal:8108)")
            if self.api_key_env and self.api_key_file:
                raise ValueError("give api_key_env or api_key_file, not both")
            from urllib.parse import urlsplit

            host = urlsplit(self.url).hostname or ""
            problem = None if self.allow_link_local else host_problem(host)
            if problem:
                raise ValueError(f"url: {host} is {problem}; vigil does not contact it unless `allow_link_local: true`")
        names = [c.name for c in self.collections]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"collection {dup[0]!r} is listed twice")
        if self.meta_collection in names:
            raise ValueError(f"{self.meta_collection!r} is vigil's meta collection; it cannot also be a collection to back up")
        return self

    def collection(self, name: str) -> CollectionSpec | None:
        for c in self.collections:
            if c.name == name:
                return c
        return None
