"""Spans -> stored spans and request telemetry. Pure: no I/O, no clock.

Every span of an ``ExportTraceServiceRequest`` gets a key in the trace store (its ids, its place in
the request, start and service; the span itself is read back from the request's bytes, see
:mod:`vigil.traces.store`). A span whose kind is one of ``telemetry.traces.request_kinds`` (default:
server and consumer, where a request enters a service) is also a request:

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
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from vigil.telemetry.otlp.values import MAX_ATTRS, MAX_DEPTH, MAX_ITEMS, MAX_TEXT, label_value, plain

REQUESTS = "span_requests"
DURATION = "span_duration_seconds"
UNKNOWN_SERVICE = "unknown_service"
KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
KIND_NUMBERS = {v: k for k, v in KIND_NAMES.items()}
STATUS_ERROR = 2
MAX_SERVICE = 200
MAX_NAME = 1024
MAX_LINKS = 16
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
    """The spans of one request, in the order sent. ``keys[i]`` is span i's trace-store key (trace
    id and span id, start in ns, service; None when rejected here), ``requests[i]`` its
    request telemetry (labels, minute, duration in ns) or None, ``rejected`` the spans refused here
    with the reason."""

    keys: list[tuple[bytes, bytes, int, str] | None] = field(default_factory=list)
    requests: list[tuple[tuple[tuple[str, str], ...], int, int] | None] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.keys)


def _service(rs: Any) -> str:
    for kv in rs.resource.attributes:
        if kv.key == "service.name":
            return label_value(kv.value) or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE


def _check(tid: bytes, sid: bytes, pid: bytes, start: int, end: int, oldest_ns: int, future_ns: int, max_future_ms: int) -> str:
    """Why a span cannot be stored (called only for a span that failed the fast test)."""
    if len(tid) != 16 or tid == _ZERO16:
        return "the trace id must be 16 bytes, not all zero"
    if len(sid) != 8 or sid == _ZERO8:
        return "the span id must be 8 bytes, not all zero"
    if pid and (len(pid) != 8 or pid == _ZERO8):
        return "the parent span id must be empty or 8 bytes, not all zero"
    if start == 0 or end < start:
        return "the span must have a start time and end at or after it"
    if start < oldest_ns:
        return "the span started before the trace retention (telemetry.traces.retention)"
    return f"the span ends more than {max_future_ms // 1000}s after the server's clock"


def map_spans(req: Any, rules: SpanRules, received_ms: int) -> SpanBatch:
    """Walk every span of the request (see the module doc). Each span's fields are read once; only
    a request span's attributes are walked (for its labels): what else a span holds is kept in the
    request's bytes, read back by the trace store."""
    out = SpanBatch()
    keys = out.keys
    requests = out.requests
    rejected = out.rejected
    request_kinds = rules.request_kinds
    extra_attrs: dict[str, list[str]] = {}
    for lname, attr in rules.labels:
        extra_attrs.setdefault(attr, []).append(lname)
    future_ns = (rules.now_ms + rules.max_future_ms) * 1_000_000
    oldest_ns = rules.oldest_ms * 1_000_000
    metric_oldest_ms = rules.metric_oldest_ms
    max_future_ms = rules.max_future_ms
    zero16 = _ZERO16
    zero8 = _ZERO8
    kind_names = KIND_NAMES
    for rs in req.resource_spans:
        service = _service(rs)
        service_bad = None
        if len(service) > MAX_SERVICE:
            service_bad = f"service.name is {len(service)} characters; at most {MAX_SERVICE}"
        for ss in rs.scope_spans:
            for sp in ss.spans:
                tid = sp.trace_id
                sid = sp.span_id
                pid = sp.parent_span_id
                start = sp.start_time_unix_nano
                end = sp.end_time_unix_nano
                if (
                    service_bad is not None or len(tid) != 16 or len(sid) != 8 or tid == zero16 or sid == zero8
                    or (pid and (len(pid) != 8 or pid == zero8)) or start == 0 or end < start or start < oldest_ns
                    or end > future_ns
                ):
                    rejected[len(keys)] = service_bad or _check(tid, sid, pid, start, end, oldest_ns, future_ns, max_future_ms)
                    keys.append(None)
                    requests.append(None)
                    continue
                kind = sp.kind
                if kind not in request_kinds:
                    keys.append((tid, sid, start, service))
                    requests.append(None)
                    continue
                minute = end // 60_000_000_000
                if minute * 60000 < metric_oldest_ms:
                    rejected[len(keys)] = "the span ended before the telemetry retention (telemetry.retention)"
                    keys.append(None)
                    requests.append(None)
                    continue
                route = None
                code = None
                wanted: dict[str, str] | None = None
                for kv in sp.attributes:
                    k = kv.key
                    if k == "http.route":
                        route = label_value(kv.value)
                    elif k == "http.response.status_code" or (k == "http.status_code" and code is None):
                        code = label_value(kv.value)
                    if extra_attrs and k in extra_attrs:
                        if wanted is None:
                            wanted = {}
                        for lname in extra_attrs[k]:
                            wanted[lname] = label_value(kv.value)
                error = sp.status.code == STATUS_ERROR
                if not error and code is not None and len(code) == 3 and code[0] == "5" and code.isdigit():
                    error = True
                if route is None:
                    route = sp.name
                labels = [("service", service), ("route", route), ("kind", kind_names.get(kind) or str(kind))]
                if code:
                    labels.append(("code", code))
                labels.append(("error", "true" if error else "false"))
                if wanted:
                    labels.extend(wanted.items())
                labels.sort()
                keys.append((tid, sid, start, service))
                requests.append((tuple(labels), minute, end - start))
    return out


