"""Building blocks shared by every spec section: the strict base model and exact field types."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from vigil.selector import Selector, parse_selector
from vigil.units import format_duration, parse_duration, parse_fraction, parse_objective


class SpecModel(BaseModel):
    """Every spec model forbids unknown keys: a typo must never silently disable a check."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _selector(v: Any) -> Selector:
    if isinstance(v, Selector):
        return v
    return parse_selector(v)


def _duration(v: Any) -> Decimal:
    if isinstance(v, Decimal):
        return v
    return parse_duration(v)


def _fraction(v: Any) -> Decimal:
    return parse_fraction(v)


def _objective(v: Any) -> Decimal:
    return parse_objective(v)


SelectorField = Annotated[Selector, BeforeValidator(_selector), PlainSerializer(str, return_type=str)]
"""A PromQL-style selector, parsed when the spec loads."""

Duration = Annotated[Decimal, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)]
"""A duration in seconds, exact: ``300ms``, ``5m``, ``30d``."""

Fraction = Annotated[
    Decimal,
    BeforeValidator(_fraction),
    PlainSerializer(lambda d: f"{(d * 100).normalize():f}%", return_type=str),
]
"""A fraction written as a percentage (``50%``) or a number (``0.5``)."""

Objective = Annotated[Decimal, BeforeValidator(_objective), PlainSerializer(lambda d: float(d * 100), return_type=float)]
"""An SLO objective: ``99.9`` (percent) or ``0.999`` (fraction); stored as a fraction."""
