"""Phone and app recruitment: signed contacts, statistics per month and per recruiter, and the
seed's indicator (collections with a prior contact / collections).

A recruiter (a staff member whose certificate has the ``recruiter`` role) records every contact
with a donor as a signed `RecruitmentContacted` event: channel, outcome (agreed, declined,
unreachable, lapsed) and the reason. Only enrolled donors can be contacted; the donor is named
by the HMAC reference and the masked ID number.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from ledger.donation import Donation
from ledger.identity import InvalidIdentity, validate_id
from ledger.recruitment import CONTACT_CHANNELS as CONTACT_CHANNELS
from ledger.recruitment import OUTCOMES as OUTCOMES
from ledger.recruitment import Recruitment
from ledger.registry import Donor, donor_id_for
from projections.eventtime import station_date, station_start, station_today
from services.matching import match_request
from services.staff import staff_signer
from services.station import Station
from signing.errors import InputError


@dataclass(frozen=True)
class RecordContact:
    staff_id: str
    id_number: str
    channel: str
    outcome: str
    reason: str = ""
    id_type: str = "resident_id"
    request_id: str = ""


@dataclass(frozen=True)
class ContactRecorded:
    contact_id: str
    id_number_masked: str
    channel: str
    outcome: str
    recruiter: str


def enrolled_donor(station: Station, id_type: str, id_number: str) -> Donor:
    """The enrolled donor with this ID number (refused in one line when there is none)."""
    number = id_number.strip().upper()
    if not number:
        raise InputError("ID number: missing")
    try:
        resident = validate_id(id_type, number, station_today())
    except InvalidIdentity as exc:
        raise InputError(f"ID number: {exc}") from exc
    if resident is not None:
        number = resident.number
    donor_ref = station.secrets.donor_ref(f"{id_type}:{number}")
    try:
        donor: Any = station.app.repository.get(donor_id_for(donor_ref))
    except AggregateNotFoundError as exc:
        raise InputError("no donor with this ID number at this station") from exc
    if not isinstance(donor, Donor):
        raise InputError("no donor with this ID number at this station")
    return donor


def record_contact(station: Station, command: RecordContact) -> ContactRecorded:
    """Sign and record one contact with an enrolled donor."""
    donor = enrolled_donor(station, command.id_type, command.id_number)
    if command.request_id:
        match_request(station, command.request_id)  # contacts name an existing request only
    signer = staff_signer(station, command.staff_id)
    contact = Recruitment.contact(
        signer,
        uuid4(),
        donor_ref=donor.donor_ref,
        id_number_masked=donor.id_number_masked,
        channel=command.channel,
        outcome=command.outcome,
        reason=command.reason,
        request_id=command.request_id,
    )
    station.app.save(contact)
    return ContactRecorded(
        str(contact.id), donor.id_number_masked, command.channel, command.outcome,
        command.staff_id,
    )  # fmt: skip


# -- statistics --------------------------------------------------------------------------------


def events_of(station: Station, cls: type) -> Iterator[Any]:
    """The events of one type, in ledger order."""
    recorder: Any = station.app.recorder
    mapper = station.app.mapper
    start = 1
    while True:
        notes = recorder.select_notifications(start, 500, topics=[get_topic(cls)])
        if not notes:
            return
        for note in notes:
            yield mapper.to_domain_event(note)
        start = notes[-1].id + 1


@dataclass(frozen=True)
class RecruitmentStatsQuery:
    start: date
    end: date  # inclusive
    #: A collection counts as recruited when its donor was contacted this many days before.
    window_days: int = 90


@dataclass(frozen=True)
class RecruiterMonth:
    month: str
    recruiter: str
    contacts: int
    agreed: int
    declined: int
    unreachable: int
    lapsed: int


@dataclass(frozen=True)
class RecruitmentStats:
    start: str
    end: str
    window_days: int
    rows: list[RecruiterMonth]
    collections: int
    collections_after_contact: int
    #: collections with a prior contact / collections (None without collections).
    recruited_share: float | None


def recruitment_statistics(station: Station, query: RecruitmentStatsQuery) -> RecruitmentStats:
    """Contacts per month (station time, UTC+8) and recruiter by outcome, and the share of the
    period's collections whose donor was contacted in the ``window_days`` before the
    collection."""
    if query.end < query.start:
        raise InputError(f"the period ends ({query.end}) before it starts ({query.start})")
    if not 1 <= query.window_days <= 3650:
        raise InputError("the contact window is 1 to 3650 days")
    first = station_start(query.start)  # station days and months (UTC+8), as the metrics
    after = station_start(query.end + timedelta(days=1))
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    contacts_of: dict[str, list[datetime]] = defaultdict(list)
    for event in events_of(station, Recruitment.RecruitmentContacted):
        at: datetime = event.timestamp
        contacts_of[event.donor_ref].append(at)
        if first <= at < after:
            recruiter = str(event.actor).removeprefix("STAFF:")
            counts[(station_date(at).strftime("%Y-%m"), recruiter)][event.outcome] += 1
    donor_of = {
        str(e.originator_id): str(e.donor_ref) for e in events_of(station, Donation.DonorRegistered)
    }
    window = timedelta(days=query.window_days)
    collections = recruited = 0
    for event in events_of(station, Donation.ApheresisCollected):
        at = event.timestamp
        if not first <= at < after:
            continue
        collections += 1
        prior = contacts_of.get(donor_of.get(str(event.originator_id), ""), [])
        if any(at - window <= c < at for c in prior):
            recruited += 1
    rows = [
        RecruiterMonth(month, recruiter, sum(c.values()), *(c[o] for o in OUTCOMES))
        for (month, recruiter), c in sorted(counts.items())
    ]
    share = round(recruited / collections, 4) if collections else None
    return RecruitmentStats(
        query.start.isoformat(), query.end.isoformat(), query.window_days, rows, collections,
        recruited, share,
    )  # fmt: skip
