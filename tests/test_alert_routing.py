"""Routing, grouping, inhibition and silences: the pure core, on timelines in milliseconds.

The timelines reproduce Alertmanager's semantics (dispatch/route.go, dispatch/group.go,
notify/notify.go's DedupStage, inhibit/inhibit.go): group_wait before the first notification,
group_interval between flushes, repeat_interval for an unchanged group, a resolve inside group_wait
never sent, continue on routes, inhibition that never mutes an alert by itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from vigil.alerting.inhibit import Inhibitor
from vigil.alerting.model import fingerprint
from vigil.alerting.routing import (
    Group,
    GroupAlert,
    build_tree,
    due,
    firing_alerts,
    flush,
    label_set_text,
    match,
    new_group,
    route_alert,
)
from vigil.alerting.routing_spec import AlertingSpec, parse_matcher
from vigil.alerting.silences import Silence, parse_matchers, silenced, validate
from vigil.errors import SpecError, UsageError
from vigil.selector import SelectorError
from vigil.spec import parse_spec

S = 1000
M = 60 * S


def alerting(yaml_text: str) -> AlertingSpec:
    sp = parse_spec(("version: 1\nservices: {api: {}, search: {}, checkout: {}}\nalerting:\n" + yaml_text).encode(), filename="t.yaml")
    assert sp.alerting is not None
    return sp.alerting


def ga(name: str, t_ms: int, *, state: str = "firing", ends: int | None = None, seq: int = 1, **labels: str) -> GroupAlert:
    lab = {"alertname": name, "service": "api", "severity": "page", **labels}
    return GroupAlert(fingerprint(lab), name, lab, {"summary": f"{name} fires"}, state, t_ms, ends, "1", seq)


def resolved(a: GroupAlert, t_ms: int) -> GroupAlert:
    return GroupAlert(a.fingerprint, a.rule, a.labels, a.annotations, "resolved", a.starts_ms, t_ms, a.value, a.seq + 1)


SIMPLE = """\
  receivers:
    - {name: default, webhook: {url: 'http://127.0.0.1:9/hook', secret_env: HOOK_SECRET}}
  route: {receiver: default, group_by: [alertname], group_wait: 30s, group_interval: 5m, repeat_interval: 4h}
"""


class Timeline:
    """One route's groups driven through time: alerts arrive, timers fire, notifications are collected."""

    def __init__(self, spec_text: str = SIMPLE, *, send_resolved: bool = True, silences: list[Silence] | None = None,
                 inhibit: Inhibitor | None = None, can_acknowledge: bool = False) -> None:
        self.spec = alerting(spec_text)
        self.tree = build_tree(self.spec.route)
        self.groups: dict[str, Group] = {}
        self.sent: list[tuple[int, str, str, list[tuple[str, str]]]] = []  # (t, receiver, action, [(alertname, state)])
        self.send_resolved = send_resolved
        self.silences = silences or []
        self.inhibit = inhibit or Inhibitor(self.spec.inhibit_rules)
        self.can_ack = can_acknowledge
        self.now = 0

    def add(self, a: GroupAlert, at: int | None = None) -> None:
        at = self.now if at is None else at
        self.groups.update(route_alert(self.tree, self.groups, a, at, self.now))

    def run_until(self, t: int) -> None:
        """Fire every timer up to ``t`` in order, as Alertmanager's goroutines would."""
        while True:
            ready = due(self.groups.values(), t)
            if not ready:
                break
            g = ready[0]
            self.now = max(self.now, g.next_flush_ms or 0)
            when = datetime.fromtimestamp(self.now / 1000, tz=timezone.utc)
            labels = {fp: x.labels for fp, x in g.alerts.items()}
            f = flush(g, self.now, silenced=set(silenced(labels, self.silences, when)),
                      inhibited=self.inhibit.muted(labels, {fp: x.labels for fp, x in firing_alerts(self.groups.values()).items()}),
                      send_resolved=self.send_resolved, can_acknowledge=self.can_ack)
            self.groups[g.key] = f.group
            if f.notification is not None:
                n = f.notification
                self.sent.append((self.now, n.receiver, n.action, [(x.labels["alertname"], x.state) for x in n.alerts]))
        self.now = t


