"""``vigil export prometheus-rules``: the spec's SLOs as recording rules and its alerts as
Prometheus alerting rules (``promtool check rules`` accepts the file).

Recording rules, one per SLO and window of its alert-window catalog, named
``vigil:slo_error_ratio:rate<window>`` with the labels ``slo`` and ``service``: a ratio of sums
over the window, computed from the raw counters for every window (never a mean of shorter
windows' ratios), ``(valid - good) / clamp_min(valid, 1e-12)`` with ``good`` defaulting to
``vector(0)``: zero traffic is 0, never NaN, and no series at all is no sample (no data).

Alert rules keep vigil's labels (``alertname``, ``service``, ``severity``, ``slo``, the rule's
own), so an alert has the same fingerprint in Prometheus and in vigil, and vigil's ``for`` and
``keep_firing_for`` (Prometheus 2.42 and later). Metric names are vigil's; counters get
``counter_suffix`` appended (``_total`` when Prometheus scrapes them with it), latency metrics are
histograms (``<name>_bucket`` with ``le``, ``<name>_count``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Sequence

from vigil.alerting.export import Exported
from vigil.alerting.spec import AlertRule, slo_window_seconds
from vigil.selector import Matcher, Selector
from vigil.units import format_duration

EPSILON = "1e-12"
RECORD = "vigil:slo_error_ratio:rate{window}"


def _subquery(window: Decimal, step: str = "1m") -> str:
    """``[<window - 1s>:<step>]``: the steps of the last ``window``, one per vigil minute. A range
    one second short keeps the step at the window's start out, so Prometheus 2 (ranges closed on
    the left) and 3 (open) both see window / step points, as vigil counts minutes."""
    return f"[{format_duration(window - 1)}:{step}]"


def _num(d: Decimal) -> str:
    s = f"{d.normalize():f}"
    return s if s not in ("-0",) else "0"


def _sel(sel: Selector, suffix: str = "", extra: tuple[Matcher, ...] = ()) -> str:
    return str(Selector(sel.metric + suffix, sel.matchers + extra))


def _le_values(seconds: Decimal) -> list[str]:
    """How clients print a bucket bound: Go's shortest form (``0.3``, ``10``) and Python's
    (``10.0``)."""
    go = f"{seconds.normalize():f}"
    out = [go]
    if "." not in go:
        out.append(go + ".0")
    return out


def _le_matcher(seconds: Decimal) -> Matcher:
    alts = [re.escape(v) for v in _le_values(seconds)]
    return Matcher.make("le", "=~", "|".join(alts))


def _window_names(slo: Any) -> list[str]:
    from vigil.slo.alert_windows import alert_windows

    names: list[str] = []
    for w in alert_windows(slo_window_seconds(slo)):
        for n in (w.long, w.short):
            if n not in names:
                names.append(n)
    return names


def error_ratio_expr(slo: Any, window: str, counter_suffix: str = "") -> str:
    """The SLO's error ratio over ``window`` as PromQL (see the module)."""
    sli = slo.sli
    if sli.ratio is not None:
        r = sli.ratio

        def rate(sel: Selector) -> str:
            inner = f"rate({_sel(sel, counter_suffix)}[{window}])"
            if r.exclude is not None and r.exclude.metric == sel.metric:
                # vigil excludes series matching `exclude` among those of the same metric
                inner += f" unless rate({_sel(r.exclude, counter_suffix)}[{window}])"
            return f"sum({inner})"

        valid, good = rate(r.total), rate(r.good)
        return f"clamp_min({valid} - ({good} or vector(0)), 0) / clamp_min({valid}, {EPSILON})"
    if sli.latency is not None:
        lat = sli.latency
        valid = f"sum(rate({_sel(lat.metric, '_count')}[{window}]))"
        good = f"sum(rate({_sel(lat.metric, '_bucket', (_le_matcher(lat.threshold),))}[{window}]))"
        return f"clamp_min({valid} - ({good} or vector(0)), 0) / clamp_min({valid}, {EPSILON})"
    f = sli.freshness
    assert f is not None
    step = format_duration(f.slice)
    per = f"max(max_over_time({_sel(f.metric)}[{step}]))"
    from vigil.units import parse_duration

    slices = _num(parse_duration(window) / f.slice)
    if f.missing == "bad":
        return f"1 - (sum_over_time(({per} <= bool {_num(f.threshold)})[{window}:{step}]) or vector(0)) / {slices}"
    if f.missing == "good":
        return f"(sum_over_time(({per} > bool {_num(f.threshold)})[{window}:{step}]) or vector(0)) / {slices}"
    return (
        f"sum_over_time(({per} > bool {_num(f.threshold)})[{window}:{step}])"
        f" / clamp_min(count_over_time(({per})[{window}:{step}]), 1)"
    )


