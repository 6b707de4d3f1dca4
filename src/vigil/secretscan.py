"""Does a string look like a secret? Pure; used to refuse secrets anywhere in a spec.

A spec is committed to git and served at ``/api/v1/spec``: secrets come from the environment or a
file, never from the spec. Known formats are matched exactly (cloud keys, provider tokens, private
keys, URLs with a password, ``password=...`` in free text); anything else long, random-looking and
without spaces is caught by its entropy. Names and paths (``/usr/lib/...``, ``sk-prod-web``) are
not random enough to trip it.
"""

from __future__ import annotations

import math
import re
from collections import Counter

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}")),
    ("a Stripe key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a SendGrid key", re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b")),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z ]+ )?PRIVATE KEY(?: BLOCK)?-----")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a URL with a password", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)),
    (
        "a password or secret assignment",
        re.compile(r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|auth[_-]?token|token)\s*[:=]\s*['\"]?[^\s'\"]{6,}"),
    ),
)

MIN_RANDOM_LENGTH = 24
ENTROPY_BITS_PER_CHAR = 4.0


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _random_looking(s: str) -> bool:
    for tok in re.split(r"[\s,;'\"()\[\]{}<>=]+", s):
        if len(tok) < MIN_RANDOM_LENGTH or tok.startswith(("/", "./", "../", "~")) or "://" in tok or tok.count(".") > 2:
            continue  # a path, a URL or a host name
        classes = sum(bool(re.search(p, tok)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes == 3 and entropy(tok) >= ENTROPY_BITS_PER_CHAR:
            return True
        if re.fullmatch(r"[0-9a-f]{32,}", tok) and entropy(tok) >= 3.5:  # a hex key or digest
            return True
    return False


def looks_like_secret(s: str) -> str | None:
    """What kind of secret ``s`` looks like, or None."""
    for what, pat in PATTERNS:
        if pat.search(s):
            return what
    if _random_looking(s):
        return "a long random-looking value"
    return None


def redact(s: str) -> str:
    """``s`` with anything secret-looking replaced by ``<redacted>`` (for echoing a spec back)."""
    out = s
    for _, pat in PATTERNS:
        out = pat.sub("<redacted>", out)
    return "<redacted>" if _random_looking(out) else out
