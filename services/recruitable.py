"""Recruitable donors (可招募名单): donors eligible again, read from the ledger's events.

Who is eligible follows versioned rule data (``ledger/rulesets/recruitment-gb18467.v1.json``):
at least the GB 18467 interval since the last apheresis collection, the age limits (55 for a
donor who gave once, 60 for a repeat donor), and no deferral in the last ``open_deferral_days``.
Each row shows the donor masked (ID number first 6 characters, surname only), sex, age, ABO,
days since the last collection, the last product and amount, the station, the donor type
(``first_time``, ``regular``, ``lapsed`` 流失) and the recruitment history (contacts, last
outcome). The advanced query filters by type, station, last-collection dates and ABO.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any

from eventsourcing.utils import get_topic

from ledger.donation import Donation
from ledger.identity import age_on
from ledger.recruitment import Recruitment
from ledger.registry import Donor
from projections.eventtime import station_date, station_today
from services.station import Station
from signing.errors import InputError

RULES_FILE = "recruitment-gb18467.v1.json"
DONOR_TYPES = ("first_time", "regular", "lapsed")


def recruitment_rules() -> dict[str, Any]:
    text = resources.files("ledger").joinpath("rulesets", RULES_FILE).read_text(encoding="utf-8")
    rules: dict[str, Any] = json.loads(text)
    return rules


@dataclass(frozen=True)
class RecruitableQuery:
    as_of: date | None = None
    donor_type: str = ""
    station: str = ""
    last_from: date | None = None
    last_to: date | None = None
    abo: str = ""


@dataclass(frozen=True)
class RecruitableDonor:
    id_number_masked: str
    name: str  # surname only
    sex: str
    age: int
    abo: str
    days_since_last: int
    last_donation: str
    last_product: str
    last_amount_ml: int
    station: str
    donor_type: str
    collections: int
    contacts: int
    last_contact_outcome: str
    last_contact_at: str


@dataclass
class _Donor:
    masked: str = ""
    name: str = ""
    sex: str = ""
    birth: str = ""
    abo: str = ""
    collections: list[tuple[datetime, str, int, str]] = field(default_factory=list)
    deferrals: list[datetime] = field(default_factory=list)
    contacts: list[tuple[datetime, str]] = field(default_factory=list)


def _events(station: Station, *classes: type) -> Iterator[Any]:
    recorder: Any = station.app.recorder
    mapper = station.app.mapper
    start = 1
    topics = [get_topic(c) for c in classes]
    while True:
        notes = recorder.select_notifications(start, 500, topics=topics)
        if not notes:
            return
        for note in notes:
            yield mapper.to_domain_event(note)
        start = notes[-1].id + 1


def _check(query: RecruitableQuery) -> None:
    if query.donor_type and query.donor_type not in DONOR_TYPES:
        raise InputError(f"donor type {query.donor_type!r}: one of {', '.join(DONOR_TYPES)}")
    if query.abo and query.abo.upper() not in ("A", "B", "O", "AB"):
        raise InputError(f"ABO group {query.abo!r}: one of A, B, O, AB")
    if query.last_from and query.last_to and query.last_to < query.last_from:
        raise InputError("the last-donation range ends before it starts")


def recruitable_donors(station: Station, query: RecruitableQuery) -> list[RecruitableDonor]:
    """Donors eligible again on ``as_of`` (today), longest since the last donation first."""
    rows = recruitable_by_ref(station, query).values()
    return sorted(rows, key=lambda r: (-r.days_since_last, r.id_number_masked))


def recruitable_by_ref(station: Station, query: RecruitableQuery) -> dict[str, RecruitableDonor]:
    """The same donors by their HMAC reference (for joining other signed facts about them)."""
    _check(query)
    rules = recruitment_rules()
    as_of = query.as_of or station_today()
    donors: dict[str, _Donor] = defaultdict(_Donor)
    visit: dict[str, tuple[str, str, str]] = {}  # donation id -> (donor ref, product, station)
    for e in _events(
        station,
        Donor.DonorEnrolled,
        Donation.DonorRegistered,
        Donation.PreDonationTestRecorded,
        Donation.ApheresisCollected,
        Donation.EligibilityAssessed,
        Recruitment.RecruitmentContacted,
    ):
        if isinstance(e, Donor.DonorEnrolled):
            d = donors[e.donor_ref]
            d.masked, d.name, d.sex, d.birth = e.id_number_masked, e.name, e.sex, e.birth_date
        elif isinstance(e, Donation.DonorRegistered):
            visit[str(e.originator_id)] = (e.donor_ref, e.product_requested, e.station_id)
        elif isinstance(e, Recruitment.RecruitmentContacted):
            donors[e.donor_ref].contacts.append((e.timestamp, e.outcome))
        elif str(e.originator_id) in visit:
            ref, product, where = visit[str(e.originator_id)]
            if isinstance(e, Donation.PreDonationTestRecorded):
                donors[ref].abo = e.abo
            elif isinstance(e, Donation.ApheresisCollected):
                amount = int(e.product_volume_ml) + int(e.plasma_ml)
                donors[ref].collections.append((e.timestamp, product, amount, where))
            elif isinstance(e, Donation.EligibilityAssessed) and e.decision == "deferred":
                donors[ref].deferrals.append(e.timestamp)
    out: dict[str, RecruitableDonor] = {}
    for ref, d in donors.items():
        row = _row(d, as_of, rules)
        if row is not None and _matches(row, query):
            out[ref] = row
    return out


def _row(d: _Donor, as_of: date, rules: dict[str, Any]) -> RecruitableDonor | None:
    if not d.collections or not d.birth:
        return None  # never collected here: not a recruitment candidate
    last_at, product, amount, where = max(d.collections)
    days = (as_of - station_date(last_at)).days
    if days < int(rules["min_days_since_last_apheresis"]):
        return None
    age = age_on(date.fromisoformat(d.birth), as_of)
    repeat = len(d.collections) >= int(rules["regular_min_collections"])
    limit = rules["age_max_repeat"] if repeat else rules["age_max_first_time"]
    if not int(rules["age_min"]) <= age <= int(limit):
        return None
    if any((as_of - station_date(t)).days < int(rules["open_deferral_days"]) for t in d.deferrals):
        return None
    if days > int(rules["lapsed_after_days"]):
        kind = "lapsed"
    else:
        kind = "regular" if repeat else "first_time"
    contact_at, outcome = max(d.contacts) if d.contacts else (None, "")
    return RecruitableDonor(
        d.masked, d.name[:1] + "*" * (len(d.name) - 1), d.sex, age, d.abo, days,
        station_date(last_at).isoformat(), product, amount, where, kind, len(d.collections),
        len(d.contacts), outcome, station_date(contact_at).isoformat() if contact_at else "",
    )  # fmt: skip


def _matches(row: RecruitableDonor, q: RecruitableQuery) -> bool:
    last = date.fromisoformat(row.last_donation)
    return (
        (not q.donor_type or row.donor_type == q.donor_type)
        and (not q.station or row.station == q.station)
        and (not q.abo or row.abo.upper() == q.abo.upper())
        and (q.last_from is None or last >= q.last_from)
        and (q.last_to is None or last <= q.last_to)
    )
