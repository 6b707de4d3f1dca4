"""The ``security.waf:`` settings of the spec (pydantic only; loaded with every spec)::

    security:
      waf:
        suite: waf/                        # go-ftw YAML files (a directory or files), relative to the spec
        block_status: [403]                # answers that mean "blocked" (GoTestWAF's --blockStatusCodes)
        pass_status: [200, 404]            # answers that mean "passed" (--passStatusCodes)
        min_attack_score: 100%             # attacks blocked / attacks answered
        min_benign_score: 100%             # benign requests passed / benign requests answered
        rate_limit: {limit: 1000, window: 5m, tolerance: 20%}   # the planned rate-based rule
        aws:                               # vigil waf audit: the deployed AWS WAFv2 web ACL
          web_acl: platform
          scope: REGIONAL                  # or CLOUDFRONT (region us-east-1)
          region: eu-west-1
          managed_rule_groups: [AWSManagedRulesCommonRuleSet, AWSManagedRulesSQLiRuleSet, AWSManagedRulesKnownBadInputsRuleSet]
          logging: true
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from vigil.model import Duration, Fraction, SpecModel

AWS_WINDOWS = (60, 120, 300, 600)  # WAFv2 rate-based rules: EvaluationWindowSec


class RateLimitSpec(SpecModel):
    limit: int = Field(description="requests one client may send per window before it is blocked")
    window: Duration = Field(Decimal(300), description="the window the limit counts over (AWS WAF: 1m, 2m, 5m or 10m)")
    tolerance: Fraction = Field(Decimal("0.2"), description="how far from the limit blocking may start and still pass the check")
    path: str = Field("/", description="the path the rate-limit check sends its requests to")

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int) -> int:
        if v < 1 or v > 2_000_000_000:
            raise ValueError("limit must be between 1 and 2000000000")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: Decimal) -> Decimal:
        if v <= 0 or v > 86400:
            raise ValueError("window must be more than 0s and at most 1d")
        return v

    @field_validator("tolerance")
    @classmethod
    def _tol(cls, v: Decimal) -> Decimal:
        if v < 0 or v >= 1:
            raise ValueError("tolerance must be at least 0% and below 100%")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/") or any(c.isspace() for c in v):
            raise ValueError("path must start with / and hold no spaces")
        return v


class AwsWafSpec(SpecModel):
    web_acl: str = Field(description="the name of the WAFv2 web ACL")
    scope: Literal["REGIONAL", "CLOUDFRONT"] = Field("REGIONAL", description="REGIONAL (ALB, API Gateway, AppSync) or CLOUDFRONT")
    region: str | None = Field(None, description="the AWS region of a REGIONAL web ACL (CLOUDFRONT is us-east-1)")
    managed_rule_groups: list[str] = Field(
        default_factory=lambda: ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesSQLiRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"],
        description="AWS managed rule groups that must be in the web ACL and not only counting",
    )
    logging: bool = Field(True, description="whether the web ACL must have logging on")

    @field_validator("web_acl")
    @classmethod
    def _name(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[\w-]{1,128}", v):
            raise ValueError("a web ACL name is 1-128 letters, digits, '_' or '-'")
        return v


class WafSpec(SpecModel):
    suite: list[str] = Field(default_factory=lambda: ["waf"], description="go-ftw YAML test files or directories, relative to the spec")
    block_status: list[int] = Field(default_factory=lambda: [403], description="HTTP statuses that mean the WAF blocked a request")
    pass_status: list[int] = Field(default_factory=lambda: [200, 404], description="HTTP statuses that mean the WAF let a request through")
    min_attack_score: Fraction = Field(Decimal(1), description="attacks blocked / attacks answered, at least (GoTestWAF's true-positive score)")
    min_benign_score: Fraction = Field(Decimal(1), description="benign requests passed / benign answered, at least (true-negative score)")
    rate_limit: RateLimitSpec | None = Field(None, description="the planned rate limit (vigil waf ratelimit, and the audit's rate-based rule)")
    aws: AwsWafSpec | None = Field(None, description="the AWS WAFv2 web ACL vigil waf audit checks")

    @field_validator("suite", mode="before")
    @classmethod
    def _suite(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _codes(self) -> WafSpec:
        for name in ("block_status", "pass_status"):
            codes = getattr(self, name)
            if not codes or any(c < 100 or c > 599 for c in codes):
                raise ValueError(f"{name}: one or more HTTP statuses (100-599)")
        both = set(self.block_status) & set(self.pass_status)
        if both:
            raise ValueError(f"status {sorted(both)[0]} cannot mean both blocked and passed")
        for name in ("min_attack_score", "min_benign_score"):
            if not Decimal(0) <= getattr(self, name) <= Decimal(1):
                raise ValueError(f"{name} must be between 0% and 100%")
        return self
