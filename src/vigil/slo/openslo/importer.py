"""OpenSLO v1 documents as a vigil spec.

The documents are read by :mod:`.reader` and typed by :mod:`.models`; this module decides what
each one means for vigil, refusing (with the file, line, document and field) what vigil cannot
evaluate the same way and warning about what it fills in or leaves out. Pure: no file or network
I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from vigil import yamlio
from vigil.errors import SpecError
from vigil.selector import Selector, SelectorError, parse_selector
from vigil.slo.openslo import models
from vigil.slo.openslo.common import (
    A_DESCRIPTION,
    A_EXCLUDE,
    A_MISSING,
    A_OWNER,
    A_TIER,
    ANNOTATION_PREFIX,
    API_VERSION,
    CALENDAR_KIND,
    CALENDAR_START,
    KNOWN_ANNOTATIONS,
    OPENSLO_KINDS,
    PROMQL_TYPES,
    SERVICE_NAME,
    SHORTHAND,
    SHORTHAND_SECONDS,
    SLI_ANNOTATIONS,
    Loc,
    OpenSLOError,
    OpenSLOIssue,
    format_loc,
    kind_of,
    short,
)
from vigil.slo.openslo.reader import Document, parse_documents
from vigil.slo.openslo.writer import dump_spec
from vigil.slo.spec import NAME as SLO_NAME
from vigil.slo.spec import SLO

if TYPE_CHECKING:
    from vigil.spec import Spec

_SUM = re.compile(r"^sum\s*\((.*)\)$", re.S)
_RANGE_FN = re.compile(r"^(rate|increase)\s*\((.*)\[\s*[0-9]+(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*\s*\]\s*\)$", re.S)


@dataclass(frozen=True)
class OpenSloImport:
    """The vigil spec made from OpenSLO documents, its YAML, and what was noted on the way."""

    spec: Spec
    yaml: str
    warnings: list[OpenSLOIssue]


class _Skip(Exception):
    """The current document cannot be imported; its problem is already recorded."""


class _Ctx:
    """Issues and warnings about one document."""

    def __init__(self, doc: Document, issues: list[OpenSLOIssue], warnings: list[OpenSLOIssue]) -> None:
        self.doc = doc
        self.issues = issues
        self.warnings = warnings
        self.dropped: list[str] = []
        self.unknown: list[str] = []

    def _issue(self, loc: Loc, msg: str, hint: str | None) -> OpenSLOIssue:
        line, col = yamlio.where(self.doc.node, loc)
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

    def field(self, model: models.OpenSLOModel, name: str, loc: Loc, *, required: bool = False, hint: str | None = None) -> Any:
        """A field of a model: None when absent; recorded and :class:`_Skip` when it has the wrong
        type (or is required and absent)."""
        value = getattr(model, name)
        if isinstance(value, models.Invalid):
            for err in value.errors:  # the hint is about the field, not about an item of it
                self.error(loc + (name,) + tuple(err["loc"]), models.error_message(err), None if err["loc"] else hint)
            raise _Skip()
        if value is None and required:
            raise self.fail(loc + (name,), "required field is missing", hint)
        return value

    def note_keys(self, model: models.OpenSLOModel, loc: Loc) -> None:
        """Note the keys of ``model`` that vigil ignores, for the warning :meth:`flush` writes."""
        dropped, unknown = model.keys_read()
        self.dropped += [format_loc(loc + (k,)) for k in dropped]
        self.unknown += [format_loc(loc + (k,)) for k in unknown]


@dataclass
class _SLIData:
    ctx: _Ctx
    loc: Loc  # of the SLI spec (``spec`` of an SLI document, ``spec.indicator.spec`` inline)
    md_loc: Loc  # of the SLI's metadata
    spec: models.SLISpec
    annotations: dict[str, str]
    description: str | None


@dataclass
class _State:
    issues: list[OpenSLOIssue] = field(default_factory=list)
    warnings: list[OpenSLOIssue] = field(default_factory=list)
    services: dict[str, dict] = field(default_factory=dict)
    service_docs: dict[str, int] = field(default_factory=dict)
    slis: dict[str, tuple[Document, models.SLIDocument]] = field(default_factory=dict)
    datasources: dict[str, str | None] = field(default_factory=dict)
    slos: list[SLO] = field(default_factory=list)
    slo_docs: dict[str, int] = field(default_factory=dict)
    referenced: set[str] = field(default_factory=set)


def import_openslo(data: bytes | str, *, filename: str = "<openslo>") -> OpenSloImport:
    """OpenSLO v1 text as a vigil spec. Raises :class:`OpenSLOError` listing every problem."""
    return import_documents(parse_documents(data, filename=filename), source=filename)


def import_documents(docs: list[Document], *, source: str | None = None) -> OpenSloImport:
    """Documents read by :func:`~vigil.slo.openslo.reader.parse_documents` as a vigil spec."""
    from vigil.spec import Service, Spec, parse_spec

    st = _State()
    slo_docs: list[tuple[Document, models.SLODocument]] = []
    for doc in docs:
        ctx = _Ctx(doc, st.issues, st.warnings)
        try:
            kind, model = _header(ctx)
        except _Skip:
            continue
        if kind == "SLO":
            assert isinstance(model, models.SLODocument)
            slo_docs.append((doc, model))
        elif kind == "SLI":
            assert isinstance(model, models.SLIDocument)
            name = doc.name
            assert name is not None
            if name in st.slis:
                ctx.error(("metadata", "name"), f"duplicate SLI name {name!r} (first in document {st.slis[name][0].index})")
            else:
                st.slis[name] = (doc, model)
        elif kind == "Service":
            assert isinstance(model, models.ServiceDocument)
            try:
                _service(ctx, st, model)
            except _Skip:
                pass
            ctx.flush()
        elif kind == "DataSource":
            spec = model.spec
            t = spec.type if isinstance(spec, models.DataSourceSpec) else None
            st.datasources[doc.name or ""] = t if isinstance(t, str) else None
        else:
            msg = f"kind {short(kind, 40)} is skipped: vigil imports SLO, SLI and Service"
            hint = None
            if kind in ("AlertPolicy", "AlertCondition", "AlertNotificationTarget"):
                msg += "; vigil's alerting is not configured from OpenSLO"
            elif kind not in OPENSLO_KINDS:
                low = {k.lower(): k for k in OPENSLO_KINDS}
                if kind.lower() in low:
                    hint = f"did you mean kind: {low[kind.lower()]}? (kinds are case-sensitive)"
                msg = f"unknown kind {short(kind, 40)!r} is skipped"
            ctx.warn(("kind",), msg, hint)
    for doc, model in slo_docs:
        ctx = _Ctx(doc, st.issues, st.warnings)
        try:
            _slo(ctx, st, model)
        except _Skip:
            pass
        ctx.flush()
    for name, (doc, _) in st.slis.items():
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
    return OpenSloImport(checked, text, st.warnings)


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


def _header(ctx: _Ctx) -> tuple[str, models.Header]:
    d = ctx.doc.data
    if not isinstance(d, dict):
        raise ctx.fail((), f"a document must be a mapping with apiVersion, kind, metadata and spec, got {kind_of(d)}")
    doc = models.read_document(d)
    api = ctx.field(doc, "apiVersion", (), required=True, hint=f"add `apiVersion: {API_VERSION}`")
    if api != API_VERSION:
        raise ctx.fail(
            ("apiVersion",),
            f"apiVersion {short(api)!r} is not supported; vigil reads {API_VERSION}",
            "convert the document to OpenSLO v1 (see github.com/OpenSLO/OpenSLO)",
        )
    kind = ctx.field(doc, "kind", (), required=True, hint="add `kind: SLO` (or SLI, Service)")
    if kind in ("SLO", "SLI", "Service"):
        md = ctx.field(doc, "metadata", (), required=True)
        ctx.field(md, "name", ("metadata",), required=True)
        ctx.field(doc, "spec", (), required=True)
        ctx.note_keys(doc, ())
        ctx.note_keys(md, ("metadata",))
    return kind, doc


def _annotations(ctx: _Ctx, md: models.Metadata, loc: Loc, mine: Iterable[str]) -> dict[str, str]:
    """The ``vigil.dev/*`` annotations in ``mine``; others are noted as dropped or unknown."""
    ann = ctx.field(md, "annotations", loc)
    out: dict[str, str] = {}
    if not ann:
        return out
    mine = tuple(mine)
    for k, v in ann.items():
        if k in mine:
            if not isinstance(v, str):
                raise ctx.fail(loc + ("annotations", k), f"expected a string, got {kind_of(v)}")
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


def _description(ctx: _Ctx, spec: models.SLOSpec | models.ServiceSpec, loc: Loc, annotations: dict[str, str]) -> str | None:
    desc = ctx.field(spec, "description", loc)
    full = annotations.get(A_DESCRIPTION)
    return full if full is not None else desc


def _service(ctx: _Ctx, st: _State, doc: models.ServiceDocument) -> None:
    md = doc.metadata
    assert isinstance(md, models.Metadata) and isinstance(md.name, str) and isinstance(doc.spec, models.ServiceSpec)
    name = md.name
    if not SERVICE_NAME.match(name):
        raise ctx.fail(
            ("metadata", "name"),
            f"service name {short(name)!r} is not a vigil service name",
            "use 1-128 letters, digits, '-', '_' or '.'",
        )
    if name in st.service_docs:
        raise ctx.fail(("metadata", "name"), f"duplicate Service {name!r} (first in document {st.service_docs[name]})")
    ann = _annotations(ctx, md, ("metadata",), (A_OWNER, A_TIER, A_DESCRIPTION))
    spec = doc.spec
    ctx.note_keys(spec, ("spec",))
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


def _slo(ctx: _Ctx, st: _State, doc: models.SLODocument) -> None:
    md = doc.metadata
    spec = doc.spec
    assert isinstance(md, models.Metadata) and isinstance(md.name, str) and isinstance(spec, models.SLOSpec)
    name: str = md.name
    S: Loc = ("spec",)
    ctx.note_keys(spec, S)
    if spec.alertPolicies:
        ctx.warn(S + ("alertPolicies",), "ignored: vigil's alerting is not configured from OpenSLO alert policies")
    n_issues = len(ctx.issues)
    if not SLO_NAME.match(name):
        ctx.error(
            ("metadata", "name"),
            f"SLO name {short(name)!r} is not a vigil SLO name",
            "use 1-128 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        )
    if name in st.slo_docs:
        ctx.error(("metadata", "name"), f"duplicate SLO name {name!r} (first in document {st.slo_docs[name]})")
    slo_ann = _annotations(ctx, md, ("metadata",), (A_DESCRIPTION,) + SLI_ANNOTATIONS)

    service = _attempt(lambda: ctx.field(spec, "service", S, required=True, hint="name the service the SLO belongs to"))
    if service is not None and not SERVICE_NAME.match(service):
        ctx.error(S + ("service",), f"service name {short(service)!r} is not a vigil service name", "use 1-128 letters, digits, '-', '_' or '.'")

    # objectives first: a composite SLO says so there
    objectives: list[models.Objective] = ctx.field(spec, "objectives", S, required=True, hint="add `objectives: [{target: 0.99}]`")
    OL: Loc = S + ("objectives",)
    for i, o in enumerate(objectives):
        if any(o.has(k) for k in ("indicator", "indicatorRef", "compositeWeight")):
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
    OB: Loc = OL + (0,)
    ctx.note_keys(obj, OB)

    sli = _attempt(_sli_of, ctx, st, spec)
    budgeting = _attempt(ctx.field, spec, "budgetingMethod", S)
    if spec.budgetingMethod is None:  # absent or null
        budgeting = "Occurrences"
        ctx.warn(S, "budgetingMethod is missing (OpenSLO requires it); read as Occurrences")
    objective = _attempt(_target, ctx, obj, OB)
    window = _attempt(_window, ctx, spec, S)
    got = _attempt(_sli_body, ctx, st, sli, budgeting, obj, OB, slo_ann) if sli is not None and budgeting is not None else None
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
            _model_issue(ctx, sli, dict(err), OB)
        raise _Skip() from None
    if sli.ctx is not ctx:
        sli.ctx.flush()
    st.slo_docs[name] = ctx.doc.index
    st.slos.append(slo)
    if service not in st.services:
        st.services[service] = {}


def _model_issue(ctx: _Ctx, sli: _SLIData, err: dict, OB: Loc) -> None:
    loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    head = loc[0] if loc else ""
    if head == "name":
        ctx.error(("metadata", "name"), msg)
    elif head == "service":
        ctx.error(("spec", "service"), msg)
    elif head == "objective":
        ctx.error(OB, msg)
    elif head == "window":
        ctx.error(("spec", "timeWindow", 0), msg)
    elif head == "description":
        ctx.error(("spec", "description"), msg)
    elif head == "sli":
        field_ = loc[2] if len(loc) > 2 else None
        if field_ in ("threshold",):
            ctx.error(OB + ("value",), msg)
        elif field_ == "slice":
            ctx.error(OB + ("timeSliceWindow",), msg)
        elif field_ in ("exclude", "missing"):
            sli.ctx.error(sli.md_loc + ("annotations", A_EXCLUDE if field_ == "exclude" else A_MISSING), msg)
        else:
            sli.ctx.error(sli.loc, msg)
    else:
        ctx.error(("spec",), msg)


def _sli_of(ctx: _Ctx, st: _State, spec: models.SLOSpec) -> _SLIData:
    S: Loc = ("spec",)
    has_ind, has_ref = spec.indicator is not None, spec.indicatorRef is not None
    if has_ind and has_ref:
        raise ctx.fail(S + ("indicatorRef",), "give indicator or indicatorRef, not both")
    if not has_ind and not has_ref:
        raise ctx.fail(S, "the SLO has no indicator (a composite SLO?)", "add `indicator:` with the SLI inline, or `indicatorRef:` naming an SLI document")
    if has_ind:
        ind: models.Indicator = ctx.field(spec, "indicator", S)
        IL: Loc = S + ("indicator",)
        ctx.note_keys(ind, IL)
        md: models.Metadata = ctx.field(ind, "metadata", IL) or models.Metadata()
        ctx.note_keys(md, IL + ("metadata",))
        ctx.field(md, "name", IL + ("metadata",))
        sli_spec: models.SLISpec = ctx.field(ind, "spec", IL, required=True, hint="the inline SLI needs `spec:` with ratioMetric or thresholdMetric")
        ann = _annotations(ctx, md, IL + ("metadata",), SLI_ANNOTATIONS)
        ctx.note_keys(sli_spec, IL + ("spec",))
        desc = ctx.field(sli_spec, "description", IL + ("spec",))
        return _SLIData(ctx, IL + ("spec",), IL + ("metadata",), sli_spec, ann, desc)
    ref: str = ctx.field(spec, "indicatorRef", S)
    st.referenced.add(ref)
    found = st.slis.get(ref)
    if found is None:
        known = ", ".join(sorted(st.slis)) or "none in this file"
        raise ctx.fail(S + ("indicatorRef",), f"no SLI document named {short(ref)!r} (SLIs: {short(known, 200)})", "put the SLI document in the same file")
    doc, model = found
    sctx = _Ctx(doc, ctx.issues, ctx.warnings)
    assert isinstance(model.metadata, models.Metadata) and isinstance(model.spec, models.SLISpec)
    sli_spec = model.spec
    try:
        ann = _annotations(sctx, model.metadata, ("metadata",), SLI_ANNOTATIONS)
        sctx.note_keys(sli_spec, ("spec",))
        desc = sctx.field(sli_spec, "description", ("spec",))
    except _Skip:
        raise ctx.fail(S + ("indicatorRef",), f"the SLI {ref!r} cannot be read (see document {doc.index})") from None
    return _SLIData(sctx, ("spec",), ("metadata",), sli_spec, ann, desc)


def _target(ctx: _Ctx, obj: models.Objective, OB: Loc) -> Decimal:
    target = ctx.field(obj, "target", OB)
    pct = ctx.field(obj, "targetPercent", OB)
    if target is not None and pct is not None:
        raise ctx.fail(OB + ("targetPercent",), "give target or targetPercent, not both")
    if target is None and pct is None:
        raise ctx.fail(OB, "the objective needs target (like 0.999) or targetPercent (like 99.9)")
    if target is not None:
        if not 0 < target < 1:
            hint = f"did you mean targetPercent: {target}?" if 1 < target < 100 else None
            raise ctx.fail(OB + ("target",), f"target {target} is out of range: a fraction above 0 and below 1", hint)
        return target
    assert pct is not None
    if not 0 < pct < 100:
        raise ctx.fail(OB + ("targetPercent",), f"targetPercent {pct} is out of range: above 0 and below 100")
    return pct / 100


def _window(ctx: _Ctx, spec: models.SLOSpec, S: Loc) -> dict:
    tw: list[models.TimeWindow] = ctx.field(
        spec, "timeWindow", S, required=True,
        hint="vigil needs the compliance window: add `timeWindow: [{duration: 30d, isRolling: true}]`",
    )  # fmt: skip
    W: Loc = S + ("timeWindow",)
    if len(tw) != 1:
        raise ctx.fail(W, f"{len(tw)} time windows; OpenSLO and vigil take exactly one")
    w = tw[0]
    W = W + (0,)
    ctx.note_keys(w, W)
    dur: str = ctx.field(w, "duration", W, required=True, hint="like 30d or 1M")
    mt = SHORTHAND.match(dur)
    if not mt:
        raise ctx.fail(W + ("duration",), f"cannot read duration {short(dur)!r}", "an OpenSLO duration is a positive integer and one of m h d w M Q Y, like 28d or 1M")
    n, unit = int(mt.group(1)), mt.group(2)
    rolling = ctx.field(w, "isRolling", W)
    cal: models.Calendar | None = ctx.field(w, "calendar", W)
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
        return {"rolling": Decimal(n * SHORTHAND_SECONDS[unit])}
    if cal is None:
        raise ctx.fail(W, "isRolling: false without a calendar", "add `calendar: {startTime: ..., timeZone: ...}`, or set isRolling: true")
    C: Loc = W + ("calendar",)
    ctx.note_keys(cal, C)
    kind = CALENDAR_KIND.get(dur)
    if kind is None:
        raise ctx.fail(
            W + ("duration",),
            f"a calendar window of {dur} has no vigil equivalent",
            "vigil's calendar windows are 1w (weeks from Monday), 1M (months) and 1Q (quarters)",
        )
    tz = ctx.field(cal, "timeZone", C)
    if tz is None:
        ctx.warn(C, "timeZone is missing; read as UTC")
        tz = "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.fail(C + ("timeZone",), f"unknown time zone {short(tz)!r}", "use an IANA name like Europe/Berlin") from None
    start = cal.startTime
    if start is None:
        ctx.warn(C, f"startTime is missing; vigil's {kind}s start at 00:00 on the first day ({'Monday' if kind == 'week' else 'the 1st'})")
    else:
        when = _start_time(ctx, start, C + ("startTime",))
        _check_aligned(ctx, kind, when, C + ("startTime",))
    return {"calendar": kind, "timezone": tz}


def _start_time(ctx: _Ctx, v: Any, loc: Loc) -> datetime:
    if not isinstance(v, str):  # an unquoted YAML date comes as its text too
        raise ctx.fail(loc, f"expected a date and time, got {kind_of(v)}")
    try:
        when = datetime.fromisoformat(v.strip())
    except ValueError:
        raise ctx.fail(loc, f"cannot read start time {short(v)!r}", "write it like 2024-01-01 00:00:00") from None
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


def _metric_selector(ctx: _Ctx, st: _State, parent: models.OpenSLOModel, key: str, loc: Loc, *, counter: bool) -> Selector:
    holder: models.Metric = ctx.field(parent, key, loc, required=True)
    L = loc + (key,)
    ctx.note_keys(holder, L)
    ms: models.MetricSource = ctx.field(holder, "metricSource", L, required=True)
    M = L + ("metricSource",)
    ctx.note_keys(ms, M)
    typ = ctx.field(ms, "type", M)
    ref = ctx.field(ms, "metricSourceRef", M)
    if typ is None and ref is not None and st.datasources.get(ref):
        typ = st.datasources[ref]
    if typ is None:
        ctx.warn(M, "type is missing; the query is read as a PromQL selector")
    elif typ.lower() not in PROMQL_TYPES:
        raise ctx.fail(
            M + ("type",),
            f"metric source type {short(typ)!r} cannot be imported: vigil reads PromQL selectors",
            "use a Prometheus-compatible source (" + ", ".join(PROMQL_TYPES.values()) + ") with a selector query",
        )
    body: models.MetricSourceSpec = ctx.field(ms, "spec", M, required=True, hint="add `spec: {query: 'metric{label=\"value\"}'}`")
    ctx.note_keys(body, M + ("spec",))
    q: str = ctx.field(body, "query", M + ("spec",), required=True, hint="vigil reads the selector from spec.query")
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
        ctx.warn(Q, f"read {short(q, 80)!r} as the selector {short(str(sel), 80)!r}: vigil sums the increase of every matching series itself")
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
        mt = _SUM.match(inner)
        if mt:
            inner = mt.group(1).strip()
        mt = _RANGE_FN.match(inner)
        if mt:
            inner = mt.group(2).strip()
        if inner == s:
            raise first from None
        try:
            return parse_selector(inner), True
        except SelectorError:
            raise first from None


def _sli_body(ctx: _Ctx, st: _State, sli: _SLIData, budgeting: str, obj: models.Objective, OB: Loc, slo_ann: dict[str, str]) -> tuple[dict, str]:
    sc = sli.ctx
    spec = sli.spec
    L = sli.loc
    ann = dict(sli.annotations)
    for k in SLI_ANNOTATIONS:
        if k in slo_ann:
            if k in ann and ann[k] != slo_ann[k]:
                raise ctx.fail(("metadata", "annotations", k), f"differs from the SLI's annotation {k}", "keep one")
            ann[k] = slo_ann[k]
    ratio, threshold = spec.ratioMetric, spec.thresholdMetric
    if (ratio is None) == (threshold is None):
        raise sc.fail(L, "an SLI has exactly one of ratioMetric and thresholdMetric")
    if budgeting not in ("Occurrences", "Timeslices", "RatioTimeslices"):
        raise ctx.fail(("spec", "budgetingMethod"), f"unknown budgetingMethod {short(budgeting)!r}", "use Occurrences or Timeslices")
    if budgeting == "RatioTimeslices":
        raise ctx.fail(
            ("spec", "budgetingMethod"),
            "RatioTimeslices (the mean of per-slice ratios) has no vigil equivalent; vigil divides sums, never averages ratios",
            "use Occurrences for a ratio SLI",
        )
    if ratio is not None:
        R = L + ("ratioMetric",)
        rm: models.RatioMetric = sc.field(spec, "ratioMetric", L)
        sc.note_keys(rm, R)
        if rm.has("raw") or rm.has("rawType"):
            raise sc.fail(R + ("raw" if rm.has("raw") else "rawType",), "a precomputed ratio (raw) cannot be imported", "vigil counts good and total events: give good and total counters")
        if rm.bad is not None:
            raise sc.fail(
                R + ("bad",),
                "bad/total cannot be imported: vigil's ratio SLI counts good events",
                'give `good:` as a selector of the events that are not bad, like http_requests{code!~"5.."}',
            )
        counter = sc.field(rm, "counter", R)
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
            if obj.has(k):
                ctx.warn(OB + (k,), f"ignored: {k} applies to a thresholdMetric only")
        for k in ("timeSliceTarget", "timeSliceWindow"):
            if obj.has(k):
                ctx.warn(OB + (k,), f"ignored: {k} applies to Timeslices only")
        return body, "ratio"

    if A_EXCLUDE in ann:
        raise sc.fail(sli.md_loc + ("annotations", A_EXCLUDE), "applies to ratio SLIs only")
    metric = _attempt(_metric_selector, sc, st, spec, "thresholdMetric", L, counter=False)
    op = ctx.field(obj, "op", OB, required=True, hint="vigil's thresholds are `op: lte` (at or under the value)")
    if op != "lte":
        hint = {
            "lt": "vigil counts a value at the threshold as good; use op: lte",
            "gte": "vigil's thresholds are upper bounds (op: lte)",
            "gt": "vigil's thresholds are upper bounds (op: lte)",
        }.get(op, "use op: lte")
        raise ctx.fail(OB + ("op",), f"op {short(op)!r} cannot be imported", hint)
    value = ctx.field(obj, "value", OB, required=True, hint="the threshold in seconds, like 0.3")
    if value <= 0:
        raise ctx.fail(OB + ("value",), f"value {value} must be above zero (a threshold in seconds)")
    if metric is None:
        raise _Skip()
    if budgeting == "Occurrences":
        if A_MISSING in ann:
            raise sc.fail(sli.md_loc + ("annotations", A_MISSING), "applies to time-slice (freshness) SLIs only")
        for k in ("timeSliceTarget", "timeSliceWindow"):
            if obj.has(k):
                ctx.warn(OB + (k,), f"ignored: {k} applies to Timeslices only")
        return {"metric": metric, "threshold": value}, "latency"
    # Timeslices: freshness
    tst = ctx.field(obj, "timeSliceTarget", OB, required=True, hint="vigil's time slice is good when every sample is within the value: timeSliceTarget: 1")
    if tst != 1:
        raise ctx.fail(
            OB + ("timeSliceTarget",),
            f"timeSliceTarget {tst} cannot be imported: a vigil time slice is good only when every sample in it is within the value",
            "use timeSliceTarget: 1",
        )
    tsw = obj.timeSliceWindow
    if tsw is None:
        raise ctx.fail(OB + ("timeSliceWindow",), "required field is missing", "the slice length, like 1m")
    slice_ = _slice(ctx, tsw, OB + ("timeSliceWindow",))
    body = {"metric": metric, "threshold": value, "slice": slice_}
    if A_MISSING in ann:
        if ann[A_MISSING] not in ("bad", "good", "ignore"):
            raise sc.fail(sli.md_loc + ("annotations", A_MISSING), f"{short(ann[A_MISSING])!r} is not one of bad, good, ignore")
        body["missing"] = ann[A_MISSING]
    else:
        ctx.warn((), f"no {A_MISSING} annotation: a slice without a sample counts as bad (vigil's default)")
    return body, "freshness"


def _slice(ctx: _Ctx, v: Any, loc: Loc) -> Decimal:
    if isinstance(v, bool):
        raise ctx.fail(loc, f"expected a duration like 1m, got {kind_of(v)}")
    if isinstance(v, (int, Decimal)):
        if v <= 0 or v != int(v):
            raise ctx.fail(loc, f"{v} is not a whole number of minutes")
        return Decimal(int(v) * 60)  # OpenSLO: a bare number is minutes
    if not isinstance(v, str):
        raise ctx.fail(loc, f"expected a duration like 1m, got {kind_of(v)}")
    mt = SHORTHAND.match(v.strip())
    if not mt or mt.group(2) not in SHORTHAND_SECONDS:
        raise ctx.fail(loc, f"cannot read slice {short(v)!r}", "a slice is whole minutes that divide an hour: 1m, 2m, 5m, 10m, 15m, 30m or 1h")
    return Decimal(int(mt.group(1)) * SHORTHAND_SECONDS[mt.group(2)])
