"""SARIF 2.1.0 output of ``vigil migrate lint`` for code-scanning UIs (GitHub, GitLab, Azure DevOps).

One run; ``tool.driver.rules`` lists every rule (id, name, shortDescription, fullDescription, help,
defaultConfiguration.level); each finding is a result with ruleId, ruleIndex, level, message and a
physicalLocation (artifactLocation.uri relative to ``%SRCROOT%`` when the path is relative, region
startLine / startColumn). Suppressed findings are included with a ``suppressions`` entry
(kind ``inSource`` or ``external``) so the UI shows them as accepted, not open.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from vigil import __version__
from vigil.deploy.migrations.lint import LintFinding, LintReport
from vigil.deploy.migrations.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def to_sarif(report: LintReport) -> dict:
    """The report as a SARIF 2.1.0 log (a JSON-ready dict)."""
    ids = list(RULES)
    index = {r: i for i, r in enumerate(ids)}
    rules = [
        {
            "id": r.id,
            "name": "".join(w.capitalize() for w in r.id.split("-")),
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.why},
            "help": {"text": f"{r.why}\nFix: {r.fix}", "markdown": f"{r.why}\n\n**Fix:** {r.fix}"},
            "defaultConfiguration": {"level": LEVELS[r.severity], "enabled": not r.opt_in},
            "properties": {"group": r.group, "tags": ["migrations", "postgresql", r.group]},
        }
        for r in RULES.values()
    ]
    results = [_result(f, index) for f in report.findings]
    for s in report.suppressed:
        res = _result(s.finding, index)
        res["suppressions"] = [
            {
                "kind": "inSource" if s.source.startswith("inline") else "external",
                "justification": f"{s.reason} (expires {s.expires.isoformat()}; {s.source})",
            }
        ]
        results.append(res)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "vigil-migrate-lint",
                        "fullName": "vigil migrate lint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the directory vigil ran in"}}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _uri(file: str) -> tuple[str, str | None]:
    p = Path(file)
    if p.is_absolute():
        return p.as_uri(), None
    return quote(str(PurePosixPath(*p.parts)) if p.parts else file, safe="/"), "%SRCROOT%"


def _result(f: LintFinding, index: dict[str, int]) -> dict:
    uri, base = _uri(f.file)
    artifact: dict = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    text = f"{f.message}\nFix: {f.fix}"
    return {
        "ruleId": f.rule,
        "ruleIndex": index[f.rule],
        "level": LEVELS[f.severity],
        "message": {"text": text},
        "locations": [
            {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": f.line, "startColumn": f.column}}}
        ],
        "partialFingerprints": {
            "vigilFinding/v1": hashlib.sha256(f"{f.file}\0{f.rule}\0{f.message}".encode()).hexdigest()[:32]
        },
        "properties": {"severity": f.severity, "fix": f.fix},
    }
