"""The push format, read line by line into per-minute rollups. Pure: no I/O, no clock.

One JSON object per line (NDJSON) or a JSON array of objects::

    {"ts": "2026-11-01T12:00:03Z", "metric": "http_requests", "labels": {"code": "200"}, "inc": 1}
    {"ts": "2026-11-01T12:00:03Z", "metric": "http_request_duration_seconds", "observe": 0.182}
    {"ts": "2026-11-01T12:00:03Z", "metric": "http_request_duration_seconds", "observe": 0.3, "count": 12}
    {"ts": "2026-11-01T12:00:03Z", "metric": "index_staleness_seconds", "set": 41}

A bad line is rejected with its line number and reason; every good line is kept. A rejected line
contributes nothing to the rollup.

A body is cut into lines by :class:`BodySplitter`, fed the bytes as they arrive: memory is bounded by
the longest line (an over-long line or array item is rejected without being held), never by the body.
"""

from __future__ import annotations

import codecs
import json
import json.scanner
import math
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Iterable, Iterator, Union

from vigil.errors import PayloadTooLarge, TelemetryError
from vigil.telemetry.selector import LABEL_NAME, METRIC_NAME

MAX_LINE_BYTES = 64 * 1024
MAX_LABELS = 32
MAX_LABEL_VALUE = 1024
MAX_INC = 2**53
MAX_STORED = 2**63 - 1
"""The largest count one rollup row holds (a signed 64-bit integer on SQLite and PostgreSQL). A
line that would take a series' minute or hour total past it is rejected, never stored inexactly."""
MAX_REJECTIONS_LISTED = 1000
INF_NS = 2**62

# The documented bucket bounds (seconds). An observation metric is exact at every one of these
# thresholds for all history. Prometheus' default buckets are all here.
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


@lru_cache(maxsize=16)
def storage_bounds_ns(width: Decimal) -> tuple[int, ...]:
    """The store's log-linear layout at relative ``width`` (:func:`vigil.histogram.storage_bounds`:
    1 us to 1 h, every bucket at most ``width`` wide), in nanoseconds."""
    from vigil.histogram import storage_bounds

    return tuple(seconds_to_ns(b) for b in storage_bounds(Decimal(width)))


@dataclass(frozen=True)
class Rejection:
    line: int
    error: str

    def to_dict(self) -> dict:
        return {"line": self.line, "error": self.error}


@dataclass(frozen=True)
class TooLong:
    """A line (or array item) over the size limit, dropped while it streamed past: only its size is kept."""

    size: int


@dataclass(frozen=True)
class NotAnObject:
    """An array item that is valid JSON but not an object (``what``: 'an array', 'a number', ...)."""

    what: str


SplitItem = Union[bytes, str, TooLong, NotAnObject]
"""What a body splitter hands over per line or array item: the raw line (bytes, or the text of an
array item), or why it could not (:class:`TooLong`, :class:`NotAnObject`)."""


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
    bounds_count: int = 0
    """How many bucket bounds the observations were bucketed by (the store checks it at write)."""

    def reject(self, line: int, error: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTIONS_LISTED:
            self.rejected.append(Rejection(line, error))

    def merge(self, other: "Rollup") -> None:
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for ok, v in other.observations.items():
            self.observations[ok] = self.observations.get(ok, 0) + v
        for k, g in other.gauges.items():
            _merge_gauge(self.gauges, k, g)
        self.kinds.update(other.kinds)
        self.accepted += other.accepted
        for r in other.rejected:
            if len(self.rejected) < MAX_REJECTIONS_LISTED:
                self.rejected.append(r)
        self.rejected_count += other.rejected_count
        self.bounds_count = max(self.bounds_count, other.bounds_count)

    @property
    def empty(self) -> bool:
        return not (self.counters or self.observations or self.gauges)

    @property
    def size(self) -> int:
        """Rows this rollup writes (minutes): what bounds its memory."""
        return len(self.counters) + len(self.observations) + len(self.gauges)


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


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Bad(f"duplicate key {k[:40]!r} in one object (JSON parsers disagree on which value wins)")
            seen.add(k)
    return d


_decoder = json.JSONDecoder(parse_constant=_no_constants)
_strict_decoder = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
# What JSONDecoder.__init__ makes as its scan_once: parse one value at an index, no check of trailing text
_scan = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]  # typeshed wants a make_scanner as context (its TODO); CPython reads a decoder's attributes


