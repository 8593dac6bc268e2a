"""verify_timestamp_token: one test per way a timestamp token can fail."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing.errors import CertificateInvalid, SignatureInvalid
from signing.paths import CertificateValidator
from signing.pki import Credential, StationPKI
from signing.tsa import TimestampAuthority
from signing.tsp_validation import verify_timestamp_token
from tests.unit.signing import test_tsa_reference as reference
from tests.unit.signing.conftest import NOW

DIGEST = hashlib.sha256(b"merkle root of batch 17").digest()
OTHER_DIGEST = hashlib.sha256(b"merkle root of batch 18").digest()


@pytest.fixture
def tsa(pki: StationPKI) -> Credential:
    return pki.issue_tsa("Station Nord TSA", NOW)


@pytest.fixture
def token(tsa: Credential) -> bytes:
    return TimestampAuthority(tsa, clock=lambda: NOW).stamp(DIGEST, nonce=99)


@pytest.fixture
def validator(pki: StationPKI) -> CertificateValidator:
    return CertificateValidator([pki.root_certificate])


def _fails(token: bytes, reason: str, digest: bytes = DIGEST) -> None:
    with pytest.raises(SignatureInvalid, match=reason):
        verify_timestamp_token(token, digest)


def _reference_token(tsa: Credential, **changes: Any) -> bytes:
    """A token made by the reference builder, validly signed, with `changes` applied."""
    tst = changes.pop("tst", None) or reference.tst_info(DIGEST, tsa=tsa.certificate)
    ess = changes.pop("ess", reference.ess_v2(tsa.certificate))
    attributes = changes.pop("attributes", None) or reference.signed_attributes(tst, ess=ess)
    return reference.build_token(tsa, tst, attributes, **changes)


def test_valid_token_verifies(
    token: bytes, tsa: Credential, validator: CertificateValidator
) -> None:
    verified = verify_timestamp_token(token, DIGEST, validator)
    assert verified.gen_time == NOW
    assert verified.nonce == 99
    assert verified.tsa_certificate == tsa.certificate
    assert verified.digest == DIGEST


def test_reencoding_by_asn1crypto_still_verifies(token: bytes) -> None:
    reencoded = bytes(cms.ContentInfo.load(token).dump(force=True))
    assert verify_timestamp_token(reencoded, DIGEST).nonce == 99


def test_reference_token_with_ess_v1_verifies(tsa: Credential) -> None:
    """Third-party TSAs still send ESS signing-certificate (v1, SHA-1, RFC 2634)."""
    verify_timestamp_token(_reference_token(tsa, ess=reference.ess_v1(tsa.certificate)), DIGEST)


# -- the imprint ----------------------------------------------------------------------------


def test_imprint_mismatch(token: bytes) -> None:
    _fails(token, "timestamp imprint does not match", digest=OTHER_DIGEST)


def test_imprint_of_another_algorithm(tsa: Credential) -> None:
    tst = reference.tst_info(DIGEST, hash_algorithm="sha512", tsa=tsa.certificate)
    _fails(_reference_token(tsa, tst=tst), "timestamp imprint does not match")


# -- the token's own integrity --------------------------------------------------------------


def test_tampered_gen_time(token: bytes) -> None:
    """Another genTime in the TSTInfo: the message-digest attribute no longer matches."""
    tampered = token.replace(b"20250301083015.123456Z", b"20250301083016.123456Z")
    assert tampered != token
    _fails(tampered, "message digest mismatch")


def test_tampered_signature_value(token: bytes) -> None:
    tampered = token[:-5] + bytes([token[-5] ^ 0x01]) + token[-4:]
    _fails(tampered, "does not verify|unparseable")


def test_every_byte_flip_fails_cleanly(token: bytes) -> None:
    """Flip each byte: only typed errors come out, and the signed parts are all covered."""
    signed_data = cms.ContentInfo.load(token)["content"]
    tst_start = token.index(signed_data["encap_content_info"]["content"].contents)
    signer_info = signed_data["signer_infos"][0].dump()
    signer_info_start = token.index(signer_info)
    certificate_start = token.index(signed_data["certificates"][0].dump())
    for position in range(len(token)):
        mangled = bytearray(token)
        mangled[position] ^= 0x01
        try:
            verified = verify_timestamp_token(bytes(mangled), DIGEST)
        except (SignatureInvalid, CertificateInvalid):
            continue
        # Envelope bytes that are not evidence (versions, the digestAlgorithms set, the CA
        # certificate, checked by CertificateValidator) may change; the TSTInfo, the TSA
        # certificate (bound by the ESS attribute) and the SignerInfo may not.
        assert not tst_start <= position < certificate_start, f"flip at {position} in TSTInfo"
        assert position < signer_info_start, f"flip at {position} inside the SignerInfo passed"
        assert verified.gen_time == NOW


def test_not_a_token() -> None:
    _fails(b"\x30\x03\x02\x01\x00", "unparseable")
    _fails(b"", "unparseable")


def test_not_tst_info(tsa: Credential) -> None:
    _fails(_reference_token(tsa, e_content_type="data"), "not id-ct-TSTInfo")


def test_content_type_attribute_not_tst_info(tsa: Credential) -> None:
    tst = reference.tst_info(DIGEST, tsa=tsa.certificate)
    attributes = reference.signed_attributes(
        tst, ess=reference.ess_v2(tsa.certificate), content_type="data"
    )
    _fails(_reference_token(tsa, tst=tst, attributes=attributes), "content-type")


def test_missing_ess_attribute(tsa: Credential) -> None:
    _fails(_reference_token(tsa, ess=None), "no ESS signing-certificate")


def test_ess_attribute_naming_another_certificate(tsa: Credential, staff: Credential) -> None:
    _fails(
        _reference_token(tsa, ess=reference.ess_v2(staff.certificate)),
        "does not match the TSA certificate",
    )


def test_tsa_name_of_another_subject(tsa: Credential, staff: Credential) -> None:
    tst = reference.tst_info(DIGEST, tsa=staff.certificate)
    _fails(_reference_token(tsa, tst=tst), "tsa name")


def test_unsupported_tst_info_version(tsa: Credential) -> None:
    tst = reference.tst_info(DIGEST, version="v2")
    _fails(_reference_token(tsa, tst=tst), "TSTInfo version")


def test_tsa_certificate_not_embedded(tsa: Credential) -> None:
    token = _reference_token(tsa, certificates=[])
    _fails(token, "not available")
    verified = verify_timestamp_token(token, DIGEST, certificates=[tsa.certificate])
    assert verified.tsa_certificate == tsa.certificate


def test_signed_by_another_key_in_the_tsa_name(tsa: Credential, other_pki: StationPKI) -> None:
    """A token that names our TSA certificate but is signed by another station's TSA key."""
    impostor = other_pki.issue_tsa("Station Nord TSA", NOW)
    tst = reference.tst_info(DIGEST, tsa=tsa.certificate)
    attributes = reference.signed_attributes(tst, ess=reference.ess_v2(tsa.certificate))
    signature = reference.sign_attributes(impostor, attributes)
    token = reference.build_token(tsa, tst, attributes, signature=signature)
    _fails(token, "does not verify")


