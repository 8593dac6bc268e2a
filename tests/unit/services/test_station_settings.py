"""The station settings service refuses a bad parameter itself, whatever the entry point."""

from __future__ import annotations

from typing import Any

import pytest

from services.station import Station
from services.station_settings import (
    ChangeStationSetting,
    change_station_setting,
    parse_setting_value,
    station_settings,
)
from signing.errors import InputError


def _events(station: Station) -> int:
    return len(station.app.recorder.select_notifications(1, 100_000))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("timestamp_mode", "hourly", "timestamp_mode must be one of"),
        ("forms", ["audit"], "forms must be a non-empty list"),
        ("forms", ["consent", "consent"], "forms must be a non-empty list"),
        ("forms", [], "forms must be a non-empty list"),
        ("mpv_enabled", "yes", "mpv_enabled holds bool, not str"),
        ("mpv_enabled", 1, "mpv_enabled holds bool, not int"),
        ("required_signatures", [], "holds dict, not list"),
        ("no_such_key", 1, "unknown station parameter 'no_such_key'"),
        ("parameter_set", "station-defaults@9", "not a setting"),
    ],
)
def test_a_bad_station_parameter_is_refused_by_the_service_and_nothing_written(
    sqlite_station: Station, key: str, value: Any, message: str
) -> None:
    before = _events(sqlite_station)
    parameters = station_settings(sqlite_station)
    with pytest.raises(InputError, match=message):
        change_station_setting(sqlite_station, ChangeStationSetting(key, value, "test"))
    assert _events(sqlite_station) == before
    assert station_settings(sqlite_station) == parameters


def test_a_change_needs_a_reason_and_a_known_signer(sqlite_station: Station) -> None:
    before = _events(sqlite_station)
    with pytest.raises(InputError, match="needs a reason"):
        change_station_setting(sqlite_station, ChangeStationSetting("mpv_enabled", True, " "))
    with pytest.raises(InputError, match="no credential for staff NOBODY"):
        change_station_setting(
            sqlite_station, ChangeStationSetting("mpv_enabled", True, "upgrade", by="NOBODY")
        )
    assert _events(sqlite_station) == before


def test_a_good_change_is_recorded_with_its_old_value(sqlite_station: Station) -> None:
    old = station_settings(sqlite_station)["timestamp_mode"]
    changed = change_station_setting(
        sqlite_station, ChangeStationSetting("timestamp_mode", "per_event", "CAdES-T")
    )
    assert (changed.old_value, changed.new_value) == (old, "per_event")
    assert station_settings(sqlite_station)["timestamp_mode"] == "per_event"


def test_values_are_json_or_plain_text() -> None:
    assert parse_setting_value("true") is True
    assert parse_setting_value('["consent"]') == ["consent"]
    assert parse_setting_value("36.8") == 36.8
    assert parse_setting_value("per_event") == "per_event"
