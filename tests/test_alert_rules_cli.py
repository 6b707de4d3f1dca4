"""`vigil alerts` and `vigil alerts test FILE` through the command line: the example platform's
rule tests pass, a wrong expectation exits 1 with a readable diff, a broken test file exits 2 with
its line, and the active alerts are listed from the store (and what-if evaluated, never recorded)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import EXAMPLE_SPEC, ROOT
from helpers import push
from vigil.alerting.evaluate import evaluate_rules
from vigil.alerting.state import evaluations, last_seq
from vigil.alerting.test_runner import expand
from vigil.spec import load_spec
from vigil.store import open_store
from vigil.telemetry.sources import open_source

EXAMPLE_TESTS = ROOT / "examples" / "platform" / "alerts.test.yaml"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_the_notation():
    D = Decimal
    assert expand("-2+4x3") == [D(-2), D(2), D(6), D(10)]
    assert expand(" 1-2x4") == [D(1), D(-1), D(-3), D(-5), D(-7)]
    assert expand("5x2 _ 7 _x2 stale 1.5e1") == [D(5), D(5), D(5), None, D(7), None, None, None, D(15)]
    with pytest.raises(ValueError, match="cannot read 'abc'"):
        expand("1 abc")
    with pytest.raises(ValueError, match="more than"):
        expand("0+1x99999999")


def test_the_example_platforms_rules_pass_their_tests(cli):
    r = cli("alerts", "test", EXAMPLE_TESTS)
    assert r.code == 0, r.out + r.err
    assert "PASSED: 5 of 5 test groups passed" in r.out
    j = cli("alerts", "test", "--json", EXAMPLE_TESTS).json()
    assert j["passed"] is True
    groups = j["files"][0]["groups"]
    assert [g["passed"] for g in groups] == [True] * 5 and sum(g["checks"] for g in groups) == 16


def _copy_example(tmp_path: Path) -> Path:
    shutil.copy(EXAMPLE_SPEC, tmp_path / "vigil.yaml")
    return tmp_path / "alerts.test.yaml"


def test_a_wrong_expectation_exits_1_with_a_diff(cli, tmp_path):
    f = _copy_example(tmp_path)
    f.write_text("""\
spec: vigil.yaml
start: 2026-03-02T00:00:00Z
tests:
  - name: backlog
    input_series:
      - series: 'queue_depth{queue="outbox"}'
        values: '12x19 5000x40'
    alert_rule_test:
      - eval_time: 30m          # still pending at 30m: firing is wrong
        alertname: outbox-backlog
        exp_alerts:
          - exp_labels: {service: search, severity: page}
      - eval_time: 31m          # wrong labels
        alertname: outbox-backlog
        exp_alerts:
          - exp_labels: {service: search, severity: ticket}
""")
    r = cli("alerts", "test", f)
    assert r.code == 1
    assert "FAIL  backlog" in r.out and "FAILED: 0 of 1 test group passed" in r.out
    assert '- expected, not there: firing {service="search",severity="page"}' in r.out
    assert '- expected, not there: firing {service="search",severity="ticket"}' in r.out
    assert '+ there, not expected: firing {service="search",severity="page"}' in r.out
    j = cli("alerts", "test", "--json", f).json()
    fails = j["files"][0]["groups"][0]["failures"]
    assert [x["eval_time"] for x in fails] == ["30m", "31m"]
    assert fails[1]["unexpected"][0]["labels"] == {"service": "search", "severity": "page"}


def test_expected_pending_and_annotations(cli, tmp_path):
    f = _copy_example(tmp_path)
    f.write_text("""\
spec: vigil.yaml
tests:
  - input_series:
      - series: 'queue_depth{queue="outbox"}'
        values: '5000x40'
    alert_rule_test:
      - eval_time: 1m
        alertname: outbox-backlog
        exp_alerts:
          - exp_labels: {service: search, severity: page}
            state: pending
            exp_annotations: {runbook_url: 'https://runbooks.example.com/WRONG'}
""")
    r = cli("alerts", "test", f)
    assert r.code == 1
    assert "runbook_url='https://runbooks.example.com/index-rebuild'" in r.out  # the actual one is shown


@pytest.mark.parametrize(
    "body,where,message",
    [
        ("tests:\n  - input_series:\n      - series: 'a'\n        values: '1 x'\n", ":5:17", "cannot read 'x'"),
        ("tests:\n  - input_series:\n      - series: 'a{b=~\"c\"}'\n        values: '1'\n", ":4:17", "a series, not a selector"),
        ("tests:\n  - bogus: 1\n", ":3:12", "unknown key 'bogus'"),
        ("tests:\n  - input_series:\n      - series: 'a'\n", ":4:9", "`values` (expanding notation) or `samples`"),
        ("start: yesterday\ntests: []\n", ":2:8", "cannot read time"),
        ("tests: [\n", ":3:1", "invalid YAML"),
    ],
)
def test_a_broken_test_file_exits_2_with_its_line(cli, tmp_path, body, where, message):
    f = _copy_example(tmp_path)
    f.write_text("spec: vigil.yaml\n" + body)
    r = cli("alerts", "test", f)
    assert r.code == 2, r.out + r.err
    assert f"alerts.test.yaml{where}:" in r.err, r.err
    assert "the alert test file has 1 problem" in r.err and message in r.err


def test_unknown_alertname_and_unaligned_times_fail_the_group(cli, tmp_path):
    f = _copy_example(tmp_path)
    f.write_text("""\
