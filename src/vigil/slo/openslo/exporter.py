"""A vigil spec as OpenSLO v1 documents: ``kind: Service`` per service, ``kind: SLO`` per SLO with
its SLI inline. Pure: models in, plain data (numbers as :class:`~decimal.Decimal`) and warnings out.

Each document is built as the typed model the importer reads (:mod:`.models`), so what export
writes is what import understands, key for key.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from vigil.selector import Selector
from vigil.slo.openslo import models
from vigil.slo.openslo.common import (
    A_DESCRIPTION,
    A_EXCLUDE,
    A_MISSING,
    A_OWNER,
    A_TIER,
    API_VERSION,
    CALENDAR_DURATION,
    CALENDAR_START,
    MAX_DESCRIPTION,
    RFC1123,
)
from vigil.units import format_duration

if TYPE_CHECKING:
    from vigil.slo.spec import SLO
    from vigil.spec import Service, Spec


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
            if not RFC1123.match(name):
                warnings.append(
                    f"service {name!r}: not an RFC 1123 name (lowercase letters, digits, '-', at most 63); "
                    "strict OpenSLO tools may refuse it"
                )
    for slo in spec.slos:
        docs.append(slo_to_openslo(slo))
        if not RFC1123.match(slo.name):
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
    """One service as an OpenSLO v1 ``kind: Service`` document."""
    annotations: dict[str, str] = {}
    if svc.owner is not None:
        annotations[A_OWNER] = svc.owner
    if svc.tier is not None:
        annotations[A_TIER] = svc.tier
    description = _short_description(svc.description, annotations) if svc.description is not None else None
    return models.dump(
        models.ServiceDocument(
            apiVersion=API_VERSION,
            kind="Service",
            metadata=models.Metadata(name=name, annotations=annotations or None),
            spec=models.ServiceSpec(description=description),
        )
    )


def slo_to_openslo(slo: SLO) -> dict:
    """One SLO as an OpenSLO v1 ``kind: SLO`` document with its SLI inline."""
    slo_annotations: dict[str, str] = {}
    sli_annotations: dict[str, str] = {}
    if slo.sli.ratio is not None:
        r = slo.sli.ratio
        sli_spec = models.SLISpec(ratioMetric=models.RatioMetric(counter=True, good=_metric(r.good), total=_metric(r.total)))
        if r.exclude is not None:
            sli_annotations[A_EXCLUDE] = str(r.exclude)
        budgeting = "Occurrences"
        objective = models.Objective(target=slo.objective)
    elif slo.sli.latency is not None:
        lat = slo.sli.latency
        sli_spec = models.SLISpec(thresholdMetric=_metric(lat.metric))
        budgeting = "Occurrences"
        objective = models.Objective(op="lte", value=lat.threshold, target=slo.objective)
    else:
        fr = slo.sli.freshness
        assert fr is not None
        sli_spec = models.SLISpec(thresholdMetric=_metric(fr.metric))
        sli_annotations[A_MISSING] = fr.missing
        budgeting = "Timeslices"
        objective = models.Objective(
            op="lte", value=fr.threshold, target=slo.objective, timeSliceTarget=1, timeSliceWindow=shorthand(fr.slice)
        )
    description = _short_description(slo.description, slo_annotations) if slo.description is not None else None
    return models.dump(
        models.SLODocument(
            apiVersion=API_VERSION,
            kind="SLO",
            metadata=models.Metadata(name=slo.name, annotations=slo_annotations or None),
            spec=models.SLOSpec(
                description=description,
                service=slo.service,
                indicator=models.Indicator(metadata=models.Metadata(name=slo.name, annotations=sli_annotations or None), spec=sli_spec),
                timeWindow=[_time_window(slo)],
                budgetingMethod=budgeting,
                objectives=[objective],
            ),
        )
    )


def _metric(sel: Selector) -> models.Metric:
    return models.Metric(metricSource=models.MetricSource(type="Prometheus", spec=models.MetricSourceSpec(query=str(sel))))


def _time_window(slo: SLO) -> models.TimeWindow:
    w = slo.window
    if w.rolling is not None:
        return models.TimeWindow(duration=shorthand(w.rolling), isRolling=True)
    assert w.calendar is not None
    return models.TimeWindow(
        duration=CALENDAR_DURATION[w.calendar],
        isRolling=False,
        calendar=models.Calendar(startTime=CALENDAR_START, timeZone=w.tz),
    )


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


__all__ = ["ExportResult", "export_spec", "service_to_openslo", "shorthand", "slo_to_openslo"]
