"""vigil secrets scan: the labelled corpus (exact), encodings, git ranges with history, baselines
and waivers, SARIF 2.1.0 shape, exit codes, and no secret in any output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from vigil.security.baseline import Waiver
from vigil.security.scanner import decode_base64_text, fingerprint, redact, scan_text
from vigil.security.secretreport import apply_baseline, findings_of
from vigil.security.sources import decode_bytes, parse_log, walk_path

CORPUS = Path(__file__).resolve().parent / "data" / "secrets"
LABELS = json.loads((CORPUS / "labels.json").read_text())


def corpus_hits() -> tuple[set[tuple[str, int, str]], list[str]]:
    w = walk_path(str(CORPUS), excludes=["labels.json"])
    found: set[tuple[str, int, str]] = set()
    secrets: list[str] = []
    for t in w.texts:
        for h in scan_text(t.text, t.path):
            found.add((t.path, t.file_line(h.line), h.rule))
            secrets.append(h.secret)
            if h.raw:
                secrets.append(h.raw)
    return found, secrets


# --- the labelled corpus --------------------------------------------------------------------------


def test_corpus_finds_every_labelled_secret_and_no_lookalike():
    """Exact: every true secret at its line with its rule, nothing else (in particular nothing in
    the look-alike files: UUIDs, hashes, git SHAs, fixtures, documented example keys)."""
    found, _ = corpus_hits()
    expected = {(x["path"], x["line"], x["rule"]) for x in LABELS["true_secrets"]}
    assert sorted(expected - found) == [], "missed"
    assert sorted(found - expected) == [], "false positives"
    assert not [f for f in found if f[0].startswith("lookalike/")]
    assert len(LABELS["lookalike_files"]) >= 25 and len(expected) >= 40


def test_corpus_covers_file_types_and_encodings():
    paths = {x["path"] for x in LABELS["true_secrets"]}
    for suffix in (".env", ".yml", ".yaml", ".json", ".py", ".js", ".ts", ".tf", "Dockerfile", ".sh", ".b64.txt", ".log", ".ps1", ".pem"):
        assert any(p.endswith(suffix) for p in paths), suffix
    assert (CORPUS / "true" / "deploy.ps1").read_bytes()[:2] == b"\xff\xfe"  # UTF-16 with a BOM


def test_provider_rules_each_fire_in_the_corpus():
    rules = {x["rule"] for x in LABELS["true_secrets"]}
    for r in ("aws-access-key-id", "aws-secret-access-key", "github-token", "stripe-live-key", "pagerduty-routing-key",
              "pagerduty-api-token", "smtp-password", "smtp-url-credentials", "private-key", "database-url-password", "keyword-secret"):
        assert r in rules, r


# --- single texts: what a rule or a plugin finds, and what it must not ----------------------------


def rules_in(text: str, path: str = "x.txt") -> list[tuple[int, str]]:
    return [(h.line, h.rule) for h in scan_text(text, path)]


def test_base64_wrapped_secret_is_found_by_its_decoded_form():
    key = "AKIAQ4MZT7XW2P6NJR3K"
    blob = __import__("base64").b64encode(f"export AWS_ACCESS_KEY_ID={key}\n".encode()).decode()
    hits = scan_text(f"# pasted\n{blob}\n", "notes.txt")
    assert [(h.line, h.rule, h.encoding) for h in hits] == [(2, "aws-access-key-id", "base64")]
    assert hits[0].secret == key and hits[0].raw == blob


def test_url_encoded_secret_is_found():
    tok = "ghp_" + "Zq8Lr2m9vKpZ3wE7yBa1R4nd0mT0k3nV4lu3Xq"
    line = "GET /cb?payload=%7B%22token%22%3A%22" + tok + "%22%7D"
    assert rules_in(line.replace(tok, tok.replace("_", "%5F"))) == [(1, "github-token")]


def test_multi_line_private_key_is_one_finding_at_its_header():
    body = "\n".join("MIIEowIBAAKCAQEAq8Lr2m9vKpZ3wE7yBa1R4nd0mT0k3nV4lu3Xq8Lr2m9v" for _ in range(5))
    text = f"x = 1\n-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n"
    assert rules_in(text) == [(2, "private-key")]


def test_private_key_header_without_a_key_is_not_a_finding():
    assert rules_in("-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n") == []
    assert rules_in('KEY_HEADER = "-----BEGIN OPENSSH PRIVATE KEY-----"\n') == []


@pytest.mark.parametrize(
    "text",
    [
        "request_id: 123e4567-e89b-42d3-a456-426614174000",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        'sha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"',
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        'password = "changeme"',
        "password: ${DB_PASSWORD}",
        'api_key = os.environ["API_KEY"]',
        "DATABASE_URL=postgres://user:password@localhost/app",
        "DATABASE_URL=postgres://app@db.internal/app",
        'token = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"',
        "private_key_path: /etc/ssl/private/app.key",
        'secret_name = "payments-db-credentials"',
        "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        '"forgot_password": "Forgot your password?"',
        "tokens = Tokens.single(tokens)",
        "password = get_password(user)",
        "# 2. detect-secrets' plugins: the regex plugins over the whole text",
        "the token expired yesterday",
    ],
)
def test_lookalikes_are_not_findings(text):
    assert rules_in(text) == []


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("PAGERDUTY_ROUTING_KEY=e93facc04764012d7bfb002500d5d1a6", "pagerduty-routing-key"),
        ('SMTP_PASSWORD="Tq7#vLm2pX9wK4"', "smtp-password"),
        ("url: smtp://alerts:Tq7vLm2pX9wK4z@smtp.example.net:587", "smtp-url-credentials"),
        ("DB=mysql://shop:Vk8pQ2xLm9zR@mysql.internal/shop", "database-url-password"),
        ("stripe.api_key = 'sk_live_4Rt9Xq2Lm8Zp7Wv3Kn6Yb1Jc'", "stripe-live-key"),
        ("client_secret: 'Vx9#kQ2mLp7Rt4wZ'", "keyword-secret"),
        ("ENV API_TOKEN=Zk4mQ8vR2pLx7TnW9c", "keyword-secret"),
        ("ENV API_TOKEN Zk4mQ8vR2pLx7TnW9c", "keyword-secret"),
        ("mysql --password Zk4mQ8vR2pLx7TnW9c -h db", "keyword-secret"),
        ("auth_token Zk4mQ8vR2pLx7TnW9c", "keyword-secret"),
    ],
)
def test_provider_and_keyword_rules(text, rule):
    assert rules_in(text) == [(1, rule)]


def test_a_secret_is_never_in_its_redacted_form_or_fingerprint():
    s = "sk_live_4Rt9Xq2Lm8Zp7Wv3Kn6Yb1Jc"
    r = redact(s)
    assert r == "sk_live_…[32 chars]" and "4Rt9" not in r
    fp = fingerprint("a.py", s)
    assert len(fp) == 32 and fp == fingerprint("a.py", s) and fp != fingerprint("b.py", s)
    assert redact("Tq7#vLm2pX9wK4") == "…[14 chars]"


def test_decoding_files_in_other_encodings():
    assert decode_bytes("token=x".encode("utf-16-le")) == ("token=x", "utf-16-le")
    assert decode_bytes(b"\xef\xbb\xbfa=1") == ("a=1", "utf-8-sig")
    assert decode_bytes(b"caf\xe9=1") == ("café=1", "latin-1")
    assert decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01") is None
    assert decode_base64_text("aGVsbG8gd29ybGQ=") == "hello world"
    assert decode_base64_text("////////////") is None


def test_walk_skips_binary_vcs_and_large_files_and_lists_the_large(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("password = Vk8pQ2xLm9zRq\n")
    (tmp_path / "img.bin").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "big.txt").write_text("x" * 100)
    (tmp_path / "ok.txt").write_text("hello\n")
    monkeypatch.setattr("vigil.security.sources.MAX_FILE_BYTES", 50)
    w = walk_path(str(tmp_path))
    assert [t.path for t in w.texts] == ["ok.txt"]
    assert w.skipped == [{"path": "big.txt", "reason": "larger than 0 MiB"}]


# --- the CLI: exit codes, output, SARIF -----------------------------------------------------------


def test_scan_exit_codes(cli, tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.py").write_text("print('hello')\n")
    assert cli("secrets", "scan", clean).code == 0
    dirty = tmp_path / "dirty"
    shutil.copytree(CORPUS / "true", dirty)
    r = cli("secrets", "scan", dirty, "--json")
    assert r.code == 1
    assert r.json()["passed"] is False and r.json()["counts"]["new"] == len(LABELS["true_secrets"])
    assert cli("secrets", "scan", tmp_path / "missing").code == 2
    assert cli("secrets", "scan", clean, "--git", "a..b").code == 2
    assert cli("secrets", "scan", "--git", "not-a-range", "--repo", clean).code == 2


def test_no_output_form_shows_a_secret(cli, tmp_path):
    """Text, JSON and SARIF of a scan of every true secret: none of the secrets (nor their encoded
    forms) appears anywhere."""
    _, secrets = corpus_hits()
    d = tmp_path / "t"
    shutil.copytree(CORPUS / "true", d)
    outs = [cli("secrets", "scan", d).out, cli("secrets", "scan", d, "--json").out, cli("secrets", "scan", d, "--sarif", "-").out]
    for out in outs:
        for s in secrets:
            core = s.strip()
            assert core[8:] not in out if len(core) > 16 else core not in out, core[:4]
    # the private keys' bodies: no base64 line of them appears either
    for line in (CORPUS / "true" / "deploy_key.pem").read_text().splitlines()[1:-1]:
        assert all(line not in o for o in outs)


# SARIF 2.1.0, as the OASIS specification defines the parts vigil writes (required properties,
# enumerations, types), written out here as a JSON schema.
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string"},
        "version": {"enum": ["2.1.0"]},
        "runs": {"type": "array", "items": {"$ref": "#/definitions/run"}},
    },
    "additionalProperties": False,
    "definitions": {
        "run": {
            "type": "object", "required": ["tool"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {"$ref": "#/definitions/toolComponent"}}},
                "results": {"type": "array", "items": {"$ref": "#/definitions/result"}},
                "originalUriBaseIds": {"type": "object"},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "properties": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "toolComponent": {
            "type": "object", "required": ["name"],
            "properties": {
                "name": {"type": "string"}, "fullName": {"type": "string"}, "version": {"type": "string"},
                "semanticVersion": {"type": "string"}, "informationUri": {"type": "string"},
                "rules": {"type": "array", "items": {"$ref": "#/definitions/reportingDescriptor"}},
            },
            "additionalProperties": False,
        },
        "reportingDescriptor": {
            "type": "object", "required": ["id"],
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "shortDescription": {"$ref": "#/definitions/mfms"}, "fullDescription": {"$ref": "#/definitions/mfms"},
                "help": {"$ref": "#/definitions/mfms"},
                "defaultConfiguration": {"type": "object", "properties": {"level": {"enum": ["none", "note", "warning", "error"]}}},
                "properties": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "mfms": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}}},
        "result": {
            "type": "object", "required": ["message"],
            "properties": {
                "ruleId": {"type": "string"}, "ruleIndex": {"type": "integer", "minimum": -1},
                "level": {"enum": ["none", "note", "warning", "error"]},
                "message": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
                "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
                "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
                "suppressions": {"type": "array", "items": {
                    "type": "object", "required": ["kind"],
                    "properties": {"kind": {"enum": ["inSource", "external"]}, "status": {"enum": ["accepted", "underReview", "rejected"]},
                                   "justification": {"type": "string"}},
                    "additionalProperties": False}},
                "properties": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "location": {
            "type": "object",
            "properties": {"physicalLocation": {
                "type": "object",
                "properties": {
                    "artifactLocation": {"type": "object", "properties": {"uri": {"type": "string"}, "uriBaseId": {"type": "string"}},
                                         "additionalProperties": False},
                    "region": {"type": "object", "properties": {
                        "startLine": {"type": "integer", "minimum": 1}, "startColumn": {"type": "integer", "minimum": 1},
                        "snippet": {"type": "object", "properties": {"text": {"type": "string"}}}}, "additionalProperties": False},
                },
                "additionalProperties": False}},
            "additionalProperties": False,
        },
    },
}


def test_sarif_output_is_sarif_2_1_0_and_marks_waivers(cli, tmp_path, monkeypatch):
    import jsonschema

    d = tmp_path / "repo"
    shutil.copytree(CORPUS / "true", d)
    monkeypatch.chdir(d)
    first = cli("secrets", "scan", ".", "--json").json()["findings"]
    fp = next(f["fingerprint"] for f in first if f["path"] == "app.env" and f["rule"] == "github-token")
    until = (datetime.now(timezone.utc) + timedelta(days=30)).date().isoformat()
    assert cli("secrets", "waive", fp, "--reason", "a token of the test org, revoked", "--owner", "team-sec", "--expires", until).code == 0
    out = tmp_path / "out.sarif"
    r = cli("secrets", "scan", ".", "--sarif", out)
    assert r.code == 1  # the other secrets are still new
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SARIF_SUBSET)
    results = doc["runs"][0]["results"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert len(results) == len(first)
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert len(res["partialFingerprints"]["vigilSecret/v1"]) == 32
    waived = [res for res in results if res.get("suppressions")]
    assert len(waived) == 1 and waived[0]["partialFingerprints"]["vigilSecret/v1"] == fp
    assert waived[0]["suppressions"][0]["kind"] == "external" and "team-sec" in waived[0]["suppressions"][0]["justification"]


# --- baselines ------------------------------------------------------------------------------------


def test_baseline_waives_until_expiry_then_the_waiver_is_an_error(cli, tmp_path, monkeypatch):
    d = tmp_path / "repo"
    d.mkdir()
    (d / "settings.py").write_text('STRIPE_KEY = "sk_live_4Rt9Xq2Lm8Zp7Wv3Kn6Yb1Jc"\n')
    monkeypatch.chdir(d)
    f = cli("secrets", "scan", "--json").json()["findings"][0]
    assert f["status"] == "new" and f["redacted"] == "sk_live_…[32 chars]"
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    r = cli("secrets", "waive", f["fingerprint"], "--reason", "revoked key kept for a regression test", "--owner", "payments", "--expires", tomorrow)
    assert r.code == 0 and Path(".vigil-secrets.yaml").exists()
    r = cli("secrets", "scan", "--json")  # the default baseline is picked up
    assert r.code == 0 and r.json()["findings"][0]["status"] == "waived" and r.json()["counts"]["waived"] == 1
    # the same waiver, expired yesterday: the finding is new again and the waiver is an error finding
    text = Path(".vigil-secrets.yaml").read_text().replace(tomorrow, (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat())
    Path(".vigil-secrets.yaml").write_text(text)
    r = cli("secrets", "scan", "--json")
    assert r.code == 1
    statuses = sorted((x["rule"], x["status"]) for x in r.json()["findings"])
    assert statuses == [("stripe-live-key", "new"), ("waiver-expired", "error")]
    assert r.json()["counts"] == {"new": 1, "waived": 0, "expired_waivers": 1}
    assert "EXPIRED WAIVER" in cli("secrets", "scan").out


def test_expired_waiver_of_a_removed_secret_still_fails():
    at = datetime(2026, 6, 1, tzinfo=timezone.utc)
    w = Waiver("ab" * 16, "fixture", "team", datetime(2026, 5, 31).date(), "keyword-secret", "a.env")
    out, stale = apply_baseline([], [w], at)
    assert [(f.rule, f.status) for f in out] == [("waiver-expired", "error")] and stale == []
    # valid through its expiry day (UTC), expired from the next midnight
    assert apply_baseline([], [w], datetime(2026, 5, 31, 23, 59, 59, tzinfo=timezone.utc)) == ([], [w.to_dict()])


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ("version: 1\nwaivers:\n  - {fingerprint: " + "ab" * 16 + ", owner: x, expires: 2030-01-01}\n", "needs a reason"),
        ("version: 1\nwaivers:\n  - {fingerprint: " + "ab" * 16 + ", reason: y, expires: 2030-01-01}\n", "needs a owner"),
        ("version: 1\nwaivers:\n  - {fingerprint: " + "ab" * 16 + ", reason: y, owner: x}\n", "needs an expiry"),
        ("version: 1\nwaivers:\n  - {fingerprint: nothex, reason: y, owner: x, expires: 2030-01-01}\n", "16-64 hex"),
        ("version: 1\nwaivers:\n  - {fingerprint: " + "ab" * 16 + ", reason: y, owner: x, expires: someday}\n", "YYYY-MM-DD"),
        ("version: 2\nwaivers: []\n", "version: 1"),
        ("version: 1\nwaivers: [\n", "not valid YAML"),
    ],
)
def test_bad_baseline_is_a_usage_error_before_scanning(cli, tmp_path, body, msg):
    (tmp_path / "b.yaml").write_text(body)
    r = cli("secrets", "scan", tmp_path, "--baseline", tmp_path / "b.yaml")
    assert r.code == 2 and msg in r.err
    assert cli("secrets", "scan", tmp_path, "--baseline", tmp_path / "nope.yaml").code == 2


def test_waive_refuses_an_unknown_fingerprint_and_a_past_expiry(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.env").write_text("API_TOKEN=Zk4mQ8vR2pLx7TnW9c\n")
    fp = cli("secrets", "scan", "--json").json()["findings"][0]["fingerprint"]
    assert cli("secrets", "waive", "cd" * 16, "--reason", "r", "--owner", "o", "--expires", "2099-01-01").code == 2
    assert cli("secrets", "waive", fp, "--reason", "r", "--owner", "o", "--expires", "2020-01-01").code == 2
    assert cli("secrets", "waive", fp, "--reason", " ", "--owner", "o", "--expires", "2099-01-01").code == 2
    assert not (tmp_path / ".vigil-secrets.yaml").exists()


# --- git ranges: every commit's added lines ---------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "app.py").write_text("print('v1')\n")
    git(r, "add", ".")
    git(r, "commit", "-qm", "base")
    return r


def test_git_range_finds_a_secret_added_then_removed(cli, repo):
    base = git(repo, "rev-parse", "HEAD")
    (repo / "config").mkdir()
    (repo / "config" / "prod.env").write_text("LOG=info\nGITHUB_TOKEN=ghp_Zq8Lr2m9vKpZ3wE7yBa1R4nd0mT0k3nV4lu3\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "add config")
    added = git(repo, "rev-parse", "HEAD")
    (repo / "config" / "prod.env").write_text("LOG=info\nGITHUB_TOKEN=${GITHUB_TOKEN}\n")
    git(repo, "commit", "-qam", "oops, remove it")
    # the working tree is clean now...
    assert cli("secrets", "scan", repo).code == 0
    # ...but the pull request's history is not
    r = cli("secrets", "scan", "--git", f"{base}..HEAD", "--repo", repo, "--json")
    assert r.code == 1
    [f] = r.json()["findings"]
    assert (f["rule"], f["path"], f["line"], f["commit"]) == ("github-token", "config/prod.env", 2, added)
    assert r.json()["scanned"]["commits"] == 2
    assert "ghp_Zq8L" not in r.out


def test_git_range_scans_only_what_the_range_adds(cli, repo):
    (repo / "old.env").write_text("API_TOKEN=Zk4mQ8vR2pLx7TnW9c\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "an old secret, before the pull request")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "old.env").write_text("API_TOKEN=Zk4mQ8vR2pLx7TnW9c\nLOG=debug\n")
    git(repo, "mv", "app.py", "main.py")
    git(repo, "commit", "-qam", "unrelated change, a rename")
    r = cli("secrets", "scan", "--git", f"{base}..HEAD", "--repo", repo, "--json")
    assert r.code == 0, r.out
    assert r.json()["findings"] == []


def test_git_line_numbers_and_multi_hunk_files(cli, repo):
    lines = [f"line {i}" for i in range(1, 41)]
    (repo / "big.txt").write_text("\n".join(lines) + "\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "big")
    base = git(repo, "rev-parse", "HEAD")
    lines[4] = "password = 'Vk8#pQ2xLm9zRq'"
    lines[29] = "SMTP_PASSWORD=Tq7#vLm2pX9wK4"
    (repo / "big.txt").write_text("\n".join(lines) + "\n")
    git(repo, "commit", "-qam", "two secrets in two hunks")
    r = cli("secrets", "scan", "--git", f"{base}..HEAD", "--repo", repo, "--json")
    assert sorted((f["line"], f["rule"]) for f in r.json()["findings"]) == [(5, "keyword-secret"), (30, "smtp-password")]


def test_git_merge_resolution_that_adds_a_secret(cli, repo):
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", "feature")
    (repo / "app.py").write_text("print('feature')\n")
    git(repo, "commit", "-qam", "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "app.py").write_text("print('main')\n")
    git(repo, "commit", "-qam", "main")
    subprocess.run(["git", "merge", "-q", "feature"], cwd=repo, capture_output=True)  # conflicts
    (repo / "app.py").write_text("print('both')\nDB_PASSWORD = 'Vk8#pQ2xLm9zRq'\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "-qm", "merge, resolved with a secret")
    merge = git(repo, "rev-parse", "HEAD")
    r = cli("secrets", "scan", "--git", f"{base}..HEAD", "--repo", repo, "--json")
    assert [(f["rule"], f["commit"], f["line"]) for f in r.json()["findings"]] == [("keyword-secret", merge, 2)]


def test_git_unusual_path_names_are_unquoted(repo, cli):
    base = git(repo, "rev-parse", "HEAD")
    (repo / "café config.env").write_text("API_TOKEN=Zk4mQ8vR2pLx7TnW9c\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "unicode")
    r = cli("secrets", "scan", "--git", f"{base}..HEAD", "--repo", repo, "--json")
    assert [f["path"] for f in r.json()["findings"]] == ["café config.env"]


def test_git_unknown_revision_and_not_a_repository(cli, repo, tmp_path):
    assert cli("secrets", "scan", "--git", "nope..HEAD", "--repo", repo).code == 2
    (tmp_path / "plain").mkdir()
    assert cli("secrets", "scan", "--git", "a..b", "--repo", tmp_path / "plain").code == 2


def test_parse_log_counts_commits_and_skips_deleted_and_binary():
    out = (
        b"\x00commit 1111111111111111111111111111111111111111\n\n"
        b"diff --git a/x.env b/x.env\nnew file mode 100644\n--- /dev/null\n+++ b/x.env\n@@ -0,0 +1,2 @@\n+A=1\n+API_TOKEN=Zk4mQ8vR2pLx7TnW9c\n"
        b"diff --git a/logo.png b/logo.png\nBinary files /dev/null and b/logo.png differ\n"
        b"diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-password=Vk8pQ2xLm9zRq\n"
    )
    w = parse_log(out)
    assert w.commits == 1 and [(t.path, t.lines) for t in w.texts] == [("x.env", [1, 2])]
    assert [(f.path, f.line) for f in findings_of(w)] == [("x.env", 2)]


def test_a_file_has_one_name_and_fingerprint_however_the_scan_names_it(cli, tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.env").write_text("API_TOKEN=Zk4mQ8vR2pLx7TnW9c\n")
    monkeypatch.chdir(tmp_path)
    seen = set()
    for target in (".", "src", "./src/a.env", str(tmp_path / "src")):
        [f] = cli("secrets", "scan", target, "--json").json()["findings"]
        seen.add((f["path"], f["fingerprint"]))
    assert len(seen) == 1 and next(iter(seen))[0] == "src/a.env"


def test_a_file_not_scanned_fails_the_scan_until_excluded(cli, tmp_path, monkeypatch):
    (tmp_path / "dump.sql").write_text("x" * 100)
    (tmp_path / "ok.txt").write_text("hello\n")
    monkeypatch.setattr("vigil.security.sources.MAX_FILE_BYTES", 50)
    r = cli("secrets", "scan", tmp_path, "--json")
    assert r.code == 1 and r.json()["passed"] is False and r.json()["findings"] == []
    assert [s["path"] for s in r.json()["skipped"]] == ["dump.sql"]
    assert "NOT SCANNED dump.sql" in cli("secrets", "scan", tmp_path).out
    assert cli("secrets", "scan", tmp_path, "--exclude", "*.sql").code == 0
