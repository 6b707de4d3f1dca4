"""The root spec model and the loader.

The loader reads YAML with line marks (ruamel.yaml), validates it with the pydantic models each
capability contributes, and reports every problem with file, line and spec path::

    vigil.yaml:12:9: slos[2].sli.ratio.good: unknown label matcher '=>'
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from vigil import yamlio
from vigil.alerting.routing_spec import AlertingSpec
from vigil.alerting.spec import AlertRule
from vigil.dashboards.spec import Dashboard
from vigil.deploy.canary.spec import CanarySpec
from vigil.deploy.migrations.spec import MigrationsSpec
from vigil.dr.drill_spec import DrillSpec
from vigil.dr.spec import BackupsSpec
from vigil.errors import SpecError, SpecIssue
from vigil.finops.spec import CostsSpec
from vigil.model import SpecModel
from vigil.security.spec import SecuritySpec
from vigil.slo.spec import SLO, Policy
from vigil.telemetry.spec import TelemetrySpec
from vigil.yamlio import MAX_ALIASES, MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES  # noqa: E402,F401  (the one YAML reader's limits)

DEFAULT_RETENTION_PAD = Decimal(35 * 86400)


class Service(SpecModel):
    description: str | None = Field(None, description="what the service is")
    owner: str | None = Field(None, description="the owning team")
    tier: str | None = Field(None, description="criticality tier, free text")


class Spec(SpecModel):
    """The whole ``vigil.yaml``."""

    version: Literal[1] = Field(description="spec format version; 1")
    services: dict[str, Service] = Field(description="the platform's services by name")
    slos: list[SLO] = Field(default_factory=list, description="service level objectives")
    policy: Policy = Field(default_factory=Policy, description="the error-budget policy: freezes and overrides")
    telemetry: TelemetrySpec = Field(default_factory=TelemetrySpec, description="the embedded telemetry store")
    canary: CanarySpec | None = Field(None, description="canary analysis and the canary deploy loop")
    migrations: MigrationsSpec | None = Field(None, description="database migration safety: lint, verify, apply")
    backups: BackupsSpec | None = Field(None, description="backups: PostgreSQL, Aurora, object storage, search")
    drills: list[DrillSpec] = Field(default_factory=list, description="DR drills that measure the RTO and RPO achieved")
    security: SecuritySpec | None = Field(None, description="security gates: fix deadlines and what blocks a deploy (vigil findings)")
    alerts: list[AlertRule] = Field(default_factory=list, description="alert rules: burn rate, threshold, spike, absent, event (vigil alerts)")
    alerting: AlertingSpec | None = Field(None, description="routing and delivery of the alerts: receivers, routes, inhibition, silences, the heartbeat")
    costs: CostsSpec | None = Field(None, description="FinOps: cost data, budgets and anomalies by {env, service}, unit cost, rightsizing, cost policies (vigil cost)")
    dashboards: list[Dashboard] = Field(default_factory=list, description="the plan's dashboards: panels of queries (rate, ratio, quantile, last, max) shown by vigil serve and exported by vigil export grafana | cloudwatch-dashboard")

    def slo(self, name: str) -> SLO:
        for s in self.slos:
            if s.name == name:
                return s
        raise KeyError(name)

    def retention_seconds(self) -> Decimal:
        if self.telemetry.retention is not None:
            return self.telemetry.retention
        longest = Decimal(0)
        for s in self.slos:
            if s.window.rolling is not None:
                longest = max(longest, s.window.rolling)
            elif s.window.calendar is not None:  # a window is one or the other (Window validates)
                longest = max(longest, Decimal({"week": 7, "month": 31, "quarter": 92}[s.window.calendar] * 86400))
        return longest + DEFAULT_RETENTION_PAD

    def latency_thresholds(self) -> list[Decimal]:
        return sorted({s.sli.latency.threshold for s in self.slos if s.sli.latency is not None})


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec and where it came from."""

    spec: Spec
    path: Path | None
    sha256: str


