"""PromQL-style series selectors: ``http_requests{service="api",code!~"5.."}``.

Matchers ``=``, ``!=``, ``=~`` and ``!~`` with PromQL semantics: regular expressions are fully
anchored, and a label a series does not have matches as the empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import re2

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_SELECTOR_LENGTH = 4096
OPS = ("=", "!=", "=~", "!~")

# RE2, as Prometheus: linear-time matching whatever a pushed label value holds, and the same
# syntax (no back-references, no lookaround). Errors are ours to report, not RE2's to log.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class SelectorError(ValueError):
    """A selector cannot be read. The message says where and what."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: "re2._Regexp | None" = field(default=None, compare=False, hash=False, repr=False)

    @classmethod
    def make(cls, name: str, op: str, value: str) -> "Matcher":
        if op not in OPS:
            raise SelectorError(f"unknown label matcher {op!r}")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re2.compile(value, _RE2_OPTIONS)
            except re2.error as e:
                msg = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
                raise SelectorError(f"label {name}: invalid regular expression {_clip(value)!r}: {_clip(msg)}") from None
            except (RecursionError, OverflowError, ValueError, TypeError) as e:
                raise SelectorError(f"label {name}: invalid regular expression {_clip(value)!r}: {e}") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        rx = self._regex
        assert rx is not None  # =~ and !~ always compile theirs
        hit = rx.fullmatch(v) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{quote(self.value)}"


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def with_matchers(self, extra: tuple[Matcher, ...]) -> "Selector":
        return Selector(self.metric, self.matchers + tuple(extra))

    def __str__(self) -> str:
        if not self.matchers:
            return self.metric
        return self.metric + "{" + ",".join(str(m) for m in self.matchers) + "}"


def _clip(s: str, n: int = 100) -> str:
    return s if len(s) <= n else s[:n] + "..."


def quote(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def error(self, msg: str) -> SelectorError:
        return SelectorError(f"{msg} at position {self.i + 1} of {_clip(self.s)!r}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def name(self, pattern: re.Pattern, what: str) -> str:
        m = pattern.match(self.s, self.i)
        if not m:
            got = self.peek() or "end of input"
            raise self.error(f"expected a {what}, got {got!r}")
        self.i = m.end()
        return m.group(0)

    def op(self) -> str:
        j = self.i
        while j < len(self.s) and self.s[j] in "=!~<>":
            j += 1
        op = self.s[self.i : j]
        if op not in OPS:
            if not op:
                got = self.peek() or "end of input"
                raise self.error(f"expected a label matcher (=, !=, =~, !~), got {got!r}")
            raise SelectorError(f"unknown label matcher {op!r}")
        self.i = j
        return op

    def string(self) -> str:
        q = self.peek()
        if q not in ('"', "'", "`"):
            got = q or "end of input"
            raise self.error(f"expected a quoted label value, got {got!r}")
        self.i += 1
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise self.error("unterminated string")
            c = self.s[self.i]
            self.i += 1
            if c == q:
                return "".join(out)
            if c == "\\" and q != "`":
                if self.i >= len(self.s):
                    raise self.error("unterminated escape")
                e = self.s[self.i]
                self.i += 1
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                elif e in ".+*?()[]{}|^$dDsSwWbB-/":
                    # PromQL keeps unknown escapes in regexes, e.g. "\\." written as "\."
                    out.append("\\" + e)
                else:
                    raise self.error(f"unknown escape \\{e}")
            else:
                out.append(c)


def parse_selector(text: str) -> Selector:
    """Parse ``metric{label="value",...}``. Raises :class:`SelectorError`."""
    if not isinstance(text, str):
        raise SelectorError(f"expected a selector string like metric{{label=\"value\"}}, got {type(text).__name__}")
    if len(text) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"selector is {len(text)} characters long; the limit is {MAX_SELECTOR_LENGTH}")
    p = _Parser(text)
    p.ws()
    if not p.peek():
        raise SelectorError("empty selector: name a metric, like http_requests{service=\"api\"}")
    metric = p.name(METRIC_NAME, "metric name")
    p.ws()
    matchers: list[Matcher] = []
    if p.peek() == "{":
        p.i += 1
        p.ws()
        while p.peek() != "}":
            label = p.name(LABEL_NAME, "label name")
            p.ws()
            op = p.op()
            p.ws()
            value = p.string()
            try:
                matchers.append(Matcher.make(label, op, value))
            except SelectorError as e:
                raise SelectorError(f"{e} in {_clip(text)!r}") from None
            p.ws()
            if p.peek() == ",":
                p.i += 1
                p.ws()
            elif p.peek() != "}":
                got = p.peek() or "end of input"
                raise p.error(f"expected ',' or '}}', got {got!r}")
        p.i += 1
        p.ws()
    if p.i != len(text):
        raise p.error(f"unexpected {text[p.i:p.i + 10]!r}")
    return Selector(metric, tuple(matchers))