# -- the route tree ---------------------------------------------------------------------------------

TREE = """\
  receivers:
    - {name: default, webhook: {url: 'http://127.0.0.1:9/a', secret_env: S}}
    - {name: pager, webhook: {url: 'http://127.0.0.1:9/b', secret_env: S}}
    - {name: search-team, webhook: {url: 'http://127.0.0.1:9/c', secret_env: S}}
    - {name: audit, webhook: {url: 'http://127.0.0.1:9/d', secret_env: S}}
    - {name: db, webhook: {url: 'http://127.0.0.1:9/e', secret_env: S}}
  route:
    receiver: default
    group_by: [alertname]
    group_wait: 10s
    routes:
      - matchers: ['component="database"']
        receiver: audit
        continue: true
      - matchers: ['severity="page"']
        receiver: pager
        group_by: [service]
        routes:
          - {matchers: ['service="search"'], receiver: search-team, group_wait: 1m}
          - {matchers: ['component="database"'], receiver: db}
      - matchers: ['service=~"api|checkout"']
        receiver: default
        repeat_interval: 1h
"""


def receivers_of(tree, **labels) -> list[str]:
    return [r.receiver for r in match(tree, labels)]


def test_routes_match_depth_first_with_continue_and_inheritance():
    tree = build_tree(alerting(TREE).route)
    # a page for search: severity=page route, then its first child; no continue, so it stops there
    assert receivers_of(tree, alertname="x", severity="page", service="search") == ["search-team"]
    # continue: true on the database route lets the alert go on to the next sibling too
    assert receivers_of(tree, alertname="x", severity="page", service="api", component="database") == ["audit", "db"]
    # a page no child of the page route takes: the page route itself takes it
    assert receivers_of(tree, alertname="x", severity="page", service="api") == ["pager"]
    # a ticket for checkout: the regex route (fully anchored: "api|checkout" does not match "checkout2")
    assert receivers_of(tree, alertname="x", severity="ticket", service="checkout") == ["default"]
    assert [r.id for r in match(tree, {"severity": "ticket", "service": "checkout2"})] == ["0"]
    # inheritance: search-team inherits group_by [service] from its parent and sets its own group_wait
    search = match(tree, {"severity": "page", "service": "search"})[0]
    assert search.group_by == ("service",) and search.group_wait_ms == 60 * S and search.group_interval_ms == 5 * M
    pager = match(tree, {"severity": "page", "service": "api"})[0]
    assert pager.group_wait_ms == 10 * S and pager.repeat_interval_ms == 4 * 60 * M
    regex = match(tree, {"severity": "ticket", "service": "api"})[0]
    assert regex.repeat_interval_ms == 60 * M and regex.group_by == ("alertname",)


def test_group_keys_are_alertmanagers():
    tree = build_tree(alerting(TREE).route)
    r = match(tree, {"alertname": "x", "severity": "page", "service": "search"})[0]
    g = new_group(r, {"alertname": "x", "severity": "page", "service": "search"})
    assert g.group_key == '{}/{severity="page"}/{service="search"}:{service="search"}'
    assert label_set_text({"b": "2", "a": 'q"x'}) == '{a="q\\"x", b="2"}'


def test_group_by_every_label_and_no_label():
    sp = alerting("""\
  receivers: [{name: d, webhook: {url: 'http://127.0.0.1:9/a', secret_env: S}}]
  route:
    receiver: d
    routes:
      - {matchers: ['team="a"'], group_by: ['...']}
""")
    tree = build_tree(sp.route)
    a = match(tree, {"team": "a", "x": "1"})[0]
    assert a.group_labels({"team": "a", "x": "1"}) == {"team": "a", "x": "1"}
    root = match(tree, {"team": "b", "x": "1"})[0]
    assert root.group_labels({"team": "b", "x": "1"}) == {}  # no group_by: one group for the route


