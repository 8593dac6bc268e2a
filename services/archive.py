"""One-click archiving (issue 10): a period's sealed, complete donations into one verifiable
transfer package; verifying a package; the scheduled fixity audit of the archive inbox.

``archive_period(station, ArchivePeriod(...), progress)`` is what ``ledger archive`` and the
demo call, and the archivist's web page through `services.archive_jobs`. In order:

1. the archive-queue read model, caught up, names the candidates of the period (and department);
   each is checked against the ledger itself (its `ArchiveItem`: archived at which version);
2. pending events are stamped; a donation with a missing co-signature slot, an event still
   without a timestamp, or a form that cannot be produced or does not verify is refused, with
   its reasons, and stays in the queue;
3. every other donation gets its three signed forms (rendered and signed by `produce_forms`,
   across processes with ``workers`` > 1, or reused from ``forms_dir`` when they verify and
   carry exactly the ledger's current events), its evidence and its DA/T 48 encapsulation
   package signed by the archivist;
4. a checkpoint is signed, timestamped and witnessed; the inclusion path of every archived event
   to it, the catalogue (XML, checked against its schema, and CSV) and the four-properties report
   (DA/T 70, a failing item blocks the package) go into ``其他/``;
5. the folder (a temporary name in the target) becomes a BagIt bag, its tag manifest is signed
   (detached CMS) by the archivist, the bag is validated and renamed to its package id;
6. only then is each donation's signed ``DonationArchived`` (or ``DonationReArchived``) recorded:
   a crash before leaves no event naming a package that does not exist, only a temporary folder.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import bagit
import pikepdf
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eventsourcing.application import AggregateNotFoundError

from documents import archive_package as fmt
from documents.forms.model import FormKind, configured_forms
from documents.package_verify import PackageReport, verify_package
from documents.pdf_verify import verify_pdf
from ledger.archive import AMENDED, ARCHIVIST_ROLE, ORIGINAL, ArchiveItem, FixityAudit
from ledger.archive import archive_item_id_for as item_id
from ledger.canonical import event_canonical_bytes
from ledger.checkpoints import SignedCheckpoint, all_links
from ledger.events import LedgerAggregate, WorkflowError
from ledger.merkle import consistency_proof
from ledger.registry import SigningCredential
from ledger.signer import CredentialSigner
from ledger.stores import persistence_env
from ledger.timestamping import inclusion_evidence, leaves_of
from projections.archive_queue import ITEMS, surname_only
from projections.eventtime import iso, recorded_at, station_date
from projections.runner import Projector, Views
from services import checkpoints
from services.files import disk_full
from services.forms import FormProducer, producer_for
from services.roster import StaffMember
from services.settings import Settings
from services.staff import staff_signer
from services.station import Station
from signing.errors import InputError, LedgerError, SigningError
from signing.pdf_validation import PdfValidationPolicy

#: The default numbering rule of the archive reference (档号).
DEFAULT_NUMBERING = fmt.DEFAULT_NUMBERING

__all__ = [
    "ARCHIVIST",
    "DEFAULT_NUMBERING",
    "ArchivePeriod",
    "ArchivePreview",
    "ArchiveResult",
    "AuditArchive",
    "AuditResult",
    "Ready",
    "Refused",
    "VerifyPackage",
    "archive_period",
    "audit_archive",
    "check_archive_command",
    "ensure_archivist",
    "preview_period",
    "verify_package_file",
]

#: The demo station's archivist (services.roster.DEMO_STAFF).
ARCHIVIST = StaffMember("R001", "孙档案", ARCHIVIST_ROLE)
FORM_TITLES = {
    FormKind.CONSENT: "无偿献血者知情同意及健康状况征询表",
    FormKind.REGISTRATION: "献血登记表",
    FormKind.COLLECTION: "成分血采集记录表",
}
Progress = Callable[[str, int, int], None]
"""Called as work advances: (phase, done, total)."""


class ArchiveBlocked(LedgerError):
    """The package cannot be made: a four-properties item failed, or nothing can be written."""


@dataclass(frozen=True)
class ArchivePeriod:
    """Command: archive the sealed, complete donations collected from `from_date` to `to_date`
    (inclusive), of `department` if given, into `out` (default: ``HOME/archive-inbox``)."""

    from_date: date
    to_date: date
    department: str | None = None
    out: Path | None = None
    archivist: str = ARCHIVIST.staff_id
    numbering: str = DEFAULT_NUMBERING
    workers: int = 1
    forms_dir: Path | None = None
    zip: bool = False


@dataclass(frozen=True)
class Refused:
    donation_no: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ArchiveResult:
    package_id: str
    package: Path | None  # None when nothing was archived
    archived: tuple[str, ...]  # donation numbers, original packages
    supplements: tuple[str, ...]  # donation numbers, supplementary (修改型) packages
    refused: tuple[Refused, ...]
    already_archived: int  # of the period, archived earlier and unchanged since
    forms_reused: int
    seconds: float
    zip_path: Path | None = None

    @property
    def count(self) -> int:
        return len(self.archived) + len(self.supplements)


@dataclass(frozen=True)
class _Candidate:
    donation_id: UUID
    donation_no: str
    doc: dict[str, Any]
    supplement: bool


@dataclass
class _Prepared:
    """One donation's forms in its folder, and what checking them found."""

    donation_id: str
    donation_no: str
    forms: list[str] = field(default_factory=list)  # file names in the folder
    problems: list[str] = field(default_factory=list)
    reused: bool = False
    signatures: int = 0


# -- the archivist -----------------------------------------------------------------------------


