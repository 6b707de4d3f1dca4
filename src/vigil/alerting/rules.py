"""The pure core of alert rules: the state machine of a rule instance and the conditions' math.

No I/O, no clock: every function takes the evaluation time and plain data. Persistence is in
:mod:`vigil.alerting.state`, reading telemetry in :mod:`vigil.alerting.evaluate`.

The state machine follows Prometheus's alerting rules (``rules/alerting.go``):

* the condition holds and the instance is new (or resolved): ``active_at`` = now; ``firing`` at
  once when ``for`` is 0, else ``pending``;
* pending and the condition still holds: ``firing`` at the first evaluation with
  ``now - active_at >= for`` (exactly: never earlier, and at the first evaluation at or past it);
* pending and the condition stops: ``resolved`` (it never fired: there is nothing to send);
* firing and the condition stops: with ``keep_firing_for``, it keeps firing while
  ``now - keep_firing_since < keep_firing_for``, ``keep_firing_since`` being the first evaluation
  the condition was seen false; then ``resolved``. The condition holding again clears it.

Missing data (the rule could not compute its condition: no series, no samples in the window,
no traffic) is handled per rule: ``ok`` counts as the condition not holding, ``alert`` as holding,
``keep`` as whatever the last evaluation concluded (a pending instance keeps counting towards
``for``; a firing one keeps firing; an inactive one stays inactive).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from vigil.alerting.model import FIRING, INACTIVE, PENDING, RESOLVED, Alert, fingerprint

MISSING = ("ok", "alert", "keep")


@dataclass(frozen=True)
class Timing:
    """A rule's timers, in seconds, and what missing data means."""

    for_: Decimal = Decimal(0)
    keep_firing_for: Decimal = Decimal(0)
    missing: str = "ok"

    def __post_init__(self) -> None:
        if self.missing not in MISSING:
            raise ValueError(f"missing must be one of {', '.join(MISSING)}, not {self.missing!r}")
        if self.for_ < 0 or self.keep_firing_for < 0:
            raise ValueError("for and keep_firing_for are 0 or more")


@dataclass(frozen=True)
class Reading:
    """What a rule's condition gave for one instance at one evaluation.

    ``holds``: True, False, or None when data was missing. ``labels`` identify the instance.
    """

    labels: Mapping[str, str]
    holds: bool | None
    value: Decimal | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Instance:
    """A rule instance's persisted state."""

    rule: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # pending | firing | resolved
    active_at: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_true_at: datetime | None = None
    keep_firing_since: datetime | None = None
    value: Decimal | None = None
    seq: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.fingerprint)

    @property
    def active(self) -> bool:
        return self.state in (PENDING, FIRING)

    def last_condition(self) -> bool:
        """What the last evaluation concluded: the condition held (pending, or firing and not
        just kept firing) or not."""
        return self.state == PENDING or (self.state == FIRING and self.keep_firing_since is None)

    def alert(self, *, previous: str = INACTIVE, at: datetime | None = None) -> Alert:
        return Alert(
            rule=self.rule,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            state=self.state,
            active_at=self.active_at,
            fired_at=self.fired_at,
            resolved_at=self.resolved_at,
            value=self.value,
            fingerprint=self.fingerprint,
            seq=self.seq,
            previous=previous,
            at=at,
        )


def _seconds(a: datetime, b: datetime) -> Decimal:
    """``a - b`` in seconds, exact to the microsecond."""
    d = a - b
    return Decimal(d.days * 86400 + d.seconds) + Decimal(d.microseconds) / Decimal(1_000_000)


def condition(reading: Reading | None, prev: Instance | None, timing: Timing) -> bool:
    """The condition an evaluation acts on, after the rule's ``missing`` policy."""
    if reading is None:
        return False  # the instance is gone (its rule removed, or its labels changed)
    if reading.holds is not None:
        return reading.holds
    if timing.missing == "alert":
        return True
    if timing.missing == "keep":
        return prev is not None and prev.last_condition()
    return False


def step(prev: Instance | None, reading: Reading | None, at: datetime, timing: Timing, rule: str | None = None) -> Instance | None:
    """The instance after one evaluation at ``at``. None: it never existed and does not now."""
    holds = condition(reading, prev, timing)
    keep_value = reading is not None and reading.holds is None and timing.missing == "keep"
    if reading is not None:
        labels = dict(reading.labels)
        annotations = dict(reading.annotations) if reading.annotations else (dict(prev.annotations) if prev else {})
        value = prev.value if (keep_value and prev is not None) else reading.value
    elif prev is not None:
        labels, annotations, value = dict(prev.labels), dict(prev.annotations), prev.value
    else:
        return None
    name = rule if rule is not None else (prev.rule if prev is not None else labels.get("alertname", ""))
    fp = prev.fingerprint if prev is not None else fingerprint(labels)
    if holds:
        if prev is None or prev.state == RESOLVED:
            if timing.for_ <= 0:
                return Instance(name, fp, labels, annotations, FIRING, at, at, None, at, None, value, prev.seq if prev else 0)
            return Instance(name, fp, labels, annotations, PENDING, at, None, None, at, None, value, prev.seq if prev else 0)
        if prev.state == PENDING:
            assert prev.active_at is not None
            if _seconds(at, prev.active_at) >= timing.for_:
                return replace(prev, labels=labels, annotations=annotations, state=FIRING, fired_at=at, last_true_at=at, value=value)
            return replace(prev, labels=labels, annotations=annotations, last_true_at=at, value=value)
        # firing
        return replace(prev, labels=labels, annotations=annotations, last_true_at=at, keep_firing_since=None, value=value)
    if prev is None:
        return None
    if prev.state == RESOLVED:
        return replace(prev, annotations=annotations, value=value)
    if prev.state == PENDING:
        return replace(prev, labels=labels, annotations=annotations, state=RESOLVED, resolved_at=at, value=value)
    since = prev.keep_firing_since or at
    if timing.keep_firing_for > 0 and _seconds(at, since) < timing.keep_firing_for:
        return replace(prev, labels=labels, annotations=annotations, keep_firing_since=since, value=value)
    return replace(prev, labels=labels, annotations=annotations, state=RESOLVED, resolved_at=at, keep_firing_since=None, value=value)


