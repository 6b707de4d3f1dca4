"""``vigil store init | status``: create or migrate the state store; show what it holds."""

from __future__ import annotations

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option


@click.group("store")
def store_group() -> None:
    """The state store: create or migrate it, and show what it holds."""


@store_group.command("init")
@spec_option
@db_option
@json_option
def init_cmd() -> int:
    """Create the store (SQLite: mode 0600 in a 0700 .vigil/) or migrate it to this vigil's schema."""
    from vigil.store import head_revision, open_store

    e = env()
    url = e.store_url
    try:
        before = open_store(url, mode="read")
        was = before.revision()
        before.close()
    except Exception:
        was = None
    store = e.open_store("create")
    out = {"store": store.url, "revision": store.revision(), "head": head_revision(), "previous_revision": was}
    if was is None:
        msg = f"created the store {store.url} (schema {out['revision']})"
    elif was != out["revision"]:
        msg = f"migrated the store {store.url} from schema {was} to {out['revision']}"
    else:
        msg = f"the store {store.url} is at schema {was} already"
    emit(out, msg)
    return exitcodes.OK


@store_group.command("status")
@spec_option
@db_option
@json_option
def status_cmd() -> int:
    """The store's location, schema revision and what it holds (read-only)."""
    import sqlalchemy as sa

    from vigil.store import db_errors, head_revision, schema

    e = env()
    store = e.open_store("read")
    with db_errors("reading the store failed"), store.engine.connect() as conn:
        series = conn.execute(sa.select(sa.func.count()).select_from(schema.series)).scalar_one()
        decisions = conn.execute(sa.select(sa.func.count()).select_from(schema.gate_decisions)).scalar_one()
    out = {
        "store": store.url,
        "dialect": store.dialect,
        "revision": store.revision(),
        "head": head_revision(),
        "written_by": store.meta("vigil_version"),
        "series": series,
        "gate_decisions": decisions,
    }
    emit(
        out,
        f"{out['store']} ({out['dialect']}): schema {out['revision']}"
        + (f", last migrated by vigil {out['written_by']}" if out["written_by"] else "")
        + f"; {series} series, {decisions} gate decisions",
    )
    return exitcodes.OK
