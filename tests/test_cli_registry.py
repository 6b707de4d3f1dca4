"""The lazy command registry: `vigil --help` imports no command, and the registry's one-line helps
are the commands' own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vigil.cli.main import COMMANDS, load_command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_registry_help_is_the_commands_own(name):
    cmd = load_command(name)
    assert cmd.name == name
    assert cmd.get_short_help_str(limit=500) == COMMANDS[name][1]


def _loaded_after(code: str) -> list[str]:
    probe = (
        code
        + "\nimport sys\nprint('LOADED:', ' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'sqlalchemy', 'numpy', 'httpx', 'rich', 'pydantic', 'ruamel', 'pglast', 'boto3', 'fastapi')"
        " or (m.startswith('vigil.cli.') and m not in ('vigil.cli.main', 'vigil.cli.common')))))"
    )
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.rpartition("LOADED:")[2].split()


def test_help_and_version_load_no_command_and_no_heavy_library():
    assert _loaded_after("from vigil.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass") == []
    assert _loaded_after("from vigil.cli.main import main\nmain(['--version'])") == []


def test_loading_a_spec_loads_neither_scipy_nor_sqlalchemy():
    loaded = _loaded_after("import vigil.spec\nvigil.spec.load_spec('examples/platform/vigil.yaml')")
    assert not [m for m in loaded if m.split(".")[0] in ("scipy", "sqlalchemy", "numpy", "httpx", "pglast", "boto3")], loaded
