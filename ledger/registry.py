"""Aggregates beside the donation: donors, station settings, signing credentials, number index."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger import personal
from ledger.events import LedgerAggregate, Signer, WorkflowError, add_fields, require_role
from ledger.rules import check_parameter_value

_NS = uuid5(NAMESPACE_URL, "urn:donation-ledger")


def donor_id_for(donor_ref: str) -> UUID:
    return uuid5(_NS, f"donor:{donor_ref}")


def station_id_for(station_id: str) -> UUID:
    return uuid5(_NS, f"station:{station_id}")


def credential_id_for(serial_hex: str) -> UUID:
    return uuid5(_NS, f"certificate:{serial_hex}")


def number_index_id_for(donation_no: str) -> UUID:
    return uuid5(_NS, f"donation-no:{donation_no}")


class Donor(LedgerAggregate):
    """A donor, keyed by the HMAC of the ID number. The ID number itself is only held encrypted."""

    def __init__(self) -> None:
        self.donor_ref = ""
        self.id_number_masked = ""
        self.name = ""
        self.sex = ""
        self.birth_date = ""
        self.visits: list[str] = []

    class DonorEnrolled(LedgerAggregate.Created):
        """Version 2 signs the name only masked and as a salted commitment (``ledger.personal``,
        as ``Donation.DonorRegistered`` v2): the clear name and the salt are stored beside the
        signed body, so an exported or packaged body holds no clear name."""

        class_version = 2
        PERSONAL_FIELDS: ClassVar[Mapping[str, str]] = {"name": "name_commitment"}
        UNSIGNED_FIELDS: ClassVar[frozenset[str]] = frozenset({"personal_salt"})

        donor_ref: str
        id_type: str
        id_number_masked: str
        id_number_encrypted: str
        name: str
        sex: str
        birth_date: str
        name_masked: str
        name_commitment: str
        personal_salt: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 signed the clear name (it stays in its body)."""
            add_fields(state, name_masked="", name_commitment="", personal_salt="")

        def apply_state(self, aggregate: Donor) -> None:
            aggregate.donor_ref = self.donor_ref
            aggregate.id_number_masked = self.id_number_masked
            aggregate.name = self.name
            aggregate.sex = self.sex
            aggregate.birth_date = self.birth_date

    class VisitOpened(LedgerAggregate.Event):
        donation_id: str

        def apply_state(self, aggregate: Donor) -> None:
            aggregate.visits.append(self.donation_id)

    @classmethod
    def enrol(
        cls,
        signer: Signer,
        donor_ref: str,
        *,
        id_type: str,
        id_number_masked: str,
        id_number_encrypted: str,
        name: str,
        sex: str,
        birth_date: str,
    ) -> Donor:
        salt = personal.new_salt()
        return cls._open(
            cls.DonorEnrolled,
            signer,
            donor_id_for(donor_ref),
            donor_ref=donor_ref,
            id_type=id_type,
            id_number_masked=id_number_masked,
            id_number_encrypted=id_number_encrypted,
            name=name,
            sex=sex,
            birth_date=birth_date,
            name_masked=personal.mask_name(name),
            name_commitment=personal.commit(salt, "name", name),
            personal_salt=salt,
        )

    def open_visit(self, signer: Signer, donation_id: UUID) -> None:
        self._record(self.VisitOpened, signer, donation_id=str(donation_id))


class StationConfig(LedgerAggregate):
    """Per-station parameters (switches and form texts) as versioned data."""

    def __init__(self) -> None:
        self.station_id = ""
        self.parameters: dict[str, Any] = {}

    class StationConfigured(LedgerAggregate.Created):
        station_id: str
        parameters: dict[str, Any]

        def apply_state(self, aggregate: StationConfig) -> None:
            aggregate.station_id = self.station_id
            aggregate.parameters = dict(self.parameters)

    class StationSettingChanged(LedgerAggregate.Event):
        key: str
        old_value: Any
        new_value: Any
        reason: str

        def apply_state(self, aggregate: StationConfig) -> None:
            aggregate.parameters[self.key] = self.new_value

    @classmethod
    def configure(
        cls, signer: Signer, station_id: str, parameters: dict[str, Any]
    ) -> StationConfig:
        require_role(signer, ("administrator", "system"), "station configuration")
        for key, value in parameters.items():
            if key != PARAMETER_SET:
                _check_parameter(key, value)
        return cls._open(
            cls.StationConfigured,
            signer,
            station_id_for(station_id),
            station_id=station_id,
            parameters=parameters,
        )

    def change(self, signer: Signer, key: str, new_value: Any, reason: str) -> None:
        require_role(signer, ("administrator",), "a station setting change")
        if key not in self.parameters:
            raise WorkflowError(f"unknown station parameter {key!r}")
        old = self.parameters[key]
        if old == new_value:
            raise WorkflowError(f"{key} is already {new_value!r}")
        if not reason.strip():
            raise WorkflowError("a setting change needs a reason")
        _check_parameter(key, new_value)
        self._record(
            self.StationSettingChanged,
            signer,
            key=key,
            old_value=old,
            new_value=new_value,
            reason=reason,
        )


