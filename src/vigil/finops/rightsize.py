"""Aurora Serverless v2 rightsizing with an SLO guardrail and the deploy gate's freeze.

Pure (:func:`recommend`, :func:`guardrail`, :func:`decide`): the cluster's floor and ceiling (ACUs),
its hourly capacity over the lookback and the environment's allowed range -> a new floor and
ceiling, the monthly cost change, and whether it may be applied:

- the ceiling is the peak hour's capacity plus ``headroom``, rounded up to 0.5 ACU, inside the
  environment's range; the floor is the quietest hour's average, rounded down, inside the range;
  an environment with ``pause_off_hours`` gets a floor of 0 (auto-pause when idle) where the engine
  version supports it (Aurora PostgreSQL 13.15, 14.12, 15.7, 16.3 and later; MySQL 3.08 and later);
- a recommendation that lowers capacity is *withheld* while an SLO of the service (the telemetry's
  environment) burns its budget faster than 1x over 1h or 6h, or has no data to tell (fail
  closed), and says which SLO and how fast;
- applying it asks the deploy gate as a what-if: while a freeze holds for the service, a cost cut
  is refused with the gate's reasons; a capacity raise is allowed during a freeze only with an
  explicit ``--allow-overspend AMOUNT`` that covers its monthly cost and fits the cap
  (``costs.freeze_overspend`` x the service's budgets).

Adapters read the clusters (RDS DescribeDBClusters) and their capacity (CloudWatch
``ServerlessDatabaseCapacity``, hourly maximum and average), and apply (ModifyDBCluster), each
decision recorded in ``cost_actions`` before the call.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Sequence

HALF = Decimal("0.5")
HOURS_PER_MONTH = Decimal(730)
AUTO_PAUSE_SECONDS = 300

_MIN_PAUSE = {"aurora-postgresql": {13: (13, 15), 14: (14, 12), 15: (15, 7), 16: (16, 3)}, "aurora-mysql": {}}


def pause_supported(engine: str, version: str) -> bool:
    """Whether Aurora Serverless v2 can scale to 0 ACUs (auto-pause) on this engine version."""
    m = re.match(r"^(\d+)\.(\d+)", version or "")
    if not m:
        return False
    major, minor = int(m[1]), int(m[2])
    if engine == "aurora-postgresql":
        if major >= 17:
            return True
        need = _MIN_PAUSE["aurora-postgresql"].get(major)
        return need is not None and (major, minor) >= need
    if engine == "aurora-mysql":
        vm = re.search(r"mysql_aurora\.(\d+)\.(\d+)", version)
        return vm is not None and (int(vm[1]), int(vm[2])) >= (3, 8)
    return False


def _up(x: Decimal) -> Decimal:
    return (x / HALF).to_integral_value(rounding=ROUND_CEILING) * HALF


def _down(x: Decimal) -> Decimal:
    return (x / HALF).to_integral_value(rounding=ROUND_FLOOR) * HALF


@dataclass(frozen=True)
class Usage:
    """Hourly capacity (ACUs) of a cluster over the lookback: (maximum, average) per hour."""

    hours: Sequence[tuple[Decimal, Decimal]]

    @property
    def peak(self) -> Decimal | None:
        return max((h[0] for h in self.hours), default=None)

    @property
    def quietest(self) -> Decimal | None:
        return min((h[1] for h in self.hours), default=None)


@dataclass
class Recommendation:
    cluster_id: str
    env: str
    service: str
    current_min: Decimal
    current_max: Decimal
    new_min: Decimal
    new_max: Decimal
    pause: bool
    monthly_change: Decimal  # negative: a saving
    reasons: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    applied: bool = False
    action_id: int | None = None

    @property
    def direction(self) -> str:
        if self.new_min == self.current_min and self.new_max == self.current_max:
            return "keep"
        if self.new_min <= self.current_min and self.new_max <= self.current_max:
            return "lower"
        if self.new_min >= self.current_min and self.new_max >= self.current_max:
            return "raise"
        return "reshape"

    @property
    def cuts(self) -> bool:
        return self.new_min < self.current_min or self.new_max < self.current_max

    def to_dict(self) -> dict:
        q = Decimal("0.01")
        return {
            "cluster_id": self.cluster_id, "env": self.env, "service": self.service, "direction": self.direction,
            "current": {"min_acu": float(self.current_min), "max_acu": float(self.current_max)},
            "recommended": {"min_acu": float(self.new_min), "max_acu": float(self.new_max), "auto_pause": self.pause},
            "monthly_cost_change": str(self.monthly_change.quantize(q)), "reasons": self.reasons, "withheld": self.withheld,
            "refused": self.refused, "applied": self.applied, "action_id": self.action_id,
        }


def recommend(
    cluster_id: str, env: str, service: str, current_min: Decimal, current_max: Decimal, usage: Usage, allowed: Any, *,
    headroom: Decimal, price: Decimal, pause_ok: bool,
) -> Recommendation:
    """Pure: the floor and ceiling for a cluster from its hourly capacity and its environment's range."""
    reasons: list[str] = []
    lo = allowed.min_acu if allowed is not None else Decimal(0)
    hi = allowed.max_acu if allowed is not None else Decimal(256)
    peak, quiet = usage.peak, usage.quietest
    if peak is None or quiet is None:
        rec = Recommendation(cluster_id, env, service, current_min, current_max, current_min, current_max, False, Decimal(0))
        rec.withheld.append("no capacity data for the lookback (CloudWatch ServerlessDatabaseCapacity): nothing is recommended without evidence")
        return rec
    new_max = min(hi, max(Decimal(1), _up(peak * (1 + headroom))))
    if new_max < max(lo, Decimal(1)):
        new_max = max(lo, Decimal(1))
    new_min = min(new_max, max(lo, _down(quiet)))
    reasons.append(f"peak hour {peak:.2f} ACU + {headroom * 100:.0f}% headroom -> ceiling {new_max} (environment {env}: {lo} to {hi})")
    reasons.append(f"quietest hour {quiet:.2f} ACU -> floor {new_min}")
    pause = False
    if allowed is not None and getattr(allowed, "pause_off_hours", False):
        if pause_ok:
            new_min, pause = Decimal(0), True
            reasons.append(f"{env}: floor 0 with auto-pause after {AUTO_PAUSE_SECONDS}s idle (off-hours cost nothing)")
        else:
            reasons.append(f"{env}: pause_off_hours asked, but this engine version cannot scale to 0 ACUs; upgrade it to pause")
    # the floor is what is paid when idle: each hour costs max(floor, used); the ceiling caps the peak
    def cost(floor: Decimal, ceiling: Decimal) -> Decimal:
        tot = Decimal(0)
        for _mx, avg in usage.hours:
            used = min(max(avg, floor), ceiling)
            tot += used
        return tot

    n = len(usage.hours)
    change = (cost(new_min, new_max) - cost(current_min, current_max)) * price * HOURS_PER_MONTH / n if n else Decimal(0)
    return Recommendation(cluster_id, env, service, current_min, current_max, new_min, new_max, pause, change, reasons)


