"""The push format under malformed, huge and hostile input, through ingest, the store and `vigil push`.

The promise: every good line is kept, every bad line is reported with its number and reason, and a
bad line contributes nothing.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CONTRACT_SPEC, ndjson
from vigil.errors import PayloadTooLarge, TelemetryError
from vigil.spec import parse_spec
from vigil.store import open_store, schema
from vigil.telemetry.ingest import (
    DOCUMENTED_BOUNDS,
    MAX_INC,
    MAX_LINE_BYTES,
    IngestContext,
    Rollup,
    ingest,
    seconds_to_ns,
    split_body,
)
from vigil.telemetry.push import DEFAULT_MAX_BODY, Ingestor

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
RETENTION_MS = 30 * 86400 * 1000
KINDS = {"reqs": "counter", "lat": "observation", "stale": "gauge"}
FIELD = {"counter": "inc", "observation": "observe", "gauge": "set"}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def ctx(kinds: dict | None = None) -> IngestContext:
    return IngestContext(
        now_ms=NOW_MS,
        oldest_ms=NOW_MS - RETENTION_MS,
        max_future_ms=600_000,
        bounds_ns=tuple(seconds_to_ns(b) for b in DOCUMENTED_BOUNDS),
        metric_kinds=dict(KINDS if kinds is None else kinds),
    )


def run(body: bytes, kinds: dict | None = None) -> Rollup:
    return ingest(split_body(body, max_bytes=DEFAULT_MAX_BODY), ctx(kinds))


def one(line: bytes | str, kinds: dict | None = None) -> Rollup:
    """One NDJSON line (not a body: a body that starts with '[' is a JSON array)."""
    return ingest([(1, line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line)], ctx(kinds))


def ts(offset_s: float = -60, style: str = "Z") -> str:
    dt = NOW + timedelta(seconds=offset_s)
    if style == "Z":
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "frac":
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if style == "offset":
        return dt.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="seconds")
    if style == "space":
        return dt.strftime("%Y-%m-%d %H:%M:%SZ")
    if style == "lower":
        return dt.strftime("%Y-%m-%dt%H:%M:%Sz")
    raise ValueError(style)


def line(**kw) -> str:
    d = {"ts": ts(), "metric": "reqs", "inc": 1}
    d.update(kw)
    return json.dumps({k: v for k, v in d.items() if v is not ...})


def rejected(r: Rollup) -> dict[int, str]:
    return {x.line: x.error for x in r.rejected}


def assert_nothing_from(r: Rollup) -> None:
    assert r.accepted == 0
    assert r.empty and not r.kinds


# --- generated lines ------------------------------------------------------------------------------------

label_values = st.text(max_size=12)
labels = st.dictionaries(st.sampled_from(["code", "svc", "a_b", "Z9", "_x"]), label_values, max_size=3)


@st.composite
def valid_obj(draw) -> dict:
    metric = draw(st.sampled_from(sorted(KINDS)))
    kind = KINDS[metric]
    d: dict = {"ts": ts(draw(st.integers(-(29 * 86400), 300)), draw(st.sampled_from(["Z", "frac", "offset", "space"]))), "metric": metric}
    if draw(st.booleans()):
        d["labels"] = draw(labels)
    if kind == "counter":
        d["inc"] = draw(st.one_of(st.integers(0, 10**6), st.integers(0, 1000).map(float), st.just(MAX_INC)))
    elif kind == "observation":
        d["observe"] = draw(st.one_of(st.integers(0, 4000), st.floats(0, 1e6, allow_nan=False), st.sampled_from([0.3, 0.2999999, 0.3000001, 1e300])))
        if draw(st.booleans()):
            d["count"] = draw(st.one_of(st.integers(1, 10**6), st.just(5.0)))
    else:
        d["set"] = draw(st.one_of(st.integers(-(10**12), 10**12), st.floats(-1e300, 1e300, allow_nan=False)))
    keys = list(d)
    order = draw(st.permutations(keys))
    return {k: d[k] for k in order}


def encode(d: dict, ascii_only: bool = True) -> bytes:
    return json.dumps(d, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


valid_lines = st.tuples(valid_obj(), st.booleans()).map(lambda t: encode(t[0], t[1]))

NUMBER_HOLE = "__NUMBER__"


def _no_constant(name: str):
    raise ValueError(name)


@st.composite
def invalid_line(draw) -> bytes:
    d = draw(valid_obj())
    metric = d["metric"]
    field = FIELD[KINDS[metric]]
    defect = draw(st.integers(0, 33))
    if defect == 0:  # NaN, Infinity and friends, and numbers JSON or a float cannot hold
        d[field] = NUMBER_HOLE
        return encode(d).replace(b'"' + NUMBER_HOLE.encode() + b'"', draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"9" * 5000])))
    if defect == 1:
        d[field] = draw(st.sampled_from([True, False, None, "5", [1], {"v": 1}]))
    elif defect == 2:  # negative or fractional counts
        d.pop(field)
        d["inc"] = draw(st.sampled_from([-1, 1.5, MAX_INC + 1, 10**30, -0.5]))
        d["metric"] = "reqs"
    elif defect == 3:
        return draw(st.sampled_from([b"[]", b"1", b'"x"', b"null", b"true", b"[{}]", b'"{\\"ts\\": 1}"', b"{", b"}", b"{}", b"garbage", b"\x00"]))
    elif defect == 4:
        d[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in ("ts", "metric", "labels", "inc", "observe", "set", "count")))] = 1
    elif defect == 5:  # two value fields
        other = draw(st.sampled_from([f for f in ("inc", "observe", "set") if f != field]))
        d[other] = 1
    elif defect == 6:  # count without observe
        d.pop(field)
        d["metric"] = draw(st.sampled_from(["reqs", "stale"]))
        d[FIELD[KINDS[d["metric"]]]] = 1
        d["count"] = 2
    elif defect == 7:  # bad counts for an observation
        d.pop(field)
        d["metric"] = "lat"
        d["observe"] = 0.1
        d["count"] = draw(st.sampled_from([0, -1, 1.5, "2", True, None, MAX_INC + 1]))
    elif defect == 8:  # labels that are not an object of strings
        d["labels"] = draw(st.sampled_from([{"a": 1}, {"a": None}, {"a": [1]}, {"a": {"b": "c"}}, {"a": True}, [], "x", 5, [["a", "b"]]]))
    elif defect == 9:  # reserved or malformed label names
        d["labels"] = {draw(st.sampled_from(["__name__", "__x", "1a", "a-b", "", "é", "a b", "x" * 129])): "v"}
    elif defect == 10:  # ts without a zone, or not a time
        d["ts"] = draw(st.sampled_from([ts()[:-1], ts()[:10], "2026-11-20T11:59", "yesterday", "", "2026-13-01T00:00:00Z",
                                        "2026-02-30T00:00:00Z", ts() + "\u0000junk", "2026-W47-5T12:00:00Z", "x" * 100]))
    elif defect == 11:  # ts not a string, or missing
        if draw(st.booleans()):
            d.pop("ts")
        else:
            d["ts"] = draw(st.sampled_from([NOW_MS, NOW_MS / 1000, None, True, [ts()], {"t": ts()}]))
    elif defect == 12:  # far in the future
        d["ts"] = ts(draw(st.integers(601, 10**9)))
    elif defect == 13:  # older than retention
        d["ts"] = ts(-draw(st.integers(30 * 86400 + 61, 10**10)))
    elif defect == 14:  # a metric sent with the wrong kind
        d.pop(field)
        d[draw(st.sampled_from([f for f in ("inc", "observe", "set") if f != field]))] = 1
    elif defect == 15:  # bad metric names
        d["metric"] = draw(st.sampled_from(["", "1abc", "a-b", "a b", "é", None, 5, "m" * 201, ["reqs"]]))
    elif defect == 16:  # truncated
        b = encode(d)
        return b[: draw(st.integers(1, len(b) - 1))]  # not 0: an empty line is a blank line
    elif defect == 17:  # not UTF-8
        b = encode(d)
        i = draw(st.integers(0, len(b)))
        return b[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])) + b[i:]
    elif defect == 18:  # over the line limit
        return encode(d) + b" " * (MAX_LINE_BYTES + 1)
    elif defect == 19:  # nested too deeply
        n = draw(st.integers(2000, 20000))
        return b'{"labels":' + b"[" * n + b"]" * n + b"}"
    elif defect == 20:  # no value at all
        d.pop(field)
    elif defect == 21:
        d["labels"] = {"a": "x" * 1025}
    elif defect == 22:
        d["labels"] = {f"l{i}": "v" for i in range(33)}
    elif defect == 23:  # a lone surrogate: valid JSON, not valid Unicode
        d["labels"] = {"a": draw(st.sampled_from(["\ud800", "x\udfff", "\udbff\udbff"]))}
    elif defect == 24:
        d.pop(field)
        d["metric"] = "lat"
        d["observe"] = draw(st.sampled_from([-1, -0.001, -1e300]))
    elif defect == 25:  # a gauge value no float can hold
        d.pop(field)
        d["metric"] = "stale"
        d["set"] = NUMBER_HOLE
        return encode(d).replace(b'"' + NUMBER_HOLE.encode() + b'"', b"9" * 400)
    elif defect == 26:  # a duplicate key whose last value is bad
        b = encode(d)
        return b[:-1] + b', "ts": "nope"}'
    elif defect == 27:
        return encode(d) + b" " + encode(d)
    elif defect == 28:
        return b"\xef\xbb\xbf" + encode(d)  # a BOM is not JSON
    elif defect == 29:
        d["labels"] = {"a": "b", "__c": "d"}
    elif defect == 30:
        return json.dumps([d]).encode()  # an array on an NDJSON line
    elif defect == 31:
        d["ts"] = "9999-12-31T23:59:59-14:00"
    elif defect == 32:
        d["ts"] = "0001-01-01T00:00:00+14:00"
    else:
        d["metric"] = draw(st.sampled_from(["reqs", "lat", "stale"]))
        d.pop(field)
        d["count"] = 3  # count alone
    return encode(d)


blank_lines = st.sampled_from([b"", b" ", b"\t", b"\r", b"   \r", b"\x0b", b"\x0c"])


@FUZZ
@given(st.lists(st.one_of(valid_lines.map(lambda b: ("ok", b)), invalid_line().map(lambda b: ("bad", b)), blank_lines.map(lambda b: ("blank", b))), max_size=30))
def test_mixed_batches(lines):
    lines = [("ok", encode({"ts": ts(), "metric": "reqs", "inc": 1}))] + lines  # a body starting with '[' is an array
    body = b"\n".join(b for _, b in lines)
    r = run(body)
    numbered = list(enumerate(lines, 1))
    good = [n for n, (k, _) in numbered if k == "ok"]
    bad = [n for n, (k, _) in numbered if k == "bad"]
    assert r.accepted + r.rejected_count == len(good) + len(bad)
    assert [x.line for x in r.rejected] == bad, [(x, lines[x.line - 1]) for x in r.rejected if x.line not in bad]
    assert r.accepted == len(good)
    for x in r.rejected:
        assert x.error and len(x.error) < 500
    only_good = ingest([(n, b) for n, (k, b) in numbered if k == "ok"], ctx())
    assert r.counters == only_good.counters
    assert r.observations == only_good.observations
    assert r.gauges == only_good.gauges
    assert r.kinds == only_good.kinds


@FUZZ
@given(st.lists(st.one_of(valid_obj().map(lambda d: ("ok", d)), invalid_line().map(lambda b: ("bad", b))), max_size=20))
def test_json_array_batches(items):
    """The same lines as a JSON array: an item's number is its position."""
    objs = []
    kinds = []
    for k, x in items:
        if k == "ok":
            objs.append(x)
            kinds.append("ok")
        else:
            try:
                v = json.loads(x, parse_constant=_no_constant)
                list(split_body(json.dumps([v]).encode("utf-8", "surrogatepass"), max_bytes=DEFAULT_MAX_BODY))
            except (ValueError, RecursionError, UnicodeDecodeError, TelemetryError):
                continue  # not JSON vigil reads (NaN, too deep): it would spoil the whole array, tested below
            objs.append(v)
            kinds.append("bad")
    body = json.dumps(objs).encode("utf-8", "surrogatepass")
    r = run(body)
    ok = {n for n, k in enumerate(kinds, 1) if k == "ok"}
    # a defect that only shows in text (a duplicate key, a BOM) can vanish once decoded: compare to
    # the items as decoded, line by line
    expected = ingest([(n, json.dumps(o).encode("utf-8", "surrogatepass")) for n, o in enumerate(objs, 1)], ctx())
    assert r.accepted + r.rejected_count == len(objs)
    assert [x.line for x in r.rejected] == [x.line for x in expected.rejected]
    assert not ok & {x.line for x in r.rejected}
    assert r.counters == expected.counters and r.observations == expected.observations and r.gauges == expected.gauges


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(body):
    try:
        lines = list(split_body(body, max_bytes=1000))
    except TelemetryError as e:
        assert e.message
        return
    r = ingest(lines, ctx())
    assert r.accepted + r.rejected_count <= len(lines)
    for x in r.rejected:
        assert 1 <= x.line <= len(lines) and x.error


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
                    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.sampled_from(["ts", "metric", "labels", "inc", "observe", "set", "count", "x"]), c, max_size=5)),
                    max_leaves=12))
