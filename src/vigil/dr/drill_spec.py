"""The ``drills:`` section: DR drills that measure the RTO and RPO actually achieved.

::

    drills:
      - name: quarterly-region-loss
        scenario: region-loss          # restore from the cross-region repository
        target: latest                 # or: time (with target_offset or target_time)
        objectives: {rto: 4h, rpo: 15m, rebuild: 60m}
        phases:
          canary: {interval: 1s, warmup: 30s}
          disaster: {mode: declare, detection_delay: 10m}   # declare | stop | destroy

A drill is a timed checklist: (1) the canary ledger written every ``interval`` on the primary,
(2) the disaster, (3) the restore into a fresh cluster, (4) a verified write, (5) the search index
rebuilt and checked against the database, (6) the report.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from vigil.clock import parse_time
from vigil.errors import UsageError
from vigil.model import Duration, SpecModel
from vigil.units import format_duration

NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

PLAN_RTO = Decimal(4 * 3600)
PLAN_RPO = Decimal(15 * 60)
PLAN_REBUILD = Decimal(60 * 60)


def _ident(v: str) -> str:
    if not IDENT.match(v):
        raise ValueError(f"{v!r} must be a plain SQL table name (letters, digits, '_')")
    return v


class DrillObjectives(SpecModel):
    """What the drill is judged against (the plan's promises by default)."""

    rto: Duration = Field(PLAN_RTO, description="recovery time objective: disaster to the first verified write, plus the declared detection delay (the plan: 4h)")
    rpo: Duration = Field(PLAN_RPO, description="recovery point objective: commit time lost, the worse of the canary and replay figures (the plan: 15m)")
    rebuild: Duration = Field(PLAN_REBUILD, description="search index rebuild objective (the plan: 60m)")


class CanaryPhase(SpecModel):
    table: str = Field("vigil_canary", description="the canary ledger table on the primary (sequence, commit time)")
    interval: Duration = Field(Decimal(1), description="one canary row every interval (default 1s)")
    warmup: Duration = Field(Decimal(15), description="how long the ledger is written before the disaster")

    @field_validator("table")
    @classmethod
    def _t(cls, v: str) -> str:
        return _ident(v)

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: Decimal) -> Decimal:
        if v < Decimal("0.05") or v > 3600:
            raise ValueError("interval must be between 50ms and 1h")
        return v

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, v: Decimal) -> Decimal:
        if v > 86400:
            raise ValueError("warmup must be at most 1d")
        return v


class DisasterPhase(SpecModel):
    mode: Literal["declare", "stop", "destroy"] = Field(
        "declare",
        description="`declare`: the primary is declared lost and left alone; `stop`: stopped at once (immediate), data kept; "
        "`destroy`: stopped and its data directory deleted (throwaway clusters only). In every mode the restore reads a "
        "snapshot of the repository taken at the disaster instant",
    )
    detection_delay: Duration = Field(
        Decimal(0),
        description="time to detect the disaster and decide to restore, as the runbook declares it (e.g. 10m): added to the "
        "measured RTO, which starts at the disaster and ends at the verified write",
    )

    @field_validator("detection_delay")
    @classmethod
    def _delay(cls, v: Decimal) -> Decimal:
        if v < 0 or v > 7 * 86400:
            raise ValueError("detection_delay must be between 0 and 7d")
        return v


class RestorePhase(SpecModel):
    dir: str | None = Field(None, description="an empty directory the fresh cluster is restored into, reachable by the OS user (default: a new temporary directory, removed after the drill)")
    port: int | None = Field(None, ge=1, le=65535, description="port of the restored cluster (default: a free port)")
    timeout: Duration = Field(Decimal(4 * 3600), description="the longest the restore and recovery may take")
    keep: bool = Field(False, description="leave the restored cluster running after the drill (default: stopped and removed)")


class WriteCheckPhase(SpecModel):
    table: str = Field("vigil_drill_write_check", description="table the verified write goes to on the restored cluster")
    timeout: Duration = Field(Decimal(60), description="the longest the write and read-back may take")

    @field_validator("table")
    @classmethod
    def _t(cls, v: str) -> str:
        return _ident(v)


