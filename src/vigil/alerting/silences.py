"""Silences and maintenance windows: matchers, a start, an end, an author and a reason.

A silence mutes every alert its matchers all match while it is active (``starts_at <= t <
ends_at``); one that starts later is a maintenance window (``pending`` until it starts). Expiring a
silence ends it now (a pending one never starts). Nothing is deleted: the store keeps who silenced
what, why, and who ended it.

Muting happens at flush time, as in Alertmanager: a silenced alert is left out of its group's
notification; when the silence ends, the alert is notified at the group's next flush if the last
notification did not already list it (or when repeat_interval has passed).

The pure part (:class:`Silence`, :func:`silenced`, :func:`validate`) has no I/O; the store functions
below it read and write ``alert_silences``.
"""

from __future__ import annotations

import json
import secrets as _secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping, Sequence

from vigil.errors import NotFoundError, UsageError
from vigil.selector import Matcher, SelectorError

if TYPE_CHECKING:
    from sqlalchemy import Row

    from vigil.store import Store

MAX_SILENCE = timedelta(days=366)
MAX_REASON = 2000
STATES = ("pending", "active", "expired")


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str
    created_at: datetime
    expired_at: datetime | None = None
    expired_by: str | None = None

    def state(self, at: datetime) -> str:
        if self.ends_at <= at or (self.expired_at is not None and self.expired_at <= at):
            return "expired"
        if self.starts_at > at:
            return "pending"
        return "active"

    def active(self, at: datetime) -> bool:
        return self.state(at) == "active"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_dict(self, at: datetime) -> dict:
        from vigil.clock import isoformat

        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": isoformat(self.starts_at),
            "ends_at": isoformat(self.ends_at),
            "state": self.state(at),
            "created_by": self.created_by,
            "reason": self.reason,
            "created_at": isoformat(self.created_at),
            "expired_at": None if self.expired_at is None else isoformat(self.expired_at),
            "expired_by": self.expired_by,
        }


def silenced(alerts: Mapping[str, Mapping[str, str]], silences: Sequence[Silence], at: datetime) -> dict[str, list[str]]:
    """The fingerprints among ``alerts`` (fingerprint -> labels) an active silence mutes at ``at``,
    with the ids of the silences that do."""
    live = [s for s in silences if s.active(at)]
    out: dict[str, list[str]] = {}
    for fp, labels in alerts.items():
        ids = [s.id for s in live if s.matches(labels)]
        if ids:
            out[fp] = ids
    return out


def parse_matchers(texts: Sequence[str]) -> tuple[Matcher, ...]:
    from vigil.alerting.routing_spec import parse_matcher

    out = []
    for t in texts:
        try:
            out.append(parse_matcher(t))
        except SelectorError as e:
            raise UsageError(str(e), hint='a matcher is like alertname="search-down", service=~"api|web" or severity!="ticket"') from None
    return tuple(out)


def validate(matchers: Sequence[Matcher], starts_at: datetime, ends_at: datetime, created_by: str, reason: str, now: datetime) -> None:
    """Refuse a silence that would mute every alert, has no reason, no author, or ends before it starts."""
    if not matchers:
        raise UsageError("a silence needs at least one matcher", hint='like alertname="search-down" or service="search"')
    if all(m.matches({}) for m in matchers):
        raise UsageError(
            "these matchers match an alert with no labels at all, so the silence would mute every alert",
            hint='add a matcher that needs a value, like service="search"',
        )
    if not reason or not reason.strip():
        raise UsageError("a silence needs a reason (--reason): it is recorded with the author")
    from vigil.text import readable

    if not readable(reason, lines=True):
        raise UsageError("a silence's reason must be readable text: it holds control, invisible or bidi characters, or nothing visible")
    if len(reason) > MAX_REASON:
        raise UsageError(f"the reason is at most {MAX_REASON} characters")
    if not created_by:
        raise UsageError("a silence needs an author")
    if ends_at <= starts_at:
        raise UsageError("a silence must end after it starts", hint="pass --duration 2h or --until a later time")
    if ends_at <= now:
        raise UsageError("this silence would already be over", hint="pass an end in the future")
    if ends_at - starts_at > MAX_SILENCE:
        raise UsageError("a silence lasts at most 366 days")


