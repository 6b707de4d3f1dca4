"""The ``canary:`` section of the spec: what the judge compares and how the deploy loop steps.

::

    canary:
      service: api
      metrics:
        - {name: latency, metric: 'http_request_duration_seconds{service="api"}', direction: increase, critical: true,
           quantiles: {p95: 5%, p99: 10%}}
        - {name: errors, ratio: {bad: 'http_requests{service="api",code=~"5.."}', total: 'http_requests{service="api"}'},
           direction: increase, critical: true, ceiling: 1%}
      thresholds: {pass: 95, marginal: 75}
      min_samples: 50
      resolution: 10%
      run:
        steps: [5, 25, 50, 100]
        interval: 10m
        hooks:
          set_weight: {command: [./scripts/set-weight, '{weight}'], timeout: 60s}
          rollback: {webhook: {url: 'https://deploy.example/hooks/rollback', secret_env: VIGIL_HOOK_SECRET}}

Cross-references to the rest of the spec (``service``, ``metrics[].slos``) are checked when the
canary is judged (:func:`vigil.deploy.canary.analysis.check_references`), with the spec path in the
message.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from vigil.model import Duration, Fraction, SelectorField, SpecModel
from vigil.netguard import url_problem
from vigil.units import format_duration

METRIC_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")
QUANTILE = re.compile(r"^p([0-9]{1,2}(\.[0-9]{1,3})?)$")


def quantile_of(name: str) -> Decimal | None:
    """``p95`` -> 0.95, ``p99.9`` -> 0.999; None when ``name`` is not a quantile in (0, 1)."""
    m = QUANTILE.match(name)
    if not m:
        return None
    q = Decimal(m.group(1)) / 100
    return q if 0 < q < 1 else None
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class RatioSelectors(SpecModel):
    """An error ratio: events matching ``bad`` over events matching ``total`` (counters)."""

    bad: SelectorField = Field(description="selector of the counter of bad events (e.g. 5xx responses)")
    total: SelectorField = Field(description="selector of the counter of all events")


class CanaryMetric(SpecModel):
    """One metric the judge compares between baseline and canary: a distribution or a ratio."""

    name: str = Field(description="a short name shown in verdicts, lowercase letters, digits, '-', '_' and '.'")
    metric: SelectorField | None = Field(
        None, description="selector of an observation metric (e.g. latency); compared with a Mann-Whitney U test"
    )
    ratio: RatioSelectors | None = Field(
        None, description="an error ratio from counters; compared with Fisher's exact test (sparse errors stay exact)"
    )
    direction: Literal["increase", "decrease", "either"] = Field(
        "increase", description="which change is bad: `increase` (latency, errors), `decrease`, or `either`"
    )
    critical: bool = Field(False, description="a critical metric that fails fails the whole canary")
    weight: Decimal = Field(Decimal(1), description="the metric's weight in the score (default 1)")
    no_data: Literal["inconclusive", "fail", "ignore"] = Field(
        "inconclusive",
        description="too few samples: `inconclusive` (the verdict is inconclusive), `fail` (counts as a failed metric), "
        "`ignore` (left out of the score; not allowed on a critical metric)",
    )
    min_samples: int | None = Field(None, description="samples each side needs (default `canary.min_samples`)")
    min_effect: Decimal | None = Field(None, description="effect-size floor of this metric (default `canary.min_effect`)")
    margin: Fraction | None = Field(
        None,
        description="a change the metric tolerates: for a distribution, a Hodges-Lehmann shift up to this share of the "
        "baseline median (10%); for a ratio, an error ratio up to this much above the baseline's (0.1%)",
    )
    slos: list[str] | None = Field(
        None,
        description="SLOs whose error budget the canary is checked against; default: the ratio SLOs counting the same "
        "`total` metric (latency SLOs on the same metric for a distribution); [] for none",
    )
    quantiles: dict[str, Fraction] | None = Field(
        None,
        description="quantile checks of a distribution: the most each quantile may regress, relative to the baseline's, "
        "e.g. {p95: 5%, p99: 10%}; judged on exact order-statistic confidence bounds",
    )
    ceiling: Fraction | None = Field(
        None,
        description="an absolute ceiling of a ratio metric: the canary's error ratio must be provably at or under it "
        "(Clopper-Pearson at `confidence`), e.g. 1%",
    )
    resolution: Fraction | None = Field(
        None, description="the coarsest data this distribution may be judged on (default `canary.resolution`)"
    )

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, v: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("quantiles needs at least one entry like p95: 5%")
        for k, t in v.items():
            if quantile_of(k) is None:
                raise ValueError(f"quantile {k!r} must be written like p50, p95, p99 or p99.9 (above 0, below 100)")
            if not 0 <= t <= 10:
                raise ValueError(f"quantiles.{k}: the tolerated regression must be between 0% and 1000%, got {t}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not METRIC_NAME.match(v):
            raise ValueError(f"metric name {v!r} must be 1-64 lowercase letters, digits, '-', '_' or '.'")
        return v

    @model_validator(mode="after")
    def _check(self) -> "CanaryMetric":
        if (self.metric is None) == (self.ratio is None):
            raise ValueError("a canary metric has exactly one of `metric` (a distribution) or `ratio` (bad/total)")
        if self.weight <= 0 or self.weight > 1000:
            raise ValueError("weight must be above 0 and at most 1000")
        if self.critical and self.no_data == "ignore":
            raise ValueError("a critical metric cannot ignore missing data; use no_data: inconclusive or fail")
        if self.min_samples is not None and not 1 <= self.min_samples <= 10**9:
            raise ValueError("min_samples must be between 1 and 1000000000")
        if self.min_effect is not None and not 0 <= self.min_effect < 1:
            raise ValueError("min_effect is a Cliff's delta between 0 and 1 (exclusive)")
        if self.margin is not None and self.margin < 0:
            raise ValueError("margin cannot be negative")
        if self.quantiles is not None and self.metric is None:
            raise ValueError("quantiles apply to a distribution (`metric:`); for a ratio use ceiling or margin")
        if self.resolution is not None and self.metric is None:
            raise ValueError("resolution applies to a distribution (`metric:`)")
        if self.resolution is not None and not 0 < self.resolution <= 10:
            raise ValueError("resolution must be above 0% and at most 1000%")
        if self.ceiling is not None:
            if self.ratio is None:
                raise ValueError("ceiling applies to a ratio (`ratio:`); for a distribution use quantiles")
            if not 0 < self.ceiling < 1:
                raise ValueError("ceiling is an error ratio above 0% and below 100%")
            if self.direction == "decrease":
                raise ValueError("a ceiling bounds an increase: use direction increase or either")
        return self

    @property
    def kind(self) -> str:
        return "distribution" if self.metric is not None else "ratio"


class Thresholds(SpecModel):
    """Score thresholds (0-100): at or above ``pass`` passes, at or above ``marginal`` is marginal."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    pass_: Decimal = Field(Decimal(95), alias="pass", description="a score at or above this passes (0-100)")
    marginal: Decimal = Field(Decimal(75), description="a score at or above this (and below pass) is marginal (0-100)")

    @model_validator(mode="after")
    def _order(self) -> "Thresholds":
        for k, v in (("pass", self.pass_), ("marginal", self.marginal)):
            if not 0 <= v <= 100:
                raise ValueError(f"thresholds.{k} must be between 0 and 100")
        if self.marginal > self.pass_:
            raise ValueError("thresholds.marginal cannot be above thresholds.pass")
        return self


