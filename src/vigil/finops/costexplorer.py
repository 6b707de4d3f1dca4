"""Cost Explorer's GetCostAndUsage (boto3) as cost rows.

Cost Explorer groups by at most two keys, so vigil asks once per environment (a filter on the
environment tag, its values and their aliases) and once for what has no environment tag, grouped
by the service tag and the SERVICE dimension, daily, with UnblendedCost, NetUnblendedCost,
AmortizedCost and UsageQuantity. Region and usage type are not in these answers (their columns
are empty). Each day of the account is one scope (``cost-explorer:<account>:<day>``): importing a
range again replaces those days. Days Cost Explorer marks ``Estimated`` are imported and counted;
the outcome lists them, and a later import replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from vigil.errors import UsageError
from vigil.finops.rows import Attribution, Line, Rollup, RowError, number

METRICS = ["UnblendedCost", "NetUnblendedCost", "AmortizedCost", "UsageQuantity"]
MAX_DAYS = 366


@dataclass
class CeResult:
    rollup: Rollup
    estimated_days: list[str] = field(default_factory=list)
    queries: int = 0
    account: str = ""


def _amount(metrics: dict, name: str) -> Decimal:
    m = metrics.get(name) or {}
    text = m.get("Amount")
    if text is None:
        return Decimal(0)
    return number(str(text), name)


def fetch(ce: Any, account: str, start: date, end: date, costs: Any) -> CeResult:
    """Daily rows for ``[start, end)`` through an :class:`~vigil.dr.aws.client.Aws` wrapping a
    Cost Explorer client."""
    if end <= start:
        raise UsageError("the period is empty: --from must be before --to")
    if (end - start).days > MAX_DAYS:
        raise UsageError(f"Cost Explorer is asked at most {MAX_DAYS} days at a time")
    attr = Attribution.from_spec(costs)
    tags = costs.tags if costs is not None else None
    env_key = tags.env[0] if tags else "env"
    svc_key = tags.service[0] if tags else "service"
    envs = list(costs.envs) if costs is not None else ["prod", "stage", "dev"]
    aliases = {k.lower(): v for k, v in (tags.env_values.items() if tags else {})}
    currency = costs.currency if costs is not None else "USD"
    res = CeResult(Rollup(), account=account)
    queries: list[tuple[str, dict]] = []
    for env in envs:
        values = [env] + sorted(k for k, v in aliases.items() if v == env)
        queries.append((env, {"Tags": {"Key": env_key, "Values": values, "MatchOptions": ["EQUALS"]}}))
    queries.append(("", {"Tags": {"Key": env_key, "MatchOptions": ["ABSENT"]}}))
    estimated: set[str] = set()
    line_no = 0
    for env, flt in queries:
        token = None
        for _ in range(1000):
            params: dict[str, Any] = {
                "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
                "Granularity": "DAILY",
                "Metrics": METRICS,
                "Filter": flt,
                "GroupBy": [{"Type": "TAG", "Key": svc_key}, {"Type": "DIMENSION", "Key": "SERVICE"}],
            }
            if token:
                params["NextPageToken"] = token
            page = ce.call("get_cost_and_usage", **params)
            res.queries += 1
            for period in page.get("ResultsByTime", []):
                day = str((period.get("TimePeriod") or {}).get("Start", ""))[:10]
                if period.get("Estimated"):
                    estimated.add(day)
                for g in period.get("Groups", []):
                    line_no += 1
                    try:
                        res.rollup.add(_line(account, day, env, g, attr, currency))
                    except RowError as e:
                        res.rollup.reject(line_no, f"Cost Explorer group {g.get('Keys')}: {e.column}: {e}")
            token = page.get("NextPageToken")
            if not token:
                break
    res.estimated_days = sorted(estimated)
    return res


def _line(account: str, day: str, env: str, g: dict, attr: Attribution, currency: str) -> Line:
    try:
        date.fromisoformat(day)
    except ValueError:
        raise RowError("TimePeriod.Start", f"not a date: {day!r}") from None
    keys = list(g.get("Keys") or [])
    if len(keys) != 2:
        raise RowError("Keys", "a group has two keys (the service tag, the SERVICE dimension)")
    tag, sname = str(keys[0]), str(keys[1])
    svc = tag.split("$", 1)[1] if "$" in tag else ""
    _, svc = attr.of_pairs({attr.service_keys[0]: svc}) if svc else ("", "")
    m = g.get("Metrics") or {}
    unit = str((m.get("UnblendedCost") or {}).get("Unit") or currency)
    if unit != currency:
        raise RowError("UnblendedCost.Unit", f"is {unit}; the spec's costs.currency is {currency}")
    unblended = _amount(m, "UnblendedCost")
    net = _amount(m, "NetUnblendedCost") if "NetUnblendedCost" in m else unblended
    amort = _amount(m, "AmortizedCost") if "AmortizedCost" in m else net
    qty = _amount(m, "UsageQuantity")
    return Line(f"cost-explorer:{account}:{day}", day, env, svc, sname[:200] or "(no service)", "", "", "Usage",
                net, amort, unblended, qty, "", currency)


def days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days)]
