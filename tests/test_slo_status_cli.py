"""`vigil slo status` fits the terminal: fewer columns at 80, never cut cells; piped output is
plain; the coverage shows in the text and in --json."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONTRACT_SPEC, ndjson

AT = "2026-11-20T12:00:00Z"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = set("│┃─━┌┐└┘├┤┬┴┼╭╮╯╰═║╔╗╚╝╠╣╦╩╬")
LONG = "checkout-success-in-the-eu-region-for-returning-customers-only"


@pytest.fixture
def pushed(cli, tmp_path: Path) -> Path:
    spec = tmp_path / "vigil.yaml"
    spec.write_text(CONTRACT_SPEC)
    rows = [
        {"ts": f"2026-11-20T{h:02d}:{m:02d}:00Z", "metric": "checkout_attempts", "labels": {"outcome": o}, "inc": n}
        for h in (10, 11)
        for m in range(60)
        for o, n in (("success", 99), ("error", 1))
    ]
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson(rows))
    assert cli("push", f, "--spec", spec, now=AT).code == 0
    return spec


def test_status_at_80_columns_leaves_out_columns_and_cuts_no_cell(cli, pushed, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("slo", "status", "--spec", pushed, "--at", AT)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert all(len(x) <= 80 for x in lines), [x for x in lines if len(x) > 80]
    header = lines[1].split()
    assert header[0] == "SLO" and "state" in header and "used" in header and "SLI" in header
    assert "window" not in header and "alerts" not in header
    rows = {x.split()[0]: x for x in lines[2:5]}
    # every SLO's name and state in full, on one line each
    assert set(rows) == {"checkout-success", "api-latency", "search-freshness"}
    assert rows["checkout-success"].rstrip().endswith(" ok") and "99.000%" in rows["checkout-success"]
    assert rows["api-latency"].rstrip().endswith("no_data")
    assert any(x.startswith("(") and "left out at 80 columns" in x and "window" in x for x in lines)
    assert not BOX & set(r.out) and not ANSI.search(r.out)


def test_a_long_slo_name_is_never_cut(cli, tmp_path, monkeypatch):
    spec = tmp_path / "vigil.yaml"
    spec.write_text(CONTRACT_SPEC.replace("name: checkout-success", f"name: {LONG}"))
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson([{"ts": "2026-11-20T11:00:00Z", "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 5}]))
    assert cli("push", f, "--spec", spec, now=AT).code == 0
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("slo", "status", "--spec", spec, "--at", AT)
    row = next(x for x in r.out.splitlines() if x.startswith(LONG))
    assert len(row) <= 80 and row.rstrip().endswith("ok")


def test_piped_output_without_columns_is_plain_and_has_every_column(pushed):
    """A real subprocess writing into a pipe: no colour codes, no box drawing, the full table."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "VIGIL_NOW", "VIGIL_DB", "VIGIL_SPEC")}
    p = subprocess.run(
        [sys.executable, "-m", "vigil", "slo", "status", "--spec", str(pushed), "--at", AT],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert not ANSI.search(p.stdout) and not BOX & set(p.stdout)
    header = p.stdout.splitlines()[1]
    for col in ("SLO", "service", "objective", "window", "SLI", "used", "left", "elapsed", "burn 1h", "burn 6h", "exhausts in", "alerts", "state"):
        assert col in header
    assert "left out" not in p.stdout
    env["COLUMNS"] = "80"
    p = subprocess.run(
        [sys.executable, "-m", "vigil", "slo", "status", "--spec", str(pushed), "--at", AT],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert p.returncode == 0 and all(len(x) <= 80 for x in p.stdout.splitlines())


def test_on_a_terminal_the_state_is_coloured_and_the_table_fits(pushed):
    import pty

    env = {k: v for k, v in os.environ.items() if k not in ("VIGIL_NOW", "VIGIL_DB", "VIGIL_SPEC", "NO_COLOR")}
    env["COLUMNS"] = "80"
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "vigil", "slo", "status", "--spec", str(pushed), "--at", AT],
            stdout=slave, stderr=subprocess.PIPE, env=env,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        assert p.wait(timeout=120) == 0
    finally:
        os.close(master)
    out = b"".join(chunks).decode()
    assert ANSI.search(out)  # the state is coloured on a terminal
    plain = ANSI.sub("", out).replace("\r", "")
    assert all(len(x) <= 80 for x in plain.splitlines()) and not BOX & set(plain)


def test_status_shows_the_coverage(cli, pushed):
    r = cli("slo", "status", "--spec", pushed, "--at", AT, "--json")
    d = {s["name"]: s for s in r.json()["slos"]}
    cov = d["checkout-success"]["coverage"]
    assert cov == {
        "since": "2026-11-20T10:00:00Z",
        "from": "first_sample",
        "fraction": 120 / 43200,
        "complete": False,
        "first_sample": "2026-11-20T10:00:00Z",
    }
    assert d["api-latency"]["coverage"]["from"] == "none"
    r = cli("slo", "status", "--spec", pushed, "--at", AT)
    row = next(x for x in r.out.splitlines() if x.startswith("checkout-success"))
    assert "0.3%*" in row
    assert "* checkout-success: counted from its first sample, 2026-11-20T10:00:00Z" in r.out
