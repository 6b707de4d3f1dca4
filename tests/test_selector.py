"""PromQL-style selectors: parse, print, match; hostile input gets a SelectorError with a message."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from vigil.telemetry.selector import (
    LABEL_NAME,
    MAX_SELECTOR_LENGTH,
    METRIC_NAME,
    Matcher,
    Selector,
    SelectorError,
    parse_selector,
    quote,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

metric_names = st.from_regex(METRIC_NAME, fullmatch=True).filter(lambda s: len(s) < 60)
label_names = st.from_regex(LABEL_NAME, fullmatch=True).filter(lambda s: len(s) < 40)
label_values = st.text(max_size=30)
REGEXES = ["", ".*", ".+", "a|b", "5..", "[0-9]+", "(?i)get", "api-.*", "x{2,3}", r"\d+", r"a\.b", "(a|b)c?", "[^/]+", "\\\\"]


def _quote_as(value: str, style: str) -> str | None:
    """Spell a label value in one of PromQL's three string styles (None if that style cannot hold it)."""
    if style == "`":
        return None if "`" in value else f"`{value}`"
    q = style
    out = []
    for c in value:
        if c == "\\":
            out.append("\\\\")
        elif c == q:
            out.append("\\" + q)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
    return q + "".join(out) + q


@st.composite
def selector_sources(draw):
    """(source text, the Selector it must parse to), with random spacing and quoting."""
    metric = draw(metric_names)
    n = draw(st.integers(0, 4))
    ws = st.sampled_from(["", " ", "  ", "\t", "\n"])
    matchers = []
    parts = []
    for _ in range(n):
        name = draw(label_names)
        op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
        value = draw(st.sampled_from(REGEXES)) if op in ("=~", "!~") else draw(label_values)
        style = draw(st.sampled_from(['"', "'", "`"]))
        spelled = _quote_as(value, style)
        if spelled is None:
            spelled = _quote_as(value, '"')
        matchers.append(Matcher.make(name, op, value))
        parts.append(draw(ws) + name + draw(ws) + op + draw(ws) + spelled + draw(ws))
    text = draw(ws) + metric + draw(ws)
    if parts or draw(st.booleans()):
        text += "{" + ",".join(parts) + (draw(st.sampled_from(["", ","])) if parts else "") + "}" + draw(ws)
    return text, Selector(metric, tuple(matchers))


# --- round trip ----------------------------------------------------------------------------------------


@FAST
@given(selector_sources())
def test_parse_reads_what_was_written(src):
    text, expected = src
    assume(len(text) <= MAX_SELECTOR_LENGTH)
    assert parse_selector(text) == expected


@FAST
@given(selector_sources())
def test_str_parses_back_to_an_equal_selector(src):
    text, _ = src
    assume(len(text) <= MAX_SELECTOR_LENGTH)
    sel = parse_selector(text)
    again = parse_selector(str(sel))
    assert again == sel
    assert str(again) == str(sel)


@FAST
@given(metric_names, label_names, st.text(max_size=50))
@example("m", "l", '"')
@example("m", "l", "\\")
@example("m", "l", "\\n")
@example("m", "l", "\n\r\t\x00\x7f\u2028")
@example("m", "l", "\ud800")
def test_any_value_survives_quote(metric, name, value):
    sel = Selector(metric, (Matcher.make(name, "=", value),))
    assert parse_selector(str(sel)) == sel
    assert parse_selector(f"{metric}{{{name}={quote(value)}}}").matchers[0].value == value


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
@example("")
@example("{}")
@example('a{b="c"')
@example('a{b=~"("}')
def test_arbitrary_text_parses_or_fails_cleanly(text):
    try:
        sel = parse_selector(text)
    except SelectorError as e:
        assert str(e)
        return
    assert parse_selector(str(sel)) == sel


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab{}=!~,"\'`\\ \n._:(|)[]*+?-', max_size=40))
def test_selector_alphabet_soup_parses_or_fails_cleanly(text):
    try:
        sel = parse_selector("m" + text)
    except SelectorError as e:
        assert str(e)
        return
    assert parse_selector(str(sel)) == sel


