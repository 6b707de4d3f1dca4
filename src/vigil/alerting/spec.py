"""The ``alerts:`` section of the spec: alert rules.

Each rule has exactly one kind, written as a block named after it (as an SLI is ``ratio``,
``latency`` or ``freshness``)::

    alerts:
      - name: api-5xx-spike
        service: api
        spike: {metric: 'http_requests{service="api",code=~"5.."}', factor: 5, baseline: 1h, floor: 1/s}
        for: 2m

Kinds: ``burn_rate`` (an SLO's multiwindow, multi-burn-rate conditions), ``threshold`` (a metric
aggregated over a window compared with a value), ``spike`` (a rate against its own recent median
and a floor), ``absent`` (no sample for a while) and ``event`` (a pushed event, firing for a set
time). Routing the alerts (receivers, grouping, silences) is the ``alerting:`` section's job.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from vigil.model import Duration, SelectorField, SpecModel
from vigil.units import format_duration, to_decimal

RULE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = ("alertname", "service", "severity", "slo")
KINDS = ("burn_rate", "threshold", "spike", "absent", "event")
EVENT_METRIC = "vigil_event_total"
"""The counter an event is pushed as: ``vigil_event_total{event="db_failover",...}`` += 1."""


def _rate(v: Any) -> Decimal:
    """A rate per second: a number, or ``N/s``, ``N/m``, ``N/h``."""
    if isinstance(v, str) and "/" in v:
        num, _, unit = v.strip().partition("/")
        per = {"s": 1, "m": 60, "h": 3600}.get(unit.strip())
        if per is None:
            raise ValueError(f"cannot read rate {v!r}: write it per second like 1/s, or 60/m, or 3600/h")
        d = to_decimal(num) / per
    else:
        d = to_decimal(v)
    if d < 0:
        raise ValueError(f"a rate cannot be negative: {v}")
    return d


def _format_rate(d: Decimal) -> str:
    return f"{d.normalize():f}/s"


Rate = Annotated[Decimal, BeforeValidator(_rate), PlainSerializer(_format_rate, return_type=str)]
"""Events per second: ``1/s``, ``60/m`` or a bare number (per second)."""


def _number(v: Any) -> Decimal:
    """A number, or a duration (``300ms``: seconds) for latency thresholds."""
    if isinstance(v, str) and v.strip() and v.strip()[-1].isalpha():
        from vigil.units import parse_duration

        return parse_duration(v)
    return to_decimal(v)


Number = Annotated[Decimal, BeforeValidator(_number), PlainSerializer(lambda d: f"{d.normalize():f}", return_type=str)]
"""A number, exact; a duration like ``300ms`` is read as seconds."""


def _quantile(v: Any) -> Decimal:
    from vigil.units import parse_fraction

    return parse_fraction(v, what="quantile")


Quantile = Annotated[Decimal, BeforeValidator(_quantile), PlainSerializer(lambda d: f"{(d * 100).normalize():f}%", return_type=str)]
"""A quantile: ``95%`` or ``0.95``."""


def _minutes(v: Decimal, what: str, *, least: int = 60) -> Decimal:
    if v < least or v % 60 != 0:
        raise ValueError(f"{what} {format_duration(v)} must be whole minutes, at least {format_duration(least)} (telemetry is kept per minute)")
    return v


class BurnRateRule(SpecModel):
    """Page or open a ticket when an SLO burns its error budget too fast: the multiwindow,
    multi-burn-rate conditions of the SLO's window length (``vigil.slo.alert_windows``)."""

    slo: str = Field(description="the SLO (a name under `slos:`)")
    severities: list[str] | None = Field(
        None,
        description="which severities of the window's catalog to alert on (default all: `page` and `ticket`); "
        "one alert instance per severity, labelled `severity`",
    )


