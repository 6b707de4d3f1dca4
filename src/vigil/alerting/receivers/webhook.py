"""A JSON webhook signed with HMAC-SHA256, as the canary hooks are.

The body is Alertmanager's webhook payload (``version: "4"``, ``status``, ``receiver``,
``groupLabels``, ``commonLabels``, ``commonAnnotations``, ``externalURL``, ``groupKey``, ``alerts``
with ``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``fingerprint``) plus vigil's
``delivery`` (the delivery id, the same on every retry and replay), ``sent_at`` (this attempt's
time), ``action`` and ``value`` per alert. Keys sorted, compact JSON. Headers:

- ``X-Vigil-Signature-256: sha256=<hex HMAC-SHA256 of the exact body with the secret>``: the
  signature covers the delivery id and the time, so a receiver can refuse a stale or replayed
  body (``vigil.deploy.canary.receiver.verify`` checks the signature);
- ``X-Vigil-Delivery: <delivery id>`` (drop a repeat), ``X-Vigil-Event: <action>``,
  ``X-Vigil-Timestamp: <sent_at>``.

2xx is delivered; 429, 5xx and network errors are retried; other statuses are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from typing import Any, Callable, Mapping

from vigil import __version__
from vigil.alerting.receivers import HttpPoster, Outgoing, Result, common, dumps, iso_ms, status


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def render(out: Outgoing) -> dict:
    """The body (pure)."""
    from vigil.clock import isoformat

    p = out.payload
    alerts = p["alerts"]
    return {
        "version": "4",
        "delivery": out.key,
        "sent_at": isoformat(out.sent_at),
        "action": out.action,
        "status": status(p),
        "receiver": out.receiver or p["receiver"],
        "groupKey": p["group_key"],
        "groupLabels": p["group_labels"],
        "commonLabels": common([a["labels"] for a in alerts]),
        "commonAnnotations": common([a["annotations"] for a in alerts]),
        "externalURL": out.external_url or "",
        "dedup_key": out.dedup_key,
        "truncatedAlerts": 0,
        "alerts": [_alert(a) for a in alerts],
    }


def _alert(a: Mapping[str, Any]) -> dict:
    return {
        "status": "resolved" if a["state"] == "resolved" else "firing",
        "labels": a["labels"],
        "annotations": a["annotations"],
        "startsAt": iso_ms(a["starts_ms"]),
        "endsAt": iso_ms(a.get("ends_ms")) or "0001-01-01T00:00:00Z",
        "fingerprint": a["fingerprint"],
        "value": a.get("value"),
        "generatorURL": "",
    }


class WebhookSender:
    kind = "webhook"
    can_acknowledge = False

    def __init__(self, cfg: Any, secret: bytes, timeout: float, *, resolver: Callable[..., Any] = socket.getaddrinfo) -> None:
        self.cfg = cfg
        self.secret = secret
        self.http = HttpPoster(timeout, allow_link_local=cfg.allow_link_local, resolver=resolver)

    def send(self, out: Outgoing) -> Result:
        from vigil.clock import isoformat

        body = dumps(render(out))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"vigil/{__version__}",
            "X-Vigil-Delivery": out.key,
            "X-Vigil-Event": out.action,
            "X-Vigil-Timestamp": isoformat(out.sent_at),
            "X-Vigil-Signature-256": sign(self.secret, body),
        }
        res, _ = self.http.post(self.cfg.url, body, headers)
        return res

    def close(self) -> None:
        self.http.close()
