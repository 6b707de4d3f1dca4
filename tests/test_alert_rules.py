"""Alert rules' pure core: Alertmanager's fingerprint, the instance state machine (``for``,
``keep_firing_for``, flapping, missing data) against independent reference models, and the
conditions' math (median, histogram_quantile, templates)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.alerting.evaluate import MemoryState, Readings
from vigil.alerting.model import FIRING, INACTIVE, PENDING, RESOLVED, Alert, fingerprint, format_value
from vigil.alerting.rules import Reading, Timing, advance, histogram_quantile, median, render, spike_holds, step, template_names

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
LABELS = {"alertname": "r", "service": "api", "severity": "page"}


# -- the fingerprint -------------------------------------------------------------------------------


def test_fingerprint_is_alertmanagers():
    # golden values of prometheus/common model/signature_test.go (labelSetToFingerprint)
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    assert int(fingerprint({"name": "garland, briggs", "fear": "love is not enough"}), 16) == 5799056148416392346
    assert int(fingerprint({"first-label": "first-label-value"}), 16) == 5146282821936882169
    assert int(fingerprint({"first-label": "first-label-value", "second-label": "second-label-value"}), 16) == 3195800080984914717
    three = {"first-label": "first-label-value", "second-label": "second-label-value", "third-label": "third-label-value"}
    assert int(fingerprint(three), 16) == 13843036195897128121


def test_fingerprint_depends_on_every_label_and_not_on_order():
    a = fingerprint({"alertname": "x", "severity": "page"})
    assert a == fingerprint(dict(reversed(list({"alertname": "x", "severity": "page"}.items()))))
    assert a != fingerprint({"alertname": "x", "severity": "ticket"})
    # the separator keeps a name/value split from colliding with another
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})


# -- the state machine against reference models ------------------------------------------------------


def _times(gaps: list[int]) -> list[datetime]:
    out, t = [], T0
    for g in gaps:
        t += timedelta(seconds=g)
        out.append(t)
    return out


def _run(conds: list[bool | None], times: list[datetime], timing: Timing) -> list[str]:
    prev = None
    states = []
    for c, at in zip(conds, times):
        prev = step(prev, Reading(LABELS, c, Decimal(1)), at, timing, "r")
        states.append(prev.state if prev is not None else INACTIVE)
    return states


def _ref_for(conds: list[bool], times: list[datetime], for_s: int) -> list[str]:
    """Reference for keep_firing_for = 0: a true evaluation fires when the run of trues it ends
    began at least `for` ago; a false one resolves whatever was active."""
    out: list[str] = []
    run_start: datetime | None = None
    for c, at in zip(conds, times):
        if c:
            if run_start is None:
                run_start = at
            out.append(FIRING if (at - run_start).total_seconds() >= for_s else PENDING)
        else:
            run_start = None
            out.append(RESOLVED if out and out[-1] != INACTIVE else INACTIVE)
    return out


gaps = st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(gaps=gaps, data=st.data(), for_s=st.sampled_from([0, 30, 60, 120, 300, 600]))
def test_for_is_respected_exactly(gaps, data, for_s):
    conds = data.draw(st.lists(st.booleans(), min_size=len(gaps), max_size=len(gaps)))
    times = _times(gaps)
    assert _run(conds, times, Timing(Decimal(for_s))) == _ref_for(conds, times, for_s)


def test_for_fires_at_the_first_evaluation_at_or_past_it():
    times = _times([60] * 6)  # 1m .. 6m
    states = _run([True] * 6, times, Timing(Decimal(120)))
    assert states == [PENDING, PENDING, FIRING, FIRING, FIRING, FIRING]  # active at 1m, fires at 3m = 1m + 2m
    # evaluations every 50s: 1m40s after activation is not enough, 2m30s is
    times = _times([50] * 5)
    assert _run([True] * 5, times, Timing(Decimal(120))) == [PENDING, PENDING, PENDING, FIRING, FIRING]


def _ref_keep(conds: list[bool], times: list[datetime], kff: int) -> list[str]:
    """Reference for for = 0: firing when the condition holds, or when the first false
    evaluation after the last true one was less than keep_firing_for ago."""
    out: list[str] = []
    last_true: int | None = None
    for i, (c, at) in enumerate(zip(conds, times)):
        if c:
            last_true = i
            out.append(FIRING)
            continue
        if last_true is None:
            out.append(INACTIVE if not out or out[-1] == INACTIVE else RESOLVED)
            continue
        first_false = times[last_true + 1]
        if (at - first_false).total_seconds() < kff:
            out.append(FIRING)
        else:
            out.append(RESOLVED)
    return out


@settings(max_examples=300, deadline=None)
@given(gaps=gaps, data=st.data(), kff=st.sampled_from([0, 60, 90, 300, 900]))
def test_keep_firing_for_against_a_reference(gaps, data, kff):
    conds = data.draw(st.lists(st.booleans(), min_size=len(gaps), max_size=len(gaps)))
    times = _times(gaps)
    assert _run(conds, times, Timing(Decimal(0), Decimal(kff))) == _ref_keep(conds, times, kff)


def test_keep_firing_counts_from_the_first_false_evaluation_as_prometheus():
    times = _times([60] * 8)
    states = _run([True, False, False, False, True, False, False, False], times, Timing(Decimal(0), Decimal(120)))
    # false at 2m: keep firing while now - 2m < 2m -> 2m, 3m firing; 4m resolved; true at 5m fires again
    assert states == [FIRING, FIRING, FIRING, RESOLVED, FIRING, FIRING, FIRING, RESOLVED]


def test_a_flapping_condition_never_fires_with_for():
    times = _times([60] * 30)
    states = _run([i % 2 == 0 for i in range(30)], times, Timing(Decimal(120)))
    assert FIRING not in states
    assert states[:4] == [PENDING, RESOLVED, PENDING, RESOLVED]


@settings(max_examples=200, deadline=None)
@given(gaps=gaps, data=st.data(), for_s=st.sampled_from([0, 60, 180]), kff=st.sampled_from([0, 120]))
def test_missing_data_policies(gaps, data, for_s, kff):
    conds = data.draw(st.lists(st.sampled_from([True, False, None]), min_size=len(gaps), max_size=len(gaps)))
    times = _times(gaps)

    def with_(missing: str) -> list[str]:
        return _run(conds, times, Timing(Decimal(for_s), Decimal(kff), missing))

    def replaced(v: bool) -> list[str]:
        return _run([v if c is None else c for c in conds], times, Timing(Decimal(for_s), Decimal(kff)))

    assert with_("ok") == replaced(False)
    assert with_("alert") == replaced(True)
    # keep: a missing evaluation repeats what the last one concluded
    kept: list[bool] = []
    last = False
    states = []
    prev = None
    for c, at in zip(conds, times):
        eff = last if c is None else c
        kept.append(eff)
        prev = step(prev, Reading(LABELS, eff), at, Timing(Decimal(for_s), Decimal(kff)), "r")
        states.append(prev.state if prev else INACTIVE)
        last = prev is not None and prev.last_condition()
    assert with_("keep") == states


def test_missing_keep_holds_a_firing_alert_and_its_value():
    t = Timing(Decimal(0), Decimal(0), "keep")
    a = step(None, Reading(LABELS, True, Decimal(7)), T0, t, "r")
    b = step(a, Reading(LABELS, None, None), T0 + timedelta(minutes=1), t, "r")
    assert b.state == FIRING and b.value == Decimal(7) and b.fired_at == T0


def test_transitions_and_their_numbers():
    state = MemoryState()
    timings = {"r": Timing(Decimal(60))}
    seen: list[Alert] = []
    for i, c in enumerate([True, True, True, False, False, True]):
        seen += state.step(Readings(T0 + timedelta(minutes=i), {"r": [Reading(LABELS, c, Decimal(i))]}, {}, timings))
    assert [(a.previous, a.state, a.seq) for a in seen] == [
        (INACTIVE, PENDING, 1), (PENDING, FIRING, 2), (FIRING, RESOLVED, 3), (RESOLVED, PENDING, 4)
    ]
    assert seen[1].fired_at == T0 + timedelta(minutes=1) and seen[1].active_at == T0
    assert seen[3].active_at == T0 + timedelta(minutes=5)  # a new activation
    assert [a.notifiable for a in seen] == [False, True, True, False]
    # the same instant again, or an older one: nothing
    assert state.step(Readings(T0 + timedelta(minutes=5), {"r": [Reading(LABELS, False)]}, {}, timings)) == []
    assert state.step(Readings(T0, {"r": [Reading(LABELS, False)]}, {}, timings)) == []


def test_pending_then_resolved_is_not_notifiable():
    timings = {"r": Timing(Decimal(300))}
    state = MemoryState()
    state.step(Readings(T0, {"r": [Reading(LABELS, True)]}, {}, timings))
    (t,) = state.step(Readings(T0 + timedelta(minutes=1), {"r": [Reading(LABELS, False)]}, {}, timings))
    assert (t.previous, t.state, t.fired_at, t.notifiable) == (PENDING, RESOLVED, None, False)


def test_a_failed_rule_keeps_its_instances_and_a_removed_rule_resolves():
    timings = {"r": Timing(), "s": Timing()}
    other = {**LABELS, "alertname": "s"}
    adv = advance({}, {"r": [Reading(LABELS, True)], "s": [Reading(other, True)]}, timings, T0)
    prev = adv.current
    assert {i.state for i in prev.values()} == {FIRING}
    # r failed to read: kept firing, no transition; s is no longer in the spec: resolved
    adv2 = advance(prev, {}, {"r": Timing()}, T0 + timedelta(minutes=1), failed=["r"])
    assert [(b, i.rule, i.state) for b, i in adv2.transitions] == [(FIRING, "s", RESOLVED)]
    assert adv2.current[("r", fingerprint(LABELS))].state == FIRING


def test_an_instance_whose_labels_change_resolves_and_a_new_one_starts():
    t = {"r": Timing()}
    a = advance({}, {"r": [Reading(LABELS, True)]}, t, T0)
    moved = {**LABELS, "team": "core"}
    b = advance(a.current, {"r": [Reading(moved, True)]}, t, T0 + timedelta(minutes=1))
    assert {(before, i.state, i.labels.get("team")) for before, i in b.transitions} == {
        (INACTIVE, FIRING, "core"), (FIRING, RESOLVED, None)
    }


# -- math -------------------------------------------------------------------------------------------


def test_median():
    assert median([]) is None
    assert median([Decimal(3)]) == 3
    assert median([Decimal(x) for x in (5, 1, 3)]) == 3
    assert median([Decimal(x) for x in (1, 2, 3, 10)]) == Decimal("2.5")


def test_spike_needs_both_the_factor_and_the_floor():
    assert spike_holds(Decimal(12), Decimal(2), Decimal(5), Decimal(1))
    assert not spike_holds(Decimal(10), Decimal(2), Decimal(5), Decimal(1))  # 5x exactly is not above
    assert not spike_holds(Decimal("0.9"), Decimal(0), Decimal(5), Decimal(1))  # below the floor
    assert spike_holds(Decimal("1.1"), None, Decimal(5), Decimal(1))  # no baseline yet: the floor decides


def test_histogram_quantile_as_prometheus():
    inf = Decimal("Infinity")
    b = [(Decimal("0.1"), 50), (Decimal("0.5"), 40), (Decimal(1), 10), (inf, 0)]
    # rank 95 of 100 falls in (0.5, 1]: 0.5 + 0.5 * (95 - 90) / 10
    assert histogram_quantile(Decimal("0.95"), b) == Decimal("0.75")
    assert histogram_quantile(Decimal("0.5"), b) == Decimal("0.1")  # rank 50: the first bucket's top
    assert histogram_quantile(Decimal("0.25"), b) == Decimal("0.05")  # interpolated from 0
    assert histogram_quantile(Decimal("0.99"), [(Decimal(1), 1), (inf, 99)]) == Decimal(1)  # overflow: highest finite bound
    assert histogram_quantile(Decimal("0.5"), [(Decimal(1), 0), (inf, 0)]) is None


def test_templates_substitute_and_never_execute():
    assert template_names("{{ value }} and {{$value}} {{ $labels.service }}") == ["value", "value", "labels.service"]
    vs = {"value": "14.4", "labels.service": "api"}
    assert render("burn {{ value }}x on {{ $labels.service }}", vs) == "burn 14.4x on api"
    # no attribute access, no expressions: an unknown name stays as written
    assert render("{{ value.__class__ }}", vs) == "{{ value.__class__ }}"


def test_format_value():
    assert format_value(Decimal("14.4000")) == "14.4"
    assert format_value(Decimal(5000)) == "5000"
    assert format_value(Decimal("0.001234")) == "0.0012"
    assert format_value(Decimal("0.00001")) == "1.00e-5"
    assert format_value(None) == "none"


@pytest.mark.parametrize("bad", ["bogus", "-1"])
def test_timing_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        Timing(Decimal(0), Decimal(0), bad) if bad == "bogus" else Timing(Decimal(bad))