def test_matchers_read_alertmanagers_syntax():
    assert str(parse_matcher('severity="page"')) == 'severity="page"'
    assert parse_matcher("service=~api|web").matches({"service": "web"})
    assert not parse_matcher('service=~"api|web"').matches({"service": "api2"})
    assert parse_matcher('team!="sre"').matches({})
    assert parse_matcher(' msg = "a \\"b\\"" ').value == 'a "b"'
    for bad in ("severity", "=x", 'a="unterminated', "a=~(", "a=b c", 'a="x"y"'):
        with pytest.raises(SelectorError):
            parse_matcher(bad)


# -- grouping timelines ----------------------------------------------------------------------------


def test_group_wait_collects_alerts_into_the_first_notification():
    tl = Timeline("""\
  receivers: [{name: default, webhook: {url: 'http://127.0.0.1:9/a', secret_env: S}}]
  route: {receiver: default, group_by: [service], group_wait: 30s, group_interval: 5m}
""")
    tl.add(ga("a", 0))
    tl.now = 10 * S
    tl.add(ga("b", 10 * S))
    tl.run_until(29 * S)
    assert tl.sent == []  # nothing before group_wait
    tl.run_until(30 * S)
    assert tl.sent == [(30 * S, "default", "trigger", [("a", "firing"), ("b", "firing")])]


def test_a_resolve_inside_group_wait_is_never_sent():
    tl = Timeline()
    a = ga("a", 0)
    tl.add(a)
    tl.now = 20 * S
    tl.add(resolved(a, 20 * S))
    tl.run_until(10 * M)
    assert tl.sent == []
    # the group is empty and its timer stopped
    assert all(g.empty and g.next_flush_ms is None for g in tl.groups.values())


def test_new_alerts_wait_for_group_interval_and_repeat_only_after_repeat_interval():
    tl = Timeline()
    tl.add(ga("a", 0, instance="1"))
    tl.run_until(30 * S)
    assert len(tl.sent) == 1
    # a second alert of the group 1 minute later: notified at the next group_interval tick (5m30s)
    tl.now = 90 * S
    tl.add(ga("a", 90 * S, instance="2"))
    tl.run_until(5 * M + 29 * S)
    assert len(tl.sent) == 1
    tl.run_until(5 * M + 30 * S)
    assert tl.sent[-1] == (5 * M + 30 * S, "default", "trigger", [("a", "firing"), ("a", "firing")])
    # nothing changes: flushes every 5m send nothing until 4h after the last notification
    tl.run_until(4 * 60 * M + 5 * M + 29 * S)
    assert len(tl.sent) == 2
    tl.run_until(4 * 60 * M + 10 * M + 30 * S)
    assert len(tl.sent) == 3 and tl.sent[-1][0] == 4 * 60 * M + 10 * M + 30 * S  # the first flush after repeat_interval
    assert tl.sent[-1][2] == "trigger"


def test_all_resolved_is_sent_once_and_the_group_stops():
    tl = Timeline()
    a = ga("a", 0)
    tl.add(a)
    tl.run_until(30 * S)
    tl.now = 2 * M
    tl.add(resolved(a, 2 * M))
    tl.run_until(5 * M + 29 * S)
    assert len(tl.sent) == 1  # the resolve waits for the group_interval tick
    tl.run_until(5 * M + 30 * S)
    assert tl.sent[-1] == (5 * M + 30 * S, "default", "resolve", [("a", "resolved")])
    tl.run_until(10 * 60 * M)
    assert len(tl.sent) == 2
    (g,) = tl.groups.values()
    assert g.empty and g.next_flush_ms is None