class WebhookSpec(SpecModel):
    """POST a JSON body signed with HMAC-SHA256 (header ``X-Vigil-Signature-256: sha256=<hex>``)."""

    url: str = Field(description="http:// or https:// URL the JSON body is POSTed to")
    secret_env: str | None = Field(None, description="name of the environment variable holding the signing secret")
    secret_file: str | None = Field(None, description="path of a file holding the signing secret (relative to the spec)")
    retries: int = Field(2, description="retries after a refused connection, a timeout, 429 or 5xx (default 2)")
    allow_link_local: bool = Field(
        False, description="allow link-local and cloud metadata addresses (169.254.0.0/16, fd00:ec2::254); default false"
    )

    @model_validator(mode="after")
    def _check(self) -> "WebhookSpec":
        shape = url_problem(self.url, allow_link_local=True)
        if shape:
            raise ValueError(f"webhook url {self.url!r} {shape}")
        parts = urlsplit(self.url)
        if parts.username or parts.password:
            raise ValueError("a webhook url must not carry credentials; sign with secret_env or secret_file instead")
        why = None if self.allow_link_local else url_problem(self.url)
        if why:
            raise ValueError(f"webhook url {self.url!r} {why}; set allow_link_local: true if this is intended")
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError(
                "a webhook is signed: give exactly one of secret_env (an environment variable) or secret_file; "
                "never put the secret itself in the spec"
            )
        if self.secret_env is not None and not ENV_NAME.match(self.secret_env):
            raise ValueError(f"secret_env {self.secret_env!r} is not an environment variable name")
        if not 0 <= self.retries <= 10:
            raise ValueError("retries must be between 0 and 10")
        return self


