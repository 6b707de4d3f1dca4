"""Migration lint speed: the whole `vigil migrate lint` command beside squawk, and the library.

Run: .venv/bin/python benchmarks/migrate_lint.py [--corpus DIR ...] [--repeat N] [--squawk PATH]

With ``--corpus`` it lints those migration directories (for example checkouts of public projects'
plain-SQL migrations; each directory is linted as one `vigil migrate lint DIR...` run); without it,
it generates a corpus of ``--statements`` statements (default 10,000) in files of about
``--per-file`` statements, a mix of safe migrations and ones that trip most rules. Then, in
interleaved rounds (the machine is shared, so every tool sees the same load), it times:

- ``squawk`` on the same up files, when it is installed (``pip install squawk-cli``; found on PATH,
  next to this Python, or given with ``--squawk``);
- ``vigil migrate lint DIR...`` as a user runs it (worker processes when there is enough SQL), and
  with ``--jobs 1``;
- the library call (``lint_paths``) in this process, serial and with two worker processes.

Wall time on a shared machine swings with its load (printed at the end); CPU time (user + system
of the process and its children) is printed too, and moves much less.

It prints the minimum and the median wall time of each, and vigil's time as a multiple of squawk's.
It asserts nothing about speed; it checks only that every file was linted.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vigil.deploy.migrations.lint import LintConfig, lint_paths, plan_jobs  # noqa: E402

GOOD = [
    "CREATE TABLE t{i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL, created timestamptz NOT NULL DEFAULT now())",
    "ALTER TABLE users ADD COLUMN nick{i} text",
    "ALTER TABLE users ADD COLUMN flag{i} boolean NOT NULL DEFAULT false",
    "ALTER TABLE orders ADD CONSTRAINT fk{i} FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
    "ALTER TABLE orders VALIDATE CONSTRAINT fk{i}",
    "CREATE OR REPLACE VIEW v{i} AS SELECT id, email FROM users WHERE email LIKE '%@example.com'",
    "INSERT INTO plans (name, price) VALUES ('p{i}', {i})",
    "COMMENT ON TABLE users IS 'accounts {i}'",
    "CREATE INDEX t{i}_email ON t{i} (email)",
    "ALTER TABLE users ALTER COLUMN nick SET DEFAULT 'anon'",
]
BAD = [
    "CREATE INDEX users_e{i} ON users (email, created_at)",
    "ALTER TABLE users ADD COLUMN token{i} uuid DEFAULT gen_random_uuid()",
    "ALTER TABLE users ALTER COLUMN age TYPE bigint",
    "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
    "ALTER TABLE orders ADD CONSTRAINT ck{i} CHECK (total >= 0)",
    "ALTER TABLE users ADD CONSTRAINT uq{i} UNIQUE (email)",
    "ALTER TABLE users DROP COLUMN legacy{i}",
    "ALTER TABLE users RENAME COLUMN name TO full_name{i}",
    "ALTER TABLE users ADD COLUMN tenant{i} bigint NOT NULL",
    "UPDATE users SET plan = 'free' WHERE plan IS NULL AND id % 100 = {i} % 100",
    "DROP TABLE old_{i}",
    "ALTER TABLE users ALTER COLUMN plan DROP DEFAULT",
    "ALTER TYPE state RENAME VALUE 's{i}' TO 't{i}'",
]


def generate(directory: Path, statements: int, per_file: int, seed: int = 7) -> int:
    rnd = random.Random(seed)
    n = files = 0
    while n < statements:
        k = min(per_file, statements - n)
        bad = rnd.random() < 0.4
        lines = []
        if rnd.random() < 0.5:
            lines.append("SET lock_timeout = '5s';")
            k -= 1
        for _ in range(max(k, 1)):
            i = n + len(lines)
            tmpl = rnd.choice(BAD if bad and rnd.random() < 0.5 else GOOD)
            lines.append(f"-- step {i}\n" + tmpl.format(i=i) + ";")
        n += len(lines)
        files += 1
        (directory / f"{files:05d}_m{files}.sql").write_text("\n".join(lines) + "\n")
    return files


def find_squawk(given: str | None) -> str | None:
    if given:
        return given
    for cand in (shutil.which("squawk"), str(Path(sys.executable).with_name("squawk"))):
        if cand and Path(cand).exists():
            return cand
    return None


def up_files(dirs: list[Path]) -> list[Path]:
    return sorted(p for d in dirs for p in d.iterdir() if p.name.endswith(".sql") and not p.name.endswith(".down.sql"))


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children)."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", nargs="+", type=Path, help="migration directories to lint (default: a generated corpus)")
    ap.add_argument("--statements", type=int, default=10_000)
    ap.add_argument("--per-file", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--squawk", help="the squawk executable (default: on PATH or next to this Python)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.corpus:
            dirs = [d.resolve() for d in args.corpus]
        else:
            d = Path(tmp) / "migrations"
            d.mkdir()
            generate(d, args.statements, args.per_file)
            dirs = [d]
        files = up_files(dirs)
        size = sum(p.stat().st_size for p in files)
        report = lint_paths(dirs, LintConfig(), jobs=1)
        print(f"corpus: {len(report.migrations)} files linted ({len(files)} up files), {report.statements} statements, {size / 1024:.0f} KiB")
        print(f"findings: {report.count('error')} errors, {report.count('warning')} warnings, {report.count('info')} info")
        texts = [(str(p), p.read_text(errors="replace")) for p in files]
        print(f"worker processes chosen for it: {plan_jobs(texts)} (os.cpu_count() = {os.cpu_count()})")

        squawk = find_squawk(args.squawk)
        # as an installed vigil runs: with bytecode (pip compiles it at install; a checkout run with
        # PYTHONDONTWRITEBYTECODE would recompile every module on every start), kept out of the tree
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONPYCACHEPREFIX=str(Path(tmp) / "pyc"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("VIGIL_SPEC", None)
        vigil = [sys.executable, "-m", "vigil"]
        exe = Path(sys.executable).with_name("vigil")
        if exe.exists():
            vigil = [str(exe)]  # the console script, as a user runs it
        cmds: dict[str, list[str]] = {}
        if squawk:
            cmds["squawk"] = [squawk, "--reporter", "gcc", *map(str, files)]
        cmds["vigil migrate lint"] = [*vigil, "migrate", "lint", *map(str, dirs)]
        cmds["vigil migrate lint --jobs 1"] = [*vigil, "migrate", "lint", "--jobs", "1", *map(str, dirs)]
        cmds["vigil migrate lint --jobs 2"] = [*vigil, "migrate", "lint", "--jobs", "2", *map(str, dirs)]
        for cmd in cmds.values():  # warm-up: bytecode written, files in the page cache
            timed(cmd, Path(tmp), env)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        cpu: dict[str, list[float]] = {k: [] for k in cmds}
        times["library, jobs=1"] = []
        times["library, jobs=2"] = []
        for _ in range(args.repeat):  # interleaved: each round sees the same machine load
            for name, cmd in cmds.items():
                wall, used = timed(cmd, Path(tmp), env)
                times[name].append(wall)
                cpu[name].append(used)
            for name, jobs in (("library, jobs=1", 1), ("library, jobs=2", 2)):
                t0 = time.perf_counter()
                r = lint_paths(dirs, LintConfig(), jobs=jobs)
                times[name].append(time.perf_counter() - t0)
                assert len(r.migrations) == len(report.migrations)
        if not squawk:
            print("squawk: not installed (pip install squawk-cli), so no comparison")
        head = f"{'wall time':32} {'min':>8} {'median':>8}"
        print(head + (f" {'x squawk (min)':>15} {'x squawk (median)':>18}" if squawk else ""))
        for name, ts in times.items():
            line = f"{name:32} {min(ts):7.3f}s {statistics.median(ts):7.3f}s"
            if squawk:
                sq = times["squawk"]
                line += f" {min(ts) / min(sq):15.2f} {statistics.median(ts) / statistics.median(sq):18.2f}"
            print(line)
        print(f"{'CPU time (user + system)':32} {'min':>8} {'median':>8}")
        for name, ts in cpu.items():
            print(f"{name:32} {min(ts):7.3f}s {statistics.median(ts):7.3f}s")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"({args.repeat} interleaved rounds; load average at the end {load:.2f})")


if __name__ == "__main__":
    main()
