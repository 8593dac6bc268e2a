"""verify_detached: one test per way a signature can fail."""

from __future__ import annotations

from typing import Any

import pytest
from asn1crypto import cms, core

from signing.cms import sign_detached
from signing.errors import SignatureInvalid
from signing.pki import Credential
from signing.validation import verify_detached
from tests.unit.signing import reference_cms
from tests.unit.signing.conftest import NOW

DATA = b'{"actor":"STAFF:N001","topic":"PreCollectionCheckRecorded","version":3}'
OTHER = b'{"actor":"STAFF:N001","topic":"PreCollectionCheckRecorded","version":4}'
SECOND_NOW = NOW.replace(microsecond=0)


@pytest.fixture
def signature(staff: Credential) -> bytes:
    return sign_detached(DATA, staff, NOW)


def _edit(signature: bytes, edit: Any) -> bytes:
    """Parse with asn1crypto, let `edit(content_info)` change it, and re-encode everything."""
    content_info = cms.ContentInfo.load(signature)
    edit(content_info)
    return bytes(content_info.dump(force=True))


def _fails(signature: bytes, data: bytes, reason: str) -> SignatureInvalid:
    with pytest.raises(SignatureInvalid, match=reason) as caught:
        verify_detached(signature, data)
    return caught.value


def test_valid_signature_verifies(signature: bytes) -> None:
    verified = verify_detached(signature, DATA)
    assert verified.subject_id == "STAFF:N001"
    assert verified.signing_time == SECOND_NOW


def test_reencoding_by_asn1crypto_still_verifies(signature: bytes) -> None:
    """The test helper `_edit` changes nothing by itself."""
    assert verify_detached(_edit(signature, lambda ci: None), DATA).subject_id == "STAFF:N001"


def test_edited_data(signature: bytes) -> None:
    error = _fails(signature, OTHER, "message digest mismatch")
    assert error.reason == "message digest mismatch"


def test_signature_of_other_data(staff: Credential) -> None:
    _fails(sign_detached(OTHER, staff, NOW), DATA, "message digest mismatch")


def test_signature_value_replaced_by_one_over_other_data(
    signature: bytes, staff: Credential
) -> None:
    other_value = cms.ContentInfo.load(sign_detached(OTHER, staff, NOW))["content"]["signer_infos"][
        0
    ]["signature"].native

    def replace(ci: Any) -> None:
        ci["content"]["signer_infos"][0]["signature"] = other_value

    _fails(_edit(signature, replace), DATA, "signature value does not verify")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda der: der[:-10], id="truncated"),
        pytest.param(lambda der: der[: len(der) // 2], id="half"),
        pytest.param(lambda der: der + b"\x00", id="trailing-byte"),
        pytest.param(lambda der: b"", id="empty"),
        pytest.param(lambda der: b"not a CMS signature at all", id="garbage"),
        pytest.param(lambda der: b"\x30\x80" + der[2:], id="indefinite-length"),
        pytest.param(lambda der: bytes(range(256)) * 4, id="bytes"),
    ],
)
def test_unparseable(signature: bytes, mangle: Any) -> None:
    _fails(mangle(signature), DATA, "^unparseable CMS: ")


def test_not_signed_data() -> None:
    data_info = cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump()
    _fails(data_info, DATA, "not a ContentInfo holding SignedData")


def test_signed_attributes_tampered(signature: bytes) -> None:
    original = core.UTCTime(SECOND_NOW).dump()
    later = core.UTCTime(SECOND_NOW.replace(second=SECOND_NOW.second + 1)).dump()
    position = signature.rindex(original)  # the SignerInfo comes last, after the certificates
    tampered = signature[:position] + later + signature[position + len(original) :]
    _fails(tampered, DATA, "signature value does not verify")


def test_missing_ess_attribute(staff: Credential) -> None:
    attributes = reference_cms.signed_attributes(DATA, SECOND_NOW, ess_certificate=None)
    built = reference_cms.build_signature(staff, attributes)
    _fails(built, DATA, "signing_certificate_v2 is missing")


def test_ess_attribute_naming_another_certificate(
    staff: Credential, other_staff: Credential
) -> None:
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=other_staff.certificate
    )
    built = reference_cms.build_signature(staff, attributes)
    _fails(built, DATA, "signing-certificate-v2 does not match the signer certificate")


def test_wrong_certificate_embedded(staff: Credential, other_staff: Credential) -> None:
    """The signer's certificate swapped for a colleague's: the SignerInfo names a missing one."""
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=staff.certificate
    )
    built = reference_cms.build_signature(
        staff, attributes, certificates=(other_staff.certificate, *staff.chain)
    )
    _fails(built, DATA, "signer certificate named by the SignerInfo is not embedded")


