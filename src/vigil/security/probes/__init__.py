"""Runtime SSRF (CWE-918) and SSTI (CWE-1336) probes: payload catalogues, an out-of-band canary
listener on loopback, detection by reflection, error, timing and canary hits, a report per target
and SARIF for the findings ledger.

* :mod:`.payloads` and :mod:`.detect`: pure (catalogues; what answers prove);
* :mod:`.canary`: the listener; :mod:`.engine`: sends the requests (httpx) and builds the report;
* :func:`to_sarif`: the report as SARIF 2.1.0 (tool ``vigil-probe``; ``vigil findings import``
  files it under kind ``probe``).
"""

from __future__ import annotations

from vigil.security.probes import sarif as _sarif

TOOL = "vigil-probe"
FP_KEY = "vigilProbe/v1"


def to_sarif(report) -> dict:
    """A :class:`~vigil.security.probes.engine.ProbeReport` as SARIF 2.1.0. The fingerprint of a
    finding is its class, target (without the query) and parameter, so a re-run is the same
    finding; an incomplete probe adds a ``vigil-probe-incomplete`` result (critical)."""
    from urllib.parse import urlsplit, urlunsplit

    from vigil.security.probes.engine import CWE, TITLE

    rules = [
        _sarif.rule("ssrf", "Server-side request forgery (CWE-918)",
                    "The server fetches a URL taken from the request: an attacker can make it call internal services and the cloud metadata service.",
                    "Fetch only from an allowlist of hosts, resolve and check every address (no loopback, private, link-local or metadata), follow no redirects without checking them again, allow only http(s).",
                    "high", ["external/cwe/cwe-918", "ssrf"], "https://cwe.mitre.org/data/definitions/918.html"),
        _sarif.rule("ssti", "Server-side template injection (CWE-1336)",
                    "Input from the request is compiled as a template: an attacker can evaluate expressions on the server, often up to code execution.",
                    "Never build a template from input: pass input as a variable to a fixed template, with autoescape, or use a sandboxed environment.",
                    "critical", ["external/cwe/cwe-1336", "ssti"], "https://cwe.mitre.org/data/definitions/1336.html"),
        _sarif.incomplete_rule(TOOL, "The probe"),
    ]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    problems = []
    for tr in report.targets:
        for f in tr.findings:
            p = urlsplit(f.target)
            where = urlunsplit((p.scheme, p.netloc, p.path or "/", "", ""))
            b = f.best
            ev = "; ".join(f"{e.kind}: {e.detail}" for e in b.evidence)
            msg = (f"{TITLE[f.kind]} ({CWE[f.kind]}) in parameter {f.param!r} of {f.method} {where}, {f.confidence}"
                   + (f", engine {f.engine}" if f.engine else "") + f". Payload: {b.payload}. Evidence: {ev}."
                   + (f" {len(f.hits)} payloads worked." if len(f.hits) > 1 else ""))
            results.append(_sarif.result(
                f.kind, index[f.kind], f.severity, msg, where, FP_KEY, _sarif.fingerprint(f.kind, where, f.method, f.param),
                snippet=b.payload, logical=f.param,
                properties={"cwe": CWE[f.kind], "confidence": f.confidence, "engine": f.engine, "param": f.param,
                            "payloads": [h.payload for h in f.hits][:50]},
            ))
        if not tr.complete:
            why = tr.error or f"{len(tr.unsent)} payloads got no answer"
            problems.append(f"{tr.target.url}: {why}")
            p = urlsplit(tr.target.url)
            where = urlunsplit((p.scheme, p.netloc, p.path or "/", "", ""))
            results.append(_sarif.result(
                f"{TOOL}-incomplete", index[f"{TOOL}-incomplete"], "critical",
                f"The {report.kind} probe of {where} did not complete: {why}. It proves nothing; run it again.", where, FP_KEY,
                _sarif.fingerprint("incomplete", report.kind, where, report.at),
            ))
    return _sarif.log(TOOL, f"vigil probe {report.kind}", rules, results, complete=report.complete, problems=problems,
                      properties={"probe": report.kind, "at": report.at, "canary": report.canary})
