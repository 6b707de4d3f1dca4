"""The state store: SQLAlchemy Core over SQLite (default, WAL) or PostgreSQL, migrated by Alembic.

``open_store(url)`` returns a :class:`Store`. The store owns telemetry rollups (written by ingest,
read by :class:`vigil.telemetry.source.EmbeddedSource`) and state (gate decisions).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from vigil import __version__
from vigil.errors import StoreError, VigilError
from vigil.store import schema

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql.dml import Insert as PgInsert
    from sqlalchemy.dialects.sqlite.dml import Insert as SqliteInsert

    from vigil.store.ingest_txn import IngestTxn, KeyRow, SeriesLimits
    from vigil.telemetry.ingest import Rollup

REVISIONS = Path(__file__).parent / "revisions"
"""vigil's own schema revisions (Alembic's script location); the user's SQL migrations are vigil.deploy.migrations."""
DB_HINT = "check --db / VIGIL_DB, that the server is up and the path is writable"
CREATE_HINT = "create it with `vigil store init` (or `vigil push` / `vigil serve`, which create it), or point --db / VIGIL_DB at the store you meant"

Mode = Literal["read", "write", "create"]
"""How a command opens the store.

``read``: it must exist and be at this vigil's schema; opened read-only (SQLite ``mode=ro``, no
write lock, works on a read-only file). ``write``: it must exist; migrated forward if behind.
``create``: created (file 0600 in a 0700 directory) and migrated if missing. Only writers that
bring data in (push, serve, simulate, ``vigil store init``) create a store."""


def known_revisions() -> list[str]:
    """This vigil's schema revisions, oldest first, from the migration files (no Alembic import)."""
    return sorted(p.name.split("_", 1)[0] for p in (REVISIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def head_revision() -> str:
    return known_revisions()[-1]


HEAD_REVISION = head_revision()
"""The schema revision this vigil writes (the newest migration file)."""


class StoreMissingError(VigilError):
    """The store named by --db / VIGIL_DB (or the default next to the spec) does not exist."""

    code = "store-missing"


class StoreVersionError(VigilError):
    """The store's schema is not the one this vigil reads: newer (written by a newer vigil) or older."""

    code = "store-version"


@contextmanager
def db_errors(what: str, hint: str = DB_HINT) -> Iterator[None]:
    """Turn a failure of the database (down, refused, locked, not a database, a constraint or
    trigger saying no) into a :class:`StoreError` that says what failed, instead of a traceback."""
    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
        reason = getattr(e, "orig", None) or e
        raise StoreError(f"{what}: {str(reason).strip()}", hint=hint) from None


@dataclass(frozen=True)
class SeriesInfo:
    id: int
    metric: str
    labels: dict[str, str]
    kind: str


@dataclass(frozen=True)
class BucketLayout:
    """A relative-width layout registered in the store: every bucket ``(l, u]`` with
    ``low_ns <= l < high_ns`` is at most ``width`` wide relative to ``l``, for observations of
    minutes ``since_minute`` on (earlier minutes keep the buckets they were stored in)."""

    width: Decimal
    low_ns: int
    high_ns: int
    bounds: int
    since_minute: int

    def to_dict(self) -> dict:
        return {"width": f"{(self.width * 100).normalize():f}%", "low_ns": self.low_ns, "high_ns": self.high_ns,
                "bounds": self.bounds, "since_minute": self.since_minute}


def default_db_url(spec_path: str | Path | None) -> str:
    base = Path(spec_path).absolute().parent if spec_path else Path.cwd()
    return "sqlite:///" + str(base / ".vigil" / "vigil.db")


def _sqlite_path(url: str) -> str | None:
    """The file of a sqlite URL; None for an in-memory database."""
    path = url.split("sqlite:///", 1)[1] if "sqlite:///" in url else ""
    if path.startswith("file:"):  # SQLite's URI form: sqlite:///file:/path/x.db?mode=ro&uri=true
        from urllib.parse import unquote

        path = unquote(path[len("file:"):].split("?", 1)[0].split("#", 1)[0])
        if path.startswith("//"):  # file://localhost/path or file:///path
            path = "/" + path[2:].partition("/")[2]
        if "mode=memory" in url:
            return None
    else:
        path = path.split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def open_store(url: str, *, mode: Mode = "create", migrate: bool = True) -> "Store":
    """Open the store at ``url`` (see :data:`Mode`). Raises :class:`StoreMissingError` when a
    ``read`` or ``write`` store does not exist, :class:`StoreVersionError` when its schema is not
    one this vigil can use, and :class:`StoreError` when the database fails."""
    if mode not in ("read", "write", "create"):
        raise ValueError(f"unknown store mode {mode!r}")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    shown = _redact(url)
    try:
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url, mode, shown)
        else:
            parsed = sa.engine.make_url(url)  # a malformed URL is an ArgumentError here, before any import
            if parsed.get_backend_name() != "postgresql" or parsed.get_driver_name() != "psycopg":
                raise sa.exc.ArgumentError("a vigil store is SQLite or PostgreSQL (through psycopg)")
            opts: dict[str, Any] = {"connect_timeout": 10}
            if mode == "read":
                opts["options"] = "-c default_transaction_read_only=on"
            engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=opts)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as e:  # ValueError: a port that is not a number
        from vigil.pgconn import scrub

        raise StoreError(
            f"cannot use database URL {shown!r}: {scrub(str(e), url)}",
            hint="use sqlite:///path/to/vigil.db or postgresql://user@host/db",
        ) from None
    store = Store(engine, readonly=mode == "read", url=shown)
    try:
        store._check_schema(mode, migrate=migrate)
    except BaseException:
        engine.dispose()
        raise
    return store


