"""One write transaction of a push: its idempotency key, then one or more rollups, committed together.

Everything that makes a count exact is decided here, inside the transaction, by the store (never by
a per-process cache), so a server and any number of ``vigil push`` processes agree:

- **The key** (HTTP ``Idempotency-Key`` or a ``vigil push`` batch's chain key) is claimed first: a
  unique row, so of two transactions with one key exactly one commits; the other finds the first's
  row and stores nothing.
- **One kind per metric**: ``metric_kinds`` is written in the same transaction as a metric's first
  series; its row is locked (PostgreSQL ``FOR UPDATE``) while series are added, in metric order.
- **Cardinality**: the per-metric count (``metric_kinds.series``) and the store-wide count
  (``telemetry_totals``) are read under those locks and raised by the series this batch creates.
- **Bucket bounds**: the batch was bucketed by N bounds; the store's count is read under a shared
  lock that registering a bound takes exclusively, so no batch bucketed without a bound commits
  after the bound was declared exact.
- **Exact integers**: hour totals are upserted only while they stay within 2^63 - 1 (a guarded
  ``ON CONFLICT DO UPDATE ... WHERE``); every minute is at most its hour, so minutes fit too.

When the store knows better than the batch's :class:`~vigil.telemetry.ingest.IngestContext` (a
metric registered as another kind, a new bound, a limit or a total reached), :meth:`IngestTxn.write`
rolls back to its savepoint and raises :class:`Recheck` carrying what the store knows; the caller
checks the same lines again with it (rejecting exactly the lines at fault) and writes again.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa

from vigil.errors import StoreError

if TYPE_CHECKING:
    from vigil.store import Store
    from vigil.telemetry.ingest import Admission, Rollup

MAX_STORED = 2**63 - 1
"""The largest count a rollup row holds: a signed 64-bit integer (SQLite INTEGER, PostgreSQL
BIGINT). :data:`vigil.telemetry.ingest.MAX_STORED` is the same number."""

BOUNDS_LOCK = 7307002
"""PostgreSQL advisory lock: shared by every transaction writing observations, exclusive while a
bucket bound is registered."""

KEY_TTL_MS = 24 * 3600 * 1000
"""How long an HTTP ``Idempotency-Key`` is remembered (at least): 24 hours."""

WRITE_HINT = "check --db / VIGIL_DB, that the server is up and the disk has room; then push again (a re-push skips what was stored)"


@dataclass(frozen=True)
class SeriesLimits:
    """Cardinality limits: series per metric and series in the store."""

    per_metric: int = 10_000
    total: int = 50_000


@dataclass
class Recheck(Exception):
    """The batch must be checked again against what the store knows (see the module doc)."""

    kinds: dict[str, str] = field(default_factory=dict)
    bounds: bool = False
    admission: Admission | None = None
    headroom: dict[tuple, int] | None = None

    def __str__(self) -> str:  # pragma: no cover - for debugging only
        return f"Recheck(kinds={self.kinds}, bounds={self.bounds}, admission={self.admission is not None}, headroom={self.headroom is not None})"


@dataclass
class KeyRow:
    """An idempotency key already in the store."""

    key: str
    source: str
    body_sha256: str
    created_ms: int
    response: str

    @property
    def result(self) -> dict:
        return json.loads(self.response) if self.response else {}


def write_failed(e: BaseException) -> StoreError:
    reason = str(getattr(e, "orig", None) or e).strip()
    return StoreError(f"writing telemetry failed; nothing of this batch was stored: {reason}", hint=WRITE_HINT)


class IngestTxn:
    """A write transaction: ``claim`` (optional), ``write`` once or more, then ``commit`` or
    ``rollback``. Database failures raise :class:`StoreError` (and roll everything back)."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self.sqlite = store.dialect == "sqlite"
        self.ph = "?" if self.sqlite else "%s"
        self.conn: sa.Connection | None = None
        self.learnt: dict[tuple[str, str], int] = {}
        self.kinds_learnt: dict[str, str] = {}
        self.key: str | None = None
        self._bounds_checked: int | None = None
        self._sp = 0

    # -- lifecycle --------------------------------------------------------------------------------

    def _begin(self) -> sa.Connection:
        if self.conn is None:
            conn = self.store.engine.connect()
            try:
                if self.sqlite:
                    # the write lock now: every check below reads what no one else can change
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    # held to the end of the transaction (taken outside any savepoint): no bucket
                    # bound is registered while this transaction may still write observations
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({BOUNDS_LOCK})")
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def _sql(self, sql: str, params: Any = None):
        conn = self._begin()
        if self.ph != "?":
            sql = sql.replace("?", self.ph)
        return conn.exec_driver_sql(sql, params) if params is not None else conn.exec_driver_sql(sql)

    def commit(self, response: str | None = None, body_sha256: str | None = None) -> None:
        try:
            if self.key is not None:
                sets, params = [], []
                if response is not None:
                    sets.append("response = ?")
                    params.append(response)
                if body_sha256 is not None:
                    sets.append("body_sha256 = ?")
                    params.append(body_sha256)
                if sets:
                    self._sql(f"UPDATE ingest_keys SET {', '.join(sets)} WHERE key = ?", (*params, self.key))
            if self.conn is not None:
                self.conn.commit()
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
            self.rollback()
            raise write_failed(e) from None
        finally:
            if self.conn is not None:
                self.conn.close()
                self.conn = None
        self.store._series_ids.update(self.learnt)

    def rollback(self) -> None:
        self.store._series_ids.clear()  # ids learnt in a rolled-back transaction may not exist
        if self.conn is not None:
            try:
                self.conn.rollback()
            except (sa.exc.DBAPIError, sa.exc.TimeoutError):
                pass
            finally:
                try:
                    self.conn.close()
                except (sa.exc.DBAPIError, sa.exc.TimeoutError):  # pragma: no cover - a dead connection
                    pass
                self.conn = None

    # -- idempotency key --------------------------------------------------------------------------

    def claim(self, key: str, *, source: str, now_ms: int, body_sha256: str = "") -> KeyRow | None:
        """Claim ``key`` for this transaction: None when claimed (it commits with the rollups),
        else the row a transaction that committed first wrote (this one must store nothing)."""
        try:
            if self.sqlite:
                got = self._read_key(key)
                if got is not None:
                    return got
                self._sql(
                    "INSERT INTO ingest_keys (key, source, body_sha256, created_ms, response) VALUES (?, ?, ?, ?, '')",
                    (key, source, body_sha256, now_ms),
                )
            else:
                # waits for a transaction holding the same key: a conflict after it commits, the
                # key ours if it rolls back
                row = self._sql(
                    "INSERT INTO ingest_keys (key, source, body_sha256, created_ms, response) VALUES (?, ?, ?, ?, '') "
                    "ON CONFLICT (key) DO NOTHING RETURNING key",
                    (key, source, body_sha256, now_ms),
                ).first()
                if row is None:
                    return self._read_key(key)
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
            self.rollback()
            raise write_failed(e) from None
        self.key = key
        return None

    def _read_key(self, key: str) -> KeyRow | None:
        row = self._sql(
            "SELECT key, source, body_sha256, created_ms, response FROM ingest_keys WHERE key = ?", (key,)
        ).first()
        return KeyRow(*row) if row is not None else None

    # -- rollups ----------------------------------------------------------------------------------

    def write(self, r: Rollup, limits: SeriesLimits) -> None:
        """Add one rollup to the transaction, or raise :class:`Recheck` having written nothing of it."""
        if r.empty:
            return
        self._sp += 1
        sp = f"vigil_w{self._sp}"
        learnt: dict[tuple[str, str], int] = {}
        kinds_learnt: dict[str, str] = {}
        try:
            self._sql(f"SAVEPOINT {sp}")
            try:
                if r.observations:
                    self._check_bounds(r)
                ids = self._series_ids(r, limits, learnt, kinds_learnt)
                if r.counters:
                    self._counters(r, ids)
                if r.observations:
                    self._observations(r, ids)
                if r.gauges:
                    self._gauges(r, ids)
            except Recheck:
                self._sql(f"ROLLBACK TO SAVEPOINT {sp}")
                self._sql(f"RELEASE SAVEPOINT {sp}")
                raise
            self._sql(f"RELEASE SAVEPOINT {sp}")
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:
            self.rollback()
            raise write_failed(e) from None
        self.learnt.update(learnt)
        self.kinds_learnt.update(kinds_learnt)

    def _check_bounds(self, r: Rollup) -> None:
        if self._bounds_checked is None:
            self._bounds_checked = int(self._sql("SELECT count(*) FROM bounds").scalar_one())
        if self._bounds_checked != r.bounds_count:
            raise Recheck(bounds=True)

    def _series_ids(self, r: Rollup, limits: SeriesLimits, learnt: dict, kinds_learnt: dict) -> dict[tuple[str, str], int]:
        cache = self.store._series_ids
        ids: dict[tuple[str, str], int] = {}
        missing: list[tuple[str, str]] = []
        for k in r.kinds:
            sid = self.learnt.get(k) or cache.get(k)
            if sid is None:
                missing.append(k)
            else:
                ids[k] = sid
        if not missing:
            return ids
        missing.sort()  # one lock order in every writer
        want = {m: r.kinds[(m, lj)] for m, lj in missing}
        metrics = sorted(want)
        # one kind per metric: registered with its first series, locked while series are added
        self._sql(
            "INSERT INTO metric_kinds (metric, kind, series) VALUES (?, ?, 0) ON CONFLICT (metric) DO NOTHING",
            [(m, want[m]) for m in metrics],
        )
        have: dict[str, tuple[str, int]] = {}
        for chunk in _chunks(metrics, 500):
            q = f"SELECT metric, kind, series FROM metric_kinds WHERE metric IN ({', '.join('?' * len(chunk))}) ORDER BY metric"
            if not self.sqlite:
                q += " FOR UPDATE"
            for m, kind, n in self._sql(q, tuple(chunk)):
                have[m] = (kind, int(n))
        conflicts = {m: have[m][0] for m in metrics if have[m][0] != want[m]}
        if conflicts:
            raise Recheck(kinds=conflicts)
        kinds_learnt.update({m: want[m] for m in metrics})
        # which of the missing series exist already
        by_metric: dict[str, list[str]] = {}
        for m, lj in missing:
            by_metric.setdefault(m, []).append(lj)
        found = self._lookup(by_metric)
        new = [k for k in missing if k not in found]
        if new:
            per_metric = Counter(m for m, _ in new)
            q = "SELECT value FROM telemetry_totals WHERE name = 'series'" + ("" if self.sqlite else " FOR UPDATE")
            total = self._sql(q).scalar()
            if total is None:  # a store whose count row went missing: count once, then keep it
                total = int(self._sql("SELECT count(*) FROM series").scalar_one())
                self._sql("INSERT INTO telemetry_totals (name, value) VALUES ('series', ?)", (total,))
            total = int(total)
            if total + len(new) > limits.total or any(have[m][1] + n > limits.per_metric for m, n in per_metric.items()):
                from vigil.telemetry.ingest import Admission  # the store below the capabilities: loaded late

                existing = {k for k in r.kinds if k not in missing} | set(found)
                raise Recheck(
                    admission=Admission(
                        existing=existing,
                        metric_series={m: have[m][1] for m in metrics},
                        total_series=total,
                        per_metric_limit=limits.per_metric,
                        total_limit=limits.total,
                    )
                )
            self._sql("INSERT INTO series (metric, labels, kind) VALUES (?, ?, ?)", [(m, lj, want[m]) for m, lj in new])
            new_by_metric: dict[str, list[str]] = {}
            for m, lj in new:
                new_by_metric.setdefault(m, []).append(lj)
            found.update(self._lookup(new_by_metric))
            self._sql("UPDATE metric_kinds SET series = series + ? WHERE metric = ?", [(n, m) for m, n in sorted(per_metric.items())])
            self._sql("UPDATE telemetry_totals SET value = value + ? WHERE name = 'series'", (len(new),))
        learnt.update(found)
        ids.update(found)
        return ids

    def _lookup(self, by_metric: dict[str, list[str]]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for m in sorted(by_metric):
            for chunk in _chunks(sorted(by_metric[m]), 500):
                q = f"SELECT id, labels FROM series WHERE metric = ? AND labels IN ({', '.join('?' * len(chunk))})"
                for sid, lj in self._sql(q, (m, *chunk)):
                    out[(m, lj)] = int(sid)
        return out

    # -- the rollup tables ----------------------------------------------------------------------------

    def _upsert_guarded(self, table: str, cols: Sequence[str], key: Sequence[str], val: str, rows: list[tuple]) -> bool:
        """Add ``val`` of each row to the stored row, unless the sum would pass 2^63 - 1: True when
        every row was written (each row inserts or updates exactly one row, or is held back)."""
        ph = ", ".join("?" * len(cols))
        sql = (
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({ph}) ON CONFLICT ({', '.join(key)}) "
            f"DO UPDATE SET {val} = {table}.{val} + excluded.{val} WHERE {table}.{val} <= {MAX_STORED} - excluded.{val}"
        )
        res = self._sql(sql, rows)
        return res.rowcount == len(rows)

    def _upsert_add(self, table: str, cols: Sequence[str], key: Sequence[str], val: str, rows: list[tuple]) -> None:
        ph = ", ".join("?" * len(cols))
        sql = (
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({ph}) ON CONFLICT ({', '.join(key)}) "
            f"DO UPDATE SET {val} = {table}.{val} + excluded.{val}"
        )
        self._sql(sql, rows)

    def _counters(self, r: Rollup, ids: dict) -> None:
        minutes: list[tuple[int, int, int]] = []
        hours: dict[tuple[int, int], int] = {}
        for (m, lj, mi), v in r.counters.items():
            sid = ids[(m, lj)]
            minutes.append((sid, mi, v))
            hk = (sid, mi // 60)
            hours[hk] = hours.get(hk, 0) + v
        hour_rows = sorted((s, h, v) for (s, h), v in hours.items())
        if any(v > MAX_STORED for *_, v in hour_rows) or not self._upsert_guarded(
            "counter_hour", ("series_id", "hour", "value"), ("series_id", "hour"), "value", hour_rows
        ):
            raise Recheck(headroom=self._headroom(r, ids))
        minutes.sort()
        self._upsert_add("counter_minute", ("series_id", "minute", "value"), ("series_id", "minute"), "value", minutes)

    def _observations(self, r: Rollup, ids: dict) -> None:
        minutes: list[tuple[int, int, int, int]] = []
        hours: dict[tuple[int, int, int], int] = {}
        for (m, lj, mi, le), n in r.observations.items():
            sid = ids[(m, lj)]
            minutes.append((sid, mi, le, n))
            hk = (sid, mi // 60, le)
            hours[hk] = hours.get(hk, 0) + n
        hour_rows = sorted((s, h, le, n) for (s, h, le), n in hours.items())
        if any(n > MAX_STORED for *_, n in hour_rows) or not self._upsert_guarded(
            "obs_hour", ("series_id", "hour", "le", "count"), ("series_id", "hour", "le"), "count", hour_rows
        ):
            raise Recheck(headroom=self._headroom(r, ids))
        minutes.sort()
        self._upsert_add("obs_minute", ("series_id", "minute", "le", "count"), ("series_id", "minute", "le"), "count", minutes)

    def _gauges(self, r: Rollup, ids: dict) -> None:
        rows = sorted((ids[(m, lj)], mi, g[0], g[1], g[2], g[3], g[4]) for (m, lj, mi), g in r.gauges.items())
        t = "gauge_minute"
        sql = (
            "INSERT INTO gauge_minute (series_id, minute, min, max, last, last_ms, samples) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (series_id, minute) DO UPDATE SET "
            f"min = CASE WHEN excluded.min < {t}.min THEN excluded.min ELSE {t}.min END, "
            f"max = CASE WHEN excluded.max > {t}.max THEN excluded.max ELSE {t}.max END, "
            f"last = CASE WHEN excluded.last_ms >= {t}.last_ms THEN excluded.last ELSE {t}.last END, "
            f"last_ms = CASE WHEN excluded.last_ms >= {t}.last_ms THEN excluded.last_ms ELSE {t}.last_ms END, "
            f"samples = {t}.samples + excluded.samples"
        )
        self._sql(sql, rows)

    def _headroom(self, r: Rollup, ids: dict) -> dict[tuple, int]:
        """What each series-hour of the batch may still take, for both counters and observations
        (a recheck rechecks every line): 2^63 - 1 minus what the store holds."""
        out: dict[tuple, int] = {}
        names = {sid: k for k, sid in ids.items()}
        for table, val, with_le in (("counter_hour", "value", False), ("obs_hour", "count", True)):
            want: dict[int, set[int]] = {}
            src = r.counters if not with_le else r.observations
            for k in src:
                want.setdefault(ids[(k[0], k[1])], set()).add(k[2] // 60)
            for sid, hrs in sorted(want.items()):
                cols = "hour, le" if with_le else "hour"
                q = f"SELECT {cols}, {val} FROM {table} WHERE series_id = ? AND hour >= ? AND hour <= ?"
                for row in self._sql(q, (sid, min(hrs), max(hrs))):
                    if row[0] in hrs:
                        m, lj = names[sid]
                        hk = (m, lj, *row[:-1])
                        out[hk] = MAX_STORED - int(row[-1])
        return out


def _chunks(xs: list, n: int):
    for i in range(0, len(xs), n):
        yield xs[i : i + n]
