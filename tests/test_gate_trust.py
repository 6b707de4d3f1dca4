"""The gate is never fooled (issue 12): recorded decisions are made at the real clock, a what-if is
never recorded, read commands never create or lock a store, the actor is the token's identity, and
no command prints a traceback without --debug.

Recorded decisions are made at the real clock by design, so these tests push telemetry stamped
relative to the real time: the last 10 hours of API traffic with half of it failing, which exhausts
any 30-day budget whatever the day.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from gate_helpers import GATE_SPEC, recent_rows
from live import LiveServer
from vigil.clock import SystemClock
from vigil.spec import load_spec
from vigil.store import head_revision, open_store

SPEC = GATE_SPEC




@pytest.fixture
def platform(tmp_path: Path, cli):
    """A spec and a store holding the last 10 hours: api frozen, checkout allowed."""
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    data = tmp_path / "data.ndjson"
    data.write_text("\n".join(json.dumps(r) for r in recent_rows(600)) + "\n")
    r = cli("push", data, "--spec", spec)
    assert r.code == 0, r.err
    return spec


def decisions(spec: Path) -> list[dict]:
    s = open_store(f"sqlite:///{spec.parent / '.vigil' / 'vigil.db'}", mode="read")
    try:
        return s.gate_decisions(limit=1000)
    finally:
        s.close()


# --- recorded decisions: the real clock, always ------------------------------------------------------


def test_a_recorded_decision_is_made_now_at_the_real_clock(platform, cli):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    r = cli("gate", "deploy", "--service", "api", "--spec", platform)
    after = datetime.now(timezone.utc)
    assert r.code == 1 and r.out.startswith("FROZEN api"), r.out
    assert "recorded" in r.out
    [d] = decisions(platform)
    decided = datetime.fromisoformat(d["decided_at"].replace("Z", "+00:00"))
    assert before <= decided <= after and d["at"] == d["decided_at"]
    assert not d["allowed"]
    r = cli("gate", "deploy", "--service", "checkout", "--spec", platform, "--json")
    assert r.code == 0 and r.json()["allowed"] is True and r.json()["what_if"] is False and r.json()["recorded"] is True


@pytest.mark.parametrize("at", ["now+31d", "now-40d", "2020-01-01T00:00:00Z", "now"])
def test_at_without_what_if_is_refused_and_nothing_is_recorded(platform, cli, at):
    r = cli("gate", "deploy", "--service", "api", "--at", at, "--spec", platform)
    assert r.code == 2, r.out
    assert "ALLOWED" not in r.out and "--what-if" in r.err
    assert decisions(platform) == []


def test_get_gate_at_a_future_time_over_the_api_records_nothing_either(platform):
    """The observed hole over HTTP: GET /api/v1/gate?at=now+31d answered ALLOWED and recorded it."""
    loaded = load_spec(platform)
    store = open_store(f"sqlite:///{platform.parent / '.vigil' / 'vigil.db'}", mode="write")
    from vigil.web.app import create_app

    token = "a-token-for-this-test-0123456789"
    with LiveServer(create_app(loaded, store, token, SystemClock())) as srv:
        r = httpx.get(f"{srv.url}/api/v1/gate", params={"service": "api", "at": "now+31d"},
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["what_if"] is True and r.json()["decision_id"] is None
        r = httpx.post(f"{srv.url}/api/v1/gate", params={"service": "api", "at": "now+31d"},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 400 and "`at` is not accepted" in r.json()["error"]["message"]
    store.close()
    assert decisions(platform) == []


def test_what_if_says_so_first_and_is_never_recorded(platform, cli):
    r = cli("gate", "deploy", "--service", "api", "--what-if", "--at", "now+31d", "--spec", platform)
    lines = r.out.splitlines()
    assert lines[0].startswith("WHAT-IF at ") and "not recorded" in lines[0]
    assert r.code == 0  # a month ahead there is no data: the would-be answer
    assert "nothing recorded" in r.out
    r = cli("gate", "deploy", "--service", "api", "--what-if", "--spec", platform, "--json")
    d = r.json()
    assert r.code == 1 and d["allowed"] is False and d["what_if"] is True and d["recorded"] is False and d["decision_id"] is None
    assert decisions(platform) == []


def test_vigil_now_refuses_a_recorded_decision(platform, cli):
    r = cli("gate", "deploy", "--service", "api", "--spec", platform, now="2020-01-01T00:00:00Z")
    assert r.code == 2 and "VIGIL_NOW" in r.err and "--what-if" in r.err
    assert "ALLOWED" not in r.out
    assert decisions(platform) == []  # nothing decided_at 2020
    r = cli("gate", "deploy", "--service", "api", "--what-if", "--spec", platform, "--json", now="2020-01-01T00:00:00Z")
    assert r.code == 0 and r.json()["what_if"] is True and r.json()["at"] == "2020-01-01T00:00:00Z"
    assert decisions(platform) == []


# --- the store the user meant ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["gate", "deploy", "--service", "api"],
        ["gate", "deploy", "--service", "api", "--what-if"],
        ["gate", "log"],
        ["slo", "status"],
        ["drill", "history"],
        ["canary", "history"],
        ["store", "status"],
    ],
)
def test_a_missing_store_is_a_clear_error_and_is_never_created(tmp_path, cli, argv):
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    typo = tmp_path / "typo" / "x.db"
    r = cli(*argv, "--spec", spec, "--db", f"sqlite:///{typo}")
    assert r.code == 2, (r.out, r.err)
    assert "no state store" in r.err and "vigil store init" in r.err
    assert "ALLOWED" not in r.out
    assert not typo.parent.exists()
    r = cli(*argv, "--spec", spec, env={"VIGIL_DB": f"sqlite:///{typo}"})
    assert r.code == 2 and not typo.parent.exists()
    r = cli(*argv, "--spec", spec)  # the default store next to the spec does not exist either
    assert r.code == 2 and not (tmp_path / ".vigil").exists()


def test_an_empty_postgres_database_is_not_a_store(cli, tmp_path, pg_db_url):
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    r = cli("gate", "deploy", "--service", "api", "--spec", spec, "--db", pg_db_url)
    assert r.code == 2 and "holds no vigil store" in r.err
    r = cli("store", "init", "--spec", spec, "--db", pg_db_url, "--json")
    assert r.code == 0 and r.json()["revision"] == head_revision()
    r = cli("gate", "deploy", "--service", "api", "--spec", spec, "--db", pg_db_url, "--json")
    # a store now, recorded; it holds no telemetry at all, which is no evidence: frozen (empty-store)
    assert r.code == 1 and r.json()["recorded"] is True and r.json()["freezes"][0]["rule_name"] == "empty-store"
    r = cli("gate", "log", "--spec", spec, "--db", pg_db_url, "--json")
    assert r.code == 0 and len(r.json()["decisions"]) == 1


def test_a_missing_spec_is_a_clear_error(tmp_path, cli):
    r = cli("gate", "deploy", "--service", "api", "--spec", tmp_path / "nope.yaml")
    assert r.code == 2 and "file not found" in r.err
    r = cli("slo", "status", "--spec", tmp_path / "nope.yaml")
    assert r.code == 2 and "file not found" in r.err
    assert not (tmp_path / ".vigil").exists()


def test_store_init_creates_a_private_store(tmp_path, cli):
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    r = cli("store", "init", "--spec", spec, "--json")
    assert r.code == 0 and r.json()["previous_revision"] is None
    d = tmp_path / ".vigil"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "vigil.db").stat().st_mode) == 0o600
    r = cli("store", "init", "--spec", spec)
    assert r.code == 0 and "already" in r.out
    r = cli("store", "status", "--spec", spec, "--json")
    assert r.code == 0 and r.json()["revision"] == head_revision() and r.json()["gate_decisions"] == 0


def test_push_creates_a_private_store(platform):
    d = platform.parent / ".vigil"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "vigil.db").stat().st_mode) == 0o600


def _vigil(*args: str, env: dict | None = None, timeout: float = 60, user: str | None = None) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    e.update(env or {})
    cmd = [sys.executable, "-m", "vigil", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)


def test_readers_do_not_wait_for_a_writer_holding_the_lock(platform):
    """slo status and gate log read while another process holds SQLite's write lock."""
    db = platform.parent / ".vigil" / "vigil.db"
    holder = sqlite3.connect(db, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held for the whole test
    try:
        for argv in (["slo", "status", "--json"], ["gate", "log"], ["gate", "deploy", "--service", "api", "--what-if"]):
            p = _vigil(*argv, "--spec", str(platform), timeout=20)  # the busy timeout is 30 s: a waiter would time out here
            assert p.returncode in (0, 1), (argv, p.stderr)
            assert "Traceback" not in p.stderr
    finally:
        holder.rollback()
        holder.close()


def test_readers_work_on_a_read_only_store_and_leave_it_untouched(platform, cli):
    """The store's directory is read-only to the reader: a read-only bind mount when we run as root
    (root ignores file modes), file modes otherwise. Readers answer and change nothing."""
    import hashlib

    src = platform.parent
    base = Path(tempfile.mkdtemp(prefix="vigil-ro-"))
    state = base / ".vigil"
    mounted = False
    try:
        shutil.copy(src / "vigil.yaml", base / "vigil.yaml")
        shutil.copytree(src / ".vigil", state)
        db = state / "vigil.db"
        for extra in ("vigil.db-wal", "vigil.db-shm"):
            (state / extra).unlink(missing_ok=True)
        if os.geteuid() == 0:
            subprocess.run(["mount", "--bind", str(state), str(state)], check=True)
            mounted = True
            subprocess.run(["mount", "-o", "remount,ro,bind", str(state)], check=True)
        else:
            os.chmod(db, 0o400)
            os.chmod(state, 0o500)
        with pytest.raises(OSError):
            (state / "probe").write_text("x")  # the directory really is read-only
        digest = hashlib.sha256(db.read_bytes()).hexdigest()
        for argv in (["slo", "status", "--json"], ["gate", "log", "--json"], ["gate", "deploy", "--service", "api", "--what-if", "--json"]):
            p = _vigil(*argv, "--spec", str(base / "vigil.yaml"), timeout=60)
            assert p.returncode in (0, 1), (argv, p.stderr)
            json.loads(p.stdout)
        assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
        assert sorted(x.name for x in state.iterdir()) == ["vigil.db"]
        # a writer on a read-only store fails cleanly, without a traceback
        p = _vigil("gate", "deploy", "--service", "api", "--spec", str(base / "vigil.yaml"), timeout=60)
        assert p.returncode in (2, 3) and "Traceback" not in p.stderr, p.stderr
    finally:
        if mounted:
            subprocess.run(["umount", str(state)], check=False)
        else:
            os.chmod(state, 0o700)
        shutil.rmtree(base)


def test_a_store_from_a_newer_vigil_is_a_clear_error(platform, cli):
    db = platform.parent / ".vigil" / "vigil.db"
    with sqlite3.connect(db) as c:
        c.execute("UPDATE alembic_version SET version_num = '9999'")
    for argv in (["slo", "status"], ["gate", "deploy", "--service", "api"], ["gate", "log"], ["push", "-"]):
        r = cli(*argv, "--spec", platform)
        assert r.code == 2, (argv, r.err)
        assert "9999" in r.err and head_revision() in r.err and "upgrade vigil" in r.err
        assert "Traceback" not in r.err


def test_an_older_store_is_not_migrated_by_a_reader(platform, cli):
    db = platform.parent / ".vigil" / "vigil.db"
    with sqlite3.connect(db) as c:
        c.execute("UPDATE alembic_version SET version_num = '0001'")
    r = cli("slo", "status", "--spec", platform)
    assert r.code == 2 and "vigil store init" in r.err
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)


