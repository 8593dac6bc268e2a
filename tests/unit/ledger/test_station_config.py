"""StationConfig refuses a bad parameter itself, whatever the entry point (issue 9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from ledger.events import WorkflowError
from ledger.registry import StationConfig
from services.station import Station
from tests.conftest import make_settings


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Station.initialise(make_settings(tmp_path / "home", db)) as st:
        yield st


def _count(station: Station) -> int:
    return len(station.app.recorder.select_notifications(1, 1_000_000))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mpv_enabled", "yes", "mpv_enabled must be bool"),
        ("mpv_enabled", 1, "mpv_enabled must be bool"),
        ("station_name", True, "station_name must be str"),
        ("forms", ["consent", "audit"], "forms must be a non-empty list"),
        ("forms", [], "forms must be a non-empty list"),
        ("timestamp_mode", "sometimes", "timestamp_mode must be one of"),
        ("required_signatures", {"collection": []}, "must list distinct role names"),
        ("required_signatures", {"collection": ["nurse", "nurse"]}, "distinct role names"),
        ("parameter_set", "station-defaults@9", "unknown parameter 'parameter_set'"),
    ],
)
def test_a_bad_setting_change_is_refused_by_the_aggregate_and_writes_nothing(
    station: Station, key: str, value: object, message: str
) -> None:
    before = _count(station)
    config = station.app.station()
    with pytest.raises(WorkflowError, match=message):
        config.change(station.signer("A001"), key, value, "test")
    with pytest.raises(WorkflowError, match=message):
        station.app.change_station_setting(station.signer("A001"), key, value, "test")
    assert _count(station) == before
    assert station.app.station().parameters.get(key) != value


def test_a_good_setting_change_is_recorded(station: Station) -> None:
    before = _count(station)
    station.app.change_station_setting(
        station.signer("A001"), "timestamp_mode", "per_event", "CAdES-T for audits"
    )
    assert station.app.station().parameters["timestamp_mode"] == "per_event"
    assert _count(station) == before + 1


def test_configuring_a_station_with_a_bad_parameter_is_refused(station: Station) -> None:
    parameters = dict(station.app.station().parameters)
    parameters["forms"] = ["audit"]
    with pytest.raises(WorkflowError, match="forms must be"):
        StationConfig.configure(station.signer("A001"), f"OTHER-{uuid4().hex[:6]}", parameters)
    del parameters["forms"]
    config = StationConfig.configure(station.signer("A001"), "OTHER-2", parameters)
    assert "forms" not in config.parameters  # a v1-shaped set: forms default where read
