"""services.booking_report: appointment share, collections per open day, load by hour."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from projections.eventtime import STATION_TZ, station_today
from services.booking_report import BookingReportQuery, booking_report
from services.station import Station
from services.steps import RegisterDonation, register_donation
from services.users import UserStore
from signing.errors import InputError
from tests.unit.services.test_booking_slots import book, publish, schedule
from tests.unit.services.test_steps import registered, through_collection
from tests.workflow import make_id

BIRTH = date(1985, 3, 4)


def test_the_share_of_registrations_with_an_appointment(sqlite_station: Station) -> None:
    store = UserStore(sqlite_station.settings.db)
    registered(sqlite_station, sequence=7)  # a walk-in
    number = make_id(BIRTH, "F", sequence=8)
    command = RegisterDonation(
        "C001",
        "resident_id",
        number,
        "王五",
        "F",
        BIRTH,
        "13800000000",
        "plasma",
        appointment_id="APT-1",
    )
    register_donation(sqlite_station, command)
    today = station_today()
    report = booking_report(sqlite_station, store, BookingReportQuery(today, today))
    assert (report.registrations, report.booked_registrations) == (2, 1)
    assert report.appointment_share == 0.5


def test_collections_per_open_day_and_load_by_hour(sqlite_station: Station) -> None:
    store = UserStore(sqlite_station.settings.db)
    today = station_today()
    tomorrow = today + timedelta(days=1)
    publish(store, schedule("r1", holidays={tomorrow.isoformat(): {"10:00": 2}}))
    through_collection(sqlite_station, registered(sqlite_station, sequence=7), "9000626100071")
    book(sqlite_station, store, tomorrow, "10:00")
    report = booking_report(sqlite_station, store, BookingReportQuery(today, tomorrow))
    assert report.booked_by_hour == {"10": 1}
    # collections by the station's hour (UTC+8), as the slots: 8 hours off the UTC hour
    hour = f"{datetime.now(STATION_TZ).hour:02d}"
    assert report.collections_by_hour == {hour: 1}
    kind = "holiday" if today.weekday() >= 5 else "workday"
    assert getattr(report, f"collections_on_{kind}s") == 1
    assert report.open_holidays == 1 + (1 if today.weekday() >= 5 else 0)
    if kind == "workday":
        assert (report.open_workdays, report.per_open_workday) == (1, 1.0)


def test_a_period_that_ends_before_it_starts_is_refused(sqlite_station: Station) -> None:
    store = UserStore(sqlite_station.settings.db)
    today = station_today()
    with pytest.raises(InputError, match="before it starts"):
        booking_report(sqlite_station, store, BookingReportQuery(today, today - timedelta(1)))
