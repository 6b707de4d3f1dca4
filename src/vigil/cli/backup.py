"""``vigil backup setup | run | list | verify | status``: PostgreSQL backups through pgBackRest.

Exit codes: 0 ok; 1 a check said no (verify found a problem, status is unhealthy, setup needs a
restart); 2 usage or spec error; 3 pgBackRest or PostgreSQL failed (the error names the command,
pgBackRest's own message and what to do).
"""

from __future__ import annotations

import click

from vigil import exitcodes
from vigil.cli.common import at_option, console, db_option, emit, env, json_option, spec_option


@click.group("backup")
def backup_group() -> None:
    """Backups: PostgreSQL through pgBackRest (config from the spec, WAL archiving, retention, verify)."""


def _progress(msg: str) -> None:
    if not env().json_mode:
        click.echo(msg, err=True)


def _pgb():
    from vigil.dr.postgres.ops import engine_for

    return engine_for(env().loaded)


@backup_group.command("setup")
@click.option("--no-check", is_flag=True, help="skip `pgbackrest check` (it waits for a WAL segment to be archived)")
@spec_option
@json_option
def setup_cmd(no_check: bool) -> int:
    """Write the pgBackRest config, set archive_command and archive_timeout, create the stanza, check.

    Exit 1 when PostgreSQL must be restarted first (archive_mode was off); run it again afterwards.
    """
    from vigil.dr.postgres.ops import setup

    r = setup(_pgb(), check=not no_check)

    def text() -> None:
        click.echo(f"pgBackRest config written: {r['config']}")
        a = r["archiving"]
        click.echo(f"archiving: {'set ' + ', '.join(a['changed']) if a['changed'] else 'already as the spec says'}")
        if r["restart_needed"]:
            click.echo(f"RESTART NEEDED: {r['next']}")
            return
        click.echo(f"stanza {r['stanza']} created" + (", check passed (a WAL segment reached every repository)" if r.get("checked") else ""))

    emit(r, text)
    return exitcodes.NO if r["restart_needed"] else exitcodes.OK


@backup_group.command("run")
@click.option("--type", "type_", type=click.Choice(["full", "diff", "incr"]), default="incr", show_default=True,
              help="backup type; pgBackRest makes the first one full")
@click.option("--repo", "repos", type=click.IntRange(1, 4), multiple=True, metavar="N", help="only this repository (repeatable; default all)")
@spec_option
@db_option
@json_option
def run_cmd(type_: str, repos: tuple[int, ...]) -> int:
    """Back up into each repository (retention is enforced after each backup); recorded in the store."""
    from vigil.dr.postgres.ops import run_backups

    e = env()
    # up front, before pgBackRest runs: the record is evidence the gate and the DR reports read
    clock = e.decision_clock("a backup run (evidence the gate and the DR reports read)", hint="unset VIGIL_NOW")
    r = run_backups(_pgb(), type_=type_, repos=repos, clock=clock, store=e.store, progress=_progress)

    def text() -> None:
        for x in r["results"]:
            if x["ok"]:
                b = x.get("backup") or {}
                click.echo(f"repo{x['repo']}: {x['type']} backup {x['label']} in {x['seconds']:.1f}s"
                           + (f", {b['repo_delta'] / 1048576:.1f} MiB new in the repository" if b.get("repo_delta") is not None else ""))
            else:
                click.echo(f"repo{x['repo']}: FAILED: {x['error']}")
                if x.get("hint"):
                    click.echo(f"  hint: {x['hint']}")

    emit(r, text)
    return exitcodes.OK if r["ok"] else exitcodes.EXTERNAL


