"""The web UI tests' shared dataset: 30 days of `vigil simulate` for the example platform (the
last 20 hours an API 5xx spike, so api-availability burns through its budget), pushed into a
SQLite store once per test process, plus records for the Deploys and DR pages: gate decisions
(one an override), a canary verdict judged by the real judge on pushed baseline/canary traffic,
and two drills. Built with vigil's own CLI, in-process."""

from __future__ import annotations

import json
import random
import shutil
from decimal import Decimal
from pathlib import Path

from vigil.clock import isoformat, parse_time

NOW = "2026-11-20T12:00:30Z"
TOKENS = {"viewer": "viewer-token-0123456789abcdef", "deployer": "deployer-token-0123456789abcdef",
          "admin": "admin-token-0123456789abcdef", "pusher": "pusher-token-0123456789abcdef"}
_BUILT: dict[str, Path] = {}


def build(base: Path) -> Path:
    """The dataset's directory (vigil.yaml, .vigil/vigil.db, tokens.yaml); built once per process."""
    if "dir" in _BUILT:
        return _BUILT["dir"]
    import os

    ready = os.environ.get("VIGIL_UI_DATASET")  # a dataset this module built before (developing the UI tests)
    if ready and (Path(ready) / ".vigil" / "vigil.db").exists() and (Path(ready) / "tokens.yaml").exists():
        _BUILT["dir"] = Path(ready)
        return _BUILT["dir"]
    from vigil.cli.main import main

    root = Path(__file__).resolve().parent.parent
    d = base / "webui-30d"
    d.mkdir(parents=True, exist_ok=True)
    spec = d / "vigil.yaml"
    shutil.copy(root / "examples" / "platform" / "vigil.yaml", spec)
    hist = d / "history.ndjson"
    args = ["--spec", str(spec)]
    assert main(["simulate", "--from", "2026-10-21T12:00:00Z", "--to", "2026-11-20T12:00:00Z", "--scenario", "api-5xx-spike",
                 "--incident-start", "2026-11-19T16:00:00Z", "--incident-duration", "24h", "--seed", "42", "--out", str(hist)]) == 0
    import os

    old = os.environ.get("VIGIL_NOW")
    os.environ["VIGIL_NOW"] = NOW
    try:
        assert main(["push", str(hist), *args]) == 0
        hist.unlink()
        _canary_traffic(d / "canary.ndjson")
        assert main(["push", str(d / "canary.ndjson"), *args]) == 0
        judged = main(["canary", "judge", "--baseline", 'version="v1"', "--canary", 'version="v2"',
                       "--from", "2026-11-20T11:00:00Z", "--to", "2026-11-20T12:00:00Z", *args])
        assert judged in (0, 1), judged  # a verdict (pass, or not): recorded either way
    finally:
        if old is None:
            os.environ.pop("VIGIL_NOW", None)
        else:
            os.environ["VIGIL_NOW"] = old
    _records(spec)
    _alerts(spec)
    tokens = d / "tokens.yaml"
    from vigil.auth import digest

    tokens.write_text("tokens:\n" + "".join(f"  - {{name: {r}-user, role: {r}, sha256: {digest(t)}}}\n" for r, t in TOKENS.items()))
    tokens.chmod(0o600)
    _BUILT["dir"] = d
    return d


