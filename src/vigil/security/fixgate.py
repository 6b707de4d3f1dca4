"""The fix gate, pure: may this release ship, given its findings, their waivers and the policy?

:func:`finding_state` says what one finding is at a time (open, waived, suppressed, fixed; its
deadline and whether it is overdue); :func:`decide_security` turns a release's ledger into the
blocks the deploy gate adds to its decision. No I/O and no clock: the caller passes ``at`` (for a
recorded decision, the real time of the decision).

Fail closed: a release with no findings import (or without a kind the policy requires) is blocked,
as is a gate asked without a release; an expired waiver waives nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Sequence

from vigil.clock import isoformat, parse_time
from vigil.errors import UsageError
from vigil.security.spec import SecuritySpec


def finding_state(row: dict, waiver: dict | None, at: datetime, policy: SecuritySpec | None) -> dict:
    """The state of one ledger row at ``at``: ``state`` (open | waived | suppressed | fixed), the
    fix ``deadline`` (first seen + the policy's deadline for its severity), ``overdue``, and the
    waiver that holds (or the one that expired)."""
    first = parse_time(row["first_seen"])
    limit = policy.deadlines.of(row["severity"]) if policy is not None else None
    deadline = first + timedelta(seconds=float(limit)) if limit is not None else None
    w_active = waiver is not None and parse_time(waiver["expires"]) > at
    details = row.get("details") or {}
    if row.get("fixed_at"):
        state = "fixed"
    elif w_active:
        state = "waived"
    elif details.get("suppressed"):
        state = "suppressed"
    else:
        state = "open"
    overdue = state == "open" and deadline is not None and at > deadline
    return {
        "id": row.get("id"),
        "fingerprint": row["fingerprint"],
        "service": row["service"],
        "release": row["release"],
        "kind": row["kind"],
        "tool": row["tool"],
        "rule": row["rule_id"],
        "severity": row["severity"],
        "title": row["title"],
        "path": row.get("path"),
        "line": row.get("line"),
        "window": row.get("window"),
        "first_seen": row["first_seen"],
        "deadline": isoformat(deadline) if deadline is not None else None,
        "overdue": overdue,
        "state": state,
        "fixed_at": row.get("fixed_at"),
        "suppressed": details.get("suppressed"),
        "waiver": _waiver_dict(waiver, at) if waiver is not None else None,
        "cwe": details.get("cwe") or [],
        "snippet": details.get("snippet"),
        "occurrences": details.get("occurrences", 1),
    }


def _waiver_dict(w: dict, at: datetime) -> dict:
    return {
        "id": w.get("id"),
        "reason": w["reason"],
        "owner": w["owner"],
        "expires": w["expires"],
        "actor": w.get("actor"),
        "created_at": w.get("created_at"),
        "expired": parse_time(w["expires"]) <= at,
    }


@dataclass
class SecurityVerdict:
    covered: bool
    release: str | None
    blocks: list[str] = field(default_factory=list)
    passed_by_override: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    imports: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "covered": self.covered,
            "release": self.release,
            "blocks": self.blocks,
            "passed_by_override": self.passed_by_override,
            "notes": self.notes,
            "imports": self.imports,
            "findings": self.findings,
            "counts": {s: sum(f["state"] == s for f in self.findings) for s in ("open", "waived", "suppressed", "fixed")},
        }


def where(f: dict) -> str:
    if f.get("path"):
        return f"{f['path']}:{f['line']}" if f.get("line") else str(f["path"])
    return "(no location)"


def block_message(f: dict, why: str) -> str:
    title = " ".join(str(f["title"]).split())
    title = title if len(title) <= 120 else title[:119] + "…"
    when = f"overdue since {f['deadline']}" if f["overdue"] else (f"fix by {f['deadline']}" if f["deadline"] else "no deadline")
    origin = f"pen-test window {f['window']}" if f.get("window") else f"release {f['release']}"
    return (
        f"security: {why} finding {f['fingerprint'][:12]} is open: {f['tool']} {f['rule']} at {where(f)}"
        f" ({origin}; first seen {f['first_seen']}, {when}): {title}"
    )


def decide_security(
    policy: SecuritySpec | None,
    findings: Sequence[dict],
    waivers: dict[str, dict],
    imports: Sequence[dict],
    *,
    service: str,
    release: str | None,
    at: datetime,
    labels: Sequence[str] = (),
    override_labels: Sequence[str] = (),
    reason: str | None = None,
) -> SecurityVerdict | None:
    """Pure: the security blocks of a deploy of ``release`` at ``at`` (None: no security policy).

    Blocks: an open finding of a severity in ``block_on``; with ``overdue`` in ``block_on``, any
    open finding past its deadline; a release without a findings import (or without an import of
    each kind in ``require``); no release named. A waived (unexpired), suppressed or fixed finding
    does not block. An override label of the policy (with a reason) passes the finding blocks only
    when ``override_passes`` is true; it never passes missing evidence."""
    if policy is None:
        return None
    if not policy.covers(service):
        return SecurityVerdict(False, release, notes=[f"service {service} is not covered by security.services"])
    v = SecurityVerdict(True, release)
    if release is None:
        v.blocks.append("security: the fix gate reads the findings of a release: pass --release to name it")
        return v
    v.imports = [
        {"id": i["id"], "kind": i["kind"], "tool": i["tool"], "window": i.get("window"), "found_at": i["found_at"],
         "imported_at": i["imported_at"], "results": i["results"]}
        for i in imports
    ]
    evidence: list[str] = []
    if not imports:
        evidence.append(
            f"security: no findings import recorded for release {release!r} of {service}: a release with no scan is not a clean one"
            " (vigil findings import FILE.sarif --service ... --release ...)"
        )
    have = {i["kind"] for i in imports}
    for kind in policy.require:
        if kind not in have and imports:
            evidence.append(f"security: no {kind} findings import recorded for release {release!r} (security.require lists {kind})")
    finding_blocks: list[str] = []
    for row in findings:
        f = finding_state(row, waivers.get(row["fingerprint"]), at, policy)
        v.findings.append(f)
        if f["state"] != "open":
            continue
        why = []
        if f["severity"] in policy.block_on:
            why.append(f["severity"])
        if f["overdue"] and "overdue" in policy.block_on:
            why.append("overdue")
        if f["waiver"] is not None and f["waiver"]["expired"]:
            v.notes.append(f"the waiver of {f['fingerprint'][:12]} by {f['waiver']['owner']} expired at {f['waiver']['expires']}")
        if why:
            finding_blocks.append(block_message(f, " and ".join(dict.fromkeys(why))))
    v.findings.sort(key=lambda f: (f["state"] != "open", -_rank(f["severity"]), f["first_seen"]))
    passing = [lb for lb in dict.fromkeys(labels) if lb in override_labels]
    if finding_blocks and passing:
        if policy.override_passes:
            if not reason or not reason.strip():
                raise UsageError(
                    f"the override label {passing[0]!r} needs a reason",
                    hint="pass --reason 'why this deploy must ship with these findings open' (it is recorded)",
                )
            v.passed_by_override = [f"override: label {passing[0]!r} passes {b}" for b in finding_blocks]
            finding_blocks = []
        else:
            v.notes.append(f"label {passing[0]!r} cannot pass a security block (security.override_passes is false)")
    v.blocks = evidence + finding_blocks
    return v


def _rank(sev: str) -> int:
    return {"critical": 4, "high": 3, "medium": 2, "low": 1}.get(sev, 0)
