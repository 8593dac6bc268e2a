"""Next eligible dates by product, from the intervals and yearly caps of GB 18467-2011."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ledger.rules import load_rule_set
from projections.donor_record import EligibilityLimits, next_eligible

LIMITS = EligibilityLimits.from_rule_set(load_rule_set())


def _visit(day: date, volume: int = 250, plasma: int = 0, product: str = "platelets_single") -> Any:
    return {
        "collected_on": day.isoformat(),
        "product_volume_ml": volume,
        "plasma_ml": plasma,
        "product": product,
    }


def test_limits_come_from_the_rule_set() -> None:
    assert LIMITS.rule_set == "gb18467-2011@1"
    assert LIMITS.platelets_after_platelets_days == 14
    assert LIMITS.whole_blood_after_platelets_days == 28
    assert LIMITS.platelet_donations_per_window == 24
    assert LIMITS.volume_per_window_ml == 10_000


def test_no_collection_no_restriction() -> None:
    dates = next_eligible([{"collected_on": None}], LIMITS)
    assert all(entry == {"date": None, "rule": None} for entry in dates.values())


def test_intervals_after_one_platelet_collection() -> None:
    dates = next_eligible([_visit(date(2026, 3, 10))], LIMITS)
    for product in ("platelets_single", "platelets_double", "platelets_plasma"):
        assert dates[product] == {
            "date": "2026-03-24",
            "rule": "interval.platelets_to_platelets.min",
        }
    assert dates["whole_blood"] == {
        "date": "2026-04-07",
        "rule": "interval.platelets_to_whole_blood.min",
    }
    assert dates["plasma"] == {"date": None, "rule": None}  # only the volume cap applies


def test_the_24th_most_recent_collection_must_leave_the_365_day_window() -> None:
    start = date(2025, 4, 1)
    visits = [_visit(start + timedelta(days=14 * i), volume=100) for i in range(24)]
    last = start + timedelta(days=14 * 23)
    dates = next_eligible(visits, LIMITS)
    # The oldest of the 24 (start) leaves the window 366 days later: 2026-04-02, later than
    # the 14-day interval after the last one.
    assert start + timedelta(days=366) > last + timedelta(days=14)
    assert dates["platelets_single"] == {
        "date": "2026-04-02",
        "rule": "cap.platelet_donations_365d.max",
    }


def test_yearly_volume_cap_counts_the_planned_donation() -> None:
    # 19 x 500 ml + 250 ml planned = 9,750 ml: allowed at once (after the interval).
    nineteen = [_visit(date(2026, 1, 1) + timedelta(days=14 * i), volume=500) for i in range(19)]
    dates = next_eligible(nineteen, LIMITS)
    assert dates["platelets_single"]["rule"] == "interval.platelets_to_platelets.min"
    # A 20th brings the window to 10,000 ml; with 250 ml planned, the oldest must leave.
    twenty = [*nineteen, _visit(date(2026, 9, 24), volume=500)]
    dates = next_eligible(twenty, LIMITS)
    assert dates["platelets_single"] == {
        "date": "2027-01-02",
        "rule": "cap.apheresis_volume_365d.max",
    }
    # Platelets with plasma plans 450 ml: the oldest must leave as well (9,500 + 450 <= 10,000).
    assert dates["platelets_plasma"]["date"] == "2027-01-02"
    assert dates["plasma"] == {"date": "2027-01-02", "rule": "cap.apheresis_volume_365d.max"}


def test_plasma_counts_towards_the_volume_cap() -> None:
    visits = [
        _visit(date(2026, 1, 1) + timedelta(days=14 * i), volume=300, plasma=200) for i in range(19)
    ]  # 19 x 500 ml
    visits.append(_visit(date(2026, 9, 24), volume=250, plasma=250))
    dates = next_eligible(visits, LIMITS)
    assert dates["platelets_single"]["rule"] == "cap.apheresis_volume_365d.max"
