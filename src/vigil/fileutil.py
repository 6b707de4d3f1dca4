"""Small file helpers shared by capabilities (no third-party imports)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["Digest", "sha256_file"]

CHUNK = 1 << 20


class Digest(NamedTuple):
    """A file's SHA-256 (hex) and its size in bytes; unpacks as ``digest, size = sha256_file(p)``."""

    sha256: str
    size: int


def sha256_file(path: str | os.PathLike[str]) -> Digest:
    """SHA-256 and size of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    n = 0
    with open(Path(path), "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
            n += len(chunk)
    return Digest(h.hexdigest(), n)