spec: vigil.yaml
tests:
  - alert_rule_test:
      - {eval_time: 1m, alertname: nope}
      - {eval_time: 90s, alertname: outbox-backlog}
""")
    r = cli("alerts", "test", f)
    assert r.code == 1
    assert "alertname 'nope' is not a rule of the spec" in r.out
    assert "eval_time 1m30s is not a multiple of evaluation_interval 1m" in r.out


def test_a_missing_test_file_or_spec(cli, tmp_path):
    r = cli("alerts", "test", tmp_path / "nope.yaml")
    assert r.code == 2 and "no such test file" in r.err
    f = tmp_path / "t.yaml"
    f.write_text("spec: missing.yaml\ntests: []\n")
    r = cli("alerts", "test", f)
    assert r.code == 2 and "file not found" in r.err


# -- vigil alerts ------------------------------------------------------------------------------------


def _store_with_alerts(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    spec = load_spec(EXAMPLE_SPEC).spec
    store = open_store(url)
    rows = []
    for i in range(40):
        ts = (T0 + timedelta(minutes=i, seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append({"ts": ts, "metric": "queue_depth", "labels": {"queue": "outbox"}, "set": 5000})
        if i < 10:
            rows.append({"ts": ts, "metric": "index_staleness_seconds", "labels": {"class": "hot"}, "set": 12})
    push(store, spec, rows, T0 + timedelta(minutes=41))
    for m in (5, 16, 30):
        evaluate_rules(store, open_source(spec.telemetry, store), list(spec.alerts), slos=list(spec.slos), at=T0 + timedelta(minutes=m))
    store.close()
    return url


def test_vigil_alerts_lists_the_stored_alerts(cli, tmp_path):
    url = _store_with_alerts(tmp_path)
    r = cli("alerts", "--spec", EXAMPLE_SPEC, "--db", url)
    assert r.code == 0, r.err
    assert "alerts as of the last evaluation: 2026-03-02T12:30:00Z" in r.out
    assert "firing   outbox-backlog  page  search  since 2026-03-02T12:16:00Z  value 5000" in r.out
    assert "firing   search-down" in r.out
    j = cli("alerts", "--json", "--spec", EXAMPLE_SPEC, "--db", url).json()
    by = {a["rule"]: a for a in j["alerts"]}
    assert set(by) >= {"outbox-backlog", "search-down"}
    a = by["outbox-backlog"]
    assert (a["state"], a["since"], a["active_at"], a["value"]) == ("firing", "2026-03-02T12:16:00Z", "2026-03-02T12:05:00Z", 5000.0)
    assert a["labels"] == {"alertname": "outbox-backlog", "service": "search", "severity": "page"}
    assert a["fingerprint"] and a["annotations"]["runbook_url"].endswith("index-rebuild")


def test_what_if_evaluates_without_recording(cli, tmp_path):
    url = _store_with_alerts(tmp_path)
    store = open_store(url)
    n, evs = last_seq(store), len(evaluations(store))
    store.close()
    r = cli("alerts", "--what-if", "--at", "2026-03-02T13:10:00Z", "--json", "--spec", EXAMPLE_SPEC, "--db", url)
    assert r.code == 0, r.err
    j = r.json()
    assert j["what_if"] is True
    assert {(t["rule"], t["previous"], t["state"]) for t in j["transitions"]} >= {("outbox-backlog", "firing", "resolved")}
    store = open_store(url)
    assert (last_seq(store), len(evaluations(store))) == (n, evs)
    store.close()
    r = cli("alerts", "--at", "now", "--spec", EXAMPLE_SPEC, "--db", url)
    assert r.code == 2 and "--at goes with --what-if" in r.err


def test_vigil_alerts_needs_a_store(cli, tmp_path):
    r = cli("alerts", "--spec", EXAMPLE_SPEC, "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert r.code == 2 and "there is no state store" in r.err
    assert not (tmp_path / "none.db").exists()


def test_a_store_that_refuses_the_connection_is_exit_3(cli):
    from pgcluster import free_port

    url = f"postgresql://vigil@127.0.0.1:{free_port()}/vigil"
    for args in (["alerts"], ["alerts", "--what-if"]):
        r = cli(*args, "--spec", EXAMPLE_SPEC, "--db", url)
        assert r.code == 3, (args, r.out, r.err)
        assert "error:" in r.err and "Traceback" not in r.err


def test_export_to_an_unwritable_place_is_exit_2_and_writes_nothing(cli, tmp_path):
    r = cli("export", "prometheus-rules", "--spec", EXAMPLE_SPEC, "-o", tmp_path / "no" / "such" / "dir" / "rules.yml")
    assert r.code == 2 and "cannot write" in r.err
    assert not (tmp_path / "no").exists()
