"""Station settings: read the current parameters, change one with a reason.

A change is validated here, below every entry point (CLI, HTTP): the parameter must exist, keep
its type, and pass the ledger's own value check (`ledger.rules.check_parameter_value`, the check
a published parameter set passes). Only then is the signed StationSettingChanged event recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.rules import check_parameter_value
from services.staff import staff_signer
from services.station import Station
from signing.errors import InputError

#: Recorded at configuration (the published parameter set the station started from): a
#: reference, not a setting, so it cannot be changed.
NOT_SETTINGS = frozenset({"parameter_set"})


def parse_setting_value(text: str) -> Any:
    """A value as typed by a person: JSON (``36.8``, ``true``, ``"text"``, ``["a"]``) or,
    failing that, the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class ChangeStationSetting:
    key: str
    value: Any  # a JSON value
    reason: str
    by: str = "A001"


@dataclass(frozen=True)
class SettingChanged:
    key: str
    old_value: Any
    new_value: Any


def check_setting(current: Mapping[str, Any], key: str, value: Any) -> None:
    """Raise InputError unless `value` may replace the station parameter `key`."""
    if key in NOT_SETTINGS:
        raise InputError(f"{key} names the published parameter set; it is not a setting")
    if key not in current:
        raise InputError(f"unknown station parameter {key!r}; expected one of {', '.join(current)}")
    old = current[key]
    if type(old) is not type(value):
        raise InputError(f"{key} holds {type(old).__name__}, not {type(value).__name__}")
    try:
        check_parameter_value(key, value)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def station_settings(station: Station) -> dict[str, Any]:
    """The station's current parameters."""
    return dict(station.app.station().parameters)


def change_station_setting(station: Station, command: ChangeStationSetting) -> SettingChanged:
    """Validate, then record one signed setting change. Nothing is written when refused."""
    if not command.reason.strip():
        raise InputError("a setting change needs a reason")
    current = station.app.station().parameters
    check_setting(current, command.key, command.value)
    admin = staff_signer(station, command.by)
    old = current[command.key]
    station.app.change_station_setting(admin, command.key, command.value, command.reason)
    return SettingChanged(command.key, old, command.value)
