"""The deploy gate: may service S ship now? The budget policy's freeze rules over SLO statuses.

:func:`decide` is pure. :func:`gate_deploy` evaluates, decides and records the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from vigil.clock import isoformat, parse_time
from vigil.deploy.canary.records import CanaryRunJSON, unfinished_run
from vigil.deploy.verdicts import DeployVerdict, latest_verdicts
from vigil.errors import NotFoundError, UsageError
from vigil.slo.evaluate import CoverageJSON, SloStatus, evaluate_slos
from vigil.slo.spec import FreezeRule, Policy
from vigil.store import Store
from vigil.telemetry.sources import open_source
from vigil.text import readable

if TYPE_CHECKING:
    from vigil.security.fixgate import SecurityVerdict
    from vigil.spec import LoadedSpec, Spec


@dataclass(frozen=True)
class Freeze:
    """Why a service is frozen: a rule tripped by one SLO's budget, or an SLO with no data whose
    effective ``no_data`` is ``freeze`` (``no_data`` set; ``rule`` is None unless a rule set it)."""

    rule: int | None
    rule_name: str
    condition: str
    scope: str
    slo: str
    service: str
    consumed: Decimal | None
    elapsed_fraction: Decimal
    no_data: bool = False
    coverage: CoverageJSON | None = None
    invalid: str | None = None
    """Why the SLO's numbers cannot be read (its evidence contradicts itself): a freeze of its own."""
    empty_store: str | None = None
    """The store (as shown) that holds no telemetry at all, when that is why the SLO has no data."""

    @property
    def message(self) -> str:
        head = f"frozen by {self.rule_name} ({self.condition}" + (", scope global" if self.scope == "global" else "") + "): "
        if self.empty_store:
            return (
                head + f"the store {self.empty_store} holds no telemetry at all, so SLO {self.slo} of service {self.service}"
                " has no evidence; is it the store you meant (--db, VIGIL_DB)? Push the telemetry first, or set"
                " `no_data: allow` to ship without it"
            )
        if self.invalid:
            return (
                head + f"SLO {self.slo} of service {self.service} cannot be read: {self.invalid}; its budget is unknown,"
                " and an SLI that reads better than its evidence must not pass the gate"
            )
        if self.no_data or self.consumed is None:  # a budget is consumed only where there is data
            return (
                head + f"SLO {self.slo} of service {self.service} has no data in its window"
                + _since_note(self.coverage)
                + "; a selector that matches nothing or an exporter that stopped must not pass the gate"
            )
        return (
            head + f"SLO {self.slo} of service {self.service} has consumed {_pct(self.consumed)} of its budget"
            + f" with {_pct(self.elapsed_fraction)} of the window elapsed" + _since_note(self.coverage)
        )

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "rule_name": self.rule_name,
            "condition": self.condition,
            "scope": self.scope,
            "slo": self.slo,
            "service": self.service,
            "no_data": self.no_data,
            "invalid": self.invalid,
            "empty_store": self.empty_store,
            "budget_consumed": None if self.consumed is None else float(self.consumed),
            "window_elapsed": float(self.elapsed_fraction),
            "coverage": self.coverage,
            "message": self.message,
        }


def _since_note(cov: CoverageJSON | None) -> str:
    """Where the counted window starts, when that is not the window's own start."""
    if not cov or cov.get("complete"):
        return ""
    if cov.get("from") == "first_sample":
        return f" (counted from its first sample, {cov['since']})"
    if cov.get("from") == "since":
        return f" (counted from its `since:`, {cov['since']})"
    return " (no sample of its series yet)"


def _pct(d: Decimal) -> str:
    q = (d * 100).quantize(Decimal("0.01"))
    return f"{q.normalize():f}%"


@dataclass(frozen=True)
class GateInput:
    """One SLO the gate read: an entry of the decision's ``slos``."""

    slo: str
    service: str
    state: str
    budget_consumed: float | None
    window_elapsed: float
    coverage: CoverageJSON
    no_data_setting: str
    burn_rate_1h: float | None

    @classmethod
    def of(cls, policy: Policy, st: SloStatus) -> GateInput:
        burn = st.burn_rate("1h")
        return cls(
            st.slo.name, st.slo.service, st.state, None if st.consumed is None else float(st.consumed),
            float(st.span.elapsed_fraction), st.coverage_dict(), no_data_setting(policy, st)[0],
            None if burn is None else float(burn),
        )

    def to_dict(self) -> dict:
        return {
            "slo": self.slo,
            "service": self.service,
            "state": self.state,
            "budget_consumed": self.budget_consumed,
            "window_elapsed": self.window_elapsed,
            "coverage": self.coverage,
            "no_data_setting": self.no_data_setting,
            "burn_rate_1h": self.burn_rate_1h,
        }


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
    inputs: list[GateInput]
    warnings: list[str] = field(default_factory=list)
    id: int | None = None
    release: str | None = None
    verdicts: list[DeployVerdict] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    security: SecurityVerdict | None = None

    @property
    def frozen(self) -> bool:
        return bool(self.freezes)

    @property
    def reasons(self) -> list[str]:
        out = list(self.blocks) + [f.message for f in self.freezes]
        out += self.security.passed_by_override if self.security is not None else []
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
            "slos": [i.to_dict() for i in self.inputs],
            "release": self.release,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "blocks": self.blocks,
            "security": self.security.to_dict() if self.security is not None else None,
            "warnings": self.warnings,
            "decision_id": self.id,
        }


