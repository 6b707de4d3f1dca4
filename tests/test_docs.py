"""The README documents every command and every spec field, and its generated parts are current."""

from pathlib import Path

import pytest

from vigil.docs import cli_commands, render_readme, spec_fields

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_starts_with_the_two_commands():
    head = README.read_text()[:1200]
    assert "make demo" in head and "make test" in head


def test_generated_reference_sections_are_current():
    text = README.read_text()
    assert render_readme(text) == text, "run `.venv/bin/python -m vigil.docs` to regenerate the README reference"


@pytest.mark.parametrize("path", [row[0] for row in spec_fields()])
def test_every_spec_field_is_documented(path):
    assert f"`{path}`" in README.read_text()


@pytest.mark.parametrize("path,cmd", cli_commands(), ids=[p for p, _ in cli_commands()])
def test_every_command_is_documented_and_has_json(path, cmd):
    assert f"`{path}`" in README.read_text()
    assert any("--json" in getattr(p, "opts", []) for p in cmd.params), f"{path} lacks --json"
    assert (cmd.help or "").strip(), f"{path} has no help text"
