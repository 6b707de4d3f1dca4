"""PagerDuty Events API v2 (``POST https://events.pagerduty.com/v2/enqueue``).

One incident per alert group and receiver: the ``dedup_key`` is the group's (the same for every
trigger, acknowledge and resolve of the group, and on every retry or replay), so PagerDuty folds a
repeated trigger into the open incident instead of opening a second one.

Answers: 202 delivered; 400 (an invalid event) is never retried; 429 is retried after a backoff
(Retry-After when given); 5xx and network errors are retried; any other status is permanent.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Mapping

from vigil import __version__
from vigil.alerting.receivers import HttpPoster, Outgoing, Result, common, dumps, link, title

SUMMARY_MAX = 1024
MAX_DETAILED = 50
"""Alerts detailed per state in ``custom_details`` (PagerDuty refuses events over 512 KB)."""


def render(out: Outgoing, routing_key: str, cfg: Any) -> dict:
    """The event PagerDuty receives (pure)."""
    p = out.payload
    action = out.action if out.action in ("trigger", "acknowledge", "resolve") else "trigger"
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": out.dedup_key}
    if action != "trigger":
        return event
    alerts = p["alerts"]
    firing = [a for a in alerts if a["state"] != "resolved"]
    labels = common([a["labels"] for a in alerts])
    sev_label = labels.get("severity") or (firing[0]["labels"].get("severity") if firing else None) or ""
    severity = cfg.severity.get(sev_label, "error")
    first = firing[0] if firing else alerts[0]
    summary = title(p)
    s1 = first["annotations"].get("summary")
    if s1:
        summary += f": {s1}"
    resolved = [a for a in alerts if a["state"] == "resolved"]
    details = {
        "firing": [_alert(a) for a in firing[:MAX_DETAILED]],
        "resolved": [_alert(a) for a in resolved[:MAX_DETAILED]],
        "num_firing": len(firing),
        "num_resolved": len(resolved),
        "truncated_alerts": max(0, len(firing) - MAX_DETAILED) + max(0, len(resolved) - MAX_DETAILED),
        "group_labels": p["group_labels"],
        "delivery": out.key,
    }
    from vigil.alerting.receivers import iso_ms

    event["payload"] = {
        "summary": summary[:SUMMARY_MAX],
        "source": cfg.source or labels.get("service") or "vigil",
        "severity": severity,
        "timestamp": iso_ms(first["starts_ms"]),
        "component": labels.get("service"),
        "group": labels.get("alertname"),
        "class": labels.get("slo") or first.get("rule"),
        "custom_details": details,
    }
    event["client"] = "vigil"
    url = link(out.external_url, p)
    if url:
        event["client_url"] = url
    links = []
    for a in firing:
        rb = a["annotations"].get("runbook_url")
        if rb and {"href": rb, "text": "runbook"} not in links:
            links.append({"href": rb, "text": "runbook"})
    if links:
        event["links"] = links[:5]
    return event


def _alert(a: Mapping[str, Any]) -> dict:
    from vigil.alerting.receivers import iso_ms

    return {
        "labels": a["labels"],
        "summary": a["annotations"].get("summary"),
        "description": a["annotations"].get("description"),
        "value": a.get("value"),
        "since": iso_ms(a["starts_ms"]),
        "fingerprint": a["fingerprint"],
    }


class PagerDutySender:
    kind = "pagerduty"
    can_acknowledge = True

    def __init__(self, cfg: Any, routing_key: str, timeout: float, *, resolver: Callable[..., Any] = socket.getaddrinfo) -> None:
        self.cfg = cfg
        self.routing_key = routing_key
        self.http = HttpPoster(timeout, allow_link_local=cfg.allow_link_local, resolver=resolver)

    def send(self, out: Outgoing) -> Result:
        body = dumps(render(out, self.routing_key, self.cfg))
        headers = {"Content-Type": "application/json", "User-Agent": f"vigil/{__version__}", "X-Vigil-Delivery": out.key}
        res, resp = self.http.post(self.cfg.url, body, headers)
        if resp is not None and res.outcome == "delivered" and resp.status_code != 202:
            # the Events API answers 202; anything else from it is not an accepted event
            res.outcome = "retry" if resp.status_code >= 500 else "permanent"
            res.error = f"HTTP {resp.status_code} (the Events API answers 202 Accepted)"
        if resp is not None and resp.status_code == 400:
            res.error = (res.error or "HTTP 400") + " (an invalid event: not retried)"
        res.detail = {"dedup_key": out.dedup_key, "event_action": out.action}
        return res

    def close(self) -> None:
        self.http.close()
