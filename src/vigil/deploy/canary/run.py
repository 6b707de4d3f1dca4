"""The canary deploy loop: step the canary's weight, judge each interval, promote or roll back.

For each weight of ``canary.run.steps``: call ``set_weight``, wait ``interval``, judge the step's
minutes ``[weight set, weight set + interval)``. At weight 100 the baseline has no traffic, so its
samples are read from the start of the run instead (the same deploy, the same day). Then:

- ``pass``: the next step; after the last, ``promote`` (default: set_weight 100) -> exit 0;
- ``fail``: ``rollback`` (default: set_weight 0) -> exit 1;
- ``marginal``: ``on_marginal``: ``continue`` (the default; a marginal *last* step rolls back, only
  a pass promotes), ``pause`` or ``rollback``;
- ``inconclusive``: the step is extended by another interval and judged again over its whole time,
  up to ``extensions`` times; then ``on_inconclusive``: ``rollback`` (default) or ``pause``.

A paused run holds its weight and exits 1; a human continues it with ``--resume`` (judge the step
again over a fresh interval), ``--approve`` (count the step as passed) or ``--rollback``.

**Nothing is lost.** Every action is written to the store as ``started`` before its hook is called
and marked ``done`` or ``failed`` after; every verdict is recorded. A failing ``set_weight`` hook
rolls the canary back (exit 3); a failing rollback or promote leaves the run unfinished in
``rollback_failed`` / ``promote_failed`` (exit 3) and the next invocation retries it.

**One driver per run.** A run holds its service (one unfinished run per service) and a lease
(owner, expiry renewed at least every minute while waiting). Another invocation takes the run over
only once the lease has expired (a crashed driver), or with ``takeover``. On such a restart the
interrupted action is found in the record, marked ``interrupted``, and the run is resumed or rolled
back per ``on_restart`` (``--resume`` / ``--rollback`` choose explicitly); a rollback or promotion
that was under way is always finished first. Hooks are idempotent, so calling ``set_weight`` again
with the same weight is harmless.

Time comes from the injected clock and ``sleep``; tests drive the loop with a FakeClock whose
``tick`` is the sleep.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from vigil import exitcodes
from vigil.clock import Clock, isoformat, parse_time
from vigil.deploy.canary import procs
from vigil.deploy.canary.analysis import Judgement, canary_spec, check_references, judge_window, matchers_text, parse_matchers
from vigil.deploy.canary.hooks import HookCall, HookError, HookSet, build_hooks
from vigil.deploy.canary.records import CanaryEventJSON, CanaryRunJSON, Records, run_record
from vigil.deploy.canary.spec import RunSpec
from vigil.deploy.verdicts import record_verdict
from vigil.errors import ExternalError, UsageError
from vigil.store import Store

LEASE_CHUNK = 60  # seconds: the longest sleep between lease renewals
LEASE_GRACE = 120  # seconds a lease outlives the sleep it covers

if TYPE_CHECKING:
    from vigil.spec import LoadedSpec


@dataclass
class RunRequest:
    action: str = "start"  # start | resume | rollback | approve
    baseline: str | None = None
    canary: str | None = None
    takeover: bool = False
    release: str | None = None  # the release the run deploys: stored with the run when it starts


@dataclass
class RunOutcome:
    run: CanaryRunJSON
    exit_code: int
    message: str
    verdicts: list[dict] = field(default_factory=list)
    error: dict | None = None

    def to_dict(self) -> dict:
        return {**self.run, "exit_code": self.exit_code, "message": self.message, "verdicts": self.verdicts, "error": self.error}


class _Stop(Exception):
    def __init__(self, exit_code: int, message: str, error: HookError | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.error = error


def _hook_summary(detail: dict) -> str:
    if detail.get("hook") == "command":
        out = (detail.get("stdout") or "").splitlines()
        return f"exit 0{': ' + out[-1][:120] if out else ''}"
    if detail.get("hook") == "webhook":
        return f"HTTP {detail.get('status')} after {detail.get('attempts')} attempt(s)"
    return "done"


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def plan_of(r: RunSpec, hooks: HookSet, release: str | None = None) -> dict:
    def desc(h) -> str | None:
        return getattr(h, "describe", lambda: type(h).__name__)() if h is not None else None

    return {
        "release": release,
        "steps": list(r.steps),
        "interval_seconds": int(r.interval),
        "on_inconclusive": r.on_inconclusive,
        "on_marginal": r.on_marginal,
        "extensions": r.extensions,
        "on_restart": r.on_restart,
        "hooks": {"set_weight": desc(hooks.set_weight), "rollback": desc(hooks.rollback) or "set_weight 0",
                  "promote": desc(hooks.promote) or "set_weight 100"},
    }


class CanaryRunner:
    def __init__(
        self,
        loaded: LoadedSpec,
        store: Store,
        clock: Clock,
        sleep: Callable[[float], None],
        *,
        hooks: HookSet | None = None,
        owner: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self._hooks = hooks
        self.owner = owner or default_owner()
        self.progress = progress or (lambda _m: None)
        self.rec = Records(store)
        self.verdicts: list[dict] = []

    # -- helpers -----------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now()

    def _now_s(self) -> int:
        return int(self._now().timestamp())

    def _at(self) -> str:
        return isoformat(self._now())

    def _event(self, run: dict, kind: str, status: str, detail: dict | None = None, *, weight: int | None = None) -> int:
        eid = self.rec.add_event(run["id"], self._at(), kind, status, step_index=run["step_index"], weight=weight, detail=detail)
        steps = run["_plan"]["steps"]
        where = f"step {run['step_index'] + 1}/{len(steps)}" if run["step_index"] < len(steps) else "after the last step"
        w = f" weight {weight}" if weight is not None else ""
        note = detail.get("summary") if detail else None
        self.progress(f"[{self._at()}] run #{run['id']} {where}{w}: {kind} {status}" + (f": {note}" if note else ""))
        return eid

    def _update(self, run: dict, **fields) -> None:
        fields["updated_at"] = self._at()
        self.rec.update(run["id"], **fields)
        run.update(fields)

    def _load(self, run_id: int) -> dict:
        row = self.rec.get(run_id)
        assert row is not None
        row["_plan"] = json.loads(row["plan"])
        return row

    # -- entry point -------------------------------------------------------------------------------

    def run(self, req: RunRequest) -> RunOutcome:
        spec = self.loaded.spec
        c = canary_spec(spec)
        if c.run is None:
            raise UsageError("the spec has no `canary.run:` section", hint="add canary.run: {steps: [...], interval: 10m, hooks: {set_weight: ...}}")
        check_references(spec, str(self.loaded.path) if self.loaded.path else "<spec>")
        base_dir = self.loaded.path.parent if self.loaded.path else None
        hooks = self._hooks or build_hooks(c.run.hooks, base_dir=Path(base_dir) if base_dir else None, sleep=self.sleep)
        baseline = matchers_text(parse_matchers(req.baseline, "baseline")) if req.baseline is not None else None
        canary = matchers_text(parse_matchers(req.canary, "canary")) if req.canary is not None else None
        if req.release is not None:
            if not req.release.strip():
                raise UsageError("--release needs a release id")
            if c.service is None:
                raise UsageError("--release records a verdict for canary.service: set `service:` in the spec's canary section")
        existing = self.rec.unfinished(c.service)
        now_s = self._now_s()
        if existing is None:
            if req.action != "start":
                raise UsageError(
                    f"no unfinished canary run for service {c.service or '(none)'} to {req.action}",
                    hint="start one with `vigil canary run --baseline SEL --canary SEL`; `vigil canary history` lists runs",
                )
            if baseline is None or canary is None:
                raise UsageError("a new canary run needs --baseline and --canary", hint="e.g. --baseline 'version=\"v1\"' --canary 'version=\"v2\"'")
            if baseline == canary:
                raise UsageError("--baseline and --canary select the same series")
            at = self._at()
            run_id = self.rec.create_run(
                {
                    "service": c.service, "baseline": baseline, "canary": canary, "state": "running", "step_index": 0,
                    "weight": 0, "step_started": None, "extensions": 0, "started_at": at, "updated_at": at,
                    "finished_at": None, "owner": self.owner, "lease_until": now_s + LEASE_GRACE,
                    "spec_sha256": self.loaded.sha256, "plan": json.dumps(plan_of(c.run, hooks, req.release), sort_keys=True),
                    "outcome": None,
                }
            )
            run = self._load(run_id)
            self._event(run, "start", "done", {"baseline": baseline, "canary": canary, "plan": run["_plan"], "owner": self.owner,
                                               "release": req.release,
                                               "summary": f"{baseline} -> {canary}, steps {run['_plan']['steps']}"
                                               + (f", release {req.release}" if req.release else "")})
            self._release_verdict(run, "unfinished", f"canary run #{run_id} started ({baseline} -> {canary}); the release is "
                                  "not judged until the run is promoted")
            return self._drive(run, hooks)
        run = self._load(existing["id"])
        for given, have, what in ((baseline, run["baseline"], "baseline"), (canary, run["canary"], "canary")):
            if given is not None and given != have:
                raise UsageError(
                    f"unfinished canary run #{run['id']} compares {run['baseline']} -> {run['canary']}; --{what} {given} differs",
                    hint="finish that run first: `vigil canary run --resume` or `--rollback`",
                )
        have_release = run["_plan"].get("release")
        if req.release is not None and req.release != have_release:
            raise UsageError(
                f"unfinished canary run #{run['id']} deploys "
                + (f"release {have_release!r}" if have_release else "no release (it was started without --release)")
                + f"; --release {req.release} differs",
                hint="the release belongs to the run: continue it without --release, or finish it and start a run for the new release",
            )
        if req.action == "approve" and run["state"] != "paused":
            raise UsageError(f"canary run #{run['id']} is {run['state']}; --approve applies to a paused run")
        if run["state"] == "paused" and req.action == "start":
            raise UsageError(
                f"canary run #{run['id']} is paused at weight {run['weight']}: {run['outcome'] or ''}".rstrip(": "),
                hint="continue with --resume (judge again), --approve (count the step as passed) or --rollback",
            )
        previous = run["owner"]
        dead = previous if previous and previous != self.owner and procs.owner_gone(previous) else None
        if not self.rec.claim(run["id"], self.owner, now_s, LEASE_GRACE, takeover=req.takeover, dead_owner=dead):
            until = datetime.fromtimestamp(run["lease_until"] or 0, timezone.utc)
            raise UsageError(
                f"canary run #{run['id']} is being driven by {run['owner']} (lease until {isoformat(until)})",
                hint="wait for it, or pass --takeover if that process is gone",
            )
        if dead is not None:
            self.progress(f"run #{run['id']}: its driver {dead} is gone (no such process on this host): taking the run over at once")
        run = self._load(run["id"])
        if run["spec_sha256"] != self.loaded.sha256:
            self.progress(f"warning: the spec changed since run #{run['id']} started; its steps and interval stay as planned; hooks and metrics come from the current spec")
        return self._restart(run, hooks, req, previous_owner=previous, owner_gone=dead is not None)

    def _restart(self, run: dict, hooks: HookSet, req: RunRequest, *, previous_owner: str | None = None,
                 owner_gone: bool = False) -> RunOutcome:
        plan = run["_plan"]
        pending = self.rec.pending_action(run["id"])
        ended = None
        if pending is not None:
            ended = self._end_hook(run, pending)
            self.rec.finish_event(pending["id"], "interrupted", {**pending["detail"], "interrupted": True, "ended": ended})
        detail = {"state": run["state"], "request": req.action, "owner": self.owner, "previous_owner": previous_owner,
                  "summary": f"found {run['state']}"}
        if owner_gone:
            detail["previous_owner_gone"] = True
            detail["summary"] += f", its driver {previous_owner} gone"
        if pending is not None:
            detail["interrupted"] = {"kind": pending["kind"], "weight": pending["weight"], "at": pending["at"], "ended": ended}
            detail["summary"] += f", {pending['kind']} interrupted"
            if ended is not None and ended.get("state") == "ended":
                detail["summary"] += f" (its hook's process group {ended['pgid']} killed)"
        state = run["state"]
        if state in ("running", "paused"):
            self._release_verdict(run, "unfinished", f"canary run #{run['id']} was picked up by {self.owner} ({req.action}) at "
                                  f"weight {run['weight']}")
        try:
            if state == "rollback_failed" or (pending is not None and pending["kind"] == "rollback"):
                self._event(run, "recover", "done", {**detail, "then": "rollback"})
                self._rollback(run, hooks, "finishing the rollback that did not complete")
            if state == "promote_failed" or (pending is not None and pending["kind"] == "promote"):
                if req.action == "rollback":
                    self._event(run, "recover", "done", {**detail, "then": "rollback"})
                    self._rollback(run, hooks, "rolled back instead of finishing the promotion (--rollback)")
                self._event(run, "recover", "done", {**detail, "then": "promote"})
                self._promote(run, hooks)
            if req.action == "rollback":
                self._event(run, "recover" if state == "running" else "rollback-requested", "done", {**detail, "then": "rollback"})
                self._rollback(run, hooks, "rolled back on request (--rollback)")
            if state == "paused":
                if req.action == "resume":
                    self._event(run, "resume", "done", {**detail, "summary": "judging the step again over a fresh interval"})
                    self._update(run, state="running", step_started=self._now_s(), extensions=0)
                else:  # approve (a plain start was refused before the claim)
                    self._event(run, "approve", "done", {**detail, "summary": "the paused step counts as passed"})
                    self._update(run, state="running", step_index=run["step_index"] + 1, step_started=None, extensions=0)
            elif state == "running":
                then = "resume" if req.action == "resume" else plan.get("on_restart", "resume")
                self._event(run, "recover", "done", {**detail, "then": then})
                if then == "rollback":
                    self._rollback(run, hooks, "the interrupted run was rolled back on restart (on_restart: rollback)")
            return self._drive(run, hooks)
        except _Stop as s:
            return self._outcome(run, s)

    def _end_hook(self, run: dict, pending: CanaryEventJSON) -> dict | None:
        """End the process group of an interrupted command hook before anything else acts: a hook
        that outlived its driver must not set a weight after the recovery (issue 14)."""
        info = (pending.get("detail") or {}).get("process")
        if not info:
            return None
        out = procs.end_group(info)
        st = out.get("state")
        if st == "ended":
            self.progress(f"[{self._at()}] run #{run['id']}: the interrupted {pending['kind']} hook was still running "
                          f"(process group {out['pgid']}); killed it before going on")
        elif st == "elsewhere":
            self.progress(f"warning: run #{run['id']}: the interrupted {pending['kind']} hook ran on {info.get('host')}; "
                          f"make sure its process group {info.get('pgid')} is gone there")
        elif st == "stuck":
            self._update(run, owner=None, lease_until=None)
            raise ExternalError(
                f"canary run #{run['id']}: the interrupted {pending['kind']} hook (process group {out['pgid']}) is still running "
                "after SIGKILL; nothing was done",
                hint="end that process (ps -g PGID), then run the command again",
            )
        return out

    def _release_verdict(self, run: dict, verdict: str, summary: str) -> None:
        """The deploy gate's canary verdict for the run's release (stored when the run started): a
        run that is not promoted, finished or not, blocks the release."""
        release = run["_plan"].get("release")
        if release is None or run["service"] is None:
            return
        record_verdict(self.store, "canary", run["service"], release, verdict, summary,
                       {"run_id": run["id"], "state": run["state"], "weight": run["weight"]}, self._now())

    # -- the loop ----------------------------------------------------------------------------------

    def _drive(self, run: dict, hooks: HookSet) -> RunOutcome:
        try:
            self._loop(run, hooks)
        except _Stop as s:
            return self._outcome(run, s)
        except KeyboardInterrupt:
            # Ctrl-C or a CI job cancelled (SIGTERM, see the CLI): record it and let go of the lease
            # so that `--resume` or `--rollback` can follow at once; the weight stays as recorded
            self._event(run, "interrupt", "done", {"summary": "interrupted; continue with --resume or roll back with --rollback"},
                        weight=run["weight"])
            self._update(run, owner=None, lease_until=None, outcome=f"run #{run['id']} interrupted at weight {run['weight']}")
            self._release_verdict(run, "unfinished", f"canary run #{run['id']} was interrupted at weight {run['weight']}; "
                                  "continue it with --resume or roll it back with --rollback")
            raise
        raise AssertionError("the loop ends with a stop")  # pragma: no cover

    def _outcome(self, run: dict, s: _Stop) -> RunOutcome:
        run = self._load(run["id"])
        events = self.rec.events(run["id"])
        err = None
        if s.error is not None:
            err = s.error.to_dict()
        return RunOutcome(run_record(run, events), s.exit_code, s.message, self.verdicts, err)

    def _loop(self, run: dict, hooks: HookSet) -> None:
        plan = run["_plan"]
        steps: list[int] = plan["steps"]
        interval = int(plan["interval_seconds"])
        while True:
            i = run["step_index"]
            if i >= len(steps):
                self._promote(run, hooks)
            w = steps[i]
            if run["step_started"] is None:
                self._set_weight(run, hooks, w)
            due = run["step_started"] + interval * (1 + run["extensions"])
            self._wait_until(run, due)
            j = self._judge(run, w, due)
            v = j.verdict.verdict
            summary = f"{v}" + (f", score {j.to_dict()['score']}" if j.verdict.score is not None else "")
            self._event(run, "judge", "done", {"verdict": v, "score": j.to_dict()["score"], "verdict_id": j.id,
                                               "from": isoformat(j.start), "to": isoformat(j.end), "reasons": j.verdict.reasons,
                                               "summary": summary}, weight=w)
            last = i == len(steps) - 1
            why = f"verdict {v} at weight {w}: " + "; ".join(j.verdict.reasons[:3])
            if v == "pass":
                self._update(run, step_index=i + 1, step_started=None, extensions=0)
            elif v == "fail":
                self._rollback(run, hooks, why)
            elif v == "marginal":
                policy = plan.get("on_marginal", "continue")
                if policy == "continue" and not last:
                    self._update(run, step_index=i + 1, step_started=None, extensions=0)
                elif policy == "pause":
                    self._pause(run, why)
                else:
                    self._rollback(run, hooks, why + (" (the last step must pass)" if policy == "continue" else ""))
            else:  # inconclusive
                if run["extensions"] < int(plan.get("extensions", 0)):
                    self._event(run, "extend", "done", {"summary": f"waiting another interval for data ({run['extensions'] + 1}/{plan['extensions']})"}, weight=w)
                    self._update(run, extensions=run["extensions"] + 1)
                elif plan.get("on_inconclusive", "rollback") == "pause":
                    self._pause(run, why)
                else:
                    self._rollback(run, hooks, why)

    def _wait_until(self, run: dict, due: int) -> None:
        while True:
            now_s = self._now_s()
            if now_s >= due:
                return
            chunk = min(due - now_s, LEASE_CHUNK)
            if not self.rec.renew(run["id"], self.owner, now_s + chunk + LEASE_GRACE):
                raise UsageError(
                    f"canary run #{run['id']} was taken over by another process",
                    hint="`vigil canary history` shows who drives it now",
                )
            self.sleep(chunk)

    def _judge(self, run: dict, weight: int, due: int) -> Judgement:
        start = datetime.fromtimestamp(run["step_started"], timezone.utc)
        end = datetime.fromtimestamp(due, timezone.utc)
        bstart = parse_time(run["started_at"]) if weight >= 100 else None
        j = judge_window(
            self.loaded, self.store, parse_matchers(run["baseline"], "baseline"), parse_matchers(run["canary"], "canary"),
            start, end, judged_at=self._now(), baseline_start=bstart, run_id=run["id"],
        )
        self.verdicts.append(j.to_dict())
        return j

    # -- actions (recorded before they happen) -------------------------------------------------------

    def _call(self, run: dict, hooks: HookSet, action: str, weight: int) -> None:
        hook = hooks.for_action(action)
        # hold the lease for as long as the hook may take (its timeout on every attempt, the backoff)
        tries = 1 + int(getattr(getattr(hook, "spec", None), "retries", 0) or 0)
        if not self.rec.renew(run["id"], self.owner, self._now_s() + int(getattr(hook, "timeout", 0) * tries) + 60 * (tries - 1) + LEASE_GRACE):
            raise UsageError(f"canary run #{run['id']} was taken over by another process", hint="`vigil canary history` shows who drives it now")
        started = {"summary": f"calling the {action} hook"}
        eid = self._event(run, action, "started", started, weight=weight)

        def on_process(info: dict) -> None:  # before the hook is waited for: what a recovery must end
            self.rec.finish_event(eid, "started", {**started, "process": info})

        call = HookCall(action, weight, run["id"], run["service"], run["baseline"], run["canary"], run["step_index"],
                        self._at(), f"{run['id']}-{eid}", on_process=on_process)
        try:
            detail = hook(call)
        except HookError as e:
            self.rec.finish_event(eid, "failed", {"error": e.message, "hint": e.hint})
            self.progress(f"[{self._at()}] run #{run['id']}: {action} hook failed: {e.message}")
            raise
        self.rec.finish_event(eid, "done", {"summary": _hook_summary(detail), **detail})
        self.progress(f"[{self._at()}] run #{run['id']}: {action} done (weight {weight})")

    def _set_weight(self, run: dict, hooks: HookSet, weight: int) -> None:
        try:
            self._call(run, hooks, "set_weight", weight)
        except HookError as e:
            self._rollback(run, hooks, f"the set_weight hook failed at weight {weight}: {e.message}", cause=e)
        self._update(run, weight=weight, step_started=self._now_s(), extensions=0)

    def _rollback(self, run: dict, hooks: HookSet, why: str, cause: HookError | None = None) -> None:
        try:
            self._call(run, hooks, "rollback", 0)
        except HookError as e:
            self._update(run, state="rollback_failed", owner=None, lease_until=None, outcome=f"rollback failed: {e.message}; rolling back because {why}")
            self._release_verdict(run, "rollback_failed", f"canary run #{run['id']}: the rollback hook failed ({e.message}); the canary "
                                  "may still get traffic; retry with `vigil canary run --rollback`")
            raise _Stop(exitcodes.EXTERNAL, f"run #{run['id']}: the rollback hook failed ({e.message}); the canary may still get traffic. "
                        "Retry with `vigil canary run --rollback`", e) from None
        at = self._at()
        msg = f"run #{run['id']} rolled back: {why}"
        self._update(run, state="rolled_back", weight=0, finished_at=at, active_key=None, owner=None, lease_until=None, outcome=msg)
        self._release_verdict(run, "fail", msg)
        raise _Stop(exitcodes.EXTERNAL if cause is not None else exitcodes.NO, msg, cause)

    def _promote(self, run: dict, hooks: HookSet) -> None:
        try:
            self._call(run, hooks, "promote", 100)
        except HookError as e:
            self._update(run, state="promote_failed", owner=None, lease_until=None, outcome=f"promotion failed: {e.message}")
            self._release_verdict(run, "promote_failed", f"canary run #{run['id']}: every step passed but the promote hook failed "
                                  f"({e.message})")
            raise _Stop(exitcodes.EXTERNAL, f"run #{run['id']}: every step passed but the promote hook failed ({e.message}). "
                        "Retry with `vigil canary run --resume`, or `--rollback`", e) from None
        msg = f"run #{run['id']} promoted: every step passed ({', '.join(str(s) for s in run['_plan']['steps'])})"
        self._update(run, state="promoted", weight=100, finished_at=self._at(), active_key=None, owner=None, lease_until=None, outcome=msg)
        self._release_verdict(run, "pass", msg)
        raise _Stop(exitcodes.OK, msg)

    def _pause(self, run: dict, why: str) -> None:
        msg = f"run #{run['id']} paused at weight {run['weight']} for a human: {why}"
        self._event(run, "pause", "done", {"reason": why, "summary": "continue with --resume, --approve or --rollback"}, weight=run["weight"])
        self._update(run, state="paused", owner=None, lease_until=None, outcome=msg)
        self._release_verdict(run, "inconclusive", msg)
        raise _Stop(exitcodes.NO, msg)
