"""services.recruitment: signed contacts, statistics per month and recruiter, seed indicator."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import pytest

from ledger.events import WorkflowError
from ledger.recruitment import Recruitment
from projections.eventtime import station_today
from services import recruitment
from services.station import Station
from services.verification import verify_station
from signing.errors import InputError
from tests.unit.services.test_steps import registered, through_collection
from tests.workflow import make_id

BIRTH = date(1985, 3, 4)


def contact(station: Station, sequence: int = 7, **kw: str) -> recruitment.ContactRecorded:
    fields = {"staff_id": "Z001", "id_number": make_id(BIRTH, "F", sequence=sequence),
              "channel": "phone", "outcome": "agreed"} | kw  # fmt: skip
    return recruitment.record_contact(station, recruitment.RecordContact(**fields))


def today() -> date:
    return station_today()


def test_a_contact_is_a_signed_event_of_the_recruiter(station: Station) -> None:
    registered(station)
    done = contact(station)
    assert done.id_number_masked.endswith("*" * 12)
    stored: object = station.app.repository.get(UUID(done.contact_id))
    assert isinstance(stored, Recruitment) and stored.outcome == "agreed"
    assert verify_station(station).verdict.value == "PASSED"


def test_a_staff_member_without_the_recruiter_role_cannot_record_a_contact(
    sqlite_station: Station,
) -> None:
    registered(sqlite_station)
    with pytest.raises(WorkflowError, match="recruiter"):
        contact(sqlite_station, staff_id="C001")


def test_an_unknown_donor_cannot_be_contacted(sqlite_station: Station) -> None:
    with pytest.raises(InputError, match="no donor"):
        contact(sqlite_station, sequence=99)


def test_an_outcome_other_than_agreed_needs_a_reason(sqlite_station: Station) -> None:
    registered(sqlite_station)
    with pytest.raises(WorkflowError, match="reason"):
        contact(sqlite_station, outcome="declined")
    assert contact(sqlite_station, outcome="declined", reason="travelling").outcome == "declined"


def test_an_unknown_outcome_or_channel_is_refused(sqlite_station: Station) -> None:
    registered(sqlite_station)
    with pytest.raises(WorkflowError, match="outcome"):
        contact(sqlite_station, outcome="maybe", reason="x")
    with pytest.raises(WorkflowError, match="channel"):
        contact(sqlite_station, channel="fax")


def test_statistics_count_contacts_per_month_and_recruiter_by_outcome(
    sqlite_station: Station,
) -> None:
    registered(sqlite_station, sequence=7)
    registered(sqlite_station, sequence=8)
    contact(sqlite_station, sequence=7)
    contact(sqlite_station, sequence=8, outcome="unreachable", reason="no answer")
    contact(sqlite_station, sequence=8, outcome="lapsed", reason="moved away")
    stats = recruitment.recruitment_statistics(
        sqlite_station, recruitment.RecruitmentStatsQuery(today(), today())
    )
    [row] = stats.rows
    assert (row.month, row.recruiter) == (today().strftime("%Y-%m"), "Z001")
    assert (row.contacts, row.agreed, row.declined, row.unreachable, row.lapsed) == (3, 1, 0, 1, 1)
    before = recruitment.recruitment_statistics(
        sqlite_station,
        recruitment.RecruitmentStatsQuery(today() - timedelta(days=60), today() - timedelta(1)),
    )
    assert before.rows == []


def test_the_seed_indicator_counts_collections_after_a_contact(sqlite_station: Station) -> None:
    contacted = registered(sqlite_station, sequence=7)
    contact(sqlite_station, sequence=7)
    through_collection(sqlite_station, contacted, "9000626100071")
    walk_in = registered(sqlite_station, sequence=8)
    through_collection(sqlite_station, walk_in, "9000626100082")
    stats = recruitment.recruitment_statistics(
        sqlite_station, recruitment.RecruitmentStatsQuery(today(), today())
    )
    assert (stats.collections, stats.collections_after_contact) == (2, 1)
    assert stats.recruited_share == 0.5


def test_a_contact_after_the_collection_does_not_count(sqlite_station: Station) -> None:
    donation = registered(sqlite_station, sequence=7)
    through_collection(sqlite_station, donation, "9000626100071")
    contact(sqlite_station, sequence=7)
    stats = recruitment.recruitment_statistics(
        sqlite_station, recruitment.RecruitmentStatsQuery(today(), today())
    )
    assert (stats.collections, stats.collections_after_contact) == (1, 0)
