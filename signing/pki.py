"""The station PKI: a root CA, an issuing CA, staff and donor signing credentials.

Layout of a station PKI directory (every private key is PKCS#8, encrypted under the passphrase
with PBES2, PBKDF2-HMAC-SHA256 x 600,000 and AES-256-CBC: ``signing/keywrap.py``)::

    root.key.pem, root.cert.pem          root CA, 10 years
    issuing.key.pem, issuing.cert.pem    issuing CA, 5 years, signs staff and donor certificates
    revocations.json                     revoked serial numbers with their revocation dates
    staff/<staff id>.key.pem, .cert.pem  one signing credential per staff member, 1 year
    tsa/tsa.key.pem, tsa/tsa.cert.pem    the local time-stamping authority (RFC 3161), 3 years

Donor credentials live 24 hours and are never written to disk.

Key generation is a small strategy (`KeyAlgorithm`): EC P-256 is the default; RSA is there for
third-party and test use; SM2 can be added later as another strategy without touching the callers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.errors import KeyStoreError, SigningError
from signing.keywrap import is_weak, wrap_key_object

SigningPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
CertificateHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512

STAFF_VALIDITY = timedelta(days=365)
DONOR_VALIDITY = timedelta(hours=24)
ROOT_VALIDITY_YEARS = 10
ISSUING_VALIDITY_YEARS = 5
CRL_VALIDITY = timedelta(days=7)

TSA_VALIDITY_YEARS = 3

STAFF_PREFIX = "STAFF:"
#: Marker file: the issuing CA's private key is in a PKCS#11 token, not in issuing.key.pem.
ISSUING_IN_TOKEN = "issuing.token"
DONOR_PREFIX = "DONOR:"
TSA_PREFIX = "TSA:"

# Identifiers end up in a PrintableString (subject serialNumber) and, for staff, in a file name:
# letters, digits, '.', '_' and '-' only (no path separators), at most 64 characters.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class KeyAlgorithm(Protocol):
    """How new key pairs are made and which hash signs the certificates made with them."""

    @property
    def name(self) -> str: ...

    def generate_private_key(self) -> SigningPrivateKey: ...

    def certificate_hash(self) -> CertificateHash: ...


@dataclass(frozen=True)
class EcP256:
    """ECDSA on NIST P-256 with SHA-256: the default."""

    name: str = "EC P-256"

    def generate_private_key(self) -> SigningPrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def certificate_hash(self) -> CertificateHash:
        return hashes.SHA256()


@dataclass(frozen=True)
class Rsa:
    """RSA (PKCS#1 v1.5 signatures) with SHA-256."""

    key_size: int = 3072
    name: str = "RSA"

    def generate_private_key(self) -> SigningPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)

    def certificate_hash(self) -> CertificateHash:
        return hashes.SHA256()


EC_P256 = EcP256()


@dataclass(frozen=True)
class Credential:
    """A signer's certificate, its private key and the CA chain above it."""

    certificate: x509.Certificate
    private_key: SigningPrivateKey
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last

    @property
    def subject_id(self) -> str:
        """The subject serialNumber attribute: ``STAFF:<staff id>`` or ``DONOR:<donor ref>``."""
        return subject_serial_number(self.certificate)


def subject_serial_number(certificate: x509.Certificate) -> str:
    attributes = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(attributes) != 1:
        raise SigningError(
            f"certificate {certificate.subject.rfc4514_string()} has no single serialNumber"
        )
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("ascii")


