"""The out-of-band canary: a TCP listener (127.0.0.1 by default) that records every connection
carrying a probe token and answers like a small HTTP server.

It reads what a client sends first (an HTTP request, or what ``gopher://`` and ``dict://`` write),
finds tokens (``vgl`` and 14 letters or digits) anywhere in it, and records a hit per token. Then,
by path:

* ``/c/<token>``: ``200`` with a body naming the token (reflection shows the fetch);
* ``/r/<token>?to=URL&code=302`` (or ``to64=`` URL-safe base64 of the URL): a redirect (301, 302,
  303, 307 or 308) to ``URL``;
* ``/d/<token>?s=SECONDS``: ``200`` after holding the answer ``SECONDS`` (at most
  :data:`MAX_HOLD`; interrupted when the listener closes);
* anything else: ``200`` with the canary body.

Nothing here opens a connection to anywhere.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN_RE = re.compile(r"vgl[a-z0-9]{14}")
MAX_HOLD = 30.0
MAX_READ = 16 * 1024


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(3.0)
        data = b""
        try:
            while len(data) < MAX_READ and b"\r\n\r\n" not in data and b"\n\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
                if not data.startswith((b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE", b"PATCH")) and b"\n" in data:
                    break  # gopher/dict write one line
        except OSError:
            pass
        text = data.decode("latin-1", "replace")
        first = text.split("\n", 1)[0].strip()
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        tokens = list(dict.fromkeys(TOKEN_RE.findall(unquote(text))))
        for t in tokens:
            self.server.record(t, peer, first)
        path = ""
        parts = first.split()
        if len(parts) >= 2 and parts[0].isalpha():
            path = parts[1]
        reply = self._answer(path, tokens)
        try:
            sock.sendall(reply)
        except OSError:
            pass

    def _answer(self, path: str, tokens: list[str]) -> bytes:
        u = urlsplit(path)
        q = parse_qs(u.query)
        seg = u.path.split("/")
        kind = seg[1] if len(seg) > 2 else ""
        tok = tokens[0] if tokens else "none"
        if kind == "r" and (q.get("to") or q.get("to64")):
            code = q.get("code", ["302"])[0]
            code = code if code in ("301", "302", "303", "307", "308") else "302"
            if q.get("to64"):
                import base64

                raw = q["to64"][0]
                try:
                    loc = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8", "replace")
                except ValueError:
                    loc = "/"
            else:
                loc = q["to"][0]
            loc = loc.replace("\r", "").replace("\n", "")
            return (f"HTTP/1.1 {code} Redirect\r\nLocation: {loc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode("latin-1", "replace")
        if kind == "d":
            try:
                hold = min(max(float(q.get("s", ["0"])[0]), 0.0), MAX_HOLD)
            except ValueError:
                hold = 0.0
            self.server.closing.wait(hold)
        body = f"vigil canary {tok}\n".encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int]) -> None:
        self.hits: list[dict] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = fam
        super().__init__(addr, _Handler)

    def record(self, token: str, peer: str, first_line: str) -> None:
        with self.lock:
            self.hits.append({"token": token, "peer": peer, "first_line": first_line[:300], "at": time.monotonic()})


class Canary:
    """``with Canary() as c: c.url ... c.hits_for(token)``"""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None) -> None:
        self._server = _Server((host, port))
        h, p = self._server.server_address[:2]
        self.host, self.port = str(h), int(p)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = (public_url or f"http://{shown}:{self.port}").rstrip("/")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="vigil-canary")

    def start(self) -> Canary:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Canary:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def hits(self) -> list[dict]:
        with self._server.lock:
            return list(self._server.hits)

    def hits_for(self, token: str) -> list[dict]:
        return [h for h in self.hits if h["token"] == token]
