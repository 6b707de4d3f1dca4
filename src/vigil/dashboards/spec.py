"""The ``dashboards:`` section of the spec: the plan's dashboards as panels of queries.

::

    dashboards:
      - name: api
        title: API
        panels:
          - title: API latency
            unit: seconds
            queries:
              - {label: p50, quantile: {metric: 'http_request_duration_seconds{service="api"}', q: 0.5}}
              - {label: p95, quantile: {metric: 'http_request_duration_seconds{service="api"}', q: 0.95}}
            thresholds: [{value: 0.3, label: p95 objective 300 ms}]
          - title: API error rate
            unit: ratio
            queries:
              - label: 5xx share
                ratio: {numerator: 'http_requests{service="api",code=~"5.."}', denominator: 'http_requests{service="api"}'}

A query has exactly one aggregation, computed per step of the chart's time range:

* ``rate``: a counter's increase per second over the step;
* ``ratio``: the sum of the numerator's increases over the sum of the denominator's (a ratio of
  sums, never a mean of ratios), no point where the denominator is 0;
* ``quantile``: ``q`` of the observations of the step, from the latency buckets (Prometheus'
  ``histogram_quantile``: linear inside the bucket holding the rank);
* ``last``: a gauge's last sample in the step (the highest matching series at that minute);
* ``max``: a gauge's highest sample in the step.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vigil.model import SelectorField, SpecModel

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")
UNITS = ("seconds", "ratio", "per_second", "count", "bytes", "percent")


class Ratio(SpecModel):
    numerator: SelectorField = Field(description="counter selector: the events counted above the line")
    denominator: SelectorField = Field(description="counter selector: all events")


class Quantile(SpecModel):
    metric: SelectorField = Field(description="observation (latency) selector")
    q: Decimal = Field(description="the quantile, above 0 and at most 1: 0.5, 0.95, 0.99")

    @field_validator("q", mode="before")
    @classmethod
    def _q(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float, str, Decimal)):
            raise ValueError("q is a number such as 0.95")
        d = Decimal(str(v))
        if not (0 < d <= 1):
            raise ValueError(f"q must be above 0 and at most 1, got {v}")
        return d


class PanelQuery(SpecModel):
    """One line of a panel: a label and exactly one aggregation."""

    label: str = Field(min_length=1, max_length=80, description="the line's name in the legend")
    rate: SelectorField | None = Field(None, description="counter selector: increase per second over each step")
    ratio: Ratio | None = Field(None, description="ratio of two counters' sums over each step")
    quantile: Quantile | None = Field(None, description="a quantile of the observations of each step")
    last: SelectorField | None = Field(None, description="gauge selector: the last sample of each step")
    max: SelectorField | None = Field(None, description="gauge selector: the highest sample of each step")

    @model_validator(mode="after")
    def _one(self) -> "PanelQuery":
        given = [k for k in ("rate", "ratio", "quantile", "last", "max") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a query has exactly one of rate, ratio, quantile, last, max"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("rate", "ratio", "quantile", "last", "max") if getattr(self, k) is not None)


class Threshold(SpecModel):
    value: Decimal = Field(description="where the line is drawn, in the panel's unit")
    label: str = Field(min_length=1, max_length=80, description="what the line means")


class Panel(SpecModel):
    title: str = Field(min_length=1, max_length=80, description="the panel's title, unique in its dashboard")
    description: str | None = Field(None, max_length=500, description="what the panel shows")
    unit: Literal["seconds", "ratio", "per_second", "count", "bytes", "percent"] = Field(
        "count", description="how values are shown: seconds, ratio (shown as %), per_second, count, bytes, percent (0-100)"
    )
    queries: list[PanelQuery] = Field(min_length=1, max_length=8, description="the panel's lines")
    thresholds: list[Threshold] = Field(default_factory=list, max_length=4, description="horizontal lines: objectives, limits")

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "panel"


class Dashboard(SpecModel):
    name: str = Field(description="the dashboard's name in URLs: lower-case letters, digits and '-'")
    title: str = Field(min_length=1, max_length=80, description="the dashboard's title")
    description: str | None = Field(None, max_length=500, description="what the dashboard is for")
    service: str | None = Field(None, description="the service it is about (optional; must be declared)")
    panels: list[Panel] = Field(min_length=1, max_length=24, description="the panels, in order")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"{v!r}: a dashboard name is 1-64 lower-case letters, digits and '-'")
        return v

    def panel(self, slug: str) -> Panel:
        for p in self.panels:
            if p.slug == slug:
                return p
        raise KeyError(slug)


def cross_check(spec: Any) -> list[tuple[tuple, str]]:
    """Unique dashboard names, unique panel titles per dashboard, declared services."""
    out: list[tuple[tuple, str]] = []
    seen: set[str] = set()
    for i, d in enumerate(getattr(spec, "dashboards", None) or []):
        if d.name in seen:
            out.append((("dashboards", i, "name"), f"duplicate dashboard name {d.name!r}"))
        seen.add(d.name)
        if d.service is not None and d.service not in spec.services:
            out.append((("dashboards", i, "service"), f"unknown service {d.service!r}"))
        slugs: set[str] = set()
        for j, p in enumerate(d.panels):
            if p.slug in slugs:
                out.append((("dashboards", i, "panels", j, "title"), f"duplicate panel title {p.title!r} in dashboard {d.name!r}"))
            slugs.add(p.slug)
    return out
