"""``vigil export cloudwatch-alarms``: the spec's alerts as CloudWatch alarms, each the keyword
arguments of boto3's ``put_metric_alarm`` / ``put_composite_alarm``.

The contract with CloudWatch: a selector is published as one metric in ``namespace`` named like
the metric, whose dimensions are the selector's equality matchers, exactly (``queue_depth{queue=
"outbox"}`` is ``queue_depth`` with the dimension ``queue=outbox``; ``checkout_attempts`` alone is
the metric without dimensions, the sum over every outcome). CloudWatch matches dimensions by exact
value, so a selector with ``!=``, ``=~`` or ``!~`` cannot be expressed: such a rule is left out,
with a note saying what to publish instead.

Mapping:

* ``for`` and the rule's window become M of N: the period is the rule's window, and the alarm needs
  ``M = N = 1 + for / window`` breaching periods in a row (the condition held over the window, for
  ``for``);
* ``missing: ok | alert | keep`` is ``TreatMissingData: notBreaching | breaching | ignore``;
* a burn-rate rule is one metric-math alarm per window (``IF(valid > 0, (valid - good) / valid /
  budget, 0)``: no traffic is 0, never a missing point) and a composite alarm per severity:
  ``(ALARM(long) AND ALARM(short)) OR ...``. CloudWatch periods stop at one day, so a condition
  with a longer window (the 3d ticket) is left out, with a note;
* ``spike`` (a rate against its own median) has no CloudWatch equivalent short of anomaly
  detection, which is another model: left out, with a note.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Sequence

from vigil.alerting.export import Exported
from vigil.alerting.spec import AlertRule, slo_window_seconds
from vigil.selector import Selector
from vigil.units import format_duration

MAX_PERIOD = 86400
OPS = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
}
MISSING = {"ok": "notBreaching", "alert": "breaching", "keep": "ignore"}
NAME_MAX = 255


class NotExpressible(ValueError):
    """The rule (or a part of it) has no CloudWatch equivalent; the message says why."""


def _dims(sel: Selector) -> list[dict]:
    bad = [m for m in sel.matchers if m.op != "="]
    if bad:
        raise NotExpressible(
            f"{sel}: CloudWatch dimensions match exact values, so {', '.join(str(m) for m in bad)} cannot be expressed; "
            "publish a dimension that holds the distinction (e.g. code_class=5xx) and select it with ="
        )
    return [{"Name": m.name, "Value": m.value} for m in sorted(sel.matchers, key=lambda m: m.name)]


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _disjoint(a: Selector, b: Selector) -> bool:
    """No series can match both: an equality on one label with different values."""
    ea = {m.name: m.value for m in a.matchers if m.op == "="}
    return any(m.op == "=" and m.name in ea and ea[m.name] != m.value for m in b.matchers)


def _metric(sel: Selector, namespace: str) -> dict:
    return {"Namespace": namespace, "MetricName": sel.metric, "Dimensions": _dims(sel)}


def _num(d: Decimal) -> float:
    return float(d)


def _name(*parts: str) -> str:
    name = "-".join(p for p in parts if p)
    return name[:NAME_MAX]


def _id(text: str) -> str:
    """A metric-math id: starts with a lowercase letter, then letters, digits and '_'."""
    s = re.sub(r"[^a-zA-Z0-9_]", "_", text).lower()
    return s if s[:1].isalpha() else "m" + s


def _common(rule: AlertRule, actions: Sequence[str], description: str) -> dict:
    out: dict[str, Any] = {"AlarmDescription": description[:1024], "ActionsEnabled": bool(actions)}
    if actions:
        out["AlarmActions"] = list(actions)
        out["OKActions"] = list(actions)
    tags = {"vigil_rule": rule.name, "service": rule.service or "", "severity": rule.severity or "page", **rule.labels}
    out["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items() if v]
    return out


def _m_of_n(rule: AlertRule, period: int) -> dict:
    """M = N = 1 + for / period (rounded up). CloudWatch evaluates at most a day of periods
    shorter than an hour, and at most 7 days otherwise."""
    n = 1 + int(rule.for_) // period + (1 if int(rule.for_) % period else 0)
    limit = 86400 if period < 3600 else 604800
    if n * period > limit:
        raise NotExpressible(
            f"for {format_duration(rule.for_)} needs {n} periods of {format_duration(period)}: CloudWatch evaluates at most "
            f"{format_duration(limit)} of them"
        )
    return {"EvaluationPeriods": n, "DatapointsToAlarm": n}


def _threshold(rule: AlertRule, namespace: str, actions: Sequence[str], notes: list[str]) -> list[dict]:
    b = rule.threshold
    assert b is not None
    if b.op not in OPS:
        raise NotExpressible(f"CloudWatch compares with >, >=, < or <=, not {b.op}")
    period = int(b.over)
    if period > MAX_PERIOD:
        raise NotExpressible(f"a window of {format_duration(b.over)} is longer than CloudWatch's longest period (1 day)")
    agg = b.agg
    base: dict[str, Any] = {
        "AlarmName": _name(rule.name),
        **_common(rule, actions, f"vigil rule {rule.name}: {b.metric} {agg} over {format_duration(b.over)} {b.op} {b.value}"),
        "ComparisonOperator": OPS[b.op],
        "Threshold": _num(b.value),
        "TreatMissingData": MISSING[rule.missing],
        **_m_of_n(rule, period),
    }
    if b.type == "gauge":
        stat = {"max": "Maximum", "min": "Minimum", "avg": "Average", "last": "Maximum"}[agg]
        if agg in ("min", "avg"):
            _note(notes, f"{rule.name}: CloudWatch's {stat} is over every sample; vigil's is over each minute's highest sample")
        if agg == "last":
            period = 60
            base.update(_m_of_n(rule, 60))
            _note(notes, f"{rule.name}: last is exported as the Maximum of the last minute")
        base.update({**_metric(b.metric, namespace), "Statistic": stat, "Period": period})
        return [base]
    if b.type == "counter":
        if agg in ("max", "min", "avg", "last"):
            raise NotExpressible(f"{agg} of per-minute rates needs a second aggregation CloudWatch alarms do not have; use rate or sum")
        metric = _metric(b.metric, namespace)
        if agg == "sum":
            base.update({**metric, "Statistic": "Sum", "Period": period})
        else:
            base.update({
                "Metrics": [
                    {"Id": "events", "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"}, "ReturnData": False},
                    {"Id": "rate", "Expression": f"events / {period}", "Label": f"{b.metric.metric} per second", "ReturnData": True},
                ]
            })
        return [base]
    if agg == "quantile":
        assert b.quantile is not None
        base.update({**_metric(b.metric, namespace), "ExtendedStatistic": f"p{(b.quantile * 100).normalize():f}", "Period": period})
        _note(notes, f"{rule.name}: CloudWatch percentiles are over the metric's published values (publish each observation, e.g. with EMF)")
        return [base]
    raise NotExpressible("latency rate and sum need the observation count published as its own metric")


def _burn(rule: AlertRule, slo: Any, namespace: str, actions: Sequence[str], notes: list[str]) -> list[dict]:
    from vigil.slo.alert_windows import alert_windows

    body = rule.burn_rate
    assert body is not None
    sli = slo.sli
    if sli.ratio is None:
        raise NotExpressible(f"the SLO {slo.name} is a {sli.kind} SLI; CloudWatch alarms here cover ratio SLIs")
    r = sli.ratio
    valid_m = _metric(r.total, namespace)
    good_m = _metric(r.good, namespace)
    excl_m = _metric(r.exclude, namespace) if r.exclude is not None else None
    budget = Decimal(1) - slo.objective
    conds = alert_windows(slo_window_seconds(slo))
    sevs = body.severities or list(dict.fromkeys(c.severity for c in conds))
    if slo.window.calendar is not None:
        _note(notes, f"{rule.name}: CloudWatch has no calendar windows; thresholds are scaled to {format_duration(slo_window_seconds(slo))}")
    out: list[dict] = []
    made: dict[int, str] = {}

    def window_alarm(seconds: int, threshold: Decimal, sev: str) -> str:
        name = _name(rule.name, sev, format_duration(seconds), f"above-{threshold.normalize():f}x")
        if name in made.values():
            return name
        metrics = [
            {"Id": "valid", "MetricStat": {"Metric": valid_m, "Period": seconds, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "good", "MetricStat": {"Metric": good_m, "Period": seconds, "Stat": "Sum"}, "ReturnData": False},
        ]
        valid = "valid"
        good = "good"
        if excl_m is not None:
            metrics.append({"Id": "excluded", "MetricStat": {"Metric": excl_m, "Period": seconds, "Stat": "Sum"}, "ReturnData": False})
            valid = "(valid - excluded)"
            if r.exclude is not None and r.good.metric == r.exclude.metric and not _disjoint(r.good, r.exclude):
                _note(notes, f"{rule.name}: the good metric is assumed to hold no excluded events (CloudWatch cannot subtract the overlap)")
        metrics.append({
            "Id": "burn",
            "Expression": f"IF({valid} > 0, ({valid} - {good}) / {valid} / {budget.normalize():f}, 0)",
            "Label": f"{slo.name} burn rate over {format_duration(seconds)}",
            "ReturnData": True,
        })
        out.append({
            "AlarmName": name,
            **_common(rule, [], f"vigil rule {rule.name}: {slo.name} burn rate over {format_duration(seconds)} above {threshold.normalize():f}x"),
            "Tags": [{"Key": "vigil_rule", "Value": rule.name}, {"Key": "severity", "Value": sev},
                     {"Key": "service", "Value": slo.service}, {"Key": "slo", "Value": slo.name}],
            "Metrics": metrics,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": _num(threshold),
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "TreatMissingData": "notBreaching",
        })
        made[len(made)] = name
        return name

    composites = []
    for sev in sevs:
        terms = []
        for c in (c for c in conds if c.severity == sev):
            if c.long_seconds > MAX_PERIOD:
                _note(notes, f"{rule.name}: the {c.name} condition ({c.long}/{c.short}) needs a {c.long} period; CloudWatch stops at 1 day: left out")
                continue
            a = window_alarm(c.long_seconds, c.threshold, sev)
            b = window_alarm(c.short_seconds, c.threshold, sev)
            terms.append(f'(ALARM("{a}") AND ALARM("{b}"))')
        if not terms:
            continue
        comp: dict[str, Any] = {
            "AlarmName": _name(rule.name, sev),
            "AlarmDescription": f"vigil rule {rule.name} ({sev}): {slo.name} burns its error budget too fast"[:1024],
            "AlarmRule": " OR ".join(terms),
            "ActionsEnabled": bool(actions),
            "Tags": [{"Key": "vigil_rule", "Value": rule.name}, {"Key": "severity", "Value": sev}, {"Key": "service", "Value": slo.service}, {"Key": "slo", "Value": slo.name}],
        }
        if actions:
            comp["AlarmActions"] = list(actions)
            comp["OKActions"] = list(actions)
        composites.append(comp)
    if rule.for_ or rule.keep_firing_for:
        _note(notes, f"{rule.name}: a composite alarm has no for/keep_firing_for; they are not exported")
    return out + composites


def _absent(rule: AlertRule, namespace: str, actions: Sequence[str]) -> list[dict]:
    b = rule.absent
    assert b is not None
    period = int(b.over)
    if period > MAX_PERIOD:
        raise NotExpressible("a window longer than 1 day")
    return [{
        "AlarmName": _name(rule.name),
        **_common(rule, actions, f"vigil rule {rule.name}: no sample of {b.metric} for {format_duration(b.over)}"),
        **_metric(b.metric, namespace),
        "Statistic": "SampleCount",
        "Period": period,
        "ComparisonOperator": "LessThanThreshold",
        "Threshold": 1.0,
        "TreatMissingData": "breaching",
        **_m_of_n(rule, period),
    }]


def _event(rule: AlertRule, namespace: str, actions: Sequence[str]) -> list[dict]:
    b = rule.event
    assert b is not None
    period = int(b.firing_for)
    if period > MAX_PERIOD:
        raise NotExpressible("firing_for longer than 1 day")
    return [{
        "AlarmName": _name(rule.name),
        **_common(rule, actions, f"vigil rule {rule.name}: a {b.event} event in the last {format_duration(b.firing_for)}"),
        **_metric(b.selector(), namespace),
        "Statistic": "Sum",
        "Period": period,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "TreatMissingData": "notBreaching",
        **_m_of_n(rule, period),
    }]


def is_composite(alarm: dict) -> bool:
    return "AlarmRule" in alarm


def cloudwatch_alarms(
    rules: Sequence[AlertRule], slos: Sequence[Any], *, namespace: str = "vigil", actions: Sequence[str] = ()
) -> Exported:
    """``{"metric_alarms": [...], "composite_alarms": [...]}`` (boto3 keyword arguments), and notes
    (every rule left out, and why)."""
    notes: list[str] = []
    by_name = {s.name: s for s in slos}
    metric: list[dict] = []
    composite: list[dict] = []
    for r in rules:
        try:
            if r.burn_rate is not None:
                got = _burn(r, by_name[r.burn_rate.slo], namespace, actions, notes)
            elif r.threshold is not None:
                got = _threshold(r, namespace, actions, notes)
            elif r.absent is not None:
                got = _absent(r, namespace, actions)
            elif r.event is not None:
                got = _event(r, namespace, actions)
            else:
                raise NotExpressible("a spike against the rate's own median has no CloudWatch alarm equivalent (anomaly detection is another model)")
        except NotExpressible as e:
            _note(notes, f"{r.name}: left out: {e}")
            continue
        for a in got:
            (composite if is_composite(a) else metric).append(a)
    return Exported({"metric_alarms": metric, "composite_alarms": composite}, notes)
