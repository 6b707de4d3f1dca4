"""A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat accept this shape).

The URL is a secret (it is the credential), read from an environment variable or a private file.
Slack answers 200 ``ok``; 4xx answers (``invalid_payload``, ``no_service``, ``channel_not_found``)
are permanent; 429 (Retry-After) and 5xx are retried.
"""

from __future__ import annotations

import socket
from typing import Any, Callable

from vigil import __version__
from vigil.alerting.receivers import HttpPoster, Outgoing, Result, alert_lines, dumps, link, status, title

MAX_TEXT = 3000


def escape(text: str) -> str:
    """Slack's control characters escaped (``&``, ``<``, ``>``), so a label or an annotation can
    neither mention ``<!channel>`` nor forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(out: Outgoing, channel: str | None = None) -> dict:
    """The message (pure): a title line, then each alert; a colour by state. Text from alerts is
    escaped."""
    p = out.payload
    lines: list[str] = []
    for a in p["alerts"]:
        lines += alert_lines(a)
    url = link(out.external_url, p)
    body = escape("\n".join(lines))
    if len(body) > MAX_TEXT:
        body = body[: MAX_TEXT - 20] + "\n... (truncated)"
    color = {"firing": "#d00000", "resolved": "#2eb886"}[status(p)]
    if out.action == "acknowledge":
        color = "#f2c744"
    msg: dict[str, Any] = {
        "text": escape(title(p)),
        "attachments": [
            {
                "color": color,
                "title": escape(title(p)),
                "text": body,
                "footer": f"vigil delivery {out.key}",
                **({"title_link": url} if url else {}),
            }
        ],
    }
    if channel:
        msg["channel"] = channel
    return msg


class SlackSender:
    kind = "slack"
    can_acknowledge = False

    def __init__(self, cfg: Any, url: str, timeout: float, *, resolver: Callable[..., Any] = socket.getaddrinfo) -> None:
        self.cfg = cfg
        self.url = url
        self.http = HttpPoster(timeout, allow_link_local=cfg.allow_link_local, resolver=resolver)

    def send(self, out: Outgoing) -> Result:
        body = dumps(render(out, self.cfg.channel))
        headers = {"Content-Type": "application/json", "User-Agent": f"vigil/{__version__}"}
        res, _ = self.http.post(self.url, body, headers)
        if res.error:
            # never echo the URL (a credential); the status and Slack's word are enough
            res.error = res.error.replace(self.url, "<slack webhook>")
        return res

    def close(self) -> None:
        self.http.close()
