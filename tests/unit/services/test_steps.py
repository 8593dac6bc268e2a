"""services.steps and services.amend: typed commands with the demo path's rules and outcomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger.events import WorkflowError
from services.amend import AmendRecord, amend_record
from services.station import Station
from services.steps import (
    DonationNotFound,
    RecordStep,
    RegisterDonation,
    record_step,
    register_donation,
)
from signing.errors import InputError
from tests.workflow import make_id

EXAM = {
    "weight_kg": 60.0,
    "sbp_mmhg": 120,
    "dbp_mmhg": 80,
    "pulse_per_min": 72,
    "temperature_c": 36.6,
}
TEST = {"hb_g_per_l": 130.0, "hct_fraction": 0.41, "plt_10e9_per_l": 250.0, "abo": "O"}


def event_count(station: Station) -> int:
    return int(station.app.recorder.max_notification_id() or 0)


def registered(station: Station, sequence: int = 7) -> UUID:
    birth = date(1985, 3, 4)
    return register_donation(
        station,
        RegisterDonation(
            staff_id="C001",
            id_type="resident_id",
            id_number=make_id(birth, "F", sequence=sequence),
            name="张三",
            sex="F",
            birth_date=birth,
            phone="13800000000",
            product="platelets_single",
        ),
    ).donation_id


def step(station: Station, key: UUID | str, name: str, staff: str, **payload: Any) -> Any:
    return record_step(station, RecordStep(str(key), name, payload, staff))


def through_collection(station: Station, donation_id: UUID, number: str) -> None:
    consent = {"answers": {"recent_illness": False}, "consent": True}
    step(station, donation_id, "informed_consent", "C001", fingerprint_verified=True, **consent)
    step(station, donation_id, "general_exam", "P001", **EXAM)
    step(station, donation_id, "pre_donation_test", "T001", **TEST)
    step(station, donation_id, "eligibility", "P002", decision="eligible")
    step(station, donation_id, "donation_number", "N001", donation_no=number)
    scans = [f"BAG-{number}", f"TUBE-{number}", f"SAMPLE-{number}"]
    now = datetime.now(UTC)
    step(
        station,
        number,
        "pre_collection",
        "N001",
        scans=scans,
        separator_model="Trima Accel",
        separator_serial="SEP-101",
        kit_lot="K1",
        acd_lot="A1",
        saline_lot="S1",
        venipuncture_at=now.isoformat(timespec="seconds"),
    )
    step(
        station,
        number,
        "collection",
        "N001",
        started_at=now.isoformat(timespec="seconds"),
        ended_at=(now + timedelta(minutes=70)).isoformat(timespec="seconds"),
        processed_blood_ml=2800,
        acd_ml=300,
        product_volume_ml=260,
        platelet_yield_10e11=2.8,
        doses=1,
        plasma_ml=0,
    )
    step(station, number, "post_collection", "N001", scans=scans)
    step(station, number, "heat_seal", "S001", scans=scans)


def test_a_donation_goes_through_every_step_and_seals(sqlite_station: Station) -> None:
    donation_id = registered(sqlite_station)
    through_collection(sqlite_station, donation_id, "9000626000001")
    sealed = step(sqlite_station, "9000626000001", "seal", "N001")
    assert sealed.status == "sealed"
    assert sealed.donation_no == "9000626000001"
    donation = sqlite_station.app.donation(donation_id)
    # signed by the staff named in the command, the number and sealing by the system
    assert donation.steps["general_exam"]["actor"] == "STAFF:P001"
    assert donation.steps["donation_number"]["actor"] == "STAFF:SYSTEM"
    assert donation.steps["informed_consent"]["actor"].startswith("DONOR:")
    assert sqlite_station.verifier().verify().verdict.value == "PASSED"


def test_the_exam_records_the_rule_outcomes_of_the_demo_path(sqlite_station: Station) -> None:
    donation_id = registered(sqlite_station)
    consent = {"answers": {}, "consent": True, "fingerprint_verified": True}
    step(sqlite_station, donation_id, "informed_consent", "C001", **consent)
    low = {**EXAM, "weight_kg": 41.0}
    result = step(sqlite_station, donation_id, "general_exam", "P001", **low)
    failed = {o["rule_id"] for o in result.rule_outcomes if o["outcome"] == "fail"}
    assert failed, result.rule_outcomes
    exam = sqlite_station.app.donation(donation_id).steps["general_exam"]["values"]
    assert exam["result"] == "fail"


def test_a_step_signed_by_the_wrong_role_is_refused_and_writes_nothing(
    sqlite_station: Station,
) -> None:
    donation_id = registered(sqlite_station)
    step(sqlite_station, donation_id, "informed_consent", "C001", answers={}, consent=True,
         fingerprint_verified=True)  # fmt: skip
    before = event_count(sqlite_station)
    with pytest.raises(WorkflowError):
        step(sqlite_station, donation_id, "general_exam", "N001", **EXAM)
    assert event_count(sqlite_station) == before


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({**EXAM, "weight_kg": "heavy"}, "weight_kg"),
        ({k: v for k, v in EXAM.items() if k != "sbp_mmhg"}, "sbp_mmhg"),
        ({**EXAM, "colour": "red"}, "colour"),
    ],
    ids=["wrong-type", "missing-field", "unknown-field"],
)
def test_a_bad_payload_is_input_error_and_writes_nothing(
    sqlite_station: Station, payload: dict[str, Any], message: str
) -> None:
    donation_id = registered(sqlite_station)
    before = event_count(sqlite_station)
    with pytest.raises(InputError, match=message):
        record_step(sqlite_station, RecordStep(str(donation_id), "general_exam", payload, "P001"))
    assert event_count(sqlite_station) == before


def test_an_unknown_step_is_input_error(sqlite_station: Station) -> None:
    donation_id = registered(sqlite_station)
    with pytest.raises(InputError, match="unknown step"):
        step(sqlite_station, donation_id, "dance", "P001")


def test_an_unknown_donation_is_not_found(sqlite_station: Station) -> None:
    with pytest.raises(DonationNotFound):
        step(sqlite_station, "9000626999999", "general_exam", "P001", **EXAM)


def test_an_unknown_staff_member_is_input_error_and_writes_nothing(
    sqlite_station: Station,
) -> None:
    donation_id = registered(sqlite_station)
    before = event_count(sqlite_station)
    with pytest.raises(InputError, match="no credential for staff X999"):
        step(sqlite_station, donation_id, "informed_consent", "X999", answers={}, consent=True,
             fingerprint_verified=True)  # fmt: skip
    assert event_count(sqlite_station) == before


def test_a_bad_registration_is_input_error_and_writes_nothing(sqlite_station: Station) -> None:
    before = event_count(sqlite_station)
    with pytest.raises(InputError, match="ID number"):
        register_donation(
            sqlite_station,
            RegisterDonation("C001", "resident_id", "330106198503040000", "张三", "F",
                             date(1985, 3, 4), "13800000000", "platelets_single"),
        )  # fmt: skip
    assert event_count(sqlite_station) == before


def test_an_amendment_records_prior_and_new_value_signed_by_the_amender(
    sqlite_station: Station,
) -> None:
    donation_id = registered(sqlite_station)
    through_collection(sqlite_station, donation_id, "9000626000002")
    amended = amend_record(
        sqlite_station,
        AmendRecord("9000626000002", "general_exam", "temperature_c", 36.8, "typo", "P001"),
    )
    assert (amended.old_value, amended.new_value) == (36.6, 36.8)
    donation = sqlite_station.app.donation(donation_id)
    last = donation.amendments[-1]
    assert (last["old_value"], last["new_value"], last["actor"]) == (36.6, 36.8, "STAFF:P001")
    assert last["event_hash"] == amended.event_hash


def test_an_amendment_failing_a_hard_rule_is_refused_without_override(
    sqlite_station: Station,
) -> None:
    donation_id = registered(sqlite_station)
    through_collection(sqlite_station, donation_id, "9000626000003")
    before = event_count(sqlite_station)
    with pytest.raises(WorkflowError):
        amend_record(
            sqlite_station,
            AmendRecord("9000626000003", "general_exam", "weight_kg", 41.0, "re-weighed", "P001"),
        )
    assert event_count(sqlite_station) == before


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (AmendRecord("9000626000004", "general_exam", "temperature_c", 36.8, " ", "P001"),
         "reason"),
        (AmendRecord("9000626000004", "general_exam", "colour", 1, "x", "P001"), "no field"),
        (AmendRecord("9000626000004", "dance", "x", 1, "x", "P001"), "no recorded step"),
        (AmendRecord("9000626000004", "general_exam", "temperature_c", [1], "x", "P001"),
         "one value"),
    ],
    ids=["no-reason", "unknown-field", "unknown-step", "not-a-value"],
)  # fmt: skip
def test_a_bad_amendment_is_input_error_and_writes_nothing(
    sqlite_station: Station, command: AmendRecord, message: str
) -> None:
    donation_id = registered(sqlite_station)
    through_collection(sqlite_station, donation_id, "9000626000004")
    before = event_count(sqlite_station)
    with pytest.raises(InputError, match=message):
        amend_record(sqlite_station, command)
    assert event_count(sqlite_station) == before
