"""PostgreSQL connection strings and connections: one place for all of vigil.

A connection string reaches vigil in either of libpq's two forms, and sometimes in SQLAlchemy's
spelling of the first:

* a URL: ``postgresql://user:secret@host:5432/db?sslmode=require`` (also ``postgres://`` and
  ``postgresql+psycopg://``), possibly with a password in the query (``?password=...``);
* key/value pairs: ``host=/run/postgresql port=5432 user=app password='s e c' dbname=app``.

:func:`redact` shows either form without its secrets (``password``, ``sslpassword``, the password
of a URL's user info, and the same inside a ``dbname`` that is itself a connection string);
:func:`scrub` removes a connection string's secret values from any text (a driver's error message
may quote the string it could not parse). :func:`connect` opens a psycopg connection and turns a
failure into a :class:`~vigil.errors.VigilError` whose message never carries a secret.

Pure except :func:`connect`; psycopg is imported only there.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from vigil.errors import ExternalError, UsageError, VigilError

__all__ = ["PgConnectError", "connect", "first_line", "is_url", "libpq_dsn", "parse_conninfo", "redact", "scrub", "secrets"]

SECRET_KEYS = frozenset({"password", "sslpassword"})
URL_PREFIXES = ("postgresql://", "postgres://")
_SQLALCHEMY = re.compile(r"^(postgresql|postgres)\+[A-Za-z0-9_]+://")
_URL_TOKEN = re.compile(r"(?:postgresql|postgres)(?:\+[A-Za-z0-9_]+)?://[^\s'\"]*")
_KV_SECRET = re.compile(r"(?:password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)")
MASK = "***"


class PgConnectError(ExternalError):
    """PostgreSQL refused the connection, timed out, or is not there."""

    code = "postgres-connect"


# --- forms ---------------------------------------------------------------------------------------


def libpq_dsn(dsn: str) -> str:
    """A connection string libpq understands: SQLAlchemy's ``postgresql+psycopg://`` becomes ``postgresql://``."""
    m = _SQLALCHEMY.match(dsn)
    return "postgresql://" + dsn[m.end():] if m else dsn


def is_url(dsn: str) -> bool:
    return libpq_dsn(dsn.strip()).startswith(URL_PREFIXES)


