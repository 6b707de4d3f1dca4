"""The spec loader under malformed, huge and hostile input: SpecError with file, line and path, never a crash."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from conftest import CONTRACT_SPEC
from vigil.errors import SpecError, SpecIssue
from vigil.spec import MAX_ALIASES, MAX_DEPTH, MAX_SPEC_BYTES, Spec, format_path, load_spec, parse_spec

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Problems with the file as a whole: these need no line number.
WHOLE_FILE = ("the spec is empty", "not UTF-8", "larger than", "file not found", "is a directory", "permission denied")


def issues_of(data: bytes | str, filename: str = "vigil.yaml") -> list[SpecIssue]:
    with pytest.raises(SpecError) as ei:
        parse_spec(data, filename=filename)
    return ei.value.issues


def check_error(e: SpecError, text: str | None = None) -> None:
    """The contract of every SpecError: issues, each with a message, a file, and a line inside the document."""
    assert e.issues, "a SpecError lists its issues"
    assert e.message and e.hint
    n_lines = (text.count("\n") + 2) if text is not None else None
    for i in e.issues:
        assert isinstance(i.message, str) and i.message.strip(), i
        assert i.file
        assert len(i.message) < 1000, f"message too long: {i.message[:200]}..."
        if any(w in i.message for w in WHOLE_FILE):
            continue
        assert i.line is not None, f"no line for an issue inside the document: {i}"
        assert i.line >= 1
        if n_lines is not None and "\r" not in text and "\x85" not in text and "\u2028" not in text and "\u2029" not in text:
            assert i.line <= n_lines, (i, n_lines)
        if i.column is not None:
            assert i.column >= 1
        str(i)  # renders
        json.dumps(i.to_dict())  # serialises


def parse_or_error(data: bytes | str) -> Spec | None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        return parse_spec(data, filename="vigil.yaml")
    except SpecError as e:
        check_error(e, text)
        return None


def base() -> dict:
    """The contract spec as plain data, to mutate and dump as JSON (which is YAML)."""
    return json.loads(json.dumps(YAML(typ="safe", pure=True).load(CONTRACT_SPEC)))


# --- generated input -------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
@example(b"")
@example(b"\xff\xfe\x00")
@example(b"\xef\xbb\xbf")
@example(b"version: 1\nservices: {}\n\xc3")
def test_arbitrary_bytes(data):
    parse_or_error(data)


TOKENS = [
    "version", "services", "slos", "name", "service", "objective", "window", "rolling", "calendar", "timezone",
    "sli", "ratio", "good", "total", "latency", "threshold", "policy", "freeze", "when", "api", ": ", ":", " ", "\n",
    "\n  ", "\n    ", "- ", "{", "}", "[", "]", ", ", "&a ", "*a", "&b ", "*b", "!!python/object:os.system ", "!!str ",
    "!!int ", "!!bool ", "!!binary ", "!!set ", "!custom ", "'", '"', "# c", "|\n", ">\n", "? ", "1", "99.9", "99.9%",
    "0.999", "100", "-1", "30d", "300ms", "5 minutes", "-", "~", "null", "true", "2026-02-30", "0x1F", "1e400", ".nan",
    ".inf", "<<: ", "%YAML 1.1\n---\n", "---\n", "...\n", "\t", "\\", "é", "\x00", "\x07", "\ufeff", "\u2028",
    'm{a=>"b"}', 'm{a="b"}', "Europe/Berlin", "Mars/Base", "America", "9" * 5000,
]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
@example("version: 1\nservices: {a: *x}\n")
@example("a: !!int abc\n")
@example("a: !!bool abc\n")
@example("a: !!int\n")
@example("a: !!float\n")
@example("a: !!int 0x\n")
@example("? [a, [b]]\n: c\n")
@example("{? [a, [b]] : c}\n")
def test_yamlish_text(text):
    parse_or_error(text)


@st.composite
def mutated_contract(draw) -> str:
    lines = CONTRACT_SPEC.splitlines(keepends=True)
    values = st.one_of(
        st.sampled_from(["[]", "{}", "~", "true", "-1", "0", "100", "1e400", "abc", "'m{a=>\"b\"}'", "30x", "!!python/object:x {}",
                         "*nope", "&a [*a]", "\"\\0\"", "Mars/Base", "99.9%", "|", "[1, [2, [3]]]", "99999999999999999999d"]),
        st.text(max_size=12).map(lambda s: s.replace("\n", " ")),
    )
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "value", "insert", "indent", "dedent", "swap", "truncate"]))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "value" and ": " in line:
            head = line.split(": ", 1)[0]
            lines[i] = f"{head}: {draw(values)}\n"
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(["    objectiv: 99\n", "  bogus: 1\n", "extra: 1\n", "      - x\n", "\t\n"])))
        elif op == "indent":
            lines[i] = "  " + line
        elif op == "dedent":
            lines[i] = line[2:] if line.startswith("  ") else line
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == "truncate":
            lines[i] = line[: draw(st.integers(0, len(line)))]
    return "".join(lines)


@FUZZ
@given(mutated_contract())
def test_mutated_contract(text):
    parse_or_error(text)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20), st.sampled_from(["99.9", "99.9%", "30d", "month", "UTC", "api", 'm{a="b"}', "50%"]),
)
KEYS = ["version", "services", "slos", "policy", "telemetry", "name", "service", "objective", "window", "sli", "rolling",
        "calendar", "timezone", "ratio", "latency", "freshness", "good", "total", "exclude", "metric", "threshold", "slice",
        "missing", "freeze", "when", "scope", "overrides", "labels", "budget_consumed_over", "budget_exhausted", "api", "x"]
trees = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=30,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), trees, max_size=6), st.sampled_from([None, 1, 2, 4]))
def test_structured_trees(tree, indent):
    tree = {"version": 1, "services": {"api": {}}, **tree}
    parse_or_error(json.dumps(tree, indent=indent))


# --- wrong types in every field, with the line of the field -------------------------------------------------


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _set(tree, path, value):
    node = tree
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


def _delete(tree, path):
    node = tree
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]


FIELD_PATHS = [p for p in _paths(base()) if p and p != ("services",)]
WRONG_LEAF = [[], {}, [1, [2]], {"x": 1}]
WRONG_MAPPING = [[], "abc", 5, {"x": 1}]  # {} is fine where every key has a default


@pytest.mark.parametrize("path", FIELD_PATHS, ids=[format_path(p) for p in FIELD_PATHS])
def test_wrong_type_in_every_field(path):
    node = base()
    for k in path:
        node = node[k]
    for bad in WRONG_MAPPING if isinstance(node, dict) else WRONG_LEAF:
        tree = base()
        if path[-1] == "labels" or path[-1] == "freeze" or path[-1] == "slos":
            bad = {"not": "a list"} if isinstance(bad, list) else bad
        if isinstance(path[-1], str) and path[-1] in ("api", "checkout", "search") and path[0] == "services":
            bad = [1] if isinstance(bad, dict) else bad  # a service entry may be any mapping
        _set(tree, path, bad)
        text = json.dumps(tree, indent=2)
        try:
            parse_spec(text, filename="vigil.yaml")
        except SpecError as e:
            check_error(e, text)
            target = format_path(path)
            hits = [i for i in e.issues if i.path == target or i.path.startswith((target + ".", target + "[")) or (i.path and target.startswith(i.path))]
            assert hits, f"{target} := {bad!r}: {[str(i) for i in e.issues]}"
            lines = text.splitlines()
            for i in hits:
                last = i.path.rsplit(".", 1)[-1]
                if "[" not in last and "is missing" not in i.message:  # a missing key points at its parent
                    assert f'"{last}"' in lines[i.line - 1], (str(i), lines[i.line - 1])
        else:
            pytest.fail(f"{format_path(path)} := {bad!r} was accepted")


REQUIRED = [("version",), ("services",), ("slos", 0, "name"), ("slos", 1, "service"), ("slos", 2, "objective"),
            ("slos", 0, "window"), ("slos", 1, "sli"), ("slos", 0, "sli", "ratio", "good"), ("slos", 1, "sli", "latency", "threshold"),
            ("policy", "freeze", 0, "when")]


@pytest.mark.parametrize("path", REQUIRED, ids=[format_path(p) for p in REQUIRED])
def test_missing_required_key_points_at_its_parent(path):
    tree = base()
    _delete(tree, path)
    text = json.dumps(tree, indent=2)
    issues = issues_of(text)
    hit = [i for i in issues if i.path == format_path(path)]
    assert hit, [str(i) for i in issues]
    assert f"required key {path[-1]!r} is missing" in hit[0].message
    assert hit[0].line is not None
    parent = path[:-1]
    line = text.splitlines()[hit[0].line - 1]
    if parent and isinstance(parent[-1], str):
        assert f'"{parent[-1]}"' in line, line
    elif parent:  # a list item: its opening brace
        assert line.strip().startswith("{"), line


# --- hand-written cases with exact lines ------------------------------------------------------------------


def _contract(old: str, new: str) -> str:
    assert CONTRACT_SPEC.count(old) == 1, old
    return CONTRACT_SPEC.replace(old, new)


def test_the_contract_spec_loads():
    spec = parse_spec(CONTRACT_SPEC)
    assert [s.name for s in spec.slos] == ["checkout-success", "api-latency", "search-freshness"]


def test_unknown_matcher_names_path_and_line():
    text = _contract('good: \'checkout_attempts{outcome="success"}\'', 'good: \'checkout_attempts{outcome=>"success"}\'')
    (i,) = issues_of(text)
    assert i.path == "slos[0].sli.ratio.good"
    assert (i.line, i.column) == (10, 15)
    assert "unknown label matcher '=>'" in i.message
    assert str(i).startswith("vigil.yaml:10:15: slos[0].sli.ratio.good: unknown label matcher '=>'")


def test_bad_selector_in_the_third_slo():
    text = _contract("freshness: {metric: 'index_staleness_seconds{class=\"hot\"}'", "freshness: {metric: 'index_staleness_seconds{class=~\"(\"}'")
    (i,) = issues_of(text)
    assert i.path == "slos[2].sli.freshness.metric"
    assert i.line == 24
    assert "invalid regular expression" in i.message


def test_unknown_key_did_you_mean():
    text = _contract("    objective: 95\n", "    objectiv: 95\n")
    issues = issues_of(text)
    unknown = [i for i in issues if "unknown key" in i.message]
    assert unknown[0].path == "slos[1].objectiv"
    assert unknown[0].line == 15
    assert "did you mean 'objective'?" in unknown[0].message
    missing = [i for i in issues if "missing" in i.message]
    assert missing[0].path == "slos[1].objective" and missing[0].line is not None


def test_unknown_top_level_key_lists_the_allowed_ones():
    from vigil.spec import Spec

    (i,) = issues_of(CONTRACT_SPEC + "zzz: 1\n")
    keys = sorted((f.alias or name) for name, f in Spec.model_fields.items())
    assert {"backups", "canary", "drills", "migrations", "policy", "services", "slos", "telemetry", "version"} <= set(keys)
    assert i.line == 30 and "allowed here: " + ", ".join(keys) in i.message


def test_unknown_service():
    (i,) = issues_of(_contract("    service: api\n", "    service: apii\n"))
    assert (i.path, i.line) == ("slos[1].service", 14)
    assert "unknown service 'apii'; did you mean 'api'?" in i.message
    (i,) = issues_of(_contract("    service: api\n", "    service: billing\n"))
    assert "declare it under `services:`" in i.message and "api, checkout, search" in i.message


def test_unknown_service_in_a_freeze_rule():
    (i,) = issues_of(_contract("    - when: {budget_exhausted: true}\n", "    - when: {budget_exhausted: true}\n      services: [api, nope]\n"))
    assert i.path == "policy.freeze[1].services[1]" and i.line == 29
    assert "unknown service 'nope'" in i.message


def test_duplicate_slo_names():
    (i,) = issues_of(_contract("  - name: search-freshness\n", "  - name: checkout-success\n"))
    assert (i.path, i.line) == ("slos[2].name", 19)
    assert "duplicate SLO name 'checkout-success' (first at slos[0])" in i.message


def test_duplicate_keys():
    (i,) = issues_of("version: 1\nservices: {}\nversion: 1\n")
    assert i.line == 3 and "duplicate key" in i.message
    (i,) = issues_of(_contract("    objective: 95\n", "    objective: 95\n    objective: 96\n"))
    assert i.line == 16 and "duplicate key" in i.message and "objective" in i.message
    (i,) = issues_of("version: 1\nservices: {a: {}, a: {}}\n")
    assert i.line == 2 and "duplicate key" in i.message


def test_both_rolling_and_calendar():
    (i,) = issues_of(_contract("    window: {rolling: 30d}\n    sli:\n      latency", "    window: {rolling: 30d, calendar: month}\n    sli:\n      latency"))
    assert (i.path, i.line) == ("slos[1].window", 16)
    assert "either {rolling: 30d} or {calendar: month|week|quarter}" in i.message


def test_neither_rolling_nor_calendar():
    (i,) = issues_of(_contract("    window: {rolling: 30d}\n    sli:\n      latency", "    window: {}\n    sli:\n      latency"))
    assert (i.path, i.line) == ("slos[1].window", 16)


@pytest.mark.parametrize(
    "value,fraction",
    [("99.5", Decimal("0.995")), ("99.9%", Decimal("0.999")), ("'99.9%'", Decimal("0.999")), ("0.999", Decimal("0.999")),
     ("99.99", Decimal("0.9999")), ("50", Decimal("0.5")), ("0.5", Decimal("0.5"))],
)
def test_objective_good(value, fraction):
    spec = parse_spec(_contract("    objective: 99.5\n", f"    objective: {value}\n"))
    assert spec.slos[0].objective == fraction


@pytest.mark.parametrize(
    "value,message",
    [
        ("100", "leaves no error budget"),
        ("1", "leaves no error budget"),
        ("100%", "leaves no error budget"),
        ("0", "objective 0 is out of range"),
        ("-1", "objective -1 is out of range"),
        ("100.5", "objective 100.5 is out of range"),
        ("abc", "cannot read objective 'abc'"),
        ("'abc%'", "cannot read objective 'abc%'"),
        ("true", "cannot read objective True"),
        ("~", "cannot read objective None"),
        ("[99]", "cannot read objective"),
        ("1e400", "cannot read objective"),
        (".nan", "cannot read objective"),
        ("-.inf", "cannot read objective"),
        ("'1e999999999'", "cannot read objective"),
        ("'1e999999999%'", "cannot read objective"),
        ("9" * 5000, "invalid YAML value"),
        ("99.9%%", "cannot read objective"),
    ],
)
def test_objective_bad(value, message):
    issues = issues_of(_contract("    objective: 99.5\n", f"    objective: {value}\n"))
    assert len(issues) == 1
    assert message in issues[0].message
    assert issues[0].line == 6
    assert issues[0].path in ("slos[0].objective", "")


@pytest.mark.parametrize(
    "value,message",
    [
        ("5 minutes", "cannot read duration '5 minutes'"),
        ("30x", "cannot read duration"),
        ("''", "cannot read duration"),
        ("-5m", "cannot read duration"),
        ("-300", "cannot be negative"),
        ("true", "expected a duration"),
        ("[30d]", "expected a duration"),
        ("1e400", "finite"),
        ("'1e999999999'", "cannot read duration"),
        ("99999999999999999999d", "too long"),
        ("9" * 60 + "d", "too long"),
        ("10" + "0" * 30, "too large"),
        ("30s", "whole minutes and at least 1h"),
        ("59m", "whole minutes and at least 1h"),
        ("401d", "at most 400d"),
        ("1h30s", "whole minutes"),
    ],
)
def test_bad_durations(value, message):
    (i,) = issues_of(_contract("    window: {rolling: 30d}\n    sli:\n      latency", f"    window: {{rolling: {value}}}\n    sli:\n      latency"))
    assert message in i.message
    assert i.line == 16
    assert i.path.startswith("slos[1].window")


@pytest.mark.parametrize(
    "value,message",
    [("0", "above zero"), ("0.0000000001", "finer than a nanosecond"), ("1e-10s", "cannot read duration"), ("abc", "cannot read duration")],
)
def test_bad_latency_threshold(value, message):
    (i,) = issues_of(_contract("threshold: 300ms}", f"threshold: {value}}}"))
    assert message in i.message
    assert (i.path, i.line) == ("slos[1].sli.latency.threshold", 18)


@pytest.mark.parametrize("value", ["0s", "90s", "7m", "2h", "99999999999999999999h", "0.5s"])
def test_bad_freshness_slice(value):
    (i,) = issues_of(_contract("slice: 1m", f"slice: {value}"))
    assert i.path == "slos[2].sli.freshness.slice" and i.line == 24


@pytest.mark.parametrize(
    "value",
    ["Mars/Olympus", "America", "'" + "A" * 300 + "'", "../../etc/passwd", "/etc/localtime", '"UTC\\0"', "''", "Europe/../UTC",
     "Europe/", "utc/", "tzdata.zi", "'Europe/Berlin '"],
    ids=["unknown", "directory", "too-long", "traversal", "absolute", "nul", "empty", "dotdot", "slash", "slash2", "datafile", "space"],
)
def test_bad_time_zones(value):
    (i,) = issues_of(_contract("timezone: UTC}", f"timezone: {value}}}"))
    assert (i.path, i.line) == ("slos[0].window.timezone", 7)
    assert "unknown time zone" in i.message and "IANA" in i.message
    assert len(i.message) < 500


@pytest.mark.parametrize("value", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
def test_good_time_zones(value):
    assert parse_spec(_contract("timezone: UTC}", f"timezone: {value}}}")).slos[0].window.tz == value


def test_timezone_on_a_rolling_window():
    (i,) = issues_of(_contract("    window: {rolling: 30d}\n    sli:\n      latency", "    window: {rolling: 30d, timezone: UTC}\n    sli:\n      latency"))
    assert "calendar windows only" in i.message and i.line == 16


def test_every_problem_is_listed_at_once():
    text = _contract("    objective: 95\n", "    objective: 100\n")
    text = text.replace("    service: checkout\n", "    service: nope\n")
    text = text.replace("timezone: UTC", "timezone: Nowhere/Else")
    issues = issues_of(text)
    assert {i.path for i in issues} >= {"slos[1].objective", "slos[0].window.timezone", "slos[0].service"}


def test_long_values_are_not_echoed_in_full():
    (i,) = issues_of(_contract("  - name: api-latency\n", "  - name: " + "A" * 100_000 + "\n"))
    assert i.path == "slos[1].name" and i.line == 13
    assert len(i.message) < 500 and "lowercase" in i.message
    (i,) = issues_of("version: '" + "1" * 100_000 + "'\nservices: {}\n")
    assert len(i.message) < 500


# --- whole-file problems -------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path):
    p = tmp_path / "vigil.yaml"
    p.write_bytes(b"")
    with pytest.raises(SpecError) as ei:
        load_spec(p)
    (i,) = ei.value.issues
    assert i.message == "the spec is empty" and i.file == str(p)
    assert "version: 1" in ei.value.hint


@pytest.mark.parametrize("text", ["# only a comment\n", "# one\n\n# two\n   \n", "\n\n\n", "---\n", "---\n...\n", "~\n", "null\n"])
def test_only_comments_or_nothing(text):
    (i,) = issues_of(text)
    assert i.message == "the spec is empty"


@pytest.mark.parametrize(
    "text,kind",
    [("- a\n- b\n", "list"), ("[1, 2]\n", "list"), ("hello\n", "string"), ("42\n", "number"), ("true\n", "boolean"), ("1.5\n", "number")],
)
def test_top_level_not_a_mapping(text, kind):
    (i,) = issues_of(text)
    assert i.message == f"the top level must be a mapping, not a {kind}"
    assert i.line == 1


def test_missing_top_level_keys_have_a_line():
    issues = issues_of("# header\nslos: []\n")
    assert {i.path for i in issues} == {"version", "services"}
    assert all(i.line == 2 for i in issues)


@pytest.mark.parametrize(
    "data,where",
    [(b"version: 1\nservices: {}\n\xff\n", "byte 24"), (b"\xfe\xff\x00v", "byte 0"), (b"version: \xc3\x28\n", "byte 9")],
)
def test_not_utf8(data, where, tmp_path: Path):
    p = tmp_path / "vigil.yaml"
    p.write_bytes(data)
    with pytest.raises(SpecError) as ei:
        load_spec(p)
    assert ei.value.issues[0].message == f"not UTF-8 text ({where})"


def test_utf8_bom_is_fine():
    assert parse_spec(b"\xef\xbb\xbf" + CONTRACT_SPEC.encode()).version == 1


@pytest.mark.parametrize("char,line", [("\x00", 3), ("\x07", 3), ("\x1b", 3), ("\ufffe", 3)])
def test_control_characters(char, line):
    (i,) = issues_of(f"version: 1\nservices: {{}}\nx: a{char}b\n")
    assert i.line == line and "not allowed" in i.message


def test_six_mebibyte_file(tmp_path: Path):
    p = tmp_path / "vigil.yaml"
    p.write_bytes(b"version: 1\nservices: {}\n" + b"# padding padding padding\n" * (6 * 1024 * 1024 // 26))
    with pytest.raises(SpecError) as ei:
        load_spec(p)
    assert "larger than 5 MiB" in ei.value.issues[0].message  # refused on its size, before any parsing


def test_many_values_are_refused_early():
    text = "version: 1\nservices:\n" + "".join(f"  s{i}: {{}}\n" for i in range(120_000))
    assert len(text) < MAX_SPEC_BYTES
    (i,) = issues_of(text)
    assert "YAML values" in i.message and i.line is not None  # the prescan stopped it, not the models


def test_missing_file_and_directory(tmp_path: Path):
    with pytest.raises(SpecError) as ei:
        load_spec(tmp_path / "nope.yaml")
    assert ei.value.issues[0].message == "file not found" and "--spec" in ei.value.hint
    with pytest.raises(SpecError) as ei:
        load_spec(tmp_path)
    assert "directory" in ei.value.issues[0].message


def test_load_spec_hashes_the_bytes(contract_spec: Path):
    import hashlib

    loaded = load_spec(contract_spec)
    assert loaded.sha256 == hashlib.sha256(contract_spec.read_bytes()).hexdigest()


# --- nesting, aliases, tags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "x: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
        "x:\n" + "".join(" " * i + "-\n" for i in range(1, 2000)),
        "x:\n" + "".join(" " * i + "a:\n" for i in range(1, 3000)),
        "[" * 10_000,
        "x: " + "[" * 100_000 + "\n",
    ],
    ids=["flow-lists", "flow-maps", "block-lists", "block-maps", "unterminated", "unterminated-100k"],
)
@pytest.mark.timeout(120)  # work that blows up (quadratic, exponential) never finishes; the guard is linear
def test_deep_nesting_fails_fast(text):
    issues = issues_of(text)
    (i,) = issues
    assert f"nests deeper than {MAX_DEPTH} levels" in i.message
    assert i.line is not None


def test_nesting_at_the_limit_is_read():
    # 64 levels of collections: the root mapping and 63 below it
    text = "version: 1\nservices: {}\nx: " + "[" * 63 + "]" * 63 + "\n"
    (i,) = issues_of(text)
    assert "unknown key 'x'" in i.message


def _laughs(levels: int, width: int, where: str = "lol") -> str:
    out = "version: 1\nservices: {}\na0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
    for k in range(1, levels):
        out += f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * width) + "]\n"
    return out + f"{where}: *a{levels - 1}\n"


@pytest.mark.parametrize(
    "text",
    [
        _laughs(9, 9),  # the classic: 9**9 strings if expanded
        _laughs(20, 9),  # over the alias limit
        _laughs(9, 9, "slos"),  # handed to the model
        _laughs(9, 9, "policy"),
        _laughs(4, 9).replace("lol: *a3", "services: {x: *a3}").replace("services: {}\n", "", 1),
        "version: 1\nservices: {}\n" + "x: &x [1]\n" + "".join(f"y{i}: *x\n" for i in range(MAX_ALIASES + 5)),
    ],
    ids=["billion-laughs", "over-the-limit", "as-slos", "as-policy", "as-service", "many-aliases"],
)
@pytest.mark.timeout(120)  # an expanded bomb (9**9 strings) never finishes; shared nodes keep it small
def test_alias_bombs_fail_fast(text):
    issues = issues_of(text)
    for i in issues:
        assert i.line is not None, i
        assert len(i.message) < 500


def test_too_many_aliases_names_the_line():
    text = "version: 1\nservices: {}\nx: &x [1]\n" + "".join(f"y{i}: *x\n" for i in range(MAX_ALIASES + 5))
    (i,) = issues_of(text)
    assert i.message == f"more than {MAX_ALIASES} YAML aliases"
    assert i.line == 3 + MAX_ALIASES + 1


def test_recursive_alias():
    for text in ("version: 1\nservices: &s {a: *s}\n", "version: 1\nservices: {}\nslos: &s [*s]\n", "&a [*a]\n"):
        for i in issues_of(text):
            assert i.line is not None


def test_aliases_and_merge_keys_are_allowed():
    text = _contract("policy:\n", "x-base: &w {rolling: 30d}\npolicy:\n")
    (i,) = issues_of(text)  # unknown key x-base, but the anchor itself is fine
    assert "unknown key 'x-base'" in i.message
    text = CONTRACT_SPEC.replace("    window: {rolling: 30d}\n    sli:\n      latency", "    window: &w {rolling: 30d}\n    sli:\n      latency", 1)
    text = text.replace("    window: {rolling: 30d}\n    sli:\n      freshness", "    window: *w\n    sli:\n      freshness", 1)
    spec = parse_spec(text)
    assert spec.slos[2].window.rolling == 30 * 86400


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object:subprocess.Popen {{args: ['touch', '{marker}']}}",
        "!!python/module:os",
        "!!binary aGVsbG8=",
        "!!timestamp 2026-01-01",
        "!!set {{a, b}}",
        "!!omap [a: 1]",
        "!custom 1",
        "!<tag:evil.example,2000:x> 1",
    ],
)
def test_yaml_tags_are_refused_and_never_run(tag, tmp_path: Path):
    marker = tmp_path / "pwned"
    value = tag.format(marker=marker)
    for text in (f"version: 1\nservices: {value}\n", f"{value}\n", f"version: 1\nservices: {{api: {{description: {value} }} }}\n"):
        issues = issues_of(text)
        assert any("YAML tag" in i.message and "not allowed" in i.message for i in issues), [str(i) for i in issues]
        assert all(i.line is not None for i in issues)
    assert not marker.exists()


@pytest.mark.parametrize("tag", ["!!str 1", "!!int '5'", "!!float '1.5'", "!!null ''", "!!bool 'true'", "!!map {}", "!!seq []", "! x"])
def test_plain_tags_are_fine(tag):
    (i,) = issues_of(f"version: 1\nservices: {{}}\nx: {tag}\n")
    assert "unknown key 'x'" in i.message


@pytest.mark.parametrize(
    "value,line",
    [("2026-02-30", 3), ("2026-13-01", 3), ("!!int abc", 3), ("!!float abc", 3), ("!!bool abc", 3), ("!!int", 3), ("!!int ''", 3), ("!!int 0b", 3)],
)
def test_values_yaml_cannot_build(value, line):
    (i,) = issues_of(f"version: 1\nservices: {{}}\nx: {value}\n")
    assert i.line == line and i.message.startswith("invalid YAML value")


@pytest.mark.parametrize("text", ["? [a, b]\n: c\n", "version: 1\nservices: {? [a, [b]] : {}}\n", "{? {a: 1} : x}\n"])
def test_collections_as_keys(text):
    (i,) = issues_of(text)
    assert "mapping key must be a plain value" in i.message and i.line is not None


@pytest.mark.parametrize(
    "text",
    ["version: 1\n---\nservices: {}\n", "%YAML 2.0\n---\nversion: 1\n", "version: 1\n\tservices: {}\n", "version: 1\nservices: {\n",
     "version: 1\nservices: [}\n", "version: 'unterminated\n", "a: b: c\n", "- a\nb: c\n", "version: 1\n  services: {}\n", "*undefined\n"],
)
def test_syntax_errors_have_a_line(text):
    (i,) = issues_of(text)
    assert i.message.startswith("invalid YAML")
    assert i.line is not None and i.column is not None


@pytest.mark.parametrize(
    "services,message",
    [("{'a b': {}}", "must be 1-128 letters"), ("{'': {}}", "must be 1-128 letters"), ("{1: {}}", "valid string"),
     ("{true: {}}", "valid string"), ("{a: [1]}", "valid dictionary"), ("{a: {owner: [x]}}", "valid string"),
     ("{a: {tier: 1}}", "valid string"), ("{a: {bogus: 1}}", "unknown key 'bogus'"), ("[api]", "valid dictionary"), ("~", "valid dictionary")],
)
def test_bad_services(services, message):
    issues = issues_of(f"version: 1\nservices: {services}\n")
    assert any(message in i.message for i in issues), [str(i) for i in issues]
    assert all(i.line == 2 for i in issues)


def test_version():
    for v, msg in (("2", "input should be 1, got 2"), ("'1'", "input should be 1, got '1'"), ("1.5", "got 1.5"), ("~", "got None")):
        issues = issues_of(f"version: {v}\nservices: {{}}\n")
        assert issues[0].line == 1 and issues[0].path == "version"
        assert msg in issues[0].message or "input should be 1" in issues[0].message


def test_telemetry_section_limits():
    (i,) = issues_of(CONTRACT_SPEC + "telemetry: {retention: 99999999999999999999d}\n")
    assert "too long" in i.message and i.line == 30
    (i,) = issues_of(CONTRACT_SPEC + "telemetry: {retention: 30m}\n")
    assert "at least 1h" in i.message
    (i,) = issues_of(CONTRACT_SPEC + "telemetry: {max_future: -1}\n")
    assert "negative" in i.message
