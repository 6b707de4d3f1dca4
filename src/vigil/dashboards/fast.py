"""Step sums in one query where the source is the embedded store (an adapter).

Through the Source protocol a chart of ``n`` steps asks sums over ``[b, end)`` for every step
boundary ``b``; the embedded store answers whole hours from its hourly rollup in one query, but a
boundary inside an hour costs a query of its own, so a 1-day chart at 15-minute steps is ~70
queries. Here the same numbers come from one ``GROUP BY minute / step`` over the store's minute
rollups of the series the source itself matched (``source.ids``), for ranges up to a few days.
Anything else returns None and the caller uses the protocol. Tests check both paths agree.
"""

from __future__ import annotations

from typing import Any

from vigil.telemetry.sources.protocol import CounterQuery

MAX_MINUTES = 5 * 1440


def _store(source: Any) -> Any:
    store = getattr(source, "store", None)
    if store is None or not hasattr(store, "engine") or not callable(getattr(source, "ids", None)):
        return None
    return store


def counter_bins(source: Any, q: CounterQuery, lo: int, hi: int, step: int) -> dict[int, int] | None:
    """``{k: sum}`` of the matching counters' increments over minutes ``[lo, hi)``, ``k = minute //
    step``; None when the source is not the embedded store or the range is long."""
    store = _store(source)
    if store is None or hi - lo > MAX_MINUTES or hi <= lo:
        return None
    ids = source.ids(q.include, "counter")
    if q.exclude is not None:
        ids = ids - source.ids(q.exclude, "counter")
    if not ids:
        return {}
    import sqlalchemy as sa

    from vigil.store import db_errors, schema

    t = schema.counter_minute
    k = (t.c.minute // step).label("k")
    out: dict[int, int] = {}
    for chunk in _chunks(sorted(ids), 900):
        q_ = sa.select(k, sa.func.sum(t.c.value)).where(t.c.series_id.in_(chunk), t.c.minute >= lo, t.c.minute < hi).group_by(k)
        with db_errors("reading telemetry failed"), store.engine.connect() as conn:
            for kk, n in conn.execute(q_):
                out[int(kk)] = out.get(int(kk), 0) + int(n)
    return out


def observation_bins(source: Any, metric: Any, lo: int, hi: int, step: int) -> dict[int, dict[int, int]] | None:
    """``{k: {le: count}}`` of the matching observations over ``[lo, hi)``; None as above."""
    store = _store(source)
    if store is None or hi - lo > MAX_MINUTES or hi <= lo:
        return None
    ids = source.ids(metric, "observation")
    if not ids:
        return {}
    import sqlalchemy as sa

    from vigil.store import db_errors, schema

    t = schema.obs_minute
    k = (t.c.minute // step).label("k")
    out: dict[int, dict[int, int]] = {}
    for chunk in _chunks(sorted(ids), 900):
        q_ = (
            sa.select(k, t.c.le, sa.func.sum(t.c.count))
            .where(t.c.series_id.in_(chunk), t.c.minute >= lo, t.c.minute < hi)
            .group_by(k, t.c.le)
        )
        with db_errors("reading telemetry failed"), store.engine.connect() as conn:
            for kk, le, n in conn.execute(q_):
                d = out.setdefault(int(kk), {})
                d[int(le)] = d.get(int(le), 0) + int(n)
    return out


def _chunks(xs: list[int], n: int):
    for i in range(0, len(xs), n):
        yield xs[i : i + n]
