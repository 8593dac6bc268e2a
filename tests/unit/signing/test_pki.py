from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.errors import KeyStoreError, SigningError
from signing.pki import Credential, Rsa, StationPKI
from tests.unit.signing.conftest import NOW, PASSPHRASE

SECOND_NOW = NOW.replace(microsecond=0)


def _attribute(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    (attribute,) = certificate.subject.get_attributes_for_oid(oid)
    return str(attribute.value)


def test_create_writes_encrypted_ca_keys(pki: StationPKI) -> None:
    directory = pki.directory
    for stem in ("root", "issuing"):
        key_pem = (directory / f"{stem}.key.pem").read_bytes()
        assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert stat.S_IMODE((directory / f"{stem}.key.pem").stat().st_mode) == 0o600
        with pytest.raises(TypeError):  # encrypted: no key without the passphrase
            serialization.load_pem_private_key(key_pem, password=None)


def test_ca_profile(pki: StationPKI) -> None:
    root, issuing = pki.root_certificate, pki.issuing_certificate
    assert root.subject == root.issuer
    assert issuing.issuer == root.subject
    assert root.not_valid_after_utc == SECOND_NOW.replace(year=2035)
    assert issuing.not_valid_after_utc == SECOND_NOW.replace(year=2030)
    for cert in (root, issuing):
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.crl_sign
    issuing.verify_directly_issued_by(root)
    assert pki.station_name == "Station Nord"


def test_create_refuses_an_existing_pki(pki: StationPKI) -> None:
    with pytest.raises(KeyStoreError, match="already exists"):
        StationPKI.create(pki.directory, "Station Nord", PASSPHRASE, NOW)


def test_load_roundtrip(pki: StationPKI) -> None:
    loaded = StationPKI.load(pki.directory, PASSPHRASE)
    assert loaded.root_certificate == pki.root_certificate
    assert loaded.issuing_certificate == pki.issuing_certificate
    assert loaded.chain_pem() == pki.chain_pem()


def test_load_with_wrong_passphrase_fails_clearly(pki: StationPKI) -> None:
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        StationPKI.load(pki.directory, b"not the passphrase")


def test_load_of_a_missing_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="missing certificate file"):
        StationPKI.load(tmp_path / "nothing", PASSPHRASE)


def test_staff_credential_profile(pki: StationPKI, staff: Credential) -> None:
    cert = staff.certificate
    assert staff.subject_id == "STAFF:N001"
    assert _attribute(cert, NameOID.COMMON_NAME) == "Alice Martin"
    assert _attribute(cert, NameOID.TITLE) == "nurse"
    assert _attribute(cert, NameOID.ORGANIZATION_NAME) == "Station Nord"
    assert cert.not_valid_before_utc == SECOND_NOW
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=365)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    cert.verify_directly_issued_by(pki.issuing_certificate)
    assert staff.chain == (pki.issuing_certificate, pki.root_certificate)


def test_staff_credential_is_saved_encrypted_and_loads(pki: StationPKI, staff: Credential) -> None:
    key_path = pki.directory / "staff" / "N001.key.pem"
    assert key_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (pki.directory / "staff" / "N001.cert.pem").exists()
    loaded = StationPKI.load(pki.directory, PASSPHRASE).load_staff("N001")
    assert loaded.certificate == staff.certificate
    assert loaded.private_key.public_key() == staff.private_key.public_key()
    assert loaded.chain == staff.chain


def test_load_staff_unknown_fails(pki: StationPKI) -> None:
    with pytest.raises(KeyStoreError, match="missing"):
        pki.load_staff("N999")


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "with space", "x" * 65])
def test_identifiers_that_are_no_safe_file_names_are_refused(pki: StationPKI, bad_id: str) -> None:
    with pytest.raises(SigningError, match="invalid staff id"):
        pki.issue_staff(bad_id, "Name", "nurse", NOW)


def test_donor_credential_lives_24_hours_and_is_not_saved(
    pki: StationPKI, donor: Credential
) -> None:
    cert = donor.certificate
    assert donor.subject_id == "DONOR:0123456789abcdef0123456789abcdef"
    assert _attribute(cert, NameOID.COMMON_NAME) == "Chen Wei"  # UTF-8 names
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(hours=24)
    assert not (pki.directory / "staff").exists()
    assert sorted(p.name for p in pki.directory.iterdir()) == [
        "issuing.cert.pem",
        "issuing.key.pem",
        "root.cert.pem",
        "root.key.pem",
    ]


def test_issuing_beyond_the_issuing_ca_lifetime_is_refused(pki: StationPKI) -> None:
    with pytest.raises(SigningError, match="renew the station PKI"):
        pki.issue_staff("N003", "Late", "nurse", NOW.replace(year=2029, month=6))


def test_naive_datetimes_are_refused(pki: StationPKI) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pki.issue_donor("abc", "Name", NOW.replace(tzinfo=None))


