"""The state store on SQLite and on a real PostgreSQL 15: migrations, the ingest -> store ->
EmbeddedSource path, atomic batches, failures of the database, retention, gate decisions and
concurrent writers.

Every test taking ``db_url`` runs twice: on a SQLite file and on a fresh database of the session's
throwaway PostgreSQL cluster (``pg_db_url`` from ``tests/pgcluster.py``).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import ndjson
from pgcluster import PgCluster, free_port
from vigil.deploy.gate import GateRecord, gate_deploy
from vigil.errors import StoreError
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import LoadedSpec, parse_spec
from vigil.store import HEAD_REVISION, open_store, schema
from vigil.telemetry.ingest import INF_NS, Rollup, ingest, seconds_to_ns, split_body
from vigil.telemetry.push import Ingestor
from vigil.telemetry.selector import parse_selector
from vigil.telemetry.source import CounterQuery, EmbeddedSource, ObservationQuery

SPEC = parse_spec(
    """\
version: 1
services: {api: {}, checkout: {}, search: {}}
slos:
  - name: checkout-success
    service: checkout
    objective: 99.5
    window: {calendar: month, timezone: UTC}
    sli:
      ratio:
        good: 'checkout_attempts{outcome="success"}'
        total: 'checkout_attempts'
        exclude: 'checkout_attempts{outcome="issuer_declined"}'
  - name: api-latency
    service: api
    objective: 95
    window: {rolling: 30d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 300ms}
  - name: api-latency-fast
    service: api
    objective: 90
    window: {rolling: 30d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 123ms}
  - name: search-freshness
    service: search
    objective: 99
    window: {rolling: 30d}
    sli:
      freshness: {metric: 'index_staleness_seconds{class="hot"}', threshold: 5m, slice: 1m, missing: bad}
policy:
  freeze:
    - when: {budget_exhausted: true}
  overrides: {labels: [p0]}
