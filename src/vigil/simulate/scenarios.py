"""What the example platform's traffic looks like: the steady conditions and the named incidents.

Pure data and pure functions. A :class:`Conditions` describes one minute of the platform (rates,
shares, latency distributions, gauge levels); a :class:`Scenario` turns the steady conditions into
the conditions of a minute inside its incident window, given how far into the incident the minute
is. Outside the incident every scenario is :data:`STEADY`, so its output there is byte-identical to
the ``steady`` scenario's for the same seed.

Metrics (the names ``examples/platform/vigil.yaml`` selects)::

    http_requests                   counter      service=api|pages, code, cache=hit|miss
    http_request_duration_seconds   observation  service=api|pages, cache=hit|miss
    checkout_attempts               counter      outcome=success|issuer_declined|error
    page_revalidation_seconds       observation
    index_staleness_seconds         gauge        class=hot|cold
    queue_depth                     gauge        queue=dsar|email|outbox
    lambda_throttles                counter      service=api             (dashboard)
    waf_blocks                      counter      rule=rate-limit|managed (dashboard)
    email_failures                  counter      reason=bounce|provider_error (dashboard)
    search_requests                 counter      result=hit|no_hit (dashboard: search hit ratio)
    search_cpu_percent              gauge        node=search-1|search-2 (dashboard)
    search_memory_bytes             gauge        node=search-1|search-2 (dashboard: heap)
    pgbackrest_backup_age_seconds   gauge        stanza=platform, repo=1|2, type=any (DR page)
    pg_archive_lag_seconds          gauge        stanza=platform (DR page)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable


@dataclass(frozen=True)
class LogNormal:
    """A log-normal distribution by its median (seconds) and the sigma of its logarithm."""

    median: float
    sigma: float

    def describe(self) -> str:
        return f"log-normal, median {_secs(self.median)}, sigma {self.sigma}"


@dataclass(frozen=True)
class HttpTraffic:
    """One service's requests: a Poisson rate, a cache-hit share, status codes, latencies."""

    service: str
    rps: float
    hit_ratio: float
    codes: tuple[tuple[str, float], ...]
    hit_latency: LogNormal
    miss_latency: LogNormal

    def share_5xx(self) -> float:
        return sum(p for c, p in self.codes if c.startswith("5"))


@dataclass(frozen=True)
class Conditions:
    """The platform during one minute. Rates are means before the time-of-day curve."""

    api: HttpTraffic
    pages: HttpTraffic
    checkout_per_s: float
    checkout_outcomes: tuple[tuple[str, float], ...]
    revalidations_per_min: float
    revalidation: LogNormal
    hot_staleness: LogNormal
    cold_staleness: LogNormal
    queues: tuple[tuple[str, float], ...]  # queue -> mean depth (Poisson)
    lambda_throttles_per_min: float
    waf_blocks_per_min: tuple[tuple[str, float], ...]
    email_failures_per_min: tuple[tuple[str, float], ...]
    search_per_s: float = 8.0
    search_hit_ratio: float = 0.93
    search_cpu_percent: float = 35.0  # mean per node, before the time-of-day curve
    search_memory_bytes: float = 3.2e9  # per node
    # the search indexer
    index_reporting: bool = True
    index_lag: float = 0.0  # staleness added at the start of the minute, seconds
    index_lag_slope: float = 0.0  # staleness added per second into the minute
    outbox_backlog: float = 0.0  # queue items added to the outbox at the start of the minute
    outbox_backlog_slope: float = 0.0  # items added per second into the minute


API_CODES: tuple[tuple[str, float], ...] = (
    ("200", 0.9845),
    ("400", 0.008),
    ("401", 0.004),
    ("404", 0.002),
    ("429", 0.0013),
    ("500", 0.0001),
    ("502", 0.00005),
    ("503", 0.00005),
)

PAGES_CODES: tuple[tuple[str, float], ...] = (
    ("200", 0.962),
    ("304", 0.03),
    ("404", 0.0078),
    ("500", 0.0001),
    ("503", 0.0001),
)

STEADY = Conditions(
    api=HttpTraffic(
        service="api",
        rps=20.0,
        hit_ratio=0.8,
        codes=API_CODES,
        hit_latency=LogNormal(0.035, 0.5),
        miss_latency=LogNormal(0.12, 0.45),
    ),
    pages=HttpTraffic(
        service="pages",
        rps=5.0,
        hit_ratio=0.92,
        codes=PAGES_CODES,
        hit_latency=LogNormal(0.012, 0.4),
        miss_latency=LogNormal(0.25, 0.5),
    ),
    checkout_per_s=1.0,
    checkout_outcomes=(("success", 0.9645), ("issuer_declined", 0.0345), ("error", 0.001)),
    revalidations_per_min=1.5,
    revalidation=LogNormal(40.0, 0.7),
    hot_staleness=LogNormal(20.0, 0.5),
    cold_staleness=LogNormal(180.0, 0.4),
    queues=(("dsar", 3.0), ("email", 20.0), ("outbox", 12.0)),
    lambda_throttles_per_min=0.02,
    waf_blocks_per_min=(("rate-limit", 1.5), ("managed", 3.0)),
    email_failures_per_min=(("bounce", 0.3), ("provider_error", 0.02)),
)
"""Healthy traffic, well inside every SLO of the example spec (burn rates about 0.2 or less)."""

DIURNAL_AMPLITUDE = 0.35
DIURNAL_PEAK_HOUR_UTC = 15
"""Request rates follow a day curve: rate * (1 + 0.35 * cos(2 pi (hour - 15) / 24)), so 0.65x at
03:00 UTC and 1.35x at 15:00 UTC. Shares, latencies and gauges do not depend on the hour."""


