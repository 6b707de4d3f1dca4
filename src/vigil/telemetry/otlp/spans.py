"""Spans -> stored spans and request telemetry. Pure: no I/O, no clock.

Every span of an ``ExportTraceServiceRequest`` becomes a row of the trace store. A span whose kind
is one of ``telemetry.traces.request_kinds`` (default: server and consumer, where a request enters
a service) is also a request:

========================  ===========  ===========================================================
metric                    kind         value
========================  ===========  ===========================================================
``span_requests``         counter      1 per span, in the minute the span ended
``span_duration_seconds`` observation  end - start, in the minute the span ended (exact in ns)
========================  ===========  ===========================================================

Both with the labels

- ``service``: the resource's ``service.name`` (``unknown_service`` when missing, as the SDKs say);
- ``route``: the span's ``http.route`` attribute, else its name (low-cardinality by the
  OpenTelemetry conventions: a route template, a GraphQL operation, a function name);
- ``kind``: ``server``, ``consumer``, ...;
- ``code``: ``http.response.status_code`` (or the older ``http.status_code``), absent when the
  span has none;
- ``error``: ``"true"`` when the span's status is ERROR or its HTTP status is 5xx, else ``"false"``;
- the extra labels of ``telemetry.traces.labels`` (label -> attribute), absent when the span lacks
  the attribute.

So the plan's API availability is ``good: span_requests{service="api",error="false"}`` over
``total: span_requests{service="api"}``, and its latency SLO reads ``span_duration_seconds``.

A span is taken whole or not at all: one that cannot be stored (ids of the wrong size or zero, end
before start, too old for the trace retention or too far in the future) or whose telemetry the
store refuses (see :mod:`vigil.telemetry.otlp.receiver`) is rejected, and the answer's
``partial_success`` says how many and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from vigil.telemetry.otlp.values import MAX_ATTRS, MAX_TEXT, label_value, plain

REQUESTS = "span_requests"
DURATION = "span_duration_seconds"
UNKNOWN_SERVICE = "unknown_service"
KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
KIND_NUMBERS = {v: k for k, v in KIND_NAMES.items()}
STATUS_ERROR = 2
MAX_SERVICE = 200
MAX_NAME = 1024
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # one encoder, not one per span


@dataclass(frozen=True)
class SpanRules:
    """What the mapping needs to know: which kinds are requests, the extra labels, and the time
    bounds (ms) a span must lie within."""

    request_kinds: frozenset[int]
    labels: tuple[tuple[str, str], ...]
    now_ms: int
    oldest_ms: int
    """Spans that started before this are not kept (the trace retention)."""
    metric_oldest_ms: int
    """Telemetry older than this is not kept (the store's retention)."""
    max_future_ms: int

    @classmethod
    def of(cls, traces_spec: Any, *, now_ms: int, metric_oldest_ms: int, max_future_ms: int) -> "SpanRules":
        return cls(
            request_kinds=frozenset(KIND_NUMBERS[k] for k in traces_spec.request_kinds),
            labels=tuple(traces_spec.labels.items()),
            now_ms=now_ms,
            oldest_ms=now_ms - int(traces_spec.retention * 1000),
            metric_oldest_ms=metric_oldest_ms,
            max_future_ms=max_future_ms,
        )


@dataclass
class SpanBatch:
    """The spans of one request, in the order sent. ``rows[i]`` is span i's trace-store row (None
    when rejected here), ``requests[i]`` its request telemetry (labels, minute, duration in ns) or
    None, ``rejected`` the spans refused here with the reason."""

    rows: list[tuple | None] = field(default_factory=list)
    requests: list[tuple[tuple[tuple[str, str], ...], int, int] | None] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.rows)


def _hex(b: bytes) -> str:
    return b.hex()


