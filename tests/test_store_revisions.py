"""vigil's own schema revisions (issue 7, Names): the package is ``vigil.store.revisions`` (it was
``vigil.store.migrations``, beside the user's SQL migrations in ``vigil.deploy.migrations``).

Alembic records revision ids in ``alembic_version``, never the script location, so a store made
before the rename opens and upgrades. The stores under ``tests/data/store_before_rename/`` were made
by the code before the rename (Alembic upgrade to 0011 from ``vigil/store/migrations``, a counter
series with three minutes and two hours) and dumped: SQLite with ``iterdump()``, PostgreSQL with
``pg_dump --inserts --no-owner --no-acl``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from vigil.store import REVISIONS, head_revision, known_revisions, open_store
from vigil.telemetry.selector import parse_selector
from vigil.telemetry.source import CounterQuery, EmbeddedSource

OLD = Path(__file__).parent / "data" / "store_before_rename"
RELEASED = [f"{i:04d}" for i in range(1, 13)]  # the ids stores carry from before the rename
M0 = 29_000_000  # the dumps' first minute


def _version(url: str) -> str:
    e = sa.create_engine(url)
    try:
        with e.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        e.dispose()


def _assert_upgraded_with_its_data(url: str) -> None:
    assert _version(url) == "0011"
    st = open_store(url, mode="write")
    try:
        assert _version(url) == head_revision()
        assert st.series_counts() == (1, {"http_requests": 1})
        assert st.metric_kinds() == {"http_requests": "counter"}
        src = EmbeddedSource(st)
        q = CounterQuery(parse_selector('http_requests{service="api"}'))
        # the minutes and the hour rollups written before the rename are read as before
        assert src.counter_sums(q, [M0, M0 + 1, M0 + 60], M0 + 61) == [23, 18, 11]
    finally:
        st.close()


def test_the_revisions_live_in_vigil_store_revisions_with_their_released_ids():
    """The package moved; the ids did not: every id a store may hold is still a revision, in the
    same order, each file's ``revision`` its name's prefix and ``down_revision`` the one before."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    assert REVISIONS.name == "revisions" and REVISIONS.parent.name == "store"
    assert not (REVISIONS.parent / "migrations").exists()
    ids = known_revisions()
    assert ids[: len(RELEASED)] == RELEASED
    cfg = Config()
    cfg.set_main_option("script_location", str(REVISIONS))
    script = ScriptDirectory.from_config(cfg)
    chain = [s.revision for s in reversed(list(script.walk_revisions()))]
    assert chain == ids
    for s in script.walk_revisions():
        assert Path(s.path).name.startswith(f"{s.revision}_")
        i = ids.index(s.revision)
        assert s.down_revision == (ids[i - 1] if i else None)
    assert script.get_current_head() == head_revision()


def test_a_sqlite_store_made_before_the_rename_opens_and_upgrades(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript((OLD / "sqlite-0011.sql").read_text())
    conn.close()
    _assert_upgraded_with_its_data(f"sqlite:///{path}")


def test_a_postgresql_store_made_before_the_rename_opens_and_upgrades(pg_cluster, pg_db_url):
    db = pg_db_url.rsplit("/", 1)[1]
    pg_cluster.psql((OLD / "postgresql-0011.sql").read_text(), db=db)
    _assert_upgraded_with_its_data(pg_db_url)


def test_a_store_at_an_old_revision_through_the_renamed_package_upgrades(tmp_path):
    """Alembic run on the renamed package to 0011, then vigil opens the store: it upgrades."""
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    e = sa.create_engine(url)
    with e.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(REVISIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0011")
        conn.exec_driver_sql("INSERT INTO series (id, metric, labels, kind) VALUES (1, 'http_requests', '{\"service\":\"api\"}', 'counter')")
        conn.exec_driver_sql("INSERT INTO metric_kinds (metric, kind, series) VALUES ('http_requests', 'counter', 1)")
        conn.exec_driver_sql("UPDATE telemetry_totals SET value = 1 WHERE name = 'series'")
        conn.exec_driver_sql(f"INSERT INTO counter_minute (series_id, minute, value) VALUES (1, {M0}, 5), (1, {M0 + 1}, 7), (1, {M0 + 60}, 11)")
        conn.exec_driver_sql(f"INSERT INTO counter_hour (series_id, hour, value) VALUES (1, {M0 // 60}, 12), (1, {(M0 + 60) // 60}, 11)")
    e.dispose()
    _assert_upgraded_with_its_data(url)
