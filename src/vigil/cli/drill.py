"""``vigil drill run | history | demo``: DR drills that measure the RTO and RPO actually achieved.

Exit codes: 0 the drill passed (every phase ok, RTO and RPO measured within the objectives, no
critical gap); 1 it failed (the report says where; it is written either way); 2 usage or spec
error; 3 an external system failed before the drill could start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vigil import exitcodes
from vigil.cli.common import console, db_option, emit, env, json_option, spec_option

if TYPE_CHECKING:
    from vigil.dr.records import DrillRunJSON


@click.group("drill")
def drill_group() -> None:
    """DR drills: canary ledger, disaster, restore, verified write, search rebuild, report with gaps."""


def _real_clock():
    from vigil.clock import FakeClock
    from vigil.errors import UsageError

    c = env().clock
    if isinstance(c, FakeClock):
        raise UsageError("a drill measures real time, but VIGIL_NOW pins the clock", hint="unset VIGIL_NOW")
    return c


def _progress(msg: str) -> None:
    if not env().json_mode:
        click.echo(msg, err=True)


def _summary(r: dict) -> None:
    from vigil.dr.report import human_duration as hd

    click.echo(f"drill {r['drill']}: {r['status'].upper()} (scenario {r['scenario']}, repo{r['repo']} {r['repo_role']}, target {r['target']['describe']})")
    o, v = r["objectives"], r["verdicts"]
    rto = r.get("rto") or {}
    delay = f", of which {hd(rto['detection_delay_seconds'])} declared detection delay" if rto.get("detection_delay_seconds") else ""
    click.echo(f"  RTO achieved {hd(r['rto_seconds'])}{delay} (objective {hd(o['rto_seconds'])}: {v['rto']})")
    rpo = r.get("rpo") or {}
    how = "" if r["rpo_seconds"] is None else (f", {rpo.get('source')} figure" + ("" if rpo.get("exact") else ", at least"))
    click.echo(f"  RPO achieved {hd(r['rpo_seconds'])}{how} (objective {hd(o['rpo_seconds'])}: {v['rpo']})")
    if r.get("recovery_end"):
        click.echo(f"  archive end: {r['recovery_end']['note']}")
    if r.get("rebuild_seconds") is not None:
        click.echo(f"  search rebuild {hd(r['rebuild_seconds'])} (objective {hd(o['rebuild_seconds'])}: {v['rebuild']})")
    for p in r["phases"]:
        state = "skipped" if p["skipped"] else ("ok" if p["ok"] else f"FAILED: {(p['error'] or '').splitlines()[0]}")
        click.echo(f"  {p['name']:<12} {hd(p['seconds']):>8}  {state}")
    if r["gaps"]:
        click.echo(f"  gaps ({len(r['gaps'])}):")
        for g in r["gaps"]:
            click.echo(f"    [{g['severity']}] {g['id']}: {g['message']}")
    click.echo(f"report: {r['files']['markdown']}")
    click.echo(f"        {r['files']['html']}")
    click.echo(f"        {r['files']['json']}")


@drill_group.command("run")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR", help="write the report bundle under DIR (default: the drill's report_dir)")
@click.option("--allow-destroy", is_flag=True, help="needed for a drill whose disaster mode is `destroy` (it deletes the primary's data directory)")
@spec_option
@db_option
@json_option
def run_cmd(name: str, out: str | None, allow_destroy: bool) -> int:
    """Run drill NAME from the spec; the report (Markdown, HTML, JSON) and its evidence are written even on failure."""
    from vigil.dr.drill import Drill, prepare

    e = env()
    ctx = prepare(e.loaded, name, clock=_real_clock(), store=e.store, out_dir=out, allow_destroy=allow_destroy, progress=_progress)
    r = Drill(ctx).run()
    emit(r, lambda: _summary(r))
    return exitcodes.OK if r["status"] == "passed" else exitcodes.NO


@drill_group.command("history")
@click.option("--name", metavar="NAME", help="only this drill")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="newest N runs")
@spec_option
@db_option
@json_option
def history_cmd(name: str | None, limit: int) -> int:
    """Past drill runs, newest first: status, RTO and RPO achieved against the objectives, gaps, trend."""
    from vigil.dr.records import drill_history
    from vigil.dr.report import human_duration as hd

    e = env()
    runs = drill_history(e.store, name=name, limit=limit)
    trend = _trend(runs)

    def text() -> None:
        from rich.table import Table

        if not runs:
            click.echo("no drill runs recorded" + (f" for drill {name!r}" if name else "") + " (vigil drill run NAME)")
            return
        t = Table(title="DR drills (newest first)", title_justify="left")
        for col in ("#", "drill", "scenario", "started", "status", "RTO", "RPO", "objectives", "gaps", "report"):
            t.add_column(col)
        for x in runs:
            o = x["objectives"]
            t.add_row(str(x["id"]), x["name"], x["scenario"], x["started_at"], x["status"], hd(x["rto_seconds"]), hd(x["rpo_seconds"]),
                      f"{hd(o['rto_seconds'])} / {hd(o['rpo_seconds'])}", "-" if x["gaps"] is None else str(x["gaps"]), x["report_dir"] or "-")
        console().print(t)
        for k, v in trend.items():
            if v is not None:
                click.echo(f"{k} trend: {hd(v['previous'])} -> {hd(v['latest'])} ({'+' if v['change'] >= 0 else '-'}{hd(abs(v['change']))})")

    emit({"runs": runs, "trend": trend}, text)
    return exitcodes.OK


def _trend(runs: list[DrillRunJSON]) -> dict:
    out: dict = {}
    for label, got in (("rto", [r["rto_seconds"] for r in runs]), ("rpo", [r["rpo_seconds"] for r in runs])):
        vals = [v for v in got if v is not None]
        out[label] = {"latest": vals[0], "previous": vals[1], "change": vals[0] - vals[1]} if len(vals) >= 2 else None
    return out


@drill_group.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="vigil-drill-demo", show_default=True, metavar="DIR",
              help="where the report bundle goes")
@click.option("--keep", is_flag=True, help="keep the throwaway cluster's directory (the restored cluster is stopped either way)")
@click.option("--warmup", type=click.FloatRange(1, 600), default=8, show_default=True, help="seconds of canary writes before the disaster")
@click.option("--archive-timeout", type=click.IntRange(1, 600), default=5, show_default=True, help="archive_timeout of the throwaway primary, seconds")
@json_option
def demo_cmd(out: str, keep: bool, warmup: float, archive_timeout: int) -> int:
    """A whole drill on this machine: throwaway cluster, pgBackRest, WAL archiving, outbox, search index; prints the report path."""
    from vigil.dr.demo import run_demo

    res = run_demo(Path(out), clock=_real_clock(), progress=_progress, keep=keep, warmup=warmup, archive_timeout=archive_timeout)
    r = res["report"]

    def text() -> None:
        _summary(r)
        if keep:
            click.echo(f"throwaway files kept in {res['work_dir']}")

    emit(r, text)
    return exitcodes.OK if r["status"] == "passed" else exitcodes.NO


COMMANDS = [drill_group]
