"""What every part of the OpenSLO conversion shares: the names it reads and writes, its limits, and
its one error type (each problem names the file, line, document and field)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vigil.errors import VigilError

API_VERSION = "openslo/v1"
ANNOTATION_PREFIX = "vigil.dev/"
A_EXCLUDE = "vigil.dev/exclude"
A_MISSING = "vigil.dev/missing"
A_DESCRIPTION = "vigil.dev/description"
A_OWNER = "vigil.dev/owner"
A_TIER = "vigil.dev/tier"
SLI_ANNOTATIONS = (A_EXCLUDE, A_MISSING)
KNOWN_ANNOTATIONS = (A_EXCLUDE, A_MISSING, A_DESCRIPTION, A_OWNER, A_TIER)

CALENDAR_START = "2024-01-01 00:00:00"
"""A Monday, and the first day of a month, a quarter and a year: a period start for every calendar."""
CALENDAR_DURATION = {"week": "1w", "month": "1M", "quarter": "1Q"}
CALENDAR_KIND = {v: k for k, v in CALENDAR_DURATION.items()}
PROMQL_TYPES = {"prometheus": "Prometheus", "thanos": "Thanos", "mimir": "Mimir", "cortex": "Cortex", "victoriametrics": "VictoriaMetrics"}
OPENSLO_KINDS = ("SLO", "SLI", "Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
MAX_DESCRIPTION = 1050
MAX_BYTES = 1024 * 1024
MAX_DOCUMENTS = 10_000
MAX_ALIASES = 200
MAX_DEPTH = 64
MAX_LISTED = 50

SHORTHAND = re.compile(r"^([1-9][0-9]{0,8})([mhdwMQY])$")
SHORTHAND_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
RFC1123 = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

Loc = tuple


@dataclass(frozen=True)
class OpenSLOIssue:
    """One problem (or warning) in an OpenSLO file: where, which document, which field, what."""

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    document: int | None = None
    kind: str | None = None
    name: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file or "<openslo>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [where]
        if self.document is not None:
            what = f"document {self.document}"
            if self.kind:
                kind = short(self.kind, 40)
                what = f"{kind} {short(self.name, 80)!r} ({what})" if self.name else f"{kind} ({what})"
            parts.append(what)
        if self.path:
            parts.append(self.path)
        out = ": ".join(parts) + ": " + self.message
        if self.hint:
            out += f" (hint: {self.hint})"
        return out

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "document": self.document,
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class OpenSLOError(VigilError):
    """OpenSLO input that cannot become a vigil spec. ``issues`` holds every problem found."""

    code = "openslo-invalid"

    def __init__(self, issues: list[OpenSLOIssue], *, hint: str | None = None) -> None:
        self.issues = list(issues)
        n = len(self.issues)
        head = f"cannot import the OpenSLO documents: {n} problem{'s' if n != 1 else ''}"
        body = "\n".join(f"  {i}" for i in self.issues[:MAX_LISTED])
        if n > MAX_LISTED:
            body += f"\n  ... and {n - MAX_LISTED} more (--json lists them all)"
        super().__init__(
            f"{head}:\n{body}",
            hint=hint
            or "fix or remove the fields above; the mapping and what vigil cannot import are listed in "
            "`vigil openslo import --help`",
        )

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["issues"] = [i.to_dict() for i in self.issues]
        return d


def short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def format_loc(loc: Loc) -> str:
    """``('spec', 'objectives', 0, 'op')`` as ``spec.objectives[0].op``; a key that is not a name is
    written quoted: ``metadata.annotations['vigil.dev/exclude']``."""
    out = ""
    for k in loc:
        if isinstance(k, int):
            out += f"[{k}]"
        elif isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            out += ("." if out else "") + k
        else:
            out += f"[{k!r}]"
    return out


def kind_of(v: Any) -> str:
    """What a value is, for "expected X, got Y"."""
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if v is None:
        return "null"
    if isinstance(v, (int, Decimal, float)):
        return f"a number ({v})"
    if isinstance(v, str):
        return f"a string ({short(v)!r})"
    return type(v).__name__
