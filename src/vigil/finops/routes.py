"""The FinOps read routes of the JSON API (added by :func:`vigil.web.app.create_app`; loaded only by
the web app, so FastAPI is imported at its top). Every route needs a viewer token; none writes.

* ``GET /api/v1/costs/budgets?month=YYYY-MM&at=TIME``: each budget, the month so far, the forecast;
* ``GET /api/v1/costs/anomalies?from=DAY&to=DAY``: anomalies with their impact and contributors;
* ``GET /api/v1/costs/report?month=YYYY-MM``: costs, unit costs and the data-transfer split;
* ``GET /api/v1/costs/imports``: the imports stored.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Callable

from fastapi import Query

from vigil.clock import Clock, parse_time
from vigil.errors import NotFoundError, UsageError


def _costs(spec: Any) -> Any:
    if spec.costs is None:
        raise NotFoundError("the spec has no `costs:` section", hint="add `costs:` to vigil.yaml (README, FinOps)")
    return spec.costs


def _month(text: str | None, today: date) -> date:
    if text is None:
        return today.replace(day=1)
    try:
        y, m = text.split("-")
        return date(int(y), int(m), 1)
    except ValueError:
        raise UsageError(f"month: cannot read {text!r}", hint="months are YYYY-MM") from None


def _day(text: str | None, default: date) -> date:
    if text is None:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"cannot read day {text!r}", hint="days are YYYY-MM-DD") from None


def add_routes(app: Any, auth: Any, store: Any, loaded: Any, clock: Clock, errors: Callable[..., dict]) -> None:
    spec = loaded.spec

    @app.get("/api/v1/costs/budgets", summary="Cost budgets: the month so far, the forecast, breached thresholds", dependencies=[auth],
             responses=errors(400, 401, 404))
    def cost_budgets(
        month: Annotated[str | None, Query(max_length=7, description="YYYY-MM (default: the month of `at`)")] = None,
        at: Annotated[str | None, Query(max_length=64, description="evaluate at this time (default now)")] = None,
    ) -> dict:
        from vigil.finops.budgets import budget_statuses, frozen_services

        costs = _costs(spec)
        when = parse_time(at, now=clock.now()) if at else clock.now()
        m = _month(month, when.date())
        frozen = {}
        if costs.freeze_overspend:
            frozen = frozen_services(loaded, store, [b.service for b in costs.budgets if b.service], when)
        sts = budget_statuses(store, costs, m, as_of=when.date(), frozen=frozen)
        return {"month": m.strftime("%Y-%m"), "currency": costs.currency, "budgets": [s.to_dict() for s in sts]}

    @app.get("/api/v1/costs/anomalies", summary="Cost anomalies per {env, service}", dependencies=[auth], responses=errors(400, 401, 404))
    def cost_anomalies(
        from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
        to: Annotated[str | None, Query(max_length=10)] = None,
    ) -> dict:
        from vigil.finops import query
        from vigil.finops.budgets import detect_anomalies

        costs = _costs(spec)
        _, last_any = query.span(store)
        if last_any is None:
            return {"from": None, "to": None, "series": 0, "anomalies": []}
        last = _day(to, date.fromisoformat(last_any))
        first = _day(from_, last - timedelta(days=6))
        if first > last or (last - first).days > 366:
            raise UsageError("from must be before to, at most 366 days apart")
        found, judged = detect_anomalies(store, costs, first, last)
        return {"from": first.isoformat(), "to": last.isoformat(), "series": judged, "anomalies": [f.to_dict() for f in found]}

    @app.get("/api/v1/costs/report", summary="A month of costs, unit costs and data transfer", dependencies=[auth],
             responses=errors(400, 401, 404))
    def cost_report(month: Annotated[str | None, Query(max_length=7)] = None) -> dict:
        from vigil.finops import query
        from vigil.finops.forecast import month_end
        from vigil.finops.unitcost import transfer_report, unit_costs

        costs = _costs(spec)
        m = _month(month, clock.now().date())
        first_any, last_any = query.span(store)
        end = month_end(m) - timedelta(days=1)
        last = min(end, date.fromisoformat(last_any)) if last_any else None
        if last is None or last < m or (first_any is not None and first_any > end.isoformat()):
            raise NotFoundError(f"no cost rows for {m.strftime('%Y-%m')}", hint="import the month first: vigil cost import FILE")
        units = unit_costs(store, spec, m, last)
        q = Decimal("0.01")
        return {
            "month": m.strftime("%Y-%m"), "from": m.isoformat(), "to": last.isoformat(), "currency": costs.currency,
            "billed_cost": str(sum((u.billed for u in units), Decimal(0)).quantize(q)),
            "effective_cost": str(sum((u.effective for u in units), Decimal(0)).quantize(q)),
            "services": [u.to_dict() for u in units],
            "transfer": transfer_report(query.transfer_rows(store, m.isoformat(), last.isoformat()), set(spec.services)),
        }

    @app.get("/api/v1/costs/imports", summary="Cost imports, newest first", dependencies=[auth], responses=errors(400, 401))
    def cost_imports(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict:
        from vigil.finops.importer import imports

        return {"imports": imports(store, limit)}
