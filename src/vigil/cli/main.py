"""The ``vigil`` command line. ``main(argv) -> exit code``; ``run()`` is the console script.

Commands load lazily: ``vigil --help`` imports none of them, and ``vigil gate deploy`` imports only
the gate's module (and what it needs). :data:`COMMANDS` maps each top-level name to its
``module:attribute`` and its one-line help (a test keeps the help equal to the command's own).
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback

import click

from vigil import __version__, exitcodes
from vigil.cli.common import Env, env
from vigil.errors import VigilError

COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("vigil.cli.check:check_cmd", "Validate a spec."),
    "push": ("vigil.cli.push:push_cmd", "Push telemetry: one JSON object per line, or a JSON array."),
    "slo": ("vigil.cli.slo:slo_group", "SLOs and error budgets."),
    "gate": ("vigil.cli.gate:gate_group", 'The deploy gate: the budget policy\'s answer to "may this service ship now?".'),
    "serve": ("vigil.cli.serve:serve_cmd", "Serve the JSON API (push, SLO status, deploy gate) on HOST:PORT."),
    "store": ("vigil.cli.store:store_group", "The state store: create or migrate it, and show what it holds."),
    "token": ("vigil.cli.token:token_group", "API tokens with names and roles for vigil serve (a tokens file)."),
    "simulate": ("vigil.cli.simulate:simulate_cmd", "Synthetic traffic for the example platform (examples/platform/vigil.yaml)."),
    "openslo": (
        "vigil.cli.openslo:openslo_group",
        "OpenSLO v1: export the spec's SLOs as OpenSLO documents, import OpenSLO documents as a spec.",
    ),
    "canary": (
        "vigil.cli.canary:canary_group",
        "Canary analysis: judge a canary against its baseline, and the canary deploy loop.",
    ),
    "migrate": (
        "vigil.cli.migrate:migrate_group",
        "Database migration safety: lint SQL migrations, verify them on Stage, apply them with a ledger.",
    ),
    "backup": (
        "vigil.cli.backup:backup_group",
        "Backups: PostgreSQL through pgBackRest (config from the spec, WAL archiving, retention, verify).",
    ),
    "drill": (
        "vigil.cli.drill:drill_group",
        "DR drills: canary ledger, disaster, restore, verified write, search rebuild, report with gaps.",
    ),
    "search": (
        "vigil.cli.search:search_group",
        "Search index backups: snapshot, schema and export; rebuild from a snapshot plus the outbox.",
    ),
    "secrets": (
        "vigil.cli.secrets:secrets_group",
        "Secret scanning: a working tree or the lines a git range adds, with a baseline of waivers.",
    ),
    "findings": (
        "vigil.cli.findings:findings_group",
        "Security findings: import SARIF into a ledger per service and release, list, show and waive.",
    ),
    "waf": ("vigil.cli.waf:waf_group", "The WAF suite (go-ftw YAML, scored as GoTestWAF), the rate-limit check and the AWS WAFv2 audit."),
    "data": ("vigil.cli.data:data_group", "Data classification: the registry against the live PostgreSQL schema; LF-Tags and grants exports."),
    "probe": ("vigil.cli.probe:probe_group", "Runtime SSRF (CWE-918) and SSTI (CWE-1336) probes with an out-of-band canary; SARIF out."),
    "alerts": ("vigil.cli.alerts:alerts_group", "Alert rules: active alerts, and unit tests of the rules (vigil alerts test)."),
    "cost": (
        "vigil.cli.cost:cost_group",
        "FinOps: import cost data (FOCUS, CUR 2.0, Cost Explorer), budgets, anomalies, unit cost, rightsizing, audit.",
    ),
    "export": ("vigil.cli.export:export_group", "Export the spec's alerts and dashboards: Prometheus rules, an Alertmanager config, CloudWatch alarms, Grafana and CloudWatch dashboards."),
    "trace": (
        "vigil.cli.trace:trace_group",
        "Traces received over OTLP: show one as a tree, check the service path of recent ones.",
    ),
    "cloudwatch": (
        "vigil.cli.cloudwatch:cloudwatch_group",
        "The platform's custom metrics to CloudWatch: EMF log lines, or PutMetricData in batches.",
    ),
    "silence": (
        "vigil.cli.silence:silence_group",
        "Silences and maintenance windows: mute matching alerts for a while, with an author and a reason.",
    ),
}


def load_command(name: str) -> click.Command:
    target, _ = COMMANDS[name]
    mod, attr = target.split(":")
    cmd = getattr(importlib.import_module(mod), attr)
    if not isinstance(cmd, click.Command):  # pragma: no cover - a broken registry entry
        raise TypeError(f"{target} is not a click command")
    return cmd


class LazyGroup(click.Group):
    """A group whose commands are imported when used, and whose help needs none of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="show tracebacks for errors")
@click.version_option(__version__, prog_name="vigil")
def cli(debug: bool) -> None:
    """vigil: your reliability plan (vigil.yaml) as running checks with evidence."""
    env().debug = debug


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    ctx_env = Env()
    json_mode = "--json" in args
    ctx_env.debug = "--debug" in args
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
    except Exception as e:  # a bug of ours: one line, never a traceback without --debug
        if ctx_env.debug:
            traceback.print_exc()
        msg = f"internal error: {type(e).__name__}: {str(e)[:300]}"
        if json_mode:
            click.echo(json.dumps({"error": {"code": "internal", "message": msg, "hint": None}}, indent=2))
        click.echo(f"error: {msg}", err=True)
        click.echo("hint: this is a bug in vigil; run again with --debug for the traceback and report it", err=True)
        return exitcodes.INTERNAL
    finally:
        try:
            ctx_env.close()
        except Exception:  # closing must not turn an answer into a traceback
            pass


def run() -> None:
    sys.exit(main())
