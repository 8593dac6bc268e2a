"""DonationRecord, AuditTrail, DonorRecord and ArchiveQueue from hand-built event sequences."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ledger.registry import StationConfig
from projections import queries
from projections.audit_trail import field_trails
from tests.unit.projections.builder import (
    DonationEvents,
    at,
    enrolment,
    event,
    interleave,
    projected,
    staff_certificate,
    station_configured,
)


def test_donation_record_holds_current_values_and_every_slot_state(tmp_path: Path) -> None:
    done = DonationEvents().complete(
        at("2026-03-10T02:00"), "9000626000001", missing=["post_collection:donor"]
    )
    done.amend(at("2026-03-10T05:00"), "general_exam", "temperature_c", 36.6, 36.8)
    done.amend(at("2026-03-10T06:00"), "general_exam", "temperature_c", 36.8, 36.9)
    deferred = DonationEvents().deferred(at("2026-03-10T03:00"))
    open_one = DonationEvents().register(at("2026-03-10T04:00"))
    open_one.consent(at("2026-03-10T04:01")).reaction(at("2026-03-10T04:02"))
    events = interleave(done.events, deferred.events, open_one.events)
    with projected(tmp_path, events) as views:
        record = queries.donation_record(views, "9000626000001")
        deferred_record = queries.donation_record_by_id(views, str(deferred.id))
        open_record = queries.donation_record_by_id(views, str(open_one.id))
    assert record is not None and deferred_record is not None and open_record is not None
    exam = record["steps"]["general_exam"]
    assert exam["values"]["temperature_c"] == 36.9
    assert (exam["amendments"], exam["amended_fields"]) == (2, ["temperature_c"])
    assert (record["status"], record["final_status"]) == ("sealed", "completed")
    assert record["identity"]["id_number_masked"] == "330106************"
    slots = {s["slot"]: s for s in record["slots"]}
    assert slots["informed_consent:examining_physician"]["state"] == "signed"
    assert slots["informed_consent:examining_physician"]["signed_by"] == "STAFF:P001"
    assert slots["post_collection:donor"]["state"] == "missing"
    deferred_slots = {s["slot"]: s["state"] for s in deferred_record["slots"]}
    assert deferred_slots == {
        "informed_consent:examining_physician": "signed",
        "pre_collection:donor": "not_reached",
        "post_collection:donor": "not_reached",
    }
    assert (deferred_record["status"], deferred_record["decision"]) == ("sealed", "deferred")
    assert {s["state"] for s in open_record["slots"]} == {"pending"}
    assert open_record["reactions"][0]["values"]["reaction_type"] == "vasovagal"
    fired = record["steps"]["collection"]["rules"]
    assert fired["passed"] == ["collection.volume.plausible"] and fired["fired"] == []


def test_donation_record_slots_not_required_when_e_signature_is_off(tmp_path: Path) -> None:
    off = DonationEvents(e_signature=False).register(at("2026-03-10T02:00"))
    with projected(tmp_path, off.events) as views:
        record = queries.donation_record_by_id(views, str(off.id))
    assert record is not None
    assert {s["state"] for s in record["slots"]} == {"not_required"}


def test_audit_trail_keeps_the_original_and_every_amendment_in_order(tmp_path: Path) -> None:
    done = DonationEvents().complete(at("2026-03-10T02:00"), "9000626000001")
    done.amend(at("2026-03-10T05:00"), "general_exam", "temperature_c", 36.6, 36.8)
    done.amend(at("2026-03-10T06:00"), "general_exam", "weight_kg", 60.0, 61.5, who="P002")
    done.amend(at("2026-03-11T06:00"), "general_exam", "temperature_c", 36.8, 36.9)
    events = [staff_certificate("P001", "李医师", at("2026-01-01T00:00")), *done.events]
    with projected(tmp_path, events) as views:
        trail = queries.audit_trail(views, "9000626000001")
        signers = queries.signers(views)
    assert trail is not None
    temperature = [e for e in field_trails(trail) if e.field == "temperature_c"]
    assert [(e.seq, e.value, e.old_value) for e in temperature] == [
        (0, 36.6, None),
        (1, 36.8, 36.6),
        (2, 36.9, 36.8),
    ]
    assert [e.recorded_at[:16] for e in temperature] == [
        "2026-03-10T02:03",
        "2026-03-10T05:00",
        "2026-03-11T06:00",
    ]
    assert temperature[1].reason == "transcription error"
    weight = [e for e in field_trails(trail) if e.field == "weight_kg"]
    assert [(e.value, e.actor) for e in weight] == [(60.0, "STAFF:P001"), (61.5, "STAFF:P002")]
    # Every field of every recorded step has its original, positions point at the events.
    originals = [e for e in field_trails(trail) if e.seq == 0]
    assert {e.step for e in originals} >= {"registration", "general_exam", "heat_seal"}
    amended_event = done.events[-1]
    assert temperature[2].event_hash == amended_event.event_hash
    as_stored = amended_event.signature.encode("ascii")  # base64 of the DER signature
    assert temperature[2].signature_sha256 == hashlib.sha256(as_stored).hexdigest()
    consent = trail["steps"]["informed_consent"]
    assert [c["slot"] for c in consent["cosignatures"]] == ["informed_consent:examining_physician"]
    assert trail["sealed"]["final_status"] == "completed"
    assert signers["STAFF:P001"]["name"] == "李医师"


def test_donor_record_visits_deferrals_and_next_dates(tmp_path: Path) -> None:
    first = DonationEvents()
    first.complete(at("2026-03-10T02:00"), "9000626000001", volume=260)
    again = DonationEvents(donor_ref=first.donor_ref)
    again.deferred(at("2026-03-20T02:00"), reason="hb.female.min")
    again.amend(at("2026-03-20T05:00"), "general_exam", "weight_kg", 60.0, 59.0)
    first.amend(at("2026-03-21T02:00"), "collection", "product_volume_ml", 260, 240, who="N001")
    events = interleave([enrolment(first, at("2026-03-10T01:59"))], first.events, again.events)
    with projected(tmp_path, events) as views:
        donor = queries.donor_record(views, str(first.donor_id))
    assert donor is not None
    assert donor["identity"]["id_number_masked"] == "330106************"
    assert [v["donation_no"] for v in donor["visits"]] == ["9000626000001", ""]
    assert donor["visits"][0]["product_volume_ml"] == 240  # the amendment applies
    assert donor["visits"][0]["collected_on"] == "2026-03-10"
    assert donor["visits"][1]["status"] == "sealed"
    assert [(d["reason"], d["by"], d["deferred_on"]) for d in donor["deferrals"]] == [
        ("hb.female.min", "P002", "2026-03-20")
    ]
    assert donor["collections"] == 1
    assert donor["next_eligible"]["platelets_single"]["date"] == "2026-03-24"
    assert donor["next_eligible"]["whole_blood"]["date"] == "2026-04-07"


def test_archive_queue_lists_sealed_completed_donations(tmp_path: Path) -> None:
    complete = DonationEvents(name="欧阳娜娜").complete(at("2026-03-10T02:00"), "9000626000001")
    incomplete = DonationEvents().complete(
        at("2026-03-10T03:00"), "9000626000002", missing=["pre_collection:donor"]
    )
    deferred = DonationEvents().deferred(at("2026-03-10T04:00"))
    open_one = DonationEvents().register(at("2026-03-10T05:00"))
    station = station_configured("S1", at("2026-01-01T00:00"), department="献血服务一科")
    renamed = event(
        StationConfig.StationSettingChanged,
        station.originator_id,
        2,
        at("2026-03-10T02:30"),
        "A001",
        key="department",
        old_value="献血服务一科",
        new_value="献血服务二科",
        reason="reorganisation",
    )
    events = [
        station,
        *interleave(complete.events, [renamed], incomplete.events, deferred.events),
        *open_one.events,
    ]
    with projected(tmp_path, events) as views:
        queue = queries.archive_queue(views)
    assert [item["donation_no"] for item in queue] == ["9000626000001", "9000626000002"]
    first, second = queue
    assert first["catalogue"] == {
        "year": 2026,
        "name": "欧***",
        "retention": "10年",
        "collected_on": "2026-03-10",
        "id_type": "resident_id",
        "id_number_masked": "330106************",
        "donation_no": "9000626000001",
        "department": "献血服务一科",  # the setting in force when the record was sealed
        "forms": 3,
    }
    assert second["catalogue"]["department"] == "献血服务二科"  # sealed after the change
    assert first["ready"] is True
    assert (second["ready"], second["missing_signatures"]) == (False, 1)
