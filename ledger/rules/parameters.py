"""Station parameters (switches and form text, kind "parameter"): the parameter-set files under
``ledger/rulesets/`` and `check_parameter_value`, the one check of a parameter's value that the
files and the StationConfig aggregate's change command share."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from ledger.rules.loading import (
    _IDENT,
    _NAME,
    _VERSION,
    _notes,
    _packaged,
    _packaged_refs,
    _parse_json,
)

_PARAMETER_TYPES: Mapping[str, type] = MappingProxyType(
    {
        "e_signature_enabled": bool,
        "mpv_enabled": bool,
        "station_name": str,
        "department": str,
        "form_phone_callback": str,
        "form_template_code": str,
        "required_signatures": dict,
        "forms": list,
        "timestamp_mode": str,
    }
)
#: The signed forms a station can produce per donation (``documents.forms.model.FormKind``).
FORM_NAMES = ("consent", "registration", "collection")
#: "batch": Merkle batches of events share one RFC 3161 token; "per_event": each event's
#: signature value also gets its own token (CAdES-T), at one TSA request per event.
TIMESTAMP_MODES = ("batch", "per_event")
#: Parameters added after station-defaults@1: a parameter set without them (a published v1)
#: loads with these values; one that has them is validated.
_PARAMETER_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"forms": FORM_NAMES, "timestamp_mode": "batch"}
)


def check_parameter_value(key: str, value: Any) -> None:
    """Raise ValueError unless `value` is a valid value of the station parameter `key`: the
    checks of the parameter's type, and of the values of ``forms``, ``timestamp_mode`` and
    ``required_signatures``: for a parameter-set file, and in ``StationConfig``'s commands, so
    that no entry point can store a bad setting."""
    expected = _PARAMETER_TYPES.get(key)
    if expected is None:
        raise ValueError(
            f"unknown parameter {key!r}; expected one of {', '.join(_PARAMETER_TYPES)}"
        )
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ValueError(f"{key} must be {expected.__name__}, got {value!r}")
    items = cast(list[Any], value) if key == "forms" else []
    if key == "forms" and not (
        items
        and all(isinstance(f, str) and f in FORM_NAMES for f in items)
        and len(set(items)) == len(items)
    ):
        raise ValueError(
            f"forms must be a non-empty list of distinct form names from "
            f"{', '.join(FORM_NAMES)}, got {value!r}"
        )
    if key == "timestamp_mode" and value not in TIMESTAMP_MODES:
        raise ValueError(
            f"timestamp_mode must be one of {', '.join(TIMESTAMP_MODES)}, got {value!r}"
        )
    if key == "required_signatures":
        for step, roles in cast(dict[Any, Any], value).items():
            if not (
                isinstance(step, str)
                and _IDENT.fullmatch(step)
                and isinstance(roles, list)
                and roles
                and all(isinstance(r, str) and _IDENT.fullmatch(r) for r in roles)
                and len(set(roles)) == len(roles)
            ):
                raise ValueError(f"required_signatures {step!r} must list distinct role names")


@dataclass(frozen=True)
class StationParameters:
    """Per-station switches and form text (kind "parameter").

    `required_signatures` maps a signature step to its roles: the first records and signs the
    step's event, the others co-sign with SignatureApplied events. `forms` lists the signed
    forms produced per donation (names from `FORM_NAMES`); `timestamp_mode` is one of
    `TIMESTAMP_MODES`. Both were added in station-defaults@2; a set without them gets
    `_PARAMETER_DEFAULTS`.
    """

    parameter_set_id: str
    version: str
    e_signature_enabled: bool
    mpv_enabled: bool
    station_name: str
    department: str
    form_phone_callback: str
    form_template_code: str
    required_signatures: Mapping[str, tuple[str, ...]] = dataclasses.field(hash=False)
    forms: tuple[str, ...] = FORM_NAMES  # in FORM_NAMES, distinct, not empty
    timestamp_mode: str = "batch"  # one of TIMESTAMP_MODES
    digest: str = ""

    @property
    def ref(self) -> str:
        return f"{self.parameter_set_id}@{self.version}"


def _parameters_from_text(text: str, origin: str) -> StationParameters:
    doc, digest = _parse_json(text, origin)
    doc.keys(("parameter_set_id", "version", "effective_from", "source", "parameters"), ("notes",))
    _notes(doc)
    doc.day("effective_from")
    doc.text("source")
    values: dict[str, Any] = {}
    for child in doc.children("parameters"):
        child.keys(("id", "kind", "value", "description_zh", "description_en"))
        key = child.text("id")
        if child.text("kind") != "parameter":
            raise child.fail("kind must be 'parameter'")
        if key not in _PARAMETER_TYPES:
            raise child.fail(f"unknown parameter; expected one of {', '.join(_PARAMETER_TYPES)}")
        if key in values:
            raise child.fail("duplicate parameter")
        if not isinstance(child.data["value"], _PARAMETER_TYPES[key]):
            raise child.fail(f"value must be {_PARAMETER_TYPES[key].__name__}")
        child.text("description_zh")
        child.text("description_en")
        values[key] = child.data["value"]
    if missing := sorted(set(_PARAMETER_TYPES) - set(values) - set(_PARAMETER_DEFAULTS)):
        raise doc.fail(f"missing parameters {', '.join(missing)}")
    for key, default in _PARAMETER_DEFAULTS.items():
        values.setdefault(key, list(default) if isinstance(default, tuple) else default)
    for key in (*_PARAMETER_DEFAULTS, "required_signatures"):
        try:
            check_parameter_value(key, values[key])
        except ValueError as exc:
            raise doc.fail(str(exc)) from None
    forms = values.pop("forms")
    signatures = {step: tuple(roles) for step, roles in values.pop("required_signatures").items()}
    return StationParameters(
        parameter_set_id=doc.text("parameter_set_id", _NAME),
        version=doc.text("version", _VERSION),
        required_signatures=MappingProxyType(signatures),
        forms=tuple(forms),
        digest=digest,
        **values,
    )


def load_station_parameters_file(path: Path) -> StationParameters:
    """Load and strictly validate a parameter-set file; raises ValueError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read parameter set: {exc}") from None
    return _parameters_from_text(text, str(path))


def load_station_parameters(
    name: str = "station-defaults", version: str = "2"
) -> StationParameters:
    """Load a packaged parameter set (by default the newest defaults, station-defaults@2).
    The content of a published `name@version` never changes."""
    resource, origin = _packaged(name, version)
    params = _parameters_from_text(resource.read_text(encoding="utf-8"), origin)
    if (params.parameter_set_id, params.version) != (name, version):
        raise ValueError(f"{origin}: file declares {params.ref}, expected {name}@{version}")
    return params


def available_parameter_sets() -> list[str]:
    """References of the packaged station parameter sets, e.g. ["station-defaults@1", ...]."""
    return _packaged_refs("parameter_set_id")
