"""Booking reports: appointment share, collections per open day (workdays and holidays), and
the load by hour (booked places and collections)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from eventsourcing.utils import get_topic

from ledger.donation import Donation
from projections.eventtime import STATION_TZ, station_date, station_start
from services import booking, booking_slots
from services.station import Station
from services.users import UserStore
from signing.errors import InputError


@dataclass(frozen=True)
class BookingReportQuery:
    start: date
    end: date  # inclusive


@dataclass(frozen=True)
class BookingReport:
    start: str
    end: str
    registrations: int
    booked_registrations: int
    #: registrations that came with an appointment / registrations (None without any).
    appointment_share: float | None
    open_workdays: int
    open_holidays: int  # weekend days and holidays with slots in the schedule
    collections_on_workdays: int
    collections_on_holidays: int
    per_open_workday: float | None
    per_open_holiday: float | None
    #: hour (00..23, station time UTC+8) -> places booked in slots starting that hour /
    #: collections started that hour.
    booked_by_hour: dict[str, int]
    collections_by_hour: dict[str, int]


def _events(station: Station, cls: type) -> Iterator[Any]:
    recorder: Any = station.app.recorder
    start = 1
    while True:
        notes = recorder.select_notifications(start, 500, topics=[get_topic(cls)])
        if not notes:
            return
        for note in notes:
            yield station.app.mapper.to_domain_event(note)
        start = notes[-1].id + 1


def booking_report(station: Station, store: UserStore, query: BookingReportQuery) -> BookingReport:
    if query.end < query.start:
        raise InputError(f"the period ends ({query.end}) before it starts ({query.start})")
    if (query.end - query.start).days > 366:
        raise InputError("the booking report covers at most 367 days")
    # station days and hours (UTC+8), as the slots are: collections were counted by UTC hour,
    # eight hours off the slots they were booked into
    first = station_start(query.start)
    after = station_start(query.end + timedelta(days=1))
    registrations = booked = 0
    for e in _events(station, Donation.DonorRegistered):
        if first <= e.timestamp < after:
            registrations += 1
            booked += 1 if e.appointment_id else 0
    days = [query.start + timedelta(days=n) for n in range((query.end - query.start).days + 1)]
    booking.ensure_tables(store)
    with store.transaction() as run:
        kinds = {}
        for day in days:
            holiday, slots = booking_slots.slots_of(booking_slots.schedule_for(run, day), day)
            if slots:
                kinds[day] = "holiday" if holiday or day.weekday() >= 5 else "workday"
        placed = run(
            "SELECT start, booked FROM booking_slots WHERE day >= ? AND day <= ?",
            query.start.isoformat(),
            query.end.isoformat(),
        )
    booked_by_hour: Counter[str] = Counter()
    for start, count in placed:
        booked_by_hour[str(start)[:2]] += int(count)
    by_kind: Counter[str] = Counter()
    by_hour: Counter[str] = Counter()
    for e in _events(station, Donation.ApheresisCollected):
        if first <= e.timestamp < after:
            started = datetime.fromisoformat(str(e.started_at))
            by_hour[f"{started.astimezone(STATION_TZ).hour:02d}"] += 1
            day = station_date(e.timestamp)
            by_kind[kinds.get(day, "holiday" if day.weekday() >= 5 else "workday")] += 1
    workdays = sum(1 for k in kinds.values() if k == "workday")
    holidays = sum(1 for k in kinds.values() if k == "holiday")
    return BookingReport(
        query.start.isoformat(), query.end.isoformat(), registrations, booked,
        round(booked / registrations, 4) if registrations else None, workdays, holidays,
        by_kind["workday"], by_kind["holiday"],
        round(by_kind["workday"] / workdays, 2) if workdays else None,
        round(by_kind["holiday"] / holidays, 2) if holidays else None,
        dict(sorted(booked_by_hour.items())), dict(sorted(by_hour.items())),
    )  # fmt: skip
