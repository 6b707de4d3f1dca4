"""What ``vigil serve`` runs for alerting: a lease keeper and, on the leader only, the evaluator
and the dispatcher.

Two threads. The *keeper* renews (or tries to take) the leader lease every ``leader.poll``. The
*worker* wakes every ``tick`` seconds (1 s, or half the evaluation interval when that is shorter);
while this replica holds the lease it evaluates every due instant
(:func:`vigil.alerting.leader.evaluate_due`) and runs one dispatcher tick
(:class:`vigil.alerting.dispatch.Dispatcher`). Every write is fenced by the lease. A replica that
is not the leader serves the API and ingests, and does nothing else here.

Failures are reported on stderr (once per distinct message a minute) and never stop the API.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from vigil.alerting.dispatch import Dispatcher
    from vigil.alerting.leader import Lease
    from vigil.clock import Clock
    from vigil.spec import LoadedSpec
    from vigil.store import Store


class AlertingService:
    def __init__(
        self,
        loaded: "LoadedSpec",
        store: "Store",
        clock: "Clock",
        *,
        log: Callable[[str], None] | None = None,
        senders: dict | None = None,
        tick: float | None = None,
        holder: str | None = None,
    ) -> None:
        from vigil.alerting.dispatch import Dispatcher, build_senders
        from vigil.alerting.leader import Lease

        self.loaded = loaded
        self.store = store
        self.clock = clock
        self._log = log or (lambda s: None)
        spec = loaded.spec
        a = spec.alerting
        lease_s = float(a.leader.lease) if a is not None else 15.0
        self.poll = float(a.leader.poll_seconds) if a is not None else lease_s / 3
        interval = float(a.evaluation_interval) if a is not None else 60.0
        self.tick = tick if tick is not None else min(1.0, interval / 2)
        self.lease: Lease = Lease(store, ttl_s=lease_s, holder=holder)
        self.dispatcher: Dispatcher | None = None
        self.broken: dict[str, str] = {}
        if a is not None:
            base = Path(loaded.path).absolute().parent if loaded.path is not None else None
            if senders is None:
                senders = build_senders(a, base_dir=base, strict=False)
            for name, s in senders.items():
                err = getattr(s, "error", None)
                if err:
                    self.broken[name] = err
            self.dispatcher = Dispatcher(store, a, senders, clock, fence=self.lease.check, held=self.lease.held)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._said: dict[str, float] = {}
        self.evaluations = 0
        self.ticks = 0
        self.last_error: str | None = None
        self.on_evaluated: Callable[[float], None] | None = None  # seconds of one evaluator pass (vigil's /metrics)
        self.on_dispatched: Callable[[Any], None] | None = None  # a dispatcher tick's report

    # -- reporting ---------------------------------------------------------------------------------

    def log(self, msg: str) -> None:
        now = time.monotonic()
        if now - self._said.get(msg, -1e9) < 60:
            return
        self._said[msg] = now
        self._log(msg)

    def status(self) -> dict:
        return {
            "holder": self.lease.holder,
            "leader": self.lease.held(),
            "fence": self.lease.fence,
            "evaluations": self.evaluations,
            "ticks": self.ticks,
            "broken_receivers": dict(self.broken),
            "last_error": self.last_error,
        }

    # -- threads -----------------------------------------------------------------------------------

    def start(self) -> "AlertingService":
        for _name, why in sorted(self.broken.items()):
            self._log(f"alerting: {why}; its notifications go to its fallback (or fail), see vigil alerts log")
        for target, name in ((self._keep, "vigil-lease"), (self._work, "vigil-alerting")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=timeout)
        try:
            self.lease.release()
        except Exception as e:  # the store may be gone; the lease then expires by itself
            self._log(f"alerting: releasing the leader lease failed: {e}")
        if self.dispatcher is not None:
            for s in self.dispatcher.senders.values():
                try:
                    s.close()
                except Exception:
                    pass

    def _keep(self) -> None:
        was = False
        while not self._stop.is_set():
            try:
                now = self.lease.try_acquire()
            except Exception as e:
                now = self.lease.held()
                self.last_error = f"leader lease: {e}"
                self.log(f"alerting: the leader lease could not be renewed: {e}")
            if now != was:
                self._log(f"alerting: this replica {'leads' if now else 'follows'} (holder {self.lease.holder}, fence {self.lease.fence})")
                was = now
            self._stop.wait(self.poll)

    def _work(self) -> None:
        from vigil.alerting.leader import LostLease, evaluate_due
        from vigil.telemetry.sources import open_source

        spec = self.loaded.spec

        def source() -> Any:
            return open_source(spec.telemetry, self.store)

        while not self._stop.wait(self.tick):
            if not self.lease.held():
                continue
            try:
                now_ms = int(round(self.clock.now().timestamp() * 1000))
                t0 = time.perf_counter()
                evs = evaluate_due(self.store, self.loaded, source, self.lease, now_ms, log=self.log)
                self.evaluations += sum(1 for e in evs if e.recorded is not None and e.recorded.recorded)
                if evs and self.on_evaluated is not None:
                    self.on_evaluated(time.perf_counter() - t0)
                if self.dispatcher is not None:
                    rep = self.dispatcher.tick()
                    if self.on_dispatched is not None:
                        self.on_dispatched(rep)
                self.ticks += 1
            except LostLease as e:
                self._log(f"alerting: {e.message}")
            except Exception as e:  # keep serving; say what failed
                self.last_error = f"{type(e).__name__}: {e}"
                self.log(f"alerting: {self.last_error}")
