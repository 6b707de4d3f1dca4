"""The ``telemetry:`` section of the spec: how the embedded store keeps data, and where SLOs are
evaluated (``source``, ``sources``: the embedded store, Prometheus or CloudWatch)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from vigil.model import Duration, Fraction, SpecModel

SpanKindName = Literal["server", "consumer", "client", "producer", "internal"]
RESERVED_SPAN_LABELS = frozenset(("service", "route", "kind", "code", "error"))


def _default_request_kinds() -> list[SpanKindName]:
    """Server and consumer spans: where a request enters a service."""
    return ["server", "consumer"]


class TracesSpec(SpecModel):
    """Spans received over OTLP (``POST /v1/traces``): how long they are kept, and which become
    request telemetry (``span_requests`` and ``span_duration_seconds``)."""

    retention: Duration = Field(Decimal(7 * 86400), description="spans are kept this long after they start (default 7d)")
    max_spans: int = Field(
        1_000_000, ge=1000, description="the most spans kept; past it the oldest traces go first (default 1000000)"
    )
    request_kinds: list[SpanKindName] = Field(
        default_factory=_default_request_kinds,
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


# -- where telemetry is read: the sources -------------------------------------------------------------

SOURCE_NAME = r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SECRET_HEADERS = frozenset(("authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"))


class HeaderValue(SpecModel):
    """A request header's value: from an environment variable, a private file, or (for what is not
    a secret, like a tenant id) written out."""

    env: str | None = Field(None, description="environment variable holding the value")
    file: str | None = Field(None, description="absolute path of a private file (mode 0600) holding the value")
    value: str | None = Field(None, description="the value itself; refused for Authorization, Cookie and API-key headers")

    @model_validator(mode="after")
    def _one(self) -> "HeaderValue":
        import re

        given = [k for k in ("env", "file", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a header value is exactly one of env, file or value")
        if self.env is not None and not re.match(_ENV_NAME, self.env):
            raise ValueError(f"env {self.env!r} is not an environment variable name")
        if self.file is not None and not self.file.startswith("/"):
            raise ValueError(f"file {self.file!r} must be an absolute path (the process that reads it may run elsewhere)")
        if self.value is not None and ("\n" in self.value or "\r" in self.value):
            raise ValueError("a header value cannot hold a line break")
        return self


class EmbeddedSourceSpec(SpecModel):
    """The embedded store (the default): what was pushed to vigil."""

    kind: Literal["embedded"] = Field(description="`embedded`")


class PrometheusSourceSpec(SpecModel):
    """A Prometheus-compatible server (Prometheus, Thanos, Mimir, VictoriaMetrics) read over its HTTP
    API: counters from their raw samples (exact, no `increase()` extrapolation), latency thresholds
    from `<metric>_bucket{le=...}`, freshness slices from the gauge's samples."""

    kind: Literal["prometheus"] = Field(description="`prometheus`")
    url: str = Field(description="base URL of the HTTP API, e.g. http://prometheus:9090 (the path of a prefix is kept)")
    headers: dict[str, HeaderValue] = Field(
        default_factory=dict,
        description="request headers, e.g. Authorization: {env: PROM_AUTH} or X-Scope-OrgID: {value: platform}",
    )
    timeout: Duration = Field(Decimal(30), description="per request (default 30s)")
    counter_suffix: str = Field(
        "_total",
        description="a counter `x` in a selector reads the series `x<suffix>` (OpenMetrics names counters `x_total`); "
        "a selector that already ends with it reads that name",
    )
    horizon: Duration = Field(
        Decimal(400 * 86400),
        description="how far back the source looks for a series' first sample and for a counter's last value before a "
        "window (default 400d, the longest window vigil allows)",
    )
    allow_link_local: bool = Field(False, description="allow link-local and cloud metadata addresses (default false)")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        from urllib.parse import urlsplit

        from vigil.netguard import url_problem

        why = url_problem(v, allow_link_local=True)
        if why:
            raise ValueError(f"url {v!r} {why}")
        parts = urlsplit(v)
        if parts.username or parts.password:
            raise ValueError("the url must not carry credentials; send them in a header read from env or a file")
        if parts.query or parts.fragment:
            raise ValueError("the url is a base URL: no query and no fragment")
        return v.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, HeaderValue]) -> dict[str, HeaderValue]:
        import re

        for name, hv in v.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}", name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            if hv.value is not None and name.lower() in _SECRET_HEADERS:
                raise ValueError(f"header {name} carries a secret: read it from env or a private file, never the spec")
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: Decimal) -> Decimal:
        if not Decimal("0.1") <= v <= 600:
            raise ValueError("timeout must be between 100ms and 10m")
        return v

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: Decimal) -> Decimal:
        if v < 3600 or v % 60:
            raise ValueError("horizon is whole minutes and at least 1h")
        return v

    @model_validator(mode="after")
    def _guard(self) -> "PrometheusSourceSpec":
        from vigil.netguard import url_problem

        why = None if self.allow_link_local else url_problem(self.url)
        if why:
            raise ValueError(f"url {self.url!r} {why}; set allow_link_local: true if this is intended")
        return self


CloudWatchKind = Literal["counter", "observation", "gauge"]