def test_arbitrary_json_values(value):
    try:
        text = json.dumps(value)
    except ValueError:
        return
    r = one(text)
    assert r.accepted + r.rejected_count == 1
    if r.rejected_count:
        assert_nothing_from(r)


# --- hand-written lines ---------------------------------------------------------------------------------


def test_a_good_line_of_each_kind():
    body = "\n".join([
        line(metric="reqs", labels={"code": "200"}, inc=3),
        line(metric="lat", inc=..., observe=0.3, count=4),
        line(metric="stale", inc=..., set=41.5),
        line(metric="stale", inc=..., set=-1),
    ]).encode()
    r = run(body)
    assert (r.accepted, r.rejected_count) == (4, 0)
    minute = (NOW_MS - 60_000) // 60_000
    assert r.counters == {("reqs", '{"code":"200"}', minute): 3}
    assert r.observations == {("lat", "{}", minute, seconds_to_ns(DOCUMENTED_BOUNDS[11])): 4}  # exactly 0.3 lands in le=0.3
    assert r.gauges[("stale", "{}", minute)][:2] == [-1.0, 41.5]


@pytest.mark.parametrize(
    "text,message",
    [
        (line(inc=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "NaN"), "NaN is not a number vigil accepts"),
        (line(inc=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "Infinity"), "Infinity is not a number"),
        (line(inc=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "-Infinity"), "-Infinity is not a number"),
        (line(inc=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "1e400"), "inc must be finite"),
        (line(metric="lat", inc=..., observe=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "1e400"), "observe must be finite"),
        (line(metric="stale", inc=..., set=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "-1e400"), "set must be finite"),
        (line(inc=-1), f"inc must be between 0 and {MAX_INC}"),
        (line(inc=MAX_INC + 1), f"inc must be between 0 and {MAX_INC}"),
        (line(inc=1.5), "inc counts events: a whole number"),
        (line(inc=True), "inc must be a number, got a boolean"),
        (line(inc="5"), "inc must be a number, got a string"),
        (line(inc=None), "inc must be a number, got null"),
        (line(inc=[1]), "inc must be a number, got an array"),
        (line(inc=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "9" * 5000), "invalid JSON: a number has too many digits"),
        (line(inc=10**100), f"inc must be between 0 and {MAX_INC}"),
        (line(metric="stale", inc=..., set=NUMBER_HOLE).replace(f'"{NUMBER_HOLE}"', "9" * 400), "set must be a number a float can hold"),
        (line(metric="lat", inc=..., observe=-0.5), "observe must be 0 or more"),
        (line(labels={"svc": "x" * 70_000}), f"line is 70"),
        (line(labels={"svc": "x" * 1025}), "at most 1024"),
        ('{"a":' * 3000 + "1" + "}" * 3000, "invalid JSON: it nests too deeply"),
        ("[" * 30000 + "]" * 30000, "invalid JSON: it nests too deeply"),
        ("[]", "expected a JSON object, got an array"),
        ('"x"', "expected a JSON object, got a string"),
        ("42", "expected a JSON object, got a number"),
        ("null", "expected a JSON object, got null"),
        ("true", "expected a JSON object, got a boolean"),
        ("{", "invalid JSON"),
        (line() + "{}", "invalid JSON: Extra data"),
        (line(bogus=1), "unknown key 'bogus'; allowed: ts, metric, labels, inc, observe, set, count"),
        (line(**{"x" * 5000: 1}), "unknown key 'xxxxxxxx"),
        (line(set=1), "a sample has exactly one of inc, observe, set"),
        (line(observe=1), "a sample has exactly one of inc, observe, set"),
        (line(count=2), "count goes with observe only"),
        (line(metric="stale", inc=..., set=1, count=2), "count goes with observe only"),
        (line(metric="lat", inc=..., observe=1, count=0), "count must be a whole number between 1"),
        (line(metric="lat", inc=..., observe=1, count=1.5), "count must be a whole number between 1"),
        (line(metric="lat", inc=..., observe=1, count="2"), "count must be a whole number between 1"),
        (line(metric="lat", inc=..., observe=1, count=True), "count must be a whole number between 1"),
        (line(inc=...), "a sample needs one of inc (counter), observe (observation) or set (gauge)"),
        (line(inc=..., count=1), "a sample needs one of inc"),
        (line(labels={"code": 200}), "label 'code' must be a string, got a number"),
        (line(labels={"code": None}), "label 'code' must be a string, got null"),
        (line(labels={"code": ["200"]}), "label 'code' must be a string, got an array"),
        (line(labels={"code": {"v": "200"}}), "label 'code' must be a string, got an object"),
        (line(labels={"code": True}), "label 'code' must be a string, got a boolean"),
        (line(labels=[]), "labels must be an object of string values"),
        (line(labels="code=200"), "labels must be an object of string values"),
        (line(labels={"__name__": "x"}), "names starting with '__' are reserved"),
        (line(labels={"__meta": "x"}), "names starting with '__' are reserved"),
        (line(labels={"1a": "x"}), "label name '1a' must match"),
        (line(labels={"a-b": "x"}), "must match [a-zA-Z_][a-zA-Z0-9_]*"),
        (line(labels={"": "x"}), "label name '' must match"),
        (line(labels={"a" * 129: "x"}), "at most 128 characters"),
        (line(labels={f"l{i}": "v" for i in range(33)}), "33 labels; at most 32"),
        (line(labels={"a": "\ud800"}), "label 'a' is not valid Unicode"),
        (line(ts="2026-11-20T11:59:00"), "is not an RFC 3339 time with a zone"),
        (line(ts="2026-11-20"), "is not an RFC 3339 time with a zone"),
        (line(ts="2026-11-20T11:59:00Z\u0000junk"), "is not an RFC 3339 time"),
        (line(ts="2026-W47-5T12:00:00Z"), "is not an RFC 3339 time"),
        (line(ts="2026-02-30T00:00:00Z"), "is not an RFC 3339 time like"),
        (line(ts="x" * 100), "ts is too long"),
        (line(ts=NOW_MS), "ts must be an RFC 3339 time string"),
        (line(ts=None), "ts must be an RFC 3339 time string"),
        (line(ts=...), "(missing)"),
        (line(ts=ts(601)), "is in the future (more than 600s ahead of the server clock)"),
        (line(ts="9999-12-31T23:59:59-14:00"), "is in the future"),
        (line(ts=ts(-30 * 86400 - 61)), "older than the retention window"),
        (line(ts="0001-01-01T00:00:00+14:00"), "older than the retention window"),
        (line(ts="1970-01-01T00:00:00Z"), "older than the retention window"),
        (line(metric=""), "metric must be a name like http_requests"),
        (line(metric="a-b"), "metric must be a name"),
        (line(metric="m" * 201), "at most 200 characters"),
        (line(metric=None), "metric must be a name"),
        (line(metric=...), "metric must be a name"),
        (line(inc=..., set=1), "metric 'reqs' is a counter; this line sends 'set' (gauge)"),
        (line(inc=..., observe=1), "metric 'reqs' is a counter; this line sends 'observe' (observation)"),
        (line(metric="stale", inc=2), "metric 'stale' is a gauge; this line sends 'inc' (counter)"),
    ],
)
def test_bad_line(text, message):
    r = one(text)
    assert r.rejected_count == 1, r
    (x,) = r.rejected
    assert x.line == 1
    assert message in x.error, x.error
    assert len(x.error) < 500
    assert_nothing_from(r)


