"""API tokens and roles. Pure except :func:`load_tokens_file`, which reads the tokens file.

Roles are ordered; each has everything of the roles before it:

- ``viewer``: read (SLO status, what-if gate answers, the gate log, the spec)
- ``pusher``: also push telemetry
- ``deployer``: also record gate decisions (POST /api/v1/gate), overrides and silences
- ``admin``: everything

A tokens file (YAML) names each token and its role, and holds only the token's SHA-256, never the
token itself (``vigil token add`` writes it)::

    tokens:
      - {name: ci-deploy, role: deployer, sha256: 9f86d08...}
      - {name: grafana, role: viewer, sha256: 60303ae...}

Without a tokens file, one anonymous token is the single user's admin token (named ``admin``).
The recorded actor of anything done through the API is the token's name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vigil.errors import UsageError

Role = Literal["viewer", "pusher", "deployer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "pusher", "deployer", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role

    def can(self, role: Role) -> bool:
        """Does this identity have ``role`` (or a higher one)?"""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: Role
    sha256: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Tokens:
    """The tokens a server accepts. Comparison is by SHA-256 digest, in constant time."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        if not entries:
            raise UsageError("no API tokens", hint="add one with `vigil token add --name NAME --role ROLE`")
        names = [e.name for e in entries]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UsageError(f"duplicate token name {dup[0]!r} in the tokens file")
        by_digest: dict[str, str] = {}
        for e in entries:  # one token, two entries: it would be whichever came last (maybe an admin)
            if e.sha256 in by_digest:
                raise UsageError(
                    f"tokens {by_digest[e.sha256]!r} and {e.name!r} are the same token (one SHA-256 twice in the tokens file)",
                    hint="give each name its own token: vigil token remove, then vigil token add",
                )
            by_digest[e.sha256] = e.name
        self.entries = list(entries)

    @classmethod
    def single(cls, token: str, name: str = "admin") -> "Tokens":
        """One anonymous admin token: the default for a single user."""
        if len(token) < MIN_TOKEN_LENGTH:
            raise UsageError(f"the API token must be at least {MIN_TOKEN_LENGTH} characters")
        return cls([TokenEntry(name, "admin", digest(token))])

    def authenticate(self, presented: str) -> Identity | None:
        d = digest(presented).encode()
        found: Identity | None = None
        for e in self.entries:  # every entry is compared: the time does not tell which matched
            if hmac.compare_digest(d, e.sha256.encode()):
                found = Identity(e.name, e.role)
        return found


def parse_tokens(data: object, source: str) -> Tokens:
    """Tokens from the plain data of a tokens file."""
    if not isinstance(data, dict) or set(data) != {"tokens"} or not isinstance(data["tokens"], list):
        raise UsageError(f"{source}: a tokens file is a mapping with one key, `tokens`, holding a list")
    out: list[TokenEntry] = []
    for i, item in enumerate(data["tokens"]):
        where = f"{source}: tokens[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "role", "sha256"} or not {"name", "role", "sha256"} <= set(item):
            raise UsageError(f"{where}: each token has exactly `name`, `role` and `sha256`")
        name, role, sha = item["name"], item["role"], item["sha256"]
        if not isinstance(name, str) or not NAME.match(name):
            raise UsageError(f"{where}.name: {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
        if role not in ROLES:
            raise UsageError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise UsageError(
                f"{where}.sha256: must be the 64 hex digits of the token's SHA-256 (never the token itself)",
                hint="`vigil token add` writes entries for you",
            )
        out.append(TokenEntry(name, role, sha))
    return Tokens(out)


def load_tokens_file(path: str | Path) -> Tokens:
    """Read a tokens file (YAML). It must be private (0600), like every secret file."""
    from vigil.secrets import check_private
    from vigil.yamlio import read_plain_yaml

    p = Path(path)
    check_private(p, "tokens file")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the tokens file {p}: {e.strerror or e}") from None
    return parse_tokens(read_plain_yaml(text, str(p)), str(p))