def map_spans(req: Any, rules: SpanRules, received_ms: int) -> SpanBatch:
    """Walk every span of the request (see the module doc)."""
    out = SpanBatch()
    rows = out.rows
    requests = out.requests
    rejected = out.rejected
    request_kinds = rules.request_kinds
    extra = rules.labels
    future_ns = (rules.now_ms + rules.max_future_ms) * 1_000_000
    oldest_ns = rules.oldest_ms * 1_000_000
    metric_oldest_minute_ms = rules.metric_oldest_ms
    for rs in req.resource_spans:
        service = UNKNOWN_SERVICE
        for kv in rs.resource.attributes:
            if kv.key == "service.name":
                service = label_value(kv.value) or UNKNOWN_SERVICE
                break
        service_bad = None
        if len(service) > MAX_SERVICE:
            service_bad = f"service.name is {len(service)} characters; at most {MAX_SERVICE}"
        for ss in rs.scope_spans:
            for sp in ss.spans:
                i = len(rows)
                tid = sp.trace_id
                sid = sp.span_id
                pid = sp.parent_span_id
                start = sp.start_time_unix_nano
                end = sp.end_time_unix_nano
                why = service_bad
                if why is None:
                    if len(tid) != 16 or tid == _ZERO16:
                        why = "the trace id must be 16 bytes, not all zero"
                    elif len(sid) != 8 or sid == _ZERO8:
                        why = "the span id must be 8 bytes, not all zero"
                    elif pid and (len(pid) != 8 or pid == _ZERO8):
                        why = "the parent span id must be empty or 8 bytes, not all zero"
                    elif start == 0 or end < start:
                        why = "the span must have a start time and end at or after it"
                    elif start < oldest_ns:
                        why = "the span started before the trace retention (telemetry.traces.retention)"
                    elif end > future_ns:
                        why = f"the span ends more than {rules.max_future_ms // 1000}s after the server's clock"
                if why is not None:
                    rows.append(None)
                    requests.append(None)
                    rejected[i] = why
                    continue
                kind = sp.kind
                attrs: dict[str, Any] = {}
                route = None
                code = None
                wanted: dict[str, str] = {}
                n = 0
                for kv in sp.attributes:
                    k = kv.key
                    v = kv.value
                    w = v.WhichOneof("value")
                    if w == "string_value":
                        pv: Any = v.string_value
                        lv = pv
                        if len(pv) > MAX_TEXT:
                            pv = pv[:MAX_TEXT] + "..."
                    elif w == "int_value":
                        pv = v.int_value
                        lv = str(pv)
                    else:
                        pv = plain(v)
                        lv = None
                    if n < MAX_ATTRS:
                        attrs[k if len(k) <= 256 else k[:256]] = pv
                        n += 1
                    if k == "http.route":
                        route = lv if lv is not None else label_value(v)
                    elif k == "http.response.status_code" or (k == "http.status_code" and code is None):
                        code = lv if lv is not None else label_value(v)
                    if extra:
                        for lname, attr in extra:
                            if attr == k:
                                wanted[lname] = lv if lv is not None else label_value(v)
                status = sp.status.code
                doc: dict[str, Any] = {"attributes": attrs}
                dropped = len(sp.attributes) - n + sp.dropped_attributes_count
                if dropped:
                    doc["dropped_attributes"] = dropped
                if sp.status.message:
                    doc["status_message"] = sp.status.message[:MAX_TEXT]
                if sp.events:
                    doc["events"] = len(sp.events)
                if sp.links:
                    doc["links"] = [
                        {"trace_id": _hex(ln.trace_id), "span_id": _hex(ln.span_id)} for ln in sp.links[:16]
                    ]
                name = sp.name
                rows.append((
                    _hex(tid), _hex(sid), _hex(pid) if pid else "", service, name if len(name) <= MAX_NAME else name[:MAX_NAME],
                    kind, start, end, status, _dumps(doc), received_ms,
                ))
                if kind not in request_kinds:
                    requests.append(None)
                    continue
                end_ms = end // 1_000_000
                minute = end_ms // 60000
                if minute * 60000 < metric_oldest_minute_ms:
                    rows[i] = None
                    requests.append(None)
                    rejected[i] = "the span ended before the telemetry retention (telemetry.retention)"
                    continue
                error = status == STATUS_ERROR
                if not error and code is not None and len(code) == 3 and code[0] == "5" and code.isdigit():
                    error = True
                labels = [("service", service), ("route", route if route is not None else name), ("kind", KIND_NAMES.get(kind, str(kind)))]
                if code is not None and code != "":
                    labels.append(("code", code))
                labels.append(("error", "true" if error else "false"))
                for lname, value in wanted.items():
                    labels.append((lname, value))
                labels.sort()
                requests.append((tuple(labels), minute, end - start))
    return out


_TS: dict[int, str] = {}


def minute_ts(minute: int) -> str:
    """RFC 3339 text of a Unix minute (cached: a request's spans share a few minutes)."""
    s = _TS.get(minute)
    if s is None:
        if len(_TS) > 100_000:
            _TS.clear()
        s = _TS[minute] = datetime.fromtimestamp(minute * 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return s


def request_lines(batch: SpanBatch, spans: Sequence[int], first_line: int = 1) -> tuple[list[tuple[int, dict]], list[list[int]]]:
    """The push-format lines of the given spans' request telemetry, summed where they share a
    series and minute (a counter line per series-minute; an observation line per distinct
    duration, with its count). Returns the numbered lines and, per line, the spans it carries."""
    counts: dict[tuple, list[int]] = {}
    durations: dict[tuple, list[int]] = {}
    for i in spans:
        r = batch.requests[i]
        if r is None:
            continue
        labels, minute, dur = r
        counts.setdefault((labels, minute), []).append(i)
        durations.setdefault((labels, minute, dur), []).append(i)
    lines: list[tuple[int, dict]] = []
    carried: list[list[int]] = []
    n = first_line
    label_dicts: dict[tuple, dict] = {}
    for (labels, minute), idx in counts.items():
        ld = label_dicts.get(labels)
        if ld is None:
            ld = label_dicts[labels] = dict(labels)
        lines.append((n, {"ts": minute_ts(minute), "metric": REQUESTS, "labels": ld, "inc": len(idx)}))
        carried.append(idx)
        n += 1
    for (labels, minute, dur), idx in durations.items():
        line: dict = {"ts": minute_ts(minute), "metric": DURATION, "labels": label_dicts[labels], "observe": dur / 1e9}
        if len(idx) > 1:
            line["count"] = len(idx)
        lines.append((n, line))
        carried.append(idx)
        n += 1
    return lines, carried
