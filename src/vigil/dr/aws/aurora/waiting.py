"""Waiting for AWS: a bounded poll on an injected clock and sleep (a fake clock's tick in tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from vigil.clock import Clock
from vigil.dr.aws.aurora.model import Progress, _noop
from vigil.dr.aws.aurora.retention import _human
from vigil.dr.aws.client import AwsError
from vigil.units import format_duration


def wait_for(
    poll: Callable[[], str | None],
    *,
    what: str,
    timeout: float,
    interval: float,
    clock: Clock,
    sleep: Callable[[float], None],
    ok: frozenset[str] = frozenset({"available"}),
    failed: frozenset[str] = frozenset(),
    progress: Progress = _noop,
    hint: str = "",
) -> datetime:
    """Poll until ``poll()`` returns a state in ``ok``; return when that was seen (the clock's time).

    Bounded: gives up after ``timeout`` seconds of clock time with an :class:`AwsError`. A state in
    ``failed`` fails at once. ``sleep`` is injected (a fake clock's tick in tests).
    """
    start = clock.now()
    deadline = start + timedelta(seconds=timeout)
    last = None
    while True:
        state = poll()
        now = clock.now()
        if state != last:
            progress(f"{what}: {state or 'not visible yet'} after {_human((now - start).total_seconds()) if now > start else '0m'}")
            last = state
        if state in ok:
            return now
        if state in failed:
            raise AwsError(f"{what} went to state {state!r}", hint=hint or "see the RDS events of the resource in the AWS console or `aws rds describe-events`")
        if now >= deadline:
            raise AwsError(
                f"{what} is still {state or 'not visible'} after {format_duration(int(timeout))}; stopped waiting",
                hint=(hint + "; " if hint else "") + "the operation goes on in AWS; raise backups.aurora.restore.timeout or check again later",
            )
        sleep(min(interval, (deadline - now).total_seconds()))
