"""Reading SARIF 2.1.0 from any tool into plain findings (pure: a parsed document in, data out).

Tools differ in where they put things; this reads what ESLint's SARIF formatter, semgrep, bandit,
CodeQL, gitleaks, vigil's secret scanner and ``vigil migrate lint --format sarif`` write:

* **rule**: ``result.ruleId`` (or ``result.rule.id``); its metadata from ``tool.driver.rules`` or a
  ``tool.extensions[].rules`` entry (CodeQL), by ``ruleIndex``/``rule.index`` or by id.
* **location**: the first ``physicalLocation``: ``artifactLocation.uri`` (or the ``run.artifacts``
  entry its ``index`` names) and ``region.startLine``; the snippet from ``region.snippet`` or
  ``contextRegion.snippet``.
* **fingerprint** (the ledger's dedup key): the result's ``fingerprints``, else its
  ``partialFingerprints``, else a hash of the rule, the location and the snippet (the message when
  there is no snippet); always salted with the tool's name. A fingerprint value with spaces or
  shorter than 8 characters is a placeholder and is ignored (semgrep without a login writes
  ``"matchBasedId/v1": "requires login"`` for every result).
* **severity** (:func:`map_severity`), first that applies:

  1. a ``security-severity`` property (result, then rule; GitHub's convention, a CVSS-like score):
     >= 9.0 critical, >= 7.0 high, >= 4.0 medium, > 0 low, 0 info;
  2. a ``severity`` property naming one of critical/high/medium/low/info (vigil's tools);
  3. bandit's ``issue_severity`` property: HIGH high, MEDIUM medium, LOW low;
  4. the SARIF ``level`` (result, then the rule's ``defaultConfiguration``, else ``warning`` as
     SARIF defines): error high, warning medium, note low, none info.

* A result with an accepted ``suppressions`` entry is kept as ``suppressed`` (it does not block);
  a result whose ``baselineState`` is ``absent`` is no longer there and is skipped.

Snippets and messages are redacted with the secret scanner before they are stored: gitleaks and
others put the secret itself in their SARIF.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from vigil.errors import UsageError

LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
BANDIT_SEVERITY = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low", "UNDEFINED": "info"}
SEVERITIES = ("critical", "high", "medium", "low", "info")
MAX_RESULTS = 200_000
_CWE = re.compile(r"(?i)\bcwe[-/ :]*0*(\d{1,5})\b")


@dataclass
class SarifFinding:
    fingerprint: str
    tool: str
    rule_id: str
    severity: str
    severity_source: str
    title: str
    path: str | None
    line: int | None
    snippet: str | None
    level: str | None
    cwe: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    suppressed: str | None = None
    occurrences: int = 1
    help_uri: str | None = None

    def details(self) -> dict:
        return {
            "level": self.level,
            "severity_source": self.severity_source,
            "snippet": self.snippet,
            "cwe": self.cwe,
            "tags": self.tags,
            "suppressed": self.suppressed,
            "occurrences": self.occurrences,
            "help_uri": self.help_uri,
        }


@dataclass
class SarifRun:
    tool: str
    findings: list[SarifFinding]
    results: int


def _obj(d: dict | None, key: str) -> dict:
    """``d[key]`` when it is a JSON object, else an empty one (SARIF's optional objects)."""
    v = d.get(key) if d else None
    return v if isinstance(v, dict) else {}


def _arr(d: dict | None, key: str) -> list:
    """``d[key]`` when it is a JSON array, else an empty one."""
    v = d.get(key) if d else None
    return v if isinstance(v, list) else []


def _expect(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise UsageError(f"not a SARIF 2.1.0 log: {where}: {what}", hint="import the SARIF file a tool wrote (e.g. semgrep --sarif, bandit -f sarif)")


def severity_from_score(score: Any) -> str | None:
    try:
        d = Decimal(str(score).strip())
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite() or d < 0 or d > 10:
        return None
    if d >= 9:
        return "critical"
    if d >= 7:
        return "high"
    if d >= 4:
        return "medium"
    if d > 0:
        return "low"
    return "info"


def map_severity(result: dict, rule: dict | None) -> tuple[str, str, str | None]:
    """(severity, where it came from, SARIF level) of a result; see the module's documentation."""
    rprops = _obj(result, "properties")
    ruleprops = _obj(rule, "properties")
    level = result.get("level")
    if not isinstance(level, str):
        dc = _obj(rule, "defaultConfiguration")
        level = dc.get("level") if isinstance(dc.get("level"), str) else None
    for props, src in ((rprops, "result security-severity"), (ruleprops, "rule security-severity")):
        if "security-severity" in props:
            sev = severity_from_score(props["security-severity"])
            if sev:
                return sev, src, level
    for props in (rprops, ruleprops):
        s = props.get("severity")
        if isinstance(s, str) and s.lower() in SEVERITIES:
            return s.lower(), "severity property", level
    for props in (rprops, ruleprops):
        s = props.get("issue_severity")
        if isinstance(s, str) and s.upper() in BANDIT_SEVERITY:
            return BANDIT_SEVERITY[s.upper()], "issue_severity property", level
    lv = level if level in LEVEL_SEVERITY else "warning"
    return LEVEL_SEVERITY[lv], f"level {lv}", level


def _rule_of(result: dict, run: dict) -> dict | None:
    tool = _obj(run, "tool")
    driver = _obj(tool, "driver")
    rules = _arr(driver, "rules")
    ref = _obj(result, "rule")
    rid = result.get("ruleId") or ref.get("id")
    comp = _obj(ref, "toolComponent")
    if isinstance(comp.get("index"), int):
        exts = _arr(tool, "extensions")
        if 0 <= comp["index"] < len(exts) and isinstance(exts[comp["index"]], dict):
            rules = exts[comp["index"]].get("rules") or []
    idx = result.get("ruleIndex", ref.get("index"))
    if isinstance(idx, int) and 0 <= idx < len(rules) and isinstance(rules[idx], dict):
        if rid is None or rules[idx].get("id") == rid or str(rid).startswith(str(rules[idx].get("id"))):
            return rules[idx]
    candidates = list(rules)
    for ext in _arr(tool, "extensions"):
        if isinstance(ext, dict) and isinstance(ext.get("rules"), list):
            candidates += ext["rules"]
    for r in candidates:
        if isinstance(r, dict) and r.get("id") == rid:
            return r
    return None


def _message(result: dict, rule: dict | None) -> str:
    msg = _obj(result, "message")
    text = msg.get("text")
    if not isinstance(text, str) and rule and isinstance(msg.get("id"), str):
        text = _obj(_obj(rule, "messageStrings"), msg["id"]).get("text")
    if not isinstance(text, str):
        text = _obj(rule, "shortDescription").get("text")
    text = text if isinstance(text, str) else ""
    args = msg.get("arguments")
    if isinstance(args, list):
        for i, a in enumerate(args):
            text = text.replace("{" + str(i) + "}", str(a))
    return text


def _location(result: dict, run: dict) -> tuple[str | None, int | None, str | None]:
    locs = result.get("locations")
    if not isinstance(locs, list) or not locs or not isinstance(locs[0], dict):
        return None, None, None
    pl = locs[0].get("physicalLocation")
    if not isinstance(pl, dict):
        return None, None, None
    al = _obj(pl, "artifactLocation")
    uri = al.get("uri")
    if not isinstance(uri, str) and isinstance(al.get("index"), int):
        arts = _arr(run, "artifacts")
        if 0 <= al["index"] < len(arts) and isinstance(arts[al["index"]], dict):
            uri = _obj(arts[al["index"]], "location").get("uri")
    if isinstance(uri, str):
        from urllib.parse import unquote

        uri = unquote(uri.removeprefix("file://"))
    region = _obj(pl, "region")
    line = region.get("startLine") if isinstance(region.get("startLine"), int) else None
    snip = None
    for reg in (region, _obj(pl, "contextRegion")):
        s = reg.get("snippet")
        if isinstance(s, dict) and isinstance(s.get("text"), str):
            snip = s["text"]
            break
    return (uri if isinstance(uri, str) else None), line, snip


def _fingerprint(tool: str, rule_id: str, result: dict, path: str | None, line: int | None, snippet: str | None, title: str) -> str:
    for key in ("fingerprints", "partialFingerprints"):
        fps = result.get(key)
        if isinstance(fps, dict) and fps:
            # a value with spaces or a short one is a placeholder, not an id: semgrep without a login
            # writes "requires login" for every result
            body = "\0".join(f"{k}={v}" for k, v in sorted(fps.items()) if isinstance(v, str) and len(v) >= 8 and not any(c.isspace() for c in v))
            if body:
                return hashlib.sha256(f"{key}\0{tool}\0{rule_id}\0{body}".encode()).hexdigest()[:32]
    what = " ".join((snippet or title).split())
    return hashlib.sha256(f"computed\0{tool}\0{rule_id}\0{path}\0{line}\0{what}".encode()).hexdigest()[:32]


def _tags(rule: dict | None, result: dict) -> tuple[list[str], list[str]]:
    tags: list[str] = []
    for props in ((rule or {}).get("properties"), result.get("properties")):
        if isinstance(props, dict):
            t = props.get("tags")
            if isinstance(t, list):
                tags += [str(x) for x in t if isinstance(x, (str, int))]
            c = props.get("cwe")
            if isinstance(c, (str, int)):
                tags.append(f"CWE-{c}" if str(c).isdigit() else str(c))
            elif isinstance(c, dict) and c.get("id") is not None:
                tags.append(f"CWE-{c['id']}")
    cwe = sorted({f"CWE-{int(m.group(1))}" for t in tags for m in _CWE.finditer(t)}, key=lambda x: int(x[4:]))
    return list(dict.fromkeys(tags))[:50], cwe


def parse_sarif(doc: Any) -> list[SarifRun]:
    """The runs of a SARIF log with their findings, deduplicated by fingerprint within the file.
    Raises :class:`UsageError` naming where the document is not SARIF."""
    from vigil.security.scanner import redact_snippet

    _expect(isinstance(doc, dict), "the document", "expected a JSON object")
    _expect(doc.get("version") == "2.1.0", "version", f"expected \"2.1.0\", got {doc.get('version')!r}")
    runs = doc.get("runs")
    _expect(isinstance(runs, list), "runs", "expected a list")
    out: list[SarifRun] = []
    total = 0
    for i, run in enumerate(runs):
        _expect(isinstance(run, dict), f"runs[{i}]", "expected an object")
        driver = _obj(_obj(run, "tool"), "driver")
        _expect(isinstance(driver.get("name"), str) and driver["name"].strip() != "",
                f"runs[{i}].tool.driver.name", "every run names its tool")
        tool = driver["name"].strip()[:200]
        results = run.get("results")
        if results is None:
            results = []
        _expect(isinstance(results, list), f"runs[{i}].results", "expected a list")
        total += len(results)
        if total > MAX_RESULTS:
            raise UsageError(f"more than {MAX_RESULTS} results in one SARIF file", hint="split the import by tool or by directory")
        by_fp: dict[str, SarifFinding] = {}
        for j, res in enumerate(results):
            _expect(isinstance(res, dict), f"runs[{i}].results[{j}]", "expected an object")
            if res.get("baselineState") == "absent":
                continue
            rule = _rule_of(res, run)
            rid = res.get("ruleId") or _obj(res, "rule").get("id")
            rid = str(rid)[:255] if rid is not None else "(no rule)"
            title = _message(res, rule)
            _expect(bool(title) or rid != "(no rule)", f"runs[{i}].results[{j}].message", "a result needs a message or a rule")
            path, line, snippet = _location(res, run)
            sev, src, level = map_severity(res, rule)
            tags, cwe = _tags(rule, res)
            sup = None
            sups = res.get("suppressions")
            if isinstance(sups, list):
                for s in sups:
                    if isinstance(s, dict) and s.get("status", "accepted") == "accepted":
                        sup = f"{s.get('kind', 'external')}: {s.get('justification') or 'no justification given'}"[:500]
                        break
            fp = _fingerprint(tool, rid, res, path, line, snippet, title)
            if fp in by_fp:
                by_fp[fp].occurrences += 1
                continue
            help_uri = (rule or {}).get("helpUri") if isinstance((rule or {}).get("helpUri"), str) else None
            by_fp[fp] = SarifFinding(
                fp, tool, rid, sev, src, redact_snippet(" ".join(title.split()))[:1000], path, line,
                redact_snippet(snippet)[:2000] if snippet else None, level if isinstance(level, str) else None,
                cwe, tags, sup, 1, help_uri,
            )
        out.append(SarifRun(tool, list(by_fp.values()), len(results)))
    return out


def kind_of_tool(tool: str) -> str:
    """The kind of a findings source from its tool name (``--kind`` overrides)."""
    t = tool.lower()
    if t in ("vigil-secrets", "gitleaks", "trufflehog", "detect-secrets") or "secret" in t:
        return "secrets"
    if t == "vigil-migrate-lint":
        return "migration"
    if t in ("vigil-probe", "vigil-waf", "vigil-data"):
        return t.removeprefix("vigil-")  # the runtime probes, the WAF suite, data classification
    return "sast"
