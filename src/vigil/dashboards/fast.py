"""Window sums for many starts in a few queries, where the source is the embedded store (an adapter).

Charts ask sums over ``[x, end)`` for many ``x`` (every step boundary, and for burn rates each
point minus each window). Through the Source protocol the embedded store answers whole hours from
its hourly rollup in one query, but every ``x`` inside an hour costs a query of its own: a 1-day
chart at 15-minute steps is ~70 queries. Here the same sums come from one read of the hourly rollup
over the whole span and one read of the minute rollup limited to the hours that hold an ``x`` (or
the ragged end), of the series the source itself matched (``source.ids``). Any other source
returns None and the caller reads through the protocol; tests check both give the same numbers.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from vigil.telemetry.sources.protocol import CounterQuery


def _store(source: Any) -> Any:
    store = getattr(source, "store", None)
    if store is None or not hasattr(store, "engine") or not callable(getattr(source, "ids", None)):
        return None
    return store


def _blocks(keys: list[int], end: int) -> dict[int, int]:
    """Per hour before ``end``'s that holds an ``x`` inside it: the widest block (a divisor of 60)
    each of its ``x`` is a multiple of. The minute rollup of that hour is read in sums per block,
    since each range ``[x, next hour)`` is whole blocks (a 1-day chart's 15-minute steps: 15 times
    fewer rows); an hour holding an odd ``x`` (a burn-rate window back from a ragged end) is read
    per minute without making the others so. The ragged end ``[end's hour, end)`` is read per
    minute."""
    h_end = end // 60
    out: dict[int, int] = {}
    for x in keys:
        if x % 60 and x // 60 < h_end:
            out[x // 60] = math.gcd(out.get(x // 60, 60), x % 60)
    return out


def _hour_block(keys: list[int], end: int) -> int:
    """The widest run of hours, counted back from ``end``'s hour, that every ``[x's next hour,
    end's hour)`` is whole runs of: the hourly rollup is read in sums per run (a 30-day chart's
    6-hour steps: 6 times fewer rows)."""
    h_end = end // 60
    g = 0
    for x in keys:
        ch = -(-x // 60)
        if ch < h_end:
            g = math.gcd(g, h_end - ch)
    return max(g, 1)


def _hour_key(th: Any, keys: list[int], end: int) -> Any:
    """The hourly rollup's hour, or the first hour of its run (:func:`_hour_block`)."""
    h_end = end // 60
    g = _hour_block(keys, end)
    if g == 1:
        return th.c.hour
    return h_end - ((h_end - 1 - th.c.hour) // g + 1) * g


def _minute_reads(keys: list[int], end: int) -> list[tuple[int, int, int]]:
    """``(lo, hi, block)`` ranges of the minute rollup to read: runs of consecutive hours holding an
    ``x`` with the same block (:func:`_blocks`), and the ragged end (per minute)."""
    h_end = end // 60
    out: list[tuple[int, int, int]] = []
    for h, g in sorted(_blocks(keys, end).items()):
        if out and out[-1][1] == h * 60 and out[-1][2] == g:
            out[-1] = (out[-1][0], (h + 1) * 60, g)
        else:
            out.append((h * 60, (h + 1) * 60, g))
    if end % 60:
        out.append((h_end * 60, end, 1))
    return out


def _tails(keys: list[int], end: int, hour_rows: dict[int, Any], minute_rows: dict[int, Any], zero: Callable[[], Any],
           add: Callable[[Any, Any], Any]) -> dict[int, Any]:
    """Sums over ``[x, end)`` for each ``x`` from per-hour and per-minute sums."""
    h_end = end // 60
    # suffix sums of whole hours: hour h -> sum of hours in [h, h_end)
    hour_suffix: dict[int, Any] = {}
    acc = zero()
    lo_h = min((-(-x // 60) for x in keys), default=h_end)
    for h in range(h_end - 1, lo_h - 1, -1):
        if h in hour_rows:
            acc = add(acc, hour_rows[h])
        hour_suffix[h] = acc

    def minutes(a: int, b: int) -> Any:
        s = zero()
        for m in range(a, b):
            if m in minute_rows:
                s = add(s, minute_rows[m])
        return s

    tail = minutes(h_end * 60, end) if end % 60 else zero()
    out: dict[int, Any] = {}
    for x in keys:
        if x >= h_end * 60:
            out[x] = minutes(x, end)
            continue
        ch = -(-x // 60)
        s = minutes(x, ch * 60)
        if ch < h_end:
            s = add(s, hour_suffix[ch])
        out[x] = add(s, tail)
    return out


def _read(store: Any, kind: str, ids: set[int], keys: list[int], end: int, le_ns: int | None = None) -> tuple[dict[int, Any], dict[int, Any]]:
    """Per-hour and per-minute sums: ints (counters), ``{le: n}`` (observations), or ``(good,
    total)`` with ``le_ns`` (observations at or under it, all observations)."""
    import sqlalchemy as sa

    from vigil.store import db_errors, schema

    if kind == "counter":
        tm, th, val, extra = schema.counter_minute, schema.counter_hour, "value", None
    else:
        tm, th, val, extra = schema.obs_minute, schema.obs_hour, "count", "le"
    if le_ns is not None:
        return _read_pairs(store, tm, th, ids, keys, end, le_ns)
    h_end = end // 60
    lo_h = min(-(-x // 60) for x in keys)
    hours: dict[int, Any] = {}
    mins: dict[int, Any] = {}

    def put(d: dict[int, Any], k: int, le: Any, n: Any) -> None:
        if extra is None:
            d[k] = d.get(k, 0) + int(n)
        else:
            e = d.setdefault(k, {})
            e[int(le)] = e.get(int(le), 0) + int(n)

    idl = sorted(ids)
    with db_errors("reading telemetry failed"), store.engine.connect() as conn:
        for i in range(0, len(idl), 900):
            chunk = idl[i : i + 900]
            if lo_h < h_end:
                cols = [_hour_key(th, keys, end)] + ([th.c[extra]] if extra else [])
                q = sa.select(*cols, sa.func.sum(th.c[val])).where(th.c.series_id.in_(chunk), th.c.hour >= lo_h, th.c.hour < h_end).group_by(*cols)
                res = conn.execute(q)
                hrows = res.cursor.fetchall()  # the driver's tuples
                res.close()
                for row in hrows:
                    put(hours, int(row[0]), row[1] if extra else None, row[-1])
            for lo, hi, g in _minute_reads(keys, end):
                at = tm.c.minute if g == 1 else (tm.c.minute // g) * g  # a block's sum at its first minute
                mcols: list[Any] = [at] + ([tm.c[extra]] if extra else [])
                q = (
                    sa.select(*mcols, sa.func.sum(tm.c[val]))
                    .where(tm.c.series_id.in_(chunk), tm.c.minute >= lo, tm.c.minute < hi)
                    .group_by(*mcols)
                )
                res = conn.execute(q)
                rows = res.cursor.fetchall()  # the driver's tuples
                res.close()
                for row in rows:
                    put(mins, int(row[0]), row[1] if extra else None, row[-1])
    return hours, mins


def _read_pairs(store: Any, tm: Any, th: Any, ids: set[int], keys: list[int], end: int, le_ns: int) -> tuple[dict[int, Any], dict[int, Any]]:
    import sqlalchemy as sa

    from vigil.store import db_errors

    h_end = end // 60
    lo_h = min(-(-x // 60) for x in keys)
    hours: dict[int, Any] = {}
    mins: dict[int, Any] = {}
    idl = sorted(ids)

    def add(d: dict[int, Any], k: int, g: Any, n: Any) -> None:
        og, on = d.get(k, (0, 0))
        d[k] = (og + int(g or 0), on + int(n or 0))

    with db_errors("reading telemetry failed"), store.engine.connect() as conn:
        for i in range(0, len(idl), 900):
            chunk = idl[i : i + 900]
            if lo_h < h_end:
                good = sa.func.sum(sa.case((th.c.le <= le_ns, th.c["count"]), else_=0))
                hk = _hour_key(th, keys, end)
                q = sa.select(hk, good, sa.func.sum(th.c["count"])).where(
                    th.c.series_id.in_(chunk), th.c.hour >= lo_h, th.c.hour < h_end).group_by(hk)
                for h, g, n in conn.execute(q):
                    add(hours, int(h), g, n)
            for lo, hi, w in _minute_reads(keys, end):
                at = tm.c.minute if w == 1 else (tm.c.minute // w) * w
                good = sa.func.sum(sa.case((tm.c.le <= le_ns, tm.c["count"]), else_=0))
                q = sa.select(at, good, sa.func.sum(tm.c["count"])).where(
                    tm.c.series_id.in_(chunk), tm.c.minute >= lo, tm.c.minute < hi).group_by(at)
                for m, g, n in conn.execute(q):
                    add(mins, int(m), g, n)
    return hours, mins


def latency_tails(source: Any, metric: Any, le_ns: int, keys: list[int], end: int) -> dict[int, tuple[int, int]] | None:
    """``{x: (observations <= le_ns, all observations) over [x, end)}``; None when the source is
    not the embedded store."""
    store = _store(source)
    if store is None:
        return None
    keys = sorted({x for x in keys if x < end})
    if not keys:
        return {}
    ids = source.ids(metric, "observation")
    if not ids:
        return dict.fromkeys(keys, (0, 0))
    hours, mins = _read(store, "observation", set(ids), keys, end, le_ns)
    return _tails(keys, end, hours, mins, lambda: (0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1]))


def counter_tails(source: Any, q: CounterQuery, keys: list[int], end: int) -> dict[int, int] | None:
    """``{x: sum of the matching counters over [x, end)}``; None when the source is not the
    embedded store."""
    store = _store(source)
    if store is None:
        return None
    keys = sorted({x for x in keys if x < end})
    if not keys:
        return {}
    ids = source.ids(q.include, "counter")
    if q.exclude is not None:
        ids = ids - source.ids(q.exclude, "counter")
    if not ids:
        return dict.fromkeys(keys, 0)
    hours, mins = _read(store, "counter", set(ids), keys, end)
    return _tails(keys, end, hours, mins, lambda: 0, lambda a, b: a + b)


def observation_tails(source: Any, metric: Any, keys: list[int], end: int) -> dict[int, dict[int, int]] | None:
    """``{x: {le: observations over [x, end)}}``; None when the source is not the embedded store."""
    store = _store(source)
    if store is None:
        return None
    keys = sorted({x for x in keys if x < end})
    if not keys:
        return {}
    ids = source.ids(metric, "observation")
    if not ids:
        return {x: {} for x in keys}
    hours, mins = _read(store, "observation", set(ids), keys, end)

    def add(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
        out = dict(a)
        for le, n in b.items():
            out[le] = out.get(le, 0) + n
        return out

    return _tails(keys, end, hours, mins, dict, add)