@dataclass
class Admission:
    """Cardinality limits for a batch that would create series beyond them: which series exist, and
    how many new ones each metric and the store may still take. New series are admitted in line
    order; a line that would create one more is rejected. Built by the store, used by :func:`ingest`."""

    existing: set[tuple[str, str]]
    metric_series: dict[str, int]
    total_series: int
    per_metric_limit: int
    total_limit: int
    admitted: set[tuple[str, str]] = field(default_factory=set)

    def admit(self, metric: str, labels_json: str) -> None:
        key = (metric, labels_json)
        if key in self.existing or key in self.admitted:
            return
        n = self.metric_series.get(metric, 0)
        if n >= self.per_metric_limit:
            raise _Bad(
                f"metric {metric!r} has {n} series; a new one is over the limit of {self.per_metric_limit}"
                " (telemetry.max_series_per_metric): drop a high-cardinality label, or raise the limit"
            )
        if self.total_series >= self.total_limit:
            raise _Bad(
                f"the store has {self.total_series} series; a new one is over the limit of {self.total_limit}"
                " (telemetry.max_series): drop a high-cardinality label, or raise the limit"
            )
        self.metric_series[metric] = n + 1
        self.total_series += 1
        self.admitted.add(key)


@dataclass
class IngestContext:
    """What a batch is checked against: time bounds (ms), bucket bounds, known metric kinds, and --
    when the store found a batch over a limit -- the cardinality admission and the headroom left
    under :data:`MAX_STORED` per series-hour (``(metric, labels, hour[, le]) -> count``)."""

    now_ms: int
    oldest_ms: int
    max_future_ms: int
    bounds_ns: tuple[int, ...]
    metric_kinds: dict[str, str]
    admission: Admission | None = None
    headroom: dict[tuple, int] | None = None
    _bound_floats: list[float] = field(init=False)
    _ts_cache: dict[str, int] = field(init=False, default_factory=dict)
    _labels_cache: dict[tuple, tuple[str, int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.bounds_ns, self._bound_floats = _bound_table(tuple(self.bounds_ns))


@lru_cache(maxsize=8)
def _bound_table(bounds_ns: tuple[int, ...]) -> tuple[tuple[int, ...], list[float]]:
    """Sorted distinct bounds and their floats (seconds), made once per layout (about 1,700 bounds at
    2%), not once per push. The float of ``ns / 1e9`` is the one a JSON number of that value parses
    to, so ``observe: 0.3`` falls at the bound 0.3 exactly."""
    b = tuple(sorted(set(bounds_ns)))
    return b, [x / 1_000_000_000 for x in b]


# -- cutting a body into lines ------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_BOM = b"\xef\xbb\xbf"
_ARRAY_ERROR_HINT = "send a JSON array of objects, or one JSON object per line (NDJSON)"


def _array_error(what: str) -> TelemetryError:
    return TelemetryError(f"the body starts with '[' but is not a valid JSON array: {what}", hint=_ARRAY_ERROR_HINT)


class BodySplitter:
    """Cuts a push body into numbered lines as its bytes arrive: :meth:`feed` each chunk, then
    :meth:`close`; each returns the (line number, raw line) pairs completed so far.

    NDJSON lines come out as bytes. A JSON array's items come out as text (their number is their
    position); an item that is valid JSON but not an object comes out as :class:`NotAnObject`. A
    line or item over ``max_line`` bytes is dropped as it streams past and comes out as
    :class:`TooLong`, so memory stays bounded by ``max_line`` whatever the body's size. A body that
    starts with '[' is an array unless its first line is a whole JSON value followed by more lines
    (NDJSON whose first line happens to be an array). An array that cannot be read raises
    :class:`TelemetryError` (items before the fault have come out already)."""

    def __init__(self, *, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self.mode: str | None = None  # None (undecided), "ndjson", "array"
        self.bytes_in = 0
        self._head = b""  # undecided bytes
        self._bom_checked = False
        # NDJSON
        self._tail = b""
        self._line = 0
        self._dropping = -1  # bytes of an over-long line dropped so far; -1: not dropping
        # array
        self._text = ""
        self._pos = 0
        self._state = "open"
        self._item = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._decoded_bytes = 0
        self._skip: _Skipper | None = None
        self._skip_error = ""

    # -- public ------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[tuple[int, SplitItem]]:
        self.bytes_in += len(data)
        out: list[tuple[int, SplitItem]] = []
        if self.mode is None:
            self._head += data
            if not self._decide(eof=False):
                return out
            data, self._head = self._head, b""
        if self.mode == "ndjson":
            self._ndjson(data, out)
        else:
            self._array(data, out, eof=False)
        return out

    def close(self) -> list[tuple[int, SplitItem]]:
        out: list[tuple[int, SplitItem]] = []
        if self.mode is None:
            self._decide(eof=True)
            data, self._head = self._head, b""
            if self.mode == "ndjson":
                self._ndjson(data, out)
            else:
                self._array(data, out, eof=False)
        if self.mode == "ndjson":
            self._line += 1
            if self._dropping >= 0:
                out.append((self._line, TooLong(self._dropping + len(self._tail))))
            else:
                out.append((self._line, self._tail))
            self._tail = b""
        else:
            self._array(b"", out, eof=True)
        return out

    # -- which format ----------------------------------------------------------------------------

    def _decide(self, *, eof: bool) -> bool:
        head = self._head
        if not self._bom_checked:
            if len(head) < 3 and not eof and _BOM.startswith(head):
                return False
            if head.startswith(_BOM):  # a UTF-8 byte order mark, as some editors write
                head = self._head = head[3:]
            self._bom_checked = True
        stripped = head.lstrip()
        if not stripped:
            if eof:
                self.mode = "ndjson"
                return True
            return False
        if stripped[:1] != b"[":
            self.mode = "ndjson"
            return True
        first, nl, rest = stripped.partition(b"\n")
        if not nl:
            if len(first) > self.max_line or eof:
                self.mode = "array"
                return True
            return False
        if len(first) > self.max_line or not _whole_json_value(first):
            self.mode = "array"
            return True
        if rest.strip():
            self.mode = "ndjson"  # a one-line array, then more lines: NDJSON with a bad line 1
            return True
        if eof:
            self.mode = "array"
            return True
        return False

    # -- NDJSON ----------------------------------------------------------------------------------

    def _ndjson(self, data: bytes, out: list[tuple[int, SplitItem]]) -> None:
        if not data:
            return
        buf = self._tail + data if self._tail else data
        parts = buf.split(b"\n")
        self._tail = parts.pop()
        for p in parts:
            self._line += 1
            if self._dropping >= 0:
                out.append((self._line, TooLong(self._dropping + len(p))))
                self._dropping = -1
            else:
                out.append((self._line, p))
        if len(self._tail) > self.max_line:
            self._dropping = max(self._dropping, 0) + len(self._tail)
            self._tail = b""

    # -- JSON array ------------------------------------------------------------------------------

    def _array(self, data: bytes, out: list[tuple[int, SplitItem]], *, eof: bool) -> None:
        try:
            text = self._decoder.decode(data, final=eof)
        except UnicodeDecodeError as e:
            raise TelemetryError(f"the body is not UTF-8 (byte {self._decoded_bytes + e.start})") from None
        self._decoded_bytes += len(data)
        if text:
            if self._pos > (1 << 20) or self._pos == len(self._text):
                self._text = self._text[self._pos :] + text
                self._pos = 0
            else:
                self._text += text
        self._array_step(out, eof)

    def _array_step(self, out: list[tuple[int, SplitItem]], eof: bool) -> None:
        s = self._text
        p = self._pos
        n = len(s)
        max_line = self.max_line
        while True:
            if self._skip is not None:
                end = self._skip.run(s, p)
                if end is None:
                    p = n
                    if eof:
                        raise _array_error(self._skip_error or "it ends inside an item")
                    break
                size = self._skip.size + _utf8_len(s[self._skip.mark : end])
                self._skip = None
                if size <= max_line:  # a whole item we could not read: the array is broken
                    raise _array_error(self._skip_error)
                self._item += 1
                out.append((self._item, TooLong(size)))
                p = end
                self._state = "sep"
                continue
            ws = _WS.match(s, p)
            assert ws is not None  # [ \t\n\r]* matches at every position
            p = ws.end()
            if p >= n:
                if eof:
                    if self._state == "end":
                        break
                    raise _array_error("it ends before the closing ']'" if self._state != "open" else "it is empty")
                break
            c = s[p]
            st = self._state
            if st == "open":
                if c != "[":
                    raise _array_error(f"expected '[' at the start, found {c!r}")
                p += 1
                self._state = "first"
            elif st == "first" and c == "]":
                p += 1
                self._state = "end"
            elif st in ("first", "value"):
                if not eof and n - p <= max_line:
                    break  # not enough read to hold the longest item we accept: wait for more
                try:
                    obj, end = _scan(s, p)
                except (StopIteration, ValueError, RecursionError) as e:
                    self._skip_error = self._item_error(s, p, e)
                    self._skip = _Skipper()
                    self._skip.start(s, p)
                    continue
                raw = s[p:end]
                self._item += 1
                size = len(raw)
                if size > max_line // 4:
                    size = _utf8_len(raw)
                if size > max_line:
                    out.append((self._item, TooLong(size)))
                elif type(obj) is not dict:
                    out.append((self._item, NotAnObject(_json_type(obj))))
                else:
                    out.append((self._item, raw))
                p = end
                self._state = "sep"
            elif st == "sep":
                if c == ",":
                    self._state = "value"
                elif c == "]":
                    self._state = "end"
                else:
                    raise _array_error(f"expected ',' or ']' after item {self._item}, found {c!r}")
                p += 1
            else:  # "end"
                raise _array_error(f"extra data after the closing ']' (found {c!r})")
        self._pos = p

    def _item_error(self, s: str, p: int, e: BaseException) -> str:
        if isinstance(e, StopIteration):
            try:
                _decoder.raw_decode(s, p)
            except (ValueError, RecursionError) as e2:
                e = e2
            else:  # pragma: no cover - scan_once and raw_decode agree
                return f"item {self._item + 1} cannot be read"
        what = _json_error(e)
        if isinstance(e, json.JSONDecodeError):
            what = f"{e.msg} in item {self._item + 1}"
        return what


class _Skipper:
    """Finds the end of one JSON value in text arriving in pieces, holding none of it: how an
    over-long array item is dropped (or a broken one delimited)."""

    _STRUCT = re.compile(r'["\[\]{},\\]')
    _IN_STR = re.compile(r'["\\]')
    _SCALAR_END = re.compile(r"[,\]\s]")

    def __init__(self) -> None:
        self.depth = 0
        self.in_str = False
        self.escape = False
        self.started = False
        self.scalar = False
        self.size = 0  # bytes of the value in earlier pieces
        self.mark = 0  # where the value starts in the current piece

    def start(self, s: str, p: int) -> None:
        self.mark = p

    def run(self, s: str, p: int) -> int | None:
        """The index just past the value's end in ``s``, or None (consumed all of ``s``)."""
        n = len(s)
        i = p
        while i < n:
            if self.escape:
                self.escape = False
                i += 1
                continue
            if self.in_str:
                m = self._IN_STR.search(s, i)
                if m is None:
                    i = n
                    break
                i = m.start()
                if s[i] == "\\":
                    self.escape = True
                else:
                    self.in_str = False
                    if self.depth == 0:
                        return i + 1
                i += 1
                continue
            if not self.started:
                self.started = True
                c = s[i]
                if c in "[{":
                    self.depth = 1
                    i += 1
                elif c == '"':
                    self.in_str = True
                    i += 1
                else:
                    self.scalar = True
                continue
            if self.scalar:
                m = self._SCALAR_END.search(s, i)
                if m is None:
                    i = n
                    break
                return m.start()
            m = self._STRUCT.search(s, i)
            if m is None:
                i = n
                break
            i = m.start()
            c = s[i]
            if c == '"':
                self.in_str = True
            elif c in "[{":
                self.depth += 1
            elif c in "]}":
                self.depth -= 1
                if self.depth == 0:
                    return i + 1
            i += 1
        self.size += _utf8_len(s[self.mark : n])
        self.mark = 0
        return None


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


def _whole_json_value(line: bytes) -> bool:
    try:
        _decoder.decode(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


def split_body(body: bytes, *, max_bytes: int) -> Iterator[tuple[int, SplitItem]]:
    """Yield (line number, raw line or item) from a whole NDJSON or JSON-array body."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"the body is {len(body)} bytes; the limit is {max_bytes}",
            hint="send smaller batches (vigil push batches for you)",
        )
    sp = BodySplitter()
    step = 1 << 20
    for i in range(0, len(body), step):
        yield from sp.feed(body[i : i + step])
    yield from sp.close()


# -- checking lines -------------------------------------------------------------------------------------


def ingest(lines: Iterable[tuple[int, object]], ctx: IngestContext, rollup: Rollup | None = None) -> Rollup:
    """Check every line and add the good ones to a rollup. Never raises for a bad line."""
    r = rollup if rollup is not None else Rollup()
    r.bounds_count = len(ctx.bounds_ns)
    counters = r.counters
    observations = r.observations
    gauges = r.gauges
    kinds = r.kinds
    metric_kinds = ctx.metric_kinds
    ts_cache = ctx._ts_cache
    labels_cache = ctx._labels_cache
    bound_floats = ctx._bound_floats
    bounds_ns = ctx.bounds_ns
    admission = ctx.admission
    headroom = ctx.headroom
    nb = len(bound_floats)
    decode = _decoder.decode
    scan = _scan
    for lineno, raw in lines:
        try:
            text: str | None
            if isinstance(raw, (bytes, str)):
                if len(raw) > MAX_LINE_BYTES:
                    raise _Bad(f"line is {len(raw)} bytes; the limit is {MAX_LINE_BYTES}")
                if isinstance(raw, bytes):
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise _Bad(f"not UTF-8 (byte {e.start})") from None
                else:
                    text = raw
                if not text or text.isspace():
                    continue
                try:
                    obj, end = scan(text, 0)
                    if end != len(text) and text[end:].strip(" \t\n\r"):
                        raise ValueError("extra data")
                except (StopIteration, ValueError, RecursionError):
                    try:
                        obj = decode(text)
                    except (ValueError, RecursionError) as e:
                        raise _Bad(f"invalid JSON: {_json_error(e)}") from None
            elif isinstance(raw, (TooLong, NotAnObject)):
                raise _Bad(item_error(raw))
            else:
                text = None
                obj = raw
            if type(obj) is not dict:
                raise _Bad(f"expected a JSON object, got {_json_type(obj)}")
            if not obj.keys() <= ALLOWED_KEYS:
                extra = sorted(set(obj) - ALLOWED_KEYS)
                raise _Bad(f"unknown key {extra[0][:40]!r}; allowed: ts, metric, labels, inc, observe, set, count")
            # -- time
            ts = obj.get("ts")
            if type(ts) is not str:
                raise _Bad(TS_FORMAT + ("" if ts is not None else " (missing)"))
            ms = ts_cache.get(ts)
            if ms is None:
                ms = _parse_ts(ts)
                if len(ts_cache) > 20_000:
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
                labels_json = "{}"
                label_colons = 0
                nlabels = 0
            else:
                if type(labels) is not dict:
                    raise _Bad("labels must be an object of string values")
                lkey = tuple(labels.items())  # the order as sent: one exporter sends one order
                try:
                    cached = labels_cache.get(lkey)
                except TypeError:  # an unhashable label value: _check_labels names it
                    cached = _check_labels(labels)
                if cached is None:
                    cached = _check_labels(labels)
                    if len(labels_cache) > 20_000:
                        labels_cache.clear()
                    labels_cache[lkey] = cached
                labels_json, label_colons = cached
                nlabels = len(labels)
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
            if len(obj) - ("labels" in obj) != (4 if kind == "observation" and "count" in obj else 3):
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
            hkey: tuple | None = None
            if kind == "counter":
                if tv is float:
                    if not v.is_integer():
                        raise _Bad("inc counts events: a whole number, 0 or more")
                    v = int(v)
                if v < 0 or v > MAX_INC:
                    raise _Bad(f"inc must be between 0 and {MAX_INC}")
                n = v
                key: tuple = (metric, labels_json, minute)
                if headroom is not None:
                    hkey = (metric, labels_json, minute // 60)
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
                key = (metric, labels_json, minute, le)
                if headroom is not None:
                    hkey = (metric, labels_json, minute // 60, le)
            else:
                try:
                    fv = float(v)
                except OverflowError:
                    raise _Bad("set must be a number a float can hold (at most about 1.8e308)") from None
                key = (metric, labels_json, minute)
            # -- a key twice in one object: JSON parsers disagree on which value wins, so the line
            # is refused. Counting ':' is the cheap test: every key has one, and so does every ':'
            # inside the string values kept; a duplicate makes the raw count exceed that (escapes
            # could hide a ':', so a line with a backslash is always checked in full).
            if text is not None and (
                "\\" in text
                or text.count(":") != len(obj) + nlabels + ts.count(":") + metric.count(":") + label_colons
            ):
                try:
                    _strict_decoder.decode(text)
                except (ValueError, RecursionError):  # pragma: no cover - it decoded above
                    pass
            if hkey is not None and headroom is not None:
                left = headroom.get(hkey, MAX_STORED)
                if n > left:
                    raise _Bad(
                        f"{field_} {n} would take the series' count for the hour past {MAX_STORED} (2^63 - 1),"
                        " the most a count holds exactly"
                    )
            if admission is not None:
                admission.admit(metric, labels_json)
            # -- the line is good: add it
            if hkey is not None and headroom is not None:
                headroom[hkey] = left - n
            if kind == "counter":
                counters[key] = counters.get(key, 0) + n
            elif kind == "observation":
                observations[key] = observations.get(key, 0) + n
            else:
                g = gauges.get(key)
                if g is None:
                    gauges[key] = [fv, fv, fv, ms, 1]
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


def item_error(item: TooLong | NotAnObject) -> str:
    """Why a line the splitter could not hand over whole is rejected."""
    if isinstance(item, TooLong):
        return f"line is {item.size} bytes; the limit is {MAX_LINE_BYTES}"
    return f"expected a JSON object, got {item.what}"


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


TS_FORMAT = "ts must be an RFC 3339 time string like 2026-11-01T12:00:00Z"


def _parse_ts(ts: object) -> int:
    if type(ts) is not str:
        raise _Bad(TS_FORMAT + ("" if ts is not None else " (missing)"))
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


def _check_labels(labels: dict) -> tuple[str, int]:
    """The canonical JSON of valid labels, and how many ':' their values hold."""
    if len(labels) > MAX_LABELS:
        raise _Bad(f"{len(labels)} labels; at most {MAX_LABELS}")
    colons = 0
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
        colons += v.count(":")
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False), colons
