"""``GET /api/v1/traces/{trace_id}`` (viewer): a trace as a tree with timings (added by
:func:`vigil.web.app.create_app`; loaded only by the web app, so FastAPI is imported at its top).
The answer is :meth:`vigil.traces.tree.Tree.to_dict`: spans flat in waterfall order (depth first,
children under their parent by start time) with ``depth``, ``offset_ms``, ``duration_ms`` and
``children``; roots whose parent never arrived are marked ``parent_missing``."""

from __future__ import annotations

import re
from typing import Any, Callable

from fastapi import Path

from vigil.errors import NotFoundError, UsageError
from vigil.traces.store import read_trace

TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")


def check_trace_id(trace_id: str) -> str:
    t = trace_id.strip()
    if not TRACE_ID.fullmatch(t) or set(t) == {"0"}:
        raise UsageError(
            f"{trace_id[:64]!r} is not a trace id", hint="a trace id is 32 hex digits (W3C trace-context), not all zero"
        )
    return t.lower()


def add_routes(app: Any, auth: Any, store: Any, errors: Callable[..., dict]) -> None:
    @app.get(
        "/api/v1/traces/{trace_id}", summary="A trace as a tree with timings (waterfall order)", dependencies=[auth],
        responses=errors(400, 401, 404),
    )
    def trace_get(trace_id: str = Path(max_length=64, description="32 hex digits")) -> dict:
        tid = check_trace_id(trace_id)
        tree = read_trace(store, tid)
        if not tree.spans:
            raise NotFoundError(
                f"no span of trace {tid} is stored", hint="traces are kept for telemetry.traces.retention; check the id and that the exporter points at this server"
            )
        return tree.to_dict()
