"""The deploy gate: may service S ship now? The budget policy's freeze rules over SLO statuses.

:func:`decide` is pure. :func:`gate_deploy` evaluates, decides and records the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Sequence

from vigil.clock import isoformat
from vigil.deploy.canary.records import unfinished_run
from vigil.deploy.verdicts import Verdict, latest_verdicts
from vigil.errors import NotFoundError, UsageError
from vigil.slo.evaluate import SloStatus, evaluate_slos
from vigil.slo.spec import FreezeRule, Policy
from vigil.spec import LoadedSpec, Spec
from vigil.store import Store
from vigil.telemetry.source import EmbeddedSource


@dataclass(frozen=True)
class Freeze:
    rule: int
    rule_name: str
    condition: str
    scope: str
    slo: str
    service: str
    consumed: Decimal
    elapsed_fraction: Decimal

    @property
    def message(self) -> str:
        return (
            f"frozen by {self.rule_name} ({self.condition}"
            + (", scope global" if self.scope == "global" else "")
            + f"): SLO {self.slo} of service {self.service} has consumed {_pct(self.consumed)} of its budget"
            + f" with {_pct(self.elapsed_fraction)} of the window elapsed"
        )

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "rule_name": self.rule_name,
            "condition": self.condition,
            "scope": self.scope,
            "slo": self.slo,
            "service": self.service,
            "budget_consumed": float(self.consumed),
            "window_elapsed": float(self.elapsed_fraction),
            "message": self.message,
        }


def _pct(d: Decimal) -> str:
    q = (d * 100).quantize(Decimal("0.01"))
    return f"{q.normalize():f}%"


@dataclass
class GateDecision:
    service: str
    at: datetime
    allowed: bool
    freezes: list[Freeze]
    labels: list[str]
    reason: str | None
    overridden: bool
    override_label: str | None
    inputs: list[dict]
    warnings: list[str] = field(default_factory=list)
    id: int | None = None
    release: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)

    @property
    def frozen(self) -> bool:
        return bool(self.freezes)

    @property
    def reasons(self) -> list[str]:
        out = list(self.blocks) + [f.message for f in self.freezes]
        if self.overridden:
            out.append(f"override: label {self.override_label!r} passes the freeze; reason: {self.reason}")
        elif self.freezes and self.labels:
            out.append(f"labels {', '.join(self.labels)} are not override labels of the policy")
        if not self.freezes:
            out.append(f"no freeze rule holds for service {self.service}")
        return out

    def to_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "service": self.service,
            "at": isoformat(self.at),
            "frozen": self.frozen,
            "overridden": self.overridden,
            "override_label": self.override_label,
            "labels": self.labels,
            "reason": self.reason,
            "reasons": self.reasons,
            "freezes": [f.to_dict() for f in self.freezes],
            "slos": self.inputs,
            "release": self.release,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "blocks": self.blocks,
            "warnings": self.warnings,
            "decision_id": self.id,
        }


def rule_name(i: int, rule: FreezeRule) -> str:
    return rule.name or f"policy.freeze[{i}]"


def rule_trips(rule: FreezeRule, st: SloStatus) -> bool:
    if st.no_data:
        return False
    if rule.services is not None and st.slo.service not in rule.services:
        return False
    consumed = st.consumed
    if consumed is None:
        return False
    w = rule.when
    if w.budget_consumed_over is not None and not consumed > w.budget_consumed_over:
        return False
    if w.budget_exhausted and not consumed >= 1:
        return False
    if w.window_elapsed_at_least is not None and not st.span.elapsed_fraction >= w.window_elapsed_at_least:
        return False
    return True


def decide(
    policy: Policy,
    statuses: Sequence[SloStatus],
    service: str,
    at: datetime,
    *,
    labels: Sequence[str] = (),
    reason: str | None = None,
    release: str | None = None,
    verdicts: dict[str, Verdict] | None = None,
    canary_run: dict | None = None,
) -> GateDecision:
    """Pure: the freezes that hold for ``service`` and whether an override passes them, and the
    deploy-check verdicts of ``release`` (a failed, inconclusive or required-but-missing verdict
    blocks the deploy; no override label passes a block)."""
    freezes: list[Freeze] = []
    for i, rule in enumerate(policy.freeze):
        for st in statuses:
            if rule.scope == "service" and st.slo.service != service:
                continue
            if rule_trips(rule, st):
                freezes.append(
                    Freeze(
                        i, rule_name(i, rule), rule.when.describe(), rule.scope, st.slo.name, st.slo.service,
                        st.consumed, st.span.elapsed_fraction,  # type: ignore[arg-type]
                    )
                )
    labels = list(dict.fromkeys(labels))
    allowed_labels = [lb for lb in labels if lb in policy.overrides.labels]
    overridden = False
    override_label = None
    if freezes and allowed_labels:
        if not reason or not reason.strip():
            raise UsageError(
                f"the override label {allowed_labels[0]!r} needs a reason",
                hint="pass --reason 'why this deploy must ship during a freeze' (it is recorded)",
            )
        overridden = True
        override_label = allowed_labels[0]
    inputs = [
        {
            "slo": st.slo.name,
            "service": st.slo.service,
            "state": st.state,
            "budget_consumed": None if st.consumed is None else float(st.consumed),
            "window_elapsed": float(st.span.elapsed_fraction),
            "burn_rate_1h": None if st.burn_rate("1h") is None else float(st.burn_rate("1h")),  # type: ignore[arg-type]
        }
        for st in statuses
        if st.slo.service == service or any(r.scope == "global" for r in policy.freeze)
    ]
    warnings = [f"SLO {st.slo.name} has no data; it cannot freeze a deploy" for st in statuses if st.no_data and st.slo.service == service]
    blocks = verdict_blocks(policy, release, verdicts or {})
    if canary_run is not None:
        blocks.append(
            f"canary run #{canary_run['id']} holds service {service} ({canary_run['state']} at weight {canary_run['weight']}%):"
            " finish it first (vigil canary run --resume, --approve or --rollback)"
        )
    return GateDecision(
        service,
        at,
        (not freezes or overridden) and not blocks,
        freezes,
        labels,
        reason,
        overridden,
        override_label,
        inputs,
        warnings,
        release=release,
        verdicts=sorted((verdicts or {}).values(), key=lambda v: v.kind),
        blocks=blocks,
    )


def verdict_blocks(policy: Policy, release: str | None, verdicts: dict[str, Verdict]) -> list[str]:
    """Why the recorded verdicts of a release block its deploy (empty: they don't)."""
    out: list[str] = []
    if release is None:
        if policy.require_verdicts:
            out.append(
                f"the policy requires {' and '.join(policy.require_verdicts)} verdicts: pass --release to name the release"
            )
        return out
    for kind in sorted(set(policy.require_verdicts) | set(verdicts)):
        v = verdicts.get(kind)
        if v is None:
            out.append(f"no {kind} verdict recorded for release {release!r} (the policy requires one)")
        elif not v.passed:
            out.append(f"{kind} verdict for release {release!r} is {v.verdict} (#{v.id}, {v.recorded_at}): {v.summary}")
    return out


def gate_deploy(
    loaded: LoadedSpec,
    store: Store,
    service: str,
    at: datetime,
    *,
    decided_at: datetime,
    labels: Sequence[str] = (),
    reason: str | None = None,
    actor: str | None = None,
    release: str | None = None,
) -> GateDecision:
    """Evaluate the SLOs, read the release's verdicts, decide, and record the decision with its inputs."""
    spec: Spec = loaded.spec
    if service not in spec.services:
        raise NotFoundError(
            f"unknown service {service!r}",
            hint=f"services in the spec: {', '.join(sorted(spec.services)) or 'none'}",
        )
    if reason is not None and len(reason) > 2000:
        raise UsageError("the reason is longer than 2000 characters")
    statuses = evaluate_slos(spec.slos, EmbeddedSource(store), at)
    verdicts = latest_verdicts(store, service, release) if release else {}
    run = unfinished_run(store, service)
    d = decide(
        spec.policy, statuses, service, at, labels=labels, reason=reason, release=release, verdicts=verdicts, canary_run=run
    )
    d.id = store.record_gate_decision(
        {
            "at": isoformat(at),
            "decided_at": isoformat(decided_at),
            "service": service,
            "allowed": d.allowed,
            "overridden": d.overridden,
            "labels": json.dumps(d.labels),
            "reason": d.reason,
            "actor": actor,
            "spec_sha256": loaded.sha256,
            "decision": json.dumps(d.to_dict(), sort_keys=True),
        }
    )
    return d


def decision_record(row: dict) -> dict:
    """A stored decision as the JSON of ``vigil gate log`` and ``GET /api/v1/gate/log``."""
    return {
        "id": row["id"],
        "at": row["at"],
        "decided_at": row["decided_at"],
        "service": row["service"],
        "allowed": bool(row["allowed"]),
        "overridden": bool(row["overridden"]),
        "labels": json.loads(row["labels"]),
        "reason": row["reason"],
        "actor": row["actor"],
        "spec_sha256": row["spec_sha256"],
        "decision": json.loads(row["decision"]),
    }