def _canary_traffic(path: Path) -> None:
    """An hour of baseline (v1) and canary (v2) API latencies: the canary slower by ~30%."""
    rng = random.Random(5)
    lines = []
    from datetime import timedelta

    start = parse_time("2026-11-20T11:00:00Z")
    for minute in range(60):
        ts = isoformat(start + timedelta(minutes=minute, seconds=30))
        for version, median in (("v1", 0.08), ("v2", 0.105)):
            for _ in range(20):
                v = round(rng.lognormvariate(0, 0.35) * median, 3)
                lines.append({"ts": ts, "metric": "http_request_duration_seconds", "labels": {"service": "api", "cache": "miss", "version": version}, "observe": v})
            lines.append({"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "200", "cache": "miss", "version": version}, "inc": 20})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def _records(spec: Path) -> None:
    from vigil.deploy.gate import gate_deploy
    from vigil.dr import records as dr_records
    from vigil.spec import load_spec
    from vigil.store import open_store

    loaded = load_spec(spec)
    store = open_store(f"sqlite:///{spec.parent / '.vigil' / 'vigil.db'}")
    try:
        for i, (svc, labels, reason) in enumerate([("checkout", (), None), ("api", (), None), ("api", ("security",), "CVE-2026-1234 patch")]):
            at = parse_time(f"2026-11-20T1{i}:00:00Z")
            gate_deploy(loaded, store, svc, at, decided_at=at, labels=labels, reason=reason, actor="token:ci-deploy")
        _deploy_records(store, loaded)
        for i, (rto, rpo, ok) in enumerate([(5400, 240, True), (9000, 600, True), (16200, 1200, False)]):
            started = f"2026-{8 + i:02d}-15T09:00:00Z"
            rid = dr_records.drill_started(store, name="quarterly-region-loss", scenario="region-loss", started_at=started,
                                   rto_objective=Decimal(14400), rpo_objective=Decimal(900), spec_sha256=loaded.sha256)
            report = {"drill": "quarterly-region-loss", "passed": ok, "gaps": [] if ok else [
                {"id": "rto-over-objective", "severity": "critical", "message": "RTO 4.5 h is over the objective 4 h", "where": "observed",
                 "fix": "restore from the cross-region repository in parallel"}]}
            dr_records.drill_finished(store, rid, finished_at=f"2026-{8 + i:02d}-15T{9 + rto // 3600:02d}:30:00Z", passed=ok, rto=Decimal(rto),
                              rpo=Decimal(rpo), gaps=len(report["gaps"]), report_dir=None, report=report)
    finally:
        store.close()


def _alerts(spec: Path) -> None:
    """The alert rules evaluated as vigil serve's leader would, every 5 minutes of the last hour
    (the spike holds: the burn-rate pages fire), and a silence for the search service."""
    from datetime import timedelta

    from vigil.alerting.evaluate import evaluate_rules
    from vigil.alerting.silences import add_silence, parse_matchers
    from vigil.spec import load_spec
    from vigil.store import open_store
    from vigil.telemetry.sources import open_source

    loaded = load_spec(spec)
    store = open_store(f"sqlite:///{spec.parent / '.vigil' / 'vigil.db'}")
    try:
        now = parse_time(NOW)
        for k in range(12, -1, -1):
            at = now - timedelta(minutes=5 * k)
            evaluate_rules(store, open_source(loaded.spec.telemetry, store), loaded.spec.alerts, slos=loaded.spec.slos, at=at,
                           spec_sha256=loaded.sha256)
        add_silence(store, parse_matchers(['service="search"']), starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2),
                    created_by="token:ops", reason="index rebuild", now=now - timedelta(hours=1))
    finally:
        store.close()


def _deploy_records(store, loaded) -> None:
    """A migration verdict for release r-42 and a canary run of it rolled back at its second step."""
    from vigil.deploy.canary.records import Records
    from vigil.deploy.verdicts import record_verdict

    record_verdict(store, "migration", "api", "r-42", "pass", "3 statements, additive; verified on Stage", {}, parse_time("2026-11-20T10:30:00Z"))
    rec = Records(store)
    plan = {"release": "r-42", "steps": [5, 25, 50, 100], "interval_seconds": 600}
    rid = rec.create_run({
        "service": "api", "baseline": 'version="v1"', "canary": 'version="v2"', "state": "running", "step_index": 0, "weight": 0,
        "step_started": None, "extensions": 0, "started_at": "2026-11-20T11:00:00Z", "updated_at": "2026-11-20T11:00:00Z",
        "finished_at": None, "owner": "ci", "lease_until": None, "spec_sha256": loaded.sha256, "plan": json.dumps(plan), "outcome": None,
    })
    for at, kind, step, weight, detail in [
        ("2026-11-20T11:00:00Z", "set_weight", 0, 5, {}),
        ("2026-11-20T11:10:00Z", "judge", 0, 5, {"verdict": "pass", "score": 100}),
        ("2026-11-20T11:10:05Z", "set_weight", 1, 25, {}),
        ("2026-11-20T11:20:00Z", "judge", 1, 25, {"verdict": "fail", "score": 0}),
        ("2026-11-20T11:20:02Z", "rollback", 1, 0, {}),
    ]:
        rec.add_event(rid, at, kind, "done", step_index=step, weight=weight, detail=detail)
    rec.update(rid, state="rolled_back", step_index=1, weight=0, finished_at="2026-11-20T11:20:03Z", updated_at="2026-11-20T11:20:03Z",
               active_key=None, outcome="rolled back at 25%: latency High (the canary is higher)")
