"""PostgreSQL's own parse tree as plain JSON data, for the linter.

``pglast.parse_sql`` builds a Python object for every node of the tree, which is most of the time
a lint of a large migration history takes; the same parser (libpg_query) can hand the tree over as
one JSON string, which ``json.loads`` turns into dicts and lists in C about ten times faster. The
linter reads those dicts through the small helpers here. Every walk is iterative, so no tree is too
deep for it; a tree nested deeper than ``json.loads`` can recurse is decoded on a thread with a
large stack.

The JSON form is libpg_query's: a node is a one-key dict ``{"TypeName": {fields}}``; enum fields are
their names as strings (``"AT_AddColumn"``); a field at its zero value (``false``, ``0``, empty) is
left out; locations are byte offsets into the UTF-8 text (see :class:`Offsets`).
"""

from __future__ import annotations

import bisect
import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@dataclass(frozen=True)
class Stmt:
    """One top-level statement: its node type, its fields, and where it is (byte offsets)."""

    kind: str
    body: dict
    location: int
    length: int  # 0: to the end of the text


def parse(sql: str) -> list[Stmt]:
    """The statements of ``sql``. Raises ``pglast.parser.ParseError`` for SQL PostgreSQL rejects."""
    from pglast.parser import parse_sql_json

    text = parse_sql_json(sql)
    try:
        tree = json.loads(text)
    except RecursionError:
        tree = _loads_deep(text)
    out = []
    for raw in tree.get("stmts", ()):
        node = raw.get("stmt")
        if not node:
            continue
        ((kind, body),) = node.items()
        out.append(Stmt(kind, body, raw.get("stmt_location", 0), raw.get("stmt_len", 0)))
    return out


_deep_lock = threading.Lock()


def _loads_deep(text: str) -> Any:
    """``json.loads`` for a tree nested deeper than the recursion limit: on a thread with a 512 MiB
    (virtual, touched only as deep as needed) stack and a raised limit, restored afterwards."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["r"] = json.loads(text)
        except BaseException as e:  # handed back to the caller's thread
            box["e"] = e

    with _deep_lock:
        old_stack, old_limit = threading.stack_size(), sys.getrecursionlimit()
        threading.stack_size(512 * 1024 * 1024)
        sys.setrecursionlimit(max(old_limit, 2_000_000))
        try:
            t = threading.Thread(target=run, name="vigil-lint-json", daemon=True)
            t.start()
            t.join()
        finally:
            threading.stack_size(old_stack)
            sys.setrecursionlimit(old_limit)
    if "e" in box:
        raise box["e"]
    return box["r"]


class Offsets:
    """Byte offsets of the parser -> character offsets of the text (the same when it is ASCII)."""

    def __init__(self, sql: str) -> None:
        self._bytes: list[int] = []  # byte offset just after each non-ASCII character
        self._extra: list[int] = []  # extra bytes so far at that point
        if sql.isascii():
            return
        extra = 0
        for m in _NON_ASCII.finditer(sql):
            n = len(m.group().encode("utf-8", "surrogatepass")) - 1
            extra += n
            self._bytes.append(m.start() + extra + 1)
            self._extra.append(extra)

    def char(self, byte_offset: int) -> int:
        if not self._bytes:
            return byte_offset
        i = bisect.bisect_right(self._bytes, byte_offset)
        return byte_offset - (self._extra[i - 1] if i else 0)


# --- reading nodes --------------------------------------------------------------------------------


_NOTHING: dict = {}


def node(x: Any) -> tuple[str, dict]:
    """``{"Type": {fields}}`` -> ``("Type", fields)``; anything else -> ``("", {})`` (read-only)."""
    if type(x) is dict and len(x) == 1:
        for k, v in x.items():
            if type(v) is dict and k[:1].isupper():
                return k, v
    return "", _NOTHING


def kind(x: Any) -> str:
    return node(x)[0]


def walk(root: Any) -> Iterator[tuple[str, dict]]:
    """Every node under ``root`` (itself included) as ``(type, fields)``, iteratively."""
    stack = [root]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            k, v = node(x)
            if k:
                yield k, v
                stack.extend(v.values())
            else:
                stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def string(x: Any) -> str:
    """The text of a ``String`` node (or of an ``A_Star`` as ``*``); ``?`` for anything else."""
    k, v = node(x)
    if k == "String":
        return str(v.get("sval", ""))
    if k == "A_Star":
        return "*"
    return "?"


def names(items: Any) -> str:
    """A dotted name from a list of ``String`` nodes (``["public", "users"]`` -> ``public.users``)."""
    if isinstance(items, list):
        return ".".join(string(i) for i in items)
    return string(items)


def object_name(x: Any) -> str:
    """The name of a ``DropStmt`` / ``RenameStmt`` / ``AlterObjectSchemaStmt`` object, whatever its shape."""
    k, v = node(x)
    if k == "String":
        return str(v.get("sval", ""))
    if k == "List":
        return names(v.get("items", []))
    if k == "ObjectWithArgs":
        return names(v.get("objname", []))
    if k == "TypeName":
        return names(v.get("names", []))
    if isinstance(x, list):
        return names(x)
    return "?"


def rel(rv: Any) -> str:
    """``schema.relname`` of a RangeVar's fields (or a ``{"RangeVar": ...}`` node)."""
    if not rv:
        return "?"
    k, v = node(rv)
    if k == "RangeVar":
        rv = v
    name = str(rv.get("relname", "") or "?")
    schema = rv.get("schemaname")
    return f"{schema}.{name}" if schema else name