def ensure_archivist(station: Station, member: StaffMember = ARCHIVIST) -> CredentialSigner:
    """The archivist's signer; on a station initialised before archiving existed, issue the
    certificate (1 year, role ``archivist``) and record it, as `Station.initialise` does."""
    try:
        return station.signer(member.staff_id)
    except (SigningError, OSError):
        pass
    now = datetime.now(UTC)
    credential = station.pki.issue_staff(member.staff_id, member.name, member.role, now)
    cert = credential.certificate
    station.app.save(
        SigningCredential.staff_issued(
            station.system,
            format(cert.serial_number, "x"),
            subject_id=f"STAFF:{member.staff_id}",
            name=member.name,
            role=member.role,
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        )
    )
    return station.signer(member.staff_id)


def _archivist(station: Station, staff_id: str) -> CredentialSigner:
    signer = staff_signer(station, staff_id)
    if signer.role != ARCHIVIST_ROLE:
        raise InputError(f"staff {staff_id} is a {signer.role}, not an archivist: cannot archive")
    return signer


def _signer_name(signer: CredentialSigner) -> str:
    names = signer.credential.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    name = str(names[0].value) if names else ""
    return f"{name} ({signer.subject_id})"


def _algorithm(certificate: x509.Certificate) -> str:
    key = certificate.public_key()
    return "ecdsa-with-SHA256" if isinstance(key, ec.EllipticCurvePublicKey) else "sha256WithRSA"


# -- selecting ---------------------------------------------------------------------------------


def _queue(station: Station) -> list[dict[str, Any]]:
    """Every archive item of the read model, caught up with the ledger first."""
    views = Views.open(persistence_env(station.settings.db))
    try:
        Projector(station.app.recorder, station.app.mapper, views).catch_up(["archive_queue"])
        rows = views["archive_queue"].view.select(ITEMS, {}, ("sealed_at",))
        return [dict(r["doc"]) for r in rows]
    finally:
        views.close()


def _in_period(doc: dict[str, Any], command: ArchivePeriod) -> bool:
    catalogue = doc["catalogue"]
    day = catalogue.get("collected_on") or (doc.get("sealed_at") or "")[:10]
    if not day:
        return False
    if not command.from_date.isoformat() <= day <= command.to_date.isoformat():
        return False
    return command.department is None or catalogue.get("department") == command.department


def _archive_item(station: Station, donation_id: UUID) -> ArchiveItem | None:
    try:
        item: Any = station.app.repository.get(item_id(donation_id))
    except AggregateNotFoundError:  # never archived
        return None
    return item if isinstance(item, ArchiveItem) else None


# -- the use case ------------------------------------------------------------------------------


def _check_period(command: ArchivePeriod) -> None:
    if command.to_date < command.from_date:
        raise InputError(f"--to {command.to_date} is before --from {command.from_date}")


def check_archive_command(station: Station, command: ArchivePeriod) -> None:
    """What `archive_period` refuses before doing anything: a period that ends before it
    starts, a bad numbering rule, a signer who is not an archivist."""
    _check_period(command)
    fmt.archive_ref(command.numbering, station="S", year=2000, seq=1)
    _archivist(station, command.archivist)


def _select(station: Station, command: ArchivePeriod) -> tuple[list[_Candidate], int]:
    """The period's donations to archive (new, or amended since their last package), and how
    many of the period are archived already and unchanged since."""
    candidates: list[_Candidate] = []
    already = 0
    for doc in _queue(station):
        if doc["state"] not in ("queued", "archived") or not _in_period(doc, command):
            continue
        donation_id = UUID(doc["donation_id"])
        item = _archive_item(station, donation_id)
        version = station.app.donation(donation_id).version
        if item is not None and item.archived_version >= version:
            already += 1
            continue
        candidates.append(_Candidate(donation_id, doc["donation_no"], doc, item is not None))
    return candidates, already


def _slot_reasons(station: Station, candidate: _Candidate) -> list[str]:
    doc = candidate.doc
    if doc.get("ready", False):
        return []
    slots = station.app.donation(candidate.donation_id).missing_slots()
    names = ", ".join(s["slot"] for s in slots) or f"{doc.get('missing_signatures')}"
    return [f"missing signature slot: {names}"]


def _pending(
    station: Station, producer: FormProducer, candidate: _Candidate, stamped_to: int
) -> list[int]:
    """The positions of the donation's events after the last timestamp batch."""
    positions = [p for p, _ in producer.events(station, candidate.donation_id)]
    return [p for p in positions if p > stamped_to]


