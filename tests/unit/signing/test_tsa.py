"""The local TSA: its credential (StationPKI.issue_tsa), its tokens and its answers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.errors import KeyStoreError, SigningError
from signing.paths import CertificateValidator
from signing.pki import Credential, Rsa, StationPKI
from signing.tsa import DEFAULT_POLICY, TimestampAuthority
from signing.tsp_validation import verify_timestamp_token
from tests.unit.signing import test_tsa_reference as reference
from tests.unit.signing.conftest import NOW, PASSPHRASE

DIGEST = hashlib.sha256(b"batch 17 of the ledger").digest()
_SHA256_NULL = bytes.fromhex("0609608648016503040201" + "0500")  # OID sha256, NULL
_SHA256_OCTETS = bytes.fromhex("0609608648016503040201" + "0400")  # OID sha256, OCTET STRING


@pytest.fixture
def tsa(pki: StationPKI) -> Credential:
    return pki.issue_tsa("Station Nord TSA", NOW)


@pytest.fixture
def authority(tsa: Credential) -> TimestampAuthority:
    return TimestampAuthority(tsa, clock=lambda: NOW)


def _request(
    digest: bytes = DIGEST,
    *,
    algorithm: str = "sha256",
    parameters: Any = None,
    nonce: int | None = 42,
    cert_req: bool = True,
    **extra: Any,
) -> bytes:
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": algorithm, "parameters": parameters},
            "hashed_message": digest,
        },
        "cert_req": cert_req,
        **extra,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    return bytes(tsp.TimeStampReq(fields).dump())


def _status_of(response_der: bytes) -> tuple[str, set[str]]:
    outer = core.Sequence.load(response_der)
    status = tsp.PKIStatusInfo.load(outer[0].dump())
    return status["status"].native, set(status["fail_info"].native or ())


def _token_of(response_der: bytes) -> bytes:
    outer = core.Sequence.load(response_der)
    assert len(outer) == 2
    return bytes(outer[1].dump())


# -- the credential -------------------------------------------------------------------------


def test_tsa_credential_profile(pki: StationPKI, tsa: Credential) -> None:
    cert = tsa.certificate
    assert tsa.subject_id == "TSA:Station-Nord-TSA"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Station Nord TSA"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Station Nord"
    )
    assert isinstance(tsa.private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(tsa.private_key.curve, ec.SECP256R1)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature and key_usage.value.content_commitment
    assert not key_usage.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_before_utc == NOW.replace(microsecond=0)
    assert cert.not_valid_after_utc == NOW.replace(year=NOW.year + 3, microsecond=0)
    assert tsa.chain == (pki.issuing_certificate, pki.root_certificate)
    CertificateValidator([pki.root_certificate]).validate(cert, tsa.chain, NOW)


def test_tsa_validity_stops_at_the_issuing_ca(pki: StationPKI) -> None:
    late = pki.issuing_certificate.not_valid_after_utc - timedelta(days=30)
    credential = pki.issue_tsa("Station Nord TSA", late)
    assert credential.certificate.not_valid_after_utc == pki.issuing_certificate.not_valid_after_utc


def test_tsa_is_not_issued_by_an_expired_ca(pki: StationPKI) -> None:
    with pytest.raises(SigningError, match="not valid"):
        pki.issue_tsa("Station Nord TSA", pki.issuing_certificate.not_valid_after_utc)


def test_tsa_credential_is_saved_encrypted_and_loads(pki: StationPKI, tsa: Credential) -> None:
    key_pem = (pki.directory / "tsa" / "tsa.key.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key_pem
    assert (pki.directory / "tsa" / "tsa.key.pem").stat().st_mode & 0o777 == 0o600
    loaded = StationPKI.load(pki.directory, PASSPHRASE).load_tsa()
    assert loaded.certificate == tsa.certificate
    assert loaded.private_key.public_key() == tsa.private_key.public_key()
    assert loaded.chain == tsa.chain


def test_load_tsa_without_one_fails(pki: StationPKI) -> None:
    with pytest.raises(KeyStoreError, match="missing certificate"):
        pki.load_tsa()


@pytest.mark.parametrize(("name", "identifier"), [("浙江血站 TSA", "TSA"), ("血站", None)])
def test_tsa_names_beyond_ascii(pki: StationPKI, name: str, identifier: str | None) -> None:
    credential = pki.issue_tsa(name, NOW)
    expected = identifier or hashlib.sha256(name.encode()).hexdigest()[:16]
    assert credential.subject_id == "TSA:" + expected
    assert credential.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        name
    )


def test_empty_tsa_name_is_refused(pki: StationPKI) -> None:
    with pytest.raises(SigningError, match="empty"):
        pki.issue_tsa("  ", NOW)


# -- tokens ---------------------------------------------------------------------------------


def test_token_verifies(pki: StationPKI, tsa: Credential, authority: TimestampAuthority) -> None:
    token = authority.stamp(DIGEST, nonce=7)
    verified = verify_timestamp_token(token, DIGEST, CertificateValidator([pki.root_certificate]))
    assert verified.gen_time == NOW
    assert verified.digest == DIGEST
    assert verified.nonce == 7
    assert verified.policy == DEFAULT_POLICY
    assert verified.tsa_certificate == tsa.certificate


def test_token_structure(tsa: Credential, authority: TimestampAuthority) -> None:
    content_info = cms.ContentInfo.load(authority.stamp(DIGEST))
    signed_data = content_info["content"]
    assert signed_data["version"].native == "v3"
    assert signed_data["encap_content_info"]["content_type"].native == "tst_info"
    info = signed_data["encap_content_info"]["content"].parsed
    assert info["accuracy"]["seconds"].native == 1
    assert info["nonce"].native is None
    assert (
        info["tsa"].chosen
        == reference.asn1_certificate(tsa.certificate)["tbs_certificate"]["subject"]
    )
    # certReq: the TSA certificate and the issuing CA, not the root (a DER SET OF: sorted).
    embedded = [c.chosen.dump() for c in signed_data["certificates"]]
    assert embedded == sorted(
        reference.asn1_certificate(c).dump() for c in (tsa.certificate, tsa.chain[0])
    )
    (signer_info,) = signed_data["signer_infos"]
    names = sorted(a["type"].native for a in signer_info["signed_attrs"])
    assert names == ["content_type", "message_digest", "signing_certificate_v2"]


def test_fast_encoding_equals_asn1crypto_encoding(
    tsa: Credential, authority: TimestampAuthority
) -> None:
    """The hand-joined DER is byte for byte what asn1crypto makes of the same structure."""
    for nonce, cert_req in ((None, True), (2**64 - 1, True), (5, False)):
        fast = authority.stamp(DIGEST, nonce=nonce, cert_req=cert_req)
        signed_data = cms.ContentInfo.load(fast)["content"]
        info = signed_data["encap_content_info"]["content"].parsed
        tst = reference.tst_info(
            DIGEST,
            serial_number=info["serial_number"].native,
            gen_time=NOW,
            nonce=nonce,
            tsa=tsa.certificate,
        )
        attributes = reference.signed_attributes(tst, ess=reference.ess_v2(tsa.certificate))
        signature = signed_data["signer_infos"][0]["signature"].native
        expected = reference.build_token(
            tsa, tst, attributes, signature=signature, certificates=None if cert_req else []
        )
        assert fast == expected


def test_serial_numbers_increase_under_a_frozen_clock(authority: TimestampAuthority) -> None:
    serials = [
        verify_timestamp_token(authority.stamp(DIGEST), DIGEST).serial_number for _ in range(5)
    ]
    assert serials == sorted(set(serials))
    assert serials[0] == int(NOW.timestamp() * 1_000_000) << 12


def test_gen_time_is_utc_with_microseconds(tsa: Credential) -> None:
    paris = datetime(2025, 3, 1, 9, 30, 15, 120000, tzinfo=UTC).astimezone()
    authority = TimestampAuthority(tsa, clock=lambda: paris)
    verified = verify_timestamp_token(authority.stamp(DIGEST), DIGEST)
    assert verified.gen_time == datetime(2025, 3, 1, 9, 30, 15, 120000, tzinfo=UTC)
    assert verified.gen_time.tzinfo == UTC


def test_rsa_tsa(tmp_path: Path) -> None:
    pki = StationPKI.create(tmp_path / "rsa", "Station Sud", b"pw", NOW, algorithm=Rsa(2048))
    credential = pki.issue_tsa("Station Sud TSA", NOW)
    assert isinstance(credential.private_key, rsa.RSAPrivateKey)
    token = TimestampAuthority(credential, clock=lambda: NOW).stamp(DIGEST)
    verify_timestamp_token(token, DIGEST, CertificateValidator([pki.root_certificate]))


def test_mismatched_key_is_refused(tsa: Credential, staff: Credential) -> None:
    with pytest.raises(SigningError, match="does not match"):
        TimestampAuthority(Credential(tsa.certificate, staff.private_key, tsa.chain))


def test_stamp_needs_a_sha256_digest(authority: TimestampAuthority) -> None:
    with pytest.raises(SigningError, match="32 bytes"):
        authority.stamp(b"short")


# -- respond --------------------------------------------------------------------------------


def test_respond_grants_and_echoes_the_nonce(authority: TimestampAuthority) -> None:
    response = authority.respond(_request(nonce=2**63 + 5))
    assert _status_of(response) == ("granted", set())
    assert verify_timestamp_token(_token_of(response), DIGEST).nonce == 2**63 + 5


def test_respond_copies_the_imprint_algorithm_as_sent(authority: TimestampAuthority) -> None:
    """RFC 3161 2.4.2: the messageImprint is the request's; NULL parameters stay NULL."""
    request = _request(parameters=core.Null())
    token = _token_of(authority.respond(request))
    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    sent = tsp.TimeStampReq.load(request)["message_imprint"]
    assert info["message_imprint"].dump() == sent.dump()
    verify_timestamp_token(token, DIGEST)


