"""``vigil slo status``: SLOs, error budgets and burn rates at a time."""

from __future__ import annotations

import click

from vigil import exitcodes
from vigil.cli.common import at_option, console, db_option, emit, env, json_option, spec_option
from vigil.clock import isoformat
from vigil.errors import NotFoundError
from vigil.slo.evaluate import evaluate_slos
from vigil.telemetry.source import EmbeddedSource


@click.group("slo")
def slo_group() -> None:
    """SLOs and error budgets."""


def _pct(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def _human(seconds: float | None) -> str:
    """Two units at most: 164d 22h, 5h 12m, 12m 30s, 45s."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s >= 365 * 86400:
        return f"{s / (365 * 86400):.1f}y"
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= size:
            q, r = divmod(s, size)
            return f"{q}{unit} {r // subsize}{sub}" if r // subsize else f"{q}{unit}"
    return f"{s}s"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


@slo_group.command("status")
@at_option
@click.option("--service", "services", multiple=True, metavar="NAME", help="only SLOs of this service (repeatable)")
@click.option("--slo", "names", multiple=True, metavar="NAME", help="only this SLO (repeatable)")
@spec_option
@db_option
@json_option
def status_cmd(at: str | None, services: tuple[str, ...], names: tuple[str, ...]) -> int:
    """Budget consumed and remaining, burn rates, multiwindow alerts and state of every SLO."""
    e = env()
    spec = e.loaded.spec
    when = e.at(at)
    slos = list(spec.slos)
    for svc in services:
        if svc not in spec.services:
            raise NotFoundError(f"unknown service {svc!r}", hint=f"services: {', '.join(sorted(spec.services))}")
    for n in names:
        if n not in {s.name for s in slos}:
            raise NotFoundError(f"unknown SLO {n!r}", hint=f"SLOs: {', '.join(s.name for s in slos)}")
    if services:
        slos = [s for s in slos if s.service in services]
    if names:
        slos = [s for s in slos if s.name in names]
    statuses = evaluate_slos(slos, EmbeddedSource(e.store), when)
    data = {"at": isoformat(when), "slos": [s.to_dict() for s in statuses]}

    def text() -> None:
        from rich.table import Table

        t = Table(title=f"SLO status at {isoformat(when.replace(microsecond=0))}", title_justify="left")
        for col in ("SLO", "service", "objective", "window", "SLI", "budget used", "left", "burn 1h", "burn 6h", "exhausts in", "alerts", "state"):
            t.add_column(col, justify="right" if col in ("objective", "SLI", "budget used", "left", "burn 1h", "burn 6h", "exhausts in") else "left")
        for d in data["slos"]:
            tte = d["time_to_exhaustion"]
            state = d["state"]
            style = {"ok": "green", "breaching": "bold red", "no_data": "yellow"}[state]
            t.add_row(
                d["name"],
                d["service"],
                f"{d['objective_percent']:g}%",
                d["window"]["spec"],
                _pct(d["sli"]["value"]),
                _pct(d["budget"]["consumed"], 1),
                _pct(d["budget"]["remaining"], 1),
                _rate(d["burn_rates"]["1h"]),
                _rate(d["burn_rates"]["6h"]),
                _human(tte),
                ",".join(d["mwmb_holding"]) or "-",
                f"[{style}]{state}[/{style}]",
            )
        c = console()
        c.print(t)
        for d in data["slos"]:
            for w in d["warnings"]:
                c.print(f"[yellow]warning[/yellow] {d['name']}: {w}")

    emit(data, text)
    return exitcodes.OK


COMMANDS = [slo_group]
