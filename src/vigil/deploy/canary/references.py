"""The canary section's references to services and SLOs, checked when the spec loads.

Light on purpose: the spec loader calls it, so it imports nothing beyond the spec models.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vigil.spec import Spec


def reference_issues(spec: Spec) -> list[tuple[tuple, str]]:
    """Problems of the canary section's references to services and SLOs, as (spec path, message):
    the shape :func:`vigil.spec._cross_check` turns into located issues."""
    c = spec.canary
    if c is None:
        return []
    out: list[tuple[tuple, str]] = []
    if c.service is not None and c.service not in spec.services:
        close = difflib.get_close_matches(c.service, list(spec.services), n=1)
        out.append((("canary", "service"), f"unknown service {c.service!r}" + (f"; did you mean {close[0]!r}?" if close else "")))
    by_name = {s.name: s for s in spec.slos}
    for i, m in enumerate(c.metrics):
        for j, name in enumerate(m.slos or []):
            s = by_name.get(name)
            loc = ("canary", "metrics", i, "slos", j)
            if s is None:
                close = difflib.get_close_matches(name, list(by_name), n=1)
                out.append((loc, f"unknown SLO {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")))
            elif s.sli.freshness is not None:
                out.append((loc, f"SLO {name!r} has a freshness SLI; a canary is checked against ratio and latency SLOs only"))
    return out