class HookSpec(SpecModel):
    """Exactly one of ``command`` (an argument list, no shell) or ``webhook``."""

    command: list[str] | None = Field(
        None,
        description="argument list run without a shell; `{weight}`, `{run_id}`, `{action}` are replaced, and "
        "VIGIL_CANARY_WEIGHT, VIGIL_CANARY_RUN_ID, VIGIL_CANARY_ACTION are set",
    )
    webhook: WebhookSpec | None = Field(None, description="a signed JSON POST")
    timeout: Duration = Field(Decimal(30), description="how long the hook may take (default 30s)")

    @model_validator(mode="after")
    def _one(self) -> "HookSpec":
        if (self.command is None) == (self.webhook is None):
            raise ValueError("a hook is exactly one of command: [argv...] or webhook: {url: ...}")
        if self.command is not None and (not self.command or not self.command[0]):
            raise ValueError("command needs at least the program to run")
        if not 0 < self.timeout <= 3600:
            raise ValueError("timeout must be above 0 and at most 1h")
        return self


class HooksSpec(SpecModel):
    set_weight: HookSpec = Field(description="sets the share of traffic (0-100) the canary gets")
    rollback: HookSpec | None = Field(None, description="sends all traffic back to the baseline (default: set_weight 0)")
    promote: HookSpec | None = Field(None, description="makes the canary the new baseline (default: set_weight 100)")


class RunSpec(SpecModel):
    """The canary deploy loop: step the canary's weight, judge each interval, promote or roll back."""

    steps: list[int] = Field(
        default_factory=lambda: [5, 25, 50, 100], description="canary weights in percent, increasing (default 5, 25, 50, 100)"
    )
    interval: Duration = Field(Decimal(600), description="how long each step runs before it is judged (whole minutes; default 10m)")
    on_inconclusive: Literal["rollback", "pause"] = Field(
        "rollback", description="after the extensions, an inconclusive step `rollback`s or `pause`s for a human"
    )
    on_marginal: Literal["continue", "pause", "rollback"] = Field(
        "continue", description="a marginal step: `continue` to the next step (the last step must pass), `pause` or `rollback`"
    )
    extensions: int = Field(1, description="extra intervals an inconclusive step waits for data before on_inconclusive (default 1)")
    on_restart: Literal["resume", "rollback"] = Field(
        "resume", description="an interrupted run found on restart is `resume`d or `rollback`ed"
    )
    hooks: HooksSpec = Field(description="how the loop changes traffic: set_weight, rollback, promote")

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[int]) -> list[int]:
        if not v or len(v) > 100:
            raise ValueError("steps needs 1 to 100 weights")
        prev = 0
        for w in v:
            if not isinstance(w, int) or not 0 < w <= 100 or w <= prev:
                raise ValueError(f"steps must be increasing weights in 1..100, got {v}")
            prev = w
        return v

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: Decimal) -> Decimal:
        if v < 60 or v % 60 != 0 or v > 86400:
            raise ValueError(f"interval {format_duration(v)} must be whole minutes between 1m and 1d (telemetry is per minute)")
        return v

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, v: int) -> int:
        if not 0 <= v <= 100:
            raise ValueError("extensions must be between 0 and 100")
        return v


class CanarySpec(SpecModel):
    """Canary analysis: the metrics compared, how they are scored, and the deploy loop."""

    service: str | None = Field(None, description="the service the canary deploys (a key of `services`); limits which SLOs apply")
    metrics: list[CanaryMetric] = Field(description="what the judge compares between baseline and canary")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="score thresholds: pass and marginal")
    min_samples: int = Field(50, description="observations (or events) each side needs per metric (default 50)")
    confidence: Fraction = Field(Decimal("0.95"), description="confidence of every test (default 95%: one-sided level 5%)")
    min_effect: Decimal = Field(
        Decimal("0.15"), description="effect-size floor for distributions: Cliff's delta below this is no failure (default 0.15)"
    )
    slo_horizon: Duration = Field(
        Decimal(86400), description="how long the canary's error ratio is projected at full traffic against the budget policy (default 1d)"
    )
    resolution: Fraction = Field(
        Decimal("0.1"),
        description="the coarsest data a distribution may be judged on: when its buckets could hide a shift of the median "
        "larger than this share of the baseline's (or than `margin`, if larger), the metric is inconclusive (below "
        "resolution), never a pass (default 10%)",
    )
    run: RunSpec | None = Field(None, description="the canary deploy loop of `vigil canary run`")

    @model_validator(mode="after")
    def _check(self) -> "CanarySpec":
        if not self.metrics:
            raise ValueError("canary.metrics needs at least one metric")
        names = [m.name for m in self.metrics]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate canary metric name {dup[0]!r}")
        if not 1 <= self.min_samples <= 10**9:
            raise ValueError("min_samples must be between 1 and 1000000000")
        if not Decimal("0.5") <= self.confidence < 1:
            raise ValueError("confidence must be at least 50% and below 100%")
        if not 0 <= self.min_effect < 1:
            raise ValueError("min_effect is a Cliff's delta between 0 and 1 (exclusive)")
        if self.slo_horizon < 60 or self.slo_horizon > 400 * 86400:
            raise ValueError("slo_horizon must be between 1m and 400d")
        if not 0 < self.resolution <= 10:
            raise ValueError("resolution must be above 0% and at most 1000%")
        return self
