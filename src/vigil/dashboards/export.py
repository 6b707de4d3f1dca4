"""``vigil export grafana | cloudwatch-dashboard``: the spec's dashboards (and an SLO overview) for
the tools users keep. Pure: spec in, JSON-ready documents and notes out.

**Grafana** (dashboard JSON model, Prometheus data source picked by a ``datasource`` variable):
one dashboard per ``dashboards:`` entry plus one for the SLOs. Queries in PromQL:

* ``rate``: ``sum(rate(sel[$__rate_interval]))``;
* ``ratio``: ``sum(rate(num[$__rate_interval])) / sum(rate(den[$__rate_interval]))`` (a ratio of sums);
* ``quantile``: ``histogram_quantile(q, sum by (le) (rate(metric_bucket{...}[$__rate_interval])))``;
* ``last``: ``max(sel)``; ``max``: ``max(max_over_time(sel[$__interval]))`` (the highest series,
  as vigil reads gauges).

Counter names get ``counter_suffix`` (``_total`` when Prometheus scrapes them with it).

**CloudWatch** (the dashboard body of ``PutDashboard``): a selector is one metric in ``namespace``
whose dimensions are its equality matchers, as in ``vigil export cloudwatch-alarms``; a selector
with ``!=``, ``=~`` or ``!~`` cannot be expressed and its line is left out, with a note. ``rate`` is
``SUM/PERIOD``, ``ratio`` metric math over two sums, ``quantile`` the ``pNN`` statistic, ``last`` and
``max`` the ``Maximum`` statistic (CloudWatch has no "last" statistic: noted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vigil.dashboards.spec import Dashboard, Panel, PanelQuery
from vigil.selector import Selector

GRAFANA_SCHEMA_VERSION = 39
GRAFANA_UNITS = {"seconds": "s", "ratio": "percentunit", "per_second": "reqps", "count": "short", "bytes": "bytes", "percent": "percent"}


@dataclass
class Exported:
    document: Any
    notes: list[str] = field(default_factory=list)


def _promql_sel(sel: Selector, suffix: str = "") -> str:
    inner = ",".join(f'{m.name}{m.op}"{_esc(m.value)}"' for m in sel.matchers)
    return f"{sel.metric}{suffix}" + (f"{{{inner}}}" if inner else "")


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


def promql(q: PanelQuery, counter_suffix: str = "") -> str:
    """The PromQL of a panel query (see the module's docstring)."""
    if q.rate is not None:
        return f"sum(rate({_promql_sel(q.rate, counter_suffix)}[$__rate_interval]))"
    if q.ratio is not None:
        n = _promql_sel(q.ratio.numerator, counter_suffix)
        d = _promql_sel(q.ratio.denominator, counter_suffix)
        return f"sum(rate({n}[$__rate_interval])) / sum(rate({d}[$__rate_interval]))"
    if q.quantile is not None:
        b = _promql_sel(q.quantile.metric, "_bucket")
        return f"histogram_quantile({q.quantile.q.normalize():f}, sum by (le) (rate({b}[$__rate_interval])))"
    if q.last is not None:
        return f"max({_promql_sel(q.last)})"
    assert q.max is not None
    return f"max(max_over_time({_promql_sel(q.max)}[$__interval]))"


def _grafana_panel(p: Panel, pid: int, x: int, y: int, counter_suffix: str) -> dict:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": "red", "value": float(t.value)} for t in p.thresholds]
    return {
        "id": pid,
        "type": "timeseries",
        "title": p.title,
        "description": p.description or "",
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": promql(q, counter_suffix), "legendFormat": q.label, "range": True,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for i, q in enumerate(p.queries)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": GRAFANA_UNITS[p.unit],
                "thresholds": {"mode": "absolute", "steps": steps},
                "custom": {"thresholdsStyle": {"mode": "dashed" if p.thresholds else "off"}},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}, "tooltip": {"mode": "multi", "sort": "none"}},
    }


def _grafana_dashboard(uid: str, title: str, panels: list[dict], tags: list[str]) -> dict:
    return {
        "uid": uid[:40],
        "title": title,
        "tags": tags,
        "timezone": "utc",
        "editable": True,
        "schemaVersion": GRAFANA_SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
                                 "current": {}, "hide": 0, "refresh": 1}]},
        "annotations": {"list": []},
        "panels": panels,
    }


def _slo_grafana_panels(slos: list[Any], counter_suffix: str, start_id: int) -> tuple[list[dict], list[str]]:
    out, notes = [], []
    pid = start_id
    for i, s in enumerate(slos):
        sli = s.sli
        budget = float(1 - s.objective)
        if sli.ratio is not None:
            r = sli.ratio

            def rate(sel: Selector) -> str:
                return f"sum(rate({_promql_sel(sel, counter_suffix)}[$__rate_interval]))"

            tot = rate(r.total) if r.exclude is None else f"({rate(r.total)} - {rate(r.exclude)})"
            expr = f"(({tot} - {rate(r.good)}) / {tot}) / {budget}"
            if r.exclude is not None:
                notes.append(f"SLO {s.name}: excluded events ({r.exclude}) are taken out of the total; the export assumes none of them is good")
        elif sli.latency is not None:
            m = sli.latency.metric
            le = f"{sli.latency.threshold.normalize():f}"
            b = _promql_sel(Selector(m.metric, m.matchers), "_bucket")
            inner = b[:-1] + f',le="{le}"}}' if "{" in b else f'{b}{{le="{le}"}}'
            cnt = _promql_sel(m, "_count")
            expr = f"(1 - sum(rate({inner}[$__rate_interval])) / sum(rate({cnt}[$__rate_interval]))) / {budget}"
        else:
            notes.append(f"SLO {s.name}: a freshness (time-slice) SLI has no burn-rate panel in the Grafana export")
            continue
        steps = [{"color": "green", "value": None}, {"color": "orange", "value": 1}, {"color": "red", "value": 14.4}]
        out.append({
            "id": pid, "type": "timeseries", "title": f"{s.name}: burn rate", "description": s.description or "",
            "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "targets": [{"refId": "A", "expr": expr, "legendFormat": "burn rate", "range": True,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}],
            "fieldConfig": {"defaults": {"unit": "none", "thresholds": {"mode": "absolute", "steps": steps},
                                         "custom": {"thresholdsStyle": {"mode": "dashed"}}}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}, "tooltip": {"mode": "multi", "sort": "none"}},
        })
        pid += 1
    return out, notes


