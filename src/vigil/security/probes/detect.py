"""Deciding what a probe's answers prove (pure: plain data in, evidence out).

Four kinds of evidence, strongest first:

* ``oob``: the canary listener received a request carrying the payload's unique token; the server
  made a request of an address the probe chose (for SSRF: internal reach, since the listener is on
  the probe's network).
* ``reflection``: the answer holds what only success can produce: the canary's own body with the
  token, an arithmetic product between unique markers, cloud metadata, ``/etc/passwd``.
* ``timing``: the answer took at least 80% of the canary's hold time longer than the slowest
  baseline answer, twice.
* ``error``: an error signature (a template engine's syntax error, a fetch library's connection
  error) that the baseline answers do not have.

A response signature already present in a baseline answer proves nothing and is ignored. Evidence
from reflection, out of band or timing confirms a finding; an error alone makes it ``tentative``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SIGNATURES: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    "metadata": [
        ("aws-imds listing", re.compile(r"(?m)^(?:ami-id|instance-id|instance-type|local-ipv4|iam/|security-credentials/?)$")),
        ("aws credentials", re.compile(r'"(?:AccessKeyId|SecretAccessKey|Token)"\s*:')),
        ("gcp metadata", re.compile(r'"(?:serviceAccounts|projectId|numericProjectId)"\s*:|computeMetadata')),
        ("azure imds", re.compile(r'"(?:vmId|azEnvironment|subscriptionId)"\s*:')),
        ("openstack metadata", re.compile(r'"(?:uuid|availability_zone)"\s*:.*"(?:hostname|launch_index)"', re.S)),
    ],
    "passwd": [("/etc/passwd", re.compile(r"(?m)^root:[^:\n]*:0:0:"))],
    "winini": [("win.ini", re.compile(r"(?im)^\[(?:fonts|extensions|mci extensions)\]\s*$"))],
    "fetch-error": [
        ("connection refused", re.compile(r"(?i)connection refused|ECONNREFUSED|errno\s*111\b|actively refused")),
        ("urllib error", re.compile(r"(?i)urlopen error|unknown url type")),
        ("requests/urllib3 error", re.compile(r"(?i)HTTPConnectionPool\(|Max retries exceeded|No connection adapters were found|NewConnectionError")),
        ("curl error", re.compile(r"(?i)cURL error \d+|curl: \(\d+\)|Failed to connect to")),
        ("java/.NET error", re.compile(r"java\.net\.(?:ConnectException|UnknownHostException|MalformedURLException)|System\.Net\.WebException")),
        ("resolver error", re.compile(r"(?i)name or service not known|getaddrinfo (?:ENOTFOUND|failed)|nodename nor servname")),
    ],
    "template-error": [
        ("Jinja2", re.compile(r"jinja2\.exceptions\.\w+|TemplateSyntaxError|unexpected end of template|expected token '[^']+'")),
        ("Twig", re.compile(r"Twig[_\\]Error|Twig\\Error\\SyntaxError")),
        ("FreeMarker", re.compile(r"freemarker\.(?:core|template)\.\w+|FreeMarker template error")),
        ("Velocity", re.compile(r"org\.apache\.velocity\.\w+")),
        ("Mako", re.compile(r"mako\.exceptions\.\w+")),
        ("Django", re.compile(r"django\.template\.exceptions\.\w+|TemplateSyntaxError at /")),
        ("Thymeleaf", re.compile(r"org\.thymeleaf\.exceptions\.\w+")),
        ("ERB/Ruby", re.compile(r"\(erb\):\d+: syntax error|SyntaxError.*erb")),
        ("Smarty", re.compile(r"Smarty(?:Compiler)?Exception|Syntax error in template")),
        ("Handlebars", re.compile(r"Parse error on line \d+:[\s\S]{0,200}Expecting")),
        ("Nunjucks/EJS", re.compile(r"Template render error|ejs:\d+|nunjucks")),
        ("Liquid", re.compile(r"Liquid syntax error")),
    ],
}


@dataclass(frozen=True)
class Answer:
    """What one request got back: plain data (``error`` is a transport failure, no answer)."""

    status: int | None
    body: str
    elapsed: float
    location: str | None = None
    error: str | None = None
    retry_after: float | None = None


@dataclass
class Evidence:
    kind: str  # oob | reflection | timing | error
    detail: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "detail": self.detail}


@dataclass
class Baseline:
    answers: list[Answer]
    present: dict[str, set[str]] = field(default_factory=dict)  # signature kind -> names present in a baseline answer

    @property
    def slowest(self) -> float:
        return max((a.elapsed for a in self.answers), default=0.0)


def signatures_in(kind: str, text: str) -> list[str]:
    return [name for name, rx in SIGNATURES.get(kind, []) if rx.search(text)]


def make_baseline(answers: list[Answer]) -> Baseline:
    present: dict[str, set[str]] = {}
    for kind in SIGNATURES:
        present[kind] = {n for a in answers for n in signatures_in(kind, a.body)}
    return Baseline(answers, present)


def new_signatures(kind: str, answer: Answer, baseline: Baseline) -> list[str]:
    return [n for n in signatures_in(kind, answer.body) if n not in baseline.present.get(kind, set())]


def reflection(expected: str, answer: Answer, payload_value: str) -> Evidence | None:
    """The expected text is in the answer and is not simply the payload echoed back."""
    if expected and expected in answer.body and expected not in payload_value:
        return Evidence("reflection", f"the answer (HTTP {answer.status}) contains {expected!r}")
    return None


def timing(trials: list[float], delay: float, baseline: Baseline) -> Evidence | None:
    """Every trial took at least 80% of ``delay`` longer than the slowest baseline answer."""
    if not trials:
        return None
    floor = baseline.slowest + 0.8 * delay
    if all(t >= floor for t in trials):
        shown = ", ".join(f"{t:.2f}s" for t in trials)
        return Evidence("timing", f"answers took {shown} with the canary holding {delay:g}s (baseline at most {baseline.slowest:.2f}s)")
    return None


def oob(token: str, hits: list[dict]) -> Evidence | None:
    mine = [h for h in hits if h.get("token") == token]
    if not mine:
        return None
    h = mine[0]
    line = h.get("first_line") or ""
    return Evidence("oob", f"the canary received {len(mine)} request(s) with token {token} from {h.get('peer')}: {line[:120]!r}")


def snippet(body: str, needle: str, width: int = 60) -> str:
    i = body.find(needle)
    if i < 0:
        return body[:width * 2]
    return body[max(0, i - width): i + len(needle) + width]
