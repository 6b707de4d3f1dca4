"""What the pages and their chart endpoints show, as plain data, read through each capability's
public functions (the SLO engine, the gate, the records of canaries, verdicts, drills, backups,
alerts). Every chart's JSON has ``chart: {title, unit, series: [{name, x, y, style}]}`` beside
its numbers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from vigil.clock import isoformat, parse_time
from vigil.dashboards.series import RANGES, Grid, make_grid, panel_series, range_grid
from vigil.dashboards.slo_charts import x_text
from vigil.errors import NotFoundError, UsageError
from vigil.slo.windows import now_minute
from vigil.spec import LoadedSpec
from vigil.store import Store
from vigil.telemetry.sources import open_source

MAX_CUSTOM_SPAN_MIN = 400 * 1440


def grid_for(at: datetime, range_name: str | None, frm: str | None, to: str | None) -> tuple[Grid, dict]:
    """The chart grid of the time-range picker: a named range ending at ``at``, or ``from``/``to``."""
    if frm or to:
        if not (frm and to):
            raise UsageError("a custom range needs both from and to", hint="like from=now-3d&to=now, or RFC 3339 times")
        a, b = parse_time(frm, now=at), parse_time(to, now=at)
        lo, hi = int(a.timestamp()) // 60, now_minute(b)
        if hi <= lo:
            raise UsageError("the range's end must be after its start")
        if hi - lo > MAX_CUSTOM_SPAN_MIN:
            raise UsageError("a custom range is at most 400 days")
        return make_grid(lo, hi), {"range": "custom", "from": isoformat(a), "to": isoformat(b)}
    name = range_name or "1d"
    if name not in RANGES:
        raise UsageError(f"unknown range {name!r}", hint=f"ranges: {', '.join(RANGES)}, or from= and to=")
    return range_grid(name, now_minute(at)), {"range": name}


def slo_or_404(loaded: LoadedSpec, name: str):
    for s in loaded.spec.slos:
        if s.name == name:
            return s
    raise NotFoundError(f"unknown SLO {name!r}", hint=f"SLOs: {', '.join(s.name for s in loaded.spec.slos)}")


def dashboard_or_404(loaded: LoadedSpec, name: str):
    for d in loaded.spec.dashboards:
        if d.name == name:
            return d
    raise NotFoundError(f"unknown dashboard {name!r}", hint=f"dashboards: {', '.join(d.name for d in loaded.spec.dashboards) or 'none in the spec'}")


# -- overview ------------------------------------------------------------------------------------


def overview(loaded: LoadedSpec, store: Store, at: datetime, service: str | None = None) -> dict:
    """Every SLO's status (the engine's JSON) and each service's gate answer: the gate's own what-if
    (:func:`vigil.deploy.gate.gate_deploy`, record=False), so the overview never says allowed where
    `vigil gate deploy --what-if` says frozen (an empty store, an invalid SLI, the security ledger)."""
    from vigil.deploy.gate import gate_deploy
    from vigil.slo.evaluate import evaluate_slos

    spec = loaded.spec
    if service is not None and service not in spec.services:
        raise NotFoundError(f"unknown service {service!r}", hint=f"services: {', '.join(sorted(spec.services))}")
    source = open_source(spec.telemetry, store)
    every = evaluate_slos(spec.slos, source, at)  # a global freeze rule reads them all; evaluated once for every service
    statuses = [st for st in every if service is None or st.slo.service == service]
    services = []
    for name in sorted(spec.services):
        if service is not None and name != service:
            continue
        d = gate_deploy(loaded, store, name, at, record=False, evaluated=(source, every))
        services.append({
            "service": name,
            "allowed": d.allowed,
            "frozen": d.frozen,
            "reasons": d.reasons,
            "freezes": [f.to_dict() for f in d.freezes],
            "warnings": list(d.warnings),
        })
    return {"at": isoformat(at), "slos": [s.to_dict() for s in statuses], "services": services}


# -- dashboards ----------------------------------------------------------------------------------


def panel_json(loaded: LoadedSpec, store: Store, name: str, slug: str, grid: Grid, picked: dict) -> dict:
    d = dashboard_or_404(loaded, name)
    try:
        panel = d.panel(slug)
    except KeyError:
        raise NotFoundError(f"dashboard {name!r} has no panel {slug!r}", hint=f"panels: {', '.join(p.slug for p in d.panels)}") from None
    out = panel_series(open_source(loaded.spec.telemetry, store), panel, grid)
    out["dashboard"] = name
    out.update(picked)
    x = [x_text(m) for m in grid.points]
    out["chart"] = {
        "title": panel.title,
        "unit": panel.unit,
        "series": [{"name": s["label"], "x": x, "y": [p[1] for p in s["points"]], "style": "line"} for s in out["series"]]
        + [{"name": t["label"], "x": [x[0], x[-1]], "y": [t["value"], t["value"]], "style": "dash"} for t in out["thresholds"]],
    }
    for s in out["series"]:
        s["points"] = [[x_text(m), v] for m, v in s["points"]]
    return out


# -- deploys -------------------------------------------------------------------------------------


def deploys(loaded: LoadedSpec, store: Store, limit: int = 50) -> dict:
    import sqlalchemy as sa

    from vigil.deploy.canary.records import Records, run_record
    from vigil.deploy.gate import GateRecord
    from vigil.deploy.verdict_tables import deploy_verdicts
    from vigil.store import db_errors

    gate = [GateRecord.from_row(r).to_dict() for r in store.gate_decisions(limit=limit)]
    t = deploy_verdicts
    with db_errors("reading verdicts failed"), store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.id, t.c.kind, t.c.service, t.c.release, t.c.verdict, t.c.recorded_at, t.c.summary).order_by(t.c.id.desc()).limit(limit)
        ).all()
    verdicts = [dict(r._mapping) for r in rows]
    rec = Records(store)
    runs = []
    for r in rec.runs(limit=20):
        runs.append({**run_record(r, rec.events(r["id"])), "verdicts": rec.verdicts(run_id=r["id"], limit=20)})
    judged = rec.verdicts(limit=limit)
    return {"gate": gate, "verdicts": verdicts, "canary_runs": runs, "canary_verdicts": judged}


def canary_distributions(loaded: LoadedSpec, store: Store, verdict_id: int) -> dict:
    """Baseline against canary: each distribution metric's buckets over the verdict's window."""
    from vigil.deploy.canary.records import Records
    from vigil.selector import parse_selector

    got = [v for v in Records(store).verdicts(limit=1000) if v["id"] == verdict_id]
    if not got:
        raise NotFoundError(f"no canary verdict {verdict_id}")
    v = got[0]
    canary = loaded.spec.canary
    source = open_source(loaded.spec.telemetry, store)
    lo = int(parse_time(v["from"]).timestamp()) // 60
    hi = now_minute(parse_time(v["to"]))
    series: list[dict[str, Any]] = []
    metrics = []
    for m in (canary.metrics if canary else []):
        if m.metric is None:
            continue
        sides = {}
        for side in ("baseline", "canary"):
            sel = parse_selector("x{" + v[side] + "}") if v[side] else None
            buckets = source.observation_buckets(m.metric.with_matchers(sel.matchers if sel else ()), lo, hi)
            from vigil.telemetry.ingest import INF_NS

            sides[side] = [[None if le >= INF_NS else le / 1e9, n] for le, n in buckets]
            total = sum(n for _, n in buckets) or 1
            fin = [(le, n) for le, n in buckets if le < INF_NS]
            series.append({"name": f"{m.name}: {side}", "x": [le / 1e9 for le, _ in fin], "y": [n / total for _, n in fin],
                           "style": "bar"})
        metrics.append({"metric": m.name, **sides})
    return {
        "verdict": v,
        "metrics": metrics,
        "chart": {"title": "Baseline and canary latency distributions (share of observations per bucket)", "unit": "ratio",
                  "x_unit": "seconds", "x_log": True, "series": series},
    }


# -- DR ------------------------------------------------------------------------------------------


def dr(loaded: LoadedSpec, store: Store, at: datetime) -> dict:
    from vigil.dr.records import backup_runs, drill_history

    drills = drill_history(store, limit=50)
    backups = backup_runs(store, limit=20)
    source = open_source(loaded.spec.telemetry, store)
    now = now_minute(at)
    status = []
    from vigil.selector import parse_selector

    for metric, what in (("pgbackrest_backup_age_seconds", "backup age"), ("pg_archive_lag_seconds", "archive lag")):
        for s in store.series():
            if s.metric != metric:
                continue
            sel = parse_selector(metric + "{" + ",".join(f'{k}="{val}"' for k, val in sorted(s.labels.items())) + "}")
            arr = source.gauge_max(sel, now - 60, now)
            vals = [float(x) for x in arr if x == x]
            status.append({"what": what, "metric": metric, "labels": dict(s.labels), "value": vals[-1] if vals else None})
    return {"at": isoformat(at), "drills": drills, "backups": backups, "backup_status": status}


def drill_chart(store: Store) -> dict:
    from vigil.dr.records import drill_history

    runs = [d for d in reversed(drill_history(store, limit=200)) if d["finished_at"]]
    series: list[dict[str, Any]] = []
    for what in ("rto", "rpo"):
        for name in sorted({d["name"] for d in runs}):
            mine = [d for d in runs if d["name"] == name]
            x = [(d["finished_at"] or "")[:16].replace("T", " ") for d in mine]  # (all finished)
            got = [(d["rto_seconds"], d["objectives"]["rto_seconds"]) if what == "rto" else (d["rpo_seconds"], d["objectives"]["rpo_seconds"])
                   for d in mine]
            series.append({"name": f"{what.upper()} {name}", "x": x, "y": [a for a, _ in got], "style": "marker", "axis": what})
            series.append({"name": f"{what.upper()} objective {name}", "x": x, "y": [o for _, o in got], "style": "dash", "axis": what})
    return {"drills": runs, "chart": {"title": "Drills: RTO and RPO achieved against the objectives", "unit": "seconds",
                                     "log_y": True, "series": series}}


def backup_chart(loaded: LoadedSpec, store: Store, grid: Grid, picked: dict) -> dict:
    from vigil.dashboards.spec import Panel

    queries = []
    for s in store.series():
        if s.metric in ("pgbackrest_backup_age_seconds", "pg_archive_lag_seconds"):
            sel = s.metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}"
            label = ("backup age repo " + s.labels.get("repo", "?")) if s.metric.startswith("pgbackrest") else "archive lag"
            queries.append({"label": label, "max": sel})
    thresholds = []
    if loaded.spec.drills:
        thresholds = [{"value": float(min(d.objectives.rpo for d in loaded.spec.drills)), "label": "RPO objective"}]
    if not queries:
        return {"series": [], **picked, "chart": {"title": "Backup age and archive lag", "unit": "seconds", "series": []}}
    panel = Panel.model_validate({"title": "Backup age and archive lag", "unit": "seconds", "queries": queries[:8], "thresholds": thresholds})
    out = panel_series(open_source(loaded.spec.telemetry, store), panel, grid)
    x = [x_text(m) for m in grid.points]
    out.update(picked)
    out["chart"] = {
        "title": panel.title, "unit": "seconds", "log_y": True,
        "series": [{"name": s["label"], "x": x, "y": [p[1] for p in s["points"]], "style": "line"} for s in out["series"]]
        + [{"name": t["label"], "x": [x[0], x[-1]], "y": [t["value"]] * 2, "style": "dash"} for t in thresholds],
    }
    return out


def drill_report(store: Store, run_id: int) -> dict:
    import sqlalchemy as sa

    from vigil.dr import tables as dr_tables
    from vigil.store import db_errors

    with db_errors("reading drill records failed"), store.engine.connect() as conn:
        row = conn.execute(sa.select(dr_tables.drill_runs).where(dr_tables.drill_runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no drill run {run_id}")
    d = dict(row._mapping)
    report = json.loads(d["report"]) if d.get("report") else None
    return {"id": d["id"], "name": d["name"], "status": d["status"], "started_at": d["started_at"], "finished_at": d["finished_at"],
            "report": report, "gaps": (report or {}).get("gaps", [])}


# -- alerts --------------------------------------------------------------------------------------


def alerts(store: Store, at: datetime) -> dict:
    from vigil.alerting.routes import alerts_data
    from vigil.alerting.silences import list_silences

    active = alerts_data(store)
    history = [a for a in alerts_data(store, all_=True)["alerts"] if a["state"] == "resolved"]
    silences = [s.to_dict(at) for s in list_silences(store, at=at, limit=200)]
    return {"at": isoformat(at), "evaluated_at": active["evaluated_at"], "leader": active["leader"], "active": active["alerts"],
            "history": history[:200], "silences": silences}


def slo_alerts(store: Store, slo: str) -> list[dict]:
    from vigil.alerting.routes import alerts_data

    return [a for a in alerts_data(store, all_=True)["alerts"] if a["labels"].get("slo") == slo]