class ThresholdRule(SpecModel):
    """A metric aggregated over a window, compared with a value: queue depth > 1000 for 10m."""

    metric: SelectorField = Field(description="selector of the series")
    type: Literal["gauge", "counter", "latency"] = Field(
        "gauge", description="`gauge` (per-minute highest sample), `counter` (increments) or `latency` (observations)"
    )
    aggregate: Literal["sum", "avg", "max", "min", "rate", "last", "quantile"] | None = Field(
        None,
        description="gauge: max, min, avg, last (default) of the per-minute values; counter: sum (increase over the "
        "window), rate (per second, default), max, min, avg, last (of the per-minute rates); latency: quantile "
        "(default), rate (observations per second), sum (observations)",
    )
    quantile: Quantile | None = Field(
        None, description="for latency: the quantile, like 95% or 0.95 (Prometheus' histogram_quantile over the window)"
    )
    over: Duration = Field(Decimal(300), description="the window aggregated, whole minutes (default 5m)")
    op: Literal[">", ">=", "<", "<=", "==", "!="] = Field(">", description="how the value compares (default >)")
    value: Number = Field(description="the threshold; for latency seconds or a duration like 300ms")

    @field_validator("over")
    @classmethod
    def _over(cls, v: Decimal) -> Decimal:
        return _minutes(v, "over")

    @model_validator(mode="after")
    def _fits(self) -> "ThresholdRule":
        allowed = {
            "gauge": ("max", "min", "avg", "last"),
            "counter": ("sum", "rate", "max", "min", "avg", "last"),
            "latency": ("quantile", "rate", "sum"),
        }[self.type]
        if self.aggregate is not None and self.aggregate not in allowed:
            why = {
                "sum": "a source reads a gauge as the highest sample of each minute; a sum of those means nothing",
                "rate": "a gauge has no rate; use type: counter for a counter",
            }.get(self.aggregate, "")
            raise ValueError(
                f"aggregate {self.aggregate!r} does not apply to a {self.type}: use one of {', '.join(allowed)}"
                + (f" ({why})" if why and self.type == "gauge" else "")
            )
        if self.type == "latency" and self.agg == "quantile" and self.quantile is None:
            raise ValueError("a latency quantile needs `quantile:`, like 95%")
        if self.quantile is not None and (self.type != "latency" or self.agg != "quantile"):
            raise ValueError("`quantile` applies to type: latency with aggregate: quantile only")
        if self.quantile is not None and not (0 < self.quantile <= 1):
            raise ValueError("quantile must be above 0 and at most 100%")
        return self

    @property
    def agg(self) -> str:
        return self.aggregate or {"gauge": "last", "counter": "rate", "latency": "quantile"}[self.type]


class SpikeRule(SpecModel):
    """A counter's rate compared with its own recent median and an absolute floor: 5xx rate above
    5x its 1h median and above 1/s."""

    metric: SelectorField = Field(description="selector of a counter (e.g. 5xx responses)")
    factor: Number = Field(description="the rate must exceed this many times its baseline median, like 5")
    floor: Rate = Field(Decimal(0), description="and exceed this absolute rate, like 1/s (default 0)")
    over: Duration = Field(Decimal(300), description="the window of the rate, whole minutes (default 5m)")
    baseline: Duration = Field(
        Decimal(3600),
        description="the median is over the rates (each over `over`) ending at each minute of this window (default 1h)",
    )

    @field_validator("over", "baseline")
    @classmethod
    def _whole(cls, v: Decimal, info: Any) -> Decimal:
        return _minutes(v, info.field_name)

    @model_validator(mode="after")
    def _sane(self) -> "SpikeRule":
        if self.factor <= 0:
            raise ValueError("factor must be above 0, like 5")
        if self.baseline > 7 * 86400:
            raise ValueError("baseline is at most 7d")
        return self


class AbsentRule(SpecModel):
    """No sample of a metric for a while: a search engine down, a dead heartbeat."""

    metric: SelectorField = Field(description="selector of the series expected to report (any kind)")
    over: Duration = Field(
        Decimal(300), description="fire when no matching series has a sample in this window, whole minutes (default 5m)"
    )

    @field_validator("over")
    @classmethod
    def _over(cls, v: Decimal) -> Decimal:
        return _minutes(v, "over")