def test_a_partial_resolve_is_sent_with_the_firing_ones_and_fires_again_as_a_new_incident():
    tl = Timeline()
    a, b = ga("a", 0, instance="1"), ga("a", 0, instance="2")
    tl.add(a)
    tl.add(b)
    tl.run_until(30 * S)
    tl.now = M
    tl.add(resolved(a, M))
    tl.run_until(5 * M + 30 * S)
    assert tl.sent[-1][2:] == ("trigger", [("a", "resolved"), ("a", "firing")]) or tl.sent[-1][2:] == (
        "trigger", [("a", "firing"), ("a", "resolved")])
    # the resolved alert left the group: the next flushes do not send it again
    tl.run_until(60 * M)
    assert len(tl.sent) == 2
    # the same alert firing again later is new to the notification log: sent at the next tick
    tl.run_until(61 * M)
    tl.add(GroupAlert(a.fingerprint, a.rule, a.labels, a.annotations, "firing", 61 * M, None, "2", 10))
    tl.run_until(65 * M + 30 * S)
    assert tl.sent[-1][0] == 65 * M + 30 * S and ("a", "firing") in tl.sent[-1][3] and len(tl.sent[-1][3]) == 2


def test_an_alert_older_than_group_wait_flushes_a_new_group_at_once():
    """Alertmanager's insert: a group that never flushed flushes now when its alert began more than
    group_wait ago (a leader taking over reads transitions it missed)."""
    tl = Timeline()
    tl.now = 10 * M
    tl.add(ga("a", 0), at=0)
    tl.run_until(10 * M)
    assert tl.sent == [(10 * M, "default", "trigger", [("a", "firing")])]


def test_without_send_resolved_resolutions_are_not_sent_but_logged():
    tl = Timeline(send_resolved=False)
    a, b = ga("a", 0, instance="1"), ga("a", 0, instance="2")
    tl.add(a)
    tl.add(b)
    tl.run_until(30 * S)
    tl.now = M
    tl.add(resolved(a, M))
    tl.run_until(5 * M + 30 * S)
    assert len(tl.sent) == 1  # a resolved alert alone changes nothing to send
    tl.add(resolved(b, 6 * M))
    tl.run_until(10 * M + 30 * S)
    assert len(tl.sent) == 1  # all resolved: the notification log is cleared, nothing is sent
    (g,) = tl.groups.values()
    assert g.notified_firing == frozenset() and g.notified_ms == 10 * M + 30 * S
    # firing again is a first notification
    tl.now = 11 * M
    tl.add(GroupAlert(a.fingerprint, a.rule, a.labels, a.annotations, "firing", 11 * M, None, "1", 9))
    tl.run_until(11 * M + 30 * S)
    assert tl.sent[-1] == (11 * M + 30 * S, "default", "trigger", [("a", "firing")])


def test_a_resolve_of_an_alert_the_group_never_held_is_not_sent():
    """A group that holds other alerts is not told about an alert that never fired in it (routes
    changed between its trigger and its resolve)."""
    tl = Timeline()
    b = ga("a", 0, instance="b")
    tl.add(b)
    tl.run_until(30 * S)
    stranger = ga("a", 0, instance="z")
    tl.now = M
    tl.add(resolved(stranger, M))
    tl.run_until(60 * M)
    assert [x[3] for x in tl.sent] == [[("a", "firing")]]


def test_an_older_transition_seen_late_changes_nothing():
    tl = Timeline()
    a = ga("a", 0, seq=5)
    tl.add(a)
    tl.add(GroupAlert(a.fingerprint, a.rule, a.labels, a.annotations, "resolved", 0, 1, "1", 4))
    (g,) = tl.groups.values()
    assert g.alerts[a.fingerprint].state == "firing"


