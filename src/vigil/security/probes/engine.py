"""Running the SSRF and SSTI probes against targets (the adapter: it sends HTTP requests).

For each target and parameter: two baseline requests with a harmless value, then every payload of
the catalogue (:mod:`vigil.security.probes.payloads`), one request each, in order, the timing
payloads last. What came back is judged by :mod:`vigil.security.probes.detect`; canary hits are
read after the payloads (and again after ``oob_wait`` seconds for servers that fetch later).

A request that fails (refused, reset, timed out) is sent again once; a ``429`` or ``503`` with a
``Retry-After`` of at most ``max_retry_wait`` seconds is sent again after that wait, at most
``max_retries`` times. A payload that never got an answer is *unsent*: the target's report is then
incomplete, and an incomplete probe never reads as clean. A retried payload is judged on its one
final answer, so nothing is counted twice.
"""

from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from vigil.errors import UsageError
from vigil.security.probes import detect
from vigil.security.probes.detect import Answer, Evidence
from vigil.security.probes.payloads import Payload, fingerprint_payloads, new_token, ssrf_payloads, ssti_payloads

CWE = {"ssrf": "CWE-918", "ssti": "CWE-1336"}
TITLE = {"ssrf": "Server-side request forgery", "ssti": "Server-side template injection"}
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True)
class Target:
    url: str
    params: tuple[str, ...]
    method: str = "GET"
    body: str = "query"  # query | form | json
    data: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ProbeOptions:
    timeout: float = 10.0
    delay: float = 2.0
    oob_wait: float = 1.0
    max_retries: int = 2
    max_retry_wait: float = 10.0


class Sender(Protocol):
    def __call__(self, target: Target, param: str, value: str, timeout: float) -> Answer: ...


@dataclass
class Hit:
    family: str
    payload: str
    note: str
    evidence: list[Evidence]
    severity: str
    confidence: str  # confirmed | tentative
    engine: str | None = None

    def to_dict(self) -> dict:
        return {"family": self.family, "payload": self.payload, "note": self.note, "severity": self.severity,
                "confidence": self.confidence, "engine": self.engine, "evidence": [e.to_dict() for e in self.evidence]}


@dataclass
class Finding:
    kind: str
    target: str
    method: str
    param: str
    hits: list[Hit]

    @property
    def best(self) -> Hit:
        return sorted(self.hits, key=lambda h: (SEVERITY_ORDER.index(h.severity), h.confidence != "confirmed"))[0]

    @property
    def severity(self) -> str:
        return self.best.severity

    @property
    def confidence(self) -> str:
        return "confirmed" if any(h.confidence == "confirmed" for h in self.hits) else "tentative"

    @property
    def engine(self) -> str | None:
        return next((h.engine for h in self.hits if h.engine), None)

    def to_dict(self) -> dict:
        b = self.best
        return {
            "kind": self.kind, "cwe": CWE[self.kind], "title": TITLE[self.kind], "target": self.target, "method": self.method,
            "param": self.param, "severity": self.severity, "confidence": self.confidence, "engine": self.engine,
            "payload": b.payload, "evidence": [e.to_dict() for e in b.evidence], "working_payloads": [h.to_dict() for h in self.hits],
        }


@dataclass
class TargetReport:
    target: Target
    kind: str
    findings: list[Finding] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    unsent: list[dict] = field(default_factory=list)
    error: str | None = None
    payloads: int = 0

    @property
    def complete(self) -> bool:
        return self.error is None and not self.unsent

    def to_dict(self) -> dict:
        return {
            "target": self.target.url, "method": self.target.method, "params": list(self.target.params), "kind": self.kind,
            "cwe": CWE[self.kind], "complete": self.complete, "error": self.error, "payloads": self.payloads,
            "requests": self.requests, "retries": self.retries, "unsent": self.unsent,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class ProbeReport:
    kind: str
    targets: list[TargetReport]
    canary: str | None
    at: str

    @property
    def findings(self) -> list[Finding]:
        return [f for t in self.targets for f in t.findings]

    @property
    def complete(self) -> bool:
        return all(t.complete for t in self.targets)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "cwe": CWE[self.kind], "at": self.at, "canary": self.canary, "complete": self.complete,
            "found": len(self.findings), "targets": [t.to_dict() for t in self.targets],
        }


# --- targets -------------------------------------------------------------------------------------


