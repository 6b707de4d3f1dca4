"""Backup health as metrics: backup age and archive lag as gauges, and the problems they show.

Pure: :func:`status_metrics` and :func:`status_problems` turn pgBackRest's info and
``pg_stat_archiver`` into gauges and findings; :func:`push` hands the gauges to the telemetry
store through :class:`vigil.telemetry.push.Ingestor`, so SLOs and alerts can watch them, e.g. a
freshness SLO on ``pgbackrest_backup_age_seconds{repo="2",type="any"}`` with a 36h threshold.

Gauges (labels ``stanza``, and ``repo``/``type`` where shown):

* ``pgbackrest_backup_age_seconds{repo,type}``: now minus the stop time of the newest good backup
  of that type (``full``, ``diff``, ``incr``, or ``any``)
* ``pgbackrest_backup_count{repo}``: good backups in the repository
* ``pgbackrest_repo_ok{repo}``: 1 when pgBackRest reports the repository ``ok``, else 0
* ``pg_archive_lag_seconds``: age of the last archived segment while newer WAL exists, else 0
* ``pg_archive_pending_segments``: complete segments not archived yet
* ``pg_archive_failed_count``: ``pg_stat_archiver.failed_count``
* ``pg_archive_failing``: 1 when the archiver's last attempt failed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from vigil.dr.postgres.archive import ArchiverStatus, archive_lag, failing, pending_segments
from vigil.dr.postgres.pgbackrest import BACKUP_TYPES, StanzaInfo
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.dr.rpo import seconds_between
from vigil.units import format_duration


@dataclass(frozen=True)
class Gauge:
    metric: str
    labels: dict[str, str]
    value: float

    def to_dict(self) -> dict:
        return {"metric": self.metric, "labels": dict(self.labels), "value": self.value}


def status_metrics(spec: PostgresBackupSpec, info: StanzaInfo | None, archiver: ArchiverStatus | None, now: datetime) -> list[Gauge]:
    out: list[Gauge] = []
    st = spec.stanza
    if info is not None:
        status_by_repo = {r.key: r for r in info.repos}
        for key in range(1, len(spec.repos) + 1):
            labels = {"stanza": st, "repo": str(key)}
            r = status_by_repo.get(key)
            out.append(Gauge("pgbackrest_repo_ok", labels, 1.0 if r is not None and r.code == 0 else 0.0))
            good = [b for b in info.backups_in(key) if not b.error]
            out.append(Gauge("pgbackrest_backup_count", labels, float(len(good))))
            for t in (*BACKUP_TYPES, None):
                b = info.newest(key, t)
                if b is not None:
                    age = max(Decimal(0), seconds_between(b.stop, now))
                    out.append(Gauge("pgbackrest_backup_age_seconds", {**labels, "type": t or "any"}, float(age)))
    if archiver is not None:
        labels = {"stanza": st}
        lag = archive_lag(archiver, now)
        if lag is not None:
            out.append(Gauge("pg_archive_lag_seconds", labels, float(lag)))
        pend = pending_segments(archiver)
        if pend is not None:
            out.append(Gauge("pg_archive_pending_segments", labels, float(pend)))
        out.append(Gauge("pg_archive_failed_count", labels, float(archiver.failed_count)))
        out.append(Gauge("pg_archive_failing", labels, 1.0 if failing(archiver) else 0.0))
    return out


def status_problems(spec: PostgresBackupSpec, info: StanzaInfo | None, archiver: ArchiverStatus | None, now: datetime) -> list[str]:
    """What is wrong right now, each a sentence naming the number and the limit."""
    problems: list[str] = []
    if info is not None:
        if info.status_code not in (0, 4):  # 4: "different across repos" is judged per repository below
            problems.append(f"pgBackRest reports the stanza {info.name!r}: {info.status_message} (code {info.status_code})")
        limit = spec.backup_interval * Decimal("1.5")
        by_key = {r.key: r for r in info.repos}
        for key in range(1, len(spec.repos) + 1):
            r = by_key.get(key)
            if r is not None and r.code not in (0,):
                problems.append(f"repo{key}: {r.message}")
            b = info.newest(key)
            if b is None:
                if r is None or r.code == 0:
                    problems.append(f"repo{key}: no backup")
                continue
            age = seconds_between(b.stop, now)
            if age > limit:
                problems.append(
                    f"repo{key}: the newest backup ({b.label}) is {format_duration(age.quantize(Decimal(1)))} old; "
                    f"backups run every {format_duration(spec.backup_interval)}, so the limit is {format_duration(limit)}"
                )
    if archiver is not None:
        if archiver.archive_mode not in ("on", "always"):
            problems.append(f"archive_mode is {archiver.archive_mode}: WAL is not archived, point-in-time recovery is impossible")
        if failing(archiver):
            problems.append(
                f"WAL archiving is failing: {archiver.failed_count} failure(s), the last for {archiver.last_failed_wal}"
            )
        lag = archive_lag(archiver, now)
        budget = Decimal(max(archiver.archive_timeout, 60)) * 2
        if lag is not None and lag > budget:
            problems.append(f"archive lag is {format_duration(lag.quantize(Decimal(1)))} (more than {format_duration(budget)})")
    return problems


def push_lines(gauges: list[Gauge], now: datetime) -> list[tuple[int, dict]]:
    ts = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [(i, {"ts": ts, "metric": g.metric, "labels": g.labels, "set": g.value}) for i, g in enumerate(gauges, 1)]


def push(ingestor: Any, gauges: list[Gauge], now: datetime) -> dict:
    """Store the gauges through the telemetry ingestor; returns the push result's counts."""
    r = ingestor.push_lines(push_lines(gauges, now), now)
    return {"accepted": r.accepted, "rejected": r.rejected_count, "errors": [x.to_dict() for x in r.rejected]}