def recording_rules(slos: Sequence[Any], counter_suffix: str = "") -> list[dict]:
    out = []
    for slo in slos:
        for w in _window_names(slo):
            out.append(
                {
                    "record": RECORD.format(window=w),
                    "expr": error_ratio_expr(slo, w, counter_suffix),
                    "labels": {"slo": slo.name, "service": slo.service},
                }
            )
    return out


# -- alerts --------------------------------------------------------------------------------------------

_VALUE = '{{ printf "%.4g" $value }}'


def _template(text: str, static: dict[str, str], dynamic: dict[str, str]) -> str:
    def sub(m: "re.Match[str]") -> str:
        name = m.group(1).strip().lstrip("$")
        if name in dynamic:
            return dynamic[name]
        if name in static:
            return static[name]
        if name.startswith("labels."):
            return "{{ $labels." + name[7:] + " }}"
        return m.group(0)

    return re.sub(r"\{\{\s*([^{}]*?)\s*\}\}", sub, text)


def _month_catalog_same() -> bool:
    """Whether every month length (28 to 31 days) uses the same conditions (so one expression
    with ``days_in_month()`` serves every month)."""
    from vigil.slo.alert_windows import alert_windows

    shapes = {
        tuple((w.severity, w.long, w.short, w.budget_share) for w in alert_windows(d * 86400)) for d in (28, 29, 30, 31)
    }
    return len(shapes) == 1


def _burn_alerts(rule: AlertRule, slo: Any, notes: list[str]) -> list[dict]:
    from vigil.slo.alert_windows import alert_windows

    body = rule.burn_rate
    assert body is not None
    budget = _num(Decimal(1) - slo.objective)
    monthly = slo.window.calendar == "month" and _month_catalog_same()
    if slo.window.calendar == "quarter":
        notes.append(
            f"{rule.name}: a calendar quarter is 90-92 days; Prometheus' thresholds are scaled to 90 days (vigil scales to the quarter's own length)"
        )
    if slo.window.calendar is not None and slo.window.tz != "UTC":
        notes.append(f"{rule.name}: Prometheus counts calendar periods in UTC, vigil in {slo.window.tz}")
    conds = alert_windows(slo_window_seconds(slo))
    sevs = body.severities or list(dict.fromkeys(c.severity for c in conds))
    out = []
    for sev in sevs:
        mine = [c for c in conds if c.severity == sev]
        parts = []
        for c in mine:
            long_rec = f'{RECORD.format(window=c.long)}{{slo="{slo.name}"}}'
            short_rec = f'{RECORD.format(window=c.short)}{{slo="{slo.name}"}}'
            if monthly:
                t = f"on() group_left() ({_num(c.budget_share)} * 86400 * days_in_month(vector(time())) / {c.long_seconds})"
            else:
                t = _num(c.threshold)
            parts.append(f"({long_rec} / {budget} > {t} and {short_rec} / {budget} > {t})")
        expr = " or ".join(parts)
        labels = {"severity": sev, "service": slo.service, "slo": slo.name, **rule.labels}
        listing = ", ".join(
            f"{c.long}/{c.short} above {'%s x (days in the month)/30' % _num(c.threshold * 30 * 86400 / slo_window_seconds(slo)) if monthly else _num(c.threshold)}x"
            for c in mine
        )
        static = {
            "slo": slo.name,
            "objective": f"{(slo.objective * 100).normalize():f}%",
            "window": slo.window.describe(),
            "long_window": "/".join(c.long for c in mine),
            "short_window": "/".join(c.short for c in mine),
            "threshold": "/".join(_num(c.threshold) for c in mine),
            "budget_share": "/".join(f"{(c.budget_share * 100).normalize():f}%" for c in mine),
            "condition": " or ".join(c.name for c in mine),
            "short_burn_rate": "(see the recording rules)",
        }
        dynamic = {"value": _VALUE, "long_burn_rate": _VALUE}
        defaults = {
            "summary": "{{ slo }} is burning its error budget too fast ({{ severity }})",
            "description": "{{ slo }} ({{ objective }}, {{ window }}): burn rate {{ value }}x over the long window of the first "
            f"condition that holds ({listing}; both windows must burn above the threshold)",
        }
        out.append(_alert(rule, expr, labels, defaults, static, dynamic))
    return out


