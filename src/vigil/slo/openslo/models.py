"""Typed models of the OpenSLO v1 documents vigil reads and writes (``apiVersion: openslo/v1``).

Field names are the specification's (github.com/OpenSLO/OpenSLO, ``README.md`` and
``schemas/v1/``). The models say what each field may hold; what vigil *needs* (a window, one
objective, ``op: lte`` ...) is the importer's business, with vigil's own hints.

Reading is forgiving in one precise way: every field is :data:`Lenient`. A value of the wrong type
does not fail the whole document; the field holds an :class:`Invalid` marker with pydantic's
errors, and the importer reports them (as ``expected a mapping, got a string``) only when it reads
that field, so a field vigil ignores never stops an import. Unknown keys are kept
(``extra="allow"``): the importer warns about them. Keys that OpenSLO defines and vigil has no
place for (``displayName``, ``labels``, ``metricSourceRef``) are listed in ``DROPPED``.

Only :mod:`vigil.slo.openslo` uses these; they are not part of vigil's spec.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Optional, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    StrictStr,
    ValidationError,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vigil.slo.openslo.common import kind_of
from vigil.units import to_decimal


class Invalid:
    """A field whose value has the wrong type: pydantic's errors, relative to the field."""

    __slots__ = ("errors",)

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors

    def __repr__(self) -> str:
        return f"Invalid({self.errors!r})"


def _lenient(value: Any, handler: Any) -> Any:
    try:
        return handler(value)
    except ValidationError as e:
        return Invalid([dict(err) for err in e.errors(include_url=False)])


T = TypeVar("T")
Lenient = Annotated[Optional[T], WrapValidator(_lenient)]  # a generic alias: Lenient[str]
"""A field that may be absent (None), valid, or :class:`Invalid`."""


def _number(v: Any) -> Decimal:
    if isinstance(v, float):
        raise PydanticCustomError("openslo_number", "expected a finite number, got {value}", {"value": str(v)})
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        raise PydanticCustomError("openslo_number", "expected a number, got {what}", {"what": kind_of(v)})
    try:
        return to_decimal(v)
    except ValueError as e:
        raise PydanticCustomError("openslo_number", "{message}", {"message": str(e)}) from None


Number = Annotated[Decimal, PlainValidator(_number)]
"""An exact number (int or Decimal from :mod:`vigil.yamlio`); NaN, infinities and booleans refused."""


_EXPECTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def error_message(err: dict) -> str:
    """One pydantic error of a lenient field as the importer says it."""
    expected = _EXPECTED.get(err["type"])
    if expected is not None:
        return f"expected {expected}, got {kind_of(err.get('input'))}"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"]).removeprefix("Value error, ")


class OpenSLOModel(BaseModel):
    """Base of the models: unknown keys kept, the document's key order remembered."""

    model_config = ConfigDict(extra="allow", frozen=False)

    DROPPED: ClassVar[frozenset[str]] = frozenset()
    """Keys OpenSLO defines that vigil reads nothing from: noted as ignored."""
    EXTRA_DROPPED: ClassVar[bool] = False
    """Whether any other key is also just ignored (a metric source's spec), not unknown."""

    _keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_keys(cls, data: Any, handler: Any) -> Any:
        model = handler(data)
        if isinstance(data, dict):
            model._keys = tuple(data)
        return model

    def has(self, key: str) -> bool:
        """Whether the document wrote ``key`` (even as null)."""
        return key in self._keys

    def keys_read(self) -> tuple[list[str], list[str]]:
        """The keys written here that vigil ignores (OpenSLO's, then unknown), in document order."""
        known = set(type(self).model_fields)
        dropped, unknown = [], []
        for k in self._keys:
            if k in self.DROPPED or (self.EXTRA_DROPPED and k not in known):
                dropped.append(k)
            elif k not in known:
                unknown.append(k)
        return dropped, unknown


# --- shared parts ---------------------------------------------------------------------------------


class Metadata(OpenSLOModel):
    DROPPED = frozenset({"displayName", "labels"})

    name: Lenient[StrictStr] = None
    annotations: Lenient[dict[str, Any]] = None
    displayName: Lenient[Any] = None
    labels: Lenient[Any] = None


class MetricSourceSpec(OpenSLOModel):
    """A PromQL source's ``spec``: the query. Other keys (another source's) are ignored."""

    EXTRA_DROPPED = True

    query: Lenient[StrictStr] = None


class MetricSource(OpenSLOModel):
    DROPPED = frozenset({"metricSourceRef"})

    type: Lenient[StrictStr] = None
    spec: Lenient[MetricSourceSpec] = None
    metricSourceRef: Lenient[StrictStr] = None


