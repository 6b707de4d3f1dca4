"""Receivers: what turns a notification from the outbox into a PagerDuty event, an email, a
signed webhook, a Slack message or an SNS publish.

Each receiver kind has a pure ``render`` (the request it would send, from the outbox payload) and a
:class:`Sender` that sends it and says what happened as a :class:`Result`:

- ``delivered``: the receiver took it (PagerDuty 202, a 2xx, SMTP accepted, SNS returned an id);
- ``retry``: try again later (refused connection, timeout, 429 with its Retry-After, 5xx, SMTP 4xx);
- ``permanent``: trying again will not help (PagerDuty 400, another 4xx, SMTP 5xx, a missing
  secret): the dispatcher goes to the fallback, or marks the notification failed.

Every request carries the delivery id (stable across retries, restarts and fallbacks) so the far
side can drop a repeat: PagerDuty's ``dedup_key`` is the alert group's, an email's ``Message-ID``
is the delivery id's, a webhook has ``X-Vigil-Delivery``, SNS FIFO topics get it as the
deduplication id.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol
from urllib.parse import urlsplit

from vigil.errors import UsageError

Outcome = Literal["delivered", "retry", "permanent"]
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Outgoing:
    """One attempt's input: the outbox row's payload, its delivery id, the attempt's time."""

    key: str
    action: str
    dedup_key: str
    payload: Mapping[str, Any]
    sent_at: datetime
    attempt: int = 1
    external_url: str | None = None
    receiver: str = ""  # the receiver sending it (a fallback's name after a switch)


@dataclass
class Result:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    detail: dict = field(default_factory=dict)
    latency_ms: int | None = None


class Sender(Protocol):
    kind: str
    can_acknowledge: bool

    def send(self, out: Outgoing) -> Result: ...

    def close(self) -> None: ...


class Broken:
    """A receiver that cannot be built (a missing secret): every attempt fails permanently, with why."""

    can_acknowledge = False

    def __init__(self, kind: str, error: str) -> None:
        self.kind = kind
        self.error = error

    def send(self, out: Outgoing) -> Result:
        return Result("permanent", error=self.error)

    def close(self) -> None:
        return None


# -- rendering shared by the kinds --------------------------------------------------------------------


def iso_ms(v: int | None) -> str | None:
    if v is None:
        return None
    from vigil.clock import isoformat

    return isoformat(datetime.fromtimestamp(v / 1000, tz=timezone.utc))


def common(items: list[Mapping[str, str]]) -> dict[str, str]:
    """The label (or annotation) pairs every item shares (Alertmanager's CommonLabels)."""
    if not items:
        return {}
    first = dict(items[0])
    return {k: v for k, v in first.items() if all(i.get(k) == v for i in items[1:])}


def status(payload: Mapping[str, Any]) -> str:
    return "firing" if any(a["state"] != "resolved" for a in payload["alerts"]) else "resolved"


def title(payload: Mapping[str, Any]) -> str:
    """``[FIRING:2] api-5xx-spike (api)``, as Alertmanager's default titles."""
    alerts = payload["alerts"]
    firing = [a for a in alerts if a["state"] != "resolved"]
    labels = common([a["labels"] for a in alerts])
    name = labels.get("alertname") or payload["group_labels"].get("alertname") or "alerts"
    svc = labels.get("service") or payload["group_labels"].get("service")
    if payload.get("action") == "acknowledge":
        head = f"[ACKNOWLEDGED:{len(firing)}]"
    elif firing:
        head = f"[FIRING:{len(firing)}]"
    else:
        head = "[RESOLVED]"
    return f"{head} {name}" + (f" ({svc})" if svc else "")


def link(external_url: str | None, payload: Mapping[str, Any]) -> str | None:
    if not external_url:
        return None
    return f"{external_url.rstrip('/')}/api/v1/alerts?group={payload['group']}"


def alert_lines(a: Mapping[str, Any]) -> list[str]:
    """One alert as text: state, name, value, since, summary, description, labels, runbook."""
    ann = a.get("annotations", {})
    labels = a.get("labels", {})
    out = [
        f"{a['state'].upper()} {labels.get('alertname', a.get('rule', ''))}"
        + (f"  value {a['value']}" if a.get("value") is not None else "")
        + f"  since {iso_ms(a['starts_ms'])}"
        + (f"  resolved {iso_ms(a['ends_ms'])}" if a.get("ends_ms") else "")
    ]
    for k in ("summary", "description"):
        if ann.get(k):
            out.append(f"  {ann[k]}")
    out.append("  labels: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    if ann.get("runbook_url"):
        out.append(f"  runbook: {ann['runbook_url']}")
    return out


def text_body(out: Outgoing) -> str:
    p = out.payload
    lines = [title(p), ""]
    for a in p["alerts"]:
        lines += alert_lines(a)
        lines.append("")
    url = link(out.external_url, p)
    if url:
        lines.append(f"vigil: {url}")
    lines.append(f"delivery {out.key} (group {p['group_key']})")
    return "\n".join(lines) + "\n"


# -- HTTP ---------------------------------------------------------------------------------------------


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    v = value.strip()
    try:
        return max(0.0, min(MAX_RETRY_AFTER, float(v)))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, min(MAX_RETRY_AFTER, (when - datetime.now(timezone.utc)).total_seconds()))