# --- loading -----------------------------------------------------------------------------------


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a spec file. Raises :class:`SpecError` listing every problem."""
    p = Path(path)
    name = str(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(
            [SpecIssue("", "file not found", file=name)],
            hint="pass --spec PATH, or run vigil where vigil.yaml is (`vigil check examples/platform/vigil.yaml` shows a full example)",
        ) from None
    except IsADirectoryError:
        raise SpecError([SpecIssue("", "is a directory, not a spec file", file=name)]) from None
    except PermissionError:
        raise SpecError([SpecIssue("", "permission denied", file=name)]) from None
    spec = parse_spec(data, filename=name)
    return LoadedSpec(spec, p, hashlib.sha256(data).hexdigest())


def spec_tree(path: str | Path) -> tuple[Any, Any] | None:
    """The YAML tree of a spec file (with line marks) and its plain form, for checks beyond the
    schema (``vigil check``'s warnings); None when the file is not a readable YAML mapping (the
    loader reports why)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            return None
        tree = yamlio.load_marked(yamlio.decode(data, str(path)), str(path))
    except (OSError, SpecError):
        return None
    if not isinstance(tree, dict):
        return None
    try:
        return tree, yamlio.to_plain(tree, str(path))
    except SpecError:
        return None


located = yamlio.located
"""``(spec path, message)`` pairs as issues with the file, line and column of each path."""


def parse_spec(data: bytes | str, *, filename: str = "<spec>") -> Spec:
    """Validate spec text. Raises :class:`SpecError`."""
    text = yamlio.decode(data, filename)
    tree = yamlio.load_marked(text, filename)
    if tree is None:
        raise SpecError(
            [SpecIssue("", "the spec is empty", file=filename)],
            hint="start from examples/platform/vigil.yaml; a spec needs at least `version: 1` and `services:`",
        )
    if not isinstance(tree, dict):
        raise SpecError([SpecIssue("", f"the top level must be a mapping, not a {_kind(tree)}", file=filename, line=1)])
    plain = yamlio.to_plain(tree, filename)
    secrets = located(secret_values(plain), tree, filename)
    try:
        spec = Spec.model_validate(plain)
    except ValidationError as e:
        # every problem in one pass: the schema's, and the cross-references the plain tree shows
        issues = _issues_from_pydantic(e, tree, filename)
        seen = {(i.path, i.message) for i in issues}
        issues += [i for i in _cross_check_plain(plain, tree, filename) if (i.path, i.message) not in seen]
        raise SpecError(secrets + issues) from None
    issues = secrets + _cross_check(spec, tree, filename, plain)
    if issues:
        raise SpecError(issues)
    return spec


def secret_values(plain: Any) -> list[tuple[tuple, str]]:
    """Every key or value of the spec that looks like a secret, as (spec path, message). A spec is
    committed and served at /api/v1/spec: secrets come from the environment or a private file."""
    from vigil.secretscan import looks_like_secret

    out: list[tuple[tuple, str]] = []
    seen: set[int] = set()  # aliased nodes are shared: each is looked at once (an alias bomb stays small)

    def walk(node: Any, loc: tuple) -> None:
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                return
            seen.add(id(node))
        if isinstance(node, dict):
            for k, v in node.items():
                what = looks_like_secret(k) if isinstance(k, str) else None
                if what:
                    out.append((loc, f"a key looks like a secret ({what})"))
                walk(v, loc + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, loc + (i,))
        elif isinstance(node, str):
            what = looks_like_secret(node)
            if what:
                out.append((
                    loc,
                    f"this value looks like a secret ({what}); never put a secret in the spec: name an environment"
                    " variable or a private file that holds it (the `*_env` and `*_file` keys)",
                ))

    walk(plain, ())
    return out


