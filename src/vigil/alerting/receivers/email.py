"""Email over SMTP: STARTTLS (default; a server that does not offer it is refused), implicit TLS
(``tls: ssl``) or a plain connection (``tls: none``, no AUTH then); AUTH when a username is given.

The subject says what fires and where (``[vigil] [FIRING:2] api-5xx-spike (api)``); the body lists
every alert with its value, since when, its summary and description (the numbers), its labels,
the runbook and a link to vigil (``external_url``). The ``Message-ID`` is made of the delivery id,
so a message sent again after a crash is the same message to a mail client.

A refused connection, a timeout or a 4xx answer is retried; a 5xx answer (a refused recipient,
failed AUTH) and a server without STARTTLS are permanent.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Callable

from vigil import __version__
from vigil.alerting.receivers import Outcome, Outgoing, Result, text_body, title


def render(out: Outgoing, cfg: Any) -> EmailMessage:
    """The message (pure)."""
    m = EmailMessage()
    m["Subject"] = " ".join(f"{cfg.subject_prefix} {title(out.payload)}".split())[:250]  # no line breaks from labels
    m["From"] = cfg.from_
    m["To"] = ", ".join(cfg.to)
    m["Date"] = format_datetime(out.sent_at)
    domain = cfg.from_.rsplit("@", 1)[-1]
    m["Message-ID"] = f"<{out.key}@{domain}>"
    m["X-Vigil-Delivery"] = out.key
    m["X-Vigil-Event"] = out.action
    m["User-Agent"] = f"vigil/{__version__}"
    m.set_content(text_body(out))
    return m


class EmailSender:
    kind = "email"
    can_acknowledge = False

    def __init__(self, cfg: Any, password: str | None, timeout: float, *, ca_file: Path | None = None,
                 resolver: Callable[..., Any] = socket.getaddrinfo) -> None:
        self.cfg = cfg
        self.password = password
        self.timeout = timeout
        self.ca_file = ca_file
        self.resolver = resolver

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        return ctx

    def _check(self) -> str | None:
        from vigil.netguard import addresses_problem, resolved_addresses

        if self.cfg.allow_link_local:
            return None
        try:
            addrs = resolved_addresses(self.cfg.host, self.cfg.port, resolver=self.resolver)
        except (OSError, UnicodeError) as e:
            return f"cannot resolve {self.cfg.host}: {e}"
        why = addresses_problem(self.cfg.host, addrs)
        return f"refused: {why}" if why else None

    def send(self, out: Outgoing) -> Result:
        why = self._check()
        if why:
            return Result("retry" if why.startswith("cannot resolve") else "permanent", error=why)
        msg = render(out, self.cfg)
        t0 = time.monotonic()
        cfg = self.cfg
        try:
            if cfg.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=self.timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
            try:
                smtp.ehlo()
                if cfg.tls == "starttls":
                    if not smtp.has_extn("starttls"):
                        return Result("permanent", error=f"{cfg.host}:{cfg.port} does not offer STARTTLS (tls: starttls refuses to send in clear)",
                                      latency_ms=_since(t0))
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if cfg.username:
                    smtp.login(cfg.username, self.password or "")
                refused = smtp.send_message(msg)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as e:
            codes = [c for c, _ in e.recipients.values()]
            temp = all(400 <= c < 500 for c in codes)
            return Result("retry" if temp else "permanent", codes[0] if codes else None,
                          "every recipient refused: " + "; ".join(f"{r}: {c} {m.decode(errors='replace') if isinstance(m, bytes) else m}" for r, (c, m) in e.recipients.items())[:500],
                          latency_ms=_since(t0))
        except smtplib.SMTPResponseException as e:
            text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
            outcome: Outcome = "retry" if 400 <= e.smtp_code < 500 else "permanent"
            return Result(outcome, e.smtp_code, f"SMTP {e.smtp_code}: {text}"[:500], latency_ms=_since(t0))
        except ssl.SSLError as e:
            return Result("permanent", error=f"TLS with {cfg.host}:{cfg.port} failed: {e}"[:500], latency_ms=_since(t0))
        except (smtplib.SMTPException, OSError) as e:
            err = "timed out" if isinstance(e, (socket.timeout, TimeoutError)) else f"{type(e).__name__}: {e}"
            return Result("retry", error=f"{cfg.host}:{cfg.port}: {err}"[:500], latency_ms=_since(t0))
        lat = _since(t0)
        if refused:
            # some recipients took it: delivered, the others named
            return Result("delivered", 250, detail={"refused": sorted(refused)}, latency_ms=lat)
        return Result("delivered", 250, latency_ms=lat)

    def close(self) -> None:
        return None


def _since(t0: float) -> int:
    return int(round((time.monotonic() - t0) * 1000))
