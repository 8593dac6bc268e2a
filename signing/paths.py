"""Certificate path validation at a chosen time: trust roots, CA constraints, CRLs.

Part of the checking half (re-exported by `signing.validation`); imports no creation code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from signing.errors import CertificateInvalid

__all__ = ["CertificateValidator"]

_MAX_PATH_LENGTH = 8
# Critical extensions this validator understands; any other critical one fails the path.
_UNDERSTOOD_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.CERTIFICATE_POLICIES,
    }
)


@dataclass(frozen=True)
class _PathEntry:
    """One certificate of a validated path, with the facts left to check at a given time."""

    subject: str
    serial_number: int
    not_before: datetime
    not_after: datetime
    revoked_on: datetime | None  # earliest revocation date listed by a CRL of its issuer


class CertificateValidator:
    """Validates certificate paths to a fixed set of trusted roots at a chosen time.

    Done by hand on top of `Certificate.verify_directly_issued_by` and
    `CertificateRevocationList.is_signature_valid` rather than with cryptography's
    `x509.verification`: that verifier implements the TLS web-PKI profile (server or client
    EKU, SAN rules), has no CRL support, and checks signatures and times in one call, so its
    expensive part cannot be cached while the time is checked again for each event.

    The path of each certificate (issuer names, signatures, CA constraints, CRL signatures and
    revocation dates) is worked out once and cached by certificate; later calls for the same
    certificate only compare `at` with the validity windows and revocation dates.
    """

    def __init__(
        self,
        trust_roots: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList] = (),
    ) -> None:
        if not trust_roots:
            raise ValueError("a CertificateValidator needs at least one trust root")
        self._trust_roots = tuple(trust_roots)
        self._trusted = frozenset(trust_roots)
        self._crls = tuple(crls)
        self._paths: dict[x509.Certificate, tuple[_PathEntry, ...]] = {}
        self._by_identity: dict[int, tuple[x509.Certificate, tuple[_PathEntry, ...]]] = {}
        # Signature checks are pure functions of their inputs; a ledger has a donor certificate
        # per donation, all issued by the same CA under the same CRL, so without these every
        # new path re-verified the CA under the root and the CRL under the CA.
        self._issued_by: dict[tuple[x509.Certificate, x509.Certificate], bool] = {}
        self._crl_valid: dict[tuple[int, x509.Certificate], bool] = {}
        # Likewise what a path entry says about a certificate under a given issuer (with this
        # validator's CRLs), and the extension checks a certificate passed at a given depth.
        self._entries: dict[tuple[x509.Certificate, x509.Certificate | None], _PathEntry] = {}
        self._extensions_ok: set[tuple[x509.Certificate, int]] = set()

    def validate(
        self,
        certificate: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: datetime,
    ) -> None:
        """Raise `CertificateInvalid` unless `certificate` was valid at `at` under the roots."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"`at` must be timezone-aware, got {at!r}")
        at = at.astimezone(UTC)
        # Looked up by identity first: hashing a Certificate hashes its parsed structure (a few
        # µs), and verification hands over the same object for every event of a signer. The
        # entry holds the object, so its id cannot be reused while the entry exists.
        known = self._by_identity.get(id(certificate))
        if known is not None and known[0] is certificate:
            path = known[1]
        else:
            found = self._paths.get(certificate)
            if found is None:
                found = self._build_path(certificate, intermediates)
                self._paths[certificate] = found
            path = found
            self._by_identity[id(certificate)] = (certificate, path)
        for entry in path:
            if at < entry.not_before:
                raise CertificateInvalid(
                    f"certificate {entry.subject} is not yet valid at {at.isoformat()}: "
                    f"notBefore {entry.not_before.isoformat()}"
                )
            if at > entry.not_after:
                raise CertificateInvalid(
                    f"certificate {entry.subject} has expired at {at.isoformat()}: "
                    f"notAfter {entry.not_after.isoformat()}"
                )
            if entry.revoked_on is not None and entry.revoked_on <= at:
                raise CertificateInvalid(
                    f"certificate {entry.subject} (serial {entry.serial_number:x}) "
                    f"revoked on {entry.revoked_on.isoformat()}"
                )

    def _build_path(
        self, certificate: x509.Certificate, intermediates: Sequence[x509.Certificate]
    ) -> tuple[_PathEntry, ...]:
        path = [certificate]
        current = certificate
        candidates = (*self._trust_roots, *intermediates)  # trusted roots are tried first
        while current not in self._trusted:
            if len(path) > _MAX_PATH_LENGTH:
                raise CertificateInvalid(f"certificate path of {_subject(certificate)} is too long")
            issuer = self._find_issuer(current, candidates, path)
            path.append(issuer)
            current = issuer
        for index, cert in enumerate(path):
            if (cert, index - 1) not in self._extensions_ok:
                _check_extensions(cert, cas_below=index - 1)
                self._extensions_ok.add((cert, index - 1))
        entries = []
        for index, cert in enumerate(path):
            issuer_of = path[index + 1] if index + 1 < len(path) else None
            entry = self._entries.get((cert, issuer_of))
            if entry is None:
                entry = _PathEntry(
                    subject=_subject(cert),
                    serial_number=cert.serial_number,
                    not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc,
                    revoked_on=None
                    if issuer_of is None
                    else self._revocation_date(cert, issuer_of),
                )
                self._entries[(cert, issuer_of)] = entry
            entries.append(entry)
        return tuple(entries)

    def _find_issuer(
        self,
        certificate: x509.Certificate,
        candidates: Sequence[x509.Certificate],
        path: Sequence[x509.Certificate],
    ) -> x509.Certificate:
        named = [c for c in candidates if c.subject == certificate.issuer and c not in path]
        for candidate in named:
            if self._directly_issued_by(certificate, candidate):
                return candidate
        if certificate.subject == certificate.issuer:
            raise CertificateInvalid(
                f"certificate {_subject(certificate)} is a root that is not trusted"
            )
        raise CertificateInvalid(
            f"no trusted path for certificate {_subject(certificate)}: no issuer "
            f"{certificate.issuer.rfc4514_string(_ATTRIBUTE_NAMES)} among the trust roots and "
            "intermediates "
            f"({len(named)} by that name, none whose signature verifies)"
        )

    def _directly_issued_by(
        self, certificate: x509.Certificate, candidate: x509.Certificate
    ) -> bool:
        key = (certificate, candidate)
        verified = self._issued_by.get(key)
        if verified is None:
            try:
                certificate.verify_directly_issued_by(candidate)
                verified = True
            except (ValueError, TypeError, InvalidSignature):
                verified = False
            self._issued_by[key] = verified
        return verified

    def _crl_signed_by(self, index: int, issuer: x509.Certificate) -> bool:
        key = (index, issuer)
        valid = self._crl_valid.get(key)
        if valid is None:
            public_key = issuer.public_key()
            valid = isinstance(
                public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey
            ) and self._crls[index].is_signature_valid(public_key)
            self._crl_valid[key] = valid
        return valid

    def _revocation_date(
        self, certificate: x509.Certificate, issuer: x509.Certificate
    ) -> datetime | None:
        earliest: datetime | None = None
        for index, crl in enumerate(self._crls):
            if crl.issuer != certificate.issuer:
                continue
            if not self._crl_signed_by(index, issuer):
                raise CertificateInvalid(
                    f"a CRL of {crl.issuer.rfc4514_string()} does not verify with the key of "
                    f"{_subject(issuer)}"
                )
            entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if entry is not None and (earliest is None or entry.revocation_date_utc < earliest):
                earliest = entry.revocation_date_utc
        return earliest