def guardrail(rec: Recommendation, slo_burns: Sequence[tuple[str, Decimal | None, Decimal | None]]) -> None:
    """Pure: withhold a cut while an SLO of the service burns faster than 1x (1h or 6h), or has no
    data to tell. ``slo_burns``: (SLO name, burn rate 1h, burn rate 6h) of the service's SLOs."""
    if not rec.cuts:
        return
    for name, b1, b6 in slo_burns:
        if b1 is None or b6 is None:
            rec.withheld.append(f"SLO {name} has no burn rate to judge by (no data): a capacity cut waits for evidence")
        elif b1 > 1 or b6 > 1:
            rec.withheld.append(
                f"SLO {name} burns its error budget at {b1:.2f}x over 1h and {b6:.2f}x over 6h (above 1x): a capacity cut is withheld"
            )


def decide(rec: Recommendation, freezes: Sequence[str], *, allow_overspend: Decimal | None, cap: Decimal) -> None:
    """Pure: what the gate's freeze allows. A cut is refused while frozen; a raise during a freeze
    needs an explicit overspend that covers its monthly cost and fits the cap."""
    if not freezes or rec.direction == "keep":
        return
    if rec.cuts:
        rec.refused.append("a freeze holds for service " + rec.service + ": cost cuts wait until it lifts (" + "; ".join(freezes) + ")")
        return
    if allow_overspend is None:
        rec.refused.append(
            f"a freeze holds for service {rec.service}: raising capacity adds {rec.monthly_change.quantize(Decimal('0.01'))} a month;"
            " pass --allow-overspend AMOUNT to accept it (" + "; ".join(freezes) + ")"
        )
    elif allow_overspend < rec.monthly_change:
        rec.refused.append(f"--allow-overspend {allow_overspend} does not cover the raise's {rec.monthly_change.quantize(Decimal('0.01'))} a month")
    elif allow_overspend > cap:
        rec.refused.append(
            f"--allow-overspend {allow_overspend} is over the cap {cap.quantize(Decimal('0.01'))} (costs.freeze_overspend x the service's budgets)"
        )


