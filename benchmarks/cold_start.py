"""Cold start of the CLI a pipeline calls: `vigil --help`, `vigil gate deploy --what-if`, and
`import vigil.spec`, beside a bare `python -c 'import click'` in the same environment.

Prints the median CPU time (user + system) of N runs of each. The goal (issue 12): `vigil --help`
within 3x of `import click`.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "platform" / "vigil.yaml"
N = int(os.environ.get("RUNS", "15"))


def cpu(cmd: list[str], env: dict | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(cmd: list[str], env: dict | None = None) -> float:
    return statistics.median(cpu(cmd, env) for _ in range(N))


def main() -> None:
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "VIGIL_DB": f"sqlite:///{d}/vigil.db"}
        subprocess.run([py, "-m", "vigil", "store", "init", "--spec", str(SPEC)], env=env, check=True, capture_output=True)
        rows = [
            ("python -c 'import click'", [py, "-c", "import click"], None),
            ("vigil --help", [py, "-m", "vigil", "--help"], None),
            ("python -c 'import vigil.spec'", [py, "-c", "import vigil.spec"], None),
            ("vigil check (example spec)", [py, "-m", "vigil", "check", str(SPEC)], None),
            ("vigil gate deploy --what-if", [py, "-m", "vigil", "gate", "deploy", "--service", "api", "--what-if", "--spec", str(SPEC)], env),
        ]
        base = None
        print(f"median CPU seconds of {N} runs")
        for name, cmd, e in rows:
            t = median(cmd, e)
            base = base or t
            print(f"  {name:<34} {t * 1000:7.1f} ms  {t / base:5.1f}x")


if __name__ == "__main__":
    main()