@pytest.mark.parametrize(
    "ts_text", [ts(0), ts(-60, "frac"), ts(-60, "offset"), ts(-60, "space"), ts(-60, "lower"), ts(600), ts(-30 * 86400 + 1),
                "2026-11-20T13:59:00+02:00", "2026-11-20T11:59:00.123456789Z", "2026-11-20T11:59:00+0000"],
)
def test_good_timestamps(ts_text):
    r = one(line(ts=ts_text))
    assert r.accepted == 1, r.rejected


def test_non_utf8_line_is_rejected_alone():
    body = line().encode() + b"\n" + b'{"ts": "\xff"}' + b"\n" + line(inc=2).encode()
    r = run(body)
    assert r.accepted == 2
    assert rejected(r) == {2: "not UTF-8 (byte 8)"}
    assert sum(r.counters.values()) == 3


def test_line_numbers_count_blank_and_crlf_lines():
    body = ("\r\n".join(["", line(), "bad", "   ", line(inc=-1), "\t", line()]) + "\r\n").encode()
    r = run(body)
    assert r.accepted == 2
    assert sorted(rejected(r)) == [3, 5]


def test_kind_conflict_in_one_batch():
    body = "\n".join([line(metric="newm", inc=1), line(metric="newm", inc=..., set=5), line(metric="newm", inc=2)]).encode()
    r = run(body, kinds={})
    assert r.accepted == 2
    assert rejected(r) == {2: "metric 'newm' is a counter; this line sends 'set' (gauge)"}
    assert r.kinds == {("newm", "{}"): "counter"}


