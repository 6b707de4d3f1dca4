"""Text a person must be able to read as it is recorded: an override's reason, a waiver's reason and
owner, a silence's reason. Pure."""

from __future__ import annotations

_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def readable(text: str, *, lines: bool) -> bool:
    """Whether ``text`` reads as what it is: printable characters only (no control, format or bidi
    characters: a terminal escape, a zero-width space or a right-to-left override would show one
    thing and record another), line breaks and tabs only if ``lines``, and at least one visible
    character (not only spaces of any kind)."""
    allowed = "\n\t" if lines else ""
    if any(not (c.isprintable() or c in allowed) or c in _BIDI for c in text):
        return False
    return bool(text.strip())
