"""The ``slos:`` and ``policy:`` sections of the spec."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from vigil.model import Duration, Fraction, Objective, SelectorField, SpecModel
from vigil.units import format_duration

NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$")

NoData = Literal["allow", "freeze"]
"""What an SLO with no data in its window does at the gate: ``allow`` (with a warning) or ``freeze``."""


def _timestamp(v: Any) -> datetime:
    from vigil.clock import isoformat, parse_time
    from vigil.errors import UsageError

    if isinstance(v, datetime) and v.tzinfo is not None:
        v = isoformat(v)
    if not isinstance(v, str):
        raise ValueError(f"expected an RFC 3339 time like 2026-11-01T00:00:00Z, got {v!r}")
    if v.strip().lower().startswith(("now", "+", "-")):
        raise ValueError(f"{v!r}: a spec names a fixed time (RFC 3339, like 2026-11-01T00:00:00Z), not a relative one")
    try:
        return parse_time(v)
    except UsageError as e:
        raise ValueError(e.message + " (use RFC 3339, like 2026-11-01T00:00:00Z)") from None


def _format_timestamp(v: datetime) -> str:
    from vigil.clock import isoformat

    return isoformat(v)


Timestamp = Annotated[datetime, BeforeValidator(_timestamp), PlainSerializer(_format_timestamp, return_type=str)]
"""An RFC 3339 time with a zone, held in UTC."""


class RatioSLI(SpecModel):
    """Good events over valid events. ``exclude`` events count neither as good nor as valid."""

    good: SelectorField = Field(description="selector of the counter of good events")
    total: SelectorField = Field(description="selector of the counter of all events")
    exclude: SelectorField | None = Field(
        None, description="selector of events that count neither as good nor as valid (e.g. issuer declines)"
    )


class LatencySLI(SpecModel):
    """Observations at or under ``threshold`` are good; exact at the threshold, never interpolated."""

    metric: SelectorField = Field(description="selector of an observation metric (durations in seconds)")
    threshold: Duration = Field(description="an observation at or under this is good, like 300ms")

    @field_validator("threshold")
    @classmethod
    def _positive(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("threshold must be above zero")
        if v != v.quantize(Decimal("1e-9")):
            raise ValueError("threshold finer than a nanosecond cannot be stored exactly")
        return v


class FreshnessSLI(SpecModel):
    """A time-slice SLI over a gauge: a slice is good when every sample in it is within ``threshold``."""

    metric: SelectorField = Field(description="selector of a gauge, e.g. index staleness in seconds")
    threshold: Duration = Field(description="a slice is good when the gauge stays at or under this")
    slice: Duration = Field(Decimal(60), description="slice length, whole minutes dividing an hour (default 1m)")
    missing: Literal["bad", "good", "ignore"] = Field(
        "bad", description="what a slice with no sample counts as; `bad` makes a stalled reporter burn budget"
    )

    @field_validator("slice")
    @classmethod
    def _slice(cls, v: Decimal) -> Decimal:
        if v <= 0 or v > 3600 or v % 60 != 0 or 3600 % int(v) != 0:
            raise ValueError(
                f"slice {format_duration(v)} must be whole minutes that divide an hour (1m, 2m, 5m, 10m, 15m, 30m, 1h)"
            )
        return v


class SLI(SpecModel):
    """Exactly one of ``ratio``, ``latency``, ``freshness``."""

    ratio: RatioSLI | None = Field(None, description="good events / valid events, from counters")
    latency: LatencySLI | None = Field(None, description="observations at or under a threshold / all observations")
    freshness: FreshnessSLI | None = Field(None, description="time slices whose gauge stays within a threshold / all slices")

    @model_validator(mode="after")
    def _one(self) -> "SLI":
        given = [k for k in ("ratio", "latency", "freshness") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "an SLI has exactly one kind: ratio, latency or freshness"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return "ratio" if self.ratio else "latency" if self.latency else "freshness"

    @property
    def body(self) -> RatioSLI | LatencySLI | FreshnessSLI:
        body = self.ratio or self.latency or self.freshness
        if body is None:  # the validator lets exactly one be set
            raise ValueError("an SLI has exactly one kind: ratio, latency or freshness")
        return body


class Window(SpecModel):
    """``{rolling: 30d}`` or ``{calendar: month, timezone: Europe/Berlin}``."""

    rolling: Duration | None = Field(None, description="a rolling window, whole minutes, like 30d or 28d")
    calendar: Literal["month", "week", "quarter"] | None = Field(
        None, description="a calendar window; weeks start on Monday"
    )
    timezone: str | None = Field(None, description="IANA time zone of a calendar window (default UTC)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        # a field validator, so a bad zone is reported even when another key of the window is wrong
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(f"unknown time zone {v!r}; use an IANA name like Europe/Berlin") from None
        return v

    @model_validator(mode="after")
    def _one(self) -> "Window":
        if (self.rolling is None) == (self.calendar is None):
            raise ValueError("a window is either {rolling: 30d} or {calendar: month|week|quarter}")
        if self.rolling is not None:
            if self.timezone is not None:
                raise ValueError("timezone applies to calendar windows only")
            if self.rolling % 60 != 0 or self.rolling < 3600:
                raise ValueError("a rolling window is whole minutes and at least 1h")
            if self.rolling > 400 * 86400:
                raise ValueError("a rolling window is at most 400d")
        return self

    @property
    def tz(self) -> str:
        return self.timezone or "UTC"

    def describe(self) -> str:
        if self.rolling is not None:
            return f"rolling {format_duration(self.rolling)}"
        return f"calendar {self.calendar} ({self.tz})"


class SLO(SpecModel):
    name: str = Field(description="unique name, lowercase letters, digits, '-', '_' and '.'")
    service: str = Field(description="the service this SLO belongs to (a key of `services`)")
    objective: Objective = Field(description="target: 99.9 (percent) or 0.999 (fraction)")
    window: Window = Field(description="the compliance window")
    sli: SLI = Field(description="how good and valid events are counted")
    description: str | None = Field(None, description="free text shown in reports")
    since: Timestamp | None = Field(
        None,
        description="count the window from this time (RFC 3339) instead of from the first sample of the SLI's "
        "series; nothing before it counts. With `missing: bad`, slices after it with no sample count as bad",
    )
    no_data: NoData | None = Field(
        None,
        description="`freeze`: no data in the window freezes the service's deploys; `allow`: it does not "
        "(wins over the freeze rules' and the policy's `no_data`)",
    )
    source: str | None = Field(
        None,
        description="where this SLO's SLI is read: a name of `telemetry.sources`, `embedded` (the embedded store) or "
        "`default` (`telemetry.source`, also when omitted)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(
                f"SLO name {v!r} must be 1-128 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            )
        return v


class FreezeWhen(SpecModel):
    """Conditions of a freeze rule; all that are given must hold."""

    budget_consumed_over: Fraction | None = Field(None, description="budget consumed strictly above this, like 50%")
    window_elapsed_at_least: Fraction | None = Field(
        None,
        description="only once this much of the window has elapsed; the window counts from the later of its start "
        "and the SLO's coverage (first sample or `since`), so a 30d SLO with 3 days of data is 10% elapsed",
    )
    budget_exhausted: bool | None = Field(None, description="true: the whole budget is consumed (100% or more)")

    @model_validator(mode="after")
    def _some(self) -> "FreezeWhen":
        if self.budget_consumed_over is None and not self.budget_exhausted:
            raise ValueError("a freeze rule needs budget_consumed_over or budget_exhausted: true")
        for k in ("budget_consumed_over", "window_elapsed_at_least"):
            v = getattr(self, k)
            if v is not None and v < 0:
                raise ValueError(f"{k} cannot be negative")
        if self.window_elapsed_at_least is not None and self.window_elapsed_at_least > 1:
            raise ValueError("window_elapsed_at_least is at most 100%")
        return self

    def describe(self) -> str:
        parts = []
        if self.budget_consumed_over is not None:
            parts.append(f"budget consumed > {_pct(self.budget_consumed_over)}")
        if self.budget_exhausted:
            parts.append("budget exhausted")
        if self.window_elapsed_at_least is not None:
            parts.append(f"window elapsed >= {_pct(self.window_elapsed_at_least)}")
        return " and ".join(parts)


def _pct(d: Decimal) -> str:
    return f"{(d * 100).normalize():f}%"


class FreezeRule(SpecModel):
    name: str | None = Field(None, description="a name shown when the rule freezes a deploy")
    when: FreezeWhen = Field(description="conditions on one SLO's budget; all given must hold")
    scope: Literal["service", "global"] = Field(
        "service", description="`service`: freeze the service whose SLO trips the rule; `global`: freeze every service"
    )
    services: list[str] | None = Field(None, description="only SLOs of these services can trip the rule")
    no_data: NoData | None = Field(
        None,
        description="`freeze`: an SLO with no data in its window trips this rule; `allow`: it does not "
        "(wins over `policy.no_data`; an SLO's own `no_data` wins over it)",
    )


class Overrides(SpecModel):
    labels: list[str] = Field(
        default_factory=list, description="deploy labels that pass a freeze (with a mandatory --reason)"
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        import re

        for lb in v:  # an override label is typed in a pipeline and compared as written: no empty, spaced or look-alike one
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}", lb):
                raise ValueError(f"override label {lb[:40]!r} must be 1-64 ASCII letters, digits, '.', '_', ':', '/' or '-'")
        return v


class Policy(SpecModel):
    freeze: list[FreezeRule] = Field(default_factory=list, description="rules that freeze deploys")
    no_data: NoData | None = Field(
        None,
        description="what an SLO with no data in its window does at the gate: `allow` (default; the gate warns) "
        "or `freeze` (a broken selector or a stalled exporter must not pass). A rule's or an SLO's `no_data` wins",
    )
    overrides: Overrides = Field(default_factory=Overrides, description="how a deploy may pass a freeze")
    require_verdicts: list[Literal["migration", "canary"]] = Field(
        default_factory=list,
        description="verdicts the gate requires to pass for the release being deployed (`--release`); "
        "a failed, missing or inconclusive one blocks the deploy and no override label passes it",
    )
