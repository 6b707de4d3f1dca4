"""The same telemetry in the embedded store and in a real Prometheus gives the same SLIs, budgets
and burn rates (issue 10). benchmarks/sources.py does the full 30 days; this test takes a day and a
half of the example platform (the api-5xx-spike scenario, its incident inside the span) so CI stays
quick, and evaluates every SLO of examples/platform/vigil.yaml at several instants on both.

It also shows why the Prometheus source does not use ``increase()``: on the same data,
``increase(x[5m])`` is 1.25 x the increments of the window's last four minutes (samples a minute
apart, extrapolated from the 4 minutes they span to the 5 of the range), while vigil's count is the
five minutes' increments, the embedded store's number.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import push
from prom_helpers import Prometheus, backfill, need_prometheus, prometheus_spec

from vigil.simulate.generator import Incident, Simulator
from vigil.simulate.scenarios import get_scenario
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import load_spec
from vigil.store import open_store
from vigil.telemetry.ingest import DOCUMENTED_BOUNDS
from vigil.telemetry.sources import SourceSet, open_source
from vigil.telemetry.sources.embedded import EmbeddedSource
from vigil.telemetry.sources.prometheus import PrometheusSource
from vigil.telemetry.sources.protocol import CounterQuery

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "platform" / "vigil.yaml"
START_S = int(datetime(2026, 11, 10, 6, 0, tzinfo=timezone.utc).timestamp())
MINUTES = 36 * 60
END_S = START_S + MINUTES * 60
INCIDENT_S = START_S + 30 * 3600 + 17 * 60  # 30 h in, 20 minutes of 5xx
AT = [END_S + 1, START_S + 30 * 3600 + 25 * 60 + 30, START_S + 12 * 3600, START_S + 3600 + 7]


def rows() -> list[dict]:
    sim = Simulator(get_scenario("api-5xx-spike"), 11, Incident.from_seconds(INCIDENT_S, 1200))
    return [json.loads(line) for _, lines in sim.lines(START_S, END_S) for (_s, _k, _n, line) in lines]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    need_prometheus()
    work = tmp_path_factory.mktemp("equiv")
    spec = load_spec(EXAMPLE).spec
    data = rows()
    store = open_store(f"sqlite:///{work / 'vigil.db'}", mode="create")
    push(store, spec, data, datetime.fromtimestamp(END_S, timezone.utc))
    backfill(data, work / "prom", work, bounds=sorted({*spec.latency_thresholds(), *DOCUMENTED_BOUNDS}))
    prom = Prometheus(work / "prom", work).start()
    try:
        yield spec, store, prom, data
    finally:
        prom.stop()
        store.close()


def _when(s: int) -> datetime:
    return datetime.fromtimestamp(s, timezone.utc)


def test_every_slo_has_the_same_status_on_both_sources(both):
    spec, store, prom, _ = both
    for at in AT:
        emb = [s.to_dict() for s in evaluate_slos(spec.slos, EmbeddedSource(store), _when(at))]
        pro = [s.to_dict() for s in evaluate_slos(spec.slos, PrometheusSource(prometheus_spec(prom.url)), _when(at))]
        assert pro == emb, at
    # the incident is in the data: the API's burn rates are high at its end, equal on both
    whole = [s.to_dict() for s in evaluate_slos(spec.slos, EmbeddedSource(store), _when(AT[0]))]
    assert next(s for s in whole if s["name"] == "api-latency")["valid"] > 1_000_000
    spike = [s.to_dict() for s in evaluate_slos(spec.slos, EmbeddedSource(store), _when(AT[1]))]
    assert next(s for s in spike if s["name"] == "api-availability")["burn_rates"]["5m"] > 10


def test_increase_extrapolates_where_vigil_counts_exactly(both):
    spec, store, prom, _ = both
    from vigil.selector import parse_selector

    emb = EmbeddedSource(store)
    src = PrometheusSource(prometheus_spec(prom.url))
    one = 'http_requests{service="api",code="200",cache="miss"}'  # a sample every minute
    q1 = CounterQuery(parse_selector(one))
    q = CounterQuery(parse_selector('http_requests{service="api"}'))
    diffs = []
    for k in range(40):
        end_m = (START_S + 3 * 3600) // 60 + 37 * k  # spread over the day
        exact = emb.counter_sums(q, [end_m - 5], end_m)[0]
        assert src.counter_sums(q, [end_m - 5], end_m) == [exact]
        per_minute = [emb.counter_sums(q1, [m], m + 1)[0] for m in range(end_m - 5, end_m)]
        (inc1,) = prom.query(f'increase(http_requests_total{one[len("http_requests"):]}[5m])', end_m * 60)
        # samples at :59 of each minute: the range (t-5m, t] holds five, spanning four minutes, and
        # increase() scales their four differences to five minutes; the first minute is lost
        assert float(inc1["value"][1]) == pytest.approx(1.25 * sum(per_minute[1:]), rel=1e-9)
        assert src.counter_sums(q1, [end_m - 5], end_m) == [sum(per_minute)]
        (inc,) = prom.query('sum(increase(http_requests_total{service="api"}[5m]))', end_m * 60)
        diffs.append(abs(float(inc["value"][1]) - exact) / exact)
    assert max(diffs) > 0.01  # on the sum too: off by what the first minutes held and the scale-up


def test_each_slo_is_evaluated_on_the_source_it_names(both, tmp_path):
    """telemetry.sources names the Prometheus; api-availability reads it, every other SLO the
    (empty) embedded store: one evaluation, each SLO from its own source."""
    spec, store, prom, _ = both
    text = EXAMPLE.read_text().replace("  - name: api-availability\n", "  - name: api-availability\n    source: prom\n", 1)
    text += f"\ntelemetry:\n  sources:\n    prom: {{kind: prometheus, url: '{prom.url}'}}\n"
    (tmp_path / "vigil.yaml").write_text(text)
    routed = load_spec(tmp_path / "vigil.yaml").spec
    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}", mode="create")
    try:
        source = open_source(routed.telemetry, empty)
        assert isinstance(source, SourceSet)
        got = {s.slo.name: s.to_dict() for s in evaluate_slos(routed.slos, source, _when(AT[0]))}
        want = evaluate_slos([spec.slo("api-availability")], EmbeddedSource(store), _when(AT[0]))[0].to_dict()
        assert got["api-availability"] == want and got["api-availability"]["valid"] > 0
        assert all(d["state"] == "no_data" for n, d in got.items() if n != "api-availability")
        assert list(got) == [s.name for s in routed.slos]  # in the spec's order
    finally:
        empty.close()


def test_slo_status_and_the_gate_on_prometheus_and_failing_closed_when_it_is_down(both, tmp_path, cli):
    spec, store, prom, _ = both
    text = EXAMPLE.read_text() + f"\ntelemetry:\n  source: {{kind: prometheus, url: '{prom.url}'}}\n"
    (tmp_path / "vigil.yaml").write_text(text)
    db = f"sqlite:///{tmp_path / 'v.db'}"
    at = _when(AT[1]).strftime("%Y-%m-%dT%H:%M:%SZ")
    open_store(db, mode="create").close()  # vigil's state (decisions); the telemetry is Prometheus'
    r = cli("slo", "status", "--json", "--spec", tmp_path / "vigil.yaml", "--db", db, "--at", at)
    assert r.code == 0, r.err
    got = {d["name"]: d for d in json.loads(r.out)["slos"]}
    want = {s.slo.name: s.to_dict() for s in evaluate_slos(spec.slos, EmbeddedSource(store), _when(AT[1]))}
    for name, d in want.items():
        assert {k: v for k, v in got[name].items() if k != "unit_cost"} == d
    g = cli("gate", "deploy", "--service", "api", "--what-if", "--at", at, "--json", "--spec", tmp_path / "vigil.yaml", "--db", db)
    assert g.code in (0, 1), g.err
    prom.stop()
    try:
        g = cli("gate", "deploy", "--service", "api", "--what-if", "--at", at, "--json", "--spec", tmp_path / "vigil.yaml", "--db", db)
        assert g.code == 3 and "cannot reach Prometheus" in g.out + g.err
    finally:
        prom.start()
