"""OpenSLO v1 in and out: vigil's SLOs as OpenSLO documents, and OpenSLO documents as a vigil spec.

Pure conversion: text and models in, text, plain data and models out; no file or network I/O, no
clock. The CLI (:mod:`vigil.cli.openslo`) reads and writes the files.

The OpenSLO v1 specification is the ``README.md`` of github.com/OpenSLO/OpenSLO (``apiVersion:
openslo/v1``), with its JSON schemas under ``schemas/v1/`` and its Go SDK under ``pkg/openslo/v1/``.
Field names here follow it exactly.

Mapping
=======

========================================  ============================================================
vigil                                     OpenSLO v1
========================================  ============================================================
``services.<name>``                       ``kind: Service``, ``metadata.name``
``services.<name>.description``           Service ``spec.description``
``services.<name>.owner`` / ``.tier``     Service ``metadata.annotations`` ``vigil.dev/owner`` /
                                          ``vigil.dev/tier``
``slos[].name``                           SLO ``metadata.name`` (and the inline indicator's name)
``slos[].service``                        SLO ``spec.service``
``slos[].description``                    SLO ``spec.description`` (at most 1050 characters; a longer
                                          one is cut there and kept whole in the annotation
                                          ``vigil.dev/description``)
``slos[].objective`` (a fraction)         ``spec.objectives[0].target`` (``targetPercent`` is read too)
``window: {rolling: 30d}``                ``timeWindow: [{duration: 30d, isRolling: true}]``
``window: {calendar: month, timezone}``   ``timeWindow: [{duration: 1M, isRolling: false, calendar:
                                          {startTime: "2024-01-01 00:00:00", timeZone}}]``;
                                          ``week`` is ``1w``, ``quarter`` is ``1Q``. The start time is
                                          a period start in the zone (2024-01-01 is a Monday and the
                                          first day of a month, quarter and year).
``sli.ratio`` good / total                ``indicator.spec.ratioMetric`` ``{counter: true, good,
                                          total}``, each ``metricSource: {type: Prometheus, spec:
                                          {query: <selector>}}``; ``budgetingMethod: Occurrences``
``sli.ratio.exclude``                     indicator annotation ``vigil.dev/exclude: <selector>``
``sli.latency`` metric / threshold        ``thresholdMetric`` on the observation metric;
                                          ``budgetingMethod: Occurrences``; objective ``op: lte``,
                                          ``value: <threshold in seconds>``, ``target``
``sli.freshness`` metric / threshold      ``thresholdMetric`` on the gauge; ``budgetingMethod:
                                          Timeslices``; objective ``op: lte``, ``value: <threshold
                                          in seconds>``, ``target``, ``timeSliceTarget: 1`` (every
                                          sample in a slice within the threshold),
                                          ``timeSliceWindow: <slice>``
``sli.freshness.missing``                 indicator annotation ``vigil.dev/missing: bad|good|ignore``
========================================  ============================================================

Export writes one ``kind: Service`` document per service (so an import gives back the same
``services:`` with their descriptions), then one ``kind: SLO`` document per SLO with its SLI inline
(``spec.indicator``). Durations use the OpenSLO duration shorthand (one positive integer and one of
``m h d w M Q Y``): windows and slices are written in the largest of ``d``, ``h``, ``m`` that divides
them (``30d``, ``36h``, ``90m``). Numbers are written exactly (``0.999``, ``0.3``).

What OpenSLO cannot carry
-------------------------
- ``policy`` (freeze rules, overrides) and ``telemetry``: no OpenSLO equivalent; not exported
  (export warns when the spec has freeze rules or override labels).
- ``exclude`` of a ratio SLI: no OpenSLO field. It travels in the annotation ``vigil.dev/exclude``,
  which only vigil reads: another OpenSLO tool computes good/total over all events and so counts the
  excluded events (issuer declines) as bad. Export warns for each such SLO.
- ``missing`` of a freshness SLI: no OpenSLO field (what a time slice without data counts as is
  left to the implementation); it travels in ``vigil.dev/missing``.
- ``owner`` and ``tier`` of a service: annotations only vigil reads.
- A latency or freshness threshold is written in seconds, the unit vigil's metrics use; OpenSLO
  leaves the unit of ``value`` to the metric.
- Objectives and thresholds are OpenSLO numbers, which every tool (and vigil's import) reads as
  IEEE doubles: a value with more than 15 significant digits may come back rounded (export warns).
- A calendar window without a time zone is exported with ``timeZone: UTC`` and comes back as
  ``timezone: UTC``: the same window, spelled out.
- SLO and service names are kept as they are; a name that is not an RFC 1123 label (``_``, more
  than 63 characters) is legal in vigil and may be refused by strict OpenSLO tools: export warns.

Import
======
Reads a stream of OpenSLO v1 documents (YAML or JSON; a document may also be a list of documents,
as in the OpenSLO Go SDK's examples). ``kind: SLO`` with an inline ``indicator`` or an
``indicatorRef`` to a ``kind: SLI`` document, and ``kind: Service``, are imported; ``kind:
DataSource`` only resolves a ``metricSourceRef``'s type; every other kind is skipped with a warning.
Every SLO's service becomes a vigil service, declared or not.

Errors (nothing is written; each names the file, line, document and field, with a hint) where
vigil cannot keep the meaning:

- ``apiVersion`` other than ``openslo/v1``; a missing ``kind``, ``metadata.name`` or ``spec``; a
  value of the wrong type; a name vigil does not accept; duplicate names.
- a ``metricSource`` whose ``type`` is not PromQL (Prometheus, Thanos, Mimir, Cortex,
  VictoriaMetrics), or whose ``spec.query`` is not a selector. For counters, ``sum(...)``,
  ``rate(...[d])`` and ``increase(...[d])`` around a selector are read as the selector, with a
  warning: vigil sums the increase of every matching series itself.
- ``ratioMetric`` with ``bad`` instead of ``good``, with ``raw``/``rawType``, or ``counter: false``.
- ``budgetingMethod: RatioTimeslices``; ``Timeslices`` on a ``ratioMetric``; ``Timeslices`` with
  ``timeSliceTarget`` other than 1.
- a ``thresholdMetric`` objective whose ``op`` is not ``lte`` (vigil's thresholds are "at or
  under"), or without ``value``.
- more than one objective, or none; ``target`` and ``targetPercent`` both or neither; a composite
  SLO (objectives with their own ``indicator``/``indicatorRef``/``compositeWeight``, or an SLO
  without an indicator).
- a ``timeWindow`` that is missing or not exactly one item; a rolling window in ``M``, ``Q`` or
  ``Y`` (not a fixed length); a calendar window other than ``1w``, ``1M``, ``1Q``; a calendar
  ``startTime`` that is not the start of a week (Monday 00:00), month or quarter.
- an SLI ``vigil.dev/*`` annotation that does not apply to the SLI (``exclude`` on a threshold
  metric) or cannot be read.

Warnings (the import goes on; the meaning is kept) for: skipped kinds; ``alertPolicies`` (vigil's
alerting is not configured from OpenSLO); fields vigil has no place for (``displayName``,
``labels``, other annotations, ``metricSourceRef``, extra ``metricSource.spec`` keys); an
unknown field; a missing ``budgetingMethod`` (read as ``Occurrences``); a missing ``counter``
(read as ``true``); a missing calendar ``startTime`` or ``timeZone`` (read as a period start in
UTC); a missing ``metricSource.type`` (the query is read as a PromQL selector); a freshness SLI
without ``vigil.dev/missing`` (vigil's default ``bad`` applies); ``op``/``value`` on a ratio SLO and
time-slice fields on an ``Occurrences`` SLO (ignored, as OpenSLO says).

Hostile input: at most :data:`MAX_BYTES` of UTF-8, :data:`MAX_DOCUMENTS` documents,
:data:`MAX_ALIASES` YAML aliases and :data:`MAX_DEPTH` levels of nesting; duplicate keys are
refused. Every failure is an :class:`OpenSLOError` (a :class:`~vigil.errors.VigilError`, exit 2).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from vigil.errors import SpecError, VigilError
from vigil.slo.spec import NAME as SLO_NAME
from vigil.slo.spec import SLO
from vigil.spec import Service, Spec, parse_spec
from vigil.telemetry.selector import Selector, SelectorError, parse_selector
from vigil.units import format_duration, to_decimal

API_VERSION = "openslo/v1"
ANNOTATION_PREFIX = "vigil.dev/"
A_EXCLUDE = "vigil.dev/exclude"
A_MISSING = "vigil.dev/missing"
A_DESCRIPTION = "vigil.dev/description"
A_OWNER = "vigil.dev/owner"
A_TIER = "vigil.dev/tier"
SLI_ANNOTATIONS = (A_EXCLUDE, A_MISSING)
KNOWN_ANNOTATIONS = (A_EXCLUDE, A_MISSING, A_DESCRIPTION, A_OWNER, A_TIER)

CALENDAR_START = "2024-01-01 00:00:00"
"""A Monday, and the first day of a month, a quarter and a year: a period start for every calendar."""
CALENDAR_DURATION = {"week": "1w", "month": "1M", "quarter": "1Q"}
CALENDAR_KIND = {v: k for k, v in CALENDAR_DURATION.items()}
PROMQL_TYPES = {"prometheus": "Prometheus", "thanos": "Thanos", "mimir": "Mimir", "cortex": "Cortex", "victoriametrics": "VictoriaMetrics"}
OPENSLO_KINDS = ("SLO", "SLI", "Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
MAX_DESCRIPTION = 1050
MAX_BYTES = 1024 * 1024
MAX_DOCUMENTS = 10_000
MAX_ALIASES = 200
MAX_DEPTH = 64
MAX_LISTED = 50

_SHORTHAND = re.compile(r"^([1-9][0-9]{0,8})([mhdwMQY])$")
_SHORTHAND_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_RFC1123 = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SUM = re.compile(r"^sum\s*\((.*)\)$", re.S)
_RANGE_FN = re.compile(r"^(rate|increase)\s*\((.*)\[\s*[0-9]+(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*\s*\]\s*\)$", re.S)


# --- errors and warnings ------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenSLOIssue:
    """One problem (or warning) in an OpenSLO file: where, which document, which field, what."""

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    document: int | None = None
    kind: str | None = None
    name: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file or "<openslo>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [where]
        if self.document is not None:
            what = f"document {self.document}"
            if self.kind:
                kind = _short(self.kind, 40)
                what = f"{kind} {_short(self.name, 80)!r} ({what})" if self.name else f"{kind} ({what})"
            parts.append(what)
        if self.path:
            parts.append(self.path)
        out = ": ".join(parts) + ": " + self.message
        if self.hint:
            out += f" (hint: {self.hint})"
        return out

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "document": self.document,
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class OpenSLOError(VigilError):
    """OpenSLO input that cannot become a vigil spec. ``issues`` holds every problem found."""

    code = "openslo-invalid"

    def __init__(self, issues: list[OpenSLOIssue], *, hint: str | None = None) -> None:
        self.issues = list(issues)
        n = len(self.issues)
        head = f"cannot import the OpenSLO documents: {n} problem{'s' if n != 1 else ''}"
        body = "\n".join(f"  {i}" for i in self.issues[:MAX_LISTED])
        if n > MAX_LISTED:
            body += f"\n  ... and {n - MAX_LISTED} more (--json lists them all)"
        super().__init__(
            f"{head}:\n{body}",
            hint=hint
            or "fix or remove the fields above; the mapping and what vigil cannot import are listed in "
            "`vigil openslo import --help`",
        )

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["issues"] = [i.to_dict() for i in self.issues]
        return d


# --- export -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """OpenSLO documents as plain data (numbers as :class:`~decimal.Decimal`) and what was lost."""

    documents: list[dict]
    warnings: list[str]


def export_spec(spec: Spec, *, services: bool = True) -> ExportResult:
    """A spec as OpenSLO v1 documents: ``kind: Service`` for each service (unless ``services`` is
    false), then ``kind: SLO`` for each SLO with its SLI inline."""
    docs: list[dict] = []
    warnings: list[str] = []
    if services:
        for name, svc in spec.services.items():
            docs.append(service_to_openslo(name, svc))
            if not _RFC1123.match(name):
                warnings.append(
                    f"service {name!r}: not an RFC 1123 name (lowercase letters, digits, '-', at most 63); "
                    "strict OpenSLO tools may refuse it"
                )
    for slo in spec.slos:
        docs.append(slo_to_openslo(slo))
        if not _RFC1123.match(slo.name):
            warnings.append(
                f"SLO {slo.name!r}: not an RFC 1123 name (lowercase letters, digits, '-', at most 63); "
                "strict OpenSLO tools may refuse it"
            )
        body = slo.sli.latency or slo.sli.freshness
        for what, num in (("objective", slo.objective), ("threshold", body.threshold if body is not None else None)):
            if num is not None and Decimal(repr(float(num))) != num:
                warnings.append(
                    f"SLO {slo.name!r}: {what} {num} has more digits than an OpenSLO number (a double) keeps; "
                    f"it reads back as {Decimal(repr(float(num)))}"
                )
        if slo.sli.ratio is not None and slo.sli.ratio.exclude is not None:
            warnings.append(
                f"SLO {slo.name!r}: exclude has no OpenSLO field; it is kept in the annotation {A_EXCLUDE}, "
                "which only vigil reads: other tools will count the excluded events as bad"
            )
    if spec.policy.freeze or spec.policy.overrides.labels:
        warnings.append(
            f"policy ({len(spec.policy.freeze)} freeze rules, {len(spec.policy.overrides.labels)} override labels) "
            "has no OpenSLO equivalent and is not exported"
        )
    return ExportResult(docs, warnings)


def service_to_openslo(name: str, svc: Service) -> dict:
    metadata: dict[str, Any] = {"name": name}
    annotations: dict[str, str] = {}
    if svc.owner is not None:
        annotations[A_OWNER] = svc.owner
    if svc.tier is not None:
        annotations[A_TIER] = svc.tier
    spec: dict[str, Any] = {}
    if svc.description is not None:
        spec["description"] = _short_description(svc.description, annotations)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": "Service", "metadata": metadata, "spec": spec}


def slo_to_openslo(slo: SLO) -> dict:
    """One SLO as an OpenSLO v1 ``kind: SLO`` document with its SLI inline."""
    slo_annotations: dict[str, str] = {}
    sli_annotations: dict[str, str] = {}
    objective: dict[str, Any] = {}
    sli_spec: dict[str, Any]
    if slo.sli.ratio is not None:
        r = slo.sli.ratio
        sli_spec = {"ratioMetric": {"counter": True, "good": _metric_source(r.good), "total": _metric_source(r.total)}}
        if r.exclude is not None:
            sli_annotations[A_EXCLUDE] = str(r.exclude)
        budgeting = "Occurrences"
        objective["target"] = slo.objective
    elif slo.sli.latency is not None:
        lat = slo.sli.latency
        sli_spec = {"thresholdMetric": _metric_source(lat.metric)}
        budgeting = "Occurrences"
        objective.update(op="lte", value=lat.threshold, target=slo.objective)
    else:
        fr = slo.sli.freshness
        assert fr is not None
        sli_spec = {"thresholdMetric": _metric_source(fr.metric)}
        sli_annotations[A_MISSING] = fr.missing
        budgeting = "Timeslices"
        objective.update(
            op="lte", value=fr.threshold, target=slo.objective, timeSliceTarget=1, timeSliceWindow=shorthand(fr.slice)
        )
    indicator_md: dict[str, Any] = {"name": slo.name}
    if sli_annotations:
        indicator_md["annotations"] = sli_annotations
    spec: dict[str, Any] = {}
    if slo.description is not None:
        spec["description"] = _short_description(slo.description, slo_annotations)
    spec["service"] = slo.service
    spec["indicator"] = {"metadata": indicator_md, "spec": sli_spec}
    spec["timeWindow"] = [_time_window(slo)]
    spec["budgetingMethod"] = budgeting
    spec["objectives"] = [objective]
    metadata: dict[str, Any] = {"name": slo.name}
    if slo_annotations:
        metadata["annotations"] = slo_annotations
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": spec}


def _metric_source(sel: Selector) -> dict:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": str(sel)}}}


def _time_window(slo: SLO) -> dict:
    w = slo.window
    if w.rolling is not None:
        return {"duration": shorthand(w.rolling), "isRolling": True}
    assert w.calendar is not None
    return {
        "duration": CALENDAR_DURATION[w.calendar],
        "isRolling": False,
        "calendar": {"startTime": CALENDAR_START, "timeZone": w.tz},
    }


def _short_description(text: str, annotations: dict[str, str]) -> str:
    if len(text) <= MAX_DESCRIPTION:
        return text
    annotations[A_DESCRIPTION] = text
    return text[: MAX_DESCRIPTION - 1] + "\u2026"


def shorthand(seconds: Decimal) -> str:
    """Whole minutes as an OpenSLO duration shorthand in the largest of d, h, m that divides them."""
    if seconds <= 0 or seconds % 60 != 0:
        raise ValueError(f"{format_duration(seconds)} is not a whole number of minutes")
    s = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


# --- YAML and JSON out --------------------------------------------------------------------------


def _yaml_out():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.width = 1 << 16
    yaml.indent(mapping=2, sequence=4, offset=2)

    def decimal(representer, d: Decimal):
        if d == d.to_integral_value():
            return representer.represent_int(int(d))
        return representer.represent_scalar("tag:yaml.org,2002:float", format(d.normalize(), "f"))

    def string(representer, s: str):
        # ruamel writes NEL, LS, PS and other non-printables unescaped in plain or single-quoted
        # scalars and reads some of them back as line breaks; double quotes escape them exactly
        if any(not c.isprintable() and c not in "\n" for c in s):
            return representer.represent_scalar("tag:yaml.org,2002:str", s, style='"')
        return representer.represent_str(s)

    yaml.representer.add_representer(Decimal, decimal)
    yaml.representer.add_representer(str, string)
    return yaml


def _ruamel(obj: Any, flow: Iterable[str] = (), key: str | None = None) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    flow = tuple(flow)
    if isinstance(obj, dict):
        m = CommentedMap()
        for k, v in obj.items():
            m[k] = _ruamel(v, flow, k)
        if key in flow:
            m.fa.set_flow_style()
        return m
    if isinstance(obj, list):
        return CommentedSeq(_ruamel(v, flow, key) for v in obj)
    return obj


def dump_documents(documents: list[dict]) -> str:
    """OpenSLO documents as a YAML stream, each starting with ``---``."""
    if not documents:
        return ""
    yaml = _yaml_out()
    buf = io.StringIO()
    yaml.explicit_start = True
    yaml.dump_all([_ruamel(d) for d in documents], buf)
    return buf.getvalue()


def to_json(obj: Any) -> Any:
    """Plain data with Decimals as JSON numbers (integers when whole), selectors as strings."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, Selector):
        return str(obj)
    return obj