def parse_conninfo(text: str) -> list[tuple[str, str]]:
    """libpq's ``keyword = value`` form as pairs (in order). Values may be single-quoted, with
    ``\\'`` and ``\\\\`` escapes; unquoted values end at white space. Raises ValueError."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return pairs
        j = i
        while j < n and not text[j].isspace() and text[j] != "=":
            j += 1
        key = text[i:j]
        while j < n and text[j].isspace():
            j += 1
        if j >= n or text[j] != "=" or not key:
            raise ValueError(f'missing "=" after "{key}" in connection info string')
        j += 1
        while j < n and text[j].isspace():
            j += 1
        buf: list[str] = []
        if j < n and text[j] == "'":
            j += 1
            while True:
                if j >= n:
                    raise ValueError("unterminated quoted string in connection info string")
                c = text[j]
                if c == "\\" and j + 1 < n:
                    buf.append(text[j + 1])
                    j += 2
                elif c == "'":
                    j += 1
                    break
                else:
                    buf.append(c)
                    j += 1
        else:
            while j < n and not text[j].isspace():
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j + 1])
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
        pairs.append((key, "".join(buf)))
        i = j


def _quote(v: str) -> str:
    if v and not any(c.isspace() or c in "'\\=" for c in v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_dsn(key: str, v: str) -> bool:
    """A value that is itself a connection string: any URL, or a ``dbname`` holding ``=`` (libpq
    expands such a ``dbname``)."""
    return is_url(v) or (key == "dbname" and "=" in v)


# --- the URL form --------------------------------------------------------------------------------


def _split_url(url: str) -> tuple[str, str | None, str | None, str, list[tuple[str, str]]]:
    """``(scheme, user, password, rest, query pairs)``. The user info ends at the *last* ``@``, so
    a password holding an unescaped ``@``, ``/`` or ``?`` is still treated as secret."""
    scheme, _, body = url.partition("://")
    user = password = None
    at = body.rfind("@")
    if at >= 0:
        info, body = body[:at], body[at + 1:]
        user, sep, pw = info.partition(":")
        password = pw if sep else None
    rest, _, query = body.partition("?")
    params = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        params.append((k, v))
    return scheme, user, password, rest, params


# --- secrets -------------------------------------------------------------------------------------


def secrets(dsn: str) -> list[str]:
    """The secret values in a connection string (raw and percent-decoded), longest first. A URL
    anywhere inside it (a ``dbname`` that is a URL, or a URL pasted into key/value pairs) counts."""
    found: set[str] = set()
    s = libpq_dsn(dsn.strip())
    if is_url(s):
        _, _, password, _, params = _split_url(s)
        if password:
            found |= {password, unquote(password)}
        for k, v in params:
            if unquote(k) in SECRET_KEYS and v:
                found |= {v, unquote(v)}
            elif _is_dsn(unquote(k), unquote(v)):
                found |= set(secrets(unquote(v)))
    else:
        try:
            pairs = parse_conninfo(s)
        except ValueError:  # unreadable: take what looks like a secret
            pairs = []
            for m in _KV_SECRET.finditer(s):
                v = m.group(1)
                found |= {v, v.strip("'")}
            for m in _URL_TOKEN.finditer(s):
                found |= set(secrets(m.group(0)))
        for k, v in pairs:
            if k in SECRET_KEYS and v:
                found.add(v)
            elif v != s and _is_dsn(k, v):
                found |= set(secrets(v))
    return sorted((x for x in found if x), key=len, reverse=True)


def scrub(text: str, dsn: str) -> str:
    """``text`` with every secret value of ``dsn`` replaced by ``***``."""
    for s in secrets(dsn):
        text = text.replace(s, MASK)
    return text


def redact(dsn: str) -> str:
    """The connection string without its secrets, for messages and reports.

    A URL keeps its user, hosts, ports, database and non-secret query parameters
    (``postgresql://app@db:5432/app``); key/value pairs keep every pair but the secret ones."""
    s = libpq_dsn(dsn.strip())
    if not s:
        return "<empty connection string>"
    if is_url(s):
        _, user, _, rest, params = _split_url(s)
        kept = []
        for k, v in params:
            if unquote(k) in SECRET_KEYS:
                continue
            if _is_dsn(unquote(k), unquote(v)):
                v = redact(unquote(v))
            kept.append(f"{k}={v}" if v or "=" in k else k)
        shown = "postgresql://" + (f"{user}@" if user else "") + rest
        return scrub(shown + ("?" + "&".join(kept) if kept else ""), s)
    try:
        pairs = parse_conninfo(s)
    except ValueError:
        shown = _URL_TOKEN.sub(lambda m: redact(m.group(0)), _KV_SECRET.sub("", s))
        return scrub(" ".join(shown.split()), s) or "<unreadable connection string>"
    out = []
    for k, v in pairs:
        if k in SECRET_KEYS:
            continue
        if v != s and _is_dsn(k, v):
            v = redact(v)
        out.append(f"{k}={_quote(v)}")
    return scrub(" ".join(out), s)


# --- connecting ----------------------------------------------------------------------------------


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def connect(
    dsn: str,
    *,
    what: str = "PostgreSQL",
    hint: str | None = None,
    error: type[VigilError] = PgConnectError,
    autocommit: bool = True,
    connect_timeout: int = 10,
    application_name: str | None = None,
) -> Any:
    """A psycopg connection (autocommit by default).

    An unreadable connection string is a :class:`~vigil.errors.UsageError` (exit 2); a refused,
    timed-out or rejected connection is ``error`` (default :class:`PgConnectError`, exit 3). Both
    messages read ``cannot connect to <what> <redacted dsn>: <reason>`` with every secret removed,
    from the connection string and from the driver's reason alike."""
    import psycopg

    s = libpq_dsn((dsn or "").strip())
    shown = redact(s) if is_url(s) else f"({redact(s)})"
    if not s or ("://" not in s and "=" not in s):
        raise UsageError(f"{what}: {shown} is not a PostgreSQL connection string",
                         hint="use postgresql://user@host:5432/dbname or key=value pairs (host=... dbname=...)")
    kwargs: dict[str, Any] = {"autocommit": autocommit, "connect_timeout": connect_timeout}
    if application_name:
        kwargs["application_name"] = application_name
    try:
        return psycopg.connect(s, **kwargs)
    except psycopg.ProgrammingError as e:
        raise UsageError(f"{what}: invalid connection string {shown}: {scrub(first_line(e), s)}",
                         hint="use postgresql://user@host:5432/dbname or key=value pairs (host=... dbname=...)") from None
    except psycopg.Error as e:
        raise error(f"cannot connect to {what} {shown}: {scrub(first_line(e), s)}",
                    hint=hint or "check that the server runs, and the host, port, user and database") from None
