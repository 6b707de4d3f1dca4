"""Comparing the content of an index with its source of truth: per-document hashes, compared in ranges.

Pure functions over plain data (no I/O, no clock); :mod:`vigil.search.outbox` feeds them from the
database and the engine.

* A document's **digest** is 128 bits of BLAKE2b over its id and its canonical JSON (keys sorted,
  no whitespace, the top-level ``id`` left out because the key is hashed separately, integral floats
  written as integers so ``2.0`` and ``2`` agree). Two documents with the same digest are the same
  document as far as a search user can tell.
* The id space is cut into **ranges by the hex digits of SHA-256(id)**: range ``""`` holds every
  document, ``"a"`` the ids whose hash starts with ``a``, ``"a3"`` a sixteenth of those, down to
  leaves of ``depth`` digits. Hashing the id spreads any id shape (sequential numbers, UUIDs, slugs)
  evenly, needs no sort on either side (Typesense exports in its own order), and PostgreSQL computes
  the same range with ``left(encode(sha256(convert_to(id, 'UTF8')), 'hex'), depth)``, so the
  database sends only the documents of the ranges that differ.
* A range's **hash** is (the sum of its documents' digests modulo 2**128, the number of documents):
  order-independent, so each side accumulates it in one streaming pass in O(ranges) memory, and a
  parent range is the sum of its sixteen children.
* :func:`differing_leaves` compares the two trees from the root and descends only into ranges whose
  hashes differ, so 17 differences among a million documents cost a few hundred range comparisons,
  and only those leaves (a few dozen documents each) are read again document by document.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

MOD = 1 << 128
HEX = "0123456789abcdef"
MAX_DEPTH = 6
LEAF_TARGET = 32
"""Documents per leaf range the depth is chosen for."""


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 2**53:
            return int(v)
        return v
    if isinstance(v, dict):
        return {str(k): _norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def canonical(doc: dict[str, Any]) -> bytes:
    """The document as canonical JSON bytes, without its top-level ``id``."""
    body = {k: v for k, v in doc.items() if k != "id"}
    return json.dumps(_norm(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _parse_float(s: str) -> float | int:
    f = float(s)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def canonical_text(text: str | bytes) -> tuple[Any, bytes]:
    """(the document's ``id`` field or None, :func:`canonical` of it) for a document given as JSON
    text, without building it twice (integral floats become integers while parsing). Raises
    ValueError when the text is not a JSON object."""
    obj = json.loads(text, parse_float=_parse_float)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    did = obj.pop("id", None)
    return did, json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest_canonical(doc_id: str, canon: bytes) -> int:
    h = hashlib.blake2b(doc_id.encode(), digest_size=16)
    h.update(b"\x00")
    h.update(canon)
    return int.from_bytes(h.digest(), "big")


def digest(doc_id: str, doc: dict[str, Any]) -> int:
    """128-bit digest of one document (its id and content)."""
    return digest_canonical(doc_id, canonical(doc))


def digest_text(doc_id: str, text: str | bytes) -> int:
    """:func:`digest` of a document given as JSON text (the same value). Raises ValueError when the
    text is not a JSON object."""
    return digest_canonical(doc_id, canonical_text(text)[1])


def leaf_of(doc_id: str, depth: int) -> str:
    """The leaf range of an id: the first ``depth`` hex digits of SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(doc_id.encode()).hexdigest()[:depth]


def choose_depth(n: int, *, target: int = LEAF_TARGET) -> int:
    """Leaf depth (hex digits) so that leaves hold about ``target`` documents; 1..MAX_DEPTH."""
    if n <= target * 16:
        return 1
    return max(1, min(MAX_DEPTH, math.ceil(math.log(n / target, 16))))


@dataclass
class RangeHashes:
    """Leaf range hashes of one side: ``{leaf: [sum mod 2**128, count]}`` (empty leaves absent)."""

    depth: int
    leaves: dict[str, list[int]] = field(default_factory=dict)
    documents: int = 0

    def add(self, doc_id: str, d: int) -> None:
        leaf = leaf_of(doc_id, self.depth)
        slot = self.leaves.get(leaf)
        if slot is None:
            self.leaves[leaf] = [d, 1]
        else:
            slot[0] = (slot[0] + d) % MOD
            slot[1] += 1
        self.documents += 1

    def tree(self) -> dict[str, tuple[int, int]]:
        """Every non-empty range, from the root ``""`` to the leaves, with its (sum, count)."""
        out: dict[str, tuple[int, int]] = {}
        for leaf, (s, c) in self.leaves.items():
            for k in range(self.depth + 1):
                p = leaf[:k]
                old = out.get(p)
                out[p] = (s, c) if old is None else ((old[0] + s) % MOD, old[1] + c)
        return out


def differing_leaves(a: RangeHashes, b: RangeHashes) -> tuple[list[str], int]:
    """The leaves whose hashes differ, found by descending from the root only where ranges differ;
    and the number of range hashes compared on the way."""
    if a.depth != b.depth:
        raise ValueError(f"range trees of different depths ({a.depth} and {b.depth}) cannot be compared")
    ta, tb = a.tree(), b.tree()
    compared = 0
    out: list[str] = []
    stack = [""]
    while stack:
        p = stack.pop()
        compared += 1
        if ta.get(p) == tb.get(p):
            continue
        if len(p) == a.depth:
            out.append(p)
            continue
        stack.extend(c for c in (p + h for h in reversed(HEX)) if c in ta or c in tb)
    return sorted(out), compared


@dataclass
class Differences:
    """Ids that differ between the source of truth and the index, by kind, sorted."""

    missing: list[str] = field(default_factory=list)
    """In the source, not in the index."""
    modified: list[str] = field(default_factory=list)
    """In both, with different content."""
    ghost: list[str] = field(default_factory=list)
    """In the index, not in the source (deleted there, or never there)."""

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.modified) + len(self.ghost)

    def ids(self) -> list[str]:
        return sorted(self.missing + self.modified + self.ghost)


def classify(source: dict[str, int], index: dict[str, int]) -> Differences:
    """Compare ``{id: digest}`` of the source with the index's."""
    return Differences(
        missing=sorted(k for k in source if k not in index),
        modified=sorted(k for k, d in source.items() if k in index and index[k] != d),
        ghost=sorted(k for k in index if k not in source),
    )


def digests(pairs: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    return {k: digest(k, d) for k, d in pairs}


__all__ = [
    "Differences",
    "RangeHashes",
    "canonical",
    "choose_depth",
    "classify",
    "differing_leaves",
    "canonical_text",
    "digest",
    "digest_text",
    "digests",
    "leaf_of",
]
