"""``vigil gate deploy`` and ``vigil gate log``: the deploy gate and its record."""

from __future__ import annotations


import click

from vigil import exitcodes
from vigil.cli.common import actor, at_option, console, db_option, emit, env, json_option, spec_option
from vigil.deploy.gate import decision_record, gate_deploy


@click.group("gate")
def gate_group() -> None:
    """The deploy gate: the budget policy's answer to "may this service ship now?"."""


@gate_group.command("deploy")
@click.option("--service", required=True, metavar="NAME", help="the service about to deploy")
@click.option("--label", "labels", multiple=True, metavar="LABEL", help="a deploy label; an override label of the policy passes a freeze (repeatable)")
@click.option("--reason", metavar="TEXT", help="why; mandatory with an override label, recorded")
@click.option("--release", metavar="ID", help="the release being deployed: its recorded migration and canary verdicts count")
@at_option
@spec_option
@db_option
@json_option
def deploy_cmd(service: str, labels: tuple[str, ...], reason: str | None, release: str | None, at: str | None) -> int:
    """Exit 0 when the deploy may go, 1 when frozen (naming the rule, the SLO and the numbers)."""
    e = env()
    d = gate_deploy(
        e.loaded, e.store, service, e.at(at), decided_at=e.clock.now(), labels=labels, reason=reason, actor=actor(),
        release=release,
    )

    def text() -> None:
        if not d.allowed and d.blocks:
            click.echo(f"BLOCKED {service}: a deploy check did not pass")
        elif d.allowed and d.overridden:
            click.echo(f"ALLOWED (override) {service}: deploy passes the freeze")
        elif d.allowed:
            click.echo(f"ALLOWED {service}: no freeze holds")
        else:
            click.echo(f"FROZEN {service}: deploys are frozen")
        for r in d.reasons:
            click.echo(f"  - {r}")
        for w in d.warnings:
            click.echo(f"  warning: {w}")
        click.echo(f"  decision #{d.id} recorded (vigil gate log)")

    emit(d.to_dict(), text)
    return exitcodes.OK if d.allowed else exitcodes.NO


@gate_group.command("log")
@click.option("--service", metavar="NAME", help="only this service")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="newest N decisions")
@spec_option
@db_option
@json_option
def log_cmd(service: str | None, limit: int) -> int:
    """Recorded gate decisions, newest first, with their inputs."""
    e = env()
    rows = e.store.gate_decisions(service=service, limit=limit)
    out = [decision_record(r) for r in rows]

    def text() -> None:
        from rich.table import Table

        t = Table(title="gate decisions (newest first)", title_justify="left")
        for col in ("#", "decided at", "service", "answer", "labels", "reason / rule", "actor"):
            t.add_column(col)
        for d in out:
            answer = "override" if d["overridden"] else ("allowed" if d["allowed"] else "FROZEN")
            why = d["reason"] or "; ".join(f["message"] for f in d["decision"]["freezes"]) or "-"
            t.add_row(str(d["id"]), d["decided_at"], d["service"], answer, ",".join(d["labels"]) or "-", why, d["actor"] or "-")
        console().print(t)

    emit({"decisions": out}, text)
    return exitcodes.OK


COMMANDS = [gate_group]