def test_continue_sends_one_alert_to_two_receivers_each_with_its_own_timers():
    tl = Timeline(TREE)
    tl.add(ga("failover", 0, component="database"))
    tl.run_until(10 * S)
    assert sorted((t, r) for t, r, _, _ in tl.sent) == [(10 * S, "audit"), (10 * S, "db")]


# -- inhibition --------------------------------------------------------------------------------------

INHIBIT = """\
  receivers: [{name: default, webhook: {url: 'http://127.0.0.1:9/a', secret_env: S}}]
  route: {receiver: default, group_by: [alertname, service], group_wait: 30s}
  inhibit_rules:
    - source_matchers: ['alertname="search-down"']
      target_matchers: ['slo="search-freshness"']
      equal: [service]
"""


def test_search_down_mutes_the_freshness_burn_alerts_of_the_same_service():
    tl = Timeline(INHIBIT)
    down = ga("search-down", 0, service="search")
    burn = ga("search-freshness-burn", 0, service="search", slo="search-freshness")
    other = ga("search-freshness-burn", 0, service="pages", slo="search-freshness")  # another service
    api = ga("api-availability-burn", 0, slo="api-availability")
    for x in (down, burn, other, api):
        tl.add(x)
    tl.run_until(30 * S)
    sent = sorted((n[3][0][0], len(n[3])) for n in tl.sent)
    assert sent == [("api-availability-burn", 1), ("search-down", 1), ("search-freshness-burn", 1)]
    fresh = next(g for g in tl.groups.values() if g.labels.get("alertname") == "search-freshness-burn" and g.notified_ms)
    assert fresh.labels["service"] == "pages"  # the other service's freshness alert is not muted
    fb = [g for g in tl.groups.values() if g.labels.get("alertname") == "search-freshness-burn"]
    muted_group = next(g for g in fb if g.labels["service"] == "search")
    assert muted_group.notified_ms is None  # never notified while search is down
    # search comes back: the freshness alert still firing is notified at its group's next tick
    tl.now = M
    tl.add(resolved(down, M))
    tl.run_until(5 * M + 30 * S)
    assert ("search-freshness-burn", "firing") in [x for n in tl.sent for x in n[3] if n[0] == 5 * M + 30 * S]


def test_an_alert_never_inhibits_itself_or_its_own_kind():
    rule = alerting("""\
  receivers: [{name: d, webhook: {url: 'http://127.0.0.1:9/a', secret_env: S}}]
  route: {receiver: d}
  inhibit_rules:
    - {source_matchers: ['severity="page"'], target_matchers: ['severity="page"'], equal: [service]}
    - {source_matchers: ['severity="page"'], target_matchers: ['severity="ticket"'], equal: [service]}
""").inhibit_rules
    inh = Inhibitor(rule)
    page = {"alertname": "a", "severity": "page", "service": "api"}
    page2 = {"alertname": "b", "severity": "page", "service": "api"}
    ticket = {"alertname": "c", "severity": "ticket", "service": "api"}
    ticket_other = {"alertname": "c", "severity": "ticket", "service": "checkout"}
    firing = {"p": page, "p2": page2, "t": ticket, "t2": ticket_other}
    assert inh.muted(firing, firing) == {"t"}  # pages never mute pages; the api ticket is muted; checkout's is not
    # equal compares missing labels as empty: both missing is equal
    inh2 = Inhibitor(alerting("""\
  receivers: [{name: d, webhook: {url: 'http://127.0.0.1:9/a', secret_env: S}}]
  route: {receiver: d}
  inhibit_rules: [{source_matchers: ['alertname="a"'], target_matchers: ['alertname="b"'], equal: [zone]}]
""").inhibit_rules)
    assert inh2.muted({"x": {"alertname": "b"}}, {"y": {"alertname": "a"}}) == {"x"}
    assert inh2.muted({"x": {"alertname": "b", "zone": "1"}}, {"y": {"alertname": "a"}}) == set()


