"""The one hardened YAML reader (vigil.yamlio): what it returns, what it refuses, and where it says
the problem is. The spec loader and OpenSLO import read through it; the last tests check that the
spec loader and yamlio report hostile input the same way (message, line, column)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.errors import SpecError, SpecIssue
from vigil.spec import parse_spec
from vigil.yamlio import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_SPEC_BYTES,
    Limits,
    decode,
    format_path,
    load_marked,
    load_marked_all,
    load_plain,
    located,
    read_plain_yaml,
    to_plain,
    where,
)


def issue(text: str, filename: str = "f.yaml", **kw) -> SpecIssue:
    """The one issue yamlio reports for ``text``."""
    with pytest.raises(SpecError) as ei:
        load_plain(text, filename, **kw)
    (i,) = ei.value.issues
    assert i.file == filename and i.path == ""
    return i


# --- plain data --------------------------------------------------------------------------------------


def test_plain_data_types():
    got = load_plain(
        "s: text\nq: '1.5'\ni: 42\nx: 0x1F\nu: 1_000\nf: 0.1\ne: 1e3\nn: ~\nt: true\nfa: false\n"
        "l: [1, two]\nm: {a: 1}\nd: 2024-01-02\nts: 2024-01-01 00:00:00\ntz: 2024-01-01T00:00:00+02:00\n",
        "f.yaml",
    )
    assert got == {
        "s": "text", "q": "1.5", "i": 42, "x": 31, "u": 1000, "f": Decimal("0.1"), "e": Decimal("1000.0"), "n": None,
        "t": True, "fa": False, "l": [1, "two"], "m": {"a": 1}, "d": "2024-01-02", "ts": "2024-01-01 00:00:00",
        "tz": "2024-01-01T00:00:00+02:00",
    }  # fmt: skip
    # exact types: no ruamel subclasses leak out
    assert type(got["i"]) is int and type(got["x"]) is int and type(got["s"]) is str and type(got["m"]) is dict
    assert type(got["t"]) is bool and type(got["l"]) is list


def test_floats_keep_their_shortest_spelling_as_decimal():
    got = load_plain("a: 0.1\nb: 99.95\nc: 0.30000000000000004\nd: -2.5e-3\n", "f.yaml")
    assert got == {"a": Decimal("0.1"), "b": Decimal("99.95"), "c": Decimal("0.30000000000000004"), "d": Decimal("-0.0025")}
    assert all(isinstance(v, Decimal) for v in got.values())


def test_nan_and_infinity_stay_floats_for_the_caller_to_refuse():
    got = load_plain("a: .nan\nb: .inf\nc: -.inf\n", "f.yaml")
    assert got["a"] != got["a"] and got["b"] == float("inf") and got["c"] == float("-inf")


def test_anchored_booleans_stay_booleans():
    # ruamel builds an anchored `true` as an int subclass; it used to come out as 1
    got = load_plain("a: &x true\nb: *x\nc: &y false\nd: *y\n", "f.yaml")
    assert got == {"a": True, "b": True, "c": False, "d": False}
    assert all(type(v) is bool for v in got.values())


def test_keys_stay_str_or_int_unless_asked():
    assert load_plain("1: a\nb: 2\nfalse: c\n", "f.yaml") == {1: "a", "b": 2, False: "c"}
    assert load_plain("1: a\n1.5: b\n~: c\nfalse: d\n", "f.yaml", str_keys=True) == {"1": "a", "1.5": "b", "None": "c", "False": "d"}


def test_surrogate_pairs_joined_and_lone_surrogates_refused_when_asked():
    text = json.dumps({"a": "\U0001F600"})  # ensure_ascii: "\ud83d\ude00"
    assert load_plain(text, "f.yaml", join_surrogates=True) == {"a": "\U0001F600"}
    assert load_plain(text, "f.yaml") == {"a": "\ud83d\ude00"}  # the spec's behaviour, unchanged
    i = issue('{"a": "x\\ud83d"}', join_surrogates=True)
    assert "lone UTF-16 surrogate" in i.message and "\\ud83d" in i.message


def test_aliases_are_shared_not_copied():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    got = load_plain("\n".join(lines) + "\n", "f.yaml")  # 9**9 strings if expanded
    assert got["a8"][0] is got["a8"][8] is got["a7"]
    assert got["a1"][0] is got["a0"]


def test_memo_shares_aliases_across_calls():
    tree = load_marked("a: &x [1]\nb: *x\n", "f.yaml")
    memo: dict = {}
    one = to_plain(tree["a"], "f.yaml", memo=memo)
    two = to_plain(tree["b"], "f.yaml", memo=memo)
    assert one is two


def test_read_plain_yaml_is_load_plain():
    assert read_plain_yaml("tokens: [{name: a}]\n", "t.yaml") == {"tokens": [{"name": "a"}]}


def test_reused_anchor_is_allowed_without_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_plain("a: &x 1\nb: &x 2\nc: *x\n", "f.yaml") == {"a": 1, "b": 2, "c": 2}
    assert not [w for w in caught if "anchor" in str(w.message)]


# --- multi-document streams ----------------------------------------------------------------------------


def test_one_document_or_many():
    assert load_marked("", "f.yaml") is None
    assert load_marked_all("a: 1\n---\n---\nb: 2\n", "f.yaml") == [{"a": 1}, None, {"b": 2}]
    with pytest.raises(SpecError) as ei:
        load_marked("a: 1\n---\nb: 2\n", "f.yaml")
    (i,) = ei.value.issues
    assert i.message.startswith("invalid YAML") and (i.line, i.column) == (2, 1)


def test_document_limit_stops_at_the_first_document_over_it():
    limits = Limits(max_documents=3)
    assert len(load_marked_all("---\na: 1\n" * 3, "f.yaml", limits)) == 3
    with pytest.raises(SpecError) as ei:
        load_marked_all("---\na: 1\n" * 5, "f.yaml", limits)
    (i,) = ei.value.issues
    assert i.message == "more than 3 documents" and i.line == 7 and ei.value.hint == "split the file"


# --- what is refused ---------------------------------------------------------------------------------


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
def test_tags_are_refused_where_they_are_and_never_run(tag, tmp_path: Path):
    marker = tmp_path / "pwned"
    value = tag.format(marker=marker)
    for text, line in ((f"a: {value}\n", 1), (f"a: 1\nb:\n  - {value}\n", 3), (f"{value}\n", 1), (f"a: 1\n---\nb: {value}\n", 3)):
        with pytest.raises(SpecError) as ei:
            load_marked_all(text, "f.yaml")
        (i,) = ei.value.issues
        assert i.message.startswith("YAML tag ") and i.message.endswith("is not allowed in a spec"), i
        assert i.line == line and i.column is not None
    assert not marker.exists()


def test_the_tag_message_names_what_is_read():
    i = issue("a: !custom 1\n", limits=Limits(what="an OpenSLO document"))
    assert i.message == "YAML tag '!custom' is not allowed in an OpenSLO document"
    assert (i.line, i.column) == (1, 4)


@pytest.mark.parametrize("text,value", [("!!str 1", "1"), ("!!int '5'", 5), ("!!float '1.5'", Decimal("1.5")), ("!!null ''", None),
                                        ("!!bool 'true'", True), ("!!map {}", {}), ("!!seq []", []), ("! x", "x")])
def test_plain_tags_are_fine(text, value):
    assert load_plain(f"a: {text}\n", "f.yaml") == {"a": value}


def test_too_many_aliases_names_the_line_of_the_first_one_over():
    text = "x: &x [1]\n" + "".join(f"y{i}: *x\n" for i in range(MAX_ALIASES + 5))
    i = issue(text)
    assert i.message == f"more than {MAX_ALIASES} YAML aliases"
    assert (i.line, i.column) == (1 + MAX_ALIASES + 1, 7)


def test_nesting_at_the_limit_is_read_one_deeper_is_refused():
    assert load_plain("x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n", "f.yaml") is not None
    i = issue("x: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    assert i.message == f"the YAML nests deeper than {MAX_DEPTH} levels"
    assert (i.line, i.column) == (1, 3 + MAX_DEPTH)


@pytest.mark.parametrize("text", ["[" * 100_000, "x: " + "{a: " * 10_000 + "1" + "}" * 10_000, "x:\n" + "".join(" " * i + "-\n" for i in range(1, 2000))])
def test_deep_nesting_is_an_error_not_a_recursion_error(text):
    assert "nests deeper" in issue(text).message


def test_too_many_values():
    text = "a:\n" + "".join(f"  - {i}\n" for i in range(MAX_NODES + 10))
    i = issue(text)
    assert i.message == f"more than {MAX_NODES} YAML values; a spec is a few KiB"
    assert i.line == MAX_NODES - 1  # the root mapping, its key and the list are values too


def test_a_smaller_limit_is_honoured():
    assert issue("[1, 2, 3, 4]\n", limits=Limits(max_nodes=3)).message.startswith("more than 3 YAML values")
    assert issue("a: *x\n".replace("*x", "&x 1\nb: *x\nc: *x"), limits=Limits(max_aliases=1)).message == "more than 1 YAML aliases"


def test_duplicate_keys_name_the_second_one():
    i = issue("a: 1\nb: 2\na: 3\n")
    assert i.message.startswith("invalid YAML: duplicate key:") and '"a"' in i.message
    assert (i.line, i.column) == (3, 1)


@pytest.mark.parametrize("text", ["? [a, b]\n: c\n", "x: {? [a, [b]] : {}}\n", "{? {a: 1} : x}\n"])
def test_lists_and_mappings_as_keys_are_refused(text):
    i = issue(text)
    assert i.message == "a mapping key must be a plain value (a name), not a list or a mapping" and i.line is not None


@pytest.mark.parametrize("value", ["2026-02-30", "!!int abc", "!!float abc", "!!bool abc", "!!int ''", "9" * 5000])
def test_values_yaml_cannot_build_are_located(value):
    with pytest.raises(SpecError) as ei:
        load_plain(f"a: 1\nb: {value}\n", "f.yaml")
    (i,) = ei.value.issues
    assert i.message.startswith("invalid YAML value: ") and (i.line, i.column) == (2, 4)
    assert ei.value.hint == "quote the value to make it a string"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\ufffe"])
def test_characters_yaml_does_not_allow(char):
    i = issue(f"a: 1\nb: x{char}y\n")
    assert i.message.startswith(f"invalid YAML: character #x{ord(char):04x} is not allowed")
    assert (i.line, i.column) == (2, 5)


def test_a_comment_ruamel_cannot_place_is_an_error_not_a_crash():
    # ruamel.yaml raised NotImplementedError ("overlap in comment") here: a traceback before
    i = issue(": #\u2028e\n\n")
    assert i.message.startswith("invalid YAML: the YAML reader cannot read this text")


@pytest.mark.parametrize("text", ["a: b: c\n", "a: [1\n", "a: 'x\n", "- a\nb: c\n", "*undefined\n", "a:\n\t- b\n"])
def test_syntax_errors_have_a_line_and_column(text):
    i = issue(text)
    assert i.message.startswith("invalid YAML") and i.line is not None and i.column is not None


# --- bytes -------------------------------------------------------------------------------------------


def test_size_is_checked_before_decoding():
    assert decode(b"a: 1\n", "f.yaml") == "a: 1\n"
    with pytest.raises(SpecError) as ei:
        decode(b"#" * (MAX_SPEC_BYTES + 1), "f.yaml")
    assert ei.value.issues[0].message == "larger than 5 MiB; a spec is a few KiB"
    with pytest.raises(SpecError) as ei:
        decode(b"\xff" * 11, "f.yaml", Limits(max_bytes=10, typical="x is small"))
    assert ei.value.issues[0].message == "larger than 10 bytes; x is small"


@pytest.mark.parametrize("data,where_", [(b"a: 1\n\xff\n", "byte 5"), (b"\xfe\xff\x00v", "byte 0"), (b"a: \xc3\x28\n", "byte 3")])
def test_not_utf8_names_the_byte(data, where_):
    with pytest.raises(SpecError) as ei:
        decode(data, "f.yaml")
    assert ei.value.issues[0].message == f"not UTF-8 text ({where_})"


def test_a_byte_order_mark_is_dropped_and_columns_do_not_shift():
    assert decode(b"\xef\xbb\xbfa: 1\n", "f.yaml") == "a: 1\n"
    assert load_plain("\ufeffa: 1\n", "f.yaml") == {"a": 1}
    # the column of a problem on the first line is the same with and without the mark
    # (it used to be one too far with it)
    plain, marked = issue("a: x\x07\n"), issue("\ufeffa: x\x07\n")
    assert (plain.line, plain.column) == (marked.line, marked.column) == (1, 5)


def test_a_lone_surrogate_in_text_is_not_utf8_not_a_crash():
    with pytest.raises(SpecError) as ei:
        decode("a: \ud800\n", "f.yaml")
    assert ei.value.issues[0].message.startswith("not UTF-8 text")


# --- locations ---------------------------------------------------------------------------------------


TREE = """\
version: 1
services:
  api: {owner: team}
