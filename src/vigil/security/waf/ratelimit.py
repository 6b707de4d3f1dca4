"""The rate-limit check: does the front block a client that goes past the planned limit, and not
long before it?

The plan's limit is ``limit`` requests per ``window`` seconds for one client, read as a token bucket
(AWS WAF's rate-based rules and nginx's ``limit_req`` with ``burst = limit - 1`` both behave so): a
client may send ``limit`` requests at once, then ``limit / window`` per second. The check sends
requests one after another, as fast as the front answers, at most ``max_requests`` of them and for
at most ``max_seconds``, and stops a little after the first blocked answer.

:func:`judge` (pure) decides over what came back. With ``t`` the time of the first block and ``n``
the requests that passed before it, the check passes when

* a block came at all (within the bounds: no block is a "no", never "unknown");
* ``n <= (limit + rate * t) * (1 + tolerance) + 1`` (blocking came within the tolerance: eventual
  blocking is not enough if it comes far too late);
* ``n >= limit * (1 - tolerance)`` (no block long before the limit: real users would be hit);
* no request went unanswered (an error is missing evidence).

AWS WAF evaluates rate-based rules every few tens of seconds, so a real web ACL blocks late by
design; give it a ``tolerance`` (and bounds) that cover that delay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

BLOCK_STATUS = (429, 403, 503)
AFTER_BLOCK = 20  # requests sent after the first block, to see that blocking holds


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the first request
    status: int | None  # None: no answer
    error: str | None = None


def judge(events: list[Event], *, limit: int, window: Decimal, tolerance: Decimal, block_status: tuple[int, ...] = BLOCK_STATUS) -> dict:
    rate = Decimal(limit) / window
    first = next((i for i, e in enumerate(events) if e.status in block_status), None)
    errors = [e for e in events if e.status is None]
    reasons: list[str] = []
    out: dict = {"sent": len(events), "limit": limit, "window_seconds": float(window), "tolerance": float(tolerance),
                 "errors": len(errors), "first_block": None, "passed_before_block": None, "allowed_at_block": None,
                 "blocked_after_first": None}
    if errors:
        reasons.append(f"{len(errors)} requests got no answer ({errors[0].error}): the evidence is incomplete")
    if first is None:
        passed = sum(1 for e in events if e.status is not None)
        span = events[-1].t if events else 0.0
        reasons.append(f"no request was blocked: {passed} passed in {span:.2f}s against a limit of {limit} per {window.normalize():f}s")
        out["passed"] = False
        out["reasons"] = reasons
        return out
    t = Decimal(str(round(events[first].t, 6)))
    n = sum(1 for e in events[:first] if e.status is not None and e.status not in block_status)
    allowed = Decimal(limit) + rate * t
    upper = allowed * (1 + tolerance) + 1
    lower = Decimal(limit) * (1 - tolerance)
    after = events[first:]
    out.update({
        "first_block": {"request": first + 1, "t": float(t), "status": events[first].status},
        "passed_before_block": n,
        "allowed_at_block": float(allowed.quantize(Decimal("0.01"))),
        "upper_bound": float(upper.quantize(Decimal("0.01"))),
        "lower_bound": float(lower.quantize(Decimal("0.01"))),
        "blocked_after_first": sum(1 for e in after if e.status in block_status),
        "sent_after_first": len(after),
    })
    if n > upper:
        reasons.append(f"blocking came late: {n} requests passed before the first block at {float(t):.2f}s; at most {float(upper):.1f} may")
    if n < lower:
        reasons.append(f"blocking came early: only {n} requests passed before the first block; the limit lets {limit} through")
    out["passed"] = not reasons
    out["reasons"] = reasons
    return out


def send_until_blocked(
    send: Callable[[], tuple[int | None, str | None]],
    *,
    max_requests: int,
    max_seconds: float,
    block_status: tuple[int, ...] = BLOCK_STATUS,
    clock: Callable[[], float] = time.monotonic,
) -> list[Event]:
    """Send one request after another until the bounds, or ``AFTER_BLOCK`` requests past the first
    block. ``send()`` returns (status, error)."""
    events: list[Event] = []
    t0 = clock()
    blocked_at: int | None = None
    while len(events) < max_requests and clock() - t0 < max_seconds:
        status, err = send()
        events.append(Event(clock() - t0, status, err))
        if blocked_at is None and status in block_status:
            blocked_at = len(events)
        if blocked_at is not None and len(events) - blocked_at >= AFTER_BLOCK:
            break
    return events


def http_sender(url: str, timeout: float) -> tuple[Callable[[], tuple[int | None, str | None]], Callable[[], None]]:
    """A sender of ``GET url`` over one httpx client (keep-alive; no proxy from the environment)."""
    import httpx

    client = httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout, headers={"User-Agent": "vigil-waf-ratelimit"})

    def send() -> tuple[int | None, str | None]:
        try:
            r = client.get(url)
            return r.status_code, None
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"[:200]

    return send, client.close
