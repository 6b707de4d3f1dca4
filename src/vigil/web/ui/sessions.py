"""Browser sessions of the web UI: a login with a named token (or the single admin token) opens a
session; the cookie holds only a random session id (HttpOnly, SameSite=Lax, Secure when the
request came over TLS, directly or through a proxy uvicorn trusts); the server keeps the session's
identity, its CSRF token and its expiry. Every form carries the CSRF token, compared in constant
time, and a cross-site ``Origin`` is refused.

Sessions live in the server process: a restart signs everyone out, and a token removed from the
tokens file (then a restart) or whose role changed takes effect at the next request, since each
request checks the session's token digest against the tokens the server accepts now.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from vigil.auth import Identity, Role, Tokens, digest

COOKIE = "vigil_session"
LOGIN_COOKIE = "vigil_login_csrf"
LIFETIME_S = 8 * 3600
MAX_SESSIONS = 10_000
LOGIN_FAILURES_PER_MINUTE = 10


@dataclass
class Session:
    sid_hash: str
    name: str
    role: Role
    token_sha256: str
    csrf: str
    created: float
    expires: float
    client: str = ""

    def identity(self) -> Identity:
        return Identity(self.name, self.role)


@dataclass
class Sessions:
    tokens: Tokens
    lifetime_s: int = LIFETIME_S
    _by_hash: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def login(self, token: str, client: str, now: float | None = None) -> tuple[str, Session] | None:
        """A new session for a valid token: (the cookie's session id, the session); None otherwise."""
        who = self.tokens.authenticate(token)
        if who is None:
            return None
        now = time.time() if now is None else now
        sid = secrets.token_urlsafe(32)
        s = Session(_h(sid), who.name, who.role, digest(token), secrets.token_urlsafe(32), now, now + self.lifetime_s, client)
        with self._lock:
            self._expire(now)
            if len(self._by_hash) >= MAX_SESSIONS:  # the oldest goes first
                oldest = min(self._by_hash.values(), key=lambda x: x.created)
                self._by_hash.pop(oldest.sid_hash, None)
            self._by_hash[s.sid_hash] = s
        return sid, s

    def get(self, sid: str | None, now: float | None = None) -> Session | None:
        """The live session of a cookie value, with the role its token has now; None when unknown,
        expired, or its token is no longer accepted."""
        if not sid or len(sid) > 200:
            return None
        now = time.time() if now is None else now
        with self._lock:
            s = self._by_hash.get(_h(sid))
            if s is None:
                return None
            if s.expires <= now:
                self._by_hash.pop(s.sid_hash, None)
                return None
        entry = next((e for e in self.tokens.entries if hmac.compare_digest(e.sha256, s.token_sha256)), None)
        if entry is None:
            self.revoke_hash(s.sid_hash)
            return None
        s.name, s.role = entry.name, entry.role
        return s

    def logout(self, sid: str | None) -> None:
        if sid:
            self.revoke_hash(_h(sid))

    def revoke_hash(self, sid_hash: str) -> bool:
        with self._lock:
            return self._by_hash.pop(sid_hash, None) is not None

    def list(self, now: float | None = None) -> list[Session]:
        now = time.time() if now is None else now
        with self._lock:
            self._expire(now)
            return sorted(self._by_hash.values(), key=lambda s: s.created)

    def _expire(self, now: float) -> None:
        for k in [k for k, s in self._by_hash.items() if s.expires <= now]:
            del self._by_hash[k]

    # -- brute force -------------------------------------------------------------------------------

    def too_many_failures(self, client: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < 60]
            self._failures[client] = recent
            return len(recent) >= LOGIN_FAILURES_PER_MINUTE

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._failures.setdefault(client, []).append(now)


def _h(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; a missing one never matches."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())
