"""Time-slot booking: per-station slots with a capacity, reminders in an outbox, no-shows.

The slot schedule is versioned station data (table ``booking_schedules``): each version gives,
per weekday (0 = Monday), the slot start times (the station's civil time, UTC+8:
``projections.eventtime.STATION_TZ``) and their capacity, and per holiday date its own
slots (an empty mapping closes the station that day). The version in force for a day is the one
with the latest ``effective_from`` on or before it; before any is published the built-in
`DEFAULT_SCHEDULE` applies.

No overbooking: a booking takes a place with ONE conditional update,
``UPDATE booking_slots SET booked = booked + 1 WHERE slot_id = ? AND booked < capacity``, in the
same transaction as the appointment row. PostgreSQL re-checks the condition on the locked row
(READ COMMITTED), SQLite runs writers one at a time (``BEGIN IMMEDIATE``); either way two
requests cannot both take the last place.

Reminders are rows in ``booking_outbox`` (template, recipient reference, payload, send after):
a real SMS or WeChat template sender drains them with `due_messages` and `mark_sent`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from projections.eventtime import STATION_TZ
from signing.errors import InputError

Run = Callable[..., list[tuple[Any, ...]]]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MORNING = {"08:30": 8, "09:30": 8, "10:30": 6}
_AFTERNOON = {"13:30": 6, "14:30": 6, "15:30": 4}
DEFAULT_SCHEDULE: dict[str, Any] = {
    "version": "builtin-1",
    "effective_from": "2000-01-01",
    "weekdays": {
        **{d: {**_MORNING, **_AFTERNOON} for d in WEEKDAYS[:5]},
        "sat": dict(_MORNING),
        "sun": dict(_MORNING),
    },
    "holidays": {},
}
#: A reminder goes out this long before the slot starts.
REMIND_BEFORE = timedelta(hours=24)

TABLES = (
    """CREATE TABLE IF NOT EXISTS booking_schedules (
        version TEXT PRIMARY KEY,
        effective_from TEXT NOT NULL,
        body TEXT NOT NULL,
        published_by TEXT NOT NULL,
        published_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS booking_slots (
        slot_id TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        start TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        booked INTEGER NOT NULL,
        schedule_version TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS booking_appointment_slots (
        appointment_id TEXT PRIMARY KEY,
        slot_id TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS booking_no_shows (
        appointment_id TEXT PRIMARY KEY,
        recorded_by TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS booking_outbox (
        message_id TEXT PRIMARY KEY,
        appointment_id TEXT NOT NULL,
        template TEXT NOT NULL,
        channel TEXT NOT NULL,
        recipient_ref TEXT NOT NULL,
        payload TEXT NOT NULL,
        send_after TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at TEXT)""",
)

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class SlotFull(InputError):
    """The slot has no free place."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _check_slots(where: str, slots: Any) -> dict[str, int]:
    if not isinstance(slots, Mapping):
        raise InputError(f"{where}: slots must map HH:MM to a capacity")
    out: dict[str, int] = {}
    for start, capacity in slots.items():
        if not isinstance(start, str) or not _HHMM.match(start):
            raise InputError(f"{where}: slot start {start!r} is not HH:MM")
        if type(capacity) is not int or capacity < 0:
            raise InputError(f"{where} {start}: capacity must be a whole number >= 0")
        out[start] = capacity
    return dict(sorted(out.items()))


def check_schedule(body: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule as published: version, effective_from, weekdays (all seven), holidays."""
    version = body.get("version")
    if not isinstance(version, str) or not version.strip():
        raise InputError("schedule: a version is required")
    try:
        effective = date.fromisoformat(str(body.get("effective_from")))
    except ValueError as exc:
        raise InputError("schedule: effective_from must be a date (YYYY-MM-DD)") from exc
    weekdays = body.get("weekdays")
    if not isinstance(weekdays, Mapping) or set(weekdays) != set(WEEKDAYS):
        raise InputError(f"schedule: weekdays must name exactly {', '.join(WEEKDAYS)}")
    holidays = body.get("holidays", {})
    if not isinstance(holidays, Mapping):
        raise InputError("schedule: holidays must map dates to slots")
    checked_holidays = {}
    for day, slots in holidays.items():
        try:
            date.fromisoformat(str(day))
        except ValueError as exc:
            raise InputError(f"schedule: holiday {day!r} is not a date") from exc
        checked_holidays[str(day)] = _check_slots(f"holiday {day}", slots)
    return {
        "version": version.strip(),
        "effective_from": effective.isoformat(),
        "weekdays": {d: _check_slots(d, weekdays[d]) for d in WEEKDAYS},
        "holidays": dict(sorted(checked_holidays.items())),
    }


def ensure_tables(run: Run) -> None:
    for sql in TABLES:
        run(sql)


def publish_schedule(run: Run, body: Mapping[str, Any], by: str) -> dict[str, Any]:
    """Record a new schedule version; a version is never replaced."""
    schedule = check_schedule(body)
    if run("SELECT 1 FROM booking_schedules WHERE version = ?", schedule["version"]):
        raise InputError(f"schedule version {schedule['version']} exists; publish a new version")
    run(
        "INSERT INTO booking_schedules VALUES (?, ?, ?, ?, ?)",
        schedule["version"],
        schedule["effective_from"],
        json.dumps(schedule, sort_keys=True),
        by,
        _now(),
    )
    return schedule


def schedule_for(run: Run, day: date) -> dict[str, Any]:
    rows = run(
        "SELECT body FROM booking_schedules WHERE effective_from <= ? "
        "ORDER BY effective_from DESC, published_at DESC LIMIT 1",
        day.isoformat(),
    )
    return dict(json.loads(rows[0][0])) if rows else DEFAULT_SCHEDULE


def slots_of(schedule: Mapping[str, Any], day: date) -> tuple[bool, dict[str, int]]:
    """(is a holiday, {start: capacity}) for the day."""
    holidays = schedule.get("holidays", {})
    if day.isoformat() in holidays:
        return True, dict(holidays[day.isoformat()])
    return False, dict(schedule["weekdays"][WEEKDAYS[day.weekday()]])


def period_of(start: str) -> str:
    return "morning" if start < "12:00" else "afternoon"


def take_place(run: Run, day: date, start: str) -> str:
    """Take one place in the slot or raise `SlotFull` / `InputError`; returns the slot id."""
    schedule = schedule_for(run, day)
    holiday, slots = slots_of(schedule, day)
    if start not in slots:
        kind = "holiday" if holiday else WEEKDAYS[day.weekday()]
        offered = ", ".join(slots) or "none, closed"
        raise InputError(f"no slot {start} on {day} ({kind}; slots: {offered})")
    capacity = slots[start]
    slot_id = f"{day.isoformat()}T{start}"
    run(
        "INSERT INTO booking_slots VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (slot_id) DO NOTHING",
        slot_id,
        day.isoformat(),
        start,
        capacity,
        schedule["version"],
    )
    taken = run(
        "UPDATE booking_slots SET booked = booked + 1, capacity = ?, schedule_version = ? "
        "WHERE slot_id = ? AND booked < ? RETURNING booked",
        capacity,
        schedule["version"],
        slot_id,
        capacity,
    )
    if not taken:
        raise SlotFull(f"slot {start} on {day} is full ({capacity} places)")
    return slot_id


def link(run: Run, appointment_id: str, slot_id: str) -> None:
    run("INSERT INTO booking_appointment_slots VALUES (?, ?)", appointment_id, slot_id)


def release_place(run: Run, appointment_id: str) -> None:
    rows = run(
        "SELECT slot_id FROM booking_appointment_slots WHERE appointment_id = ?", appointment_id
    )
    if rows:
        run(
            "UPDATE booking_slots SET booked = booked - 1 WHERE slot_id = ? AND booked > 0",
            rows[0][0],
        )


def slot_of(run: Run, appointment_id: str) -> str | None:
    rows = run(
        "SELECT slot_id FROM booking_appointment_slots WHERE appointment_id = ?", appointment_id
    )
    return str(rows[0][0]) if rows else None


# -- outbox ------------------------------------------------------------------------------------


def queue_message(
    run: Run,
    appointment_id: str,
    template: str,
    channel: str,
    recipient_ref: str,
    payload: Mapping[str, Any],
    send_after: datetime,
) -> str:
    message_id = f"MSG-{secrets.token_hex(6).upper()}"
    run(
        "INSERT INTO booking_outbox VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, NULL)",
        message_id,
        appointment_id,
        template,
        channel,
        recipient_ref,
        json.dumps(dict(payload), sort_keys=True, ensure_ascii=False),
        send_after.astimezone(UTC).isoformat(),  # one offset: the outbox compares text
        _now(),
    )
    return message_id


def queue_reminder(
    run: Run, appointment_id: str, channel: str, recipient_ref: str, masked: str, slot_id: str
) -> str:
    day, start = slot_id.split("T")
    # a slot's day and start are the station's civil time (UTC+8), as its schedule reads
    starts = datetime.combine(date.fromisoformat(day), time.fromisoformat(start), STATION_TZ)
    payload = {"appointment_id": appointment_id, "day": day, "start": start, "id": masked}
    return queue_message(
        run, appointment_id, "appointment_reminder", channel, recipient_ref, payload,
        starts - REMIND_BEFORE,
    )  # fmt: skip


def withdraw_messages(run: Run, appointment_id: str) -> None:
    run(
        "UPDATE booking_outbox SET state = 'withdrawn' WHERE appointment_id = ? "
        "AND state = 'pending'",
        appointment_id,
    )


@dataclass(frozen=True)
class OutboxMessage:
    message_id: str
    appointment_id: str
    template: str
    channel: str
    recipient_ref: str
    payload: dict[str, Any]
    send_after: str
    state: str


def _message(row: tuple[Any, ...]) -> OutboxMessage:
    mid, aid, template, channel, ref, payload, after, state = row
    return OutboxMessage(
        str(mid), str(aid), str(template), str(channel), str(ref), json.loads(payload),
        str(after), str(state),
    )  # fmt: skip


def messages(run: Run, *, due_at: datetime | None = None) -> list[OutboxMessage]:
    """Pending messages (those due at ``due_at`` if given), oldest first."""
    sql = (
        "SELECT message_id, appointment_id, template, channel, recipient_ref, payload, "
        "send_after, state FROM booking_outbox WHERE state = 'pending'"
    )
    params: list[Any] = []
    if due_at is not None:
        sql += " AND send_after <= ?"
        params.append(due_at.astimezone(UTC).isoformat())
    return [_message(r) for r in run(sql + " ORDER BY send_after, message_id", *params)]


def mark_sent(run: Run, message_id: str) -> None:
    done = run(
        "UPDATE booking_outbox SET state = 'sent', sent_at = ? WHERE message_id = ? "
        "AND state = 'pending' RETURNING message_id",
        _now(),
        message_id,
    )
    if not done:
        raise InputError(f"no pending message {message_id}")


# -- calendar ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarSlot:
    day: str
    start: str
    holiday: bool
    capacity: int
    booked: int
    free: int
    schedule_version: str


def calendar(run: Run, first: date, days: int) -> list[CalendarSlot]:
    if not 1 <= days <= 92:
        raise InputError("the calendar shows 1 to 92 days")
    last = first + timedelta(days=days - 1)
    taken = {
        str(r[0]): int(r[1])
        for r in run(
            "SELECT slot_id, booked FROM booking_slots WHERE day >= ? AND day <= ?",
            first.isoformat(),
            last.isoformat(),
        )
    }
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        schedule = schedule_for(run, day)
        holiday, slots = slots_of(schedule, day)
        for start, capacity in slots.items():
            booked = taken.get(f"{day.isoformat()}T{start}", 0)
            free = max(capacity - booked, 0)
            version = str(schedule["version"])
            iso = day.isoformat()
            out.append(CalendarSlot(iso, start, holiday, capacity, booked, free, version))
    return out