def grafana(dashboards: list[Dashboard], slos: list[Any], counter_suffix: str = "") -> Exported:
    """Grafana dashboard JSON models: one per spec dashboard, then one of the SLOs' burn rates."""
    docs, notes = [], []
    for d in dashboards:
        panels = [_grafana_panel(p, i + 1, (i % 2) * 12, (i // 2) * 8, counter_suffix) for i, p in enumerate(d.panels)]
        docs.append(_grafana_dashboard(f"vigil-{d.name}", d.title, panels, ["vigil"] + ([d.service] if d.service else [])))
    if slos:
        panels, n = _slo_grafana_panels(slos, counter_suffix, 1)
        notes += n
        docs.append(_grafana_dashboard("vigil-slos", "SLOs: burn rates", panels, ["vigil", "slo"]))
    return Exported({"dashboards": docs}, notes)


# -- CloudWatch ---------------------------------------------------------------------------------


def _cw_dims(sel: Selector) -> list[str] | None:
    out: list[str] = []
    for m in sel.matchers:
        if m.op != "=":
            return None
        out += [m.name, m.value]
    return out


def _cw_id(text: str) -> str:
    s = re.sub(r"[^a-zA-Z0-9_]", "_", text).lower()
    return s if s[:1].isalpha() else "m" + s


def _cw_widget(p: Panel, namespace: str, region: str, x: int, y: int, notes: list[str], where: str) -> dict | None:
    metrics: list[list[Any]] = []
    stat = "Sum"
    n = 0
    def metric(label: str, sel: Selector, opts: dict) -> list[Any] | None:
        dims = _cw_dims(sel)
        if dims is None:
            notes.append(f"{where}: {label}: selector {sel} has a matcher other than '=': CloudWatch matches dimensions by exact value; publish it as its own metric")
            return None
        return [namespace, sel.metric, *dims, opts]

    for q in p.queries:
        nonlocal_n = n
        if q.rate is not None:
            mid = f"m{nonlocal_n}"
            row = metric(q.label, q.rate, {"id": mid, "stat": "Sum", "visible": False})
            if row is None:
                continue
            metrics.append(row)
            metrics.append([{"expression": f"{mid}/PERIOD({mid})", "label": q.label, "id": f"e{nonlocal_n}"}])
        elif q.ratio is not None:
            a, b = f"m{nonlocal_n}a", f"m{nonlocal_n}b"
            ra = metric(q.label, q.ratio.numerator, {"id": a, "stat": "Sum", "visible": False})
            rb = metric(q.label, q.ratio.denominator, {"id": b, "stat": "Sum", "visible": False})
            if ra is None or rb is None:
                continue
            metrics += [ra, rb, [{"expression": f"IF({b} > 0, {a} / {b})", "label": q.label, "id": f"e{nonlocal_n}"}]]
        elif q.quantile is not None:
            pct = (q.quantile.q * 100).normalize()
            row = metric(q.label, q.quantile.metric, {"stat": f"p{pct:f}", "label": q.label})
            if row is None:
                continue
            metrics.append(row)
            stat = f"p{pct:f}"
        else:
            sel = q.last if q.last is not None else q.max
            assert sel is not None
            row = metric(q.label, sel, {"stat": "Maximum", "label": q.label})
            if row is None:
                continue
            metrics.append(row)
            stat = "Maximum"
            if q.last is not None:
                notes.append(f"{where}: {q.label}: CloudWatch has no 'last' statistic; the widget shows the Maximum of each period")
        n += 1
    if not metrics:
        notes.append(f"{where}: no line of panel {p.title!r} can be expressed in CloudWatch; the panel is left out")
        return None
    props: dict[str, Any] = {
        "title": p.title, "view": "timeSeries", "stacked": False, "region": region, "period": 300, "stat": stat, "metrics": metrics,
    }
    if p.thresholds:
        props["annotations"] = {"horizontal": [{"label": t.label, "value": float(t.value)} for t in p.thresholds]}
    if p.unit in ("ratio", "percent"):
        props["yAxis"] = {"left": {"min": 0}}
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": props}


def cloudwatch_dashboard(dashboards: list[Dashboard], *, namespace: str = "vigil", region: str = "eu-west-1") -> Exported:
    """The ``DashboardBody`` of one CloudWatch dashboard holding every spec dashboard: a text widget
    heading each, then its panels."""
    widgets: list[dict] = []
    notes: list[str] = []
    y = 0
    for d in dashboards:
        widgets.append({"type": "text", "x": 0, "y": y, "width": 24, "height": 1, "properties": {"markdown": f"## {d.title}"}})
        y += 1
        i = 0
        for j, p in enumerate(d.panels):
            w = _cw_widget(p, namespace, region, (i % 2) * 12, y + (i // 2) * 6, notes, f"dashboards.{d.name}.panels[{j}]")
            if w is not None:
                widgets.append(w)
                i += 1
        y += ((i + 1) // 2) * 6
    return Exported({"widgets": widgets}, notes)