def _alert(rule: AlertRule, expr: str, labels: dict, defaults: dict, static: dict, dynamic: dict) -> dict:
    static = {**static, "rule": rule.name, "service": labels.get("service", ""), "severity": labels.get("severity", ""),
              "for": format_duration(rule.for_)}
    static.update({f"labels.{k}": v for k, v in labels.items()})
    ann = {k: _template(v, static, dynamic) for k, v in defaults.items()}
    ann.update({k: _template(v, static, dynamic) for k, v in rule.annotations.items()})
    if rule.runbook:
        ann["runbook_url"] = rule.runbook
    out: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if rule.for_:
        out["for"] = format_duration(rule.for_)
    if rule.keep_firing_for:
        out["keep_firing_for"] = format_duration(rule.keep_firing_for)
    out["labels"] = labels
    out["annotations"] = ann
    return out


def _missing(rule: AlertRule, expr: str, absent_of: str, notes: list[str]) -> str:
    if rule.missing == "alert":
        return f"({expr}) or on() sum(absent_over_time({absent_of}))"
    if rule.missing == "keep":
        notes.append(f"{rule.name}: missing: keep has no PromQL equivalent; exported as missing: ok (no data, no alert)")
    return expr


def _threshold_alert(rule: AlertRule, counter_suffix: str, notes: list[str]) -> dict:
    b = rule.threshold
    assert b is not None
    w = format_duration(b.over)
    agg = b.agg
    if b.type == "gauge":
        sel = _sel(b.metric)
        per_minute = f"max(max_over_time({sel}[1m]))"
        value = {
            "max": f"max(max_over_time({sel}[{w}]))",
            "min": f"min_over_time({per_minute}{_subquery(b.over)})",
            "avg": f"avg_over_time({per_minute}{_subquery(b.over)})",
            "last": per_minute,
        }[agg]
        absent_of = f"{sel}[{w}]"
    elif b.type == "counter":
        sel = _sel(b.metric, counter_suffix)
        per_minute = f"sum(rate({sel}[1m]))"
        value = {
            "sum": f"sum(increase({sel}[{w}]))",
            "rate": f"sum(rate({sel}[{w}]))",
            "max": f"max_over_time({per_minute}{_subquery(b.over)})",
            "min": f"min_over_time({per_minute}{_subquery(b.over)})",
            "avg": f"avg_over_time({per_minute}{_subquery(b.over)})",
            "last": per_minute,
        }[agg]
        absent_of = f"{sel}[{w}]"
    else:
        if agg == "quantile":
            assert b.quantile is not None
            value = f"histogram_quantile({_num(b.quantile)}, sum by (le) (rate({_sel(b.metric, '_bucket')}[{w}])))"
        elif agg == "rate":
            value = f"sum(rate({_sel(b.metric, '_count')}[{w}]))"
        else:
            value = f"sum(increase({_sel(b.metric, '_count')}[{w}]))"
        absent_of = f"{_sel(b.metric, '_count')}[{w}]"
    expr = _missing(rule, f"{value} {b.op} {_num(b.value)}", absent_of, notes)
    labels = {"severity": rule.severity or "page", "service": rule.service, **rule.labels}
    unit = "/s" if (b.type == "counter" and agg != "sum") or agg == "rate" else ("s" if agg == "quantile" else "")
    what = f"p{(b.quantile * 100).normalize():f}" if agg == "quantile" and b.quantile is not None else agg
    static = {"metric": str(b.metric), "aggregate": what, "over": w, "op": b.op, "threshold": _num(b.value) + unit,
              "quantile": "" if b.quantile is None else f"{(b.quantile * 100).normalize():f}%"}
    dynamic = {"value": _VALUE + unit}
    defaults = {
        "summary": "{{ rule }}: {{ metric }} {{ aggregate }} over {{ over }} is {{ value }} ({{ op }} {{ threshold }})",
        "description": "{{ aggregate }} of {{ metric }} over the last {{ over }} is {{ value }}; the rule fires when it is "
        "{{ op }} {{ threshold }}" + (" for {{ for }}" if rule.for_ else ""),
    }
    return _alert(rule, expr, labels, defaults, static, dynamic)


