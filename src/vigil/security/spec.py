"""The ``security:`` section of the spec: the fix gate's policy. Example::

    security:
      deadlines: {critical: 7d, high: 30d, medium: 90d, low: 180d}
      block_on: [critical, overdue]     # an open critical, or any finding past its deadline
      override_passes: false            # may a policy override label pass a security block? (default no)
      require: [secrets, sast]          # kinds of scan that must be imported for the release
      max_waiver: 90d                   # the longest a waiver may run
      services: [api, checkout]         # services the fix gate covers (default: all)

The deadline of a finding is counted from when it was first seen for its service (in any release;
a pen-test window's findings from the window's date).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from vigil.model import Duration, SpecModel
from vigil.security.data.spec import DataSpec
from vigil.security.probes.spec import ProbeSpec
from vigil.security.waf.spec import WafSpec

SEVERITIES = ("critical", "high", "medium", "low", "info")
KINDS = ("secrets", "sast", "migration", "pentest", "probe", "waf", "data")
"""Kinds of findings sources. ``probe``, ``waf`` and ``data`` are for the runtime probes, the WAF
suite and data classification, which feed the same ledger."""

BlockOn = Literal["critical", "high", "medium", "low", "overdue"]
Kind = Literal["secrets", "sast", "migration", "pentest", "probe", "waf", "data"]


class Deadlines(SpecModel):
    critical: Duration | None = Field(Decimal(7 * 86400), description="time to fix a critical finding (null: no deadline)")
    high: Duration | None = Field(Decimal(30 * 86400), description="time to fix a high finding")
    medium: Duration | None = Field(Decimal(90 * 86400), description="time to fix a medium finding")
    low: Duration | None = Field(Decimal(180 * 86400), description="time to fix a low finding")
    info: Duration | None = Field(None, description="time to fix an informational finding (default: none)")

    def of(self, severity: str) -> Decimal | None:
        return getattr(self, severity, None)


class SecuritySpec(SpecModel):
    deadlines: Deadlines = Field(default_factory=Deadlines, description="fix deadlines by severity, from when a finding was first seen")
    block_on: list[BlockOn] = Field(
        default_factory=lambda: list[BlockOn](["critical", "overdue"]),
        description="what blocks a deploy: an open finding of these severities, and `overdue` (any open finding past its deadline)",
    )
    override_passes: bool = Field(
        False, description="whether an override label of the policy (with --reason) passes a security block; default no"
    )
    require: list[Kind] = Field(
        default_factory=list,
        description="kinds of findings import the release must have (secrets, sast, migration, pentest, probe, waf, data);"
        " with none listed, at least one import of any kind",
    )
    max_waiver: Duration = Field(Decimal(90 * 86400), description="the longest a finding waiver may run")
    services: list[str] | None = Field(None, description="services the fix gate covers (default: every service)")
    probes: ProbeSpec | None = Field(None, description="runtime SSRF/SSTI probes: where they may go besides loopback (vigil probe)")
    waf: WafSpec | None = Field(None, description="the WAF suite, its scores, the planned rate limit and the AWS web ACL (vigil waf)")
    data: DataSpec | None = Field(None, description="data classification: the registry and what fails vigil data scan")

    @field_validator("block_on", "require")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each value at most once")
        return v

    @field_validator("max_waiver")
    @classmethod
    def _positive(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("max_waiver must be longer than 0s")
        return v

    def covers(self, service: str) -> bool:
        return self.services is None or service in self.services


def cross_check(spec) -> list[tuple[tuple, str]]:
    """Spec paths and messages for services the security section names but the spec lacks."""
    sec = getattr(spec, "security", None)
    if sec is None or sec.services is None:
        return []
    return [
        (("security", "services", i), f"unknown service {name!r}; declare it under `services:`")
        for i, name in enumerate(sec.services)
        if name not in spec.services
    ]
