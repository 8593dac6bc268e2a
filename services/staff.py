"""Staff certificates: who may sign, revoking a certificate, listing what the ledger recorded.

Use cases take a typed, frozen command and return a typed result; they raise `LedgerError`
subclasses for what a user can fix (an unknown staff id, a missing reason).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.signer import CredentialSigner
from services.station import Station
from signing.errors import InputError, SigningError


def staff_signer(station: Station, staff_id: str) -> CredentialSigner:
    """The signer of `staff_id`; an unknown or unreadable credential is bad input."""
    try:
        return station.signer(staff_id)
    except (SigningError, OSError) as exc:
        raise InputError(f"no credential for staff {staff_id}: {exc}") from exc


@dataclass(frozen=True)
class RevokeStaff:
    staff_id: str
    reason: str
    by: str = "A001"


@dataclass(frozen=True)
class Revoked:
    staff_id: str
    serial_number: int


def revoke_staff(station: Station, command: RevokeStaff) -> Revoked:
    """Revoke a staff certificate: a CRL entry and a signed CertificateRevoked event."""
    try:
        serial = station.revoke_staff(command.staff_id, command.reason, command.by)
    except (SigningError, OSError) as exc:
        raise InputError(f"cannot revoke {command.staff_id}: {exc}") from exc
    return Revoked(command.staff_id, serial)


@dataclass(frozen=True)
class StaffCertificate:
    """A staff certificate as the ledger recorded it (CertificateIssued / CertificateRevoked)."""

    subject_id: str
    name: str
    role: str
    serial_hex: str
    not_before: str
    not_after: str
    revoked_at: str | None
    revocation_reason: str | None
