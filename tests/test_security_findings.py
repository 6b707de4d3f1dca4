"""vigil findings import | list | show | waive and the fix gate in vigil gate deploy: real SARIF
from bandit, semgrep and ESLint (and CodeQL and gitleaks as documented), a real SQLite store, the
real clock for recorded decisions."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

SARIF = Path(__file__).resolve().parent / "data" / "sarif"
CORPUS = Path(__file__).resolve().parent / "data" / "secrets"

SPEC = """\
version: 1
services: {api: {}, web: {}}
policy:
  overrides: {labels: [hotfix]}
security:
  deadlines: {critical: 7d, high: 30d, medium: 90d, low: 180d}
  block_on: [critical, overdue]
  max_waiver: 30d
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "vigil.yaml").write_text(SPEC)
    for f in SARIF.glob("*.sarif"):
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def db(proj: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{proj / '.vigil' / 'vigil.db'}")


def rows(proj: Path, table: str) -> list[dict]:
    with db(proj).connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]


def days_ago(n: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def imp(cli, file: str, release: str = "r1", *extra: str, service: str = "api"):
    r = cli("findings", "import", file, "--service", service, "--release", release, "--json", *extra)
    assert r.code == 0, r.err
    return r.json()


def ledger(cli, *args: str) -> list[dict]:
    r = cli("findings", "list", "--json", *args)
    assert r.code == 0, r.err
    return r.json()["findings"]


# --- import: the tools' real SARIF ----------------------------------------------------------------


def test_bandit_severities_from_issue_severity(cli, proj):
    out = imp(cli, "bandit.sarif")
    assert (out["results"], out["findings"], out["new_findings"], out["tools"]) == (9, 9, 9, ["Bandit"])
    got = sorted((f["rule"], f["line"], f["severity"]) for f in ledger(cli))
    assert got == [
        ("B105", 29, "low"), ("B113", 21, "medium"), ("B324", 17, "high"), ("B404", 2, "low"), ("B501", 21, "high"),
        ("B506", 13, "medium"), ("B602", 9, "high"), ("B602", 33, "high"), ("B608", 25, "medium"),
    ]
    b324 = next(f for f in ledger(cli) if f["rule"] == "B324")
    assert b324["cwe"] == ["CWE-327"] and b324["kind"] == "sast" and b324["path"] == "app.py"


def test_semgrep_placeholder_fingerprints_do_not_merge_results(cli, proj):
    out = imp(cli, "semgrep.sarif")
    assert (out["results"], out["findings"]) == (4, 4)  # every result says "requires login"
    got = sorted((f["rule"], f["line"], f["severity"]) for f in ledger(cli))
    assert got == [
        ("python-requests-verify-false", 21, "medium"), ("python-sql-format", 25, "low"),
        ("python-subprocess-shell-true", 9, "high"), ("python-subprocess-shell-true", 33, "high"),
    ]
    assert next(f for f in ledger(cli) if f["line"] == 21)["cwe"] == ["CWE-295"]


def test_eslint_and_codeql(cli, proj):
    imp(cli, "eslint.sarif")
    es = ledger(cli)
    assert len(es) == 4 and {f["severity"] for f in es} == {"medium"} and es[0]["path"].endswith("/server.js")
    imp(cli, "codeql.sarif")
    cq = {f["rule"]: f for f in ledger(cli) if f["tool"] == "CodeQL"}
    assert {r: f["severity"] for r, f in cq.items()} == {"js/sql-injection": "high", "js/code-injection": "critical", "js/reflected-xss": "medium"}
    # a location given only as an index into run.artifacts; CWE from CodeQL's tags
    assert (cq["js/reflected-xss"]["path"], cq["js/reflected-xss"]["line"]) == ("src/routes/search.js", 22)
    assert cq["js/sql-injection"]["cwe"] == ["CWE-89", "CWE-90", "CWE-943"]


def test_secret_in_another_tools_sarif_is_never_stored(cli, proj):
    leak = "AKIAZ7QX3MHPWK4T2N5J"
    assert leak in (proj / "gitleaks.sarif").read_text()
    imp(cli, "gitleaks.sarif")
    [f] = ledger(cli)
    assert f["kind"] == "secrets" and f["severity"] == "medium"  # no level in gitleaks' SARIF: SARIF's default, warning
    assert leak not in json.dumps(f) and "AKIA…[20 chars]" in f["snippet"]
    assert leak not in (proj / ".vigil" / "vigil.db").read_bytes().decode("latin-1")


def test_vigil_secrets_and_migrate_lint_sarif(cli, proj):
    shutil.copy(CORPUS / "true" / "app.env", proj / "app.env")
    assert cli("secrets", "scan", "app.env", "--sarif", "secrets.sarif").code == 1
    imp(cli, "secrets.sarif")
    got = sorted((f["rule"], f["severity"], f["kind"]) for f in ledger(cli))
    assert got == [("aws-access-key-id", "critical", "secrets"), ("aws-secret-access-key", "critical", "secrets"),
                   ("github-token", "critical", "secrets")]
    (proj / "migrations").mkdir()
    (proj / "migrations" / "0001_index.sql").write_text("CREATE INDEX users_email ON users (email);\n")
    r = cli("migrate", "lint", "migrations/0001_index.sql", "--format", "sarif")
    assert r.code == 1
    (proj / "lint.sarif").write_text(r.out)
    out = imp(cli, "lint.sarif", "r1", "--json")
    assert out["tools"] == ["vigil-migrate-lint"] and out["new_findings"] >= 1
    mig = [f for f in ledger(cli) if f["kind"] == "migration"]
    assert mig and all(f["severity"] in ("high", "medium", "low", "info") for f in mig)
    assert any(f["rule"] == "index-not-concurrent" and f["severity"] == "high" for f in mig)


# --- import: idempotent, deduplicated, first_seen kept -----------------------------------------------


def test_reimport_changes_nothing(cli, proj):
    imp(cli, "codeql.sarif", "r1", "--found-at", days_ago(3))
    before = (rows(proj, "security_imports"), rows(proj, "security_findings"))
    again = imp(cli, "codeql.sarif", "r1")
    assert again["already_imported"] is True and again["new_findings"] == 0
    assert (rows(proj, "security_imports"), rows(proj, "security_findings")) == before


def test_an_overlapping_file_adds_only_new_fingerprints_and_keeps_first_seen(cli, proj):
    imp(cli, "codeql.sarif", "r1", "--found-at", days_ago(5))
    first = {f["fingerprint"]: f["first_seen"] for f in ledger(cli)}
    doc = json.loads((proj / "codeql.sarif").read_text())
    extra = json.loads(json.dumps(doc["runs"][0]["results"][0]))
    extra["partialFingerprints"] = {"primaryLocationLineHash": "0123456789abcdef:1"}
    extra["locations"][0]["physicalLocation"]["region"]["startLine"] = 99
    doc["runs"][0]["results"].append(extra)
    doc["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"]["startLine"] = 31  # moved, same fingerprint
    (proj / "codeql2.sarif").write_text(json.dumps(doc))
    out = imp(cli, "codeql2.sarif", "r1")
    assert (out["findings"], out["new_findings"]) == (4, 1)
    now = {f["fingerprint"]: f["first_seen"] for f in ledger(cli)}
    assert {k: now[k] for k in first} == first and len(now) == 4


def test_first_seen_carries_over_to_later_releases(cli, proj):
    imp(cli, "semgrep.sarif", "r1", "--found-at", days_ago(20))
    imp(cli, "semgrep.sarif", "r2")
    by_rel: dict[str, dict] = {}
    for f in ledger(cli):
        by_rel.setdefault(f["release"], {})[f["fingerprint"]] = f["first_seen"]
    assert by_rel["r1"] == by_rel["r2"] and len(by_rel["r2"]) == 4


@pytest.mark.parametrize(
    ("content", "msg"),
    [
        ("not json", "not JSON"),
        ('{"version": "2.0.0", "runs": []}', 'expected "2.1.0"'),
        ('{"version": "2.1.0"}', "runs"),
        ('{"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": []}]}', "tool.driver.name"),
        ('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [1]}]}', "results[0]"),
    ],
)
def test_bad_sarif_is_refused_and_touches_no_store(cli, proj, content, msg):
    (proj / "bad.sarif").write_text(content)
    r = cli("findings", "import", "bad.sarif", "--service", "api", "--release", "r1")
    assert r.code == 2 and msg in r.err
    assert not (proj / ".vigil").exists()


def test_import_usage_errors(cli, proj):
    assert cli("findings", "import", "missing.sarif", "--service", "api", "--release", "r1").code == 2
    assert cli("findings", "import", "codeql.sarif", "--service", "nope", "--release", "r1").code == 2
    assert cli("findings", "import", "codeql.sarif", "--service", "api", "--release", "r 1").code == 2
    future = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%d")
    assert cli("findings", "import", "codeql.sarif", "--service", "api", "--release", "r1", "--found-at", future).code == 2
    assert cli("findings", "import", "codeql.sarif", "--service", "api", "--release", "r1", "--retest").code == 2
    # the import's time starts deadlines: a pinned clock is refused
    r = cli("findings", "import", "codeql.sarif", "--service", "api", "--release", "r1", now="2020-01-01T00:00:00Z")
    assert r.code == 2 and "VIGIL_NOW" in r.err
    assert rows(proj, "security_findings") == [] if (proj / ".vigil").exists() else True


# --- the fix gate through vigil gate deploy ----------------------------------------------------------


def gate(cli, *args: str):
    return cli("gate", "deploy", "--service", "api", "--json", *args)


def test_no_release_or_no_import_blocks(cli, proj):
    assert cli("store", "init").code == 0
    r = gate(cli)
    assert r.code == 1 and any("pass --release" in b for b in r.json()["blocks"])
    r = gate(cli, "--release", "r1")
    assert r.code == 1 and any("no findings import recorded for release 'r1'" in b for b in r.json()["blocks"])
    # another service's release does not count
    imp(cli, "eslint.sarif", "r1", service="web")
    assert gate(cli, "--release", "r1").code == 1


def test_open_critical_blocks_naming_it_and_a_waiver_passes(cli, proj):
    imp(cli, "codeql.sarif")
    crit = next(f for f in ledger(cli) if f["severity"] == "critical")
    r = gate(cli, "--release", "r1")
    assert r.code == 1
    [block] = r.json()["blocks"]
    assert crit["fingerprint"][:12] in block and "js/code-injection" in block and "src/routes/admin.js:30" in block
    assert r.json()["security"]["counts"] == {"open": 3, "waived": 0, "suppressed": 0, "fixed": 0}
    # no override label passes it (override_passes defaults to false)
    r = gate(cli, "--release", "r1", "--label", "hotfix", "--reason", "incident 42")
    assert r.code == 1 and any("cannot pass a security block" in w for w in r.json()["warnings"])
    # a waiver with a reason, an owner and an expiry (recorded with the actor) passes it
    until = (datetime.now(timezone.utc) + timedelta(days=10)).strftime("%Y-%m-%d")
    w = cli("findings", "waive", crit["fingerprint"][:10], "--reason", "sanitised upstream, fix in 1.5", "--owner", "team-web",
            "--expires", until, "--json", env={"VIGIL_ACTOR": "alice"})
    assert w.code == 0 and w.json()["waiver"]["actor"].endswith("(claims VIGIL_ACTOR=alice)")
    r = gate(cli, "--release", "r1")
    assert r.code == 0, r.json()["blocks"]
    assert r.json()["security"]["counts"]["waived"] == 1
    log = cli("gate", "log", "--json").json()["decisions"]
    assert log[0]["allowed"] and log[0]["decision"]["security"]["findings"][0]["state"] in ("open", "waived")
    # asked 11 days later (a what-if), the waiver has expired: blocked again (and past its 7-day
    # deadline), while the high is not overdue yet (30 days)
    r = gate(cli, "--release", "r1", "--what-if", "--at", "now+11d")
    assert r.code == 1 and len(r.json()["blocks"]) == 1 and "critical and overdue finding" in r.json()["blocks"][0]
    assert any("expired" in n for n in r.json()["warnings"])


def test_overdue_blocks_at_the_deadline(cli, proj):
    imp(cli, "semgrep.sarif", "r1", "--found-at", days_ago(29))  # a high (30d) and a medium (90d) and a low (180d)
    assert gate(cli, "--release", "r1").code == 0
    r = gate(cli, "--release", "r1", "--what-if", "--at", "now+2d")
    assert r.code == 1
    blocks = r.json()["blocks"]
    assert len(blocks) == 2 and all("overdue finding" in b and "python-subprocess-shell-true" in b for b in blocks)


def test_waiver_limits(cli, proj):
    imp(cli, "codeql.sarif")
    fp = ledger(cli)[0]["fingerprint"]
    far = (datetime.now(timezone.utc) + timedelta(days=45)).strftime("%Y-%m-%d")
    r = cli("findings", "waive", fp, "--reason", "x", "--owner", "y", "--expires", far)
    assert r.code == 2 and "max_waiver" in r.err
    assert cli("findings", "waive", fp, "--reason", "x", "--owner", "y", "--expires", "2020-01-01").code == 2
    assert cli("findings", "waive", "deadbeefdeadbeef", "--reason", "x", "--owner", "y", "--expires", far).code == 2
    assert cli("findings", "waive", fp, "--reason", "x", "--owner", "y", "--expires", "2030-01-01", now="2026-01-01T00:00:00Z").code == 2
    assert rows(proj, "security_waivers") == []


def test_override_passes_when_the_policy_says_so(cli, proj):
    (proj / "vigil.yaml").write_text(SPEC.replace("  max_waiver: 30d\n", "  max_waiver: 30d\n  override_passes: true\n"))
    imp(cli, "codeql.sarif")
    assert gate(cli, "--release", "r1", "--label", "hotfix").code == 2  # a reason is mandatory
    r = gate(cli, "--release", "r1", "--label", "hotfix", "--reason", "incident 42: the fix itself")
    assert r.code == 0
    assert any(x.startswith("override: label 'hotfix' passes security: critical finding") for x in r.json()["reasons"])
    assert gate(cli, "--release", "r1", "--label", "not-a-policy-label", "--reason", "x").code == 1
    # missing evidence is never passed by a label
    assert gate(cli, "--release", "r9", "--label", "hotfix", "--reason", "x").code == 1


def test_pen_test_window_counts_for_later_releases_until_a_retest(cli, proj):
    imp(cli, "codeql.sarif", "rc1", "--window", "pentest-2026q1", "--found-at", days_ago(10))
    imp(cli, "eslint.sarif", "r2")  # the next release's own scan: mediums, found now
    r = gate(cli, "--release", "r2")
    assert r.code == 1 and any("pen-test window pentest-2026q1" in b and "js/code-injection" in b for b in r.json()["blocks"])
    assert {f["kind"] for f in ledger(cli, "--release", "rc1")} == {"pentest"}
    # the retest no longer finds the code injection (only the XSS is left)
    doc = json.loads((proj / "codeql.sarif").read_text())
    doc["runs"][0]["results"] = [x for x in doc["runs"][0]["results"] if x["ruleId"] == "js/reflected-xss"]
    (proj / "retest.sarif").write_text(json.dumps(doc))
    out = imp(cli, "retest.sarif", "rc2", "--window", "pentest-2026q1", "--retest")
    assert out["fixed_by_retest"] == 2
    assert gate(cli, "--release", "r2").code == 0
    states = {f["rule"]: f["state"] for f in ledger(cli, "--release", "rc1")}
    assert states == {"js/sql-injection": "fixed", "js/code-injection": "fixed", "js/reflected-xss": "open"}


def test_require_lists_kinds_of_scans(cli, proj):
    (proj / "vigil.yaml").write_text(SPEC + "  require: [secrets, sast]\n")
    imp(cli, "eslint.sarif")
    r = gate(cli, "--release", "r1")
    assert r.code == 1 and r.json()["blocks"] == [
        "security: no secrets findings import recorded for release 'r1' (security.require lists secrets)"
    ]
    (proj / "clean.txt").write_text("nothing here\n")
    assert cli("secrets", "scan", "clean.txt", "--sarif", "clean.sarif").code == 0
    imp(cli, "clean.sarif")  # a clean scan is evidence too
    assert gate(cli, "--release", "r1").code == 0


def test_suppressed_results_do_not_block(cli, proj):
    doc = json.loads((proj / "codeql.sarif").read_text())
    for res in doc["runs"][0]["results"]:
        res["suppressions"] = [{"kind": "inSource", "justification": "reviewed in #77"}]
    (proj / "sup.sarif").write_text(json.dumps(doc))
    imp(cli, "sup.sarif")
    assert {f["state"] for f in ledger(cli)} == {"suppressed"}
    assert gate(cli, "--release", "r1").code == 0


def test_spec_checks_security_services(cli, proj):
    (proj / "vigil.yaml").write_text(SPEC + "  services: [api, nope]\n")
    r = cli("check", "--json")
    assert r.code == 2 and "security.services[1]" in r.out


def test_list_and_show(cli, proj):
    imp(cli, "codeql.sarif")
    items = ledger(cli, "--state", "open", "--service", "api", "--release", "r1")
    assert len(items) == 3 and items[0]["deadline"] is not None
    fp = next(f["fingerprint"] for f in items if f["rule"] == "js/sql-injection")
    r = cli("findings", "show", fp[:8], "--json")
    assert r.code == 0 and r.json()["rule"] == "js/sql-injection" and [x["release"] for x in r.json()["releases"]] == ["r1"]
    text = cli("findings", "show", fp[:8]).out
    assert "js/sql-injection" in text and "deadline:" in text
    assert cli("findings", "show", "zzzz").code == 2
    assert cli("findings", "show", "0123456789abcdef").code == 2
    assert "OPEN" in cli("findings", "list").out


def test_readers_never_create_the_store(cli, proj):
    assert cli("findings", "list").code == 2
    assert not (proj / ".vigil").exists()


# --- PostgreSQL: concurrent imports --------------------------------------------------------------------


def _doc(fps: list[str]) -> dict:
    return {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "semgrep"}}, "results": [
        {"ruleId": "r", "level": "error", "message": {"text": f"finding {fp}"}, "partialFingerprints": {"k": fp * 8},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"}, "region": {"startLine": i + 1}}}]}
        for i, fp in enumerate(fps)]}]}