class HttpPoster:
    """POSTs JSON to a URL vigil was configured with: the host's addresses are checked with
    :mod:`vigil.netguard` before each request (no link-local or metadata address unless allowed),
    redirects are not followed, one connection pool per receiver."""

    def __init__(self, timeout: float, *, allow_link_local: bool = False, resolver: Callable[..., Any] = socket.getaddrinfo) -> None:
        import httpx

        self.timeout = timeout
        self.allow_link_local = allow_link_local
        self.resolver = resolver
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def check(self, url: str) -> str | None:
        from vigil.netguard import addresses_problem, resolved_addresses

        if self.allow_link_local:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addrs = resolved_addresses(host, parts.port or (443 if parts.scheme == "https" else 80), resolver=self.resolver)
        except (OSError, UnicodeError) as e:
            return f"cannot resolve {host}: {e}"
        why = addresses_problem(host, addrs)
        return f"refused: {why}" if why else None

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[Result, Any]:
        """The result judged the usual way (2xx delivered; 429, 5xx and network errors retried;
        other statuses permanent) and the response (None when there was none)."""
        import httpx

        why = self.check(url)
        if why:
            # a DNS failure may pass; an address vigil must not contact will not
            return Result("retry" if why.startswith("cannot resolve") else "permanent", error=why), None
        t0 = time.monotonic()
        try:
            r = self.client.post(url, content=body, headers=dict(headers))
        except httpx.TimeoutException:
            return Result("retry", error=f"timed out after {self.timeout:g}s", latency_ms=_since(t0)), None
        except httpx.HTTPError as e:
            return Result("retry", error=f"{type(e).__name__}: {e}"[:500], latency_ms=_since(t0)), None
        lat = _since(t0)
        text = r.text[:300].strip()
        if 200 <= r.status_code < 300:
            return Result("delivered", r.status_code, latency_ms=lat), r
        err = f"HTTP {r.status_code}" + (f": {text}" if text else "")
        if r.status_code == 429 or r.status_code >= 500:
            return Result("retry", r.status_code, err, retry_after(r.headers.get("retry-after")), latency_ms=lat), r
        return Result("permanent", r.status_code, err, latency_ms=lat), r

    def close(self) -> None:
        self.client.close()


def _since(t0: float) -> int:
    return int(round((time.monotonic() - t0) * 1000))


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- building -------------------------------------------------------------------------------------------


def secret(env: str | None, file: str | None, what: str, base_dir: Path | None, environ: Mapping[str, str] | None) -> str:
    """A receiver's secret from its environment variable or private file (relative to the spec)."""
    from vigil.secrets import read_secret

    path: str | Path | None = file
    if file is not None and base_dir is not None and not Path(file).is_absolute():
        path = base_dir / file
    return read_secret(env=env, file=path, what=what, environ=dict(environ) if environ is not None else None)


def build_sender(
    receiver: Any, *, base_dir: Path | None = None, environ: Mapping[str, str] | None = None, resolver: Callable[..., Any] = socket.getaddrinfo,
    strict: bool = False,
) -> Sender:
    """The sender of a :class:`~vigil.alerting.routing_spec.Receiver`. Secrets are read now; one
    that cannot be read makes a :class:`Broken` sender (or raises with ``strict``)."""
    try:
        return _build(receiver, base_dir, environ, resolver)
    except UsageError as e:
        if strict:
            raise UsageError(f"receiver {receiver.name}: {e.message}", hint=e.hint) from None
        return Broken(receiver.kind, f"receiver {receiver.name}: {e.message}")


def _build(receiver: Any, base_dir: Path | None, environ: Mapping[str, str] | None, resolver: Callable[..., Any]) -> Sender:
    timeout = float(receiver.timeout)
    kind = receiver.kind
    cfg = receiver.config
    if kind == "pagerduty":
        from vigil.alerting.receivers.pagerduty import PagerDutySender

        key = secret(cfg.routing_key_env, cfg.routing_key_file, "PagerDuty routing key", base_dir, environ)
        return PagerDutySender(cfg, key, timeout, resolver=resolver)
    if kind == "email":
        from vigil.alerting.receivers.email import EmailSender

        pw = secret(cfg.password_env, cfg.password_file, "SMTP password", base_dir, environ) if cfg.username else None
        ca = None
        if cfg.ca_file is not None:
            ca = Path(cfg.ca_file)
            if base_dir is not None and not ca.is_absolute():
                ca = base_dir / ca
        return EmailSender(cfg, pw, timeout, ca_file=ca, resolver=resolver)
    if kind == "webhook":
        from vigil.alerting.receivers.webhook import WebhookSender

        sec = secret(cfg.secret_env, cfg.secret_file, "webhook signing secret", base_dir, environ)
        return WebhookSender(cfg, sec.encode("utf-8"), timeout, resolver=resolver)
    if kind == "slack":
        from vigil.alerting.receivers.slack import SlackSender

        url = secret(cfg.url_env, cfg.url_file, "Slack webhook URL", base_dir, environ)
        from vigil.netguard import url_problem

        why = url_problem(url, allow_link_local=cfg.allow_link_local)
        if why:
            raise UsageError(f"the Slack webhook URL {why}")
        return SlackSender(cfg, url, timeout, resolver=resolver)
    if kind == "sns":
        from vigil.alerting.receivers.sns import SnsSender

        return SnsSender(cfg, timeout)
    raise UsageError(f"unknown receiver kind {kind}")  # pragma: no cover - the spec allows these only
