"""``vigil migrate verify``: the migrations the TARGET has not applied, rehearsed on a clone of Stage.

The target is the database ``apply`` will migrate (production): verify reads its ledger (only
reads: ``--target-url``, the variable ``migrations.target.url_env`` names, or ``--target-ledger``,
a saved ``vigil migrate status --json`` of it) and rehearses exactly what it lacks. Stage may be
ahead of the target (the release already went to Stage) or behind it: the clone of Stage is first
rolled to the target's version (the down migrations of what Stage has and the target has not,
newest first; the up migrations of what the target has and Stage has not), so the rehearsal
starts from the target's schema with Stage's data. Nothing runs on Stage itself but reads (the
catalogs, the ledger, a data sample, ``pg_stat_statements``); the scratch database is dropped at
the end even when a check fails (``keep`` leaves it for a post-mortem).

``plan``
    the target's ledger read against the files: what it has not applied; failed when an applied
    migration was edited since or a pending one is older than an applied one; INCONCLUSIVE when
    the target's ledger was not given (Stage's ledger says nothing about what production lacks).
``clone``
    a scratch database with Stage's schema, ledger, sequences, privileges and, by default, up to
    :data:`DEFAULT_SAMPLE_ROWS` rows per table chosen so that every foreign key holds
    (:mod:`vigil.deploy.migrations.clone`), then rolled to the target's version; inconclusive when
    it cannot be (a migration Stage has and the target has not, without a working down file).
``apply``
    the pending migrations applied by the real runner (ledger, transactions, the spec's
    ``lock_timeout`` and ``statement_timeout``) on the sampled rows: ``ADD COLUMN ... NOT NULL``
    fails here as it would on production's rows; a failure names the file, line and SQL error.
    Inconclusive with ``sample_rows=0``: an empty clone cannot show what data would refuse.
``backward-compat``
    the previous release's query suite (the app running now) on the old and the new schema, every
    statement EXECUTED (``$n`` parameters with values sampled from the clone,
    :mod:`vigil.deploy.migrations.suite`) in a transaction that is rolled back. Failed when a
    statement that works on the old schema fails on the new one; inconclusive when a statement
    already fails on the old schema (it proves nothing), or when there is no suite and a pending
    migration is not expand-only.
``forward-compat``
    for expand-only pending migrations (the lint classifier), the new release's suite on the new
    schema and then on the old one (restored by the down migrations), compared the same way.
    Skipped when a pending migration contracts (drops, renames, narrows).
``down``
    the down migrations applied newest first; the schema (comments and privileges included) must
    then equal the clone's schema before the migrations
    (:mod:`vigil.deploy.migrations.schema_dump`): every object that differs is named. When the
    clone was rolled back from Stage, the up migrations must also bring back Stage's schema.

Each check is ``ok``, ``failed``, ``inconclusive`` or ``skipped`` with why. The verdict is
``fail`` when a check failed, ``inconclusive`` when one was inconclusive or when no check at all
came out ``ok`` (a verdict of nothing is never a pass), ``pass`` otherwise; only ``pass`` lets
``vigil gate deploy --release`` through. The report (``to_dict``) carries the pending migrations'
checksums so a deploy gate can tell whether a verdict is about the migrations it is about to
apply (:func:`verdict_covers`).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from vigil import exitcodes
from vigil.deploy.migrations import runner, schema_dump
from vigil.deploy.migrations.clone import (  # noqa: F401  (re-exported: the clone's public names)
    CloneError,
    CloneInfo,
    clone_database,
    copy_privileges,
    runner_url,
    sample_order,
)
from vigil.deploy.migrations.files import Migration
from vigil.deploy.migrations.plan import LedgerRow, migration_states
from vigil.deploy.migrations.suite import (  # noqa: F401  (re-exported: the suites' public names)
    DEFAULT_QUERY_TIMEOUT_MS,
    DEFAULT_STAT_STATEMENTS_LIMIT,
    Comparison,
    QueryOutcome,
    SuiteQuery,
    SuiteRun,
    capture_pg_stat_statements,
    compare,
    keep_captured,
    load_suite,
    parameter_uses,
    run_reference,
    run_under_test,
)
from vigil.errors import UsageError

DEFAULT_PG_BIN = "/usr/lib/postgresql/15/bin"
DEFAULT_SAMPLE_ROWS = 1000
"""Rows per table copied into the clone unless told otherwise: enough to meet the data a change fails on."""
VERDICT_FORMAT = 2
"""2: verdicts can be ``inconclusive`` and name the target; a format-1 verdict file is refused."""

Event = Callable[[str, dict], None]


# -- expand / contract ----------------------------------------------------------------------------


def classify_expand_only(migrations: Sequence[Migration]) -> tuple[bool, list[str], str]:
    """(expand-only?, why not, which classifier): every pending migration must be ``expand`` for the
    lint module's classifier (:func:`vigil.deploy.migrations.lint.lint_migrations`); ``contract``,
    ``data-dependent`` and ``unknown`` all count as not expand-only (conservative: the forward check
    is then skipped, never wrongly passed)."""
    from vigil.deploy.migrations.lint import lint_migrations

    report = lint_migrations(migrations, display=lambda p: Path(p).name)
    reasons = [f"{c.file}: {c.cls}: {c.why}" for c in report.migrations if c.cls != "expand"]
    return (not reasons, reasons, "lint")


# -- the target's ledger --------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetLedger:
    """The ledger of the database ``apply`` will migrate, and where it was read."""

    source: str  # a redacted URL or a file path
    rows: list[LedgerRow]
    exists: bool = True


def read_target(url: str, ledger_table: str) -> TargetLedger:
    """Read the target's ledger (read-only: a read-only session, SELECTs only).

    Raises :class:`~vigil.deploy.migrations.runner.MigrationDbError` (exit 3) when it cannot."""
    import psycopg

    conn = runner.connect(url, application_name="vigil migrate verify", what="the target database",
                          hint="check --target-url (or the environment variable in migrations.target.url_env); verify only "
                          "reads the target's ledger")  # fmt: skip
    try:
        conn.execute("SET default_transaction_read_only = on")
        ledger = runner.Ledger(conn, ledger_table)
        exists = ledger.exists()
        return TargetLedger(runner.redact(url), ledger.rows() if exists else [], exists)
    except psycopg.Error as e:
        raise runner.MigrationDbError(f"cannot read the migration ledger of the target {runner.redact(url)}: {runner.first_line(e)}",
                                      hint=runner.DB_HINT) from None
    finally:
        conn.close()


def read_target_ledger_file(path: str | Path) -> TargetLedger:
    """A target's ledger saved as ``vigil migrate status --json`` (for a pipeline that cannot reach
    the target from where verify runs). :class:`UsageError` (exit 2) when it is not one."""
    p = Path(path)
    hint = "save it on a host that reaches the target: `vigil migrate status --json > target-ledger.json`"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"{p}: target ledger file not found", hint=hint) from None
    except (OSError, ValueError) as e:
        raise UsageError(f"{p}: not a readable target ledger: {e}", hint=hint) from None
    if not isinstance(data, dict) or not isinstance(data.get("migrations"), list) or "ledger_exists" not in data:
        raise UsageError(f"{p}: not the JSON of `vigil migrate status --json`", hint=hint)
    rows: list[LedgerRow] = []
    names = set(LedgerRow.__dataclass_fields__)
    for i, m in enumerate(data["migrations"]):
        a = m.get("last_attempt") if isinstance(m, dict) else None
        if a is None:
            continue
        try:
            kw = {k: v for k, v in a.items() if k in names}
            for k in ("started_at", "finished_at"):
                kw[k] = datetime.fromisoformat(kw[k]) if kw.get(k) else None
            rows.append(LedgerRow(**kw))
        except (TypeError, ValueError, AttributeError) as e:
            raise UsageError(f"{p}: migrations[{i}].last_attempt is not a ledger row: {e}", hint=hint) from None
    return TargetLedger(str(p), rows, bool(data["ledger_exists"]))


# -- the report -------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    status: str  # ok | failed | inconclusive | skipped
    summary: str
    details: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "summary": self.summary, "details": list(self.details), "data": self.data}


CHECK_NAMES = ("plan", "clone", "apply", "backward-compat", "forward-compat", "down")


def verdict_of(statuses: Iterable[str]) -> str:
    """``fail`` if a check failed; ``inconclusive`` if one was, or if none came out ``ok`` (nothing
    was checked); ``pass`` otherwise. Pure."""
    st = list(statuses)
    if "failed" in st:
        return "fail"
    if "inconclusive" in st or "ok" not in st:
        return "inconclusive"
    return "pass"


@dataclass
class VerifyReport:
    stage: str
    scratch_database: str | None = None
    release: str | None = None
    generated_at: datetime | None = None
    target: str | None = None
    pending: list[Migration] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    kept: bool = False
    sample_rows: int = 0

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def add(self, name: str, status: str, summary: str, details: Iterable[str] = (), **data: Any) -> Check:
        c = Check(name, status, summary, list(details), data)
        self.checks.append(c)
        return c

    def skip_rest(self, why: str) -> None:
        for n in CHECK_NAMES:
            if self.check(n) is None:
                self.add(n, "skipped", why)

    @property
    def verdict(self) -> str:
        return verdict_of(c.status for c in self.checks)

    @property
    def exit_code(self) -> int:
        return exitcodes.OK if self.verdict == "pass" else exitcodes.NO

    def to_dict(self) -> dict:
        order = {n: i for i, n in enumerate(CHECK_NAMES)}
        return {
            "format": VERDICT_FORMAT,
            "kind": "vigil-migrate-verify",
            "verdict": self.verdict,
            "stage": self.stage,
            "target": self.target,
            "release": self.release,
            "generated_at": self.generated_at.isoformat() if self.generated_at else None,
            "scratch_database": self.scratch_database,
            "scratch_kept": self.kept,
            "sample_rows": self.sample_rows,
            "pending": [{"version": m.version, "id": m.id, "checksum": runner.checksum(m.up_sql)} for m in self.pending],
            "checks": [c.to_dict() for c in sorted(self.checks, key=lambda c: order.get(c.name, 99))],
        }


def verdict_covers(verdict: dict, migrations: Sequence[Migration], pending_ids: Sequence[str] | None = None) -> tuple[bool, str]:
    """Whether a saved verdict (``VerifyReport.to_dict()``) passed for exactly these migration files:
    every migration it verified has the same checksum now, and (when given) the pending set is the same.
    For a deploy gate: ``ok, why = verdict_covers(json.load(f), load_migrations(dir))``. Pure."""
    if verdict.get("kind") != "vigil-migrate-verify" or verdict.get("format") != VERDICT_FORMAT:
        return False, f"not a vigil migrate verify verdict (format {VERDICT_FORMAT})"
    if verdict.get("verdict") != "pass":
        word = "failed" if verdict.get("verdict") == "fail" else "was inconclusive"
        bad = [c["name"] for c in verdict.get("checks", []) if c.get("status") in ("failed", "inconclusive")]
        return False, f"verify {word} ({', '.join(bad) or 'no check came out ok'})"
    now = {m.id: runner.checksum(m.up_sql) for m in migrations}
    for p in verdict.get("pending", []):
        if now.get(p["id"]) != p["checksum"]:
            return False, f"{p['id']} changed (or is gone) since it was verified"
    if pending_ids is not None and sorted(pending_ids) != sorted(p["id"] for p in verdict.get("pending", [])):
        return False, "the pending migrations differ from the verified ones"
    return True, "verified"


def read_verdict(path: str | Path) -> dict:
    """A verdict file written by :func:`write_verdict` (``verify --out``); :class:`UsageError` when unreadable."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"{p}: no migration verdict here", hint="run `vigil migrate verify --out PATH` first") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"{p}: not a readable verdict: {e}", hint="run `vigil migrate verify --out PATH` again") from None
    if not isinstance(data, dict) or data.get("kind") != "vigil-migrate-verify" or data.get("format") != VERDICT_FORMAT:
        raise UsageError(f"{p}: not a vigil migrate verify verdict (format {VERDICT_FORMAT})",
                         hint="run `vigil migrate verify --out PATH` again with this vigil")
    return data