def relkey(rv: Any) -> str:
    """The bare relation name (no schema): what "created in this file" and table facts are keyed by."""
    if not rv:
        return ""
    k, v = node(rv)
    if k == "RangeVar":
        rv = v
    return str(rv.get("relname", "") or "")


def const(x: Any) -> tuple[bool, Any]:
    """``(True, value)`` for a constant (``A_Const``, maybe under a cast); ``(False, None)`` otherwise."""
    k, v = node(x)
    while k == "TypeCast":
        k, v = node(v.get("arg"))
    if k != "A_Const":
        return False, None
    if v.get("isnull"):
        return True, None
    for field in ("ival", "sval", "boolval", "fval", "bsval"):
        if field in v:
            inner = v[field]
            if isinstance(inner, dict):
                return True, inner.get(field, 0 if field == "ival" else False if field == "boolval" else "")
            return True, inner
    return True, None


def type_names(tn: dict | None) -> tuple[str, ...]:
    """A ``TypeName``'s names, lower-cased, ``pg_catalog`` dropped: ``("int4",)``, ``("myschema", "t")``."""
    if not tn:
        return ()
    parts = tuple(string(n).lower() for n in tn.get("names", ()))
    if len(parts) == 2 and parts[0] == "pg_catalog":
        parts = parts[1:]
    return parts


_TYPE_SQL = {
    "int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
    "bool": "boolean", "bpchar": "char", "varchar": "varchar", "timestamptz": "timestamptz",
    "timestamp": "timestamp", "timetz": "timetz", "time": "time", "numeric": "numeric", "interval": "interval",
}  # fmt: skip


def type_sql(tn: dict | None) -> str:
    """A ``TypeName`` as SQL (``varchar(20)``, ``bigint[]``, ``public.mood``), for messages and fixes."""
    if not tn:
        return "<type>"
    raw = [string(n) for n in tn.get("names", ())]
    builtin = len(raw) == 2 and raw[0] == "pg_catalog"
    base = _TYPE_SQL.get(raw[-1], raw[-1]) if builtin else ".".join(_ident(p) for p in raw)
    mods = []
    if not (builtin and raw[-1] == "interval"):  # interval's typmods are a bit mask, not user text
        for m in tn.get("typmods", ()) or ():
            ok, v = const(m)
            mods.append(str(v) if ok else "?")
    if builtin and raw[-1] == "bpchar" and mods == ["1"] and _implicit(tn):
        mods = []
    text = base + (f"({', '.join(mods)})" if mods else "")
    if tn.get("setof"):
        text = "SETOF " + text
    for _ in tn.get("arrayBounds", ()) or ():
        text += "[]"
    return text


def _implicit(tn: dict) -> bool:
    mods: list = tn.get("typmods") or []
    return bool(mods) and node(mods[0])[1].get("location", 0) == -1


def _ident(s: str) -> str:
    return s if re.fullmatch(r"[a-z_][a-z0-9_$]*", s) else '"' + s.replace('"', '""') + '"'