# --- PromQL semantics ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selector,labels,hit",
    [
        # a label a series does not have matches as the empty string
        ('m{x=""}', {}, True),
        ('m{x=""}', {"x": "a"}, False),
        ('m{x!=""}', {}, False),
        ('m{x!=""}', {"x": "a"}, True),
        ('m{x="a"}', {}, False),
        ('m{x!="a"}', {}, True),
        ('m{x=~".*"}', {}, True),
        ('m{x=~".+"}', {}, False),
        ('m{x=~""}', {}, True),
        ('m{x!~".+"}', {}, True),
        ('m{x!~".*"}', {}, False),
        ('m{x!~"a"}', {}, True),
        ('m{x!~""}', {}, False),
        # regexes are anchored at both ends
        ('m{code=~"5.."}', {"code": "500"}, True),
        ('m{code=~"5.."}', {"code": "5000"}, False),
        ('m{code=~"5.."}', {"code": "1500"}, False),
        ('m{code=~"0"}', {"code": "200"}, False),
        ('m{code!~"5.."}', {"code": "5000"}, True),
        ('m{x=~"a|b"}', {"x": "b"}, True),
        ('m{x=~"a|b"}', {"x": "ab"}, False),
        ('m{x=~"a|b"}', {"x": "ba"}, False),
        ('m{x=~"a.*"}', {"x": "abc"}, True),
        ('m{x=~"a"}', {"x": "a\n"}, False),
        ('m{x=~"api-.*"}', {"x": "my-api-1"}, False),
        # every matcher must hold
        ('m{a="1",b="2"}', {"a": "1", "b": "2"}, True),
        ('m{a="1",b="2"}', {"a": "1"}, False),
        ('m{a="1",a!="1"}', {"a": "1"}, False),
        ("m", {"anything": "x"}, True),
        # escapes decoded before matching
        (r'm{x="a\"b"}', {"x": 'a"b'}, True),
        (r'm{x="a\\b"}', {"x": "a\\b"}, True),
        (r'm{x="a\nb"}', {"x": "a\nb"}, True),
        (r'm{x=~"a\\.b"}', {"x": "a.b"}, True),
        (r'm{x=~"a\\.b"}', {"x": "axb"}, False),
        (r'm{x=~"a\.b"}', {"x": "a.b"}, True),  # PromQL keeps \. in a regex as is
        (r'm{x=~"a\.b"}', {"x": "axb"}, False),
        (r"m{x=~`a\.b`}", {"x": "axb"}, False),
        (r"m{x='it\'s'}", {"x": "it's"}, True),
    ],
)
def test_matching(selector, labels, hit):
    assert parse_selector(selector).matches(labels) is hit


def test_matcher_equality_ignores_the_compiled_regex():
    assert Matcher.make("a", "=~", "x.*") == Matcher.make("a", "=~", "x.*")
    assert Matcher.make("a", "=~", "x.*") != Matcher.make("a", "!~", "x.*")
    assert hash(parse_selector('m{a=~"x"}')) == hash(parse_selector("m{a=~'x'}"))


def test_with_matchers_adds():
    s = parse_selector('m{a="1"}').with_matchers((Matcher.make("b", "!=", "2"),))
    assert str(s) == 'm{a="1",b!="2"}'


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty selector"),
        ("   \n", "empty selector"),
        ('{a="b"}', "expected a metric name, got '{' at position 1"),
        ("1abc", "expected a metric name"),
        ("é", "expected a metric name"),
        ('m{a=>"b"}', "unknown label matcher '=>'"),
        ('m{a=="b"}', "unknown label matcher '=='"),
        ('m{a~"b"}', "unknown label matcher '~'"),
        ('m{a<"b"}', "unknown label matcher '<'"),
        ('m{a"b"}', "expected a label matcher (=, !=, =~, !~)"),
        ("m{a=b}", "expected a quoted label value, got 'b' at position 5"),
        ('m{a="b"', "expected ',' or '}', got 'end of input' at position 8"),
        ('m{a="b', "unterminated string at position 7"),
        ("m{a='b", "unterminated string"),
        ("m{a=`b", "unterminated string"),
        ('m{a="\\', "unterminated escape"),
        ('m{a="\\q"}', "unknown escape \\q at position 8"),
        ('m{a="b" c="d"}', "expected ',' or '}', got 'c'"),
        ("m{,}", "expected a label name, got ','"),
        ("m{1a=\"b\"}", "expected a label name, got '1'"),
        ('m{a="b"} x', "unexpected 'x'"),
        ('m{a="b"}}', "unexpected '}'"),
        ('m{a="b"}{c="d"}', "unexpected '{c=\"d\"}'"),
        ("m x", "unexpected 'x'"),
        ("m{", "expected a label name, got 'end of input'"),
        ('m{a=~"("}', "label a: invalid regular expression '('"),
        ('m{a=~"a**"}', "invalid regular expression"),
        ('m{a!~"[z-a]"}', "invalid regular expression"),
        ('m{a=~"(?<=a+)b"}', "invalid regular expression"),
        ('m{a=~"(?=a)b"}', "invalid regular expression"),  # RE2, as PromQL: no lookaround
        (r'm{a=~"(a)\\1"}', "invalid regular expression"),  # ... and no back-references
        ('m{a=~"a{1001}"}', "invalid regular expression"),
        ('m{a=~"' + "[" * 1000 + '"}', "invalid regular expression"),
    ],
)
def test_errors_say_what_and_where(text, message):
    with pytest.raises(SelectorError) as ei:
        parse_selector(text)
    assert message in str(ei.value)