class SearchPhase(SpecModel):
    enabled: bool = Field(True, description="rebuild the search index (`backups.search`) from its snapshot and the outbox")
    snapshot: str | None = Field(None, description="the snapshot directory to restore (default: the newest under backups.search.snapshot_dir)")


class DrillPhases(SpecModel):
    canary: CanaryPhase = Field(default_factory=CanaryPhase, description="phase 1: the canary ledger")
    disaster: DisasterPhase = Field(default_factory=DisasterPhase, description="phase 2: the disaster")
    restore: RestorePhase = Field(default_factory=RestorePhase, description="phase 3: restore into a fresh cluster")
    write_check: WriteCheckPhase = Field(default_factory=WriteCheckPhase, description="phase 4: verified write health")
    search: SearchPhase = Field(default_factory=SearchPhase, description="phase 5: search index rebuild")


class DrillSpec(SpecModel):
    """One DR drill."""

    name: str = Field(description="unique name, lowercase letters, digits, '-', '_' and '.'")
    description: str | None = Field(None, description="free text shown in the report")
    scenario: Literal["primary-loss", "region-loss"] = Field(
        "primary-loss", description="`primary-loss` restores from repo 1; `region-loss` from the cross-region repository, with the others out of reach"
    )
    repo: int | None = Field(None, ge=1, le=4, description="restore from this repository (default: 1, or the cross-region one for region-loss)")
    target: Literal["latest", "time"] = Field("latest", description="restore to the end of the archived WAL, or to a point in time")
    target_time: str | None = Field(None, description="target: time: an RFC 3339 time to restore to")
    target_offset: Duration | None = Field(
        None,
        description="target: time: restore to the disaster time minus this (default 60s); must be covered by archived WAL or recovery stops short and the drill fails",
    )
    objectives: DrillObjectives = Field(default_factory=DrillObjectives, description="RTO, RPO and rebuild objectives")
    phases: DrillPhases = Field(default_factory=DrillPhases, description="per-phase options")
    report_dir: str = Field(".vigil/drills", description="where reports and evidence bundles go (relative to the spec)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"drill name {v!r} must be lowercase letters, digits, '-', '_' and '.' (at most 128)")
        return v

    @field_validator("target_time")
    @classmethod
    def _tt(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parse_time(v)
        except UsageError as e:
            raise ValueError(e.message) from None
        return v

    @model_validator(mode="after")
    def _target(self) -> "DrillSpec":
        if self.target == "latest" and (self.target_time is not None or self.target_offset is not None):
            raise ValueError("target_time and target_offset go with `target: time`")
        if self.target_time is not None and self.target_offset is not None:
            raise ValueError("give target_time or target_offset, not both")
        return self

    def offset(self) -> Decimal:
        return self.target_offset if self.target_offset is not None else Decimal(60)

    def describe_target(self) -> str:
        if self.target == "latest":
            return "latest (end of archived WAL)"
        if self.target_time is not None:
            return f"time {self.target_time}"
        return f"time: disaster - {format_duration(self.offset())}"


def cross_check(spec: object) -> list[tuple[tuple, str]]:
    """Problems that need the whole spec (for ``vigil.spec._cross_check``): ``(spec path, message)``.

    Drill names are unique; a drill needs ``backups.postgres``; its ``repo`` exists; a region-loss
    drill needs a cross-region repository."""
    drills = getattr(spec, "drills", None) or []
    backups = getattr(spec, "backups", None)
    pg = getattr(backups, "postgres", None) if backups is not None else None
    out: list[tuple[tuple, str]] = []
    seen: dict[str, int] = {}
    for i, d in enumerate(drills):
        if d.name in seen:
            out.append((("drills", i, "name"), f"duplicate drill name {d.name!r} (first at drills[{seen[d.name]}])"))
        else:
            seen[d.name] = i
        if pg is None:
            out.append((("drills", i), "a drill restores a PostgreSQL backup: declare backups.postgres"))
            continue
        if d.repo is not None and d.repo > len(pg.repos):
            out.append((("drills", i, "repo"), f"repo {d.repo} does not exist: backups.postgres.repos has {len(pg.repos)}"))
        if d.scenario == "region-loss" and d.repo is None and not pg.cross_region_repos():
            out.append((("drills", i, "scenario"),
                        "a region-loss drill restores from a cross-region repository, and backups.postgres.repos has none"))
    return out
