"""Database spans for psycopg 3: a CLIENT span per statement, under whatever span is current.

    conn = vigil.instrument.db.connect("postgresql://...")       # or
    conn = psycopg.connect(url, cursor_factory=TracedCursor)
    conn.execute("SELECT ...")                                   # one span

Each span follows the database semantic conventions: ``db.system`` / ``db.system.name``
``postgresql``, ``db.namespace`` (the database), ``db.operation.name`` (the statement's first
keyword), ``db.query.text`` (the statement as sent, parameters never included, cut at 2,000
characters), ``server.address`` and ``server.port``; named ``OPERATION database``. A failed
statement marks the span an error (``error.type`` the SQLSTATE or the exception's class).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

MAX_QUERY = 2000
_FIRST_WORD = re.compile(r"\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*([A-Za-z]+)", re.S)


def _operation(query: Any) -> str:
    if isinstance(query, bytes):
        query = query.decode("utf-8", "replace")
    elif not isinstance(query, str):  # psycopg.sql.Composable
        query = str(query)
    m = _FIRST_WORD.match(query)
    return m.group(1).upper() if m else "QUERY"


def _text(query: Any, conn: Any) -> str:
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")[:MAX_QUERY]
    if isinstance(query, str):
        return query[:MAX_QUERY]
    try:
        return query.as_string(conn)[:MAX_QUERY]
    except Exception:
        return str(query)[:MAX_QUERY]


class TracedCursor(psycopg.Cursor):
    """A psycopg cursor whose ``execute`` and ``executemany`` run in a CLIENT span."""

    tracer: Any = None

    def _span(self, query: Any, many: bool = False) -> Any:
        from opentelemetry import trace

        tr = self.tracer or trace.get_tracer("vigil.instrument.db")
        info = self.connection.info
        op = _operation(query)
        attrs: dict[str, Any] = {
            "db.system": "postgresql",
            "db.system.name": "postgresql",
            "db.namespace": info.dbname,
            "db.operation.name": op,
            "db.query.text": _text(query, self.connection),
            "server.address": info.host,
            "server.port": int(info.port),
        }
        if many:
            attrs["db.operation.batch"] = True
        return tr.start_as_current_span(f"{op} {info.dbname}", kind=trace.SpanKind.CLIENT, attributes=attrs,
                                        record_exception=False, set_status_on_exception=False)

    def _run(self, fn: Any, query: Any, *args: Any, many: bool = False, **kw: Any) -> Any:
        from opentelemetry.trace import Status, StatusCode

        with self._span(query, many) as span:
            try:
                return fn(query, *args, **kw)
            except Exception as e:
                state = getattr(getattr(e, "diag", None), "sqlstate", None)
                span.set_attribute("error.type", state or type(e).__name__)
                if state:
                    span.set_attribute("db.response.status_code", state)
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                raise

    def execute(self, query: Any, *args: Any, **kw: Any) -> Any:
        return self._run(super().execute, query, *args, **kw)

    def executemany(self, query: Any, *args: Any, **kw: Any) -> Any:
        return self._run(super().executemany, query, *args, many=True, **kw)


def connect(conninfo: str = "", **kwargs: Any) -> psycopg.Connection:
    """``psycopg.connect`` with :class:`TracedCursor`: every statement is a span."""
    kwargs.setdefault("cursor_factory", TracedCursor)
    return psycopg.connect(conninfo, **kwargs)