def test_wrong_certificate_embedded_and_named(staff: Credential, other_staff: Credential) -> None:
    """Signed by one key, claiming a colleague's certificate in SignerInfo: ESS catches it."""
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=staff.certificate
    )
    built = reference_cms.build_signature(
        staff,
        attributes,
        certificates=(other_staff.certificate, *staff.chain),
        signer=other_staff.certificate,
    )
    _fails(built, DATA, "signing-certificate-v2 does not match")


def test_colleague_certificate_claimed_everywhere(
    staff: Credential, other_staff: Credential
) -> None:
    """SignerInfo and ESS both name the colleague, but the key is not theirs."""
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=other_staff.certificate
    )
    built = reference_cms.build_signature(
        staff,
        attributes,
        certificates=(other_staff.certificate, *staff.chain),
        signer=other_staff.certificate,
    )
    _fails(built, DATA, "signature value does not verify")


def test_content_type_attribute_not_data(staff: Credential) -> None:
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=staff.certificate, content_type="signed_data"
    )
    _fails(reference_cms.build_signature(staff, attributes), DATA, "content-type attribute")


def test_duplicate_signed_attribute(staff: Credential) -> None:
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=staff.certificate
    )
    attributes.append(
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": SECOND_NOW})]})
    )
    _fails(reference_cms.build_signature(staff, attributes), DATA, "occurs more than once")


def test_two_message_digest_values(staff: Credential) -> None:
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=staff.certificate
    )
    digest = attributes[1]["values"][0].native
    attributes[1] = cms.CMSAttribute({"type": "message_digest", "values": [digest, digest]})
    _fails(reference_cms.build_signature(staff, attributes), DATA, "has 2 values, not one")


def test_missing_signing_time(staff: Credential) -> None:
    attributes = reference_cms.signed_attributes(
        DATA, SECOND_NOW, ess_certificate=staff.certificate
    )
    del attributes[2]
    _fails(reference_cms.build_signature(staff, attributes), DATA, "signing_time is missing")


def test_not_detached(signature: bytes) -> None:
    def attach(ci: Any) -> None:
        ci["content"]["encap_content_info"] = {"content_type": "data", "content": DATA}

    _fails(_edit(signature, attach), DATA, "not detached")


def test_two_signer_infos(signature: bytes) -> None:
    def duplicate(ci: Any) -> None:
        signer_infos = ci["content"]["signer_infos"]
        signer_infos.append(signer_infos[0].copy())

    _fails(_edit(signature, duplicate), DATA, "exactly one SignerInfo, found 2")


def test_no_signed_attributes(signature: bytes) -> None:
    def strip(ci: Any) -> None:
        signer_info = ci["content"]["signer_infos"][0]
        fields = ("version", "sid", "digest_algorithm", "signature_algorithm", "signature")
        ci["content"]["signer_infos"] = [cms.SignerInfo({f: signer_info[f] for f in fields})]

    _fails(_edit(signature, strip), DATA, "no signed attributes")


def test_unsupported_digest_algorithm(signature: bytes) -> None:
    def sha1(ci: Any) -> None:
        ci["content"]["signer_infos"][0]["digest_algorithm"] = {"algorithm": "sha1"}

    _fails(_edit(signature, sha1), DATA, "unsupported digest algorithm")


def test_signature_algorithm_not_fitting_the_key(signature: bytes) -> None:
    def rsa(ci: Any) -> None:
        ci["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": "sha256_rsa"}

    _fails(_edit(signature, rsa), DATA, "does not fit the signer")


def test_signer_info_version_not_fitting(signature: bytes) -> None:
    def version(ci: Any) -> None:
        ci["content"]["signer_infos"][0]["version"] = "v3"

    _fails(_edit(signature, version), DATA, "version")


def test_every_byte_flip_fails_cleanly(signature: bytes) -> None:
    """Flip each byte: only SignatureInvalid may come out, and the SignerInfo is all covered."""
    signer_info = cms.ContentInfo.load(signature)["content"]["signer_infos"][0].dump()
    signer_info_start = signature.index(signer_info)
    for position in range(len(signature)):
        mangled = bytearray(signature)
        mangled[position] ^= 0x01
        try:
            verified = verify_detached(bytes(mangled), DATA)
        except SignatureInvalid:
            continue
        # Outside the SignerInfo some bytes are not evidence (the CA certificates' own
        # signatures are checked by CertificateValidator, versions are not signed).
        assert position < signer_info_start, f"flip at {position} inside the SignerInfo passed"
        assert verified.subject_id == "STAFF:N001"
        assert verified.signing_time == SECOND_NOW
