from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import serialization

from signing import cms as cms_module
from signing.cms import CmsSigner, sign_detached
from signing.errors import SigningError
from signing.pki import Credential, Rsa, StationPKI
from signing.validation import verify_detached
from tests.unit.signing import reference_cms
from tests.unit.signing.conftest import NOW, PASSPHRASE

DATA = b'{"aggregate_id":"6b1f0c9e","topic":"DonorRegistered","version":1}'


def test_sign_and_verify_roundtrip(staff: Credential) -> None:
    signature = sign_detached(DATA, staff, NOW)
    verified = verify_detached(signature, DATA)
    assert verified.subject_id == "STAFF:N001"
    assert verified.signer_certificate == staff.certificate
    assert verified.signing_time == NOW.replace(microsecond=0)
    assert set(verified.certificates) == {staff.certificate, *staff.chain}


def test_structure_is_cades_bes(staff: Credential) -> None:
    content_info = cms.ContentInfo.load(sign_detached(DATA, staff, NOW))
    assert content_info["content_type"].native == "signed_data"
    signed_data = content_info["content"]
    assert signed_data["encap_content_info"]["content_type"].native == "data"
    assert signed_data["encap_content_info"]["content"].native is None  # detached
    assert len(signed_data["certificates"]) == 3
    (signer_info,) = signed_data["signer_infos"]
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    attributes = {a["type"].native: a["values"] for a in signer_info["signed_attrs"]}
    assert sorted(attributes) == [
        "content_type",
        "message_digest",
        "signing_certificate_v2",
        "signing_time",
    ]
    assert attributes["message_digest"][0].native == hashlib.sha256(DATA).digest()
    assert attributes["signing_time"][0].name == "utc_time"
    ess = attributes["signing_certificate_v2"][0]["certs"][0]
    signer_der = staff.certificate.public_bytes(serialization.Encoding.DER)
    assert ess["cert_hash"].native == hashlib.sha256(signer_der).digest()
    assert ess["issuer_serial"]["serial_number"].native == staff.certificate.serial_number


def test_fast_encoding_equals_asn1crypto_encoding(staff: Credential) -> None:
    """The hand-joined DER is byte for byte what asn1crypto makes of the same structure."""
    fast = sign_detached(DATA, staff, NOW)
    signature = cms.ContentInfo.load(fast)["content"]["signer_infos"][0]["signature"].native
    attributes = reference_cms.signed_attributes(
        DATA, NOW.replace(microsecond=0), ess_certificate=staff.certificate
    )
    reference = reference_cms.build_signature(staff, attributes, signature=signature)
    assert fast == reference


def test_signing_time_is_stored_in_utc(staff: Credential) -> None:
    paris = timezone(timedelta(hours=1))
    signature = sign_detached(DATA, staff, NOW.astimezone(paris))
    assert verify_detached(signature, DATA).signing_time == NOW.replace(microsecond=0)


def test_signing_time_after_2049_uses_generalized_time(staff: Credential) -> None:
    late = datetime(2050, 1, 1, tzinfo=UTC)
    signature = sign_detached(DATA, staff, late)
    signer_info = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    (time_attribute,) = [
        a for a in signer_info["signed_attrs"] if a["type"].native == "signing_time"
    ]
    assert time_attribute["values"][0].name == "generalized_time"
    assert verify_detached(signature, DATA).signing_time == late


def test_naive_signing_time_is_refused(staff: Credential) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_detached(DATA, staff, NOW.replace(tzinfo=None))


def test_signer_is_reusable_and_cached(staff: Credential) -> None:
    signer = CmsSigner(staff)
    first = signer.sign(DATA, NOW)
    second = signer.sign(b"other data", NOW + timedelta(seconds=1))
    assert verify_detached(first, DATA).signing_time == NOW.replace(microsecond=0)
    assert verify_detached(second, b"other data").subject_id == "STAFF:N001"
    sign_detached(DATA, staff, NOW)
    assert staff in cms_module._signers


def test_mismatched_key_is_refused(staff: Credential, other_staff: Credential) -> None:
    broken = Credential(staff.certificate, other_staff.private_key, staff.chain)
    with pytest.raises(SigningError, match="does not match"):
        CmsSigner(broken)


def test_rsa_credential(tmp_path: Path) -> None:
    rsa_pki = StationPKI.create(
        tmp_path / "rsa", "Station RSA", PASSPHRASE, NOW, algorithm=Rsa(2048)
    )
    credential = rsa_pki.issue_staff("R1", "Rita", "nurse", NOW)
    signature = sign_detached(DATA, credential, NOW)
    signer_info = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha256_rsa"
    assert verify_detached(signature, DATA).subject_id == "STAFF:R1"


def test_donor_signature(pki: StationPKI, donor: Credential) -> None:
    verified = verify_detached(sign_detached(DATA, donor, NOW), DATA)
    assert verified.subject_id == "DONOR:0123456789abcdef0123456789abcdef"
