"""A deliberately vulnerable web app for the SSRF/SSTI probe tests, and its fixed twin.

Run: ``python tests/apps/vulnapp.py --mode vulnerable|naive|fixed`` prints ``PORT <n>`` and serves
on 127.0.0.1 until killed.

Endpoints:

* ``GET /preview?url=``: fetches a URL and returns its body (a link preview: full-read SSRF);
  a failed fetch answers ``502 fetch failed: <error>`` (the vulnerable app leaks the error).
* ``GET /hook?callback=``: fetches the URL and answers ``202 queued`` whatever happened (blind
  SSRF: only the canary and the time it takes show it).
* ``GET /greet?name=``: ``Hello <name>`` through Jinja2, built from the input in the vulnerable app
  (SSTI; a syntax error answers 500 with the exception, as a debug page would).
* ``POST /render`` (form field ``subject``): the same in a POST body.
* ``GET /health``.

Modes: ``vulnerable`` (everything above), ``naive`` (the fetchers refuse URLs that contain the
metadata address or name as written, but follow redirects and read other spellings: a blocklist),
``fixed`` (the fetchers allow only https to an allowlisted host and follow no redirect; templates
take input as a variable with autoescape).

**Nothing leaves loopback.** The app's network is a sandbox: names resolve from a fixed table (no
DNS query is ever made), numeric hosts are read as the C resolver reads them (``inet_aton``:
decimal, hex, octal, short forms), a loopback address is connected to for real (the probe's
canary), a cloud metadata address is answered by a fake metadata service this process runs on a
loopback port, and any other address fails as an unreachable network. ``ftp://`` is refused.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import ipaddress
import socket
import sys
import threading
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

METADATA = {"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"}
HOSTS = {"localhost": "127.0.0.1", "metadata.google.internal": "169.254.169.254", "metadata": "169.254.169.254",
         "instance-data": "169.254.169.254", "instance-data.ec2.internal": "169.254.169.254"}
IMDS_LISTING = "ami-id\nami-launch-index\nhostname\niam/\ninstance-id\ninstance-type\nlocal-ipv4\nsecurity-groups\n"
IMDS = {"port": 0}


class FakeMetadata(http.server.BaseHTTPRequestHandler):
    """What a cloud metadata service answers (AWS IMDSv1 shape; GCP's legacy v1beta1 JSON)."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
            body = "vigil-test-role\n"
        elif self.path.startswith("/computeMetadata"):
            body = '{"instance": {"id": 1, "serviceAccounts": {"default": {}}}, "project": {"projectId": "vigil-test"}}'
        elif self.path.startswith("/v2/credentials"):
            body = '{"RoleArn": "arn:aws:iam::000000000000:role/vigil-test", "AccessKeyId": "(fake)", "Expiration": "never"}'
        else:
            body = IMDS_LISTING
        b = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *a: object) -> None:
        pass


def sandbox_address(host: str, port: int) -> tuple[str, int]:
    """Where a connection to ``host:port`` goes in the sandbox; raises OSError as the network would."""
    h = host.strip("[]").lower().rstrip(".")
    if h in HOSTS:
        h = HOSTS[h]
    try:
        ip = ipaddress.ip_address(h.split("%")[0])
    except ValueError:
        try:
            ip = ipaddress.ip_address(socket.inet_aton(h))  # the C resolver's numeric forms; no DNS
        except OSError:
            raise socket.gaierror(-2, "Name or service not known") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) in METADATA:
        return "127.0.0.1", IMDS["port"]
    if ip.is_loopback:
        return str(ip), port
    raise OSError(101, "Network is unreachable")


class SandboxConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.create_connection(sandbox_address(self.host, self.port), self.timeout or 10)


class SandboxHandler(urllib.request.HTTPHandler):
    def http_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(SandboxConnection, req)


class NoHttps(urllib.request.HTTPSHandler):
    def https_open(self, req):  # type: ignore[no-untyped-def]
        raise urllib.error.URLError("https is not available in the sandbox")


class NoFtp(urllib.request.FTPHandler):
    def ftp_open(self, req):  # type: ignore[no-untyped-def]
        raise urllib.error.URLError("ftp is not available in the sandbox")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):  # type: ignore[no-untyped-def]
        return None


def fetch(url: str, mode: str) -> bytes:
    if mode == "fixed":
        p = urlsplit(url)
        if p.scheme != "https" or (p.hostname or "") not in ("images.example.test",):
            raise ValueError("only https://images.example.test/ may be previewed")
        opener = urllib.request.build_opener(SandboxHandler, NoHttps, NoFtp, NoRedirect)
    else:
        if mode == "naive" and any(bad in url for bad in ("169.254.169.254", "metadata.google.internal", "metadata", "instance-data")):
            raise ValueError("that address is not allowed")
        opener = urllib.request.build_opener(SandboxHandler, NoHttps, NoFtp)
    with opener.open(url, timeout=20) as r:
        return r.read(1 << 20)


def render(text: str, mode: str) -> str:
    import jinja2

    if mode == "fixed":
        env = jinja2.Environment(autoescape=True)
        return env.from_string("<p>Hello {{ name }}</p>").render(name=text)
    return jinja2.Environment().from_string("<p>Hello " + text + "</p>").render()


class App(http.server.BaseHTTPRequestHandler):
    mode = "vulnerable"
    protocol_version = "HTTP/1.1"

    def _send(self, code: int, body: str) -> None:
        b = body.encode("utf-8", "replace")
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self) -> None:  # noqa: N802
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        if u.path == "/health":
            return self._send(200, "ok")
        if u.path == "/preview":
            try:
                return self._send(200, fetch(q.get("url", ""), self.mode).decode("utf-8", "replace"))
            except Exception as e:  # noqa: BLE001
                return self._send(502, f"fetch failed: {e}" if self.mode != "fixed" else "could not fetch that URL")
        if u.path == "/hook":
            try:
                fetch(q.get("callback", ""), self.mode)
            except Exception:  # noqa: BLE001
                pass
            return self._send(202, "queued")
        if u.path == "/greet":
            return self._template(q.get("name", ""))
        return self._send(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(n).decode("utf-8", "replace"), keep_blank_values=True).items()}
        if urlsplit(self.path).path == "/render":
            return self._template(form.get("subject", ""))
        return self._send(404, "not found")

    def _template(self, text: str) -> None:
        try:
            return self._send(200, render(text, self.mode))
        except Exception as e:  # noqa: BLE001  (a debug page)
            return self._send(500, f"Internal Server Error\n{type(e).__module__}.{type(e).__name__}: {e}")

    def log_message(self, *a: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["vulnerable", "naive", "fixed"], default="vulnerable")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    imds = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeMetadata)
    IMDS["port"] = imds.server_address[1]
    threading.Thread(target=imds.serve_forever, daemon=True).start()
    App.mode = args.mode
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), App)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