def test_a_rejected_line_does_not_decide_a_kind():
    body = "\n".join([line(metric="newm", inc=..., set=5, ts="bad"), line(metric="newm", inc=2)]).encode()
    r = run(body, kinds={})
    assert r.accepted == 1 and list(rejected(r)) == [1]
    assert r.kinds == {("newm", "{}"): "counter"}


def test_rejections_listed_are_capped_but_counted():
    r = run(b"x\n" * 5000)
    assert r.rejected_count == 5000
    assert len(r.rejected) == 1000
    assert r.rejected[-1].line == 1000


# --- split_body ------------------------------------------------------------------------------------------


def test_json_array_body():
    items = [json.loads(line(inc=2)), {"ts": ts()}, 5, json.loads(line(metric="stale", inc=..., set=1))]
    r = run(b"  \n" + json.dumps(items).encode())
    assert r.accepted == 2
    assert sorted(rejected(r)) == [2, 3]


@pytest.mark.parametrize(
    "body,message",
    [
        (b"[1, 2", "not a valid JSON array"),
        (b"[" * 100_000, "not a valid JSON array: it nests too deeply"),
        (b"[" * 5000 + b"]" * 5000, "it nests too deeply"),
        (b'[{"a": NaN}]', "NaN is not a number"),
        (b"[1] [2]", "not a valid JSON array"),
        (b'["\xff"]', "not UTF-8 (byte 2)"),
        (b"[" + b"9" * 5000 + b"]", "a number has too many digits"),
    ],
)
def test_unreadable_array_body(body, message):
    with pytest.raises(TelemetryError) as ei:
        list(split_body(body, max_bytes=DEFAULT_MAX_BODY))
    assert message in ei.value.message
    assert ei.value.http_status == 400


