"""DonorRegistered v2 signs the name and phone only masked and as salted commitments
(ledger.personal); version 1 events keep their clear body, hash and signature."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from uuid import UUID

import pikepdf
import pytest

from ledger.canonical import event_body, event_canonical_bytes, sha256_hex
from ledger.donation import Donation
from ledger.personal import commit, commit_with_key, commitment_key, mask_name, mask_phone
from ledger.registry import Donor
from ledger.verify import _personal_reasons
from services.station import Station
from tests.unit.ledger.test_amendments import _decode, _encode
from tests.workflow import complete, register, through_test

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


# -- amendments of the name and phone (issue 14 §2: no clear value in the attached evidence) ---


def _amend_registration(station: Station, donation_id: UUID, field: str, value: str) -> None:
    station.app.amend(
        donation_id,
        station.signer("C001"),
        step="registration",
        field=field,
        new_value=value,
        reason="misspelt at the desk",
    )


def _amendments(station: Station, donation_id: UUID) -> list[Donation.RecordAmended]:
    return [
        e
        for e in station.app.repository.event_store.get(donation_id)
        if isinstance(e, Donation.RecordAmended)
    ]


def test_an_amended_name_or_phone_is_signed_masked_and_committed(sqlite_station: Station) -> None:
    donation_id = register(sqlite_station, name="欧阳娜娜", phone="13912345678")
    _amend_registration(sqlite_station, donation_id, "name", "欧阳娜")
    _amend_registration(sqlite_station, donation_id, "phone", "13912345670")
    name, phone = _amendments(sqlite_station, donation_id)
    for event, old, new in ((name, "欧阳娜娜", "欧阳娜"), (phone, "13912345678", "13912345670")):
        body = event_body(event)
        assert "old_value" not in body and "new_value" not in body
        assert "personal_salt" not in body
        canonical = event_canonical_bytes(event).decode()
        assert old not in canonical and new not in canonical
        assert body["old_value_commitment"] == commit(event.personal_salt, "old_value", old)
        assert body["new_value_commitment"] == commit(event.personal_salt, "new_value", new)
        assert sha256_hex(event_canonical_bytes(event)) == event.event_hash
        assert (event.old_value, event.new_value) == (old, new)  # beside the body
        assert _personal_reasons(event) == []
    assert event_body(name)["old_value_masked"] == "欧***"
    assert event_body(name)["new_value_masked"] == "欧**"
    assert event_body(phone)["new_value_masked"] == "139****5670"
    # the record reads the clear value, as for any amendment
    assert sqlite_station.app.donation(donation_id).steps["registration"]["values"]["name"] == (
        "欧阳娜"
    )


def test_an_edited_amended_value_is_a_personal_data_mismatch(sqlite_station: Station) -> None:
    donation_id = register(sqlite_station, name="欧阳娜娜")
    _amend_registration(sqlite_station, donation_id, "name", "欧阳娜")
    (event,) = _amendments(sqlite_station, donation_id)
    for change in ({"new_value": "欧阳娜娜"}, {"old_value": "欧阳"}, {"personal_salt": "00" * 16}):
        edited = dataclasses.replace(event, **change)  # type: ignore[arg-type]
        assert event_canonical_bytes(edited) == event_canonical_bytes(event)
        ((code, message),) = _personal_reasons(edited)
        assert code == "PERSONAL_DATA_MISMATCH", message
    # dropping the commitment (to put a clear value in the body) changes the signed body
    uncommitted = dataclasses.replace(event, new_value_commitment="")  # type: ignore[call-arg]
    assert sha256_hex(event_canonical_bytes(uncommitted)) != event.event_hash


def test_other_amendments_still_sign_their_clear_values(sqlite_station: Station) -> None:
    donation_id = register(sqlite_station)
    through_test(sqlite_station, donation_id)
    sqlite_station.app.amend(
        donation_id,
        sqlite_station.signer("P001"),
        step="general_exam",
        field="temperature_c",
        new_value=36.9,
        reason="transcription error",
    )
    (event,) = _amendments(sqlite_station, donation_id)
    body = event_body(event)
    assert body["new_value"] == 36.9 and "old_value" in body
    assert body["new_value_commitment"] == "" and body["new_value_masked"] == ""
    assert _personal_reasons(event) == []


def test_a_version_2_amendment_keeps_its_body(sqlite_station: Station) -> None:
    """Stored before class version 3: the upcast adds the personal fields out of the body."""
    donation_id = register(sqlite_station, name="欧阳娜娜")
    _amend_registration(sqlite_station, donation_id, "name", "欧阳娜")
    (event,) = _amendments(sqlite_station, donation_id)
    mapper = sqlite_station.app.mapper
    stored = mapper.to_stored_event(event)
    raw = _decode(mapper, stored.state)
    assert raw["class_version"] == 3
    raw["class_version"] = 2
    for key in AMENDMENT_V3_FIELDS:
        raw.pop(key)
    upcast = mapper.to_domain_event(dataclasses.replace(stored, state=_encode(mapper, raw)))
    assert isinstance(upcast, Donation.RecordAmended)
    body = event_body(upcast)
    assert body["old_value"] == "欧阳娜娜" and body["new_value"] == "欧阳娜"
    assert not set(AMENDMENT_V3_FIELDS) & body.keys()
    assert _personal_reasons(upcast) == []


AMENDMENT_V3_FIELDS = (
    "old_value_masked",
    "new_value_masked",
    "old_value_commitment",
    "new_value_commitment",
    "personal_salt",
)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)")
def test_forms_after_a_name_and_phone_amendment_verify_and_attach_no_clear_value(
    sqlite_station: Station, tmp_path: Path
) -> None:
    """The forms print the corrected name; verify-pdf matches it with the amendment's signed
    commitment, and no attachment holds the old or the new name or phone in clear."""
    from documents.pdf_verify import verify_pdf
    from services.forms import produce_forms

    donation_id = complete(sqlite_station)  # registered as 张三, 13800000000
    _amend_registration(sqlite_station, donation_id, "name", "张叁丰")
    _amend_registration(sqlite_station, donation_id, "phone", "13900001111")
    paths = produce_forms(sqlite_station, donation_id, tmp_path / "forms", None)
    assert paths
    for path in paths:
        with pikepdf.open(path) as pdf:
            files = {n: s.get_file().read_bytes() for n, s in pdf.attachments.items()}
        for name, data in files.items():
            text = data.decode("utf-8", errors="replace")
            for clear in ("张三", "张叁丰", "13800000000", "13900001111"):
                assert clear not in text, f"{path.name}: {name} holds {clear}"
        page = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "张叁丰" in page, path.name
        report = verify_pdf(path.read_bytes(), sqlite_station.trust_roots(), name=str(path))
        assert report.bottom_line, (path.name, report.failures())


# -- the donor's enrolment (Donor.DonorEnrolled v2) ---------------------------------------------


def _enrolled(station: Station) -> Donor.DonorEnrolled:
    register(station, name="欧阳娜娜", phone="13912345678")
    (event,) = [
        e
        for e in (
            station.app.mapper.to_domain_event(n)
            for n in station.app.recorder.select_notifications(1, 1000)
        )
        if isinstance(e, Donor.DonorEnrolled)
    ]
    return event


def test_the_enrolment_signs_the_name_masked_and_committed(sqlite_station: Station) -> None:
    event = _enrolled(sqlite_station)
    body = event_body(event)
    assert "name" not in body and "personal_salt" not in body
    assert "欧阳娜娜" not in event_canonical_bytes(event).decode()
    assert body["name_masked"] == "欧***"
    assert body["name_commitment"] == commit(event.personal_salt, "name", "欧阳娜娜")
    assert sha256_hex(event_canonical_bytes(event)) == event.event_hash
    assert event.name == "欧阳娜娜" and _personal_reasons(event) == []
    edited = dataclasses.replace(event, name="欧阳娜")  # type: ignore[call-arg]
    ((code, _),) = _personal_reasons(edited)
    assert code == "PERSONAL_DATA_MISMATCH"


def test_a_version_1_enrolment_keeps_its_clear_body(sqlite_station: Station) -> None:
    event = _enrolled(sqlite_station)
    mapper = sqlite_station.app.mapper
    stored = mapper.to_stored_event(event)
    raw = _decode(mapper, stored.state)
    assert raw["class_version"] == 2
    for key in ("class_version", "name_masked", "name_commitment", "personal_salt"):
        raw.pop(key)
    upcast = mapper.to_domain_event(dataclasses.replace(stored, state=_encode(mapper, raw)))
    assert isinstance(upcast, Donor.DonorEnrolled)
    body = event_body(upcast)
    assert body["name"] == "欧阳娜娜" and "name_commitment" not in body
    assert _personal_reasons(upcast) == []