def target_problem(url: str, allowed: list[str]) -> str | None:
    """Why the probe must not be sent to ``url``, or None: a loopback target always may be probed;
    any other host only when ``allowed`` names it (a host name, an address or a network); a cloud
    metadata or link-local address never."""
    from vigil.netguard import host_problem

    try:
        p = urlsplit(url)
        p.port  # noqa: B018 - raises on a bad port
    except ValueError as e:
        return f"is not a URL ({e})"
    if p.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    host = (p.hostname or "").lower().rstrip(".")
    if not host:
        return "has no host"
    why = host_problem(host)
    if why:
        return f"points at {why}"
    if host == "localhost":
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return None
    for a in allowed:
        a = a.strip().lower()
        if a == host:
            return None
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(a, strict=False):
                    return None
            except ValueError:
                continue
    return "is not a loopback address; probes go elsewhere only when security.probes.allowed_targets or --allow-target names the host"


# --- sending -------------------------------------------------------------------------------------


class HttpxSender:
    """Sends one request per payload with httpx: no redirects followed, no proxy from the
    environment (a probe goes only where it is told)."""

    def __init__(self) -> None:
        import httpx

        self._httpx = httpx
        self._client = httpx.Client(follow_redirects=False, trust_env=False, headers={"User-Agent": "vigil-probe"})

    def close(self) -> None:
        self._client.close()

    def __call__(self, target: Target, param: str, value: str, timeout: float) -> Answer:
        httpx = self._httpx
        parts = urlsplit(target.url)
        base = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not (target.body == "query" and k == param)]
        fields = dict(target.data)
        kwargs: dict = {"headers": dict(target.headers), "timeout": timeout}
        if target.body == "query":
            kwargs["params"] = query + list(fields.items()) + [(param, value)]
        else:
            kwargs["params"] = query
            fields[param] = value
            kwargs["json" if target.body == "json" else "data"] = fields
        t0 = time.monotonic()
        try:
            r = self._client.request(target.method, base, **kwargs)
        except httpx.HTTPError as e:
            return Answer(None, "", time.monotonic() - t0, error=f"{type(e).__name__}: {e}"[:300])
        body = r.content[: 2 * 1024 * 1024].decode(r.encoding or "utf-8", "replace")
        return Answer(r.status_code, body, time.monotonic() - t0, r.headers.get("location"), None, parse_retry_after(r.headers.get("retry-after")))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(int(v))
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    from vigil.clock import SystemClock

    return max(0.0, (when - SystemClock().now()).total_seconds())


class _Runner:
    def __init__(self, send: Sender, options: ProbeOptions, sleep: Callable[[float], None], report: TargetReport) -> None:
        self.send, self.opt, self.sleep, self.rep = send, options, sleep, report

    def one(self, param: str, value: str, timeout: float | None = None) -> Answer | None:
        """The final answer to one payload, or None when it could not be sent."""
        t = timeout or self.opt.timeout
        failures = 0
        throttled = 0
        while True:
            self.rep.requests += 1
            a = self.send(self.rep.target, param, value, t)
            if a.error is not None:
                failures += 1
                if failures <= 1:
                    self.rep.retries += 1
                    continue
                return None
            if a.status in (429, 503):
                wait = a.retry_after
                if wait is not None and wait <= self.opt.max_retry_wait and throttled < self.opt.max_retries:
                    throttled += 1
                    self.rep.retries += 1
                    self.sleep(wait)
                    continue
                if a.status == 429:
                    return None  # still throttled: no answer about the payload
            return a


def run_probe(
    kind: str,
    targets: list[Target],
    *,
    canary,  # a started Canary (or an object with .url and .hits)
    options: ProbeOptions = ProbeOptions(),
    send: Sender | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: random.Random | None = None,
    at: str = "",
    progress: Callable[[str], None] | None = None,
) -> ProbeReport:
    if kind not in CWE:
        raise UsageError(f"unknown probe {kind!r}", hint="ssrf or ssti")
    rnd = rand or random.Random()
    own: HttpxSender | None = None
    if send is None:
        own = send = HttpxSender()  # made here, closed here
    try:
        reports = [_probe_target(kind, t, canary, options, send, sleep, rnd, progress) for t in targets]
    finally:
        if own is not None:
            own.close()
    return ProbeReport(kind, reports, canary.url if canary is not None else None, at)