def spec_to_document(spec: Spec) -> dict:
    """A spec as the plain data of a ``vigil.yaml`` (services and SLOs; policy and telemetry when set)."""
    services: dict[str, Any] = {}
    for name, svc in spec.services.items():
        services[name] = {k: v for k, v in (("description", svc.description), ("owner", svc.owner), ("tier", svc.tier)) if v is not None}
    slos = []
    for s in spec.slos:
        d: dict[str, Any] = {"name": s.name, "service": s.service, "objective": _objective_out(s.objective)}
        if s.window.rolling is not None:
            d["window"] = {"rolling": format_duration(s.window.rolling)}
        else:
            d["window"] = {"calendar": s.window.calendar, "timezone": s.window.tz}
        if s.description is not None:
            d["description"] = s.description
        if s.sli.ratio is not None:
            r = s.sli.ratio
            body: dict[str, Any] = {"good": str(r.good), "total": str(r.total)}
            if r.exclude is not None:
                body["exclude"] = str(r.exclude)
            d["sli"] = {"ratio": body}
        elif s.sli.latency is not None:
            d["sli"] = {"latency": {"metric": str(s.sli.latency.metric), "threshold": format_duration(s.sli.latency.threshold)}}
        else:
            f = s.sli.freshness
            assert f is not None
            d["sli"] = {
                "freshness": {
                    "metric": str(f.metric),
                    "threshold": format_duration(f.threshold),
                    "slice": format_duration(f.slice),
                    "missing": f.missing,
                }
            }
        slos.append(d)
    out: dict[str, Any] = {"version": 1, "services": services, "slos": slos}
    if spec.policy.freeze or spec.policy.overrides.labels:
        out["policy"] = spec.policy.model_dump(mode="json", exclude_none=True)
    return out


