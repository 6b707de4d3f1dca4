"""The one hardened YAML reader: bounded size, depth, nodes and aliases, plain tags only.

Every YAML vigil reads (the spec, OpenSLO documents, the tokens file) goes through here, so a
``!custom`` tag or an alias bomb is refused the same way everywhere.
"""

from __future__ import annotations

from typing import Any


def read_plain_yaml(text: str, filename: str) -> Any:
    """Plain dicts, lists and scalars from YAML text. Raises :class:`vigil.errors.SpecError`."""
    from vigil.spec import _plain, _read_yaml

    return _plain(_read_yaml(text, filename), 0, filename, {})
