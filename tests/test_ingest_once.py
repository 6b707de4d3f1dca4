"""Every sample counted exactly once (issue 12): idempotent pushes over HTTP and from `vigil push`,
what a failed push reports, exact 64-bit counts, one kind per metric, the store's bucket bounds and
cardinality limits -- on SQLite and on a real PostgreSQL 15 where concurrency matters.

Each observed failure of the issue has a test named after it:
- pushing the same file twice doubled `valid` and `bad`;
- a `kill -9` of `vigil push` at 300k of 1M lines, then a re-push, stored 1.3M;
- on a full disk the CLI said "nothing of this batch was stored" after lines 1-50,000 had been committed;
- a push with a spec lacking a 350ms threshold bucketed without it; the SLO read 0/10 good, no warning.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_helpers import AUTH, TOKEN, VIGIL, LosingProxy, Serve, engine_for, ndjson, stored, wait_for
from live import LiveServer
from vigil.client import VigilClient, with_retries
from vigil.clock import FakeClock
from vigil.errors import StoreError
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import LoadedSpec, parse_spec
from vigil.store import open_store, schema
from vigil.store.ingest_txn import KEY_TTL_MS
from vigil.telemetry.ingest import MAX_INC, MAX_STORED, IngestContext, ingest, seconds_to_ns
from vigil.telemetry.push import Ingestor
from vigil.telemetry.source import EmbeddedSource
from vigil.web.app import create_app

NOW = "2026-11-20T12:00:00Z"
NOW_DT = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NOW_MIN = int(NOW_DT.timestamp()) // 60

SPEC_TEXT = """\
version: 1
services: {api: {}, checkout: {}}
telemetry: {retention: 40d}
slos:
  - name: checkout-success
    service: checkout
    objective: 99
    window: {rolling: 30d}
    sli:
      ratio:
        good: 'checkout_attempts{outcome="success"}'
        total: 'checkout_attempts'
  - name: api-latency-350
    service: api
    objective: 90
    window: {rolling: 7d}
    sli:
      latency: {metric: 'http_request_duration_seconds{service="api"}', threshold: 350ms}
"""
SPEC = parse_spec(SPEC_TEXT)
# the same platform, as a pusher that does not know the 350 ms SLO
SPEC_NO_350 = parse_spec(SPEC_TEXT.split("  - name: api-latency-350")[0])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


@pytest.fixture
def spec_file(tmp_path) -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text(SPEC_TEXT)
    return p


def ts(minute: int, second: int = 0) -> str:
    return datetime.fromtimestamp(minute * 60 + second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def checkout(minute: int, good: int, bad: int) -> list[dict]:
    return [
        {"ts": ts(minute), "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": good},
        {"ts": ts(minute), "metric": "checkout_attempts", "labels": {"outcome": "error"}, "inc": bad},
    ]


def slo(store, name: str, spec=SPEC, at: datetime = NOW_DT) -> dict:
    return {s.slo.name: s.to_dict() for s in evaluate_slos(spec.slos, EmbeddedSource(store), at)}[name]


def cli_env(**extra: str) -> dict:
    env = dict(os.environ, VIGIL_NOW=NOW)
    for k in ("VIGIL_DB", "VIGIL_SPEC", "VIGIL_TOKEN"):
        env.pop(k, None)
    env.update(extra)
    return env


# == pushing the same content twice ==================================================================


def test_pushing_the_same_file_twice_stores_it_once(cli, spec_file, tmp_path, monkeypatch):
    """Observed: pushing the same file twice doubled `valid` and `bad`."""
    rows = [r for m in range(NOW_MIN - 300, NOW_MIN) for r in checkout(m, 95, 5)]
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson(rows))
    db = f"sqlite:///{tmp_path / 'state.db'}"
    r = cli("push", f, "--spec", spec_file, "--db", db, "--json", now=NOW)
    assert r.code == 0, r.err
    first = r.json()
    assert first["accepted"] == 600 and first["batches"] == 1 and first["already_stored"]["batches"] == 0
    st_ = open_store(db)
    before = slo(st_, "checkout-success")
    assert (before["good"], before["valid"]) == (300 * 95, 300 * 100)

    r = cli("push", f, "--spec", spec_file, "--db", db, now=NOW)
    assert r.code == 0, r.err
    assert "accepted 0 samples, rejected 0" in r.out
    assert "already stored: 1 batches skipped (600 lines, 600 samples stored by an earlier push" in r.out
    # the same bytes from stdin are the same content
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(f.read_bytes()))))
    r = cli("push", "-", "--spec", spec_file, "--db", db, "--json", now=NOW)
    assert r.code == 0 and r.json()["accepted"] == 0 and r.json()["already_stored"] == {
        "batches": 1, "lines": 600, "accepted": 600, "rejected": 0,
    }
    after = slo(st_, "checkout-success")
    assert (after["good"], after["valid"], after["bad"]) == (before["good"], before["valid"], before["bad"])
    # different content (one more minute) is stored
    f.write_bytes(ndjson(rows + checkout(NOW_MIN, 1, 1)))
    r = cli("push", f, "--spec", spec_file, "--db", db, "--json", now=NOW)
    assert r.code == 0 and r.json()["accepted"] == 602
    st_.close()


def test_a_file_pushed_locally_then_to_a_server_is_stored_once(cli, spec_file, tmp_path):
    """`vigil push` and `vigil push --url` cut the same batches with the same chain keys: the server
    replays the batches the local push stored (and the other way round)."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(db)
    app = create_app(LoadedSpec(SPEC, None, "0" * 64), store, TOKEN, FakeClock(NOW))
    rows = [r for m in range(NOW_MIN - 120, NOW_MIN) for r in checkout(m, 9, 1)]
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson(rows) + b"not json\n")
    tok = tmp_path / "token"
    tok.write_text(TOKEN)
    tok.chmod(0o600)
    with LiveServer(app) as srv:
        r = cli("push", f, "--spec", spec_file, "--db", db, "--json", now=NOW)
        assert r.code == 2 and r.json()["accepted"] == 240 and r.json()["rejected"] == 1
        r = cli("push", f, "--url", srv.url, "--token-file", tok, "--json", now=NOW)
        assert r.code == 0, r.err  # nothing rejected by this run: it stored nothing
        d = r.json()
        assert d["accepted"] == 0 and d["already_stored"] == {"batches": 1, "lines": 241, "accepted": 240, "rejected": 1}
        g = tmp_path / "u.ndjson"
        g.write_bytes(ndjson(checkout(NOW_MIN - 121, 7, 3)))
        r = cli("push", g, "--url", srv.url, "--token-file", tok, "--json", now=NOW)
        assert r.json()["accepted"] == 2
        r = cli("push", g, "--spec", spec_file, "--db", db, "--json", now=NOW)
        assert r.json()["accepted"] == 0 and r.json()["already_stored"]["batches"] == 1
    s = slo(store, "checkout-success")
    assert (s["good"], s["valid"]) == (120 * 9 + 7, 120 * 10 + 10)
    store.close()


