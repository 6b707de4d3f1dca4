"""Ingest under load and abuse (issue 12), with real processes: `vigil serve` and `vigil push` in
subprocesses, SQLite and a real PostgreSQL 15.

- 16 concurrent 16 MiB pushes keep the server under 300 MB (it read each body whole: 735 MB);
- `vigil push` of a 100 MB JSON array stays small (it read the file whole: 1.06 GB);
- the load test of the store: 8 HTTP pushers (through a proxy that loses answers, so they retry)
  + 2 CLI pushers + readers at once: sent = accepted = stored, exactly;
- kill -9 of `vigil serve` mid-request: after a restart and a re-push, stored == sent exactly.

Memory ceilings are asserted (a fact about the process); speed never is (benchmarks/ingest.py).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from ingest_helpers import AUTH, TOKEN, VIGIL, LosingProxy, Serve, run_peak_rss, stored, wait_for
from vigil.client import VigilClient, new_key, with_retries

NOW = "2026-11-20T12:00:00Z"
NOW_MIN = 1_795_176_000 // 60  # 2026-11-20T12:00:00Z
SPEC = "version: 1\nservices: {api: {}}\ntelemetry: {retention: 40d}\n"


def ts(minute: int, second: int = 0) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(minute * 60 + second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def env(**extra: str) -> dict:
    e = dict(os.environ, VIGIL_NOW=NOW)
    for k in ("VIGIL_DB", "VIGIL_SPEC", "VIGIL_TOKEN"):
        e.pop(k, None)
    e.update(extra)
    return e


@pytest.fixture
def spec(tmp_path) -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text(SPEC)
    return p


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


def writer_open(db: str) -> bool:
    """Does some session hold an open write transaction on the store right now?"""
    if db.startswith("sqlite"):
        import sqlite3

        c = sqlite3.connect(db.split("sqlite:///", 1)[1], timeout=0, isolation_level=None)
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as e:
            assert "locked" in str(e), e
            return True
        finally:
            c.close()
    from ingest_helpers import engine_for
    import sqlalchemy as sa

    e = engine_for(db)
    try:
        with e.connect() as c:
            return c.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
                " AND backend_xid IS NOT NULL"
            )).scalar_one() > 0
    finally:
        e.dispose()


def body_of(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_16_concurrent_16mib_pushes_keep_the_server_under_300_mb(spec, tmp_path):
    """Observed: 735 MB. Bodies are read as streams, at most 4 pushes are ingested at once and the
    others are told 429 + Retry-After; every client retries with its key: all stored, once."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    bodies: list[tuple[bytes, int]] = []
    for w in range(16):
        lines, size, total = [], 0, 0
        n = 0
        while True:
            m = NOW_MIN - 1 - n % 1440
            line = f'{{"ts":"{ts(m)}","metric":"big_push","labels":{{"w":"{w}","s":"{n // 1440}"}},"inc":{n % 5 + 1}}}'
            if size + len(line) + 1 > 16 * 1024 * 1024:
                break
            lines.append(line)
            size += len(line) + 1
            total += n % 5 + 1
            n += 1
        bodies.append((body_of(lines), total))
    with Serve(spec, db, now=NOW) as srv:
        before = srv.peak_rss_mb()
        results: dict[int, tuple[int, int]] = {}
        errors: list[BaseException] = []

        def send(w: int) -> None:
            client = VigilClient(srv.url, TOKEN, timeout=600)
            try:
                key = new_key()
                (d, _replayed), retries = with_retries(lambda: client.push_keyed(bodies[w][0], key), retries=200, max_backoff=2)
                results[w] = (d["accepted"], retries)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                client.close()

        threads = [threading.Thread(target=send, args=(w,)) for w in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
        peak = srv.peak_rss_mb()
    assert errors == []
    assert len(results) == 16
    assert sum(r for _, r in results.values()) > 0, "the server never said 429: the bound was not reached"
    s = stored(db)
    assert s["counters"] == sum(t for _, t in bodies)
    assert sum(a for a, _ in results.values()) == sum(len(b.splitlines()) for b, _ in bodies)
    print(f"vigil serve peak RSS: {before:.0f} MB idle, {peak:.0f} MB after 16 x 16 MiB")
    assert peak < 300, f"vigil serve peaked at {peak:.0f} MB"


def test_push_of_a_100mb_json_array_never_reads_it_whole(spec, tmp_path):
    """Observed: 1.06 GB. The array is decoded item by item (an item over 64 KiB is rejected as it
    streams past); its lines are stored in batches, each keyed, so a re-push stores nothing."""
    f = tmp_path / "big.json"
    total = 0
    n = 0
    with open(f, "w") as out:
        out.write("[\n")
        first = True
        while out.tell() < 100 * 1024 * 1024:
            m = NOW_MIN - 1 - n % 20000
            item = {"ts": ts(m), "metric": "arr", "labels": {"k": f"s{n % 40}", "pad": "x" * 40}, "inc": n % 3 + 1}
            out.write(("" if first else ",\n") + json.dumps(item, indent=1 if n % 1000 == 0 else None))
            total += n % 3 + 1
            n += 1
            first = False
        out.write(',\n{"too": "' + "y" * 70_000 + '"}\n]\n')
    db = f"sqlite:///{tmp_path / 'state.db'}"
    subprocess.run([*VIGIL, "store", "init", "--spec", str(spec), "--db", db], env=env(), check=True, capture_output=True)
    one = tmp_path / "one.json"
    one.write_text('[{"ts": "2026-11-20T11:00:00Z", "metric": "arr", "inc": 0}]')
    p, base = run_peak_rss([*VIGIL, "push", str(one), "--spec", str(spec), "--db", db], env=env())
    assert p.returncode == 0, p.stderr
    p, peak = run_peak_rss([*VIGIL, "push", str(f), "--spec", str(spec), "--db", db, "--json"], env=env())
    assert p.returncode == 2, p.stderr.decode()[-2000:]  # the one over-long item
    d = json.loads(p.stdout)
    assert d["accepted"] == n and d["rejected"] == 1
    assert d["errors"] == [{"line": n + 1, "error": f"line is {len(json.dumps({'too': 'y' * 70_000}))} bytes; the limit is 65536"}]
    assert stored(db)["counters"] == total
    print(f"vigil push of a {f.stat().st_size / 1e6:.0f} MB JSON array: peak RSS {peak:.0f} MB ({base:.0f} MB for one line)")
    # reading the file whole would add at least its 100 MB (as decoded objects, ~10 times that)
    assert peak - base < 80, f"vigil push peaked at {peak:.0f} MB, {peak - base:.0f} MB above a one-line push"
    p = subprocess.run([*VIGIL, "push", str(f), "--spec", str(spec), "--db", db, "--json"], env=env(), capture_output=True, timeout=600)
    assert json.loads(p.stdout)["accepted"] == 0 and stored(db)["counters"] == total


def test_load_8_http_pushers_2_cli_pushers_and_readers_sent_equals_accepted_equals_stored(spec, tmp_path, db):
    """The load test of the store. Eight HTTP pushers reach `vigil serve` through a proxy that loses
    every fifth answer after the server stored the push; they retry with the same key (and on 429).
    Two `vigil push` processes write the same store directly; readers ask for SLO status all along."""
    rnd = random.Random(12)
    batches_per_pusher, lines_per_batch = 12, 2000
    sent_http = [0] * 8
    plan: list[list[bytes]] = []
    for p in range(8):
        mine = []
        for b in range(batches_per_pusher):
            lines = []
            for i in range(lines_per_batch):
                v = rnd.randint(1, 9)
                sent_http[p] += v
                lines.append(f'{{"ts":"{ts(NOW_MIN - 1 - (b * lines_per_batch + i) % 5000)}","metric":"load_http","labels":{{"p":"{p}","c":"{i % 7}"}},"inc":{v}}}')
            mine.append(body_of(lines))
        plan.append(mine)
    cli_files, sent_cli = [], 0
    for c in range(2):
        f = tmp_path / f"cli{c}.ndjson"
        with open(f, "w") as out:
            for i in range(120_000):
                v = i % 4 + 1
                sent_cli += v
                out.write(f'{{"ts":"{ts(NOW_MIN - 1 - i % 3000)}","metric":"load_cli","labels":{{"c":"{c}","k":"{i % 11}"}},"inc":{v}}}\n')
        cli_files.append(f)
    subprocess.run([*VIGIL, "store", "init", "--spec", str(spec), "--db", db], env=env(), check=True, capture_output=True)
    accepted = [0] * 8
    lines_accepted = [0] * 8
    errors: list[BaseException] = []
    stop = threading.Event()
    reads = [0]
    with Serve(spec, db, now=NOW) as srv:
        proxy = LosingProxy(srv.port, lose=lambda n: n % 5 == 0)

        def pusher(p: int) -> None:
            client = VigilClient(proxy.url, TOKEN, timeout=120)
            try:
                for body in plan[p]:
                    key = new_key()
                    (d, _), _ = with_retries(lambda: client.push_keyed(body, key), retries=50, backoff=0.05, max_backoff=1)
                    lines_accepted[p] += d["accepted"]
                    accepted[p] += 1
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                client.close()

        def reader() -> None:
            with httpx.Client(base_url=srv.url, headers=AUTH, timeout=120) as c:
                while not stop.is_set():
                    r = c.get("/api/v1/slos")
                    if r.status_code != 200:
                        errors.append(AssertionError(r.text))
                        return
                    reads[0] += 1

        threads = [threading.Thread(target=pusher, args=(p,)) for p in range(8)] + [threading.Thread(target=reader) for _ in range(2)]
        clis = [subprocess.Popen([*VIGIL, "push", str(f), "--spec", str(spec), "--db", db, "--json"], env=env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for f in cli_files]
        for t in threads:
            t.start()
        for t in threads[:8]:
            t.join(timeout=900)
        outs = [c.communicate(timeout=900) for c in clis]
        stop.set()
        for t in threads[8:]:
            t.join(timeout=60)
        proxy.close()
    assert errors == [], errors[:3]
    assert proxy.lost > 0, "no answer was lost: the retries were not exercised"
    assert reads[0] > 0
    for c, (out, err) in zip(clis, outs):
        assert c.returncode == 0, err.decode()[-2000:]
        assert json.loads(out)["accepted"] == 120_000
    assert accepted == [batches_per_pusher] * 8
    assert sum(lines_accepted) == 8 * batches_per_pusher * lines_per_batch
    s = stored(db)
    assert s["per_metric"] == {"load_http": sum(sent_http), "load_cli": sent_cli}
    assert s["counter_hours"] == sum(sent_http) + sent_cli


def test_kill_9_of_vigil_serve_mid_request_then_restart_and_repush_stores_exactly_what_was_sent(spec, tmp_path, db):
    lines = [f'{{"ts":"{ts(NOW_MIN - 1 - i % 4000)}","metric":"k9","labels":{{"s":"{i % 13}"}},"inc":{i % 6 + 1}}}' for i in range(150_000)]
    sent = sum(i % 6 + 1 for i in range(150_000))
    f = tmp_path / "k9.ndjson"
    f.write_bytes(body_of(lines))
    tok = tmp_path / "token"
    tok.write_text(TOKEN)
    tok.chmod(0o600)
    srv = Serve(spec, db, now=NOW).start()
    try:
        # 1. a request killed in the middle of its body, after the server flushed part of it into
        # its (open) transaction: nothing of it may be stored
        half = body_of(lines[:60_000])
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nIdempotency-Key: mid\r\nContent-Length: " + str(len(half) + 1000).encode() + b"\r\n\r\n" + half)
        wait_for(lambda: writer_open(db), "the server to hold an open write transaction", timeout=120)
        srv.kill9()
        s.close()
        srv.start()
        assert stored(db)["counters"] == 0
        # 2. `vigil push --url` killed under: the server dies while the push is under way
        p = subprocess.Popen([*VIGIL, "push", str(f), "--url", srv.url, "--token-file", str(tok), "--retries", "0", "--json"],
                             env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: stored(db)["counters"] > 0 or p.poll() is not None, "the first batch to be stored", timeout=300)
        srv.kill9()
        out, err = p.communicate(timeout=120)
        first = stored(db)["counters"]
        if p.returncode != 0:  # the usual case: it reports what the server acknowledged
            e = json.loads(out)["error"]
            assert e["code"] == "push-incomplete" and e["cause"]["code"] == "external"
            assert e["committed_through_line"] % 50_000 == 0
        srv.start()
        r = subprocess.run([*VIGIL, "push", str(f), "--url", srv.url, "--token-file", str(tok), "--json"],
                           env=env(), capture_output=True, timeout=600)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        d = json.loads(r.stdout)
        assert d["already_stored"]["batches"] + d["batches"] == 3
        assert first == 0 or d["already_stored"]["batches"] >= 1
    finally:
        srv.stop()
    assert stored(db)["counters"] == sent
