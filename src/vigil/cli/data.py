"""``vigil data scan | export``: the data classification registry against the live schema, and its exports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option, terminal_width, wrap, write_out
from vigil.errors import UsageError


@click.group("data")
def data_group() -> None:
    """Data classification: the registry against the live PostgreSQL schema; LF-Tags and grants exports."""


def _data_spec():
    e = env()
    explicit = e.spec_path != "vigil.yaml" or os.environ.get("VIGIL_SPEC")
    if not explicit and not Path(e.spec_path).exists():
        return None, Path.cwd()
    sec = e.loaded.spec.security
    return (sec.data if sec is not None else None), Path(e.spec_path).resolve().parent


@data_group.command("scan")
@click.option("--db", "db", required=True, envvar="VIGIL_DATA_DB", metavar="URL", help="the PostgreSQL database to scan (or $VIGIL_DATA_DB)")
@click.option("--registry", metavar="FILE", help="the registry file (default security.data.registry or security.data.tables)")
@click.option("--schema", "schemas", multiple=True, metavar="NAME", help="schemas to scan (default security.data.schemas, public)")
@click.option("--sample", type=click.IntRange(0, 100_000), default=None, help="rows sampled per table (default security.data.sample_rows, 200; 0: names only)")
@click.option("--fail-on", "fail_on", multiple=True, type=click.Choice(["unclassified", "pii_suspect", "stale"]),
              help="what fails the scan (default security.data.fail_on: unclassified)")
@click.option("--sarif", "sarif_out", metavar="FILE", help="also write SARIF 2.1.0 to FILE ('-' for standard output)")
@spec_option
@json_option
def scan_cmd(db: str, registry: str | None, schemas: tuple[str, ...], sample: int | None, fail_on: tuple[str, ...], sarif_out: str | None) -> int:
    """Compare the registry with the live schema: exit 1 on a new column without a class (and what --fail-on adds), 3 when the database fails.

    Columns whose names or sampled values look like personal data (e-mail, phone, card numbers with
    a valid Luhn checksum, IBANs, SSNs, IP addresses, ...) but are not pii or sensitive are reported;
    values are never printed, only how many matched. The scan reads in a read-only transaction.
    """
    from vigil.clock import SystemClock, isoformat
    from vigil.pgconn import redact
    from vigil.security.data import registry_of
    from vigil.security.data.scan import compare, failed, read_live, to_sarif
    from vigil.security.data.spec import _ident

    ds, base = _data_spec()
    reg = registry_of(ds, base, registry)
    sch = list(schemas) or (ds.schemas if ds else ["public"])
    for s in sch:
        try:
            _ident(s, "schema")
        except ValueError as e:
            raise UsageError(f"--schema: {e}") from None
    n = sample if sample is not None else (ds.sample_rows if ds else 200)
    fo = list(fail_on) or (list(ds.fail_on) if ds else ["unclassified"])
    live = read_live(db, sch, n)
    res = compare(reg, live, ignore=ds.ignore_tables if ds else [])
    why = failed(res, fo)
    shown = redact(db)
    out = {"database": shown, "schemas": sch, "at": isoformat(SystemClock().now()), "fail_on": fo, "passed": not why, "failed_on": why,
           "sampled_rows": sum(live.sampled_rows.values()), **res}
    if sarif_out:
        doc = json.dumps(to_sarif(res, shown, out["at"]), indent=2) + "\n"
        if write_out(sarif_out, doc):
            return exitcodes.NO if why else exitcodes.OK

    def text() -> None:
        width = terminal_width()
        click.echo(f"{'PASS' if not why else 'FAIL'} {shown}: {res['tables']} tables, {res['columns']} columns, {res['classified']} classified"
                   + (f"; fails on {', '.join(why)}" if why else ""))
        for u in res["unclassified"]:
            click.echo(wrap(f"UNCLASSIFIED {u['table']}.{u['column']} ({u['type']}): {u['why']}", width, first="  ", rest="    "))
        for s in res["pii_suspect"]:
            ev = "; ".join(e["detail"] for e in s["evidence"])
            click.echo(wrap(f"PII? {s['table']}.{s['column']} (class {s['class'] or 'none'}, looks {s['suggested']}): {ev}", width, first="  ", rest="    "))
        for s in res["stale"]:
            click.echo(wrap(f"stale {s['table']}" + (f".{s['column']}" if s["column"] else "") + f": {s['why']}", width, first="  ", rest="    "))

    emit(out, text)
    return exitcodes.NO if why else exitcodes.OK


@data_group.command("export")
@click.argument("what", type=click.Choice(["lf-tags", "grants"]))
@click.option("--registry", metavar="FILE", help="the registry file (default security.data.registry or security.data.tables)")
@click.option("--database", metavar="NAME", help="lf-tags: the Glue/Lake Formation database (default: each table's schema)")
@click.option("--catalog-id", metavar="ACCOUNT", help="lf-tags: the Data Catalog's account id (default: the caller's)")
@click.option("--out", metavar="FILE", help="write to FILE instead of standard output")
@spec_option
@json_option
def export_cmd(what: str, registry: str | None, database: str | None, catalog_id: str | None, out: str | None) -> int:
    """Export the registry: lf-tags (Lake Formation CreateLFTag/AddLFTagsToResource arguments, JSON) or grants (a PostgreSQL plan, SQL).

    The grants plan revokes every privilege on each registered table from PUBLIC and the named
    roles, then grants SELECT on exactly the columns each role may read.
    """
    from vigil.security.data import registry_of
    from vigil.security.data.export import grants_plan, lf_tags

    ds, base = _data_spec()
    reg = registry_of(ds, base, registry)
    if not reg.tables:
        raise UsageError("the registry has no table")
    if what == "lf-tags":
        doc = lf_tags(reg, database=database, catalog_id=catalog_id)
        write_out(out, json.dumps(doc, indent=2) + "\n")
        if out and out != "-":
            emit({"file": out, "calls": len(doc["CreateLFTag"]) + len(doc["AddLFTagsToResource"])}, f"wrote {out}")
        return exitcodes.OK
    sql = grants_plan(reg)
    if env().json_mode:
        emit({"sql": sql, "tables": len(reg.tables)})
        return exitcodes.OK
    write_out(out, sql)
    return exitcodes.OK


COMMANDS = [data_group]
