"""``vigil silence add|list|expire`` through the CLI: the author is the login, times are the real
clock's (VIGIL_NOW is refused for a recorded silence), bad input is exit 2 and stores nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

SPEC = """\
version: 1
services: {api: {}, search: {}}
alerting:
  receivers:
    - {name: r, webhook: {url: 'http://127.0.0.1:9/x', secret_env: S}}
  route: {receiver: r}
"""


@pytest.fixture
def spec(tmp_path: Path, cli) -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text(SPEC)
    assert cli("store", "init", "--spec", p).code == 0
    return p


def test_add_list_expire(spec, cli, monkeypatch):
    import vigil.cli.common

    monkeypatch.setattr(vigil.cli.common, "_os_login", lambda: "alice")  # the OS login (no $USER claim beside it)
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    r = cli("silence", "add", "--spec", spec, "-m", 'service="search"', "-m", 'alertname=~"search-.*"', "--reason", "reindex", "--duration",
            "2h", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert s["created_by"] == "alice" and s["state"] == "active" and s["reason"] == "reindex"
    assert s["matchers"] == ['service="search"', 'alertname=~"search-.*"']
    w = cli("silence", "add", "--spec", spec, "-m", 'service="api"', "--reason", "db upgrade", "--start", "now+1d", "--duration", "1h",
            "--json").json()
    assert w["state"] == "pending"
    listed = cli("silence", "list", "--spec", spec, "--json").json()["silences"]
    assert {x["id"] for x in listed} == {s["id"], w["id"]}
    text = cli("silence", "list", "--spec", spec)
    assert text.code == 0 and "reason: reindex" in text.out and "by alice" in text.out
    e = cli("silence", "expire", s["id"], "--spec", spec, "--json")
    assert e.code == 0 and e.json()["state"] == "expired" and e.json()["expired_by"] == "alice"
    assert [x["id"] for x in cli("silence", "list", "--spec", spec, "--json").json()["silences"]] == [w["id"]]
    assert len(cli("silence", "list", "--all", "--spec", spec, "--json").json()["silences"]) == 2
    # a scheduled window expired before it starts never starts
    assert cli("silence", "expire", w["id"], "--spec", spec, "--json").json()["state"] == "expired"


@pytest.mark.parametrize(
    "args,words",
    [
        (["-m", "service", "--reason", "x", "--duration", "1h"], "cannot read matcher"),
        (["-m", 'service=~".*"', "--reason", "x", "--duration", "1h"], "mute every alert"),
        (["-m", 'service="api"', "--reason", "  ", "--duration", "1h"], "needs a reason"),
        (["-m", 'service="api"', "--reason", "x"], "one of duration"),
        (["-m", 'service="api"', "--reason", "x", "--duration", "400d"], "366 days"),
    ],
)
def test_bad_silences_exit_2_and_store_nothing(spec, cli, args, words):
    r = cli("silence", "add", "--spec", spec, *args)
    assert r.code == 2 and words in r.err and "Traceback" not in r.err
    assert cli("silence", "list", "--all", "--spec", spec, "--json").json()["silences"] == []


def test_a_pinned_clock_cannot_record_a_silence(spec, cli):
    r = cli("silence", "add", "--spec", spec, "-m", 'service="api"', "--reason", "x", "--duration", "1h", now="2026-01-01T00:00:00Z")
    assert r.code == 2 and "VIGIL_NOW" in r.err


def test_no_store_is_exit_2_and_creates_none(tmp_path, cli):
    p = tmp_path / "vigil.yaml"
    p.write_text(SPEC)
    for args in (["add", "-m", 'a="b"', "--reason", "x", "--duration", "1h"], ["list"], ["expire", "s-1"]):
        r = cli("silence", *args, "--spec", p)
        assert r.code == 2, args
    assert not (tmp_path / ".vigil" / "vigil.db").exists()


def test_expiring_an_unknown_silence_is_a_clear_error(spec, cli):
    r = cli("silence", "expire", "s-nope", "--spec", spec)
    assert r.code == 2 and "no silence 's-nope'" in r.err and "vigil silence list" in r.err