class StationPKI:
    """Station root CA (10 y) + issuing CA (5 y), EC P-256 keys, files under a directory."""

    def __init__(
        self,
        *,
        directory: Path,
        passphrase: bytes,
        root: Credential,
        issuing: Credential,
        algorithm: KeyAlgorithm,
        previous: tuple[Credential, ...] = (),
    ) -> None:
        """Use `create` or `load`; this constructor only assembles loaded parts."""
        self._directory = directory
        self._passphrase = passphrase
        self._root = root
        self._issuing = issuing
        self._algorithm = algorithm
        self._previous = previous  # issuing CAs before the last rollover, oldest first

    # -- creation and loading ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        station_name: str,
        passphrase: bytes,
        now: datetime,
        *,
        algorithm: KeyAlgorithm = EC_P256,
        issuing_key: SigningPrivateKey | None = None,
    ) -> StationPKI:
        """Make a new root and issuing CA and write them, keys encrypted, under `directory`.
        With `issuing_key` (a key in a PKCS#11 token, `signing.pkcs11`) the issuing CA's key is
        that one and stays where it is: only its certificate is written."""
        if not passphrase:
            raise KeyStoreError("an empty passphrase would leave the CA keys unencrypted")
        if not station_name.strip():
            raise KeyStoreError("the station name must not be empty")
        now = _second_utc(now)
        if (directory / "root.cert.pem").exists():
            raise KeyStoreError(f"a station PKI already exists in {directory}")
        directory.mkdir(parents=True, exist_ok=True)

        root_key = algorithm.generate_private_key()
        root_name = _name(organization=station_name, common_name=f"{station_name} Root CA")
        root_cert = _ca_certificate(
            subject=root_name,
            subject_key=root_key,
            issuer=None,
            not_before=now,
            not_after=_add_years(now, ROOT_VALIDITY_YEARS),
            path_length=1,
            algorithm=algorithm,
        )
        root = Credential(root_cert, root_key, ())

        if issuing_key is None:
            issuing_key = algorithm.generate_private_key()
        issuing_name = _name(organization=station_name, common_name=f"{station_name} Issuing CA")
        issuing_cert = _ca_certificate(
            subject=issuing_name,
            subject_key=issuing_key,
            issuer=root,
            not_before=now,
            not_after=_add_years(now, ISSUING_VALIDITY_YEARS),
            path_length=0,
            algorithm=algorithm,
        )
        issuing = Credential(issuing_cert, issuing_key, (root_cert,))

        _write_credential(directory, "root", root, passphrase)
        _write_issuing(directory, issuing, passphrase)
        return cls(
            directory=directory,
            passphrase=passphrase,
            root=root,
            issuing=issuing,
            algorithm=algorithm,
        )

    @classmethod
    def load(
        cls,
        directory: Path,
        passphrase: bytes,
        *,
        algorithm: KeyAlgorithm = EC_P256,
        issuing_key: SigningPrivateKey | None = None,
    ) -> StationPKI:
        """Read a station PKI written by `create`; `algorithm` makes the keys issued from now on.
        `issuing_key`: the issuing CA's key when it is in a token (see `issuing_key_in_token`);
        it must match the issuing certificate."""
        root_cert = _read_certificate(directory / "root.cert.pem")
        issuing_cert = _read_certificate(directory / "issuing.cert.pem")
        root_key = _read_private_key(directory / "root.key.pem", passphrase, root_cert)
        if issuing_key is not None:
            _check_key_matches(issuing_key, issuing_cert, "the token (issuing CA)")
        elif (label := issuing_token_label(directory)) is not None:
            raise KeyStoreError(
                f"the issuing CA key is {label!r} in a PKCS#11 token: set "
                "LEDGER_PKCS11_MODULE, LEDGER_PKCS11_TOKEN and LEDGER_PKCS11_PIN"
            )
        else:
            issuing_key = _read_private_key(directory / "issuing.key.pem", passphrase, issuing_cert)
        previous = []
        for cert_path in sorted((directory / "previous").glob("issuing-*.cert.pem")):
            cert = _read_certificate(cert_path)
            key_path = cert_path.with_name(cert_path.name.replace(".cert.pem", ".key.pem"))
            key = _read_private_key(key_path, passphrase, cert)
            previous.append(Credential(cert, key, (root_cert,)))
        previous.sort(key=lambda c: c.certificate.not_valid_before_utc)
        return cls(
            directory=directory,
            passphrase=passphrase,
            root=Credential(root_cert, root_key, ()),
            issuing=Credential(issuing_cert, issuing_key, (root_cert,)),
            algorithm=algorithm,
            previous=tuple(previous),
        )

    def renew_issuing(
        self, now: datetime, *, key: SigningPrivateKey | None = None
    ) -> x509.Certificate:
        """CA rollover: a new issuing CA key and certificate under the same root; the
        old one moves to ``previous/`` (kept to sign CRLs for the certificates it issued, which
        stay valid, and their signatures with them). Certificates issued from now on come from
        the new CA. The old CA is saved before the new one replaces it: a crash in between leaves
        the old CA in place and a copy of it in ``previous/``. With `key` (a key in a PKCS#11
        token) the new CA's key is that one: only its certificate is written, and the file key
        of the old CA stays only in ``previous/``."""
        now = _second_utc(now)
        old = self._issuing
        root = self._root
        previous_dir = self._directory / "previous"
        previous_dir.mkdir(exist_ok=True)
        _write_credential(
            previous_dir, f"issuing-{old.certificate.serial_number:x}", old, self._passphrase
        )
        if key is None:
            key = self._algorithm.generate_private_key()
        # A new name per generation ("... Issuing CA 2"): CRLs are matched to their CA by name,
        # and a CRL under our CA's name that its key did not sign is taken as a forgery.
        generation = len(self._previous) + 2
        subject = _name(
            organization=self.station_name,
            common_name=f"{self.station_name} Issuing CA {generation}",
        )
        certificate = _ca_certificate(
            subject=subject,
            subject_key=key,
            issuer=root,
            not_before=now,
            not_after=min(
                _add_years(now, ISSUING_VALIDITY_YEARS), root.certificate.not_valid_after_utc
            ),
            path_length=0,
            algorithm=self._algorithm,
        )
        renewed = Credential(certificate, key, (root.certificate,))
        _write_issuing(self._directory, renewed, self._passphrase)
        self._previous = (*self._previous, old)
        self._issuing = renewed
        return certificate

    # -- what the station exposes ----------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def issuing_key_in_token(self) -> bool:
        """Is the issuing CA's key in a PKCS#11 token (no key file)?"""
        return issuing_token_label(self._directory) is not None

    def close(self) -> None:
        """End the PKCS#11 session of a CA key held in a token (file keys: nothing to do)."""
        for credential in (self._issuing, *self._previous):
            close_key = getattr(credential.private_key, "close", None)
            if callable(close_key):
                close_key()

    @property
    def station_name(self) -> str:
        attributes = self._issuing.certificate.subject.get_attributes_for_oid(
            NameOID.ORGANIZATION_NAME
        )
        value = attributes[0].value if attributes else ""
        return value if isinstance(value, str) else value.decode("utf-8")

    @property
    def root_certificate(self) -> x509.Certificate:
        return self._root.certificate

    @property
    def issuing_certificate(self) -> x509.Certificate:
        return self._issuing.certificate

    @property
    def previous_issuing_certificates(self) -> tuple[x509.Certificate, ...]:
        return tuple(c.certificate for c in self._previous)

    def chain_pem(self) -> bytes:
        """Issuing CA, root, then the issuing CAs before a rollover, PEM: the `-CAfile` of
        `openssl cms -verify` (it verifies signatures made before and after a rollover)."""
        return b"".join(
            cert.public_bytes(serialization.Encoding.PEM)
            for cert in (
                self._issuing.certificate,
                self._root.certificate,
                *reversed(self.previous_issuing_certificates),
            )
        )

    # -- end-entity credentials ------------------------------------------------------------

    def issue_staff(self, staff_id: str, name: str, role: str, now: datetime) -> Credential:
        """Issue a staff signing credential valid for 365 days and save it, key encrypted."""
        _check_identifier("staff id", staff_id)
        if not role.strip():
            raise SigningError("the staff role must not be empty")
        credential = self._issue_end_entity(
            common_name=name,
            serial=STAFF_PREFIX + staff_id,
            title=role,
            now=now,
            validity=STAFF_VALIDITY,
        )
        staff_dir = self._directory / "staff"
        staff_dir.mkdir(exist_ok=True)
        _write_credential(staff_dir, staff_id, credential, self._passphrase)
        return credential

    def issue_staff_for_key(
        self, staff_id: str, name: str, role: str, key: SigningPrivateKey, now: datetime
    ) -> Credential:
        """Issue a staff certificate for a key held elsewhere (a PKCS#11 token:
        `signing.pkcs11`); only the certificate is saved (``staff/<id>.token.cert.pem``)."""
        _check_identifier("staff id", staff_id)
        if not role.strip():
            raise SigningError("the staff role must not be empty")
        credential = self._issue_end_entity(
            common_name=name,
            serial=STAFF_PREFIX + staff_id,
            title=role,
            now=now,
            validity=STAFF_VALIDITY,
            key=key,
        )
        staff_dir = self._directory / "staff"
        staff_dir.mkdir(exist_ok=True)
        _atomic_write(
            staff_dir / f"{staff_id}.token.cert.pem",
            credential.certificate.public_bytes(serialization.Encoding.PEM),
        )
        return credential

    def has_token_staff(self, staff_id: str) -> bool:
        """Is the key of `staff_id` in a token (a certificate from `issue_staff_for_key`)?"""
        _check_identifier("staff id", staff_id)
        return (self._directory / "staff" / f"{staff_id}.token.cert.pem").is_file()

    def load_token_staff(self, staff_id: str, key: SigningPrivateKey) -> Credential:
        """The staff credential whose key `key` is in a token (`signing.pkcs11.open_token_key`)."""
        _check_identifier("staff id", staff_id)
        path = self._directory / "staff" / f"{staff_id}.token.cert.pem"
        certificate = _read_certificate(path)
        _check_key_matches(key, certificate, f"the token key of {staff_id}")
        return Credential(certificate, key, self._chain_for(certificate))

    def load_staff(self, staff_id: str) -> Credential:
        """Read the staff credential saved by `issue_staff`."""
        _check_identifier("staff id", staff_id)
        staff_dir = self._directory / "staff"
        certificate = _read_certificate(staff_dir / f"{staff_id}.cert.pem")
        key = _read_private_key(staff_dir / f"{staff_id}.key.pem", self._passphrase, certificate)
        return Credential(certificate, key, self._chain_for(certificate))

    def issue_donor(self, donor_ref: str, name: str, now: datetime) -> Credential:
        """Issue a donor signing credential valid for 24 hours; it is not written anywhere."""
        _check_identifier("donor ref", donor_ref)
        return self._issue_end_entity(
            common_name=name,
            serial=DONOR_PREFIX + donor_ref,
            title=None,
            now=now,
            validity=DONOR_VALIDITY,
        )

    def issue_tsa(
        self, name: str, now: datetime, *, key: SigningPrivateKey | None = None
    ) -> Credential:
        """Issue the local TSA's credential (RFC 3161 2.3) and save it, key encrypted, under tsa/.

        Subject CN=`name`, O=station, serialNumber ``TSA:<name as an identifier>``; keyUsage
        digitalSignature and nonRepudiation, and extendedKeyUsage timeStamping alone, both
        critical (RFC 3161 2.3 and OpenSSL's timestamp-signing purpose ask for exactly that).
        Valid for 3 years or until the issuing CA expires, whichever comes first. Issuing again
        replaces the saved credential. With `key` (a key in a PKCS#11 token) only the
        certificate is saved, and ``tsa/tsa.token`` names the key's label.
        """
        if not name.strip():
            raise SigningError("the TSA name must not be empty")
        now = _second_utc(now)
        issuing = self._issuing
        ca_not_after = issuing.certificate.not_valid_after_utc
        if not issuing.certificate.not_valid_before_utc <= now < ca_not_after:
            raise SigningError(f"the issuing CA is not valid at {now.isoformat()}")
        not_after = min(_add_years(now, TSA_VALIDITY_YEARS), ca_not_after)
        if key is None:
            key = self._algorithm.generate_private_key()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.station_name),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, TSA_PREFIX + _tsa_identifier(name)),
            ]
        )
        certificate = self._sign_end_entity(
            subject,
            key,
            now,
            not_after,
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
            usage_critical=True,
        )
        credential = Credential(certificate, key, self._chain())
        tsa_dir = self._directory / "tsa"
        tsa_dir.mkdir(exist_ok=True)
        _write_in_file_or_token(tsa_dir, "tsa", credential, self._passphrase)
        return credential

    def tsa_token_label(self) -> str | None:
        """The token label of the TSA's key when it is in a PKCS#11 token, else None."""
        return _token_label(self._directory / "tsa" / "tsa.token")

    def load_tsa(self, key: SigningPrivateKey | None = None) -> Credential:
        """Read the TSA credential saved by `issue_tsa`; `KeyStoreError` if there is none.
        `key`: the TSA's key when it is in a token (`tsa_token_label`)."""
        tsa_dir = self._directory / "tsa"
        certificate = _read_certificate(tsa_dir / "tsa.cert.pem")
        if key is not None:
            _check_key_matches(key, certificate, "the token (TSA)")
        elif (label := self.tsa_token_label()) is not None:
            raise KeyStoreError(
                f"the TSA key is {label!r} in a PKCS#11 token: set LEDGER_PKCS11_MODULE, "
                "LEDGER_PKCS11_TOKEN and LEDGER_PKCS11_PIN"
            )
        else:
            key = _read_private_key(tsa_dir / "tsa.key.pem", self._passphrase, certificate)
        return Credential(certificate, key, self._chain_for(certificate))

    def import_pkcs12(self, data: bytes, password: bytes | None) -> Credential:
        """Read a third-party credential (certificate, key and CA chain) from PKCS#12 bytes."""
        try:
            key, certificate, additional = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"cannot read the PKCS#12 data (wrong password?): {exc}") from exc
        if certificate is None or key is None:
            raise KeyStoreError("the PKCS#12 data holds no certificate with its private key")
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyStoreError(f"unsupported key type in PKCS#12 data: {type(key).__name__}")
        _check_key_matches(key, certificate, "PKCS#12 data")
        return Credential(certificate, key, _order_chain(certificate, additional))

    # -- revocation -----------------------------------------------------------------------

    def revoke(self, serial_number: int, revoked_at: datetime, now: datetime) -> None:
        """Record that the certificate with `serial_number` is revoked since `revoked_at`."""
        revoked_at = _second_utc(revoked_at)
        now = _as_utc(now)
        if serial_number <= 0:
            raise SigningError(f"not a certificate serial number: {serial_number}")
        if revoked_at > now:
            raise SigningError(f"revocation date {revoked_at.isoformat()} is after now")
        entries = self._revocations()
        earlier = entries.get(serial_number)
        if earlier is not None and earlier[0] <= revoked_at:
            return  # already revoked at that date or before: keep the earliest date
        entries[serial_number] = (revoked_at, now)
        document = {
            "revoked": [
                {
                    "serial": format(serial, "x"),
                    "revoked_at": at.isoformat(),
                    "recorded_at": rec.isoformat(),
                }
                for serial, (at, rec) in sorted(entries.items())
            ]
        }
        _atomic_write(self._directory / "revocations.json", json.dumps(document, indent=2).encode())

    def crls(self, now: datetime) -> list[x509.CertificateRevocationList]:
        """The CRL of the issuing CA and of each issuing CA before a rollover."""
        return [self.crl(now), *(self.crl(now, issuing=ca) for ca in self._previous)]

    def crl(
        self, now: datetime, *, issuing: Credential | None = None
    ) -> x509.CertificateRevocationList:
        """A CRL signed by the issuing CA (or `issuing`, one before a rollover) listing every
        revoked serial with its revocation date."""
        now = _second_utc(now)
        issuing = issuing or self._issuing
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuing.certificate.subject)
            .last_update(now)
            .next_update(now + CRL_VALIDITY)
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(_authority_key_id(issuing.certificate), critical=False)
        )
        for serial, (revoked_at, _recorded) in sorted(self._revocations().items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(revoked_at)
                .build()
            )
        return builder.sign(issuing.private_key, self._algorithm.certificate_hash())

    # -- internals ------------------------------------------------------------------------

    def _chain(self) -> tuple[x509.Certificate, ...]:
        return (self._issuing.certificate, self._root.certificate)

    def _chain_for(self, certificate: x509.Certificate) -> tuple[x509.Certificate, ...]:
        """The chain of a certificate: its issuing CA (current or before a rollover), root."""
        for ca in (self._issuing, *reversed(self._previous)):
            if certificate.issuer == ca.certificate.subject:
                try:
                    certificate.verify_directly_issued_by(ca.certificate)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                return (ca.certificate, self._root.certificate)
        return self._chain()

    def _issue_end_entity(
        self,
        *,
        common_name: str,
        serial: str,
        title: str | None,
        now: datetime,
        validity: timedelta,
        key: SigningPrivateKey | None = None,
    ) -> Credential:
        if not common_name.strip():
            raise SigningError("the subject name must not be empty")
        now = _second_utc(now)
        not_after = now + validity
        issuing = self._issuing
        if not issuing.certificate.not_valid_before_utc <= now:
            raise SigningError("the issuing CA is not yet valid")
        if not_after > issuing.certificate.not_valid_after_utc:
            raise SigningError(
                "the issuing CA expires on "
                f"{issuing.certificate.not_valid_after_utc.isoformat()}, before the new "
                f"certificate would ({not_after.isoformat()}): renew the station PKI"
            )
        attributes = [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.station_name),
            x509.NameAttribute(NameOID.COMMON_NAME, certificate_common_name(common_name)),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
        ]
        if title is not None:
            attributes.append(x509.NameAttribute(NameOID.TITLE, title))
        if key is None:
            key = self._algorithm.generate_private_key()
        # emailProtection: `openssl cms -verify` checks the smimesign purpose by default, and
        # NSS (pdfsig) wants it for email/document signers; an absent EKU would also pass
        # OpenSSL but says "any purpose", which is broader than we mean.
        certificate = self._sign_end_entity(
            x509.Name(attributes),
            key,
            now,
            not_after,
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            usage_critical=False,
        )
        return Credential(certificate, key, self._chain())

    def _sign_end_entity(
        self,
        subject: x509.Name,
        key: SigningPrivateKey,
        now: datetime,
        not_after: datetime,
        extended_key_usage: x509.ExtendedKeyUsage,
        *,
        usage_critical: bool,
    ) -> x509.Certificate:
        """A signer's certificate from the issuing CA: not a CA, keyUsage digitalSignature and
        nonRepudiation (critical), `extended_key_usage`, key identifiers."""
        issuing = self._issuing
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuing.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,  # nonRepudiation
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(extended_key_usage, critical=usage_critical)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(_authority_key_id(issuing.certificate), critical=False)
            .sign(issuing.private_key, self._algorithm.certificate_hash())
        )

    def _revocations(self) -> dict[int, tuple[datetime, datetime]]:
        path = self._directory / "revocations.json"
        if not path.exists():
            return {}
        try:
            document = json.loads(path.read_bytes())
            return {
                int(entry["serial"], 16): (
                    datetime.fromisoformat(entry["revoked_at"]),
                    datetime.fromisoformat(entry["recorded_at"]),
                )
                for entry in document["revoked"]
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"cannot read the revocation list {path}: {exc}") from exc


