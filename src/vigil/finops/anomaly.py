"""Cost anomalies on a daily series (pure).

For each day ``t`` with at least ``min_history`` days before it, over the trailing ``window`` days:

1. the level of each day is the median of the seven days before it (a whole week, so the weekly
   pattern balances out; never the day itself, never the future);
2. the detrended value is the day minus its level; the weekly seasonal of a weekday is the median
   of the detrended values of that weekday in the window (a robust seasonal decomposition, period 7);
3. the residual of a day is its detrended value minus its weekday's seasonal taken without it
   (leave one out): every day of the window and ``t`` itself are measured the same way, out of
   sample, so the window's spread is not shrunk by fitting itself;
4. the expected cost of ``t`` is its level plus its weekday's seasonal;
5. the modified z-score (Iglewicz and Hoaglin) of that residual against the window's residuals is
   ``0.6745 (r - median) / MAD``. When the MAD is 0 (a flat series), the mean absolute deviation
   stands in (``(r - median) / (1.2533 meanAD)``); when that is 0 too, any rise is infinitely far
   (``z = inf``) and no change is 0.

A day is anomalous when its z-score passes ``z`` *and* its impact (actual - expected) is at least
``min_impact`` *and* at least ``min_percent`` of the expected: a rise of 3 cents on a quiet series
never pages. Only rises alarm (a cost that falls is not an incident). Never NaN: every value is a
finite float or ``inf``.

:func:`naive_scores` is the baseline the benchmark compares with: mean + ``k`` standard deviations
of the trailing window, the same floors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from vigil.finops.spec import Anomalies

MAD_SCALE = 0.6745
MEAN_AD_SCALE = 1.253314
INF = math.inf


@dataclass(frozen=True)
class Params:
    window: int = 28
    min_history: int = 14
    z: float = 3.5
    min_impact: float = 10.0
    min_percent: float = 0.2

    @classmethod
    def from_spec(cls, a: Anomalies) -> "Params":
        return cls(int(a.window), int(a.min_history), float(a.z), float(a.min_impact), float(a.min_percent))


@dataclass(frozen=True)
class Score:
    index: int
    actual: float
    expected: float
    impact: float
    z: float  # finite or inf, never NaN
    anomalous: bool

    @property
    def percent(self) -> float:
        if self.expected > 0:
            return self.impact / self.expected
        return INF if self.impact > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "actual": round(self.actual, 2),
            "expected": round(self.expected, 2),
            "impact": round(self.impact, 2),
            "impact_percent": None if math.isinf(self.percent) else round(self.percent * 100, 1),
            "z": None if math.isinf(self.z) else round(self.z, 2),
            "z_infinite": math.isinf(self.z),
            "anomalous": self.anomalous,
        }


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return 0.0
    m = n // 2
    return s[m] if n % 2 else (s[m - 1] + s[m]) / 2


def _levels(x: Sequence[float]) -> list[float]:
    """Each day's level: the median of the seven days before it (never the day itself, never the future)."""
    out = [x[0] if x else 0.0]
    for i in range(1, len(x)):
        out.append(_median(list(x[max(0, i - 7) : i])))
    return out


def modified_z(r: float, residuals: list[float]) -> float:
    """The modified z-score of ``r`` against ``residuals`` (MAD, else mean absolute deviation)."""
    med = _median(residuals)
    dev = [abs(v - med) for v in residuals]
    mad = _median(dev)
    d = r - med
    if mad > 1e-12:
        return MAD_SCALE * d / mad
    mean_ad = sum(dev) / len(dev) if dev else 0.0
    if mean_ad > 1e-12:
        return d / (MEAN_AD_SCALE * mean_ad)
    if d > 1e-12:
        return INF
    if d < -1e-12:
        return -INF
    return 0.0


def _passes_floors(impact: float, expected: float, p: Params) -> bool:
    if impact < p.min_impact or impact <= 0:
        return False
    if expected <= 0:
        return True
    return impact / expected >= p.min_percent


