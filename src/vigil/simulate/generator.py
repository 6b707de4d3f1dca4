"""The pure traffic generator: (seed, scenario, incident window, minute) -> NDJSON lines.

No I/O, no clock. Every minute draws from its own random generator seeded with ``(seed, minute)``,
so a minute's lines never depend on how a time range was cut into chunks: a backfill followed by
live ticks is byte-identical to one long backfill of the same range.

A minute is aggregated, so a month stays a few million lines:

- counters: one ``inc`` line per series with the minute's count, stamped at second 59 (a minute's
  events are reported when they have happened, as a scrape at the minute's end would);
- observations: weighted lines ``{"observe": v, "count": n}`` on a latency grid, stamped at :59.
  Values are rounded *up* to the grid (5 ms steps up to 50 ms, then 25 ms to 500 ms, 50 ms to 1 s,
  250 ms to 5 s, 1 s to 1 min, 5 s to 15 min, 1 min to 1 h), and the grid holds every documented bucket bound and every threshold of the
  example spec, so "v <= threshold" is exact for all of them;
- gauges: ``set`` samples at :00 and :30.

Lines are ordered by timestamp, and within a timestamp by a fixed series order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np

from vigil.simulate.scenarios import (
    DIURNAL_AMPLITUDE,
    DIURNAL_PEAK_HOUR_UTC,
    STEADY,
    Conditions,
    HttpTraffic,
    LogNormal,
    Scenario,
)
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS

COUNTER, OBSERVATION, GAUGE = 0, 1, 2
GAUGE_OFFSETS = (0, 30)
AGGREGATE_OFFSET = 59

Line = tuple[int, int, int, str]
"""(second within the minute, kind, samples it stands for, the NDJSON line without newline)."""


# -- the latency grid ---------------------------------------------------------------------------


def _grid_us() -> tuple[int, ...]:
    pts: set[int] = set()
    for lo, hi, step in (
        (1_000, 5_000, 1_000),
        (5_000, 50_000, 5_000),
        (50_000, 500_000, 25_000),
        (500_000, 1_000_000, 50_000),
        (1_000_000, 5_000_000, 250_000),
        (5_000_000, 60_000_000, 1_000_000),
        (60_000_000, 900_000_000, 5_000_000),
        (900_000_000, 3_600_000_000, 60_000_000),
    ):
        pts.update(range(lo, hi + 1, step))
    pts.update(int(b * 1_000_000) for b in DOCUMENTED_BOUNDS)
    return tuple(sorted(pts))


GRID_US = _grid_us()
GRID = np.array(GRID_US, dtype=np.float64) / 1e6
GRID_TEXT = tuple(repr(us / 1e6) for us in GRID_US)
TAIL = 1e-12


@dataclass(frozen=True)
class _Cells:
    first: int  # grid index of pvals[0]
    pvals: np.ndarray


@lru_cache(maxsize=256)
def latency_cells(dist: LogNormal) -> _Cells:
    """The probability of each grid cell (v rounded up to the grid) under ``dist``, with the far
    tails folded into the outermost kept cells. Values over the grid's top are reported at the top."""
    mu = math.log(dist.median)
    s = dist.sigma * math.sqrt(2)
    cdf = np.array([0.5 * (1 + math.erf((math.log(g) - mu) / s)) for g in GRID])
    p = np.diff(cdf, prepend=0.0)
    p[-1] += 1.0 - cdf[-1]
    lo = int(np.searchsorted(cdf, TAIL, side="right"))
    hi = int(np.searchsorted(cdf, 1.0 - TAIL, side="left"))
    lo = min(lo, len(p) - 1)
    hi = max(lo, min(hi, len(p) - 1))
    kept = p[lo : hi + 1].copy()
    kept[0] += p[:lo].sum()
    kept[-1] += p[hi + 1 :].sum()
    kept = np.clip(kept, 0.0, None)
    kept /= kept.sum()
    return _Cells(lo, kept)


@lru_cache(maxsize=256)
def _shares(pairs: tuple[tuple[str, float], ...]) -> np.ndarray:
    a = np.array([p for _, p in pairs], dtype=np.float64)
    return a / a.sum()


def diurnal(minute: int) -> float:
    hour = (minute % 1440) / 60
    return 1.0 + DIURNAL_AMPLITUDE * math.cos(2 * math.pi * (hour - DIURNAL_PEAK_HOUR_UTC) / 24)


# -- line prefixes --------------------------------------------------------------------------------


