"""The example platform spec is a working example: everything it names exists in the project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import EXAMPLE_SPEC
from vigil.spec import load_spec

BASE = EXAMPLE_SPEC.parent


def test_the_example_names_only_files_the_project_has():
    spec = load_spec(EXAMPLE_SPEC).spec
    text = EXAMPLE_SPEC.read_text()
    assert "DESIGN.md" not in text  # the project does not ship it
    hooks = spec.canary.run.hooks  # type: ignore[union-attr]
    for hook in (hooks.set_weight, hooks.rollback, hooks.promote):
        if hook is not None and hook.command:
            exe = hook.command[0]
            p = Path(exe) if Path(exe).is_absolute() else BASE / exe
            assert p.is_file() and os.access(p, os.X_OK), exe
    mdir = BASE / spec.migrations.dir  # type: ignore[union-attr]
    assert mdir.is_dir() and sorted(mdir.glob("*.sql"))


def test_the_example_hook_sets_the_weight(tmp_path):
    hook = BASE / "hooks" / "set-lambda-alias-weight.sh"
    env = {**os.environ, "VIGIL_CANARY_RUN_ID": "7", "VIGIL_CANARY_ACTION": "set_weight"}
    p = subprocess.run([str(hook), "25"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0 and "canary weight 25% (run 7" in p.stdout
    assert (tmp_path / ".vigil" / "canary-weight").read_text() == "25\n"
    for bad in ("101", "-1", "abc", ""):
        p = subprocess.run([str(hook), bad], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and (tmp_path / ".vigil" / "canary-weight").read_text() == "25\n"


def test_the_example_migrations_lint_clean(cli):
    r = cli("migrate", "lint", "--spec", EXAMPLE_SPEC, "--json")
    assert r.code == 0, r.out


def test_the_packaged_copy_is_the_example():
    """The installed package carries the example (vigil/examples/platform.yaml); it never drifts."""
    packaged = Path(__file__).resolve().parent.parent / "src" / "vigil" / "examples" / "platform.yaml"
    assert packaged.read_text() == EXAMPLE_SPEC.read_text()