# == HTTP Idempotency-Key ==============================================================================


@pytest.fixture
def api(db_url):
    store = open_store(db_url)
    app = create_app(LoadedSpec(SPEC, None, "0" * 64), store, TOKEN, FakeClock(NOW))
    with LiveServer(app) as srv:
        srv.store = store  # type: ignore[attr-defined]
        srv.db_url = db_url  # type: ignore[attr-defined]
        yield srv
    store.close()


def post(srv, body: bytes, key: str | None = None, **headers) -> httpx.Response:
    h = dict(AUTH, **headers)
    if key is not None:
        h["Idempotency-Key"] = key
    return httpx.post(srv.url + "/api/v1/push", content=body, headers=h, timeout=60)


def test_a_replayed_key_answers_the_first_response_and_stores_nothing(api):
    body = ndjson(checkout(NOW_MIN - 5, 10, 2)) + b"oops\n"
    r1 = post(api, body, "key-1")
    assert r1.status_code == 200 and r1.json()["accepted"] == 2 and r1.json()["rejected"] == 1
    assert "idempotent-replayed" not in r1.headers
    r2 = post(api, body, "key-1")
    assert r2.status_code == 200 and r2.headers["idempotent-replayed"] == "true"
    assert r2.json() == r1.json()
    assert stored(api.db_url)["counters"] == 12
    # a body nothing of which was accepted: its 400 is the answer replayed
    bad = b"nope\n"
    r3 = post(api, bad, "key-2")
    assert r3.status_code == 400 and r3.json()["error"]["code"] == "telemetry-invalid"
    r4 = post(api, bad, "key-2")
    assert (r4.status_code, r4.json(), r4.headers["idempotent-replayed"]) == (400, r3.json(), "true")
    # without a key, the same body is new samples
    assert post(api, body).json()["accepted"] == 2
    assert stored(api.db_url)["counters"] == 24


def test_a_key_reused_for_another_body_is_422_and_stores_nothing(api):
    assert post(api, ndjson(checkout(NOW_MIN - 5, 10, 2)), "key-1").status_code == 200
    r = post(api, ndjson(checkout(NOW_MIN - 5, 11, 2)), "key-1")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "idempotency-key-reused" and "different body" in err["message"] and err["hint"]
    assert stored(api.db_url)["counters"] == 12


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\tkey", "é"])
def test_a_malformed_key_is_400(api, key):
    r = httpx.post(api.url + "/api/v1/push", content=ndjson(checkout(NOW_MIN - 5, 1, 1)),
                   headers={**AUTH, "Idempotency-Key": key.encode("utf-8")}, timeout=30)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]["message"]
    assert stored(api.db_url)["counters"] == 0


