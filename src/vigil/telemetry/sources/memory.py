"""An in-memory source: the twin of the embedded store for tests and replays (``vigil alerts test``).

It holds per-minute data per series, fed sample by sample in the push format's terms, and answers
every read of :class:`~vigil.telemetry.sources.protocol.Source` by brute force: no caches, no hour
rollups, so it is also the reference the conformance suite compares other sources with.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from vigil.selector import Selector
from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery, ReadPlan

if TYPE_CHECKING:
    import numpy as np

INF_NS = 2**62
"""The overflow bucket's bound, as in the embedded store."""


@dataclass
class _Series:
    metric: str
    labels: dict[str, str]
    kind: str
    counters: dict[int, int] = field(default_factory=dict)
    observations: dict[int, dict[int, int]] = field(default_factory=dict)
    gauges: dict[int, float] = field(default_factory=dict)  # per-minute maximum

    def minutes(self) -> Iterable[int]:
        return self.counters.keys() if self.kind == "counter" else (
            self.observations.keys() if self.kind == "observation" else self.gauges.keys()
        )


class MemorySource:
    """Telemetry in memory. ``bounds_ns`` are the bucket bounds observations are counted in
    (default: the embedded store's documented bounds); a bound is exact for all history."""

    def __init__(self, bounds_ns: Sequence[int] | None = None) -> None:
        if bounds_ns is None:
            from vigil.telemetry.ingest import DOCUMENTED_BOUNDS, seconds_to_ns

            bounds_ns = [seconds_to_ns(b) for b in DOCUMENTED_BOUNDS]
        self.bounds_ns = sorted(set(bounds_ns))
        self._series: dict[tuple[str, str], _Series] = {}

    # -- feeding -------------------------------------------------------------------------------------

    def _get(self, metric: str, labels: Mapping[str, str] | None, kind: str) -> _Series:
        lab = dict(labels or {})
        key = (metric, json.dumps(lab, sort_keys=True))
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series(metric, lab, kind)
        elif s.kind != kind:
            raise ValueError(f"series {metric}{lab} is a {s.kind}, not a {kind}")
        return s

    def add_counter(self, metric: str, labels: Mapping[str, str] | None, minute: int, inc: int) -> None:
        if inc < 0:
            raise ValueError("a counter increment is 0 or more")
        s = self._get(metric, labels, "counter")
        s.counters[minute] = s.counters.get(minute, 0) + int(inc)

    def add_observation(self, metric: str, labels: Mapping[str, str] | None, minute: int, seconds: float, count: int = 1) -> None:
        s = self._get(metric, labels, "observation")
        le_ns = int(round(seconds * 1_000_000_000))
        i = bisect_left(self.bounds_ns, le_ns)
        le = self.bounds_ns[i] if i < len(self.bounds_ns) else INF_NS
        b = s.observations.setdefault(minute, {})
        b[le] = b.get(le, 0) + count

    def set_gauge(self, metric: str, labels: Mapping[str, str] | None, minute: int, value: float) -> None:
        s = self._get(metric, labels, "gauge")
        s.gauges[minute] = max(s.gauges.get(minute, float("-inf")), float(value))

    def add_rows(self, rows: Iterable[Mapping]) -> None:
        """Samples in the push format (``ts``, ``metric``, ``labels``, one of ``inc``/``observe``/``set``)."""
        from datetime import datetime

        for r in rows:
            minute = int(datetime.fromisoformat(str(r["ts"]).replace("Z", "+00:00")).timestamp()) // 60
            if "inc" in r:
                self.add_counter(r["metric"], r.get("labels"), minute, r["inc"])
            elif "observe" in r:
                self.add_observation(r["metric"], r.get("labels"), minute, float(r["observe"]), int(r.get("count", 1)))
            else:
                self.set_gauge(r["metric"], r.get("labels"), minute, r["set"])

    # -- the Source protocol -----------------------------------------------------------------------------

    def _matching(self, selector: Selector, kind: str) -> list[_Series]:
        return [s for s in self._series.values() if s.metric == selector.metric and s.kind == kind and selector.matches(s.labels)]

    def prefetch(self, plan: ReadPlan) -> None:
        """Nothing to fetch: everything is in memory."""

    def counter_sums(self, q: CounterQuery, starts: Sequence[int], end: int) -> list[int]:
        series = self._matching(q.include, "counter")
        if q.exclude is not None:
            ex = {id(s) for s in self._matching(q.exclude, "counter")}
            series = [s for s in series if id(s) not in ex]
        return [sum(v for s in series for m, v in s.counters.items() if st <= m < end) for st in starts]

    def observation_counts(self, q: ObservationQuery, starts: Sequence[int], end: int) -> list[tuple[int, int]]:
        series = self._matching(q.metric, "observation")
        out = []
        for st in starts:
            good = total = 0
            for s in series:
                for m, buckets in s.observations.items():
                    if st <= m < end:
                        for le, n in buckets.items():
                            total += n
                            if le <= q.le_ns:
                                good += n
            out.append((good, total))
        return out

    def gauge_max(self, metric: Selector, start: int, end: int) -> np.ndarray:
        import numpy as np

        arr = np.full(max(0, end - start), np.nan)
        for s in self._matching(metric, "gauge"):
            for m, v in s.gauges.items():
                if start <= m < end:
                    arr[m - start] = np.fmax(arr[m - start], v)
        return arr

    def matched(self, selector: Selector, kind: str) -> tuple[int, int]:
        same = other = 0
        for s in self._series.values():
            if s.metric == selector.metric and selector.matches(s.labels):
                if s.kind == kind:
                    same += 1
                else:
                    other += 1
        return same, other

    def first_minute(self, selector: Selector, kind: str) -> int | None:
        firsts = [min(s.minutes()) for s in self._matching(selector, kind) if any(True for _ in s.minutes())]
        return min(firsts) if firsts else None

    def bound_since(self, le_ns: int) -> int | None:
        return 0 if le_ns in self.bounds_ns else None

    def bucket_bounds(self) -> dict[int, int]:
        return {b: 0 for b in self.bounds_ns if b < INF_NS}

    def observation_buckets(self, metric: Selector, start: int, end: int) -> list[tuple[int, int]]:
        acc: dict[int, int] = {}
        for s in self._matching(metric, "observation"):
            for m, buckets in s.observations.items():
                if start <= m < end:
                    for le, n in buckets.items():
                        acc[le] = acc.get(le, 0) + n
        return sorted((le, n) for le, n in acc.items() if n)

    # -- for tests and reports -----------------------------------------------------------------------

    def series(self) -> list[tuple[str, dict[str, str], str]]:
        return [(s.metric, dict(s.labels), s.kind) for s in self._series.values()]
