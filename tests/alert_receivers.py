"""Real receivers on loopback for the delivery tests: an HTTP server that accepts, rejects, hangs,
answers 429 or 5xx on command; a PagerDuty Events API v2 emulator (incidents by dedup_key, as
PagerDuty counts them); an SMTP server (aiosmtpd) with STARTTLS and AUTH over a throwaway CA.

The PagerDuty emulator follows the Events API v2 documentation: ``POST /v2/enqueue`` with
``routing_key``, ``event_action`` (trigger, acknowledge, resolve) and ``dedup_key``; a trigger needs
``payload.summary``, ``payload.source`` and ``payload.severity`` (critical, error, warning, info);
202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}``; 400 for an invalid
event. A trigger with the dedup_key of an open (triggered or acknowledged) incident is folded into
it; otherwise it opens a new incident. It is an emulator (PagerDuty cannot run here), said so.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    """What the server answers next: a status (with headers and a body; None: its usual answer),
    after ``hang`` seconds (a slow receiver), or ``close`` (drop the connection without an answer)."""

    status: int | None = None  # None: the server's own answer (200 ok; the PagerDuty emulator's)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: float = 0.0
    close: bool = False


class HttpReceiver:
    """A threaded HTTP server on 127.0.0.1. ``script(...)`` queues behaviours for the next requests;
    ``default`` answers the rest. Every request that arrived is in ``received``."""

    def __init__(self, handler: Any = None) -> None:
        self.received: list[Received] = []
        self.queue: deque[Behaviour] = deque()
        self.default = Behaviour()
        self.lock = threading.Lock()
        self.custom = handler
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n)
                rec = Received(time.time(), self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer.lock:
                    outer.received.append(rec)
                    b = outer.queue.popleft() if outer.queue else outer.default
                if b.close:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if b.hang:
                    time.sleep(b.hang)  # a real slow receiver: bounded by the test's own numbers
                if b.status is not None:
                    status, headers, out = b.status, b.headers, b.body
                elif outer.custom is not None:
                    status, headers, out = outer.custom(rec)
                else:
                    status, headers, out = 200, b.headers, b.body
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def script(self, *bs: Behaviour) -> None:
        with self.lock:
            self.queue.extend(bs)

    def start(self) -> "HttpReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "HttpReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PagerDuty(HttpReceiver):
    """The Events API v2 emulator (see the module)."""

    def __init__(self) -> None:
        self.incidents: dict[str, list[dict]] = {}  # dedup_key -> incidents, the last one current
        self.events: list[dict] = []
        super().__init__(self._handle)

    def _handle(self, rec: Received) -> tuple[int, dict, bytes]:
        def bad(msg: str) -> tuple[int, dict, bytes]:
            return 400, {"Content-Type": "application/json"}, json.dumps({"status": "invalid event", "message": "Event object is invalid", "errors": [msg]}).encode()

        if rec.path != "/v2/enqueue":
            return 404, {}, b"not found"
        try:
            ev = json.loads(rec.body)
        except ValueError:
            return bad("body is not JSON")
        if not ev.get("routing_key"):
            return bad("'routing_key' is missing")
        action = ev.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            return bad("'event_action' is invalid")
        key = ev.get("dedup_key")
        if action != "trigger" and not key:
            return bad("'dedup_key' is required")
        if action == "trigger":
            p = ev.get("payload") or {}
            for k in ("summary", "source", "severity"):
                if not p.get(k):
                    return bad(f"'payload.{k}' is missing")
            if p["severity"] not in ("critical", "error", "warning", "info"):
                return bad("'payload.severity' is invalid")
            if len(p["summary"]) > 1024:
                return bad("'payload.summary' is too long")
        with self.lock:
            self.events.append(ev)
            history = self.incidents.setdefault(key, [])
            cur = history[-1] if history else None
            if action == "trigger":
                if cur is None or cur["status"] == "resolved":
                    history.append({"status": "triggered", "triggers": 1})
                else:
                    cur["triggers"] += 1
            elif cur is not None and cur["status"] != "resolved":
                cur["status"] = "acknowledged" if action == "acknowledge" else "resolved"
        return 202, {"Content-Type": "application/json"}, json.dumps({"status": "success", "message": "Event processed", "dedup_key": key}).encode()

    @property
    def url_enqueue(self) -> str:
        return self.url + "/v2/enqueue"

    def incident_count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.incidents.values())


# -- SMTP -------------------------------------------------------------------------------------------


def make_ca(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_p, cert_p, key_p = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca_p.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_p.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_p, cert_p, key_p


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with STARTTLS required and AUTH (user ``vigil``, the given password);
    ``refuse`` makes it answer every RCPT with that SMTP code."""

    def __init__(self, tmp: Path, password: str = "s3cret-password", *, starttls: bool = True) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[Any] = []
        self.refuse: int | None = None
        self.password = password
        outer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
                if outer.refuse is not None:
                    return f"{outer.refuse} refused by the test"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                import email

                outer.messages.append(email.message_from_bytes(envelope.content))
                return "250 Message accepted"

        def auth(server, session, envelope, mechanism, auth_data):
            ok = getattr(auth_data, "login", None) == b"vigil" and getattr(auth_data, "password", None) == outer.password.encode()
            return AuthResult(success=ok, handled=False)

        ctx = None
        if starttls:
            self.ca, cert, key = make_ca(tmp)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(cert), str(key))
        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, tls_context=ctx, require_starttls=starttls,
            authenticator=auth, auth_require_tls=starttls,
        )

    def start(self) -> "SmtpServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
