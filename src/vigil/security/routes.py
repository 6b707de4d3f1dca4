"""The findings routes of the JSON API (added by :func:`vigil.web.app.create_app`; this module is
loaded only by the web app, so FastAPI is imported at its top, where FastAPI resolves annotations).

* ``GET /api/v1/findings`` (viewer): the ledger, newest first, with states, deadlines and waivers;
* ``GET /api/v1/findings/{ident}`` (viewer): one finding by id or fingerprint, with its releases;
* ``POST /api/v1/findings/{ident}/waive`` (deployer or admin): record a waiver; the actor is the
  token's name, the time the server's real clock.
"""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Callable

from fastapi import Query, Request

from vigil.clock import Clock, FakeClock, parse_time
from vigil.errors import UsageError

WAIVE_PATH = "/api/v1/findings/{ident}/waive"


def _expiry(text: str) -> datetime:
    t = text.strip()
    try:
        d = datetime.strptime(t, "%Y-%m-%d").date()
        return datetime.combine(d + timedelta(days=1), time(0), tzinfo=timezone.utc)
    except ValueError:
        pass
    try:
        return parse_time(t)
    except Exception:
        raise UsageError(f"expires: expected YYYY-MM-DD or an RFC 3339 time, got {text!r}") from None


def add_routes(app: Any, auth: Any, store: Any, spec: Any, clock: Clock, write_lock: threading.Lock, errors: Callable[..., dict]) -> None:
    from vigil.security.fixgate import finding_state
    from vigil.security.ledger import find, list_findings, waive

    @app.get("/api/v1/findings", summary="Security findings in the ledger, newest first", dependencies=[auth],
             responses=errors(400, 401, 403))
    def findings_list(
        service: Annotated[str | None, Query(max_length=128)] = None,
        release: Annotated[str | None, Query(max_length=200)] = None,
        state: Annotated[str | None, Query(pattern="^(open|waived|suppressed|fixed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        at: Annotated[str | None, Query(max_length=64, description="evaluate states and deadlines at this time (default now)")] = None,
    ) -> dict:
        when = parse_time(at, now=clock.now()) if at else clock.now()
        rows, waivers = list_findings(store, service=service, release=release, limit=limit)
        items = [finding_state(r, waivers.get((r["service"], r["fingerprint"])), when, spec.security) for r in rows]
        return {"at": when.isoformat().replace("+00:00", "Z"), "findings": [f for f in items if state is None or f["state"] == state]}

    @app.get("/api/v1/findings/{ident}", summary="One security finding, its releases and its waiver", dependencies=[auth],
             responses=errors(400, 401, 403, 404))
    def findings_show(
        ident: str,
        service: Annotated[str | None, Query(max_length=128)] = None,
        at: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict:
        when = parse_time(at, now=clock.now()) if at else clock.now()
        row, releases, waiver = find(store, ident[:64], service=service)
        f = finding_state(row, waiver, when, spec.security)
        f["releases"] = [{"release": r["release"], "id": r["id"], "first_seen": r["first_seen"], "fixed_at": r["fixed_at"]} for r in releases]
        return f

    @app.post(WAIVE_PATH, summary="Waive a security finding until a date (recorded with the token's name)", dependencies=[auth],
              responses=errors(400, 401, 403, 404))
    def findings_waive(
        request: Request,
        ident: str,
        reason: Annotated[str, Query(min_length=1, max_length=2000)],
        owner: Annotated[str, Query(min_length=1, max_length=200)],
        expires: Annotated[str, Query(min_length=1, max_length=64, description="last day (YYYY-MM-DD, UTC) or an RFC 3339 time")],
        service: Annotated[str | None, Query(max_length=128)] = None,
    ) -> dict:
        if "actor" in request.query_params:
            raise UsageError("`actor` is not accepted: the recorded actor is the token's name")
        if isinstance(clock, FakeClock):
            raise UsageError(
                "this server runs on a pinned clock (VIGIL_NOW), and a waiver is recorded at the real clock",
                hint="restart vigil serve without VIGIL_NOW",
            )
        who = request.state.identity
        max_waiver = spec.security.max_waiver if spec.security is not None else Decimal(90 * 86400)
        with write_lock:
            row, _, _ = find(store, ident[:64], service=service)
            now = clock.now()
            w = waive(store, service=row["service"], fingerprint=row["fingerprint"], reason=reason, owner=owner,
                      expires=_expiry(expires), at=now, max_waiver=max_waiver, actor=f"token:{who.name}")
        return {"finding": row["id"], "fingerprint": row["fingerprint"], "service": row["service"], "waiver": w}