def score_series(values: Sequence[float | Decimal], p: Params, *, first_weekday: int = 0, start: int | None = None) -> list[Score]:
    """A score for every day from index ``max(min_history, start)`` on. ``first_weekday`` is the
    weekday (0 Monday) of ``values[0]``."""
    x = [float(v) for v in values]
    if any(math.isnan(v) or math.isinf(v) for v in x):
        raise ValueError("cost series must be finite numbers")
    n = len(x)
    levels = _levels(x)
    detr = [x[i] - levels[i] for i in range(n)]
    wd = [(first_weekday + i) % 7 for i in range(n)]
    out: list[Score] = []
    for t in range(max(p.min_history, start or 0, 1), n):
        lo = max(1, t - p.window)
        idx = range(lo, t)
        seasonal = [0.0] * 7
        resid: list[float] = []
        for w in range(7):
            vals = [detr[i] for i in idx if wd[i] == w]
            seasonal[w] = _median(vals) if vals else 0.0
            # each day's residual against its weekday's seasonal without itself (leave one out), as t
            # is measured against a seasonal it took no part in: in-sample residuals would be too small
            for k, v in enumerate(vals):
                others = vals[:k] + vals[k + 1 :]
                resid.append(v - (_median(others) if others else 0.0))
        expected = levels[t] + seasonal[wd[t]]
        impact = x[t] - expected
        z = modified_z(impact, resid)  # measured as each day of the window was: against the level of the week before it
        out.append(Score(t, x[t], expected, impact, z, z > p.z and _passes_floors(impact, expected, p)))
    return out


def naive_scores(values: Sequence[float | Decimal], p: Params, *, k: float = 3.0, start: int | None = None) -> list[Score]:
    """The baseline: a day above mean + k standard deviations of the trailing window (same floors)."""
    x = [float(v) for v in values]
    out: list[Score] = []
    for t in range(max(p.min_history, start or 0), len(x)):
        h = x[max(0, t - p.window) : t]
        mean = sum(h) / len(h)
        sd = math.sqrt(sum((v - mean) ** 2 for v in h) / len(h))
        impact = x[t] - mean
        z = impact / sd if sd > 1e-12 else (INF if impact > 1e-12 else 0.0)
        out.append(Score(t, x[t], mean, impact, z, z > k and _passes_floors(impact, mean, p)))
    return out


@dataclass(frozen=True)
class Contributor:
    service_name: str
    region: str
    usage_type: str
    actual: Decimal
    expected: Decimal

    @property
    def impact(self) -> Decimal:
        return self.actual - self.expected

    def to_dict(self) -> dict:
        q = Decimal("0.01")
        return {
            "service_name": self.service_name, "region": self.region, "usage_type": self.usage_type,
            "actual": str(self.actual.quantize(q)), "expected": str(self.expected.quantize(q)), "impact": str(self.impact.quantize(q)),
        }


def contributors(day_rows: list[dict], before_rows: list[dict], days_before: int, top: int = 5) -> list[Contributor]:
    """What moved: each (ServiceName, region, usage type) on the day against its mean over the days
    before, largest rise first."""
    expected: dict[tuple, Decimal] = {}
    for r in before_rows:
        k = (r["service_name"], r["region"], r["usage_type"])
        expected[k] = expected.get(k, Decimal(0)) + r["effective"]
    actual: dict[tuple, Decimal] = {}
    for r in day_rows:
        k = (r["service_name"], r["region"], r["usage_type"])
        actual[k] = actual.get(k, Decimal(0)) + r["effective"]
    n = max(1, days_before)
    out = [
        Contributor(k[0], k[1], k[2], actual.get(k, Decimal(0)), expected.get(k, Decimal(0)) / n)
        for k in set(actual) | set(expected)
    ]
    out.sort(key=lambda c: (-c.impact, c.service_name, c.region, c.usage_type))
    return [c for c in out if c.impact > 0][:top]
