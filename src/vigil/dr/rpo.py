"""RTO and RPO achieved by a drill: pure functions over timestamps (no I/O, no clock).

Definitions (exact, in microseconds, returned as ``Decimal`` seconds):

* **RTO achieved** = the time of the first verified write on the recovered database minus the
  disaster time, plus the detection and decision delay the drill declares (the drill does not
  measure those: nothing detects a declared disaster). No verified write: no RTO.
* **RPO achieved** = the commit time of the last canary row committed before the disaster minus
  the commit time of the newest canary row present after recovery. When the newest recovered row
  is the last one committed (or newer: a commit in flight at the disaster survived), nothing was
  lost: 0. When no canary row survived at all, the loss reaches back at least to the ledger's first
  row: the RPO is that lower bound and is marked ``exact=False``.
* **Cross-check** with ``pg_last_xact_replay_timestamp()``: the last transaction replayed commits
  no earlier than the newest canary row recovered (it may be later: other writes, or the canary row
  being committed a moment after its timestamp was taken). The loss it implies (the last canary
  commit before the disaster minus the last replayed commit) is the *replay figure*.
* **RPO reported** = the worse of the canary figure and the replay figure (:func:`reported_rpo`).
  A figure that is only a lower bound can be reported, but it never meets an objective
  (:func:`verdict` says ``unknown`` unless it already exceeds it).
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
    source: str | None = None  # "canary" or "replay": which figure this is (or was the worse)

    def to_dict(self) -> dict:
        return {"seconds": _num(self.seconds), "exact": self.exact, "note": self.note, "source": self.source}


def rto_seconds(disaster_at: datetime, first_write_at: datetime | None, detection_delay: Decimal = Decimal(0)) -> Decimal | None:
    """RTO achieved: the measured restore-to-verified-write time plus the declared detection delay;
    None when no write was verified."""
    if first_write_at is None:
        return None
    if detection_delay < 0:
        raise ValueError("a detection delay cannot be negative")
    s = seconds_between(disaster_at, first_write_at)
    if s < 0:
        raise ValueError("the first verified write cannot precede the disaster")
    return s + detection_delay


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
            "canary",
        )
    s = seconds_between(newest_recovered, last_committed)
    if s <= 0:
        return Rpo(Decimal(0), True, "the last canary row committed before the disaster was recovered: nothing lost", "canary")
    return Rpo(s, True, "commit time of the last canary row before the disaster minus that of the newest recovered", "canary")


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


def reported_rpo(canary: Rpo, replay: ReplayCheck) -> Rpo:
    """The RPO a drill reports: the worse (larger) of the canary figure and the replay figure.

    The replay figure is a measurement (exact) when a replay timestamp exists. The result is exact
    when the worse figure is; when a lower bound is the worse, the result is that lower bound, not
    exact. With no figure at all, the canary's own explanation is returned."""
    figures: list[tuple[Decimal, bool, str]] = []
    if canary.seconds is not None:
        figures.append((canary.seconds, canary.exact, "canary"))
    if replay.replay_rpo_seconds is not None:
        figures.append((replay.replay_rpo_seconds, True, "replay"))
    if not figures:
        return canary
    seconds, exact, source = max(figures, key=lambda f: (f[0], f[1]))
    parts = []
    if canary.seconds is not None:
        parts.append(f"canary {canary.seconds}s{'' if canary.exact else ' (at least)'}")
    else:
        parts.append("canary: none")
    parts.append(f"replay {replay.replay_rpo_seconds}s" if replay.replay_rpo_seconds is not None else "replay: none")
    what = "the canary figure" if source == "canary" else "the replay figure (last canary commit before the disaster minus the last replayed commit)"
    note = f"{what} is the worse of the two ({'; '.join(parts)})"
    if not exact:
        note += "; it is a lower bound, so it cannot meet an objective"
    return Rpo(seconds, exact, note, source)


def verdict(achieved: Decimal | None, objective: Decimal | None, *, exact: bool = True) -> str:
    """``met``, ``missed`` or ``unknown`` (nothing measured, no objective, or a lower bound within the
    objective: a lower bound never meets an objective)."""
    if achieved is None or objective is None:
        return "unknown"
    if achieved > objective:
        return "missed"
    return "met" if exact else "unknown"


def overhead(total: Decimal, raw: Decimal) -> Decimal | None:
    """Orchestration overhead as a fraction of the raw restore time: ``(total - raw) / raw``."""
    if raw <= 0:
        return None
    return (total - raw) / raw


def _num(d: Decimal | None) -> float | None:
    return None if d is None else float(d)
