"""Hostile pass over the evidence (issue 14): what an outside tester would try next on migration
lint, canary verdicts and drills. Each test here failed before its fix, or is kept as a guard for an
attack that held (the docstring says which).
"""

from __future__ import annotations

import pytest

from vigil.deploy.migrations.lint import LintConfig, lint_sql
from vigil.deploy.migrations.rules import RULES

TIMEOUTS = "SET lock_timeout = '1s';\nSET statement_timeout = '1min';\n"


def _rules(sql: str) -> dict[str, str]:
    return {f.rule: f.severity for f in lint_sql(TIMEOUTS + sql, "m.sql", LintConfig()).findings}


# -- migration lint: statements that rewrite or scan a live table and passed with no finding ----------------


@pytest.mark.parametrize("sql", [
    "ALTER TABLE accounts SET TABLESPACE slow_disks;",
    "ALTER TABLE accounts SET LOGGED;",
    "ALTER TABLE accounts SET UNLOGGED;",
    "ALTER TABLE accounts SET ACCESS METHOD heap2;",
])
def test_an_alter_table_that_rewrites_the_table_is_an_error(sql):
    """Each rewrites the whole table (and its indexes) under ACCESS EXCLUSIVE: no reads or writes
    until it ends. Lint said nothing and exited 0 (found by the hostile pass)."""
    got = _rules(sql)
    assert got.get("table-rewrite") == "error", got
    # a table created in the same file has no rows and no readers yet: nothing to report
    assert "table-rewrite" not in _rules("CREATE TABLE accounts (id bigint);\n" + sql)


def test_refreshing_a_materialized_view_without_concurrently_is_a_warning():
    """REFRESH MATERIALIZED VIEW takes ACCESS EXCLUSIVE on the view for the whole query: every read of
    the view waits. squawk has no rule either; vigil said 'data-dependent' and nothing else."""
    got = _rules("REFRESH MATERIALIZED VIEW monthly_totals;")
    assert got.get("refresh-matview-not-concurrent") == "warning", got
    assert "missing-lock-timeout" not in got  # the timeouts were set
    assert "refresh-matview-not-concurrent" not in _rules("REFRESH MATERIALIZED VIEW CONCURRENTLY monthly_totals;")
    # without timeouts, the lock is a lock
    bare = {f.rule for f in lint_sql("REFRESH MATERIALIZED VIEW monthly_totals;", "m.sql", LintConfig()).findings}
    assert "missing-lock-timeout" in bare


def test_domain_constraints_squawk_bans_are_caught():
    """squawk's ban-alter-domain-with-add-constraint and ban-create-domain-with-constraint: vigil had
    neither. ALTER DOMAIN ... ADD CONSTRAINT checks every column of every table using the domain
    (a scan under lock); with NOT VALID it does not, but the constraint still cannot be changed online."""
    got = _rules("ALTER DOMAIN positive_int ADD CONSTRAINT pos CHECK (VALUE > 0);")
    assert got.get("alter-domain-add-constraint") == "error", got
    nv = _rules("ALTER DOMAIN positive_int ADD CONSTRAINT pos CHECK (VALUE > 0) NOT VALID;")
    assert nv.get("alter-domain-add-constraint") == "warning", nv
    assert "alter-domain-add-constraint" not in _rules("ALTER DOMAIN positive_int DROP CONSTRAINT pos;")
    cd = _rules("CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);")
    assert cd.get("create-domain-with-constraint") == "warning", cd
    assert "create-domain-with-constraint" not in _rules("CREATE DOMAIN plain_int AS int;")
    for rule in ("table-rewrite", "refresh-matview-not-concurrent", "alter-domain-add-constraint", "create-domain-with-constraint"):
        assert rule in RULES and RULES[rule].why and RULES[rule].fix


# -- canary: inconsistent counts are not evidence ------------------------------------------------------------


def _canary_spec():
    from canary_helpers import spec_text
    from vigil.spec import parse_spec

    return parse_spec(spec_text()).canary


@pytest.mark.parametrize("counts", [(5000, 1000, 0, 1000), (0, 1000, 1500, 1000), (1001, 1000, 1001, 1000)])
def test_more_bad_events_than_total_is_inconclusive_not_a_pass(counts):
    """A ratio metric's bad and total selectors are independent (two counters, a scrape gap on one):
    the baseline counted 5000 errors of 1000 requests. The judge clamped it to 100% and passed the
    canary ('canary 0/1000 (0%) vs baseline 5000/1000 (100%)'): evidence that contradicts itself
    must be a visible no, never a pass."""
    from fractions import Fraction

    from vigil.deploy.canary.judge import DistributionSamples, RatioSamples, judge

    same = DistributionSamples.of({Fraction(1, 10): 500}, {Fraction(1, 10): 500})
    v = judge(_canary_spec(), {"latency": same, "errors": RatioSamples(*counts)})
    err = v.metrics[1]
    assert v.verdict != "pass" and err.classification == "Inconclusive", (v.verdict, err.classification, err.reason)
    assert "more bad events than total" in err.reason
    side = "baseline" if counts[0] > counts[1] else "canary"
    assert side in err.reason
    # consistent counts are still judged
    ok = judge(_canary_spec(), {"latency": same, "errors": RatioSamples(0, 1000, 0, 1000)})
    assert ok.verdict == "pass"