# -- store ------------------------------------------------------------------------------------------


def _row_silence(r: Row) -> Silence:
    from vigil.clock import parse_time

    d = r._mapping
    return Silence(
        id=d["id"],
        matchers=parse_matchers(json.loads(d["matchers"])),
        starts_at=parse_time(d["starts_at"]),
        ends_at=parse_time(d["ends_at"]),
        created_by=d["created_by"],
        reason=d["reason"],
        created_at=parse_time(d["created_at"]),
        expired_at=None if d["expired_at"] is None else parse_time(d["expired_at"]),
        expired_by=d["expired_by"],
    )


def _ms(d: datetime) -> int:
    return int(round(d.timestamp() * 1000))


def add_silence(
    store: "Store", matchers: Sequence[Matcher], *, starts_at: datetime, ends_at: datetime, created_by: str, reason: str, now: datetime
) -> Silence:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_silences as t
    from vigil.clock import isoformat
    from vigil.store import db_errors

    validate(matchers, starts_at, ends_at, created_by, reason, now)
    s = Silence(f"s-{_secrets.token_hex(8)}", tuple(matchers), starts_at, ends_at, created_by[:200], reason.strip(), now)
    with db_errors("recording the silence failed"), store.engine.begin() as conn:
        conn.execute(
            sa.insert(t),
            [{
                "id": s.id, "matchers": json.dumps([str(m) for m in s.matchers]), "starts_at": isoformat(s.starts_at),
                "ends_at": isoformat(s.ends_at), "starts_ms": _ms(s.starts_at), "ends_ms": _ms(s.ends_at),
                "created_by": s.created_by, "reason": s.reason, "created_at": isoformat(now),
                "expired_at": None, "expired_by": None,
            }],
        )
    return s


def list_silences(store: "Store", *, at: datetime, states: Sequence[str] = STATES, limit: int = 1000) -> list[Silence]:
    """Silences in ``states`` at ``at``, newest first."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_silences as t
    from vigil.store import db_errors

    q = sa.select(t).order_by(t.c.created_at.desc(), t.c.id)
    if set(states) == {"pending", "active"}:
        q = q.where(t.c.ends_ms > _ms(at), t.c.expired_at.is_(None))
    with db_errors("reading silences failed"), store.engine.connect() as conn:
        rows = [_row_silence(r) for r in conn.execute(q)]
    return [s for s in rows if s.state(at) in states][:limit]


def active_silences(store: "Store", at: datetime) -> list[Silence]:
    return list_silences(store, at=at, states=("active",))


def get_silence(store: "Store", ident: str) -> Silence:
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_silences as t
    from vigil.store import db_errors

    with db_errors("reading silences failed"), store.engine.connect() as conn:
        r = conn.execute(sa.select(t).where(t.c.id == ident)).first()
    if r is None:
        raise NotFoundError(f"no silence {ident!r}", hint="vigil silence list shows their ids")
    return _row_silence(r)


def expire_silence(store: "Store", ident: str, *, by: str, now: datetime) -> Silence:
    """End a silence now (a pending one never starts). Expiring an expired silence changes nothing."""
    import sqlalchemy as sa

    from vigil.alerting.delivery_tables import alert_silences as t
    from vigil.clock import isoformat
    from vigil.store import db_errors

    s = get_silence(store, ident)
    if s.state(now) == "expired":
        return s
    ends = max(min(s.ends_at, now), s.starts_at) if s.starts_at <= now else s.starts_at
    with db_errors("expiring the silence failed"), store.engine.begin() as conn:
        conn.execute(
            sa.update(t).where(t.c.id == ident, t.c.expired_at.is_(None)).values(
                expired_at=isoformat(now), expired_by=by[:200], ends_at=isoformat(ends), ends_ms=_ms(ends)
            )
        )
    return get_silence(store, ident)
