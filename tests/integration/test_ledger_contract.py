"""One contract, run against every store (SQLite and PostgreSQL): the ledger's promises."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ledger.canonical import GENESIS_HASH, event_canonical_bytes, sha256_hex
from ledger.donation import Step
from ledger.events import LedgerAggregate, WorkflowError
from ledger.stores import ChainReader
from services.station import Station
from tests.workflow import amend_temperature, complete, make_id, register, through_test


def _chain(station: Station) -> list[Any]:
    recorder = station.app.recorder
    assert isinstance(recorder, ChainReader)
    return list(recorder.select_chain(0, 100_000))


def _event_count(station: Station) -> int:
    return len(station.app.recorder.select_notifications(1, 100_000))


def test_complete_donation_verifies(station: Station) -> None:
    complete(station)
    report = station.verifier().verify()
    assert report.ok, report.issues()
    assert report.event_types["DonationRecordSealed"] == 1
    assert report.signatures == report.events


def test_every_stored_event_is_chained_to_its_predecessor(station: Station) -> None:
    complete(station)
    chain = _chain(station)
    notes = station.app.recorder.select_notifications(1, 100_000)
    assert [link.position for link in chain] == [n.id for n in notes]
    prev = GENESIS_HASH
    for link, note in zip(chain, notes, strict=True):
        event = station.app.mapper.to_domain_event(note)
        assert isinstance(event, LedgerAggregate.Event)
        assert link.prev_hash == prev
        assert link.event_hash == sha256_hex(event_canonical_bytes(event)) == event.event_hash
        prev = link.event_hash


def test_no_collection_before_an_eligible_assessment(station: Station) -> None:
    donation_id = register(station)
    through_test(station, donation_id)
    before = _event_count(station)
    with pytest.raises(WorkflowError, match="pre_collection has not been recorded"):
        station.app.record_collection(
            donation_id,
            station.signer("N001"),
            started_at="",
            ended_at="",
            processed_blood_ml=1,
            acd_ml=1,
            product_volume_ml=200,
            platelet_yield_10e11=1.0,
            doses=1,
            plasma_ml=0,
            auto_imported=True,
        )
    assert _event_count(station) == before


def test_hard_rule_blocks_eligibility_until_a_physician_overrides(station: Station) -> None:
    donation_id = register(station, sex="F")
    through_test(station, donation_id, hb=110.0)  # the seed's example: female Hb 110 < 115
    before = _event_count(station)
    with pytest.raises(WorkflowError, match=r"hb\.female\.min"):
        station.app.assess(donation_id, station.signer("P002"), decision="eligible")
    assert _event_count(station) == before
    with pytest.raises(WorkflowError, match="physician"):
        station.app.assess(
            donation_id,
            station.signer("N001"),
            decision="eligible",
            overrides={"hb.female.min": "retest"},
        )
    station.app.assess(
        donation_id,
        station.signer("P002"),
        decision="eligible",
        overrides={"hb.female.min": "retest on venous sample 116 g/L"},
    )
    record = station.app.donation(donation_id).steps[Step.ASSESSMENT]
    assert {"rule_id": "hb.female.min", "outcome": "overridden"}.items() <= next(
        o for o in record["rule_outcomes"] if o["rule_id"] == "hb.female.min"
    ).items()
    assert station.verifier().verify().ok


def test_unacknowledged_plausibility_alert_blocks_the_step(station: Station) -> None:
    donation_id = register(station)
    before = _event_count(station)
    with pytest.raises(WorkflowError):
        through_test(station, donation_id, weight_kg=160.0)  # > 150 kg plausibility alert
    # consent was recorded (a real step); the exam with the unacknowledged alert was not
    assert Step.EXAM not in station.app.donation(donation_id).steps
    assert _event_count(station) == before + 2  # donor certificate + consent


def test_nothing_after_sealing_but_amendments(station: Station) -> None:
    donation_id = complete(station)
    with pytest.raises(WorkflowError, match="sealed"):
        station.app.record_reaction(
            donation_id,
            station.signer("N001"),
            reaction_type="vasovagal",
            severity="mild",
            onset_at="",
            treatment="",
            outcome="recovered",
        )
    amend_temperature(station, donation_id)
    donation = station.app.donation(donation_id)
    assert donation.steps["general_exam"]["values"]["temperature_c"] == 36.9
    assert donation.amendments[0]["old_value"] == 36.6
    assert station.verifier().verify().ok


def test_amendment_needs_a_reason_and_writes_nothing_without_one(station: Station) -> None:
    donation_id = complete(station)
    before = _event_count(station)
    with pytest.raises(WorkflowError, match="reason"):
        amend_temperature(station, donation_id, reason="  ")
    assert _event_count(station) == before


def test_missing_cosignature_is_recorded_at_sealing(station: Station) -> None:
    donation_id = complete(station, cosign=False)
    donation = station.app.donation(donation_id)
    sealed = [
        e
        for e in station.app.repository.event_store.get(donation_id)
        if type(e).__name__ == "DonationRecordSealed"
    ]
    assert len(sealed) == 1
    slots = {s["slot"] for s in sealed[0].missing_slots}  # type: ignore[attr-defined]
    assert "informed_consent:examining_physician" in slots
    assert donation.status == "sealed"


def test_duplicate_donation_number_is_refused(station: Station) -> None:
    first = complete(station)
    number = station.app.donation(first).donation_no
    other = register(station, sex="M")
    through_test(station, other)
    station.app.assess(other, station.signer("P002"), decision="eligible")
    with pytest.raises(WorkflowError, match="already assigned"):
        station.app.assign_number(other, station.system, number)


def test_id_number_is_never_stored_in_clear(station: Station) -> None:
    number = make_id(date(1990, 5, 17), "F")
    donation_id = register(station, id_number=number, birth=date(1990, 5, 17))
    id_number = station.app.donation(donation_id).steps["registration"]["values"]
    assert id_number["id_number_masked"].endswith("*" * 12)
    for note in station.app.recorder.select_notifications(1, 1000):
        event = station.app.mapper.to_domain_event(note)
        assert number.encode() not in event_canonical_bytes(event)


def test_bad_id_number_writes_nothing(station: Station) -> None:
    before = _event_count(station)
    with pytest.raises(WorkflowError, match="check digit"):
        register(station, id_number="110105194912310021")
    assert _event_count(station) == before