def test_concurrent_requests_with_one_key_store_once(api):
    """Eight clients send one key and one body at the same moment: the unique key decides."""
    body = ndjson([r for m in range(NOW_MIN - 600, NOW_MIN) for r in checkout(m, 3, 1)])
    barrier = threading.Barrier(8)
    out: list[httpx.Response] = []

    def go() -> None:
        barrier.wait(timeout=30)
        out.append(post(api, body, "same-key"))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(out) == 8 and all(r.status_code == 200 for r in out), [r.text[:200] for r in out]
    assert {r.json()["accepted"] for r in out} == {1200}
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in out) == 7
    assert stored(api.db_url)["counters"] == 600 * 4


def test_a_retry_after_a_lost_response_is_answered_from_the_first_attempt(api):
    """The server stored the push but its answer never reached the client (as after a timeout):
    the client's retry, with the same key, is answered from the first attempt."""
    proxy = LosingProxy(api.port, lose=lambda n: n == 1)
    client = VigilClient(proxy.url, TOKEN)
    try:
        body = ndjson(checkout(NOW_MIN - 5, 40, 2))
        (resp, replayed), retries = with_retries(lambda: client.push_keyed(body, "k-lost"), retries=3, sleep=lambda s: None)
    finally:
        client.close()
        proxy.close()
    assert proxy.lost == 1 and retries == 1 and replayed
    assert resp["accepted"] == 2
    assert stored(api.db_url)["counters"] == 42


def test_http_keys_expire_after_24_hours(api):
    body = ndjson(checkout(NOW_MIN - 5, 1, 0))
    post(api, body, "old-key")
    store = api.store
    now_ms = int(NOW_DT.timestamp() * 1000)
    assert store.purge_keys(now_ms + KEY_TTL_MS - 1000) == 0
    assert store.ingest_key("old-key") is not None
    assert store.purge_keys(now_ms + KEY_TTL_MS + 1000) == 1
    assert store.ingest_key("old-key") is None
    # the retention pass forgets them too, measured from the newest key when it is given no clock
    post(api, body, "k2")
    assert store.purge_before(0) == 0 and store.ingest_key("k2") is not None
    store.purge_before(0, now_ms=now_ms + KEY_TTL_MS + 1000)
    assert store.ingest_key("k2") is None


