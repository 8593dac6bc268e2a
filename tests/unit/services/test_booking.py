"""services.booking: appointments and online pre-registration, confirmed at the station."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import pytest

from projections.eventtime import station_today
from services import booking
from services.station import Station
from services.users import UserStore
from signing.errors import InputError, LedgerError
from tests.workflow import make_id

BIRTH = date(1988, 5, 6)
ID = make_id(BIRTH, "F", sequence=77)
ANSWERS = dict.fromkeys(booking.QUESTIONNAIRE, False) | {"understood_risks": True}


@pytest.fixture
def store(sqlite_station: Station) -> UserStore:
    return UserStore(sqlite_station.settings.db)


def tomorrow() -> date:
    return station_today() + timedelta(days=1)


def book(station: Station, store: UserStore, channel: str = "wechat") -> booking.Appointment:
    command = booking.BookAppointment(channel, "resident_id", ID, "F", BIRTH, tomorrow())
    return booking.book_appointment(station, store, command)


def prereg(station: Station, store: UserStore, **kw: object) -> booking.PreRegistration:
    fields: dict[str, object] = {
        "channel": "douyin", "id_type": "resident_id", "id_number": ID, "name": "王小红",
        "sex": "F", "birth_date": BIRTH, "phone": "13912345678",
        "product": "platelets_single", "answers": ANSWERS,
    }  # fmt: skip
    fields.update(kw)
    return booking.pre_register(station, store, booking.PreRegister(**fields))  # type: ignore[arg-type]


def test_an_appointment_is_booked_masked_and_cancelled(
    sqlite_station: Station, store: UserStore
) -> None:
    booked = book(sqlite_station, store)
    assert booked.state == "booked" and booked.id_number_masked == ID[:6] + "*" * 12
    with pytest.raises(InputError, match="already has appointment"):
        book(sqlite_station, store)
    cancelled = booking.cancel_appointment(store, booked.appointment_id, "wechat")
    assert cancelled.state == "cancelled"
    with pytest.raises(InputError, match="not booked"):
        booking.cancel_appointment(store, booked.appointment_id, "wechat")


def test_another_channel_cannot_cancel_an_appointment(
    sqlite_station: Station, store: UserStore
) -> None:
    booked = book(sqlite_station, store)
    with pytest.raises(InputError, match="no appointment"):
        booking.cancel_appointment(store, booked.appointment_id, "baidu")


def test_the_id_number_is_stored_encrypted(sqlite_station: Station, store: UserStore) -> None:
    prereg(sqlite_station, store)
    with store.transaction() as run:
        rows = run("SELECT * FROM web_preregistrations")
    assert rows and ID not in repr(rows) and "王小红" not in repr(rows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"channel": "fax"}, "unknown booking channel"),
        ({"answers": {"recent_illness": False}}, "missing"),
        ({"id_number": ID[:-1] + ("0" if ID[-1] != "0" else "1")}, "ID number"),
        ({"sex": "M"}, "ID number"),
        ({"product": "whole_blood"}, "unknown product"),
        ({"appointment_id": "APT-NOPE"}, "not a booked appointment"),
    ],
    ids=["channel", "questionnaire", "check-digit", "sex", "product", "appointment"],
)
def test_a_bad_preregistration_is_refused_and_kept_nowhere(
    sqlite_station: Station, store: UserStore, change: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        prereg(sqlite_station, store, **change)
    assert booking.pending_preregistrations(sqlite_station, store) == []


def test_the_station_confirms_it_into_a_signed_registration_with_its_channel(
    sqlite_station: Station, store: UserStore
) -> None:
    booked = book(sqlite_station, store, "douyin")
    sent = prereg(sqlite_station, store, appointment_id=booked.appointment_id)
    pending = booking.pending_preregistrations(sqlite_station, store)
    assert [p.prereg_id for p in pending] == [sent.prereg_id]
    assert pending[0].name == "王**" and pending[0].phone == "139****5678"
    done = booking.confirm_preregistration(
        sqlite_station, store, booking.ConfirmPreRegistration(sent.prereg_id, "C001")
    )
    assert done.state == "confirmed" and done.donation_id
    donation = sqlite_station.app.donation(UUID(done.donation_id))
    registration = donation.steps["registration"]
    assert registration["values"]["channel"] == "douyin_h5"
    assert registration["values"]["appointment_id"] == booked.appointment_id
    assert registration["actor"] == "STAFF:C001"
    assert booking.pending_preregistrations(sqlite_station, store) == []
    with pytest.raises(InputError, match="already confirmed"):
        booking.confirm_preregistration(
            sqlite_station, store, booking.ConfirmPreRegistration(sent.prereg_id, "C001")
        )


def test_only_the_clerk_may_confirm_and_nothing_is_written_otherwise(
    sqlite_station: Station, store: UserStore
) -> None:
    sent = prereg(sqlite_station, store)
    before = sqlite_station.app.recorder.max_notification_id()
    with pytest.raises(LedgerError, match="registration must be signed by"):
        booking.confirm_preregistration(
            sqlite_station, store, booking.ConfirmPreRegistration(sent.prereg_id, "N001")
        )
    assert sqlite_station.app.recorder.max_notification_id() == before
    assert [p.prereg_id for p in booking.pending_preregistrations(sqlite_station, store)] == [
        sent.prereg_id
    ]
