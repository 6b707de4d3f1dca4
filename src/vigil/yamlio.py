"""The one hardened YAML reader: bounded size, depth, nodes and aliases, plain tags only.

Every YAML vigil reads (the spec, OpenSLO documents, the tokens file) goes through here, so a
``!custom`` tag or an alias bomb is refused the same way everywhere. Two shapes come out:

- the *marked tree* (:func:`load_marked`, :func:`load_marked_all`): ruamel.yaml's round-trip
  mappings and lists, which keep the line and column of every key and item, for callers that name
  ``file:line:col`` in their errors (:func:`where` finds them along a path);
- *plain data* (:func:`to_plain`, :func:`load_plain`): dicts, lists, str, int, bool, None and
  :class:`~decimal.Decimal` (a YAML float keeps its shortest exact spelling: ``0.1`` is
  ``Decimal('0.1')``; ``.nan`` and ``.inf`` stay floats for the caller to refuse). Timestamps come
  out as the text YAML read (``2024-01-01 00:00:00``), never as dates.

What is refused, each as a :class:`~vigil.errors.SpecError` whose one issue names the file, and the
line and column where the reader stopped:

- more than :attr:`Limits.max_bytes` (checked before anything is decoded), text that is not UTF-8
  (a leading byte-order mark is fine), a character YAML does not allow;
- a tag other than the plain ones (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!seq``, ``!!map`` and ``!``): no ``!!python/object``, no ``!custom``, no ``!!binary``, no
  ``!!timestamp``; nothing is ever constructed from a tag;
- more than :attr:`Limits.max_aliases` aliases or :attr:`Limits.max_nodes` values (an alias bomb
  stops before it is built, and aliased values are shared, never copied);
- nesting deeper than :attr:`Limits.max_depth` collections, a list or mapping used as a mapping
  key, a duplicate key;
- a value YAML cannot build (``2026-02-30``, ``!!int abc``, an integer of 5,000 digits).

ruamel.yaml is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vigil.errors import SpecError, SpecIssue

MAX_SPEC_BYTES = 5 * 1024 * 1024
MAX_ALIASES = 200
MAX_DEPTH = 64
MAX_NODES = 100_000

PLAIN_TAGS = frozenset({"!"} | {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")})


@dataclass(frozen=True)
class Limits:
    """Bounds on one YAML stream, and the words its errors use for what is read.

    ``what`` ends the tag error (``YAML tag '!x' is not allowed in a spec``); ``typical`` follows the
    size errors (``larger than 5 MiB; a spec is a few KiB``). ``max_documents`` bounds the documents
    of a multi-document stream (None: no bound beyond the node count).
    """

    max_bytes: int = MAX_SPEC_BYTES
    max_aliases: int = MAX_ALIASES
    max_depth: int = MAX_DEPTH
    max_nodes: int = MAX_NODES
    max_documents: int | None = None
    what: str = "a spec"
    typical: str = "a spec is a few KiB"


SPEC_LIMITS = Limits()


def _fail(message: str, filename: str, line: int | None = None, column: int | None = None, hint: str | None = None) -> SpecError:
    return SpecError([SpecIssue("", message, file=filename, line=line, column=column)], hint=hint)


# --- bytes to text -------------------------------------------------------------------------------


def decode(data: bytes | str, filename: str, limits: Limits = SPEC_LIMITS) -> str:
    """YAML bytes as text: at most ``limits.max_bytes``, UTF-8, without a leading byte-order mark.

    The size is checked before anything is decoded. Raises :class:`SpecError`.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > limits.max_bytes:
        raise _fail(f"larger than {_size(limits.max_bytes)}; {limits.typical}", filename)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(f"not UTF-8 text (byte {e.start})", filename) from None
    return text.removeprefix("\ufeff")


