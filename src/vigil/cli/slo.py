"""``vigil slo status``: SLOs, error budgets and burn rates at a time."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap

import click

from vigil import exitcodes
from vigil.cli.common import at_option, db_option, emit, env, json_option, spec_option
from vigil.clock import isoformat
from vigil.errors import NotFoundError
from vigil.slo.evaluate import evaluate_slos
from vigil.telemetry.sources import open_source


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
    statuses = evaluate_slos(slos, open_source(spec.telemetry, e.store), when)
    rows = [s.to_dict() for s in statuses]
    if spec.costs is not None:  # FinOps (issue 13): each SLO's service cost per 1,000 valid events
        from vigil.finops.unitcost import slo_unit_costs

        units = slo_unit_costs(e.store, spec, statuses, when)
        for r in rows:
            r["unit_cost"] = units.get(r["name"])
    data = {"at": isoformat(when), "slos": rows}

    def text() -> None:
        width = _width()
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(f"SLO status at {isoformat(when.replace(microsecond=0))}")
        for line in render_table(rows, width, color=color):
            click.echo(line)
        for d in rows:
            for w in d["warnings"]:
                click.echo(textwrap.fill(f"warning: {d['name']}: {w}", width=max(40, width), subsequent_indent="  ",
                                         break_long_words=False, break_on_hyphens=False))

    emit(data, text)
    return exitcodes.OK


def _width() -> int:
    """Columns to fit: $COLUMNS, else the terminal's; piped output without $COLUMNS is not narrowed."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) >= 20:
        return int(cols)
    if sys.stdout.isatty():
        return max(20, shutil.get_terminal_size((100, 24)).columns)
    return 10_000


STATE_COLORS = {"ok": "green", "breaching": "red", "no_data": "yellow", "invalid_sli": "red"}

# (header, right-aligned, priority: lower is kept first when the terminal is narrow)
COLUMNS: tuple[tuple[str, bool, int], ...] = (
    ("SLO", False, 0),
    ("service", False, 9),
    ("objective", True, 8),
    ("window", False, 11),
    ("SLI", True, 3),
    ("used", True, 2),
    ("left", True, 6),
    ("elapsed", True, 5),
    ("burn 1h", True, 4),
    ("burn 6h", True, 10),
    ("exhausts in", True, 7),
    ("alerts", False, 12),
    ("state", False, 1),
)


def _elapsed(d: dict) -> str:
    cov = d["coverage"]
    if cov["from"] == "none":
        return "-"
    return _pct(cov["fraction"], 1) + ("" if cov["complete"] else "*")


def _cells(d: dict) -> list[str]:
    return [
        d["name"],
        d["service"],
        f"{d['objective_percent']:g}%",
        d["window"]["spec"],
        _pct(d["sli"]["value"]),
        _pct(d["budget"]["consumed"], 1),
        _pct(d["budget"]["remaining"], 1),
        _elapsed(d),
        _rate(d["burn_rates"]["1h"]),
        _rate(d["burn_rates"]["6h"]),
        _human(d["time_to_exhaustion"]),
        ",".join(d["mwmb_holding"]) or "-",
        d["state"],
    ]


def render_table(rows: list[dict], width: int, *, color: bool = False) -> list[str]:
    """The status table as plain lines no wider than ``width``: whole columns are left out (least
    important first) rather than cells cut or wrapped; no box drawing, colour only when asked."""
    cells = [_cells(d) for d in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, (h, _, _) in enumerate(COLUMNS)]
    gap = 2
    keep: set[int] = set()
    used = 0
    for i in sorted(range(len(COLUMNS)), key=lambda i: COLUMNS[i][2]):
        need = widths[i] + (gap if keep else 0)
        if not keep or used + need <= width:
            keep.add(i)
            used += need
    shown = [i for i in range(len(COLUMNS)) if i in keep]

    def line(values: list[str], state: str | None = None) -> str:
        parts = []
        for i in shown:
            v = values[i]
            cell = v.rjust(widths[i]) if COLUMNS[i][1] else v.ljust(widths[i])
            if color and state is not None and COLUMNS[i][0] == "state":
                cell = click.style(cell, fg=STATE_COLORS.get(state), bold=state == "breaching")
            parts.append(cell)
        return (" " * gap).join(parts).rstrip()

    out = [line([h for h, _, _ in COLUMNS])]
    out += [line(c, d["state"]) for c, d in zip(cells, rows)]
    partial = [d for d in rows if d["coverage"]["from"] in ("first_sample", "since") and not d["coverage"]["complete"]]
    if partial and COLUMNS.index(("elapsed", True, 5)) in keep:
        for d in partial:
            cov = d["coverage"]
            what = "its first sample" if cov["from"] == "first_sample" else "its `since:`"
            out.append(_fit(f"* {d['name']}: counted from {what}, {cov['since']}", width))
    hidden = [COLUMNS[i][0] for i in range(len(COLUMNS)) if i not in keep]
    if hidden:
        out.append(_fit(f"({len(hidden)} columns left out at {width} columns: {', '.join(hidden)}; --json has every field)", width))
    return out


def _fit(text: str, width: int) -> str:
    return textwrap.fill(text, width=max(40, width), subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)


COMMANDS = [slo_group]
