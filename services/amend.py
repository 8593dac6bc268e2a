"""Correcting a recorded value: a signed amendment with a reason, as `ledger amend` records it.

The application re-runs the step's control points on the new value (`LedgerApp.amend`); a
hard-rule failure is refused unless a role that the amendment policy allows gives an override
reason. The amending person signs with their own credential only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.staff import staff_signer
from services.station import Station
from services.steps import find_donation
from signing.errors import InputError


@dataclass(frozen=True)
class AmendRecord:
    """Change `field` of `step` of a donation (its number or id) to `new_value`."""

    donation: str
    step: str
    field: str
    new_value: Any
    reason: str
    staff_id: str
    override_reason: str = ""
    acknowledged: tuple[str, ...] = ()


@dataclass(frozen=True)
class Amended:
    donation_id: UUID
    donation_no: str
    step: str
    field: str
    old_value: Any
    new_value: Any
    version: int
    event_hash: str
    rule_outcomes: tuple[Mapping[str, Any], ...]
    #: each outcome in one line, as `ledger amend` prints it
    rule_descriptions: tuple[str, ...] = ()


def amend_record(station: Station, command: AmendRecord) -> Amended:
    """Record the amendment. Missing reason, unknown donation, step or field: `InputError`; a
    refusal by the rules or the policy: `WorkflowError`. Nothing is written on either."""
    if not command.reason.strip():
        raise InputError("an amendment needs a reason")
    if not command.staff_id:
        raise InputError("an amendment needs the staff member who makes it")
    if isinstance(command.new_value, dict | list):
        raise InputError("an amendment changes one value: a number, a text or true/false")
    donation_id = find_donation(station, command.donation)
    donation = station.app.donation(donation_id)
    record = donation.steps.get(command.step)
    if record is None:
        raise InputError(f"donation {command.donation} has no recorded step {command.step!r}")
    if command.field not in record["values"]:
        known = ", ".join(sorted(record["values"]))
        raise InputError(f"step {command.step} has no field {command.field!r} (fields: {known})")
    old_value = record["values"][command.field]
    signer = staff_signer(station, command.staff_id)
    outcomes = station.app.amend(
        donation_id,
        signer,
        step=command.step,
        field=command.field,
        new_value=command.new_value,
        reason=command.reason,
        override_reason=command.override_reason,
        acknowledged=command.acknowledged,
    )
    after = station.app.donation(donation_id)
    return Amended(
        donation_id=donation_id,
        donation_no=after.donation_no or "",
        step=command.step,
        field=command.field,
        old_value=old_value,
        new_value=command.new_value,
        version=int(after.version),
        event_hash=str(after.head_hash),
        rule_outcomes=tuple(o.to_json() for o in outcomes),
        rule_descriptions=tuple(o.describe() for o in outcomes),
    )
