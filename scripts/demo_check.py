#!/usr/bin/env python3
"""Follow the README's first step as a newcomer does, and time it: `make demo` in a fresh clone.

Clones this repository (HEAD, so commit first) into a new temporary directory, runs `make demo` in a
pseudo-terminal (a person's terminal: Ctrl-C reaches every process of the demo), prints each line
with the seconds since the start, and when the demo says it is ready presses Ctrl-C. Then it checks
what a newcomer relies on and prints the figures to put in the README:

- the install (pip) time, the history load time, the time until the demo is ready, the load average;
- only what vigil needs to run was installed (no pytest, hypothesis, moto, playwright, ...);
- the backfill showed its progress (at least five progress lines);
- the local incident bridge received the API spike's page and no other alert (a false page, such
  as search-down while the history was still arriving, is a failure);
- Ctrl-C stopped everything within 10 s: nothing of the clone still running, ports 8470 and 9099
  free.

Exit 0 when every check holds, 1 otherwise. Standard library only; needs git, make, curl, python3.

    python3 scripts/demo_check.py [--keep] [--repo DIR]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time

TEST_TOOLS = ("pytest", "hypothesis", "moto", "playwright", "schemathesis", "aiosmtpd", "jsonschema", "ruff", "mypy")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), help="repository to clone")
    ap.add_argument("--keep", action="store_true", help="keep the clone")
    ap.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    args = ap.parse_args()
    for port in (8470, 9099):
        if not port_free(port):
            print(f"port {port} is in use (another demo?); stop it first", file=sys.stderr)
            return 2
    tmp = tempfile.mkdtemp(prefix="vigil-demo-check-")
    clone = os.path.join(tmp, "vigil")
    subprocess.run(["git", "clone", "-q", args.repo, clone], check=True)
    head = subprocess.run(["git", "-C", clone, "log", "--oneline", "-1"], capture_output=True, text=True).stdout.strip()
    print(f"clone of {head[:60]} in {clone}; load average {loadavg()}")

    t0 = time.monotonic()
    marks: dict[str, float] = {}
    lines: list[str] = []
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal session, as a person starts it
        os.chdir(clone)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for name in ("VIGIL_TOKEN", "VIGIL_DB", "VIGIL_SPEC", "COLUMNS", "LINES"):
            os.environ.pop(name, None)
        os.execvp("make", ["make", "demo"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a common terminal: 80 x 24
    loads = {"start": loadavg()}
    buf = b""
    pressed = None
    status = None
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        now = time.monotonic() - t0
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = re.sub(r"\x1b\[[0-9;]*m", "", raw.decode(errors="replace")).rstrip("\r")
                if "WARNING: Location" in line:  # pip's index configuration on this machine, not vigil's
                    continue
                lines.append(line)
                print(f"[{now:6.1f}s] {line}", flush=True)
                if line.startswith("./scripts/demo.sh") and "installed" not in marks:
                    marks["installed"] = now
                if line.startswith("history loaded in"):
                    marks["history"] = now
                if "Ctrl-C stops the server" in line:
                    marks["ready"] = now
                    loads["ready"] = loadavg()
        if pressed is None and ("ready" in marks and now - marks["ready"] > 3 or now > args.timeout):
            print(f"[{now:6.1f}s] >>> Ctrl-C", flush=True)
            os.write(fd, b"\x03")
            pressed = now
        if pressed is not None and now - pressed > 30:
            break
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            if not ready:
                break
    stopped_after = (time.monotonic() - t0 - pressed) if pressed is not None else None
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    problems = []
    ps = subprocess.run(["ps", "-eo", "sid=,pid=,args="], capture_output=True, text=True).stdout.splitlines()
    left = [p for p in ps if p.split(None, 1)[0] == str(pid) or clone in p]  # the terminal session's processes
    if left:
        problems.append("still running after Ctrl-C: " + "; ".join(p.strip() for p in left))
    for port in (8470, 9099):
        if not port_free(port):
            problems.append(f"port {port} still listening after Ctrl-C")
    if stopped_after is None or stopped_after > 10:
        problems.append(f"Ctrl-C did not end the demo within 10 s ({stopped_after})")
    if "ready" not in marks:
        problems.append("the demo never said it was ready")
    pip = subprocess.run([os.path.join(clone, ".venv", "bin", "python"), "-m", "pip", "list", "--format=freeze"],
                         capture_output=True, text=True).stdout.lower()
    installed = sorted(t for t in TEST_TOOLS if re.search(rf"^{t}==", pip, re.M))
    if installed:
        problems.append("test tools installed by make demo: " + ", ".join(installed))
    progress = [ln for ln in lines if re.match(r"\s+backfill \d+%", ln)]
    if len(progress) < 5:
        problems.append(f"the backfill showed {len(progress)} progress lines")
    received = os.path.join(clone, "examples", "platform", ".vigil", "alerts-received.log")
    triggers = [ln for ln in open(received).read().splitlines() if " trigger " in ln] if os.path.exists(received) else []
    if not any("api-availability-burn" in t for t in triggers):
        problems.append("the API spike's page never reached the incident bridge")
    others = [t for t in triggers if "api-availability-burn" not in t]
    if others:
        problems.append("other alerts paged: " + "; ".join(others))

    print()
    print("figures (seconds since `make demo`):")
    print(f"  install (venv + pip install -e .): {marks.get('installed', float('nan')):.0f}")
    if "history" in marks:
        print(f"  30 days of history loaded at: {marks['history']:.0f} ({lines[[i for i, ln in enumerate(lines) if ln.startswith('history loaded')][0]]})")
    print(f"  ready (the page received, the summary printed): {marks.get('ready', float('nan')):.0f}")
    print(f"  Ctrl-C to exit: {stopped_after if stopped_after is not None else float('nan'):.1f}")
    print(f"  load average at the start: {loads['start']}; when ready: {loads.get('ready', '-')} ({os.cpu_count()} cores)")
    print(f"  test tools installed: {', '.join(installed) or 'none'}")
    for p in problems:
        print(f"FAIL: {p}")
    print("ok: every check holds" if not problems else f"{len(problems)} check(s) failed", flush=True)
    if args.keep:
        print(f"the clone is kept in {clone}")
    else:
        print(f"removing {tmp} (its .venv and the 30 days' store)...", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
