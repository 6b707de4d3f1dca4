"""``vigil gate deploy`` and ``vigil gate log``: the deploy gate and its record."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from vigil import exitcodes
from vigil.cli.common import actor, at_option, db_option, emit, env, json_option, spec_option, terminal_width, wrap
from vigil.errors import UsageError

if TYPE_CHECKING:
    from vigil.deploy.gate import GateRecord


@click.group("gate")
def gate_group() -> None:
    """The deploy gate: the budget policy's answer to "may this service ship now?"."""


@gate_group.command("deploy")
@click.option("--service", required=True, metavar="NAME", help="the service about to deploy")
@click.option("--label", "labels", multiple=True, metavar="LABEL", help="a deploy label; an override label of the policy passes a freeze (repeatable)")
@click.option("--reason", metavar="TEXT", help="why; mandatory with an override label, recorded")
@click.option("--release", metavar="ID", help="the release being deployed: its recorded migration and canary verdicts count")
@click.option("--what-if", "what_if", is_flag=True, help="only ask what the gate would answer (at --at, default now); never recorded")
@at_option
@spec_option
@db_option
@json_option
def deploy_cmd(service: str, labels: tuple[str, ...], reason: str | None, release: str | None, what_if: bool, at: str | None) -> int:
    """Exit 0 when the deploy may go, 1 when frozen or blocked (naming the rule, the SLO and the numbers).

    A real decision is made at the real clock and recorded (vigil gate log). --what-if asks what the
    gate would answer, at --at if given, and records nothing; its exit code is the would-be answer.
    """
    from vigil.deploy.gate import decision_json, gate_deploy

    e = env()
    if at is not None and not what_if:
        raise UsageError(
            "--at asks what the gate would have answered at another time; a real decision is made now",
            hint="add --what-if (never recorded), or drop --at",
        )
    if what_if:
        when = e.at(at)
        d = gate_deploy(e.loaded, e.open_store("read"), service, when, labels=labels, reason=reason, release=release, record=False)
    else:
        clock = e.decision_clock("a gate decision")
        loaded = e.loaded
        store = e.open_store("write")
        now = clock.now()
        d = gate_deploy(loaded, store, service, now, decided_at=now, labels=labels, reason=reason, actor=actor(), release=release)
    out = decision_json(d, what_if=what_if)

    def text() -> None:
        width = terminal_width()
        if what_if:
            click.echo(f"WHAT-IF at {out['at']} (not recorded)")
        if not d.allowed and d.blocks:
            head = f"BLOCKED {service}: a deploy check did not pass" + (" (no label passes a block)" if d.labels else "")
        elif d.allowed and d.overridden:
            head = f"ALLOWED (override) {service}: deploy passes the freeze"
        elif d.allowed:
            head = f"ALLOWED {service}: no freeze holds"
        else:
            head = f"FROZEN {service}: deploys are frozen"
        click.echo(head)
        for r in d.reasons:
            click.echo(wrap(r, width, first="  - ", rest="    "))
        for w in d.warnings:
            click.echo(wrap(w, width, first="  warning: ", rest="    "))
        if what_if:
            click.echo("  what-if: nothing recorded")
        else:
            click.echo(f"  decision #{d.id} recorded (vigil gate log)")

    emit(out, text)
    return exitcodes.OK if d.allowed else exitcodes.NO


def _why(d: GateRecord) -> str:
    """One short line of why: the override reason, the blocks, or the freezing rules and SLOs."""
    dec = d.decision
    if d.overridden:
        return f"override: {d.reason}"
    if dec.get("blocks"):
        return "blocked: " + "; ".join(dec["blocks"])
    fr = dec.get("freezes") or []
    if fr:
        seen: dict[str, list[str]] = {}
        for f in fr:
            consumed = f.get("budget_consumed")
            what = f.get("invalid") and "unreadable" or ("no data" if consumed is None else f"{consumed * 100:.1f}%")
            seen.setdefault(f["rule_name"], []).append(f"{f['slo']} {what}")
        return "; ".join(f"{rule}: {', '.join(dict.fromkeys(slos))}" for rule, slos in seen.items())
    return "no freeze"


def _clip(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: max(1, n - 1)] + "…"


@gate_group.command("log")
@click.option("--service", metavar="NAME", help="only this service")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="newest N decisions")
@spec_option
@db_option
@json_option
def log_cmd(service: str | None, limit: int) -> int:
    """Recorded gate decisions, newest first, with their inputs (--json for every detail)."""
    from vigil.deploy.gate import GateRecord

    e = env()
    rows = e.open_store("read").gate_decisions(service=service, limit=limit)
    out = [GateRecord.from_row(r) for r in rows]

    def text() -> None:
        width = terminal_width()
        if not out:
            click.echo("no gate decisions recorded" + (f" for service {service}" if service else ""))
            return
        click.echo("gate decisions, newest first (vigil gate log --json for every detail)")
        for d in out:
            answer = "override" if d.overridden else ("allowed" if d.allowed else ("BLOCKED" if d.decision.get("blocks") else "FROZEN"))
            labels = f" [{','.join(d.labels)}]" if d.labels else ""
            head = f"#{d.id} {d.decided_at} {d.service} {answer}{labels} by {d.actor or '-'}"
            click.echo(_clip(head, width))
            click.echo("    " + _clip(_why(d), width - 4))

    emit({"decisions": [d.to_dict() for d in out]}, text)
    return exitcodes.OK


COMMANDS = [gate_group]
