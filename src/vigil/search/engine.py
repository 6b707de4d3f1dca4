"""The :class:`SearchEngine` protocol, the data it speaks, and snapshots on disk.

A snapshot is a directory::

    manifest.json          engine, created_at, watermark, counts, sha256 of every file below
    <collection>.schema.json
    <collection>.jsonl     the collection's documents, one JSON object a line (Typesense's export format)
    index.sqlite           the embedded engine only: a consistent copy made with SQLite's backup API

``manifest.json`` is written last (through a rename), so a directory without one is an unfinished
snapshot. :func:`load_snapshot` re-reads every file and checks its SHA-256 before anything trusts it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Protocol, Sequence, runtime_checkable

from vigil.errors import ExternalError, UsageError
from vigil.fileutil import sha256_file

MANIFEST = "manifest.json"
FORMAT = 1


class SearchError(ExternalError):
    """A search engine, or the outbox database, failed or refused a request."""

    code = "search"


class ImportFailed(SearchError):
    """An import refused documents. ``errors`` lists each refused document with the engine's reason."""

    code = "search-import"

    def __init__(self, message: str, errors: Sequence["DocumentError"], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errors = list(errors)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["errors"] = [e.to_dict() for e in self.errors[:100]]
        d["error_count"] = len(self.errors)
        return d


class IndexSnapshotError(SearchError):
    """A snapshot directory is missing, unfinished or corrupt."""

    code = "search-snapshot"


@dataclass(frozen=True)
class DocumentError:
    """One document an engine refused: its position in the request, its id, the engine's reason."""

    collection: str
    index: int
    doc_id: str | None
    error: str
    document: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        who = f"document {self.doc_id!r}" if self.doc_id is not None else f"line {self.index + 1}"
        return f"{self.collection}: {who}: {self.error}"


@dataclass
class DocumentImportResult:
    """What an import did: how many documents were sent, how many took, and every refusal."""

    collection: str
    total: int = 0
    succeeded: int = 0
    errors: list[DocumentError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.succeeded == self.total

    def raise_for_errors(self) -> "DocumentImportResult":
        if self.errors:
            first = "; ".join(str(e) for e in self.errors[:3])
            more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
            raise ImportFailed(
                f"{self.collection}: {len(self.errors)} of {self.total} documents were refused: {first}{more}",
                self.errors,
                hint="fix the documents (or the collection schema) and import again; the others were imported",
            )
        return self

    def to_dict(self) -> dict:
        return {
            "collection": self.collection,
            "total": self.total,
            "succeeded": self.succeeded,
            "errors": [e.to_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class Change:
    """One outbox event: upsert the whole document, or delete it."""

    collection: str
    doc_id: str
    op: Literal["upsert", "delete"]
    document: dict[str, Any] | None = None


@dataclass
class ChangesApplyResult:
    """What :meth:`SearchEngine.apply` did with one batch of changes."""

    upserts: int = 0
    deletes: int = 0
    errors: list[DocumentError] = field(default_factory=list)
    committed: bool = False
    """True when the batch was written and the watermark advanced."""


@dataclass(frozen=True)
class IndexSnapshot:
    """A snapshot on disk, as its manifest describes it."""

    path: Path
    engine: str
    created_at: str
    watermark: int
    counts: dict[str, int]
    checksums: dict[str, str]
    files: dict[str, int] = field(default_factory=dict)
    server_snapshot_path: str | None = None
    position: str | None = None
    """The index's outbox position (which transactions it has seen; see :mod:`vigil.search.outbox`),
    or None for an index fed by outbox id alone (and for snapshots made before positions existed)."""

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def schema_file(self, collection: str) -> Path:
        return self.path / f"{collection}.schema.json"

    def export_file(self, collection: str) -> Path:
        return self.path / f"{collection}.jsonl"

    def schema(self, collection: str) -> dict[str, Any]:
        return json.loads(self.schema_file(collection).read_text())

    def documents(self, collection: str) -> Iterator[dict[str, Any]]:
        """The collection's exported documents, streamed."""
        with open(self.export_file(collection), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    doc = json.loads(line)
                except ValueError as e:
                    raise IndexSnapshotError(
                        f"{self.export_file(collection)}:{n}: not JSON ({e})",
                        hint="the export is corrupt; use another snapshot",
                    ) from None
                yield doc

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "path": str(self.path),
            "engine": self.engine,
            "created_at": self.created_at,
            "watermark": self.watermark,
            "position": self.position,
            "count": self.count,
            "counts": dict(self.counts),
            "files": dict(self.files),
            "checksums": dict(self.checksums),
            "server_snapshot_path": self.server_snapshot_path,
        }


@runtime_checkable
class SearchEngine(Protocol):
    """What vigil needs from a search engine. Schemas are Typesense collection schemas (dicts).

    The watermark is the id of the last outbox change the index holds (0: none).
    """

    kind: str

    def health(self) -> bool:
        """True when the engine answers and is healthy; raises :class:`SearchError` when unreachable."""

    def collections(self) -> list[str]:
        """Names of the collections (vigil's own meta collection excluded), sorted."""

    def create_collection(self, schema: dict[str, Any], *, exist_ok: bool = False) -> None: ...

    def schema(self, collection: str) -> dict[str, Any]:
        """The collection's schema (``name``, ``fields``, ...), without runtime fields like ``num_documents``."""

    def count(self, collection: str) -> int: ...

    def import_documents(
        self, collection: str, docs: Iterable[dict[str, Any]], *, action: str = "upsert"
    ) -> DocumentImportResult:
        """Import documents; every refused document is in ``DocumentImportResult.errors`` (nothing raised for them)."""

    def delete_documents(self, collection: str, ids: Sequence[str]) -> int:
        """Delete documents by id (missing ids are ignored); the number deleted."""

    def export(self, collection: str) -> Iterator[dict[str, Any]]: ...

    def search(self, collection: str, q: str, *, query_by: Sequence[str] | None = None, limit: int = 10) -> list[dict[str, Any]]: ...

    def delete(self, collection: str, *, missing_ok: bool = False) -> None:
        """Drop the collection and its documents."""

    def export_ids(self, collection: str) -> Iterator[str]:
        """The ids of the collection's documents, streamed (no document bodies)."""

    def get_many(self, collection: str, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The documents with these ids that exist (missing ids are skipped), in no particular order."""

    def get_watermark(self) -> int: ...

    def set_watermark(self, watermark: int) -> None: ...

    def get_position(self) -> str | None:
        """The index's outbox position (opaque text written by the re-seed), or None."""

    def set_position(self, position: str | None) -> None: ...

    def apply(
        self, changes: Sequence[Change], watermark: int, *, max_errors: int = 0, position: str | None = None
    ) -> ChangesApplyResult:
        """Apply one batch of outbox changes (at most one per document) and advance the watermark
        (and, when given, the position) with it.

        More than ``max_errors`` refused documents: the watermark does not move (the embedded
        engine also writes nothing of the batch), and ``committed`` is False.
        """

    def snapshot(self, directory: str | Path, *, created_at: datetime | None = None) -> IndexSnapshot: ...

    def restore(self, snapshot: IndexSnapshot) -> int:
        """Replace the snapshot's collections (and the watermark) with its content; documents restored."""

    def close(self) -> None: ...


# --- helpers shared by the engines --------------------------------------------------------------


def doc_id_of(doc: Any) -> str | None:
    if isinstance(doc, dict):
        v = doc.get("id")
        return v if isinstance(v, str) else None
    return None


def strip_runtime_fields(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema as ``POST /collections`` takes it: without ``num_documents``, ``created_at``."""
    return {k: v for k, v in schema.items() if k not in ("num_documents", "created_at")}


class _HashingWriter:
    """Write a file, counting bytes and hashing as it goes; rename into place on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".partial")
        self.f = open(self.tmp, "wb")
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.h.update(data)
        self.size += len(data)

    def close(self) -> str:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)
        return self.h.hexdigest()


def prepare_snapshot_dir(directory: str | Path) -> Path:
    d = Path(directory)
    if d.exists():
        if not d.is_dir():
            raise UsageError(f"{d} exists and is not a directory", hint="name a new directory for the snapshot")
        if any(d.iterdir()):
            raise UsageError(f"{d} is not empty", hint="a snapshot goes into a new, empty directory")
    d.mkdir(parents=True, exist_ok=True)
    return d


class SnapshotWriter:
    """Collects the files of a snapshot, then writes the manifest last."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.checksums: dict[str, str] = {}
        self.files: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def write_schema(self, collection: str, schema: dict[str, Any]) -> None:
        w = _HashingWriter(self.dir / f"{collection}.schema.json")
        w.write(json.dumps(schema, indent=2, sort_keys=True).encode() + b"\n")
        self._done(w)

    def write_export(self, collection: str, docs: Iterable[dict[str, Any] | bytes]) -> int:
        w = _HashingWriter(self.dir / f"{collection}.jsonl")
        n = 0
        buf: list[bytes] = []
        try:
            for d in docs:
                line = d if isinstance(d, bytes) else json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode()
                buf.append(line.rstrip(b"\n") + b"\n")
                n += 1
                if len(buf) >= 5000:
                    w.write(b"".join(buf))
                    buf.clear()
            if buf:
                w.write(b"".join(buf))
        except BaseException:
            w.f.close()
            w.tmp.unlink(missing_ok=True)
            raise
        self._done(w)
        self.counts[collection] = n
        return n

    def add_file(self, name: str) -> None:
        digest, size = sha256_file(self.dir / name)
        self.checksums[name] = digest
        self.files[name] = size

    def _done(self, w: _HashingWriter) -> None:
        self.checksums[w.path.name] = w.close()
        self.files[w.path.name] = w.size

    def finish(
        self, *, engine: str, created_at: datetime, watermark: int, server_snapshot_path: str | None = None,
        position: str | None = None,
    ) -> IndexSnapshot:
        snap = IndexSnapshot(
            path=self.dir,
            engine=engine,
            created_at=created_at.isoformat().replace("+00:00", "Z"),
            watermark=int(watermark),
            counts=dict(sorted(self.counts.items())),
            checksums=dict(sorted(self.checksums.items())),
            files=dict(sorted(self.files.items())),
            server_snapshot_path=server_snapshot_path,
            position=position,
        )
        data = snap.to_dict()
        data.pop("path")
        tmp = self.dir / (MANIFEST + ".partial")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / MANIFEST)
        return snap


def load_snapshot(directory: str | Path, *, verify: bool = True) -> IndexSnapshot:
    """Read a snapshot's manifest; with ``verify`` re-hash every file and compare. Raises IndexSnapshotError."""
    d = Path(directory)
    m = d / MANIFEST
    if not d.is_dir():
        raise IndexSnapshotError(f"{d}: no such snapshot directory", hint="list snapshots with `vigil search list`")
    try:
        data = json.loads(m.read_text())
    except FileNotFoundError:
        raise IndexSnapshotError(
            f"{d}: no {MANIFEST}; the snapshot is unfinished or not a vigil snapshot",
            hint="use a complete snapshot; an interrupted one can be deleted",
        ) from None
    except ValueError as e:
        raise IndexSnapshotError(f"{m}: not JSON ({e})", hint="the manifest is corrupt; use another snapshot") from None
    try:
        if data.get("format") != FORMAT:
            raise IndexSnapshotError(f"{m}: unknown snapshot format {data.get('format')!r}; this vigil reads format {FORMAT}")
        snap = IndexSnapshot(
            path=d,
            engine=str(data["engine"]),
            created_at=str(data["created_at"]),
            watermark=int(data["watermark"]),
            counts={str(k): int(v) for k, v in data["counts"].items()},
            checksums={str(k): str(v) for k, v in data["checksums"].items()},
            files={str(k): int(v) for k, v in data.get("files", {}).items()},
            server_snapshot_path=data.get("server_snapshot_path"),
            position=data.get("position") if isinstance(data.get("position"), str) else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise IndexSnapshotError(f"{m}: malformed manifest ({e!r})", hint="use another snapshot") from None
    for c in snap.counts:
        for name in (f"{c}.schema.json", f"{c}.jsonl"):
            if name not in snap.checksums:
                raise IndexSnapshotError(f"{m}: collection {c!r} has no checksum for {name}", hint="use another snapshot")
    if verify:
        for name, digest in snap.checksums.items():
            p = d / name
            if Path(name).name != name:
                raise IndexSnapshotError(f"{m}: file name {name!r} leaves the snapshot directory")
            if not p.is_file():
                raise IndexSnapshotError(f"{p}: missing from the snapshot", hint="the snapshot is incomplete; use another one")
            actual, _ = sha256_file(p)
            if actual != digest:
                raise IndexSnapshotError(
                    f"{p}: SHA-256 mismatch (manifest {digest[:12]}..., file {actual[:12]}...)",
                    hint="the snapshot was modified or damaged; use another one",
                )
    return snap


def read_secret(env_name: str | None, file: str | Path | None, *, default_env: str, what: str) -> str:
    """A secret from a private file (it wins) or an environment variable; never from the spec
    (:func:`vigil.secrets.read_secret`)."""
    from vigil.secrets import read_secret as _read

    return _read(env=env_name or default_env, file=file, what=what)


def open_engine(spec: Any, *, base_dir: str | Path | None = None, transport: Any = None) -> SearchEngine:
    """The engine ``backups.search`` describes. Relative paths are relative to ``base_dir``."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if spec.engine == "embedded":
        from vigil.search.embedded import EmbeddedEngine

        p = Path(spec.path)
        return EmbeddedEngine(p if p.is_absolute() else base / p)
    from vigil.search.typesense import TypesenseEngine

    key_file = spec.api_key_file
    if key_file is not None and not Path(key_file).is_absolute():
        key_file = base / key_file
    key = read_secret(spec.api_key_env, key_file, default_env="TYPESENSE_API_KEY", what="Typesense API key")
    return TypesenseEngine(
        spec.url,
        key,
        timeout=float(spec.timeout),
        import_timeout=float(spec.import_timeout),
        allow_link_local=spec.allow_link_local,
        meta_collection=spec.meta_collection,
        server_snapshot_dir=spec.server_snapshot_dir,
        transport=transport,
    )
