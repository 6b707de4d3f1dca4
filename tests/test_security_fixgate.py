"""The fix gate's pure core (decide_security, finding_state) and SARIF severity mapping, on plain
data and fixed times; and the findings API over real loopback HTTP with role-bound tokens."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from vigil.clock import FakeClock, SystemClock, isoformat, parse_time
from vigil.errors import UsageError
from vigil.security.fixgate import decide_security, finding_state
from vigil.security.sarifin import map_severity, severity_from_score
from vigil.security.spec import SecuritySpec

T0 = parse_time("2026-03-01T00:00:00Z")


def row(sev: str = "critical", fp: str = "a" * 32, first: str = "2026-03-01T00:00:00Z", **kw) -> dict:
    base = {"id": 1, "fingerprint": fp, "service": "api", "release": "r1", "kind": "sast", "tool": "semgrep", "rule_id": "r",
            "severity": sev, "title": "bad thing", "path": "a.py", "line": 3, "window": None, "first_seen": first,
            "fixed_at": None, "details": {}}
    base.update(kw)
    return base


IMPORTS = [{"id": 1, "kind": "sast", "tool": "semgrep", "window": None, "found_at": "x", "imported_at": "x", "results": 1}]


def decide(rows, at, *, waivers=None, imports=IMPORTS, policy=None, **kw):
    return decide_security(policy or SecuritySpec(), rows, waivers or {}, imports, service="api", release="r1", at=at, **kw)


def test_no_policy_no_verdict_and_uncovered_service():
    assert decide_security(None, [row()], {}, IMPORTS, service="api", release="r1", at=T0) is None
    v = decide([row()], T0, policy=SecuritySpec(services=["web"]))
    assert v is not None and not v.covered and v.blocks == []


def test_open_critical_blocks_a_high_only_when_overdue():
    assert len(decide([row("critical")], T0).blocks) == 1
    high = row("high")
    deadline = T0 + timedelta(days=30)
    assert decide([high], deadline).blocks == []  # at the deadline: not yet overdue
    [b] = decide([high], deadline + timedelta(seconds=1)).blocks
    assert b.startswith("security: overdue finding aaaaaaaaaaaa is open: semgrep r at a.py:3") and isoformat(deadline) in b


def test_block_on_severities_and_no_deadline_for_info():
    p = SecuritySpec(block_on=["critical", "high"])
    assert len(decide([row("high")], T0, policy=p).blocks) == 1
    assert decide([row("medium")], T0 + timedelta(days=365), policy=p).blocks == []  # overdue is not in block_on
    assert decide([row("info")], T0 + timedelta(days=3650)).blocks == []
    assert finding_state(row("info"), None, T0, SecuritySpec())["deadline"] is None


def test_waiver_holds_until_its_expiry_instant():
    w = {"id": 1, "reason": "r", "owner": "o", "expires": "2026-03-05T00:00:00Z", "actor": "a", "created_at": "x"}
    waivers = {"a" * 32: w}
    assert decide([row()], parse_time("2026-03-04T23:59:59Z"), waivers=waivers).blocks == []
    v = decide([row()], parse_time("2026-03-05T00:00:00Z"), waivers=waivers)
    assert len(v.blocks) == 1 and any("expired" in n for n in v.notes)
    assert finding_state(row(), w, parse_time("2026-03-05T00:00:00Z"), None)["waiver"]["expired"] is True


def test_fixed_and_suppressed_do_not_block():
    assert decide([row(fixed_at="2026-03-02T00:00:00Z")], T0).blocks == []
    assert decide([row(details={"suppressed": "inSource: ok"})], T0).blocks == []


def test_missing_evidence_blocks_and_no_label_passes_it():
    v = decide([], T0, imports=[], policy=SecuritySpec(override_passes=True), labels=["hotfix"], override_labels=["hotfix"], reason="x")
    assert len(v.blocks) == 1 and "no findings import" in v.blocks[0]
    v = decide([], T0, policy=SecuritySpec(require=["secrets", "sast"]))
    assert v.blocks == ["security: no secrets findings import recorded for release 'r1' (security.require lists secrets)"]
    v = decide_security(SecuritySpec(), [], {}, [], service="api", release=None, at=T0)
    assert v.blocks == ["security: the fix gate reads the findings of a release: pass --release to name it"]


def test_override_labels():
    kw = {"labels": ["hotfix"], "override_labels": ["hotfix"]}
    v = decide([row()], T0, reason="incident", **kw)
    assert len(v.blocks) == 1 and v.passed_by_override == [] and "cannot pass" in v.notes[0]
    p = SecuritySpec(override_passes=True)
    v = decide([row()], T0, policy=p, reason="incident", **kw)
    assert v.blocks == [] and v.passed_by_override[0].startswith("override: label 'hotfix' passes security: critical finding")
    with pytest.raises(UsageError, match="needs a reason"):
        decide([row()], T0, policy=p, reason=" ", **kw)
    assert len(decide([row()], T0, policy=p, reason="x", labels=["other"], override_labels=["hotfix"]).blocks) == 1


def test_findings_are_listed_open_first_by_severity():
    v = decide([row("low", fp="1" * 32), row("critical", fp="2" * 32), row("high", fp="3" * 32, fixed_at="x")], T0)
    assert [(f["severity"], f["state"]) for f in v.findings] == [("critical", "open"), ("low", "open"), ("high", "fixed")]


@pytest.mark.parametrize(("score", "sev"), [("9.0", "critical"), ("8.9", "high"), ("7.0", "high"), ("6.9", "medium"), ("4.0", "medium"),
                                            ("3.9", "low"), ("0.1", "low"), ("0", "info"), ("11", None), ("NaN", None), ("x", None)])
def test_security_severity_scores(score, sev):
    assert severity_from_score(score) == sev


def test_map_severity_order():
    rule = {"defaultConfiguration": {"level": "note"}, "properties": {"security-severity": "9.8"}}
    assert map_severity({"level": "warning"}, rule)[0] == "critical"  # security-severity first
    assert map_severity({"properties": {"severity": "low"}, "level": "error"}, None)[0] == "low"
    assert map_severity({"properties": {"issue_severity": "HIGH"}, "level": "note"}, None)[0] == "high"
    assert map_severity({}, {"defaultConfiguration": {"level": "error"}})[0] == "high"
    assert map_severity({}, None) == ("medium", "level warning", None)  # SARIF's default level
    assert map_severity({"level": "none"}, None)[0] == "info"


def test_spec_section_validation():
    from vigil.spec import parse_spec
    from vigil.errors import SpecError

    base = "version: 1\nservices: {api: {}}\nsecurity:\n"
    s = parse_spec(base + "  deadlines: {critical: 1d}\n  block_on: [high, overdue]\n")
    assert s.security is not None and s.security.block_on == ["high", "overdue"] and s.security.deadlines.high == 30 * 86400
    for bad, msg in (("  block_on: [urgent]\n", "block_on"), ("  block_on: [critical, critical]\n", "at most once"),
                     ("  max_waiver: 0s\n", "longer than 0s"), ("  deadlines: {critical: soon}\n", "critical"),
                     ("  services: [web]\n", "unknown service 'web'"), ("  overide_passes: true\n", "did you mean")):
        with pytest.raises(SpecError) as e:
            parse_spec(base + bad)
        assert msg in str(e.value), (bad, str(e.value))


# --- the API over loopback HTTP ----------------------------------------------------------------------

SPEC = "version: 1\nservices: {api: {}}\nsecurity: {block_on: [critical, overdue]}\n"
VIEWER, DEPLOYER = "viewer-token-0123456789", "deployer-token-0123456789"


@pytest.fixture
def api(tmp_path):
    from test_api import LiveServer, _free_port

    from vigil.auth import TokenEntry, Tokens, digest
    from vigil.security.ledger import import_runs
    from vigil.security.sarifin import parse_sarif
    from vigil.spec import load_spec
    from vigil.store import open_store
    from vigil.web.app import create_app

    (tmp_path / "vigil.yaml").write_text(SPEC)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "semgrep"}}, "results": [
        {"ruleId": "x", "level": "error", "message": {"text": "bad"}, "properties": {"security-severity": "9.5"},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"}, "region": {"startLine": 2}}}]}]}]}
    import_runs(store, parse_sarif(doc), service="api", release="r1", file_sha256="0" * 64, file_name="x.sarif", at=SystemClock().now())
    tokens = Tokens([TokenEntry("vera", "viewer", digest(VIEWER)), TokenEntry("dora", "deployer", digest(DEPLOYER))])
    servers = []

    def start(clock):
        srv = LiveServer(create_app(load_spec(tmp_path / "vigil.yaml"), store, tokens, clock), _free_port())
        srv.start()
        servers.append(srv)
        return httpx.Client(base_url=srv.url, timeout=30)

    yield start
    for s in servers:
        s.stop()
    store.close()


def test_api_lists_shows_and_waives_with_roles(api):
    c = api(SystemClock())
    as_viewer = {"Authorization": f"Bearer {VIEWER}"}
    as_deployer = {"Authorization": f"Bearer {DEPLOYER}"}
    r = c.get("/api/v1/findings", headers=as_viewer)
    assert r.status_code == 200, r.text
    [f] = r.json()["findings"]
    assert (f["severity"], f["state"], f["path"], f["line"]) == ("critical", "open", "a.py", 2)
    assert c.get("/api/v1/findings").status_code == 401
    assert c.get(f"/api/v1/findings/{f['fingerprint'][:10]}", headers=as_viewer).json()["releases"][0]["release"] == "r1"
    assert c.get("/api/v1/findings/nothexnothex", headers=as_viewer).status_code == 400
    assert c.get("/api/v1/findings/0123456789", headers=as_viewer).status_code == 404
    params = {"reason": "vendor patch pending", "owner": "team-api", "expires": isoformat(SystemClock().now() + timedelta(days=5))}
    r = c.post(f"/api/v1/findings/{f['id']}/waive", params=params, headers=as_viewer)
    assert r.status_code == 403
    assert c.post(f"/api/v1/findings/{f['id']}/waive", params={**params, "actor": "mallory"}, headers=as_deployer).status_code == 400
    r = c.post(f"/api/v1/findings/{f['id']}/waive", params=params, headers=as_deployer)
    assert r.status_code == 200, r.text
    assert r.json()["waiver"]["actor"] == "token:dora"
    assert c.get("/api/v1/findings", params={"state": "waived"}, headers=as_viewer).json()["findings"][0]["waiver"]["owner"] == "team-api"
    r = c.get("/api/v1/gate", params={"service": "api", "release": "r1"}, headers=as_viewer)
    assert r.status_code == 200 and r.json()["allowed"] is True
    r = c.post(f"/api/v1/findings/{f['id']}/waive", params={**params, "expires": "2099-01-01"}, headers=as_deployer)
    assert r.status_code == 400 and "max_waiver" in r.json()["error"]["message"]


def test_api_waive_refuses_a_pinned_clock(api):
    c = api(FakeClock("2026-03-01T00:00:00Z"))
    r = c.post("/api/v1/findings/1/waive", params={"reason": "r", "owner": "o", "expires": "2026-03-05"},
               headers={"Authorization": f"Bearer {DEPLOYER}"})
    assert r.status_code == 400 and "pinned clock" in r.json()["error"]["message"]