def span_doc(sp: Any) -> dict[str, Any]:
    """What the trace store shows of a span besides its ids, times, kind and status: its attributes
    (the first :data:`MAX_ATTRS`, bounded; the rest counted as dropped), status message, number of
    events and links (the first 16). Bounded, JSON-able."""
    attrs: dict[str, Any] = {}
    n = 0
    for kv in sp.attributes:
        if n >= MAX_ATTRS:
            break
        k = kv.key
        attrs[k if len(k) <= 256 else k[:256]] = plain(kv.value)
        n += 1
    doc: dict[str, Any] = {"attributes": attrs}
    dropped = len(sp.attributes) - n + sp.dropped_attributes_count
    if dropped:
        doc["dropped_attributes"] = dropped
    if sp.status.message:
        doc["status_message"] = sp.status.message[:MAX_TEXT]
    if sp.events:
        doc["events"] = len(sp.events)
    if sp.links:
        doc["links"] = [{"trace_id": ln.trace_id.hex(), "span_id": ln.span_id.hex()} for ln in sp.links[:MAX_LINKS]]
    return doc


def span_fields(sp: Any, service: str) -> tuple:
    """A stored span's record fields (see :class:`vigil.traces.tree.SpanRecord`), read from the
    span as received: the same bounds as at ingest."""
    name = sp.name
    pid = sp.parent_span_id
    return (
        sp.trace_id.hex(), sp.span_id.hex(), pid.hex() if pid else "", service, name if len(name) <= MAX_NAME else name[:MAX_NAME],
        sp.kind, sp.start_time_unix_nano, sp.end_time_unix_nano, sp.status.code, _dumps(span_doc(sp)),
    )


def service_of(rs: Any) -> str:
    """The service of a ResourceSpans (its ``service.name``, else ``unknown_service``)."""
    return _service(rs)


MAX_STORED_PER_SPAN = 16 * 1024
"""Bytes of a request kept per span stored from it, above which the request is kept trimmed."""


def stored_body(req: Any, data: bytes, spans: int) -> bytes:
    """What the trace store keeps of a request that brings ``spans`` new spans: its bytes as
    received, or -- when they are over :data:`MAX_STORED_PER_SPAN` per span (a hostile or odd
    exporter: huge attributes, thousands of events) -- a copy trimmed to what the store shows, so
    a span costs the store no more than the bounds it is read with. Reading the copy gives the same
    spans as reading the request: the first :data:`MAX_ATTRS` attributes (the rest added to the
    dropped count), values rendered as :func:`~vigil.telemetry.otlp.values.plain` renders them,
    the number of events, the first links, names and status messages cut where the reader cuts
    them; the resource keeps its ``service.name`` only."""
    if len(data) <= MAX_STORED_PER_SPAN * max(spans, 1):
        return data
    m = type(req)()
    m.CopyFrom(req)
    for rs in m.resource_spans:
        svc = [kv for kv in rs.resource.attributes if kv.key == "service.name"][:1]
        rs.ClearField("resource")
        rs.resource.attributes.extend(svc)
        rs.ClearField("schema_url")
        for ss in rs.scope_spans:
            ss.ClearField("scope")
            ss.ClearField("schema_url")
            for sp in ss.spans:
                _trim_span(sp)
    return bytes(m.SerializeToString())