def test_body_over_the_limit():
    with pytest.raises(PayloadTooLarge) as ei:
        list(split_body(b"x" * 101, max_bytes=100))
    assert ei.value.http_status == 413
    assert "101 bytes; the limit is 100" in ei.value.message
    assert ei.value.hint
    assert len(list(split_body(b"\n" * 100, max_bytes=100))) == 101


@pytest.mark.parametrize(
    "first",
    [b"[]", b"[1, 2]", b'[{"ts": "x"}]', json.dumps([json.loads(line(inc=100))]).encode(), b"  [\"a\"]  "],
)
def test_ndjson_whose_first_line_is_an_array(first):
    """A one-line array and more lines is NDJSON with a bad line 1, not a broken array: the rest is kept."""
    body = first + b"\n" + line(inc=2).encode() + b"\n\n" + b"\xff" + b"\n" + line(inc=3).encode() + b"\n"
    r = run(body)
    assert r.accepted == 2
    assert sorted(rejected(r)) == [1, 4]
    assert "expected a JSON object, got an array" in rejected(r)[1]
    assert sum(r.counters.values()) == 5


@pytest.mark.parametrize(
    "body",
    [b"[\n" + line().encode() + b",\n" + line().encode() + b"\n", b"[\n" + line().encode() + b"\n]\n]\n", b"[" + line().encode() + b",\n\xff]"],
    ids=["unterminated", "extra-bracket", "not-utf8"],
)
def test_a_broken_multi_line_array_is_one_error(body):
    with pytest.raises(TelemetryError):
        list(split_body(body, max_bytes=DEFAULT_MAX_BODY))