_ATTRIBUTE_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber", NameOID.TITLE: "title"}


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string(_ATTRIBUTE_NAMES)


def _check_extensions(certificate: x509.Certificate, cas_below: int) -> None:
    """CA constraints (RFC 5280 4.2.1.3, 4.2.1.9) and critical extensions we do not understand.

    `cas_below` is the number of CA certificates between this one and the end entity; -1 for the
    end entity itself.
    """
    for extension in certificate.extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRITICAL:
            raise CertificateInvalid(
                f"certificate {_subject(certificate)} has an unsupported critical extension "
                f"{extension.oid.dotted_string}"
            )
    try:
        key_usage: x509.KeyUsage | None = certificate.extensions.get_extension_for_class(
            x509.KeyUsage
        ).value
    except x509.ExtensionNotFound:
        key_usage = None
    if cas_below < 0:
        if key_usage is not None and not (
            key_usage.digital_signature or key_usage.content_commitment
        ):
            raise CertificateInvalid(
                f"certificate {_subject(certificate)} may not sign: its key usage has neither "
                "digitalSignature nor nonRepudiation"
            )
        return
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CertificateInvalid(f"issuer certificate {_subject(certificate)} is not a CA")
    if constraints.path_length is not None and cas_below > constraints.path_length:
        raise CertificateInvalid(
            f"CA certificate {_subject(certificate)} allows {constraints.path_length} CA "
            f"certificates below it, the path has {cas_below}"
        )
    if key_usage is not None and not key_usage.key_cert_sign:
        raise CertificateInvalid(
            f"CA certificate {_subject(certificate)} may not sign certificates (key usage)"
        )
