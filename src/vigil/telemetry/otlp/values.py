"""OTLP attribute values as plain Python values, label values and label names. Pure.

Every rendering is bounded: nesting (arrays and key-value lists) is rendered to depth
:data:`MAX_DEPTH`, at most :data:`MAX_ITEMS` items per level, strings cut at :data:`MAX_TEXT`
characters, so a hostile attribute cannot make a stored row or a label large.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

MAX_DEPTH = 8
MAX_ITEMS = 64
MAX_TEXT = 1024
MAX_ATTRS = 64
"""Attributes kept per stored span (the first ones sent; the rest counted as dropped)."""

_LABEL_OK = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")
_METRIC_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_UNDERSCORES = re.compile(r"__+")


def plain(v: Any, depth: int = 0) -> Any:
    """An AnyValue as a JSON-able value (bounded; see the module doc). None for an empty value."""
    which = v.WhichOneof("value")
    if which == "string_value":
        s = v.string_value
        return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + "..."
    if which == "int_value":
        return v.int_value
    if which == "bool_value":
        return v.bool_value
    if which == "double_value":
        d = v.double_value
        return d if math.isfinite(d) else str(d)
    if which == "bytes_value":
        b = v.bytes_value[: MAX_TEXT // 2]
        return base64.b64encode(b).decode("ascii")
    if which is None:
        return None
    if depth >= MAX_DEPTH:
        return "..."
    if which == "array_value":
        return [plain(x, depth + 1) for x in v.array_value.values[:MAX_ITEMS]]
    if which == "kvlist_value":
        return {kv.key[:256]: plain(kv.value, depth + 1) for kv in v.kvlist_value.values[:MAX_ITEMS]}
    return None  # pragma: no cover - a value kind this runtime does not know


def label_value(v: Any) -> str:
    """An AnyValue as a label value: strings as sent, numbers and booleans as text, the rest as
    compact JSON (bounded)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return str(v.int_value)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "double_value":
        d = v.double_value
        return str(int(d)) if d.is_integer() and abs(d) < 2**53 else repr(d)
    if which is None:
        return ""
    out = json.dumps(plain(v), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return out if len(out) <= MAX_TEXT else out[:MAX_TEXT]


def label_name(key: str) -> str:
    """An attribute key as a label name: characters other than [a-zA-Z0-9_] become '_', a name
    starting with a digit gets a leading '_', one starting with '__' (reserved) gets 'attr'."""
    if _LABEL_OK.fullmatch(key) and not key.startswith("__"):
        return key[:128]
    name = _LABEL_BAD.sub("_", key) or "_"
    if name[0].isdigit():
        name = "_" + name
    if name.startswith("__"):
        name = "attr" + name
    return name[:128]


def metric_name(name: str) -> str:
    """An OpenTelemetry instrument name as a vigil metric name: '.', '-', '/' and other characters
    outside [a-zA-Z0-9_:] become '_' (runs of '_' collapse), a leading digit gets a '_' before it.
    ``http.server.request.duration`` -> ``http_server_request_duration``."""
    n = _UNDERSCORES.sub("_", _METRIC_BAD.sub("_", name))
    if not n:
        return "_"
    if n[0].isdigit():
        n = "_" + n
    return n[:200]
