"""`vigil check`: every problem in one pass, and warnings about selectors that cannot work, from
the spec alone and against the store (opened read-only, never created)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import ndjson

from vigil.slo.lint import contradiction, looks_like_regex
from vigil.telemetry.selector import parse_selector

HEAD = "version: 1\nservices: {api: {}, checkout: {}}\n"


def slo(name: str, sli: str, service: str = "api", window: str = "{rolling: 30d}", objective: str = "99.9") -> str:
    return f"  - name: {name}\n    service: {service}\n    objective: {objective}\n    window: {window}\n    sli: {sli}\n"


def ratio(good: str, total: str, exclude: str | None = None) -> str:
    ex = f", exclude: '{exclude}'" if exclude else ""
    return f"{{ratio: {{good: '{good}', total: '{total}'{ex}}}}}"


GOOD = ratio('http_requests{service="api",code!~"5.."}', 'http_requests{service="api"}')


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text(text)
    return p


# -- every problem in one pass ----------------------------------------------------------------------------


def test_schema_errors_cross_references_and_time_zones_in_one_pass(cli, tmp_path):
    """Before, a schema error hid the cross-references (unknown services, duplicate names) and a
    window with another error hid its bad time zone: a user fixed one round to meet the next."""
    text = (
        HEAD
        + "slos:\n"
        + slo("a", GOOD, objective="100")  # schema: no error budget
        + slo("a", GOOD, service="chekout")  # duplicate name, unknown service
        + slo("b", GOOD, window="{calendar: yearly, timezone: Mars/Olympus}")  # two problems in one window
        + "policy:\n  freeze:\n    - when: {budget_exhausted: true}\n      services: [api, serch]\n"
    )
    p = write(tmp_path, text)
    r = cli("check", p, "--json")
    assert r.code == 2
    d = r.json()
    assert d["valid"] is False
    got = {(i["path"], i["line"]) for i in d["issues"]}
    assert {
        ("slos[0].objective", 6),
        ("slos[1].name", 9),
        ("slos[1].service", 10),
        ("slos[2].window.calendar", 17),
        ("slos[2].window.timezone", 17),
        ("policy.freeze[0].services[1]", 22),
    } <= got, got
    msgs = {i["path"]: i["message"] for i in d["issues"]}
    assert "did you mean 'checkout'?" in msgs["slos[1].service"]
    assert "duplicate SLO name 'a'" in msgs["slos[1].name"]
    assert "unknown time zone 'Mars/Olympus'" in msgs["slos[2].window.timezone"]
    assert "unknown service 'serch'" in msgs["policy.freeze[0].services[1]"]
    r = cli("check", p)
    assert r.code == 2
    assert f"{p}:10:14: slos[1].service: unknown service 'chekout'; did you mean 'checkout'?" in r.err
    assert "ok:" not in r.out


def test_cross_references_of_a_tree_with_wrong_types_do_not_crash(cli, tmp_path):
    for text in (
        HEAD + "slos: {a: 1}\n",
        HEAD + "slos:\n  - 7\n  - {service: [x], name: {y: 1}}\n",
        "version: 1\nservices: [api]\nslos:\n  - {name: a, service: api}\npolicy: {freeze: [{services: nope}]}\n",
        "version: 1\nservices: {api: {}}\npolicy: {freeze: [7, {services: [1, 'zzz']}]}\n",
    ):
        r = cli("check", write(tmp_path, text), "--json")
        assert r.code == 2 and r.json()["issues"], text


# -- static warnings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,never",
    [
        ('m{service="api",service="checkout"}', True),
        ('m{a="x",a!="x"}', True),
        ('m{a="x",a=~"y.*"}', True),
        ('m{a="x",a!~"x|z"}', True),
        ('m{a=~"5..",a!~"5.."}', True),
        ('m{a=~"api|web",a!~"api|web"}', True),
        ('m{a=~"api|web",a="db"}', True),
        ('m{a=~"api|web",a!="api",a!="web"}', True),
        ('m{a="",a!=""}', True),
        ('m{a="x",a=~"x|y"}', False),
        ('m{a!="x",a!="y"}', False),
        ('m{a=~"5..",a!~"50."}', False),
        ('m{a="x",b="x"}', False),
        ('m{a="v1.2",a=~"v1.*"}', False),
    ],
)
def test_contradictory_selectors(text, never):
    assert (contradiction(parse_selector(text)) is not None) is never


@pytest.mark.parametrize(
    "value,regex",
    [("5..", True), ("5.*", True), ("5xx|4xx", True), ("[45]..", True), ("^api$", True), ("200", False),
     ("api", False), ("v1.2.3", False), ("/users/{id}", False), ("us-east-1", False)],
)
def test_values_that_look_like_regular_expressions(value, regex):
    assert looks_like_regex(value) is regex


def test_static_warnings_exit_0_with_lines(cli, tmp_path):
    text = (
        HEAD
        + "slos:\n"
        + slo("contradiction", ratio('http_requests{service="api",service="checkout"}', "http_requests"))
        + slo("literal", ratio('http_requests{service="api",code!="5.."}', 'http_requests{service="api"}'))
        + slo("disjoint", ratio('http_requests{service="checkout"}', 'http_requests{service="api"}'))
        + slo("fine", GOOD)
    )
    p = write(tmp_path, text)
    r = cli("check", p)
    assert r.code == 0, r.err
    lines = [x for x in r.err.splitlines() if x.startswith("warning: ")]
    assert len(lines) == 3, r.err
    assert lines[0].startswith(f"warning: {p}:8:") and 'service="api" and service="checkout" can never all hold' in lines[0]
    assert lines[1].startswith(f"warning: {p}:13:") and 'for a regular expression write code!~"5.."' in lines[1]
    assert lines[2].startswith(f"warning: {p}:18:") and "never match the same series: the SLI is always 0" in lines[2]
    assert r.out.startswith(f"ok: {p}: 2 services, 4 SLOs, 0 freeze rules (3 warnings)")
    d = cli("check", p, "--json").json()
    assert d["valid"] is True and d["issues"] == []
    assert [(w["path"], w["line"]) for w in d["warnings"]] == [
        ("slos[0].sli.ratio.good", 8), ("slos[1].sli.ratio.good", 13), ("slos[2].sli.ratio.good", 18)
    ]


def test_warnings_come_with_errors_too(cli, tmp_path):
    text = HEAD + "slos:\n" + slo("x", ratio('m{a="1",a="2"}', "m"), objective="100")
    d = cli("check", write(tmp_path, text), "--json").json()
    assert [i["path"] for i in d["issues"]] == ["slos[0].objective"]
    assert [w["path"] for w in d["warnings"]] == ["slos[0].sli.ratio.good"]


# -- against the store -----------------------------------------------------------------------------------

STORE_SPEC = (
    HEAD
    + "slos:\n"
    + slo("literal", ratio('http_requests{service="api",code!="5.."}', 'http_requests{service="api"}'))  # slos[0] at line 4, its sli at line 8
    + slo("fine", GOOD)
    + slo("metric-typo", ratio('http_request{service="api",code!~"5.."}', 'http_request{service="api"}'))
    + slo("label-typo", ratio('http_requests{servce="api",code!~"5.."}', 'http_requests{servce="api"}'))
    + slo("value-typo", ratio('http_requests{service="apii",code!~"5.."}', 'http_requests{service="apii"}'))
    + slo("wrong-kind", "{latency: {metric: 'http_requests', threshold: 300ms}}")
    + slo("checkout", ratio('checkout_attempts{outcome="success"}', "checkout_attempts", 'checkout_attempts{outcome="issuer_declined"}'), service="checkout")
)

ROWS = [
    {"ts": "2026-11-20T10:00:00Z", "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 90},
    {"ts": "2026-11-20T10:00:00Z", "metric": "http_requests", "labels": {"service": "api", "code": "503"}, "inc": 10},
    {"ts": "2026-11-20T10:00:00Z", "metric": "http_request_duration_seconds", "labels": {"service": "api"}, "observe": 0.1},
    {"ts": "2026-11-20T10:00:00Z", "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 5},
    {"ts": "2026-11-20T10:00:00Z", "metric": "checkout_attempts", "labels": {"outcome": "issuer_declined"}, "inc": 1},
    {"ts": "2026-11-20T10:00:00Z", "metric": "checkout_attempts", "labels": {"outcome": "error"}, "inc": 1},
]


def _pushed(cli, tmp_path, db: str | None = None) -> Path:
    p = write(tmp_path, STORE_SPEC)
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson(ROWS))
    args = ["push", f, "--spec", p] + (["--db", db] if db else [])
    assert cli(*args).code == 0
    return p


def _store_warnings(d: dict) -> dict[str, str]:
    return {w["path"]: w["message"] for w in d["warnings"]}


def _assert_store_findings(d: dict) -> None:
    assert d["store"]["checked"] is True and d["store"]["series"] == 6
    w = _store_warnings(d)
    assert "good http_requests{service=\"api\",code!=\"5..\"} matches every one of the 2 series of total" in w["slos[0].sli.ratio.good"]
    assert 'did you mean code!~"5.."?' in w["slos[0].sli.ratio.good"]
    assert not any(k.startswith("slos[1].") for k in w)  # the correct `!~` is quiet: the 503 series is not good
    assert "no series of metric 'http_request'; did you mean 'http_requests'" in w["slos[2].sli.ratio.total"]
    assert "no series has a label 'servce'; did you mean 'service'?" in w["slos[3].sli.ratio.total"]
    assert 'no series has service="apii"; did you mean service="api"?' in w["slos[4].sli.ratio.total"]
    assert "metric 'http_requests' is a counter in the store; a latency SLI reads observations" in w["slos[5].sli.latency.metric"]
    assert not any(k.startswith("slos[6].") for k in w)  # good is a strict subset of total minus exclude


def test_store_warnings_with_did_you_mean(cli, tmp_path):
    p = _pushed(cli, tmp_path)
    db = tmp_path / ".vigil" / "vigil.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    r = cli("check", p, "--json")
    assert r.code == 0, r.out
    d = r.json()
    _assert_store_findings(d)
    assert d["store"]["url"] == f"sqlite:///{db}"
    r = cli("check", p)
    assert r.code == 0 and "(9 warnings)" in r.out
    assert f"warning: {p}:8:" in r.err  # the good ⊇ total warning points at slos[0]'s sli line
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # read only: nothing written


def test_good_matching_every_series_of_total_with_an_exclude(cli, tmp_path):
    """`!=` meant as `!~` on the plan's checkout SLI: declines excluded, failures still good."""
    text = HEAD + "slos:\n" + slo(
        "checkout",
        ratio('checkout_attempts{outcome!="error|timeout"}', "checkout_attempts", 'checkout_attempts{outcome="issuer_declined"}'),
        service="checkout",
    )
    p = write(tmp_path, text)
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson([
        {"ts": "2026-11-20T10:00:00Z", "metric": "checkout_attempts", "labels": {"outcome": o}, "inc": 1}
        for o in ("success", "error", "timeout", "issuer_declined")
    ]))
    assert cli("push", f, "--spec", p).code == 0
    w = _store_warnings(cli("check", p, "--json").json())
    assert "matches every one of the 3 series of total" in w["slos[0].sli.ratio.good"]
    assert 'did you mean outcome!~"error|timeout"?' in w["slos[0].sli.ratio.good"]