"""
)
LOADED = LoadedSpec(SPEC, None, "0" * 64)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NOW_MIN = int(NOW.timestamp()) // 60
M = NOW_MIN - 1  # 11:59, the minute most samples land in
NS_300MS = seconds_to_ns(Decimal("0.3"))
NS_123MS = seconds_to_ns(Decimal("0.123"))
LAT = 'http_request_duration_seconds{service="api"}'


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


@pytest.fixture
def st(db_url: str):
    s = open_store(db_url)
    yield s
    s.close()


# -- helpers -----------------------------------------------------------------------------------


def ts(minute: int, second: int = 0, ms: int = 0) -> str:
    t = datetime.fromtimestamp(minute * 60 + second, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms:03d}" if ms else "") + "Z"


def inc(metric: str, labels: dict, n: int, minute: int = M, second: int = 0) -> dict:
    return {"ts": ts(minute, second), "metric": metric, "labels": labels, "inc": n}


def obs(v: float, count: int = 1, minute: int = M, labels: dict | None = None) -> dict:
    row = {"ts": ts(minute), "metric": "http_request_duration_seconds", "labels": labels or {"service": "api"}, "observe": v}
    if count != 1:
        row["count"] = count
    return row


def gauge(v: float, minute: int = M, second: int = 0, ms: int = 0, cls: str = "hot") -> dict:
    return {"ts": ts(minute, second, ms), "metric": "index_staleness_seconds", "labels": {"class": cls}, "set": v}


def push(ing: Ingestor, rows: list[dict]) -> None:
    res = ing.push_body(ndjson(rows), NOW)
    assert res.rejected_count == 0, res.to_dict()
    assert res.accepted == len(rows)


def counter_sums(store, include: str, starts: list[int], end: int = NOW_MIN, exclude: str | None = None) -> list[int]:
    q = CounterQuery(parse_selector(include), parse_selector(exclude) if exclude else None)
    return EmbeddedSource(store).counter_sums(q, starts, end)


def obs_counts(store, le_ns: int, starts: tuple[int, ...] = (M,), end: int = NOW_MIN) -> list[tuple[int, int]]:
    return EmbeddedSource(store).observation_counts(ObservationQuery(parse_selector(LAT), le_ns), list(starts), end)


def snapshot(store) -> dict:
    """Everything the rollup tables hold, keyed by metric and labels (not by backend-specific ids)."""
    s = schema.series
    out: dict = {}
    with store.engine.connect() as conn:
        names = {sid: (m, lj, k) for sid, m, lj, k in conn.execute(sa.select(s.c.id, s.c.metric, s.c.labels, s.c.kind))}
        out["series"] = sorted(names.values())
        for t in (schema.counter_minute, schema.obs_minute, schema.gauge_minute):
            rows = []
            for r in conn.execute(sa.select(t)):
                d = dict(r._mapping)
                m, lj, _ = names[d.pop("series_id")]
                rows.append((m, lj, *(v if not isinstance(v, float) else float(v) for v in d.values())))
            out[t.name] = sorted(rows)
        out["bounds"] = sorted(conn.execute(sa.select(schema.bounds.c.le, schema.bounds.c.since_minute)).all())
    return out


def orphans(store) -> int:
    """Rollup rows whose series does not exist: data a reader can never see."""
    n = 0
    with store.engine.connect() as conn:
        for t in (schema.counter_minute, schema.obs_minute, schema.gauge_minute):
            n += conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.series_id.not_in(sa.select(schema.series.c.id)))
            ).scalar_one()
    return n


def assert_clean_store_error(e: pytest.ExceptionInfo, *words: str) -> None:
    """A StoreError with a hint, and no chained driver traceback behind it."""
    assert isinstance(e.value, StoreError)
    assert e.value.hint, "a store error carries a hint"
    assert e.value.__suppress_context__ and e.value.__cause__ is None
    for w in words:
        assert w.lower() in str(e.value).lower(), (w, str(e.value))


# -- migrations ----------------------------------------------------------------------------------


def test_open_store_migrates_to_head_and_schema_matches_metadata(db_url, monkeypatch):
    s = open_store(db_url)
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD_REVISION
        mc = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(mc, schema.metadata) == []
    did = s.record_gate_decision(_decision_row("api", True))
    s.close()

    # opening again is a no-op: alembic is not even asked, and nothing is lost
    import alembic.command

    def no_upgrade(*a, **k):
        raise AssertionError("open_store ran a migration on a database already at head")

    monkeypatch.setattr(alembic.command, "upgrade", no_upgrade)
    s = open_store(db_url)
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    assert [r["id"] for r in s.gate_decisions()] == [did]
    s.close()


def test_a_failed_migration_leaves_nothing_behind(db_url, monkeypatch):
    """The migration is one transaction on both backends, so a failure half-way can be retried."""
    from alembic.operations import Operations

    real = Operations.create_table

    def failing(self, name, *a, **k):
        if name == "gate_decisions":  # the last table: several were created before it
            raise sa.exc.OperationalError("CREATE TABLE gate_decisions", {}, Exception("disk full (simulated)"))
        return real(self, name, *a, **k)

    monkeypatch.setattr(Operations, "create_table", failing)
    with pytest.raises(StoreError) as e:
        open_store(db_url)
    assert_clean_store_error(e, "cannot open the state database", "disk full")
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    monkeypatch.setattr(Operations, "create_table", real)
    s = open_store(db_url)
    assert set(sa.inspect(s.engine).get_table_names()) >= {"series", "gate_decisions", "alembic_version"}
    s.close()


def test_concurrent_first_opens_all_succeed(db_url):
    """Replicas (or `vigil serve` and `vigil push`) opening a new database at once: one migrates,
    the others wait and find it at head."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener() -> None:
        try:
            barrier.wait(timeout=10)
            open_store(db_url).close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    s = open_store(db_url)
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD_REVISION]
    s.close()


# -- ingest -> store -> EmbeddedSource ------------------------------------------------------------


