"""The ``security.probes:`` settings of the spec (pydantic only; loaded with every spec)::

    security:
      probes:
        allowed_targets: [staging.example.com, 10.20.0.0/16]   # besides loopback, which is always allowed
        canary_url: http://canary.staging.example.com:8089      # how targets reach the listener
        delay: 2s                                               # how long the canary holds a timing probe
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from vigil.model import Duration, SpecModel


class ProbeSpec(SpecModel):
    allowed_targets: list[str] = Field(
        default_factory=list,
        description="hosts, addresses or networks (CIDR) the SSRF/SSTI probes may be sent to besides loopback (default: loopback only)",
    )
    canary_url: str | None = Field(
        None, description="the URL through which probed servers reach the canary listener (default: the listener's own loopback address)"
    )
    delay: Duration = Field(Decimal(2), description="how long the canary holds its answer to a timing payload (at most 30s)")

    @field_validator("allowed_targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        import ipaddress

        from vigil.netguard import host_problem

        for t in v:
            s = t.strip()
            if not s or any(c.isspace() or c in "@?#\\" for c in s):
                raise ValueError(f"{t!r} is not a host, an address or a network")
            if "/" in s:
                try:
                    net = ipaddress.ip_network(s, strict=False)
                except ValueError:
                    raise ValueError(f"{t!r} is not a network (CIDR)") from None
                if net.overlaps(ipaddress.ip_network("169.254.0.0/16")) if net.version == 4 else net.overlaps(ipaddress.ip_network("fe80::/10")):
                    raise ValueError(f"{t!r} covers link-local addresses (the cloud metadata service); probes never go there")
            elif host_problem(s):
                raise ValueError(f"{t!r} is {host_problem(s)}; probes never go there")
        return v

    @field_validator("canary_url")
    @classmethod
    def _canary(cls, v: str | None) -> str | None:
        from vigil.netguard import url_problem

        if v is not None:
            why = url_problem(v, allow_link_local=True)
            if why:
                raise ValueError(f"canary_url {why}")
        return v

    @field_validator("delay")
    @classmethod
    def _delay(cls, v: Decimal) -> Decimal:
        if v <= 0 or v > 30:
            raise ValueError("delay must be more than 0s and at most 30s")
        return v
