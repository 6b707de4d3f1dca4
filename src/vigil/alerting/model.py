"""The alert seam: what the rule engine produces and the dispatcher consumes.

An :class:`Alert` is one rule instance (a rule and one set of labels) in one state. The rule engine
(:mod:`vigil.alerting.evaluate`) writes, in one store transaction per evaluation, each instance's
current state (``alert_instances``) and one row per state change to the append-only transition log
(``alert_transitions``). Every transition has a ``seq``: a global, gap-free number, strictly
increasing in commit order, so a consumer that remembers the last ``seq`` it handled (its own
cursor) sees every transition exactly once, in order:

    from vigil.alerting.state import read_transitions
    for alert in read_transitions(store, after=cursor, limit=500):
        ...  # alert.seq, alert.state, alert.previous, alert.fingerprint
        cursor = alert.seq

States of an instance: ``inactive`` (no row, or never seen) -> ``pending`` (the condition holds,
for less than the rule's ``for``) -> ``firing`` -> ``resolved`` (the condition stopped holding, past
``keep_firing_for``). ``pending -> resolved`` is recorded too (it never fired: nothing to send;
Prometheus drops such instances silently). A resolved instance that holds again starts a new
``pending`` (or ``firing`` when ``for`` is 0) with a new ``active_at``.

Pure: no I/O, no clock. The fingerprint is Alertmanager's (FNV-1a 64 over the sorted label
names and values, each followed by the byte 0xff, printed as 16 hex digits), so a fingerprint
vigil shows is the one Alertmanager would show for the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"
INACTIVE = "inactive"
STATES = (PENDING, FIRING, RESOLVED)
"""The states an :class:`Alert` is in; ``inactive`` appears only as a transition's ``previous``."""

_OFFSET64 = 14695981039346656037
_PRIME64 = 1099511628211
_MASK64 = (1 << 64) - 1
_SEP = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (``model.LabelSet.Fingerprint()``), as 16 hex digits.

    >>> fingerprint({})
    'cbf29ce484222325'
    """
    h = _OFFSET64
    for name in sorted(labels):
        for part in (name, labels[name]):
            for b in str(part).encode("utf-8"):
                h = ((h ^ b) * _PRIME64) & _MASK64
            h = ((h ^ _SEP) * _PRIME64) & _MASK64
    return f"{h:016x}"


@dataclass(frozen=True)
class Alert:
    """One rule instance at one transition (or its current state, read from the store).

    ``labels`` always hold ``alertname`` (the rule's name), ``severity``, ``service`` and, for an
    SLO's burn-rate rule, ``slo``; ``annotations`` hold ``summary``, ``description`` (with the
    numbers) and ``runbook_url`` when the spec gives one. ``value`` is the number the condition
    compared (a burn rate, a queue depth, a rate...; None when there was none: an absent series).

    ``seq`` is the transition's number in the log (0: not persisted yet); ``previous`` the state
    before it (``inactive`` for a new instance); ``at`` the evaluation time of the transition.
    """

    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    active_at: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    value: Decimal | None
    fingerprint: str
    seq: int = 0
    previous: str = INACTIVE
    at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Not persisted: details of the evaluation (e.g. the burn rates of each window)."""

    @property
    def generation(self) -> int:
        """Another name of :attr:`seq`."""
        return self.seq

    @property
    def name(self) -> str:
        return self.labels.get("alertname", self.rule)

    @property
    def severity(self) -> str | None:
        return self.labels.get("severity")

    @property
    def service(self) -> str | None:
        return self.labels.get("service")

    @property
    def notifiable(self) -> bool:
        """A notification is due: it fired now, or it resolved after firing. ``pending`` and
        ``pending -> resolved`` (never fired) are never sent, as in Prometheus."""
        return self.state == FIRING or (self.state == RESOLVED and self.fired_at is not None)

    def with_seq(self, seq: int) -> "Alert":
        return replace(self, seq=seq)

    def to_dict(self) -> dict:
        """The stable JSON shape (``vigil alerts --json``, the API, the dispatcher's payloads)."""
        from vigil.clock import isoformat

        def t(d: datetime | None) -> str | None:
            return None if d is None else isoformat(d)

        return {
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "state": self.state,
            "previous": self.previous,
            "labels": dict(sorted(self.labels.items())),
            "annotations": dict(sorted(self.annotations.items())),
            "active_at": t(self.active_at),
            "fired_at": t(self.fired_at),
            "resolved_at": t(self.resolved_at),
            "value": None if self.value is None else float(self.value),
            "value_text": None if self.value is None else format_value(self.value),
            "seq": self.seq,
            "at": t(self.at),
        }


def format_value(v: Decimal | None) -> str:
    """A value as people read it: up to 4 significant decimals, no exponent (``14.4``, ``0.0012``)."""
    if v is None:
        return "none"
    if v == v.to_integral_value():
        return f"{v.to_integral_value():f}"
    q = abs(v)
    places = 2 if q >= 1 else 4
    if q < Decimal("0.0001"):
        return f"{v:.2e}"
    out = f"{v.quantize(Decimal(1).scaleb(-places)):f}".rstrip("0").rstrip(".")
    return out or "0"