def test_empty_bodies():
    for body in (b"", b"\n", b"\n\n \n\t\r\n", b"[]", b"  []  "):
        r = run(body)
        assert (r.accepted, r.rejected_count) == (0, 0)


def test_huge_body_of_bad_lines_is_linear():
    import time

    body = b"not json at all\n" * 200_000
    t = time.monotonic()
    r = run(body)
    assert time.monotonic() - t < 10
    assert r.rejected_count == 200_000


# --- through the store ---------------------------------------------------------------------------------


def _dump(store) -> dict:
    s = schema
    with store.engine.connect() as c:
        out = {
            "series": sorted((m, lj, k) for m, lj, k in c.execute(sa.select(s.series.c.metric, s.series.c.labels, s.series.c.kind))),
        }
        for name, t, cols in (
            ("counters", s.counter_minute, ("minute", "value")),
            ("obs", s.obs_minute, ("minute", "le", "count")),
            ("gauges", s.gauge_minute, ("minute", "min", "max", "last", "last_ms", "samples")),
        ):
            q = sa.select(s.series.c.metric, s.series.c.labels, *[t.c[c_] for c_ in cols]).join(s.series, s.series.c.id == t.c.series_id)
            out[name] = sorted(tuple(r) for r in c.execute(q))
    return out


@pytest.fixture
def spec():
    return parse_spec(CONTRACT_SPEC.replace("version: 1\n", "version: 1\ntelemetry: {retention: 30d}\n"))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(valid_lines.map(lambda b: ("ok", b)), invalid_line().map(lambda b: ("bad", b))), min_size=1, max_size=25))
def test_store_keeps_exactly_the_good_lines(tmp_path_factory, spec, lines):
    d = tmp_path_factory.mktemp("st")
    lines = [("ok", encode({"ts": ts(), "metric": "reqs", "inc": 1}))] + lines  # a body starting with '[' is an array
    mixed = open_store(f"sqlite:///{d / 'mixed.db'}")
    clean = open_store(f"sqlite:///{d / 'clean.db'}")
    try:
        for st_, body in ((mixed, b"\n".join(b for _, b in lines)), (clean, b"\n".join(b for k, b in lines if k == "ok"))):
            ing = Ingestor(spec, st_)
            ing.metric_kinds.update(KINDS)
            res = ing.push_body(body, NOW)
            assert res.accepted == sum(1 for k, _ in lines if k == "ok")
        assert _dump(mixed) == _dump(clean)
    finally:
        mixed.close()
        clean.close()


def test_a_hostile_line_does_not_sink_the_batch(spec, store):
    body = (line(labels={"a": "ok"}, inc=5) + "\n" + line(labels={"a": "\ud800"}, inc=7) + "\n").encode("utf-8", "surrogatepass")
    res = Ingestor(spec, store).push_body(body, NOW)
    assert (res.accepted, res.rejected_count) == (1, 1)
    assert [v for *_, v in _dump(store)["counters"]] == [5]


def test_kind_conflict_across_batches(spec, store):
    ing = Ingestor(spec, store)
    assert ing.push_body(line(metric="checkout_attempts", inc=1).encode(), NOW).accepted == 1
    res = ing.push_body(line(metric="checkout_attempts", inc=..., set=1).encode(), NOW)
    assert res.accepted == 0
    assert "metric 'checkout_attempts' is a counter; this line sends 'set' (gauge)" in res.rejected[0].error
    # a new process learns the kinds from the store
    res = Ingestor(spec, store).push_body(line(metric="checkout_attempts", inc=..., observe=1).encode(), NOW)
    assert res.accepted == 0 and "is a counter" in res.rejected[0].error
    assert _dump(store)["gauges"] == [] and _dump(store)["obs"] == []


def test_batches_add_up(spec, store):
    ing = Ingestor(spec, store)
    for _ in range(3):
        ing.push_body(line(inc=2).encode(), NOW)
    assert [v for *_, v in _dump(store)["counters"]] == [6]


# --- vigil push ------------------------------------------------------------------------------------------

CLI_NOW = "2026-11-20T12:00:00Z"


def _rows(good: int, outcome: str = "success", minute: int = 0) -> dict:
    return {"ts": f"2026-11-20T11:{minute:02d}:00Z", "metric": "checkout_attempts", "labels": {"outcome": outcome}, "inc": good}


