"""A DR drill: a timed checklist of phases, each recorded with start, end and evidence.

1. **canary** - a heartbeat table on the primary written every ``interval`` (sequence, commit time),
   after a preflight: the chosen repository must be readable and hold a backup (else the primary is
   left alone);
2. **disaster** - the disaster instant; a snapshot of the chosen repository taken at that instant
   (hard links: pgBackRest never rewrites a repository file), which is all the restore may read;
   then the primary is declared lost, stopped at once, or stopped and its data directory destroyed
   (``phases.disaster.mode``). In ``declare`` mode the primary keeps running and archiving, and none
   of that reaches the restore;
3. **restore** - ``pgbackrest restore`` from the snapshot (the cross-region repository for a region
   loss; the restore's configuration names *only* that repository) to the latest point or a target
   time, into a fresh cluster started with ``archive_mode=off``; then the checks of the archive:
   every segment from the restored backup's first to the last one archived before the disaster is
   present, recovery replayed up to that last segment (else: which segment it stopped at), and no
   ``archive-get`` failed (pgBackRest's ``ERROR: [NNN]`` lines in the restored server's log);
4. **write_check** - an insert and its read-back through the recovered database; its time is the
   end of the RTO. Then the newest canary row recovered gives the RPO;
5. **search** - the search index rebuilt from its snapshot plus the outbox re-seed, its count and
   watermark checked against the recovered database (:mod:`vigil.search`);
6. **report** - Markdown, HTML and JSON with the gap register, beside an evidence bundle with the
   SHA-256 of every file.

The RTO runs from the disaster instant to the verified write, plus the detection and decision delay
the drill declares (``phases.disaster.detection_delay``; nothing detects a declared disaster). The
RPO reported is the worse of the canary figure and the replay figure; a lower bound never meets an
objective. A critical gap (an archive-get failure, a recovery that ends before the last archived
segment, a repository that cannot be read) fails the drill.

A phase that fails is recorded with its error; the phases that depend on it are skipped and the
report is still written. The run and every phase are written to the state store before they start.

Modules: :mod:`.context` (what the drill acts on, from the spec), :mod:`.canary` (the ledger),
:mod:`.snapshot` (the repository at the disaster instant), :mod:`.run` (the phases: I/O) and
:mod:`.outcome` (pure: the facts judged into the report).

Time comes from the injected clock (RTO is measured on it); the only real waits are the canary's
interval and warmup (the ledger must really run) and PostgreSQL's own recovery, each bounded.
"""

from vigil.dr.drill.canary import CanaryWriter
from vigil.dr.drill.context import DrillContext, connect, drill_repo, prepare, primary_conninfo
from vigil.dr.drill.outcome import PHASES, DrillFacts, Phase, Skip, conclude
from vigil.dr.drill.run import Drill, run_drill

__all__ = ["PHASES", "CanaryWriter", "Drill", "DrillContext", "DrillFacts", "Phase", "Skip", "conclude", "connect", "drill_repo",
           "prepare", "primary_conninfo", "run_drill"]
