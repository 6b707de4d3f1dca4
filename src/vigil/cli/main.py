"""The ``vigil`` command line. ``main(argv) -> exit code``; ``run()`` is the console script."""

from __future__ import annotations

import json
import sys
import traceback

import click

from vigil import __version__, exitcodes
from vigil.cli.common import Env, env
from vigil.errors import VigilError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="show tracebacks for errors")
@click.version_option(__version__, prog_name="vigil")
def cli(debug: bool) -> None:
    """vigil: your reliability plan (vigil.yaml) as running checks with evidence."""
    env().debug = debug


def _register() -> None:
    from vigil.cli import backup, canary, check, drill, gate, migrate, openslo, push, search, serve, simulate, slo

    for mod in (check, push, slo, gate, serve, simulate, openslo, canary, migrate, backup, drill, search):
        for cmd in mod.COMMANDS:
            cli.add_command(cmd)


_register()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    ctx_env = Env()
    json_mode = "--json" in args
    try:
        rv = cli.main(args=args, prog_name="vigil", standalone_mode=False, obj=ctx_env)
        return rv if isinstance(rv, int) else exitcodes.OK
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return exitcodes.USAGE
    except VigilError as e:
        if ctx_env.debug:
            traceback.print_exc()
        if json_mode:
            click.echo(json.dumps({"error": e.to_dict()}, indent=2))
        click.echo(f"error: {e.message}", err=True)
        if e.hint:
            click.echo(f"hint: {e.hint}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return exitcodes.OK
    finally:
        ctx_env.close()


def run() -> None:
    sys.exit(main())
