"""The archive's history for the archivist's pages and API: the packages the ledger says were
made (its signed `DonationArchived` / `DonationReArchived` events), each package's receipt, the
package folder as a zip, re-verifying a package of the inbox, and verifying a package someone
uploads (the regulator). Nothing here writes to the ledger.

A package's **receipt** is the ledger's own acknowledgement that each donation went into it:
the signed archive events naming the package, each with its canonical body and its detached CMS
signature (base64), so that `openssl cms -verify` can check it without our code, and the check
of that signature made now.
"""

from __future__ import annotations

import base64
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from eventsourcing.utils import get_topic

from documents.package_verify import PackageReport
from ledger.archive import ArchiveItem
from ledger.canonical import event_canonical_bytes, sha256_hex
from services.archive import VerifyPackage, verify_package_file
from services.settings import Settings
from services.station import Station
from signing.errors import CertificateInvalid, InputError, LedgerError, SignatureInvalid
from signing.validation import verify_detached

__all__ = [
    "MAX_PACKAGE_UPLOAD",
    "PackageNotFound",
    "PackageSummary",
    "archived_packages",
    "package_folder",
    "package_receipt",
    "package_zip",
    "reverify_package",
    "verify_package_upload",
]

#: An uploaded package (zip) may be this large; unpacked, at most MAX_UNPACKED.
MAX_PACKAGE_UPLOAD = 200 * 2**20
MAX_UNPACKED = 1024 * 2**20
MAX_MEMBERS = 100_000
_PACKAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_TOPICS = (get_topic(ArchiveItem.DonationArchived), get_topic(ArchiveItem.DonationReArchived))


class PackageNotFound(LedgerError):
    """No package of that id in the ledger, or its folder is not in the archive inbox."""


@dataclass
class PackageSummary:
    package_id: str
    archived_at: str  # the first archive event's time
    archivist: str
    donations: list[str] = field(default_factory=list)
    supplementary: list[str] = field(default_factory=list)  # 修改型
    in_inbox: bool = False


def _archive_events(station: Station) -> Iterator[Any]:
    recorder: Any = station.app.recorder
    mapper = station.app.mapper
    start = 1
    while True:
        notes = recorder.select_notifications(start, 500, topics=list(_TOPICS))
        if not notes:
            return
        for note in notes:
            yield mapper.to_domain_event(note)
        start = notes[-1].id + 1


def inbox(settings: Settings) -> Path:
    return settings.home / "archive-inbox"


def archived_packages(station: Station) -> list[PackageSummary]:
    """Every package the ledger's archive events name, newest first."""
    found: dict[str, PackageSummary] = {}
    for event in _archive_events(station):
        summary = found.get(event.package_id)
        if summary is None:
            summary = found[event.package_id] = PackageSummary(
                event.package_id, event.timestamp.isoformat(), event.actor
            )
        if isinstance(event, ArchiveItem.DonationArchived):
            summary.donations.append(event.donation_no)
        else:
            summary.supplementary.append(event.donation_no)
    root = inbox(station.settings)
    for summary in found.values():
        summary.in_inbox = (root / summary.package_id / "bagit.txt").is_file()
    return sorted(found.values(), key=lambda s: s.archived_at, reverse=True)


def _known(station: Station, package_id: str) -> None:
    if not _PACKAGE_ID.match(package_id) or not any(
        e.package_id == package_id for e in _archive_events(station)
    ):
        raise PackageNotFound(f"no package {package_id!r} in the ledger")


def package_folder(station: Station, package_id: str) -> Path:
    """The package's folder in the archive inbox; `PackageNotFound` when the ledger names no
    such package or the folder is not there (moved, or made with ``--out`` elsewhere)."""
    _known(station, package_id)
    folder = inbox(station.settings) / package_id
    if not (folder / "bagit.txt").is_file():
        raise PackageNotFound(f"package {package_id} is not in the archive inbox")
    return folder