class Metric(OpenSLOModel):
    """``{metricSource: ...}``: a ratio's good/total, or a threshold metric."""

    metricSource: Lenient[MetricSource] = None


class RatioMetric(OpenSLOModel):
    counter: Lenient[StrictBool] = None
    good: Lenient[Metric] = None
    bad: Lenient[Any] = None
    total: Lenient[Metric] = None
    raw: Lenient[Any] = None
    rawType: Lenient[Any] = None


class SLISpec(OpenSLOModel):
    description: Lenient[StrictStr] = None
    ratioMetric: Lenient[RatioMetric] = None
    thresholdMetric: Lenient[Metric] = None


class Indicator(OpenSLOModel):
    """An SLI inline in an SLO (``spec.indicator``)."""

    metadata: Lenient[Metadata] = None
    spec: Lenient[SLISpec] = None


class Calendar(OpenSLOModel):
    startTime: Lenient[Any] = None  # a local date and time, as text
    timeZone: Lenient[StrictStr] = None


class TimeWindow(OpenSLOModel):
    duration: Lenient[StrictStr] = None
    isRolling: Lenient[StrictBool] = None
    calendar: Lenient[Calendar] = None


class Objective(OpenSLOModel):
    DROPPED = frozenset({"displayName"})

    op: Lenient[StrictStr] = None
    value: Lenient[Number] = None
    target: Lenient[Number] = None
    targetPercent: Lenient[Number] = None
    timeSliceTarget: Lenient[Number] = None
    timeSliceWindow: Lenient[Any] = None  # a duration, or a number of minutes
    displayName: Lenient[Any] = None
    # a composite SLO's objectives: vigil refuses them
    indicator: Lenient[Any] = None
    indicatorRef: Lenient[Any] = None
    compositeWeight: Lenient[Any] = None


class SLOSpec(OpenSLOModel):
    description: Lenient[StrictStr] = None
    service: Lenient[StrictStr] = None
    indicator: Lenient[Indicator] = None
    indicatorRef: Lenient[StrictStr] = None
    timeWindow: Lenient[list[TimeWindow]] = None
    budgetingMethod: Lenient[StrictStr] = None
    objectives: Lenient[list[Objective]] = None
    alertPolicies: Lenient[Any] = None


class ServiceSpec(OpenSLOModel):
    description: Lenient[StrictStr] = None


class DataSourceSpec(OpenSLOModel):
    type: Lenient[StrictStr] = None
    connectionDetails: Lenient[Any] = None


# --- documents ------------------------------------------------------------------------------------


class Header(OpenSLOModel):
    """What every OpenSLO document starts with."""

    apiVersion: Lenient[StrictStr] = None
    kind: Lenient[StrictStr] = None
    metadata: Lenient[Metadata] = None
    spec: Lenient[Any] = None


class SLODocument(Header):
    spec: Lenient[SLOSpec] = None


class SLIDocument(Header):
    spec: Lenient[SLISpec] = None


class ServiceDocument(Header):
    spec: Lenient[ServiceSpec] = None


class DataSourceDocument(Header):
    spec: Lenient[DataSourceSpec] = None


DOCUMENTS: dict[str, type[Header]] = {
    "SLO": SLODocument,
    "SLI": SLIDocument,
    "Service": ServiceDocument,
    "DataSource": DataSourceDocument,
}


def read_document(data: dict) -> Header:
    """A document's plain data as its kind's model (:class:`Header` for kinds vigil skips)."""
    kind = data.get("kind")
    model = DOCUMENTS.get(kind, Header) if isinstance(kind, str) else Header
    return model.model_validate(data)


def invalid_fields(model: Any, loc: tuple = ()) -> list[tuple[tuple, Invalid]]:
    """Every :class:`Invalid` field under ``model``, with its path (for checks of exported documents)."""
    out: list[tuple[tuple, Invalid]] = []
    if isinstance(model, Invalid):
        out.append((loc, model))
    elif isinstance(model, OpenSLOModel):
        for name in type(model).model_fields:
            out += invalid_fields(getattr(model, name), loc + (name,))
    elif isinstance(model, list):
        for i, v in enumerate(model):
            out += invalid_fields(v, loc + (i,))
    return out


def dump(model: OpenSLOModel) -> dict:
    """A model built by the exporter as plain data, in the specification's key order, without
    absent fields. A field of the wrong type is a bug in vigil: refused here."""
    bad = invalid_fields(model)
    if bad:
        raise AssertionError(f"an exported OpenSLO document has fields of the wrong type: {bad}")
    return model.model_dump(mode="python", exclude_none=True)
