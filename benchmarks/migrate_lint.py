"""Migration lint throughput, in files and statements per second.

Run: .venv/bin/python benchmarks/migrate_lint.py [--statements N] [--per-file K] [--cli]
Generates a corpus of N statements (default 10,000) in files of about K statements (default 10),
a mix of safe migrations and ones that trip most rules, then lints it the way `vigil migrate lint
DIR` does (reading every file) and prints the figures. Asserts nothing but that every file was
linted. ``--cli`` also times the whole command (`vigil migrate lint DIR --json`) in a subprocess.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vigil.deploy.migrations.lint import LintConfig, lint_paths  # noqa: E402

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
    "CREATE INDEX CONCURRENTLY c{i} ON users (lower(email))",
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--statements", type=int, default=10_000)
    ap.add_argument("--per-file", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cli", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "migrations"
        d.mkdir()
        files = generate(d, args.statements, args.per_file)
        size = sum(p.stat().st_size for p in d.iterdir())
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = lint_paths([d], LintConfig())
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        assert len(report.migrations) == files
        print(f"corpus: {files} files, {report.statements} statements, {size / 1024:.0f} KiB")
        print(
            f"findings: {report.count('error')} errors, {report.count('warning')} warnings, "
            f"{report.count('info')} info; classes: "
            + ", ".join(f"{c} {sum(1 for m in report.migrations if m.cls == c)}" for c in ("expand", "contract", "data-dependent"))
        )
        print(f"lint (library, best of {args.repeat}): {best:.3f} s = {files / best:,.0f} files/s, {report.statements / best:,.0f} statements/s")
        if args.cli:
            env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "vigil", "migrate", "lint", str(d), "--json"], capture_output=True, env=env, cwd=tmp)
            dt = time.perf_counter() - t0
            print(f"vigil migrate lint DIR --json (whole process, exit {p.returncode}): {dt:.3f} s = {files / dt:,.0f} files/s")


if __name__ == "__main__":
    main()
