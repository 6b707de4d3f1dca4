"""SARIF 2.1.0 for the runtime checks (probes, the WAF suite, data classification), in the shape
``vigil findings import`` reads: one run per tool, rules with a ``security-severity``, results with a
``severity`` property and a ``partialFingerprints`` entry that stays the same from run to run for
the same problem (so a re-run is deduplicated in the ledger).

An incomplete run (a probe that could not send every payload, a suite with requests that got no
answer) is never clean evidence: it carries an ``invocations[0].executionSuccessful: false`` and a
result of its own (``<tool>-incomplete``, critical), so importing it blocks a deploy by default.
"""

from __future__ import annotations

import hashlib

from vigil import __version__

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "info": "0.0"}


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def rule(rule_id: str, short: str, full: str, help_text: str, severity: str, tags: list[str], help_uri: str | None = None) -> dict:
    r = {
        "id": rule_id,
        "name": "".join(w.capitalize() for w in rule_id.replace("_", "-").split("-")),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": SARIF_LEVEL[severity]},
        "properties": {"tags": ["security", *tags], "security-severity": SECURITY_SEVERITY[severity]},
    }
    if help_uri:
        r["helpUri"] = help_uri
    return r


def result(rule_id: str, rule_index: int, severity: str, message: str, uri: str, fp_key: str, fp: str, *,
           line: int | None = None, snippet: str | None = None, properties: dict | None = None, logical: str | None = None) -> dict:
    region: dict = {}
    if line:
        region["startLine"] = line
    if snippet:
        region["snippet"] = {"text": snippet[:2000]}
    loc: dict = {"physicalLocation": {"artifactLocation": {"uri": uri}}}
    if region:
        loc["physicalLocation"]["region"] = region
    if logical:
        loc["logicalLocations"] = [{"name": logical, "kind": "parameter"}]
    return {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": SARIF_LEVEL[severity],
        "message": {"text": message[:4000]},
        "locations": [loc],
        "partialFingerprints": {fp_key: fp},
        "properties": {"severity": severity, "security-severity": SECURITY_SEVERITY[severity], **(properties or {})},
    }


def log(tool: str, full_name: str, rules: list[dict], results: list[dict], *, complete: bool, problems: list[str],
        properties: dict | None = None) -> dict:
    run: dict = {
        "tool": {"driver": {"name": tool, "fullName": full_name, "version": __version__, "semanticVersion": __version__,
                            "informationUri": "https://pypi.org/project/vigil-sre/", "rules": rules}},
        "invocations": [{
            "executionSuccessful": complete,
            "toolExecutionNotifications": [{"level": "error", "message": {"text": p[:1000]}} for p in problems[:100]],
        }],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": properties or {},
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def incomplete_rule(tool: str, what: str) -> dict:
    return rule(f"{tool}-incomplete", f"{what} did not complete",
                f"{what} did not complete, so its result is not evidence of anything; a partial run never reads as clean.",
                "Fix what stopped the run (the target, the network, throttling) and run it again for the release.", "critical", ["incomplete"])