def test_the_push_route_is_bounded_and_answers_429_with_retry_after(tmp_path):
    """One push at a time: a second that waits longer than push_wait is a 429 (its body read, so
    the client sees the answer); retried after Retry-After with its key, it is stored once."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    app = create_app(LoadedSpec(SPEC, None, "0" * 64), store, TOKEN, FakeClock(NOW),
                     push_options={"max_pushes": 1, "push_wait": 0.2})
    import socket

    with LiveServer(app) as srv:
        slow = ndjson(checkout(NOW_MIN - 9, 5, 5))
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nContent-Length: " + str(len(slow)).encode() + b"\r\n\r\n" + slow[:20])
        body = ndjson(checkout(NOW_MIN - 5, 3, 1))
        # the held push has its slot once the server began reading it: probe with an empty push
        # (it stores nothing) until it is turned away -- a bounded wait on a real server
        deadline = time.monotonic() + 30
        while post(srv, b"\n").status_code != 429:
            assert time.monotonic() < deadline, "the held push never took the slot"
        r = post(srv, body, "k-busy")
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "busy" and "Idempotency-Key" in r.json()["error"]["hint"]
        s.sendall(slow[20:])
        answer = s.recv(65536)
        assert b" 200 " in answer.split(b"\r\n")[0]
        s.close()
        r = post(srv, body, "k-busy")
        assert r.status_code == 200 and r.json()["accepted"] == 2
    assert stored(f"sqlite:///{tmp_path / 'state.db'}")["counters"] == 10 + 4
    store.close()


# == vigil push: a crash, a full disk, a server error ================================================


def _million(path: Path, n: int = 1_000_000) -> None:
    """n one-sample counter lines, one series per outcome, spread over the last 7 days."""
    with open(path, "w") as f:
        start = NOW_MIN - 7 * 1440
        for i in range(n):
            m = start + i * 7 * 1440 // n
            f.write(f'{{"ts":"{ts(m, i % 60)}","metric":"checkout_attempts","labels":{{"outcome":"{"success" if i % 10 else "error"}"}},"inc":1}}\n')


def _push_keys(db_path: Path) -> int:
    import sqlite3

    c = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return c.execute("SELECT count(*) FROM ingest_keys WHERE source = 'push'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        c.close()


def test_a_push_killed_at_300k_of_1m_lines_then_pushed_again_stores_exactly_the_rest(spec_file, tmp_path):
    """Observed: a kill -9 of `vigil push` at 300k of 1M lines, then a re-push, stored 1.3M."""
    data = tmp_path / "million.ndjson"
    _million(data)
    db_path = tmp_path / "state.db"
    db = f"sqlite:///{db_path}"
    subprocess.run([*VIGIL, "store", "init", "--spec", str(spec_file), "--db", db], env=cli_env(), check=True, capture_output=True)
    p = subprocess.Popen([*VIGIL, "push", str(data), "--spec", str(spec_file), "--db", db], env=cli_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _push_keys(db_path) >= 6 or p.poll() is not None, "300k lines to be committed", timeout=300)
    finally:
        p.kill()  # SIGKILL: no cleanup of any kind
        p.wait(timeout=30)
    assert p.returncode == -9, "the push finished before it could be killed"
    committed = _push_keys(db_path)
    assert 6 <= committed < 20
    assert stored(db)["counters"] == committed * 50_000  # whole batches, nothing of the one in flight
    r = subprocess.run([*VIGIL, "push", str(data), "--spec", str(spec_file), "--db", db, "--json"], env=cli_env(),
                       capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    d = json.loads(r.stdout)
    assert d["already_stored"]["batches"] == committed
    assert d["accepted"] == 1_000_000 - committed * 50_000
    assert d["committed_through_line"] == 1_000_000
    s = stored(db)
    assert s["counters"] == 1_000_000 and s["counter_hours"] == 1_000_000
    assert s["series"] == 2


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (the tests run as root): a disk that really fills up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the tests run as root): {r.stderr.decode()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_reports_what_was_committed_and_a_rerun_stores_the_rest(spec_file, tmp_path, small_disk):
    """Observed: on a full disk the CLI said "nothing of this batch was stored" after lines
    1-50,000 had been committed. Now it says what is stored, in text and --json, and running the
    same command again (after making room) stores exactly the rest."""
    data = tmp_path / "big.ndjson"
    n = 200_000
    with open(data, "w") as f:  # distinct series-minutes: every line is a row
        for i in range(n):
            f.write(f'{{"ts":"{ts(NOW_MIN - 1 - i // 40)}","metric":"checkout_attempts","labels":{{"outcome":"o{i % 40}"}},"inc":{i % 7 + 1}}}\n')
    total = sum(i % 7 + 1 for i in range(n))
    db = f"sqlite:///{small_disk / 'state.db'}"
    subprocess.run([*VIGIL, "store", "init", "--spec", str(spec_file), "--db", db], env=cli_env(), check=True, capture_output=True)
    r = subprocess.run([*VIGIL, "push", str(data), "--spec", str(spec_file), "--db", db, "--json"], env=cli_env(),
                       capture_output=True, timeout=600)
    assert r.returncode == 3, (r.stdout[-500:], r.stderr[-2000:])
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "push-incomplete" and err["cause"]["code"] == "store"
    assert "full" in err["cause"]["message"]
    through = err["committed_through_line"]
    assert through % 50_000 == 0 and through >= 50_000, "the disk should hold at least one batch"
    assert err["accepted"] == through and err["batches"] == through // 50_000
    assert f"lines 1-{through} are stored" in err["message"] and "run the same command again" in err["hint"]
    held = stored(db)["counters"]
    assert held == sum(i % 7 + 1 for i in range(through))
    # the text form says the same
    r = subprocess.run([*VIGIL, "push", str(data), "--spec", str(spec_file), "--db", db], env=cli_env(),
                       capture_output=True, timeout=600)
    assert r.returncode == 3
    assert f"lines 1-{through} are stored" in r.stderr.decode() and "Traceback" not in r.stderr.decode()
    assert stored(db)["counters"] == held
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    r = subprocess.run([*VIGIL, "push", str(data), "--spec", str(spec_file), "--db", db, "--json"], env=cli_env(),
                       capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    d = json.loads(r.stdout)
    assert d["already_stored"]["batches"] == through // 50_000 and d["accepted"] == n - through
    assert stored(db)["counters"] == total


def test_a_server_error_mid_file_reports_what_was_stored_and_a_rerun_stores_the_rest(cli, tmp_path):
    """`vigil push --url` against a store that refuses the second batch (a database trigger): after
    its retries it reports the lines the server stored; the same command later stores the rest."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(db)
    app = create_app(LoadedSpec(SPEC, None, "0" * 64), store, TOKEN, FakeClock(NOW))
    rows = [{"ts": ts(NOW_MIN - 1 - i // 2), "metric": "checkout_attempts", "labels": {"outcome": f"o{i % 2}"}, "inc": 1}
            for i in range(60_000)]
    rows[55_000] = {"ts": ts(NOW_MIN - 3), "metric": "queue_depth", "set": 666}
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson(rows))
    tok = tmp_path / "token"
    tok.write_text(TOKEN)
    tok.chmod(0o600)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON gauge_minute WHEN NEW.last = 666 "
            "BEGIN SELECT RAISE(ABORT, 'refusing gauge value 666'); END"
        )
    with LiveServer(app) as srv:
        r = cli("push", f, "--url", srv.url, "--token-file", tok, "--retries", "1", "--json", now=NOW)
        assert r.code == 3, r.err
        err = r.json()["error"]
        assert err["code"] == "push-incomplete" and "refusing gauge value 666" in err["message"]
        assert err["committed_through_line"] == 50_000 and err["accepted"] == 50_000
        assert "lines 1-50000 are stored" in r.err and "at lines 50001-60000" in r.err
        assert stored(db)["counters"] == 50_000
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse")
        r = cli("push", f, "--url", srv.url, "--token-file", tok, "--json", now=NOW)
        assert r.code == 0, r.err
        assert r.json()["already_stored"]["batches"] == 1 and r.json()["accepted"] == 10_000
    s = stored(db)
    assert s["counters"] == 59_999 and s["gauge_samples"] == 1
    store.close()