def rule_name(i: int, rule: FreezeRule) -> str:
    return rule.name or f"policy.freeze[{i}]"


def rule_trips(rule: FreezeRule, st: SloStatus) -> bool:
    """Whether ``st``'s budget trips ``rule`` (an SLO with no data trips no budget condition; see
    :func:`no_data_freezes`)."""
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


NO_DATA_RULE = "no-data"
INVALID_SLI_RULE = "invalid-sli"
EMPTY_STORE_RULE = "empty-store"
GOOD_EXCEEDS_VALID = "good events exceed valid events"
"""The start of the warning :func:`vigil.slo.evaluate.evaluate_slos` gives an SLO whose good events
outnumber its valid ones (it clamps good to valid, so the SLI would read better than the data)."""

MAX_LABEL = 100


def check_labels_and_reason(labels: Sequence[str], reason: str | None) -> None:
    """Deploy labels and the reason are recorded and shown (gate log, the web UI): each must be
    readable. A label is 1-100 printable characters without spaces; a reason is printable text
    (line breaks and tabs allowed) with something visible in it."""
    for lb in labels:
        if not (0 < len(lb) <= MAX_LABEL) or not readable(lb, lines=False) or any(c.isspace() for c in lb):
            raise UsageError(
                f"deploy label {lb[:60]!r} must be 1-{MAX_LABEL} printable characters without spaces",
                hint="labels are recorded and compared as written; control, invisible and look-alike spacing characters are refused",
            )
    if reason is not None and reason != "" and not readable(reason, lines=True):
        raise UsageError(
            "the reason must be readable text: it holds control, invisible or bidi characters, or nothing visible",
            hint="write why this deploy must ship in words; the reason is recorded and shown to whoever reads the gate log",
        )


def no_data_setting(policy: Policy, st: SloStatus) -> tuple[str, list[tuple[int | None, str, str, str]]]:
    """The effective ``no_data`` of an SLO and who set it: the SLO's own, else the freeze rules that
    cover its service (freeze if any of those that set one says so), else the policy's, else
    ``allow``. Returns (setting, freezes as (rule index or None, rule name, condition, scope))."""
    slo = st.slo
    if slo.no_data is not None:
        if slo.no_data == "allow":
            return "allow", []
        return "freeze", [(None, NO_DATA_RULE, f"no data; no_data: freeze on SLO {slo.name}", "service")]
    covering = [(i, r) for i, r in enumerate(policy.freeze) if r.services is None or slo.service in r.services]
    set_by_rules = [(i, r) for i, r in covering if r.no_data is not None]
    if set_by_rules:
        out: list[tuple[int | None, str, str, str]] = [
            (i, rule_name(i, r), "no data; no_data: freeze on the rule", r.scope)
            for i, r in set_by_rules
            if r.no_data == "freeze"
        ]
        return ("freeze", out) if out else ("allow", [])
    if policy.no_data == "freeze":
        return "freeze", [(None, NO_DATA_RULE, "no data; policy.no_data: freeze", "service")]
    return "allow", []


def no_data_explicit(policy: Policy, st: SloStatus) -> bool:
    """Whether any ``no_data`` (the SLO's, a rule's covering its service, the policy's) is set."""
    slo = st.slo
    if slo.no_data is not None or policy.no_data is not None:
        return True
    return any(r.no_data is not None for r in policy.freeze if r.services is None or slo.service in r.services)


