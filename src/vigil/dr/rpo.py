"""RTO and RPO achieved by a drill: pure functions over timestamps (no I/O, no clock).

Definitions (exact, in microseconds, returned as ``Decimal`` seconds):

* **RTO achieved** = the time of the first verified write on the recovered database minus the
  disaster time. No verified write: no RTO (the recovery did not finish).
* **RPO achieved** = the commit time of the last canary row committed before the disaster minus
  the commit time of the newest canary row present after recovery. When the newest recovered row
  is the last one committed (or newer: a commit in flight at the disaster survived), nothing was
  lost: 0. When no canary row survived at all, the loss reaches back at least to the ledger's first
  row: the RPO is that lower bound and is marked ``exact=False``.
* **Cross-check** with ``pg_last_xact_replay_timestamp()``: the last transaction replayed commits
  no earlier than the newest canary row recovered (it may be later: other writes, or the canary row
  being committed a moment after its timestamp was taken).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

MICRO = Decimal("0.000001")


def seconds_between(start: datetime, end: datetime) -> Decimal:
    """``end - start`` in seconds, exact to the microsecond (negative when end is earlier)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("naive datetime: RTO and RPO need time zones (use UTC)")
    delta = end - start
    micros = delta // timedelta(microseconds=1)
    return Decimal(micros) * MICRO


@dataclass(frozen=True)
class Rpo:
    seconds: Decimal | None
    exact: bool
    note: str

    def to_dict(self) -> dict:
        return {"seconds": _num(self.seconds), "exact": self.exact, "note": self.note}


def rto_seconds(disaster_at: datetime, first_write_at: datetime | None) -> Decimal | None:
    """RTO achieved, or None when no write was verified."""
    if first_write_at is None:
        return None
    s = seconds_between(disaster_at, first_write_at)
    if s < 0:
        raise ValueError("the first verified write cannot precede the disaster")
    return s


def rpo(
    last_committed: datetime | None,
    newest_recovered: datetime | None,
    *,
    ledger_started: datetime | None = None,
) -> Rpo:
    """RPO achieved from canary commit times (see the module docstring)."""
    if last_committed is None:
        return Rpo(None, False, "no canary row was committed before the disaster: the RPO cannot be measured")
    if newest_recovered is None:
        if ledger_started is None:
            return Rpo(None, False, "no canary row survived and the ledger's start is unknown")
        return Rpo(
            max(Decimal(0), seconds_between(ledger_started, last_committed)),
            False,
            "no canary row survived: every row since the ledger started was lost (a lower bound)",
        )
    s = seconds_between(newest_recovered, last_committed)
    if s <= 0:
        return Rpo(Decimal(0), True, "the last canary row committed before the disaster was recovered: nothing lost")
    return Rpo(s, True, "commit time of the last canary row before the disaster minus that of the newest recovered")


@dataclass(frozen=True)
class ReplayCheck:
    consistent: bool | None
    replay_rpo_seconds: Decimal | None
    note: str

    def to_dict(self) -> dict:
        return {"consistent": self.consistent, "replay_rpo_seconds": _num(self.replay_rpo_seconds), "note": self.note}


def replay_cross_check(
    last_committed: datetime | None,
    newest_recovered: datetime | None,
    replay_at: datetime | None,
    *,
    tolerance: Decimal = Decimal(1),
) -> ReplayCheck:
    """Cross-check the canary's RPO with ``pg_last_xact_replay_timestamp()``.

    Consistent when the last replayed commit is not older than the newest recovered canary row
    (minus ``tolerance``: the row's timestamp is taken inside its transaction, just before commit).
    ``replay_rpo_seconds`` is the loss the replay timestamp alone suggests (never above the
    canary's, since other transactions may have been replayed after the canary's last row)."""
    if replay_at is None:
        return ReplayCheck(None, None, "no replay timestamp: nothing was replayed from WAL after the backup, or the server restarted")
    replay_rpo = None
    if last_committed is not None:
        replay_rpo = max(Decimal(0), seconds_between(replay_at, last_committed))
    if newest_recovered is None:
        return ReplayCheck(None, replay_rpo, "no canary row recovered to compare with")
    gap = seconds_between(newest_recovered, replay_at)
    if gap >= -tolerance:
        return ReplayCheck(True, replay_rpo, "the last replayed commit is at or after the newest recovered canary row")
    return ReplayCheck(
        False,
        replay_rpo,
        f"the last replayed commit is {-gap}s older than the newest recovered canary row: the clocks or the ledger disagree",
    )


def verdict(achieved: Decimal | None, objective: Decimal | None) -> str:
    """``met``, ``missed`` or ``unknown`` (nothing measured or no objective)."""
    if achieved is None or objective is None:
        return "unknown"
    return "met" if achieved <= objective else "missed"


def overhead(total: Decimal, raw: Decimal) -> Decimal | None:
    """Orchestration overhead as a fraction of the raw restore time: ``(total - raw) / raw``."""
    if raw <= 0:
        return None
    return (total - raw) / raw


def _num(d: Decimal | None) -> float | None:
    return None if d is None else float(d)