# == exact numbers ===========================================================================================


def test_sums_that_do_not_fit_64_bits_are_rejected_per_line_and_the_rest_is_stored(db_url):
    """A series-minute that would pass 2^63 - 1 within one batch: the lines that would take it
    there are rejected with their numbers; the other lines of the batch are stored; the counter
    stays an exact integer (SQLite would silently turn an overflowing sum into a REAL)."""
    st_ = open_store(db_url)
    ing = Ingestor(SPEC, st_)
    m = NOW_MIN - 10  # 11:50: the hour's other minutes are 11:00-11:59
    big = {"ts": ts(m), "metric": "checkout_attempts", "labels": {"outcome": "success", "shard": "big"}, "inc": MAX_INC}
    rows = [big] * 1025 + checkout(m, 7, 3)
    res = ing.push_body(ndjson(rows), NOW_DT)
    # 1023 * 2^53 fits; the 1024th would make 2^63
    assert res.accepted == 1023 + 2 and res.rejected_count == 2
    assert [x.line for x in res.rejected] == [1024, 1025]
    assert "past 9223372036854775807" in res.rejected[0].error

    def typeofs() -> set:
        with st_.engine.connect() as c:
            return set(c.execute(sa.text("SELECT typeof(value) FROM counter_minute UNION SELECT typeof(value) FROM counter_hour")).scalars())

    with st_.engine.connect() as c:
        top = c.execute(sa.text("SELECT value FROM counter_minute ORDER BY value DESC")).scalars().first()
    assert top == 1023 * MAX_INC and isinstance(top, int)
    if st_.dialect == "sqlite":
        assert typeofs() == {"integer"}
    # across batches: what is stored counts
    left = MAX_STORED - 1023 * MAX_INC
    res = ing.push_body(ndjson([{**big, "inc": left}, {**big, "inc": 1}, *checkout(m, 1, 1)]), NOW_DT)
    assert res.accepted == 3 and [x.line for x in res.rejected] == [2]
    # and so does the hour: other minutes that each fit, in an hour that would not
    other = [{**big, "ts": ts(m - 1 - i), "inc": 1} for i in range(3)]
    res = ing.push_body(ndjson(other + checkout(m - 120, 1, 0)), NOW_DT)
    assert res.accepted == 2 and [x.line for x in res.rejected] == [1, 2, 3]
    s = slo(st_, "checkout-success")
    assert s["good"] == MAX_STORED + 7 + 1 + 1 and s["valid"] == MAX_STORED + 7 + 1 + 1 + 3 + 1  # exact, as Python ints
    if st_.dialect == "sqlite":
        assert typeofs() == {"integer"}
    st_.close()