def write_verdict(report: VerifyReport, path: str | Path) -> None:
    """Write the verdict JSON atomically (a temp file renamed over ``path``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    os.replace(tmp, p)


# -- the rehearsal ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyOptions:
    ledger_table: str
    lock_timeout_ms: int | None = 5000
    statement_timeout_ms: int | None = 900_000
    sample_rows: int = DEFAULT_SAMPLE_ROWS
    previous: Sequence[SuiteQuery] | None = None
    next: Sequence[SuiteQuery] | None = None
    from_pg_stat_statements: bool = False
    stat_statements_limit: int = DEFAULT_STAT_STATEMENTS_LIMIT
    query_timeout_ms: int = DEFAULT_QUERY_TIMEOUT_MS
    pg_bin: str = DEFAULT_PG_BIN
    keep: bool = False
    release: str | None = None
    actor: str | None = None
    target_url: str | None = None
    """The database ``apply`` will migrate; its ledger decides what is pending (only read)."""
    target_ledger: TargetLedger | None = None
    """The target's ledger already read (``--target-ledger``); wins over ``target_url``."""


def _suite_details(suite: Sequence[SuiteQuery], idx: Iterable[int], outcomes: Sequence[QueryOutcome], prefix: str) -> list[str]:
    out = []
    for i in idx:
        o = outcomes[i]
        text = " ".join(suite[i].text.split())
        text = text if len(text) <= 160 else text[:157] + "..."
        params = f" [with {'; '.join(o.parameters)}]" if o.parameters else ""
        out.append(f"{prefix}{suite[i].source}: {text} -> {o.sqlstate or ''} {o.message}{params}".replace("  ", " "))
    return out


