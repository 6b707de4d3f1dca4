"""Multiwindow, multi-burn-rate alert windows as data, per SLO window length, and the typed
conditions they produce. Pure: the catalogs are JSON files shipped in ``windows_catalog/``.

A catalog lists conditions as a severity, a long and a short window, and the share of the whole
window's error budget that burning for the long window spends. The threshold is
``share x window / long window`` (the workbook's 14.4, 6, 3, 1 for 30 days, 13.44, 5.6, 2.8, 0.93...
for 28 days). ``workbook.json`` serves every window length that has no catalog of its own
(``<length>.json``, e.g. ``7d.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

CATALOG_DIR = Path(__file__).parent / "windows_catalog"


@dataclass(frozen=True)
class AlertWindow:
    """One condition of a catalog, scaled to a window: page when both windows burn faster than
    ``threshold``."""

    name: str
    severity: str
    long: str
    long_seconds: int
    short: str
    short_seconds: int
    budget_share: Decimal
    threshold: Decimal


@dataclass(frozen=True)
class BurnCondition:
    """An alert window evaluated: the two burn rates and whether the condition holds."""

    window: AlertWindow
    long_burn_rate: Decimal | None
    short_burn_rate: Decimal | None

    @property
    def name(self) -> str:
        return self.window.name

    @property
    def severity(self) -> str:
        return self.window.severity

    @property
    def threshold(self) -> Decimal:
        return self.window.threshold

    @property
    def holds(self) -> bool:
        """Both windows burn strictly faster than the threshold (the workbook's rule)."""
        t = self.window.threshold
        return (
            self.long_burn_rate is not None
            and self.short_burn_rate is not None
            and self.long_burn_rate > t
            and self.short_burn_rate > t
        )

    def to_dict(self) -> dict:
        def num(d: Decimal | None) -> float | None:
            return None if d is None else float(d)

        return {
            "name": self.name,
            "severity": self.severity,
            "long_window": self.window.long,
            "short_window": self.window.short,
            "threshold": float(self.threshold),
            "long_burn_rate": num(self.long_burn_rate),
            "short_burn_rate": num(self.short_burn_rate),
            "holds": self.holds,
        }


def _seconds(text: str) -> int:
    from vigil.units import parse_duration

    return int(parse_duration(text))


@lru_cache(maxsize=None)
def _catalog(name: str) -> tuple[tuple[str, str, str, Decimal, str | None], ...]:
    data = json.loads((CATALOG_DIR / name).read_text())
    return tuple(
        (c["severity"], c["long"], c["short"], Decimal(c["budget_share"]), c.get("name")) for c in data["conditions"]
    )


@lru_cache(maxsize=None)
def _lengths() -> dict[int, str]:
    out: dict[int, str] = {}
    for p in CATALOG_DIR.glob("*.json"):
        if p.name != "workbook.json":
            out[_seconds(json.loads(p.read_text())["window"])] = p.name
    return out


def catalog_for(window_seconds: int | Decimal) -> str:
    """The catalog file serving a window length."""
    return _lengths().get(int(window_seconds), "workbook.json")


def alert_windows(window_seconds: int | Decimal) -> list[AlertWindow]:
    """The conditions for an SLO window of ``window_seconds``, thresholds scaled to it."""
    w = Decimal(int(window_seconds))
    out = []
    for sev, long, short, share, name in _catalog(catalog_for(window_seconds)):
        ls, ss = _seconds(long), _seconds(short)
        out.append(AlertWindow(name or f"{sev}-{long}", sev, long, ls, short, ss, share, share * w / Decimal(ls)))
    return out


def burn_windows() -> list[tuple[str, int]]:
    """Every long and short window of every catalog, (name, minutes), shortest first: the burn
    rates an evaluation computes for each SLO."""
    names: set[str] = set()
    for p in CATALOG_DIR.glob("*.json"):
        for _sev, long, short, _share, _n in _catalog(p.name):
            names.update((long, short))
    return sorted(((n, _seconds(n) // 60) for n in names), key=lambda x: x[1])


def conditions(window_seconds: int | Decimal, rates: dict[str, Decimal | None]) -> list[BurnCondition]:
    """Evaluate the conditions for a window against burn rates by window name."""
    return [BurnCondition(w, rates.get(w.long), rates.get(w.short)) for w in alert_windows(window_seconds)]
