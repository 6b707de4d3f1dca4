"""Routing and grouping with Alertmanager's semantics, as a pure state machine.

No I/O, no clock: every function takes the time (epoch milliseconds) it runs at, and returns new
state. :mod:`vigil.alerting.dispatch` loads the state from the store, calls these, and writes the
outcome (and the notifications) back in one transaction.

**The route tree** (Alertmanager's ``dispatch/route.go``): an alert enters at the root and goes
down, depth first, left to right. A child whose matchers hold takes it; the search stops at the
first child that took it unless that child has ``continue: true``. A node none of whose children
took the alert takes it itself. A child inherits the receiver, ``group_by`` and the timers it does
not set. The route's key is its parent's key, ``/`` and its matchers (``{}/{severity="page"}``).

**Aggregation groups** (``dispatch/dispatch.go``, ``dispatch/group.go``): an alert matched by a
route joins the group of that route holding its values of the ``group_by`` labels. A new group
flushes for the first time ``group_wait`` after it was created (at once if its alert began longer
than ``group_wait`` ago and it never flushed), then every ``group_interval``. A flush looks at
every alert of the group, leaves out the muted ones (silenced or inhibited), and decides with the
notification log (``notify/notify.go``, ``DedupStage.needsUpdate``) whether to notify:

- never notified before: only if something fires (so a resolve inside group_wait is never sent);
- something fires that the last notification did not list as firing: notify;
- nothing fires now: notify only if the last notification listed firing alerts (all resolved);
- resolved alerts the last notification did not list (and the receiver sends resolutions): notify;
- else only when ``repeat_interval`` has passed since the last notification.

After a flush the resolved alerts it covered leave the group; an empty group stops its timer (its
notification log is kept, as Alertmanager's nflog outlives the group).

**Acknowledge** (vigil's own): when every alert of a group that was notified as firing is
silenced, the group's receivers that can (PagerDuty) get one ``acknowledge``: someone is on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from vigil.selector import Matcher

TRIGGER = "trigger"
RESOLVE = "resolve"
ACKNOWLEDGE = "acknowledge"
HEARTBEAT = "heartbeat"
ACTIONS = (TRIGGER, ACKNOWLEDGE, RESOLVE, HEARTBEAT)


def ms(seconds: Decimal | int | float) -> int:
    return int(Decimal(str(seconds)) * 1000)


def label_set_text(labels: Mapping[str, str]) -> str:
    """A label set as Alertmanager prints it: ``{alertname="x", service="api"}``."""
    return "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())) + "}"


def _matchers_text(ms_: Sequence[Matcher]) -> str:
    return "{" + ",".join(str(m) for m in sorted(ms_, key=lambda m: (m.name, m.op, m.value))) + "}"


@dataclass(frozen=True)
class RouteNode:
    """A route with everything inherited filled in."""

    id: str
    key: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_by_all: bool
    group_wait_ms: int
    group_interval_ms: int
    repeat_interval_ms: int
    continue_: bool
    children: tuple["RouteNode", ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by_all:
            return dict(labels)
        return {k: v for k, v in labels.items() if k in self.group_by}

    def walk(self) -> Iterable["RouteNode"]:
        yield self
        for c in self.children:
            yield from c.walk()


def build_tree(route: Any, *, defaults: tuple[Decimal, Decimal, Decimal] | None = None) -> RouteNode:
    """The tree of an :class:`~vigil.alerting.routing_spec.Route` (the root must name a receiver)."""
    from vigil.alerting.routing_spec import DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL

    gw, gi, ri = defaults or (DEFAULT_GROUP_WAIT, DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL)
    if route.receiver is None:
        raise ValueError("the root route needs a receiver")
    return _node(route, None, "0", route.receiver, (), False, ms(gw), ms(gi), ms(ri))


def _node(r: Any, parent_key: str | None, rid: str, receiver: str, group_by: tuple[str, ...], by_all: bool,
          gw: int, gi: int, ri: int) -> RouteNode:
    receiver = r.receiver or receiver
    if r.group_by is not None:
        by_all = list(r.group_by) == ["..."]
        group_by = () if by_all else tuple(r.group_by)
    gw = ms(r.group_wait) if r.group_wait is not None else gw
    gi = ms(r.group_interval) if r.group_interval is not None else gi
    ri = ms(r.repeat_interval) if r.repeat_interval is not None else ri
    matchers = tuple(r.matchers) if parent_key is not None else ()
    key = (parent_key + "/" if parent_key is not None else "") + _matchers_text(matchers)
    node = RouteNode(rid, key, receiver, matchers, group_by, by_all, gw, gi, ri, bool(getattr(r, "continue_", False)))
    kids = tuple(_node(c, key, f"{rid}/{i}", receiver, group_by, by_all, gw, gi, ri) for i, c in enumerate(r.routes))
    return replace(node, children=kids)


def match(node: RouteNode, labels: Mapping[str, str]) -> list[RouteNode]:
    """The routes that take an alert (Alertmanager's ``Route.Match``)."""
    if not node.matches(labels):
        return []
    out: list[RouteNode] = []
    for c in node.children:
        got = match(c, labels)
        out.extend(got)
        if got and not c.continue_:
            break
    return out or [node]


# -- groups ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupAlert:
    """An alert as a group holds it: the newest transition seen for its fingerprint."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # firing | resolved
    starts_ms: int
    ends_ms: int | None
    value: str | None
    seq: int

    @property
    def resolved(self) -> bool:
        return self.state == "resolved"

    def to_json(self) -> dict:
        return {
            "fingerprint": self.fingerprint, "rule": self.rule, "labels": self.labels, "annotations": self.annotations,
            "state": self.state, "starts_ms": self.starts_ms, "ends_ms": self.ends_ms, "value": self.value, "seq": self.seq,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "GroupAlert":
        return cls(d["fingerprint"], d["rule"], dict(d["labels"]), dict(d["annotations"]), d["state"], int(d["starts_ms"]),
                   None if d.get("ends_ms") is None else int(d["ends_ms"]), d.get("value"), int(d.get("seq", 0)))


def group_alert(alert: Any) -> GroupAlert | None:
    """The :class:`GroupAlert` of a transition (:class:`vigil.alerting.model.Alert`), or None for one
    that is never notified (pending, or resolved without having fired)."""
    if not alert.notifiable:
        return None

    def t(d: Any) -> int | None:
        return None if d is None else int(round(d.timestamp() * 1000))

    starts = t(alert.fired_at) or t(alert.active_at) or t(alert.at) or 0
    ends = t(alert.resolved_at) if alert.state == "resolved" else None
    if alert.state == "resolved" and ends is None:
        ends = t(alert.at) or starts
    return GroupAlert(alert.fingerprint, alert.rule, dict(alert.labels), dict(alert.annotations), alert.state, starts, ends,
                      None if alert.value is None else str(alert.value), alert.seq)


def storage_key(route_id: str, labels: Mapping[str, str]) -> str:
    return hashlib.sha256(f"{route_id}\x00{label_set_text(labels)}".encode()).hexdigest()


def dedup_key(group_key: str, receiver: str) -> str:
    """A stable incident key per alert group and receiver (PagerDuty's ``dedup_key``)."""
    return hashlib.sha256(f"{group_key}\x00{receiver}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Group:
    """An aggregation group and its notification log entry."""

    key: str
    group_key: str
    route_id: str
    receiver: str
    labels: dict[str, str]
    group_wait_ms: int
    group_interval_ms: int
    repeat_interval_ms: int
    alerts: dict[str, GroupAlert] = field(default_factory=dict)
    next_flush_ms: int | None = None
    has_flushed: bool = False
    flushes: int = 0
    notified_firing: frozenset[str] = frozenset()
    notified_resolved: frozenset[str] = frozenset()
    notified_ms: int | None = None
    acked: bool = False

    @property
    def empty(self) -> bool:
        return not self.alerts

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.group_key, self.receiver)


def new_group(route: RouteNode, labels: Mapping[str, str]) -> Group:
    gl = route.group_labels(labels)
    return Group(
        storage_key(route.id, gl), f"{route.key}:{label_set_text(gl)}", route.id, route.receiver, gl,
        route.group_wait_ms, route.group_interval_ms, route.repeat_interval_ms,
    )


def insert(group: Group, alert: GroupAlert, at_ms: int, now_ms: int) -> Group:
    """The group with ``alert`` set (a newer transition of the same fingerprint replaces it).

    A group without a timer (new, or emptied by its last flush) starts one: ``group_wait`` after
    ``at_ms`` (the transition's time). A group that never flushed flushes at once when the alert
    began more than ``group_wait`` before ``now_ms`` (Alertmanager's ``aggrGroup.insert``)."""
    old = group.alerts.get(alert.fingerprint)
    if old is not None and old.seq > alert.seq:
        return group  # an older transition seen late changes nothing
    if alert.resolved and old is None:
        # a resolve of an alert this group does not hold (it never fired here, or its resolve was
        # already covered): nothing to tell this group's receiver
        return group
    alerts = dict(group.alerts)
    alerts[alert.fingerprint] = alert
    nxt, flushed = group.next_flush_ms, group.has_flushed
    if nxt is None:
        nxt, flushed = at_ms + group.group_wait_ms, False
    if not flushed and alert.starts_ms + group.group_wait_ms < now_ms:
        nxt = min(nxt, now_ms)
    return replace(group, alerts=alerts, next_flush_ms=nxt, has_flushed=flushed)


@dataclass(frozen=True)
class Notification:
    """One notification of a group to its receiver, decided by a flush."""

    key: str  # the delivery id: stable, unique
    group: str  # the group's storage key
    group_key: str
    receiver: str
    dedup_key: str
    action: str
    reason: str
    at_ms: int
    group_labels: dict[str, str]
    alerts: tuple[GroupAlert, ...]

    @property
    def firing(self) -> list[GroupAlert]:
        return [a for a in self.alerts if not a.resolved]

    @property
    def resolved(self) -> list[GroupAlert]:
        return [a for a in self.alerts if a.resolved]

    def payload(self) -> dict:
        """What the outbox stores: everything a receiver renders from."""
        return {
            "key": self.key, "group": self.group, "group_key": self.group_key, "receiver": self.receiver,
            "dedup_key": self.dedup_key, "action": self.action, "reason": self.reason, "at_ms": self.at_ms,
            "group_labels": self.group_labels, "alerts": [a.to_json() for a in self.alerts],
        }


def needs_update(g: Group, firing: set[str], resolved: set[str], send_resolved: bool, now_ms: int) -> str | None:
    """Why to notify, or None (Alertmanager's ``DedupStage.needsUpdate``)."""
    if g.notified_ms is None:
        return "first notification" if firing else None
    if not firing <= g.notified_firing:
        return "first notification" if not g.notified_firing else "new alerts in the group"
    if not firing:
        return "all alerts resolved" if g.notified_firing else None
    if send_resolved and not resolved <= g.notified_resolved:
        return "some alerts resolved"
    if g.notified_ms < now_ms - g.repeat_interval_ms:
        return "repeat interval elapsed"
    return None


@dataclass(frozen=True)
class Flush:
    group: Group
    notification: Notification | None
    muted: tuple[str, ...] = ()
    reason: str | None = None


def flush(
    g: Group,
    now_ms: int,
    *,
    silenced: set[str] | frozenset[str] = frozenset(),
    inhibited: set[str] | frozenset[str] = frozenset(),
    send_resolved: bool = True,
    can_acknowledge: bool = False,
) -> Flush:
    """The group's flush at ``now_ms`` (its timer fired): the next timer, the notification if one
    is due, the group without the resolved alerts this flush covered."""
    if g.empty:
        return Flush(replace(g, next_flush_ms=None), None)
    g = replace(g, next_flush_ms=now_ms + g.group_interval_ms, has_flushed=True)
    alerts = sorted(g.alerts.values(), key=lambda a: (a.labels.get("alertname", ""), a.fingerprint))
    muted = {a.fingerprint for a in alerts if a.fingerprint in silenced or a.fingerprint in inhibited}
    visible = [a for a in alerts if a.fingerprint not in muted]
    resolved_fps = {a.fingerprint for a in alerts if a.resolved}
    note: Notification | None = None
    reason: str | None = None
    if visible:
        firing = {a.fingerprint for a in visible if not a.resolved}
        resolved = {a.fingerprint for a in visible if a.resolved}
        reason = needs_update(g, firing, resolved, send_resolved, now_ms)
        if reason is not None:
            sent = tuple(a for a in visible if send_resolved or not a.resolved)
            if sent:
                action = TRIGGER if firing else RESOLVE
                note = _note(g, action, reason, now_ms, sent)
                g = replace(g, flushes=g.flushes + 1, acked=False if action == TRIGGER else g.acked)
            g = replace(g, notified_firing=frozenset(firing), notified_resolved=frozenset(resolved), notified_ms=now_ms)
    elif can_acknowledge and g.notified_firing and not g.acked:
        firing_now = [a for a in alerts if not a.resolved]
        if firing_now and all(a.fingerprint in silenced for a in firing_now):
            reason = "every firing alert is silenced"
            note = _note(g, ACKNOWLEDGE, reason, now_ms, tuple(firing_now))
            g = replace(g, flushes=g.flushes + 1, acked=True)
    # the resolved alerts this flush covered leave the group (Alertmanager: DeleteIfNotModified)
    left = {fp: a for fp, a in g.alerts.items() if fp not in resolved_fps}
    g = replace(g, alerts=left, next_flush_ms=None if not left else g.next_flush_ms)
    return Flush(g, note, tuple(sorted(muted)), reason)


def _note(g: Group, action: str, reason: str, now_ms: int, alerts: tuple[GroupAlert, ...]) -> Notification:
    key = f"{g.key[:16]}-{now_ms}-{g.flushes + 1}"
    return Notification(key, g.key, g.group_key, g.receiver, g.dedup_key, action, reason, now_ms, dict(g.labels), alerts)


def due(groups: Iterable[Group], now_ms: int) -> list[Group]:
    """Groups whose timer has fired, oldest timer first."""
    return sorted((g for g in groups if g.next_flush_ms is not None and g.next_flush_ms <= now_ms), key=lambda g: (g.next_flush_ms, g.key))


def route_alert(tree: RouteNode, groups: Mapping[str, Group], alert: GroupAlert, at_ms: int, now_ms: int) -> dict[str, Group]:
    """The groups changed by one alert transition: it goes to every route that takes it."""
    out: dict[str, Group] = {}
    for r in match(tree, alert.labels):
        gl = r.group_labels(alert.labels)
        key = storage_key(r.id, gl)
        g = out.get(key) or groups.get(key) or new_group(r, alert.labels)
        # timers of the route as the spec says now (a reloaded spec changes them for the next flush)
        g = replace(g, receiver=r.receiver, group_wait_ms=r.group_wait_ms, group_interval_ms=r.group_interval_ms,
                    repeat_interval_ms=r.repeat_interval_ms)
        ng = insert(g, alert, at_ms, now_ms)
        if alert.fingerprint in ng.alerts and ng.alerts[alert.fingerprint] is alert:
            out[key] = ng
    return out


def firing_alerts(groups: Iterable[Group]) -> dict[str, GroupAlert]:
    """Every firing alert the groups hold, by fingerprint (the inhibitor's sources)."""
    out: dict[str, GroupAlert] = {}
    for g in groups:
        for fp, a in g.alerts.items():
            if not a.resolved:
                out[fp] = a
    return out
