"""DonorRegistered v2 signs the name and phone only masked and as salted commitments
(ledger.personal); version 1 events keep their clear body, hash and signature."""

from __future__ import annotations

import dataclasses

from ledger.canonical import event_body, event_canonical_bytes, sha256_hex
from ledger.donation import Donation
from ledger.personal import commit, commit_with_key, commitment_key, mask_name, mask_phone
from ledger.verify import _personal_reasons
from services.station import Station
from tests.unit.ledger.test_amendments import _decode, _encode
from tests.workflow import register

V2_FIELDS = ("name_masked", "phone_masked", "name_commitment", "phone_commitment", "personal_salt")


def _registered(station: Station) -> Donation.DonorRegistered:
    donation_id = register(station, name="欧阳娜娜", phone="13912345678")
    (event, *_rest) = station.app.repository.event_store.get(donation_id)
    assert isinstance(event, Donation.DonorRegistered)
    return event


def test_masks() -> None:
    assert mask_name("欧阳娜娜") == "欧***" and mask_name("Chen Wei") == "C*** ***"
    assert mask_name("  ") == ""
    assert mask_phone("139-1234-5678") == "139****5678" and mask_phone("12345") == "*****"


def test_commitments_are_keyed_per_field_and_salt() -> None:
    salt, other = "00" * 16, "01" * 16
    assert commit(salt, "name", "张三") == commit_with_key(commitment_key(salt, "name"), "张三")
    assert commit(salt, "name", "张三") != commit(other, "name", "张三")
    assert commit(salt, "name", "张三") != commit(salt, "phone", "张三")
    assert commit(salt, "name", "张三") != commit(salt, "name", "张四")


def test_the_signed_body_holds_no_clear_name_phone_or_salt(sqlite_station: Station) -> None:
    event = _registered(sqlite_station)
    body = event_body(event)
    assert "name" not in body and "phone" not in body and "personal_salt" not in body
    canonical = event_canonical_bytes(event).decode()
    assert "欧阳娜娜" not in canonical and "13912345678" not in canonical
    assert event.personal_salt not in canonical
    assert body["name_masked"] == "欧***" and body["phone_masked"] == "139****5678"
    assert body["name_commitment"] == commit(event.personal_salt, "name", "欧阳娜娜")
    assert body["phone_commitment"] == commit(event.personal_salt, "phone", "13912345678")
    assert sha256_hex(event_canonical_bytes(event)) == event.event_hash
    assert event.name == "欧阳娜娜" and event.phone == "13912345678"  # beside the body
    assert _personal_reasons(event) == []


def test_an_edited_clear_value_is_a_personal_data_mismatch(sqlite_station: Station) -> None:
    event = _registered(sqlite_station)
    for change in ({"name": "欧阳娜"}, {"phone": "13912345679"}, {"personal_salt": "00" * 16}):
        edited = dataclasses.replace(event, **change)  # type: ignore[arg-type]
        # the signed body does not change: only the commitment check catches the edit
        assert event_canonical_bytes(edited) == event_canonical_bytes(event)
        ((code, message),) = _personal_reasons(edited)
        assert code == "PERSONAL_DATA_MISMATCH", message


def test_a_version_1_registration_keeps_its_clear_body(sqlite_station: Station) -> None:
    """Stored before class version 2: the upcast adds the commitment fields out of the body, and
    the clear name and phone, which the actor signed, stay in it."""
    event = _registered(sqlite_station)
    mapper = sqlite_station.app.mapper
    stored = mapper.to_stored_event(event)
    raw = _decode(mapper, stored.state)
    assert raw["class_version"] == 2
    for key in ("class_version", *V2_FIELDS):
        raw.pop(key)
    upcast = mapper.to_domain_event(dataclasses.replace(stored, state=_encode(mapper, raw)))
    assert isinstance(upcast, Donation.DonorRegistered)
    assert all(getattr(upcast, f) == "" for f in V2_FIELDS)
    body = event_body(upcast)
    assert body["name"] == "欧阳娜娜" and body["phone"] == "13912345678"
    assert not set(V2_FIELDS) & body.keys()
    v1_fields = {f.name for f in dataclasses.fields(upcast)} - set(V2_FIELDS)
    v1_fields -= {"signature", "event_hash", "originator_id", "originator_version", "timestamp"}
    assert body.keys() == v1_fields | {"topic", "aggregate_id", "version", "timestamp"}
    assert _personal_reasons(upcast) == []
