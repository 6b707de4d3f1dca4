"""For the receiving end of vigil's canary webhooks: check a delivery before acting on it.

Light on purpose (no HTTP client, no vigil imports beyond the standard library), so a receiver can
use it as is. vigil POSTs a compact JSON body with sorted keys::

    {"action": "set_weight", "at": "2026-11-20T12:00:00Z", "baseline": "...", "canary": "...",
     "delivery": "7-3", "run_id": 7, "service": "api", "step": 1, "weight": 25}

signed with HMAC-SHA256 in ``X-Vigil-Signature-256: sha256=<hex>``. The signature covers the whole
body, ``at`` and ``delivery`` included, so neither can be changed; but a valid body can be sent
again. A signature check alone lets a captured ``set_weight 10`` move the weight back after a
rollback. :class:`DeliveryGuard` refuses that:

- a body whose signature does not verify (constant-time compare);
- a body that is not the JSON object above;
- a **stale** body: ``at`` more than ``tolerance`` (default 5 minutes) from the receiver's clock,
  either way (vigil retries a delivery with the same body for at most 3 x 60 s by default);
- an **out-of-order** delivery: ``delivery`` is ``<run id>-<event id>`` and event ids grow within a
  run (vigil calls its hooks one at a time and retries a call only before the next), so a delivery
  older than one already accepted for the same run is refused, seen before or not: a captured
  ``set_weight`` replayed, or held back and released, after the rollback;
- a **repeated** delivery id, the newest of its run: reported as a duplicate that must not be acted
  on again (answer 2xx, so that vigil's retry of a delivery whose answer was lost succeeds without
  moving anything).

The guard keeps the ids it accepted within the window in memory, so it protects one receiver
process; a receiver running as several processes keeps them where it keeps its state (a unique key
on the delivery id in its database) with the same rules.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

DEFAULT_TOLERANCE = 300.0
MAX_REMEMBERED = 100_000


def sign(secret: bytes, body: bytes) -> str:
    """The value of ``X-Vigil-Signature-256`` for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Does ``header`` sign ``body``? Constant-time. The signature only: a receiver acting on
    webhooks uses :class:`DeliveryGuard`, which also refuses replays."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body), header)


class Rejected(Exception):
    """A delivery the receiver must not act on. ``status`` is the HTTP status to answer."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Delivery:
    payload: dict
    delivery: str
    duplicate: bool  # seen before: acknowledge (2xx), do not act again


def _epoch(at: object) -> float:
    if not isinstance(at, str):
        raise Rejected("the body's `at` is not a timestamp")
    try:
        dt = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("the body's `at` is not an RFC 3339 timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _order(delivery: str) -> tuple[str, int] | None:
    run, sep, event = delivery.rpartition("-")
    if not sep or not event.isdigit():
        return None
    return run, int(event)


class DeliveryGuard:
    """Checks signed deliveries: signature, freshness, repeats and order (see the module docstring).

    ``check(body, header, now=...)`` returns a :class:`Delivery` or raises :class:`Rejected`.
    Thread-safe.
    """

    def __init__(self, secret: bytes, *, tolerance: float = DEFAULT_TOLERANCE, max_remembered: int = MAX_REMEMBERED) -> None:
        if not secret:
            raise ValueError("the webhook secret is empty")
        if tolerance <= 0:
            raise ValueError("tolerance must be above 0 seconds")
        self.secret = secret
        self.tolerance = float(tolerance)
        self.max_remembered = max_remembered
        self._seen: OrderedDict[str, float] = OrderedDict()  # delivery -> its `at`, oldest first
        self._latest: dict[str, int] = {}  # run -> the highest event id accepted
        self._lock = threading.Lock()

    def check(self, body: bytes, signature: str | None, *, now: datetime | float) -> Delivery:
        if not verify(self.secret, body, signature):
            raise Rejected("the signature does not match the body", 401)
        try:
            payload = json.loads(body)
        except ValueError:
            raise Rejected("the body is not JSON") from None
        if not isinstance(payload, dict):
            raise Rejected("the body is not a JSON object")
        delivery = payload.get("delivery")
        if not isinstance(delivery, str) or not delivery:
            raise Rejected("the body has no `delivery` id")
        at = _epoch(payload.get("at"))
        t = now.timestamp() if isinstance(now, datetime) else float(now)
        if abs(t - at) > self.tolerance:
            raise Rejected(f"stale delivery {delivery}: sent at {payload.get('at')}, more than {self.tolerance:g}s from now", 409)
        with self._lock:
            self._forget(t)
            order = _order(delivery)
            if order is not None:
                run, event = order
                latest = self._latest.get(run)
                if latest is not None and event < latest:
                    raise Rejected(f"out-of-order delivery {delivery}: {run}-{latest} was accepted already (a replay, or held back)", 409)
            if delivery in self._seen:
                return Delivery(payload, delivery, True)
            if len(self._seen) >= self.max_remembered:
                raise Rejected("too many deliveries within the tolerance window to remember; refusing", 503)
            self._seen[delivery] = at
            if order is not None:
                self._latest[order[0]] = max(order[1], self._latest.get(order[0], order[1]))
        return Delivery(payload, delivery, False)

    def _forget(self, now: float) -> None:
        """Drop ids whose `at` is outside the window: a replay of them is refused as stale anyway."""
        while self._seen:
            d, at = next(iter(self._seen.items()))
            if abs(now - at) <= self.tolerance:
                break
            del self._seen[d]
