"""OTLP metrics -> vigil's counters, gauges and observations. Pure: no I/O, no clock.

:func:`map_metrics` reads an ``ExportMetricsServiceRequest`` into :class:`Point` s (one per data
point, in the order sent); :func:`convert` turns them into push-format lines, given the last point
of each stream (:class:`StreamState`, kept by the store) and returns the new states. What is exact
and what is approximated:

**Names and labels.** A metric ``http.server.request.duration`` is ``http_server_request_duration``
(characters outside ``[a-zA-Z0-9_:]`` become ``_``); a histogram in a time unit (``s``, ``ms``,
``us``, ``ns``, ``min``, ``h``, ``d``) is converted to seconds and gets ``_seconds`` at the end of its
name (unless it has it). Labels: ``service`` from the resource's ``service.name``, and every point
attribute (``http.route`` -> ``http_route``; a point attribute named ``service`` -> ``attr_service``).

**Sums.** A monotonic sum is a counter. *Delta*: each point's value is counted at the point's time,
exactly; points of one stream are taken in order, and a point ending at or before the last one
taken is a duplicate (a retry) and is not counted again. *Cumulative*: the increase over the
stream's previous point is counted at the point's time, exactly; a reset (a new start time, or a
value below the previous one) counts the whole new value (what accrued since the restart). The
first point vigil sees of a stream is counted in full only when its start time is set, differs from
its time and is not before vigil began taking OTLP metrics (a process started since: nothing of it
was counted before); otherwise it is the baseline (the Collector's ``initial_value: auto``).
Counters count events: an increase that is not a whole number is refused. A non-monotonic
cumulative sum (an UpDownCounter) is a gauge of its value; a non-monotonic delta sum is refused.

**Gauges** are gauges (the minute's min, max, last and sample count), exactly.

**Histograms** become observations: the count of each bucket ``(b[i-1], b[i]]`` is observed at its
upper bound ``b[i]`` (at the point's ``max`` when that is lower; values above the last bound go to
vigil's +Inf bucket). So a latency threshold that is one of the exporter's bounds *and* one of
vigil's (the documented bounds and every threshold of the spec) is exact; at any other threshold a
bucket straddling it counts as slower (the SLI errs toward bad, never toward good). *Cumulative*
histograms are differenced per bucket against the previous point (resets as for sums; a change of
bounds without a new start time makes the point the new baseline).

**Exponential histograms** likewise: bucket ``k`` at scale ``s`` is ``(base^k, base^(k+1)]`` with
``base = 2^(2^-s)``, observed at ``base^(k+1)`` (a relative error below ``base - 1``: 9% at scale 3,
4.4% at scale 4, the SDK's usual scales), the zero bucket at 0. Cumulative ones are differenced
after bringing the previous point to the new (smaller) scale. Negative buckets are refused
(observations are durations and sizes).

**Summaries** are refused (their quantiles cannot be summed): export histograms.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from vigil.telemetry.otlp.values import label_name, label_value, metric_name

MAX_INC = 2**53
MAX_FLOAT = 1.7976931348623157e308  # observed past every bound: vigil's +Inf bucket
NO_RECORDED_VALUE = 1
DELTA, CUMULATIVE = 1, 2
UNKNOWN_SERVICE = "unknown_service"
SINCE_KEY = "since"
"""The stream-table row holding when this store began taking OTLP metrics (ns)."""

TIME_UNITS: dict[str, tuple[str, int]] = {
    # unit -> ("div" or "mul", factor): seconds = value / factor or value * factor (exact for the
    # decimal bounds exporters use: 300 ms / 1000 is the float 0.3)
    "s": ("mul", 1), "ms": ("div", 1000), "us": ("div", 1_000_000), "\u00b5s": ("div", 1_000_000),
    "ns": ("div", 1_000_000_000), "min": ("mul", 60), "h": ("mul", 3600), "d": ("mul", 86400),
}


def to_seconds(v: float, unit: tuple[str, int] | None) -> float:
    if unit is None:
        return v
    how, f = unit
    return v / f if how == "div" else v * f


@dataclass
class Point:
    """One data point, read. ``kind``: gauge, counter, updown, histogram, exphistogram."""

    unit: int
    metric: str
    kind: str
    temporality: int
    stream: str
    labels: dict[str, str]
    start_ns: int
    time_ns: int
    value: int | float = 0
    bounds: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    scale: int = 0
    zero: int = 0
    offset: int = 0
    max: float | None = None
    time_unit: tuple[str, int] | None = None


@dataclass
class MetricBatch:
    points: list[Point | None] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    skipped: int = 0
    """Points with no recorded value (flag NO_RECORDED_VALUE): taken, nothing to store."""

    @property
    def total(self) -> int:
        return len(self.points)


@dataclass
class StreamState:
    """The last point taken of a stream: its start and time (ns) and the values a cumulative point
    is differenced against (a sum's value; a histogram's bounds and counts; an exponential
    histogram's scale, zero count, offset and counts)."""

    kind: str
    start_ns: int
    time_ns: int
    state: dict

    def to_json(self) -> str:
        return json.dumps(self.state, separators=(",", ":"))


@dataclass(frozen=True)
class MetricRules:
    now_ms: int
    oldest_ms: int
    max_future_ms: int


def _stream_key(resource: str, scope: str, name: str, kind: str, attrs: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([resource, scope, name, kind, attrs], separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _labels(service: str, attributes: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    labels: dict[str, str] = {"service": service}
    raw: list[tuple[str, str]] = []
    for kv in attributes:
        v = label_value(kv.value)
        raw.append((kv.key, v))
        name = label_name(kv.key)
        if name == "service":
            name = "attr_service"
        if name in labels:  # two attributes with one label name: both values, sorted
            labels[name] = ";".join(sorted((labels[name], v)))
        else:
            labels[name] = v
    raw.sort()
    return labels, raw


def map_metrics(req: Any, rules: MetricRules) -> MetricBatch:
    """Read every data point of the request (see the module doc)."""
    out = MetricBatch()
    oldest_ns = rules.oldest_ms * 1_000_000
    future_ns = (rules.now_ms + rules.max_future_ms) * 1_000_000
    for rm in req.resource_metrics:
        service = UNKNOWN_SERVICE
        res_attrs = []
        for kv in rm.resource.attributes:
            v = label_value(kv.value)
            res_attrs.append((kv.key, v))
            if kv.key == "service.name":
                service = v or UNKNOWN_SERVICE
        resource = json.dumps(sorted(res_attrs), separators=(",", ":"), ensure_ascii=False)
        for sm in rm.scope_metrics:
            scope = f"{sm.scope.name}\x00{sm.scope.version}"
            for m in sm.metrics:
                which = m.WhichOneof("data")
                base = metric_name(m.name)
                unit = TIME_UNITS.get(m.unit) if which in ("histogram", "exponential_histogram") else None
                name = base
                if unit is not None and not base.endswith("_seconds"):
                    name = base + "_seconds"
                if which is None:
                    continue  # a metric without data has no points
                body = getattr(m, which)
                for p in body.data_points:
                    i = len(out.points)
                    why = None
                    if which == "summary":
                        why = f"metric {m.name!r} is a summary: vigil cannot add quantiles; export a histogram instead"
                    elif p.flags & NO_RECORDED_VALUE:
                        out.points.append(None)
                        out.skipped += 1
                        continue
                    elif p.time_unix_nano == 0:
                        why = f"metric {m.name!r}: a data point needs a time"
                    elif p.time_unix_nano < oldest_ns:
                        why = f"metric {m.name!r}: the point is older than the telemetry retention"
                    elif p.time_unix_nano > future_ns:
                        why = f"metric {m.name!r}: the point is more than {rules.max_future_ms // 1000}s after the server's clock"
                    if why is not None:
                        out.points.append(None)
                        out.rejected[i] = why
                        continue
                    labels, raw = _labels(service, p.attributes)
                    try:
                        pt = _point(i, which, body, m, p, name, unit, labels)
                    except _Refused as e:
                        out.points.append(None)
                        out.rejected[i] = str(e)
                        continue
                    if pt.kind in ("counter", "histogram", "exphistogram"):
                        pt.stream = _stream_key(resource, scope, m.name, pt.kind, raw)
                    out.points.append(pt)
    return out


class _Refused(Exception):
    pass


def _point(i: int, which: str, body: Any, m: Any, p: Any, name: str, unit: tuple[str, int] | None, labels: dict) -> Point:
    start, t = p.start_time_unix_nano, p.time_unix_nano
    if which == "gauge" or which == "sum":
        v = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
        if isinstance(v, float) and not math.isfinite(v):
            raise _Refused(f"metric {m.name!r}: the value {v} is not a finite number")
        if which == "gauge":
            return Point(i, name, "gauge", 0, "", labels, start, t, value=v)
        temp = body.aggregation_temporality
        if not body.is_monotonic:
            if temp == DELTA:
                raise _Refused(
                    f"metric {m.name!r} is a non-monotonic delta sum, which has no level to keep: export it as cumulative"
                )
            return Point(i, name, "gauge", 0, "", labels, start, t, value=v)
        if temp not in (DELTA, CUMULATIVE):
            raise _Refused(f"metric {m.name!r}: the sum has no aggregation temporality")
        if temp == DELTA and v < 0:
            raise _Refused(f"metric {m.name!r}: a monotonic delta sum cannot be negative ({v})")
        return Point(i, name, "counter", temp, "", labels, start, t, value=v)
    temp = body.aggregation_temporality
    if temp not in (DELTA, CUMULATIVE):
        raise _Refused(f"metric {m.name!r}: the histogram has no aggregation temporality")
    mx = p.max if p.HasField("max") and math.isfinite(p.max) else None
    if which == "histogram":
        bounds = tuple(p.explicit_bounds)
        counts = tuple(p.bucket_counts)
        if counts and len(counts) != len(bounds) + 1:
            raise _Refused(f"metric {m.name!r}: {len(counts)} bucket counts for {len(bounds)} bounds (needs one more count than bounds)")
        if any(not math.isfinite(b) for b in bounds) or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise _Refused(f"metric {m.name!r}: the explicit bounds must be finite and increasing")
        return Point(i, name, "histogram", temp, "", labels, start, t, bounds=bounds, counts=counts, max=mx, time_unit=unit)
    if any(p.negative.bucket_counts):
        raise _Refused(f"metric {m.name!r}: negative observations (an exponential histogram's negative buckets) are not durations or sizes")
    if not -10 <= p.scale <= 20:
        raise _Refused(f"metric {m.name!r}: exponential histogram scale {p.scale} is outside -10..20")
    return Point(
        i, name, "exphistogram", temp, "", labels, start, t, scale=p.scale, zero=p.zero_count,
        offset=p.positive.offset, counts=tuple(p.positive.bucket_counts), max=mx, time_unit=unit,
    )


# -- points -> lines ---------------------------------------------------------------------------------


def ms_ts(ns: int) -> str:
    ms = ns // 1_000_000
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


@dataclass
class Converted:
    lines: list[tuple[int, dict]] = field(default_factory=list)
    carried: list[int] = field(default_factory=list)
    """The point (unit) each line carries."""
    states: dict[str, StreamState] = field(default_factory=dict)
    """Streams whose state changed: written back in the same transaction."""
    rejected: dict[int, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _exp_upper(scale: int, index: int) -> float:
    """base^(index+1), base = 2^(2^-scale) (exact for scale <= 0)."""
    e = index + 1
    try:
        if scale <= 0:
            return math.ldexp(1.0, e << -scale)
        return 2.0 ** (e / (1 << scale))
    except OverflowError:
        return MAX_FLOAT


def _downscale(counts: list[int], offset: int, by: int) -> tuple[list[int], int]:
    """Exponential-histogram buckets at scale s brought to scale s - by (bucket k -> k >> by)."""
    if by <= 0 or not counts:
        return list(counts), offset
    merged: dict[int, int] = {}
    for j, c in enumerate(counts):
        k = (offset + j) >> by
        merged[k] = merged.get(k, 0) + c
    lo, hi = min(merged), max(merged)
    return [merged.get(k, 0) for k in range(lo, hi + 1)], lo


def _is_first_counted(p: Point, since_ns: int) -> bool:
    return p.start_ns > 0 and p.start_ns != p.time_ns and p.start_ns >= since_ns


def convert(points: Iterable[Point], states: dict[str, StreamState | None], since_ns: int, first_line: int = 1) -> Converted:
    """Lines for the points given (the rest are excluded), against the streams' last points."""
    out = Converted()
    n = first_line
    cur: dict[str, StreamState | None] = dict(states)

    def emit(p: Point, line: dict) -> None:
        nonlocal n
        out.lines.append((n, line))
        out.carried.append(p.unit)
        n += 1

    ordered = sorted(points, key=lambda p: (p.time_ns, p.unit))
    for p in ordered:
        if p.kind == "gauge":
            emit(p, {"ts": ms_ts(p.time_ns), "metric": p.metric, "labels": p.labels, "set": p.value})
            continue
        prev = cur.get(p.stream)
        if p.kind == "counter":
            inc = _counter(p, prev, since_ns, out)
            if inc is None:
                continue
            ts = ms_ts(p.time_ns)
            cur[p.stream] = out.states[p.stream] = StreamState("sum", p.start_ns, p.time_ns, {"v": p.value})
            while inc > 0:
                part = min(inc, MAX_INC)
                emit(p, {"ts": ts, "metric": p.metric, "labels": p.labels, "inc": part})
                inc -= part
            continue
        got = _histogram(p, prev, since_ns, out)
        if got is None:
            continue
        new_state, buckets = got
        cur[p.stream] = out.states[p.stream] = new_state
        ts = ms_ts(p.time_ns)
        for value, c in buckets:
            while c > 0:
                part = min(c, MAX_INC)
                line: dict = {"ts": ts, "metric": p.metric, "labels": p.labels, "observe": value}
                if part != 1:
                    line["count"] = part
                emit(p, line)
                c -= part
    return out


def _counter(p: Point, prev: StreamState | None, since_ns: int, out: Converted) -> int | None:
    """The increase to count (None: the point is a duplicate, refused, or the baseline; refusals
    go to ``out.rejected``). Updates nothing."""
    v = p.value
    if p.temporality == DELTA:
        if prev is not None and p.time_ns <= prev.time_ns:
            return None  # taken already (a retry), or out of order
        inc = v
    else:
        if prev is None or prev.kind != "sum":
            inc = v if _is_first_counted(p, since_ns) else 0
        elif p.start_ns < prev.start_ns or (p.start_ns == prev.start_ns and p.time_ns <= prev.time_ns):
            return None  # an older incarnation, or a point taken already
        elif p.start_ns > prev.start_ns or v < prev.state.get("v", 0):
            inc = v  # reset: everything since the new start
        else:
            inc = v - prev.state.get("v", 0)
    if isinstance(inc, float):
        if not inc.is_integer():
            out.rejected[p.unit] = (
                f"metric {p.metric!r}: a counter counts events, and its increase {inc!r} is not a whole number"
                " (send a gauge or a histogram)"
            )
            return None
        inc = int(inc)
    if inc < 0:  # pragma: no cover - excluded above
        out.rejected[p.unit] = f"metric {p.metric!r}: a counter cannot decrease"
        return None
    return inc


def _histogram(p: Point, prev: StreamState | None, since_ns: int, out: Converted) -> tuple[StreamState, list[tuple[float, int]]] | None:
    if p.kind == "histogram":
        state = {"b": list(p.bounds), "c": list(p.counts)}
        kind = "histogram"
    else:
        state = {"s": p.scale, "z": p.zero, "o": p.offset, "c": list(p.counts)}
        kind = "exphistogram"
    new = StreamState(kind, p.start_ns, p.time_ns, state)
    if p.temporality == DELTA:
        if prev is not None and p.time_ns <= prev.time_ns:
            return None
        return new, _buckets(p, list(p.counts), p.zero, p.offset, p.scale)
    if prev is None or prev.kind != kind:
        if _is_first_counted(p, since_ns):
            return new, _buckets(p, list(p.counts), p.zero, p.offset, p.scale)
        return new, []
    if p.start_ns < prev.start_ns or (p.start_ns == prev.start_ns and p.time_ns <= prev.time_ns):
        return None
    if p.start_ns > prev.start_ns:
        return new, _buckets(p, list(p.counts), p.zero, p.offset, p.scale)
    if kind == "histogram":
        if prev.state.get("b") != list(p.bounds):
            out.warnings.append(f"metric {p.metric!r}: the bucket bounds changed without a new start time; the point is the new baseline")
            return new, []
        pc = prev.state.get("c", [])
        diff = [a - b for a, b in zip(p.counts, pc)] if len(pc) == len(p.counts) else None
        if diff is None or any(d < 0 for d in diff):
            return new, _buckets(p, list(p.counts), 0, 0, 0)  # a reset
        return new, _buckets(p, diff, 0, 0, 0)
    ps, pz, po, pcs = prev.state.get("s", 0), prev.state.get("z", 0), prev.state.get("o", 0), prev.state.get("c", [])
    if p.scale > ps:
        out.warnings.append(f"metric {p.metric!r}: the exponential histogram's scale grew without a new start time; the point is the new baseline")
        return new, []
    old, old_off = _downscale(list(pcs), po, ps - p.scale)
    cur_map = {p.offset + j: c for j, c in enumerate(p.counts)}
    old_map = {old_off + j: c for j, c in enumerate(old)}
    dz = p.zero - pz
    if dz < 0 or any(c > cur_map.get(k, 0) for k, c in old_map.items() if c):
        return new, _buckets(p, list(p.counts), p.zero, p.offset, p.scale)  # a reset
    keys = sorted(cur_map)
    if not keys:
        return new, _buckets(p, [], dz, 0, p.scale)
    lo = keys[0]
    diff = [cur_map.get(k, 0) - old_map.get(k, 0) for k in range(lo, keys[-1] + 1)]
    return new, _buckets(p, diff, dz, lo, p.scale)


def _buckets(p: Point, counts: list[int], zero: int, offset: int, scale: int) -> list[tuple[float, int]]:
    """(value observed, count) per non-empty bucket: each at its upper bound (capped by max)."""
    out: list[tuple[float, int]] = []
    mx = p.max
    unit = p.time_unit
    if p.kind == "histogram":
        bounds = p.bounds
        for j, c in enumerate(counts):
            if c <= 0:
                continue
            if j < len(bounds):
                upper = bounds[j]
                if mx is not None and mx < upper:
                    upper = mx
                value = _finite(to_seconds(upper, unit))
            elif mx is not None and (not bounds or mx > bounds[-1]):
                value = _finite(to_seconds(mx, unit))  # the overflow bucket: its largest value
            else:
                value = MAX_FLOAT  # the overflow bucket, no max known: vigil's +Inf bucket
            out.append((value, c))
        return out
    if zero > 0:
        out.append((0.0, zero))
    for j, c in enumerate(counts):
        if c <= 0:
            continue
        upper = _exp_upper(scale, offset + j)
        if mx is not None and mx < upper:
            upper = mx
        out.append((_finite(to_seconds(upper, unit)), c))
    return out


def _finite(v: float) -> float:
    return v if math.isfinite(v) else MAX_FLOAT