class EventRule(SpecModel):
    """A pushed event (a database failover), firing for a set time after it. An event is an
    increment of the counter ``vigil_event_total`` with the label ``event`` (and any others)."""

    event: str = Field(description="the event's name: the `event` label of vigil_event_total, like db_failover")
    firing_for: Duration = Field(Decimal(900), description="how long the alert fires after the last event, whole minutes (default 15m)")
    match: dict[str, str] = Field(default_factory=dict, description="other labels the event must have, like {service: db}")

    @field_validator("firing_for")
    @classmethod
    def _ff(cls, v: Decimal) -> Decimal:
        return _minutes(v, "firing_for")

    @field_validator("event")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or len(v) > 128:
            raise ValueError("an event name is 1-128 characters")
        return v

    @field_validator("match")
    @classmethod
    def _match(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not LABEL_NAME.match(k) or k == "event":
                raise ValueError(f"match label {k!r} must be a label name (not `event`: that is `event:`)")
        return v

    def selector(self) -> Any:
        from vigil.selector import Matcher, Selector

        ms = [Matcher.make("event", "=", self.event)] + [Matcher.make(k, "=", v) for k, v in sorted(self.match.items())]
        return Selector(EVENT_METRIC, tuple(ms))


# template variables each kind offers (besides `labels.<name>`)
COMMON_VARS = ("value", "rule", "service", "severity", "for")
KIND_VARS: dict[str, tuple[str, ...]] = {
    "burn_rate": ("slo", "objective", "window", "long_window", "short_window", "long_burn_rate", "short_burn_rate",
                  "threshold", "budget_share", "condition"),
    "threshold": ("metric", "aggregate", "over", "op", "threshold", "quantile"),
    "spike": ("metric", "over", "baseline", "baseline_rate", "factor", "floor", "threshold"),
    "absent": ("metric", "over"),
    "event": ("event", "count", "firing_for"),
}


class AlertRule(SpecModel):
    """One alert rule: a name, the service it is about, exactly one kind, and its timers."""

    name: str = Field(description="unique name; the alert's `alertname` label")
    service: str | None = Field(None, description="the service (a key of `services`); a burn_rate rule takes its SLO's")
    severity: str | None = Field(
        None, description="the `severity` label (default `page`); a burn_rate rule takes each condition's (page, ticket)"
    )
    burn_rate: BurnRateRule | None = Field(None, description="an SLO's multiwindow, multi-burn-rate conditions")
    threshold: ThresholdRule | None = Field(None, description="a metric aggregated over a window compared with a value")
    spike: SpikeRule | None = Field(None, description="a rate against its own recent median and a floor")
    absent: AbsentRule | None = Field(None, description="no sample of a metric for a while")
    event: EventRule | None = Field(None, description="a pushed event, firing for a set time")
    for_: Duration = Field(
        Decimal(0), alias="for", description="the condition must hold this long before the alert fires (pending until then)"
    )
    keep_firing_for: Duration = Field(Decimal(0), description="keep firing this long after the condition stops holding")
    missing: Literal["ok", "alert", "keep"] = Field(
        "ok",
        description="when the rule has no data to decide on (no series, no samples, no traffic): `ok` (the condition "
        "does not hold), `alert` (it holds) or `keep` (as the last evaluation concluded)",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="more labels for routing (e.g. team)")
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="summary, description and any others; `{{ value }}`-style variables are filled in (see README, Alerts)",
    )
    runbook: str | None = Field(None, description="a runbook URL, sent as the `runbook_url` annotation")

    model_config = SpecModel.model_config | {"populate_by_name": True}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not RULE_NAME.match(v):
            raise ValueError(f"rule name {v!r} must be 1-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not LABEL_NAME.match(k):
                raise ValueError(f"label name {k!r} must be letters, digits and '_', not starting with a digit")
            if k in RESERVED_LABELS or k.startswith("__"):
                raise ValueError(f"label {k!r} is set by vigil (alertname, service, severity, slo); use the rule's own keys")
        return v

    @field_validator("runbook")
    @classmethod
    def _runbook(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://\S+$", v):
            raise ValueError(f"runbook {v!r} must be an http(s) URL")
        return v

    @model_validator(mode="after")
    def _one(self) -> "AlertRule":
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "an alert rule has exactly one kind: burn_rate, threshold, spike, absent or event"
                + (f" (got {', '.join(given)})" if given else "")
            )
        kind = given[0]
        if kind != "burn_rate" and self.service is None:
            raise ValueError(f"a {kind} rule needs `service:` (a key of `services`)")
        if kind == "burn_rate" and self.severity is not None:
            raise ValueError("a burn_rate rule takes each condition's severity (page, ticket); choose them with burn_rate.severities")
        if kind in ("absent", "event") and "missing" in self.model_fields_set:
            raise ValueError(
                f"`missing` does not apply to an {kind} rule: "
                + ("no sample is what it alerts on" if kind == "absent" else "no event series means no event")
            )
        known = set(COMMON_VARS) | set(KIND_VARS[kind])
        for key, text in self.annotations.items():
            if not LABEL_NAME.match(key):
                raise ValueError(f"annotation name {key!r} must be letters, digits and '_'")
            from vigil.alerting.rules import template_names

            for n in template_names(text):
                if n in known or (n.startswith("labels.") and LABEL_NAME.match(n[7:])):
                    continue
                raise ValueError(
                    f"annotations.{key}: unknown variable {{{{ {n} }}}}; a {kind} rule offers "
                    + ", ".join(sorted(known))
                    + " and labels.<name>"
                )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> Any:
        return getattr(self, self.kind)


def cross_check(spec: Any) -> list[tuple[tuple, str]]:
    """Spec paths and messages for what needs the whole spec: services and SLOs the rules name,
    severities the SLO's window catalog has, duplicate rule names."""
    out: list[tuple[tuple, str]] = []
    rules = getattr(spec, "alerts", None) or []
    seen: dict[str, int] = {}
    slos = {s.name: s for s in spec.slos}
    for i, r in enumerate(rules):
        if r.name in seen:
            out.append((("alerts", i, "name"), f"duplicate alert rule name {r.name!r} (first at alerts[{seen[r.name]}])"))
        else:
            seen[r.name] = i
        if r.service is not None and r.service not in spec.services:
            out.append((("alerts", i, "service"), f"unknown service {r.service!r}; declare it under `services:`"))
        if r.burn_rate is not None:
            slo = slos.get(r.burn_rate.slo)
            if slo is None:
                known = ", ".join(sorted(slos)) or "none"
                out.append((("alerts", i, "burn_rate", "slo"), f"unknown SLO {r.burn_rate.slo!r} (SLOs: {known})"))
                continue
            if r.service is not None and r.service != slo.service:
                out.append((("alerts", i, "service"), f"the SLO {slo.name!r} belongs to {slo.service!r}, not {r.service!r}"))
            have = catalog_severities(slo)
            for j, sev in enumerate(r.burn_rate.severities or []):
                if sev not in have:
                    out.append(
                        (("alerts", i, "burn_rate", "severities", j), f"severity {sev!r} is not in the SLO's window catalog ({', '.join(have)})")
                    )
    return out


def slo_window_seconds(slo: Any) -> int:
    """The length an SLO's alert windows are scaled to: its rolling window, or the calendar
    period's nominal length (30d for a month, 7d for a week, 90d for a quarter)."""
    if slo.window.rolling is not None:
        return int(slo.window.rolling)
    return {"month": 30, "week": 7, "quarter": 90}[slo.window.calendar] * 86400


def catalog_severities(slo: Any) -> list[str]:
    from vigil.slo.alert_windows import alert_windows

    out: list[str] = []
    for w in alert_windows(slo_window_seconds(slo)):
        if w.severity not in out:
            out.append(w.severity)
    return out