# --- no traceback without --debug ---------------------------------------------------------------------


def test_an_internal_error_is_one_line_without_debug(platform, cli, monkeypatch):
    import vigil.cli.slo

    def boom(*_a, **_k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(vigil.cli.slo, "evaluate_slos", boom)
    r = cli("slo", "status", "--spec", platform)
    assert r.code == 4
    assert "internal error: RuntimeError: kaboom" in r.err and "--debug" in r.err
    assert "Traceback" not in r.err and "Traceback" not in r.out
    r = cli("--debug", "slo", "status", "--spec", platform)
    assert r.code == 4 and "Traceback" in r.err


# --- the gate log fits the terminal ---------------------------------------------------------------------


def test_gate_log_fits_80_columns_and_piped_output_is_plain(platform, cli):
    long_reason = "a hotfix for an incident " * 80  # ~2000 characters
    r = cli("gate", "deploy", "--service", "api", "--label", "security", "--reason", long_reason[:1999], "--spec", platform)
    assert r.code == 0
    r = cli("gate", "deploy", "--service", "api", "--spec", platform)
    assert r.code == 1
    r = cli("gate", "log", "--spec", platform, env={"COLUMNS": "80"})
    lines = r.out.splitlines()
    assert r.code == 0 and len(lines) == 1 + 2 * 2, lines  # a title, then two lines a decision
    assert all(len(x) <= 80 for x in lines), [len(x) for x in lines]
    assert "\x1b[" not in r.out
    assert "override" in lines[3] or "override" in lines[4]
    r = cli("gate", "deploy", "--service", "api", "--spec", platform, env={"COLUMNS": "80"})
    assert all(len(x) <= 80 for x in r.out.splitlines()), r.out


# --- the actor is the token's identity; roles -----------------------------------------------------------


@pytest.fixture
def named_server(platform, cli):
    """vigil's app on loopback with a tokens file of four named tokens, one per role, at the real clock."""
    from vigil.auth import load_tokens_file

    toks = {}
    tf = platform.parent / "tokens.yaml"
    for name, role in (("grafana", "viewer"), ("exporter", "pusher"), ("ci-deploy", "deployer"), ("ops", "admin")):
        r = cli("token", "add", "--name", name, "--role", role, "--tokens-file", tf, "--spec", platform, "--json")
        assert r.code == 0, r.err
        toks[role] = r.json()["token"]
    assert stat.S_IMODE(tf.stat().st_mode) == 0o600
    assert not any(t in tf.read_text() for t in toks.values())  # only digests are kept
    from vigil.web.app import create_app

    store = open_store(f"sqlite:///{platform.parent / '.vigil' / 'vigil.db'}", mode="write")
    srv = LiveServer(create_app(load_spec(platform), store, load_tokens_file(tf), SystemClock())).start()
    yield srv, toks
    srv.stop()
    store.close()


def _h(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def test_roles_and_the_recorded_actor_over_the_api(named_server, platform):
    srv, toks = named_server
    u = srv.url
    # a viewer reads and asks what-ifs, but records nothing and pushes nothing
    assert httpx.get(f"{u}/api/v1/slos", headers=_h(toks["viewer"])).status_code == 200
    assert httpx.get(f"{u}/api/v1/gate", params={"service": "api"}, headers=_h(toks["viewer"])).status_code == 200
    r = httpx.post(f"{u}/api/v1/gate", params={"service": "api"}, headers=_h(toks["viewer"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden" and "deployer" in r.json()["error"]["message"]
    line = json.dumps(recent_rows(1)[0]).encode()
    assert httpx.post(f"{u}/api/v1/push", content=line, headers=_h(toks["viewer"])).status_code == 403
    # a pusher pushes but cannot record a decision or override a freeze
    assert httpx.post(f"{u}/api/v1/push", content=line, headers=_h(toks["pusher"])).status_code == 200
    r = httpx.post(f"{u}/api/v1/gate", params={"service": "api", "label": "security", "reason": "x"}, headers=_h(toks["pusher"]))
    assert r.status_code == 403
    assert decisions(platform) == []
    # a deployer records; the actor is the token's name, never a field of the request
    r = httpx.post(f"{u}/api/v1/gate", params={"service": "api", "actor": "mallory"}, headers=_h(toks["deployer"]))
    assert r.status_code == 400 and "actor" in r.json()["error"]["message"]
    r = httpx.post(f"{u}/api/v1/gate", params={"service": "api"}, headers=_h(toks["deployer"]))
    assert r.status_code == 200 and r.json()["allowed"] is False and r.json()["recorded"] is True
    r = httpx.post(f"{u}/api/v1/gate", params={"service": "api", "label": "security"}, headers=_h(toks["deployer"]))
    assert r.status_code == 400 and "`reason`" in r.json()["error"]["hint"] and "--reason" not in r.json()["error"]["hint"]
    r = httpx.post(f"{u}/api/v1/gate", params={"service": "api", "label": "security", "reason": "CVE fix"}, headers=_h(toks["admin"]))
    assert r.status_code == 200 and r.json()["overridden"] is True
    log = decisions(platform)
    assert [(d["actor"], bool(d["allowed"]), bool(d["overridden"])) for d in log] == [
        ("token:ops", True, True),
        ("token:ci-deploy", False, False),
    ]
    # an unknown token is 401, whatever the route
    assert httpx.get(f"{u}/api/v1/slos", headers=_h("x" * 40)).status_code == 401


def test_tokens_file_must_be_private_and_well_formed(tmp_path, cli):
    from vigil.auth import load_tokens_file
    from vigil.errors import UsageError

    tf = tmp_path / "tokens.yaml"
    tf.write_text("tokens:\n  - {name: ci, role: deployer, sha256: " + "a" * 64 + "}\n")
    tf.chmod(0o644)
    with pytest.raises(UsageError, match="readable or writable by others"):
        load_tokens_file(tf)
    tf.chmod(0o600)
    assert load_tokens_file(tf).entries[0].role == "deployer"
    for bad, words in (
        ("tokens:\n  - {name: ci, role: god, sha256: " + "a" * 64 + "}\n", "is not one of"),
        ("tokens:\n  - {name: ci, role: admin, sha256: hunter2hunter2hunter2}\n", "never the token itself"),
        ("tokens:\n  - {name: ci, role: admin, sha256: " + "a" * 64 + "}\n  - {name: ci, role: viewer, sha256: " + "b" * 64 + "}\n", "duplicate"),
        ("tokens: []\n", "no API tokens"),
        ("tokens: !!python/object:os.system {}\n", "not allowed"),
    ):
        tf.write_text(bad)
        with pytest.raises(Exception, match=words):
            load_tokens_file(tf)


def test_a_token_file_readable_by_others_is_refused_and_an_explicit_file_beats_the_environment(tmp_path, cli):
    from vigil.cli.serve import resolve_tokens

    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    tok = tmp_path / "token"
    tok.write_text("from-the-file-0123456789abcdef\n")
    tok.chmod(0o644)
    from vigil.errors import UsageError

    with pytest.raises(UsageError, match="readable or writable by others") as e:
        resolve_tokens(str(tok), None, str(spec))
    assert "chmod 600" in (e.value.hint or "")
    tok.chmod(0o600)
    os.environ["VIGIL_TOKEN"] = "from-the-environment-0123456789"
    try:
        tokens, where = resolve_tokens(str(tok), None, str(spec))
        assert where == str(tok)
        assert tokens.authenticate("from-the-file-0123456789abcdef") is not None
        assert tokens.authenticate("from-the-environment-0123456789") is None
    finally:
        del os.environ["VIGIL_TOKEN"]


# --- secrets never in the spec, never echoed ------------------------------------------------------------


@pytest.mark.parametrize(
    "where, value, words",
    [
        ("services.api.owner", "AKIAIOSFODNN7EXAMPLE", "AWS access key"),
        ("services.api.description", "db at postgresql://app:s3cr3t@db.internal/prod", "URL with a password"),
        ("services.api.description", "password=hunter2hunter2", "password or secret"),
        ("services.api.tier", "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2, "GitHub token"),
        ("services.api.owner", "xq7Vt0Lp9ZrW2mKe8YbN4sHd6Jf1", "random-looking"),
    ],
)
def test_a_secret_anywhere_in_the_spec_is_refused(tmp_path, cli, where, value, words):
    spec = tmp_path / "vigil.yaml"
    key = where.split(".")[-1]
    spec.write_text(SPEC.replace("services: {api: {}, checkout: {}}", f"services:\n  api: {{{key}: '{value}'}}\n  checkout: {{}}"))
    r = cli("check", spec, "--json")
    assert r.code == 2
    issues = r.json()["issues"]
    hit = [i for i in issues if i["path"] == where]
    assert hit and words in hit[0]["message"] and "environment variable" in hit[0]["message"]
    assert value not in r.out  # the refusal does not echo the secret


def test_the_spec_route_never_echoes_a_secret(tmp_path):
    """A spec built without the loader (a library user) still cannot leak through /api/v1/spec."""
    from vigil.spec import LoadedSpec, Spec
    from vigil.web.app import create_app

    secret = "postgresql://app:s3cr3t@db.internal/prod"
    spec = Spec.model_validate({"version": 1, "services": {"api": {"description": f"primary db {secret}"}}})
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}", mode="create")
    token = "a-token-for-this-test-0123456789"
    with LiveServer(create_app(LoadedSpec(spec, None, "0" * 64), store, token, SystemClock())) as srv:
        r = httpx.get(f"{srv.url}/api/v1/spec", headers={"Authorization": f"Bearer {token}"})
    store.close()
    assert r.status_code == 200 and "s3cr3t" not in r.text and "<redacted>" in r.text


def test_a_sqlite_uri_names_the_file_it_means(tmp_path, monkeypatch):
    """sqlite:///file:/path?mode=ro&uri=true is SQLite's URI form: the store is /path, and a missing
    one is never created as a directory named 'file:' under the working directory."""
    from vigil.store import StoreMissingError

    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nowhere" / "x.db"
    for mode in ("read", "write"):
        with pytest.raises(StoreMissingError):
            open_store(f"sqlite:///file:{missing}?mode=ro&uri=true", mode=mode)
    assert not (tmp_path / "file:").exists() and not missing.parent.exists()
    real = tmp_path / "real.db"
    open_store(f"sqlite:///{real}", mode="create").close()
    s = open_store(f"sqlite:///file:{real}?mode=ro&uri=true", mode="read")
    assert s.revision() == head_revision()
    s.close()


def test_an_empty_history_says_so(tmp_path, cli):
    """drill history on a store with no runs says there are none (it printed an empty table), as
    canary history does."""
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    assert cli("store", "init", "--spec", spec).code == 0
    r = cli("drill", "history", "--spec", spec)
    assert r.code == 0 and "no drill runs recorded" in r.out
    r = cli("drill", "history", "--spec", spec, "--json")
    assert r.code == 0 and r.json()["runs"] == []