def _probe_target(kind, target, canary, opt, send, sleep, rnd, progress) -> TargetReport:
    rep = TargetReport(target, kind)
    run = _Runner(send, opt, sleep, rep)
    for param in target.params:
        base_answers = []
        for _ in range(2):
            a = run.one(param, f"vigilbaseline{new_token(rnd)[3:11]}")
            if a is None:
                rep.error = f"the baseline request for {param!r} got no answer: the target did not answer (refused, timed out or throttled)"
                return rep
            base_answers.append(a)
        baseline = detect.make_baseline(base_answers)
        if kind == "ssrf":
            payloads = ssrf_payloads(canary.url, rnd, delay=opt.delay)
        else:
            payloads = ssti_payloads(rnd)
        payloads.sort(key=lambda p: p.delay is not None)
        rep.payloads += len(payloads)
        hits: list[Hit] = []
        pending_oob: list[tuple[Payload, Answer]] = []
        for i, p in enumerate(payloads):
            if progress:
                progress(f"{target.url} {param}: {i + 1}/{len(payloads)} {p.family}")
            if p.delay is not None:
                hit = _timing(run, param, p, baseline, canary, opt)
                if hit == "unsent":
                    rep.unsent.append({"param": param, "family": p.family, "payload": p.value})
                elif hit is not None:
                    hits.append(hit)
                continue
            a = run.one(param, p.value)
            if a is None:
                rep.unsent.append({"param": param, "family": p.family, "payload": p.value})
                continue
            h = _judge(kind, p, a, baseline, canary)
            if h is not None:
                hits.append(h)
            elif p.oob:
                pending_oob.append((p, a))
            if h is not None and kind == "ssti" and p.family == "arithmetic":
                h.engine = _fingerprint(run, param, p, rnd, baseline) or h.engine
        if pending_oob and canary is not None and opt.oob_wait > 0:
            sleep(opt.oob_wait)  # a server that fetches later (a queue) calls the canary after answering
        for p, a in pending_oob:
            h = _judge(kind, p, a, baseline, canary)
            if h is not None:
                hits.append(h)
        if hits:
            rep.findings.append(Finding(kind, target.url, target.method, param, hits))
    return rep


def _judge(kind: str, p: Payload, a: Answer, baseline: detect.Baseline, canary) -> Hit | None:
    ev: list[Evidence] = []
    severity = None
    for t in p.oob:
        e = detect.oob(t, canary.hits if canary is not None else [])
        if e:
            ev.append(e)
    if p.reflect:
        e = detect.reflection(p.reflect, a, p.value)
        if e:
            ev.append(e)
    strong_sig = [s for s in p.signatures if s in ("metadata", "passwd", "winini")]
    for s in strong_sig:
        names = detect.new_signatures(s, a, baseline)
        if names:
            ev.append(Evidence("reflection", f"the answer (HTTP {a.status}) holds {', '.join(names)}: {detect.snippet(a.body, '', 80)!r}"))
            severity = "critical"
    errors = []
    if kind == "ssrf":
        errors = detect.new_signatures("fetch-error", a, baseline)
    else:
        errors = detect.new_signatures("template-error", a, baseline)
    if errors and (not ev or p.family in ("internal-port", "error")):
        ev.append(Evidence("error", f"the answer (HTTP {a.status}) shows {', '.join(errors)} that the baseline does not"))
    if not ev:
        return None
    confirmed = any(e.kind in ("oob", "reflection", "timing") for e in ev)
    if severity is None:
        if kind == "ssti":
            severity = "critical" if confirmed else "medium"
        else:
            severity = "high" if confirmed else "medium"
    engine = None
    if kind == "ssti" and not confirmed and errors:
        engine = errors[0]
    return Hit(p.family, p.value, p.note, ev, severity, "confirmed" if confirmed else "tentative", engine)


def _timing(run: _Runner, param: str, p: Payload, baseline: detect.Baseline, canary, opt: ProbeOptions):
    assert p.delay is not None
    trials = []
    for n in range(2):
        value = p.value if n == 0 else p.value.replace(p.token, p.token[:-1] + ("x" if p.token[-1] != "x" else "y"))
        t0 = time.monotonic()
        a = run.one(param, value, timeout=opt.timeout + p.delay)
        if a is None:
            return "unsent"
        trials.append(max(a.elapsed, 0.0) if a.elapsed else time.monotonic() - t0)
        if n == 0 and trials[0] < baseline.slowest + 0.8 * p.delay:
            break
    ev = []
    e = detect.timing(trials, p.delay, baseline) if len(trials) == 2 else None
    if e:
        ev.append(e)
    o = detect.oob(p.token, canary.hits if canary is not None else [])
    if o:
        ev.append(o)
    if not ev:
        return None
    return Hit(p.family, p.value, p.note, ev, "high", "confirmed")


def _fingerprint(run: _Runner, param: str, p: Payload, rnd: random.Random, baseline) -> str | None:
    for fp in fingerprint_payloads(p.extra.get("syntax", ""), rnd):
        a = run.one(param, fp.value)
        if a is None:
            continue
        for needle, engine in fp.extra["answers"].items():
            if needle in a.body:
                return engine
    return None
