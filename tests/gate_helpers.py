"""The gate tests' shared spec and traffic (tests/test_gate_trust.py, tests/test_hostile_trust.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vigil.clock import isoformat

GATE_SPEC = """\
version: 1
services: {api: {}, checkout: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli:
      ratio: {good: 'http_requests{service="api",code!~"5.."}', total: 'http_requests{service="api"}'}
  - name: checkout-success
    service: checkout
    objective: 99.5
    window: {rolling: 30d}
    sli:
      ratio: {good: 'checkout_attempts{outcome="success"}', total: checkout_attempts}
policy:
  freeze:
    - name: budget-exhausted
      when: {budget_exhausted: true}
  overrides: {labels: [security]}
"""


def recent_rows(minutes: int) -> list[dict]:
    """Real-time-stamped traffic (recorded decisions are made at the real clock): api fails half
    its requests, which exhausts a 30-day budget whatever the day; checkout is clean."""
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    rows = []
    for i in range(minutes, 0, -1):
        ts = isoformat(end - timedelta(minutes=i))
        rows += [
            {"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 50},
            {"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "503"}, "inc": 50},
            {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 10},
        ]
    return rows
