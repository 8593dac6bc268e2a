"""services.matching: a signed request for a named patient, donors ranked, contacts linked."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import pytest

from ledger.events import WorkflowError
from ledger.recruitment import Recruitment
from projections.eventtime import station_today
from services import matching, recruitment
from services.station import Station
from services.verification import verify_station
from signing.errors import InputError
from tests.unit.services.test_steps import TEST, registered, through_collection
from tests.workflow import make_id

BIRTH = date(1985, 3, 4)


def request(station: Station, **kw: str) -> matching.MatchRequested:
    fields = {"staff_id": "Z001", "hospital": "浙大一院", "patient_name": "李四",
              "abo": str(TEST["abo"]), "hla": "A*02:01 B*46:01", "hpa": "1a1a"} | kw  # fmt: skip
    return matching.request_match(station, matching.RequestMatch(**fields))


def test_a_request_is_signed_and_masks_the_patient(station: Station) -> None:
    done = request(station)
    assert done.patient_name_masked == "李*"
    assert verify_station(station).verdict.value == "PASSED"


def test_only_a_recruiter_may_open_a_request(sqlite_station: Station) -> None:
    with pytest.raises(WorkflowError, match="recruiter"):
        request(sqlite_station, staff_id="C001")


def test_a_request_without_hla_or_hpa_is_refused(sqlite_station: Station) -> None:
    with pytest.raises(WorkflowError, match="HLA or HPA"):
        request(sqlite_station, hla="", hpa="")


def test_donors_are_ranked_abo_identical_first_then_most_recent(sqlite_station: Station) -> None:
    through_collection(sqlite_station, registered(sqlite_station, sequence=7), "9000626100071")
    other = "B" if TEST["abo"] != "B" else "A"
    done = request(sqlite_station, abo=other)
    later = station_today() + timedelta(days=20)
    [row] = matching.matched_donors(sqlite_station, matching.MatchQuery(done.request_id, later))
    assert (row.compatibility, row.hla_hpa) == ("abo_other", "not typed")
    same = request(sqlite_station)
    [row] = matching.matched_donors(sqlite_station, matching.MatchQuery(same.request_id, later))
    assert row.compatibility == "abo_identical"


def test_a_contact_for_the_request_carries_it_and_an_unknown_request_is_refused(
    sqlite_station: Station,
) -> None:
    registered(sqlite_station, sequence=7)
    done = request(sqlite_station)
    number = make_id(BIRTH, "F", sequence=7)
    linked = recruitment.RecordContact(
        "Z001", number, "phone", "agreed", request_id=done.request_id
    )
    contact = recruitment.record_contact(sqlite_station, linked)
    stored: object = sqlite_station.app.repository.get(UUID(contact.contact_id))
    assert isinstance(stored, Recruitment) and stored.request_id == done.request_id
    with pytest.raises(InputError, match="no matched-recruitment request"):
        bad = recruitment.RecordContact(
            "Z001", number, "phone", "agreed", request_id="00000000-0000-0000-0000-000000000000"
        )
        recruitment.record_contact(sqlite_station, bad)


def _typing(number: str, hla: str, hpa: str, staff_id: str = "T001") -> matching.RecordTyping:
    return matching.RecordTyping(staff_id, number, hla, hpa, "HLA 实验室", "PCR-SSO")


def test_typed_donors_rank_hpa_compatible_first_then_by_hla_and_the_ledger_verifies(
    sqlite_station: Station,
) -> None:
    for sequence, number in ((7, "9000626100071"), (9, "9000626100091"), (11, "9000626100111")):
        through_collection(sqlite_station, registered(sqlite_station, sequence=sequence), number)
    ids = {s: make_id(BIRTH, "F", sequence=s) for s in (7, 9, 11)}
    with pytest.raises(WorkflowError, match="typing"):
        matching.record_typing(sqlite_station, _typing(ids[7], "A*02", "", staff_id="Z001"))
    # 7: HPA-incompatible though HLA-identical; 9: compatible, 2 HLA mismatches; 11: untyped
    matching.record_typing(sqlite_station, _typing(ids[7], "A*02 A*11 B*46 B*58", "1a1b"))
    matching.record_typing(sqlite_station, _typing(ids[9], "A*24 A*11 B*13 B*58", "1a1a"))
    done = request(sqlite_station, hla="A*02 A*11 B*46 B*58", hpa="1a1a")
    later = station_today() + timedelta(days=20)
    rows = matching.matched_donors(sqlite_station, matching.MatchQuery(done.request_id, later))
    order = [r.donor.id_number_masked for r in rows]
    assert order == [ids[9][:6] + "*" * 12, ids[7][:6] + "*" * 12, ids[11][:6] + "*" * 12]
    assert (rows[0].hpa, rows[0].hla_mismatches) == ("compatible", 2)
    assert (rows[1].hpa, rows[1].hla_mismatches) == ("incompatible", 0)
    assert rows[2].hla_hpa == "not typed" and rows[2].hla_mismatches is None
    # a later typing of the same donor supersedes the earlier one
    matching.record_typing(sqlite_station, _typing(ids[7], "A*02 A*11 B*46 B*58", "1a1a"))
    rows = matching.matched_donors(sqlite_station, matching.MatchQuery(done.request_id, later))
    assert rows[0].donor.id_number_masked == ids[7][:6] + "*" * 12
    assert (rows[0].hpa, rows[0].hla_mismatches) == ("compatible", 0)
    assert verify_station(sqlite_station).verdict.value == "PASSED"


def test_a_request_with_an_unreadable_hla_type_is_refused(sqlite_station: Station) -> None:
    with pytest.raises(WorkflowError, match="HLA"):
        request(sqlite_station, hla="DRB1*04")