# -- adapters ---------------------------------------------------------------------------------------


def read_cluster(rds: Any, cluster_id: str) -> dict:
    """(engine, version, min ACU, max ACU) of a cluster."""
    from vigil.dr.aws.client import AwsError

    got = rds.call("describe_db_clusters", DBClusterIdentifier=cluster_id).get("DBClusters", [])
    if not got:
        raise AwsError(f"rds DescribeDBClusters: no cluster {cluster_id!r}", service="rds", operation="DescribeDBClusters")
    c = got[0]
    sc = c.get("ServerlessV2ScalingConfiguration")
    if not sc:
        raise AwsError(
            f"cluster {cluster_id} is not Aurora Serverless v2 (no ServerlessV2ScalingConfiguration)",
            hint="list only Serverless v2 clusters under costs.rightsizing.clusters", service="rds", operation="DescribeDBClusters",
        )
    return {
        "engine": c.get("Engine", ""), "version": c.get("EngineVersion", ""),
        "min": Decimal(repr(float(sc.get("MinCapacity", 0)))), "max": Decimal(repr(float(sc.get("MaxCapacity", 1)))),
    }


def read_usage(cw: Any, cluster_id: str, end: datetime, lookback: Decimal) -> Usage:
    start = end - timedelta(seconds=int(lookback))
    hours: list[tuple[Decimal, Decimal]] = []
    t = start
    while t < end:  # at most 1,440 points per call
        t2 = min(end, t + timedelta(hours=1440))
        r = cw.call(
            "get_metric_statistics", Namespace="AWS/RDS", MetricName="ServerlessDatabaseCapacity",
            Dimensions=[{"Name": "DBClusterIdentifier", "Value": cluster_id}], StartTime=t, EndTime=t2, Period=3600,
            Statistics=["Maximum", "Average"],
        )
        for p in r.get("Datapoints", []):
            mx, av = float(p.get("Maximum", 0.0)), float(p.get("Average", 0.0))
            if math.isfinite(mx) and math.isfinite(av):
                hours.append((Decimal(repr(mx)), Decimal(repr(av))))
        t = t2
    return Usage(hours)


def slo_burns(loaded: Any, store: Any, service: str, at: datetime) -> list[tuple[str, Decimal | None, Decimal | None]]:
    from vigil.slo.evaluate import evaluate_slos
    from vigil.telemetry.sources import open_source

    spec = loaded.spec
    slos = [s for s in spec.slos if s.service == service]
    if not slos:
        return []
    out = []
    for st in evaluate_slos(slos, open_source(spec.telemetry, store), at):
        out.append((st.slo.name, st.burn_rate("1h"), st.burn_rate("6h")))
    return out


