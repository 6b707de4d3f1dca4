"""Shared fixtures. Servers in tests listen on 127.0.0.1 only; time comes from FakeClock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vigil.cli.main import main
from vigil.spec import load_spec
from vigil.store import open_store
from pgcluster import *  # noqa: F401,F403  (pg_cluster, pg_url, pg_db_url; PgCluster for tests)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = ROOT / "examples" / "platform" / "vigil.yaml"

CONTRACT_SPEC = """\
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
  - name: search-freshness
    service: search
    objective: 99
    window: {rolling: 30d}
    sli:
      freshness: {metric: 'index_staleness_seconds{class="hot"}', threshold: 5m, slice: 1m, missing: bad}
policy:
  freeze:
    - when: {budget_consumed_over: 50%, window_elapsed_at_least: 50%}
    - when: {budget_exhausted: true}
  overrides: {labels: [security, p0]}
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("VIGIL_DB", "VIGIL_SPEC", "VIGIL_TOKEN", "VIGIL_NOW", "VIGIL_ACTOR"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture
def contract_spec(tmp_path: Path) -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text(CONTRACT_SPEC)
    return p


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture
def loaded_contract(contract_spec: Path):
    return load_spec(contract_spec)


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """Run ``vigil ARGS`` in-process: ``cli('slo', 'status', '--json', now='2026-11-01T00:00:00Z')``."""

    def run(*args: str, now: str | None = None, env: dict | None = None) -> CliResult:
        if now:
            monkeypatch.setenv("VIGIL_NOW", now)
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def ndjson(rows: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(ROOT / ".hypothesis"))