def _clip(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "..."


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "mapping"
    if isinstance(v, list):
        return "list"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return type(v).__name__


_where = yamlio.where
format_path = yamlio.format_path


def _issues_from_pydantic(e: ValidationError, tree: Any, filename: str) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    for err in e.errors(include_url=False):
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        kind = err["type"]
        if kind == "extra_forbidden":
            key = loc[-1] if loc else "?"
            parent = loc[:-1]
            msg = f"unknown key {key!r}"
            known = _known_keys(parent)
            if known:
                close = difflib.get_close_matches(str(key), known, n=1)
                msg += f"; did you mean {close[0]!r}?" if close else f"; allowed here: {', '.join(known)}"
        elif kind == "missing":
            msg = f"required key {loc[-1]!r} is missing" if loc else "required key missing"
            loc_for_line = loc[:-1]
            line, col = _where(tree, loc_for_line)
            issues.append(SpecIssue(format_path(loc), msg, file=filename, line=line, column=col))
            continue
        elif kind in ("value_error", "assertion_error"):
            msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        elif kind == "literal_error":
            m = str(err["msg"])
            msg = f"{m[:1].lower()}{m[1:]}, got {err.get('input')!r}"  # keep the allowed values' case
        else:
            msg = err["msg"]
            if "input" in err and not isinstance(err["input"], (dict, list)):
                msg += f" (got {_clip(repr(err['input']))})"
        if len(msg) > 400:  # a validator that echoes a huge value: keep the head and the advice at the end
            msg = msg[:200] + " ... " + msg[-150:]
        line, col = _where(tree, loc)
        issues.append(SpecIssue(format_path(loc), msg, file=filename, line=line, column=col))
    return issues


def _keys(model: Any) -> dict[str, Any]:
    """The keys a user writes for a model (aliases where a field has one) and their fields."""
    fields = getattr(model, "model_fields", None) or {}
    return {(f.alias or name): f for name, f in fields.items()}


def _known_keys(loc: tuple) -> list[str]:
    """Keys allowed in the model at ``loc``, for 'did you mean' hints."""
    model: Any = Spec
    for k in loc:
        if isinstance(k, int):
            continue
        keys = _keys(model)
        if k not in keys:
            return []
        model = _model_of(keys[k].annotation)
        if model is None:
            return []
    return sorted(_keys(model))


def _model_of(ann: Any) -> Any:
    import typing

    if isinstance(ann, type) and issubclass(ann, SpecModel):
        return ann
    for arg in typing.get_args(ann):
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def _cross_check(spec: Spec, tree: Any, filename: str, plain: Any = None) -> list[SpecIssue]:
    """Problems that need the whole (valid) spec: the plain tree's cross-references, then the
    canary's and the drills' references."""
    issues = _cross_check_plain(plain if plain is not None else spec.model_dump(mode="json", by_alias=True), tree, filename)

    def add(loc: tuple, msg: str) -> None:
        line, col = _where(tree, loc)
        issues.append(SpecIssue(format_path(loc), msg, file=filename, line=line, column=col))

    from vigil.alerting.routing_spec import cross_check as routing_issues
    from vigil.alerting.spec import cross_check as alert_issues
    from vigil.dashboards.spec import cross_check as dashboard_issues
    from vigil.deploy.canary.references import reference_issues
    from vigil.dr.drill_spec import cross_check as drill_issues
    from vigil.finops.spec import cross_check as cost_issues
    from vigil.security.spec import cross_check as security_issues
    from vigil.telemetry.spec import cross_check as source_issues

    for loc, msg in [*reference_issues(spec), *drill_issues(spec), *security_issues(spec), *alert_issues(spec), *routing_issues(spec), *cost_issues(spec), *dashboard_issues(spec), *source_issues(spec)]:
        add(loc, msg)
    for loc, msg in _retention_issues(spec):
        add(loc, msg)
    return issues


_SHORTEST_CALENDAR = {"week": 7, "month": 28, "quarter": 90}  # days


def _retention_issues(spec: Spec) -> list[tuple[tuple, str]]:
    """An explicit ``telemetry.retention`` shorter than the window of an SLO read from the store:
    the retention pass would delete samples inside the window, so its budget (and the gate) would
    read only the part kept (a calendar window counts its shortest length: 28 days a month)."""
    ret = spec.telemetry.retention
    if ret is None:
        return []
    from vigil.units import format_duration

    sources = getattr(spec.telemetry, "sources", None) or {}
    for s in spec.slos:
        src = spec.telemetry.source if s.source in (None, "default") else (None if s.source == "embedded" else sources.get(s.source))
        if getattr(src, "kind", "embedded") != "embedded":
            continue
        w = s.window
        length = w.rolling if w.rolling is not None else Decimal(_SHORTEST_CALENDAR.get(str(w.calendar), 0) * 86400)
        if ret < length:
            return [(
                ("telemetry", "retention"),
                f"retention {format_duration(ret)} is shorter than the window of SLO {s.name} ({format_duration(length)}):"
                " samples inside the window would be deleted, and its budget read from the rest",
            )]
    return []


def _cross_check_plain(plain: Any, tree: Any, filename: str) -> list[SpecIssue]:
    """Cross-references read from the plain tree, so they are reported even when the schema part
    fails: unknown services (of SLOs and freeze rules), duplicate SLO names, bad service names.
    Every value may be of the wrong type here (the schema reports that); such values are skipped."""
    issues: list[SpecIssue] = []

    def add(loc: tuple, msg: str) -> None:
        line, col = _where(tree, loc)
        issues.append(SpecIssue(format_path(loc), msg, file=filename, line=line, column=col))

    if not isinstance(plain, dict):
        return issues
    raw_services = plain.get("services")
    declared = isinstance(raw_services, dict)
    services: dict = raw_services if isinstance(raw_services, dict) else {}
    known = sorted(str(k) for k in services)

    def unknown(name: str) -> str:
        close = difflib.get_close_matches(name, known, n=1)
        return f"unknown service {_clip(repr(name))}" + (
            f"; did you mean {close[0]!r}?" if close else f"; declare it under `services:` (known: {_clip(', '.join(known) or 'none')})"
        )

    slos = plain.get("slos")
    seen: dict[str, int] = {}
    for i, s in enumerate(slos if isinstance(slos, list) else []):
        if not isinstance(s, dict):
            continue
        svc = s.get("service")
        if declared and isinstance(svc, str) and svc not in services:
            add(("slos", i, "service"), unknown(svc))
        name = s.get("name")
        if isinstance(name, str):
            if name in seen:
                add(("slos", i, "name"), f"duplicate SLO name {_clip(repr(name))} (first at slos[{seen[name]}])")
            else:
                seen[name] = i
    policy = plain.get("policy")
    rules = policy.get("freeze") if isinstance(policy, dict) else None
    for i, r in enumerate(rules if isinstance(rules, list) else []):
        svcs = r.get("services") if isinstance(r, dict) else None
        for j, svc in enumerate(svcs if isinstance(svcs, list) else []):
            if declared and isinstance(svc, str) and svc not in services:
                add(("policy", "freeze", i, "services", j), unknown(svc))
    folded: dict[str, str] = {}
    for name in services:
        if isinstance(name, str) and name.lower() in folded:
            add(("services", name), f"service name {_clip(repr(name))} differs from {folded[name.lower()]!r} only in case: one would be taken for the other")
        elif isinstance(name, str):
            folded[name.lower()] = name
        if not isinstance(name, str) or not name or len(name) > 128 or not all((c.isascii() and c.isalnum()) or c in "-_." for c in name):
            # ASCII only: a look-alike (a Cyrillic 'а' in 'аpi') would be another service the gate answers for
            add(("services", name), f"service name {_clip(repr(name))} must be 1-128 letters, digits, '-', '_' or '.' (ASCII)")
    return issues