# -- silences ------------------------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def silence(texts, start_min: int, end_min: int, **kw) -> Silence:
    return Silence(kw.get("id", "s-1"), parse_matchers(texts), T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min),
                   "alice", "maintenance", T0, kw.get("expired_at"), None)


def test_a_silenced_alert_is_left_out_until_the_silence_ends():
    s = silence(['alertname="a"'], 0, 20)
    tl = Timeline(silences=[s])
    tl.now = 0
    tl.add(ga("a", int(T0.timestamp() * 1000)), at=int(T0.timestamp() * 1000))
    tl.now = int(T0.timestamp() * 1000)
    tl.run_until(tl.now + 19 * M)
    assert tl.sent == []
    # the silence ends at 20m: the 20m30s flush (every 5m after 30s) notifies it
    tl.run_until(int(T0.timestamp() * 1000) + 20 * M + 30 * S)
    assert [x[2] for x in tl.sent] == ["trigger"]
    assert tl.sent[0][0] == int(T0.timestamp() * 1000) + 20 * M + 30 * S


def test_a_maintenance_window_mutes_only_while_it_is_on():
    s = silence(['service="api"'], 60, 120)
    assert s.state(T0) == "pending" and s.state(T0 + timedelta(minutes=60)) == "active"
    assert s.state(T0 + timedelta(minutes=120)) == "expired"
    alerts = {"f1": {"alertname": "a", "service": "api"}, "f2": {"alertname": "a", "service": "search"}}
    assert silenced(alerts, [s], T0 + timedelta(minutes=30)) == {}
    assert silenced(alerts, [s], T0 + timedelta(minutes=61)) == {"f1": ["s-1"]}
    expired = silence(['service="api"'], 60, 120, expired_at=T0 + timedelta(minutes=70))
    assert silenced(alerts, [expired], T0 + timedelta(minutes=71)) == {}


def test_silencing_every_firing_alert_of_a_paged_group_acknowledges_once():
    base = int(T0.timestamp() * 1000)
    s = silence(['alertname="a"'], 10, 60)
    tl = Timeline(silences=[s], can_acknowledge=True)
    tl.now = base
    tl.add(ga("a", base), at=base)
    tl.run_until(base + 30 * S)
    tl.run_until(base + 30 * M)
    assert [x[2] for x in tl.sent] == ["trigger", "acknowledge"]
    assert tl.sent[1][0] == base + 10 * M + 30 * S  # the first flush inside the silence
    # a receiver that cannot acknowledge gets nothing
    tl2 = Timeline(silences=[s])
    tl2.now = base
    tl2.add(ga("a", base), at=base)
    tl2.run_until(base + 30 * M)
    assert [x[2] for x in tl2.sent] == ["trigger"]


@pytest.mark.parametrize(
    "matchers,reason,start,end,why",
    [
        ([], "x", 0, 60, "at least one matcher"),
        (['service=~".*"'], "x", 0, 60, "mute every alert"),
        (['service!="api"'], "x", 0, 60, "mute every alert"),
        (['service="api"'], "", 0, 60, "needs a reason"),
        (['service="api"'], "x", 60, 30, "end after it starts"),
        (['service="api"'], "x", -120, -60, "already be over"),
        (['service="api"'], "x", 0, 60 * 24 * 400, "366 days"),
    ],
)
def test_silences_refuse_what_would_be_a_mistake(matchers, reason, start, end, why):
    with pytest.raises(UsageError, match=why):
        validate(parse_matchers(matchers), T0 + timedelta(minutes=start), T0 + timedelta(minutes=end), "alice", reason, T0)


def test_a_bad_silence_matcher_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot read matcher"):
        parse_matchers(["service"])


# -- the spec's errors -----------------------------------------------------------------------------


def spec_errors(text: str) -> str:
    with pytest.raises(SpecError) as e:
        parse_spec(("version: 1\nservices: {api: {}}\nalerting:\n" + text).encode(), filename="v.yaml")
    return str(e.value) + "\n" + "\n".join(str(i) for i in e.value.issues)


