"""The SLO engine end to end over the embedded store: exact counts, windows, burn rates, states."""

from datetime import timedelta
from decimal import Decimal as D

from helpers import per_minute, push, spec_with, t

from vigil.clock import FakeClock, isoformat
from vigil.slo.evaluate import evaluate_slos
from vigil.slo.windows import calendar_bounds, span_at
from vigil.telemetry.source import EmbeddedSource

RATIO = """\
  - name: checkout-success
    service: checkout
    objective: 99.5
    window: {rolling: 30d}
    sli:
      ratio:
        good: 'checkout_attempts{outcome="success"}'
        total: 'checkout_attempts'
        exclude: 'checkout_attempts{outcome="issuer_declined"}'
"""


def status(store, spec, at):
    return {s.slo.name: s for s in evaluate_slos(spec.slos, EmbeddedSource(store), t(at))}


def test_ratio_is_an_exact_ratio_of_sums_with_exclusions(store):
    spec = spec_with(RATIO)

    def rows(ts, i):
        return [
            {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 1000 + i},
            {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "error"}, "inc": i % 3},
            {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "issuer_declined"}, "inc": 50},
        ]

    push(store, spec, per_minute("2026-11-01T00:00:00Z", 120, rows), "2026-11-01T02:00:00Z")
    s = status(store, spec, "2026-11-01T02:00:00Z")["checkout-success"]
    good = sum(1000 + i for i in range(120))
    bad = sum(i % 3 for i in range(120))
    assert (s.window_counts.good, s.window_counts.valid) == (good, good + bad)
    assert s.sli == D(good) / D(good + bad)
    # two hours of data in a rolling 30d window: the window counts from the first sample, so it is
    # 120 / 43,200 elapsed and consumed = burn rate so far x that fraction
    assert s.span.elapsed_fraction == D(120) / D(30 * 1440)
    assert s.consumed == (D(bad) / D(good + bad)) / D("0.005") * (D(120) / D(30 * 1440))
    # burn over the last 5 minutes: minutes 115..119
    b5 = sum(i % 3 for i in range(115, 120))
    g5 = sum(1000 + i for i in range(115, 120))
    assert s.burn_rate("5m") == (D(b5) / D(g5 + b5)) / D("0.005")
    d = s.to_dict()
    assert d["good"] == good and d["valid"] == good + bad
    assert set(d["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d", "window"}


def test_zero_traffic_is_no_data_never_nan(store):
    spec = spec_with(RATIO)
    s = status(store, spec, "2026-11-01T02:00:00Z")["checkout-success"]
    d = s.to_dict()
    assert d["state"] == "no_data"
    assert d["budget"]["consumed"] is None and d["sli"]["value"] is None
    assert all(v is None for v in d["burn_rates"].values())
    assert d["time_to_exhaustion"] is None


LATENCY = """\
  - name: api-latency
    service: api
    objective: 95
    window: {rolling: 7d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 300ms}
"""


def test_latency_is_exact_at_the_threshold(store):
    spec = spec_with(LATENCY)
    ts = "2026-11-01T00:00:00Z"
    rows = [
        {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.3, "count": 7},
        {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.30000001},
        {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.299},
        {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.0},
        {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 99999},
        {"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "other"}, "observe": 0.1},
    ]
    push(store, spec, rows, "2026-11-01T00:01:00Z")
    s = status(store, spec, "2026-11-01T00:01:00Z")["api-latency"]
    assert (s.window_counts.good, s.window_counts.valid) == (9, 11)
    assert s.warnings == []


def test_a_threshold_outside_the_documented_bounds_is_exact_from_when_it_is_declared(store):
    old = spec_with(LATENCY)
    new = spec_with(LATENCY.replace("300ms", "350ms"))
    row = {"metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.349}
    # before 350ms is declared: 0.349 falls in the store's 2% bucket (0.348, 0.352], which straddles it
    push(store, old, [dict(row, ts="2026-11-01T00:00:00Z")], "2026-11-01T00:00:30Z")
    push(store, new, [dict(row, ts="2026-11-01T01:00:00Z")], "2026-11-01T01:00:30Z")
    s = status(store, new, "2026-11-01T02:00:00Z")["api-latency"]
    # the later observation is judged exactly; the earlier one conservatively (as bad). Exact
    # since one past the last minute that held observations when 350ms was declared (00:00)
    assert (s.window_counts.good, s.window_counts.valid) == (1, 2)
    assert any("350ms is exact only for observations since 2026-11-01T00:01:00Z" in w for w in s.warnings)


def freshness(missing="bad", slice_="1m"):
    return f"""\
  - name: search-freshness
    service: search
    objective: 99
    window: {{rolling: 1d}}
    sli:
      freshness: {{metric: 'index_staleness_seconds{{class="hot"}}', threshold: 5m, slice: {slice_}, missing: {missing}}}
"""


def test_freshness_slices_good_bad_and_missing(store):
    spec = spec_with(freshness("bad"))
    at = "2026-11-02T00:00:00Z"

    def rows(ts, i):
        if 600 <= i < 630:  # the indexer stalls for 30 minutes: nothing reported
            return []
        v = 400 if 100 <= i < 110 else 30  # 10 slow minutes
        return [{"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": "hot"}, "set": v}]

    push(store, spec, per_minute("2026-11-01T00:00:00Z", 1440, rows), at)
    s = status(store, spec, at)["search-freshness"]
    assert (s.window_counts.good, s.window_counts.valid) == (1400, 1440)
    assert s.unit == "slices"
    for missing, expected in (("good", (1430, 1440)), ("ignore", (1400, 1410))):
        s2 = status(store, spec_with(freshness(missing)), at)["search-freshness"]
        assert (s2.window_counts.good, s2.window_counts.valid) == expected


def test_a_slice_is_good_only_if_every_sample_in_it_is_within_the_threshold(store):
    spec = spec_with(freshness("bad", "5m"))
    at = "2026-11-01T00:10:00Z"
    rows = [
        {"ts": "2026-11-01T00:00:10Z", "metric": "index_staleness_seconds", "labels": {"class": "hot"}, "set": 10},
        {"ts": "2026-11-01T00:03:10Z", "metric": "index_staleness_seconds", "labels": {"class": "hot"}, "set": 301},
        {"ts": "2026-11-01T00:05:10Z", "metric": "index_staleness_seconds", "labels": {"class": "hot"}, "set": 300},
    ]
    push(store, spec, rows, at)
    s = status(store, spec, at)["search-freshness"]
    # no slice counts before the first sample (00:00:10): two slices, [00:00, 00:05) bad (301),
    # [00:05, 00:10) good (300 <= 5m)
    assert (s.window_counts.good, s.window_counts.valid) == (1, 2)
    assert s.burn_counts["5m"].good == 1 and s.burn_counts["5m"].valid == 1
    # with `since:` a day back, every slice of the window counts: 1d / 5m = 288, 286 of them missing (bad)
    since = spec_with(freshness("bad", "5m").replace("    window:", "    since: 2026-10-31T00:00:00Z\n    window:"))
    s = status(store, since, at)["search-freshness"]
    assert (s.window_counts.good, s.window_counts.valid) == (1, 288)


def test_calendar_month_in_a_time_zone_including_dst():
    start, end = calendar_bounds("month", "Europe/Berlin", t("2026-03-15T12:00:00Z"))
    assert isoformat(start) == "2026-02-28T23:00:00Z"
    assert isoformat(end) == "2026-03-31T22:00:00Z"
    assert (end - start) == timedelta(days=31, hours=-1)  # the spring-forward hour is missing
    q0, q1 = calendar_bounds("quarter", "UTC", t("2026-11-26T00:00:00Z"))
    assert (isoformat(q0), isoformat(q1)) == ("2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z")
    w0, w1 = calendar_bounds("week", "UTC", t("2026-11-26T10:00:00Z"))  # a Thursday
    assert (isoformat(w0), isoformat(w1)) == ("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z")


CAL = RATIO.replace("{rolling: 30d}", "{calendar: month, timezone: UTC}")


def test_calendar_budget_is_projected_over_the_whole_window(store):
    spec = spec_with(CAL)

    def rows(ts, i):
        return [
            {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 199},
            {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "error"}, "inc": 1},
        ]

    # 2 days of a 30-day month at a 0.5% error ratio: burn rate 1, consumed = 1 * 2/30
    push(store, spec, per_minute("2026-11-01T00:00:00Z", 2880, rows), "2026-11-03T00:00:00Z")
    s = status(store, spec, "2026-11-03T00:00:00Z")["checkout-success"]
    assert s.span.elapsed_fraction == D(2) / D(30)
    assert s.burn_rate("window") == 1
    assert s.consumed == D(2) / D(30)
    assert s.allowed_bad == D("0.005") * 2880 * 200 * 15
    # the same two days in a rolling 30d window: the window counts from the first sample, so it is
    # 2/30 elapsed too (before coverage it was fully elapsed and consumed was the burn rate, 1)
    r = status(store, spec_with(RATIO), "2026-11-03T00:00:00Z")["checkout-success"]
    assert r.span.elapsed_fraction == D(2) / D(30) and r.consumed == D(2) / D(30)


def test_a_full_outage_pages_after_52_seconds_on_a_fake_clock(store):
    """Per-second traffic; at 12:00:00 everything fails. The 1h/14.4 rule needs 51.84 s of a full
    outage in a full hour; the embedded store counts the current minute so far, so the condition
    holds at the first whole second past that: 12:00:52."""
    spec = spec_with(RATIO.replace("99.5", "99.9"))
    clock = FakeClock("2026-11-01T10:59:00Z")
    rows = []
    for sec in range(3660):
        ts = isoformat(clock.now() + timedelta(seconds=sec))
        rows.append({"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 10})
    push(store, spec, rows, "2026-11-01T12:00:00Z")
    clock.set("2026-11-01T12:00:00Z")
    first_page = None
    for _ in range(70):
        ts = isoformat(clock.now())
        push(store, spec, [{"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "error"}, "inc": 10}], clock.now())
        clock.tick(1)
        s = status(store, spec, isoformat(clock.now()))["checkout-success"]
        holding = [c.name for c in s.mwmb if c.holds]
        if "page-1h" in holding:
            first_page = clock.now()
            break
    assert first_page is not None
    assert isoformat(first_page) == "2026-11-01T12:00:52Z"


def test_rolling_span_counts_the_current_minute():
    spec = spec_with(RATIO)
    sp = span_at(spec.slos[0].window, t("2026-11-01T12:00:30Z"))
    assert sp.now * 60 == t("2026-11-01T12:01:00Z").timestamp()
    assert sp.length == 30 * 1440 and sp.elapsed_fraction == 1