def record_action(store: Any, rec: Recommendation, at: datetime, actor: str | None, *, applied: bool | None = None) -> int:
    import sqlalchemy as sa

    from vigil.clock import isoformat
    from vigil.finops.tables import cost_actions as t
    from vigil.store import db_errors

    with db_errors("recording the cost action failed"), store.engine.begin() as conn:
        if rec.action_id is None:
            reason = "; ".join(rec.refused + rec.withheld) or None
            rid = conn.execute(sa.insert(t).returning(t.c.id), {
                "at": isoformat(at), "actor": actor, "kind": "rightsize", "service": rec.service, "env": rec.env,
                "target": f"rds:cluster:{rec.cluster_id}", "allowed": not (rec.refused or rec.withheld), "applied": False,
                "reason": reason, "detail": json.dumps(rec.to_dict(), sort_keys=True),
            }).scalar_one()
            rec.action_id = int(rid)
        if applied is not None:
            conn.execute(sa.update(t).where(t.c.id == rec.action_id).values(applied=applied, detail=json.dumps(rec.to_dict(), sort_keys=True)))
    return rec.action_id


def apply(rds: Any, rec: Recommendation) -> None:
    cfg: dict[str, Any] = {"MinCapacity": float(rec.new_min), "MaxCapacity": float(rec.new_max)}
    if rec.pause:
        cfg["SecondsUntilAutoPause"] = AUTO_PAUSE_SECONDS
    rds.call("modify_db_cluster", DBClusterIdentifier=rec.cluster_id, ServerlessV2ScalingConfiguration=cfg, ApplyImmediately=True)


def overspend_cap(costs: Any, service: str) -> Decimal:
    return sum((b.amount for b in costs.budgets if b.service == service), Decimal(0)) * costs.freeze_overspend


def rightsize(loaded: Any, store: Any, rds: Any, cw: Any, at: datetime, *, do_apply: bool = False, allow_overspend: Decimal | None = None,
              actor: str | None = None, clusters: Sequence[str] = ()) -> list[Recommendation]:
    """Recommend (and with ``do_apply`` apply what is allowed) for every cluster of the spec."""
    from vigil.deploy.gate import gate_deploy
    from vigil.errors import NotFoundError

    spec = loaded.spec
    costs = spec.costs
    rs = costs.rightsizing
    if rs is None or not rs.clusters:
        raise NotFoundError("no clusters under costs.rightsizing.clusters", hint="list the Aurora Serverless v2 clusters to rightsize (README, FinOps)")
    wanted = [c for c in rs.clusters if not clusters or c.cluster_id in clusters]
    unknown = sorted(set(clusters) - {c.cluster_id for c in rs.clusters})
    if unknown:
        raise NotFoundError(f"unknown cluster {unknown[0]!r}", hint="clusters: " + ", ".join(c.cluster_id for c in rs.clusters))
    out = []
    gate_cache: dict[str, list[str]] = {}
    for c in wanted:
        info = read_cluster(rds, c.cluster_id)
        usage = read_usage(cw, c.cluster_id, at, rs.lookback)
        rec = recommend(c.cluster_id, c.env, c.service, info["min"], info["max"], usage, rs.capacity.get(c.env),
                        headroom=rs.headroom, price=rs.acu_hour_price, pause_ok=pause_supported(info["engine"], info["version"]))
        if c.env == costs.telemetry_env:
            guardrail(rec, slo_burns(loaded, store, c.service, at))
        if do_apply and rec.direction != "keep" and not rec.withheld:
            if c.service not in gate_cache:
                d = gate_deploy(loaded, store, c.service, at, record=False)
                gate_cache[c.service] = [f.message for f in d.freezes]
            decide(rec, gate_cache[c.service], allow_overspend=allow_overspend, cap=overspend_cap(costs, c.service))
            record_action(store, rec, at, actor)
            if not rec.refused:
                apply(rds, rec)
                rec.applied = True
                record_action(store, rec, at, actor, applied=True)
        elif do_apply and rec.direction != "keep":
            record_action(store, rec, at, actor)
        out.append(rec)
    return out
