"""Running a go-ftw suite against a WAF and scoring it as GoTestWAF does.

**Sending** (adapter): each stage's request is written byte for byte on a fresh TCP connection
(no HTTP library rewrites it: WAF tests need odd requests). With ``autocomplete`` on (go-ftw's
default) a missing ``Host``, ``Content-Length`` (when there is a body), ``Content-Type:
application/x-www-form-urlencoded`` (for a body) and ``Connection: close`` are added; an
``encoded_request`` is sent exactly. The test's ``dest_addr``/``port`` are overridden by the
target given (go-ftw's ``testoverride``).

**Logs** (optional, as go-ftw): with the WAF's log file given, a marker request carrying
``X-CRS-Test: <uuid>`` is sent before and after each stage (the WAF logs that header: CRS's test
rule 999999), and the stage's log is what lies between the two markers; ``log_contains``,
``expect_ids`` and the others are checked against it. Without a log, a case that needs one is
*not checked* (never passed).

**Scoring** (:func:`score`, pure), GoTestWAF's way: an answer whose status is in ``block_status``
is blocked, in ``pass_status`` passed, anything else *unresolved*; no answer at all is *failed*.
True-positive score = attacks blocked / attacks resolved; true-negative score = benign passed /
benign resolved; a group's score is their mean (0 when no attack was blocked); the overall score
is the mean of the application and API groups that have cases. vigil's check passes only when
both scores reach the spec's minimums *and* nothing is unresolved or failed *and* at least one
attack and one benign request were answered: missing evidence is a no.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from vigil.errors import UsageError
from vigil.security.waf.ftw import Case, Expect, Request

MAX_RESPONSE = 1024 * 1024
MARKER_HEADER = "X-CRS-Test"


@dataclass(frozen=True)
class Answer:
    status: int | None
    body: str
    error: str | None = None


@dataclass
class CaseResult:
    case: Case
    outcome: str  # blocked | passed | unresolved | failed
    status: int | None
    checked: bool  # the case's own expectations could be checked
    expectations_met: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.case.to_dict(), "outcome": self.outcome, "status": self.status, "checked": self.checked,
                "expectations_met": self.expectations_met, "reasons": self.reasons}


# --- sending ---------------------------------------------------------------------------------------


def build_request(r: Request, host_header: str) -> bytes:
    if r.raw is not None:
        return r.raw
    headers = list(r.headers)
    names = {k.lower() for k, _ in headers}
    if r.autocomplete:
        if "host" not in names:
            headers.insert(0, ("Host", host_header))
        if r.data is not None:
            if "content-type" not in names:
                headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            if "content-length" not in names and "transfer-encoding" not in names:
                headers.append(("Content-Length", str(len(r.data))))
        if "connection" not in names:
            headers.append(("Connection", "close"))
    head = f"{r.method} {r.uri} {r.version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("utf-8", "surrogateescape") + (r.data or b"")


def send_raw(host: str, port: int, tls: bool, data: bytes, timeout: float) -> Answer:
    import http.client

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        return Answer(None, "", f"connect: {e.strerror or e}")
    try:
        if tls:
            ctx = ssl.create_default_context()
            sock = ctx.wrap_socket(sock, server_hostname=host)
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock, method="HEAD" if data.startswith(b"HEAD ") else None)
        resp.begin()
        body = resp.read(MAX_RESPONSE) if not data.startswith(b"HEAD ") else b""
        return Answer(resp.status, body.decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException, ssl.SSLError) as e:
        return Answer(None, "", f"{type(e).__name__}: {e}"[:300])
    finally:
        try:
            sock.close()
        except OSError:
            pass


class LogReader:
    """The WAF log between two markers (go-ftw's way). The file is read from where it ended when
    the stage started, so a large log costs nothing."""

    def __init__(self, path: Path, send_marker: Callable[[str], Answer], wait: Callable[[float], None] = time.sleep, tries: int = 20) -> None:
        self.path, self.send_marker, self.wait, self.tries = path, send_marker, wait, tries

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def start(self) -> tuple[int, str]:
        pos = self._size()
        m = uuid.uuid4().hex
        self.send_marker(m)
        return pos, m

    def segment(self, pos: int, start_marker: str) -> str | None:
        """The log text after the start marker up to the end marker, or None if the markers never
        showed (the WAF does not log the marker header)."""
        end = uuid.uuid4().hex
        self.send_marker(end)
        for _ in range(self.tries):
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    text = fh.read(64 * 1024 * 1024).decode("utf-8", "replace")
            except OSError:
                text = ""
            if end in text:
                a = text.find(start_marker)
                if a < 0:
                    return None
                a = text.find("\n", a) + 1
                b = text.rfind("\n", 0, text.find(end)) + 1
                return text[a:b] if b > a else ""
            self.wait(0.05)
        return None


# --- checking (pure) -------------------------------------------------------------------------------


def _id_in(text: str, rid: int) -> bool:
    return re.search(rf'\[id "{rid}"\]|id[:\s"]*{rid}\b', text) is not None


def check(expect: Expect, answer: Answer, log: str | None) -> tuple[bool, bool, list[str]]:
    """(checked, met, reasons) of one stage's expectations. ``log`` None: no log could be read, so
    an expectation on the log cannot be checked."""
    reasons: list[str] = []
    if expect.expect_error:
        if answer.error is None:
            reasons.append(f"expected no answer (an error), got HTTP {answer.status}")
        return True, not reasons, reasons
    if answer.error is not None:
        return True, False, [f"no answer: {answer.error}"]
    if expect.status and answer.status not in expect.status:
        reasons.append(f"expected HTTP {' or '.join(map(str, expect.status))}, got {answer.status}")
    if expect.response_contains and not re.search(expect.response_contains, answer.body):
        reasons.append(f"the answer does not contain /{expect.response_contains}/")
    if expect.needs_log:
        if log is None:
            return False, False, reasons + ["the expectation is on the WAF log, which was not read (pass --log, and log the X-CRS-Test header)"]
        if expect.log_contains and not re.search(expect.log_contains, log):
            reasons.append(f"the log lacks /{expect.log_contains}/")
        if expect.no_log_contains and re.search(expect.no_log_contains, log):
            reasons.append(f"the log has /{expect.no_log_contains}/")
        reasons += [f"rule {i} not in the log" for i in expect.expect_ids if not _id_in(log, i)]
        reasons += [f"rule {i} in the log" for i in expect.no_expect_ids if _id_in(log, i)]
        if expect.match_regex and not re.search(expect.match_regex, log):
            reasons.append(f"the log does not match /{expect.match_regex}/")
        if expect.no_match_regex and re.search(expect.no_match_regex, log):
            reasons.append(f"the log matches /{expect.no_match_regex}/")
    return True, not reasons, reasons


def outcome(answer: Answer, block_status: list[int], pass_status: list[int]) -> str:
    if answer.error is not None or answer.status is None:
        return "failed"
    if answer.status in block_status:
        return "blocked"
    if answer.status in pass_status:
        return "passed"
    return "unresolved"


def _pct(n: int, d: int) -> Decimal | None:
    if d == 0:
        return None
    return (Decimal(100) * n / d).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def score(results: list[CaseResult]) -> dict:
    """GoTestWAF's scores over the results (percentages with two decimals; None where no case)."""

    def counts(rs: list[CaseResult]) -> dict:
        return {k: sum(r.outcome == k for r in rs) for k in ("blocked", "passed", "unresolved", "failed")}

    out: dict = {}
    groups_avg = []
    for name, api in (("app", False), ("api", True)):
        att = [r for r in results if r.case.api == api and r.case.category == "attack"]
        ben = [r for r in results if r.case.api == api and r.case.category == "benign"]
        ca, cb = counts(att), counts(ben)
        tp = _pct(ca["blocked"], ca["blocked"] + ca["passed"])
        tn = _pct(cb["passed"], cb["blocked"] + cb["passed"])
        parts = [x for x in (tp, tn) if x is not None]
        avg: Decimal | None = None
        if parts:
            avg = Decimal(0) if (tp is not None and ca["blocked"] == 0) else (sum(parts, Decimal(0)) / len(parts)).quantize(Decimal("0.01"))
            groups_avg.append(avg)
        out[name] = {"attacks": ca, "benign": cb, "true_positive": tp, "true_negative": tn, "average": avg}
    att_all = [r for r in results if r.case.category == "attack"]
    ben_all = [r for r in results if r.case.category == "benign"]
    ca, cb = counts(att_all), counts(ben_all)
    out["attacks"] = ca
    out["benign"] = cb
    out["attack_score"] = _pct(ca["blocked"], ca["blocked"] + ca["passed"])
    out["benign_score"] = _pct(cb["passed"], cb["blocked"] + cb["passed"])
    out["overall"] = (sum(groups_avg, Decimal(0)) / len(groups_avg)).quantize(Decimal("0.01")) if groups_avg else None
    out["by_group"] = {}
    for g in sorted({r.case.group for r in results}):
        rs = [r for r in results if r.case.group == g]
        out["by_group"][g] = counts(rs) | {"sent": len(rs)}
    return out


def verdict(sc: dict, min_attack: Decimal, min_benign: Decimal) -> tuple[bool, list[str]]:
    """vigil's decision over a score: (passed, reasons it did not)."""
    why = []
    a, b = sc["attacks"], sc["benign"]
    if a["blocked"] + a["passed"] == 0:
        why.append("no attack got an answer: nothing shows the WAF blocks")
    if b["blocked"] + b["passed"] == 0:
        why.append("no benign request got an answer: nothing shows the WAF lets traffic through")
    if sc["attack_score"] is not None and sc["attack_score"] < min_attack * 100:
        why.append(f"attacks blocked {sc['attack_score']}% < {(min_attack * 100).normalize():f}%")
    if sc["benign_score"] is not None and sc["benign_score"] < min_benign * 100:
        why.append(f"benign requests passed {sc['benign_score']}% < {(min_benign * 100).normalize():f}%")
    for kind in ("unresolved", "failed"):
        n = a[kind] + b[kind]
        if n:
            why.append(f"{n} requests {kind} (no blocking or passing status{' or no answer' if kind == 'failed' else ''}): the evidence is incomplete")
    return not why, why


# --- running ---------------------------------------------------------------------------------------


@dataclass
class SuiteReport:
    target: str
    results: list[CaseResult]
    score: dict
    passed: bool
    reasons: list[str]
    block_status: list[int]
    pass_status: list[int]
    at: str = ""

    @property
    def expectations_failed(self) -> list[CaseResult]:
        return [r for r in self.results if r.checked and not r.expectations_met]

    @property
    def complete(self) -> bool:
        return not any(r.outcome in ("failed", "unresolved") for r in self.results)

    def to_dict(self) -> dict:
        def num(d: dict) -> dict:
            return {k: (float(v) if isinstance(v, Decimal) else num(v) if isinstance(v, dict) else v) for k, v in d.items()}

        return {
            "target": self.target, "at": self.at, "passed": self.passed, "reasons": self.reasons, "complete": self.complete,
            "block_status": self.block_status, "pass_status": self.pass_status, "score": num(self.score),
            "cases": len(self.results), "expectations": {"met": sum(r.checked and r.expectations_met for r in self.results),
                                                         "failed": len(self.expectations_failed),
                                                         "not_checked": sum(not r.checked for r in self.results)},
            "results": [r.to_dict() for r in self.results],
        }


def parse_target(url: str) -> tuple[str, int, bool, str]:
    p = urlsplit(url)
    if p.scheme not in ("http", "https") or not p.hostname:
        raise UsageError(f"--target {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    try:
        port = p.port or (443 if p.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--target {url!r}: bad port") from None
    return p.hostname, port, p.scheme == "https", p.netloc


def run_suite(
    cases: list[Case],
    target: str,
    *,
    block_status: list[int],
    pass_status: list[int],
    min_attack: Decimal = Decimal(1),
    min_benign: Decimal = Decimal(1),
    log: Path | None = None,
    timeout: float = 10.0,
    send: Callable[[str, int, bool, bytes, float], Answer] = send_raw,
    wait: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int, str], None] | None = None,
    at: str = "",
) -> SuiteReport:
    host, port, tls, netloc = parse_target(target)

    def marker(m: str) -> Answer:
        return send(host, port, tls, f"GET / HTTP/1.1\r\nHost: localhost\r\n{MARKER_HEADER}: {m}\r\nConnection: close\r\n\r\n".encode(), timeout)

    reader = LogReader(log, marker, wait) if log is not None else None
    results: list[CaseResult] = []
    for n, c in enumerate(cases):
        if progress:
            progress(n + 1, len(cases), c.id)
        checked, met, reasons = True, True, []
        last: Answer | None = None
        for s in c.stages:
            seg = None
            if reader is not None and s.expect.needs_log:
                pos, m = reader.start()
                last = send(host, port, tls, build_request(s.request, "localhost"), timeout)
                seg = reader.segment(pos, m)
            else:
                last = send(host, port, tls, build_request(s.request, "localhost"), timeout)
            ck, ok, why = check(s.expect, last, seg)
            checked = checked and ck
            met = met and ok
            reasons += why
        assert last is not None
        results.append(CaseResult(c, outcome(last, block_status, pass_status), last.status, checked, met and checked, reasons))
    sc = score(results)
    ok, why = verdict(sc, min_attack, min_benign)
    return SuiteReport(target, results, sc, ok, why, block_status, pass_status, at)


def to_sarif(report: SuiteReport) -> dict:
    """Attacks that got through (``waf-bypass``, high) and benign requests blocked
    (``waf-false-positive``, medium) as SARIF results of ``vigil-waf``; an incomplete run (requests
    unresolved or unanswered, or nothing to score) adds ``vigil-waf-incomplete`` (critical)."""
    from vigil.security.probes import sarif

    rules = [
        sarif.rule("waf-bypass", "An attack got through the WAF", "A request of the WAF suite that must be blocked was let through.",
               "Add or tune a rule (the shipped examples/platform/waf/vigil-custom-rules.conf covers SSRF, SSTI and GraphQL abuse).", "high", ["waf"]),
        sarif.rule("waf-false-positive", "A benign request was blocked", "A request of the WAF suite that must pass was blocked: real users would be.",
               "Add a rule exclusion for the request (CRS: REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf).", "medium", ["waf"]),
        sarif.incomplete_rule("vigil-waf", "The WAF suite"),
    ]
    idx = {r["id"]: i for i, r in enumerate(rules)}
    _, _, _, netloc = parse_target(report.target)
    results = []
    for r in report.results:
        c = r.case
        if c.category == "attack" and r.outcome == "passed":
            results.append(sarif.result("waf-bypass", idx["waf-bypass"], "high",
                                    f"{c.group} attack {c.id} got HTTP {r.status} through the WAF at {report.target}: {c.description}",
                                    c.file, "vigilWaf/v1", sarif.fingerprint("bypass", netloc, c.id), logical=c.id,
                                    properties={"case": c.id, "group": c.group, "status": r.status}))
        elif c.category == "benign" and r.outcome == "blocked":
            results.append(sarif.result("waf-false-positive", idx["waf-false-positive"], "medium",
                                    f"benign request {c.id} was blocked (HTTP {r.status}) by the WAF at {report.target}: {c.description}",
                                    c.file, "vigilWaf/v1", sarif.fingerprint("fp", netloc, c.id), logical=c.id,
                                    properties={"case": c.id, "group": c.group, "status": r.status}))
    incomplete = [x for x in report.reasons if "incomplete" in x or x.startswith("no ")]
    if incomplete:
        results.append(sarif.result("vigil-waf-incomplete", idx["vigil-waf-incomplete"], "critical",
                                f"The WAF suite against {report.target} is not complete evidence: {'; '.join(incomplete)}.", report.target,
                                "vigilWaf/v1", sarif.fingerprint("incomplete", netloc, report.at)))
    return sarif.log("vigil-waf", "vigil waf run", rules, results, complete=not incomplete, problems=incomplete,
                 properties={"target": report.target, "at": report.at})