# -- the TSA certificate --------------------------------------------------------------------


def test_untrusted_tsa(other_pki: StationPKI, validator: CertificateValidator) -> None:
    """A TSA of another PKI (same names): the signature verifies, the path does not."""
    foreign = other_pki.issue_tsa("Station Nord TSA", NOW)
    token = TimestampAuthority(foreign, clock=lambda: NOW).stamp(DIGEST)
    verify_timestamp_token(token, DIGEST)  # without a validator: self-consistent
    with pytest.raises(CertificateInvalid):
        verify_timestamp_token(token, DIGEST, validator)


@pytest.mark.parametrize(
    ("usage", "critical", "reason"),
    [
        ([ExtendedKeyUsageOID.TIME_STAMPING], False, "not critical"),
        (None, True, "no extendedKeyUsage"),
        ([ExtendedKeyUsageOID.EMAIL_PROTECTION], True, "timeStamping alone"),
        (
            [ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING],
            True,
            "timeStamping alone",
        ),
    ],
)
def test_tsa_certificate_without_critical_time_stamping_usage(
    pki: StationPKI, usage: list[Any] | None, critical: bool, reason: str
) -> None:
    credential = reference.hand_made_tsa(pki, extended_key_usage=usage, critical=critical)
    token = TimestampAuthority(credential, clock=lambda: NOW).stamp(DIGEST)
    with pytest.raises(CertificateInvalid, match=reason):
        verify_timestamp_token(token, DIGEST)


def test_hand_made_tsa_with_critical_time_stamping_passes(
    pki: StationPKI, validator: CertificateValidator
) -> None:
    """The control for the test above: the same hand-made certificate, done right."""
    credential = reference.hand_made_tsa(pki)
    token = TimestampAuthority(credential, clock=lambda: NOW).stamp(DIGEST)
    verify_timestamp_token(token, DIGEST, validator)


def test_gen_time_outside_the_tsa_certificate_validity(
    pki: StationPKI, validator: CertificateValidator
) -> None:
    credential = reference.hand_made_tsa(pki, not_before=NOW + timedelta(days=1))
    token = TimestampAuthority(credential, clock=lambda: NOW).stamp(DIGEST)
    with pytest.raises(CertificateInvalid, match="not yet valid"):
        verify_timestamp_token(token, DIGEST, validator)


def test_revoked_tsa(pki: StationPKI, tsa: Credential, token: bytes) -> None:
    pki.revoke(tsa.certificate.serial_number, NOW - timedelta(seconds=1), NOW)
    validator = CertificateValidator([pki.root_certificate], [pki.crl(NOW)])
    with pytest.raises(CertificateInvalid, match="revoked"):
        verify_timestamp_token(token, DIGEST, validator)


def test_checking_half_imports_no_creation_code() -> None:
    """A regulator runs only signing.tsp_validation: nothing that makes tokens or keys loads."""
    code = (
        "import sys, signing.tsp_validation; "
        "print(sorted(m for m in sys.modules if m in "
        "('signing.tsa', 'signing.timestamps', 'signing.cms', 'signing.pki')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert completed.stdout.strip() == "[]"
