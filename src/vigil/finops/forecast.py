"""The month's cost forecast with weekly seasonality (pure, exact ``Decimal``).

From the days observed so far (and up to four weeks before the month, when known), each weekday
gets a factor: the mean of that weekday's costs over the mean of all days, from the trailing 28
days. With fewer than 14 days there is too little to tell weekdays apart and every factor is 1.
The level is the mean of the last seven days, each divided by its weekday's factor; each day left
in the month is expected at level x its weekday's factor. The forecast is the month so far plus
those days.

Never NaN, never a division by zero: a month with no cost at all forecasts 0; nothing observed
at all is ``None`` (no data), which a budget shows as ``no_data``, never as a yes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Mapping

ZERO = Decimal(0)
SEASON_DAYS = 28
MIN_SEASON_DAYS = 14


@dataclass(frozen=True)
class Forecast:
    month: date  # the first day
    as_of: date | None  # the last day observed (None: none)
    actual: Decimal  # the month so far
    forecast: Decimal | None  # the whole month; None without any observation
    days_observed: int  # days of the month observed
    days_left: int
    factors: tuple[Decimal, ...]  # Monday .. Sunday

    def to_dict(self) -> dict:
        return {
            "month": self.month.strftime("%Y-%m"),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "actual": str(self.actual.quantize(Decimal("0.01"))),
            "forecast": None if self.forecast is None else str(self.forecast.quantize(Decimal("0.01"))),
            "days_observed": self.days_observed,
            "days_left": self.days_left,
            "weekday_factors": [str(f.quantize(Decimal("0.001"))) for f in self.factors],
        }


def month_end(first: date) -> date:
    """The first day of the next month."""
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def weekday_factors(days: Mapping[date, Decimal], through: date) -> tuple[Decimal, ...]:
    """Each weekday's mean over the mean of every day, over the trailing 28 days up to ``through``."""
    window = [through - timedelta(days=i) for i in range(SEASON_DAYS)]
    seen = [(d, days[d]) for d in window if d in days]
    ones = tuple(Decimal(1) for _ in range(7))
    if len(seen) < MIN_SEASON_DAYS:
        return ones
    overall = sum((v for _, v in seen), ZERO) / len(seen)
    if overall <= 0:
        return ones
    out = []
    for wd in range(7):
        vals = [v for d, v in seen if d.weekday() == wd]
        if not vals:
            out.append(Decimal(1))
            continue
        f = (sum(vals, ZERO) / len(vals)) / overall
        out.append(f if f > 0 else Decimal(1))
    return tuple(out)


def forecast_month(days: Mapping[date, Decimal], month: date, as_of: date | None) -> Forecast:
    """The forecast of ``month`` (its first day) from daily costs observed through ``as_of``.

    ``days`` holds observed days (a day absent was not observed; a day with no cost is 0 when the
    source reported it). Days after ``as_of`` are ignored."""
    first = month.replace(day=1)
    end = month_end(first)
    if as_of is not None and as_of >= end:
        as_of = end - timedelta(days=1)
    obs = {d: v for d, v in days.items() if as_of is not None and d <= as_of}
    in_month = {d: v for d, v in obs.items() if first <= d < end}
    actual = sum(in_month.values(), ZERO)
    if as_of is None or not obs:
        return Forecast(first, None, actual, None, 0, (end - first).days, tuple(Decimal(1) for _ in range(7)))
    factors = weekday_factors(obs, as_of)
    last7 = [as_of - timedelta(days=i) for i in range(7)]
    level_parts = [obs[d] / factors[d.weekday()] for d in last7 if d in obs]
    level = sum(level_parts, ZERO) / len(level_parts) if level_parts else ZERO
    start_left = max(first, as_of + timedelta(days=1))
    left = [start_left + timedelta(days=i) for i in range((end - start_left).days)]
    expected = sum((level * factors[d.weekday()] for d in left), ZERO)
    return Forecast(first, as_of, actual, actual + expected, len(in_month), len(left), factors)
