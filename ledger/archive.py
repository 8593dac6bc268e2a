"""Archiving in the ledger: one `ArchiveItem` per donation, one `FixityAudit` per inbox audit.

A donation is archived when the archivist's one-click run puts it into a transfer package: the
item's first event, ``DonationArchived``, names the package, the archive reference (档号), the
catalogue number (件号), the donation version the package holds and the SHA-256 of its
encapsulation package (DA/T 48). An amendment after that makes the donation's version larger
than the archived one: the next run archives it again in a supplementary (修改型) package,
recorded as ``DonationReArchived`` with the package it supersedes. Every event is signed by the
archivist, like every other ledger event.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from ledger.events import LedgerAggregate, Signer, WorkflowError, require_role
from ledger.registry import _NS

#: The role of a staff certificate that may archive (its certificate title).
ARCHIVIST_ROLE = "archivist"
ORIGINAL = "原始型"
AMENDED = "修改型"


def archive_item_id_for(donation_id: UUID) -> UUID:
    return uuid5(_NS, f"archive-item:{donation_id}")


def fixity_audit_id_for(audit_id: str) -> UUID:
    return uuid5(_NS, f"fixity-audit:{audit_id}")


class ArchiveItem(LedgerAggregate):
    """The archive history of one donation: each package that holds it, latest last."""

    def __init__(self) -> None:
        self.donation_id = ""
        self.donation_no = ""
        self.archive_ref = ""
        self.catalogue_no = 0
        self.packages: list[dict[str, Any]] = []

    @property
    def archived_version(self) -> int:
        return int(self.packages[-1]["donation_version"]) if self.packages else 0

    @property
    def last_package(self) -> dict[str, Any]:
        return self.packages[-1]

    class DonationArchived(LedgerAggregate.Created):
        donation_id: str
        donation_no: str
        package_id: str
        package_type: str
        archive_ref: str
        catalogue_no: int
        year: int
        donation_version: int
        encapsulation_sha256: str

        def apply_state(self, aggregate: ArchiveItem) -> None:
            aggregate.donation_id = self.donation_id
            aggregate.donation_no = self.donation_no
            aggregate.archive_ref = self.archive_ref
            aggregate.catalogue_no = self.catalogue_no
            aggregate.packages.append(_package(self))

    class DonationReArchived(LedgerAggregate.Event):
        donation_id: str
        donation_no: str
        package_id: str
        package_type: str
        archive_ref: str
        catalogue_no: int
        year: int
        donation_version: int
        encapsulation_sha256: str
        supersedes_package_id: str
        supersedes_sha256: str

        def apply_state(self, aggregate: ArchiveItem) -> None:
            aggregate.packages.append(_package(self))

    @classmethod
    def archive(
        cls,
        signer: Signer,
        donation_id: UUID,
        *,
        donation_no: str,
        package_id: str,
        archive_ref: str,
        catalogue_no: int,
        year: int,
        donation_version: int,
        encapsulation_sha256: str,
    ) -> ArchiveItem:
        require_role(signer, (ARCHIVIST_ROLE,), "archiving")
        return cls._open(
            cls.DonationArchived,
            signer,
            archive_item_id_for(donation_id),
            donation_id=str(donation_id),
            donation_no=donation_no,
            package_id=package_id,
            package_type=ORIGINAL,
            archive_ref=archive_ref,
            catalogue_no=catalogue_no,
            year=year,
            donation_version=donation_version,
            encapsulation_sha256=encapsulation_sha256,
        )

    def rearchive(
        self,
        signer: Signer,
        *,
        package_id: str,
        donation_version: int,
        encapsulation_sha256: str,
    ) -> None:
        """A supplementary (修改型) package for the amended record; the reference stays."""
        require_role(signer, (ARCHIVIST_ROLE,), "archiving")
        if donation_version <= self.archived_version:
            raise WorkflowError(
                f"donation {self.donation_no} is archived at version {self.archived_version}: "
                "nothing changed since"
            )
        last = self.last_package
        self._record(
            self.DonationReArchived,
            signer,
            donation_id=self.donation_id,
            donation_no=self.donation_no,
            package_id=package_id,
            package_type=AMENDED,
            archive_ref=self.archive_ref,
            catalogue_no=self.catalogue_no,
            year=int(last["year"]),
            donation_version=donation_version,
            encapsulation_sha256=encapsulation_sha256,
            supersedes_package_id=str(last["package_id"]),
            supersedes_sha256=str(last["encapsulation_sha256"]),
        )


def _package(event: Any) -> dict[str, Any]:
    return {
        "package_id": event.package_id,
        "package_type": event.package_type,
        "year": event.year,
        "donation_version": event.donation_version,
        "encapsulation_sha256": event.encapsulation_sha256,
    }


class FixityAudit(LedgerAggregate):
    """One scheduled fixity check of the archive inbox: what was checked and what it found."""

    def __init__(self) -> None:
        self.outcome = ""

    class FixityAudited(LedgerAggregate.Created):
        audit_id: str
        inbox: str
        packages: list[dict[str, Any]]
        outcome: str

        def apply_state(self, aggregate: FixityAudit) -> None:
            aggregate.outcome = self.outcome

    @classmethod
    def record(
        cls,
        signer: Signer,
        audit_id: str,
        *,
        inbox: str,
        packages: list[dict[str, Any]],
        outcome: str,
    ) -> FixityAudit:
        require_role(signer, (ARCHIVIST_ROLE,), "a fixity audit")
        return cls._open(
            cls.FixityAudited,
            signer,
            fixity_audit_id_for(audit_id),
            audit_id=audit_id,
            inbox=inbox,
            packages=packages,
            outcome=outcome,
        )