def _labels(d: dict[str, str]) -> str:
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in d.items()) + "}"


@lru_cache(maxsize=4096)
def _prefix(metric: str, labels: tuple[tuple[str, str], ...], field: str) -> str:
    """Everything of a line after the ts value up to the number."""
    lab = f',"labels":{_labels(dict(labels))}' if labels else ""
    return f'","metric":"{metric}"{lab},"{field}":'


def _minute_text(minute: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(minute * 60))


# -- the simulator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """An incident window in whole minutes: ``[start, end)`` Unix minutes."""

    start: int
    end: int

    @classmethod
    def from_seconds(cls, start_s: int, length_s: int) -> "Incident":
        start = start_s // 60
        return cls(start, start + max(1, length_s // 60))

    @property
    def length_seconds(self) -> int:
        return (self.end - self.start) * 60

    def overlaps(self, start_s: int, end_s: int) -> bool:
        return self.start * 60 < end_s and start_s < self.end * 60


class Simulator:
    """The lines of any minute of a scenario, for one seed and incident window."""

    def __init__(self, scenario: Scenario, seed: int, incident: Incident | None = None, steady: Conditions = STEADY) -> None:
        if seed < 0:
            raise ValueError("the seed must be 0 or more")
        self.scenario = scenario
        self.seed = seed
        self.incident = incident if scenario.has_incident else None
        self.steady = steady

    def conditions(self, minute: int) -> Conditions:
        inc = self.incident
        if inc is None or not (inc.start <= minute < inc.end):
            return self.steady
        return self.scenario.conditions(self.steady, (minute - inc.start) * 60, inc.length_seconds)

    def minute(self, minute: int) -> list[Line]:
        """Every line of one Unix minute, ordered by timestamp."""
        c = self.conditions(minute)
        rng = np.random.default_rng((self.seed, minute))
        day = diurnal(minute)
        mt = _minute_text(minute)
        agg_ts = f'{{"ts":"{mt}:{AGGREGATE_OFFSET:02d}Z'
        agg: list[Line] = []
        for svc in (c.api, c.pages):
            self._http(rng, svc, day, agg_ts, agg)
        # checkout attempts
        n = int(rng.poisson(c.checkout_per_s * 60 * day))
        outcomes = rng.multinomial(n, _shares(c.checkout_outcomes))
        for (name, _), k in zip(c.checkout_outcomes, outcomes.tolist()):
            if k:
                agg.append((AGGREGATE_OFFSET, COUNTER, k, agg_ts + _prefix("checkout_attempts", (("outcome", name),), "inc") + f"{k}}}"))
        # page revalidations
        n = int(rng.poisson(c.revalidations_per_min * day))
        self._observe(rng, n, c.revalidation, agg_ts + _prefix("page_revalidation_seconds", (), "observe"), agg)
        # gauges
        gauges: list[Line] = []
        for off in GAUGE_OFFSETS:
            ts = f'{{"ts":"{mt}:{off:02d}Z'
            lag = c.index_lag + c.index_lag_slope * off
            hot = float(rng.lognormal(math.log(c.hot_staleness.median), c.hot_staleness.sigma)) + lag
            cold = float(rng.lognormal(math.log(c.cold_staleness.median), c.cold_staleness.sigma)) + lag
            if c.index_reporting:
                for cls, v in (("hot", hot), ("cold", cold)):
                    gauges.append((off, GAUGE, 1, ts + _prefix("index_staleness_seconds", (("class", cls),), "set") + f"{round(v, 1)!r}}}"))
            depths = rng.poisson([mean for _, mean in c.queues]).tolist()
            for (q, _), d in zip(c.queues, depths):
                if q == "outbox":
                    d += int(c.outbox_backlog + c.outbox_backlog_slope * off)
                gauges.append((off, GAUGE, 1, ts + _prefix("queue_depth", (("queue", q),), "set") + f"{d}}}"))
        # dashboard counters
        extras: list[tuple[str, tuple[tuple[str, str], ...], float]] = [
            ("lambda_throttles", (("service", "api"),), c.lambda_throttles_per_min * day)
        ]
        extras += [("waf_blocks", (("rule", r),), rate * day) for r, rate in c.waf_blocks_per_min]
        extras += [("email_failures", (("reason", r),), rate) for r, rate in c.email_failures_per_min]
        counts = rng.poisson([rate for _, _, rate in extras]).tolist()
        for (metric, labels, _), k in zip(extras, counts):
            if k:
                agg.append((AGGREGATE_OFFSET, COUNTER, k, agg_ts + _prefix(metric, labels, "inc") + f"{k}}}"))
        self._search_and_backups(rng, c, minute, day, mt, agg_ts, gauges, agg)
        # ordered by second: gauges at :00, gauges at :30, then the minute's aggregates at :59
        gauges.sort(key=lambda x: x[0])  # stable: keeps series order within a second
        return gauges + agg

    @staticmethod
    def _search_and_backups(rng: np.random.Generator, c: Conditions, minute: int, day: float, mt: str, agg_ts: str,
                            gauges: list[Line], agg: list[Line]) -> None:
        """The search cluster (requests with a hit ratio, CPU and memory per node, at :00) and the
        backups' health (a daily full backup at 02:00 UTC taking 20 minutes; WAL archived within
        seconds), drawn after everything else so the other series keep their values."""
        n = int(rng.poisson(c.search_per_s * 60 * day))
        hits = int(rng.binomial(n, c.search_hit_ratio))
        for result, k in (("hit", hits), ("no_hit", n - hits)):
            if k:
                agg.append((AGGREGATE_OFFSET, COUNTER, k, agg_ts + _prefix("search_requests", (("result", result),), "inc") + f"{k}}}"))
        ts = f'{{"ts":"{mt}:00Z'
        for node in ("search-1", "search-2"):
            cpu = min(100.0, max(0.0, c.search_cpu_percent * day + float(rng.normal(0, 3))))
            mem = c.search_memory_bytes + float(rng.normal(0, 5e7))
            gauges.append((0, GAUGE, 1, ts + _prefix("search_cpu_percent", (("node", node),), "set") + f"{round(cpu, 1)!r}}}"))
            gauges.append((0, GAUGE, 1, ts + _prefix("search_memory_bytes", (("node", node),), "set") + f"{int(mem)}}}"))
        since = (minute - 140) % 1440  # minutes since the last backup finished (02:20 UTC)
        for repo, extra in (("1", 0), ("2", 35)):  # the cross-region copy lands 35 minutes later
            age = (since - extra) % 1440 * 60
            labels = (("stanza", "platform"), ("repo", repo), ("type", "any"))
            gauges.append((0, GAUGE, 1, ts + _prefix("pgbackrest_backup_age_seconds", labels, "set") + f"{age}}}"))
        lag = int(rng.integers(0, 25))
        gauges.append((0, GAUGE, 1, ts + _prefix("pg_archive_lag_seconds", (("stanza", "platform"),), "set") + f"{lag}}}"))

    def _http(self, rng: np.random.Generator, t: HttpTraffic, day: float, agg_ts: str, out: list[Line]) -> None:
        n = int(rng.poisson(t.rps * 60 * day))
        hits = int(rng.binomial(n, t.hit_ratio))
        shares = _shares(t.codes)
        for cache, k, dist in (("hit", hits, t.hit_latency), ("miss", n - hits, t.miss_latency)):
            by_code = rng.multinomial(k, shares).tolist()
            for (code, _), m in zip(t.codes, by_code):
                if m:
                    pre = _prefix("http_requests", (("service", t.service), ("code", code), ("cache", cache)), "inc")
                    out.append((AGGREGATE_OFFSET, COUNTER, m, f"{agg_ts}{pre}{m}}}"))
            pre = _prefix("http_request_duration_seconds", (("service", t.service), ("cache", cache)), "observe")
            self._observe(rng, k, dist, agg_ts + pre, out)

    @staticmethod
    def _observe(rng: np.random.Generator, n: int, dist: LogNormal, head: str, out: list[Line]) -> None:
        cells = latency_cells(dist)
        counts = rng.multinomial(n, cells.pvals)
        first = cells.first
        for i in np.flatnonzero(counts).tolist():
            k = int(counts[i])
            out.append((AGGREGATE_OFFSET, OBSERVATION, k, f'{head}{GRID_TEXT[first + i]},"count":{k}}}'))

    def lines(self, start_s: int, end_s: int) -> Iterator[tuple[int, list[Line]]]:
        """(minute, its lines) for the lines stamped in ``[start_s, end_s)`` (Unix seconds)."""
        if end_s <= start_s:
            return
        first, last = start_s // 60, (end_s - 1) // 60
        for m in range(first, last + 1):
            rows = self.minute(m)
            lo = start_s - m * 60
            hi = end_s - m * 60
            if lo > 0 or hi < 60:
                rows = [r for r in rows if lo <= r[0] < hi]
            if rows:
                yield m, rows
