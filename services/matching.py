"""Matched recruitment for a named patient: the signed request, then the donors to call.

Donors are ranked by compatibility, then by recency, as the seed's screen does: typed donors
(`record_typing`: a signed `DonorTyped`, the latest per donor) first, HPA-compatible before
partly typed before incompatible, then by the number of HLA-A/B mismatches
(`ledger.matching.compatibility`), then ABO-identical first; untyped donors after them, by ABO
alone, each row saying ``hla_hpa: "not typed"`` rather than pretending a match. Only
recruitable donors (services.recruitable) are listed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from ledger.events import WorkflowError
from ledger.matching import (
    Compatibility,
    DonorTyping,
    MatchRequest,
    compatibility,
    parse_hla,
    parse_hpa,
)
from ledger.recruitment import Recruitment
from services import recruitable
from services.staff import staff_signer
from services.station import Station
from signing.errors import InputError


@dataclass(frozen=True)
class RequestMatch:
    staff_id: str
    hospital: str
    patient_name: str
    abo: str
    rhd: str = "+"
    hla: str = ""
    hpa: str = ""


@dataclass(frozen=True)
class MatchRequested:
    request_id: str
    hospital: str
    patient_name_masked: str
    abo: str


def request_match(station: Station, command: RequestMatch) -> MatchRequested:
    name = command.patient_name.strip()
    if not name:
        raise InputError("the patient's name is required")
    masked = name[:1] + "*" * (len(name) - 1)
    patient_ref = station.secrets.donor_ref(f"patient:{command.hospital.strip()}:{name}")
    request = MatchRequest.request(
        staff_signer(station, command.staff_id),
        uuid4(),
        hospital=command.hospital,
        patient_ref=patient_ref,
        patient_name_masked=masked,
        abo=command.abo.strip().upper(),
        rhd=command.rhd.strip(),
        hla=command.hla,
        hpa=command.hpa,
    )
    station.app.save(request)
    return MatchRequested(str(request.id), request.hospital, masked, request.abo)


def match_request(station: Station, request_id: str) -> MatchRequest:
    try:
        found: object = station.app.repository.get(UUID(request_id))
    except (ValueError, AggregateNotFoundError) as exc:
        raise InputError(f"no matched-recruitment request {request_id}") from exc
    if not isinstance(found, MatchRequest):
        raise InputError(f"no matched-recruitment request {request_id}")
    return found


@dataclass(frozen=True)
class MatchQuery:
    request_id: str
    as_of: date | None = None


@dataclass(frozen=True)
class MatchedDonor:
    compatibility: str  # "abo_identical" or "abo_other"
    hla_hpa: str  # "not typed", or e.g. "HLA 1 mismatch; HPA compatible"
    donor: recruitable.RecruitableDonor
    #: The donor's HLA-A/B antigens the patient lacks (None: untyped, or no HLA requested).
    hla_mismatches: int | None = None
    #: "compatible", "partly typed", "incompatible", "not requested", or "" (untyped).
    hpa: str = ""


_HPA_ORDER = {"compatible": 0, "not requested": 1, "partly typed": 2, "incompatible": 3}


def matched_donors(station: Station, query: MatchQuery) -> list[MatchedDonor]:
    """The recruitable donors for the request, best match first (see the module's text)."""
    from services.recruitment import events_of  # recruitment imports this module

    request = match_request(station, query.request_id)
    patient_hla, patient_hpa = _patient_typing(request)
    typings: dict[str, DonorTyping.DonorTyped] = {}
    for typed in events_of(station, DonorTyping.DonorTyped):
        typings[typed.donor_ref] = typed  # ledger order: the latest typing wins
    refs = recruitable.recruitable_by_ref(station, recruitable.RecruitableQuery(query.as_of))
    ranked: list[tuple[tuple[int, int, int, bool, int], MatchedDonor]] = []
    for ref, row in refs.items():
        abo = "abo_identical" if row.abo == request.abo else "abo_other"
        typed = typings.get(ref)
        if typed is None:
            key = (1, 0, 0, row.abo != request.abo, row.days_since_last)
            ranked.append((key, MatchedDonor(abo, "not typed", row)))
            continue
        found: Compatibility = compatibility(
            patient_hla, patient_hpa, tuple(typed.hla), dict(typed.hpa)
        )
        mismatches = found.hla_mismatches
        key = (
            0,
            _HPA_ORDER[found.hpa],
            99 if mismatches is None else mismatches,
            row.abo != request.abo,
            row.days_since_last,
        )
        ranked.append((key, MatchedDonor(abo, found.describe(), row, mismatches, found.hpa)))
    ranked.sort(key=lambda pair: (pair[0], pair[1].donor.id_number_masked))
    return [m for _, m in ranked]


def _patient_typing(request: MatchRequest) -> tuple[tuple[str, ...], dict[str, str]]:
    """The request's HLA and HPA as parsed types (requests before validation: unreadable
    text is read as not given)."""
    try:
        hla = parse_hla(request.hla)
    except WorkflowError:
        hla = ()
    try:
        hpa = parse_hpa(request.hpa)
    except WorkflowError:
        hpa = {}
    return hla, hpa


@dataclass(frozen=True)
class RecordTyping:
    staff_id: str
    id_number: str
    hla: str = ""
    hpa: str = ""
    laboratory: str = ""
    method: str = ""
    id_type: str = "resident_id"


@dataclass(frozen=True)
class TypingRecorded:
    typing_id: str
    id_number_masked: str
    hla: tuple[str, ...]
    hpa: dict[str, str]


def record_typing(station: Station, command: RecordTyping) -> TypingRecorded:
    """Sign and record an enrolled donor's HLA/HPA typing (a screening technician)."""
    from services.recruitment import enrolled_donor  # recruitment imports this module

    donor = enrolled_donor(station, command.id_type, command.id_number)
    typing = DonorTyping.record(
        staff_signer(station, command.staff_id),
        uuid4(),
        donor_ref=donor.donor_ref,
        id_number_masked=donor.id_number_masked,
        hla=command.hla,
        hpa=command.hpa,
        laboratory=command.laboratory,
        method=command.method,
    )
    station.app.save(typing)
    return TypingRecorded(
        str(typing.id), donor.id_number_masked, tuple(typing.hla), dict(typing.hpa)
    )


@dataclass(frozen=True)
class MatchRequestRow:
    request_id: str
    requested_at: str
    recruiter: str
    hospital: str
    patient_name_masked: str
    abo: str
    rhd: str
    hla: str
    hpa: str
    #: Contacts recorded for this request (`RecruitmentContacted` naming it), by outcome.
    contacts: dict[str, int]


def match_requests(station: Station) -> list[MatchRequestRow]:
    """Every matched-recruitment request, newest first, with the contacts made for it."""
    from services.recruitment import events_of  # recruitment imports this module

    contacts: dict[str, Counter[str]] = defaultdict(Counter)
    for contact in events_of(station, Recruitment.RecruitmentContacted):
        if contact.request_id:
            contacts[str(contact.request_id)][str(contact.outcome)] += 1
    rows = [
        MatchRequestRow(
            str(e.originator_id),
            e.timestamp.isoformat(timespec="seconds"),
            str(e.actor).removeprefix("STAFF:"),
            e.hospital,
            e.patient_name_masked,
            e.abo,
            e.rhd,
            e.hla,
            e.hpa,
            dict(contacts.get(str(e.originator_id), {})),
        )
        for e in events_of(station, MatchRequest.MatchedRecruitmentRequested)
    ]
    return sorted(rows, key=lambda r: r.requested_at, reverse=True)