class CloudWatchMetric(SpecModel):
    """How one metric name of the spec's selectors is read from CloudWatch."""

    kind: CloudWatchKind = Field(
        description="`counter` (Sum per minute), `observation` (raw values: TC(:threshold) and SampleCount) or `gauge` (Maximum per minute)"
    )
    name: str | None = Field(None, description="the CloudWatch metric name (default: the name in the selector)")
    namespace: str | None = Field(None, description="its namespace (default: the source's)")
    unit_seconds: Decimal = Field(
        Decimal(1), gt=0, description="seconds per unit of an observation's values (0.001 for milliseconds, as AppSync and Lambda report)"
    )


class CloudWatchSourceSpec(SpecModel):
    """Amazon CloudWatch read with GetMetricData: one metric per dimension set (ListMetrics), a
    minute's Sum, Maximum, SampleCount or trimmed count TC(:threshold), summed by metric math."""

    kind: Literal["cloudwatch"] = Field(description="`cloudwatch`")
    region: str = Field(description="AWS region, e.g. eu-west-1")
    namespace: str = Field(description="the default namespace, e.g. Platform or AWS/AppSync")
    dimensions: dict[str, str] = Field(
        default_factory=dict, description="label name in the selectors -> CloudWatch dimension name (default: the same name)"
    )
    metrics: dict[str, CloudWatchMetric] = Field(
        default_factory=dict, description="metric name in the selectors -> the CloudWatch metric, its kind and unit"
    )
    endpoint_url: str | None = Field(None, description="another endpoint (a VPC endpoint, LocalStack); default AWS's")
    metric_math: bool = Field(
        True, description="sum the series of a selector in CloudWatch (SUM/MAX metric math) instead of in vigil (default true)"
    )
    horizon: Duration = Field(
        Decimal(455 * 86400),
        description="how far back the source looks for a metric's first datapoint (default 455d, CloudWatch's retention)",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", v):
            raise ValueError(f"{v!r} is not an AWS region name like eu-west-1")
        return v

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        from vigil.netguard import url_problem

        if v is not None:
            why = url_problem(v)
            if why:
                raise ValueError(f"endpoint_url {v!r} {why}")
        return v

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: Decimal) -> Decimal:
        if v < 3600 or v % 3600:
            raise ValueError("horizon is whole hours and at least 1h")
        return v


SourceSpec = Annotated[
    Union[EmbeddedSourceSpec, PrometheusSourceSpec, CloudWatchSourceSpec], Field(discriminator="kind")
]
"""Where telemetry is read: ``{kind: embedded}``, ``{kind: prometheus, url: ...}`` or ``{kind: cloudwatch, ...}``."""


def _default_source() -> Any:
    return EmbeddedSourceSpec(kind="embedded")


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

    bucket_width: Fraction | None = Field(
        Decimal("0.02"),
        description="relative width of the buckets observations are stored in: every bucket (l, u] from 1us to 1h has "
        "(u - l) / l at most this, so any quantile is known to within it (default 2%; 0.5% to 50%; null: the documented "
        "bounds only). The spec's thresholds stay exact bounds. A store keeps the finest width any spec gave it, from "
        "the first minute it was not yet observed: older data keeps its buckets",
    )

    traces: TracesSpec = Field(
        default_factory=TracesSpec, description="spans received over OTLP: retention, and which become request telemetry"
    )

    source: SourceSpec = Field(
        default_factory=_default_source,
        description="where SLOs, the gate, the canary, alerts and dashboards read telemetry: {kind: embedded} (default), "
        "{kind: prometheus, url: ...} or {kind: cloudwatch, region: ..., namespace: ...}",
    )
    sources: dict[str, SourceSpec] = Field(
        default_factory=dict,
        description="more sources by name; an SLO's `source:` names one of them (or `embedded`) to be evaluated there",
    )

    @field_validator("sources")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        import re

        for name in v:
            if not re.match(SOURCE_NAME, name):
                raise ValueError(f"source name {name!r} must be 1-64 lowercase letters, digits, '-' or '_'")
            if name in ("embedded", "default"):
                raise ValueError(f"{name!r} is a built-in source name; pick another")
        return v

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v < 3600:
            raise ValueError("retention must be at least 1h")
        return v

    @field_validator("bucket_width")
    @classmethod
    def _bucket_width(cls, v: Decimal | None) -> Decimal | None:
        from vigil.histogram import MAX_WIDTH, MIN_WIDTH

        if v is not None and not MIN_WIDTH <= v <= MAX_WIDTH:
            raise ValueError(f"bucket_width must be between {(MIN_WIDTH * 100).normalize():f}% and {(MAX_WIDTH * 100).normalize():f}%, got {(v * 100).normalize():f}%")
        return v


def source_names(telemetry: TelemetrySpec) -> list[str]:
    """The names an SLO's ``source:`` may give."""
    return ["default", "embedded", *sorted(telemetry.sources)]


def cross_check(spec: Any) -> list[tuple[tuple, str]]:
    """Every SLO's ``source:`` names a source."""
    out: list[tuple[tuple, str]] = []
    names = source_names(spec.telemetry)
    for i, slo in enumerate(getattr(spec, "slos", None) or []):
        name = getattr(slo, "source", None)
        if name is not None and name not in names:
            out.append((("slos", i, "source"), f"unknown source {name!r}; sources: {', '.join(names)}"))
    return out
