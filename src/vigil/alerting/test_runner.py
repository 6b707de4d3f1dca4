"""``vigil alerts test FILE``: unit tests for alert rules, as ``promtool test rules`` does.

A test file names input series (promtool's expanding notation, or explicit samples), replays them
through an in-memory source (:class:`~vigil.telemetry.sources.memory.MemorySource`) on a fake
clock, evaluating the spec's rules every ``evaluation_interval`` from ``start``, and compares the
alerts active at each ``eval_time`` with the expected ones::

    spec: ../vigil.yaml                 # relative to this file; default: --spec
    start: 2026-01-01T00:00:00Z
    evaluation_interval: 1m
    tests:
      - name: a backlog pages after 10 minutes
        interval: 1m
        input_series:
          - series: 'queue_depth{queue="email"}'
            type: gauge
            values: '10x30 5000x30'
        alert_rule_test:
          - eval_time: 39m
            alertname: queue-backlog
            exp_alerts:
              - exp_labels: {service: api, severity: page}
                state: pending
          - eval_time: 40m
            alertname: queue-backlog
            exp_alerts:
              - exp_labels: {service: api, severity: page}

Values: ``a+bxn`` is ``a, a+b, ..., a+n*b`` (n+1 values), ``a-bxn`` counts down, ``axn`` repeats
``a`` n+1 times, ``_`` is no sample and ``_xn`` is n of them. A counter's values are its running
total, as Prometheus scrapes it (a drop is a reset); a gauge's are its samples; a latency series'
values are observations in seconds (``count`` of each, default 1). ``samples:`` lists explicit
``{at, value}`` pairs instead.

The expected alerts at a time are compared with the firing instances (of ``alertname``, or of
every rule): labels exactly (``alertname`` implied), annotations by the keys given. Pending
instances are compared too when an expected alert names ``state: pending``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from vigil.errors import SpecError, SpecIssue, UsageError
from vigil.model import Duration, SpecModel
from vigil.units import format_duration

DEFAULT_START = "2026-01-01T00:00:00Z"
MAX_STEPS = 200_000
"""Evaluations one test group may replay (about 139 days at 1m): a typo like 10000d stops early."""


# -- the notation ---------------------------------------------------------------------------------

_TERM = re.compile(r"^(?P<a>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?:(?P<sign>[-+])(?P<b>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?))?x(?P<n>\d+)$")
_NUM = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
MAX_VALUES = 1_000_000


def expand(text: str) -> list[Decimal | None]:
    """promtool's expanding notation as a list of values (None: no sample).

    >>> expand('-2+4x3')
    [Decimal('-2'), Decimal('2'), Decimal('6'), Decimal('10')]
    >>> expand('1 _x2 3')
    [Decimal('1'), None, None, Decimal('3')]
    """
    out: list[Decimal | None] = []
    for tok in str(text).split():
        if tok in ("_", "stale"):
            out.append(None)
            continue
        m = re.match(r"^_x(\d+)$", tok)
        if m:
            n = int(m.group(1))
            _bound(len(out) + n, text)
            out.extend([None] * n)
            continue
        m = _TERM.match(tok)
        if m:
            a = Decimal(m.group("a"))
            b = Decimal(m.group("b") or 0) * (-1 if m.group("sign") == "-" else 1)
            n = int(m.group("n"))
            _bound(len(out) + n + 1, text)
            out.extend(a + b * i for i in range(n + 1))
            continue
        if _NUM.match(tok):
            out.append(Decimal(tok))
            continue
        raise ValueError(
            f"cannot read {tok!r} in values {_clip(text)!r}: use numbers, 'a+bxn' (a, a+b, ... a+n*b), "
            "'a-bxn', 'axn', '_' (no sample) or '_xn'"
        )
    return out


def _bound(n: int, text: str) -> None:
    if n > MAX_VALUES:
        raise ValueError(f"values {_clip(text)!r} expand to more than {MAX_VALUES} samples")


def _clip(s: str, n: int = 60) -> str:
    s = str(s)
    return s if len(s) <= n else s[:n] + "..."


# -- the file's model --------------------------------------------------------------------------------


class Sample(SpecModel):
    at: Duration = Field(description="time after the test's start")
    value: Decimal = Field(description="the value (a counter's running total, a gauge's sample, an observation in seconds)")


class InputSeries(SpecModel):
    series: str = Field(description="metric{label=\"value\",...}")
    type: Literal["counter", "gauge", "latency"] = Field("gauge", description="counter, gauge or latency")
    values: str | None = Field(None, description="expanding notation, one value per interval from the start")
    samples: list[Sample] | None = Field(None, description="explicit samples instead of values")
    count: int = Field(1, ge=1, le=1_000_000, description="latency: observations of each value")

    @field_validator("values", mode="before")
    @classmethod
    def _str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, Decimal, float)) and not isinstance(v, bool) else v

    @field_validator("values")
    @classmethod
    def _notation(cls, v: str | None) -> str | None:
        if v is not None:
            expand(v)
        return v

    @field_validator("series")
    @classmethod
    def _series(cls, v: str) -> str:
        from vigil.selector import SelectorError, parse_selector

        try:
            sel = parse_selector(v)
        except SelectorError as e:
            raise ValueError(str(e)) from None
        if any(m.op != "=" for m in sel.matchers):
            raise ValueError("series labels are written label=\"value\" (a series, not a selector)")
        return v

    @model_validator(mode="after")
    def _one(self) -> "InputSeries":
        if (self.values is None) == (self.samples is None):
            raise ValueError("a series has `values` (expanding notation) or `samples` (explicit), one of them")
        return self

    def parsed(self) -> tuple[str, dict[str, str]]:
        from vigil.selector import parse_selector

        sel = parse_selector(self.series)
        return sel.metric, {m.name: m.value for m in sel.matchers}


class ExpectedAlert(SpecModel):
    exp_labels: dict[str, str] = Field(default_factory=dict, description="every label but alertname")
    exp_annotations: dict[str, str] = Field(default_factory=dict, description="annotations compared (by these keys)")
    state: Literal["firing", "pending"] = Field("firing", description="firing (default) or pending")

    @field_validator("exp_labels", "exp_annotations", mode="before")
    @classmethod
    def _strs(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (str(x) if isinstance(x, (int, Decimal)) and not isinstance(x, bool) else x) for k, x in v.items()}
        return v


class AlertTestCase(SpecModel):
    eval_time: Duration = Field(description="time after the start")
    alertname: str | None = Field(None, description="compare this rule's alerts only (default: every rule's)")
    exp_alerts: list[ExpectedAlert] = Field(default_factory=list, description="the alerts expected; empty: none")


class TestGroup(SpecModel):
    name: str | None = None
    interval: Duration | None = Field(None, description="spacing of `values` (default: evaluation_interval)")
    input_series: list[InputSeries] = Field(default_factory=list)
    alert_rule_test: list[AlertTestCase] = Field(default_factory=list)

    @field_validator("interval")
    @classmethod
    def _pos(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v <= 0:
            raise ValueError("interval must be above zero")
        return v


class TestFile(SpecModel):
    spec: str | None = Field(None, description="the spec whose alerts are tested, relative to this file")
    start: str = Field(DEFAULT_START, description="the time of the first value (RFC 3339)")
    evaluation_interval: Duration = Field(Decimal(60), description="how often rules are evaluated (default 1m)")
    tests: list[TestGroup] = Field(description="the test groups")

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        from vigil.clock import parse_time

        if not isinstance(v, str):
            raise ValueError("start is an RFC 3339 time like 2026-01-01T00:00:00Z (quote it)")
        try:
            parse_time(v)
        except UsageError as e:
            raise ValueError(e.message) from None
        return v

    @field_validator("evaluation_interval")
    @classmethod
    def _ei(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("evaluation_interval must be above zero")
        return v


class AlertTestFileError(SpecError):
    """An alert test file is invalid: every problem with its file, line and path."""

    code = "alert-test-invalid"

    def __init__(self, issues: list[SpecIssue], *, hint: str | None = None) -> None:
        super().__init__(issues, hint=hint or "see the README's Alerts section for the test file's format")
        n = len(self.issues)
        self.message = f"the alert test file has {n} problem{'s' if n != 1 else ''}:\n" + "\n".join(f"  {i}" for i in self.issues)
        self.args = (self.message,)


def load_test_file(path: str | Path) -> tuple[TestFile, Path]:
    """Read and validate a test file. Raises :class:`SpecError` naming file, line and path."""
    from vigil.yamlio import Limits, decode, format_path, load_marked, to_plain, where

    p = Path(path)
    name = str(path)
    limits = Limits(what="an alert test file", typical="an alert test file is a few KiB")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such test file: {name}", hint="pass the path of a YAML file of alert tests") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a directory, not a test file") from None
    except PermissionError:
        raise UsageError(f"cannot read {name}: permission denied") from None
    try:
        tree = load_marked(decode(data, name, limits), name, limits)
        if not isinstance(tree, dict):
            raise SpecError([SpecIssue("", "an alert test file is a mapping with `tests:`", file=name, line=1)])
        plain = to_plain(tree, name, limits, str_keys=True)
    except SpecError as e:
        raise AlertTestFileError(e.issues) from None
    try:
        return TestFile.model_validate(plain), p
    except ValidationError as e:
        issues = []
        for err in e.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            elif err["type"] == "missing":
                msg = f"required key {loc[-1]!r} is missing"
            line, col = where(tree, loc)
            issues.append(SpecIssue(format_path(loc), msg, file=name, line=line, column=col))
        raise AlertTestFileError(issues) from None


# -- running ---------------------------------------------------------------------------------------


@dataclass
class Mismatch:
    group: str
    eval_time: Decimal
    alertname: str | None
    missing: list[dict]
    unexpected: list[dict]

    def to_dict(self) -> dict:
        return {
            "group": self.group,
            "eval_time": format_duration(self.eval_time),
            "alertname": self.alertname,
            "missing": self.missing,
            "unexpected": self.unexpected,
        }

    def text(self) -> str:
        head = f"{self.group}: at {format_duration(self.eval_time)}" + (f", alertname {self.alertname}" if self.alertname else "")
        lines = [head]
        for d in self.missing:
            lines.append(f"  - expected, not there: {_show(d)}")
        for d in self.unexpected:
            lines.append(f"  + there, not expected: {_show(d)}")
        return "\n".join(lines)


def _show(d: dict) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(d["labels"].items()))
    out = f"{d['state']} {{{labels}}}"
    if d.get("annotations"):
        out += " annotations " + ", ".join(f"{k}={v!r}" for k, v in sorted(d["annotations"].items()))
    if d.get("value") is not None:
        out += f" value {d['value']}"
    return out


@dataclass
class GroupResult:
    name: str
    checks: int
    mismatches: list[Mismatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.errors


@dataclass
class Result:
    file: str
    spec: str
    groups: list[GroupResult]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.groups)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "spec": self.spec,
            "passed": self.passed,
            "groups": [
                {
                    "name": g.name,
                    "passed": g.passed,
                    "checks": g.checks,
                    "failures": [m.to_dict() for m in g.mismatches],
                    "errors": g.errors,
                }
                for g in self.groups
            ],
        }


def _source(group: TestGroup, start: datetime, interval: Decimal) -> Any:
    from vigil.telemetry.sources.memory import MemorySource

    src = MemorySource()
    t0 = Decimal(int(start.timestamp()))
    for s in group.input_series:
        metric, labels = s.parsed()
        if s.values is not None:
            points = [(t0 + interval * i, v) for i, v in enumerate(expand(s.values))]
        else:
            points = [(t0 + x.at, x.value) for x in sorted(s.samples or [], key=lambda x: x.at)]
        prev: Decimal | None = None
        for ts, v in points:
            if v is None:
                continue
            minute = int(ts // 60)
            if s.type == "counter":
                if v < 0:
                    raise ValueError(f"{s.series}: a counter's running total cannot be negative ({v})")
                inc = v if prev is None else (v - prev if v >= prev else v)  # a drop is a reset
                if prev is None:
                    inc = Decimal(0)  # the first sample sets the baseline, as a first scrape does
                if inc != inc.to_integral_value():
                    raise ValueError(f"{s.series}: counters count whole events; {v} - {prev} is not whole")
                src.add_counter(metric, labels, minute, int(inc))
                prev = v
            elif s.type == "gauge":
                src.set_gauge(metric, labels, minute, float(v))
            else:
                if v < 0:
                    raise ValueError(f"{s.series}: an observation is 0 seconds or more ({v})")
                src.add_observation(metric, labels, minute, float(v), s.count)
    return src


def _actual(instances: list[Any], alertname: str | None, with_pending: bool) -> list[dict]:
    out = []
    for i in instances:
        if alertname is not None and i.labels.get("alertname") != alertname:
            continue
        if i.state == "firing" or (with_pending and i.state == "pending"):
            labels = {k: v for k, v in i.labels.items() if k != "alertname"}
            if alertname is None:
                labels["alertname"] = i.labels.get("alertname", i.rule)
            out.append({"labels": labels, "state": i.state, "annotations": dict(i.annotations),
                        "value": None if i.value is None else float(i.value)})
    return out


def _match(exp: ExpectedAlert, got: dict, alertname: str | None) -> bool:
    labels = dict(exp.exp_labels)
    if alertname is not None:
        labels.pop("alertname", None)
    if labels != got["labels"] or exp.state != got["state"]:
        return False
    return all(got["annotations"].get(k) == v for k, v in exp.exp_annotations.items())


def run_group(group: TestGroup, index: int, rules: list[Any], slos: list[Any], start: datetime, evaluation_interval: Decimal) -> GroupResult:
    from vigil.alerting.evaluate import MemoryState, read_rules

    name = group.name or f"tests[{index}]"
    res = GroupResult(name, 0)
    interval = group.interval or evaluation_interval
    try:
        source = _source(group, start, interval)
    except ValueError as e:
        res.errors.append(str(e))
        return res
    known = {r.name for r in rules}
    for case in group.alert_rule_test:
        if case.alertname is not None and case.alertname not in known:
            res.errors.append(f"alertname {case.alertname!r} is not a rule of the spec (rules: {', '.join(sorted(known)) or 'none'})")
        if case.eval_time % evaluation_interval != 0:
            res.errors.append(
                f"eval_time {format_duration(case.eval_time)} is not a multiple of evaluation_interval {format_duration(evaluation_interval)}"
            )
    if res.errors:
        return res
    cases = sorted(group.alert_rule_test, key=lambda c: c.eval_time)
    last = max((c.eval_time for c in cases), default=Decimal(0))
    steps = int(last // evaluation_interval)
    if steps > MAX_STEPS:
        res.errors.append(f"replaying to {format_duration(last)} takes {steps} evaluations; the most is {MAX_STEPS}")
        return res
    state = MemoryState()
    ci = 0
    for k in range(steps + 1):
        offset = evaluation_interval * k
        at = start + timedelta(seconds=float(offset))
        readings = read_rules(rules, slos, source, at)
        state.step(readings)
        for rule, err in sorted(readings.failed.items()):
            msg = f"rule {rule} failed at {format_duration(offset)}: {err}"
            if msg not in res.errors:
                res.errors.append(msg)
        while ci < len(cases) and cases[ci].eval_time == offset:
            case = cases[ci]
            ci += 1
            res.checks += 1
            with_pending = any(e.state == "pending" for e in case.exp_alerts)
            got = _actual(sorted(state.instances.values(), key=lambda i: i.key), case.alertname, with_pending)
            unmatched = list(got)
            missing = []
            for exp in case.exp_alerts:
                hit = next((g for g in unmatched if _match(exp, g, case.alertname)), None)
                if hit is None:
                    labels = dict(exp.exp_labels)
                    missing.append({"labels": labels, "state": exp.state, "annotations": dict(exp.exp_annotations), "value": None})
                else:
                    unmatched.remove(hit)
            if missing or unmatched:
                res.mismatches.append(Mismatch(name, case.eval_time, case.alertname, missing, unmatched))
    return res


def run_file(path: str | Path, *, spec_path: str | None = None) -> Result:
    """Run every test group of a test file against the spec it names (or ``spec_path``)."""
    from vigil.clock import parse_time
    from vigil.spec import load_spec

    tf, p = load_test_file(path)
    if tf.spec is not None:
        sp = Path(tf.spec)
        sp = sp if sp.is_absolute() else p.parent / sp
    elif spec_path is not None:
        sp = Path(spec_path)
    else:
        raise UsageError(f"{path} names no spec", hint="add `spec: path/to/vigil.yaml` to the test file, or pass --spec")
    loaded = load_spec(sp)
    spec = loaded.spec
    start = parse_time(tf.start)
    groups = [run_group(g, i, list(spec.alerts), list(spec.slos), start, tf.evaluation_interval) for i, g in enumerate(tf.tests)]
    return Result(str(path), str(sp), groups)