def test_a_store_without_failures_yet_says_so_far(cli, tmp_path):
    """Only successes seen: the SLI cannot drop *with the series seen so far*; the warning says that
    this is fine until a failure is recorded, and it goes away once one is."""
    text = HEAD + "slos:\n" + slo("checkout", ratio('checkout_attempts{outcome="success"}', "checkout_attempts"), service="checkout")
    p = write(tmp_path, text)
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson([{"ts": "2026-11-20T10:00:00Z", "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 3}]))
    assert cli("push", f, "--spec", p).code == 0
    (w,) = cli("check", p, "--json").json()["warnings"]
    assert "the 1 series of total" in w["message"] and "fine while no failure has been recorded yet" in w["message"]
    f.write_bytes(ndjson([{"ts": "2026-11-20T10:01:00Z", "metric": "checkout_attempts", "labels": {"outcome": "error"}, "inc": 1}]))
    assert cli("push", f, "--spec", p).code == 0
    assert cli("check", p, "--json").json()["warnings"] == []


def test_check_never_creates_a_store(cli, tmp_path):
    p = write(tmp_path, STORE_SPEC)
    r = cli("check", p, "--json")
    assert r.code == 0
    d = r.json()
    assert d["store"]["checked"] is False and "no store at" in d["store"]["note"]
    assert not (tmp_path / ".vigil").exists()
    missing = tmp_path / "typo" / "x.db"
    r = cli("check", p, "--db", f"sqlite:///{missing}")
    assert r.code == 0 and "note: no store at" in r.err and "selectors were not checked" in r.err
    assert not missing.parent.exists()


def test_an_unreachable_store_is_an_external_failure_after_the_spec_results(cli, tmp_path):
    from pgcluster import free_port

    p = write(tmp_path, HEAD + "slos:\n" + slo("literal", ratio('http_requests{code!="5.."}', "http_requests")))
    r = cli("check", p, "--db", f"postgresql://vigil@127.0.0.1:{free_port()}/vigil")
    assert r.code == 3
    assert 'for a regular expression write code!~"5.."' in r.err  # the spec's findings are still reported
    assert "could not be read" in r.err and "error:" in r.err
    assert r.out.startswith(f"ok: {p}")
    d = cli("check", p, "--db", f"postgresql://vigil@127.0.0.1:{free_port()}/vigil", "--json").json()
    assert d["valid"] is True and d["store"]["checked"] is False and d["error"]["code"]


def test_store_warnings_on_postgresql(cli, tmp_path, pg_db_url):
    p = _pushed(cli, tmp_path, db=pg_db_url)
    r = cli("check", p, "--db", pg_db_url, "--json")
    assert r.code == 0, r.out
    _assert_store_findings(r.json())


def test_the_example_platform_spec_checks_clean(cli):
    from conftest import EXAMPLE_SPEC

    r = cli("check", EXAMPLE_SPEC, "--json", "--db", "sqlite:////nonexistent/vigil.db")
    assert r.code == 0, r.out
    assert r.json()["warnings"] == [], json.dumps(r.json()["warnings"], indent=1)
