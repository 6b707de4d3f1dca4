"""The ``telemetry:`` section of the spec: how the embedded store keeps data."""

from __future__ import annotations

from decimal import Decimal

from typing import Literal

from pydantic import Field, field_validator

from vigil.model import Duration, SpecModel

SpanKindName = Literal["server", "consumer", "client", "producer", "internal"]
RESERVED_SPAN_LABELS = frozenset(("service", "route", "kind", "code", "error"))


class TracesSpec(SpecModel):
    """Spans received over OTLP (``POST /v1/traces``): how long they are kept, and which become
    request telemetry (``span_requests`` and ``span_duration_seconds``)."""

    retention: Duration = Field(Decimal(7 * 86400), description="spans are kept this long after they start (default 7d)")
    max_spans: int = Field(
        1_000_000, ge=1000, description="the most spans kept; past it the oldest traces go first (default 1000000)"
    )
    request_kinds: list[SpanKindName] = Field(
        default_factory=lambda: ["server", "consumer"],
        min_length=1,
        description="span kinds counted as requests (default: server and consumer, the spans where a request enters a service)",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="extra labels of the span metrics: label name -> span attribute (e.g. cache: app.cache); a span without the attribute has no such label",
    )

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: Decimal) -> Decimal:
        if v < 3600:
            raise ValueError("retention must be at least 1h")
        return v

    @field_validator("request_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a span kind is listed twice")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for name, attr in v.items():
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]{0,127}", name) or name.startswith("__"):
                raise ValueError(f"label name {name!r} must match [a-zA-Z_][a-zA-Z0-9_]* and not start with '__'")
            if name in RESERVED_SPAN_LABELS:
                raise ValueError(f"label {name!r} is set by vigil from the span itself; pick another name")
            if not attr or len(attr) > 256:
                raise ValueError(f"label {name!r}: the span attribute must be 1 to 256 characters")
        if len(v) > 16:
            raise ValueError("at most 16 extra span labels")
        return v


class TelemetrySpec(SpecModel):
    retention: Duration | None = Field(
        None, description="how long minute rollups are kept; default: the longest SLO window plus 35d"
    )
    max_future: Duration = Field(
        Decimal(600), description="samples stamped further than this in the future are rejected (default 10m)"
    )

    max_series_per_metric: int = Field(
        10_000, ge=1, description="series one metric may have; a line that would create one more is rejected (default 10000)"
    )
    max_series: int = Field(
        50_000, ge=1, description="series the store may hold; a line that would create one more is rejected (default 50000)"
    )

    traces: TracesSpec = Field(
        default_factory=TracesSpec, description="spans received over OTLP: retention, and which become request telemetry"
    )

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v < 3600:
            raise ValueError("retention must be at least 1h")
        return v