IncidentFn = Callable[[Conditions, int, int], Conditions]
"""(steady conditions, seconds from the incident start to the minute's start, incident length in
seconds) -> the conditions of that minute."""


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    incident: IncidentFn | None = None
    details: tuple[str, ...] = ()

    @property
    def has_incident(self) -> bool:
        return self.incident is not None

    def conditions(self, steady: Conditions, since_start: int | None, length: int) -> Conditions:
        """The conditions of a minute ``since_start`` seconds into the incident (None: outside)."""
        if since_start is None or self.incident is None:
            return steady
        return self.incident(steady, since_start, length)

    def to_dict(self) -> dict:
        return {"name": self.name, "summary": self.summary, "incident": self.has_incident, "details": list(self.details)}


def with_5xx(codes: tuple[tuple[str, float], ...], errors: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """``codes`` with the 5xx shares replaced by ``errors`` and the other codes scaled to fit."""
    rest = [(c, p) for c, p in codes if not c.startswith("5")]
    total_rest = sum(p for _, p in rest)
    keep = 1.0 - sum(errors.values())
    out = [(c, p * keep / total_rest) for c, p in rest]
    out += sorted(errors.items())
    return tuple(out)


# -- the incidents ----------------------------------------------------------------------------

SPIKE_5XX = {"500": 0.025, "502": 0.015, "503": 0.010}
SPIKE_THROTTLES_PER_MIN = 60.0


def _api_5xx_spike(c: Conditions, since_start: int, length: int) -> Conditions:
    return replace(
        c,
        api=replace(c.api, codes=with_5xx(c.api.codes, SPIKE_5XX)),
        lambda_throttles_per_min=SPIKE_THROTTLES_PER_MIN,
    )


STALL_GROWTH_SLOPE = 0.75  # seconds of staleness per second while the indexer falls behind
STALL_OUTBOX_INFLOW = 6.0  # outbox items per second that nobody consumes during the stall


def stall_growth_seconds(length: int) -> int:
    """How long hot staleness grows before the indexer stops reporting: the first third of the
    incident, in whole minutes, at least one minute."""
    return max(60, (length // 3) // 60 * 60)


def _indexer_stall(c: Conditions, since_start: int, length: int) -> Conditions:
    grow = stall_growth_seconds(length)
    half = STALL_OUTBOX_INFLOW / 2  # while falling behind the indexer consumes half the inflow
    if since_start < grow:
        return replace(
            c,
            index_lag=STALL_GROWTH_SLOPE * since_start,
            index_lag_slope=STALL_GROWTH_SLOPE,
            outbox_backlog=half * since_start,
            outbox_backlog_slope=half,
        )
    return replace(
        c,
        index_reporting=False,
        outbox_backlog=half * grow + STALL_OUTBOX_INFLOW * (since_start - grow),
        outbox_backlog_slope=STALL_OUTBOX_INFLOW,
    )


SLOW_MISS_LATENCY = LogNormal(0.7, 0.35)


def _slow_cache_misses(c: Conditions, since_start: int, length: int) -> Conditions:
    return replace(c, api=replace(c.api, miss_latency=SLOW_MISS_LATENCY))


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _secs(x: float) -> str:
    return f"{x * 1000:g}ms" if x < 1 else f"{x:g}s"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "steady",
            "healthy traffic inside every SLO of the example spec; no incident",
            None,
            (
                f"api {STEADY.api.rps:g} req/s, {_pct(STEADY.api.hit_ratio)} cache hits, "
                f"{_pct(STEADY.api.share_5xx())} 5xx; hits {STEADY.api.hit_latency.describe()}, "
                f"misses {STEADY.api.miss_latency.describe()}",
                f"pages {STEADY.pages.rps:g} req/s, {_pct(STEADY.pages.hit_ratio)} cache hits, "
                f"{_pct(STEADY.pages.share_5xx())} 5xx",
                f"checkout {STEADY.checkout_per_s:g}/s: "
                + ", ".join(f"{o} {_pct(p)}" for o, p in STEADY.checkout_outcomes),
                f"hot index staleness {STEADY.hot_staleness.describe()}; "
                f"revalidation {STEADY.revalidation.describe()}",
            ),
        ),
        Scenario(
            "api-5xx-spike",
            "the API fails 5% of requests with 5xx (500/502/503) during the incident; "
            "lambda throttles rise",
            _api_5xx_spike,
            (
                "api 5xx: " + ", ".join(f"{k} {_pct(v)}" for k, v in sorted(SPIKE_5XX.items()))
                + f" (1h burn rate about 50 for a 99.9% SLO); lambda throttles {SPIKE_THROTTLES_PER_MIN:g}/min",
            ),
        ),
        Scenario(
            "indexer-stall",
            "hot index staleness grows, then the indexer stops reporting (no index_staleness "
            "samples) until the incident ends; the outbox queue backs up",
            _indexer_stall,
            (
                f"first third of the incident: staleness grows {STALL_GROWTH_SLOPE:g}s per second "
                "(past the 5 minute objective after about 6 minutes)",
                "then: no index_staleness samples at all (hot or cold)",
                f"outbox queue grows {STALL_OUTBOX_INFLOW / 2:g}/s, then {STALL_OUTBOX_INFLOW:g}/s",
            ),
        ),
        Scenario(
            "slow-cache-misses",
            "API cache misses slow down to a median of 700 ms (over the 300 ms latency objective)",
            _slow_cache_misses,
            (f"api misses {SLOW_MISS_LATENCY.describe()} (about 20% of API requests over 300 ms)",),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        from vigil.errors import UsageError

        raise UsageError(f"unknown scenario {name!r}", hint=f"scenarios: {', '.join(SCENARIOS)}") from None
