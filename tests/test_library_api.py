"""``import vigil``: the documented library API, used as a Python user scripts with it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

import vigil
from vigil.clock import FakeClock, isoformat
from vigil.errors import SpecError

SPEC = """\
version: 1
services: {api: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli:
      ratio: {good: 'http_requests{code!~"5.."}', total: http_requests}
policy:
  freeze:
    - {name: exhausted, when: {budget_exhausted: true}}
"""


def test_import_vigil_is_cheap_and_exposes_the_documented_api():
    code = "import sys, vigil; print(sorted(m for m in ('pydantic', 'sqlalchemy', 'numpy', 'scipy', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from vigil import api

    assert set(vigil.__all__) == set(api.__all__) | {"__version__"}
    for name in api.__all__:
        f = getattr(vigil, name)
        assert callable(f) and f.__doc__ and len(f.__doc__) > 40, name
    with pytest.raises(AttributeError):
        vigil.no_such_thing  # noqa: B018


def test_a_script_pushes_evaluates_and_asks_the_gate(tmp_path):
    spec_file = tmp_path / "vigil.yaml"
    spec_file.write_text(SPEC)
    loaded = vigil.load_spec(spec_file)
    store = vigil.open_store(f"sqlite:///{tmp_path / 'vigil.db'}", mode="create")
    clock = FakeClock("2026-11-20T12:00:00Z")
    rows = []
    for i in range(120):
        ts = isoformat(clock.now() - timedelta(minutes=120 - i))
        rows += [{"ts": ts, "metric": "http_requests", "labels": {"code": "200"}, "inc": 50},
                 {"ts": ts, "metric": "http_requests", "labels": {"code": "500"}, "inc": 50}]
    res = vigil.push(store, loaded, rows, clock=clock)
    assert res.accepted == 240 and res.rejected_count == 0
    res = vigil.push(store, loaded, b'{"ts": "2026-11-20T11:59:00Z", "metric": "http_requests", "inc": "x"}\n', clock=clock)
    assert res.accepted == 0 and res.rejected[0].line == 1
    [s] = vigil.slo_status(loaded, store, at=clock.now())
    assert s.window_counts.valid == 12000 and s.window_counts.good == 6000
    d = vigil.ask_gate(loaded, store, "api", at=clock.now())
    assert d.allowed is False and d.id is None  # 50% errors for 2h exhaust a 99.9%/30d budget (139%)
    assert store.gate_decisions() == []  # a what-if is never recorded
    store.close()


def test_decide_gate_records_at_the_real_clock(tmp_path):
    loaded = vigil.parse_spec(SPEC)
    store = vigil.open_store(f"sqlite:///{tmp_path / 'vigil.db'}", mode="create")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    d = vigil.decide_gate(loaded, store, "api", actor="release-bot")
    [row] = store.gate_decisions()
    assert row["id"] == d.id and row["actor"] == "release-bot"
    assert datetime.fromisoformat(row["decided_at"].replace("Z", "+00:00")) >= before
    store.close()


def test_read_mode_is_the_default_and_never_creates(tmp_path):
    from vigil.store import StoreMissingError

    with pytest.raises(StoreMissingError):
        vigil.open_store(f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()


def test_lint_and_spec_errors_through_the_api(tmp_path):
    report = vigil.lint_migration("ALTER TABLE orders ADD COLUMN channel text NOT NULL;")
    assert any(f.severity == "error" for f in report.findings)
    f = tmp_path / "0001_x.sql"
    f.write_text("CREATE TABLE t (id bigint PRIMARY KEY);\n")
    assert not [x for x in vigil.lint_migration(f).findings if x.severity == "error"]
    with pytest.raises(SpecError) as e:
        vigil.parse_spec("version: 1\nservices: {}\nslos: [{name: x}]\n")
    assert "slos[0]" in str(e.value)


def test_judge_canary_through_the_api(tmp_path):
    spec = SPEC + """\
canary:
  service: api
  metrics:
    - {name: errors, ratio: {bad: 'http_requests{code=~"5.."}', total: http_requests}, critical: true}
  min_samples: 50
"""
    loaded = vigil.parse_spec(spec)
    store = vigil.open_store(f"sqlite:///{tmp_path / 'vigil.db'}", mode="create")
    clock = FakeClock("2026-11-20T12:00:00Z")
    start = clock.now() - timedelta(minutes=30)
    rows = []
    for i in range(30):
        ts = isoformat(start + timedelta(minutes=i))
        for version, bad in (("v1", 0), ("v2", 40)):
            rows += [{"ts": ts, "metric": "http_requests", "labels": {"code": "200", "version": version}, "inc": 100 - bad},
                     {"ts": ts, "metric": "http_requests", "labels": {"code": "500", "version": version}, "inc": bad}]
    assert vigil.push(store, loaded, rows, clock=clock).rejected_count == 0
    j = vigil.judge_canary(loaded, store, 'version="v1"', 'version="v2"', start, clock.now())
    assert j.verdict.verdict == "fail"
    assert json.dumps(j.to_dict(), default=str)
    store.close()