def test_observation_counts_that_do_not_fit_are_rejected_per_line(db_url):
    st_ = open_store(db_url)
    ing = Ingestor(SPEC, st_)
    o = {"ts": ts(NOW_MIN - 3), "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.2, "count": MAX_INC}
    res = ing.push_body(ndjson([o] * 1024 + [{**o, "observe": 0.5, "count": 5}]), NOW_DT)
    assert res.accepted == 1024 and [x.line for x in res.rejected] == [1024]
    assert "count" in res.rejected[0].error
    assert stored(db_url)["observations"] == 1023 * MAX_INC + 5
    st_.close()


@pytest.mark.parametrize("field,value", [("inc", 2**63), ("inc", 2**64 + 5), ("inc", 9.3e18), ("count", 2**63)])
def test_a_value_that_does_not_fit_is_a_rejection_with_its_line(field, value, tmp_path):
    st_ = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    row = {"ts": ts(NOW_MIN - 1), "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 1}
    if field == "count":
        row = {"ts": ts(NOW_MIN - 1), "metric": "http_request_duration_seconds", "observe": 0.1, "count": value}
    else:
        row["inc"] = value
    res = Ingestor(SPEC, st_).push_body(ndjson(checkout(NOW_MIN - 1, 1, 1) + [row]), NOW_DT)
    assert res.accepted == 2 and [x.line for x in res.rejected] == [3]
    assert f"between {'0' if field == 'inc' else '1'} and {MAX_INC}" in res.rejected[0].error
    st_.close()


# == duplicate keys ===================================================================================================


def _ctx() -> IngestContext:
    now_ms = int(NOW_DT.timestamp() * 1000)
    return IngestContext(now_ms=now_ms, oldest_ms=now_ms - 86400_000, max_future_ms=600_000, bounds_ns=(), metric_kinds={})


@pytest.mark.parametrize(
    "line",
    [
        '{"ts":"2026-11-20T11:00:00Z","metric":"m","inc":1,"inc":1000}',
        '{"ts":"2026-11-20T11:00:00Z","metric":"m","inc":1, "inc" : 1000}',
        '{"ts":"2026-11-20T11:00:00Z","ts":"2026-11-20T11:00:00Z","metric":"m","inc":1}',
        '{"ts":"2026-11-20T11:00:00Z","metric":"m","labels":{"a":"x","a":"y"},"inc":1}',
        '{"ts":"2026-11-20T11:00:00Z","metric":"m\\u003a","metric":"m","inc":1}',  # an escaped ':' must not hide the duplicate
        '{"ts":"2026-11-20T11:00:00Z","metric":"m","labels":{"a":"1\\u003a2","a":"12"},"inc":1}',
    ],
)
def test_a_duplicate_key_in_a_line_is_rejected(line):
    r = ingest([(1, line.encode())], _ctx())
    assert r.accepted == 0 and r.rejected_count == 1
    assert "duplicate key" in r.rejected[0].error


def test_lines_with_colons_in_values_are_not_mistaken_for_duplicates():
    lines = [
        '{"ts":"2026-11-20T11:00:00+00:00","metric":"job:http:rate","labels":{"url":"http://x:80/a:b","b":"::"},"inc":1}',
        '{"ts" : "2026-11-20T11:00:00Z" , "metric" : "m" , "inc" : 1}',
        '{"ts":"2026-11-20T11:00:00Z","metric":"m","labels":{"q":"a\\"b:c"},"inc":1}',
    ]
    r = ingest([(i, x.encode()) for i, x in enumerate(lines, 1)], _ctx())
    assert r.rejected == [] and r.accepted == 3


_keys = st.sampled_from(["ts", "metric", "labels", "inc"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_keys, max_size=3), st.booleans(), st.randoms(use_true_random=False),
       st.lists(st.sampled_from(["a", "b", "c"]), max_size=4), st.booleans(), st.sampled_from(["x", "x:y", "::", "x\\u003ay"]))
def test_duplicates_are_found_exactly_whatever_the_layout(extra, with_labels, rnd, label_keys, spaced, value):
    """A line that is otherwise good: rejected for a duplicate key exactly when it has one."""
    keys = ["ts", "metric", "inc"] + (["labels"] if with_labels else []) + extra
    rnd.shuffle(keys)
    values = {"ts": '"2026-11-20T11:00:00Z"', "metric": '"m"', "inc": "1",
              "labels": "{" + ",".join(f'"{k}":"{value}"' for k in label_keys) + "}"}
    sep = " : " if spaced else ":"
    text = "{" + ",".join(f'"{k}"{sep}{values[k]}' for k in keys) + "}"
    dup = len(set(keys)) != len(keys) or ("labels" in keys and len(set(label_keys)) != len(label_keys))
    r = ingest([(1, text.encode())], _ctx())
    if dup:
        assert r.accepted == 0 and "duplicate key" in r.rejected[0].error
    else:
        assert r.accepted == 1, r.rejected


# == one kind per metric ==============================================================================================

_KIND_WORKER = """
import sys, time
from pathlib import Path
from datetime import datetime, timezone
from vigil.spec import parse_spec
from vigil.store import open_store
from vigil.telemetry.push import Ingestor
url, go, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
spec = parse_spec("version: 1\\nservices: {api: {}}\\ntelemetry: {retention: 40d}\\n")
st = open_store(url)
ing = Ingestor(spec, st)
now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ing.context(now)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
won = 0
for i in range(n):
    r = ing.push_lines([(1, {"ts": "2026-11-20T11:59:00Z", "metric": f"m{i}", "labels": {"w": "cli"}, "observe": 0.1})], now)
    won += r.accepted
print(won, flush=True)
"""


def test_a_server_and_a_cli_never_register_one_metric_as_two_kinds(db_url, tmp_path):
    """Two processes push the same 150 new metrics at once -- `vigil serve` taking them as gauges
    over HTTP, a library process as observations. The store decides each metric's kind once:
    every metric has exactly one kind, and each push of a metric was stored by exactly one side."""
    n = 150
    open_store(db_url).close()
    spec = tmp_path / "vigil.yaml"
    spec.write_text("version: 1\nservices: {api: {}}\ntelemetry: {retention: 40d}\n")
    go = tmp_path / "go"
    with Serve(spec, db_url.replace("postgresql+psycopg://", "postgresql://"), now=NOW) as srv:
        worker = subprocess.Popen([sys.executable, "-c", _KIND_WORKER, db_url, str(go), str(n)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == b"ready"
        won_http = 0
        with httpx.Client(base_url=srv.url, headers=AUTH, timeout=60) as c:
            go.touch()
            for i in range(n):
                r = c.post("/api/v1/push", content=json.dumps({"ts": "2026-11-20T11:59:00Z", "metric": f"m{i}", "labels": {"w": "http"}, "set": 1}).encode())
                assert r.status_code in (200, 400), r.text
                won_http += r.json()["accepted"]
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()[-2000:]
        won_cli = int(out.split()[-1])
    assert won_http + won_cli == n
    e = engine_for(db_url)
    with e.connect() as c:
        kinds = c.execute(sa.text("SELECT metric, COUNT(DISTINCT kind), MIN(kind) FROM series GROUP BY metric")).all()
        registered = dict(c.execute(sa.text("SELECT metric, kind FROM metric_kinds")).all())
    e.dispose()
    assert len(kinds) == n and all(k == 1 for _, k, _ in kinds)
    assert {m: k for m, _, k in kinds} == registered
    assert sum(1 for k in registered.values() if k == "gauge") == won_http


def test_a_store_from_before_metric_kinds_keeps_the_first_kind(tmp_path):
    """Migration 0006 registers each metric's kind from its oldest series, even where an older vigil
    let a metric be registered as two kinds."""
    from alembic import command
    from alembic.config import Config

    from vigil.store import REVISIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    e = sa.create_engine(url)
    with e.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(REVISIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.exec_driver_sql("INSERT INTO series (metric, labels, kind) VALUES ('lat', '{}', 'gauge'), ('lat', '{\"a\":\"b\"}', 'observation'), ('reqs', '{}', 'counter')")
    e.dispose()
    st_ = open_store(url)
    assert st_.metric_kinds() == {"lat": "gauge", "reqs": "counter"}
    assert st_.series_counts() == (3, {"lat": 2, "reqs": 1})
    res = Ingestor(SPEC, st_).push_body(b'{"ts":"2026-11-20T11:00:00Z","metric":"lat","observe":0.1}\n', NOW_DT)
    assert res.accepted == 0 and "is a gauge" in res.rejected[0].error
    st_.close()


# == bucket bounds are the store's =====================================================================================


def _obs(minute: int, v: float, n: int = 1) -> dict:
    row = {"ts": ts(minute), "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": v}
    if n != 1:
        row["count"] = n
    return row


def test_a_push_with_a_spec_lacking_a_threshold_uses_the_stores_bounds(cli, tmp_path, db_url):
    """Observed: a push with a spec lacking a 350ms threshold bucketed without it; the SLO read 0/10
    good, no warning. The bounds are the store's: every push buckets by every threshold any spec
    declared, whatever spec the pusher loaded."""
    st_ = open_store(db_url)
    Ingestor(SPEC, st_).context(NOW_DT)  # the server's spec declares 350 ms
    other = tmp_path / "pusher.yaml"
    other.write_text(SPEC_TEXT.split("  - name: api-latency-350")[0])
    f = tmp_path / "obs.ndjson"
    f.write_bytes(ndjson([_obs(NOW_MIN - 5, 0.33)] * 10))
    r = cli("push", f, "--spec", other, "--db", db_url, now=NOW)
    assert r.code == 0, r.err
    s = slo(st_, "api-latency-350")
    assert (s["good"], s["valid"]) == (10, 10)
    assert s["warnings"] == []
    st_.close()


def test_a_backfill_pushed_after_a_threshold_was_declared_is_exact_without_warning(db_url):
    st_ = open_store(db_url)
    rows = [_obs(m, 0.34 if m % 4 else 0.36) for m in range(NOW_MIN - 3 * 1440, NOW_MIN)]
    res = Ingestor(SPEC, st_).push_body(ndjson(rows), NOW_DT)
    assert res.rejected_count == 0
    s = slo(st_, "api-latency-350")
    assert (s["good"], s["valid"]) == (3 * 1440 * 3 // 4, 3 * 1440)
    assert s["warnings"] == []
    st_.close()


def test_only_minutes_that_held_observations_before_a_bound_was_declared_are_inexact(db_url):
    st_ = open_store(db_url)
    # 0.349: in the store's 2% bucket (0.348, 0.352] until 350 ms is a bound (0.34 is a bound of that layout)
    Ingestor(SPEC_NO_350, st_).push_body(ndjson([_obs(NOW_MIN - 100, 0.349), _obs(NOW_MIN - 60, 0.349)]), NOW_DT)
    Ingestor(SPEC, st_).context(NOW_DT)  # 350 ms declared now
    src = EmbeddedSource(st_)
    assert src.bound_since(seconds_to_ns(SPEC.slos[1].sli.latency.threshold)) == NOW_MIN - 60 + 1
    s = slo(st_, "api-latency-350")
    assert s["good"] == 0 and s["valid"] == 2  # bucketed at 0.352: counted as not good (conservative)
    assert any("exact only for observations since" in w for w in s["warnings"])
    # a backfill of older minutes now: bucketed by 350 ms; the window still holds the two inexact minutes
    Ingestor(SPEC_NO_350, st_).push_body(ndjson([_obs(NOW_MIN - 2000, 0.349)]), NOW_DT)
    assert slo(st_, "api-latency-350")["good"] == 1
    st_.close()


def test_a_bound_declared_between_checking_and_committing_a_batch_rebuckets_it(db_url):
    """Process A checked a batch against the bounds it read; process B declares 350 ms before A
    commits. A's write sees the store's bounds changed and buckets the batch again."""
    a_store, b_store = open_store(db_url), open_store(db_url)
    a = Ingestor(SPEC_NO_350, a_store)
    s = a.session(NOW_DT)
    s.feed([(1, _obs(NOW_MIN - 5, 0.349, 7))])  # in (0.348, 0.352] without 350 ms
    assert seconds_to_ns(SPEC.slos[1].sli.latency.threshold) not in s.ctx.bounds_ns
    Ingestor(SPEC, b_store).context(NOW_DT)  # registers 350 ms
    s.finish()
    got = slo(a_store, "api-latency-350")
    assert (got["good"], got["valid"], got["warnings"]) == (7, 7, [])
    a_store.close()
    b_store.close()


# == cardinality =======================================================================================================


LIMITED = parse_spec(SPEC_TEXT.replace("telemetry: {retention: 40d}", "telemetry: {retention: 40d, max_series_per_metric: 3, max_series: 5}"))


def test_series_beyond_the_limits_are_rejected_and_existing_series_keep_ingesting(db_url):
    st_ = open_store(db_url)
    ing = Ingestor(LIMITED, st_)

    def c(metric: str, label: str, n: int = 1) -> dict:
        return {"ts": ts(NOW_MIN - 1), "metric": metric, "labels": {"k": label}, "inc": n}

    res = ing.push_body(ndjson([c("a", "1"), c("a", "2"), c("a", "1"), c("a", "3"), c("a", "4"), c("a", "5"), c("a", "2")]), NOW_DT)
    assert res.accepted == 5 and [x.line for x in res.rejected] == [5, 6]
    assert "metric 'a' has 3 series; a new one is over the limit of 3 (telemetry.max_series_per_metric)" in res.rejected[0].error
    res = ing.push_body(ndjson([c("b", "1"), c("b", "2"), c("b", "3"), c("a", "3", 10)]), NOW_DT)
    assert res.accepted == 3 and [x.line for x in res.rejected] == [3]
    assert "the store has 5 series; a new one is over the limit of 5 (telemetry.max_series)" in res.rejected[0].error
    assert stored(db_url)["per_metric"] == {"a": 1 + 1 + 1 + 1 + 1 + 10, "b": 2}
    assert st_.series_counts() == (5, {"a": 3, "b": 2})
    # a new process counts from the store, not from its own memory
    res = Ingestor(LIMITED, st_).push_body(ndjson([c("c", "1"), c("b", "1", 4)]), NOW_DT)
    assert res.accepted == 1 and [x.line for x in res.rejected] == [1]
    st_.close()


@pytest.mark.postgres
def test_cardinality_limits_are_exact_under_concurrent_writers(pg_db_url):
    """Eight writers (each its own Store, as separate processes would be) race to create series of
    one metric past its limit of 50: exactly 50 exist afterwards, and exactly the lines that
    created them were accepted."""
    spec = parse_spec(SPEC_TEXT.replace("telemetry: {retention: 40d}", "telemetry: {retention: 40d, max_series_per_metric: 50}"))
    open_store(pg_db_url).close()
    barrier = threading.Barrier(8)
    accepted: list[int] = []
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        s = open_store(pg_db_url)
        try:
            ing = Ingestor(spec, s)
            ing.context(NOW_DT)
            barrier.wait(timeout=30)
            n = 0
            for b in range(5):
                rows = [{"ts": ts(NOW_MIN - 1), "metric": "hot", "labels": {"w": str(w), "i": str(b * 4 + i)}, "inc": 1} for i in range(4)]
                n += ing.push_body(ndjson(rows), NOW_DT).accepted
            accepted.append(n)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(accepted) == 50
    s = stored(pg_db_url)
    assert s["series"] == 50 and s["counters"] == 50


def test_a_store_error_during_a_push_stores_nothing_and_the_key_is_free_again(tmp_path):
    """A database failure inside a keyed push rolls back the rollup and the key together: the
    retry with the same key stores the push (once)."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    st_ = open_store(db)
    ing = Ingestor(SPEC, st_)
    with st_.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON counter_minute WHEN NEW.value = 666 BEGIN SELECT RAISE(ABORT, 'no'); END")
    s = ing.session(NOW_DT, key="k")
    s.feed([(1, checkout(NOW_MIN - 1, 666, 1)[0])])
    with pytest.raises(StoreError, match="nothing of this batch was stored"):
        s.finish()
    s.abort()
    assert st_.ingest_key("k") is None and stored(db)["counters"] == 0
    with st_.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    s = ing.session(NOW_DT, key="k")
    s.feed([(1, checkout(NOW_MIN - 1, 666, 1)[0])])
    s.finish()
    assert stored(db)["counters"] == 666
    st_.close()
