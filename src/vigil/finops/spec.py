"""The ``costs:`` section of the spec: how cost rows are attributed, budgets, anomaly detection,
unit cost, Aurora rightsizing and the cost policies ``vigil cost audit`` checks.

::

    costs:
      tags: {env: [env, environment], service: [service, app]}
      envs: [prod, stage, dev]
      requests: {api: 'http_requests{service="api"}'}
      budgets:
        - {name: api-prod, env: prod, service: api, amount: 1500}
      anomalies: {z: 3.5, min_impact: 20, min_percent: 20%}
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from vigil.model import Duration, Fraction, SelectorField, SpecModel
from vigil.units import to_decimal

NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
TAG_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")

LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
"""The values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy)."""

ACU_STEP = Decimal("0.5")


def _money(v: Any) -> Decimal:
    d = to_decimal(v)
    if d < 0:
        raise ValueError(f"an amount cannot be negative: {v}")
    return d


Money = Annotated[Decimal, BeforeValidator(_money), PlainSerializer(lambda d: f"{d.normalize():f}", return_type=str)]
"""An amount of the billing currency, exact."""


def _acu(v: Any) -> Decimal:
    d = to_decimal(v)
    if d < 0 or d > 256 or d % ACU_STEP != 0:
        raise ValueError(f"ACU {v} must be 0 to 256 in steps of 0.5 (Aurora Serverless v2 capacity units)")
    return d


Acu = Annotated[Decimal, BeforeValidator(_acu), PlainSerializer(lambda d: float(d), return_type=float)]


class TagKeys(SpecModel):
    """Which tag keys carry the environment and the service (matched case-insensitively; a CUR
    tag's ``user_`` prefix is ignored, so ``user_env`` is ``env``)."""

    env: list[str] = Field(default_factory=lambda: ["env", "environment"], description="tag keys of the environment, first found wins")
    service: list[str] = Field(default_factory=lambda: ["service", "app"], description="tag keys of the service, first found wins")
    env_values: dict[str, str] = Field(
        default_factory=lambda: {"production": "prod", "staging": "stage", "development": "dev"},
        description="environment tag values spelled otherwise, mapped to the names under `envs` (case-insensitive)",
    )

    @field_validator("env", "service")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("name at least one tag key")
        return v


class Threshold(SpecModel):
    """One threshold of a budget: the actual cost so far, or the month's forecast, past a share of the amount."""

    actual: Fraction | None = Field(None, description="fire when the month's BilledCost so far passes this share of the amount, like 80%")
    forecast: Fraction | None = Field(None, description="fire when the month's forecast passes this share of the amount, like 100%")

    @model_validator(mode="after")
    def _one(self) -> "Threshold":
        given = [k for k in ("actual", "forecast") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a threshold is exactly one of `actual: 80%` or `forecast: 100%`")
        if self.share <= 0 or self.share > 10:
            raise ValueError("a threshold is above 0% and at most 1000%")
        return self

    @property
    def kind(self) -> str:
        return "actual" if self.actual is not None else "forecast"

    @property
    def share(self) -> Decimal:
        if self.actual is not None:
            return self.actual
        if self.forecast is None:  # the model's validator lets exactly one be set
            raise ValueError("a threshold is exactly one of `actual: 80%` or `forecast: 100%`")
        return self.forecast

    @property
    def label(self) -> str:
        return f"{self.kind}_{(self.share * 100).normalize():f}"


def _default_thresholds() -> list[Threshold]:
    return [Threshold(actual=Decimal("0.8")), Threshold(actual=Decimal(1)), Threshold(forecast=Decimal(1))]


class Budget(SpecModel):
    """A monthly budget on BilledCost for an {env, service} (either may be left out: all) or a
    provider's ServiceName."""

    name: str = Field(description="unique name; the `budget` label of its alert event and the AWS budget's name")
    env: str | None = Field(None, description="the environment (one of `envs`); default all")
    service: str | None = Field(None, description="the service (a key of `services`); default all")
    service_name: str | None = Field(None, description="the provider's ServiceName, like AWS Lambda; default all")
    amount: Money = Field(description="the monthly amount in the billing currency")
    thresholds: list[Threshold] = Field(default_factory=_default_thresholds, description="default: actual 80%, actual 100%, forecast 100%")
    notify: list[str] = Field(default_factory=list, description="SNS topic ARNs AWS Budgets notifies (vigil export aws-budgets)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"budget name {v!r} must be 1-128 letters, digits, '.', '_' or '-'")
        return v

    @field_validator("notify")
    @classmethod
    def _arns(cls, v: list[str]) -> list[str]:
        for a in v:
            if not re.match(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$", a):
                raise ValueError(f"notify {a!r} is not an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:budgets")
        return v

    @model_validator(mode="after")
    def _check(self) -> "Budget":
        if self.amount <= 0:
            raise ValueError("a budget's amount must be above 0")
        labels = [t.label for t in self.thresholds]
        if len(set(labels)) != len(labels):
            raise ValueError("two thresholds of a budget are the same")
        return self


class Anomalies(SpecModel):
    """Anomaly detection on daily EffectiveCost per {env, service}: a robust seasonal decomposition
    (weekly), a modified z-score of the residual over a trailing window, and two floors."""

    window: int = Field(28, description="trailing days the residual's median and MAD are taken over (default 28)")
    min_history: int = Field(14, description="days of history a series needs before it is judged (default 14)")
    z: Decimal = Field(Decimal("3.5"), description="the modified z-score past which a day is anomalous (default 3.5)")
    min_impact: Money = Field(Decimal(10), description="and the cost above the expected must be at least this much (default 10)")
    min_percent: Fraction = Field(Decimal("0.2"), description="and at least this share of the expected (default 20%)")

    @model_validator(mode="after")
    def _check(self) -> "Anomalies":
        if not 7 <= self.min_history <= self.window <= 366:
            raise ValueError("7 <= min_history <= window <= 366 (days)")
        if self.z <= 0:
            raise ValueError("z must be above 0, like 3.5")
        return self


class AuroraCluster(SpecModel):
    """An Aurora Serverless v2 cluster, its environment and service, and the capacity it may have."""

    cluster_id: str = Field(description="the DB cluster identifier")
    env: str = Field(description="its environment (one of `envs`)")
    service: str = Field(description="the service it serves (a key of `services`)")
    region: str | None = Field(None, description="AWS region (default the section's)")

    @field_validator("cluster_id")
    @classmethod
    def _cid(cls, v: str) -> str:
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$", v) or v.endswith("-") or "--" in v:
            raise ValueError(f"cluster_id {v!r} is not an RDS cluster identifier")
        return v


class CapacityRange(SpecModel):
    """Aurora Serverless v2 capacity allowed in an environment."""

    min_acu: Acu = Field(description="the floor, ACUs (0 lets the cluster pause where the engine version supports it)")
    max_acu: Acu = Field(description="the ceiling, ACUs")
    pause_off_hours: bool = Field(
        False, description="dev: recommend min 0 ACU with auto-pause (the cluster pauses when idle, off-hours), where the engine version supports it"
    )

    @model_validator(mode="after")
    def _order(self) -> "CapacityRange":
        if self.max_acu < max(self.min_acu, Decimal(1)):
            raise ValueError("max_acu must be at least min_acu and at least 1")
        return self


class Rightsizing(SpecModel):
    """Aurora Serverless v2 rightsizing: capacity per environment and the clusters to look at."""

    region: str = Field("us-east-1", description="AWS region of the clusters (default us-east-1)")
    clusters: list[AuroraCluster] = Field(default_factory=list, description="the clusters")
    capacity: dict[str, CapacityRange] = Field(default_factory=dict, description="allowed capacity per environment")
    lookback: Duration = Field(Decimal(14 * 86400), description="utilisation window read from CloudWatch (default 14d)")
    headroom: Fraction = Field(Decimal("0.3"), description="capacity kept above the peak (default 30%)")
    acu_hour_price: Money = Field(Decimal("0.12"), description="price of one ACU-hour, for the savings estimate (default 0.12)")


class LogGroups(SpecModel):
    """CloudWatch log groups of one environment, by name prefix."""

    prefix: str = Field(description="log group name prefix, like /aws/lambda/platform-prod-")
    env: str = Field(description="their environment (one of `envs`)")


class LogArchive(SpecModel):
    """Where logs are exported for keeping, and when they go to Glacier (the S3 policy code applies it)."""

    bucket: str = Field(description="the S3 bucket logs are exported to")
    prefix: str = Field("", description="key prefix of the exported logs")
    glacier_after: int = Field(description="days after which exported logs move to GLACIER (30-90 in the plan)")
    expire_after: int | None = Field(None, description="days after which they are deleted (default never)")

    @model_validator(mode="after")
    def _days(self) -> "LogArchive":
        if not 1 <= self.glacier_after <= 3650:
            raise ValueError("glacier_after is 1 to 3650 days")
        if self.expire_after is not None and self.expire_after < self.glacier_after + 90:
            raise ValueError("expire_after must be at least 90 days after glacier_after (GLACIER's minimum storage duration)")
        return self


class Policies(SpecModel):
    """Cost policies ``vigil cost audit`` compares with the live account; ``--apply`` fixes what is safe."""

    region: str = Field("us-east-1", description="AWS region of the log groups (default us-east-1)")
    log_retention: dict[str, int] = Field(default_factory=dict, description="days of CloudWatch Logs retention per environment")
    log_groups: list[LogGroups] = Field(default_factory=list, description="which log groups belong to which environment")
    log_archive: LogArchive | None = Field(None, description="the log archive bucket's lifecycle")
    search_scale_rule: str | None = Field(
        None, description="the alert rule (under `alerts:`) that asks to scale search to 3 nodes (QPS or heap over a threshold for a while)"
    )

    @field_validator("log_retention")
    @classmethod
    def _ret(cls, v: dict[str, int]) -> dict[str, int]:
        for env, days in v.items():
            if days not in LOG_RETENTION_DAYS:
                raise ValueError(
                    f"log_retention.{env}: {days} days is not a value CloudWatch Logs accepts; use one of "
                    + ", ".join(str(d) for d in LOG_RETENTION_DAYS)
                )
        return v


class CostsSpec(SpecModel):
    """Cost data, budgets and anomalies by {env, service}, unit cost, rightsizing, cost policies."""

    currency: str = Field("USD", description="the billing currency (ISO 4217); rows in another currency are refused")
    envs: list[str] = Field(default_factory=lambda: ["prod", "stage", "dev"], description="the environments")
    tags: TagKeys = Field(default_factory=TagKeys, description="which tags carry the environment and the service")
    telemetry_env: str = Field("prod", description="the environment this store's telemetry describes (for unit cost)")
    requests: dict[str, SelectorField] = Field(
        default_factory=dict, description="per service, the counter of its requests (unit cost per 1,000 requests)"
    )
    budgets: list[Budget] = Field(default_factory=list, description="monthly budgets")
    anomalies: Anomalies = Field(default_factory=Anomalies, description="anomaly detection on daily EffectiveCost")
    alert_event: str = Field("cost_budget", description="the event a budget breach is pushed as (vigil_event_total{event=...})")
    anomaly_event: str = Field("cost_anomaly", description="the event an anomaly is pushed as")
    freeze_overspend: Fraction = Field(
        Decimal(0),
        description="while a freeze holds for a service, its budgets may be exceeded by this share before a breach fires, "
        "and capacity raises are allowed up to it (cost cuts are refused)",
    )
    rightsizing: Rightsizing | None = Field(None, description="Aurora Serverless v2 rightsizing")
    policies: Policies | None = Field(None, description="cost policies: log retention, log archive, search scaling")

    @field_validator("currency")
    @classmethod
    def _cur(cls, v: str) -> str:
        if not CURRENCY.match(v):
            raise ValueError(f"currency {v!r} must be an ISO 4217 code like USD")
        return v

    @field_validator("envs")
    @classmethod
    def _envs(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("name at least one environment")
        for e in v:
            if not TAG_VALUE.match(e) or e != e.lower():
                raise ValueError(f"environment {e!r} must be lower-case letters, digits, '.', '_' or '-'")
        if len(set(v)) != len(v):
            raise ValueError("an environment is listed twice")
        return v

    @model_validator(mode="after")
    def _check(self) -> "CostsSpec":
        names = [b.name for b in self.budgets]
        for n in names:
            if names.count(n) > 1:
                raise ValueError(f"duplicate budget name {n!r}")
        if self.freeze_overspend < 0 or self.freeze_overspend > 1:
            raise ValueError("freeze_overspend is 0% to 100%")
        return self


Kind = Literal["actual", "forecast"]


def cross_check(spec: Any) -> list[tuple[tuple, str]]:
    """Spec paths and messages for the references the ``costs:`` section makes: environments,
    services, alert rules."""
    c: CostsSpec | None = getattr(spec, "costs", None)
    if c is None:
        return []
    out: list[tuple[tuple, str]] = []
    envs = set(c.envs)
    services = set(spec.services)

    def env_ok(loc: tuple, e: str | None) -> None:
        if e is not None and e not in envs:
            out.append((loc, f"unknown environment {e!r}; declare it under costs.envs ({', '.join(c.envs)})"))

    def svc_ok(loc: tuple, s: str | None) -> None:
        if s is not None and s not in services:
            out.append((loc, f"unknown service {s!r}; declare it under `services:`"))

    env_ok(("costs", "telemetry_env"), c.telemetry_env)
    for s in c.requests:
        svc_ok(("costs", "requests", s), s)
    for i, b in enumerate(c.budgets):
        env_ok(("costs", "budgets", i, "env"), b.env)
        svc_ok(("costs", "budgets", i, "service"), b.service)
    if c.rightsizing is not None:
        for i, cl in enumerate(c.rightsizing.clusters):
            env_ok(("costs", "rightsizing", "clusters", i, "env"), cl.env)
            svc_ok(("costs", "rightsizing", "clusters", i, "service"), cl.service)
        for e in c.rightsizing.capacity:
            env_ok(("costs", "rightsizing", "capacity", e), e)
        ids = [cl.cluster_id for cl in c.rightsizing.clusters]
        for i, cid in enumerate(ids):
            if ids.index(cid) != i:
                out.append((("costs", "rightsizing", "clusters", i, "cluster_id"), f"cluster {cid!r} is listed twice"))
    if c.policies is not None:
        for e in c.policies.log_retention:
            env_ok(("costs", "policies", "log_retention", e), e)
        for i, g in enumerate(c.policies.log_groups):
            env_ok(("costs", "policies", "log_groups", i, "env"), g.env)
        rule = c.policies.search_scale_rule
        if rule is not None:
            rules = {r.name: r for r in getattr(spec, "alerts", None) or []}
            if rule not in rules:
                out.append((("costs", "policies", "search_scale_rule"), f"unknown alert rule {rule!r}; declare it under `alerts:`"))
    return out