def package_zip(station: Station, package_id: str, work: Path) -> Path:
    """The package folder as ``work/<package id>.zip`` (the bag at the zip's top level)."""
    folder = package_folder(station, package_id)
    made = shutil.make_archive(str(work / package_id), "zip", folder.parent, folder.name)
    return Path(made)


def package_receipt(station: Station, package_id: str) -> dict[str, Any]:
    """The signed archive events naming the package, each with what checks it offline."""
    _known(station, package_id)
    validator = station.validator()
    events = []
    for event in _archive_events(station):
        if event.package_id != package_id:
            continue
        body = event_canonical_bytes(event)
        problems = []
        if sha256_hex(body) != event.event_hash:
            problems.append("the event's hash is not the hash of its canonical body")
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
        events.append(
            {
                "event_type": type(event).__name__,
                "donation_no": event.donation_no,
                "archive_ref": event.archive_ref,
                "package_type": event.package_type,
                "donation_version": event.donation_version,
                "encapsulation_sha256": event.encapsulation_sha256,
                "actor": event.actor,
                "time": event.timestamp.isoformat(),
                "event_hash": event.event_hash,
                "canonical_body": base64.b64encode(body).decode("ascii"),
                "signature_cms": event.signature,
                "state": "ok" if not problems else "FAILED",
                "problems": problems,
            }
        )
    return {"package_id": package_id, "station": station.settings.station_id, "events": events}


def reverify_package(station: Station, package_id: str) -> PackageReport:
    """Verify a package of the inbox again, offline, against the station's trust roots."""
    return verify_package_file(station.settings, VerifyPackage(package_folder(station, package_id)))


def verify_package_upload(
    settings: Settings, upload: IO[bytes], trust_pem: bytes | None = None
) -> PackageReport:
    """Verify an uploaded package (the bag folder zipped, as the download gives it) offline,
    against the station's trust roots or the PEM certificates uploaded with it. The zip is
    unpacked into a temporary folder (no absolute path, no ``..``, no link, size limits) that
    is removed afterwards. Read only: nothing is written to the ledger."""
    upload.seek(0, 2)
    size = upload.tell()
    upload.seek(0)
    if size == 0:
        raise InputError("the uploaded file is empty")
    if size > MAX_PACKAGE_UPLOAD:
        raise InputError(f"the uploaded package is larger than {MAX_PACKAGE_UPLOAD // 2**20} MB")
    with tempfile.TemporaryDirectory(prefix="ledger-package-") as tmp:
        target = Path(tmp) / "package"
        target.mkdir()
        _unzip(upload, target)
        trust = None
        if trust_pem:
            trust = Path(tmp) / "trust.pem"
            trust.write_bytes(trust_pem)
        return verify_package_file(settings, VerifyPackage(_bag_root(target), trust))


def _unzip(upload: IO[bytes], target: Path) -> None:
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"the upload is not a zip of a package: {exc}") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise InputError(f"the zip holds more than {MAX_MEMBERS} files")
        if sum(m.file_size for m in members) > MAX_UNPACKED:
            raise InputError(f"the zip unpacks to more than {MAX_UNPACKED // 2**20} MB")
        for member in members:
            name = PurePosixPath(member.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in member.filename:
                raise InputError(f"the zip names a path outside the package: {member.filename}")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise InputError(f"the zip holds a link: {member.filename}")
        try:
            archive.extractall(target)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
            raise InputError(f"the zip cannot be unpacked: {exc}") from exc


def _bag_root(folder: Path) -> Path:
    """The bag in the unpacked zip: at its top, or its one top-level folder."""
    if (folder / "bagit.txt").is_file():
        return folder
    entries = [p for p in folder.iterdir() if not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and (entries[0] / "bagit.txt").is_file():
        return entries[0]
    raise InputError("the zip holds no BagIt package (no bagit.txt at its top or in one folder)")