def _suite_check(report: VerifyReport, name: str, suite: Sequence[SuiteQuery], reference: Sequence[QueryOutcome],
                 under_test: Sequence[QueryOutcome], *, ref_label: str, test_label: str) -> None:
    c = compare(reference, under_test)
    details = _suite_details(suite, c.regressions, under_test, f"works on the {ref_label} schema, fails on the {test_label}: ")
    details += _suite_details(suite, c.unverified, reference,
                              f"fails on the {ref_label} schema already, so it proves nothing (fix the statement or its data): ")
    with_params = sum(1 for o in reference if o.mode == "executed-with-parameters")
    data = {"statements": len(suite), "ok": len(c.ok), "regressions": len(c.regressions), "unverified": len(c.unverified),
            "with_sampled_parameters": with_params,
            "results": [{"source": q.source, ref_label: a.to_dict(), test_label: b.to_dict()} for q, a, b in zip(suite, reference, under_test)]}
    how = f" ({with_params} run with sampled $n values)" if with_params else ""
    if c.regressions:
        report.add(name, "failed", f"{len(c.regressions)} of {len(suite)} statements work on the {ref_label} schema but fail on the "
                   f"{test_label}{how}", details, **data)
    elif c.unverified:
        report.add(name, "inconclusive", f"{len(c.unverified)} of {len(suite)} statements fail on the {ref_label} schema already, "
                   f"so they say nothing about the {test_label} one; {len(c.ok)} work on both{how}", details, **data)
    else:
        report.add(name, "ok", f"{len(c.ok)} of {len(suite)} statements work on both schemas{how}", details, **data)


