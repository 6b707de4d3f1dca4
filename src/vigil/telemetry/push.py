"""Push a telemetry body into the store: the one path behind ``POST /api/v1/push`` and ``vigil push``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from vigil.spec import Spec
from vigil.store import Store
from vigil.telemetry.ingest import (
    DOCUMENTED_BOUNDS,
    IngestContext,
    Rejection,
    Rollup,
    ingest,
    seconds_to_ns,
    split_body,
)

DEFAULT_MAX_BODY = 16 * 1024 * 1024


@dataclass
class PushResult:
    accepted: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, r: Rollup, line_offset: int = 0) -> None:
        self.accepted += r.accepted
        self.rejected_count += r.rejected_count
        for x in r.rejected:
            if len(self.rejected) < 1000:
                self.rejected.append(Rejection(x.line + line_offset, x.error))

    def add_remote(self, d: dict, line_offset: int = 0) -> None:
        """Add a server's push response (the shape of :meth:`to_dict`)."""
        self.accepted += int(d.get("accepted", 0))
        self.rejected_count += int(d.get("rejected", 0))
        for x in d.get("errors", []):
            if len(self.rejected) < 1000:
                self.rejected.append(Rejection(int(x["line"]) + line_offset, str(x["error"])))

    def to_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected_count,
            "errors": [r.to_dict() for r in self.rejected],
            "errors_truncated": self.rejected_count > len(self.rejected),
        }


class Ingestor:
    """Holds what every batch is checked against; one per process, refreshed per batch."""

    def __init__(self, spec: Spec, store: Store) -> None:
        self.spec = spec
        self.store = store
        documented = [seconds_to_ns(b) for b in DOCUMENTED_BOUNDS]
        self.bounds_ns = sorted(set(documented) | {seconds_to_ns(t) for t in spec.latency_thresholds()})
        self._documented = documented
        self._bounds_registered = False
        self.metric_kinds: dict[str, str] = store.metric_kinds()
        self.retention_ms = int(spec.retention_seconds() * 1000)
        self.max_future_ms = int(spec.telemetry.max_future * 1000)

    def context(self, now: datetime) -> IngestContext:
        now_ms = int(now.timestamp() * 1000)
        if not self._bounds_registered:
            self.store.ensure_bounds(self.bounds_ns, now_ms // 60000, self._documented)
            self._bounds_registered = True
        return IngestContext(
            now_ms=now_ms,
            oldest_ms=now_ms - self.retention_ms,
            max_future_ms=self.max_future_ms,
            bounds_ns=tuple(self.bounds_ns),
            metric_kinds=self.metric_kinds,
        )

    def push_lines(self, lines: Iterable[tuple[int, object]], now: datetime) -> Rollup:
        """Check and store one batch. The batch is written in one transaction."""
        kinds_before = dict(self.metric_kinds)
        r = ingest(lines, self.context(now))
        try:
            self.store.write_rollup(r)
        except Exception:
            self.metric_kinds.clear()
            self.metric_kinds.update(kinds_before)
            raise
        return r

    def push_body(self, body: bytes, now: datetime, *, max_bytes: int = DEFAULT_MAX_BODY) -> PushResult:
        res = PushResult()
        res.add(self.push_lines(split_body(body, max_bytes=max_bytes), now))
        return res
