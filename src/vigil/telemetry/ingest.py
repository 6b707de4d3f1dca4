"""The push format, read line by line into per-minute rollups. Pure: no I/O, no clock.

One JSON object per line (NDJSON) or a JSON array of objects::

    {"ts": "2026-11-01T12:00:03Z", "metric": "http_requests", "labels": {"code": "200"}, "inc": 1}
    {"ts": "2026-11-01T12:00:03Z", "metric": "http_request_duration_seconds", "observe": 0.182}
    {"ts": "2026-11-01T12:00:03Z", "metric": "http_request_duration_seconds", "observe": 0.3, "count": 12}
    {"ts": "2026-11-01T12:00:03Z", "metric": "index_staleness_seconds", "set": 41}

A bad line is rejected with its line number and reason; every good line is kept. A rejected line
contributes nothing to the rollup.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator

from vigil.errors import PayloadTooLarge, TelemetryError
from vigil.telemetry.selector import LABEL_NAME, METRIC_NAME

MAX_LINE_BYTES = 64 * 1024
MAX_LABELS = 32
MAX_LABEL_VALUE = 1024
MAX_INC = 2**53
MAX_REJECTIONS_LISTED = 1000
INF_NS = 2**62

# The documented bucket bounds (seconds). An observation metric is exact at every one of these
# thresholds for all history, and at every threshold the spec declares from the moment it is
# declared. Prometheus' default buckets are all here.
DOCUMENTED_BOUNDS = tuple(
    Decimal(x)
    for x in (
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.15", "0.2", "0.25",
        "0.3", "0.4", "0.5", "0.75", "1", "1.5", "2", "2.5", "3", "4", "5", "7.5", "10", "15", "20",
        "30", "45", "60", "90", "120", "180", "300", "600", "900", "1800", "3600",
    )
)

RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:?[0-9]{2})")
KIND_OF_FIELD = {"inc": "counter", "observe": "observation", "set": "gauge"}
ALLOWED_KEYS = frozenset(("ts", "metric", "labels", "inc", "observe", "set", "count"))


def seconds_to_ns(s: Decimal) -> int:
    return int(s * 1_000_000_000)


@dataclass(frozen=True)
class Rejection:
    line: int
    error: str

    def to_dict(self) -> dict:
        return {"line": self.line, "error": self.error}


@dataclass
class Rollup:
    """Accepted lines of one batch, summed per series per minute."""

    counters: dict[tuple[str, str, int], int] = field(default_factory=dict)
    # (metric, labels, minute, le_ns) -> count, non-cumulative
    observations: dict[tuple[str, str, int, int], int] = field(default_factory=dict)
    # (metric, labels, minute) -> [min, max, last, last_ms, samples]
    gauges: dict[tuple[str, str, int], list] = field(default_factory=dict)
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    rejected_count: int = 0

    def reject(self, line: int, error: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTIONS_LISTED:
            self.rejected.append(Rejection(line, error))

    def merge(self, other: "Rollup") -> None:
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for k, v in other.observations.items():
            self.observations[k] = self.observations.get(k, 0) + v
        for k, g in other.gauges.items():
            _merge_gauge(self.gauges, k, g)
        self.kinds.update(other.kinds)
        self.accepted += other.accepted
        for r in other.rejected:
            if len(self.rejected) < MAX_REJECTIONS_LISTED:
                self.rejected.append(r)
        self.rejected_count += other.rejected_count

    @property
    def empty(self) -> bool:
        return not (self.counters or self.observations or self.gauges)


def _merge_gauge(gauges: dict, key: tuple, g: list) -> None:
    cur = gauges.get(key)
    if cur is None:
        gauges[key] = list(g)
        return
    if g[0] < cur[0]:
        cur[0] = g[0]
    if g[1] > cur[1]:
        cur[1] = g[1]
    if g[3] >= cur[3]:
        cur[2] = g[2]
        cur[3] = g[3]
    cur[4] += g[4]


class _Bad(Exception):
    pass


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a number vigil accepts")


_decoder = json.JSONDecoder(parse_constant=_no_constants)


@dataclass
class IngestContext:
    """What a batch is checked against: time bounds (ms), bucket bounds, known metric kinds."""

    now_ms: int
    oldest_ms: int
    max_future_ms: int
    bounds_ns: tuple[int, ...]
    metric_kinds: dict[str, str]
    _bound_floats: list[float] = field(init=False)
    _ts_cache: dict[str, int] = field(init=False, default_factory=dict)
    _labels_cache: dict[tuple, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.bounds_ns = tuple(sorted(set(self.bounds_ns)))
        self._bound_floats = [b / 1_000_000_000 for b in self.bounds_ns]


def split_body(body: bytes, *, max_bytes: int) -> Iterator[tuple[int, object]]:
    """Yield (line number, raw line or already-decoded item) from an NDJSON or JSON-array body."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"the body is {len(body)} bytes; the limit is {max_bytes}",
            hint="send smaller batches (vigil push batches for you)",
        )
    body = body.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark, as some editors write
    stripped = body.lstrip()
    if stripped[:1] == b"[" and not _array_line_then_more(stripped):
        try:
            items = _decoder.decode(body.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise TelemetryError(f"the body is not UTF-8 (byte {e.start})") from None
        except (ValueError, RecursionError) as e:
            raise TelemetryError(
                f"the body starts with '[' but is not a valid JSON array: {_json_error(e)}",
                hint="send a JSON array of objects, or one JSON object per line (NDJSON)",
            ) from None
        if not isinstance(items, list):
            raise TelemetryError("expected a JSON array")
        for i, item in enumerate(items, 1):
            yield i, item
        return
    for i, raw in enumerate(body.split(b"\n"), 1):
        yield i, raw


def _array_line_then_more(stripped: bytes) -> bool:
    """NDJSON whose first line happens to be an array (a whole JSON value), followed by more lines.

    A JSON array body can never look like this, so its good lines must not be lost to a body error.
    """
    first, _, rest = stripped.partition(b"\n")
    if not rest.strip():
        return False
    try:
        _decoder.decode(first.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


def ingest(lines: Iterable[tuple[int, object]], ctx: IngestContext, rollup: Rollup | None = None) -> Rollup:
    """Check every line and add the good ones to a rollup. Never raises for a bad line."""
    r = rollup if rollup is not None else Rollup()
    counters = r.counters
    observations = r.observations
    gauges = r.gauges
    kinds = r.kinds
    metric_kinds = ctx.metric_kinds
    ts_cache = ctx._ts_cache
    labels_cache = ctx._labels_cache
    bound_floats = ctx._bound_floats
    bounds_ns = ctx.bounds_ns
    nb = len(bound_floats)
    decode = _decoder.decode
    for lineno, raw in lines:
        try:
            if isinstance(raw, (bytes, str)):
                if len(raw) > MAX_LINE_BYTES:
                    raise _Bad(f"line is {len(raw)} bytes; the limit is {MAX_LINE_BYTES}")
                if isinstance(raw, bytes):
                    try:
                        raw = raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise _Bad(f"not UTF-8 (byte {e.start})") from None
                if not raw or raw.isspace():
                    continue
                try:
                    obj = decode(raw)
                except (ValueError, RecursionError) as e:
                    raise _Bad(f"invalid JSON: {_json_error(e)}") from None
            else:
                obj = raw
            if type(obj) is not dict:
                raise _Bad(f"expected a JSON object, got {_json_type(obj)}")
            if not obj.keys() <= ALLOWED_KEYS:
                extra = sorted(set(obj) - ALLOWED_KEYS)
                raise _Bad(f"unknown key {extra[0][:40]!r}; allowed: ts, metric, labels, inc, observe, set, count")
            # -- time
            ts = obj.get("ts")
            ms = ts_cache.get(ts) if type(ts) is str else None
            if ms is None:
                ms = _parse_ts(ts)
                if len(ts_cache) > 100_000:
                    ts_cache.clear()
                ts_cache[ts] = ms
            if ms < ctx.oldest_ms:
                raise _Bad(f"ts {ts} is older than the retention window; it would be deleted at once")
            if ms > ctx.now_ms + ctx.max_future_ms:
                raise _Bad(f"ts {ts} is in the future (more than {ctx.max_future_ms // 1000}s ahead of the server clock)")
            minute = ms // 60000
            # -- metric and labels
            metric = obj.get("metric")
            if type(metric) is not str or len(metric) > 200 or not METRIC_NAME.fullmatch(metric):
                raise _Bad("metric must be a name like http_requests ([a-zA-Z_:][a-zA-Z0-9_:]*, at most 200 characters)")
            labels = obj.get("labels")
            if labels is None:
                lkey = ""
                labels_json = "{}"
            else:
                if type(labels) is not dict:
                    raise _Bad("labels must be an object of string values")
                lkey = tuple(sorted(labels.items()))  # type: ignore[assignment]
                try:
                    labels_json = labels_cache.get(lkey)  # type: ignore[arg-type]
                except TypeError:  # an unhashable label value: _check_labels names it
                    labels_json = _check_labels(labels)
                if labels_json is None:
                    labels_json = _check_labels(labels)
                    if len(labels_cache) > 100_000:
                        labels_cache.clear()
                    labels_cache[lkey] = labels_json  # type: ignore[index]
            # -- value
            if "inc" in obj:
                kind = "counter"
                field_ = "inc"
            elif "observe" in obj:
                kind = "observation"
                field_ = "observe"
            elif "set" in obj:
                kind = "gauge"
                field_ = "set"
            else:
                raise _Bad("a sample needs one of inc (counter), observe (observation) or set (gauge)")
            if ("inc" in obj) + ("observe" in obj) + ("set" in obj) > 1:
                raise _Bad("a sample has exactly one of inc, observe, set")
            if "count" in obj and kind != "observation":
                raise _Bad("count goes with observe only")
            known = metric_kinds.get(metric)
            if known is not None and known != kind:
                raise _Bad(f"metric {metric!r} is a {known}; this line sends {field_!r} ({kind})")
            v = obj[field_]
            tv = type(v)
            if tv is not int and tv is not float:
                raise _Bad(f"{field_} must be a number, got {_json_type(v)}")
            if tv is float and not math.isfinite(v):
                raise _Bad(f"{field_} must be finite")
            if kind == "counter":
                if tv is float:
                    if not v.is_integer():
                        raise _Bad("inc counts events: a whole number, 0 or more")
                    v = int(v)
                if v < 0 or v > MAX_INC:
                    raise _Bad(f"inc must be between 0 and {MAX_INC}")
                key = (metric, labels_json, minute)
                counters[key] = counters.get(key, 0) + v
            elif kind == "observation":
                if v < 0:
                    raise _Bad("observe must be 0 or more (durations in seconds)")
                n = obj.get("count", 1)
                if type(n) is float and n.is_integer():
                    n = int(n)
                if type(n) is not int or n < 1 or n > MAX_INC:
                    raise _Bad(f"count must be a whole number between 1 and {MAX_INC}")
                i = bisect_left(bound_floats, v)
                le = bounds_ns[i] if i < nb else INF_NS
                okey = (metric, labels_json, minute, le)
                observations[okey] = observations.get(okey, 0) + n
            else:
                gkey = (metric, labels_json, minute)
                g = gauges.get(gkey)
                try:
                    fv = float(v)
                except OverflowError:
                    raise _Bad("set must be a number a float can hold (at most about 1.8e308)") from None
                if g is None:
                    gauges[gkey] = [fv, fv, fv, ms, 1]
                else:
                    if fv < g[0]:
                        g[0] = fv
                    if fv > g[1]:
                        g[1] = fv
                    if ms >= g[3]:
                        g[2] = fv
                        g[3] = ms
                    g[4] += 1
            if known is None:
                metric_kinds[metric] = kind
            kinds[(metric, labels_json)] = kind
            r.accepted += 1
        except _Bad as e:
            r.reject(lineno, str(e))
    return r


def _json_error(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "it nests too deeply"
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} at column {e.colno}"
    if "integer string conversion" in str(e):
        return "a number has too many digits"
    return str(e)


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _parse_ts(ts: object) -> int:
    if type(ts) is not str:
        raise _Bad("ts must be an RFC 3339 time string like 2026-11-01T12:00:00Z" + ("" if ts is not None else " (missing)"))
    if len(ts) > 40:
        raise _Bad("ts is too long for an RFC 3339 time")
    if not RFC3339.fullmatch(ts):
        raise _Bad(f"ts {ts!r} is not an RFC 3339 time with a zone, like 2026-11-01T12:00:00Z")
    try:
        dt = datetime.fromisoformat(ts.upper())  # RFC 3339 allows a lower-case t and z
    except ValueError:
        raise _Bad(f"ts {ts!r} is not an RFC 3339 time like 2026-11-01T12:00:00Z") from None
    if dt.tzinfo is None or len(ts) < 20:
        raise _Bad(f"ts {ts!r} needs a date, a time and a zone, like 2026-11-01T12:00:00Z")
    return int(dt.timestamp() * 1000) if dt.microsecond else int(dt.timestamp()) * 1000


def _check_labels(labels: dict) -> str:
    if len(labels) > MAX_LABELS:
        raise _Bad(f"{len(labels)} labels; at most {MAX_LABELS}")
    for k, v in labels.items():
        if not LABEL_NAME.fullmatch(k) or len(k) > 128:
            raise _Bad(f"label name {k[:40]!r} must match [a-zA-Z_][a-zA-Z0-9_]* (at most 128 characters)")
        if k.startswith("__"):
            raise _Bad(f"label name {k!r}: names starting with '__' are reserved")
        if type(v) is not str:
            raise _Bad(f"label {k!r} must be a string, got {_json_type(v)}")
        if len(v) > MAX_LABEL_VALUE:
            raise _Bad(f"label {k!r} is {len(v)} characters; at most {MAX_LABEL_VALUE}")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise _Bad(f"label {k!r} is not valid Unicode (a lone surrogate escape like \\ud800)") from None
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
