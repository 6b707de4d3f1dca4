"""Error-budget arithmetic of the SRE workbook. Pure functions over integers and Decimals.

No I/O, no clock, no floats: every figure a user compares with a calculator is exact.
"""

from __future__ import annotations

from decimal import Decimal

from vigil.slo.alert_windows import AlertWindow, alert_windows

ZERO = Decimal(0)
ONE = Decimal(1)


def budget_fraction(objective: Decimal) -> Decimal:
    """The share of events allowed to be bad: 1 - objective (0.001 for 99.9%)."""
    return ONE - objective


def error_budget_seconds(window_seconds: Decimal | int, objective: Decimal) -> Decimal:
    """The budget as time at full outage: a 99.9% / 30d window allows 2592 s = 43.2 minutes."""
    return Decimal(window_seconds) * budget_fraction(objective)


def error_ratio(bad: int, valid: int) -> Decimal | None:
    """bad / valid, or None when nothing valid happened (never NaN)."""
    if valid <= 0:
        return None
    return Decimal(bad) / Decimal(valid)


def burn_rate(bad: int, valid: int, objective: Decimal) -> Decimal | None:
    """How fast the budget burns: error ratio / budget fraction. 1 spends exactly the budget in a window."""
    r = error_ratio(bad, valid)
    if r is None:
        return None
    return r / budget_fraction(objective)


def budget_consumed(bad: int, valid: int, objective: Decimal, elapsed_fraction: Decimal = ONE) -> Decimal | None:
    """The fraction of the whole window's budget consumed so far.

    The allowed bad events for the whole window are projected from the valid events of the elapsed
    part: ``allowed = (1 - objective) * valid / elapsed_fraction``. So consumed equals the burn rate
    so far times the fraction of the window elapsed. The window counts from the later of its start
    and the SLO's coverage (:func:`elapsed_fraction`): a rolling window is fully elapsed once its
    data reaches back over the whole window.
    """
    b = burn_rate(bad, valid, objective)
    if b is None:
        return None
    return b * elapsed_fraction


def elapsed_fraction(covered_minutes: int, window_minutes: int) -> Decimal:
    """The share of a window counted so far: minutes from the later of the window's start and the
    SLO's coverage (first sample or ``since:``) up to now, over the window's length. 3 days of data
    in a rolling 30d window is 0.1."""
    if window_minutes <= 0:
        raise ValueError("a window has a positive length")
    return Decimal(max(0, min(covered_minutes, window_minutes))) / Decimal(window_minutes)


def allowed_bad(valid: int, objective: Decimal, elapsed_fraction: Decimal = ONE) -> Decimal | None:
    """Bad events the whole window may have, projected from the valid events so far."""
    if valid <= 0 or elapsed_fraction <= 0:
        return None
    return budget_fraction(objective) * Decimal(valid) / elapsed_fraction


def time_to_exhaustion(remaining: Decimal | None, window_seconds: Decimal | int, burn: Decimal | None) -> Decimal | None:
    """Seconds until the remaining budget is gone at burn rate ``burn``.

    With a full budget (remaining = 1) this is window / burn rate. None when nothing burns;
    0 when the budget is already gone.
    """
    if remaining is None or burn is None:
        return None
    if remaining <= 0:
        return ZERO
    if burn <= 0:
        return None
    return remaining * Decimal(window_seconds) / burn


def detection_time(error_ratio_: Decimal, objective: Decimal, long_window_seconds: Decimal | int, threshold: Decimal) -> Decimal | None:
    """Seconds after an error ratio starts until the long window's burn rate reaches ``threshold``.

    A full outage (ratio 1) against 99.9% and the 1h / 14.4 rule: 14.4 * 0.001 * 3600 = 51.84 s.
    None when the ratio can never reach the threshold.
    """
    if error_ratio_ <= 0:
        return None
    t = threshold * budget_fraction(objective) * Decimal(long_window_seconds) / error_ratio_
    return t if t <= Decimal(long_window_seconds) else None


def mwmb_windows(window_seconds: Decimal | int) -> list[AlertWindow]:
    """The multiwindow, multi-burn-rate conditions for a window, thresholds scaled to it (budget
    share x window / long window: 14.4, 6, 3, 1 for 30 days). The windows and shares are data, per
    window length: :mod:`vigil.slo.alert_windows`."""
    return alert_windows(window_seconds)


def condition_holds(threshold: Decimal, long_burn: Decimal | None, short_burn: Decimal | None) -> bool:
    """Both windows burn faster than the threshold (strictly, as in the workbook's rules)."""
    return long_burn is not None and short_burn is not None and long_burn > threshold and short_burn > threshold
