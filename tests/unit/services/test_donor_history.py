"""Regional donor history (issue 15 item 5): the answer of a regional service over HTTP is
recorded as a signed `DonorHistoryChecked` at registration and the eligibility rules use it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from ledger.donor_history import DonorHistoryCheck, history_check_id_for
from ledger.events import WorkflowError
from services.donor_history import HttpDonorHistorySource, RegionalServiceUnavailable, StandInServer
from services.station import Station
from services.steps import RegisterDonation, register_donation
from services.verification import verify_station
from tests.conftest import make_settings
from tests.workflow import make_id, through_test

BIRTH = date(1985, 3, 4)


def _days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


@pytest.fixture
def region() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


@pytest.fixture
def station(tmp_path: Path, region: StandInServer) -> Iterator[Station]:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    settings = settings.model_copy(update={"donor_history_url": region.url})
    with Station.initialise(settings) as st:
        yield st


def _register(station: Station, sequence: int) -> UUID:
    command = RegisterDonation(
        staff_id="C001", id_type="resident_id", id_number=make_id(BIRTH, "F", sequence=sequence),
        name="张三", sex="F", birth_date=BIRTH, phone="13800000000", product="platelets_single",
    )  # fmt: skip
    return register_donation(station, command).donation_id


def test_a_regional_platelet_donation_10_days_ago_is_refused_naming_the_rule(
    station: Station, region: StandInServer
) -> None:
    region.records[make_id(BIRTH, "F", sequence=41)] = {
        "donations": [
            {"date": _days_ago(10), "product": "platelets_single", "site": "温州中心血站"}
        ]
    }
    donation_id = _register(station, 41)
    check: object = station.app.repository.get(history_check_id_for(donation_id))
    assert isinstance(check, DonorHistoryCheck) and region.queries == 1
    assert check.source == region.name and check.donations[0]["site"] == "温州中心血站"
    through_test(station, donation_id)
    with pytest.raises(WorkflowError) as refused:
        station.app.assess(donation_id, station.signer("P002"), decision="eligible")
    assert "regional.interval.platelets_to_platelets.min value 10 limit 14 (fail)" in str(
        refused.value
    )
    # the physician defers; the recorded outcome names the regional rule; the ledger verifies
    station.app.assess(
        donation_id, station.signer("P002"), decision="deferred", defer_reason="regional 10 d"
    )
    outcomes = station.app.donation(donation_id).steps["eligibility"]["rule_outcomes"]
    failed = [o for o in outcomes if o["outcome"] == "fail"]
    assert [o["rule_id"] for o in failed] == ["regional.interval.platelets_to_platelets.min"]
    assert failed[0]["value"] == 10
    assert verify_station(station).ok


def test_an_open_regional_deferral_is_refused_and_an_ended_one_is_not(
    station: Station, region: StandInServer
) -> None:
    region.records[make_id(BIRTH, "F", sequence=42)] = {
        "deferrals": [{"from": _days_ago(30), "until": None, "reason": "ALT", "site": "宁波"}]
    }
    region.records[make_id(BIRTH, "F", sequence=43)] = {
        "deferrals": [{"from": _days_ago(300), "until": _days_ago(100), "reason": "Hb"}],
        "donations": [{"date": _days_ago(40), "product": "platelets_double", "site": "宁波"}],
    }
    deferred, cleared = _register(station, 42), _register(station, 43)
    through_test(station, deferred)
    through_test(station, cleared)
    with pytest.raises(WorkflowError, match=r"regional\.deferral\.open value 1 limit 0 \(fail\)"):
        station.app.assess(deferred, station.signer("P002"), decision="eligible")
    station.app.assess(cleared, station.signer("P002"), decision="eligible")
    passed = station.app.donation(cleared).steps["eligibility"]["rule_outcomes"]
    assert {"regional.deferral.open", "regional.interval.platelets_to_platelets.min"} <= {
        o["rule_id"] for o in passed if o["outcome"] == "pass"
    }
    assert verify_station(station).ok


def test_an_unreachable_regional_service_refuses_the_registration_and_writes_nothing(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    closed = "http://127.0.0.1:9/donor-history"  # the discard port: nothing listens
    with pytest.raises(RegionalServiceUnavailable):
        HttpDonorHistorySource(closed, timeout_s=1).query("resident_id", "x")
    settings = settings.model_copy(update={"donor_history_url": closed})
    with Station.initialise(settings) as station:
        before = station.app.recorder.max_notification_id()
        with pytest.raises(RegionalServiceUnavailable, match="regional donor history"):
            _register(station, 44)
        assert station.app.recorder.max_notification_id() == before
