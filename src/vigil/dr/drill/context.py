"""What a drill acts on: the drill, the primary and the repository it restores from, resolved from
the spec before anything runs (a wrong name or a refused mode is an error here, not half a drill)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vigil.clock import Clock
from vigil.dr.drill_spec import DrillSpec
from vigil.dr.postgres.pgbackrest import PgBackRest, PgPaths, connect_primary, primary_conninfo
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.errors import NotFoundError, UsageError

__all__ = ["DrillContext", "connect", "drill_repo", "prepare", "primary_conninfo"]


def connect(pg: PostgresBackupSpec, paths: PgPaths, db: str | None = None) -> Any:
    """An autocommit connection to the primary (errors name the redacted conninfo: :mod:`vigil.pgconn`)."""
    return connect_primary(pg, paths, db)


@dataclass
class DrillContext:
    """Everything a drill run needs, resolved from the spec."""

    drill: DrillSpec
    pg: PostgresBackupSpec
    paths: PgPaths
    pgbackrest: PgBackRest
    base_dir: Path
    clock: Clock
    out_dir: Path
    search: Any = None  # backups.search (vigil.search.spec.SearchBackupSpec) or None
    store: Any = None  # vigil.store.Store or None
    spec: Any = None  # the whole Spec, for the gap register
    spec_sha256: str | None = None
    allow_destroy: bool = False
    progress: Callable[[str], None] = lambda _m: None
    sleep: Callable[[float], None] = time.sleep


def prepare(loaded: Any, name: str, *, clock: Clock, store: Any = None, out_dir: str | Path | None = None,
            allow_destroy: bool = False, progress: Callable[[str], None] | None = None) -> DrillContext:
    """Resolve drill ``name`` of a loaded spec. Raises UsageError / NotFoundError before anything runs."""
    spec = loaded.spec
    drill = next((d for d in spec.drills if d.name == name), None)
    if drill is None:
        known = ", ".join(d.name for d in spec.drills) or "none"
        raise NotFoundError(f"no drill named {name!r} in the spec (drills: {known})", hint="declare it under drills:, or try `vigil drill demo`")
    pg = spec.backups.postgres if spec.backups is not None else None
    if pg is None:
        raise UsageError("a drill restores a PostgreSQL backup, and the spec has no backups.postgres",
                         hint="declare backups.postgres (stanza, data_dir, repos)")
    base = loaded.path.parent if loaded.path is not None else Path.cwd()
    paths = PgPaths.from_spec(pg, base)
    repo = drill_repo(drill, pg)
    if drill.phases.disaster.mode == "destroy" and not allow_destroy:
        raise UsageError(
            f"drill {name!r} destroys the primary's data directory ({paths.data_dir}); vigil does that only when told twice",
            hint="pass --allow-destroy (meant for throwaway clusters), or use disaster mode declare or stop",
        )
    if not 1 <= repo <= len(pg.repos):
        raise UsageError(f"drill {name!r} restores from repo {repo}, but backups.postgres.repos has {len(pg.repos)}",
                         hint="fix the drill's repo")
    out = Path(out_dir) if out_dir is not None else (base / drill.report_dir)
    return DrillContext(
        drill=drill, pg=pg, paths=paths, pgbackrest=PgBackRest(paths), base_dir=base, clock=clock, out_dir=out,
        search=getattr(spec.backups, "search", None), store=store, spec=spec, spec_sha256=getattr(loaded, "sha256", None),
        allow_destroy=allow_destroy, progress=progress or (lambda _m: None),
    )


def drill_repo(drill: DrillSpec, pg: PostgresBackupSpec) -> int:
    if drill.repo is not None:
        return drill.repo
    if drill.scenario == "region-loss":
        cross = pg.cross_region_repos()
        if not cross:
            raise UsageError(
                f"drill {drill.name!r} simulates a region loss but no repository is a cross-region copy",
                hint="add a second repository (role: cross-region) to backups.postgres.repos, or set the drill's repo",
            )
        return cross[0]
    return 1
