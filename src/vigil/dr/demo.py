"""``vigil drill demo``: the whole DR drill on this machine, on a throwaway cluster.

1. a throwaway PostgreSQL cluster (initdb; as the ``postgres`` user when run as root);
2. a spec (``vigil.yaml``) with ``backups.postgres`` (two repositories: repo1 local, repo2 the
   "cross-region" copy), ``backups.search`` (the embedded SQLite FTS5 engine) and one drill;
3. ``vigil backup setup`` (pgBackRest config, archive_command, archive_timeout; a restart for
   archive_mode), a small database: ``items`` plus the transactional outbox ``search_outbox``
   written in the same transactions, a search index fed from the outbox;
4. a full backup into both repositories, more writes, an incremental backup into both, the
   nightly search snapshot, more writes after it (so the re-seed has work);
5. the drill: canary ledger, disaster (primary stopped and its data directory deleted), restore
   from repo2 into a fresh cluster with archiving off, verified write, search rebuild, report;
6. cleanup of everything but the report bundle, which goes to ``out``.
"""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from vigil.clock import Clock
from vigil.dr.postgres import osuser
from vigil.dr.postgres.cluster import LocalCluster

DEMO_DRILL = "demo-region-loss"

SPEC = """\
version: 1
services:
  api: {{description: the demo platform's API}}
backups:
  postgres:
    stanza: demo
    data_dir: {base}/primary/data
    port: {port}
    socket_dir: {base}/primary/sock
    database: app
    pg_bin: {pg_bin}
    config: {base}/pgbackrest/pgbackrest.conf
    work_dir: {base}/pgbackrest
    archive_timeout: {archive_timeout}s
    repos:
      - {{path: {base}/repo1, retention: {{full: 35d}}, region: local-a, role: local}}
      - {{path: {base}/repo2, retention: {{full: 35d}}, region: local-b, role: cross-region}}
  search:
    engine: embedded
    path: {base}/search.db
    snapshot_dir: {base}/search-snapshots
    schedule: nightly
    collections:
      - name: items
        count_sql: SELECT count(*) FROM items
drills:
  - name: {drill}
    description: region loss on a throwaway cluster - the primary and repo1 are gone, restore from repo2
    scenario: region-loss
    target: latest
    objectives: {{rto: 4h, rpo: 15m, rebuild: 60m}}
    phases:
      canary: {{interval: {interval}s, warmup: {warmup}s}}
      disaster: {{mode: destroy}}
      restore: {{dir: {base}/restore}}
"""