@backup_group.command("list")
@click.option("--repo", "repos", type=click.IntRange(1, 4), multiple=True, metavar="N", help="only this repository (repeatable)")
@spec_option
@json_option
def list_cmd(repos: tuple[int, ...]) -> int:
    """The backups pgBackRest holds (`pgbackrest info --output=json`), oldest first, per repository."""
    from vigil.dr.postgres.ops import list_backups

    r = list_backups(_pgb(), repos=repos)

    def text() -> None:
        from rich.table import Table

        t = Table(title=f"stanza {r['stanza']}: {r['status']['message']}", title_justify="left")
        for col in ("repo", "label", "type", "start", "stop", "size", "stored (new)", "WAL start", "WAL stop"):
            t.add_column(col)
        for b in r["backups"]:
            t.add_row(str(b["repo"]), b["label"], b["type"], b["start"], b["stop"], _mib(b["size"]), _mib(b["repo_delta"]),
                      b["wal_start"] or "-", b["wal_stop"] or "-")
        console().print(t)
        for a in r["archives"]:
            click.echo(f"repo{a['repo']} WAL archive {a['id']}: {a['min'] or '-'} .. {a['max'] or '-'}")

    emit(r, text)
    return exitcodes.OK


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


@backup_group.command("verify")
@click.option("--repo", "repos", type=click.IntRange(1, 4), multiple=True, metavar="N", help="only this repository (repeatable)")
@spec_option
@json_option
def verify_cmd(repos: tuple[int, ...]) -> int:
    """pgBackRest's verify (checksums of backups and WAL) plus a WAL continuity check. Exit 1 on a problem."""
    from vigil.dr.postgres.ops import verify

    r = verify(_pgb(), repos=repos)

    def text() -> None:
        for x in r["repos"]:
            v, w = x["verify"], x["wal"]
            click.echo(f"repo{x['repo']}: {'ok' if x['ok'] else 'PROBLEMS'}")
            click.echo(f"  pgbackrest verify: {v['status']}; {len(v['backups'])} backup(s), "
                       + ", ".join(f"{b['label']} {b['status']}" for b in v["backups"]))
            click.echo(f"  WAL {x['archive_id'] or '-'}: {w['segments']} segment(s) {w['first'] or '-'} .. {w['last'] or '-'}, "
                       f"{len(w['gaps'])} gap(s)")
            for p in w["problems"]:
                click.echo(f"    - {p}")

    emit(r, text)
    return exitcodes.OK if r["ok"] else exitcodes.NO


@backup_group.command("status")
@click.option("--no-push", is_flag=True, help="do not store the gauges in the telemetry store")
@at_option
@spec_option
@db_option
@json_option
def status_cmd(no_push: bool, at: str | None) -> int:
    """Backup age per repository and archive lag, pushed as gauges for SLOs and alerts. Exit 1 when unhealthy."""
    from vigil.dr.postgres.ops import status

    e = env()
    ingestor = None
    if not no_push:
        from vigil.telemetry.push import Ingestor

        ingestor = Ingestor(e.loaded.spec, e.store)
    r = status(_pgb(), now=e.at(at), ingestor=ingestor)

    def text() -> None:
        click.echo(f"stanza {r['stanza']} at {r['at']}: {'ok' if r['ok'] else 'PROBLEMS'}")
        for x in r["repos"]:
            n = x["newest"]
            click.echo(f"  repo{x['repo']} ({x['role']}): {x['backups']} backup(s)"
                       + (f", newest {n['label']} ({n['type']}) stopped {n['stop']}" if n else ""))
        a = r["archiver"]
        if a:
            click.echo(f"  archiver: archive_mode={a['archive_mode']} archive_timeout={a['archive_timeout_seconds']}s "
                       f"last archived {a['last_archived_wal'] or '-'} at {a['last_archived_time'] or '-'}, failures {a['failed_count']}")
        for g in r["metrics"]:
            lab = ",".join(f'{k}="{v}"' for k, v in g["labels"].items())
            click.echo(f"  {g['metric']}{{{lab}}} {g['value']:g}")
        for p in r["problems"]:
            click.echo(f"  problem: {p}")
        if "pushed" in r:
            click.echo(f"  {r['pushed']['accepted']} gauge sample(s) stored")

    emit(r, text)
    return exitcodes.OK if r["ok"] else exitcodes.NO


COMMANDS = [backup_group]

# AWS subcommands (s3-policy, aurora) live in their own module and add themselves to backup_group.
import vigil.cli.backup_aws  # noqa: E402,F401
