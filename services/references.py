"""How a person names a donation: its donation number, its visit reference, or its UUID.

A donation gets its 13-digit donation number only when the donor is accepted; a deferred
donation never has one. Such a visit is named by its *visit reference*: ``V`` followed by 12
upper-case hex characters, the first 6 bytes of SHA-256 over the donation UUID's 16 bytes. It is
derived, not stored, so it is the same on every station, in every report and on every form of
the donation, and never changes (48 bits: a collision among a station's deferred visits is
checked for when resolving, and reported rather than guessed).

`parse_reference` tells the three forms apart (garbage is an `InputError`); `resolve_donation`
finds the donation in the donation record view (the reports), `donation_id_for` in the
ledger (``ledger forms``: the view only for a visit reference). Every command that takes a
donation goes through here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from ledger.events import WorkflowError
from projections import queries
from projections.runner import Views
from services.station import Station
from services.views import station_views
from signing.errors import InputError

__all__ = [
    "DonationNotFound",
    "DonationRef",
    "RefKind",
    "ResolvedDonation",
    "donation_id_for",
    "parse_reference",
    "resolve_donation",
    "visit_reference",
]

_NUMBER = re.compile(r"\d{13}")
_VISIT = re.compile(r"[Vv][0-9A-Fa-f]{12}")


class DonationNotFound(InputError, ValueError):
    """A well-formed reference that names no donation of this ledger (exit 2)."""


class RefKind(StrEnum):
    NUMBER = "donation number"
    VISIT = "visit reference"
    UUID = "UUID"


@dataclass(frozen=True)
class DonationRef:
    """A parsed reference: its kind and its normal form (visit references upper-case, UUIDs
    dashed lower-case)."""

    kind: RefKind
    value: str


@dataclass(frozen=True)
class ResolvedDonation:
    donation_id: UUID
    donation_no: str  # "" for a deferred donation
    visit_reference: str

    @property
    def label(self) -> str:
        """What names the donation to a person: its number, else its visit reference."""
        return self.donation_no or self.visit_reference


def visit_reference(donation_id: UUID | str) -> str:
    """``V`` + 12 hex characters derived from the donation UUID (stable, upper case)."""
    uuid = donation_id if isinstance(donation_id, UUID) else UUID(str(donation_id))
    return "V" + hashlib.sha256(uuid.bytes).hexdigest()[:12].upper()


def parse_reference(text: str) -> DonationRef:
    """A donation number (13 digits), a visit reference (``V`` + 12 hex) or a UUID; anything
    else is an `InputError` that says what is accepted."""
    candidate = text.strip()
    if _NUMBER.fullmatch(candidate):
        return DonationRef(RefKind.NUMBER, candidate)
    if _VISIT.fullmatch(candidate):
        return DonationRef(RefKind.VISIT, candidate.upper())
    try:
        return DonationRef(RefKind.UUID, str(UUID(candidate)))
    except ValueError:
        raise InputError(
            f"not a donation number (13 digits), visit reference (V + 12 hex characters) or "
            f"UUID: {text!r}"
        ) from None


def resolve_donation(views: Views, text: str) -> ResolvedDonation:
    """The donation `text` names, from the donation record view (caught up by the caller).

    `InputError` for a malformed reference, `DonationNotFound` for one that names nothing.
    """
    ref = parse_reference(text)
    record: dict[str, Any] | None
    if ref.kind is RefKind.NUMBER:
        record = queries.donation_record(views, ref.value)
    elif ref.kind is RefKind.UUID:
        record = queries.donation_record_by_id(views, ref.value)
    else:
        record = _by_visit_reference(views, ref.value)
    if record is None:
        raise DonationNotFound(f"no donation with {ref.kind} {ref.value}")
    donation_id = UUID(str(record["donation_id"]))
    return ResolvedDonation(donation_id, str(record["donation_no"]), visit_reference(donation_id))


def donation_id_for(station: Station, text: str) -> UUID:
    """The donation `text` names, read from the ledger itself for a number or a UUID (no read
    model needed, as ``ledger forms`` always did) and from the donation record view, caught up
    first, for a visit reference. Errors as `resolve_donation`."""
    ref = parse_reference(text)
    try:
        if ref.kind is RefKind.NUMBER:
            return station.app.find_donation(ref.value)
        if ref.kind is RefKind.UUID:
            return station.app.donation(UUID(ref.value)).id
    except WorkflowError:
        raise DonationNotFound(f"no donation with {ref.kind} {ref.value}") from None
    with station_views(station) as (views, _):
        return resolve_donation(views, ref.value).donation_id


def _by_visit_reference(views: Views, reference: str) -> dict[str, Any] | None:
    """Deferred donations (no number) first: the ones people name this way; then the rest."""
    for numbered in (False, True):
        matches = [
            doc
            for doc in queries.donation_records(views, numbered=numbered)
            if visit_reference(str(doc["donation_id"])) == reference
        ]
        if len(matches) > 1:
            ids = ", ".join(str(doc["donation_id"]) for doc in matches)
            raise InputError(
                f"visit reference {reference} names several donations ({ids}): use the UUID"
            )
        if matches:
            return matches[0]
    return None
