"""The Source protocol: where the SLO engine, the gate and the canary judge read telemetry.

Every read is "sums over ``[start, end)``" for a list of starts sharing one end (minutes are Unix
minutes), so one pass over the data answers the whole window and every burn-rate window at once.
:meth:`Source.prefetch` lets a source answer all SLOs of an evaluation in one pass per metric kind.

A source is chosen by the spec (``telemetry.source``) through :func:`vigil.telemetry.sources.open_source`.
Every source passes the same conformance suite (``tests/source_conformance.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

from vigil.selector import Selector

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class CounterQuery:
    include: Selector
    exclude: Selector | None = None


@dataclass(frozen=True)
class ObservationQuery:
    metric: Selector
    le_ns: int


@dataclass(frozen=True)
class GaugeQuery:
    metric: Selector
    start: int
    end: int


@dataclass
class ReadPlan:
    """Everything one evaluation will ask, so a source can fetch it in as few passes as possible."""

    end: int
    starts: list[int] = field(default_factory=list)
    counters: list[CounterQuery] = field(default_factory=list)
    observations: list[ObservationQuery] = field(default_factory=list)
    gauges: list[GaugeQuery] = field(default_factory=list)
    firsts: list[tuple[Selector, str]] = field(default_factory=list)
    """(selector, series kind) pairs whose first minute with data will be asked."""


class Source(Protocol):
    def prefetch(self, plan: ReadPlan) -> None:
        """Optional: fetch everything in ``plan`` at once. Reads below must work without it."""

    def counter_sums(self, q: CounterQuery, starts: Sequence[int], end: int) -> list[int]:
        """For each start: the sum of increments of series matching ``include`` and not
        ``exclude`` over minutes ``[start, end)``."""

    def observation_counts(self, q: ObservationQuery, starts: Sequence[int], end: int) -> list[tuple[int, int]]:
        """For each start: (observations <= le, all observations) over ``[start, end)``."""

    def gauge_max(self, metric: Selector, start: int, end: int) -> np.ndarray:
        """Per minute of ``[start, end)``: the highest sample of any matching series, NaN where none."""

    def matched(self, selector: Selector, kind: str) -> tuple[int, int]:
        """(series of ``kind`` matching, series of other kinds matching): for warnings."""

    def first_minute(self, selector: Selector, kind: str) -> int | None:
        """The first minute any series of ``kind`` matching ``selector`` has data, ever (None: no
        data at all). An SLO's window counts from no earlier than this."""

    def bound_since(self, le_ns: int) -> int | None:
        """The minute from which a bucket bound is tracked exactly (None: never tracked)."""

    def bucket_bounds(self) -> dict[int, int]:
        """Every finite bucket bound observations are counted in, as ``{le_ns: first minute it is
        tracked from}`` (0: all history). The layout quantiles are read in: a step's buckets are
        the bounds tracked since its first minute. Consistent with :meth:`bound_since`."""

    def observation_buckets(self, metric: Selector, start: int, end: int) -> list[tuple[int, int]]:
        """Over ``[start, end)``: (bucket bound in ns, observations in that bucket), non-cumulative,
        summed over every matching observation series, sorted by bound (INF_NS is the overflow
        bucket). The canary judge reads distributions this way."""


Plan = ReadPlan
"""The old name of :class:`ReadPlan`."""
