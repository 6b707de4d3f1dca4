"""Recovering a canary run cannot be undone or skipped (issue 14): an orphaned hook is ended before
the recovery acts (real processes), the release belongs to the run and an unfinished or failed
rollback blocks it at the gate, a dead driver on this host is taken over at once, and verdicts that
gate production are recorded at the real clock.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from canary_helpers import T0
from test_canary_run import Env, PyHooks, env, run_section  # noqa: F401 (env is a fixture)
from vigil.clock import parse_time
from vigil.deploy.canary import procs
from vigil.deploy.canary.hooks import HookSet
from vigil.deploy.canary.records import Records
from vigil.deploy.canary.run import CanaryRunner, RunRequest
from vigil.deploy.verdicts import latest_verdicts
from vigil.errors import UsageError

V1, V2 = 'version="v1"', 'version="v2"'


def alive(pid: int) -> bool:
    """A live process (a zombie, killed and not yet reaped by whoever adopted it, is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def wait_for(path: Path, timeout: float = 30.0) -> str:
    """Bounded wait for a file a real process writes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written within {timeout}s")


def kill_leftovers(*pids: int) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# A set_weight hook that, asked for weight 50 the first time, starts a grandchild, SIGKILLs the driver
# (its parent) and is slow: it would write weight 50 twenty seconds later, after any recovery.
ORPHAN = (
    'if [ "$VIGIL_CANARY_ACTION" = set_weight ] && [ "$VIGIL_CANARY_WEIGHT" = 50 ] && [ ! -e killed ]; then '
    "touch killed; sleep 60 & echo $! > child.pid; echo $$ > hook.pid; kill -9 $PPID; sleep 20; fi; "
    f'exec {sys.executable} hook.py "$VIGIL_CANARY_ACTION" "$VIGIL_CANARY_WEIGHT"'
)


def test_a_hook_orphaned_by_a_sigkilled_driver_is_ended_before_the_rollback(tmp_path, cli):
    e = Env(tmp_path, run_section(hook=f"{{command: {json.dumps(['sh', '-c', ORPHAN])}}}"))
    e.traffic()
    p = subprocess.run(
        [sys.executable, "-m", "vigil", "canary", "run", "--baseline", V1, "--canary", V2, "--spec", str(e.spec_path), "--db", e.db],
        env={**os.environ, "VIGIL_NOW": T0}, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    hook, child = int(wait_for(tmp_path / "hook.pid")), int(wait_for(tmp_path / "child.pid"))
    try:
        assert p.returncode == -9, (p.returncode, p.stdout, p.stderr)
        # the observed failure's precondition: the driver is gone, its hook and the hook's child live on
        assert alive(hook) and alive(child) and os.getpgid(child) == hook
        rec = Records(e.store)
        run = rec.unfinished("api")
        started = rec.pending_action(run["id"])
        assert (started["kind"], started["weight"]) == ("set_weight", 50)
        proc = started["detail"]["process"]  # recorded before vigil waited for the hook
        assert proc["pgid"] == hook and proc["host"] == socket.gethostname() and proc["start_ticks"]
        r = cli("canary", "run", "--rollback", "--takeover", "--spec", e.spec_path, "--db", e.db, "--json", now="2026-11-20T12:03:00Z")
        assert r.code == 1, r.out + r.err
        # the hook's whole process group was ended before the rollback hook ran: nothing can write
        # weight 50 after the recorded weight 0
        assert not alive(hook) and not alive(child)
        d = r.json()
        assert d["state"] == "rolled_back" and d["weight"] == 0
        interrupted = next(ev for ev in d["events"] if ev["status"] == "interrupted")
        assert interrupted["detail"]["ended"]["state"] == "ended" and {hook, child} <= set(interrupted["detail"]["ended"]["killed"])
        recover = next(ev for ev in d["events"] if ev["kind"] == "recover")
        assert f"process group {hook} killed" in recover["detail"]["summary"]
        assert e.calls() == [("set_weight", 10), ("rollback", 0)] and (tmp_path / "weight").read_text() == "0"
        # a second recovery finds nothing left to end
        assert procs.end_group(proc)["state"] == "gone"
    finally:
        kill_leftovers(hook)


def test_a_reused_process_group_id_is_never_signalled():
    p = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        info = procs.describe(p.pid)
        assert procs.end_group({**info, "start_ticks": info["start_ticks"] - 1})["state"] == "gone"  # another process's id now
        assert alive(p.pid)
        assert procs.end_group({**info, "host": "elsewhere.example"})["state"] == "elsewhere" and alive(p.pid)
        assert procs.end_group({**info, "boot_id": "another-boot"})["state"] == "elsewhere" and alive(p.pid)
        out = procs.end_group(info)
        assert out["state"] == "ended" and out["killed"] == [p.pid]
    finally:
        p.kill()
        p.wait()


def test_sigterm_during_a_slow_hook_ends_the_hook_too(tmp_path):
    slow = 'echo $$ > hook.pid; sleep 60 & echo $! > child.pid; wait'
    e = Env(tmp_path, run_section(hook=f"{{command: {json.dumps(['sh', '-c', slow])}, timeout: 120s}}"))
    p = subprocess.Popen(
        [sys.executable, "-m", "vigil", "canary", "run", "--baseline", V1, "--canary", V2, "--spec", str(e.spec_path), "--db", e.db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    hook = child = 0
    try:
        hook, child = int(wait_for(tmp_path / "hook.pid")), int(wait_for(tmp_path / "child.pid"))
        assert alive(hook) and alive(child)
        p.send_signal(signal.SIGTERM)  # a cancelled CI job, while set_weight 10 is still running
        out, err = p.communicate(timeout=30)
        assert p.returncode == 130, (out, err)
        assert not alive(hook) and not alive(child)
        run = Records(e.store).unfinished("api")
        assert Records(e.store).events(run["id"])[-1]["kind"] == "interrupt" and run["owner"] is None
    finally:
        if p.poll() is None:
            p.kill()
        kill_leftovers(hook)
        e.store.close()


# -- the release belongs to the run --------------------------------------------------------------------

ROLLBACK = f"      rollback: {{command: [{json.dumps(sys.executable)}, hook.py, rollback, '{{weight}}']}}\n"


def gate(cli, e: Env, release: str):
    return cli("gate", "deploy", "--service", "api", "--release", release, "--what-if", "--spec", e.spec_path, "--db", e.db, "--json")


def test_a_failed_rollback_retried_without_release_still_blocks_the_release(tmp_path, cli):
    """The observed failure, through the CLI at the real clock: `canary run --release c4` fails and so
    does its rollback; the suggested retry `canary run --rollback` (no --release) completes it; the
    gate must not then say ALLOWED for c4."""
    e = Env(tmp_path, run_section() + ROLLBACK)
    e.flag("fail_set_weight_10")
    e.flag("fail_rollback")
    r = cli("canary", "run", "--baseline", V1, "--canary", V2, "--release", "c4", "--spec", e.spec_path, "--db", e.db, "--json")
    assert r.code == 3, r.out + r.err
    assert r.json()["state"] == "rollback_failed" and r.json()["release"] == "c4"
    assert "vigil canary run --rollback" in r.json()["message"]
    g = gate(cli, e, "c4")
    assert g.code == 1 and g.json()["blocks"][0].startswith("canary verdict for release 'c4' is rollback_failed")
    (tmp_path / "fail_rollback").unlink()
    r = cli("canary", "run", "--rollback", "--spec", e.spec_path, "--db", e.db, "--json")
    assert r.code == 1, r.out + r.err
    assert r.json()["state"] == "rolled_back" and r.json()["release"] == "c4"
    g = gate(cli, e, "c4")
    assert g.code == 1 and g.json()["blocks"] == [g.json()["blocks"][0]]
    assert g.json()["blocks"][0].startswith("canary verdict for release 'c4' is fail"), g.json()["blocks"]
    v = latest_verdicts(e.store, "api", "c4")["canary"]
    assert abs(time.time() - parse_time(v.recorded_at).timestamp()) < 600  # at the real clock
    e.store.close()


def test_an_unfinished_run_blocks_its_release_and_the_release_cannot_change(tmp_path):
    e = Env(tmp_path)
    e.traffic()
    h = PyHooks(crash_on=("set_weight", 50))
    with pytest.raises(RuntimeError):
        e.start(hooks=HookSet(h), owner="first", release="c5")
    v = latest_verdicts(e.store, "api", "c5")["canary"]
    assert v.verdict == "unfinished" and not v.passed and "canary run #1 started" in v.summary
    with pytest.raises(UsageError, match="deploys release 'c5'; --release c6 differs") as ei:
        e.runner(hooks=HookSet(h), owner="second").run(RunRequest("resume", takeover=True, release="c6"))
    assert "belongs to the run" in ei.value.hint
    out = e.runner(hooks=HookSet(h), owner="second").run(RunRequest("resume", takeover=True))
    assert out.exit_code == 0 and out.run["release"] == "c5"
    assert latest_verdicts(e.store, "api", "c5")["canary"].verdict == "pass"
    # a run started without a release cannot be given one later
    (tmp_path / "b").mkdir()
    e2 = Env(tmp_path / "b")
    e2.traffic()
    with pytest.raises(RuntimeError):
        e2.start(hooks=HookSet(PyHooks(crash_on=("set_weight", 50))), owner="first")
    with pytest.raises(UsageError, match="deploys no release"):
        e2.runner(owner="second").run(RunRequest("rollback", takeover=True, release="c7"))
    e.store.close()
    e2.store.close()


def test_release_verdicts_through_the_cli_need_the_real_clock(tmp_path, cli):
    e = Env(tmp_path)
    r = cli("canary", "run", "--baseline", V1, "--canary", V2, "--release", "c8", "--spec", e.spec_path, "--db", e.db, now=T0)
    assert r.code == 2 and "VIGIL_NOW pins the clock" in r.err and "unset VIGIL_NOW" in r.err
    assert Records(e.store).runs() == []  # nothing started, nothing recorded
    e.store.close()


# -- a dead driver on this host ---------------------------------------------------------------------


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()  # reaped: no process has this pid now
    return p.pid


def test_a_dead_local_driver_is_taken_over_at_once_a_live_or_remote_one_is_not(env):
    env.traffic()
    h = PyHooks(crash_on=("set_weight", 50))
    with pytest.raises(RuntimeError):
        env.start(hooks=HookSet(h), owner="first")
    rec = Records(env.store)
    run = rec.unfinished("api")
    far = int(env.clock.now().timestamp()) + 3600
    host = socket.gethostname()
    for owner in (f"{host}:{os.getpid()}:live", f"other-host.example:{dead_pid()}:remote"):
        rec.update(run["id"], owner=owner, lease_until=far)
        with pytest.raises(UsageError, match="being driven by"):
            env.runner(hooks=HookSet(h), owner="second").run(RunRequest("resume"))
    gone = f"{host}:{dead_pid()}:gone"
    rec.update(run["id"], owner=gone, lease_until=far)
    out = env.runner(hooks=HookSet(h), owner="second").run(RunRequest("resume"))
    assert out.exit_code == 0 and out.run["state"] == "promoted"
    recover = next(ev for ev in out.run["events"] if ev["kind"] == "recover")
    assert recover["detail"]["previous_owner"] == gone and recover["detail"]["previous_owner_gone"]
    assert any("taking the run over at once" in line for line in env.progress)


def test_only_one_of_two_takers_of_a_dead_drivers_run_wins(env):
    env.traffic(minutes=2, per_minute=10)
    env.write(run_section(extra="    on_inconclusive: pause\n    extensions: 0\n"))
    assert env.start().run["state"] == "paused"
    rec = Records(env.store)
    run = rec.unfinished("api")
    gone = f"{socket.gethostname()}:{dead_pid()}:gone"
    now = int(env.clock.now().timestamp())
    rec.update(run["id"], owner=gone, lease_until=now + 3600)
    assert rec.claim(run["id"], "a", now, 120, dead_owner=gone)
    assert not rec.claim(run["id"], "b", now, 120, dead_owner=gone)  # "a" holds it now
    assert rec.get(run["id"])["owner"] == "a"