def _spike_alert(rule: AlertRule, counter_suffix: str, notes: list[str]) -> dict:
    b = rule.spike
    assert b is not None
    sel = _sel(b.metric, counter_suffix)
    w, base = format_duration(b.over), format_duration(b.baseline)
    rate = f"sum(rate({sel}[{w}]))"
    expr = f"{rate} > {_num(b.factor)} * quantile_over_time(0.5, {rate}{_subquery(b.baseline)}) and {rate} > {_num(b.floor)}"
    expr = _missing(rule, expr, f"{sel}[{w}]", notes)
    labels = {"severity": rule.severity or "page", "service": rule.service, **rule.labels}
    static = {"metric": str(b.metric), "over": w, "baseline": base, "factor": _num(b.factor), "floor": _num(b.floor) + "/s",
              "baseline_rate": f"(the median of {rate} over {base})", "threshold": f"max({_num(b.factor)}x the median, {_num(b.floor)}/s)"}
    dynamic = {"value": _VALUE + "/s"}
    defaults = {
        "summary": "{{ rule }}: {{ metric }} at {{ value }}, {{ factor }}x above its {{ baseline }} median",
        "description": "{{ metric }} rate over {{ over }} is {{ value }}; the rule fires above {{ factor }}x its median over "
        "the last {{ baseline }} and above {{ floor }}",
    }
    return _alert(rule, expr, labels, defaults, static, dynamic)


def _absent_alert(rule: AlertRule, notes: list[str]) -> dict:
    b = rule.absent
    assert b is not None
    w = format_duration(b.over)
    expr = f"sum(absent_over_time({_sel(b.metric)}[{w}]))"
    notes.append(
        f"{rule.name}: absent_over_time({b.metric.metric}) looks for that name as written: if Prometheus stores it as a "
        "histogram (<name>_count) or a counter with a suffix (<name>_total), point the rule's selector at that name"
    )
    labels = {"severity": rule.severity or "page", "service": rule.service, **rule.labels}
    static = {"metric": str(b.metric), "over": w}
    defaults = {
        "summary": "{{ rule }}: no sample of {{ metric }} for {{ over }}",
        "description": "no series matching {{ metric }} reported a sample in the last {{ over }}",
    }
    return _alert(rule, expr, labels, defaults, static, {"value": _VALUE})


def _event_alert(rule: AlertRule, notes: list[str]) -> dict:
    b = rule.event
    assert b is not None
    w = format_duration(b.firing_for)
    expr = f"sum(increase({b.selector()}[{w}])) > 0"
    labels = {"severity": rule.severity or "page", "service": rule.service, **rule.labels}
    static = {"event": b.event, "firing_for": w}
    count = '{{ printf "%.0f" $value }}'
    defaults = {
        "summary": "{{ rule }}: {{ event }} ({{ count }} in the last {{ firing_for }})",
        "description": "{{ count }} {{ event }} event(s) were pushed in the last {{ firing_for }} (vigil_event_total)",
    }
    return _alert(rule, expr, labels, defaults, static, {"value": count, "count": count})


def prometheus_rules(rules: Sequence[AlertRule], slos: Sequence[Any], *, counter_suffix: str = "") -> Exported:
    """The rule file as plain data: ``{"groups": [recordings, alerts]}``, and notes."""
    notes: list[str] = []
    by_name = {s.name: s for s in slos}
    alerts: list[dict] = []
    for r in rules:
        if r.burn_rate is not None:
            alerts += _burn_alerts(r, by_name[r.burn_rate.slo], notes)
        elif r.threshold is not None:
            alerts.append(_threshold_alert(r, counter_suffix, notes))
        elif r.spike is not None:
            alerts.append(_spike_alert(r, counter_suffix, notes))
        elif r.absent is not None:
            alerts.append(_absent_alert(r, notes))
        else:
            alerts.append(_event_alert(r, notes))
    groups = []
    rec = recording_rules(slos, counter_suffix)
    if rec:
        groups.append({"name": "vigil-slo-error-ratios", "rules": rec})
    if alerts:
        groups.append({"name": "vigil-alerts", "rules": alerts})
    return Exported({"groups": groups}, notes)