def _objective_out(frac: Decimal) -> Decimal | str:
    """Percent as a YAML number when that reads back exactly and above 1 (a bare number at or under
    1 is a fraction), else a ``"0.5%"`` string."""
    pct = (frac * 100).normalize()
    if pct > 1 and Decimal(repr(float(pct))) == pct:
        return pct
    return f"{pct:f}%"


def dump_spec(spec: Spec, *, source: str | None = None) -> str:
    """A spec as ``vigil.yaml`` text that :func:`vigil.spec.parse_spec` reads back to the same SLOs."""
    yaml = _yaml_out()
    buf = io.StringIO()
    if source is not None:
        buf.write(f"# imported from {_one_line(source)} by `vigil openslo import`; check with `vigil check`\n")
    yaml.dump(_ruamel(spec_to_document(spec), flow=("window", "latency", "freshness", "when")), buf)
    return buf.getvalue()


def _one_line(s: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in s)[:300]


# --- reading documents --------------------------------------------------------------------------


@dataclass
class Document:
    """One OpenSLO document: its plain data, the YAML node (for line numbers), where it is."""

    index: int
    data: Any
    node: Any
    file: str

    @property
    def kind(self) -> str | None:
        k = self.data.get("kind") if isinstance(self.data, dict) else None
        return k if isinstance(k, str) else None

    @property
    def name(self) -> str | None:
        md = self.data.get("metadata") if isinstance(self.data, dict) else None
        n = md.get("name") if isinstance(md, dict) else None
        return n if isinstance(n, str) else None


