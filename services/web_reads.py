"""Read use cases of the HTTP API and pages: a donation (masked), the amendments and missing
signatures for the quality manager, the archive queue, and verification of an uploaded PDF.

Personal data leaves here masked: ID numbers (first 6 characters, `ledger.identity.mask_id`),
phone numbers (first 3 and last 4 digits), names (surname only), birth dates (year only).
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from documents.pdf_verify import PdfVerificationReport
from ledger.canonical import GENESIS_HASH, event_canonical_bytes, sha256_hex
from ledger.donation import Donation
from ledger.identity import InvalidIdentity, mask_id, validate_id
from ledger.personal import mask_phone
from ledger.registry import Donor, donor_id_for
from ledger.verify import VerificationReport
from projections.archive_queue import surname_only
from projections.eventtime import station_today
from projections.quality_report import metric_dimensions, metric_titles, quality_report
from projections.queries import archive_queue
from projections.runner import Projector, Views
from services.station import Station
from services.steps import find_donation
from services.verification import verify_pdf_file, verify_station
from signing.errors import CertificateInvalid, InputError, SignatureInvalid
from signing.validation import verify_detached

MASKED_FIELDS = {"phone", "name", "birth_date", "donor_ref", "id_number_masked"}


def mask_field(field: str, value: Any) -> Any:
    """A value as the pages and API show it: personal fields masked, others as recorded."""
    if value is None:
        return None
    if field == "phone":
        return mask_phone(str(value))
    if field == "name":
        return surname_only(str(value))
    if field == "birth_date":
        return str(value)[:4]
    if field in ("id_number", "id_number_masked"):
        return mask_id(str(value))
    return value


def _masked_values(values: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "phone" in out:
        out["phone"] = mask_phone(str(out["phone"]))
    if "name" in out:
        out["name"] = surname_only(str(out["name"]))
    if "birth_date" in out:
        out["birth_date"] = str(out["birth_date"])[:4]
    out.pop("donor_ref", None)
    return out


def donation_view(station: Station, key: str) -> dict[str, Any]:
    """A donation as recorded now: its steps (values masked), rule outcomes, co-signatures,
    amendments (prior and new value, who, when, why) and missing signature slots."""
    donation_id = find_donation(station, key)
    donation = station.app.donation(donation_id)
    return _view(donation_id, donation)


def _view(donation_id: UUID, donation: Donation) -> dict[str, Any]:
    steps = {
        name: {
            "actor": entry["actor"],
            "timestamp": str(entry["timestamp"]),
            "version": entry["version"],
            "event_hash": entry["event_hash"],
            "values": _masked_values(entry["values"]),
            "rule_outcomes": list(entry.get("rule_outcomes", ())),
        }
        for name, entry in donation.steps.items()
    }
    return {
        "donation_id": str(donation_id),
        "donation_no": donation.donation_no,
        "status": str(donation.status),
        "product": donation.product,
        "version": int(donation.version),
        "steps": steps,
        "amendments": [
            {
                **a,
                "old_value": mask_field(a["field"], a["old_value"]),
                "new_value": mask_field(a["field"], a["new_value"]),
                "timestamp": str(a["timestamp"]),
            }
            for a in donation.amendments
        ],
        "cosignatures": {
            slot: {**c, "timestamp": str(c["timestamp"])}
            for slot, c in donation.cosignatures.items()
        },
        "reactions": list(donation.reactions),
        "required_slots": list(donation.required_slots),
        "missing_slots": donation.missing_slots(),
    }


# -- quality ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmendmentFilter:
    month: str = ""  # YYYY-MM
    step: str = ""
    staff: str = ""  # a staff id, e.g. P001


def _events(station: Station, topic: str) -> Iterator[Any]:
    recorder: Any = station.app.recorder
    mapper = station.app.mapper
    start = 1
    while True:
        notes = recorder.select_notifications(start, 500, topics=[topic])
        if not notes:
            return
        for note in notes:
            yield mapper.to_domain_event(note)
        start = notes[-1].id + 1


def amendments(station: Station, where: AmendmentFilter) -> list[dict[str, Any]]:
    """Every amendment in the ledger, oldest first: donation, step, field, prior and new value
    (never hidden), who, when, reason, overrides."""
    numbers: dict[UUID, str] = {}
    out = []
    for event in _events(station, get_topic(Donation.RecordAmended)):
        when = str(event.timestamp.isoformat())
        staff = str(event.actor).removeprefix("STAFF:")
        if where.month and not when.startswith(where.month):
            continue
        if where.step and event.step != where.step:
            continue
        if where.staff and staff != where.staff:
            continue
        donation_id = event.originator_id
        if donation_id not in numbers:
            numbers[donation_id] = station.app.donation(donation_id).donation_no
        out.append(
            {
                "donation_no": numbers[donation_id],
                "donation_id": str(donation_id),
                "step": event.step,
                "field": event.field,
                "old_value": mask_field(event.field, event.old_value),
                "new_value": mask_field(event.field, event.new_value),
                "staff": staff,
                "at": when,
                "reason": event.reason,
                "overrides": dict(event.overrides),
            }
        )
    return out


def missing_signatures(station: Station) -> list[dict[str, Any]]:
    """Each co-signature slot a sealed donation left unsigned: donation, slot, step, role."""
    out = []
    for event in _events(station, get_topic(Donation.DonationRecordSealed)):
        if not event.missing_slots:
            continue
        number = station.app.donation(event.originator_id).donation_no
        for slot in event.missing_slots:
            out.append(
                {
                    "donation_no": number,
                    "donation_id": str(event.originator_id),
                    "slot": slot.get("slot", ""),
                    "step": slot.get("step", ""),
                    "role": slot.get("role", ""),
                    "sealed_at": event.timestamp.isoformat(),
                }
            )
    return out


# -- archivist -------------------------------------------------------------------------------


def archive_queue_items(station: Station) -> list[dict[str, Any]]:
    """Sealed, completed donations not archived yet (the ArchiveQueue view, caught up first);
    names as the catalogue shows them (surname only)."""
    from ledger.stores import persistence_env

    with closing(Views.open(persistence_env(station.settings.db))) as views:
        Projector(station.app.recorder, station.app.mapper, views).catch_up(names=["archive_queue"])
        items = archive_queue(views)
    return [
        {
            "donation_no": i.get("donation_no", ""),
            "donation_id": i.get("donation_id", ""),
            "sealed_at": i.get("sealed_at") or "",
            "donor": i.get("catalogue", {}).get("name", ""),
            "collected_on": i.get("catalogue", {}).get("collected_on") or "",
            "ready": bool(i.get("ready", False)),
            "missing_signatures": int(i.get("missing_signatures", 0)),
        }
        for i in items
    ]


# -- regulator -------------------------------------------------------------------------------

MAX_UPLOAD = 50 * 1024 * 1024


def verify_pdf_upload(
    station: Station, data: bytes, name: str, trust_pem: bytes | None = None
) -> PdfVerificationReport:
    """Verify an uploaded signed PDF as `ledger verify-pdf` does, against the station's trust
    roots or the PEM certificates the regulator uploaded. `PdfUnreadable` for an unusable file."""
    if not data:
        raise InputError("the uploaded file is empty")
    if len(data) > MAX_UPLOAD:
        raise InputError(f"the uploaded file is larger than {MAX_UPLOAD // 2**20} MB")
    safe = Path(name or "upload.pdf").name
    with tempfile.TemporaryDirectory(prefix="ledger-upload-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        trust = None
        if trust_pem:
            trust = Path(tmp) / "trust.pem"
            trust.write_bytes(trust_pem)
        report = verify_pdf_file(station.settings, path, trust)
    return report


def verify_ledger_now(station: Station) -> VerificationReport:
    """The whole ledger, as `ledger verify`."""
    return verify_station(station)


# -- quality rates ---------------------------------------------------------------------------

#: The rates drawn on the quality page's chart (seed 003 indicators).
CHART_RATES = (
    "record_modification_rate",
    "field_modification_rate",
    "staff_missing_signature_rate",
    "donor_missing_signature_rate",
)


def quality_rates(station: Station, start: date, end: date) -> dict[str, Any]:
    """Every rate of docs/metrics.md over [start, end] (station days), in all and by month,
    from the QualityMetrics view (caught up first)."""
    if end < start:
        raise InputError(f"the period ends ({end}) before it starts ({start})")
    from ledger.stores import persistence_env

    with closing(Views.open(persistence_env(station.settings.db))) as views:
        Projector(station.app.recorder, station.app.mapper, views).catch_up(
            names=["quality_metrics"]
        )
        report = quality_report(views["quality_metrics"].view, start, end)
    titles = metric_titles()
    months = report.months()
    rates = []
    for metric in metric_dimensions():
        total = report.rate(metric)
        rates.append(
            {
                "metric": metric,
                "title": titles[metric],
                "numerator": total.numerator,
                "denominator": total.denominator,
                "value": total.value,
                "by_month": [
                    {
                        "month": month,
                        "numerator": (r := report.rate(metric, "month", month)).numerator,
                        "denominator": r.denominator,
                        "value": r.value,
                    }
                    for month in months
                ],
            }
        )
    return {"start": start.isoformat(), "end": end.isoformat(), "months": months, "rates": rates}


# -- a donation's timeline -------------------------------------------------------------------


def donation_timeline(station: Station, key: str) -> dict[str, Any]:
    """Each event of a donation in order: type, signer, time, its position in the global chain
    and its timestamp batch, and the check of the event itself (hash of its canonical body,
    link to the previous event of the donation, CMS signature by the actor, signer certificate
    valid at signing time). This is not the whole-ledger verification (rules, global chain,
    Merkle batches and checkpoints): that is `verify_ledger_now`."""
    donation_id = find_donation(station, key)
    donation = station.app.donation(donation_id)
    store = station.store
    positions: dict[int, int] = {}
    cursor = 0
    while True:
        links = store.select_chain(cursor, 1000)
        if not links:
            break
        for link in links:
            if link.originator_id in (donation_id.hex, str(donation_id)):
                positions[link.originator_version] = link.position
        cursor = links[-1].position
    batches = list(store.select_batches())
    validator = station.validator()
    previous = GENESIS_HASH
    entries = []
    stored: Any = station.app.repository.event_store.get(donation_id)
    for event in stored:
        problems = []
        body = event_canonical_bytes(event)
        if sha256_hex(body) != event.event_hash:
            problems.append("the event's hash is not the hash of its canonical body")
        if event.prev_hash != previous:
            problems.append("the link to the previous event of the donation is broken")
        previous = event.event_hash
        try:
            verified = verify_detached(base64.b64decode(event.signature), body)
            if verified.subject_id != event.actor:
                problems.append(f"signed by {verified.subject_id}, not by {event.actor}")
            others = [c for c in verified.certificates if c != verified.signer_certificate]
            validator.validate(verified.signer_certificate, others, event.timestamp)
        except (SignatureInvalid, CertificateInvalid) as exc:
            problems.append(exc.reason)
        except (ValueError, TypeError) as exc:
            problems.append(f"the signature cannot be read: {exc}")
        position = positions.get(int(event.originator_version))
        stamped = next(
            (
                b.gen_time
                for b in batches
                if position is not None and b.first_position <= position <= b.last_position
            ),
            None,
        )
        entries.append(
            {
                "version": int(event.originator_version),
                "event_type": type(event).__name__,
                "actor": event.actor,
                "role": event.actor_role,
                "time": event.timestamp.isoformat(),
                "position": position,
                "timestamped_at": str(stamped) if stamped is not None else None,
                "event_hash": event.event_hash,
                "state": "ok" if not problems else "FAILED",
                "problems": problems,
            }
        )
    return {
        "donation_id": str(donation_id),
        "donation_no": donation.donation_no,
        "events": entries,
    }


# -- donor look-up ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LookUpDonor:
    id_type: str
    id_number: str


def donor_lookup(station: Station, command: LookUpDonor) -> dict[str, Any]:
    """A donor by ID number (the number is only hashed, never stored or shown): masked
    identity and each visit (donation number, status, product, decision, registration time)."""
    number = command.id_number.strip().upper()
    if not number:
        raise InputError("ID number: missing")
    try:
        resident = validate_id(command.id_type, number, station_today())
    except InvalidIdentity as exc:
        raise InputError(f"ID number: {exc}") from exc
    if resident is not None:
        number = resident.number
    donor_ref = station.secrets.donor_ref(f"{command.id_type}:{number}")
    try:
        donor: Any = station.app.repository.get(donor_id_for(donor_ref))
    except AggregateNotFoundError as exc:
        raise DonorNotFound("no donor with this ID number at this station") from exc
    if not isinstance(donor, Donor):
        raise DonorNotFound("no donor with this ID number at this station")
    visits = []
    for donation_id in donor.visits:
        donation = station.app.donation(UUID(str(donation_id)))
        registration = donation.steps.get("registration", {})
        eligibility = donation.steps.get("eligibility", {}).get("values", {})
        visits.append(
            {
                "donation_id": str(donation_id),
                "donation_no": donation.donation_no,
                "status": str(donation.status),
                "product": donation.product,
                "registered_at": str(registration.get("timestamp", "")),
                "decision": eligibility.get("decision"),
            }
        )
    return {
        "id_number_masked": donor.id_number_masked,
        "name": surname_only(donor.name),
        "sex": donor.sex,
        "birth_year": str(donor.birth_date)[:4],
        "visits": visits,
    }


class DonorNotFound(InputError):
    """No donor with this ID number."""