#: The key of the station's parameters naming the parameter set it was configured from.
PARAMETER_SET = "parameter_set"


def _check_parameter(key: str, value: Any) -> None:
    try:
        check_parameter_value(key, value)
    except ValueError as exc:
        raise WorkflowError(f"station parameter {exc}") from exc


class SigningCredential(LedgerAggregate):
    """A certificate the station issued or imported, and its revocation."""

    def __init__(self) -> None:
        self.serial_hex = ""
        self.subject_id = ""
        self.revoked = False

    class StaffCertificateIssued(LedgerAggregate.Created):
        serial_hex: str
        subject_id: str
        name: str
        role: str
        not_before: str
        not_after: str
        certificate_pem: str

        def apply_state(self, aggregate: SigningCredential) -> None:
            aggregate.serial_hex = self.serial_hex
            aggregate.subject_id = self.subject_id

    class DonorCertificateIssued(LedgerAggregate.Created):
        serial_hex: str
        subject_id: str
        donor_ref: str
        fingerprint_verified: bool
        issued_at: str
        expires_at: str
        certificate_pem: str

        def apply_state(self, aggregate: SigningCredential) -> None:
            aggregate.serial_hex = self.serial_hex
            aggregate.subject_id = self.subject_id

    class CertificateRevoked(LedgerAggregate.Event):
        revoked_at: str
        reason: str

        def apply_state(self, aggregate: SigningCredential) -> None:
            aggregate.revoked = True

    @classmethod
    def staff_issued(
        cls,
        signer: Signer,
        serial_hex: str,
        *,
        subject_id: str,
        name: str,
        role: str,
        not_before: str,
        not_after: str,
        certificate_pem: str,
    ) -> SigningCredential:
        return cls._open(
            cls.StaffCertificateIssued,
            signer,
            credential_id_for(serial_hex),
            serial_hex=serial_hex,
            subject_id=subject_id,
            name=name,
            role=role,
            not_before=not_before,
            not_after=not_after,
            certificate_pem=certificate_pem,
        )

    @classmethod
    def donor_issued(
        cls,
        signer: Signer,
        serial_hex: str,
        *,
        subject_id: str,
        donor_ref: str,
        fingerprint_verified: bool,
        issued_at: str,
        expires_at: str,
        certificate_pem: str,
    ) -> SigningCredential:
        return cls._open(
            cls.DonorCertificateIssued,
            signer,
            credential_id_for(serial_hex),
            serial_hex=serial_hex,
            subject_id=subject_id,
            donor_ref=donor_ref,
            fingerprint_verified=fingerprint_verified,
            issued_at=issued_at,
            expires_at=expires_at,
            certificate_pem=certificate_pem,
        )

    def revoke(self, signer: Signer, revoked_at: str, reason: str) -> None:
        require_role(signer, ("administrator",), "a revocation")
        if self.revoked:
            raise WorkflowError(f"certificate {self.serial_hex} is already revoked")
        self._record(self.CertificateRevoked, signer, revoked_at=revoked_at, reason=reason)


class DonationNumberIndex(LedgerAggregate):
    """Maps a donation number to its donation. Its creation enforces uniqueness of the number."""

    def __init__(self) -> None:
        self.donation_id = ""

    class DonationNumberReserved(LedgerAggregate.Created):
        donation_no: str
        donation_id: str

        def apply_state(self, aggregate: DonationNumberIndex) -> None:
            aggregate.donation_id = self.donation_id

    @classmethod
    def reserve(cls, signer: Signer, donation_no: str, donation_id: UUID) -> DonationNumberIndex:
        return cls._open(
            cls.DonationNumberReserved,
            signer,
            number_index_id_for(donation_no),
            donation_no=donation_no,
            donation_id=str(donation_id),
        )