def decide(
    policy: Policy,
    statuses: Sequence[SloStatus],
    service: str,
    at: datetime,
    *,
    labels: Sequence[str] = (),
    reason: str | None = None,
    release: str | None = None,
    verdicts: dict[str, DeployVerdict] | None = None,
    canary_run: CanaryRunJSON | None = None,
    security: SecurityVerdict | None = None,
    empty_store: tuple[str, frozenset[str]] | None = None,
) -> GateDecision:
    """Pure: the freezes that hold for ``service`` and whether an override passes them, and the
    deploy-check verdicts of ``release`` (a failed, inconclusive or required-but-missing verdict
    blocks the deploy; no override label passes a block).

    An SLO with no data in its window freezes when its effective ``no_data`` is ``freeze``
    (:func:`no_data_setting`); otherwise it cannot freeze, and the decision warns -- unless
    ``empty_store`` says the store it is read from holds no telemetry at all (``(the store as
    shown, the names of the SLOs read from it)``): that is no evidence, not a new SLO, and freezes
    unless a ``no_data`` (of the SLO, a rule or the policy) says ``allow``."""
    freezes: list[Freeze] = []
    for i, rule in enumerate(policy.freeze):
        for st in statuses:
            if rule.scope == "service" and st.slo.service != service:
                continue
            if rule_trips(rule, st):
                freezes.append(
                    Freeze(
                        i, rule_name(i, rule), rule.when.describe(), rule.scope, st.slo.name, st.slo.service,
                        st.consumed, st.span.elapsed_fraction, coverage=st.coverage_dict(),
                    )
                )
    for st in statuses:  # contradictory evidence: read as a perfect SLI, it would pass any rule
        if st.slo.service == service and any(GOOD_EXCEEDS_VALID in w for w in st.warnings):
            freezes.append(
                Freeze(
                    None, INVALID_SLI_RULE, "good events exceed valid events", "service", st.slo.name, st.slo.service,
                    None, st.span.elapsed_fraction, coverage=st.coverage_dict(),
                    invalid="good events exceed valid events (`good` is not a subset of `total`: check its selectors)",
                )
            )
    warnings: list[str] = []
    for st in statuses:
        if not st.no_data:
            continue
        setting, nd = no_data_setting(policy, st)
        if (
            empty_store is not None and st.slo.name in empty_store[1] and st.slo.service == service and not nd
            and not no_data_explicit(policy, st)
        ):
            freezes.append(
                Freeze(
                    None, EMPTY_STORE_RULE, "the store holds no telemetry", "service", st.slo.name, st.slo.service, None,
                    st.span.elapsed_fraction, no_data=True, coverage=st.coverage_dict(), empty_store=empty_store[0],
                )
            )
            continue
        for idx, name, condition, scope in nd:
            if scope == "service" and st.slo.service != service:
                continue
            freezes.append(
                Freeze(
                    idx, name, condition, scope, st.slo.name, st.slo.service, None, st.span.elapsed_fraction,
                    no_data=True, coverage=st.coverage_dict(),
                )
            )
        if setting == "allow" and st.slo.service == service:
            cov = st.coverage_dict() or {}
            late = cov.get("from") == "since" and bool(cov.get("since")) and parse_time(str(cov["since"])) > at
            warnings.append(
                f"SLO {st.slo.name} has no data; it cannot freeze a deploy"
                + (f" (it is counted from its `since:`, {cov['since']}, in the future)" if late else "")
            )
    if not any(st.slo.service == service for st in statuses):
        warnings.append(f"service {service} has no SLO in the spec: no error budget can freeze its deploys")
    labels = list(dict.fromkeys(labels))
    allowed_labels = [lb for lb in labels if lb in policy.overrides.labels]
    overridden = False
    override_label = None
    if freezes and allowed_labels:
        if not reason or not readable(reason, lines=True):
            raise UsageError(
                f"the override label {allowed_labels[0]!r} needs a reason",
                hint="pass --reason 'why this deploy must ship during a freeze' (it is recorded)",
            )
        overridden = True
        override_label = allowed_labels[0]
    inputs = [
        GateInput.of(policy, st)
        for st in statuses
        if st.slo.service == service or any(r.scope == "global" for r in policy.freeze)
    ]
    blocks = verdict_blocks(policy, release, verdicts or {})
    if canary_run is not None:
        blocks.append(
            f"canary run #{canary_run['id']} holds service {service} ({canary_run['state']} at weight {canary_run['weight']}%):"
            " finish it first (vigil canary run --resume, --approve or --rollback)"
        )
    if security is not None:  # the fix gate's blocks (vigil.security.decide_security), never passed by a freeze override
        blocks.extend(security.blocks)
        warnings.extend(security.notes)
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
        security=security,
    )


