"""Fail-closed leftovers of the hostile pass (issue 12): each test is an observed defect, written
to fail before its fix."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otlp_helpers import CLIENT, live, post, sid, span, span_rows, tid, trace_request
from vigil import exitcodes
from vigil.clock import FakeClock, SystemClock
from vigil.store import open_store

ROOT = Path(__file__).resolve().parent.parent

# == OTLP retention under VIGIL_NOW =====================================================================


def test_otlp_receiver_on_a_pinned_clock_deletes_no_real_trace(tmp_path):
    """Observed: the OTLP receiver purged traces and streams by the server's clock at its first export,
    so a server pinned a year ahead (VIGIL_NOW: a demo, a replay pointed at the real store) deleted
    every real trace. `vigil serve`'s retention pass is off under VIGIL_NOW; the receiver's is too."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        now = datetime.now(timezone.utc)
        spec = "\n".join(["version: 1", "services: {api: {}}", "slos: []", "telemetry:", "  traces: {retention: 2h, max_spans: 1000}"])
        with live(store, SystemClock(), spec=spec) as srv:  # real traffic, at the real clock
            real = [span(1, 1, start=now - timedelta(minutes=1), kind=CLIENT)]
            assert post(srv.url, "/v1/traces", trace_request([("api", real)]).SerializeToString()).status_code == 200
        assert (tid(1).hex(), sid(1).hex()) in span_rows(store)
        ahead = now + timedelta(days=365)
        with live(store, FakeClock(ahead), spec=spec) as srv:  # the same store, served pinned a year ahead
            replay = [span(2, 2, start=ahead - timedelta(minutes=1), kind=CLIENT)]
            assert post(srv.url, "/v1/traces", trace_request([("api", replay)]).SerializeToString()).status_code == 200
        kept = span_rows(store)
        assert (tid(1).hex(), sid(1).hex()) in kept, "a pinned server deleted a real trace"
        assert (tid(2).hex(), sid(2).hex()) in kept
    finally:
        store.close()


# == drill run and backup run under VIGIL_NOW ===========================================================


PLATFORM = ROOT / "examples" / "platform" / "vigil.yaml"


@pytest.mark.parametrize("args", [("drill", "run", "quarterly-region-loss"), ("backup", "run", "--type", "full")],
                         ids=["drill-run", "backup-run"])
def test_drill_and_backup_runs_are_refused_on_a_pinned_clock(tmp_path, cli, args):
    """Observed: `vigil backup run` under VIGIL_NOW ran pgBackRest and recorded the backup at the
    pinned time, evidence the gate and the DR reports read (a backup a year ahead is 'fresh' for a
    year). A drill run and a backup run are refused up front (exit 2, nothing run, nothing recorded),
    as a migration verdict for the gate is."""
    spec = tmp_path / "vigil.yaml"
    shutil.copy(PLATFORM, spec)
    db = tmp_path / "state.db"
    r = cli(*args, "--spec", spec, "--db", f"sqlite:///{db}", "--json", now="2027-12-01T00:00:00Z")
    assert r.code == exitcodes.USAGE, r.out + r.err
    assert "VIGIL_NOW" in r.out + r.err and "Traceback" not in r.out + r.err
    assert not db.exists()  # nothing recorded: the store is not even opened
