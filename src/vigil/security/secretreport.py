"""From hits to a report: findings (redacted, fingerprinted), the baseline applied, SARIF 2.1.0.

:func:`findings_of` turns the texts of a walk into findings; :func:`apply_baseline` is pure (the
time is an argument); :func:`to_sarif` renders a report for code-scanning UIs and for
``vigil findings import``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vigil import __version__
from vigil.clock import isoformat
from vigil.security.baseline import Waiver
from vigil.security.rules import DESCRIPTIONS, RULES
from vigil.security.scanner import fingerprint, redact, redacted_line, scan_text
from vigil.security.sources import Walk

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "info": "0.0"}
FINGERPRINT_KEY = "vigilSecret/v1"
TOOL_NAME = "vigil-secrets"


@dataclass
class SecretFinding:
    rule: str
    severity: str
    path: str
    line: int
    column: int
    fingerprint: str
    redacted: str
    snippet: str
    engines: list[str]
    commit: str | None = None
    encoding: str | None = None
    status: str = "new"  # new | waived | error (an expired waiver)
    waiver: dict | None = None

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.rule, self.rule)

    def to_dict(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "description": self.description,
            "severity": self.severity,
            "status": self.status,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "commit": self.commit,
            "encoding": self.encoding,
            "redacted": self.redacted,
            "snippet": self.snippet,
            "engines": self.engines,
            "waiver": self.waiver,
        }


def findings_of(walk: Walk) -> list[SecretFinding]:
    """Every secret in the walk's texts. In a git range the same secret added to the same path by
    several commits is one finding, at the first commit that added it."""
    out: list[SecretFinding] = []
    seen: set[tuple[str, int | None, str]] = set()
    for t in walk.texts:
        hits = scan_text(t.text, t.path)
        secrets = [(h.secret, h.prefix) for h in hits] + [(h.raw, None) for h in hits if h.raw]
        for h in hits:
            fp = fingerprint(t.path, h.secret)
            line = t.file_line(h.line)
            key = (fp, None if t.commit else line, h.rule)
            if t.commit and key in seen:
                continue
            seen.add(key)
            out.append(
                SecretFinding(
                    rule=h.rule, severity=h.severity, path=t.path, line=line, column=h.column, fingerprint=fp,
                    redacted=redact(h.secret, h.prefix) + (f" ({h.encoding}-encoded)" if h.encoding else ""),
                    snippet=redacted_line(h.line_text, [s for s in secrets if s[0]]), engines=list(h.engines),
                    commit=t.commit, encoding=h.encoding,
                )
            )
    return out


@dataclass
class ScanReport:
    findings: list[SecretFinding]
    at: datetime
    target: str
    files: int = 0
    bytes: int = 0
    commits: int = 0
    skipped: list[dict] = field(default_factory=list)
    stale_waivers: list[dict] = field(default_factory=list)

    @property
    def new(self) -> list[SecretFinding]:
        return [f for f in self.findings if f.status in ("new", "error")]

    @property
    def failed(self) -> bool:
        """A new finding, an expired waiver, or a file that could not be scanned (too large,
        unreadable): a scan that did not read everything is not a clean one."""
        return bool(self.new) or bool(self.skipped)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "at": isoformat(self.at),
            "scanned": {"files": self.files, "bytes": self.bytes, "commits": self.commits},
            "skipped": self.skipped,
            "passed": not self.failed,
            "counts": {
                "new": sum(f.status == "new" for f in self.findings),
                "waived": sum(f.status == "waived" for f in self.findings),
                "expired_waivers": sum(f.status == "error" for f in self.findings),
            },
            "findings": [f.to_dict() for f in self.findings],
            "stale_waivers": self.stale_waivers,
        }


def apply_baseline(findings: list[SecretFinding], waivers: list[Waiver], at: datetime) -> tuple[list[SecretFinding], list[dict]]:
    """Pure: the findings with the baseline applied at ``at``, and the waivers that match no
    finding (stale: delete them). A finding under a live waiver is ``waived``; every expired waiver
    is an error finding (``waiver-expired``), whether or not its finding is still there."""
    by_fp = {w.fingerprint: w for w in waivers}
    out: list[SecretFinding] = []
    matched: set[str] = set()
    for f in findings:
        w = by_fp.get(f.fingerprint)
        if w is None:
            out.append(f)
            continue
        matched.add(w.fingerprint)
        if w.expired(at):
            out.append(f)  # the secret is a new finding again
        else:
            f.status = "waived"
            f.waiver = w.to_dict()
            out.append(f)
    for w in waivers:
        if w.expired(at):
            out.append(
                SecretFinding(
                    rule="waiver-expired", severity="high", path=w.path or "(baseline)", line=1, column=1,
                    fingerprint=w.fingerprint, redacted="", engines=["vigil"], status="error", waiver=w.to_dict(),
                    snippet=f"waiver of {w.fingerprint} ({w.rule or 'secret'}) by {w.owner} expired on {w.expires.isoformat()}: {w.reason}"[:300],
                )
            )
    stale = [w.to_dict() for w in waivers if w.fingerprint not in matched and not w.expired(at)]
    return out, stale


def to_sarif(report: ScanReport) -> dict:
    """The report as a SARIF 2.1.0 log: one run of ``vigil-secrets``; waived findings carry an
    external suppression with the waiver's reason, owner and expiry; every result has a
    ``partialFingerprints`` entry (the secret's fingerprint, never the secret)."""
    rule_ids = list(dict.fromkeys([r.id for r in RULES] + sorted(DESCRIPTIONS)))
    index = {r: i for i, r in enumerate(rule_ids)}
    sev_of = {r.id: r.severity for r in RULES}
    rules = [
        {
            "id": rid,
            "name": "".join(w.capitalize() for w in rid.split("-")),
            "shortDescription": {"text": f"{DESCRIPTIONS.get(rid, rid)} is committed"},
            "fullDescription": {"text": f"vigil secrets scan found {DESCRIPTIONS.get(rid, rid)}. Rotate it, then remove it from the code and its history."},
            "help": {"text": "Rotate the secret at its provider first (it is in the history), then move it to the environment or a secret store."},
            "defaultConfiguration": {"level": SARIF_LEVEL[sev_of.get(rid, "high")]},
            "properties": {"tags": ["security", "secrets"], "security-severity": SECURITY_SEVERITY[sev_of.get(rid, "high")]},
        }
        for rid in rule_ids
    ]
    results = []
    for f in report.findings:
        region = {"startLine": f.line, "startColumn": f.column, "snippet": {"text": f.snippet}}
        res: dict = {
            "ruleId": f.rule,
            "ruleIndex": index.get(f.rule, index["keyword-secret"]),
            "level": SARIF_LEVEL.get(f.severity, "error"),
            "message": {"text": f"{f.description} ({f.redacted})" if f.redacted else f.snippet},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"}, "region": region}}],
            "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
            "properties": {"severity": f.severity, "security-severity": SECURITY_SEVERITY.get(f.severity, "8.0"), "engines": f.engines,
                           "commit": f.commit, "encoding": f.encoding, "status": f.status},
        }
        if f.status == "waived" and f.waiver:
            w = f.waiver
            res["suppressions"] = [{"kind": "external", "status": "accepted",
                                    "justification": f"{w['reason']} (owner {w['owner']}, expires {w['expires']})"}]
        results.append(res)
    run: dict = {
        "tool": {"driver": {"name": TOOL_NAME, "fullName": "vigil secrets scan", "version": __version__, "semanticVersion": __version__,
                            "informationUri": "https://pypi.org/project/vigil-sre/", "rules": rules}},
        "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the directory vigil scanned"}}},
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {"target": report.target, "at": isoformat(report.at)},
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