def _status(cli, spec_path) -> dict:
    r = cli("slo", "status", "--spec", spec_path, "--json", "--at", CLI_NOW)
    assert r.code == 0, r.err
    return {s["name"]: s for s in r.json()["slos"]}


MIXED = [
    json.dumps(_rows(90)),
    "this is not json",
    json.dumps(_rows(10, "error")),
    "",
    json.dumps({**_rows(5), "inc": -5}),
    json.dumps({**_rows(5), "ts": "2026-11-20T11:00:00"}),
    json.dumps({**_rows(5), "labels": {"outcome": 1}}),
    json.dumps({k: v for k, v in {**_rows(5), "set": 1}.items() if k != "inc"}),
    json.dumps(_rows(900, minute=1)),
]


def test_push_file_with_good_and_bad_lines(cli, contract_spec, tmp_path):
    f = tmp_path / "t.ndjson"
    f.write_text("\n".join(MIXED) + "\n")
    r = cli("push", f, "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 2, (r.out, r.err)
    assert "accepted 3 samples, rejected 5" in r.out
    for n, reason in ((2, "invalid JSON"), (5, "inc must be between"), (6, "ts '2026-11-20T11:00:00' is not an RFC 3339 time"),
                      (7, "label 'outcome' must be a string"), (8, "metric 'checkout_attempts' is a counter")):
        assert f"line {n}: {reason}" in r.err, r.err
    d = _status(cli, contract_spec)["checkout-success"]
    assert (d["good"], d["valid"]) == (990, 1000)


def test_push_file_json_output(cli, contract_spec, tmp_path):
    f = tmp_path / "t.ndjson"
    f.write_text("\n".join(MIXED))
    r = cli("push", f, "--spec", contract_spec, "--json", now=CLI_NOW)
    assert r.code == 2
    d = r.json()
    assert (d["accepted"], d["rejected"]) == (3, 5)
    assert [e["line"] for e in d["errors"]] == [2, 5, 6, 7, 8]
    assert d["errors_truncated"] is False


def test_push_many_bad_lines_is_summarised(cli, contract_spec, tmp_path):
    f = tmp_path / "t.ndjson"
    f.write_text("bad\n" * 50 + json.dumps(_rows(1)) + "\n")
    r = cli("push", f, "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 2
    assert "accepted 1 samples, rejected 50" in r.out
    assert "line 20: invalid JSON" in r.err and "line 21:" not in r.err
    assert "... and 30 more" in r.err


def test_push_non_utf8_and_hostile_lines(cli, contract_spec, tmp_path):
    f = tmp_path / "t.ndjson"
    good = json.dumps(_rows(4)).encode()
    f.write_bytes(b"\xff\xfe\n" + good + b"\n" + b"[" * 50_000 + b"\n" + json.dumps(_rows(1, "x\ud800")).encode("utf-8", "surrogatepass") + b"\n")
    r = cli("push", f, "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 2, r.err
    assert "accepted 1 samples, rejected 3" in r.out
    assert "line 1: not UTF-8" in r.err and "line 3: invalid JSON: it nests too deeply" in r.err and "line 4: label 'outcome' is not valid Unicode" in r.err
    assert _status(cli, contract_spec)["checkout-success"]["good"] == 4


def test_push_json_array_file(cli, contract_spec, tmp_path):
    f = tmp_path / "t.json"
    f.write_text(json.dumps([_rows(7), {"nope": 1}, _rows(3, "error")]))
    r = cli("push", f, "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 2
    assert "line 2: unknown key 'nope'" in r.err
    d = _status(cli, contract_spec)["checkout-success"]
    assert (d["good"], d["valid"]) == (7, 10)


def test_push_broken_json_array_file(cli, contract_spec, tmp_path):
    f = tmp_path / "t.json"
    f.write_text("[" + json.dumps(_rows(7)) + ",")
    r = cli("push", f, "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 2
    assert "not a valid JSON array" in r.err and "Traceback" not in r.err
    assert _status(cli, contract_spec)["checkout-success"]["valid"] == 0


def test_push_empty_file(cli, contract_spec, tmp_path):
    f = tmp_path / "empty.ndjson"
    f.write_bytes(b"")
    r = cli("push", f, "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 0, r.err
    assert "accepted 0 samples, rejected 0" in r.out
    f.write_bytes(b"\n \n\n")
    r = cli("push", f, "--spec", contract_spec, "--json", now=CLI_NOW)
    assert r.code == 0 and r.json()["accepted"] == 0 and r.json()["rejected"] == 0


def test_push_missing_file(cli, contract_spec, tmp_path):
    r = cli("push", tmp_path / "nope.ndjson", "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 2
    assert "nope.ndjson" in r.err and "No such file" in r.err
    assert "Traceback" not in r.err
    r = cli("push", tmp_path, "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 2 and "directory" in r.err.lower()


def test_push_with_a_broken_spec(cli, tmp_path):
    spec = tmp_path / "vigil.yaml"
    spec.write_text("version: 1\nservices: {}\nslos: [\n")
    f = tmp_path / "t.ndjson"
    f.write_text(json.dumps(_rows(1)))
    r = cli("push", f, "--spec", spec, now=CLI_NOW)
    assert r.code == 2
    assert "vigil.yaml:4" in r.err and "invalid YAML" in r.err


@pytest.mark.parametrize("as_array", [False, True], ids=["ndjson", "array"])
def test_push_stdin(cli, contract_spec, monkeypatch, as_array):
    rows = [_rows(6), _rows(4, "error")]
    data = json.dumps(rows).encode() if as_array else ndjson(rows) + b"oops\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    r = cli("push", "-", "--spec", contract_spec, now=CLI_NOW)
    assert r.code == (0 if as_array else 2), r.err
    if not as_array:
        assert "line 3: invalid JSON" in r.err
    d = _status(cli, contract_spec)["checkout-success"]
    assert (d["good"], d["valid"]) == (6, 10)


def test_push_stdin_empty(cli, contract_spec, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b""))))
    r = cli("push", "-", "--spec", contract_spec, now=CLI_NOW)
    assert r.code == 0 and "accepted 0 samples" in r.out


def test_a_utf8_byte_order_mark_does_not_cost_line_1():
    from vigil.telemetry.ingest import IngestContext, ingest, split_body

    body = b'\xef\xbb\xbf{"ts": "2026-11-01T12:00:00Z", "metric": "m", "inc": 1}\n'
    ctx = IngestContext(now_ms=1793534400000, oldest_ms=0, max_future_ms=600000, bounds_ns=(), metric_kinds={})
    r = ingest(split_body(body, max_bytes=10**6), ctx)
    assert (r.accepted, r.rejected_count) == (1, 0)


# --- the body as a stream ----------------------------------------------------------------------------------


def _fed_in_pieces(body: bytes, cuts: list[int], max_line: int = MAX_LINE_BYTES) -> list:
    from vigil.telemetry.ingest import BodySplitter

    sp = BodySplitter(max_line=max_line)
    out: list = []
    pos = 0
    for c in sorted(set(cuts)):
        if 0 < c < len(body):
            out += sp.feed(body[pos:c])
            pos = c
    out += sp.feed(body[pos:])
    return out + sp.close()


@FUZZ
@given(st.lists(st.one_of(valid_lines.map(lambda b: ("ok", b)), invalid_line().map(lambda b: ("bad", b))), min_size=1, max_size=15),
       st.lists(st.integers(0, 5000), max_size=12), st.booleans())
def test_a_body_fed_in_any_pieces_is_read_as_the_whole(lines, cuts, as_array):
    """The server feeds a body to ingest as its chunks arrive: wherever the chunks break (inside a
    line, a UTF-8 sequence, an array item), the result is the one of the whole body."""
    if as_array:
        objs = []
        for _, b in lines:
            try:
                objs.append(json.loads(b, parse_constant=_no_constant))
            except (ValueError, RecursionError, UnicodeDecodeError):
                continue
        body = json.dumps(objs, indent=1).encode("utf-8", "surrogatepass")
    else:
        body = b"\n".join(b for _, b in lines)
    try:
        whole = list(split_body(body, max_bytes=DEFAULT_MAX_BODY))
    except TelemetryError as e:
        with pytest.raises(TelemetryError) as ei:
            _fed_in_pieces(body, cuts)
        assert ei.value.message.split(":")[0] == e.message.split(":")[0]
        return
    pieces = _fed_in_pieces(body, cuts)
    a, b = ingest(whole, ctx()), ingest(pieces, ctx())
    assert (a.accepted, a.rejected, a.counters, a.observations, a.gauges) == (b.accepted, b.rejected, b.counters, b.observations, b.gauges)


@pytest.mark.parametrize("as_array", [False, True], ids=["ndjson", "array"])
def test_an_over_long_line_streams_past_in_bounded_memory(as_array):
    """A 5 MB line (or array item) is rejected with its size, without the splitter holding it."""
    from vigil.telemetry.ingest import BodySplitter, TooLong

    good = line(inc=2).encode()
    huge = b'{"labels": {"a": "' + b"x" * 5_000_000 + b'"}}'
    body = (b"[" + good + b",\n" + huge + b",\n" + good + b"]") if as_array else (good + b"\n" + huge + b"\n" + good + b"\n")
    sp = BodySplitter()
    out, held = [], 0
    for i in range(0, len(body), 65536):
        out += sp.feed(body[i : i + 65536])
        held = max(held, len(sp._tail) + len(sp._text) - sp._pos + len(sp._head))
    out += sp.close()
    assert held < 4 * MAX_LINE_BYTES
    items = [x for x in out if x[1] not in (b"",)]
    assert [n for n, _ in items] == [1, 2, 3]
    assert items[1][1] == TooLong(len(huge))
    r = ingest(out, ctx())
    assert r.accepted == 2 and r.rejected[0].line == 2 and f"line is {len(huge)} bytes" in r.rejected[0].error
