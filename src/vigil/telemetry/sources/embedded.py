"""The embedded source: reads the store's per-minute and per-hour rollups (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import sqlalchemy as sa

from vigil.selector import Selector
from vigil.store import SeriesInfo, Store, db_errors, schema
from vigil.telemetry.ingest import INF_NS
from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery, ReadPlan


class EmbeddedSource:
    """Reads the embedded store. Caches per-series sums of one plan; build one per evaluation."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._series: list[SeriesInfo] = store.series()
        self._by_metric: dict[str, list[SeriesInfo]] = {}
        for s in self._series:
            self._by_metric.setdefault(s.metric, []).append(s)
        self._match_cache: dict[tuple[Selector, str], frozenset[int]] = {}
        # (end, series id, start) -> the sum over [start, end)
        self._counter_cache: dict[tuple[int, int, int], int] = {}
        # (end, series id, start) -> [(le, count), ...] over [start, end), non-cumulative buckets
        self._obs_cache: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
        # (end, series id, start, le) -> (observations <= le, all) over [start, end)
        self._pair_cache: dict[tuple[int, int, int, int], tuple[int, int]] = {}
        # series ids -> [(start, end, per-minute maxima)] fetched so far
        self._gauge_cache: dict[frozenset[int], list[tuple[int, int, np.ndarray]]] = {}
        self._bounds: dict[int, int] | None = None
        # series id -> its first minute with data (None: no rows)
        self._first: dict[int, int | None] = {}

    # -- series matching ---------------------------------------------------------------------------

    def ids(self, selector: Selector, kind: str) -> frozenset[int]:
        key = (selector, kind)
        got = self._match_cache.get(key)
        if got is None:
            got = frozenset(
                s.id for s in self._by_metric.get(selector.metric, ()) if s.kind == kind and selector.matches(s.labels)
            )
            self._match_cache[key] = got
        return got

    def matched(self, selector: Selector, kind: str) -> tuple[int, int]:
        same = other = 0
        for s in self._by_metric.get(selector.metric, ()):
            if selector.matches(s.labels):
                if s.kind == kind:
                    same += 1
                else:
                    other += 1
        return same, other

    def _counter_ids(self, q: CounterQuery) -> frozenset[int]:
        ids = self.ids(q.include, "counter")
        if q.exclude is not None:
            ids = ids - self.ids(q.exclude, "counter")
        return ids

    # -- prefetch --------------------------------------------------------------------------------

    def prefetch(self, plan: ReadPlan) -> None:
        starts = sorted(set(plan.starts))
        cids: set[int] = set()
        for q in plan.counters:
            cids |= self._counter_ids(q)
        self._load_counters(cids, starts, plan.end)
        oids: set[int] = set()
        for oq in plan.observations:
            oids |= self.ids(oq.metric, "observation")
        self._load_observations(oids, starts, plan.end)
        spans: dict[frozenset[int], tuple[int, int]] = {}
        for g in plan.gauges:
            ids = self.ids(g.metric, "gauge")
            lo, hi = spans.get(ids, (g.start, g.end))
            spans[ids] = (min(lo, g.start), max(hi, g.end))
        for ids, (lo, hi) in spans.items():
            self._load_gauges(ids, lo, hi)
        fids: set[int] = set()
        for sel, kind in plan.firsts:
            fids |= self.ids(sel, kind)
        self._load_firsts(fids)

    # -- coverage ----------------------------------------------------------------------------------

    def _load_firsts(self, ids) -> None:
        """One query (per 900 series): each series' first minute, by an index seek per series."""
        todo = sorted(i for i in ids if i not in self._first)
        if not todo:
            return
        s = schema.series

        def first(t: sa.Table):
            return sa.select(sa.func.min(t.c.minute)).where(t.c.series_id == s.c.id).scalar_subquery()

        col = sa.case(
            (s.c.kind == "counter", first(schema.counter_minute)),
            (s.c.kind == "observation", first(schema.obs_minute)),
            else_=first(schema.gauge_minute),
        )
        for chunk in _chunks(todo, 900):
            with db_errors("reading telemetry failed"), self.store.engine.connect() as conn:
                rows = conn.execute(sa.select(s.c.id, col).where(s.c.id.in_(chunk))).all()
            got = {int(r[0]): None if r[1] is None else int(r[1]) for r in rows}
            for i in chunk:
                self._first[i] = got.get(i)

    def first_minute(self, selector: Selector, kind: str) -> int | None:
        ids = self.ids(selector, kind)
        self._load_firsts(ids)
        firsts = [m for m in (self._first[i] for i in ids) if m is not None]
        return min(firsts) if firsts else None

    def _missing(self, cache: dict, ids, starts, end: int) -> tuple[list[int], list[int]]:
        """Series and starts (sorted) of which some sum over ``[start, end)`` is not cached yet."""
        todo_ids: set[int] = set()
        todo_starts: set[int] = set()
        for i in ids:
            for st in starts:
                if (end, i, st) not in cache:
                    todo_ids.add(i)
                    todo_starts.add(st)
        return sorted(todo_ids), sorted(todo_starts)

    def _window_sums(self, kind: str, ids: list[int], starts: list[int], end: int) -> dict[tuple, int]:
        """Sums over ``[start, end)`` for each start, per series (and per bucket for observations).

        Whole hours come from the hourly rollup, the ragged ends from the minutes, so a 30-day
        window reads ~720 rows per series instead of 43,200. Keys: (series id, [le,] start).
        """
        if kind == "counter":
            tm, th, val, extra = schema.counter_minute, schema.counter_hour, "value", []
        else:
            tm, th, val, extra = schema.obs_minute, schema.obs_hour, "count", ["le"]
        h1 = end // 60  # hours wholly before ``end``
        out: dict[tuple, int] = {}
        hour_starts: list[tuple[int, int]] = []  # (start, first whole hour)
        minute_ranges: dict[tuple[int, int], list[int]] = {}  # (a, b) -> starts that need it
        for st in starts:
            h0 = -(-st // 60)
            if h0 < h1:
                hour_starts.append((st, h0))
                if st < h0 * 60:
                    minute_ranges.setdefault((st, h0 * 60), []).append(st)
                if h1 * 60 < end:
                    minute_ranges.setdefault((h1 * 60, end), []).append(st)
            elif st < end:
                minute_ranges.setdefault((st, end), []).append(st)

        def add(key: tuple, st: int, x) -> None:
            if x:
                k = key + (st,)
                out[k] = out.get(k, 0) + int(x)

        def run(q: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
            with db_errors("reading telemetry failed"), self.store.engine.connect() as conn:
                return conn.execute(q).all()

        ng = 1 + len(extra)
        for chunk in _chunks(ids, 900):
            if hour_starts:
                cols = [sa.func.sum(sa.case((th.c.hour >= h0, th.c[val]), else_=0)) for _, h0 in hour_starts]
                group = [th.c.series_id] + [th.c[e] for e in extra]
                q = (
                    sa.select(*group, *cols)
                    .where(th.c.series_id.in_(chunk), th.c.hour >= min(h0 for _, h0 in hour_starts), th.c.hour < h1)
                    .group_by(*group)
                )
                for row in run(q):
                    for (st, _), x in zip(hour_starts, row[ng:]):
                        add(tuple(row[:ng]), st, x)
            for (lo, hi), sts in minute_ranges.items():
                group = [tm.c.series_id] + [tm.c[e] for e in extra]
                q = (
                    sa.select(*group, sa.func.sum(tm.c[val]))
                    .where(tm.c.series_id.in_(chunk), tm.c.minute >= lo, tm.c.minute < hi)
                    .group_by(*group)
                )
                for row in run(q):
                    for st in sts:
                        add(tuple(row[:ng]), st, row[ng])
        return out

    def _load_counters(self, ids, starts: Sequence[int], end: int) -> None:
        """Cache, per series and start, the sum of increments over ``[start, end)``."""
        cache = self._counter_cache
        todo, todo_starts = self._missing(cache, ids, starts, end)
        if not todo:
            return
        got = self._window_sums("counter", todo, todo_starts, end)
        for i in todo:
            for st in todo_starts:
                cache[(end, i, st)] = got.get((i, st), 0)

    def _load_observations(self, ids, starts: Sequence[int], end: int) -> None:
        """Cache, per series and start, the bucket counts over ``[start, end)`` as sorted
        (le, count) pairs: one pass answers every threshold."""
        cache = self._obs_cache
        todo, todo_starts = self._missing(cache, ids, starts, end)
        if not todo:
            return
        got: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for (i, le, st), n in self._window_sums("observation", todo, todo_starts, end).items():
            got.setdefault((i, st), []).append((le, n))
        for i in todo:
            for st in todo_starts:
                cache[(end, i, st)] = sorted(got.get((i, st), ()))

    # -- reads -------------------------------------------------------------------------------------

    def counter_sums(self, q: CounterQuery, starts: Sequence[int], end: int) -> list[int]:
        ids = self._counter_ids(q)
        self._load_counters(ids, starts, end)
        cache = self._counter_cache
        return [sum(cache[(end, i, st)] for i in ids) for st in starts]

    def prefetch_thresholds(self, queries: Sequence[ObservationQuery], starts: Sequence[int], end: int) -> None:
        """Cache (observations at or under each query's threshold, all observations) per series and
        start over ``[start, end)``: what :meth:`observation_counts` answers, read per series (in the
        rollups' key order, no sort by bucket) and per span between consecutive starts (no CASE
        per start). An SLO evaluation asks this instead of every bucket."""
        by_le: dict[int, set[int]] = {}
        for q in queries:
            by_le.setdefault(q.le_ns, set()).update(self.ids(q.metric, "observation"))
        les = sorted(by_le)
        ids = sorted(set().union(*by_le.values())) if by_le else []
        sts = sorted(set(starts))
        todo = [i for i in ids if any((end, i, st, le) not in self._pair_cache for st in sts for le in les if i in by_le[le])]
        if not todo or not sts:
            return
        th, tm = schema.obs_hour, schema.obs_minute
        h1 = end // 60
        h0s = sorted({-(-st // 60) for st in sts if -(-st // 60) < h1})
        spans = [("h", a, b) for a, b in zip(h0s, h0s[1:] + [h1])]  # hour spans between starts
        minute_spans: set[tuple[int, int]] = set()
        for st in sts:
            h0 = -(-st // 60)
            if h0 < h1:
                if st < h0 * 60:
                    minute_spans.add((st, h0 * 60))
                if h1 * 60 < end:
                    minute_spans.add((h1 * 60, end))
            elif st < end:
                minute_spans.add((st, end))
        spans += [("m", a, b) for a, b in sorted(minute_spans)]
        got: dict[tuple[str, int, int], dict[int, list[int]]] = {}
        with db_errors("reading telemetry failed"), self.store.engine.connect() as conn:
            for chunk in _chunks(todo, 900):
                for kind, a, b in spans:
                    t, col = (th, th.c.hour) if kind == "h" else (tm, tm.c.minute)
                    cols = [sa.func.sum(t.c["count"])] + [sa.func.sum(sa.case((t.c.le <= le, t.c["count"]), else_=0)) for le in les]
                    sel = sa.select(t.c.series_id, *cols).where(t.c.series_id.in_(chunk), col >= a, col < b).group_by(t.c.series_id)
                    res = conn.execute(sel)
                    for row in res.cursor.fetchall():
                        got.setdefault((kind, a, b), {})[int(row[0])] = [int(x or 0) for x in row[1:]]
                    res.close()
        zero = [0] * (1 + len(les))

        def part(kind: str, a: int, b: int, i: int) -> list[int]:
            return got.get((kind, a, b), {}).get(i, zero)

        for i in todo:
            for st in sts:
                acc = [0] * (1 + len(les))
                h0 = -(-st // 60)
                pieces: list[tuple[str, int, int]] = []
                if h0 < h1:
                    pieces += [sp for sp in spans if sp[0] == "h" and sp[1] >= h0]
                    if st < h0 * 60:
                        pieces.append(("m", st, h0 * 60))
                    if h1 * 60 < end:
                        pieces.append(("m", h1 * 60, end))
                elif st < end:
                    pieces.append(("m", st, end))
                for sp in pieces:
                    acc = [x + y for x, y in zip(acc, part(*sp, i))]
                for k, le in enumerate(les):
                    self._pair_cache[(end, i, st, le)] = (acc[1 + k], acc[0])

    def observation_counts(self, q: ObservationQuery, starts: Sequence[int], end: int) -> list[tuple[int, int]]:
        ids = self.ids(q.metric, "observation")
        pc = self._pair_cache
        if all((end, i, st, q.le_ns) in pc for i in ids for st in starts):  # prefetched thresholds
            return [
                (sum(pc[(end, i, st, q.le_ns)][0] for i in ids), sum(pc[(end, i, st, q.le_ns)][1] for i in ids)) for st in starts
            ]
        self._load_observations(ids, starts, end)
        cache = self._obs_cache
        out = []
        for st in starts:
            good = total = 0
            for i in ids:
                for le, n in cache[(end, i, st)]:
                    total += n
                    if le <= q.le_ns:
                        good += n
            out.append((good, total))
        return out

    def _load_gauges(self, ids: frozenset[int], start: int, end: int) -> np.ndarray:
        """Per-minute maxima over ``[start, end)`` of the series ``ids``; NaN where none."""
        arr = np.full(max(0, end - start), np.nan)
        if ids and end > start:
            t = schema.gauge_minute
            for chunk in _chunks(sorted(ids), 900):
                q = (
                    sa.select(t.c.minute, sa.func.max(t.c.max))
                    .where(t.c.series_id.in_(chunk), t.c.minute >= start, t.c.minute < end)
                    .group_by(t.c.minute)
                )
                with db_errors("reading telemetry failed"), self.store.engine.connect() as conn:
                    res = conn.execute(q)
                    rows = res.cursor.fetchall()  # the driver's tuples: no Row objects for ~43,200 minutes
                    res.close()
                if rows:
                    mv = np.array(rows, dtype=np.float64)  # minutes are exact in a double
                    m = mv[:, 0].astype(np.int64) - start
                    arr[m] = np.fmax(arr[m], mv[:, 1])
        self._gauge_cache.setdefault(ids, []).append((start, end, arr))
        return arr

    def gauge_max(self, metric: Selector, start: int, end: int) -> np.ndarray:
        ids = self.ids(metric, "gauge")
        for lo, hi, arr in self._gauge_cache.get(ids, ()):
            if lo <= start and end <= hi:  # a prefetched wider range holds it
                return arr[start - lo : end - lo]
        return self._load_gauges(ids, start, end)

    def gauge_summary(self, metric: Selector, start: int, end: int, block: int, size: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per block of ``block`` minutes of ``[start, end)`` from ``start`` (the last may be
        shorter): the highest sample of any matching gauge (NaN: none) and how many of its
        ``size``-minute slices (from ``start``; ``block`` a multiple of ``size``) hold a sample.
        One grouped query, or the minutes already fetched; None when the series are too many for
        one query (read :meth:`gauge_max`)."""
        ids = self.ids(metric, "gauge")
        nb = max(0, -(-(end - start) // block))
        bmax = np.full(nb, np.nan)
        bslices = np.zeros(nb, dtype=np.int64)
        if not ids or nb == 0:
            return bmax, bslices
        for lo, hi, arr in self._gauge_cache.get(ids, ()):
            if lo <= start and end <= hi:  # fetched already: summarise those minutes
                a = np.full(nb * block, np.nan)
                a[: end - start] = arr[start - lo : end - lo]
                present = ~np.isnan(a)
                top = np.where(present, a, -np.inf).reshape(nb, block).max(axis=1)
                bmax = np.where(present.reshape(nb, block).any(axis=1), top, np.nan)
                bslices = present.reshape(nb, block // size, size).any(axis=2).sum(axis=1)
                return bmax, bslices
        if len(ids) > 900:
            return None
        t = schema.gauge_minute
        blk = (t.c.minute - start) // block
        if size == 1:  # a slice per minute: one series has one row per minute
            sampled = sa.func.count() if len(ids) == 1 else sa.func.count(sa.distinct(t.c.minute))
        else:
            sampled = sa.func.count(sa.distinct((t.c.minute - start) // size))
        q = (
            sa.select(blk, sa.func.max(t.c.max), sampled)
            .where(t.c.series_id.in_(sorted(ids)), t.c.minute >= start, t.c.minute < end)
            .group_by(blk)
        )
        with db_errors("reading telemetry failed"), self.store.engine.connect() as conn:
            res = conn.execute(q)
            rows = res.cursor.fetchall()
            res.close()
        for b, mx, n in rows:
            bmax[int(b)] = float(mx)
            bslices[int(b)] = int(n)
        return bmax, bslices

    def bound_since(self, le_ns: int) -> int | None:
        return self.bucket_bounds().get(le_ns)

    def bucket_bounds(self) -> dict[int, int]:
        if self._bounds is None:
            self._bounds = dict(self.store.bounds())
        return {le: since for le, since in self._bounds.items() if le < INF_NS}

    def observation_buckets(self, metric: Selector, start: int, end: int) -> list[tuple[int, int]]:
        ids = self.ids(metric, "observation")
        self._load_observations(ids, [start], end)
        acc: dict[int, int] = {}
        for i in ids:
            for le, n in self._obs_cache[(end, i, start)]:
                acc[le] = acc.get(le, 0) + n
        return sorted((le, n) for le, n in acc.items() if n)


def _chunks(xs: list[int], n: int):
    for i in range(0, len(xs), n):
        yield xs[i : i + n]
