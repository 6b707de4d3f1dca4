"""The Makefile's install step, as a newcomer meets it (README: `make demo` needs Python 3.11+).

Observed: `make demo` with a `python3` older than 3.11 created `.venv` with it and failed in pip
("requires a different Python"); the retry `make demo PYTHON=python3.11` kept that `.venv`
(`test -x .venv/bin/python`) and failed the same way until `make clean`.

The Makefile is run for real (GNU make, /bin/sh) on a copy of it; the Pythons it is given are small
scripts that answer the version check as an old or a new interpreter would and log what else they
are asked to do, so no virtual environment is built and nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A stand-in interpreter: `-c CODE` is the version check (exit 1 when OLD), `-V` prints the version,
# `-m venv --clear DIR` makes DIR/bin/python a NEW one, `-m pip ...` is logged.
FAKE = textwrap.dedent(
    """\
    #!/bin/sh
    echo "$(basename "$0") $VERSION $*" >> "$LOG"
    case "$1" in
      -c) [ "$OLD" = 1 ] && exit 1; exit 0 ;;
      -V) echo "Python $VERSION"; exit 0 ;;
      -m) if [ "$2" = venv ]; then
            mkdir -p "$4/bin"
            sed -e 's/^VERSION=.*/VERSION=3.12.1/' -e 's/^OLD=.*/OLD=0/' "$0" > "$4/bin/python"
            chmod +x "$4/bin/python"
          fi
          exit 0 ;;
    esac
    """
)


def fake_python(path: Path, version: str, old: bool, log: Path) -> Path:
    body = FAKE.replace("#!/bin/sh\n", f"#!/bin/sh\nVERSION={version}\nOLD={int(old)}\nLOG={log}\n", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return tmp_path


def make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(["make", "-s", "install", *args], cwd=project, capture_output=True, text=True, env=env, timeout=60)


def test_an_old_python_is_refused_with_what_to_run_and_creates_nothing(project: Path) -> None:
    log = project / "calls.log"
    old = fake_python(project / "py" / "python3.10", "3.10.13", old=True, log=log)
    got = make(project, f"PYTHON={old}")
    assert got.returncode == 2, got.stderr
    assert "vigil needs Python 3.11 or newer" in got.stderr
    assert "is Python 3.10.13" in got.stderr and "PYTHON=python3.11" in got.stderr
    assert not (project / ".venv").exists()
    assert " -m " not in log.read_text()  # no venv made, nothing installed


def test_a_missing_python_is_named(project: Path) -> None:
    got = make(project, f"PYTHON={project / 'nowhere' / 'python3'}")
    assert got.returncode == 2
    assert "is missing" in got.stderr


def test_a_venv_of_an_old_python_is_made_again_with_the_new_one(project: Path) -> None:
    log = project / "calls.log"
    fake_python(project / ".venv" / "bin" / "python", "3.10.13", old=True, log=log)  # left by the first try
    new = fake_python(project / "py" / "python3.12", "3.12.1", old=False, log=log)
    got = make(project, f"PYTHON={new}")
    assert got.returncode == 0, got.stderr
    calls = log.read_text().splitlines()
    assert any(c.startswith("python3.12 3.12.1 -m venv --clear .venv") for c in calls), calls
    pips = [c for c in calls if " -m pip " in c]
    assert pips and all(c.startswith("python 3.12.1 ") for c in pips), calls  # installed by the new .venv's Python
    assert (project / ".venv" / ".installed-run").exists()


def test_a_venv_of_a_new_enough_python_is_kept(project: Path) -> None:
    log = project / "calls.log"
    fake_python(project / ".venv" / "bin" / "python", "3.11.7", old=False, log=log)
    new = fake_python(project / "py" / "python3.12", "3.12.1", old=False, log=log)
    got = make(project, f"PYTHON={new}")
    assert got.returncode == 0, got.stderr
    calls = log.read_text().splitlines()
    assert not any("-m venv" in c for c in calls), calls
    assert any(c.startswith("python 3.11.7 -m pip install -q -e .") for c in calls), calls
