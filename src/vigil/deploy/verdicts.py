"""Verdicts of the deploy checks (migration verify, canary analysis) per service and release.

``vigil migrate verify`` and ``vigil canary judge | run`` record theirs with ``--service`` and
``--release``; ``vigil gate deploy --release R`` reads the latest of each kind, so a pipeline gets
one answer: the budget policy, the migration verdict and the canary verdict together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from vigil.clock import isoformat
from vigil.deploy.verdict_tables import deploy_verdicts
from vigil.store import Store, db_errors

KINDS = ("migration", "canary")
PASSING = "pass"

@dataclass(frozen=True)
class DeployVerdict:
    id: int
    kind: str
    service: str
    release: str
    verdict: str
    recorded_at: str
    summary: str

    @property
    def passed(self) -> bool:
        return self.verdict == PASSING

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "release": self.release,
            "verdict": self.verdict,
            "recorded_at": self.recorded_at,
            "summary": self.summary,
        }


def record_verdict(
    store: Store, kind: str, service: str, release: str, verdict: str, summary: str, details: dict, at: datetime
) -> int:
    """Record a check's verdict; the newest of a kind for (service, release) is the one that counts."""
    if kind not in KINDS:
        raise ValueError(f"unknown verdict kind {kind!r}")
    with db_errors("recording the verdict failed"), store.engine.begin() as conn:
        res = conn.execute(
            sa.insert(deploy_verdicts).returning(deploy_verdicts.c.id),
            {
                "kind": kind,
                "service": service,
                "release": release,
                "verdict": verdict,
                "recorded_at": isoformat(at),
                "summary": summary[:2000],
                "details": json.dumps(details, sort_keys=True, default=str),
            },
        )
        return int(res.scalar_one())


def latest_verdicts(store: Store, service: str, release: str) -> dict[str, DeployVerdict]:
    """The newest verdict of each kind for (service, release)."""
    t = deploy_verdicts
    out: dict[str, DeployVerdict] = {}
    with db_errors("reading verdicts failed"), store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.id, t.c.kind, t.c.service, t.c.release, t.c.verdict, t.c.recorded_at, t.c.summary)
            .where(t.c.service == service, t.c.release == release)
            .order_by(t.c.id.desc())
        ).all()
    for r in rows:
        if r.kind not in out:
            out[r.kind] = DeployVerdict(r.id, r.kind, r.service, r.release, r.verdict, r.recorded_at, r.summary)
    return out
