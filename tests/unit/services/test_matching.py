"""services.matching: a signed request for a named patient, donors ranked, contacts linked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest

from ledger.events import WorkflowError
from ledger.recruitment import Recruitment
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
    later = datetime.now(UTC).date() + timedelta(days=20)
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