def verify(stage_url: str, migrations: Sequence[Migration], opts: VerifyOptions, *, on_event: Event | None = None,
           generated_at: datetime | None = None, classify: Callable[[Sequence[Migration]], tuple[bool, list[str], str]] = classify_expand_only,
           scratch_name: str | None = None) -> VerifyReport:
    """Rehearse what the target has not applied on a clone of Stage; one :class:`Check` per step.

    Raises :class:`~vigil.deploy.migrations.runner.MigrationDbError` (exit 3) when Stage or the
    target cannot be reached; every failure after that is a check in the report."""
    import psycopg
    from psycopg import sql

    def event(kind: str, **data: Any) -> None:
        if on_event:
            on_event(kind, data)

    report = VerifyReport(runner.redact(stage_url), release=opts.release, generated_at=generated_at, sample_rows=opts.sample_rows)
    target = opts.target_ledger or (read_target(opts.target_url, opts.ledger_table) if opts.target_url else None)
    report.target = target.source if target else None
    src = runner.connect(stage_url, application_name="vigil migrate verify", what="the Stage database",
                         hint="check the Stage URL (--stage-url or the environment variable in migrations.stage.url_env)")
    scratch = None
    try:
        try:
            stage_rows = runner.Ledger(src, opts.ledger_table).rows()
        except psycopg.Error as e:
            raise runner.MigrationDbError(f"cannot read the ledger on Stage: {runner.first_line(e)}", hint=runner.DB_HINT) from None
        plan = runner.make_plan(migrations, target.rows if target else stage_rows, retry_failed=True)
        report.pending = list(plan.to_run)
        where = f"the target {target.source}" if target else "Stage"
        if plan.problems:
            report.add("plan", "failed", f"the ledger of {where} and the migration files disagree",
                       [p.message + f" ({p.hint})" for p in plan.problems], problems=[p.to_dict() for p in plan.problems])
            report.skip_rest("the plan failed")
            return report
        ids = ", ".join(m.id for m in plan.to_run)
        retried = [f"failed on {where} before, retried here: {s.id}" for s in plan.states if s.state in ("failed", "interrupted")]
        if target is None:
            plan_check = report.add("plan", "inconclusive",
                       "the target's ledger was not read (--target-url, the variable in migrations.target.url_env, or "
                       "--target-ledger): Stage's ledger does not say what production lacks"
                       + (f"; rehearsing what Stage lacks: {ids}" if plan.to_run else "; Stage lacks nothing"), retried,
                       reference="stage")  # fmt: skip
            if not plan.to_run:
                report.skip_rest("nothing is pending on Stage, and the target's ledger was not read")
                return report
        elif not plan.to_run:
            note = [] if target.exists else [f"{target.source} has no ledger table"]
            report.add("plan", "ok", f"nothing pending: the target {target.source} has applied every migration, so apply has nothing "
                       "to do there", note, reference="target")
            report.skip_rest("nothing is pending on the target")
            return report
        else:
            plan_check = report.add("plan", "ok", f"{len(plan.to_run)} pending on the target {target.source}: {ids}",
                       retried + ([] if target.exists else [f"{target.source} has no ledger table yet: every migration is pending"]),
                       reference="target")
        event("check", name="plan", status=plan_check.status)

        previous = list(opts.previous) if opts.previous is not None else None
        if opts.from_pg_stat_statements:
            previous = (previous or []) + capture_pg_stat_statements(src, ledger_table=opts.ledger_table, limit=opts.stat_statements_limit)

        scratch = scratch_name or f"vigil_verify_{uuid.uuid4().hex[:12]}"
        report.scratch_database = scratch
        event("clone", database=scratch, sample_rows=opts.sample_rows)
        try:
            info = clone_database(src, stage_url, scratch, ledger_table=opts.ledger_table, sample_rows=opts.sample_rows, pg_bin=opts.pg_bin)
        except CloneError as e:
            report.add("clone", "failed", str(e), ["the Stage role needs CREATEDB, and --pg-bin must hold pg_dump and psql "
                                                   "of at least Stage's major version"])
            report.skip_rest("the clone failed")
            return report
        conn = runner.connect(runner_url(stage_url, scratch), application_name="vigil migrate verify", what="the scratch database")
        try:
            rolled = _roll_to_target(conn, report, migrations, stage_rows, plan, info, opts) if target else _Rolled()
            if rolled is None:
                return report
            event("check", name="clone", status="ok")
            _rehearse(conn, report, migrations, plan.to_run, previous, opts, classify, event, info, rolled)
        except psycopg.Error as e:  # the Stage server went away mid-rehearsal: no verdict at all, exit 3
            raise runner.MigrationDbError(
                f"the rehearsal lost the scratch database {scratch} on the Stage server: {runner.first_line(e)}",
                hint="check that the Stage server is up, then run verify again; no verdict was written",
            ) from None
        finally:
            conn.close()
        return report
    finally:
        if scratch and not opts.keep:
            try:
                src.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            except psycopg.Error as e:
                event("warning", message=f"could not drop the scratch database {scratch}: {runner.first_line(e)}")
        report.kept = bool(scratch and opts.keep)
        src.close()


