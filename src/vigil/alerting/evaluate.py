"""Alert rules evaluated over a telemetry :class:`~vigil.telemetry.sources.Source` at a time.

:func:`read_rules` turns every rule into :class:`~vigil.alerting.rules.Reading` s (reads through
the Source only; no store writes, no clock); :func:`evaluate_rules` then steps and persists the
instances (:func:`vigil.alerting.state.record_evaluation`), which is what ``vigil serve``'s leader
calls every ``evaluation_interval``. :class:`MemoryState` steps them in memory instead (replays,
``vigil alerts test``, ``--what-if``).

Windows are whole minutes ending at the evaluation time, as everywhere in vigil: the minute
holding ``at`` counts (``vigil.slo.windows.now_minute``), so at 12:05:00 a 5m window is the
minutes 12:00 to 12:04.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from vigil.alerting.model import Alert, format_value
from vigil.alerting.rules import Advance, Instance, Reading, Timing, advance, compare, histogram_quantile, median, render, spike_holds
from vigil.alerting.spec import AlertRule
from vigil.units import format_duration

if TYPE_CHECKING:
    from vigil.alerting.state import Fence, Recorded
    from vigil.clock import Clock
    from vigil.slo.spec import SLO
    from vigil.store import Store
    from vigil.telemetry.sources.protocol import Source

INF = Decimal("Infinity")


def timing(rule: AlertRule) -> Timing:
    return Timing(rule.for_, rule.keep_firing_for, rule.missing)


def _now_minute(at: datetime) -> int:
    from vigil.slo.windows import now_minute

    return now_minute(at)


def _mins(d: Decimal) -> int:
    return int(d) // 60


def _exact(x: float) -> Decimal:
    """A gauge's float as the Decimal of its shortest spelling (5000.0 is 5000)."""
    d = Decimal(repr(x))
    return d.to_integral_value() if d == d.to_integral_value() else d


def _rate_text(d: Decimal | None) -> str:
    return "none" if d is None else f"{format_value(d)}/s"


# -- the read plan ------------------------------------------------------------------------------------


def read_plans(rules: Sequence[AlertRule], at: datetime) -> list[Any]:
    """Everything the rules (but burn_rate, read through the SLO engine) will ask the source, so
    the embedded store answers them in a few passes: one plan for counters (with the firsts), one
    for observations and one for gauges, each with only the window starts its reads use."""
    from vigil.telemetry.sources.protocol import CounterQuery, GaugeQuery, ObservationQuery, ReadPlan

    end = _now_minute(at)
    counters = ReadPlan(end=end)
    observations = ReadPlan(end=end)
    gauges = ReadPlan(end=end)
    c_starts: set[int] = set()
    o_starts: set[int] = set()
    for r in rules:
        b = r.body
        if r.threshold is not None:
            n = _mins(b.over)
            if b.type == "counter":
                counters.counters.append(CounterQuery(b.metric))
                counters.firsts.append((b.metric, "counter"))
                c_starts.update(range(end - n, end) if b.agg in ("max", "min", "avg", "last") else (end - n,))
            elif b.type == "gauge":
                gauges.gauges.append(GaugeQuery(b.metric, end - n, end))
            else:
                observations.observations.append(ObservationQuery(b.metric, 0))
                o_starts.add(end - n)
        elif r.spike is not None:
            counters.counters.append(CounterQuery(b.metric))
            counters.firsts.append((b.metric, "counter"))
            c_starts.update(range(end - _mins(b.over) - _mins(b.baseline) + 1, end))
        elif r.absent is not None:
            n = _mins(b.over)
            counters.counters.append(CounterQuery(b.metric))
            observations.observations.append(ObservationQuery(b.metric, 0))
            gauges.gauges.append(GaugeQuery(b.metric, end - n, end))
            c_starts.add(end - n)
            o_starts.add(end - n)
        elif r.event is not None:
            counters.counters.append(CounterQuery(b.selector()))
            c_starts.add(end - _mins(b.firing_for))
    counters.starts = sorted(c_starts)
    observations.starts = sorted(o_starts)
    return [p for p in (counters, observations, gauges) if p.counters or p.observations or p.gauges or p.firsts]


# -- one rule --------------------------------------------------------------------------------------


