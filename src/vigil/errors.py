"""One error hierarchy. Every error vigil raises on purpose is a :class:`VigilError` with a hint.

The library raises these; only the CLI turns them into exit codes and only the web layer turns them
into the JSON error shape. ``code`` is a stable reference a user can search for.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil import exitcodes


class VigilError(Exception):
    """Base of every error vigil raises on purpose."""

    code = "vigil-error"
    exit_code = exitcodes.USAGE
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class UsageError(VigilError):
    """A flag, argument or request parameter is wrong."""

    code = "usage"


class NotFoundError(VigilError):
    """Something named by the user does not exist (a service, an SLO, a file)."""

    code = "not-found"
    http_status = 404


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec file: where it is and what is wrong."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class SpecError(VigilError):
    """The spec is invalid. ``issues`` holds every problem found, each with file, line and path."""

    code = "spec-invalid"

    def __init__(self, issues: list[SpecIssue], *, hint: str | None = None) -> None:
        self.issues = list(issues)
        n = len(self.issues)
        head = f"the spec has {n} problem{'s' if n != 1 else ''}"
        body = "\n".join(f"  {i}" for i in self.issues)
        super().__init__(
            f"{head}:\n{body}",
            hint=hint or "fix the lines above, then run `vigil check` again",
        )

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["issues"] = [i.to_dict() for i in self.issues]
        return d


class TelemetryError(VigilError):
    """A telemetry body cannot be read at all (not a single line could be considered)."""

    code = "telemetry-invalid"


class PayloadTooLarge(TelemetryError):
    code = "payload-too-large"
    http_status = 413


class AuthError(VigilError):
    code = "unauthorized"
    http_status = 401


class ForbiddenError(VigilError):
    """The token is valid but its role may not do this."""

    code = "forbidden"
    http_status = 403


class ExternalError(VigilError):
    """An external system failed: the database, a server, the network."""

    code = "external"
    exit_code = exitcodes.EXTERNAL
    http_status = 502


class StoreError(ExternalError):
    code = "store"
    http_status = 503
