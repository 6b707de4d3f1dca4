"""Golden vectors from the SRE workbook, and properties of the budget math."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.slo import math as budget_math
from vigil.units import format_duration, parse_duration, parse_objective

DAY = 86400
W30 = 30 * DAY


def test_99_9_over_30_days_is_43_2_minutes_of_budget():
    assert budget_math.error_budget_seconds(W30, D("0.999")) == D("2592")
    assert budget_math.error_budget_seconds(W30, D("0.999")) / 60 == D("43.2")


def test_workbook_burn_rate_thresholds_for_30_days():
    ws = {w.name: w for w in budget_math.mwmb_windows(W30)}
    assert ws["page-1h"].threshold == D("14.4") and (ws["page-1h"].long, ws["page-1h"].short) == ("1h", "5m")
    assert ws["page-6h"].threshold == D("6") and (ws["page-6h"].long, ws["page-6h"].short) == ("6h", "30m")
    assert ws["ticket-1d"].threshold == D("3") and (ws["ticket-1d"].long, ws["ticket-1d"].short) == ("1d", "2h")
    assert ws["ticket-3d"].threshold == D("1") and (ws["ticket-3d"].long, ws["ticket-3d"].short) == ("3d", "6h")


def test_thresholds_scale_by_budget_share_for_other_windows():
    # 2% of a 28-day budget in 1h: 0.02 * 672 = 13.44
    ws = {w.name: w.threshold for w in budget_math.mwmb_windows(28 * DAY)}
    assert ws["page-1h"] == D("13.44")
    assert ws["ticket-3d"] == D("0.1") * 28 / 3


@pytest.mark.parametrize("burn", [D(1), D(2), D("14.4"), D(1000)])
def test_time_to_exhaustion_is_window_over_burn_rate(burn):
    assert budget_math.time_to_exhaustion(D(1), W30, burn) == D(W30) / burn


def test_time_to_exhaustion_edges():
    assert budget_math.time_to_exhaustion(D(0), W30, D(5)) == 0
    assert budget_math.time_to_exhaustion(D("-0.3"), W30, D(5)) == 0
    assert budget_math.time_to_exhaustion(D(1), W30, D(0)) is None
    assert budget_math.time_to_exhaustion(None, W30, D(1)) is None
    assert budget_math.time_to_exhaustion(D("0.5"), W30, D(1)) == D(W30) / 2


def test_full_outage_is_caught_by_the_1h_rule_after_51_84_seconds():
    page = next(w for w in budget_math.mwmb_windows(W30) if w.name == "page-1h")
    assert budget_math.detection_time(D(1), D("0.999"), page.long_seconds, page.threshold) == D("51.84")
    # the short window (5m) sees it even sooner, so the condition holds at 51.84 s
    assert budget_math.detection_time(D(1), D("0.999"), page.short_seconds, page.threshold) < D("51.84")


def test_an_error_ratio_below_the_threshold_never_pages():
    # 1% errors against 99.9%: burn rate 10 < 14.4
    assert budget_math.detection_time(D("0.01"), D("0.999"), 3600, D("14.4")) is None


def test_burn_rate_and_consumed():
    assert budget_math.burn_rate(1, 1000, D("0.999")) == 1
    assert budget_math.burn_rate(0, 0, D("0.999")) is None  # no data, never NaN
    assert budget_math.budget_consumed(0, 0, D("0.999")) is None
    # calendar: consumed = burn so far * elapsed fraction
    assert budget_math.budget_consumed(2, 1000, D("0.999"), D("0.5")) == D(1)
    assert budget_math.allowed_bad(1000, D("0.999"), D("0.5")) == D(2)


def test_condition_needs_both_windows_strictly_above():
    assert budget_math.condition_holds(D("14.4"), D("14.5"), D(20))
    assert not budget_math.condition_holds(D("14.4"), D("14.4"), D(20))
    assert not budget_math.condition_holds(D("14.4"), D(20), D(1))
    assert not budget_math.condition_holds(D("14.4"), None, D(20))


def test_units_read_exactly():
    assert parse_duration("300ms") == D("0.3")
    assert parse_duration("1h30m") == 5400
    assert parse_duration("30d") == W30
    assert format_duration(W30) == "30d"
    assert format_duration(D("0.3")) == "300ms"
    assert format_duration(5400) == "1h30m"
    assert parse_objective(99.9) == D("0.999")
    assert parse_objective("99.9%") == D("0.999")
    assert parse_objective(0.999) == D("0.999")
    for bad in (100, "100%", 0, -1, 101, "abc", True):
        with pytest.raises(ValueError):
            parse_objective(bad)


objectives = st.sampled_from([D("0.9"), D("0.95"), D("0.99"), D("0.995"), D("0.999"), D("0.9999")])


@given(st.integers(0, 10**9), st.integers(1, 10**9), st.integers(0, 10**6), objectives)
def test_consumed_is_monotone_in_bad_events(bad, valid, extra, obj):
    bad = min(bad, valid)
    more = min(bad + extra, valid)
    assert budget_math.budget_consumed(more, valid, obj) >= budget_math.budget_consumed(bad, valid, obj)


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=50), st.randoms(), objectives)
def test_budget_is_independent_of_event_order(minutes, rnd, obj):
    rows = [(min(b, v), v) for b, v in minutes]
    shuffled = rows[:]
    rnd.shuffle(shuffled)

    def total(xs):
        return sum(b for b, _ in xs), sum(v for _, v in xs)

    b1, v1 = total(rows)
    b2, v2 = total(shuffled)
    assert budget_math.budget_consumed(b1, v1, obj) == budget_math.budget_consumed(b2, v2, obj)


@given(st.integers(0, 10**6), st.integers(1, 10**6), objectives)
def test_rolling_equals_calendar_when_the_window_is_complete(bad, valid, obj):
    bad = min(bad, valid)
    assert budget_math.budget_consumed(bad, valid, obj, D(1)) == budget_math.burn_rate(bad, valid, obj)
    assert budget_math.allowed_bad(valid, obj, D(1)) == (1 - obj) * valid


@given(st.integers(0, 10**6), st.integers(1, 10**6), objectives, st.integers(1, 1000))
def test_consumed_equals_burn_rate_times_elapsed_fraction(bad, valid, obj, permille):
    bad = min(bad, valid)
    f = D(permille) / 1000
    assert budget_math.budget_consumed(bad, valid, obj, f) == budget_math.burn_rate(bad, valid, obj) * f
    # and equals bad over the projected allowance for the whole window
    allowed = budget_math.allowed_bad(valid, obj, f)
    assert abs(budget_math.budget_consumed(bad, valid, obj, f) - D(bad) / allowed) < D("1e-20")


# -- partial coverage: the window counts from the first sample (or `since:`) ----------------------------


def test_partial_coverage_golden_vectors():
    """A rolling 30d SLO at 99.9% with 3 days of data (72,000 requests, 144 failed): burn rate 2.
    The window is 3/30 = 10% elapsed, so 20% of the budget is consumed, not 200%; the whole
    window's allowance is projected from the 3 days: 0.001 x 72,000 / 0.1 = 720 bad requests."""
    f = budget_math.elapsed_fraction(3 * 1440, 30 * 1440)
    assert f == D("0.1")
    assert budget_math.burn_rate(144, 72_000, D("0.999")) == 2
    assert budget_math.budget_consumed(144, 72_000, D("0.999"), f) == D("0.2")
    assert budget_math.allowed_bad(72_000, D("0.999"), f) == 720
    # time to exhaustion: 80% left at burn rate 2 over 30 days = 12 days
    assert budget_math.time_to_exhaustion(1 - D("0.2"), W30, D(2)) == 12 * DAY
    # a calendar month (30 days) first sampled on day 10, evaluated at the end of day 12: 3/30 elapsed
    assert budget_math.elapsed_fraction(3 * 1440, 30 * 1440) == D(3) / D(30)
    # no coverage yet: nothing elapsed, no allowance, no NaN
    assert budget_math.elapsed_fraction(0, 30 * 1440) == 0
    assert budget_math.allowed_bad(0, D("0.999"), D(0)) is None
    assert budget_math.budget_consumed(0, 0, D("0.999"), D(0)) is None


@given(st.integers(0, 43_200), st.integers(1, 43_200))
def test_elapsed_fraction_is_exact_and_bounded(covered, length):
    f = budget_math.elapsed_fraction(covered, length)
    assert D(0) <= f <= D(1)
    assert f == min(D(covered), D(length)) / D(length)
