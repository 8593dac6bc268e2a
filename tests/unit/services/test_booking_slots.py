"""Time-slot booking: capacity per weekday and holiday (versioned), no overbooking under
concurrent requests on SQLite and PostgreSQL, reminders in the outbox, no-shows."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from projections.eventtime import STATION_TZ, station_today
from services import booking
from services import booking_slots as slots
from services.station import Station
from services.users import UserStore
from signing.errors import InputError
from tests.workflow import make_id

BIRTH = date(1990, 3, 4)


def next_weekday(weekday: int, after: int = 1) -> date:
    day = station_today() + timedelta(days=after)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def schedule(version: str, capacity: int = 2, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": version,
        "effective_from": "2020-01-01",
        "weekdays": {d: {"09:00": capacity, "14:00": 1} for d in slots.WEEKDAYS},
        "holidays": {},
    }
    body.update(kw)
    return body


def book(
    station: Station, store: UserStore, day: date, slot: str, sequence: int = 1
) -> booking.Appointment:
    command = booking.BookAppointment(
        "wechat", "resident_id", make_id(BIRTH, "F", sequence=sequence), "F", BIRTH, day,
        slot=slot,
    )  # fmt: skip
    return booking.book_appointment(station, store, command)


def publish(store: UserStore, body: dict[str, Any]) -> None:
    booking.publish_slot_schedule(store, booking.PublishSlotSchedule(body, "A001"))


def test_a_slot_takes_bookings_up_to_its_capacity(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1", capacity=2))
    day = next_weekday(2)
    book(station, store, day, "09:00", 1)
    book(station, store, day, "09:00", 2)
    with pytest.raises(slots.SlotFull, match="full"):
        book(station, store, day, "09:00", 3)
    [morning] = [s for s in booking.booking_calendar(store, booking.CalendarQuery(day, 1))
                 if s.start == "09:00"]  # fmt: skip
    assert (morning.capacity, morning.booked, morning.free) == (2, 2, 0)


def test_a_cancelled_booking_frees_its_place(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1", capacity=1))
    day = next_weekday(3)
    first = book(station, store, day, "09:00", 1)
    booking.cancel_appointment(store, first.appointment_id, "wechat")
    second = book(station, store, day, "09:00", 2)
    assert second.state == "booked" and second.period == "morning"


def test_a_time_outside_the_schedule_is_refused(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1"))
    with pytest.raises(InputError, match="no slot 11:00"):
        book(station, store, next_weekday(1), "11:00")


def test_a_holiday_has_its_own_slots_and_may_be_closed(station: Station) -> None:
    store = UserStore(station.settings.db)
    open_day, closed_day = next_weekday(0), next_weekday(1)
    holidays = {open_day.isoformat(): {"10:00": 1}, closed_day.isoformat(): {}}
    publish(store, schedule("t1", holidays=holidays))
    with pytest.raises(InputError, match="holiday"):
        book(station, store, open_day, "09:00")
    with pytest.raises(InputError, match="closed"):
        book(station, store, closed_day, "09:00")
    assert book(station, store, open_day, "10:00").state == "booked"
    shown = booking.booking_calendar(store, booking.CalendarQuery(open_day, 1))
    assert [(s.start, s.holiday, s.capacity) for s in shown] == [("10:00", True, 1)]


def test_a_newer_schedule_version_applies_from_its_date(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1", capacity=2))
    later = station_today() + timedelta(days=20)
    publish(store, schedule("t2", capacity=5, effective_from=later.isoformat()))
    cal = booking.booking_calendar(store, booking.CalendarQuery(later - timedelta(days=1), 2))
    morning = [(s.day, s.capacity, s.schedule_version) for s in cal if s.start == "09:00"]
    assert morning == [
        ((later - timedelta(days=1)).isoformat(), 2, "t1"),
        (later.isoformat(), 5, "t2"),
    ]
    with pytest.raises(InputError, match="exists"):
        publish(store, schedule("t2"))


def test_a_malformed_schedule_is_refused(station: Station) -> None:
    store = UserStore(station.settings.db)
    with pytest.raises(InputError, match="capacity"):
        publish(store, schedule("bad", capacity=-1))
    with pytest.raises(InputError, match="weekdays"):
        publish(store, schedule("bad", weekdays={"mon": {}}))


def test_concurrent_bookings_never_exceed_the_capacity(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1", capacity=3))
    day = next_weekday(4)
    outcomes: list[str] = []
    barrier = threading.Barrier(12)

    def one(n: int) -> None:
        barrier.wait()
        try:
            book(station, store, day, "09:00", 100 + n)
            outcomes.append("booked")
        except slots.SlotFull:
            outcomes.append("full")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["booked"] * 3 + ["full"] * 9
    with store.transaction() as run:
        rows = run(
            "SELECT count(*) FROM web_appointments a JOIN booking_appointment_slots s "
            "ON a.appointment_id = s.appointment_id WHERE s.slot_id = ? AND a.state = 'booked'",
            f"{day.isoformat()}T09:00",
        )
    assert rows[0][0] == 3
    [slot] = [s for s in booking.booking_calendar(store, booking.CalendarQuery(day, 1))
              if s.start == "09:00"]  # fmt: skip
    assert slot.booked == 3


def test_concurrent_bookings_of_one_donor_for_one_day_book_once(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1", capacity=10))
    day = next_weekday(4)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        barrier.wait()
        try:
            book(station, store, day, "09:00", 55)
            outcomes.append("booked")
        except InputError as exc:
            outcomes.append("refused" if "already has" in str(exc) else str(exc))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["booked"] + ["refused"] * 7
    [slot] = [s for s in booking.booking_calendar(store, booking.CalendarQuery(day, 1))
              if s.start == "09:00"]  # fmt: skip
    assert slot.booked == 1  # the refused requests gave their place back


def test_a_booking_queues_a_reminder_due_a_day_before(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1"))
    day = next_weekday(2, after=3)
    booked = book(station, store, day, "14:00")
    # the slot's 14:00 is station time (UTC+8)
    starts = datetime.combine(day, datetime.min.time(), STATION_TZ) + timedelta(hours=14)
    assert booking.due_reminders(store, starts - timedelta(hours=25)) == []
    [message] = booking.due_reminders(store, starts - timedelta(hours=23))
    assert message.appointment_id == booked.appointment_id
    assert message.template == "appointment_reminder"
    assert message.payload["id"] == booked.id_number_masked  # masked, never the number
    booking.mark_reminder_sent(store, message.message_id)
    assert booking.due_reminders(store, starts) == []
    with pytest.raises(InputError, match="no pending message"):
        booking.mark_reminder_sent(store, message.message_id)


def test_a_cancelled_booking_withdraws_its_reminder(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1"))
    booked = book(station, store, next_weekday(2, after=3), "14:00")
    booking.cancel_appointment(store, booked.appointment_id, "wechat")
    assert booking.due_reminders(store, datetime.now(UTC) + timedelta(days=30)) == []


def test_a_no_show_is_recorded_for_a_past_appointment_only(station: Station) -> None:
    store = UserStore(station.settings.db)
    publish(store, schedule("t1"))
    day = next_weekday(2)
    booked = book(station, store, day, "09:00")
    command = booking.RecordNoShow(booked.appointment_id, "C001")
    with pytest.raises(InputError, match="not yet missed"):
        booking.record_no_show(store, command, today=day)
    assert booking.record_no_show(store, command, today=day + timedelta(days=1)) == "no_show"
    with store.transaction() as run:
        assert run(
            "SELECT recorded_by FROM booking_no_shows WHERE appointment_id = ?",
            booked.appointment_id,
        ) == [("C001",)]
    with pytest.raises(InputError, match="not booked"):
        booking.record_no_show(store, command, today=day + timedelta(days=1))
