"""The WAF suite against a real WAF on loopback: Apache with ModSecurity 2 and the Core Rule Set
3.3.4 from Debian's packages (one Apache for this module, two ports: CRS alone, and CRS with the
shipped examples/platform/waf/vigil-custom-rules.conf). It shows CRS 3.3.4's SSRF/SSTI/GraphQL gap
and the custom rules closing it, benign traffic passing both, and go-ftw's log expectations read
between X-CRS-Test markers."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from wafstack import ApacheCrs, free_port  # noqa: E402

from vigil.security.sarifin import parse_sarif  # noqa: E402
from vigil.security.waf.ftw import load_suite, parse_file  # noqa: E402
from vigil.security.waf.runner import run_suite  # noqa: E402

SUITE = Path(__file__).resolve().parent.parent / "examples" / "platform" / "waf"
GAP = {"ssrf-2", "ssrf-3", "ssrf-4", "ssrf-5", "ssrf-6", "ssrf-7", "ssrf-8", "ssti-1", "ssti-2", "ssti-4", "ssti-5", "ssti-6",
       "graphql-1", "graphql-2", "graphql-3"}


@pytest.fixture(scope="module")
def apache():
    a = ApacheCrs()
    yield a
    a.close()


@pytest.fixture(scope="module")
def cases():
    return load_suite([SUITE])


def _run(cases, url, **kw):
    return run_suite(cases, url, block_status=[403], pass_status=[200, 404], **kw)


def test_crs_alone_has_the_ssrf_ssti_and_graphql_gap(apache, cases):
    rep = _run(cases, apache.crs_url)
    through = {r.case.id for r in rep.results if r.case.category == "attack" and r.outcome == "passed"}
    assert through == GAP
    # what CRS 3.3.4 does stop: SQLi, XSS, traversal, a dotted metadata address (RFI rule 931100)
    for group in ("sqli", "xss", "path-traversal"):
        assert all(r.outcome == "blocked" for r in rep.results if r.case.group == group), group
    assert next(r for r in rep.results if r.case.id == "ssrf-1").outcome == "blocked"
    assert all(r.outcome == "passed" for r in rep.results if r.case.category == "benign")
    sc = rep.score
    assert sc["attacks"]["blocked"] == 13 and sc["attacks"]["passed"] == 15
    assert sc["attack_score"] == Decimal("46.43") and sc["benign_score"] == Decimal("100.00")
    assert sc["api"]["true_positive"] == Decimal("0.00") and sc["api"]["average"] == Decimal("0")  # no API attack blocked: 0, as GoTestWAF
    assert not rep.passed and any("46.43%" in r for r in rep.reasons)
    assert {r.case.id for r in rep.expectations_failed} == GAP


def test_the_custom_rules_close_the_gap_without_blocking_benign_traffic(apache, cases):
    rep = _run(cases, apache.custom_url)
    assert rep.passed and rep.complete and not rep.expectations_failed
    assert rep.score["attack_score"] == Decimal("100.00") and rep.score["benign_score"] == Decimal("100.00")
    assert rep.score["overall"] == Decimal("100.00")
    assert apache.backend.seen > 0  # benign requests reached the app behind the WAF


def test_log_expectations_between_markers(apache, tmp_path):
    """go-ftw's way of checking rule ids: the X-CRS-Test marker rule logs before and after."""
    doc = {
        "meta": {"name": "log-checks"},
        "rule_id": 942100,
        "tests": [
            {"test_id": 1, "desc": "libinjection SQLi is logged as 942100",
             "stages": [{"input": {"uri": "/?id=1%27%20OR%20%271%27%3D%271", "headers": {"Host": "localhost", "User-Agent": "t", "Accept": "*/*"}},
                         "output": {"log": {"expect_ids": [942100], "no_expect_ids": [10110]}}}]},
            {"test_id": 2, "desc": "the custom SSTI rule is logged with its id",
             "stages": [{"input": {"uri": "/?n=%7B%7B7*7%7D%7D", "headers": {"Host": "localhost", "User-Agent": "t", "Accept": "*/*"}},
                         "output": {"status": 403, "log": {"expect_ids": [10110]}}}]},
            {"test_id": 3, "desc": "v1 log_contains",
             "stages": [{"stage": {"input": {"uri": "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "headers": {"Host": "localhost", "User-Agent": "t", "Accept": "*/*"}},
                                   "output": {"log_contains": 'id "941100"', "status": [403]}}}]},
            {"test_id": 4, "desc": "an expectation that fails: the benign request logs no SQLi",
             "stages": [{"input": {"uri": "/?q=shoes", "headers": {"Host": "localhost", "User-Agent": "t", "Accept": "*/*"}},
                         "output": {"log": {"expect_ids": [942100]}}}]},
        ],
    }
    cs = parse_file(doc, "inline.yaml")
    rep = _run(cs, apache.custom_url, log=apache.error_log)
    res = {r.case.id: r for r in rep.results}
    assert res["942100-1"].checked and res["942100-1"].expectations_met, res["942100-1"].reasons
    assert res["942100-2"].expectations_met, res["942100-2"].reasons
    assert res["942100-3"].expectations_met, res["942100-3"].reasons
    assert res["942100-4"].checked and not res["942100-4"].expectations_met and res["942100-4"].reasons == ["rule 942100 not in the log"]
    # without the log those expectations cannot be checked, and are never taken as met
    rep2 = _run(cs, apache.custom_url)
    assert all(not r.checked and not r.expectations_met for r in rep2.results)


def test_cli_run_scores_writes_sarif_and_exits(apache, cli, tmp_path):
    sarif = tmp_path / "waf.sarif"
    r = cli("waf", "run", "--target", apache.crs_url, "--suite", str(SUITE), "--sarif", str(sarif), "--json")
    assert r.code == 1, r.err
    out = r.json()
    assert out["passed"] is False and out["score"]["attack_score"] == 46.43 and out["cases"] == 37
    (run,) = parse_sarif(json.loads(sarif.read_text()))
    assert run.tool == "vigil-waf" and {f.rule_id for f in run.findings} == {"waf-bypass"} and len(run.findings) == len(GAP)
    assert all(f.severity == "high" for f in run.findings)
    r = cli("waf", "run", "--target", apache.custom_url, "--suite", str(SUITE), "--sarif", str(sarif))
    assert r.code == 0, r.out
    assert "PASS" in r.out and "attacks blocked 100.00%" in r.out
    assert json.loads(sarif.read_text())["runs"][0]["results"] == []
    r = cli("waf", "run", "--target", apache.custom_url, "--suite", str(SUITE), "--include", "^ssti-")
    assert r.code == 1 and "no benign request got an answer" in r.out  # attacks alone prove nothing about false positives


def test_cli_run_from_the_spec(apache, cli, tmp_path):
    import shutil

    shutil.copytree(SUITE, tmp_path / "waf")
    spec = tmp_path / "vigil.yaml"
    spec.write_text("version: 1\nservices: {api: {}}\nsecurity:\n  waf: {suite: waf, min_attack_score: 45%}\n")
    r = cli("waf", "run", "--target", apache.crs_url, "--spec", str(spec), "--json")
    out = r.json()
    assert out["reasons"] == [] and out["passed"] is True  # 46.43% >= 45%
    assert r.code == 1  # ... but fifteen tests' own expectations failed


def test_a_waf_that_does_not_answer_is_exit_3_and_never_clean(cli, tmp_path):
    sarif = tmp_path / "x.sarif"
    r = cli("waf", "run", "--target", f"http://127.0.0.1:{free_port()}", "--suite", str(SUITE / "benign.yaml"), "--sarif", str(sarif), "--json")
    assert r.code == 3
    assert r.json()["complete"] is False
    (run,) = parse_sarif(json.loads(sarif.read_text()))
    assert [f.rule_id for f in run.findings] == ["vigil-waf-incomplete"] and run.findings[0].severity == "critical"


def test_usage_errors(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("meta: {name: x}\ntests:\n  - test_title: a\n    stages: []\n")
    r = cli("waf", "run", "--target", "http://127.0.0.1:9", "--suite", str(bad))
    assert r.code == 2 and "stages" in r.err
    r = cli("waf", "run", "--target", "http://169.254.169.254/", "--suite", str(SUITE))
    assert r.code == 2 and "metadata" in r.err
    r = cli("waf", "run", "--target", "http://127.0.0.1:9", "--suite", str(tmp_path / "missing"))
    assert r.code == 2 and "no such file" in r.err
    r = cli("waf", "run", "--target", "http://127.0.0.1:9", "--suite", str(SUITE), "--block-status", "200")
    assert r.code == 2
