"""Alert windows as data (issue 7): the catalogs, their scaling, and the typed conditions."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from vigil.slo import alert_windows
from vigil.slo.evaluate import BURN_WINDOWS

DAY = 86400


def test_every_catalog_is_well_formed():
    files = sorted(alert_windows.CATALOG_DIR.glob("*.json"))
    assert {p.name for p in files} >= {"workbook.json", "30d.json", "28d.json"}
    for p in files:
        data = json.loads(p.read_text())
        assert data["description"]
        names = set()
        for c in data["conditions"]:
            assert c["severity"] in ("page", "ticket")
            assert alert_windows._seconds(c["long"]) > alert_windows._seconds(c["short"]) > 0
            assert D(0) < D(c["budget_share"]) <= 1
            names.add(c.get("name") or f"{c['severity']}-{c['long']}")
        assert len(names) == len(data["conditions"]), p.name


@pytest.mark.parametrize(
    "days, expected",
    [
        (30, {"page-1h": D("14.4"), "page-6h": D(6), "ticket-1d": D(3), "ticket-3d": D(1)}),
        (28, {"page-1h": D("13.44"), "page-6h": D("5.6"), "ticket-1d": D("2.8"), "ticket-3d": D("28") / 30}),
        (7, {"page-1h": D("3.36"), "page-6h": D("1.4"), "ticket-1d": D("0.7"), "ticket-3d": D("7") / 30}),
    ],
)
def test_thresholds_are_the_budget_share_scaled_to_the_window(days, expected):
    got = {w.name: w.threshold for w in alert_windows.alert_windows(days * DAY)}
    assert got == expected


def test_the_reported_burn_windows_are_every_catalog_window():
    assert BURN_WINDOWS == (("5m", 5), ("30m", 30), ("1h", 60), ("2h", 120), ("6h", 360), ("1d", 1440), ("3d", 4320))
    names = {n for n, _ in BURN_WINDOWS}
    for days in (7, 28, 30, 90):
        for w in alert_windows.alert_windows(days * DAY):
            assert w.long in names and w.short in names


def test_a_condition_holds_only_when_both_windows_burn_strictly_faster():
    [page] = [w for w in alert_windows.alert_windows(30 * DAY) if w.name == "page-1h"]
    assert alert_windows.BurnCondition(page, D("14.5"), D(20)).holds
    assert not alert_windows.BurnCondition(page, D("14.4"), D(20)).holds
    assert not alert_windows.BurnCondition(page, D(20), D(1)).holds
    assert not alert_windows.BurnCondition(page, None, D(20)).holds
    d = alert_windows.BurnCondition(page, D("14.5"), D(20)).to_dict()
    assert d == {"name": "page-1h", "severity": "page", "long_window": "1h", "short_window": "5m",
                 "threshold": 14.4, "long_burn_rate": 14.5, "short_burn_rate": 20.0, "holds": True}
    cs = alert_windows.conditions(30 * DAY, {"1h": D(15), "5m": D(15), "6h": D(7), "30m": D(1)})
    assert [c.name for c in cs if c.holds] == ["page-1h"]