def _sqlite_engine(url: str, mode: Mode, shown: str) -> Engine:
    path = _sqlite_path(url)
    if path is None:
        if mode != "create":
            raise StoreMissingError(f"an in-memory store {shown!r} is always empty", hint=CREATE_HINT)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    p = Path(path)
    if not p.exists():
        if mode != "create":
            raise StoreMissingError(f"there is no state store at {p}", hint=CREATE_HINT) from None
        _create_private_file(p)
    elif p.is_dir():
        raise StoreError(f"the store path {p} is a directory", hint="point --db / VIGIL_DB at a file") from None
    _refuse_writable_by_others(p)
    if mode == "read":
        return _sqlite_readonly_engine(p)
    engine = sa.create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _refuse_writable_by_others(p: Path) -> None:
    """A store file, or its directory, that any local user may write could be swapped for one that
    answers ALLOWED: refused (a sticky directory like /tmp is fine: others cannot replace our file)."""
    import stat

    from vigil.errors import UsageError

    for path, is_dir in ((p.parent, True), (p, False)):
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_mode & stat.S_IWOTH and not (is_dir and st.st_mode & stat.S_ISVTX):
            mode = stat.S_IMODE(st.st_mode)
            raise UsageError(
                f"the store {'directory' if is_dir else 'file'} {path} is writable by others (mode {mode:04o}):"
                " anyone on this machine could replace the store",
                hint=f"chmod {'700' if is_dir else '600'} {path}",
            )


def _create_private_file(p: Path) -> None:
    """A new store: the directory 0700 (when vigil makes it) and the file 0600, before SQLite opens it
    (SQLite gives its -wal and -shm files the database file's mode)."""
    try:
        if not p.parent.exists():
            p.parent.mkdir(parents=True, mode=0o700)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except FileExistsError:
        pass  # another process created it first
    except OSError as e:
        raise StoreError(
            f"cannot create the database directory or file {p}: {e.strerror}", hint="point --db / VIGIL_DB at a writable directory"
        ) from None


def _sqlite_readonly_engine(p: Path) -> Engine:
    """Read-only SQLite: ``mode=ro`` takes no write lock and never changes the file. A WAL database
    in a directory we cannot write (so SQLite cannot make its -shm file) is opened ``immutable``,
    which is safe exactly then: no writer can have it open without a -wal file next to it."""
    import sqlite3
    from urllib.parse import quote

    uri = "file:" + quote(str(p.absolute())) + "?mode=ro"
    wal = Path(str(p) + "-wal")
    immutable = not os.access(p.parent, os.W_OK) and not wal.exists() and not Path(str(p) + "-shm").exists()
    if immutable:
        uri += "&immutable=1"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA query_only=ON")
        return conn

    return sa.create_engine("sqlite://", creator=connect)


