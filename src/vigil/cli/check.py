"""``vigil check [SPEC]``: validate a spec."""

from __future__ import annotations

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option
from vigil.errors import SpecError


@click.command("check")
@click.argument("spec_file", required=False, metavar="[SPEC]")
@spec_option
@json_option
def check_cmd(spec_file: str | None) -> int:
    """Validate a spec. Errors name file, line and spec path; exit 2 when invalid."""
    e = env()
    if spec_file:
        e.spec_path = spec_file
    try:
        loaded = e.loaded
    except SpecError as err:
        emit(
            {"valid": False, "file": e.spec_path, "issues": [i.to_dict() for i in err.issues]},
            lambda: [click.echo(str(i), err=True) for i in err.issues],
        )
        return exitcodes.USAGE
    s = loaded.spec
    summary = {
        "valid": True,
        "file": e.spec_path,
        "sha256": loaded.sha256,
        "services": sorted(s.services),
        "slos": [x.name for x in s.slos],
        "freeze_rules": len(s.policy.freeze),
        "issues": [],
    }
    emit(
        summary,
        f"ok: {e.spec_path}: {len(s.services)} services, {len(s.slos)} SLOs, {len(s.policy.freeze)} freeze rules",
    )
    return exitcodes.OK


COMMANDS = [check_cmd]