def test_revocations_are_persisted_and_listed_in_the_crl(
    pki: StationPKI, staff: Credential, other_staff: Credential
) -> None:
    revoked_at = NOW + timedelta(days=3)
    pki.revoke(staff.certificate.serial_number, revoked_at, NOW + timedelta(days=4))
    reloaded = StationPKI.load(pki.directory, PASSPHRASE)
    crl = reloaded.crl(NOW + timedelta(days=5))
    assert crl.issuer == pki.issuing_certificate.subject
    assert crl.is_signature_valid(pki.issuing_certificate.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(staff.certificate.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == revoked_at.replace(microsecond=0)
    assert (
        crl.get_revoked_certificate_by_serial_number(other_staff.certificate.serial_number) is None
    )


def test_revoking_twice_keeps_the_earliest_date(pki: StationPKI, staff: Credential) -> None:
    serial = staff.certificate.serial_number
    pki.revoke(serial, NOW + timedelta(days=2), NOW + timedelta(days=5))
    pki.revoke(serial, NOW + timedelta(days=1), NOW + timedelta(days=5))
    pki.revoke(serial, NOW + timedelta(days=3), NOW + timedelta(days=5))
    entry = pki.crl(NOW + timedelta(days=6)).get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.revocation_date_utc == (NOW + timedelta(days=1)).replace(microsecond=0)


def test_revocation_in_the_future_is_refused(pki: StationPKI, staff: Credential) -> None:
    with pytest.raises(SigningError, match="after now"):
        pki.revoke(staff.certificate.serial_number, NOW + timedelta(days=1), NOW)


def test_empty_crl(pki: StationPKI) -> None:
    assert len(pki.crl(NOW)) == 0


def test_import_pkcs12_roundtrip(pki: StationPKI, other_pki: StationPKI) -> None:
    third_party = other_pki.issue_donor("tp1", "Third Party", NOW)
    data = pkcs12.serialize_key_and_certificates(
        b"third party",
        third_party.private_key,
        third_party.certificate,
        # shuffled on purpose: the import orders the chain issuer-first
        [third_party.chain[1], third_party.chain[0]],
        serialization.BestAvailableEncryption(b"p12 password"),
    )
    imported = pki.import_pkcs12(data, b"p12 password")
    assert imported.certificate == third_party.certificate
    assert imported.private_key.public_key() == third_party.private_key.public_key()
    assert imported.chain == third_party.chain
    assert imported.subject_id == "DONOR:tp1"


def test_import_pkcs12_with_wrong_password_fails(pki: StationPKI, donor: Credential) -> None:
    data = pkcs12.serialize_key_and_certificates(
        None,
        donor.private_key,
        donor.certificate,
        None,
        serialization.BestAvailableEncryption(b"right"),
    )
    with pytest.raises(KeyStoreError, match="wrong password"):
        pki.import_pkcs12(data, b"wrong")


def test_import_pkcs12_without_key_fails(pki: StationPKI, donor: Credential) -> None:
    data = pkcs12.serialize_key_and_certificates(
        None, None, donor.certificate, None, serialization.NoEncryption()
    )
    with pytest.raises(KeyStoreError, match="no certificate with its private key"):
        pki.import_pkcs12(data, None)


def test_rsa_strategy(tmp_path: Path) -> None:
    rsa_pki = StationPKI.create(
        tmp_path / "rsa", "Station RSA", PASSPHRASE, NOW, algorithm=Rsa(2048)
    )
    credential = rsa_pki.issue_staff("R1", "Rita", "nurse", NOW)
    assert isinstance(credential.private_key, rsa.RSAPrivateKey)
    assert isinstance(rsa_pki.root_certificate.public_key(), rsa.RSAPublicKey)


@pytest.mark.parametrize(
    ("name", "in_certificate"),
    [
        ("陈检验", "陈检验"),
        ("陈\u4dae", "陈\u4dae"),  # extension A: assigned in Unicode 3.2, kept
        ("王\U0002c317", "王{U+2C317}"),  # extension E (Unicode 8.0): unassigned in 3.2
    ],
)
def test_a_name_beyond_unicode_3_2_still_gives_a_comparable_certificate(
    pki: StationPKI, name: str, in_certificate: str
) -> None:
    """RFC 4518 string preparation (asn1crypto, pyHanko) refuses code points unassigned in
    Unicode 3.2; the certificate writes them as {U+XXXX} so that its name can be compared."""
    from asn1crypto import x509 as asn1_x509

    donor = pki.issue_donor("rare1", name, NOW)
    assert _attribute(donor.certificate, NameOID.COMMON_NAME) == in_certificate
    parsed = asn1_x509.Certificate.load(donor.certificate.public_bytes(serialization.Encoding.DER))
    assert parsed.subject.hashable  # raises for an unassigned code point
    assert parsed.subject == parsed.subject