# -- helpers ------------------------------------------------------------------------------


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {moment!r}")
    return moment.astimezone(UTC)


def _second_utc(moment: datetime) -> datetime:
    """UTC, truncated to the second: X.509 and CRL times carry no fractions."""
    return _as_utc(moment).replace(microsecond=0)


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def _check_identifier(what: str, value: str) -> None:
    if not _IDENTIFIER.fullmatch(value):
        raise SigningError(f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")


def _tsa_identifier(name: str) -> str:
    """`name` as an identifier for the subject serialNumber (a PrintableString): runs of other
    characters become '-'; a name with no ASCII letter or digit falls back to a hash of it."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:64]
    return slug or hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def certificate_common_name(name: str) -> str:
    """`name` as it may stand in a certificate's common name.

    RFC 5280 section 7.1 compares names after the string preparation of RFC 4518, which prohibits
    code points unassigned in Unicode 3.2; validators that follow it (asn1crypto, hence pyHanko
    and its certificate validator) refuse to compare, and so to build a path for, a certificate
    whose name holds one. Real registers hold such names: CJK extension B+ characters added after
    Unicode 3.2 (U+2C317 in the demo's "王\U0002c317", extension E). Each such character is written
    ``{U+2C317}`` in the certificate; the full name stays in the signed ledger event, and the
    subject serialNumber, not the name, binds the certificate to the actor."""
    return "".join(
        f"{{U+{ord(ch):04X}}}" if unicodedata.ucd_3_2_0.category(ch) == "Cn" else ch for ch in name
    )


def _name(*, organization: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _ca_certificate(
    *,
    subject: x509.Name,
    subject_key: SigningPrivateKey,
    issuer: Credential | None,
    not_before: datetime,
    not_after: datetime,
    path_length: int,
    algorithm: KeyAlgorithm,
) -> x509.Certificate:
    public_key = subject_key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    if issuer is None:  # self-signed root
        issuer_name, signing_key = subject, subject_key
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        issuer_name, signing_key = issuer.certificate.subject, issuer.private_key
        aki = _authority_key_id(issuer.certificate)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    return builder.sign(signing_key, algorithm.certificate_hash())


def _order_chain(
    certificate: x509.Certificate, others: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """Order CA certificates from the issuer of `certificate` up to the root; strays go last."""
    remaining = list(others)
    ordered: list[x509.Certificate] = []
    current = certificate
    while True:
        issuer = next((c for c in remaining if c.subject == current.issuer), None)
        if issuer is None or current.subject == current.issuer:
            break
        ordered.append(issuer)
        remaining.remove(issuer)
        current = issuer
    return (*ordered, *remaining)


def _check_key_matches(key: SigningPrivateKey, certificate: x509.Certificate, where: str) -> None:
    if key.public_key() != certificate.public_key():
        raise KeyStoreError(f"the private key in {where} does not match its certificate")


def _write_credential(
    directory: Path, stem: str, credential: Credential, passphrase: bytes
) -> None:
    key_pem = wrap_key_object(credential.private_key, passphrase)
    _atomic_write(directory / f"{stem}.key.pem", key_pem, mode=0o600)
    _atomic_write(
        directory / f"{stem}.cert.pem",
        credential.certificate.public_bytes(serialization.Encoding.PEM),
    )


def issuing_token_label(directory: Path) -> str | None:
    """The token label of the issuing CA's key when it is in a PKCS#11 token, else None."""
    return _token_label(directory / ISSUING_IN_TOKEN)


def _token_label(marker: Path) -> str | None:
    try:
        return marker.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyStoreError(f"cannot read {marker}: {exc}") from exc


def _write_issuing(directory: Path, issuing: Credential, passphrase: bytes) -> None:
    """The issuing CA: key (encrypted) and certificate files, or, when its key is in a token,
    the certificate and the marker ``issuing.token`` (a key file left from before is removed
    once the certificate is in place; its copy is under ``previous/``)."""
    _write_in_file_or_token(directory, "issuing", issuing, passphrase)


def _write_in_file_or_token(
    directory: Path, stem: str, credential: Credential, passphrase: bytes
) -> None:
    """``<stem>.key.pem`` (encrypted) and ``<stem>.cert.pem``; or, when the key is in a PKCS#11
    token, the certificate and ``<stem>.token`` holding the key's label (a key file from before
    is removed once the certificate is in place)."""
    from signing.pkcs11 import TokenEcKey

    marker = directory / f"{stem}.token"
    if not isinstance(credential.private_key, TokenEcKey):
        _write_credential(directory, stem, credential, passphrase)
        marker.unlink(missing_ok=True)
        return
    _atomic_write(
        directory / f"{stem}.cert.pem",
        credential.certificate.public_bytes(serialization.Encoding.PEM),
    )
    _atomic_write(marker, f"{credential.private_key.label}\n".encode())
    (directory / f"{stem}.key.pem").unlink(missing_ok=True)


def rewrap_weak_keys(directory: Path, passphrase: bytes) -> list[Path]:
    """Re-encrypt, in place and atomically, every ``*.key.pem`` under `directory` wrapped with a
    weaker KDF than today's (files written before PBKDF2 x 600,000: 2048 iterations). Each key is
    first opened with `passphrase` (a wrong one changes nothing); returns the files rewritten."""
    rewritten: list[Path] = []
    for path in sorted(directory.rglob("*.key.pem")):
        data = path.read_bytes()
        if not is_weak(data):
            continue
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(
                f"cannot decrypt private key {path}: wrong passphrase or damaged file"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyStoreError(f"unsupported key type in {path}: {type(key).__name__}")
        _atomic_write(path, wrap_key_object(key, passphrase), mode=0o600)
        rewritten.append(path)
    return rewritten


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise KeyStoreError(f"missing certificate file {path}") from exc
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"cannot read certificate {path}: {exc}") from exc


def _read_private_key(
    path: Path, passphrase: bytes, certificate: x509.Certificate
) -> SigningPrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyStoreError(f"missing private key file {path}") from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot read private key {path}: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(
            f"cannot decrypt private key {path}: wrong passphrase or damaged file"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeyStoreError(f"unsupported key type in {path}: {type(key).__name__}")
    _check_key_matches(key, certificate, str(path))
    return key