def verdict_blocks(policy: Policy, release: str | None, verdicts: dict[str, DeployVerdict]) -> list[str]:
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
    decided_at: datetime | None = None,
    labels: Sequence[str] = (),
    reason: str | None = None,
    actor: str | None = None,
    release: str | None = None,
    record: bool = True,
    evaluated: tuple[Any, Sequence[SloStatus]] | None = None,
) -> GateDecision:
    """Evaluate the SLOs at ``at``, read the release's verdicts and decide.

    ``evaluated`` is ``(the source, every SLO's status from it at at)`` when the caller already
    evaluated them (the web overview asks for each service): a what-if only, decided by the same
    rules (a recorded decision evaluates its own evidence).

    With ``record`` (a real decision) the decision is written to the store with its inputs, and
    ``at`` must be the real time of the decision: callers pass the real clock's now, never a
    user-supplied time (``decided_at`` defaults to it and must equal it). Without ``record`` it is a
    what-if: nothing is written and the decision says so (``what_if``)."""
    spec: Spec = loaded.spec
    if service not in spec.services:
        raise NotFoundError(
            f"unknown service {service!r}",
            hint=f"services in the spec: {', '.join(sorted(spec.services)) or 'none'}",
        )
    if reason is not None and len(reason) > 2000:
        raise UsageError("the reason is longer than 2000 characters")
    check_labels_and_reason(labels, reason)
    if record and (decided_at is None or decided_at != at):  # a library caller cannot record another time either
        raise UsageError(
            "a recorded decision is made at the time it is made",
            hint="evaluate another time only as a what-if (record=False)",
        )
    if evaluated is not None and record:
        raise UsageError("a recorded decision evaluates its own evidence", hint="pass evaluated= only with record=False")
    source, statuses = evaluated if evaluated is not None else (None, None)
    if source is None or statuses is None:
        source = open_source(spec.telemetry, store)
        statuses = evaluate_slos(spec.slos, source, at)
    empty: tuple[str, frozenset[str]] | None = None
    if any(st.no_data and st.slo.service == service for st in statuses):  # no data: from a store with none at all?
        from vigil.telemetry.sources import source_for
        from vigil.telemetry.sources.embedded import EmbeddedSource

        names = frozenset(st.slo.name for st in statuses if st.no_data and isinstance(source_for(source, st.slo), EmbeddedSource))
        if names and store.series_counts()[0] == 0:
            empty = (store.url or "in use", names)
    verdicts = latest_verdicts(store, service, release) if release else {}
    run = unfinished_run(store, service)
    sec = None
    if spec.security is not None:  # the fix gate: read the ledger here, decide in a pure function
        from vigil import security as _security

        view = _security.read_ledger(store, service, release) if spec.security.covers(service) else None
        sec = _security.decide_security(
            spec.security, view.findings if view else [], view.waivers if view else {}, view.imports if view else [],
            service=service, release=release, at=at, labels=labels, override_labels=spec.policy.overrides.labels, reason=reason,
        )
    d = decide(
        spec.policy, statuses, service, at, labels=labels, reason=reason, release=release, verdicts=verdicts, canary_run=run,
        security=sec, empty_store=empty,
    )
    if not record:
        return d
    out = d.to_dict()
    out["what_if"] = False
    d.id = store.record_gate_decision(
        {
            "at": isoformat(at),
            "decided_at": isoformat(at),
            "service": service,
            "allowed": d.allowed,
            "overridden": d.overridden,
            "labels": json.dumps(d.labels),
            "reason": d.reason,
            "actor": actor,
            "spec_sha256": loaded.sha256,
            "decision": json.dumps(out, sort_keys=True),
        }
    )
    return d


def decision_json(d: GateDecision, *, what_if: bool) -> dict:
    """The JSON of a gate answer (CLI --json and the API): the decision plus whether it was a
    what-if (never recorded) and its record id."""
    out = d.to_dict()
    out["what_if"] = what_if
    out["recorded"] = d.id is not None
    return out


@dataclass(frozen=True)
class GateRecord:
    """A recorded gate decision, read back from the store. ``decision`` is the decision's JSON as
    it was recorded (:meth:`GateDecision.to_dict` with ``what_if``; older records may lack newer
    fields)."""

    id: int
    at: str
    decided_at: str
    service: str
    allowed: bool
    overridden: bool
    labels: list[str]
    reason: str | None
    actor: str | None
    spec_sha256: str | None
    decision: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> GateRecord:
        return cls(
            row["id"], row["at"], row["decided_at"], row["service"], bool(row["allowed"]), bool(row["overridden"]),
            json.loads(row["labels"]), row["reason"], row["actor"], row["spec_sha256"], json.loads(row["decision"]),
        )

    def to_dict(self) -> dict:
        """The JSON of ``vigil gate log`` and ``GET /api/v1/gate/log``."""
        return {
            "id": self.id,
            "at": self.at,
            "decided_at": self.decided_at,
            "service": self.service,
            "allowed": self.allowed,
            "overridden": self.overridden,
            "labels": self.labels,
            "reason": self.reason,
            "actor": self.actor,
            "spec_sha256": self.spec_sha256,
            "decision": self.decision,
        }