@pytest.mark.parametrize("value", [None, 5, 1.5, b'm{a="b"}', ["m"], {"m": 1}, True])
def test_not_a_string(value):
    with pytest.raises(SelectorError, match="expected a selector string"):
        parse_selector(value)  # type: ignore[arg-type]


def test_matching_is_linear_time_whatever_the_label_value():
    """A pathological pattern against a hostile pushed label value: RE2 answers at once (Python's
    backtracking engine would take longer than the age of the universe)."""
    sel = parse_selector('m{a=~"(a+)+$"}')
    assert not sel.matches({"a": "a" * 1024 + "!"})
    assert sel.matches({"a": "a" * 1024})


def test_regex_warnings_are_not_errors():
    """Python warns about some regexes ("possible nested set"); under -W error that must not crash."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_selector('m{a=~"[[a]"}').matches({"a": "["})


@pytest.mark.parametrize(
    "text",
    [
        "m" * (MAX_SELECTOR_LENGTH + 1),
        'm{a="' + "x" * MAX_SELECTOR_LENGTH + '"}',
        "m{" + ",".join(f'a{i}="b"' for i in range(2000)) + "}",
        "m" + " " * 10_000_000,
        'm{a="' + "\\" * 5000,
    ],
    ids=["long-name", "long-value", "many-matchers", "ten-megabytes", "backslashes"],
)
def test_huge_input_is_refused_quickly(text):
    t = time.monotonic()
    with pytest.raises(SelectorError, match=f"the limit is {MAX_SELECTOR_LENGTH}"):
        parse_selector(text)
    assert time.monotonic() - t < 1


def test_error_messages_stay_short():
    """A near-limit selector is named in an error, but not echoed in full."""
    text = 'm{a="' + "x" * 4000 + '"'
    with pytest.raises(SelectorError) as ei:
        parse_selector(text)
    assert len(str(ei.value)) < 400
    text = 'm{a=~"' + "(" * 2000 + '"}'
    with pytest.raises(SelectorError) as ei:
        parse_selector(text)
    assert len(str(ei.value)) < 600


def test_at_the_limit_is_fine():
    text = 'm{a="' + "x" * (MAX_SELECTOR_LENGTH - 7) + '"}'
    assert len(text) == MAX_SELECTOR_LENGTH
    assert parse_selector(text).matchers[0].value == "x" * (MAX_SELECTOR_LENGTH - 7)


def test_whitespace_and_trailing_comma():
    assert parse_selector(' m {\n a = "1" ,\tb != \'2\' , } ') == parse_selector('m{a="1",b!="2"}')
    assert parse_selector("m{}") == Selector("m")
    assert str(parse_selector("m{}")) == "m"


def test_colons_in_metric_names():
    assert parse_selector("job:http_requests:rate5m").metric == "job:http_requests:rate5m"


def test_regex_printed_back_unchanged():
    for rx in REGEXES:
        sel = Selector("m", (Matcher.make("a", "=~", rx),))
        assert parse_selector(str(sel)).matchers[0].value == rx
        assert re.compile(rx)  # still a valid regex
