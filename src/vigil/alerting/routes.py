"""The alerting routes of the JSON API (added by :func:`vigil.web.app.create_app`; loaded only by the
web app, so FastAPI is imported at its top).

* ``GET /api/v1/alerts`` (viewer): active alerts as of the last evaluation (``all=true``: resolved
  too; ``group=<key>``: the alerts of one notification group, as linked from notifications), the
  last evaluation, who leads;
* ``GET /api/v1/alerts/log`` (viewer): every delivery attempt, newest first (receiver, time, result,
  latency, delivery id), filtered by ``receiver``, ``key``, ``result``;
* ``GET /api/v1/silences`` (viewer): silences and maintenance windows (``state=``);
* ``POST /api/v1/silences`` (deployer or admin): add one (``match`` repeated, ``reason``,
  ``duration`` or ``until``, optional ``starts``); the author is the token's name;
* ``DELETE /api/v1/silences/{ident}`` (deployer or admin): expire one now; recorded with the token's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Callable

from fastapi import Query, Request

from vigil.clock import Clock, FakeClock, isoformat, parse_time
from vigil.errors import NotFoundError, UsageError

SILENCES = "/api/v1/silences"
SILENCE = "/api/v1/silences/{ident}"


def alerts_data(store: Any, *, all_: bool = False, group: str | None = None) -> dict:
    """The JSON of ``vigil alerts`` and GET /api/v1/alerts."""
    from vigil.alerting.leader import current
    from vigil.alerting.state import evaluations, instances

    states = ("pending", "firing", "resolved") if all_ else ("pending", "firing")
    rows = []
    for i in instances(store, states=states):
        d = i.alert().to_dict()
        d["since"] = d["fired_at"] if d["state"] == "firing" else d["active_at"] if d["state"] == "pending" else d["resolved_at"]
        rows.append(d)
    out: dict[str, Any] = {}
    if group is not None:
        from vigil.alerting.outbox import all_groups

        g = next((x for x in all_groups(store) if x.key == group), None)
        if g is None:
            raise NotFoundError(f"no alert group {group!r}", hint="the group's key is in the notification's link")
        fps = set(g.alerts) | set(g.notified_firing) | set(g.notified_resolved)
        rows = [r for r in rows if r["fingerprint"] in fps]
        out["group"] = {"key": g.key, "group_key": g.group_key, "receiver": g.receiver, "labels": g.labels,
                        "alerts": sorted(g.alerts), "notified_firing": sorted(g.notified_firing)}
    last = evaluations(store, limit=1)
    lease = current(store)
    out.update({
        "evaluated_at": last[0]["at"] if last else None,
        "errors": last[0]["errors"] if last else [],
        "leader": None if lease is None else {"holder": lease["holder"], "fence": lease["fence"]},
        "alerts": rows,
    })
    return out


def add_routes(app: Any, auth: Any, store: Any, spec: Any, clock: Clock, errors: Callable[..., dict]) -> None:
    from vigil.alerting.outbox import attempts_log
    from vigil.alerting.silences import STATES, add_silence, expire_silence, list_silences, parse_matchers

    @app.get("/api/v1/alerts", summary="Active alerts as of the last evaluation, and who leads", dependencies=[auth],
             responses=errors(400, 401, 403, 404))
    def alerts(
        all: Annotated[bool, Query(description="resolved alerts too")] = False,  # noqa: A002
        group: Annotated[str | None, Query(min_length=1, max_length=64, description="one notification group's alerts")] = None,
    ) -> dict:
        return alerts_data(store, all_=all, group=group)

    @app.get("/api/v1/alerts/log", summary="Every delivery attempt, newest first", dependencies=[auth], responses=errors(400, 401, 403))
    def alerts_log(
        receiver: Annotated[str | None, Query(max_length=200)] = None,
        key: Annotated[str | None, Query(max_length=200, description="a delivery id")] = None,
        result: Annotated[str | None, Query(pattern="^(delivered|retry|failed|fallback)$")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> dict:
        return {"attempts": attempts_log(store, limit=limit, receiver=receiver, key=key, result=result)}

    @app.get(SILENCES, summary="Silences and maintenance windows", dependencies=[auth], responses=errors(400, 401, 403))
    def silences_list(
        state: Annotated[str | None, Query(pattern="^(pending|active|expired)$")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> dict:
        now = clock.now()
        got = list_silences(store, at=now, states=(state,) if state else STATES, limit=limit)
        return {"at": isoformat(now), "silences": [s.to_dict(now) for s in got]}

    def real_now(what: str) -> datetime:
        if isinstance(clock, FakeClock):
            raise UsageError(
                f"this server runs on a pinned clock (VIGIL_NOW), and {what} is recorded at the real clock",
                hint="restart vigil serve without VIGIL_NOW",
            )
        return clock.now().replace(microsecond=0)

    @app.post(SILENCES, summary="Add a silence or a maintenance window (the author is the token's name)", dependencies=[auth],
              responses=errors(400, 401, 403))
    def silences_add(
        request: Request,
        match: Annotated[list[str], Query(min_length=1, max_length=20, description='matchers like service="search"')],
        reason: Annotated[str, Query(min_length=1, max_length=2000)],
        duration: Annotated[str | None, Query(max_length=32, description="how long, like 2h")] = None,
        until: Annotated[str | None, Query(max_length=64, description="when it ends: RFC 3339 or now+2h")] = None,
        starts: Annotated[str | None, Query(max_length=64, description="when it starts (default now): a maintenance window")] = None,
    ) -> dict:
        for bad in ("author", "created_by", "actor"):
            if bad in request.query_params:
                raise UsageError(f"`{bad}` is not accepted: the author is the token's name")
        now = real_now("a silence")
        begin, end = window(now, starts, duration, until)
        who = request.state.identity
        s = add_silence(store, parse_matchers(match), starts_at=begin, ends_at=end, created_by=f"token:{who.name}", reason=reason, now=now)
        return s.to_dict(now)

    @app.delete(SILENCE, summary="Expire a silence now (recorded with the token's name)", dependencies=[auth],
                responses=errors(400, 401, 403, 404))
    def silences_expire(request: Request, ident: str) -> dict:
        now = real_now("expiring a silence")
        s = expire_silence(store, ident[:40], by=f"token:{request.state.identity.name}", now=now)
        return s.to_dict(now)


def window(now: datetime, starts: str | None, duration: str | None, until: str | None) -> tuple[datetime, datetime]:
    """A silence's start and end from ``starts`` (default now) and one of ``duration`` or ``until``."""
    from datetime import timedelta

    from vigil.units import parse_duration

    if (duration is None) == (until is None):
        raise UsageError("give one of duration (like 2h) or until (a time)", hint="a silence always ends")
    begin = parse_time(starts, now=now) if starts else now
    if duration is not None:
        try:
            secs = parse_duration(duration)
        except ValueError as e:
            raise UsageError(f"cannot read duration {duration!r}: {e}", hint="like 30m, 2h or 1d") from None
        if secs <= 0:
            raise UsageError("the duration must be above 0")
        if secs > 366 * 86400:
            raise UsageError("a silence lasts at most 366 days")
        end = begin + timedelta(seconds=float(secs))
    else:
        assert until is not None
        end = parse_time(until, now=now)
    return begin, end