def parse_documents(data: bytes | str, *, filename: str = "<openslo>") -> list[Document]:
    """A YAML (or JSON) stream of OpenSLO documents. Raises :class:`OpenSLOError`."""

    def fail(msg: str, line: int | None = None, column: int | None = None, hint: str | None = None) -> OpenSLOError:
        return OpenSLOError([OpenSLOIssue(msg, file=filename, line=line, column=column)], hint=hint)

    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise fail(f"larger than {MAX_BYTES // (1024 * 1024)} MiB", hint="split the file; an SLO document is about 1 KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise fail(f"not UTF-8 text (byte {e.start})") from None

    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Composer = _counting_composer()
    try:
        raw = []
        for d in yaml.load_all(io.StringIO(text)):
            raw.append(d)
            if len(raw) > MAX_DOCUMENTS:
                raise fail(f"more than {MAX_DOCUMENTS} documents", hint="split the file")
    except _TooManyAliases:
        raise fail(f"more than {MAX_ALIASES} YAML aliases", hint="write the values out; an alias bomb is refused") from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        raise fail(
            f"invalid YAML: {msg}", mark.line + 1 if mark else None, mark.column + 1 if mark else None
        ) from None
    except YAMLError as e:
        raise fail(f"invalid YAML: {e}") from None
    except RecursionError:
        raise fail("the YAML nests too deeply") from None
    except (ValueError, OverflowError, TypeError) as e:
        # ruamel's constructors raise these for scalars they cannot build, e.g. an integer of more
        # than 4300 digits (Python's int-from-string limit)
        raise fail(f"invalid YAML: {_short(str(e), 120)}") from None

    docs: list[Document] = []
    memo: dict[int, Any] = {}
    for node in raw:
        if node is None:
            continue
        items = node if isinstance(node, list) else [node]
        for item in items:
            if item is None:
                continue
            if len(docs) >= MAX_DOCUMENTS:
                raise fail(f"more than {MAX_DOCUMENTS} documents", hint="split the file")
            plain = _plain(item, 0, memo, filename)
            docs.append(Document(len(docs) + 1, plain, item, filename))
    return docs


def _text(s: str, filename: str) -> str:
    """A string with JSON-style surrogate pairs (``\\ud83d\\ude00``) joined; a lone surrogate is refused."""
    if not any("\ud800" <= c <= "\udfff" for c in s):
        return s
    try:
        return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise OpenSLOError(
            [OpenSLOIssue(f"the string \"{_short(s.encode('ascii', 'backslashreplace').decode())}\" holds a lone UTF-16 surrogate", file=filename)],
            hint="a \\uD800-\\uDFFF escape must be half of a pair",
        ) from None


class _TooManyAliases(Exception):
    pass


def _counting_composer() -> type:
    """ruamel's composer, refusing a stream with more than MAX_ALIASES aliases as it reads them."""
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.events import AliasEvent

    class CountingComposer(Composer):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.parser.check_event(AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _TooManyAliases()
            return super().compose_node(parent, index)

    return CountingComposer


def _plain(node: Any, depth: int, memo: dict[int, Any], filename: str) -> Any:
    """ruamel's tree as plain dicts, lists and scalars; floats as exact Decimals; aliases shared."""
    if depth > MAX_DEPTH:
        line = getattr(getattr(node, "lc", None), "line", None)
        raise OpenSLOError(
            [OpenSLOIssue(f"the YAML nests deeper than {MAX_DEPTH} levels", file=filename, line=line + 1 if isinstance(line, int) else None)]
        )
    if isinstance(node, (dict, list)) and id(node) in memo:
        return memo[id(node)]
    if isinstance(node, dict):
        out_d: dict[str, Any] = {}
        memo[id(node)] = out_d
        for k, v in node.items():
            out_d[_text(k, filename) if isinstance(k, str) else str(k)] = _plain(v, depth + 1, memo, filename)
        return out_d
    if isinstance(node, list):
        out_l: list[Any] = []
        memo[id(node)] = out_l
        out_l.extend(_plain(v, depth + 1, memo, filename) for v in node)
        return out_l
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, float):
        f = float(node)
        return Decimal(repr(f)) if f == f and f not in (float("inf"), float("-inf")) else f
    if isinstance(node, int):
        return int(node)
    if isinstance(node, str):
        return _text(str(node), filename)
    if isinstance(node, datetime):
        return datetime(node.year, node.month, node.day, node.hour, node.minute, node.second, node.microsecond, node.tzinfo)
    if isinstance(node, date):
        return date(node.year, node.month, node.day)
    return str(node)


# --- import -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """The vigil spec made from OpenSLO documents, its YAML, and what was noted on the way."""

    spec: Spec
    yaml: str
    warnings: list[OpenSLOIssue]


class _Skip(Exception):
    """The current document cannot be imported; its problem is already recorded."""


Loc = tuple


def format_loc(loc: Loc) -> str:
    out = ""
    for k in loc:
        if isinstance(k, int):
            out += f"[{k}]"
        elif isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            out += ("." if out else "") + k
        else:
            out += f"[{k!r}]"
    return out


def _where(node: Any, loc: Loc) -> tuple[int | None, int | None]:
    """1-based line and column of the deepest node along ``loc`` in ruamel's tree."""
    line = col = None
    lc = getattr(node, "lc", None)
    if lc is not None and isinstance(lc.line, int) and isinstance(lc.col, int):
        line, col = lc.line + 1, lc.col + 1
    for key in loc:
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        try:
            if isinstance(node, dict):
                rk = next((k for k in node if (k if isinstance(k, str) else str(k)) == key), None)
                if rk is None:
                    break
                child = node[rk]
                ln, cl = lc.key(rk) if isinstance(child, (dict, list)) else lc.value(rk)
                node = child
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                ln, cl = lc.item(key)
                node = node[key]
            else:
                break
        except (KeyError, TypeError, AttributeError, IndexError):
            break
        if not isinstance(ln, int) or not isinstance(cl, int):
            break
        line, col = ln + 1, cl + 1
    return line, col


_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", bool: "true or false"}


def _kind_of(v: Any) -> str:
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if v is None:
        return "null"
    if isinstance(v, (int, Decimal, float)):
        return f"a number ({v})"
    if isinstance(v, str):
        return f"a string ({_short(v)!r})"
    return type(v).__name__


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


class _Ctx:
    """Issues and warnings about one document."""

    def __init__(self, doc: Document, issues: list[OpenSLOIssue], warnings: list[OpenSLOIssue]) -> None:
        self.doc = doc
        self.issues = issues
        self.warnings = warnings
        self.dropped: list[str] = []
        self.unknown: list[str] = []

    def _issue(self, loc: Loc, msg: str, hint: str | None) -> OpenSLOIssue:
        line, col = _where(self.doc.node, loc)
        return OpenSLOIssue(
            msg, path=format_loc(loc), file=self.doc.file, line=line, column=col, document=self.doc.index,
            kind=self.doc.kind, name=self.doc.name, hint=hint,
        )  # fmt: skip

    def error(self, loc: Loc, msg: str, hint: str | None = None) -> None:
        self.issues.append(self._issue(loc, msg, hint))

    def fail(self, loc: Loc, msg: str, hint: str | None = None) -> _Skip:
        self.error(loc, msg, hint)
        return _Skip()

    def warn(self, loc: Loc, msg: str, hint: str | None = None) -> None:
        self.warnings.append(self._issue(loc, msg, hint))

    def flush(self) -> None:
        if self.dropped:
            self.warn((), "ignored, vigil has no place for: " + ", ".join(self.dropped))
        if self.unknown:
            self.warn((), "ignored, not OpenSLO v1 fields: " + ", ".join(self.unknown))
        self.dropped, self.unknown = [], []

    # typed getters: None when absent; raise _Skip (recorded) when present with the wrong type

    def get(self, obj: dict, key: str, loc: Loc, want: type | tuple, *, required: bool = False, hint: str | None = None) -> Any:
        if key not in obj or obj[key] is None:
            if required:
                raise self.fail(loc + (key,), "required field is missing", hint)
            return None
        v = obj[key]
        if want is Decimal:
            if isinstance(v, float):
                raise self.fail(loc + (key,), f"expected a finite number, got {v}", hint)
            if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
                raise self.fail(loc + (key,), f"expected a number, got {_kind_of(v)}", hint)
            try:
                return to_decimal(v)
            except ValueError as e:
                raise self.fail(loc + (key,), str(e), hint) from None
        if not isinstance(v, want):
            names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in (want if isinstance(want, tuple) else (want,)))
            raise self.fail(loc + (key,), f"expected {names}, got {_kind_of(v)}", hint)
        return v

    def check_keys(self, obj: dict, loc: Loc, known: Iterable[str], dropped: Iterable[str] = ()) -> None:
        known, dropped = set(known), set(dropped)
        for k in obj:
            if k in dropped:
                self.dropped.append(format_loc(loc + (k,)))
            elif k not in known:
                self.unknown.append(format_loc(loc + (k,)))


@dataclass
class _SLIData:
    ctx: _Ctx
    loc: Loc  # of the SLI spec (``spec`` of an SLI document, ``spec.indicator.spec`` inline)
    md_loc: Loc  # of the SLI's metadata
    spec: dict
    annotations: dict[str, str]
    description: str | None