def _pushed_canary(tmp_path, cli):
    """Ten minutes of like-for-like traffic (100 requests a minute a side, 101-125 ms) through `vigil push`."""
    import json
    import random

    from canary_helpers import spec_text

    spec = tmp_path / "vigil.yaml"
    spec.write_text(spec_text())
    db = f"sqlite:///{tmp_path / 'state.db'}"
    rng = random.Random(14)
    rows = []
    for version in ("v1", "v2"):
        for minute in range(10):
            for k in range(100):
                ts = f"2026-11-20T12:{minute:02d}:{k % 60:02d}Z"
                labels = {"service": "api", "version": version}
                rows.append({"ts": ts, "metric": "http_request_duration_seconds", "labels": labels, "observe": round(rng.uniform(0.101, 0.125), 6)})
                rows.append({"ts": ts, "metric": "http_requests", "labels": {**labels, "code": "200"}, "inc": 1})
    data = tmp_path / "push.ndjson"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = cli("push", data, "--spec", spec, "--db", db, now="2026-11-20T12:10:30Z")
    assert r.code == 0, r.err
    return spec, db


def test_a_window_that_ends_after_now_is_refused_not_judged(tmp_path, cli):
    """`canary judge --to` an hour ahead of the clock judged the ten minutes that exist and recorded
    a PASS for 12:00-13:10 at 12:10: a verdict for time nobody has observed yet (the canary may
    break at 12:30). The window must have ended; nothing is recorded."""
    spec, db = _pushed_canary(tmp_path, cli)
    args = ("canary", "judge", "--baseline", 'version="v1"', "--canary", 'version="v2"', "--from", "2026-11-20T12:00:00Z",
            "--spec", spec, "--db", db, "--json")
    r = cli(*args, "--to", "2026-11-20T13:10:00Z", now="2026-11-20T12:10:30Z")
    assert r.code == 2, (r.code, r.out, r.err)
    assert "after now" in r.err and "2026-11-20T13:10:00Z" in r.err
    h = cli("canary", "history", "--spec", spec, "--db", db, "--json", now="2026-11-20T12:10:30Z")
    assert h.code == 0 and "13:10" not in h.out  # nothing recorded
    # a window that has ended is judged (and the like-for-like canary passes)
    ok = cli(*args, "--to", "2026-11-20T12:10:00Z", now="2026-11-20T12:10:30Z")
    assert ok.code == 0 and ok.json()["verdict"] == "pass", ok.out
    dflt = cli(*args, now="2026-11-20T12:10:30Z")  # --to now
    assert dflt.code == 0, dflt.err


# -- WAL continuity across a timeline switch ------------------------------------------------------------------

# a failover at 0/8800000 (inside segment 8): the old primary had archived 9 and A on timeline 1
# before it was fenced; the new primary archives 8, 9, A, B on timeline 2, but its 9 is missing
SWITCHED = ["000000010000000000000007", "000000010000000000000008", "000000010000000000000009", "00000001000000000000000A",
            "000000020000000000000008", "00000002000000000000000A", "00000002000000000000000B", "00000002.history"]
HISTORY_2 = "1\t0/8800000\tno recovery target specified\n"


def test_a_gap_on_the_new_timeline_is_not_hidden_by_the_old_timelines_segments():
    """The union of segment numbers over timelines took timeline 1's segment 9 (written by the old
    primary after the switch, not part of timeline 2's history) for timeline 2's missing one: 'ok, no
    gap', while a restore following timeline 2 stops at its segment 8. With the newest timeline's
    history, every segment number is owned by exactly one timeline."""
    from vigil.dr.postgres.wal import check_continuity

    w = check_continuity(SWITCHED, start="000000010000000000000007", history=HISTORY_2)
    assert not w.ok and [str(g) for g in w.gaps] == ["1 segment(s) missing between 000000020000000000000008 and 00000002000000000000000A"]
    assert w.last == "00000002000000000000000B" and w.timelines == [1, 2]
    # complete: timeline 1 up to the switch segment, timeline 2 from it
    full = SWITCHED[:4] + ["000000020000000000000009"] + SWITCHED[4:]
    assert check_continuity(full, start="000000010000000000000007", history=HISTORY_2).ok
    # the switch segment is read from the new timeline (PostgreSQL tries it first; it holds the
    # switch): timeline 1's copy is not needed, timeline 2's is
    assert check_continuity([n for n in full if n != "000000010000000000000008"], start="000000010000000000000007",
                            history=HISTORY_2).ok
    assert not check_continuity([n for n in full if n != "000000020000000000000008"], start="000000010000000000000007",
                                history=HISTORY_2).ok
    # without a history the check says it cannot tell, instead of taking the union for proof
    blind = check_continuity(SWITCHED, start="000000010000000000000007")
    assert not blind.ok and any("history" in p for p in blind.problems)
    # one timeline needs no history
    assert check_continuity(SWITCHED[:4], start="000000010000000000000007").ok
