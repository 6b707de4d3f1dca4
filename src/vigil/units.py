"""Durations and percentages, read exactly (Decimal) from the spec and the command line."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_UNITS = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
    "w": Decimal(604800),
}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w))+$")
MAX_DURATION = Decimal(36500 * 86400)  # 100 years: anything longer is a typo, and keeps Decimal arithmetic exact
MAX_MAGNITUDE = 18  # numbers read from a spec or a flag are below 10**19


def parse_duration(value: object) -> Decimal:
    """``'300ms'`` -> ``Decimal('0.3')`` seconds; ``'1h30m'``; a bare number is seconds.

    Raises ``ValueError`` with a message fit for a user.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 300ms, 5m or 30d, got {value!r}")
    if isinstance(value, (int, float, Decimal)):
        d = to_decimal(value)
        if d < 0:
            raise ValueError(f"a duration cannot be negative: {value}")
        if d > MAX_DURATION:
            raise ValueError(f"duration {value} is too long; the most is 36500d (100 years)")
        return d
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like 300ms, 5m or 30d, got {type(value).__name__}")
    s = value.strip()
    if len(s) > 64 or not _WHOLE.match(s):
        raise ValueError(
            f"cannot read duration {value!r}: use a number and a unit (ms, s, m, h, d, w), "
            "like 300ms, 5m, 30d or 1h30m"
        )
    total = Decimal(0)
    for num, unit in _PART.findall(s):
        total += Decimal(num) * _UNITS[unit]
    if total > MAX_DURATION:
        raise ValueError(f"duration {value!r} is too long; the most is 36500d (100 years)")
    return total


def format_duration(seconds: Decimal | int | float) -> str:
    """The shortest exact spelling: 2592000 -> '30d', 0.3 -> '300ms', 5400 -> '1h30m'."""
    d = to_decimal(seconds)
    if d == 0:
        return "0s"
    exact = d * 1000
    if exact != exact.to_integral_value():
        return f"{d.normalize():f}s"
    ms = int(exact)
    out = []
    for unit, size in (("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        if unit == "w" and ms % size != 0:
            continue  # prefer 10d over 1w3d
        q, ms = divmod(ms, size)
        if q:
            out.append(f"{q}{unit}")
    return "".join(out)


def to_decimal(value: object) -> Decimal:
    """A number from YAML or JSON as an exact Decimal (floats go through their shortest repr)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got {value!r}") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"expected a finite number, got {_show(value)}")
    if d and d.adjusted() >= MAX_MAGNITUDE:
        raise ValueError(f"number {_show(value)} is too large")
    return d


def _show(value: object) -> str:
    """A value as a user wrote it: 99.9, not Decimal('99.9'); long text clipped."""
    text = str(value) if isinstance(value, (Decimal, int, float)) and not isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def parse_fraction(value: object, *, what: str = "value") -> Decimal:
    """``'50%'`` -> 0.5; a bare number is a fraction (``0.5``)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return to_decimal(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"cannot read {what} {_show(value)}: use a percentage like 50%") from None
    try:
        return to_decimal(value)
    except ValueError:
        raise ValueError(f"cannot read {what} {_show(value)}: use a percentage like 50% or a fraction like 0.5") from None


def parse_objective(value: object) -> Decimal:
    """An SLO objective: ``99.9``, ``'99.9%'`` or ``0.999`` -> ``Decimal('0.999')``.

    A bare number above 1 is a percentage. 100% is refused: it leaves no error budget.
    """
    if isinstance(value, str) and value.strip().endswith("%"):
        frac = parse_fraction(value, what="objective")
    else:
        try:
            d = to_decimal(value)
        except ValueError:
            raise ValueError(f"cannot read objective {_show(value)}: use a percentage like 99.9 or a fraction like 0.999") from None
        frac = d / 100 if d > 1 else d
    if frac <= 0 or frac > 1:
        raise ValueError(f"objective {_show(value)} is out of range: it must be above 0% and below 100%")
    if frac == 1:
        raise ValueError(
            "an objective of 100% leaves no error budget, so every burn rate is infinite; use 99.99 or similar"
        )
    return frac
