"""Matched recruitment for a named patient: the signed request, then the donors to call.

Donors are ranked by compatibility, then by recency, as the seed's screen does. The ledger
records no donor HLA/HPA typing yet, so compatibility is the ABO group alone: ABO-identical
donors first, then the others; each row says ``hla_hpa: "not typed"`` rather than pretending
a match. Only recruitable donors (services.recruitable) are listed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from ledger.matching import MatchRequest
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
    hla_hpa: str
    donor: recruitable.RecruitableDonor


def matched_donors(station: Station, query: MatchQuery) -> list[MatchedDonor]:
    """The recruitable donors for the request: ABO-identical first, then the most recent."""
    request = match_request(station, query.request_id)
    rows = recruitable.recruitable_donors(station, recruitable.RecruitableQuery(query.as_of))
    ranked = sorted(rows, key=lambda r: (r.abo != request.abo, r.days_since_last))
    return [
        MatchedDonor("abo_identical" if r.abo == request.abo else "abo_other", "not typed", r)
        for r in ranked
    ]


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
