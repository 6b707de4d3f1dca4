"""Every Source passes one conformance suite (tests/source_conformance.py): the in-memory twin, and
the embedded store on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest
from helpers import spec_with
from source_conformance import NOW, STORE_BOUNDS, check_source, dataset

from vigil.telemetry.push import Ingestor
from vigil.telemetry.sources import open_source
from vigil.telemetry.sources.memory import MemorySource
from vigil.store import open_store

SPEC = spec_with("""\
  - name: api
    service: api
    objective: 99
    window: {rolling: 30d}
    sli: {ratio: {good: 'http_requests{code!~"5.."}', total: http_requests}}
""")


def test_memory_source_conforms():
    src = MemorySource()
    src.add_rows(dataset())
    check_source(src, dataset())


def _embedded(url: str):
    store = open_store(url, mode="create")
    rows = dataset()
    import json

    r = Ingestor(SPEC, store).push_lines([(i, json.dumps(x)) for i, x in enumerate(rows, 1)], NOW)
    assert r.rejected_count == 0, r.rejected[:3]
    return store, rows


def test_embedded_source_on_sqlite_conforms(tmp_path):
    store, rows = _embedded(f"sqlite:///{tmp_path / 'vigil.db'}")
    try:
        check_source(open_source(SPEC.telemetry, store), rows, STORE_BOUNDS)
    finally:
        store.close()


@pytest.mark.postgres
def test_embedded_source_on_postgresql_conforms(pg_db_url):
    store, rows = _embedded(pg_db_url)
    try:
        check_source(open_source(SPEC.telemetry, store), rows, STORE_BOUNDS)
    finally:
        store.close()


def test_a_mixed_kind_name_needs_one_kind_per_series():
    """The dataset has no metric with two kinds (the store refuses that): the in-memory twin too."""
    src = MemorySource()
    src.add_counter("m", {"a": "1"}, 0, 1)
    with pytest.raises(ValueError):
        src.set_gauge("m", {"a": "1"}, 0, 1.0)


def test_prometheus_source_conforms(tmp_path):
    """The dataset backfilled into a real Prometheus (OpenMetrics -> promtool, counters as running
    totals, observations as cumulative buckets): every read equals the brute-force reference."""
    from prom_helpers import Prometheus, backfill, prometheus_spec

    from vigil.telemetry.sources.prometheus import PrometheusSource

    rows = dataset()
    backfill(rows, tmp_path / "data", tmp_path)
    prom = Prometheus(tmp_path / "data", tmp_path).start()
    try:
        check_source(PrometheusSource(prometheus_spec(prom.url)), rows)
        # the same through the spec: telemetry.source chooses it
        spec = spec_with("  - {name: api, service: api, objective: 99, window: {rolling: 30d}, "
                         "sli: {ratio: {good: http_requests, total: http_requests}}}",
                         f"telemetry: {{source: {{kind: prometheus, url: '{prom.url}'}}}}")
        source = open_source(spec.telemetry, None)  # type: ignore[arg-type]  (no store: nothing embedded is read)
        check_source(source, rows)
    finally:
        prom.stop()


def test_cloudwatch_source_conforms(monkeypatch):
    """The dataset sent through vigil's PutMetricData writer into moto (AWS cannot run here) and
    read back by the CloudWatch source with metric math: tests/cloudwatch_moto.py says what moto
    does not model and is taught (trimmed counts, SUM/MAX); tests/test_source_cloudwatch.py also
    runs it with the sums made in vigil."""
    import boto3
    from aws_helpers import moto_account
    from cloudwatch_moto import with_tc_and_math
    from test_source_cloudwatch import NOW_MS, REGION, cw_spec

    from vigil.telemetry.out.cloudwatch import Target, put_metric_data
    from vigil.telemetry.sources.cloudwatch import CloudWatchSource

    with moto_account(monkeypatch, REGION), with_tc_and_math():
        client = boto3.client("cloudwatch", region_name=REGION)
        rows = dataset()
        put_metric_data(client, rows, Target.of(cw_spec()), now_ms=NOW_MS)
        check_source(CloudWatchSource(cw_spec(), client=client, now_ms=lambda: NOW_MS), rows)
