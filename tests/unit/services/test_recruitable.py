"""services.recruitable: donors eligible again by the GB 18467 interval, age and deferrals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ledger.rules.loading import load_rule_set_ref
from projections.eventtime import station_today
from services import recruitable, recruitment
from services.station import Station
from signing.errors import InputError
from tests.unit.services.test_steps import EXAM, TEST, registered, step, through_collection
from tests.workflow import make_id

BIRTH = date(1985, 3, 4)  # the birth date `registered` uses


def today() -> date:
    return station_today()


def listed(station: Station, **kw: object) -> list[recruitable.RecruitableDonor]:
    return recruitable.recruitable_donors(station, recruitable.RecruitableQuery(**kw))  # type: ignore[arg-type]


@pytest.fixture
def collected(sqlite_station: Station) -> Station:
    through_collection(sqlite_station, registered(sqlite_station, sequence=7), "9000626100071")
    return sqlite_station


def test_the_rule_data_agrees_with_the_gb18467_rule_set() -> None:
    rules = recruitable.recruitment_rules()
    limits = {r.id: r.limit for r in load_rule_set_ref(rules["based_on"]).rules}
    assert rules["min_days_since_last_apheresis"] == limits["interval.platelets_to_platelets.min"]
    assert rules["age_min"] == limits["age.min"]
    assert rules["age_max_first_time"] == limits["age.max"]
    assert rules["age_max_repeat"] == limits["age.max.repeat_donor"]


def test_a_donor_is_not_recruitable_before_the_interval(collected: Station) -> None:
    assert listed(collected, as_of=today() + timedelta(days=13)) == []


def test_a_donor_is_recruitable_after_the_interval_masked(collected: Station) -> None:
    [row] = listed(collected, as_of=today() + timedelta(days=14))
    assert row.id_number_masked == make_id(BIRTH, "F", sequence=7)[:6] + "*" * 12
    assert row.name == "张*" and row.days_since_last == 14
    assert (row.donor_type, row.collections, row.contacts) == ("first_time", 1, 0)
    assert row.abo == TEST["abo"] and row.last_product == "platelets_single"


def test_a_first_time_donor_over_55_is_not_recruitable(collected: Station) -> None:
    over = BIRTH.replace(year=BIRTH.year + 56)
    assert listed(collected, as_of=over) == []
    lapsed = BIRTH.replace(year=BIRTH.year + 55)
    [row] = listed(collected, as_of=lapsed)
    assert row.donor_type == "lapsed" and row.age == 55


def test_a_deferred_donor_is_excluded(sqlite_station: Station) -> None:
    through_collection(sqlite_station, registered(sqlite_station, sequence=7), "9000626100071")
    deferred = registered(sqlite_station, sequence=8)
    step(sqlite_station, deferred, "informed_consent", "C001", fingerprint_verified=True,
         answers={"recent_illness": False}, consent=True)  # fmt: skip
    step(sqlite_station, deferred, "general_exam", "P001", **EXAM)
    step(sqlite_station, deferred, "pre_donation_test", "T001", **TEST)
    step(sqlite_station, deferred, "eligibility", "P002", decision="deferred",
         defer_reason="low haemoglobin")  # fmt: skip
    masked = {r.id_number_masked for r in listed(sqlite_station, as_of=today() + timedelta(30))}
    assert masked == {make_id(BIRTH, "F", sequence=7)[:6] + "*" * 12}


def test_the_query_filters_by_type_abo_and_dates(collected: Station) -> None:
    later = today() + timedelta(days=20)
    assert listed(collected, as_of=later, donor_type="regular") == []
    assert len(listed(collected, as_of=later, donor_type="first_time")) == 1
    other = "B" if TEST["abo"] != "B" else "A"
    assert listed(collected, as_of=later, abo=other) == []
    assert listed(collected, as_of=later, last_from=today() + timedelta(days=1)) == []
    assert len(listed(collected, as_of=later, last_to=today())) == 1


def test_the_recruitment_history_is_shown(collected: Station) -> None:
    recruitment.record_contact(
        collected,
        recruitment.RecordContact(
            "Z001", make_id(BIRTH, "F", sequence=7), "sms", "declined", "busy"
        ),
    )
    [row] = listed(collected, as_of=today() + timedelta(days=20))
    assert (row.contacts, row.last_contact_outcome) == (1, "declined")


def test_a_bad_query_is_refused(collected: Station) -> None:
    with pytest.raises(InputError, match="donor type"):
        listed(collected, donor_type="vip")
    with pytest.raises(InputError, match="ABO"):
        listed(collected, abo="Z")
