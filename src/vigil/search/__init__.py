"""Search engines behind one protocol: Typesense (HTTP) and an embedded SQLite FTS5 engine.

The public surface, for the DR drill and the CLI::

    from vigil.search import (
        SearchEngine, EmbeddedEngine, TypesenseEngine, open_engine,
        IndexSnapshot, load_snapshot, rebuild, RebuildResult, check_index, IndexCheck,
        repair_index, RepairResult, OutboxSpec, create_outbox_table,
    )

``open_engine(spec: SearchBackupSpec, *, base_dir: Path | None = None) -> SearchEngine``
    The engine ``backups.search`` names: ``embedded`` (a SQLite file, ``path`` relative to
    ``base_dir``, the spec's folder) or ``typesense`` (``url`` plus the API key read from the env var
    or file the spec names).

``engine.snapshot(dir, *, created_at=None) -> IndexSnapshot``
    A consistent snapshot in ``dir``: ``manifest.json`` (engine, watermark, position,
    per-collection counts, SHA-256 of every file), each collection's schema (``<c>.schema.json``)
    and JSONL export (``<c>.jsonl``); the embedded engine adds ``index.sqlite`` (SQLite backup API),
    Typesense also asks the server for its own snapshot (``POST /operations/snapshot``).
    ``load_snapshot(dir)`` reads a manifest back and verifies every checksum. :class:`IndexSnapshot`
    fields: ``path``, ``engine``, ``created_at``, ``watermark``, ``position``, ``counts``,
    ``checksums``, ``files`` (sizes), ``server_snapshot_path``; ``count``, ``to_dict()``.

``rebuild(engine, snapshot, outbox_dsn, *, outbox=None, collections=None, batch_size=5000,
max_errors=0, reset=True, progress=None, clock=time.monotonic) -> RebuildResult``
    Phase 5 of a DR drill. Restores ``snapshot`` (an :class:`IndexSnapshot`, a snapshot directory, or
    ``None``) into ``engine``, then re-seeds from the PostgreSQL transactional outbox at
    ``outbox_dsn`` (a ``postgresql://`` or ``postgresql+psycopg://`` URL, e.g. the restored
    cluster's ``PgCluster.url()``): the rows the index has not seen, in id order, ``batch_size``
    rows at a time, collapsed to the last change per document and applied as upserts and deletes
    with the watermark and position advanced in the same transaction as each batch (the embedded
    engine; Typesense writes both in one request after each batch, which is safe because replay is
    idempotent). "Not seen" is decided by transaction visibility when the outbox has a txid column
    (see :mod:`vigil.search.outbox`: a change committed after a later one is still applied), else
    by ``id > watermark``. ``snapshot=None``: with ``reset`` the index's collections are dropped
    first and the re-seed starts from nothing; with ``reset=False`` it catches up from the index's
    own position. ``outbox`` is an :class:`OutboxSpec` (table and column names: the spec's
    ``backups.search.outbox``; default: the table ``search_outbox`` that
    :func:`create_outbox_table` makes). ``collections`` (the spec's ``backups.search.collections``,
    or names) limits the rebuild to those and gives the schemas of collections it must create.
    Up to ``max_errors`` refused documents are recorded in ``errors``; one more raises
    :class:`ImportFailed` with the watermark left at the last good batch.
    ``progress(applied_rows, watermark)`` is called after each batch.

    :class:`RebuildResult` fields: ``count`` (documents in the index after the rebuild, all
    collections), ``counts`` (per collection), ``watermark`` (the index's watermark after: the
    largest outbox id applied), ``position`` (its position text), ``mode`` (``txid`` or ``id``),
    ``snapshot_watermark`` (where the re-seed started), ``target_watermark`` (the outbox's max id
    when it started), ``restored`` (documents restored from the snapshot), ``applied`` (outbox rows
    read), ``upserts``, ``deletes``, ``batches``, ``restore_seconds``, ``reseed_seconds``,
    ``seconds`` (total), ``docs_per_second`` (property: outbox rows per second of re-seed),
    ``errors`` (list of ``{outbox_id, collection, doc_id, error}``), ``warnings`` (e.g. the
    snapshot is ahead of the restored database, the outbox was pruned past the snapshot, the outbox
    has no txid column), ``snapshot`` (its path or None), ``ok`` (no errors), ``to_dict()``.

``check_index(engine, outbox_dsn, *, outbox=None, collections=None) -> IndexCheck``
    Compares the index with the database (:mod:`vigil.search.check`): counts (``count_sql`` or the
    live keys of the outbox), every document's content (digests hashed in ranges of the id space,
    against ``documents_sql`` or the latest outbox row per key; differing ids named), and the
    changes not applied yet. :class:`IndexCheck` fields: ``ok``, ``index_count``, ``db_count``,
    ``index_watermark``, ``db_watermark``, ``mode``, ``pending``, ``collections`` (per-collection
    ``{"index": n, "db": n, "source": "count_sql" | "outbox"}``), ``content`` (per-collection
    statistics of the comparison), ``diffs`` (per collection: ``missing``, ``modified``,
    ``ghost`` id lists), ``pending_ids``, ``problems`` (list of str, readable), ``to_dict()``.

``repair_index(engine, outbox_dsn, check, *, outbox=None, collections=None) -> RepairResult``
    Fixes exactly the ids ``check`` found different (upserts the source's current document, deletes
    ghosts) and reads each back from both sides. :class:`RepairResult` fields: ``upserted``,
    ``deleted`` (per collection), ``created`` (collections it had to create), ``refused``,
    ``remaining`` (ids that still differ), ``ok``, ``to_dict()``.

The outbox table (:func:`create_outbox_table(conn_or_dsn, outbox=None)` creates it)::

    CREATE TABLE search_outbox (
        id         bigserial PRIMARY KEY,           -- the watermark column
        collection text NOT NULL,
        doc_id     text NOT NULL,
        op         text NOT NULL DEFAULT 'upsert',  -- 'upsert' or 'delete'
        document   jsonb,                           -- the whole document for an upsert
        created_at timestamptz NOT NULL DEFAULT now(),
        txid       xid8 NOT NULL DEFAULT pg_current_xact_id()  -- the writing transaction
    );
    CREATE INDEX search_outbox_txid_idx ON search_outbox (txid);

Errors: :class:`SearchError` (an :class:`~vigil.errors.ExternalError`, exit code 3) when an engine
or the outbox database fails, :class:`ImportFailed` (a ``SearchError``) when an import refused
documents (``.errors`` lists them), :class:`IndexSnapshotError` when a snapshot is missing or corrupt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Change",
    "ChangesApplyResult",
    "DocumentError",
    "DocumentImportResult",
    "EmbeddedEngine",
    "ImportFailed",
    "IndexCheck",
    "IndexSnapshot",
    "IndexSnapshotError",
    "OutboxSpec",
    "RebuildResult",
    "RepairResult",
    "SearchEngine",
    "SearchError",
    "TypesenseEngine",
    "check_index",
    "create_outbox_table",
    "load_snapshot",
    "open_engine",
    "rebuild",
    "repair_index",
]

_WHERE = {
    "Change": "vigil.search.engine",
    "DocumentError": "vigil.search.engine",
    "ChangesApplyResult": "vigil.search.engine",
    "ImportFailed": "vigil.search.engine",
    "DocumentImportResult": "vigil.search.engine",
    "SearchEngine": "vigil.search.engine",
    "SearchError": "vigil.search.engine",
    "IndexSnapshot": "vigil.search.engine",
    "IndexSnapshotError": "vigil.search.engine",
    "load_snapshot": "vigil.search.engine",
    "EmbeddedEngine": "vigil.search.embedded",
    "TypesenseEngine": "vigil.search.typesense",
    "IndexCheck": "vigil.search.check",
    "RepairResult": "vigil.search.check",
    "RebuildResult": "vigil.search.outbox",
    "check_index": "vigil.search.check",
    "repair_index": "vigil.search.check",
    "create_outbox_table": "vigil.search.outbox",
    "rebuild": "vigil.search.outbox",
    "OutboxSpec": "vigil.search.spec",
    "open_engine": "vigil.search.engine",
}

if TYPE_CHECKING:  # pragma: no cover
    from vigil.search.check import IndexCheck, RepairResult, check_index, repair_index
    from vigil.search.embedded import EmbeddedEngine
    from vigil.search.engine import (
        Change,
        ChangesApplyResult,
        DocumentError,
        DocumentImportResult,
        ImportFailed,
        IndexSnapshot,
        IndexSnapshotError,
        SearchEngine,
        SearchError,
        load_snapshot,
        open_engine,
    )
    from vigil.search.outbox import RebuildResult, create_outbox_table, rebuild
    from vigil.search.spec import OutboxSpec
    from vigil.search.typesense import TypesenseEngine


def __getattr__(name: str) -> Any:
    """Import lazily: the spec loads ``vigil.search.spec`` and must not pay for httpx or psycopg."""
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'vigil.search' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)
