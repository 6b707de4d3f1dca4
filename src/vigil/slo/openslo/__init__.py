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

Hostile input: the YAML is read by :mod:`vigil.yamlio`, the same reader as the spec's, with
OpenSLO's limits: at most :data:`MAX_BYTES` of UTF-8, :data:`MAX_DOCUMENTS` documents,
:data:`MAX_ALIASES` YAML aliases, 100,000 values and :data:`MAX_DEPTH` levels of nesting; duplicate
keys, lists or mappings as keys, and tags other than the plain ones (``!custom``,
``!!python/object``, ``!!binary``, ``!!timestamp``) are refused. Every failure is an
:class:`OpenSLOError` (a :class:`~vigil.errors.VigilError`, exit 2).

Modules
=======
- :mod:`.reader`: text to :class:`Document` (plain data, marked YAML tree, place in the stream);
- :mod:`.models`: typed pydantic models of the OpenSLO v1 kinds vigil reads and writes;
- :mod:`.importer`: documents to a vigil spec (:func:`import_openslo`, :class:`OpenSloImport`);
- :mod:`.exporter`: a vigil spec to documents (:func:`export_spec`);
- :mod:`.writer`: YAML and JSON out (:func:`dump_documents`, :func:`dump_spec`, :func:`to_json`);
- :mod:`.common`: names, limits, :class:`OpenSLOIssue` and :class:`OpenSLOError`.
"""

from __future__ import annotations

from vigil.slo.openslo.common import (
    A_DESCRIPTION,
    A_EXCLUDE,
    A_MISSING,
    A_OWNER,
    A_TIER,
    ANNOTATION_PREFIX,
    API_VERSION,
    CALENDAR_DURATION,
    CALENDAR_KIND,
    CALENDAR_START,
    KNOWN_ANNOTATIONS,
    MAX_ALIASES,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_DESCRIPTION,
    MAX_DOCUMENTS,
    MAX_LISTED,
    OPENSLO_KINDS,
    PROMQL_TYPES,
    SLI_ANNOTATIONS,
    OpenSLOError,
    OpenSLOIssue,
    format_loc,
)
from vigil.slo.openslo.exporter import ExportResult, export_spec, service_to_openslo, shorthand, slo_to_openslo
from vigil.slo.openslo.importer import OpenSloImport, import_documents, import_openslo, read_query
from vigil.slo.openslo.reader import Document, parse_documents
from vigil.slo.openslo.writer import dump_documents, dump_spec, spec_to_document, to_json

__all__ = [
    "A_DESCRIPTION",
    "A_EXCLUDE",
    "A_MISSING",
    "A_OWNER",
    "A_TIER",
    "ANNOTATION_PREFIX",
    "API_VERSION",
    "CALENDAR_DURATION",
    "CALENDAR_KIND",
    "CALENDAR_START",
    "KNOWN_ANNOTATIONS",
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_DESCRIPTION",
    "MAX_DOCUMENTS",
    "MAX_LISTED",
    "OPENSLO_KINDS",
    "PROMQL_TYPES",
    "SLI_ANNOTATIONS",
    "Document",
    "ExportResult",
    "OpenSLOError",
    "OpenSLOIssue",
    "OpenSloImport",
    "dump_documents",
    "dump_spec",
    "export_spec",
    "format_loc",
    "import_documents",
    "import_openslo",
    "parse_documents",
    "read_query",
    "service_to_openslo",
    "shorthand",
    "slo_to_openslo",
    "spec_to_document",
    "to_json",
]