def archive_period(
    station: Station, command: ArchivePeriod, progress: Progress | None = None
) -> ArchiveResult:
    """Make one transfer package of the period; see the module docstring. Bad input (an
    unknown archivist, a target that cannot be written, a bad numbering rule) is refused
    before anything is written."""
    started = time.perf_counter()
    report = progress or (lambda phase, done, total: None)
    _check_period(command)
    fmt.archive_ref(command.numbering, station="S", year=2000, seq=1)  # a bad rule fails here
    archivist = _archivist(station, command.archivist)
    out = command.out if command.out is not None else station.settings.home / "archive-inbox"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the archive target {out}: {exc.strerror}") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"the archive target {out} is not writable")

    candidates, already = _select(station, command)
    refused: list[Refused] = []
    now = datetime.now(UTC)
    package_id = (
        f"{station.settings.station_id}-{command.from_date:%Y%m%d}-{command.to_date:%Y%m%d}-"
        f"{now:%Y%m%dT%H%M%S%fZ}"
    )
    if not candidates:
        return ArchiveResult(
            package_id, None, (), (), (), already, 0, time.perf_counter() - started
        )

    with contextlib.suppress(SigningError):  # no TSA: pending events refuse their donations
        station.stamper().flush()
    last_batch = station.store.last_batch()
    stamped_to = last_batch.last_position if last_batch else 0
    producer = producer_for(station)
    eligible: list[_Candidate] = []
    for candidate in candidates:
        reasons = _slot_reasons(station, candidate)
        pending = _pending(station, producer, candidate, stamped_to)
        if pending:
            reasons.append(f"pending timestamp: {len(pending)} events, first at {pending[0]}")
        if reasons:
            refused.append(Refused(candidate.donation_no, tuple(reasons)))
        else:
            eligible.append(candidate)

    if not eligible:
        seconds = time.perf_counter() - started
        return ArchiveResult(package_id, None, (), (), tuple(refused), already, 0, seconds)
    staging = out / f".{package_id}.partial"
    staging.mkdir()
    try:
        result = _build(
            station, command, archivist, package_id, staging, out, eligible, refused, report, now
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    package, archived, supplements, reused, zip_path = result
    if package is None:  # every candidate was refused: no package, no temporary folder left
        shutil.rmtree(staging, ignore_errors=True)
    return ArchiveResult(
        package_id,
        package,
        archived,
        supplements,
        tuple(refused),
        already,
        reused,
        time.perf_counter() - started,
        zip_path,
    )


@dataclass(frozen=True)
class Ready:
    """A donation the period's package would hold (catalogue name: surname only)."""

    donation_no: str
    donor: str
    collected_on: str
    supplementary: bool  # amended since its last package: a 修改型 package
    pending_events: int  # events not timestamped yet: stamped when archiving, else refused


@dataclass(frozen=True)
class ArchivePreview:
    from_date: date
    to_date: date
    ready: tuple[Ready, ...]
    refused: tuple[Refused, ...]
    already_archived: int


def preview_period(station: Station, command: ArchivePeriod) -> ArchivePreview:
    """What `archive_period` would do with the period, without writing anything (no stamping,
    no forms): the donations ready and those refused with the reasons archiving gives (a
    missing co-signature slot). Events still without a timestamp are counted on the ready
    donation: archiving stamps them first and refuses the donation only if no TSA answers.
    A form that cannot be produced or does not verify is found only when archiving (the
    job's result lists it)."""
    _check_period(command)
    candidates, already = _select(station, command)
    last_batch = station.store.last_batch()
    stamped_to = last_batch.last_position if last_batch else 0
    producer = producer_for(station)
    ready: list[Ready] = []
    refused: list[Refused] = []
    for candidate in candidates:
        reasons = _slot_reasons(station, candidate)
        if reasons:
            refused.append(Refused(candidate.donation_no, tuple(reasons)))
            continue
        catalogue = candidate.doc.get("catalogue", {})
        ready.append(
            Ready(
                candidate.donation_no,
                str(catalogue.get("name", "")),
                str(catalogue.get("collected_on") or ""),
                candidate.supplement,
                len(_pending(station, producer, candidate, stamped_to)),
            )
        )
    return ArchivePreview(command.from_date, command.to_date, tuple(ready), tuple(refused), already)


def _build(
    station: Station,
    command: ArchivePeriod,
    archivist: CredentialSigner,
    package_id: str,
    staging: Path,
    out: Path,
    eligible: list[_Candidate],
    refused: list[Refused],
    report: Progress,
    now: datetime,
) -> tuple[Path | None, tuple[str, ...], tuple[str, ...], int, Path | None]:
    records = staging / fmt.RECORDS
    records.mkdir()
    prepared = _prepare_all(station, command, eligible, records, report)
    kept: list[tuple[_Candidate, _Prepared]] = []
    for candidate, done in zip(eligible, prepared, strict=True):
        if done.problems:
            refused.append(Refused(candidate.donation_no, tuple(done.problems)))
            shutil.rmtree(records / candidate.donation_no, ignore_errors=True)
        else:
            kept.append((candidate, done))
    if not kept:
        return None, (), (), 0, None

    # Catalogue numbers: per year, after the highest the ledger already gave.
    highest: dict[int, int] = {}
    for doc in _queue(station):
        archive = doc.get("archive")
        if archive:
            year = int(doc["catalogue"]["year"])
            highest[year] = max(highest.get(year, 0), int(archive["catalogue_no"]))
    station_id = station.settings.station_id
    rows: list[dict[str, str]] = []
    entries: list[dict[str, Any]] = []
    for candidate, _ in sorted(kept, key=lambda k: k[0].donation_no):
        catalogue = dict(candidate.doc["catalogue"])
        year = int(catalogue["year"])
        item = _archive_item(station, candidate.donation_id) if candidate.supplement else None
        if item is not None:
            ref, number = item.archive_ref, item.catalogue_no
        else:
            number = highest[year] = highest.get(year, 0) + 1
            ref = fmt.archive_ref(
                command.numbering,
                station=station_id,
                year=year,
                seq=number,
                department=str(catalogue.get("department", "")),
            )
        catalogue.update(
            catalogue_no=number,
            archive_ref=ref,
            package_type=AMENDED if item is not None else ORIGINAL,
        )
        rows.append(fmt.catalogue_row(catalogue))
        entries.append({"candidate": candidate, "item": item, "row": rows[-1], "number": number})

    # Evidence and encapsulation packages, per donation.
    producer = producer_for(station)
    station_name = str(station.app.station().parameters.get("station_name", ""))
    archived_events: list[tuple[str, int, str]] = []  # (donation_no, position, event hash)
    encapsulations: dict[str, str] = {}
    prepared_by_no = {c.donation_no: p for c, p in kept}
    for count, entry in enumerate(entries, 1):
        candidate = entry["candidate"]
        folder = records / candidate.donation_no
        events = producer.events(station, candidate.donation_id)
        _write_evidence(station, folder, events)
        archived_events += [(candidate.donation_no, p, e.event_hash) for p, e in events]
        content = fmt.Encapsulation(
            donation_no=candidate.donation_no,
            catalogue=entry["row"],
            station_name=station_name,
            created_at=now,
            forms=[
                fmt.FormFile(name, _form_title(name), (folder / name).read_bytes())
                for name in prepared_by_no[candidate.donation_no].forms
            ],
            steps=[
                fmt.StepRecord(
                    e.originator_version,
                    type(e).__name__,
                    e.actor,
                    e.actor_role,
                    iso(recorded_at(e)),
                    e.event_hash,
                    p,
                )
                for p, e in events
            ],
            people=_people(station, events),
            package_type=entry["row"]["封装包类型"],
            original=(
                _original(out, candidate.donation_no, entry["item"])
                if entry["item"] is not None
                else None
            ),
            donation_version=events[-1][1].originator_version,
        )
        xml = fmt.encapsulate(
            content,
            lambda data, when: base64.b64decode(archivist.sign(data, when)),
            _signer_name(archivist),
            archivist.credential.certificate.public_bytes(serialization.Encoding.DER),
            _algorithm(archivist.credential.certificate),
        )
        path = folder / f"{candidate.donation_no}{fmt.ENCAPSULATION_SUFFIX}"
        path.write_bytes(xml)
        encapsulations[candidate.donation_no] = hashlib.sha256(xml).hexdigest()
        entry["version"] = events[-1][1].originator_version
        report("encapsulation packages", count, len(entries))

    # The checkpoint, inclusion and consistency paths.
    other = staging / fmt.OTHER
    other.mkdir()
    checkpoint = checkpoints.issue(station)
    checkpoints.write_checkpoint_file(staging / fmt.CHECKPOINT, checkpoint)
    _write_paths(station, staging, checkpoint, archived_events)
    (staging / fmt.STATION_CHAIN).write_bytes(station.pki.chain_pem())
    crl = station.pki.crl(datetime.now(UTC))
    (staging / fmt.STATION_CRL).write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    catalogue_xml = fmt.catalogue_xml(package_id, rows)
    (staging / fmt.CATALOGUE_XML).write_bytes(catalogue_xml)
    (staging / fmt.CATALOGUE_CSV).write_bytes(fmt.catalogue_csv(rows))

    four = four_properties(
        package_id,
        rows,
        catalogue_xml,
        [p for _, p in kept],
        records,
        highest_before={
            y: n - sum(1 for e in entries if e["item"] is None and int(e["row"]["年度"]) == y)
            for y, n in highest.items()
        },
        refused=refused,
        now=now,
    )
    (staging / fmt.REPORT_JSON).write_text(
        json.dumps(four, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (staging / fmt.REPORT_HTML).write_bytes(fmt.report_html(four))
    failing = [i for i in four["items"] if i["verdict"] == "FAILED"]
    if failing:
        raise ArchiveBlocked(
            "four-properties check failed, no package written: "
            + "; ".join(f"{i['code']} {i['item']}: {i['evidence']}" for i in failing)
        )
    supplements = tuple(e["candidate"].donation_no for e in entries if e["item"] is not None)
    originals = tuple(e["candidate"].donation_no for e in entries if e["item"] is None)
    (staging / fmt.README).write_text(
        _readme(station, command, package_id, archivist, originals, supplements, refused, now),
        encoding="utf-8",
    )

    # The bag, its signed tag manifest, validated, renamed.
    report("bag", 0, 1)
    bag = bagit.make_bag(
        str(staging),
        {
            "Source-Organization": station_name,
            "External-Identifier": package_id,
            "External-Description": "donation-ledger transfer package (docs/archive.md)",
            "Bagging-Date": now.date().isoformat(),
            "Station-Id": station_id,
            "Archive-Period": f"{command.from_date.isoformat()}/{command.to_date.isoformat()}",
            "Department": command.department or "",
            "Archivist": _signer_name(archivist),
            "Package-Id": package_id,
            "Donations-Archived": str(len(originals)),
            "Donations-Supplementary": str(len(supplements)),
            "Donations-Refused": str(len(refused)),
            "Forms": str(sum(len(p.forms) for _, p in kept)),
            "Checkpoint-Size": str(checkpoint.size),
            "Checkpoint-Root": checkpoint.root,
        },
        processes=max(1, command.workers),
        checksums=["sha256"],
    )
    tagmanifest = (staging / "tagmanifest-sha256.txt").read_bytes()
    (staging / fmt.TAG_SIGNATURE).write_bytes(
        base64.b64decode(archivist.sign(tagmanifest, datetime.now(UTC)))
    )
    try:
        bag.validate(processes=max(1, command.workers))
    except bagit.BagError as exc:
        raise ArchiveBlocked(f"the bag just written does not validate: {exc}") from exc
    final = out / package_id
    os.replace(staging, final)
    zip_path = None
    if command.zip:
        # under a temporary name, renamed once whole: a full disk leaves no half PACKAGE.zip
        partial = out / f".{package_id}.zip-partial"
        try:
            made = shutil.make_archive(str(partial), "zip", root_dir=out, base_dir=package_id)
            zip_path = final.with_name(f"{package_id}.zip")
            os.replace(made, zip_path)
        finally:
            Path(f"{partial}.zip").unlink(missing_ok=True)
    report("bag", 1, 1)

    # Only now: the ledger says where each donation went.
    for entry in entries:
        candidate, item = entry["candidate"], entry["item"]
        sha = encapsulations[candidate.donation_no]
        if item is None:
            item = ArchiveItem.archive(
                archivist,
                candidate.donation_id,
                donation_no=candidate.donation_no,
                package_id=package_id,
                archive_ref=entry["row"]["档号"],
                catalogue_no=entry["number"],
                year=int(entry["row"]["年度"]),
                donation_version=entry["version"],
                encapsulation_sha256=sha,
            )
        else:
            item.rearchive(
                archivist,
                package_id=package_id,
                donation_version=entry["version"],
                encapsulation_sha256=sha,
            )
        station.app.save(item)
    with contextlib.suppress(SigningError):  # else stamped later; verify says pending meanwhile
        station.stamper().flush()
    reused = sum(1 for _, p in kept if p.reused)
    return final, originals, supplements, reused, zip_path


def _original(out: Path, number: str, item: ArchiveItem) -> fmt.OriginalReference:
    """What a 修改型 package says of the package it supersedes: its id, digest and version, and
    its bytes when the package is still in the target folder and has that digest."""
    last = item.last_package
    digest = str(last["encapsulation_sha256"])
    path = out / str(last["package_id"]) / "data" / fmt.RECORDS / number
    data = b""
    with contextlib.suppress(OSError):
        candidate = (path / f"{number}{fmt.ENCAPSULATION_SUFFIX}").read_bytes()
        if hashlib.sha256(candidate).hexdigest() == digest:
            data = candidate
    return fmt.OriginalReference(str(last["package_id"]), digest, item.archived_version, data)


def _form_title(name: str) -> str:
    for kind, title in FORM_TITLES.items():
        if name.endswith(f"-{kind.value}.pdf"):
            return title
    return name


def _people(station: Station, events: Sequence[tuple[int, Any]]) -> list[fmt.Person]:
    out = []
    for subject in sorted({e.actor for _, e in events}):
        kind, _, ident = subject.partition(":")
        role = next(e.actor_role for _, e in events if e.actor == subject)
        if kind == "DONOR":
            registered = [
                getattr(e, "name", "") for _, e in events if type(e).__name__ == "DonorRegistered"
            ]
            out.append(fmt.Person(subject, surname_only(registered[0] if registered else ""), role))
            continue
        try:
            name = _signer_name(station.signer(ident)).rpartition(" (")[0] or ident
        except (WorkflowError, SigningError, OSError):
            name = ident
        out.append(fmt.Person(subject, name, role))
    return out


def _write_evidence(station: Station, folder: Path, events: Sequence[tuple[int, Any]]) -> None:
    """Each event's canonical bytes and CMS signature, each batch token and inclusion path:
    what `openssl cms -verify` and `openssl ts -verify` check without our code."""
    evidence = folder / fmt.EVIDENCE_DIR
    evidence.mkdir()
    index = []
    for position, event in events:
        assert isinstance(event, LedgerAggregate.Event)
        stem = f"e{position:09d}"
        (evidence / f"{stem}.json").write_bytes(event_canonical_bytes(event))
        (evidence / f"{stem}.p7s").write_bytes(base64.b64decode(event.signature))
        entry: dict[str, Any] = {
            "position": position,
            "version": event.originator_version,
            "event_type": type(event).__name__,
            "actor": event.actor,
            "event_hash": event.event_hash,
            "event": f"{stem}.json",
            "signature": f"{stem}.p7s",
        }
        stamp = inclusion_evidence(station.store, position)
        if stamp is not None:
            token = f"b{stamp.batch.first_seq:09d}.tsr"
            if not (evidence / token).exists():
                (evidence / token).write_bytes(stamp.batch.token)
            entry["batch"] = {
                "token": token,
                "root": stamp.batch.root,
                "size": stamp.batch.size,
                "first_position": stamp.batch.first_position,
                "gen_time": stamp.batch.gen_time,
                "leaf_index": stamp.index,
                "inclusion_path": [h.hex() for h in stamp.path],
            }
        index.append(entry)
    (folder / fmt.EVIDENCE_INDEX).write_text(
        json.dumps({"events": index}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def _write_paths(
    station: Station,
    staging: Path,
    checkpoint: SignedCheckpoint,
    archived: Sequence[tuple[str, int, str]],
) -> None:
    """Every archived event's RFC 9162 inclusion path to the checkpoint's root, and a
    consistency proof from each checkpoint the ledger kept before to this one."""
    links = [link for link in all_links(station.store) if link.position <= checkpoint.head_position]
    leaves = leaves_of(links)
    log = fmt.MerkleLog(leaves)
    index_of = {link.position: i for i, link in enumerate(links)}
    paths = [
        {
            "donation_no": number,
            "position": position,
            "event_hash": event_hash,
            "leaf_index": index_of[position],
            "inclusion_path": [h.hex() for h in log.path(index_of[position])],
        }
        for number, position, event_hash in archived
    ]
    (staging / fmt.INCLUSION).write_text(
        json.dumps(
            {
                "checkpoint_size": checkpoint.size,
                "checkpoint_root": checkpoint.root,
                "events": paths,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    proofs = []
    seen: set[int] = set()
    for stored in station.store.select_checkpoints():
        if 0 < stored.size < checkpoint.size and stored.size not in seen:
            seen.add(stored.size)
            proofs.append(
                {
                    "old_size": stored.size,
                    "old_root": stored.root,
                    "proof": [h.hex() for h in consistency_proof(leaves, stored.size)],
                }
            )
    (staging / fmt.CONSISTENCY).write_text(
        json.dumps({"new_size": checkpoint.size, "proofs": proofs}, indent=1) + "\n",
        encoding="utf-8",
    )


def _readme(
    station: Station,
    command: ArchivePeriod,
    package_id: str,
    archivist: CredentialSigner,
    originals: Sequence[str],
    supplements: Sequence[str],
    refused: Sequence[Refused],
    now: datetime,
) -> str:
    lines = [
        "说明文件 (transfer package description)",
        f"封装包标识 package id: {package_id}",
        f"站点 station: {station.settings.station_id}",
        f"归档期间 period: {command.from_date} .. {command.to_date}",
        f"归档部门 department: {command.department or '全部 (all)'}",
        f"归档人 archivist: {_signer_name(archivist)}",
        f"形成时间 created: {now.isoformat(timespec='seconds')}",
        f"原始型 original: {len(originals)}; 修改型 supplementary: {len(supplements)}",
        f"未归档 refused: {len(refused)}",
        "",
        "结构 layout: 文件目录.XML (schema docs/archive-catalogue.xsd), 电子档案/<献血编号>/ "
        "(three signed PDF/A-3b forms, evidence/, DA/T 48 封装包 XML), 其他/ (checkpoint.json, "
        "inclusion-paths.json, consistency-proofs.json, 四性检测报告.json/.html, 文件目录.CSV, "
        "station-chain.pem, station-crl.pem).",
        "检查 checks without our code: bagit.py --validate .; openssl cms -verify -binary "
        "-inform DER -in tagmanifest-sha256.txt.p7s -content tagmanifest-sha256.txt "
        "-CAfile <station root> -purpose any; see docs/archive.md.",
    ]
    lines += [f"refused {r.donation_no}: {'; '.join(r.reasons)}" for r in refused]
    return "\r\n".join(lines) + "\r\n"


# -- forms: produced or reused, then verified --------------------------------------------------


def _prepare_all(
    station: Station,
    command: ArchivePeriod,
    eligible: Sequence[_Candidate],
    records: Path,
    report: Progress,
) -> list[_Prepared]:
    jobs = [(str(c.donation_id), c.donation_no) for c in eligible]
    reuse = str(command.forms_dir) if command.forms_dir is not None else None
    if command.workers <= 1 or len(jobs) < 2:
        out = []
        for count, (donation_id, number) in enumerate(jobs, 1):
            out.append(_prepare(station, donation_id, number, records, reuse))
            report("forms", count, len(jobs))
        return out
    context = multiprocessing.get_context("spawn")
    results: dict[str, _Prepared] = {}
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=command.workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(station.settings,),
    ) as pool:
        futures = [
            pool.submit(_worker_prepare, donation_id, number, str(records), reuse)
            for donation_id, number in jobs
        ]
        for count, future in enumerate(concurrent.futures.as_completed(futures), 1):
            done = future.result()
            results[done.donation_id] = done
            report("forms", count, len(jobs))
    return [results[donation_id] for donation_id, _ in jobs]


_worker_station: Station | None = None


def _worker_init(settings: Settings) -> None:
    global _worker_station
    import atexit
    import logging

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    _worker_station = Station.open(settings)
    atexit.register(_worker_station.close)


def _worker_prepare(donation_id: str, number: str, records: str, reuse: str | None) -> _Prepared:
    assert _worker_station is not None
    return _prepare(_worker_station, donation_id, number, Path(records), reuse)


def _prepare(
    station: Station, donation_id: str, number: str, records: Path, reuse: str | None
) -> _Prepared:
    """Put the donation's forms in ``records/<number>/`` and check each: the PDF verifier
    (signatures, PDF/A-3b, attached evidence) and the attached events are exactly the
    ledger's events of the donation now (no amendment missing)."""
    done = _Prepared(donation_id, number)
    folder = records / number
    folder.mkdir(parents=True, exist_ok=True)
    uuid = UUID(donation_id)
    kinds = configured_forms(station.app.station().parameters)
    names = [f"{number}-{kind.value}.pdf" for kind in kinds]
    ledger_hashes = [e.event_hash for _, e in producer_for(station).events(station, uuid)]
    roots = station.trust_roots()
    if reuse is not None and all((Path(reuse) / n).is_file() for n in names):
        for name in names:
            shutil.copyfile(Path(reuse) / name, folder / name)
        if not _check_forms(folder, names, roots, ledger_hashes, done):
            done.reused = True
            done.forms = names
            return done
        done.problems.clear()
        for name in names:
            (folder / name).unlink()
    try:
        # As `produce_forms`, without stamping: the parent stamped before, and workers must
        # not race each other to cut batches.
        paths = producer_for(station).produce(station, uuid, folder, None, stamp_pending=False)
    except (LedgerError, ValueError, OSError) as exc:
        if disk_full(exc) is not None:
            raise  # the machine's trouble, not the record's: stop, do not refuse the donation
        done.problems.append(f"missing form: cannot produce the forms: {exc}")
        return done
    produced = [p.name for p in paths]
    missing = sorted(set(names) - set(produced))
    if missing:
        done.problems.append(f"missing form: {', '.join(missing)}")
    _check_forms(folder, produced, roots, ledger_hashes, done)
    done.forms = produced
    return done


def _check_forms(
    folder: Path,
    names: Sequence[str],
    roots: Sequence[x509.Certificate],
    ledger_hashes: Sequence[str],
    done: _Prepared,
) -> list[str]:
    policy = PdfValidationPolicy(require_revocation_data=True)
    for name in names:
        data = (folder / name).read_bytes()
        try:
            verified = verify_pdf(data, roots, name=name, policy=policy)
        except LedgerError as exc:
            done.problems.append(f"form {name} is unusable: {exc}")
            continue
        done.signatures += len(verified.signatures.signatures)
        first = verified.first_problem
        if first is not None:
            done.problems.append(f"form {name} does not verify: {first.describe()}")
        attached = [e.event_hash for e in verified.evidence.events]
        if attached != list(ledger_hashes):
            done.problems.append(
                f"form {name} carries {len(attached)} events, not the ledger's "
                f"{len(ledger_hashes)} current events of the donation"
            )
        problems = _unsafe_content(data)
        done.problems += [f"form {name}: {p}" for p in problems]
    return done.problems


#: PDF action types that run or fetch something (ISO 32000 12.6.4), and keys that hold them.
_ACTIVE_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/RichMediaExecute", "/Rendition"}
)


def _unsafe_content(data: bytes) -> list[str]:
    """DA/T 70 3-x/4-x: no encryption, no executable or active content. Every dictionary of
    the file, direct or indirect, is read (pikepdf): an action of an active type, a /JS
    script, a JavaScript name tree. A name inside a compressed stream or a font is not
    mistaken for one, and a plain /OpenAction destination (fpdf2 writes one) is fine."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PdfError as exc:
        return [f"unreadable by qpdf: {exc}"]
    found: set[str] = set()

    def walk(value: Any, depth: int) -> None:
        children: list[Any]
        if isinstance(value, pikepdf.Array):
            children = list(value)
        elif isinstance(value, pikepdf.Dictionary):
            action = value.get("/S")
            if isinstance(action, pikepdf.Name) and str(action) in _ACTIVE_ACTIONS:
                found.add(str(action))
            if "/JS" in value:
                found.add("/JS")
            children = [value.get(key) for key in list(value.keys())]
        else:
            return
        for child in children:
            direct = isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect
            if direct and depth < 12:
                walk(child, depth + 1)

    with pdf:
        problems = ["the file is encrypted"] if pdf.is_encrypted else []
        for obj in pdf.objects:
            walk(obj.stream_dict if isinstance(obj, pikepdf.Stream) else obj, 0)
        names = pdf.Root.get("/Names")
        if isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names:
            found.add("/Names /JavaScript")
    if found:
        problems.append(f"active content: {', '.join(sorted(found))}")
    return problems


# -- the four-properties report ----------------------------------------------------------------

_MASKED_NAME = re.compile(r"^.\*+$|^.$")
_MASKED_ID = re.compile(r"^[^*]{6}\*+$")


def four_properties(
    package_id: str,
    rows: Sequence[dict[str, str]],
    catalogue_xml: bytes,
    prepared: Sequence[_Prepared],
    records: Path,
    *,
    highest_before: dict[int, int],
    refused: Sequence[Refused],
    now: datetime,
) -> dict[str, Any]:
    """DA/T 70-2018 check items at archiving (归档环节), one entry each with the verdict and
    the evidence. The item codes follow the standard's numbering by property (1 authenticity,
    2 integrity, 3 usability, 4 security); docs/archive.md lists what each checks here."""
    items: list[dict[str, str]] = []

    def item(code: str, name: str, ok: bool | None, evidence: str) -> None:
        verdict = "NOT_APPLICABLE" if ok is None else ("PASSED" if ok else "FAILED")
        items.append({"code": code, "item": name, "verdict": verdict, "evidence": evidence})

    forms = sum(len(p.forms) for p in prepared)
    signatures = sum(p.signatures for p in prepared)
    problems = [f"{p.donation_no}: {x}" for p in prepared for x in p.problems]
    item(
        "1-1",
        "固化信息有效性 (signatures and timestamps)",
        not problems,
        f"{forms} forms, {signatures} PDF signatures and timestamps and every attached event "
        "signature and batch token verified (documents.pdf_verify)"
        + (f"; {problems[0]}" if problems else ""),
    )
    schema = fmt.catalogue_schema()
    valid = schema.validate(fmt.parse_xml(catalogue_xml))
    item(
        "1-2",
        "元数据格式与值域 (catalogue against its schema)",
        bool(valid),
        "文件目录.XML valid against docs/archive-catalogue.xsd"
        if valid
        else str(schema.error_log.last_error),
    )
    item(
        "1-3",
        "内容与元数据一致 (evidence against content)",
        not problems,
        "each form carries exactly the ledger's current events of its donation, and its page "
        "shows the donation number and masked identity of those events",
    )
    layout_problems = [
        f"{p.donation_no}: no folder" for p in prepared if not (records / p.donation_no).is_dir()
    ]
    item(
        "1-4",
        "信息包结构 (package layout)",
        not layout_problems,
        "电子档案/<献血编号>/ holds the forms, evidence/ and the 封装包 of each donation"
        if not layout_problems
        else "; ".join(layout_problems),
    )
    empty = [
        f"{row['献血编号']}: {column}"
        for row in rows
        for column, _ in fmt.CATALOGUE_FIELDS
        if not row[column] and column != "归档部门"
    ]
    item(
        "2-1",
        "元数据项完整 (every catalogue field present)",
        not empty,
        f"{len(rows)} rows x {len(fmt.CATALOGUE_FIELDS)} fields" if not empty else ", ".join(empty),
    )
    gaps = []
    by_year: dict[int, list[int]] = {}
    for row in rows:
        if row["封装包类型"] == ORIGINAL:
            by_year.setdefault(int(row["年度"]), []).append(int(row["件号"]))
    for year, numbers in by_year.items():
        expected = list(
            range(highest_before.get(year, 0) + 1, highest_before.get(year, 0) + 1 + len(numbers))
        )
        if sorted(numbers) != expected:
            gaps.append(f"{year}: {sorted(numbers)} is not {expected}")
    item(
        "2-2",
        "件号连续 (no gap in catalogue numbers)",
        not gaps,
        "new numbers continue the ledger's per-year sequence" if not gaps else "; ".join(gaps),
    )
    counts = [
        f"{row['献血编号']}: 电子全文数 {row['电子全文数']}, {len(p.forms)} forms"
        for row, p in zip(
            sorted(rows, key=lambda r: r["献血编号"]),
            sorted(prepared, key=lambda p: p.donation_no),
            strict=True,
        )
        if int(row["电子全文数"]) != len(p.forms)
    ]
    item(
        "2-3",
        "内容数据完整 (forms per donation)",
        not counts,
        f"{forms} forms for {len(rows)} donations" if not counts else "; ".join(counts),
    )
    item(
        "2-4",
        "总件数相符 (catalogue rows, folders)",
        len(rows) == len(prepared),
        f"{len(rows)} catalogue rows, {len(prepared)} donation folders",
    )
    item(
        "3-1",
        "文件格式合规 (PDF/A-3b)",
        not problems,
        "every form's PDF/A-3b claim checked (signing.pdfa)",
    )
    item(
        "3-2",
        "文件可读 (second implementations)",
        not problems,
        "every form read by qpdf and pdftotext as well as pyHanko",
    )
    item(
        "3-3",
        "无加密、无非公开压缩 (no encryption)",
        not problems,
        "no /Encrypt in any form; XML and CSV are plain UTF-8",
    )
    item(
        "4-1",
        "无可执行内容 (no active content)",
        not problems,
        "no /JavaScript, /JS, /Launch, /RichMedia, /SubmitForm, /ImportData in any form",
    )
    unmasked = [
        row["献血编号"]
        for row in rows
        if not _MASKED_NAME.match(row["姓名"]) or not _MASKED_ID.match(row["证件编号"])
    ]
    item(
        "4-2",
        "个人信息脱敏 (catalogue masked)",
        not unmasked,
        "姓名 surname only, 证件编号 first 6 characters" if not unmasked else ", ".join(unmasked),
    )
    item(
        "4-3",
        "病毒检测 (virus scan)",
        None,
        "no virus scanner on the station; 4-1 checks active content; the receiving system scans",
    )
    failed = any(i["verdict"] == "FAILED" for i in items)
    return {
        "version": 1,
        "standard": "DA/T 70-2018",
        "stage": "归档 (archiving)",
        "package_id": package_id,
        "checked_at": now.isoformat(timespec="seconds"),
        "verdict": "FAILED" if failed else "PASSED",
        "items_checked": len(rows),
        "items": items,
        "refused": [{"donation_no": r.donation_no, "reasons": list(r.reasons)} for r in refused],
    }


def archive_demo_day(
    settings: Settings, forms_dir: Path, progress: Progress | None = None
) -> tuple[ArchiveResult, PackageReport | None]:
    """`ledger demo`'s last step: archive the station's day into ``HOME/archive-inbox`` and
    verify the package (None when nothing new was archived)."""
    with Station.open(settings) as station:
        ensure_archivist(station)
        today = station_date(datetime.now(UTC))
        workers = os.cpu_count() or 1
        command = ArchivePeriod(today, today, workers=workers, forms_dir=forms_dir)
        result = archive_period(station, command, progress)
        if result.package is None:
            return result, None
        return result, verify_package(result.package, station.trust_roots(), workers=workers)


# -- verifying a package -----------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyPackage:
    path: Path
    trust: Path | None = None
    checkpoint: Path | None = None
    workers: int = 1


def verify_package_file(settings: Settings, command: VerifyPackage) -> PackageReport:
    """`ledger verify-package`: offline, with the checking half only. Bad input (no such
    folder, not a bag, unreadable trust or checkpoint file) raises `InputError`."""
    import logging

    from services.verification import read_checkpoint, trust_roots

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    if not command.path.is_dir():
        raise InputError(f"no package folder at {command.path}")
    if not (command.path / "bagit.txt").is_file():
        raise InputError(f"{command.path} is not a BagIt bag (no bagit.txt)")
    roots = trust_roots(settings, command.trust)
    held = read_checkpoint(command.checkpoint) if command.checkpoint is not None else None
    return verify_package(command.path, roots, held=held, workers=command.workers)


# -- the fixity audit --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditArchive:
    inbox: Path | None = None
    archivist: str = ARCHIVIST.staff_id
    workers: int = 1


@dataclass(frozen=True)
class AuditResult:
    audit_id: str
    inbox: Path
    packages: tuple[tuple[str, str, str], ...]  # (package, verdict, first problem)
    outcome: str


def audit_archive(
    station: Station, command: AuditArchive, progress: Progress | None = None
) -> AuditResult:
    """Re-verify every package in the inbox and record the outcome as a signed
    ``FixityAudited`` event (what archive systems run on a schedule)."""
    archivist = _archivist(station, command.archivist)
    inbox = command.inbox if command.inbox is not None else station.settings.home / "archive-inbox"
    if not inbox.is_dir():
        raise InputError(f"no archive inbox at {inbox}")
    bags = sorted(p for p in inbox.iterdir() if p.is_dir() and (p / "bagit.txt").is_file())
    roots = station.trust_roots()
    results = []
    for count, bag in enumerate(bags, 1):
        package = verify_package(bag, roots, workers=command.workers)
        first = package.first_problem
        results.append((bag.name, str(package.verdict), first.describe() if first else ""))
        if progress is not None:
            progress("packages", count, len(bags))
    outcome = "PASSED" if all(r[1] == "PASSED" for r in results) else "FAILED"
    now = datetime.now(UTC)
    audit_id = f"{station.settings.station_id}-{now:%Y%m%dT%H%M%S%fZ}"
    station.app.save(
        FixityAudit.record(
            archivist,
            audit_id,
            inbox=str(inbox),
            packages=[{"package": n, "verdict": v, "problem": p} for n, v, p in results],
            outcome=outcome,
        )
    )
    return AuditResult(audit_id, inbox, tuple(results), outcome)


def archived_numbers(items: Iterable[dict[str, Any]]) -> list[str]:
    return [str(i["donation_no"]) for i in items if i.get("state") == "archived"]