def test_counters_accumulate_across_batches(st):
    ing = Ingestor(SPEC, st)
    push(ing, [inc("checkout_attempts", {"outcome": "success"}, 90), inc("checkout_attempts", {"outcome": "error"}, 7)])
    push(ing, [inc("checkout_attempts", {"outcome": "success"}, 10, second=59), inc("checkout_attempts", {"outcome": "issuer_declined"}, 3)])
    push(ing, [inc("checkout_attempts", {"outcome": "success"}, 2**53), inc("checkout_attempts", {"outcome": "error"}, 1, minute=M - 10)])
    big = 2**53 + 100
    starts = [M - 60, M - 5, M]
    assert counter_sums(st, 'checkout_attempts{outcome="success"}', starts) == [big, big, big]
    assert counter_sums(st, "checkout_attempts", starts) == [big + 11, big + 10, big + 10]
    assert counter_sums(st, "checkout_attempts", starts, exclude='checkout_attempts{outcome="issuer_declined"}') == [
        big + 8, big + 7, big + 7,
    ]
    # [start, end): the current minute is not in a window ending at M
    assert counter_sums(st, "checkout_attempts", [M - 60], end=M) == [1]
    assert orphans(st) == 0


def test_observations_bucket_counts_and_exact_threshold(st):
    ing = Ingestor(SPEC, st)
    push(ing, [obs(0.3, 3), obs(0.300000001), obs(0.0), obs(0.2, 10)])
    push(ing, [obs(0.123), obs(0.1230001, 2), obs(5000), obs(0.3)])
    with st.engine.connect() as conn:
        t = schema.obs_minute
        buckets = dict(conn.execute(sa.select(t.c.le, t.c.count).where(t.c.minute == M)).all())
    # the store's default layout: log-linear buckets at most 2% wide from 1 us to 1 h (issue 14)
    assert buckets == {
        seconds_to_ns(Decimal("0.000001")): 1,  # 0.0: the first bucket (0, 1us]
        NS_123MS: 1,  # exactly 123 ms: in the bucket whose bound it equals
        seconds_to_ns(Decimal("0.124")): 2,  # a hair above 123 ms: the next 2% bucket, (0.123, 0.124]
        seconds_to_ns(Decimal("0.2")): 10,
        NS_300MS: 4,  # exactly 300 ms, from both batches
        seconds_to_ns(Decimal("0.304")): 1,  # a hair above 300 ms: (0.3, 0.304]
        INF_NS: 1,  # 5000 s: above 1 h, the overflow bucket
    }
    # good = at or under the threshold; exactly-at is good, a hair above is bad
    assert obs_counts(st, NS_300MS) == [(1 + 1 + 2 + 10 + 4, 20)]
    assert obs_counts(st, NS_123MS) == [(1 + 1, 20)]
    statuses = {s.slo.name: s for s in evaluate_slos(SPEC.slos, EmbeddedSource(st), NOW)}
    assert (statuses["api-latency"].window_counts.good, statuses["api-latency"].window_counts.valid) == (18, 20)
    assert (statuses["api-latency-fast"].window_counts.good, statuses["api-latency-fast"].window_counts.valid) == (2, 20)
    src = EmbeddedSource(st)
    assert src.bound_since(NS_300MS) == 0  # documented: exact for all history
    # declared by the spec before any observation was stored: every observation was bucketed by it
    assert src.bound_since(NS_123MS) == 0


def test_gauges_merge_min_max_last_across_batches(st):
    ing = Ingestor(SPEC, st)
    push(ing, [gauge(5, second=30), gauge(7, second=20)])  # out of order inside a batch
    push(ing, [gauge(9, second=10)])  # an older sample in a later batch: not the last
    push(ing, [gauge(1, second=50)])
    push(ing, [gauge(2.5, second=50)])  # same ms as the last: the later batch wins, as in one batch
    push(ing, [gauge(4, minute=M - 1, second=1, ms=5)])
    with st.engine.connect() as conn:
        t = schema.gauge_minute
        rows = {r.minute: r for r in conn.execute(sa.select(t))}
    assert (rows[M].min, rows[M].max, rows[M].last, rows[M].samples) == (1.0, 9.0, 2.5, 5)
    assert rows[M].last_ms == (M * 60 + 50) * 1000
    assert (rows[M - 1].min, rows[M - 1].max, rows[M - 1].last, rows[M - 1].last_ms) == (4.0, 4.0, 4.0, (M - 1) * 60_000 + 1005)
    arr = EmbeddedSource(st).gauge_max(parse_selector('index_staleness_seconds{class="hot"}'), M - 2, M + 1)
    assert arr[0] != arr[0]  # NaN: no sample
    assert list(arr[1:]) == [4.0, 9.0]