@dataclass
class _State:
    issues: list[OpenSLOIssue] = field(default_factory=list)
    warnings: list[OpenSLOIssue] = field(default_factory=list)
    services: dict[str, dict] = field(default_factory=dict)
    service_docs: dict[str, int] = field(default_factory=dict)
    slis: dict[str, Document] = field(default_factory=dict)
    datasources: dict[str, str | None] = field(default_factory=dict)
    slos: list[SLO] = field(default_factory=list)
    slo_docs: dict[str, int] = field(default_factory=dict)
    referenced: set[str] = field(default_factory=set)


def import_openslo(data: bytes | str, *, filename: str = "<openslo>") -> ImportResult:
    """OpenSLO v1 text as a vigil spec. Raises :class:`OpenSLOError` listing every problem."""
    return import_documents(parse_documents(data, filename=filename), source=filename)


def import_documents(docs: list[Document], *, source: str | None = None) -> ImportResult:
    st = _State()
    slo_docs: list[Document] = []
    for doc in docs:
        ctx = _Ctx(doc, st.issues, st.warnings)
        try:
            kind = _header(ctx)
        except _Skip:
            continue
        if kind == "SLO":
            slo_docs.append(doc)
        elif kind == "SLI":
            name = doc.name
            assert name is not None
            if name in st.slis:
                ctx.error(("metadata", "name"), f"duplicate SLI name {name!r} (first in document {st.slis[name].index})")
            else:
                st.slis[name] = doc
        elif kind == "Service":
            try:
                _service(ctx, st)
            except _Skip:
                pass
            ctx.flush()
        elif kind == "DataSource":
            spec = doc.data.get("spec")
            t = spec.get("type") if isinstance(spec, dict) else None
            st.datasources[doc.name or ""] = t if isinstance(t, str) else None
        else:
            msg = f"kind {_short(kind, 40)} is skipped: vigil imports SLO, SLI and Service"
            hint = None
            if kind in ("AlertPolicy", "AlertCondition", "AlertNotificationTarget"):
                msg += "; vigil's alerting is not configured from OpenSLO"
            elif kind not in OPENSLO_KINDS:
                low = {k.lower(): k for k in OPENSLO_KINDS}
                if kind.lower() in low:
                    hint = f"did you mean kind: {low[kind.lower()]}? (kinds are case-sensitive)"
                msg = f"unknown kind {_short(kind, 40)!r} is skipped"
            ctx.warn(("kind",), msg, hint)
    for doc in slo_docs:
        ctx = _Ctx(doc, st.issues, st.warnings)
        try:
            _slo(ctx, st)
        except _Skip:
            pass
        ctx.flush()
    for name, doc in st.slis.items():
        if name not in st.referenced:
            _Ctx(doc, st.issues, st.warnings).warn((), "no SLO refers to this SLI (indicatorRef); skipped")
    st.issues[:] = _unique(st.issues)
    st.warnings[:] = _unique(st.warnings)
    if st.issues:
        raise OpenSLOError(st.issues)
    if not st.slos and not st.services:
        raise OpenSLOError(
            [OpenSLOIssue("no SLO or Service documents to import", file=source, document=None)],
            hint="an OpenSLO file holds documents with `apiVersion: openslo/v1` and `kind: SLO`",
        )
    services = {name: Service(**body) for name, body in st.services.items()}
    spec = Spec(version=1, services=services, slos=st.slos)
    text = dump_spec(spec, source=source)
    try:
        checked = parse_spec(text, filename="<imported spec>")
    except SpecError as e:  # pragma: no cover - every field was validated above; this is a bug
        raise OpenSLOError(
            [OpenSLOIssue(f"the imported spec does not validate: {i}", file=source) for i in e.issues],
            hint="this is a bug in vigil's OpenSLO import; please report it with the input file",
        ) from None
    return ImportResult(checked, text, st.warnings)


def _attempt(fn: Any, *args: Any, **kw: Any) -> Any:
    """``fn(...)``, or None when it recorded a problem: lets independent fields each report theirs."""
    try:
        return fn(*args, **kw)
    except _Skip:
        return None


def _unique(issues: list[OpenSLOIssue]) -> list[OpenSLOIssue]:
    """Without repeats (an SLI document referenced by several SLOs is read once per SLO)."""
    seen: set[OpenSLOIssue] = set()
    out = []
    for i in issues:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _header(ctx: _Ctx) -> str:
    d = ctx.doc.data
    if not isinstance(d, dict):
        raise ctx.fail((), f"a document must be a mapping with apiVersion, kind, metadata and spec, got {_kind_of(d)}")
    api = ctx.get(d, "apiVersion", (), str, required=True, hint=f"add `apiVersion: {API_VERSION}`")
    if api != API_VERSION:
        raise ctx.fail(
            ("apiVersion",),
            f"apiVersion {_short(api)!r} is not supported; vigil reads {API_VERSION}",
            "convert the document to OpenSLO v1 (see github.com/OpenSLO/OpenSLO)",
        )
    kind = ctx.get(d, "kind", (), str, required=True, hint="add `kind: SLO` (or SLI, Service)")
    if kind in ("SLO", "SLI", "Service"):
        md = ctx.get(d, "metadata", (), dict, required=True)
        ctx.get(md, "name", ("metadata",), str, required=True)
        ctx.get(d, "spec", (), dict, required=True)
        ctx.check_keys(d, (), ("apiVersion", "kind", "metadata", "spec"))
        ctx.check_keys(md, ("metadata",), ("name", "annotations"), ("displayName", "labels"))
    return kind


def _annotations(ctx: _Ctx, md: dict, loc: Loc, mine: Iterable[str]) -> dict[str, str]:
    """The ``vigil.dev/*`` annotations in ``mine``; others are noted as dropped or unknown."""
    ann = ctx.get(md, "annotations", loc, dict)
    out: dict[str, str] = {}
    if not ann:
        return out
    mine = tuple(mine)
    for k, v in ann.items():
        if k in mine:
            if not isinstance(v, str):
                raise ctx.fail(loc + ("annotations", k), f"expected a string, got {_kind_of(v)}")
            out[k] = v
        elif k.startswith(ANNOTATION_PREFIX):
            if k in KNOWN_ANNOTATIONS:
                ctx.warn(loc + ("annotations", k), "ignored: this vigil annotation does not apply here")
            else:
                ctx.warn(
                    loc + ("annotations", k),
                    "unknown vigil annotation, ignored",
                    f"vigil reads {', '.join(KNOWN_ANNOTATIONS)}",
                )
        else:
            ctx.dropped.append(format_loc(loc + ("annotations", k)))
    return out


def _description(ctx: _Ctx, spec: dict, loc: Loc, annotations: dict[str, str]) -> str | None:
    desc = ctx.get(spec, "description", loc, str)
    full = annotations.get(A_DESCRIPTION)
    return full if full is not None else desc


def _service(ctx: _Ctx, st: _State) -> None:
    d = ctx.doc.data
    name = d["metadata"]["name"]
    if not _SERVICE_NAME.match(name):
        raise ctx.fail(
            ("metadata", "name"),
            f"service name {_short(name)!r} is not a vigil service name",
            "use 1-128 letters, digits, '-', '_' or '.'",
        )
    if name in st.service_docs:
        raise ctx.fail(("metadata", "name"), f"duplicate Service {name!r} (first in document {st.service_docs[name]})")
    ann = _annotations(ctx, d["metadata"], ("metadata",), (A_OWNER, A_TIER, A_DESCRIPTION))
    spec = d["spec"]
    ctx.check_keys(spec, ("spec",), ("description",))
    body: dict[str, Any] = {}
    desc = _description(ctx, spec, ("spec",), ann)
    if desc is not None:
        body["description"] = desc
    if A_OWNER in ann:
        body["owner"] = ann[A_OWNER]
    if A_TIER in ann:
        body["tier"] = ann[A_TIER]
    st.service_docs[name] = ctx.doc.index
    st.services[name] = body


