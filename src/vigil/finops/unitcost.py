"""Cost against reliability: EffectiveCost per 1,000 requests and per 1,000 of an SLO's valid events,
per {env, service}, from the cost rows and the telemetry in the same store; and the data-transfer
split (edge, inter-region, internet) with cross-region transfer by the platform's own services as a
finding.

The division is pure (:func:`per_thousand`): zero events is ``None`` (no data), never a division by
zero or NaN. Costs are whole days; the events are counted over exactly those days (UTC midnight to
midnight), so numerator and denominator cover the same time. Telemetry describes one environment
(``costs.telemetry_env``); the other environments get a cost and no unit cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
Q = Decimal("0.01")
Q4 = Decimal("0.0001")


def per_thousand(cost: Decimal, events: int | None) -> Decimal | None:
    """``cost`` per 1,000 events; None when there were none."""
    if events is None or events <= 0:
        return None
    return cost * 1000 / Decimal(events)


def _q(d: Decimal | None, q: Decimal = Q4) -> str | None:
    return None if d is None else str(d.quantize(q))


@dataclass
class UnitCost:
    env: str
    service: str
    billed: Decimal
    effective: Decimal
    requests: int | None = None
    slos: list[dict] = field(default_factory=list)

    @property
    def per_1000_requests(self) -> Decimal | None:
        return per_thousand(self.effective, self.requests)

    def to_dict(self) -> dict:
        return {
            "env": self.env, "service": self.service, "billed_cost": _q(self.billed, Q), "effective_cost": _q(self.effective, Q),
            "requests": self.requests, "cost_per_1000_requests": _q(self.per_1000_requests), "slos": self.slos,
        }


def _minute(d: date) -> int:
    return int(datetime.combine(d, time(0), tzinfo=timezone.utc).timestamp()) // 60


def valid_events(slo: Any, source: Any, start_min: int, end_min: int) -> int | None:
    """An SLO's valid events over ``[start, end)`` minutes: a ratio's total less its exclusions, a
    latency SLI's observations; None for a freshness SLI (it counts time slices, not events)."""
    from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery

    sli = slo.sli
    if sli.ratio is not None:
        (n,) = source.counter_sums(CounterQuery(sli.ratio.total, sli.ratio.exclude), [start_min], end_min)
        return int(n)
    if sli.latency is not None:
        ((_, n),) = source.observation_counts(ObservationQuery(sli.latency.metric, int(sli.latency.threshold * 1_000_000_000)), [start_min], end_min)
        return int(n)
    return None


def unit_costs(store: Any, spec: Any, first: date, last: date) -> list[UnitCost]:
    """Per {env, service}: costs of ``[first, last]`` and, for the telemetry's environment, the cost
    per 1,000 requests and per 1,000 valid events of each of the service's SLOs over those days."""
    from vigil.finops import query
    from vigil.telemetry.sources import open_source, source_for
    from vigil.telemetry.sources.protocol import CounterQuery

    costs = spec.costs
    billed = query.daily(store, first.isoformat(), last.isoformat(), by=("env", "service"))
    eff = query.daily(store, first.isoformat(), last.isoformat(), by=("env", "service"), amount="effective")
    source = open_source(spec.telemetry, store)
    start_min, end_min = _minute(first), _minute(last + timedelta(days=1))
    out = []
    for key in sorted(set(billed) | set(eff)):
        env_, svc = key
        u = UnitCost(env_, svc, sum(billed.get(key, {}).values(), ZERO), sum(eff.get(key, {}).values(), ZERO))
        if env_ == costs.telemetry_env and svc in spec.services:
            sel = costs.requests.get(svc)
            if sel is not None:
                (u.requests,) = source.counter_sums(CounterQuery(sel), [start_min], end_min)
            for slo in spec.slos:
                if slo.service != svc:
                    continue
                n = valid_events(slo, source_for(source, slo), start_min, end_min)
                u.slos.append({
                    "slo": slo.name, "valid_events": n, "cost_per_1000_valid_events": _q(per_thousand(u.effective, n)),
                    "note": None if n is not None else "a freshness SLI counts time slices, not events",
                })
        out.append(u)
    return out


def slo_unit_costs(store: Any, spec: Any, statuses: list[Any], at: datetime) -> dict[str, dict]:
    """For ``slo status``: each SLO's service cost (the telemetry's environment) over the whole days
    of its window so far that have cost data, per 1,000 valid events of those days."""
    from vigil.finops import query
    from vigil.telemetry.sources import open_source, source_for

    costs = spec.costs
    _, last_any = query.span(store)
    if last_any is None:
        return {}
    last = min(date.fromisoformat(last_any), (at - timedelta(days=1)).date())
    source = open_source(spec.telemetry, store)
    out: dict[str, dict] = {}
    for st in statuses:
        slo = st.slo
        start = datetime.fromtimestamp(st.span.start * 60, tz=timezone.utc)
        first = start.date() if start.time() == time(0) else start.date() + timedelta(days=1)  # whole days of the window
        if st.span.first > st.span.start:  # telemetry starts later (its first sample): no cost before that day counts
            first = max(first, datetime.fromtimestamp(st.span.first * 60, tz=timezone.utc).date())
        if first > last:
            out[slo.name] = {"from": None, "to": None, "effective_cost": None, "valid_events": None, "cost_per_1000_valid_events": None}
            continue
        got = query.daily(store, first.isoformat(), last.isoformat(), by=(), amount="effective",
                          where={"env": costs.telemetry_env, "service": slo.service})
        cost = sum(got.get((), {}).values(), ZERO)
        n = valid_events(slo, source_for(source, slo), _minute(first), _minute(last + timedelta(days=1)))
        out[slo.name] = {
            "env": costs.telemetry_env, "from": first.isoformat(), "to": last.isoformat(), "effective_cost": _q(cost, Q),
            "valid_events": n, "cost_per_1000_valid_events": _q(per_thousand(cost, n)),
        }
    return out


# -- data transfer ------------------------------------------------------------------------------------


def transfer_report(rows: list[dict], services: set[str]) -> dict:
    """Pure: data-transfer rows split into edge, inter-region, internet and intra-region per env,
    and cross-region transfer by the platform's own services as findings."""
    from vigil.finops.rows import transfer_class

    split: dict[str, dict[str, Decimal]] = {}
    findings = []
    for r in rows:
        cls = transfer_class(r["service_name"], r["usage_type"])
        if cls is None:
            continue
        env_ = r["env"] or "(untagged)"
        split.setdefault(env_, {}).setdefault(cls, ZERO)
        split[env_][cls] += r["effective"]
        if cls == "inter-region" and r["service"] in services and r["effective"] > 0:
            findings.append({
                "kind": "cross-region-transfer", "env": r["env"], "service": r["service"], "usage_type": r["usage_type"],
                "region": r["region"], "gigabytes": str(r["quantity"].quantize(Q)), "effective_cost": str(r["effective"].quantize(Q)),
                "message": f"service {r['service']} ({r['env'] or 'untagged'}) sends data between regions ({r['usage_type']}):"
                           f" {r['effective'].quantize(Q)}; keep chatter inside a region, or serve it from the edge",
            })
    findings.sort(key=lambda f: -Decimal(f["effective_cost"]))
    return {
        "by_env": {e: {k: str(v.quantize(Q)) for k, v in sorted(c.items())} for e, c in sorted(split.items())},
        "findings": findings,
    }
