"""Secret scanning of a text: vigil's provider rules and detect-secrets' plugins, decoded layers
(base64, URL encoding), look-alikes filtered out. Pure: a text in, hits out (no files, no clock).

:func:`scan_text` is the engine. Sources (a working tree, the added lines of a git range) live in
:mod:`vigil.security.sources`; baselines and waivers in :mod:`vigil.security.baseline`.

A hit carries the secret itself (to fingerprint it); nothing that prints or stores a hit shows the
secret: :func:`redact` and :func:`redacted_line` are the only forms that leave this module.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

from vigil.security.rules import (
    DETECT_SECRETS_RULES,
    RULES,
    SECRET_NAME,
    lookalike,
    names_something_else,
    plausible_value,
)

MAX_LINE = 20_000
"""Longer lines (minified bundles) are scanned in their first MAX_LINE characters by the plugins."""

_PRIORITY = {r.id: i for i, r in enumerate(RULES)}
_LOW = ("keyword-secret", "url-credentials", "jwt")


@dataclass
class SecretHit:
    """One secret value found in a text."""

    rule: str
    severity: str
    secret: str
    line: int
    column: int
    engines: list[str] = field(default_factory=list)
    encoding: str | None = None
    line_text: str = ""
    prefix: str | None = None
    raw: str | None = None
    """The encoded form the secret had in the text (base64, URL encoding), when decoded."""

    @property
    def priority(self) -> tuple[int, int]:
        if self.rule in _LOW:
            return (2, _LOW.index(self.rule))
        return (0, _PRIORITY[self.rule]) if self.engines[:1] == ["vigil"] and self.rule in _PRIORITY else (1, 0)


# --- detect-secrets plugins ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _plugins() -> tuple:
    """detect-secrets' regex plugins and its keyword plugin (no verification: nothing leaves the
    machine). The entropy-only plugins are not used: vigil judges entropy with keyword context."""
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.cloudant import CloudantDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
    from detect_secrets.plugins.ibm_cos_hmac import IbmCosHmacDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.keyword import KeywordDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.softlayer import SoftlayerDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    classes = (
        AWSKeyDetector, ArtifactoryDetector, AzureStorageKeyDetector, BasicAuthDetector, CloudantDetector,
        DiscordBotTokenDetector, GitHubTokenDetector, GitLabTokenDetector, IbmCloudIamDetector, IbmCosHmacDetector,
        JwtTokenDetector, MailchimpDetector, NpmDetector, OpenAIDetector, PrivateKeyDetector, PypiTokenDetector,
        SendGridDetector, SlackDetector, SoftlayerDetector, SquareOAuthDetector, StripeDetector,
        TelegramBotTokenDetector, TwilioKeyDetector,
    )
    return tuple(c() for c in classes) + (KeywordDetector(),)


@lru_cache(maxsize=64)
def _keyword_regexes(path: str) -> dict:
    from detect_secrets.plugins.keyword import QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP, REGEX_BY_FILETYPE
    from detect_secrets.util.filetype import determine_file_type

    return REGEX_BY_FILETYPE.get(determine_file_type(path), QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)


@lru_cache(maxsize=1)
def _plugin_regexes() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every regex of detect-secrets' regex plugins, compiled for a whole text (``^``/``$`` per line)."""
    from detect_secrets.plugins.keyword import KeywordDetector

    out = []
    for p in _plugins():
        if isinstance(p, KeywordDetector):
            continue
        for rx in p.denylist:
            out.append((p.secret_type, re.compile(rx.pattern, rx.flags | re.MULTILINE)))
    return tuple(out)


_ASSIGNMENT_STYLE = "(?:(?<=\\W)|(?<=^))"
"""How detect-secrets' assignment regexes start: they need a keyword, so they run on hinted lines."""


def _lines_with(lower: str, starts: list[int], needles: tuple[str, ...]) -> list[int]:
    out: set[int] = set()
    for n in needles:
        i = lower.find(n)
        while i != -1:
            ln = bisect.bisect_right(starts, i) - 1
            out.add(ln)
            nxt = starts[ln + 1] if ln + 1 < len(starts) else len(lower)
            i = lower.find(n, nxt)
    return sorted(out)


_HINT = re.compile(r"key|pass|pwd|secret|token|credential|conn|routing|integration|authoriz|contrase")
"""Lines detect-secrets' keyword plugin or a keyword rule could match hold one of these (each of the
plugin's keywords contains key, pass, pwd, secret or contrase); searched in the lowercased text."""


