"""The embedded source's window sums (hourly rollups plus ragged minute ends) equal brute force."""

import itertools
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.spec import parse_spec
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS, seconds_to_ns
from vigil.telemetry.push import Ingestor
from vigil.telemetry.selector import parse_selector
from vigil.telemetry.source import CounterQuery, EmbeddedSource, ObservationQuery

SPEC = parse_spec("version: 1\nservices: {a: {}}\n")
BASE = 29_000_000  # a Unix minute in 2025
_names = itertools.count()

events = st.lists(
    st.tuples(st.integers(0, 3 * 1440), st.integers(0, 50), st.sampled_from([0.01, 0.2, 0.3, 0.31, 5.0, 4000.0])),
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events, st.lists(st.integers(0, 3 * 1440), min_size=1, max_size=6), st.integers(1, 3 * 1440 + 10))
def test_sums_equal_brute_force(store, evs, start_offsets, end_offset):
    metric = f"m{next(_names)}"
    obs = f"o{next(_names)}"
    rows = []
    for minute, n, v in evs:
        ts = datetime.fromtimestamp((BASE + minute) * 60 + 7, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append({"ts": ts, "metric": metric, "labels": {"k": str(n % 3)}, "inc": n})
        rows.append({"ts": ts, "metric": obs, "observe": v, "count": n + 1})
    now = datetime.fromtimestamp((BASE + 4 * 1440) * 60, tz=timezone.utc)
    r = Ingestor(SPEC, store).push_lines(list(enumerate(rows, 1)), now)
    assert r.rejected_count == 0
    end = BASE + end_offset
    starts = [min(BASE + o, end) for o in start_offsets]
    src = EmbeddedSource(store)
    got = src.counter_sums(CounterQuery(parse_selector(metric)), starts, end)
    want = [sum(n for m, n, _ in evs if s <= BASE + m < end) for s in starts]
    assert got == want
    le = seconds_to_ns(DOCUMENTED_BOUNDS[11])  # 0.3 s
    got_o = src.observation_counts(ObservationQuery(parse_selector(obs), le), starts, end)
    want_o = [
        (
            sum(n + 1 for m, n, v in evs if s <= BASE + m < end and v <= 0.3),
            sum(n + 1 for m, n, v in evs if s <= BASE + m < end),
        )
        for s in starts
    ]
    assert got_o == want_o
    # the first minute with data, per selector and kind, is the brute-force minimum (None: no rows)
    for k in ("0", "1", "2"):
        sel = parse_selector(f'{metric}{{k="{k}"}}')
        mins = [BASE + m for m, n, _ in evs if str(n % 3) == k]
        assert src.first_minute(sel, "counter") == (min(mins) if mins else None)
    assert src.first_minute(parse_selector(obs), "observation") == (min(BASE + m for m, _, _ in evs) if evs else None)
    assert src.first_minute(parse_selector(obs), "counter") is None


def test_migration_fills_hour_rollups_from_minutes(tmp_path):
    """A database written before hourly rollups existed (revision 0001) gets them filled."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from vigil.store import REVISIONS, open_store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(REVISIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(sa.text("INSERT INTO series (id, metric, labels, kind) VALUES (1, 'c', '{}', 'counter')"))
        conn.execute(sa.text("INSERT INTO counter_minute VALUES (1, 600, 5), (1, 659, 7), (1, 660, 1)"))
    eng.dispose()
    s = open_store(url)
    with s.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT hour, value FROM counter_hour ORDER BY hour")).all()
    assert [tuple(r) for r in rows] == [(10, 12), (11, 1)]
    src = EmbeddedSource(s)
    assert src.counter_sums(CounterQuery(parse_selector("c")), [600, 630, 659], 661) == [13, 8, 8]
    s.close()
