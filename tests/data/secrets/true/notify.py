import httpx

WEBHOOK = "https://hooks.slack.com/services/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"


def notify(text: str) -> None:
    httpx.post(WEBHOOK, json={"text": text}, timeout=5)