def _trim_span(sp: Any) -> None:
    n = len(sp.attributes)
    if n > MAX_ATTRS:
        del sp.attributes[MAX_ATTRS:]
        sp.dropped_attributes_count += n - MAX_ATTRS
    for kv in sp.attributes:
        if len(kv.key) > 256:
            kv.key = kv.key[:256]
        _trim_value(kv.value, 0)
    if len(sp.name) > MAX_NAME:
        sp.name = sp.name[:MAX_NAME]
    if len(sp.status.message) > MAX_TEXT:
        sp.status.message = sp.status.message[:MAX_TEXT]
    events = len(sp.events)
    if events:  # shown as a number: kept as that many empty events
        del sp.events[:]
        for _ in range(events):
            sp.events.add()
    del sp.links[MAX_LINKS:]
    for ln in sp.links:
        ln.ClearField("attributes")
        ln.ClearField("trace_state")
    sp.ClearField("trace_state")


def _trim_value(v: Any, depth: int) -> None:
    """Cut an AnyValue to what :func:`plain` renders of it at ``depth``."""
    which = v.WhichOneof("value")
    if which == "string_value":
        if len(v.string_value) > MAX_TEXT:
            v.string_value = v.string_value[:MAX_TEXT] + "..."
    elif which == "bytes_value":
        if len(v.bytes_value) > MAX_TEXT // 2:
            v.bytes_value = v.bytes_value[: MAX_TEXT // 2]
    elif which in ("array_value", "kvlist_value"):
        if depth >= MAX_DEPTH:  # rendered "..." whatever it holds
            v.ClearField(which)
            getattr(v, which).SetInParent()
            return
        vals = getattr(v, which).values
        del vals[MAX_ITEMS:]
        for x in vals:
            if which == "kvlist_value":
                if len(x.key) > 256:
                    x.key = x.key[:256]
                _trim_value(x.value, depth + 1)
            else:
                _trim_value(x, depth + 1)


_TS: dict[int, str] = {}


def minute_ts(minute: int) -> str:
    """RFC 3339 text of a Unix minute (cached: a request's spans share a few minutes)."""
    s = _TS.get(minute)
    if s is None:
        if len(_TS) > 100_000:
            _TS.clear()
        s = _TS[minute] = datetime.fromtimestamp(minute * 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return s


def request_lines(
    batch: SpanBatch, spans: Sequence[int], bounds_ns: Sequence[int], first_line: int = 1
) -> tuple[list[tuple[int, dict]], list[list[int]]]:
    """The push-format lines of the given spans' request telemetry, summed in the request before
    the store sees them: a counter line per series-minute, and an observation line per
    series-minute-bucket of ``bounds_ns`` (the store's sorted bucket bounds, what the store buckets
    by) with its count, observed at the bucket's bound (the store puts it in the same bucket as each
    exact duration: bucketing here is in whole ns). Returns the numbered lines and, per line, the
    spans it carries."""
    counts: dict[tuple, list[int]] = {}
    buckets: dict[tuple, list[int]] = {}
    over: dict[tuple, int] = {}
    nb = len(bounds_ns)
    top = bounds_ns[-1] if nb else -1
    requests = batch.requests
    for i in spans:
        r = requests[i]
        if r is None:
            continue
        labels, minute, dur = r
        g = (labels, minute)
        c = counts.get(g)
        if c is None:
            counts[g] = [i]
        else:
            c.append(i)
        if dur > top:
            b = (labels, minute, -1)
            if dur > over.get(b, -1):
                over[b] = dur
        else:
            b = (labels, minute, bounds_ns[bisect_left(bounds_ns, dur)])
        c = buckets.get(b)
        if c is None:
            buckets[b] = [i]
        else:
            c.append(i)
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
    for b, idx in buckets.items():
        labels, minute, le = b
        # above the last bound: the longest of them (any value past the last bound is in +Inf)
        value = (over[b] if le < 0 else le) / 1e9
        line: dict = {"ts": minute_ts(minute), "metric": DURATION, "labels": label_dicts[labels], "observe": value}
        if len(idx) > 1:
            line["count"] = len(idx)
        lines.append((n, line))
        carried.append(idx)
        n += 1
    return lines, carried
