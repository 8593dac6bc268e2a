"""Booking channels: appointments and online pre-registration from the mini-programs and H5 pages.

A booking platform's client (role ``channel``) books and cancels appointments and sends a donor's
online pre-registration with the health questionnaire. None of this is evidence yet: nobody at
the station has checked the donor. It is kept beside the ledger (tables ``web_appointments`` and
``web_preregistrations`` in the ledger's store), the ID number encrypted under the station's data
key (AES-256-GCM, as in `DonorRegistered`) and only its masked form and HMAC reference in clear.

At the station a staff member (the registration clerk) confirms the pre-registration: that is the
signed `DonorRegistered` event, with the channel it came from and its appointment, which links the
online record to the donation. Its questionnaire answers are what the donor then confirms in the
signed consent.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import psycopg

from ledger.application import PRODUCTS
from ledger.identity import mask_id
from ledger.personal import mask_phone
from projections.eventtime import station_today
from services import booking_slots as slots
from services.booking_slots import SlotFull as SlotFull  # for the HTTP layer (409)
from services.station import Station
from services.steps import RegisterDonation, normalised_id, register_donation
from services.users import UserStore
from signing.errors import InputError

#: Where a booking comes from, and the channel its registration records.
CHANNELS = {
    "wechat": "wechat",  # WeChat mini-program
    "baidu": "baidu",  # Baidu mini-program
    "douyin": "douyin_h5",  # Douyin mini-program / H5
    "h5": "online",  # the station's own mobile H5 page
}
QUESTIONNAIRE = (
    "recent_illness",
    "medication_aspirin_7d",
    "dental_work_3d",
    "vaccination_recent",
    "travel_malaria_area",
    "understood_risks",
)

_TABLES = (
    """CREATE TABLE IF NOT EXISTS web_appointments (
        appointment_id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        day TEXT NOT NULL,
        period TEXT NOT NULL,
        donor_ref TEXT NOT NULL,
        id_number_masked TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        changed_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_preregistrations (
        prereg_id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        appointment_id TEXT,
        donor_ref TEXT NOT NULL,
        id_number_masked TEXT NOT NULL,
        sealed TEXT NOT NULL,
        answers TEXT NOT NULL,
        state TEXT NOT NULL,
        donation_id TEXT,
        created_at TEXT NOT NULL,
        changed_at TEXT NOT NULL)""",
)


#: One booked appointment per donor and day, also between concurrent requests (the SELECT in
#: `book_appointment` alone does not stop two PostgreSQL transactions that both read nothing).
_ONE_A_DAY = (
    "CREATE UNIQUE INDEX IF NOT EXISTS web_appointments_one_a_day "
    "ON web_appointments (donor_ref, day) WHERE state = 'booked'"
)


def ensure_tables(store: UserStore) -> None:
    with store.transaction() as run:
        for sql in _TABLES:
            run(sql)
        run(_ONE_A_DAY)
        slots.ensure_tables(run)


def _channel(name: str) -> str:
    if name not in CHANNELS:
        raise InputError(f"unknown booking channel {name!r} (known: {', '.join(CHANNELS)})")
    return name


def _identity(station: Station, id_type: str, id_number: str, sex: str, birth: date) -> str:
    return normalised_id(id_type, id_number, sex, birth)


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- appointments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookAppointment:
    channel: str
    id_type: str
    id_number: str
    sex: Literal["M", "F"]
    birth_date: date
    day: date
    period: Literal["morning", "afternoon"] = "morning"
    #: A time slot ("09:30") of the station's schedule: its capacity is enforced and the
    #: period follows from it. Without one the booking is for the period, uncounted.
    slot: str | None = None


@dataclass(frozen=True)
class Appointment:
    appointment_id: str
    channel: str
    day: str
    period: str
    id_number_masked: str
    state: str
    slot: str | None = None


def book_appointment(station: Station, store: UserStore, command: BookAppointment) -> Appointment:
    _channel(command.channel)
    if command.day < station_today():
        raise InputError(f"{command.day} is in the past")
    number = _identity(station, command.id_type, command.id_number, command.sex, command.birth_date)
    donor_ref = station.secrets.donor_ref(f"{command.id_type}:{number}")
    appointment = Appointment(
        f"APT-{secrets.token_hex(5).upper()}",
        command.channel,
        command.day.isoformat(),
        slots.period_of(command.slot) if command.slot else command.period,
        mask_id(number),
        "booked",
        command.slot,
    )
    ensure_tables(store)
    try:
        _insert_appointment(store, command, appointment, donor_ref)
    except (sqlite3.IntegrityError, psycopg.errors.UniqueViolation) as exc:
        raise InputError("this donor already has an appointment that day") from exc
    return appointment


def _insert_appointment(
    store: UserStore, command: BookAppointment, appointment: Appointment, donor_ref: str
) -> None:
    with store.transaction() as run:
        taken = run(
            "SELECT appointment_id FROM web_appointments "
            "WHERE donor_ref = ? AND day = ? AND state = 'booked'",
            donor_ref,
            appointment.day,
        )
        if taken:
            raise InputError(f"this donor already has appointment {taken[0][0]} that day")
        slot_id = None
        if command.slot is not None:
            slot_id = slots.take_place(run, command.day, command.slot)
        run(
            "INSERT INTO web_appointments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            appointment.appointment_id,
            appointment.channel,
            appointment.day,
            appointment.period,
            donor_ref,
            appointment.id_number_masked,
            appointment.state,
            _now(),
            _now(),
        )
        if slot_id is not None:
            slots.link(run, appointment.appointment_id, slot_id)
            slots.queue_reminder(
                run, appointment.appointment_id, appointment.channel, donor_ref,
                appointment.id_number_masked, slot_id,
            )  # fmt: skip


def cancel_appointment(store: UserStore, appointment_id: str, channel: str) -> Appointment:
    """Cancel a booked appointment of this channel; `InputError` if unknown or not booked."""
    ensure_tables(store)
    with store.transaction() as run:
        rows = run(
            "SELECT appointment_id, channel, day, period, id_number_masked, state "
            "FROM web_appointments WHERE appointment_id = ? AND channel = ?",
            appointment_id,
            channel,
        )
        if not rows:
            raise InputError(f"no appointment {appointment_id} from {channel}")
        if rows[0][5] != "booked":
            raise InputError(f"appointment {appointment_id} is {rows[0][5]}, not booked")
        run(
            "UPDATE web_appointments SET state = 'cancelled', changed_at = ? "
            "WHERE appointment_id = ?",
            _now(),
            appointment_id,
        )
        slots.release_place(run, appointment_id)
        slots.withdraw_messages(run, appointment_id)
        slot_id = slots.slot_of(run, appointment_id)
    appointment_id, channel, day, period, masked, _ = (str(v) for v in rows[0])
    slot = slot_id.split("T")[1] if slot_id else None
    return Appointment(appointment_id, channel, day, period, masked, "cancelled", slot)


@dataclass(frozen=True)
class RecordNoShow:
    appointment_id: str
    staff_id: str


def record_no_show(store: UserStore, command: RecordNoShow, today: date | None = None) -> str:
    """The donor did not come: a booked appointment of a past day becomes ``no_show`` (its
    place stays counted: it was held for them). Returns the appointment's new state."""
    ensure_tables(store)
    today = today or station_today()
    with store.transaction() as run:
        rows = run(
            "SELECT day, state FROM web_appointments WHERE appointment_id = ?",
            command.appointment_id,
        )
        if not rows:
            raise InputError(f"no appointment {command.appointment_id}")
        day, state = str(rows[0][0]), str(rows[0][1])
        if state != "booked":
            raise InputError(f"appointment {command.appointment_id} is {state}, not booked")
        if date.fromisoformat(day) >= today:
            raise InputError(f"appointment {command.appointment_id} is on {day}; not yet missed")
        run(
            "UPDATE web_appointments SET state = 'no_show', changed_at = ? "
            "WHERE appointment_id = ?",
            _now(),
            command.appointment_id,
        )
        run(
            "INSERT INTO booking_no_shows VALUES (?, ?, ?)",
            command.appointment_id,
            command.staff_id,
            _now(),
        )
        slots.withdraw_messages(run, command.appointment_id)
    return "no_show"


def _mark_registered(run: slots.Run, appointment_id: str) -> None:
    run(
        "UPDATE web_appointments SET state = 'registered', changed_at = ? WHERE appointment_id = ?",
        _now(),
        appointment_id,
    )
    slots.withdraw_messages(run, appointment_id)


def appointment_registered(store: UserStore, appointment_id: str) -> None:
    """The donor of a booked appointment arrived and was registered (the signed
    `DonorRegistered` names the appointment): it leaves the booked state, its pending reminder
    is withdrawn and its place stays counted."""
    ensure_tables(store)
    with store.transaction() as run:
        rows = run("SELECT state FROM web_appointments WHERE appointment_id = ?", appointment_id)
        if not rows or rows[0][0] != "booked":
            raise InputError(f"appointment {appointment_id} is not a booked appointment")
        _mark_registered(run, appointment_id)


# -- slots, calendar, reminders -------------------------------------------------------------


@dataclass(frozen=True)
class PublishSlotSchedule:
    schedule: dict[str, Any]
    by: str


def publish_slot_schedule(store: UserStore, command: PublishSlotSchedule) -> dict[str, Any]:
    """A new version of the station's slot schedule (per weekday and per holiday)."""
    ensure_tables(store)
    with store.transaction() as run:
        return slots.publish_schedule(run, command.schedule, command.by)


@dataclass(frozen=True)
class CalendarQuery:
    first: date
    days: int = 7


def booking_calendar(store: UserStore, query: CalendarQuery) -> list[slots.CalendarSlot]:
    """Every slot of the days with its capacity, places booked and free."""
    ensure_tables(store)
    with store.transaction() as run:
        return slots.calendar(run, query.first, query.days)


def due_reminders(store: UserStore, now: datetime | None = None) -> list[slots.OutboxMessage]:
    """Outbox messages a sender should send now."""
    ensure_tables(store)
    with store.transaction() as run:
        return slots.messages(run, due_at=now or datetime.now(UTC))


def mark_reminder_sent(store: UserStore, message_id: str) -> None:
    ensure_tables(store)
    with store.transaction() as run:
        slots.mark_sent(run, message_id)


# -- pre-registration ------------------------------------------------------------------------


@dataclass(frozen=True)
class PreRegister:
    channel: str
    id_type: str
    id_number: str
    name: str
    sex: Literal["M", "F"]
    birth_date: date
    phone: str
    product: str
    answers: dict[str, bool] = field(default_factory=dict)
    appointment_id: str | None = None


@dataclass(frozen=True)
class PreRegistration:
    prereg_id: str
    channel: str
    appointment_id: str | None
    id_number_masked: str
    name: str  # surname only
    phone: str  # masked
    product: str
    answers: dict[str, bool]
    state: str
    donation_id: str | None


def pre_register(station: Station, store: UserStore, command: PreRegister) -> PreRegistration:
    """Keep an online pre-registration until the station confirms it; nothing is signed yet."""
    _channel(command.channel)
    missing = [q for q in QUESTIONNAIRE if q not in command.answers]
    unknown = [q for q in command.answers if q not in QUESTIONNAIRE]
    if missing or unknown:
        raise InputError(
            "health questionnaire: "
            + "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unknown {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
        )
    if not command.name.strip():
        raise InputError("the donor's name is required")
    if command.product not in PRODUCTS:
        raise InputError(f"unknown product {command.product!r} (known: {', '.join(PRODUCTS)})")
    if not command.phone.strip().isdigit():
        raise InputError("phone must be digits")
    number = _identity(station, command.id_type, command.id_number, command.sex, command.birth_date)
    donor_ref = station.secrets.donor_ref(f"{command.id_type}:{number}")
    prereg_id = f"PRE-{secrets.token_hex(6).upper()}"
    personal = {
        "id_type": command.id_type,
        "id_number": number,
        "name": command.name.strip(),
        "sex": command.sex,
        "birth_date": command.birth_date.isoformat(),
        "phone": command.phone.strip(),
        "product": command.product,
    }
    sealed = station.secrets.encrypt(json.dumps(personal, ensure_ascii=False), context=prereg_id)
    ensure_tables(store)
    with store.transaction() as run:
        if command.appointment_id is not None:
            rows = run(
                "SELECT donor_ref, state FROM web_appointments WHERE appointment_id = ?",
                command.appointment_id,
            )
            if not rows or rows[0][0] != donor_ref or rows[0][1] != "booked":
                raise InputError(
                    f"appointment {command.appointment_id} is not a booked appointment of "
                    "this donor"
                )
        run(
            "INSERT INTO web_preregistrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            prereg_id,
            command.channel,
            command.appointment_id,
            donor_ref,
            mask_id(number),
            sealed,
            json.dumps(command.answers),
            "pending",
            None,
            _now(),
            _now(),
        )
    return _public(
        prereg_id,
        command.channel,
        command.appointment_id,
        personal,
        command.answers,
        "pending",
        None,
    )


def _public(
    prereg_id: str,
    channel: str,
    appointment_id: str | None,
    personal: dict[str, Any],
    answers: dict[str, bool],
    state: str,
    donation_id: str | None,
) -> PreRegistration:
    name = str(personal["name"])
    return PreRegistration(
        prereg_id,
        channel,
        appointment_id,
        mask_id(str(personal["id_number"])),
        name[:1] + "*" * (len(name) - 1),
        mask_phone(str(personal["phone"])),
        str(personal["product"]),
        dict(answers),
        state,
        donation_id,
    )


def pending_preregistrations(station: Station, store: UserStore) -> list[PreRegistration]:
    """Pre-registrations waiting for the station, oldest first (masked)."""
    ensure_tables(store)
    with store.transaction() as run:
        rows = run(
            "SELECT prereg_id, channel, appointment_id, sealed, answers FROM "
            "web_preregistrations WHERE state = 'pending' ORDER BY created_at"
        )
    out = []
    for prereg_id, channel, appointment_id, sealed, answers in rows:
        personal = json.loads(station.secrets.decrypt(sealed, context=prereg_id))
        answered = json.loads(answers)
        out.append(_public(prereg_id, channel, appointment_id, personal, answered, "pending", None))
    return out


@dataclass(frozen=True)
class ConfirmPreRegistration:
    prereg_id: str
    staff_id: str


def confirm_preregistration(
    station: Station, store: UserStore, command: ConfirmPreRegistration
) -> PreRegistration:
    """The clerk confirms the online record at the desk: the signed `DonorRegistered`, with the
    channel it came from and its appointment; the pre-registration then names the donation."""
    ensure_tables(store)
    with store.transaction() as run:
        rows = run(
            "SELECT channel, appointment_id, sealed, answers, state FROM web_preregistrations "
            "WHERE prereg_id = ?",
            command.prereg_id,
        )
    if not rows:
        raise InputError(f"no pre-registration {command.prereg_id}")
    channel, appointment_id, sealed, answers, state = rows[0]
    if state != "pending":
        raise InputError(f"pre-registration {command.prereg_id} is already {state}")
    personal = json.loads(station.secrets.decrypt(sealed, context=command.prereg_id))
    registered = register_donation(
        station,
        RegisterDonation(
            staff_id=command.staff_id,
            id_type=personal["id_type"],
            id_number=personal["id_number"],
            name=personal["name"],
            sex=personal["sex"],
            birth_date=date.fromisoformat(personal["birth_date"]),
            phone=personal["phone"],
            product=personal["product"],
            channel=CHANNELS[channel],
            appointment_id=appointment_id,
        ),
    )
    donation_id = str(registered.donation_id)
    with store.transaction() as run:
        run(
            "UPDATE web_preregistrations SET state = 'confirmed', donation_id = ?, changed_at = ? "
            "WHERE prereg_id = ?",
            donation_id,
            _now(),
            command.prereg_id,
        )
        if appointment_id is not None:
            _mark_registered(run, appointment_id)
    answered = json.loads(answers)
    return _public(
        command.prereg_id, channel, appointment_id, personal, answered, "confirmed", donation_id
    )