def _labels(rule: AlertRule, service: str, severity: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    out = {"alertname": rule.name, "service": service, "severity": severity}
    out.update(extra or {})
    out.update(rule.labels)
    return out


def _annotations(rule: AlertRule, labels: Mapping[str, str], defaults: Mapping[str, str], variables: dict[str, str]) -> dict[str, str]:
    vs = dict(variables)
    vs.update({"rule": rule.name, "service": labels.get("service", ""), "severity": labels.get("severity", ""),
               "for": format_duration(rule.for_)})
    vs.update({f"labels.{k}": v for k, v in labels.items()})
    out = {k: render(v, vs) for k, v in defaults.items()}
    out.update({k: render(v, vs) for k, v in rule.annotations.items()})
    if rule.runbook:
        out["runbook_url"] = rule.runbook
    return out


def _burn_readings(rule: AlertRule, status: Any) -> list[Reading]:
    """One reading per severity: holds when any of its conditions holds (both windows above the
    threshold); missing when none can hold because a window saw no traffic at all."""
    slo = status.slo
    body = rule.burn_rate
    assert body is not None
    conds = status.mwmb
    sevs = body.severities or list(dict.fromkeys(c.severity for c in conds))
    out = []
    for sev in sevs:
        mine = [c for c in conds if c.severity == sev]
        if not mine:
            continue
        holding = [c for c in mine if c.holds]
        if holding:
            chosen = holding[0]
            holds: bool | None = True
        else:
            known = [c for c in mine if c.long_burn_rate is not None and c.short_burn_rate is not None]
            holds = False if known else None
            chosen = max(known, key=lambda c: c.long_burn_rate / c.threshold) if known else mine[0]
        value = chosen.long_burn_rate
        labels = _labels(rule, slo.service, sev, {"slo": slo.name})
        variables = {
            "value": format_value(value),
            "slo": slo.name,
            "objective": f"{(slo.objective * 100).normalize():f}%",
            "window": slo.window.describe(),
            "long_window": chosen.window.long,
            "short_window": chosen.window.short,
            "long_burn_rate": format_value(chosen.long_burn_rate),
            "short_burn_rate": format_value(chosen.short_burn_rate),
            "threshold": format_value(chosen.threshold),
            "budget_share": f"{(chosen.window.budget_share * 100).normalize():f}%",
            "condition": chosen.name,
        }
        defaults = {
            "summary": "{{ slo }} is burning its error budget too fast ({{ severity }})",
            "description": "{{ slo }} ({{ objective }}, {{ window }}): burn rate {{ long_burn_rate }}x over {{ long_window }} "
            "and {{ short_burn_rate }}x over {{ short_window }}; the {{ condition }} condition fires above {{ threshold }}x "
            "(spending {{ budget_share }} of the budget in {{ long_window }})",
        }
        extra = {"conditions": [c.to_dict() for c in mine]}
        out.append(Reading(labels, holds, value, _annotations(rule, labels, defaults, variables), extra))
    return out


def _counter_first(source: "Source", sel: Any) -> int | None:
    return source.first_minute(sel, "counter")




def _layout(source: "Source", start_minute: int) -> list[int]:
    """The bucket bounds (ns) observations from ``start_minute`` on were counted in: the store's
    bounds exact since then (read once per source), or an in-memory source's own."""
    return sorted(le for le, since in source.bucket_bounds().items() if since <= start_minute)


def _threshold_reading(rule: AlertRule, source: "Source", end: int) -> Reading:
    from vigil.telemetry.sources.protocol import CounterQuery

    b = rule.threshold
    assert b is not None and rule.service is not None
    n = _mins(b.over)
    agg = b.agg
    value: Decimal | None = None
    if b.type == "counter":
        first = _counter_first(source, b.metric)
        if first is not None and first < end:
            if agg in ("sum", "rate"):
                (total,) = source.counter_sums(CounterQuery(b.metric), [end - n], end)
                value = Decimal(total) if agg == "sum" else Decimal(total) / Decimal(n * 60)
            else:
                starts = list(range(end - 1, end - n - 1, -1))  # [end-1, end-2, ..., end-n]
                sums = source.counter_sums(CounterQuery(b.metric), starts, end)
                incs = [sums[0]] + [sums[i] - sums[i - 1] for i in range(1, len(sums))]
                # minutes before the first sample are not zero: they are not there
                rates = [Decimal(x) / 60 for x, st in zip(incs, starts) if st >= first]
                if rates:
                    value = rates[0] if agg == "last" else max(rates) if agg == "max" else min(rates) if agg == "min" else sum(rates, Decimal(0)) / len(rates)
    elif b.type == "gauge":
        arr = source.gauge_max(b.metric, end - n, end)
        vals = [_exact(float(x)) for x in arr if not math.isnan(x)]
        if vals:
            value = vals[-1] if agg == "last" else max(vals) if agg == "max" else min(vals) if agg == "min" else sum(vals, Decimal(0)) / len(vals)
    else:
        buckets = source.observation_buckets(b.metric, end - n, end)
        total = sum(c for _, c in buckets)
        if agg == "quantile":
            from vigil.telemetry.ingest import INF_NS

            # every bound of the layout, empty buckets too: a bucket's lower edge is the bound
            # below it, whether or not anything fell there (as Prometheus reads le buckets)
            counts = dict(buckets)
            for le in _layout(source, end - n):
                counts.setdefault(le, 0)
            dec = [(INF if le >= INF_NS else Decimal(le) / Decimal(1_000_000_000), c) for le, c in sorted(counts.items())]
            assert b.quantile is not None
            value = histogram_quantile(b.quantile, dec)
        elif total or source.matched(b.metric, "observation")[0]:
            value = Decimal(total) if agg == "sum" else Decimal(total) / Decimal(n * 60)
    holds = None if value is None else compare(value, b.op, b.value)
    unit = "/s" if (agg in ("rate", "max", "min", "avg", "last") and b.type == "counter") or (agg == "rate") else (
        "s" if b.type == "latency" and agg == "quantile" else "")
    labels = _labels(rule, rule.service, rule.severity or "page")
    what = f"p{(b.quantile * 100).normalize():f}" if agg == "quantile" and b.quantile is not None else agg
    variables = {
        "value": format_value(value) + (unit if value is not None else ""),
        "metric": str(b.metric),
        "aggregate": what,
        "over": format_duration(b.over),
        "op": b.op,
        "threshold": format_value(b.value) + unit,
        "quantile": "" if b.quantile is None else f"{(b.quantile * 100).normalize():f}%",
    }
    defaults = {
        "summary": "{{ rule }}: {{ metric }} {{ aggregate }} over {{ over }} is {{ value }} ({{ op }} {{ threshold }})",
        "description": "{{ aggregate }} of {{ metric }} over the last {{ over }} is {{ value }}; the rule fires when it is "
        "{{ op }} {{ threshold }}" + (" for {{ for }}" if rule.for_ else ""),
    }
    return Reading(labels, holds, value, _annotations(rule, labels, defaults, variables))


def _spike_reading(rule: AlertRule, source: "Source", end: int) -> Reading:
    from vigil.telemetry.sources.protocol import CounterQuery

    b = rule.spike
    assert b is not None and rule.service is not None
    w, base_n = _mins(b.over), _mins(b.baseline)
    first = _counter_first(source, b.metric)
    value = baseline = None
    holds: bool | None = None
    if first is not None and first < end:
        # S(k): the increase over [end-k, end) for k = 1 .. w + base_n - 1; the rate of the window
        # ending j minutes before the end is (S(j+w) - S(j)) / (w * 60), j = 0 .. base_n - 1
        ks = list(range(1, w + base_n))
        sums = dict(zip(ks, source.counter_sums(CounterQuery(b.metric), [end - k for k in ks], end)))
        sums[0] = 0
        secs = Decimal(w * 60)
        value = Decimal(sums[w]) / secs
        rates = [Decimal(sums[j + w] - sums[j]) / secs for j in range(base_n) if end - j - w >= first]
        baseline = median(rates)
        holds = spike_holds(value, baseline, b.factor, b.floor)
    threshold = max(b.factor * (baseline or Decimal(0)), b.floor)
    labels = _labels(rule, rule.service, rule.severity or "page")
    variables = {
        "value": _rate_text(value),
        "metric": str(b.metric),
        "over": format_duration(b.over),
        "baseline": format_duration(b.baseline),
        "baseline_rate": _rate_text(baseline),
        "factor": format_value(b.factor),
        "floor": _rate_text(b.floor),
        "threshold": _rate_text(threshold),
    }
    defaults = {
        "summary": "{{ rule }}: {{ metric }} at {{ value }}, {{ factor }}x above its {{ baseline }} median",
        "description": "{{ metric }} rate over {{ over }} is {{ value }}; its median over the last {{ baseline }} is "
        "{{ baseline_rate }}; the rule fires above {{ factor }}x the median and above {{ floor }}",
    }
    return Reading(labels, holds, value, _annotations(rule, labels, defaults, variables), {"baseline": baseline})


def _absent_reading(rule: AlertRule, source: "Source", end: int) -> Reading:
    from vigil.telemetry.sources.protocol import CounterQuery

    b = rule.absent
    assert b is not None and rule.service is not None
    n = _mins(b.over)
    seen = 0
    if source.matched(b.metric, "counter")[0]:
        (seen,) = source.counter_sums(CounterQuery(b.metric), [end - n], end)
    if not seen and source.matched(b.metric, "gauge")[0]:
        seen = int(sum(1 for x in source.gauge_max(b.metric, end - n, end) if not math.isnan(x)))
    if not seen and source.matched(b.metric, "observation")[0]:
        seen = sum(c for _, c in source.observation_buckets(b.metric, end - n, end))
    holds = seen == 0
    labels = _labels(rule, rule.service, rule.severity or "page")
    variables = {"value": "0" if holds else "1", "metric": str(b.metric), "over": format_duration(b.over)}
    defaults = {
        "summary": "{{ rule }}: no sample of {{ metric }} for {{ over }}",
        "description": "no series matching {{ metric }} reported a sample in the last {{ over }}",
    }
    return Reading(labels, holds, Decimal(1 if holds else 0), _annotations(rule, labels, defaults, variables))


def _event_reading(rule: AlertRule, source: "Source", end: int) -> Reading:
    from vigil.telemetry.sources.protocol import CounterQuery

    b = rule.event
    assert b is not None and rule.service is not None
    (count,) = source.counter_sums(CounterQuery(b.selector()), [end - _mins(b.firing_for)], end)
    labels = _labels(rule, rule.service, rule.severity or "page")
    variables = {"value": str(count), "count": str(count), "event": b.event, "firing_for": format_duration(b.firing_for)}
    defaults = {
        "summary": "{{ rule }}: {{ event }} ({{ count }} in the last {{ firing_for }})",
        "description": "{{ count }} {{ event }} event(s) were pushed in the last {{ firing_for }} (vigil_event_total)",
    }
    return Reading(labels, count > 0, Decimal(count), _annotations(rule, labels, defaults, variables))


# -- every rule --------------------------------------------------------------------------------------


@dataclass
class Readings:
    at: datetime
    by_rule: dict[str, list[Reading]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)


def read_rules(rules: Sequence[AlertRule], slos: Sequence["SLO"], source: "Source", at: datetime) -> Readings:
    """Every rule's readings at ``at``. A rule whose reading fails is in ``failed`` (its instances
    are left as they are); a failure of the source itself (the store down) raises."""
    from vigil.errors import ExternalError

    out = Readings(at, timings={r.name: timing(r) for r in rules})
    end = _now_minute(at)
    burn = [r for r in rules if r.burn_rate is not None]
    statuses: dict[str, Any] = {}
    if burn:
        from vigil.slo.evaluate import evaluate_slos

        wanted = {r.burn_rate.slo for r in burn if r.burn_rate is not None}
        by_name = {s.name: s for s in slos}
        missing_slos = sorted(wanted - set(by_name))
        for r in burn:
            if r.burn_rate is not None and r.burn_rate.slo in missing_slos:
                out.failed[r.name] = f"unknown SLO {r.burn_rate.slo!r}"
        chosen = [by_name[n] for n in sorted(wanted) if n in by_name]
        statuses = {s.slo.name: s for s in evaluate_slos(chosen, source, at)}
    others = [r for r in rules if r.burn_rate is None]
    for plan in read_plans(others, at):
        source.prefetch(plan)
    for r in rules:
        if r.name in out.failed:
            continue
        try:
            if r.burn_rate is not None:
                st = statuses[r.burn_rate.slo]
                if int(st.window_seconds) <= 0:  # pragma: no cover - a window has a length
                    raise ValueError("the SLO's window has no length")
                out.by_rule[r.name] = _burn_readings(r, st)
            elif r.threshold is not None:
                out.by_rule[r.name] = [_threshold_reading(r, source, end)]
            elif r.spike is not None:
                out.by_rule[r.name] = [_spike_reading(r, source, end)]
            elif r.absent is not None:
                out.by_rule[r.name] = [_absent_reading(r, source, end)]
            else:
                out.by_rule[r.name] = [_event_reading(r, source, end)]
        except ExternalError:
            raise
        except Exception as e:  # one broken rule must not silence the others; it is recorded
            out.failed[r.name] = f"{type(e).__name__}: {e}"[:500]
    return out


@dataclass
class Evaluation:
    """One evaluation: what every rule read, and what was recorded (None: nothing, a what-if)."""

    at: datetime
    readings: Readings
    recorded: "Recorded | None" = None
    current: list[Instance] = field(default_factory=list)
    transitions: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict:
        from vigil.clock import isoformat

        rec = self.recorded
        return {
            "at": isoformat(self.at),
            "recorded": None if rec is None else rec.recorded,
            "reason": None if rec is None else rec.reason,
            "transitions": [a.to_dict() for a in self.transitions],
            "alerts": [i.alert().to_dict() for i in self.current if i.active],
            "errors": [{"rule": k, "error": v} for k, v in sorted(self.readings.failed.items())],
        }


def evaluate_rules(
    store: "Store",
    source: "Source",
    rules: Sequence[AlertRule],
    *,
    slos: Sequence["SLO"] = (),
    at: datetime | None = None,
    clock: "Clock | None" = None,
    spec_sha256: str | None = None,
    fence: "Fence | None" = None,
) -> Evaluation:
    """Evaluate every rule at ``at`` (or ``clock.now()``) and record the outcome: the instances'
    states and one transition per change, in one transaction (:mod:`vigil.alerting.state`).

    ``vigil serve``'s leader calls this every ``evaluation_interval`` with a fresh source
    (``open_source(spec.telemetry, store)``), the spec's ``alerts`` and ``slos``. An instant
    already evaluated (or older than the newest evaluated) records nothing: ``recorded.reason``
    says why. ``fence`` runs inside the transaction (a leader's lease check)."""
    from vigil.alerting.state import record_evaluation

    if at is None:
        if clock is None:
            raise ValueError("evaluate_rules needs `at` or a clock")
        at = clock.now()
    readings = read_rules(rules, slos, source, at)
    rec = record_evaluation(
        store, at, readings.by_rule, readings.timings, failed=readings.failed, spec_sha256=spec_sha256, fence=fence
    )
    return Evaluation(at, readings, rec, rec.current, rec.transitions)


class MemoryState:
    """Instances kept in memory and stepped like the store does, with the same transition numbers:
    for replays (``vigil alerts test``) and what-if evaluations."""

    def __init__(self, instances: Mapping[tuple[str, str], Instance] | None = None, seq: int = 0) -> None:
        self.instances: dict[tuple[str, str], Instance] = dict(instances or {})
        self.seq = seq
        self.last_at: datetime | None = None
        self.log: list[Alert] = []

    def step(self, readings: Readings) -> list[Alert]:
        if self.last_at is not None and readings.at <= self.last_at:
            return []
        adv: Advance = advance(self.instances, readings.by_rule, readings.timings, readings.at, failed=readings.failed)
        out = []
        from dataclasses import replace

        for before, inst in adv.transitions:
            self.seq += 1
            adv.current[inst.key] = replace(adv.current[inst.key], seq=self.seq)
            out.append(adv.current[inst.key].alert(previous=before, at=readings.at))
        self.instances = adv.current
        self.last_at = readings.at
        self.log.extend(out)
        return out

    def evaluate(self, rules: Sequence[AlertRule], slos: Sequence["SLO"], source: "Source", at: datetime) -> Evaluation:
        readings = read_rules(rules, slos, source, at)
        trans = self.step(readings)
        return Evaluation(at, readings, None, sorted(self.instances.values(), key=lambda i: i.key), trans)