_COMPOSITE_HINT = "vigil SLOs have one SLI; import each part as its own SLO"


def _slo(ctx: _Ctx, st: _State) -> None:
    d = ctx.doc.data
    md = d["metadata"]
    name: str = md["name"]
    spec: dict = d["spec"]
    S: Loc = ("spec",)
    ctx.check_keys(
        spec,
        S,
        ("description", "service", "indicator", "indicatorRef", "timeWindow", "budgetingMethod", "objectives", "alertPolicies"),
    )
    if spec.get("alertPolicies"):
        ctx.warn(S + ("alertPolicies",), "ignored: vigil's alerting is not configured from OpenSLO alert policies")
    n_issues = len(ctx.issues)
    if not SLO_NAME.match(name):
        ctx.error(
            ("metadata", "name"),
            f"SLO name {_short(name)!r} is not a vigil SLO name",
            "use 1-128 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        )
    if name in st.slo_docs:
        ctx.error(("metadata", "name"), f"duplicate SLO name {name!r} (first in document {st.slo_docs[name]})")
    slo_ann = _annotations(ctx, md, ("metadata",), (A_DESCRIPTION,) + SLI_ANNOTATIONS)

    service = _attempt(lambda: ctx.get(spec, "service", S, str, required=True, hint="name the service the SLO belongs to"))
    if service is not None and not _SERVICE_NAME.match(service):
        ctx.error(S + ("service",), f"service name {_short(service)!r} is not a vigil service name", "use 1-128 letters, digits, '-', '_' or '.'")

    # objectives first: a composite SLO says so there
    objectives = ctx.get(spec, "objectives", S, list, required=True, hint="add `objectives: [{target: 0.99}]`")
    OL: Loc = S + ("objectives",)
    for i, o in enumerate(objectives):
        if isinstance(o, dict) and any(k in o for k in ("indicator", "indicatorRef", "compositeWeight")):
            raise ctx.fail(OL + (i,), "a composite SLO (objectives with their own indicator) cannot be imported", _COMPOSITE_HINT)
    if len(objectives) != 1:
        raise ctx.fail(
            OL,
            f"{len(objectives)} objectives; a vigil SLO has exactly one",
            "import one SLO per objective (copy the document, keep one objective in each, give each a name)"
            if objectives
            else "add one objective, like {target: 0.99}",
        )
    obj = objectives[0]
    O: Loc = OL + (0,)
    if not isinstance(obj, dict):
        raise ctx.fail(O, f"expected a mapping, got {_kind_of(obj)}")
    ctx.check_keys(obj, O, ("op", "value", "target", "targetPercent", "timeSliceTarget", "timeSliceWindow"), ("displayName",))

    sli = _attempt(_sli_of, ctx, st, spec)
    budgeting = _attempt(ctx.get, spec, "budgetingMethod", S, str)
    if budgeting is None and "budgetingMethod" not in spec:
        budgeting = "Occurrences"
        ctx.warn(S, "budgetingMethod is missing (OpenSLO requires it); read as Occurrences")
    objective = _attempt(_target, ctx, obj, O)
    window = _attempt(_window, ctx, spec, S)
    got = _attempt(_sli_body, ctx, st, sli, budgeting, obj, O, slo_ann) if sli is not None and budgeting is not None else None
    description = _attempt(_description, ctx, spec, S, slo_ann)
    if len(ctx.issues) > n_issues or got is None or sli is None:
        raise _Skip()
    sli_body, sli_kind = got
    if description is None and sli.description is not None:
        description = sli.description
    elif sli.description is not None and sli.description != description:
        sli.ctx.dropped.append(format_loc(sli.loc + ("description",)))
    vigil: dict[str, Any] = {
        "name": name,
        "service": service,
        "objective": objective,
        "window": window,
        "sli": {sli_kind: sli_body},
    }
    if description is not None:
        vigil["description"] = description
    try:
        slo = SLO.model_validate(vigil)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            _model_issue(ctx, sli, err, O)
        raise _Skip() from None
    if sli.ctx is not ctx:
        sli.ctx.flush()
    st.slo_docs[name] = ctx.doc.index
    st.slos.append(slo)
    if service not in st.services:
        st.services[service] = {}


def _model_issue(ctx: _Ctx, sli: _SLIData, err: dict, O: Loc) -> None:
    loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    head = loc[0] if loc else ""
    if head == "name":
        ctx.error(("metadata", "name"), msg)
    elif head == "service":
        ctx.error(("spec", "service"), msg)
    elif head == "objective":
        ctx.error(O, msg)
    elif head == "window":
        ctx.error(("spec", "timeWindow", 0), msg)
    elif head == "description":
        ctx.error(("spec", "description"), msg)
    elif head == "sli":
        field_ = loc[2] if len(loc) > 2 else None
        if field_ in ("threshold",):
            ctx.error(O + ("value",), msg)
        elif field_ == "slice":
            ctx.error(O + ("timeSliceWindow",), msg)
        elif field_ in ("exclude", "missing"):
            sli.ctx.error(sli.md_loc + ("annotations", A_EXCLUDE if field_ == "exclude" else A_MISSING), msg)
        else:
            sli.ctx.error(sli.loc, msg)
    else:
        ctx.error(("spec",), msg)


def _sli_of(ctx: _Ctx, st: _State, spec: dict) -> _SLIData:
    S: Loc = ("spec",)
    has_ind, has_ref = spec.get("indicator") is not None, spec.get("indicatorRef") is not None
    if has_ind and has_ref:
        raise ctx.fail(S + ("indicatorRef",), "give indicator or indicatorRef, not both")
    if not has_ind and not has_ref:
        raise ctx.fail(S, "the SLO has no indicator (a composite SLO?)", "add `indicator:` with the SLI inline, or `indicatorRef:` naming an SLI document")
    if has_ind:
        ind = ctx.get(spec, "indicator", S, dict)
        IL: Loc = S + ("indicator",)
        ctx.check_keys(ind, IL, ("metadata", "spec"))
        md = ctx.get(ind, "metadata", IL, dict) or {}
        ctx.check_keys(md, IL + ("metadata",), ("name", "annotations"), ("displayName", "labels"))
        ctx.get(md, "name", IL + ("metadata",), str)
        sli_spec = ctx.get(ind, "spec", IL, dict, required=True, hint="the inline SLI needs `spec:` with ratioMetric or thresholdMetric")
        ann = _annotations(ctx, md, IL + ("metadata",), SLI_ANNOTATIONS)
        ctx.check_keys(sli_spec, IL + ("spec",), ("description", "ratioMetric", "thresholdMetric"))
        desc = ctx.get(sli_spec, "description", IL + ("spec",), str)
        return _SLIData(ctx, IL + ("spec",), IL + ("metadata",), sli_spec, ann, desc)
    ref = ctx.get(spec, "indicatorRef", S, str)
    st.referenced.add(ref)
    doc = st.slis.get(ref)
    if doc is None:
        known = ", ".join(sorted(st.slis)) or "none in this file"
        raise ctx.fail(S + ("indicatorRef",), f"no SLI document named {_short(ref)!r} (SLIs: {_short(known, 200)})", "put the SLI document in the same file")
    sctx = _Ctx(doc, ctx.issues, ctx.warnings)
    sli_spec = doc.data["spec"]
    try:
        ann = _annotations(sctx, doc.data["metadata"], ("metadata",), SLI_ANNOTATIONS)
        sctx.check_keys(sli_spec, ("spec",), ("description", "ratioMetric", "thresholdMetric"))
        desc = sctx.get(sli_spec, "description", ("spec",), str)
    except _Skip:
        raise ctx.fail(S + ("indicatorRef",), f"the SLI {ref!r} cannot be read (see document {doc.index})") from None
    return _SLIData(sctx, ("spec",), ("metadata",), sli_spec, ann, desc)


def _target(ctx: _Ctx, obj: dict, O: Loc) -> Decimal:
    target = ctx.get(obj, "target", O, Decimal)
    pct = ctx.get(obj, "targetPercent", O, Decimal)
    if target is not None and pct is not None:
        raise ctx.fail(O + ("targetPercent",), "give target or targetPercent, not both")
    if target is None and pct is None:
        raise ctx.fail(O, "the objective needs target (like 0.999) or targetPercent (like 99.9)")
    if target is not None:
        if not 0 < target < 1:
            hint = f"did you mean targetPercent: {target}?" if 1 < target < 100 else None
            raise ctx.fail(O + ("target",), f"target {target} is out of range: a fraction above 0 and below 1", hint)
        return target
    assert pct is not None
    if not 0 < pct < 100:
        raise ctx.fail(O + ("targetPercent",), f"targetPercent {pct} is out of range: above 0 and below 100")
    return pct / 100


def _window(ctx: _Ctx, spec: dict, S: Loc) -> dict:
    tw = ctx.get(
        spec, "timeWindow", S, list, required=True,
        hint="vigil needs the compliance window: add `timeWindow: [{duration: 30d, isRolling: true}]`",
    )  # fmt: skip
    W: Loc = S + ("timeWindow",)
    if len(tw) != 1:
        raise ctx.fail(W, f"{len(tw)} time windows; OpenSLO and vigil take exactly one")
    w = tw[0]
    W = W + (0,)
    if not isinstance(w, dict):
        raise ctx.fail(W, f"expected a mapping, got {_kind_of(w)}")
    ctx.check_keys(w, W, ("duration", "isRolling", "calendar"))
    dur = ctx.get(w, "duration", W, str, required=True, hint="like 30d or 1M")
    m = _SHORTHAND.match(dur)
    if not m:
        raise ctx.fail(W + ("duration",), f"cannot read duration {_short(dur)!r}", "an OpenSLO duration is a positive integer and one of m h d w M Q Y, like 28d or 1M")
    n, unit = int(m.group(1)), m.group(2)
    rolling = ctx.get(w, "isRolling", W, bool)
    cal = ctx.get(w, "calendar", W, dict)
    if rolling is None and cal is None:
        raise ctx.fail(W, "neither isRolling: true nor a calendar", "add `isRolling: true` for a rolling window, or `calendar: {startTime, timeZone}`")
    if rolling and cal is not None:
        raise ctx.fail(W + ("isRolling",), "isRolling: true with a calendar; a window is rolling or calendar-aligned")
    if rolling:
        if unit in "MQY":
            raise ctx.fail(
                W + ("duration",),
                f"a rolling window of {dur} has no fixed length",
                "write it in days or weeks, like 30d or 4w",
            )
        return {"rolling": Decimal(n * _SHORTHAND_SECONDS[unit])}
    if cal is None:
        raise ctx.fail(W, "isRolling: false without a calendar", "add `calendar: {startTime: ..., timeZone: ...}`, or set isRolling: true")
    C: Loc = W + ("calendar",)
    ctx.check_keys(cal, C, ("startTime", "timeZone"))
    kind = CALENDAR_KIND.get(dur)
    if kind is None:
        raise ctx.fail(
            W + ("duration",),
            f"a calendar window of {dur} has no vigil equivalent",
            "vigil's calendar windows are 1w (weeks from Monday), 1M (months) and 1Q (quarters)",
        )
    tz = ctx.get(cal, "timeZone", C, str)
    if tz is None:
        ctx.warn(C, "timeZone is missing; read as UTC")
        tz = "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.fail(C + ("timeZone",), f"unknown time zone {_short(tz)!r}", "use an IANA name like Europe/Berlin") from None
    start = cal.get("startTime")
    if start is None:
        ctx.warn(C, f"startTime is missing; vigil's {kind}s start at 00:00 on the first day ({'Monday' if kind == 'week' else 'the 1st'})")
    else:
        when = _start_time(ctx, start, C + ("startTime",))
        _check_aligned(ctx, kind, when, C + ("startTime",))
    return {"calendar": kind, "timezone": tz}


def _start_time(ctx: _Ctx, v: Any, loc: Loc) -> datetime:
    if isinstance(v, datetime):
        when = v
    elif isinstance(v, date):
        when = datetime.combine(v, time())
    elif isinstance(v, str):
        try:
            when = datetime.fromisoformat(v.strip())
        except ValueError:
            raise ctx.fail(loc, f"cannot read start time {_short(v)!r}", "write it like 2024-01-01 00:00:00") from None
    else:
        raise ctx.fail(loc, f"expected a date and time, got {_kind_of(v)}")
    if when.tzinfo is not None:
        raise ctx.fail(loc, "startTime has a UTC offset", "OpenSLO's startTime is a local time without offset; the zone is timeZone")
    return when


def _check_aligned(ctx: _Ctx, kind: str, when: datetime, loc: Loc) -> None:
    midnight = when.time() == time()
    if kind == "week":
        ok, what = midnight and when.weekday() == 0, "a Monday at 00:00"
    elif kind == "month":
        ok, what = midnight and when.day == 1, "the 1st of a month at 00:00"
    else:
        ok, what = midnight and when.day == 1 and when.month in (1, 4, 7, 10), "the 1st of January, April, July or October at 00:00"
    if not ok:
        raise ctx.fail(
            loc,
            f"vigil's {kind} windows start on {what} in the time zone; {when.isoformat(sep=' ')} is not such a start",
            f"set startTime: {CALENDAR_START}, or keep the window in a tool that supports shifted periods",
        )


def _metric_selector(ctx: _Ctx, st: _State, parent: dict, key: str, loc: Loc, *, counter: bool) -> Selector:
    ms_holder = ctx.get(parent, key, loc, dict, required=True)
    L = loc + (key,)
    ctx.check_keys(ms_holder, L, ("metricSource",))
    ms = ctx.get(ms_holder, "metricSource", L, dict, required=True)
    M = L + ("metricSource",)
    ctx.check_keys(ms, M, ("type", "spec"), ("metricSourceRef",))
    typ = ctx.get(ms, "type", M, str)
    ref = ctx.get(ms, "metricSourceRef", M, str)
    if typ is None and ref is not None and st.datasources.get(ref):
        typ = st.datasources[ref]
    if typ is None:
        ctx.warn(M, "type is missing; the query is read as a PromQL selector")
    elif typ.lower() not in PROMQL_TYPES:
        raise ctx.fail(
            M + ("type",),
            f"metric source type {_short(typ)!r} cannot be imported: vigil reads PromQL selectors",
            "use a Prometheus-compatible source (" + ", ".join(PROMQL_TYPES.values()) + ") with a selector query",
        )
    body = ctx.get(ms, "spec", M, dict, required=True, hint="add `spec: {query: 'metric{label=\"value\"}'}`")
    extra = [k for k in body if k != "query"]
    for k in extra:
        ctx.dropped.append(format_loc(M + ("spec", k)))
    q = ctx.get(body, "query", M + ("spec",), str, required=True, hint="vigil reads the selector from spec.query")
    Q = M + ("spec", "query")
    try:
        sel, wrapper = read_query(q, counter=counter)
    except SelectorError as e:
        raise ctx.fail(
            Q,
            f"not a selector vigil can read: {e}",
            'give a plain selector like http_requests{service="api",code!~"5.."}'
            + ("; sum(), rate() and increase() around it are accepted" if counter else ""),
        ) from None
    if wrapper:
        ctx.warn(Q, f"read {_short(q, 80)!r} as the selector {_short(str(sel), 80)!r}: vigil sums the increase of every matching series itself")
    return sel


def read_query(q: str, *, counter: bool) -> tuple[Selector, bool]:
    """The selector in a PromQL query: a plain selector, or (for counters) one wrapped in ``sum()``,
    ``rate(..[d])`` or ``increase(..[d])``. Returns the selector and whether a wrapper was removed.
    Raises :class:`SelectorError`."""
    s = q.strip()
    try:
        return parse_selector(s), False
    except SelectorError as first:
        if not counter:
            raise
        inner = s
        m = _SUM.match(inner)
        if m:
            inner = m.group(1).strip()
        m = _RANGE_FN.match(inner)
        if m:
            inner = m.group(2).strip()
        if inner == s:
            raise first from None
        try:
            return parse_selector(inner), True
        except SelectorError:
            raise first from None


def _sli_body(ctx: _Ctx, st: _State, sli: _SLIData, budgeting: str, obj: dict, O: Loc, slo_ann: dict[str, str]) -> tuple[dict, str]:
    sc = sli.ctx
    spec = sli.spec
    L = sli.loc
    ann = dict(sli.annotations)
    for k in SLI_ANNOTATIONS:
        if k in slo_ann:
            if k in ann and ann[k] != slo_ann[k]:
                raise ctx.fail(("metadata", "annotations", k), f"differs from the SLI's annotation {k}", "keep one")
            ann[k] = slo_ann[k]
    ratio, threshold = spec.get("ratioMetric"), spec.get("thresholdMetric")
    if (ratio is None) == (threshold is None):
        raise sc.fail(L, "an SLI has exactly one of ratioMetric and thresholdMetric")
    if budgeting not in ("Occurrences", "Timeslices", "RatioTimeslices"):
        raise ctx.fail(("spec", "budgetingMethod"), f"unknown budgetingMethod {_short(budgeting)!r}", "use Occurrences or Timeslices")
    if budgeting == "RatioTimeslices":
        raise ctx.fail(
            ("spec", "budgetingMethod"),
            "RatioTimeslices (the mean of per-slice ratios) has no vigil equivalent; vigil divides sums, never averages ratios",
            "use Occurrences for a ratio SLI",
        )
    if ratio is not None:
        R = L + ("ratioMetric",)
        rm = sc.get(spec, "ratioMetric", L, dict)
        sc.check_keys(rm, R, ("counter", "good", "bad", "total", "raw", "rawType"))
        if "raw" in rm or "rawType" in rm:
            raise sc.fail(R + ("raw" if "raw" in rm else "rawType",), "a precomputed ratio (raw) cannot be imported", "vigil counts good and total events: give good and total counters")
        if rm.get("bad") is not None:
            raise sc.fail(
                R + ("bad",),
                "bad/total cannot be imported: vigil's ratio SLI counts good events",
                'give `good:` as a selector of the events that are not bad, like http_requests{code!~"5.."}',
            )
        counter = sc.get(rm, "counter", R, bool)
        if counter is None:
            sc.warn(R, "counter is missing; read as counter: true (monotonic counters)")
        elif counter is False:
            raise sc.fail(R + ("counter",), "counter: false (a gauge that goes up and down) cannot be imported", "vigil's ratio SLI counts events from counters")
        if budgeting == "Timeslices":
            raise ctx.fail(
                ("spec", "budgetingMethod"),
                "Timeslices on a ratioMetric has no vigil equivalent",
                "use Occurrences for a ratio SLI; vigil's time-slice SLI is a threshold on a gauge",
            )
        good = _attempt(_metric_selector, sc, st, rm, "good", R, counter=True)
        total = _attempt(_metric_selector, sc, st, rm, "total", R, counter=True)
        if good is None or total is None:
            raise _Skip()
        body: dict[str, Any] = {"good": good, "total": total}
        if A_EXCLUDE in ann:
            try:
                body["exclude"] = parse_selector(ann[A_EXCLUDE])
            except SelectorError as e:
                raise sc.fail(sli.md_loc + ("annotations", A_EXCLUDE), f"not a selector: {e}") from None
        if A_MISSING in ann:
            raise sc.fail(sli.md_loc + ("annotations", A_MISSING), "applies to time-slice (freshness) SLIs only")
        for k in ("op", "value"):
            if k in obj:
                ctx.warn(O + (k,), f"ignored: {k} applies to a thresholdMetric only")
        for k in ("timeSliceTarget", "timeSliceWindow"):
            if k in obj:
                ctx.warn(O + (k,), f"ignored: {k} applies to Timeslices only")
        return body, "ratio"

    if A_EXCLUDE in ann:
        raise sc.fail(sli.md_loc + ("annotations", A_EXCLUDE), "applies to ratio SLIs only")
    metric = _attempt(_metric_selector, sc, st, spec, "thresholdMetric", L, counter=False)
    op = ctx.get(obj, "op", O, str, required=True, hint="vigil's thresholds are `op: lte` (at or under the value)")
    if op != "lte":
        hint = {
            "lt": "vigil counts a value at the threshold as good; use op: lte",
            "gte": "vigil's thresholds are upper bounds (op: lte)",
            "gt": "vigil's thresholds are upper bounds (op: lte)",
        }.get(op, "use op: lte")
        raise ctx.fail(O + ("op",), f"op {_short(op)!r} cannot be imported", hint)
    value = ctx.get(obj, "value", O, Decimal, required=True, hint="the threshold in seconds, like 0.3")
    if value <= 0:
        raise ctx.fail(O + ("value",), f"value {value} must be above zero (a threshold in seconds)")
    if metric is None:
        raise _Skip()
    if budgeting == "Occurrences":
        if A_MISSING in ann:
            raise sc.fail(sli.md_loc + ("annotations", A_MISSING), "applies to time-slice (freshness) SLIs only")
        for k in ("timeSliceTarget", "timeSliceWindow"):
            if k in obj:
                ctx.warn(O + (k,), f"ignored: {k} applies to Timeslices only")
        return {"metric": metric, "threshold": value}, "latency"
    # Timeslices: freshness
    tst = ctx.get(obj, "timeSliceTarget", O, Decimal, required=True, hint="vigil's time slice is good when every sample is within the value: timeSliceTarget: 1")
    if tst != 1:
        raise ctx.fail(
            O + ("timeSliceTarget",),
            f"timeSliceTarget {tst} cannot be imported: a vigil time slice is good only when every sample in it is within the value",
            "use timeSliceTarget: 1",
        )
    tsw = obj.get("timeSliceWindow")
    if tsw is None:
        raise ctx.fail(O + ("timeSliceWindow",), "required field is missing", "the slice length, like 1m")
    slice_ = _slice(ctx, tsw, O + ("timeSliceWindow",))
    body = {"metric": metric, "threshold": value, "slice": slice_}
    if A_MISSING in ann:
        if ann[A_MISSING] not in ("bad", "good", "ignore"):
            raise sc.fail(sli.md_loc + ("annotations", A_MISSING), f"{_short(ann[A_MISSING])!r} is not one of bad, good, ignore")
        body["missing"] = ann[A_MISSING]
    else:
        ctx.warn((), f"no {A_MISSING} annotation: a slice without a sample counts as bad (vigil's default)")
    return body, "freshness"


def _slice(ctx: _Ctx, v: Any, loc: Loc) -> Decimal:
    if isinstance(v, bool):
        raise ctx.fail(loc, f"expected a duration like 1m, got {_kind_of(v)}")
    if isinstance(v, (int, Decimal)):
        if v <= 0 or v != int(v):
            raise ctx.fail(loc, f"{v} is not a whole number of minutes")
        return Decimal(int(v) * 60)  # OpenSLO: a bare number is minutes
    if not isinstance(v, str):
        raise ctx.fail(loc, f"expected a duration like 1m, got {_kind_of(v)}")
    m = _SHORTHAND.match(v.strip())
    if not m or m.group(2) not in _SHORTHAND_SECONDS:
        raise ctx.fail(loc, f"cannot read slice {_short(v)!r}", "a slice is whole minutes that divide an hour: 1m, 2m, 5m, 10m, 15m, 30m or 1h")
    return Decimal(int(m.group(1)) * _SHORTHAND_SECONDS[m.group(2)])
