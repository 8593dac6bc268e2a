"""CertificateValidator: one test per way a certificate path can fail."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing.cms import sign_detached
from signing.errors import CertificateInvalid
from signing.pki import Credential, StationPKI
from signing.validation import CertificateValidator, verify_detached
from tests.unit.signing.conftest import NOW


def _test_ca(not_after: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _test_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    not_after: datetime,
    critical_extension: x509.UnrecognizedExtension | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Leaf")]))
        .issuer_name(ca.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(2)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(not_after)
    )
    if critical_extension is not None:
        builder = builder.add_extension(critical_extension, critical=True)
    return builder.sign(ca_key, hashes.SHA256())


def _validator(pki: StationPKI, *crls: x509.CertificateRevocationList) -> CertificateValidator:
    return CertificateValidator([pki.root_certificate], crls)


def test_valid_path(pki: StationPKI, staff: Credential) -> None:
    _validator(pki).validate(staff.certificate, staff.chain, NOW + timedelta(days=10))


def test_valid_path_from_a_verified_signature(pki: StationPKI, donor: Credential) -> None:
    verified = verify_detached(sign_detached(b"data", donor, NOW), b"data")
    _validator(pki).validate(
        verified.signer_certificate, verified.certificates, verified.signing_time
    )


def test_expired_donor_certificate(pki: StationPKI, donor: Credential) -> None:
    with pytest.raises(CertificateInvalid) as caught:
        _validator(pki).validate(donor.certificate, donor.chain, NOW + timedelta(hours=25))
    reason = caught.value.reason
    assert "CN=Chen Wei" in reason
    assert "has expired" in reason
    assert f"notAfter {donor.certificate.not_valid_after_utc.isoformat()}" in reason


def test_not_yet_valid(pki: StationPKI, staff: Credential) -> None:
    with pytest.raises(CertificateInvalid, match="is not yet valid") as caught:
        _validator(pki).validate(staff.certificate, staff.chain, NOW - timedelta(minutes=1))
    assert "CN=Alice Martin" in caught.value.reason
    assert "notBefore 2025-03-01T08:30:15+00:00" in caught.value.reason


def test_expired_ca() -> None:
    """A CA that expires before the certificate it issued: the time check covers the path."""
    ca_key, ca = _test_ca(not_after=NOW + timedelta(days=1))
    leaf = _test_leaf(ca_key, ca, not_after=NOW + timedelta(days=10))
    validator = CertificateValidator([ca])
    validator.validate(leaf, [], NOW)
    with pytest.raises(CertificateInvalid, match="CN=Test CA has expired"):
        validator.validate(leaf, [], NOW + timedelta(days=2))


def test_revoked_before_signing_time(pki: StationPKI, staff: Credential) -> None:
    pki.revoke(staff.certificate.serial_number, NOW + timedelta(days=2), NOW + timedelta(days=3))
    validator = _validator(pki, pki.crl(NOW + timedelta(days=3)))
    with pytest.raises(CertificateInvalid, match="revoked on 2025-03-03T08:30:15"):
        validator.validate(staff.certificate, staff.chain, NOW + timedelta(days=2, hours=1))


def test_revoked_after_signing_time_is_still_valid_then(pki: StationPKI, staff: Credential) -> None:
    pki.revoke(staff.certificate.serial_number, NOW + timedelta(days=2), NOW + timedelta(days=3))
    validator = _validator(pki, pki.crl(NOW + timedelta(days=3)))
    validator.validate(staff.certificate, staff.chain, NOW + timedelta(days=1))


def test_revocation_of_another_certificate_does_not_matter(
    pki: StationPKI, staff: Credential, other_staff: Credential
) -> None:
    pki.revoke(other_staff.certificate.serial_number, NOW, NOW)
    _validator(pki, pki.crl(NOW)).validate(staff.certificate, staff.chain, NOW)


def test_crl_with_a_bad_signature(
    pki: StationPKI, other_pki: StationPKI, staff: Credential
) -> None:
    """The other station has the same names: its CRL claims our issuer but is not signed by it."""
    forged = other_pki.crl(NOW)
    assert forged.issuer == staff.certificate.issuer
    with pytest.raises(CertificateInvalid, match="does not verify"):
        _validator(pki, forged).validate(staff.certificate, staff.chain, NOW)


def test_untrusted_root(pki: StationPKI, other_pki: StationPKI, staff: Credential) -> None:
    with pytest.raises(CertificateInvalid, match="root that is not trusted"):
        _validator(other_pki).validate(staff.certificate, staff.chain, NOW)


def test_missing_intermediate(pki: StationPKI, staff: Credential) -> None:
    with pytest.raises(CertificateInvalid, match="no trusted path"):
        _validator(pki).validate(staff.certificate, [], NOW)


def test_issuer_that_is_not_a_ca(pki: StationPKI, staff: Credential) -> None:
    """A certificate signed with a staff key: the staff certificate is no CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mallory")]))
        .issuer_name(staff.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(staff.private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateInvalid, match="CN=Alice Martin,O=Station Nord is not a CA"):
        _validator(pki).validate(forged, [staff.certificate, *staff.chain], NOW)


def test_unknown_critical_extension() -> None:
    ca_key, ca = _test_ca(not_after=NOW + timedelta(days=10))
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    leaf = _test_leaf(ca_key, ca, not_after=NOW + timedelta(days=1), critical_extension=unknown)
    with pytest.raises(CertificateInvalid, match="unsupported critical extension"):
        CertificateValidator([ca]).validate(leaf, [], NOW)


def test_path_is_cached_and_only_times_are_checked_again(
    pki: StationPKI, staff: Credential
) -> None:
    validator = _validator(pki)
    validator.validate(staff.certificate, staff.chain, NOW)
    # The cached path needs no intermediates any more, and times are still checked.
    validator.validate(staff.certificate, [], NOW + timedelta(days=100))
    with pytest.raises(CertificateInvalid, match="has expired"):
        validator.validate(staff.certificate, [], NOW + timedelta(days=366))


def test_trust_roots_are_required() -> None:
    with pytest.raises(ValueError, match="at least one trust root"):
        CertificateValidator([])


def test_naive_time_is_refused(pki: StationPKI, staff: Credential) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _validator(pki).validate(staff.certificate, staff.chain, NOW.replace(tzinfo=None))
