"""The issue's canary, end to end through the store (issue 14): with the example platform's canary
config, a baseline uniform on 101-125 ms and a canary 20 ms slower, pushed with `vigil push`, then
`vigil canary judge`: caught (fail), where the documented buckets could only say inconclusive; a
healthy canary passes. On SQLite and on a real PostgreSQL, nothing registered by hand."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLE_SPEC
from helpers import t
from vigil.clock import isoformat

T0 = "2026-11-20T12:00:00Z"
TO = "2026-11-20T12:10:00Z"
NOW = "2026-11-20T12:11:00Z"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_db_url")


def rows(version: str, xs: np.ndarray) -> list[dict]:
    """1,000 requests over 10 minutes, one line each: a 200 and its duration, as an exporter pushes."""
    out = []
    for i, x in enumerate(xs):
        ts = isoformat(t(T0) + timedelta(minutes=i // 100, seconds=1 + i % 50))
        labels = {"service": "api", "version": version}
        out.append({"ts": ts, "metric": "http_request_duration_seconds", "labels": labels, "observe": float(x)})
        out.append({"ts": ts, "metric": "http_requests", "labels": {**labels, "code": "200"}, "inc": 1})
    return out


def judge(cli, db: str, canary: str):
    return cli("canary", "judge", "--baseline", 'version="v1"', "--canary", f'version="{canary}"', "--from", T0, "--to", TO,
               "--spec", EXAMPLE_SPEC, "--db", db, "--json", now=NOW)


def test_a_20ms_regression_on_101_to_125ms_is_caught_and_a_healthy_canary_passes(cli, db, tmp_path: Path):
    rng = np.random.default_rng(14)
    base = np.round(rng.uniform(0.101, 0.125, 1000), 6)
    slow = np.round(base + 0.020, 6)  # the observed failure: an 18% median regression
    healthy = np.round(np.random.default_rng(15).uniform(0.101, 0.125, 1000), 6)
    f = tmp_path / "telemetry.ndjson"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows("v1", base) + rows("v2", slow) + rows("v3", healthy)))
    r = cli("push", f, "--spec", EXAMPLE_SPEC, "--db", db, "--json", now=NOW)
    assert r.code == 0, r.err
    assert r.json()["accepted"] == 6000

    r = judge(cli, db, "v2")
    assert r.code == 1, r.err
    d = r.json()
    lat = next(m for m in d["metrics"] if m["name"] == "latency")
    assert d["verdict"] == "fail" and lat["classification"] == "High" and not lat["below_resolution"]
    lo, hi = lat["shift_bounds"]
    assert 0.018 <= lo <= 0.020 <= hi <= 0.022  # +20 ms, known to within the buckets' 2%
    blo, bhi = lat["baseline_median_bucket"]
    assert blo < float(np.median(base)) <= bhi and (bhi - blo) / blo <= 0.02

    r = judge(cli, db, "v3")
    assert r.code == 0, r.err
    d = r.json()
    assert d["verdict"] == "pass", d["reasons"]
    lat = next(m for m in d["metrics"] if m["name"] == "latency")
    assert lat["classification"] == "Pass" and not lat["below_resolution"]


def test_the_same_push_into_the_documented_buckets_is_only_inconclusive(cli, tmp_path: Path):
    """What the store did before: with bucket_width null (the documented bounds) the regression hides
    in one (100ms, 150ms] bucket and the judge can only say it does not know."""
    spec = tmp_path / "vigil.yaml"
    text = EXAMPLE_SPEC.read_text()
    assert "\ntelemetry:" not in text
    spec.write_text(text + "\ntelemetry: {bucket_width: null}\n")
    db = f"sqlite:///{tmp_path / 'state.db'}"
    rng = np.random.default_rng(14)
    base = np.round(rng.uniform(0.101, 0.125, 1000), 6)
    f = tmp_path / "telemetry.ndjson"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows("v1", base) + rows("v2", np.round(base + 0.02, 6))))
    assert cli("push", f, "--spec", spec, "--db", db, now=NOW).code == 0
    r = cli("canary", "judge", "--baseline", 'version="v1"', "--canary", 'version="v2"', "--from", T0, "--to", TO,
            "--spec", spec, "--db", db, "--json", now=NOW)
    assert r.code == 1, r.err
    d = r.json()
    lat = next(m for m in d["metrics"] if m["name"] == "latency")
    assert d["verdict"] == "inconclusive" and lat["classification"] == "Inconclusive" and lat["below_resolution"]