@dataclass
class _Rolled:
    """How the clone was brought from Stage's version to the target's."""

    reverted: list[str] = field(default_factory=list)  # Stage has them, the target has not
    applied: list[str] = field(default_factory=list)  # the target has them, Stage has not
    stage_schema: schema_dump.SchemaSnapshot | None = None  # the clone before it was rolled back


def _clone_summary(info: CloneInfo, opts: VerifyOptions, scratch: str) -> str:
    rows = (f" and {info.sampled_rows} sampled rows (up to {opts.sample_rows} per table)" if opts.sample_rows
            else " and no rows (--sample-rows 0)")
    priv = f", {info.privileges} privilege(s)" if info.privileges else ""
    return f"scratch database {scratch}: schema of {info.tables} tables{rows}, {info.ledger_rows} ledger rows, " \
           f"{info.sequences} sequence positions{priv}"


def _roll_to_target(conn: Any, report: VerifyReport, migrations: Sequence[Migration], stage_rows: Sequence[LedgerRow],
                    target_plan: runner.MigrationPlan, info: CloneInfo, opts: VerifyOptions) -> _Rolled | None:
    """Bring the clone (at Stage's version) to the target's version; add the ``clone`` check. None
    (and an inconclusive clone check, the rest skipped) when it cannot be done."""
    scratch = report.scratch_database or ""
    base = _clone_summary(info, opts, scratch)
    data = {"tables": info.tables, "sampled_rows": info.sampled_rows, "ledger_rows": info.ledger_rows, "privileges": info.privileges}
    target_applied = {s.version for s in target_plan.states if s.state in ("applied", "edited", "missing-file")}
    top = max(target_applied, default=-1)
    stage_states = {s.version: s for s in migration_states(migrations, stage_rows)}
    stage_applied = {v for v, s in stage_states.items() if s.state in ("applied", "edited", "missing-file")}
    rolled = _Rolled()
    ropts = runner.ApplyOptions(ledger_table=opts.ledger_table, lock_timeout_ms=opts.lock_timeout_ms,
                                statement_timeout_ms=opts.statement_timeout_ms, lock_retries=0, lock_wait=0,
                                retry_failed=True, actor=opts.actor)

    def cannot(why: str, details: list[str]) -> None:
        report.add("clone", "inconclusive", f"{base}; but it cannot be rolled to the target's version: {why}",
                   details + ["give verify a Stage at the target's version (or one behind it), or fix the down migrations"
                              " of what Stage has and the target has not"], **data)
        report.skip_rest("the clone is not at the target's version")

    if any(v > top for v in stage_applied):
        rolled.stage_schema = schema_dump.snapshot(conn, exclude=[opts.ledger_table])
        down = runner.apply_on(conn, migrations, replace(ropts, down_to=top), database=scratch, sleep=lambda s: None)
        if down.status != "ok":
            failed = next((r for r in down.results if r.status == "failed"), None)
            cannot("reverting what Stage has and the target has not did not work",
                   [p.message for p in down.plan.problems] + ([f"{failed.id}: {failed.failure.text}"] if failed and failed.failure else []))
            return None
        rolled.reverted = [r.id for r in down.results]
    if any(v not in stage_applied and v <= top for v in target_applied):
        up = runner.apply_on(conn, migrations, replace(ropts, target=top), database=scratch, sleep=lambda s: None)
        if up.status not in ("ok", "nothing-to-do"):
            failed = next((r for r in up.results if r.status == "failed"), None)
            cannot("applying what the target has and Stage has not did not work",
                   [p.message for p in up.plan.problems] + ([f"{failed.id}: {failed.failure.text}"] if failed and failed.failure else []))
            return None
        rolled.applied = [r.id for r in up.results]
    now = runner.make_plan(migrations, runner.Ledger(conn, opts.ledger_table).rows(), retry_failed=True)
    if [m.id for m in now.to_run] != [m.id for m in target_plan.to_run] or now.problems:
        cannot("after rolling, the clone's ledger still differs from the target's",
               [f"pending on the clone: {', '.join(m.id for m in now.to_run) or 'none'}; on the target: "
                f"{', '.join(m.id for m in target_plan.to_run)}"] + [p.message for p in now.problems])
        return None
    how = []
    if rolled.reverted:
        how.append(f"rolled back {', '.join(rolled.reverted)} (Stage has them, the target has not)")
    if rolled.applied:
        how.append(f"applied {', '.join(rolled.applied)} (the target has them, Stage has not)")
    report.add("clone", "ok", base + ("; " + "; ".join(how) if how else "; Stage is at the target's version"), info.notes,
               reverted=rolled.reverted, applied=rolled.applied, **data)
    return rolled