ITEMS = """
CREATE TABLE IF NOT EXISTS items (
    id bigserial PRIMARY KEY,
    title text NOT NULL,
    body text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

WORDS = ("backup", "restore", "archive", "canary", "replica", "region", "outbox", "index", "snapshot", "drill",
         "latency", "budget", "rollback", "failover", "checkout", "search")


def write_items(conn: Any, n: int, start: int = 0) -> None:
    """``n`` items, each with its outbox row in the same transaction."""
    with conn.transaction():
        for i in range(start, start + n):
            title = f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]} #{i}"
            body = " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 9))
            (iid,) = conn.execute("INSERT INTO items (title, body) VALUES (%s, %s) RETURNING id", (title, body)).fetchone()
            conn.execute(
                "INSERT INTO search_outbox (collection, doc_id, op, document) VALUES ('items', %s, 'upsert', "
                "jsonb_build_object('id', %s::text, 'title', %s::text, 'body', %s::text))",
                (str(iid), str(iid), title, body),
            )


def delete_items(conn: Any, ids: list[int]) -> None:
    with conn.transaction():
        for iid in ids:
            conn.execute("DELETE FROM items WHERE id = %s", (iid,))
            conn.execute("INSERT INTO search_outbox (collection, doc_id, op) VALUES ('items', %s, 'delete')", (str(iid),))


def run_demo(
    out: str | Path,
    *,
    clock: Clock,
    progress: Callable[[str], None] = lambda _m: None,
    keep: bool = False,
    warmup: float = 8,
    interval: float = 1,
    archive_timeout: int = 5,
    pg_bin: str = "/usr/lib/postgresql/15/bin",
    items: int = 200,
    settings: dict[str, str] | None = None,
) -> dict:
    """Run the demo; returns ``{"report": <the JSON report>, "report_dir": ..., "work_dir": ...}``."""
    from vigil.dr.drill import Drill, prepare
    from vigil.dr.postgres.ops import engine_for, run_backups, setup
    from vigil.spec import load_spec
    from vigil.store import open_store

    os_user = osuser.effective_user(None)
    base = Path(tempfile.mkdtemp(prefix="vigil-drill-demo-"))
    base.chmod(0o755)
    out_dir = Path(out).absolute()
    primary: LocalCluster | None = None
    store = None
    try:
        progress(f"demo: working in {base}")
        primary = LocalCluster(base / "primary" / "data", socket_dir=base / "primary" / "sock", log_file=base / "primary" / "postgres.log",
                               pg_bin=pg_bin, os_user=None, settings=dict(settings or {}))
        osuser.make_dir(base / "primary", os_user, mode=0o755)
        primary.initdb()
        primary.start()
        primary.sql("CREATE DATABASE app")
        spec_path = base / "vigil.yaml"
        spec_path.write_text(SPEC.format(base=base, port=primary.port, pg_bin=pg_bin, archive_timeout=int(archive_timeout),
                                         drill=DEMO_DRILL, interval=_num(interval), warmup=_num(warmup)))
        loaded = load_spec(spec_path)
        store = open_store(f"sqlite:///{base / '.vigil' / 'vigil.db'}")
        pgb = engine_for(loaded)
        progress("demo: vigil backup setup (pgBackRest config, archive_command, archive_timeout)")
        r = setup(pgb, check=False)
        if r["restart_needed"]:
            progress("demo: restarting PostgreSQL for archive_mode=on")
            primary.stop()
            primary.start()
            setup(pgb, check=True)
        from vigil.search import EmbeddedEngine, create_outbox_table, rebuild

        url = primary.url("app")
        with primary.connect("app") as conn:
            conn.execute(ITEMS)
            create_outbox_table(conn)
            write_items(conn, items)
        progress("demo: full backup into repo1 and repo2")
        run_backups(pgb, type_="full", repos=None, clock=clock, store=store)
        with primary.connect("app") as conn:
            write_items(conn, items // 4, start=items)
        progress("demo: incremental backup into repo1 and repo2")
        run_backups(pgb, type_="incr", repos=None, clock=clock, store=store)
        progress("demo: the search index catches up from the outbox; nightly snapshot")
        search = loaded.spec.backups.search if loaded.spec.backups is not None else None
        assert search is not None  # the demo's own spec declares it
        engine = EmbeddedEngine(base / "search.db")
        try:
            rebuild(engine, None, url, outbox=search.outbox, reset=False, collections=list(search.collections))
            engine.snapshot(base / "search-snapshots" / "nightly", created_at=clock.now())
        finally:
            engine.close()
        with primary.connect("app") as conn:
            write_items(conn, items // 10, start=items + items // 4)
            delete_items(conn, [1, 2, 3])
            # the rest of the day, compressed: these writes were archived long before the disaster
            conn.execute("SELECT pg_switch_wal()")
        progress(f"demo: drill {DEMO_DRILL}")
        ctx = prepare(loaded, DEMO_DRILL, clock=clock, store=store, out_dir=out_dir, allow_destroy=True, progress=progress)
        report = Drill(ctx).run()
        return {"report": report, "report_dir": report["report_dir"], "work_dir": str(base), "kept": keep}
    finally:
        if store is not None:
            store.close()
        if primary is not None and not keep:
            try:
                primary.destroy(remove=False)
            except Exception:
                pass
        if not keep:
            # the restored cluster is stopped by the drill; make sure nothing of ours still runs
            restored = LocalCluster(base / "restore" / "data", socket_dir=base / "restore" / "sock", pg_bin=pg_bin) \
                if (base / "restore" / "data" / "PG_VERSION").exists() else None
            if restored is not None:
                try:
                    restored.destroy(remove=False)
                except Exception:
                    pass
            shutil.rmtree(base, ignore_errors=True)


def _num(x: float) -> str:
    d = Decimal(str(x)).normalize()
    return f"{d:f}"
