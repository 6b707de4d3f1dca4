"""State tables of canary analysis, on the shared metadata; migration 0003 creates them.

- ``canary_runs``: one row per run of the deploy loop, its plan and where it is. ``active_key`` is
  the service while the run is unfinished and NULL after: its unique constraint allows one
  unfinished run per service, on SQLite and PostgreSQL alike. ``owner`` and ``lease_until`` (epoch
  seconds) say which process drives the run; another takes over only once the lease has expired.
- ``canary_events``: everything a run did, append-only except ``status``: an action (set_weight,
  rollback, promote) is written as ``started`` before its hook is called and becomes ``done`` or
  ``failed`` after, so a crash in between leaves a record that the next invocation finds.
- ``canary_verdicts``: every verdict of the judge, from ``vigil canary judge`` or a run's step.
"""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from vigil.store.schema import metadata

canary_runs = Table(
    "canary_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(128), nullable=True),
    Column("active_key", String(128), nullable=True),
    Column("baseline", Text, nullable=False),  # label matchers, e.g. version="v1"
    Column("canary", Text, nullable=False),
    Column("state", String(24), nullable=False),  # running | paused | promoted | rolled_back | rollback_failed | promote_failed
    Column("step_index", Integer, nullable=False),
    Column("weight", Integer, nullable=False),  # the last weight a hook confirmed
    Column("step_started", BigInteger, nullable=True),  # epoch seconds the current step's weight was set
    Column("extensions", Integer, nullable=False),  # extra intervals used at the current step
    Column("started_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("finished_at", String(40), nullable=True),
    Column("owner", String(200), nullable=True),
    Column("lease_until", BigInteger, nullable=True),  # epoch seconds
    Column("spec_sha256", String(64), nullable=False),
    Column("plan", Text, nullable=False),  # JSON: steps, interval, policies, hooks summary, at start
    Column("outcome", Text, nullable=True),  # the final message
    UniqueConstraint("active_key", name="uq_canary_runs_active_key"),
    Index("ix_canary_runs_service", "service", "id"),
)

canary_events = Table(
    "canary_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("canary_runs.id", name="fk_canary_events_run"), nullable=False),
    Column("at", String(40), nullable=False),
    Column("kind", String(32), nullable=False),  # start | set_weight | judge | extend | pause | resume | approve | recover | rollback | promote
    Column("status", String(16), nullable=False),  # started | done | failed | interrupted
    Column("step_index", Integer, nullable=True),
    Column("weight", Integer, nullable=True),
    Column("detail", Text, nullable=False),  # JSON
    Index("ix_canary_events_run", "run_id", "id"),
)

canary_verdicts = Table(
    "canary_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("judged_at", String(40), nullable=False),  # wall clock of the judgement
    Column("service", String(128), nullable=True),
    Column("run_id", Integer, nullable=True),
    Column("baseline", Text, nullable=False),
    Column("canary", Text, nullable=False),
    Column("window_from", String(40), nullable=False),
    Column("window_to", String(40), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("score", Text, nullable=True),  # decimal text, exact; NULL when nothing could be scored
    Column("spec_sha256", String(64), nullable=False),
    Column("detail", Text, nullable=False),  # the whole verdict as JSON
    Index("ix_canary_verdicts_service", "service", "id"),
)
