"""AWS SNS through boto3 (credentials and region from the usual AWS chain, the region defaulting to
the topic ARN's).

The message is JSON (the webhook's body, unsigned: SNS signs its own deliveries), the subject the
notification's title (SNS limits it to 100 printable ASCII characters). The delivery id is a
message attribute; on a FIFO topic it is also the deduplication id (SNS drops a repeat within five
minutes) and the alert group's key is the message group.

Throttling and server-side errors are retried; a missing topic, a refused authorisation or an
invalid parameter are permanent.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from vigil.alerting.receivers import Outgoing, Result, title

RETRY_CODES = {"Throttling", "ThrottlingException", "ThrottledException", "InternalError", "InternalFailure",
               "ServiceUnavailable", "KMSThrottling", "RequestTimeout"}


def subject(out: Outgoing) -> str:
    s = "".join(c if 32 <= ord(c) < 127 else "?" for c in f"vigil {title(out.payload)}")
    return s[:100]


def render(out: Outgoing, cfg: Any) -> dict:
    """The arguments of ``sns.publish`` (pure)."""
    from vigil.alerting.receivers.webhook import render as body

    args: dict[str, Any] = {
        "TopicArn": cfg.topic_arn,
        "Subject": subject(out),
        "Message": json.dumps(body(out), sort_keys=True, separators=(",", ":")),
        "MessageAttributes": {
            "vigil_delivery": {"DataType": "String", "StringValue": out.key},
            "vigil_action": {"DataType": "String", "StringValue": out.action},
        },
    }
    if cfg.fifo:
        args["MessageGroupId"] = out.dedup_key[:128]
        args["MessageDeduplicationId"] = hashlib.sha256(out.key.encode()).hexdigest()[:128]
    return args


class SnsSender:
    kind = "sns"
    can_acknowledge = False

    def __init__(self, cfg: Any, timeout: float) -> None:
        self.cfg = cfg
        self.timeout = timeout
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            conf = Config(connect_timeout=self.timeout, read_timeout=self.timeout, retries={"max_attempts": 1, "mode": "standard"})
            self._client = boto3.client("sns", region_name=self.cfg.region_name, endpoint_url=self.cfg.endpoint_url, config=conf)
        return self._client

    def send(self, out: Outgoing) -> Result:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        t0 = time.monotonic()
        try:
            r = self.client().publish(**render(out, self.cfg))
        except ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            st = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            retry = code in RETRY_CODES or (isinstance(st, int) and st >= 500)
            return Result("retry" if retry else "permanent", st, f"SNS {code}: {err.get('Message', '')}"[:500], latency_ms=_since(t0))
        except NoCredentialsError as e:
            return Result("permanent", error=f"no AWS credentials: {e}", latency_ms=_since(t0))
        except BotoCoreError as e:
            return Result("retry", error=f"{type(e).__name__}: {e}"[:500], latency_ms=_since(t0))
        return Result("delivered", 200, detail={"message_id": r.get("MessageId")}, latency_ms=_since(t0))

    def close(self) -> None:
        self._client = None


def _since(t0: float) -> int:
    return int(round((time.monotonic() - t0) * 1000))
