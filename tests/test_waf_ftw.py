"""go-ftw YAML (v1, v2, v3), the raw requests built from it, and GoTestWAF's scoring: pure."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from vigil.errors import UsageError
from vigil.security.waf.ftw import Case, Expect, Request, Stage, load_suite, parse_file
from vigil.security.waf.runner import Answer, CaseResult, build_request, check, outcome, score, verdict

V1 = {"meta": {"author": "x", "enabled": True, "name": "920100.yaml"},
      "tests": [{"test_title": "920100-1", "desc": "v1", "stages": [{"stage": {
          "input": {"dest_addr": "127.0.0.1", "port": 80, "method": "GET", "uri": "/", "headers": {"Host": "localhost", "User-Agent": "t"}},
          "output": {"status": [200, 403], "log_contains": 'id "920100"'}}}]}]}
V2 = {"meta": {"name": "x", "tags": ["sqli"]}, "rule_id": 942100,
      "tests": [{"test_id": 3, "desc": "v2", "stages": [{"input": {
          "method": "POST", "uri": "/login", "version": "HTTP/1.0", "ordered_headers": [{"name": "Host", "value": "a"}, {"name": "X", "value": "1"}, {"name": "X", "value": "2"}],
          "encoded_data": base64.b64encode(b"a=\xff").decode()}, "output": {"log": {"expect_ids": [942100], "no_expect_ids": [1]}}}]}]}
V3 = {"meta": {"name": "tmpl", "tags": ["attack", "ssti"]}, "rule_id": 10110,
      "template": {"method": "GET", "uri": "/greet?name={{.Payload}}", "headers": [{"name": "Host", "value": "localhost"}]},
      "tests": [{"id": 1, "payload": "%7B%7B7*7%7D%7D", "output": {"status": 403}},
                {"id": 2, "payload": "x", "template": {"uri": "/other?q={{.Payload}}"}, "output": {"status": 403}}]}


def test_v1_v2_v3_read_alike():
    (c1,) = parse_file(V1, "a.yaml")
    assert c1.id == "920100-1" and c1.stages[0].expect.status == [200, 403] and c1.stages[0].expect.log_contains == 'id "920100"'
    assert c1.category == "attack"  # expects a blocking status or a log entry
    (c2,) = parse_file(V2, "b.yaml")
    r = c2.stages[0].request
    assert c2.id == "942100-3" and r.version == "HTTP/1.0" and r.headers == [("Host", "a"), ("X", "1"), ("X", "2")] and r.data == b"a=\xff"
    assert c2.stages[0].expect.expect_ids == [942100] and c2.group == "sqli" and c2.category == "attack"
    a, b = parse_file(V3, "c.yaml")
    assert a.id == "10110-1" and a.stages[0].request.uri == "/greet?name=%7B%7B7*7%7D%7D" and a.group == "ssti"
    assert b.stages[0].request.uri == "/other?q=x" and b.stages[0].request.headers == [("Host", "localhost")]


def test_disabled_files_and_benign_tags():
    assert parse_file({"meta": {"enabled": False}, "tests": []}, "x.yaml") == []
    doc = {"meta": {"tags": ["api"]}, "tests": [{"test_title": "t", "tags": ["benign"], "stages": [{"input": {"uri": "/"}, "output": {"status": 403}}]}]}
    (c,) = parse_file(doc, "x.yaml")
    assert c.category == "benign" and c.api  # the tag wins over the expected status


@pytest.mark.parametrize("doc,where", [
    ([], "the document"),
    ({"tests": {}}, "tests"),
    ({"tests": [{"test_title": "a", "stages": []}]}, "stages"),
    ({"tests": [{"test_title": "a", "stages": [{"output": {}}]}]}, "input"),
    ({"tests": [{"test_title": "a", "stages": [{"input": {"ordered_headers": [{"value": "no name"}]}}]}]}, "name, value"),
    ({"tests": [{"test_title": "a", "stages": [{"input": {"port": "eighty"}}]}]}, "port"),
    ({"tests": [{"test_title": "a", "stages": [{"input": {}, "output": {"log_contains": "("}}]}]}, "regular expression"),
    ({"tests": [{"test_title": "a", "payload": "x", "stages": [{"input": {}}]}]}, "not both"),
])
def test_bad_files_are_named(doc, where):
    with pytest.raises(UsageError) as e:
        parse_file(doc, "bad.yaml")
    assert "bad.yaml" in e.value.message and where in e.value.message


def test_suite_loading_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("tests:\n  - test_title: same\n    stages: [{input: {uri: /}}]\n")
    (tmp_path / "b.yaml").write_text("tests:\n  - test_title: same\n    stages: [{input: {uri: /}}]\n")
    with pytest.raises(UsageError, match="used twice"):
        load_suite([tmp_path])
    (tmp_path / "b.yaml").write_text("meta: {enabled: false}\ntests: []\n")
    assert [c.id for c in load_suite([tmp_path])] == ["same"]
    (tmp_path / "a.yaml").write_text("meta: {enabled: false}\ntests: []\n")
    with pytest.raises(UsageError, match="no enabled test"):
        load_suite([tmp_path])


def test_raw_requests():
    r = Request(method="POST", uri="/x?a=1", headers=[("Host", "h"), ("X", "1"), ("X", "2")], data=b"a=1")
    assert build_request(r, "localhost") == (b"POST /x?a=1 HTTP/1.1\r\nHost: h\r\nX: 1\r\nX: 2\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                              b"Content-Length: 3\r\nConnection: close\r\n\r\na=1")
    r = Request(uri="/", headers=[], autocomplete=False)
    assert build_request(r, "localhost") == b"GET / HTTP/1.1\r\n\r\n"
    assert build_request(Request(uri="/", headers=[]), "localhost").startswith(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
    raw = b"GET /\x00 HTTP/1.1\r\n\r\n"
    assert build_request(Request(raw=raw), "x") == raw


def test_expectations():
    e = Expect(status=[403], response_contains="denied")
    assert check(e, Answer(403, "access denied"), None) == (True, True, [])
    assert check(e, Answer(200, "ok"), None)[1] is False
    assert check(Expect(expect_error=True), Answer(None, "", "reset"), None) == (True, True, [])
    assert check(Expect(status=[200]), Answer(None, "", "refused"), None)[1] is False
    assert check(Expect(expect_ids=[1]), Answer(200, ""), None)[:2] == (False, False)  # no log: not checked, never met
    log = '[id "942100"] [msg "x"]\n'
    assert check(Expect(expect_ids=[942100], no_expect_ids=[941100]), Answer(403, ""), log) == (True, True, [])
    assert check(Expect(no_expect_ids=[942100]), Answer(403, ""), log)[2] == ["rule 942100 in the log"]


def _r(cat, out, api=False):
    c = Case("f", f"{cat}-{out}", "", [Stage(Request(), Expect())], [], cat, "g", api)
    return CaseResult(c, out, 200, True, True)


def test_gotestwaf_scoring():
    assert outcome(Answer(403, ""), [403], [200, 404]) == "blocked"
    assert outcome(Answer(404, ""), [403], [200, 404]) == "passed"
    assert outcome(Answer(500, ""), [403], [200, 404]) == "unresolved"
    assert outcome(Answer(None, "", "x"), [403], [200]) == "failed"
    rs = [_r("attack", "blocked")] * 3 + [_r("attack", "passed"), _r("attack", "unresolved"), _r("attack", "failed")] + \
         [_r("benign", "passed")] * 4 + [_r("benign", "blocked")]
    sc = score(rs)
    assert sc["attack_score"] == Decimal("75.00")  # 3 of 4 resolved; unresolved and failed left out, as GoTestWAF
    assert sc["benign_score"] == Decimal("80.00")
    assert sc["app"]["average"] == Decimal("77.50") and sc["api"]["average"] is None and sc["overall"] == Decimal("77.50")
    ok, why = verdict(sc, Decimal("0.7"), Decimal("0.8"))
    assert not ok and any("unresolved" in w for w in why) and any("failed" in w for w in why)
    api = score([_r("attack", "passed", api=True), _r("benign", "passed", api=True), _r("attack", "blocked"), _r("benign", "passed")])
    assert api["api"]["average"] == Decimal("0") and api["app"]["average"] == Decimal("100.00") and api["overall"] == Decimal("50.00")
    ok, why = verdict(score([_r("attack", "blocked")]), Decimal(1), Decimal(1))
    assert not ok and "no benign request" in why[0]
