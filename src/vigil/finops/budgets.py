"""Budgets and anomalies: the pure judgement and the adapters around it.

:func:`evaluate_budget` is pure: a budget, its month's forecast and whether a freeze holds for its
service -> each threshold's limit, value and whether it is breached. A freeze raises the limits by
``costs.freeze_overspend`` (an explicit, capped overspend while reliability comes first).

Breaches and anomalies reach the alerting engine as events: :func:`record_alerts` writes each new
one to ``cost_breaches`` first (the outbox), then pushes ``vigil_event_total{event=<costs.alert_event
or anomaly_event>, budget, env, service, threshold}`` += 1 through the telemetry push path with an
idempotency key per breach, then marks it sent. A replay (a crash between the two) pushes what is
unsent with the same key, so the event is counted once; an ``event`` alert rule on that event fires
through the alerting engine's routing and delivery like any other alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Sequence

from vigil.finops.forecast import Forecast, forecast_month, month_end
from vigil.finops.spec import Budget, CostsSpec

ZERO = Decimal(0)
Q = Decimal("0.01")


@dataclass(frozen=True)
class ThresholdState:
    label: str
    kind: str
    share: Decimal
    limit: Decimal
    value: Decimal | None
    breached: bool

    def to_dict(self) -> dict:
        return {
            "threshold": self.label, "kind": self.kind, "share": float(self.share), "limit": str(self.limit.quantize(Q)),
            "value": None if self.value is None else str(self.value.quantize(Q)), "breached": self.breached,
        }


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    forecast: Forecast
    thresholds: list[ThresholdState]
    frozen: bool
    overspend: Decimal
    freeze_reasons: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.forecast.as_of is None:
            return "no_data"
        return "breached" if any(t.breached for t in self.thresholds) else "ok"

    @property
    def used(self) -> Decimal:
        return self.forecast.actual / self.budget.amount

    def to_dict(self) -> dict:
        b = self.budget
        return {
            "budget": b.name, "env": b.env, "service": b.service, "service_name": b.service_name,
            "amount": str(b.amount.quantize(Q)), "state": self.state, "used_percent": float((self.used * 100).quantize(Q)),
            **self.forecast.to_dict(), "thresholds": [t.to_dict() for t in self.thresholds],
            "frozen": self.frozen, "freeze_overspend": float(self.overspend) if self.frozen else 0.0, "freeze_reasons": self.freeze_reasons,
        }


def evaluate_budget(b: Budget, fc: Forecast, *, frozen: bool = False, overspend: Decimal = ZERO, freeze_reasons: Sequence[str] = ()) -> BudgetStatus:
    """Pure: each threshold's limit (raised by ``overspend`` while frozen) against the month so far
    or its forecast. No data is not a breach, and says so (state ``no_data``)."""
    raise_by = (1 + overspend) if frozen else Decimal(1)
    states = []
    for t in b.thresholds:
        limit = b.amount * t.share * raise_by
        value = fc.actual if t.kind == "actual" else fc.forecast
        if fc.as_of is None:
            value = None
        states.append(ThresholdState(t.label, t.kind, t.share, limit, value, value is not None and value > limit))
    return BudgetStatus(b, fc, states, frozen, overspend, list(freeze_reasons))


# -- adapters -------------------------------------------------------------------------------------


def _where(b: Budget) -> dict[str, str | None]:
    return {"env": b.env, "service": b.service, "service_name": b.service_name}


def budget_statuses(store: Any, costs: CostsSpec, month: date, *, as_of: date | None = None, frozen: dict[str, list[str]] | None = None) -> list[BudgetStatus]:
    """Every budget of ``month`` from the stored rows. ``as_of`` caps the days read (default: the
    last day any cost row has); ``frozen`` maps a frozen service to its freeze reasons."""
    from vigil.finops import query

    first = month.replace(day=1)
    end = month_end(first)
    _, last_any = query.span(store)
    last = date.fromisoformat(last_any) if last_any else None
    if as_of is not None:
        last = min(last, as_of) if last else None
    out = []
    for b in costs.budgets:
        series: dict[date, Decimal] = {}
        if last is not None and last >= first - timedelta(days=28):
            got = query.daily(store, (first - timedelta(days=28)).isoformat(), min(last, end - timedelta(days=1)).isoformat(), by=(), where=_where(b))
            series = {date.fromisoformat(d): v for d, v in got.get((), {}).items()}
            # every day up to the last day of data was reported: a day without this budget's rows cost 0
            if series:
                d = min(series)
                while d <= min(last, end - timedelta(days=1)):
                    series.setdefault(d, ZERO)
                    d += timedelta(days=1)
        obs_last = min(last, end - timedelta(days=1)) if (last is not None and series) else None
        if obs_last is not None and obs_last < first:
            # data stops before the month: nothing of the month observed yet, the forecast runs from history
            pass
        fc = forecast_month(series, first, obs_last)
        reasons = (frozen or {}).get(b.service or "", []) if b.service else []
        out.append(evaluate_budget(b, fc, frozen=bool(reasons), overspend=costs.freeze_overspend, freeze_reasons=reasons))
    return out


@dataclass(frozen=True)
class AnomalyFinding:
    env: str
    service: str
    day: date
    score: Any  # anomaly.Score
    contributors: list[Any]

    def to_dict(self) -> dict:
        return {"env": self.env, "service": self.service, "day": self.day.isoformat(), **self.score.to_dict(),
                "top_contributors": [c.to_dict() for c in self.contributors]}


def detect_anomalies(store: Any, costs: CostsSpec, first: date, last: date) -> tuple[list[AnomalyFinding], int]:
    """Anomalies per {env, service} on daily EffectiveCost between ``first`` and ``last`` (inclusive),
    with their top contributors. Returns (findings, series judged)."""
    from vigil.finops import query
    from vigil.finops.anomaly import Params, contributors, score_series

    p = Params.from_spec(costs.anomalies)
    read_from = first - timedelta(days=p.window + 7)
    data = query.daily(store, read_from.isoformat(), last.isoformat(), by=("env", "service"), amount="effective", where={"charge_category": "Usage"})
    out: list[AnomalyFinding] = []
    judged = 0
    for (env, svc), days in sorted(data.items()):
        start = min(date.fromisoformat(d) for d in days)  # days before a series' first row are not zeros
        n = (last - start).days + 1
        vals = [days.get((start + timedelta(days=i)).isoformat(), ZERO) for i in range(n)]
        offset = max(0, (first - start).days)
        scores = score_series(vals, p, first_weekday=start.weekday(), start=offset)
        if scores:
            judged += 1
        for s in scores:
            if not s.anomalous:
                continue
            day = start + timedelta(days=s.index)
            before = [(day - timedelta(days=i)).isoformat() for i in range(1, 8)]
            where = {"env": env, "service": svc, "charge_category": "Usage"}
            rows_day = query.rows_on(store, [day.isoformat()], where=where)
            rows_before = query.rows_on(store, before, where=where)
            out.append(AnomalyFinding(env, svc, day, s, contributors(rows_day, rows_before, 7)))
    out.sort(key=lambda f: (f.day, f.env, f.service))
    return out, judged


# -- alert events ---------------------------------------------------------------------------------


@dataclass
class Pending:
    key: str
    budget: str
    month: str
    kind: str
    threshold: str
    env: str | None
    service: str | None
    amount: Decimal
    value: Decimal
    detail: dict


def breaches_of(statuses: Sequence[BudgetStatus]) -> list[Pending]:
    out = []
    for st in statuses:
        m = st.forecast.month.strftime("%Y-%m")
        for t in st.thresholds:
            if t.breached and t.value is not None:
                b = st.budget
                out.append(Pending(
                    f"budget|{b.name}|{m}|{t.label}", b.name, m, t.kind, t.label, b.env, b.service, t.limit, t.value,
                    {"budget": b.name, "amount": str(b.amount), "limit": str(t.limit.quantize(Q)), "value": str(t.value.quantize(Q)),
                     "frozen": st.frozen},
                ))
    return out


def anomalies_of(findings: Sequence[AnomalyFinding]) -> list[Pending]:
    return [
        Pending(
            f"anomaly|{f.env}|{f.service}|{f.day.isoformat()}", f"{f.env}/{f.service}", f.day.strftime("%Y-%m"), "anomaly",
            f.day.isoformat(), f.env or None, f.service or None, Decimal(repr(f.score.expected)), Decimal(repr(f.score.actual)),
            f.to_dict(),
        )
        for f in findings
    ]


def record_alerts(store: Any, spec: Any, pending: Sequence[Pending], at: datetime) -> dict:
    """Write new breaches and anomalies to the outbox, then push an event for each one not sent yet."""
    import sqlalchemy as sa

    from vigil.clock import isoformat
    from vigil.finops.rows import to_nano
    from vigil.finops.tables import cost_breaches as t
    from vigil.store import db_errors

    costs: CostsSpec = spec.costs
    new = 0
    with db_errors("recording cost breaches failed"):
        with store.engine.begin() as conn:
            have = set(conn.execute(sa.select(t.c.key).where(t.c.key.in_([p.key for p in pending]))).scalars()) if pending else set()
            for p in pending:
                if p.key in have:
                    continue
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(t), {
                            "key": p.key, "budget": p.budget, "month": p.month, "kind": p.kind, "threshold": p.threshold, "env": p.env,
                            "service": p.service, "amount_nano": to_nano(p.amount), "value_nano": to_nano(p.value),
                            "detected_at": isoformat(at), "event_sent_at": None, "detail": json.dumps(p.detail, sort_keys=True),
                        })
                    new += 1
                except sa.exc.IntegrityError:  # recorded by a concurrent run
                    continue
        with store.engine.connect() as conn:
            unsent = conn.execute(sa.select(t).where(t.c.event_sent_at.is_(None)).order_by(t.c.key)).mappings().all()
    sent = 0
    for row in unsent:
        _push_event(store, spec, costs, dict(row), at)
        with db_errors("recording cost breaches failed"), store.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.key == row["key"]).values(event_sent_at=isoformat(at)))
        sent += 1
    return {"new": new, "events_pushed": sent}


def _push_event(store: Any, spec: Any, costs: CostsSpec, row: dict, at: datetime) -> None:
    from vigil.clock import isoformat
    from vigil.errors import StoreError
    from vigil.telemetry.push import Ingestor

    labels = {"event": costs.anomaly_event if row["kind"] == "anomaly" else costs.alert_event}
    for k in ("budget", "env", "service", "threshold"):
        v = row.get(k)
        if v:
            labels[k] = str(v)
    line = {"ts": isoformat(at.replace(microsecond=0)), "metric": "vigil_event_total", "labels": labels, "inc": 1}
    ing = Ingestor(spec, store)
    s = ing.session(at, key=f"cost:{row['key']}"[:255], source="push")
    try:
        s.feed([(1, json.dumps(line))])
        res = s.finish()
    except BaseException:
        s.abort()
        raise
    rejected = getattr(res, "rejected", None)
    if rejected:
        raise StoreError(f"the cost alert event was refused: {rejected[0].error}", hint="check the telemetry limits of the spec")


def list_breaches(store: Any, limit: int = 100) -> list[dict]:
    import sqlalchemy as sa

    from vigil.finops.rows import from_nano
    from vigil.finops.tables import cost_breaches as t
    from vigil.store import db_errors

    with db_errors("reading cost breaches failed"), store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.detected_at.desc(), t.c.key).limit(limit)).mappings().all()
    return [
        {"key": r["key"], "budget": r["budget"], "month": r["month"], "kind": r["kind"], "threshold": r["threshold"], "env": r["env"],
         "service": r["service"], "limit": str(from_nano(r["amount_nano"]).quantize(Q)), "value": str(from_nano(r["value_nano"]).quantize(Q)),
         "detected_at": r["detected_at"], "event_sent_at": r["event_sent_at"]}
        for r in rows
    ]


def frozen_services(loaded: Any, store: Any, services: Sequence[str], at: datetime) -> dict[str, list[str]]:
    """The services a freeze holds for, with the gate's reasons: the deploy gate asked as a what-if."""
    from vigil.deploy.gate import gate_deploy

    out: dict[str, list[str]] = {}
    for s in sorted(set(services)):
        d = gate_deploy(loaded, store, s, at, record=False)
        if d.freezes:
            out[s] = [f.message for f in d.freezes]
    return out
