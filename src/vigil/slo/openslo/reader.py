"""OpenSLO documents from text: a stream of YAML (or JSON) documents, read through :mod:`vigil.yamlio`.

A document may also be a list of documents, as in the OpenSLO Go SDK's examples. Every document
keeps its plain data, its marked YAML tree (for line numbers) and its place in the stream. The
YAML rules are the spec's, with OpenSLO's limits: a tag other than the plain ones (``!custom``,
``!!python/object``, ``!!binary``) is refused, like an alias bomb, deep nesting or a duplicate key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vigil import yamlio
from vigil.errors import SpecError
from vigil.slo.openslo.common import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_DOCUMENTS, OpenSLOError, OpenSLOIssue

LIMITS = yamlio.Limits(
    max_bytes=MAX_BYTES,
    max_aliases=MAX_ALIASES,
    max_depth=MAX_DEPTH,
    max_documents=MAX_DOCUMENTS,
    what="an OpenSLO document",
    typical="an SLO document is about 1 KiB",
)
_SIZE_HINT = "split the file; an SLO document is about 1 KiB"


@dataclass
class Document:
    """One OpenSLO document: its plain data, the YAML node (for line numbers), where it is."""

    index: int
    data: Any
    node: Any
    file: str

    @property
    def kind(self) -> str | None:
        k = self.data.get("kind") if isinstance(self.data, dict) else None
        return k if isinstance(k, str) else None

    @property
    def name(self) -> str | None:
        md = self.data.get("metadata") if isinstance(self.data, dict) else None
        n = md.get("name") if isinstance(md, dict) else None
        return n if isinstance(n, str) else None


def parse_documents(data: bytes | str, *, filename: str = "<openslo>") -> list[Document]:
    """A YAML (or JSON) stream of OpenSLO documents. Raises :class:`OpenSLOError`."""
    try:
        text = yamlio.decode(data, filename, LIMITS)
        trees = yamlio.load_marked_all(text, filename, LIMITS)
        docs: list[Document] = []
        memo: dict[int, Any] = {}
        for tree in trees:
            if tree is None:
                continue
            for item in tree if isinstance(tree, list) else [tree]:
                if item is None:
                    continue
                if len(docs) >= MAX_DOCUMENTS:
                    raise OpenSLOError(
                        [OpenSLOIssue(f"more than {MAX_DOCUMENTS} documents", file=filename)], hint="split the file"
                    )
                plain = yamlio.to_plain(item, filename, LIMITS, str_keys=True, join_surrogates=True, memo=memo)
                docs.append(Document(len(docs) + 1, plain, item, filename))
    except SpecError as e:
        raise from_yaml_error(e) from None
    return docs


_SPEC_HINT = SpecError([]).hint


def from_yaml_error(e: SpecError) -> OpenSLOError:
    """The reader's :class:`SpecError` as an :class:`OpenSLOError` (same messages and places)."""
    hint = e.hint if e.hint != _SPEC_HINT else None
    if hint is None and any(i.message.startswith("larger than") for i in e.issues):
        hint = _SIZE_HINT
    if hint is None and any(i.message.endswith("YAML aliases") for i in e.issues):
        hint = "write the values out; an alias bomb is refused"
    if hint is None and any(i.message.startswith("YAML tag") for i in e.issues):
        hint = "remove the tag: OpenSLO documents are plain YAML (strings, numbers, lists, mappings)"
    return OpenSLOError(
        [OpenSLOIssue(i.message, path=i.path, file=i.file, line=i.line, column=i.column) for i in e.issues], hint=hint
    )
