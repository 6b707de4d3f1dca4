"""The ``telemetry:`` section of the spec: how the embedded store keeps data."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from vigil.model import Duration, SpecModel


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

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v < 3600:
            raise ValueError("retention must be at least 1h")
        return v
