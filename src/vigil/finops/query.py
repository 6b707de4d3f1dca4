"""Reads of the cost rows (adapters): daily sums per group, exact, for the pure cores to judge."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any, Sequence

from vigil.finops.rows import from_nano

GROUPS = ("env", "service", "service_name", "region", "usage_type", "charge_category")


def daily(
    store: Any,
    first_day: str,
    last_day: str,
    *,
    by: Sequence[str] = ("env", "service"),
    amount: str = "billed",
    where: dict[str, str | None] | None = None,
) -> dict[tuple, dict[str, Decimal]]:
    """``{group key: {day: amount}}`` for days in ``[first_day, last_day]`` (inclusive), summed in
    SQL as integers. ``amount``: ``billed``, ``effective``, ``list`` or ``quantity``."""
    import sqlalchemy as sa

    from vigil.finops.tables import cost_daily as t
    from vigil.store import db_errors

    for b in by:
        if b not in GROUPS:
            raise ValueError(f"cannot group by {b}")
    col = {"billed": t.c.billed_nano, "effective": t.c.effective_nano, "list": t.c.list_nano, "quantity": t.c.quantity_micro}[amount]
    cols = [t.c[b] for b in by]
    q = sa.select(*cols, t.c.day, sa.func.sum(col)).where(t.c.day >= first_day, t.c.day <= last_day)
    for k, v in (where or {}).items():
        if v is not None:
            q = q.where(t.c[k] == v)
    q = q.group_by(*cols, t.c.day)
    out: dict[tuple, dict[str, Decimal]] = defaultdict(dict)
    scale = -6 if amount == "quantity" else -9
    with db_errors("reading the cost rows failed"), store.engine.connect() as conn:
        for row in conn.execute(q):
            key = tuple(row[: len(by)])
            out[key][row[len(by)]] = Decimal(int(row[-1] or 0)).scaleb(scale)
    return dict(out)


def rows_on(store: Any, days: Sequence[str], *, where: dict[str, str | None]) -> list[dict]:
    """The stored rows of some days, for one group (contributors of an anomaly)."""
    import sqlalchemy as sa

    from vigil.finops.tables import cost_daily as t
    from vigil.store import db_errors

    q = sa.select(t.c.day, t.c.service_name, t.c.region, t.c.usage_type, sa.func.sum(t.c.effective_nano).label("e")).where(t.c.day.in_(list(days)))
    for k, v in where.items():
        if v is not None:
            q = q.where(t.c[k] == v)
    q = q.group_by(t.c.day, t.c.service_name, t.c.region, t.c.usage_type)
    with db_errors("reading the cost rows failed"), store.engine.connect() as conn:
        return [
            {"day": r.day, "service_name": r.service_name, "region": r.region, "usage_type": r.usage_type, "effective": from_nano(int(r.e or 0))}
            for r in conn.execute(q)
        ]


def span(store: Any) -> tuple[str | None, str | None]:
    """The first and last day any cost row has."""
    import sqlalchemy as sa

    from vigil.finops.tables import cost_daily as t
    from vigil.store import db_errors

    with db_errors("reading the cost rows failed"), store.engine.connect() as conn:
        row = conn.execute(sa.select(sa.func.min(t.c.day), sa.func.max(t.c.day))).first()
    return (row[0], row[1]) if row else (None, None)


def transfer_rows(store: Any, first_day: str, last_day: str) -> list[dict]:
    """Rows whose usage type looks like data transfer (classified by the pure core)."""
    import sqlalchemy as sa

    from vigil.finops.tables import cost_daily as t
    from vigil.store import db_errors

    like = sa.or_(
        t.c.usage_type.like("%DataTransfer%"), t.c.usage_type.like("%-Bytes%"), t.c.usage_type.like("%Data Transfer%"),
        t.c.usage_type.like("%Inter-Region%"), t.c.usage_type.like("%Intra-Region%"),
    )
    q = (
        sa.select(t.c.env, t.c.service, t.c.service_name, t.c.region, t.c.usage_type, sa.func.sum(t.c.effective_nano), sa.func.sum(t.c.quantity_micro))
        .where(t.c.day >= first_day, t.c.day <= last_day, like)
        .group_by(t.c.env, t.c.service, t.c.service_name, t.c.region, t.c.usage_type)
    )
    with db_errors("reading the cost rows failed"), store.engine.connect() as conn:
        return [
            {"env": r[0], "service": r[1], "service_name": r[2], "region": r[3], "usage_type": r[4],
             "effective": from_nano(int(r[5] or 0)), "quantity": Decimal(int(r[6] or 0)).scaleb(-6)}
            for r in conn.execute(q)
        ]