def test_spec_errors_name_the_place():
    out = spec_errors("""\
  receivers:
    - {name: pd, pagerduty: {routing_key_env: PD}, fallback: mail}
    - {name: mail, email: {to: [a@example.com], from: v@example.com, host: 127.0.0.1, tls: none}, fallback: pd}
  route:
    receiver: pd
    routes:
      - {matchers: ['severity="page"'], receiver: pagr}
  heartbeat: {receiver: nobody}
""")
    assert "v.yaml:10:51: alerting.route.routes[0].receiver: unknown receiver 'pagr' (receivers: mail, pd)" in out
    assert "fallbacks go round in a circle: pd -> mail -> pd" in out
    assert "alerting.heartbeat.receiver: unknown receiver 'nobody'" in out


@pytest.mark.parametrize(
    "receiver,why",
    [
        ("{name: x, pagerduty: {}}", "routing_key is a secret"),
        ("{name: x, pagerduty: {routing_key_env: K, url: 'http://169.254.169.254/x'}}", "link-local"),
        ("{name: x, webhook: {url: 'http://127.0.0.1/x'}}", "secret is a secret"),
        ("{name: x, webhook: {url: 'ftp://x/y', secret_env: K}}", "webhook url"),
        ("{name: x, email: {to: [nobody], from: a@b.c, host: h}}", "is not an email address"),
        ("{name: x, email: {to: [a@b.c], from: a@b.c, host: h, username: u, password_env: P, tls: none}}", "in clear"),
        ("{name: x, email: {to: [a@b.c], from: a@b.c, host: h, username: u}}", "password is a secret"),
        ("{name: x, email: {to: [a@b.c], from: a@b.c, host: 169.254.169.254}}", "link-local"),
        ("{name: x, email: {to: [a@b.c], from: a@b.c, host: ''}}", "is not a host name"),
        ("{name: x, email: {to: [a@b.c], from: a@b.c, host: 'smtp.example.com:25'}}", "the port goes in `port:`"),
        ("{name: x, slack: {url_env: 'not a name'}}", "not an environment variable name"),
        ("{name: x, sns: {topic_arn: 'arn:aws:s3:::bucket'}}", "not an SNS topic ARN"),
        ("{name: x, webhook: {url: 'http://127.0.0.1/x', secret_env: K}, sns: {topic_arn: 'arn:aws:sns:us-east-1:123456789012:t'}}", "exactly one"),
        ("{name: 'a b', webhook: {url: 'http://127.0.0.1/x', secret_env: K}}", "receiver name"),
    ],
)
def test_receiver_errors(receiver, why):
    out = spec_errors(f"  receivers: [{receiver}]\n  route: {{receiver: x}}\n")
    assert why in out


def test_the_root_route_takes_every_alert():
    out = spec_errors("""\
  receivers: [{name: d, webhook: {url: 'http://127.0.0.1/x', secret_env: K}}]
  route: {matchers: ['a="b"']}
""")
    assert "the root route needs a receiver" in out and "put matchers on its child routes" in out


def test_the_example_platform_routes_the_plans_alerts(tmp_path):
    from conftest import EXAMPLE_SPEC
    from vigil.spec import load_spec

    sp = load_spec(EXAMPLE_SPEC).spec
    assert sp.alerting is not None
    tree = build_tree(sp.alerting.route)
    kinds = {r.name: r.kind for r in sp.alerting.receivers}
    for rule in sp.alerts:
        labels = {"alertname": rule.name, "service": rule.service or "api", "severity": rule.severity or "page"}
        got = [kinds[r.receiver] for r in match(tree, labels)]
        assert "pagerduty" in got or "email" in got, rule.name
    pd = [r for r in sp.alerting.receivers if r.kind == "pagerduty"]
    assert pd and all(r.fallback for r in pd)