def test_batches_written_one_by_one_equal_one_merged_batch(db_url, tmp_path):
    """Store upserts are the same merge as Rollup.merge in memory, for every kind."""
    batches = [
        [inc("checkout_attempts", {"outcome": "success"}, 5), obs(0.3, 2), gauge(3, second=40), gauge(8, second=5)],
        [inc("checkout_attempts", {"outcome": "success"}, 6), obs(0.5), obs(0.3), gauge(1, second=20)],
        [inc("checkout_attempts", {"outcome": "error"}, 1), obs(0.1230001), gauge(6, second=59), gauge(0.5, second=1)],
    ]
    s1 = open_store(db_url)
    ing = Ingestor(SPEC, s1)
    for b in batches:
        push(ing, b)
    s2 = open_store(f"sqlite:///{tmp_path / 'merged.db'}")
    ing2 = Ingestor(SPEC, s2)
    ctx = ing2.context(NOW)
    merged = Rollup()
    for b in batches:
        merged.merge(ingest(split_body(ndjson(b), max_bytes=1 << 20), ctx))
    s2.write_rollup(merged)
    assert snapshot(s1) == snapshot(s2)
    s1.close()
    s2.close()


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_the_same_numbers(pg_db_url, tmp_path):
    rows = []
    for i in range(30):
        mi = M - i
        rows += [
            inc("checkout_attempts", {"outcome": "success"}, 90 + i, minute=mi),
            inc("checkout_attempts", {"outcome": "error"}, i % 4, minute=mi),
            inc("checkout_attempts", {"outcome": "issuer_declined"}, 2, minute=mi),
            obs(0.3, 5, minute=mi),
            obs(0.300000001, i % 3 + 1, minute=mi),
            obs(0.05 * (i % 9), minute=mi),
            obs(0.123, minute=mi, labels={"service": "web"}),
            gauge(100 + 10 * i, minute=mi, second=i),
            gauge(250.5 - i, minute=mi, second=30),
        ]
    results = []
    for url in (f"sqlite:///{tmp_path / 'a.db'}", pg_db_url):
        s = open_store(url)
        ing = Ingestor(SPEC, s)
        push(ing, rows[: len(rows) // 2])
        push(ing, rows[len(rows) // 2 :])
        push(ing, rows[::7])  # some keys again: upserts
        statuses = [x.to_dict() for x in evaluate_slos(SPEC.slos, EmbeddedSource(s), NOW)]
        results.append((snapshot(s), statuses))
        s.close()
    assert results[0] == results[1]
    by_name = {x["name"]: x for x in results[1][1]}
    assert by_name["checkout-success"]["valid"] > 0 and by_name["api-latency"]["valid"] > 0
    assert by_name["search-freshness"]["valid"] > 0


# -- atomic writes ---------------------------------------------------------------------------------

SQLITE_TRIGGER = """
CREATE TRIGGER vigil_test_fail BEFORE INSERT ON gauge_minute WHEN NEW.last = 666
BEGIN SELECT RAISE(ABORT, 'vigil test: refusing gauge value 666'); END
"""
PG_TRIGGER = """
CREATE FUNCTION vigil_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last = 666 THEN
    IF TG_ARGV[0] IN ('wait', 'pause') THEN PERFORM pg_advisory_xact_lock(4242); END IF;
    IF TG_ARGV[0] = 'pause' THEN RETURN NEW; END IF;
    IF TG_ARGV[0] = 'disconnect' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
    RAISE EXCEPTION 'vigil test: refusing gauge value 666';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER vigil_test_fail BEFORE INSERT OR UPDATE ON gauge_minute
  FOR EACH ROW EXECUTE FUNCTION vigil_test_fail('{mode}');
"""


def install_failing_trigger(store, mode: str = "raise") -> None:
    """Make the database refuse a gauge of 666 -- the last statement of a batch's transaction.
    PostgreSQL modes: ``raise``; ``disconnect`` (the session kills itself first); ``wait`` (wait for
    advisory lock 4242, then raise); ``pause`` (wait for the lock, then let the row in)."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql(SQLITE_TRIGGER)
        else:
            conn.exec_driver_sql(PG_TRIGGER.replace("{mode}", mode))


@pytest.mark.parametrize(
    "db_url, mode",
    [
        ("sqlite", "raise"),
        pytest.param("postgresql", "raise", marks=pytest.mark.postgres),
        pytest.param("postgresql", "disconnect", marks=pytest.mark.postgres),
    ],
    indirect=["db_url"],
)
def test_a_failing_batch_stores_nothing(st, mode):
    ing = Ingestor(SPEC, st)
    push(ing, [inc("checkout_attempts", {"outcome": "success"}, 10), obs(0.3), gauge(5)])
    install_failing_trigger(st, mode)
    before = snapshot(st)
    bad = [
        inc("checkout_attempts", {"outcome": "success"}, 1),  # an upsert on an existing row
        inc("checkout_attempts", {"outcome": "brand_new"}, 4),  # a new series, created inside the batch
        obs(0.3, 2),
        obs(0.1, labels={"service": "new"}),
        gauge(666, second=10),  # refused by the database: the whole transaction rolls back
    ]
    with pytest.raises(StoreError) as e:
        ing.push_body(ndjson(bad), NOW)
    assert_clean_store_error(e, "nothing of this batch was stored")
    if mode == "raise":
        assert "refusing gauge value 666" in str(e.value)
    assert st._series_ids == {}  # ids learnt inside the rolled-back transaction are forgotten
    assert snapshot(st) == before

    # a later good batch with the same new series lands where a reader finds it
    push(ing, [inc("checkout_attempts", {"outcome": "brand_new"}, 4), obs(0.1, labels={"service": "new"}), gauge(6)])
    assert counter_sums(st, 'checkout_attempts{outcome="brand_new"}', [M]) == [4]
    assert counter_sums(st, "checkout_attempts", [M]) == [14]
    assert orphans(st) == 0


class Gate:
    """Holds PostgreSQL advisory lock 4242, which the test trigger (modes ``wait``/``pause``) waits
    for, so a test can keep a batch's transaction open at its last statement. Threads run pushes;
    every wait is bounded."""

    def __init__(self, url: str) -> None:
        self.admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.lock = self.admin.connect()
        self.lock.execute(sa.text("SELECT pg_advisory_lock(4242)"))
        self.lock.commit()
        self.outcome: dict[str, object] = {}
        self.threads: list[threading.Thread] = []

    def push(self, name: str, ing: Ingestor, rows: list[dict]) -> None:
        def run() -> None:
            try:
                ing.push_body(ndjson(rows), NOW)
                self.outcome[name] = "ok"
            except BaseException as e:  # noqa: BLE001 - the test looks at it
                self.outcome[name] = e

        t = threading.Thread(target=run)
        self.threads.append(t)
        t.start()

    def waiting(self) -> int:
        """Sessions of this database waiting for a lock."""
        with self.admin.connect() as c:
            return c.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            ).scalar_one()

    @staticmethod
    def until(pred, what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def release(self) -> None:
        try:
            self.lock.execute(sa.text("SELECT pg_advisory_unlock(4242)"))
            self.lock.close()
        finally:
            for t in self.threads:
                t.join(timeout=30)
            self.admin.dispose()
        assert not any(t.is_alive() for t in self.threads), "a push did not finish within 30 s"


def _prepared(st, n: int = 2) -> list[Ingestor]:
    ings = [Ingestor(SPEC, st) for _ in range(n)]
    for ing in ings:
        ing.context(NOW)  # registers the bucket bounds before any race
    return ings


@pytest.mark.postgres
def test_a_series_id_from_a_rolled_back_batch_never_reaches_another_thread(pg_db_url):
    """Two threads share one Store (as `vigil serve` does). Batch A creates series X and then
    fails; batch B, written while A is still open, also has X. B must not use the id A learnt
    inside its transaction: the rollback takes that id back and B's rows would be orphaned."""
    st = open_store(pg_db_url)
    install_failing_trigger(st, "wait")
    ing_a, ing_b = _prepared(st)
    x = {"outcome": "race"}
    gate = Gate(pg_db_url)
    try:
        gate.push("a", ing_a, [inc("checkout_attempts", x, 5), gauge(666)])
        gate.until(lambda: gate.waiting() >= 1, "batch A to block inside its transaction")
        gate.push("b", ing_b, [inc("checkout_attempts", x, 7)])
        gate.until(lambda: "b" in gate.outcome or gate.waiting() >= 2, "batch B to finish or wait for A")
    finally:
        gate.release()
    assert isinstance(gate.outcome["a"], StoreError)
    assert gate.outcome["b"] == "ok"
    assert counter_sums(st, 'checkout_attempts{outcome="race"}', [M]) == [7]
    assert orphans(st) == 0
    st.close()


@pytest.mark.postgres
def test_new_series_wait_for_the_open_transaction_that_creates_series_and_reach_the_catalog(pg_db_url):
    """Series are created under the cardinality count's lock (exact limits with concurrent
    writers), so batch B, creating series Y while batch A is still open with its new series X,
    waits for A instead of committing around it; ids therefore commit in order. A long-lived Store
    (`vigil serve`) that reads the catalog in between sees neither; afterwards it finds both.
    (Before the limits, B committed first: the catalog's full re-read on a count mismatch still
    covers a store where that happened.)"""
    st = open_store(pg_db_url)
    install_failing_trigger(st, "pause")
    ing_a, ing_b = _prepared(st)
    reader = open_store(pg_db_url)
    push(Ingestor(SPEC, reader), [inc("checkout_attempts", {"outcome": "old"}, 1)])
    assert len(reader.series()) == 1
    gate = Gate(pg_db_url)
    try:
        gate.push("a", ing_a, [inc("checkout_attempts", {"outcome": "x"}, 5), gauge(666)])
        gate.until(lambda: gate.waiting() >= 1, "batch A to block inside its transaction")
        gate.push("b", ing_b, [inc("checkout_attempts", {"outcome": "y"}, 7)])
        gate.until(lambda: gate.waiting() >= 2, "batch B to wait for batch A")
        assert "b" not in gate.outcome
        assert {s.labels["outcome"] for s in reader.series() if s.kind == "counter"} == {"old"}
    finally:
        gate.release()
    assert gate.outcome == {"a": "ok", "b": "ok"}
    assert {s.labels.get("outcome") for s in reader.series()} == {"old", "x", "y", None}
    assert counter_sums(reader, 'checkout_attempts{outcome="x"}', [M]) == [5]
    assert counter_sums(reader, "checkout_attempts", [M]) == [13]
    reader.close()
    st.close()


# -- failures of the database ------------------------------------------------------------------------


def test_refused_connection_is_a_prompt_store_error_with_a_hint():
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(StoreError) as e:
        open_store(f"postgresql://postgres@127.0.0.1:{port}/vigil")
    assert time.monotonic() - t0 < 10
    assert_clean_store_error(e, "cannot open the state database", str(port))
    assert "server is up" in e.value.hint


@pytest.mark.postgres
def test_server_stopped_mid_use_then_back():
    with PgCluster() as pg:
        st = open_store(pg.url())
        ing = Ingestor(SPEC, st)
        push(ing, [inc("checkout_attempts", {"outcome": "success"}, 3)])
        pg.stop(mode="fast")
        t0 = time.monotonic()
        with pytest.raises(StoreError) as e:
            ing.push_body(ndjson([inc("checkout_attempts", {"outcome": "success"}, 4)]), NOW)
        assert_clean_store_error(e, "nothing of this batch was stored")
        for call in (lambda: EmbeddedSource(st), st.gate_decisions, lambda: st.purge_before(0), st.ping,
                     lambda: st.record_gate_decision(_decision_row("api", True))):
            with pytest.raises(StoreError) as e:
                call()
            assert_clean_store_error(e, "refused")
        assert time.monotonic() - t0 < 10
        pg.start()
        push(ing, [inc("checkout_attempts", {"outcome": "success"}, 5)])  # the pool reconnects
        assert counter_sums(st, "checkout_attempts", [M]) == [8]
        st.close()


@pytest.mark.parametrize("case", ["parent-is-dev-null", "parent-is-a-file", "path-is-a-directory", "not-a-database"])
def test_unusable_sqlite_path_is_a_clear_store_error(tmp_path, case):
    if case == "parent-is-dev-null":
        path, words = "/dev/null/vigil/state.db", ("cannot create the database directory",)
    elif case == "parent-is-a-file":
        (tmp_path / "afile").write_text("x")
        path, words = tmp_path / "afile" / "state.db", ("cannot create the database directory",)
    elif case == "path-is-a-directory":
        path, words = tmp_path, ("is a directory",)
    else:  # e.g. --db pointed at the spec by mistake
        path = tmp_path / "vigil.yaml"
        path.write_text("version: 1\nservices: {api: {}}\n" * 200)
        words = ("not a database",)
    with pytest.raises(StoreError) as e:
        open_store(f"sqlite:///{path}")
    assert_clean_store_error(e, *words)


def test_read_only_sqlite_database_refuses_writes_cleanly(tmp_path):
    """Read-only without dropping root: SQLite's own mode=ro. The write fails; nothing is stored."""
    path = tmp_path / "state.db"
    rw = open_store(f"sqlite:///{path}")
    push(Ingestor(SPEC, rw), [inc("checkout_attempts", {"outcome": "success"}, 1)])
    before = snapshot(rw)
    rw.close()
    ro = open_store(f"sqlite:///file:{path}?mode=ro&uri=true")
    ing = Ingestor(SPEC, ro)
    with pytest.raises(StoreError) as e:
        ing.push_body(ndjson([inc("checkout_attempts", {"outcome": "success"}, 1), inc("new_metric", {}, 2)]), NOW)
    assert_clean_store_error(e, "nothing of this batch was stored", "readonly")
    assert snapshot(ro) == before
    ro.close()


# -- retention ------------------------------------------------------------------------------------------


def test_purge_before_deletes_only_older_minutes(st):
    ing = Ingestor(SPEC, st)
    rows = []
    for mi in range(M - 4, M + 1):
        rows += [inc("checkout_attempts", {"outcome": "success"}, 1, minute=mi), obs(0.2, minute=mi), gauge(mi % 7, minute=mi)]
    push(ing, rows)
    assert st.purge_before(M - 4) == 0
    assert st.purge_before(M - 1) == 3 * 3  # minutes M-4, M-3, M-2 of three tables
    for t in (schema.counter_minute, schema.obs_minute, schema.gauge_minute):
        with st.engine.connect() as conn:
            assert sorted(conn.execute(sa.select(t.c.minute)).scalars()) == [M - 1, M]
    assert counter_sums(st, "checkout_attempts", [M - 10]) == [2]
    assert len(st.series()) == 3  # the catalog stays
    assert st.purge_before(M - 1) == 0


# -- gate decisions ----------------------------------------------------------------------------------------


def _decision_row(service: str, allowed: bool, n: int = 0) -> dict:
    return {
        "at": f"2026-11-20T12:{n:02d}:00Z",
        "decided_at": f"2026-11-20T12:{n:02d}:01Z",
        "service": service,
        "allowed": allowed,
        "overridden": not allowed and n % 2 == 0,
        "labels": json.dumps(["p0"] if n % 2 == 0 else []),
        "reason": f"reason {n}" if n % 2 == 0 else None,
        "actor": "ci" if n % 3 else None,
        "spec_sha256": "f" * 64,
        "decision": json.dumps({"n": n, "allowed": allowed}),
    }


def test_gate_decisions_newest_first_filtered_by_service(st):
    ids = [st.record_gate_decision(_decision_row("api" if n % 2 else "checkout", n % 3 != 0, n)) for n in range(7)]
    assert ids == sorted(ids) and len(set(ids)) == 7
    rows = st.gate_decisions()
    assert [r["id"] for r in rows] == ids[::-1]
    assert [r["id"] for r in st.gate_decisions(service="api")] == [ids[5], ids[3], ids[1]]
    assert [r["id"] for r in st.gate_decisions(service="checkout", limit=2)] == [ids[6], ids[4]]
    assert st.gate_decisions(service="nobody") == []
    rec = GateRecord.from_row(rows[-1]).to_dict()  # n = 0
    assert rec["allowed"] is False and rec["overridden"] is True
    assert rec["labels"] == ["p0"] and rec["reason"] == "reason 0" and rec["actor"] is None
    assert rec["decision"] == {"n": 0, "allowed": False}


def test_gate_deploy_reads_and_records_through_the_backend(st):
    ing = Ingestor(SPEC, st)
    month_start = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()) // 60
    push(ing, [inc("checkout_attempts", {"outcome": "success"}, 0, minute=month_start),  # counted since the 1st
               inc("checkout_attempts", {"outcome": "success"}, 50), inc("checkout_attempts", {"outcome": "error"}, 50)])
    d = gate_deploy(LOADED, st, "checkout", NOW, decided_at=NOW, actor="ci")
    assert d.allowed is False and d.freezes
    ok = gate_deploy(LOADED, st, "api", NOW, decided_at=NOW)
    assert ok.allowed is True
    rows = st.gate_decisions()
    assert [r["id"] for r in rows] == [ok.id, d.id]
    rec = GateRecord.from_row(rows[1]).to_dict()
    assert rec["service"] == "checkout" and rec["allowed"] is False and rec["actor"] == "ci"
    assert rec["decision"]["slos"][0]["slo"] == "checkout-success"


# -- concurrent writers ----------------------------------------------------------------------------------------


def test_concurrent_writers_lose_nothing(db_url):
    """Two writers, each with its own Store (two processes would do the same), push into one
    database at once: the same series in opposite orders, and new series created concurrently."""
    n_batches = 25
    shared = [{"outcome": f"s{i}"} for i in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(w: int) -> None:
        s = open_store(db_url)
        try:
            ing = Ingestor(SPEC, s)
            barrier.wait(timeout=10)
            for b in range(n_batches):
                order = shared if w == 0 else shared[::-1]
                rows = [inc("checkout_attempts", lab, 1 + w) for lab in order]
                rows.append(inc("checkout_attempts", {"outcome": f"new{b}"}, 10))  # both writers create it
                rows.append(obs(0.3, 1 + w))
                rows.append(gauge(float(b), second=w))
                push(ing, rows)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            s.close()

    open_store(db_url).close()  # migrated first: this test is about writers (see test_concurrent_first_opens...)
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "writers did not finish in 60 s"
    assert errors == [], errors
    st = open_store(db_url)
    each = n_batches * (1 + 2)
    for lab in shared:
        assert counter_sums(st, f'checkout_attempts{{outcome="{lab["outcome"]}"}}', [M]) == [each]
    assert counter_sums(st, "checkout_attempts", [M]) == [8 * each + n_batches * 20]
    assert obs_counts(st, NS_300MS) == [(each, each)]
    with st.engine.connect() as conn:
        g = conn.execute(sa.select(schema.gauge_minute)).one()
    assert g.samples == 2 * n_batches and g.max == n_batches - 1 and g.min == 0
    assert len(st.series()) == 8 + n_batches + 2
    assert orphans(st) == 0
    st.close()
    assert time.monotonic() - t0 < 60