@pytest.mark.postgres
def test_concurrent_imports_on_postgresql_store_each_fingerprint_once(pg_db_url):
    import threading

    from vigil.clock import SystemClock
    from vigil.security.ledger import import_runs, read_ledger
    from vigil.security.sarifin import parse_sarif
    from vigil.store import open_store

    store = open_store(pg_db_url)
    try:
        a = parse_sarif(_doc([f"{i:03d}" for i in range(0, 60)]))
        b = parse_sarif(_doc([f"{i:03d}" for i in range(30, 90)]))  # 30 fingerprints in common
        results: list = []
        barrier = threading.Barrier(4)

        def run(runs, sha):
            barrier.wait()
            results.append(import_runs(store, runs, service="api", release="r1", file_sha256=sha, file_name=None, at=SystemClock().now()))

        threads = [threading.Thread(target=run, args=x) for x in ((a, "a" * 64), (b, "b" * 64), (a, "a" * 64), (b, "b" * 64))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        view = read_ledger(store, "api", "r1")
        assert len(view.findings) == 90 and len({f["fingerprint"] for f in view.findings}) == 90
        assert len(view.imports) == 2  # each file once
        assert sorted(r.already for r in results) == [False, False, True, True]
        assert sum(r.new_findings for r in results) == 90
    finally:
        store.close()