def _redact(url: str) -> str:
    """The URL for messages: no password, whether after the user or in the query (libpq reads
    ``?password=`` and ``?sslpassword=`` too)."""
    from vigil import pgconn

    try:
        if pgconn.is_url(url):
            m = re.match(r"^(postgresql|postgres)\+[A-Za-z0-9_]+://", url)
            shown = pgconn.redact(url)
            return (m.group(0) + shown.split("://", 1)[1]) if m else shown
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unreadable url>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # Switching a new database to WAL needs it to itself for a moment, and SQLite answers "database
    # is locked" at once instead of calling the busy handler: retry, for a bounded time, when
    # several processes open a new database together. Once in WAL (persistent) this is a no-op.
    for attempt in range(3000):  # at most ~30 s
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == 2999:
                raise
            time.sleep(0.01)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    def __init__(self, engine: Engine, *, readonly: bool = False, url: str | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.readonly = readonly
        self.url = url or _redact(str(engine.url))
        self._series_ids: dict[tuple[str, str], int] = {}
        self._catalog: list[SeriesInfo] = []
        self._catalog_max_id = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def revision(self) -> str | None:
        """The schema revision the store is at (None: no vigil schema in it). Takes no lock."""
        with db_errors(f"cannot open the state database {self.url}"), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def _check_schema(self, mode: Mode, *, migrate: bool) -> None:
        known = known_revisions()
        head = known[-1]
        current = self.revision()
        if current is not None and current not in known:
            writer = self.meta("vigil_version") if current > head else None
            raise StoreVersionError(
                f"the store {self.url} is at schema revision {current}"
                + (f" (written by vigil {writer})" if writer else "")
                + f"; this vigil {__version__} knows revisions up to {head}",
                hint="upgrade vigil to the version that wrote this store"
                if current > head
                else "this store was not made by vigil, or by a build this one does not know; point --db at vigil's store",
            )
        if current == head:
            return
        if current is None and mode != "create":
            raise StoreMissingError(f"{self.url} holds no vigil store (no schema)", hint=CREATE_HINT)
        if mode == "read":
            raise StoreVersionError(
                f"the store {self.url} is at schema revision {current}; this vigil {__version__} reads {head}",
                hint="migrate it once with `vigil store init` (read commands never write to the store)",
            )
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the head revision (a no-op when it is there already)."""
        if self.readonly:
            raise StoreError("a read-only store cannot be migrated", hint="open it with mode='write'")
        with db_errors("cannot open the state database"), self.engine.connect() as conn:
            if self.dialect == "postgresql":
                # one migrator at a time across replicas
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7307001)"))
            elif self.dialect == "sqlite":
                # the same for SQLite, and an atomic migration: pysqlite runs DDL outside any
                # transaction unless one is begun explicitly; IMMEDIATE takes the write lock now
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            current = None
            if sa.inspect(conn).has_table("alembic_version"):
                current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            if current == head_revision():
                return
            from alembic import command
            from alembic.config import Config

            cfg = Config()
            cfg.set_main_option("script_location", str(REVISIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            if sa.inspect(conn).has_table("store_meta"):
                self._set_meta(conn, "vigil_version", __version__)
            conn.commit()

    def meta(self, key: str) -> str | None:
        """A value of the store_meta table (None when absent, or when the store has no such table)."""
        try:
            with self.engine.connect() as conn:
                if not sa.inspect(conn).has_table("store_meta"):
                    return None
                return conn.execute(sa.text("SELECT value FROM store_meta WHERE key = :k"), {"k": key}).scalar()
        except sa.exc.DBAPIError:
            return None

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(sa.text("DELETE FROM store_meta WHERE key = :k"), {"k": key})
        conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value})

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with db_errors("the state database does not answer"), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- upserts ----------------------------------------------------------------------------------

    def _insert(self, table: sa.Table) -> PgInsert | SqliteInsert:
        """An INSERT with the dialect's ON CONFLICT clauses (the same on both)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- series catalog -----------------------------------------------------------------------------

    def metric_kinds(self) -> dict[str, str]:
        """The kind of every metric, as the store registered it (one kind per metric)."""
        with db_errors("reading the series catalog failed"), self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.metric_kinds.c.metric, schema.metric_kinds.c.kind)).all()
        return dict(rows)

    def series_counts(self) -> tuple[int, dict[str, int]]:
        """Series in the store, and per metric (what the cardinality limits are checked against)."""
        with db_errors("reading the series catalog failed"), self.engine.connect() as conn:
            total = conn.execute(
                sa.select(schema.telemetry_totals.c.value).where(schema.telemetry_totals.c.name == "series")
            ).scalar()
            per = dict(conn.execute(sa.select(schema.metric_kinds.c.metric, schema.metric_kinds.c.series)).all())
        return int(total or 0), {m: int(n) for m, n in per.items()}

    def series(self) -> list[SeriesInfo]:
        """Every series, cached; new series are read incrementally.

        On PostgreSQL ids commit out of order (a transaction still open holds a lower id than one
        already committed), so "ids above the highest seen" can miss a series for good: when the
        count of series disagrees with the cache, the catalog is read again in full."""
        s = schema.series
        cols = sa.select(s.c.id, s.c.metric, s.c.labels, s.c.kind)
        with db_errors("reading the series catalog failed"), self.engine.connect() as conn:
            rows = conn.execute(cols.where(s.c.id > self._catalog_max_id).order_by(s.c.id)).all()
            total = conn.execute(sa.select(sa.func.count()).select_from(s)).scalar_one()
            if total != len(self._catalog) + len(rows):
                self._catalog, self._catalog_max_id = [], 0
                rows = conn.execute(cols.order_by(s.c.id)).all()
        for sid, m, lj, k in rows:
            self._catalog.append(SeriesInfo(sid, m, json.loads(lj), k))
            self._catalog_max_id = max(self._catalog_max_id, sid)
        return self._catalog

    # -- telemetry writes ---------------------------------------------------------------------------

    def begin_ingest(self) -> "IngestTxn":
        """A write transaction for pushes (see :mod:`vigil.store.ingest_txn`)."""
        from vigil.store.ingest_txn import IngestTxn

        return IngestTxn(self)

    def write_rollup(self, r: Rollup, limits: "SeriesLimits | None" = None) -> None:
        """Write one batch's rollup in a single transaction: all of it or none of it.

        Rows are written in key order, so concurrent writers (PostgreSQL) lock rows in the same
        order and cannot deadlock one another. Raises :class:`~vigil.store.ingest_txn.Recheck`
        (nothing written) when the batch must be checked again against what the store knows, and
        :class:`StoreError` when the database fails (nothing written)."""
        from vigil.store.ingest_txn import Recheck, SeriesLimits

        if r.empty:
            return
        txn = self.begin_ingest()
        try:
            txn.write(r, limits or SeriesLimits())
        except Recheck:
            txn.rollback()
            raise
        txn.commit()

    def ingest_key(self, key: str) -> "KeyRow | None":
        """The stored row of an idempotency key (None: never seen, or expired)."""
        from vigil.store.ingest_txn import KeyRow

        t = schema.ingest_keys
        with db_errors("reading idempotency keys failed"), self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.key, t.c.source, t.c.body_sha256, t.c.created_ms, t.c.response).where(t.c.key == key)).first()
        return KeyRow(*row) if row is not None and row[4] else None

    # -- bucket bounds ------------------------------------------------------------------------------

    def bounds(self) -> dict[int, int]:
        """Every bucket bound (ns) and the first minute exact at it."""
        with db_errors("reading the bucket bounds failed"), self.engine.connect() as conn:
            return dict(conn.execute(sa.select(schema.bounds.c.le, schema.bounds.c.since_minute)).all())

    def layouts(self) -> list["BucketLayout"]:
        """The relative-width layouts registered in the store (``telemetry.bucket_width``), oldest first."""
        t = schema.bucket_layouts
        q = sa.select(t.c.width, t.c.low_ns, t.c.high_ns, t.c.bounds, t.c.since_minute).order_by(t.c.since_minute, t.c.width)
        with db_errors("reading the bucket layouts failed"), self.engine.connect() as conn:
            return [BucketLayout(Decimal(w), int(lo), int(hi), int(n), int(since)) for w, lo, hi, n, since in conn.execute(q)]

    def width_at(self, minute: int) -> Decimal | None:
        """The relative width every bucket from 1 us to 1 h of minute ``minute`` is within: the finest
        layout holding it in full (None: only the documented bounds and thresholds)."""
        widths = [lay.width for lay in self.layouts() if lay.since_minute <= minute]
        return min(widths) if widths else None

    def register_bounds(
        self, bounds_ns: Sequence[int], documented_ns: Sequence[int], *, layout: tuple[Decimal, Sequence[int]] | None = None
    ) -> dict[int, int]:
        """Add bounds every push buckets by from now on; returns all of the store's bounds.

        A documented bound is exact for all history (0). Another is exact from one past the last
        minute that held observations when it is registered (0 when none did): later pushes bucket
        by it, whatever their timestamps, so a backfill pushed afterwards is exact. Registration
        excludes every transaction writing observations (SQLite's write lock; a PostgreSQL advisory
        lock they share), so no batch bucketed without the bound commits after this point.

        ``layout``: ``(width, bounds_ns)`` of a relative-width layout
        (:func:`vigil.histogram.storage_bounds`). Registered with its bounds unless the store has
        one at least as fine already (a store keeps the finest width it was given: bounds are never
        removed); it holds in full from the minute its last bound became exact."""
        have = self.bounds()
        need_layout = layout is not None and not any(lay.width <= layout[0] for lay in self.layouts())
        if all(b in have for b in bounds_ns) and not need_layout:
            return have
        from vigil.store.ingest_txn import BOUNDS_LOCK

        doc = set(documented_ns)
        with db_errors("recording the bucket bounds failed"), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({BOUNDS_LOCK})"))
            present = dict(conn.execute(sa.select(schema.bounds.c.le, schema.bounds.c.since_minute)).all())
            lt = schema.bucket_layouts
            if layout is not None:
                finer = conn.execute(sa.select(lt.c.width)).scalars().all()
                need_layout = not any(Decimal(w) <= layout[0] for w in finer)
            wanted = set(bounds_ns) | (set(layout[1]) if need_layout and layout is not None else set())
            new = sorted(b for b in wanted if b not in present)
            if new:
                since = 0 if all(b in doc for b in new) else self._first_unobserved_minute(conn)
                rows = [{"le": b, "since_minute": 0 if b in doc else since} for b in new]
                conn.execute(self._insert(schema.bounds).on_conflict_do_nothing(index_elements=["le"]), rows)
                present.update((r["le"], r["since_minute"]) for r in rows)
            if need_layout and layout is not None:
                width, lb = layout
                conn.execute(
                    self._insert(lt).on_conflict_do_nothing(index_elements=["width"]),
                    [{"width": str(width), "low_ns": min(lb), "high_ns": max(lb), "bounds": len(set(lb)),
                      "since_minute": max(present[b] for b in lb)}],
                )
            conn.commit()
        return self.bounds()

    def _first_unobserved_minute(self, conn: Connection) -> int:
        """One past the last minute holding observations (0 when none does)."""
        h = conn.execute(sa.select(sa.func.max(schema.obs_hour.c.hour))).scalar()
        if h is None:
            return 0
        t = schema.obs_minute
        sids = sa.select(schema.obs_hour.c.series_id).where(schema.obs_hour.c.hour == h).distinct()
        m = conn.execute(sa.select(sa.func.max(t.c.minute)).where(t.c.series_id.in_(sids), t.c.minute >= h * 60)).scalar()
        return int(m if m is not None else h * 60 + 59) + 1

    # -- retention ---------------------------------------------------------------------------------

    def purge_before(self, minute: int, *, now_ms: int | None = None) -> int:
        """Delete telemetry minutes before ``minute`` (hours once all their minutes are gone) and
        expired idempotency keys: a ``vigil push`` chain key with the data it stored, an HTTP key
        :data:`~vigil.store.ingest_txn.KEY_TTL_MS` after it was used (measured from ``now_ms``, or
        from the newest HTTP key when not given: the store keeps no clock). Returns minute rows deleted."""
        from vigil.store.ingest_txn import KEY_TTL_MS

        n = 0
        k = schema.ingest_keys
        with db_errors("purging old telemetry failed"), self.engine.begin() as conn:
            for t in (schema.counter_minute, schema.obs_minute, schema.gauge_minute):
                n += conn.execute(sa.delete(t).where(t.c.minute < minute)).rowcount or 0
            # an hour goes once all its minutes are gone
            for t in (schema.counter_hour, schema.obs_hour):
                conn.execute(sa.delete(t).where(t.c.hour < minute // 60))
            conn.execute(sa.delete(k).where(k.c.source == "push", k.c.created_ms < minute * 60_000))
            if now_ms is None:
                now_ms = conn.execute(sa.select(sa.func.max(k.c.created_ms)).where(k.c.source == "http")).scalar()
            if now_ms is not None:
                conn.execute(sa.delete(k).where(k.c.source == "http", k.c.created_ms < now_ms - KEY_TTL_MS))
        return n

    def purge_keys(self, now_ms: int) -> int:
        """Forget HTTP idempotency keys used more than 24 hours before ``now_ms``."""
        from vigil.store.ingest_txn import KEY_TTL_MS

        k = schema.ingest_keys
        with db_errors("purging idempotency keys failed"), self.engine.begin() as conn:
            return conn.execute(sa.delete(k).where(k.c.source == "http", k.c.created_ms < now_ms - KEY_TTL_MS)).rowcount or 0

    # -- gate decisions ------------------------------------------------------------------------------

    def record_gate_decision(self, row: dict) -> int:
        with db_errors("recording the gate decision failed"), self.engine.begin() as conn:
            res = conn.execute(sa.insert(schema.gate_decisions).returning(schema.gate_decisions.c.id), [row])
            return int(res.scalar_one())

    def gate_decisions(self, *, service: str | None = None, limit: int = 50) -> list[dict]:
        t = schema.gate_decisions
        q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if service:
            q = q.where(t.c.service == service)
        with db_errors("reading gate decisions failed"), self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