def test_respond_without_cert_req_embeds_no_certificate(
    tsa: Credential, authority: TimestampAuthority
) -> None:
    token = _token_of(authority.respond(_request(cert_req=False)))
    assert not cms.ContentInfo.load(token)["content"]["certificates"]
    verify_timestamp_token(token, DIGEST, certificates=[tsa.certificate])


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        (b"not DER at all", "bad_data_format"),
        (_request()[:-3], "bad_data_format"),
        (_request() + b"\x00", "bad_data_format"),
        (_request(version="v2"), "bad_data_format"),
        (_request(algorithm="sha512"), "bad_alg"),
        (_request(algorithm="sha1", digest=b"\x00" * 20), "bad_alg"),
        # sha256 parameters must be NULL or absent: asn1crypto refuses to read anything else
        (
            _request(parameters=core.Null()).replace(_SHA256_NULL, _SHA256_OCTETS),
            "bad_data_format",
        ),
        (_request(digest=b"\x00" * 31), "bad_data_format"),
        (_request(req_policy="1.2.3.4"), "unaccepted_policy"),
        (
            _request(
                extensions=[{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}]
            ),
            "unaccepted_extensions",
        ),
    ],
)
def test_respond_rejects_bad_requests(
    authority: TimestampAuthority, request_der: bytes, failure: str
) -> None:
    assert _status_of(authority.respond(request_der)) == ("rejection", {failure})


def test_respond_accepts_its_own_policy(authority: TimestampAuthority) -> None:
    response = authority.respond(_request(req_policy=DEFAULT_POLICY))
    assert _status_of(response) == ("granted", set())


def test_a_failure_while_signing_is_a_system_failure(tsa: Credential) -> None:
    def broken_clock() -> datetime:
        raise OSError("clock unavailable")

    authority = TimestampAuthority(tsa, clock=broken_clock)
    assert _status_of(authority.respond(_request())) == ("rejection", {"system_failure"})
