"""The processes of command hooks and of canary drivers, as the run loop records and ends them.

A command hook starts in its own session (``start_new_session``), so its process group id is its
pid and everything it starts belongs to that group unless it leaves on purpose. The loop records
the group in the hook's ``started`` event (:func:`describe`) before waiting for it. A driver that
dies mid-hook (SIGKILL, a crash, a lost machine) leaves the hook running; whoever recovers the run
first ends that group (:func:`end_group`), so a slow ``set_weight`` cannot write its weight after
the rollback that followed.

Identity, not just an id: the record carries the host, the kernel's boot id and the leader's start
time (clock ticks since boot, ``/proc/<pid>/stat`` field 22). Linux never hands out a pid still in
use as a process group id, so while any member of the group lives the id is ours; once the leader's
pid belongs to a process with another start time, the group is gone and nothing is signalled.

Linux only (``/proc``); elsewhere nothing can be checked and :func:`end_group` says so.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable

PROC = Path("/proc")
END_WAIT = 10.0  # seconds: how long the members of a killed group may take to disappear


def this_host() -> str:
    return socket.gethostname()


def boot_id() -> str | None:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in ticks) of ``pid``, None when there is no such process."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    # fields after the command: state(3) ppid(4) pgrp(5) session(6) ... starttime(22)
    try:
        return rest[0], int(rest[2]), int(rest[19])
    except (IndexError, ValueError):
        return None


def describe(pid: int) -> dict:
    """What identifies the process group led by ``pid`` (just started in its own session)."""
    st = _stat(pid)
    return {"pid": pid, "pgid": pid, "host": this_host(), "boot_id": boot_id(), "start_ticks": st[2] if st else None}


def members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``."""
    out: list[int] = []
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return out
    for p in entries:
        if not p.name.isdigit():
            continue
        st = _stat(int(p.name))
        if st is not None and st[1] == pgid and st[0] != "Z":
            out.append(int(p.name))
    return out


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a live process (a zombie is dead)?"""
    st = _stat(pid)
    if st is not None:
        return st[0] != "Z"
    if PROC.is_dir():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(owner: str | None) -> bool:
    """Is the driver ``owner`` (``host:pid:tag``, :func:`vigil.deploy.canary.run.default_owner`) a
    process of this host that no longer lives? False whenever that cannot be known."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != this_host() or not parts[1].isdigit():
        return False
    return not pid_alive(int(parts[1]))


def end_group(info: dict, *, wait: float = END_WAIT, sleep: Callable[[float], None] = time.sleep,
              monotonic: Callable[[], float] = time.monotonic) -> dict:
    """End the hook's process group recorded as ``info`` (:func:`describe`). Returns what happened:
    ``state`` is ``gone`` (nothing left), ``ended`` (killed; ``killed`` pids), ``elsewhere`` (another
    host or boot: nothing can be done from here), ``unknown`` (no record to go by) or ``stuck``
    (still alive ``wait`` seconds after SIGKILL)."""
    pgid = info.get("pgid")
    out: dict = {"pgid": pgid, "host": info.get("host")}
    if not isinstance(pgid, int) or pgid <= 1:
        return {**out, "state": "unknown"}
    if info.get("host") != this_host() or (info.get("boot_id") and info.get("boot_id") != boot_id()):
        return {**out, "state": "elsewhere"}
    if not PROC.is_dir():
        return {**out, "state": "unknown"}
    leader = _stat(pgid)
    if leader is not None and info.get("start_ticks") is not None and leader[2] != info["start_ticks"]:
        return {**out, "state": "gone"}  # the id now belongs to another process: the group is gone
    pids = members(pgid)
    if not pids:
        return {**out, "state": "gone"}
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return {**out, "state": "gone"}
    except PermissionError:
        return {**out, "state": "stuck", "killed": [], "error": "permission denied"}
    deadline = monotonic() + wait
    while members(pgid):  # bounded: the kernel reaps a SIGKILLed process quickly
        if monotonic() > deadline:
            return {**out, "state": "stuck", "killed": pids}
        sleep(0.02)
    return {**out, "state": "ended", "killed": pids}