@dataclass
class Advance:
    """The outcome of one evaluation over every instance: what changed and the transitions."""

    changed: list[Instance] = field(default_factory=list)
    """Instances whose stored row must be written (new, or any field changed)."""
    transitions: list[tuple[str, Instance]] = field(default_factory=list)
    """(previous state, instance) per state change, in a stable order (rule, fingerprint)."""
    current: dict[tuple[str, str], Instance] = field(default_factory=dict)
    """Every instance after the evaluation (unchanged ones too)."""


def advance(
    previous: Mapping[tuple[str, str], Instance],
    readings: Mapping[str, Sequence[Reading]],
    timings: Mapping[str, Timing],
    at: datetime,
    *,
    failed: Iterable[str] = (),
) -> Advance:
    """Step every instance once. ``readings`` by rule name (every rule evaluated); ``timings``
    by rule name (every rule of the spec). A rule in ``failed`` keeps its instances as they are
    (an error is not evidence that anything recovered). Instances of rules no longer in the spec,
    and instances a rule no longer produces, are stepped with no reading: they resolve."""
    failed = set(failed)
    out = Advance()
    by_key: dict[tuple[str, str], tuple[Reading, str]] = {}
    for rule, rs in readings.items():
        for r in rs:
            by_key[(rule, fingerprint(r.labels))] = (r, rule)
    keys = sorted(set(previous) | set(by_key))
    for key in keys:
        rule = key[0]
        prev = previous.get(key)
        if rule in failed:
            if prev is not None:
                out.current[key] = prev
            continue
        got = by_key.get(key)
        reading = got[0] if got else None
        timing = timings.get(rule, Timing())
        new = step(prev, reading, at, timing, rule)
        if new is None:
            continue
        out.current[key] = new
        if new != prev:
            out.changed.append(new)
        before = prev.state if prev is not None else INACTIVE
        if new.state != before:
            out.transitions.append((before, new))
    return out


# -- conditions' math ------------------------------------------------------------------------------

OPS = (">", ">=", "<", "<=", "==", "!=")


def compare(value: Decimal, op: str, threshold: Decimal) -> bool:
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return value == threshold
    if op == "!=":
        return value != threshold
    raise ValueError(f"unknown comparison {op!r}")


def median(values: Sequence[Decimal]) -> Decimal | None:
    """The median (the mean of the two middle values for an even count); None for no values."""
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def spike_holds(rate: Decimal, baseline: Decimal | None, factor: Decimal, floor: Decimal) -> bool:
    """A rate is a spike when it is above ``factor`` times its baseline AND above the absolute
    floor (both strictly): 5xx at 12/s against a 1h median of 2/s, factor 5, floor 1/s."""
    base = baseline if baseline is not None else Decimal(0)
    return rate > factor * base and rate > floor


def histogram_quantile(q: Decimal, buckets: Sequence[tuple[Decimal, int]]) -> Decimal | None:
    """Prometheus's ``histogram_quantile`` over non-cumulative buckets ``(upper bound, count)``
    sorted by bound, the last bound possibly infinite: linear interpolation inside the bucket that
    holds the rank, the first bucket's lower bound 0, and the highest finite bound when the rank
    falls in the overflow bucket. None with no observations. (:func:`vigil.histogram.quantile`,
    shared with the dashboards, over the buckets given, empty ones included.)"""
    from vigil.histogram import quantile

    est = quantile(q, buckets, [b for b, _ in buckets if b.is_finite()])
    return None if est is None else est.value


# -- templates -----------------------------------------------------------------------------------


_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def template_names(text: str) -> list[str]:
    """The variables a template names: ``{{ value }}``, ``{{ $value }}``, ``{{ $labels.service }}``."""
    return [_canonical(m) for m in _TEMPLATE.findall(text)]


def _canonical(name: str) -> str:
    name = name.strip()
    if name.startswith("$"):
        name = name[1:]
    return name


def render(text: str, variables: Mapping[str, str]) -> str:
    """Substitute ``{{ name }}`` with ``variables[name]`` (names are checked when the spec loads;
    plain substitution: no expressions, no attribute access, nothing executed)."""
    if "{{" not in text:
        return text

    def sub(m: "re.Match[str]") -> str:
        return variables.get(_canonical(m.group(1)), m.group(0))

    return _TEMPLATE.sub(sub, text)


def canonical_json(d: Mapping[str, str]) -> str:
    return json.dumps(dict(d), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