slos:
  - name: a
    window: {rolling: 30d}
  - name: b
    sli:
      ratio: {good: x}
1: one
"""


@pytest.mark.parametrize(
    "loc,expect",
    [
        ((), (1, 1)),
        (("version",), (1, 10)),
        (("services", "api", "owner"), (3, 16)),
        (("slos", 1, "name"), (7, 11)),
        (("slos", 1, "sli", "ratio", "good"), (9, 21)),
        (("slos", 0, "window"), (6, 5)),  # a mapping: where its key is
        (("slos", 1, "sli", "ratio", "total"), (9, 7)),  # missing: the deepest node there is
        (("slos", 5), (4, 1)),
        (("1",), (10, 4)),  # a key that is an int, named by its text
        ((1,), (10, 4)),
    ],
)
def test_where_finds_the_line_and_column_along_a_path(loc, expect):
    assert where(load_marked(TREE, "f.yaml"), loc) == expect


def test_located_issues_name_file_line_column_and_path():
    tree = load_marked(TREE, "vigil.yaml")
    (i,) = located([(("slos", 1, "sli", "ratio", "good"), "unknown label matcher '=>'")], tree, "vigil.yaml")
    assert str(i) == "vigil.yaml:9:21: slos[1].sli.ratio.good: unknown label matcher '=>'"
    assert format_path(("a", 0, "b", 2)) == "a[0].b[2]"


def test_where_on_plain_data_has_no_location():
    assert where({"a": 1}, ("a",)) == (None, None)


# --- the spec reads YAML the same way --------------------------------------------------------------------


HOSTILE = [
    "version: 1\nservices: !custom {}\n",
    "version: 1\nservices: {api: {description: !!python/object/apply:os.system ['true']}}\n",
    "version: 1\nx: &x [1]\n" + "".join(f"y{i}: *x\n" for i in range(MAX_ALIASES + 5)),
    "version: 1\nx: " + "[" * 70 + "]" * 70 + "\n",
    "version: 1\nservices: {}\nversion: 2\n",
    "version: 1\n? [a]\n: b\n",
    "version: 1\nservices: {}\nx: 2026-02-30\n",
    "version: 1\nservices: {}\nx: a\x07b\n",
    "version: 1\n---\nservices: {}\n",
    "version: 1\nservices: {\n",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_the_spec_loader_reports_yaml_problems_as_yamlio_does(text):
    with pytest.raises(SpecError) as ei:
        parse_spec(text, filename="vigil.yaml")
    spec_issue = ei.value.issues[0]
    with pytest.raises(SpecError) as ei2:
        load_plain(text, "vigil.yaml")
    (mine,) = ei2.value.issues
    assert (spec_issue.message, spec_issue.line, spec_issue.column, spec_issue.path) == (mine.message, mine.line, mine.column, mine.path)
    assert ei.value.hint == ei2.value.hint


_TOKENS = ["a", "b", ": ", "\n", "\n  ", "- ", "{", "}", "[", "]", ", ", "&a ", "*a", "!!str ", "!custom ", "'", '"', "# c",
           "? ", "1", "0.5", "~", "true", "2026-02-30", "---\n", "\t", "\x07", "\u2028", "é"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join))
def test_any_text_is_plain_data_or_one_located_error(text):
    try:
        out = load_plain(text, "f.yaml")
    except SpecError as e:
        (i,) = e.issues
        assert i.message and i.file == "f.yaml" and e.hint
        return
    json.dumps(out, default=str)  # plain data only


def test_importing_yamlio_loads_no_yaml_library():
    code = "import sys, vigil.yamlio; print(sorted(m for m in sys.modules if m.startswith(('ruamel', 'pydantic', 'yaml'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