def _rehearse(conn: Any, report: VerifyReport, migrations: Sequence[Migration], pending: Sequence[Migration],
              previous: list[SuiteQuery] | None, opts: VerifyOptions, classify: Callable, event: Callable,
              info: CloneInfo, rolled: _Rolled) -> None:
    if report.check("clone") is None:
        report.add("clone", "ok", _clone_summary(info, opts, report.scratch_database or ""), info.notes,
                   tables=info.tables, sampled_rows=info.sampled_rows, ledger_rows=info.ledger_rows, privileges=info.privileges)
    before = schema_dump.snapshot(conn, exclude=[opts.ledger_table])
    try:
        expand_only, contracting, classifier = classify(pending)
    except Exception as e:  # a classifier bug must not pass the forward check: treat as not expand-only
        expand_only, contracting, classifier = False, [f"the classifier failed: {runner.first_line(e)}"], "lint"
    t = opts.query_timeout_ms
    prev_old = run_reference(conn, previous, timeout_ms=t) if previous else None

    ropts = runner.ApplyOptions(
        ledger_table=opts.ledger_table, lock_timeout_ms=opts.lock_timeout_ms, statement_timeout_ms=opts.statement_timeout_ms,
        lock_retries=0, lock_wait=0, retry_failed=True, actor=opts.actor,
    )
    up = runner.apply_on(conn, migrations, ropts, database=report.scratch_database or "", sleep=lambda s: None)
    applied = [r for r in up.results if r.status == "applied"]
    timings = [f"{r.id}: {r.duration_ms} ms{' (outside a transaction: ' + (r.reason or '') + ')' if not r.transactional else ''}" for r in up.results if r.status == "applied"]
    on_rows = (f" on a clone with {info.sampled_rows} sampled rows" if info.sampled_rows
               else " on a clone WITHOUT rows: a change that fails only on data (ADD COLUMN ... NOT NULL, a new constraint) "
               "is not seen" + (" (--sample-rows 0)" if not opts.sample_rows else " (Stage's tables are empty)"))
    if up.status != "ok":
        failed = next((r for r in up.results if r.status == "failed"), None)
        details = timings + ([f"{failed.id} failed: {failed.failure.text}"] if failed and failed.failure else [])
        details += [p.message for p in up.plan.problems] + [f"not run: {x}" for x in up.not_run] + (failed.remains if failed else [])
        summary = (f"{failed.id} failed at {Path(failed.failure.file).name}:{failed.failure.line}: {failed.failure.sqlstate} {failed.failure.message}"
                   if failed and failed.failure else "the runner refused to apply") + on_rows
        report.add("apply", "failed", summary, details, results=[r.to_dict() for r in up.results])
        report.skip_rest("the migrations did not apply")
        return
    limits = ", ".join(f"{k} {v} ms" for k, v in (("lock_timeout", opts.lock_timeout_ms), ("statement_timeout", opts.statement_timeout_ms)) if v)
    # told not to copy rows, the rehearsal cannot see what production's rows would refuse: not a pass
    apply_check = report.add("apply", "ok" if opts.sample_rows else "inconclusive",
               f"{len(applied)} migration(s) applied{on_rows}" + (f" within {limits}" if limits else ""), timings,
               results=[r.to_dict() for r in up.results], sampled_rows=info.sampled_rows)
    event("check", name="apply", status=apply_check.status)

    if previous and prev_old is not None:
        prev_new = run_under_test(conn, previous, prev_old, timeout_ms=t)
        _suite_check(report, "backward-compat", previous, prev_old.outcomes, prev_new.outcomes, ref_label="old", test_label="new")
    elif expand_only:
        report.add("backward-compat", "skipped", "no query suite of the previous release (migrations.queries.previous, "
                   "--previous-queries or --from-pg-stat-statements); every pending migration is expand-only")
    else:
        report.add("backward-compat", "inconclusive", "no query suite of the previous release (migrations.queries.previous, "
                   "--previous-queries or --from-pg-stat-statements), and a pending migration is not expand-only: nothing shows "
                   "that the release running now survives it", contracting, classifier=classifier)
    next_new = run_reference(conn, opts.next, timeout_ms=t) if opts.next and expand_only else None
    after_up = schema_dump.snapshot(conn, exclude=[opts.ledger_table])

    # down: newest first, back to where the target is
    down_to = min(m.version for m in pending) - 1
    dopts = runner.ApplyOptions(
        ledger_table=opts.ledger_table, lock_timeout_ms=opts.lock_timeout_ms, statement_timeout_ms=opts.statement_timeout_ms,
        lock_retries=0, lock_wait=0, down_to=down_to, actor=opts.actor,
    )
    down = runner.apply_on(conn, migrations, dopts, database=report.scratch_database or "", sleep=lambda s: None)
    restored_ok = False
    if down.plan.problems:
        report.add("down", "failed", "; ".join(p.message for p in down.plan.problems), [p.hint for p in down.plan.problems])
    elif down.status != "ok":
        failed = next((r for r in down.results if r.status == "failed"), None)
        report.add("down", "failed",
                   f"{failed.id} down failed at {Path(failed.failure.file).name}:{failed.failure.line}: {failed.failure.sqlstate} "
                   f"{failed.failure.message}" if failed and failed.failure else "the down migrations did not run",
                   [f"not run: {x}" for x in down.not_run], results=[r.to_dict() for r in down.results])
    else:
        restored = schema_dump.snapshot(conn, exclude=[opts.ledger_table])
        diffs = schema_dump.diff(before, restored)
        notes = schema_dump.order_notes(before, restored)
        changed_by_up = len(schema_dump.diff(before, after_up))
        # rolled back from Stage: the up migrations must bring Stage's own schema back (what was reverted is what was re-applied)
        stage_diffs = []
        if rolled.stage_schema is not None and rolled.reverted == [m.id for m in reversed(pending)]:
            stage_diffs = schema_dump.diff(rolled.stage_schema, after_up)
        if diffs or stage_diffs:
            msgs = [d.message for d in diffs] + [f"rolled back from Stage and forward again, Stage's schema differs: {d.message}"
                                                 for d in stage_diffs]
            report.add("down", "failed", f"after the down migrations {len(diffs)} object(s) differ from the schema before the migrations"
                       + (f"; {len(stage_diffs)} differ from Stage's schema after rolling back and forward" if stage_diffs else ""),
                       msgs + [f"note: {n}" for n in notes], differences=[d.to_dict() for d in diffs + stage_diffs])
        else:
            restored_ok = True
            report.add("down", "ok", f"the down migrations ({', '.join(r.id for r in down.results)}) restore the schema exactly, "
                       f"comments and privileges included ({changed_by_up} object(s) changed by the up migrations)",
                       [f"note: {n}" for n in notes])

    if not opts.next:
        report.add("forward-compat", "skipped", "no query suite of the new release (migrations.queries.next or --next-queries)")
    elif not expand_only:
        report.add("forward-compat", "skipped", f"the pending migrations are not expand-only ({classifier} classifier), so the new "
                   "release cannot be expected to run on the old schema", contracting, classifier=classifier)
    elif not restored_ok or next_new is None:
        report.add("forward-compat", "skipped", "the down migrations did not restore the old schema, so there is no old schema to "
                   "run the new release's suite on (see down)")
    else:
        next_old = run_under_test(conn, opts.next, next_new, timeout_ms=t)
        _suite_check(report, "forward-compat", opts.next, next_new.outcomes, next_old.outcomes, ref_label="new", test_label="old")
    for name in ("backward-compat", "forward-compat", "down"):
        c = report.check(name)
        if c:
            event("check", name=name, status=c.status)