def _value_of(rx: re.Pattern[str], m: re.Match) -> tuple[str, int] | None:
    """The value a detect-secrets regex matched and where it starts. The plugins yield capture
    groups, which for some are only the token's prefix (``ghp``); a capture that starts where the
    match starts stands for the whole match."""
    if not rx.groups:
        return m.group(0), m.start(0)
    caps = [i for i in range(1, rx.groups + 1) if m.group(i)]
    if not caps:
        return None
    i = max(caps, key=lambda g: len(m.group(g)))
    if m.start(i) == m.start(0):
        return m.group(0), m.start(0)
    return m.group(i), m.start(i)


def _keyword_values(line: str, path: str) -> list[str]:
    from detect_secrets.plugins.keyword import KeywordDetector

    kw = next(p for p in _plugins() if isinstance(p, KeywordDetector))
    try:
        return [v for v in kw.analyze_string(line, denylist_regex_to_group=_keyword_regexes(path)) if v]
    except Exception:  # a plugin's bug must not stop a scan; the vigil rules still run
        return []


# --- the engine ---------------------------------------------------------------------------------


_B64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_-])([A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{16,}={0,2})(?![A-Za-z0-9+/=_-])")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_BASE64_BODY = re.compile(r"^[A-Za-z0-9+/=\s]{40,}$")


def decode_base64_text(token: str) -> str | None:
    """The text a base64 token encodes, when it encodes printable text (else None)."""
    t = token.rstrip("=")
    if len(t) < 8:
        return None
    pad = "=" * (-len(t) % 4)
    try:
        raw = base64.b64decode(t + pad, altchars=b"-_" if ("-" in t or "_" in t) else None, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(c.isprintable() or c in "\n\r\t" for c in text) < len(text):
        return None
    return text


def scan_text(text: str, path: str, *, decode: bool = True) -> list[SecretHit]:
    """Every secret in ``text`` (the content of ``path``; the path chooses detect-secrets' keyword
    syntax), deduplicated: where two rules find overlapping values on a line the more specific one
    names it. Base64-wrapped and URL-encoded secrets are found in their decoded form (``encoding``)."""
    lines = text.split("\n")
    starts = [0]
    for row in lines[:-1]:
        starts.append(starts[-1] + len(row) + 1)
    hits: list[SecretHit] = []

    def where(offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(starts, offset) - 1
        return i + 1, offset - starts[i] + 1

    lower = text.lower()
    hinted = sorted({bisect.bisect_right(starts, m.start()) - 1 for m in _HINT.finditer(lower)})

    def on_lines(rx: re.Pattern[str], idx: list[int]):
        for i in idx:
            yield from rx.finditer(text, starts[i], starts[i] + len(lines[i]))

    def matches(rule):  # keyword rules only where a keyword is, needle rules where the needle is (fast)
        if rule.keyword:
            return on_lines(rule.pattern, hinted)
        if rule.needles:
            return on_lines(rule.pattern, _lines_with(lower, starts, rule.needles))
        return rule.pattern.finditer(text)

    # 1. vigil's rules (private keys span lines)
    for rule in RULES:
        for m in matches(rule):
            value = _group(m, rule.group)
            if not value:
                continue
            if rule.id == "private-key":
                body = re.sub(r"\\n|\\r|[^A-Za-z0-9+/=]", "", re.sub(r"(?m)^[A-Za-z-]+:.*$", "", value))
                if len(body) < 40:
                    continue
                value = body
                ln, col = where(m.start())
            else:
                g = rule.group if m.group(rule.group) is not None else rule.group + 1
                ln, col = where(m.start(g))
            line_text = lines[ln - 1]
            if rule.context_check and plausible_value(_decoded_or_self(value)) is not None:
                continue
            if rule.id == "keyword-secret" and names_something_else(line_text[: col - 1]):
                continue
            if lookalike(rule.id, value, line_text) is not None:
                continue
            hits.append(SecretHit(rule.id, rule.severity, value, ln, col, ["vigil"], None, line_text, rule.prefix))

    # 2. detect-secrets' plugins: the regex plugins over the whole text, the keyword plugin on
    # the lines that hold a keyword
    for kind, rx in _plugin_regexes():
        for m in (on_lines(rx, hinted) if rx.pattern.startswith(_ASSIGNMENT_STYLE) else rx.finditer(text)):
            got = _value_of(rx, m)
            if got is None or "\n" in got[0]:
                continue
            ln, col = where(got[1])
            h = _plugin_hit(kind, got[0], lines[ln - 1], ln, col, lines)
            if h is not None:
                hits.append(h)
    for i in hinted:
        for value in _keyword_values(lines[i][:MAX_LINE], path):
            h = _plugin_hit("Secret Keyword", value, lines[i], i + 1, lines[i].find(value) + 1 or 1, lines)
            if h is not None:
                hits.append(h)

    # 3. decoded layers: URL-encoded lines and base64 tokens that wrap text
    if decode:
        if "%" in text:
            for i, line in enumerate(lines):
                if _PCT.search(line):
                    dec = unquote(line)
                    if dec != line:
                        for h in scan_text(dec, path, decode=False):
                            hits.append(SecretHit(h.rule, h.severity, h.secret, i + 1, 1, h.engines, "url", line, h.prefix, _raw_url(line, h.secret)))
        for m in _B64_TOKEN.finditer(text):
            inner = decode_base64_text(m.group(1))
            if inner is None or len(inner) < 8:
                continue
            ln, col = where(m.start(1))
            for h in scan_text(inner, path, decode=False):
                if h.rule == "keyword-secret" and h.secret == inner:
                    continue
                hits.append(SecretHit(h.rule, h.severity, h.secret, ln, col, h.engines, "base64", lines[ln - 1], h.prefix, m.group(1)))
    return _dedupe(hits)


def _raw_url(line: str, secret: str) -> str | None:
    from urllib.parse import quote

    for form in (quote(secret, safe=""), quote(secret)):
        if form in line:
            return form
    return None


def _same(a: SecretHit, b: SecretHit) -> bool:
    """Whether two hits on a line are one secret: equal, one inside the other, or one the
    encoded form of the other."""
    def close(x: str | None, y: str | None) -> bool:
        return bool(x and y and (x == y or x in y or y in x))

    if close(a.secret, b.secret):
        return True
    if (a.raw is None) != (b.raw is None):
        plain, enc = (a, b) if a.raw is None else (b, a)
        return close(plain.secret, enc.raw)
    return False


def _group(m: re.Match, group: int) -> str | None:
    v = m.group(group)
    if v is None and m.re.groups >= group + 1:
        v = m.group(group + 1)  # the keyword rule: quoted value, else the unquoted one
    return v


def _decoded_or_self(value: str) -> str:
    """A value found by context is judged by what it encodes when it is base64 of text (a
    Kubernetes Secret's data), so ``Y2hhbmdlbWU=`` is the placeholder ``changeme``."""
    if len(value) >= 12 and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", value):
        dec = decode_base64_text(value)
        if dec is not None and "\n" not in dec.strip():
            return dec
    return value


def _plugin_hit(kind: str, value: str, line: str, ln: int, col: int, lines: list[str]) -> SecretHit | None:
    rule, severity = DETECT_SECRETS_RULES.get(kind, ("detect-secrets", "high"))
    if rule == "private-key":
        # the plugin sees a header; a key is a header with a key body after it
        nxt = next((x for x in lines[ln:ln + 3] if x.strip() and not re.match(r"^[A-Za-z-]+:", x)), "")
        same_line = re.sub(r"\\n|-----[A-Z0-9 ]+-----", "", line)
        body = nxt.strip() if _BASE64_BODY.match(nxt.strip()) else re.sub(r"[^A-Za-z0-9+/=]", "", same_line)
        if len(body) < 40 or not _BASE64_BODY.match(body):
            return None
        value, col = body, 1
    if rule in ("keyword-secret", "url-credentials"):
        if plausible_value(_decoded_or_self(value)) is not None:
            return None
        if rule == "keyword-secret" and names_something_else(line[: col - 1]):
            return None
    if lookalike(rule, value, line) is not None:
        return None
    return SecretHit(rule, severity, value, ln, col, [f"detect-secrets:{kind}"], None, line)


def _dedupe(hits: list[SecretHit]) -> list[SecretHit]:
    """One hit per secret per line: the most specific rule names it; the engines are merged. A
    value found inside another value on the same line (a password inside a URL, a token inside a
    keyword assignment) is one secret, named by the more specific rule."""
    by_line: dict[int, list[SecretHit]] = {}
    for h in sorted(hits, key=lambda h: (h.line, h.priority, -len(h.secret))):
        kept = by_line.setdefault(h.line, [])
        for k in kept:
            if _same(k, h):
                if h.priority < k.priority:
                    k.rule, k.severity, k.prefix = h.rule, h.severity, h.prefix
                    if h.encoding is not None:  # the decoded secret is the secret
                        k.secret, k.encoding, k.raw = h.secret, h.encoding, h.raw
                    elif len(h.secret) < len(k.secret) and h.secret in k.secret:
                        k.secret, k.column = h.secret, h.column
                for e in h.engines:
                    if e not in k.engines:
                        k.engines.append(e)
                break
        else:
            kept.append(h)
    out = [h for ln in sorted(by_line) for h in by_line[ln]]
    # a multi-line private key is one finding even though the plugin saw its body on the next line
    keys = {h.secret for h in out if h.rule == "private-key"}
    seen: set[tuple[str, str]] = set()
    final = []
    for h in out:
        if h.rule == "private-key":
            wider = next((s for s in keys if h.secret in s and h.secret != s), None)
            if wider is not None:
                continue
        key = (h.rule, h.secret) if h.rule == "private-key" else (str(h.line), h.secret)
        if key in seen:
            continue
        seen.add(key)
        final.append(h)
    return final


# --- what may leave this module -----------------------------------------------------------------

_PREFIX = re.compile(r"^(?:[a-z]{2,4}_(?:live|test|pat)_|gh[pousr]_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|ABIA|ACCA|AIza|SG\.|whsec_|npm_|pypi-|sk-)")


def redact(secret: str, prefix: str | None = None) -> str:
    """A form of a secret that is safe to print: its well-known prefix at most, and its length."""
    m = _PREFIX.match(secret)
    shown = prefix if prefix and secret.startswith(prefix) else (m.group(0) if m else "")
    if len(secret) - len(shown) < 8:
        shown = ""
    return f"{shown}…[{len(secret)} chars]"


FINGERPRINT_ITERATIONS = 20_000


def fingerprint(path: str, secret: str) -> str:
    """A stable id of a secret in a file (32 hex digits) that does not reveal it: PBKDF2-SHA256
    of the secret salted with the path, so even a short password is costly to guess from it."""
    dk = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8", "surrogatepass"), b"vigil-secret/v1\0" + path.encode("utf-8", "surrogatepass"), FINGERPRINT_ITERATIONS)
    return dk.hex()[:32]


def redacted_line(line: str, secrets: list[tuple[str, str | None]], limit: int = 200) -> str:
    """``line`` with every secret in ``secrets`` (and anything else secret-looking) replaced by its
    redacted form, clipped to ``limit`` characters."""
    from vigil.secretscan import redact as redact_text

    out = line
    for s, prefix in sorted(secrets, key=lambda x: -len(x[0])):
        if s:
            out = out.replace(s, redact(s, prefix))
    # a secret may sit in the line in another form (URL-encoded, base64): redact those too
    for s, prefix in secrets:
        for form in _forms(s):
            if form and form in out:
                out = out.replace(form, redact(s, prefix))
    out = _redact_known(out)
    out = redact_text(out) if out != "<redacted>" else out
    out = out.strip()
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _forms(secret: str) -> list[str]:
    from urllib.parse import quote

    b = secret.encode("utf-8", "surrogatepass")
    return [quote(secret, safe=""), quote(secret), base64.b64encode(b).decode().rstrip("="), base64.urlsafe_b64encode(b).decode().rstrip("=")]


def _redact_known(line: str) -> str:
    """Anything a rule would call a secret in ``line``, redacted (for snippets of imported SARIF)."""
    out = line
    for rule in RULES:
        for m in list(rule.pattern.finditer(out)):
            v = _group(m, rule.group)
            if v and len(v) >= 6 and "…[" not in v:
                out = out.replace(v, redact(v, rule.prefix))
    return out


def redact_snippet(text: str) -> str:
    """A snippet from another tool (gitleaks puts the secret in its SARIF), safe to store and print:
    every value vigil's rules or detect-secrets' plugins would flag is replaced by its redacted form."""
    if not text:
        return text
    out_lines = []
    for ln in text.split("\n")[:20]:
        secrets = [(h.secret, h.prefix) for h in scan_text(ln, "snippet.txt")]
        out_lines.append(redacted_line(ln, secrets, limit=400) if secrets else _redact_known(ln))
    return "\n".join(out_lines)


__all__ = ["SecretHit", "scan_text", "redact", "redacted_line", "redact_snippet", "fingerprint", "decode_base64_text", "SECRET_NAME"]