def _size(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MiB" if n >= mib and n % mib == 0 else f"{n} bytes"


# --- text to the marked tree ---------------------------------------------------------------------


def load_marked(text: str, filename: str, limits: Limits = SPEC_LIMITS) -> Any:
    """One YAML document as ruamel.yaml's round-trip tree (line and column marks kept).

    None for an empty document; a stream of several documents is an error. Raises
    :class:`SpecError`.
    """
    return _load(text, filename, limits, many=False)


def load_marked_all(text: str, filename: str, limits: Limits = SPEC_LIMITS) -> list[Any]:
    """Every document of a YAML stream as a round-trip tree (an empty document is None).

    Raises :class:`SpecError`.
    """
    return _load(text, filename, limits, many=True)


def _yaml() -> Any:
    import warnings

    from ruamel.yaml import YAML
    from ruamel.yaml.error import ReusedAnchorWarning

    # YAML lets an anchor be reused (the latest wins); ruamel would print a warning to stderr
    warnings.filterwarnings("ignore", category=ReusedAnchorWarning)
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def _load(text: str, filename: str, limits: Limits, *, many: bool) -> Any:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    text = text.removeprefix("\ufeff")
    yaml = _yaml()
    try:
        prescan(yaml, text, filename, limits)
        if many:
            return list(yaml.load_all(io.StringIO(text)))
        return yaml.load(io.StringIO(text))
    except ReaderError as e:
        pos = e.position if isinstance(e.position, int) else 0
        line = text.count("\n", 0, pos) + 1
        char = f"#x{e.character:04x}" if isinstance(e.character, int) else repr(e.character)
        raise _fail(
            f"invalid YAML: character {char} is not allowed ({e.reason})",
            filename,
            line,
            pos - (text.rfind("\n", 0, pos) + 1) + 1,
        ) from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        if "duplicate key" in msg or "found duplicate key" in str(e):
            msg = "duplicate key: " + msg
        raise _fail(
            f"invalid YAML: {_clip(msg, 300)}", filename, mark.line + 1 if mark else None, mark.column + 1 if mark else None
        ) from None
    except YAMLError as e:
        raise _fail(f"invalid YAML: {_clip(str(e), 300)}", filename) from None
    except RecursionError:
        raise _fail("the YAML nests too deeply", filename) from None
    except NotImplementedError as e:
        # ruamel.yaml gives up on some comments it cannot attach (`: #\u2028x`): still bad input
        raise _fail(
            f"invalid YAML: the YAML reader cannot read this text ({_clip(str(e))})",
            filename,
            hint="look for a comment next to a line separator (U+2028, U+2029, U+0085) and remove it",
        ) from None
    except (ValueError, TypeError, LookupError, ArithmeticError, AttributeError) as e:
        # the constructor choked on a value, e.g. `2026-02-30` read as a date, or `!!int abc`
        mark = _bad_scalar(text)
        raise _fail(
            f"invalid YAML value: {_clip(str(e))}" + (f" ({_clip(repr(mark[2]))})" if mark else ""),
            filename,
            mark[0] if mark else None,
            mark[1] if mark else None,
            hint="quote the value to make it a string",
        ) from None


def prescan(yaml: Any, text: str, filename: str, limits: Limits = SPEC_LIMITS) -> None:
    """One cheap pass over the YAML events before anything is built.

    Bounds aliases, nesting, values and documents, and refuses what vigil never needs: tags other
    than the plain ones (``!!python/object`` and friends) and lists or mappings used as mapping
    keys. Stopping here early also keeps ruamel's scanner out of its slow path on deep flow nesting.
    """
    aliases = nodes = documents = 0
    stack: list[list] = []  # per open collection: [is a mapping, items so far]
    for ev in yaml.parse(io.StringIO(text)):
        kind = type(ev).__name__
        if kind in ("MappingEndEvent", "SequenceEndEvent"):
            stack.pop()
            if stack:
                stack[-1][1] += 1
            continue
        if kind == "DocumentStartEvent" and limits.max_documents is not None:
            documents += 1
            if documents > limits.max_documents:
                mark = ev.start_mark
                raise _fail(
                    f"more than {limits.max_documents} documents", filename, mark.line + 1, mark.column + 1, hint="split the file"
                )
            continue
        if kind not in ("ScalarEvent", "AliasEvent", "MappingStartEvent", "SequenceStartEvent"):
            continue
        mark = ev.start_mark
        problem = None
        nodes += 1
        tag = getattr(ev, "tag", None)
        if nodes > limits.max_nodes:
            problem = f"more than {limits.max_nodes} YAML values; {limits.typical}"
        elif tag is not None and str(tag) not in PLAIN_TAGS:
            problem = f"YAML tag {_clip(str(tag))!r} is not allowed in {limits.what}"
        elif kind == "AliasEvent":
            aliases += 1
            if aliases > limits.max_aliases:
                problem = f"more than {limits.max_aliases} YAML aliases"
        elif kind != "ScalarEvent":
            if stack and stack[-1][0] and stack[-1][1] % 2 == 0:
                problem = "a mapping key must be a plain value (a name), not a list or a mapping"
            elif len(stack) >= limits.max_depth:
                problem = f"the YAML nests deeper than {limits.max_depth} levels"
            stack.append([kind == "MappingStartEvent", 0])
        if problem:
            raise _fail(problem, filename, mark.line + 1, mark.column + 1)
        if kind in ("ScalarEvent", "AliasEvent") and stack:
            stack[-1][1] += 1


def _bad_scalar(text: str) -> tuple[int, int, str] | None:
    """Line, column and text of the first scalar the YAML constructor cannot build (slow; errors only)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode

    y = YAML(typ="rt", pure=True)
    try:
        for ev in y.parse(io.StringIO(text)):
            if type(ev).__name__ != "ScalarEvent":
                continue
            tag = ev.tag if ev.tag not in (None, "!") else y.resolver.resolve(ScalarNode, ev.value, ev.implicit)
            try:
                y.constructor.construct_object(ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style))
            except Exception:
                return ev.start_mark.line + 1, ev.start_mark.column + 1, ev.value
    except Exception:
        return None
    return None


def _clip(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "..."


# --- the marked tree to plain data ---------------------------------------------------------------


def to_plain(
    tree: Any,
    filename: str,
    limits: Limits = SPEC_LIMITS,
    *,
    str_keys: bool = False,
    join_surrogates: bool = False,
    memo: dict[int, Any] | None = None,
) -> Any:
    """ruamel's tree as plain dicts, lists and scalars; YAML floats keep their exact spelling.

    Aliased nodes are converted once and shared (pass the same ``memo`` for several documents of
    one stream), so an alias bomb stays small. Mapping keys stay str or int (``str_keys``: every
    key a str, ``1`` as ``'1'``). ``join_surrogates`` joins the UTF-16 surrogate pairs a JSON
    ``\\ud83d\\ude00`` escape leaves in a string and refuses a lone surrogate (it cannot be written
    as UTF-8). Raises :class:`SpecError`.
    """
    return _Plain(filename, limits, str_keys, join_surrogates, {} if memo is None else memo).run(tree, 0)


class _Plain:
    def __init__(self, filename: str, limits: Limits, str_keys: bool, join_surrogates: bool, memo: dict[int, Any]) -> None:
        self.filename = filename
        self.limits = limits
        self.str_keys = str_keys
        self.join = join_surrogates
        self.memo = memo

    def run(self, node: Any, depth: int) -> Any:
        if depth > self.limits.max_depth:
            line = getattr(getattr(node, "lc", None), "line", None)
            raise _fail(
                f"the YAML nests deeper than {self.limits.max_depth} levels",
                self.filename,
                line + 1 if isinstance(line, int) else None,
            )
        memo = self.memo
        if isinstance(node, (dict, list)) and id(node) in memo:
            return memo[id(node)]
        if isinstance(node, dict):
            out_d: dict[Any, Any] = {}
            memo[id(node)] = out_d
            for k, v in node.items():
                if k is None and not self.str_keys:  # `~:`, `null:` or `: x`: would become the text 'None'
                    marks: Any = node  # ruamel's CommentedMap: lc.key(k) is the key's (line, column)
                    try:
                        line, col = marks.lc.key(k)
                    except Exception:
                        line = col = None
                    raise _fail(
                        "a mapping key is null (`~`, `null` or nothing before ':')",
                        self.filename, None if line is None else line + 1, None if col is None else col + 1,
                        hint="quote the key if it is meant as text",
                    )
                out_d[self.key(k)] = self.run(v, depth + 1)
            return out_d
        if isinstance(node, list):
            out_l: list[Any] = []
            memo[id(node)] = out_l
            out_l.extend(self.run(v, depth + 1) for v in node)
            return out_l
        return self.scalar(node)

    def key(self, k: Any) -> Any:
        if isinstance(k, str):
            return self.text(str(k))
        if self.str_keys:
            return str(self.scalar(k))
        if isinstance(k, bool) or type(k).__name__ == "ScalarBoolean":
            return bool(k)
        return int(k) if isinstance(k, int) else str(k)

    def scalar(self, node: Any) -> Any:
        if isinstance(node, bool) or node is None:
            return node
        if type(node).__name__ == "ScalarBoolean":  # an anchored true/false (`&x true`): an int subclass
            return bool(node)
        if isinstance(node, float):
            # ruamel's ScalarFloat: the shortest round-trip spelling; keep it exact
            f = float(node)
            return Decimal(repr(f)) if f == f and f not in (float("inf"), float("-inf")) else f
        if isinstance(node, int):
            return int(node)
        if isinstance(node, str):
            return self.text(str(node))
        return str(node)  # timestamps (dates) as the text YAML read

    def text(self, s: str) -> str:
        if not self.join or not any("\ud800" <= c <= "\udfff" for c in s):
            return s
        try:
            return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            shown = _clip(s.encode("ascii", "backslashreplace").decode(), 60)
            raise _fail(
                f'the string "{shown}" holds a lone UTF-16 surrogate',
                self.filename,
                hint="a \\uD800-\\uDFFF escape must be half of a pair",
            ) from None


def load_plain(text: str, filename: str, limits: Limits = SPEC_LIMITS, **options: Any) -> Any:
    """One YAML document as plain data (see :func:`to_plain` for ``options``). Raises :class:`SpecError`."""
    return to_plain(load_marked(text, filename, limits), filename, limits, **options)


def read_plain_yaml(text: str, filename: str) -> Any:
    """Plain dicts, lists and scalars from YAML text. Raises :class:`vigil.errors.SpecError`."""
    return load_plain(text, filename)


# --- locations -----------------------------------------------------------------------------------


def where(tree: Any, loc: tuple) -> tuple[int | None, int | None]:
    """The 1-based line and column of the deepest node along ``loc`` that the marked tree has.

    A key of ``loc`` finds a mapping key equal to it, or one whose text is it (``'1'`` finds the key
    ``1``). A problem with the top-level mapping itself (a missing key) is placed where it starts.
    """
    line = col = None
    lc = getattr(tree, "lc", None)
    if lc is not None and isinstance(lc.line, int) and isinstance(lc.col, int):
        line, col = lc.line + 1, lc.col + 1
    node = tree
    for key in loc:
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        if isinstance(node, dict):
            rk = key if _has_key(node, key) else next((k for k in node if not isinstance(k, str) and str(k) == key), _MISSING)
            if rk is _MISSING:
                if line is None and isinstance(lc.line, int):
                    line, col = lc.line + 1, lc.col + 1
                break
            child = node[rk]
            try:
                ln, cl = lc.value(rk) if not isinstance(child, (dict, list)) else lc.key(rk)
            except (KeyError, TypeError, AttributeError, IndexError):
                ln, cl = lc.line, lc.col
            if isinstance(ln, int) and isinstance(cl, int):
                line, col = ln + 1, cl + 1
            node = child
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            try:
                ln, cl = lc.item(key)
                if isinstance(ln, int) and isinstance(cl, int):
                    line, col = ln + 1, cl + 1
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            node = node[key]
        else:
            if line is None and isinstance(lc.line, int):
                line, col = lc.line + 1, lc.col + 1
            break
    return line, col


_MISSING = object()


def _has_key(node: dict, key: Any) -> bool:
    try:
        return key in node
    except TypeError:  # an unhashable key in the path
        return False


def format_path(loc: tuple) -> str:
    """``('slos', 2, 'sli')`` as ``slos[2].sli``."""
    out = ""
    for k in loc:
        if isinstance(k, int):
            out += f"[{k}]"
        else:
            out += ("." if out else "") + str(k)
    return out


def located(pairs: list[tuple[tuple, str]], tree: Any, filename: str) -> list[SpecIssue]:
    """``(path, message)`` pairs as issues with the file, line and column of each path in ``tree``."""
    out = []
    for loc, msg in pairs:
        line, col = where(tree, loc)
        out.append(SpecIssue(format_path(loc), msg, file=filename, line=line, column=col))
    return out
