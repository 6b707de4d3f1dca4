"""vigil simulate: determinism, the push format, the SLO effects of each scenario, the live loop on a
fake clock, and pushing to real HTTP servers (the vigil app under uvicorn, a flaky one, none)."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import EXAMPLE_SPEC
from vigil.clock import FakeClock, isoformat, parse_time
from vigil.errors import ExternalError
from vigil.simulate import (
    SCENARIOS,
    HttpSink,
    Incident,
    Simulator,
    StreamSink,
    Totals,
    backfill,
    latency_cells,
    live,
)
from vigil.simulate.generator import GRID
from vigil.simulate.scenarios import STEADY, stall_growth_seconds
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import load_spec
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS, IngestContext, ingest
from vigil.telemetry.push import Ingestor
from vigil.telemetry.selector import parse_selector
from vigil.telemetry.source import EmbeddedSource

NOW = "2026-11-20T12:00:00Z"
NOW_S = int(parse_time(NOW).timestamp())
TS = re.compile(r'^\{"ts":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"')


@pytest.fixture(scope="module")
def example():
    return load_spec(EXAMPLE_SPEC)


def utc(s: int) -> datetime:
    return datetime.fromtimestamp(s, tz=timezone.utc)


def text_of(sim: Simulator, start_s: int, end_s: int) -> str:
    return "".join(r[3] + "\n" for _m, rows in sim.lines(start_s, end_s) for r in rows)


def feed(store, spec, sim: Simulator, start_s: int, end_s: int, now_s: int, only: str | None = None) -> Totals:
    """Push a backfill through the real Ingestor into the store; nothing may be rejected.
    ``only``: keep just the lines of this metric."""
    ing = Ingestor(spec, store)
    now = utc(now_s)
    totals = Totals()
    batch: list[tuple[int, str]] = []
    needle = f'"metric":"{only}"' if only else ""
    for _m, rows in sim.lines(start_s, end_s):
        if needle:
            rows = [r for r in rows if needle in r[3]]
        totals.add(rows)
        batch.extend((len(batch) + 1, r[3]) for r in rows)
        if len(batch) >= 100_000:
            r = ing.push_lines(batch, now)
            assert r.rejected_count == 0, r.rejected[:3]
            batch = []
    if batch:
        r = ing.push_lines(batch, now)
        assert r.rejected_count == 0, r.rejected[:3]
    return totals


def status(store, spec, at_s: int) -> dict:
    return {s.slo.name: s.to_dict() for s in evaluate_slos(spec.slos, EmbeddedSource(store), utc(at_s))}


def holding(d: dict) -> set[str]:
    return set(d["mwmb_holding"])


# -- the pure generator ---------------------------------------------------------------------------


def test_same_seed_same_bytes_and_chunking_does_not_matter():
    inc = Incident.from_seconds(NOW_S - 3600, 7200)
    a = Simulator(SCENARIOS["api-5xx-spike"], 7, inc)
    b = Simulator(SCENARIOS["api-5xx-spike"], 7, inc)
    start, end = NOW_S - 3 * 3600 + 13, NOW_S
    whole = text_of(a, start, end)
    assert whole == text_of(b, start, end)
    cuts = [start, start + 17, start + 60, start + 3600 + 29, start + 3600 + 30, end - 1, end]
    assert "".join(text_of(b, x, y) for x, y in zip(cuts, cuts[1:])) == whole
    assert text_of(Simulator(SCENARIOS["api-5xx-spike"], 8, inc), start, end) != whole
    # a minute's lines do not depend on what was generated before
    assert Simulator(SCENARIOS["steady"], 7).minute(NOW_S // 60) == Simulator(SCENARIOS["steady"], 7).minute(NOW_S // 60)


@pytest.mark.parametrize("name", ["api-5xx-spike", "indexer-stall", "slow-cache-misses"])
def test_outside_the_incident_every_scenario_is_steady(name):
    inc = Incident.from_seconds(NOW_S - 3600, 1800)
    sim, steady = Simulator(SCENARIOS[name], 3, inc), Simulator(SCENARIOS["steady"], 3)
    before = (NOW_S - 2 * 3600, inc.start * 60)
    after = (inc.end * 60, NOW_S)
    for a, b in (before, after):
        assert text_of(sim, a, b) == text_of(steady, a, b)
    assert text_of(sim, inc.start * 60, inc.end * 60) != text_of(steady, inc.start * 60, inc.end * 60)


def test_every_line_is_accepted_by_the_ingest_and_totals_match():
    start, end = NOW_S - 4 * 3600, NOW_S
    ctx = IngestContext(
        now_ms=NOW_S * 1000,
        oldest_ms=(NOW_S - 40 * 86400) * 1000,
        max_future_ms=600_000,
        bounds_ns=tuple(int(b * 10**9) for b in DOCUMENTED_BOUNDS),
        metric_kinds={},
    )
    for name, sc in SCENARIOS.items():
        sim = Simulator(sc, 11, Incident.from_seconds(NOW_S - 2 * 3600, 7200))
        totals = Totals()
        lines: list[tuple[int, str]] = []
        last = ""
        for _m, rows in sim.lines(start, end):
            totals.add(rows)
            for r in rows:
                ts = TS.match(r[3])
                assert ts, r[3]
                assert ts.group(1) >= last  # ordered by time
                last = ts.group(1)
                lines.append((len(lines) + 1, r[3]))
        roll = ingest(lines, ctx)
        assert roll.rejected_count == 0, (name, roll.rejected[:3])
        assert roll.accepted == totals.lines == len(lines)
        assert sum(roll.counters.values()) == totals.counter_increments
        assert sum(roll.observations.values()) == totals.observations
        assert sum(g[4] for g in roll.gauges.values()) == totals.gauge_sets
        # aggregated: tens of lines a minute, not thousands
        assert len(lines) / 240 < 120, name
    kinds = ctx.metric_kinds
    assert kinds["http_requests"] == "counter" and kinds["checkout_attempts"] == "counter"
    assert kinds["http_request_duration_seconds"] == "observation" and kinds["page_revalidation_seconds"] == "observation"
    assert kinds["index_staleness_seconds"] == "gauge" and kinds["queue_depth"] == "gauge"


def test_latency_grid_is_exact_at_every_threshold(example):
    grid = set(GRID.tolist())
    for t in list(DOCUMENTED_BOUNDS) + example.spec.latency_thresholds():
        assert float(t) in grid
    cells = latency_cells(STEADY.api.miss_latency)
    assert abs(cells.pvals.sum() - 1) < 1e-12 and len(cells.pvals) < 80


def test_requests_and_observations_agree_and_labels_are_the_plan():
    sim = Simulator(SCENARIOS["steady"], 5)
    reqs: dict[tuple, int] = {}
    obs: dict[tuple, int] = {}
    outcomes = set()
    for _m, rows in sim.lines(NOW_S - 3600, NOW_S):
        for r in rows:
            d = json.loads(r[3])
            lab = d.get("labels", {})
            if d["metric"] == "http_requests":
                reqs[(lab["service"], lab["cache"])] = reqs.get((lab["service"], lab["cache"]), 0) + d["inc"]
            elif d["metric"] == "http_request_duration_seconds":
                obs[(lab["service"], lab["cache"])] = obs.get((lab["service"], lab["cache"]), 0) + d["count"]
            elif d["metric"] == "checkout_attempts":
                outcomes.add(lab["outcome"])
    assert reqs == obs
    assert set(reqs) == {("api", "hit"), ("api", "miss"), ("pages", "hit"), ("pages", "miss")}
    api = reqs[("api", "hit")] + reqs[("api", "miss")]
    assert 0.5 * 20 * 3600 < api < 1.5 * 20 * 3600
    assert outcomes == {"success", "issuer_declined", "error"}


def test_indexer_stall_stops_reporting_hot_staleness():
    inc = Incident.from_seconds(NOW_S - 3600, 3600)
    sim = Simulator(SCENARIOS["indexer-stall"], 2, inc)
    grow_end = inc.start * 60 + stall_growth_seconds(inc.length_seconds)
    hot: list[tuple[str, float]] = []
    outbox: list[int] = []
    for _m, rows in sim.lines(inc.start * 60, inc.end * 60):
        for r in rows:
            d = json.loads(r[3])
            if d["metric"] == "index_staleness_seconds" and d["labels"]["class"] == "hot":
                hot.append((d["ts"], d["set"]))
            if d["metric"] == "queue_depth" and d["labels"]["queue"] == "outbox":
                outbox.append(d["set"])
    assert hot and all(parse_time(ts).timestamp() < grow_end for ts, _ in hot)
    assert max(v for _, v in hot) > 300  # it grew past the 5 minute objective before it went quiet
    assert outbox[-1] > 10_000 > outbox[0]


# -- scenarios against the SLO engine and the example spec ----------------------------------------


def test_steady_keeps_every_slo_ok(store, example):
    """Steady traffic against every SLO of the example spec. Ingesting a whole month of everything
    takes over 30s, so: three days of every metric, and the month before them of the one metric a
    30-day rolling SLO needs history for (search freshness counts a minute with no sample as bad)."""
    spec = example.spec
    sim = Simulator(SCENARIOS["steady"], 1)
    recent = NOW_S - 3 * 86400
    feed(store, spec, sim, NOW_S - 30 * 86400, recent, NOW_S, only="index_staleness_seconds")
    feed(store, spec, sim, recent, NOW_S, NOW_S)
    st = status(store, spec, NOW_S)
    assert set(st) == {s.name for s in spec.slos}
    for name, d in st.items():
        assert d["state"] == "ok", (name, d["state"], d["budget"])
        assert d["budget"]["consumed"] < 0.5, (name, d["budget"])
        assert not d["mwmb_holding"], (name, d["mwmb_holding"])
        assert all(r is not None and r < 1 for r in d["burn_rates"].values()), (name, d["burn_rates"])
        assert not d["warnings"], (name, d["warnings"])
    assert st["search-freshness"]["valid"] == 30 * 1440


def test_a_month_is_a_few_million_lines():
    day = sum(len(rows) for _m, rows in Simulator(SCENARIOS["steady"], 1).lines(NOW_S - 86400, NOW_S))
    assert 1_500_000 < 30 * day < 4_000_000


def test_api_5xx_spike_pages_on_api_availability(store, example):
    spec = example.spec
    inc = Incident.from_seconds(NOW_S - 3600, 7200)  # the CLI's default: 1h before the end, 2h long
    feed(store, spec, Simulator(SCENARIOS["api-5xx-spike"], 1, inc), NOW_S - 86400, NOW_S, NOW_S)
    before = status(store, spec, NOW_S - 3600)
    assert "page-1h" not in holding(before["api-availability"])
    d = status(store, spec, NOW_S)
    api = d["api-availability"]
    assert "page-1h" in holding(api)
    assert api["burn_rates"]["1h"] > 14.4 and api["burn_rates"]["5m"] > 14.4
    assert not holding(d["pages-availability"]) and d["pages-availability"]["burn_rates"]["1h"] < 1
    assert d["checkout-success"]["burn_rates"]["1h"] < 1


def test_indexer_stall_burns_search_freshness(store, example):
    spec = example.spec
    inc = Incident.from_seconds(NOW_S - 3600, 7200)
    feed(store, spec, Simulator(SCENARIOS["indexer-stall"], 1, inc), NOW_S - 86400, NOW_S, NOW_S)
    assert status(store, spec, NOW_S - 3600)["search-freshness"]["burn_rates"]["1h"] == 0
    d = status(store, spec, NOW_S)["search-freshness"]
    assert d["burn_rates"]["1h"] > 50 and "page-1h" in holding(d)
    # during the stall the store has no hot staleness at all
    stall_start = inc.start + stall_growth_seconds(inc.length_seconds) // 60
    hot = EmbeddedSource(store).gauge_max(parse_selector('index_staleness_seconds{class="hot"}'), stall_start, NOW_S // 60)
    assert len(hot) > 0 and np.isnan(hot).all()


def test_slow_cache_misses_burns_api_latency_only(store, example):
    spec = example.spec
    inc = Incident.from_seconds(NOW_S - 3600, 7200)
    feed(store, spec, Simulator(SCENARIOS["slow-cache-misses"], 1, inc), NOW_S - 86400, NOW_S, NOW_S)
    assert status(store, spec, NOW_S - 3600)["api-latency"]["burn_rates"]["1h"] < 0.5
    d = status(store, spec, NOW_S)
    lat = d["api-latency"]
    assert lat["burn_rates"]["1h"] > 3 and lat["burn_rates"]["5m"] > 3
    assert lat["budget"]["consumed"] > status(store, spec, NOW_S - 3600)["api-latency"]["budget"]["consumed"]
    assert d["api-cache-hit-latency"]["burn_rates"]["1h"] < 0.5
    assert d["api-availability"]["burn_rates"]["1h"] < 1


# -- the live loop ------------------------------------------------------------------------------


def test_live_loop_on_a_fake_clock_equals_a_backfill():
    clock = FakeClock(NOW)
    inc = Incident.from_seconds(NOW_S - 1800, 3600)
    sim = Simulator(SCENARIOS["api-5xx-spike"], 9, inc)
    out = io.BytesIO()
    sink = StreamSink(out)
    sleeps: list[float] = []
    seen: list[tuple[int, int]] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock.tick(s)

    def on_tick(cursor: int, totals: Totals) -> None:
        text = out.getvalue().decode()
        last = text.rstrip("\n").rsplit("\n", 1)[-1] if text else ""
        m = TS.match(last)
        if m:  # nothing emitted is stamped after the clock
            assert parse_time(m.group(1)).timestamp() <= clock.now().timestamp()
        seen.append((cursor, int(clock.now().timestamp())))

    start = NOW_S - 7200
    backfill(sim, start, NOW_S, sink)
    res = live(sim, NOW_S, sink, clock=clock, sleep=sleep, interval=10, duration=300, on_tick=on_tick)
    assert res.stopped == "duration" and res.end == NOW_S + 300
    assert res.ticks == 31 and sleeps == [10.0] * 30
    assert all(c == t for c, t in seen)
    assert out.getvalue().decode() == text_of(Simulator(SCENARIOS["api-5xx-spike"], 9, inc), start, NOW_S + 300)


def test_live_loop_stops_cleanly_on_keyboard_interrupt():
    clock = FakeClock(NOW)
    sim = Simulator(SCENARIOS["steady"], 4)
    out = io.BytesIO()
    calls = 0

    def sleep(s: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 10:
            raise KeyboardInterrupt
        clock.tick(s)

    res = live(sim, NOW_S, StreamSink(out), clock=clock, sleep=sleep, interval=7)
    assert res.stopped == "interrupted" and res.end == NOW_S + 63
    assert out.getvalue().decode() == text_of(sim, NOW_S, NOW_S + 63)


def test_live_loop_after_a_slow_tick_does_not_burst():
    clock = FakeClock(NOW)
    sim = Simulator(SCENARIOS["steady"], 4)
    sleeps: list[float] = []

    class SlowSink(StreamSink):
        def flush(self, *, final: bool = False) -> None:
            super().flush(final=final)
            if len(sleeps) == 2:
                clock.tick(25)  # a push that took 25s

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock.tick(s)

    res = live(sim, NOW_S, SlowSink(io.BytesIO()), clock=clock, sleep=sleep, interval=10, duration=60)
    assert res.end == NOW_S + 60
    assert all(s >= 0 for s in sleeps) and sleeps.count(0) <= 1


def test_an_interrupted_backfill_leaves_an_exact_cursor():
    from vigil.simulate import Cursor

    sim = Simulator(SCENARIOS["steady"], 4)
    out = io.BytesIO()
    sink = StreamSink(out, buffer_bytes=10_000)
    cursor = Cursor(0)

    def progress(at: int, totals: Totals) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill(sim, NOW_S - 86400 + 5, NOW_S, sink, progress=progress, progress_every=3600, cursor=cursor)
    sink.flush()
    assert cursor.at == NOW_S - 86400 + 3660  # the first minute boundary an hour after the start
    assert out.getvalue().decode() == text_of(sim, NOW_S - 86400 + 5, cursor.at)


# -- the command line -----------------------------------------------------------------------------


def test_cli_same_seed_same_bytes_and_backfill_then_live_equals_one_backfill(cli, tmp_path):
    common = ["--scenario", "api-5xx-spike", "--seed", "42", "--incident-start", "2026-11-20T11:30:00Z"]
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    assert cli("simulate", "--from", "now-3h", "--to", "now", "--out", a, *common, now=NOW).code == 0
    assert cli("simulate", "--from", "2026-11-20T09:00:00Z", "--to", NOW, "--out", b, *common, now=NOW).code == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0
    # three hours of backfill then 20 minutes live (on the pinned clock) ...
    r = cli("simulate", "--from", "now-3h", "--live", "--duration", "20m", "--interval", "15s", *common, now=NOW)
    assert r.code == 0, r.err
    assert "going live" in r.err
    # ... equal one backfill of the whole range
    later = isoformat(parse_time(NOW) + timedelta(minutes=20))
    r2 = cli("simulate", "--from", "2026-11-20T09:00:00Z", "--to", "now", *common, now=later)
    assert r2.code == 0, r2.err
    assert r.out == r2.out and r.out.startswith(a.read_text())
    # and stdout is clean NDJSON
    for line in r.out.splitlines():
        json.loads(line)


def test_cli_json_summary_goes_where_the_data_does_not(cli, tmp_path):
    r = cli("simulate", "--from", "now-1h", "--to", "now", "--scenario", "indexer-stall", "--json", now=NOW)
    assert r.code == 0, r.err
    s = json.loads(r.err)
    lines = r.out.splitlines()
    assert s["lines"] == len(lines) and all(TS.match(x) for x in lines)
    assert s["scenario"] == "indexer-stall" and s["seed"] == 0
    assert s["from"] == "2026-11-20T11:00:00Z" and s["to"] == NOW
    assert s["incident"] == {"start": "2026-11-20T11:00:00Z", "end": "2026-11-20T13:00:00Z"}
    assert s["samples"] == s["counter_increments"] + s["observations"] + s["gauge_sets"] > s["lines"]
    assert s["stopped"] == "end" and s["live"] is None and s["backfill"]["lines"] == s["lines"]
    f = tmp_path / "out.ndjson"
    r = cli("simulate", "--from", "now-1h", "--to", "now", "--out", f, "--json", now=NOW)
    assert r.code == 0 and r.err == ""
    s = r.json()
    assert s["output"] == {"kind": "file", "path": str(f)} and s["incident"] is None
    assert len(f.read_text().splitlines()) == s["lines"]
    # a long backfill shows progress on stderr, unless --json
    r = cli("simulate", "--from", "now-12h", "--to", "now", "--out", f, now=NOW)
    assert r.code == 0 and "backfill 50%" in r.err and "wrote" in r.out
    r = cli("simulate", "--list-scenarios", "--json")
    assert [x["name"] for x in r.json()["scenarios"]] == list(SCENARIOS)


def test_cli_live_only_incident_starts_with_live_mode(cli):
    r = cli("simulate", "--scenario", "slow-cache-misses", "--duration", "2m", "--json", now=NOW)
    assert r.code == 0, r.err
    s = json.loads(r.err)
    assert s["incident"] == {"start": NOW, "end": "2026-11-20T14:00:00Z"}
    assert s["backfill"] is None and s["live"]["from"] == NOW and s["live"]["to"] == "2026-11-20T12:02:00Z"
    assert s["live"]["ticks"] == 13 and s["stopped"] == "duration"
    assert s["lines"] == len(r.out.splitlines()) > 0


def test_cli_ctrl_c_in_live_mode_exits_0(cli, monkeypatch):
    import vigil.cli.simulate as mod

    def sleeper(clock):
        n = 0

        def sleep(s: float) -> None:
            nonlocal n
            n += 1
            if n > 3:
                raise KeyboardInterrupt
            clock.tick(s)

        return sleep

    monkeypatch.setattr(mod, "_sleeper", sleeper)
    r = cli("simulate", "--from", "now-10m", "--duration", "1h", "--json", now=NOW)
    assert r.code == 0, r.err
    s = json.loads(r.err)
    assert s["stopped"] == "interrupted" and s["to"] == "2026-11-20T12:00:30Z"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--to", "now"], "--to needs --from"),
        (["--from", "now-1h", "--to", "now+1h"], "in the future"),
        (["--from", "now-1h", "--to", "now-2h"], "must be before"),
        (["--from", "now-1h", "--to", "now", "--incident-start", "now-30m"], "no incident"),
        (["--from", "now-1h", "--to", "now", "--url", "http://127.0.0.1:9", "--out", "x"], "exclusive"),
        (["--from", "now-1h"], "needs --duration"),  # live on the pinned clock
        (["--from", "now-1h", "--to", "now", "--duration", "1m"], "live mode"),
        (["--no-live"], "nothing to simulate"),
        (["--from", "yesterday", "--to", "now"], "cannot read time"),
        (["--duration", "0s"], "at least"),
    ],
)
def test_cli_usage_errors(cli, args, fragment):
    r = cli("simulate", *args, now=NOW)
    assert r.code == 2, (r.code, r.err)
    assert fragment in r.err and "Traceback" not in r.err


# -- pushing to servers -----------------------------------------------------------------------------


TOKEN = "simulate-test-token-0123456789"


@pytest.fixture
def vigil_server(store, tmp_path):
    """The real app under uvicorn on a free loopback port, on a FakeClock at NOW."""
    import uvicorn

    from vigil.web.app import create_app

    loaded = load_spec(EXAMPLE_SPEC)
    app = create_app(loaded, store, TOKEN, FakeClock(NOW))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    for _ in range(200):
        if server.started:
            break
        th.join(0.05)
    assert server.started, "uvicorn did not start within 10s"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)  # a token file others can read is refused
    yield f"http://127.0.0.1:{port}", token_file, loaded
    server.should_exit = True
    th.join(10)
    sock.close()


def test_push_to_the_real_server(cli, vigil_server, store):
    url, token_file, loaded = vigil_server
    r = cli("simulate", "--url", url, "--token-file", token_file, "--from", "now-6h", "--to", "now",
            "--scenario", "api-5xx-spike", "--seed", "3", "--json", now=NOW)
    assert r.code == 0, r.err
    s = r.json()
    assert s["push"]["accepted"] == s["lines"] > 0 and s["push"]["rejected"] == 0 and s["push"]["retries"] == 0
    assert s["output"] == {"kind": "url", "url": url}
    d = status(store, loaded.spec, NOW_S)
    assert "page-1h" in holding(d["api-availability"])
    # a wrong token is not retried: exit 2 with the server's hint
    bad = token_file.parent / "bad"
    bad.write_text("not-the-token-at-all\n")
    bad.chmod(0o600)
    r = cli("simulate", "--url", url, "--token-file", bad, "--from", "now-5m", "--to", "now", now=NOW)
    assert r.code == 2 and "token" in r.err and "retry" not in r.err


def test_http_sink_batches_under_the_limit_on_minute_boundaries(vigil_server, store):
    from vigil.client import VigilClient

    url, _tf, loaded = vigil_server
    client = VigilClient(url, TOKEN)
    sink = HttpSink(client, sleep=lambda s: pytest.fail("no retry expected"), batch_bytes=64 * 1024)
    sim = Simulator(SCENARIOS["steady"], 8)
    totals = backfill(sim, NOW_S - 3 * 3600, NOW_S, sink)
    client.close()
    assert sink.stats.requests > 10 and sink.stats.retries == 0
    assert sink.stats.result.accepted == totals.lines and sink.stats.result.rejected_count == 0
    assert sink.stats.bytes / sink.stats.requests <= 64 * 1024
    d = status(store, loaded.spec, NOW_S)
    assert d["api-availability"]["valid"] > 0.5 * 20 * 3 * 3600


class _Flaky(BaseHTTPRequestHandler):
    """Answers the first ``fail`` pushes with 503, then accepts whatever lines it is sent."""

    fail = 1
    seen: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n = len(body.splitlines())
        type(self).seen.append(n)
        if len(type(self).seen) <= type(self).fail:
            self._json(503, {"error": {"code": "store", "message": "database is locked", "hint": "retry"}})
        else:
            self._json(200, {"accepted": n, "rejected": 0, "errors": [], "errors_truncated": False})

    def _json(self, status: int, d: dict) -> None:
        data = json.dumps(d).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def flaky_server():
    def start(fail: int):
        handler = type("Handler", (_Flaky,), {"fail": fail, "seen": []})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        th.start()
        servers.append((srv, th))
        return f"http://127.0.0.1:{srv.server_address[1]}", handler

    servers: list = []
    yield start
    for srv, th in servers:
        srv.shutdown()
        srv.server_close()
        th.join(10)


def test_a_503_is_retried_with_backoff(cli, flaky_server):
    url, handler = flaky_server(1)
    r = cli("simulate", "--url", url, "--from", "now-30m", "--to", "now", "--json", now=NOW, env={"VIGIL_TOKEN": TOKEN})
    assert r.code == 0, r.err
    s = r.json()
    assert s["push"]["retries"] == 1 and s["push"]["requests"] == 2 and s["push"]["accepted"] == s["lines"]
    assert handler.seen == [s["lines"], s["lines"]]
    assert "retry 1/3 in 1s" in r.err


def test_a_server_that_keeps_failing_is_an_external_error_with_a_resume_hint(cli, flaky_server):
    url, handler = flaky_server(100)
    r = cli("simulate", "--url", url, "--from", "now-30m", "--to", "now", "--retries", "2", now=NOW, env={"VIGIL_TOKEN": TOKEN})
    assert r.code == 3, r.err
    assert len(handler.seen) == 3
    assert "gave up after 3 attempts" in r.err and "hint:" in r.err and "--from 2026-11-20T11:30:00Z" in r.err
    assert "Traceback" not in r.err


def test_a_refused_connection_is_an_external_error(cli):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    r = cli("simulate", "--url", f"http://127.0.0.1:{port}", "--from", "now-5m", "--to", "now", "--retries", "1",
            now=NOW, env={"VIGIL_TOKEN": TOKEN})
    assert r.code == 3, r.err
    assert "error:" in r.err and "hint:" in r.err and "vigil serve" in r.err and "Traceback" not in r.err


def test_http_sink_sleeps_through_the_injected_sleep():
    class Down:
        def push(self, body: bytes, *, idempotency_key: str | None = None) -> dict:
            raise ExternalError("http://x/api/v1/push: connection refused", hint="is `vigil serve` running at that address?")

    slept: list[float] = []
    sink = HttpSink(Down(), sleep=slept.append, retries=4, backoff=1.0, max_backoff=5)
    sink.write(['{"ts":"2026-11-20T11:59:59Z","metric":"m","inc":1}'])
    with pytest.raises(ExternalError) as e:
        sink.flush()
    assert slept == [1.0, 2.0, 4.0, 5.0]
    assert "--from 2026-11-20T11:59:59Z" in (e.value.hint or "")
    # stopping (Ctrl-C) makes one last attempt and does not wait to retry
    slept.clear()
    with pytest.raises(ExternalError, match="gave up after 1 attempts"):
        sink.flush(final=True)
    assert slept == []


def test_sigterm_stops_live_mode_like_ctrl_c(tmp_path):
    """`kill` (what make demo's cleanup sends) ends live mode cleanly: flushed, summarised, exit 0."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "live.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "simulate", "--live", "--interval", "1s", "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60  # a real process must start and emit: bounded wait
        while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 0):
            time.sleep(0.1)
        assert out.stat().st_size > 0
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["stopped"] == "interrupted" and summary["lines"] > 0
    assert out.read_bytes().endswith(b"\n")
