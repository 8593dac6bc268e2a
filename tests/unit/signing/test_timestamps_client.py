"""The timestamp client's checks on arrival, through InProcessTimeStamper (no HTTP).

Each way a TSA's answer can be bad has a test: a fake TSA (a `TimestampAuthority` whose
`respond` is replaced) gives exactly that answer. The HTTP transport and failover are tested in
tests/integration/test_tsa_http.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from asn1crypto import tsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing._der import SEQUENCE_BYTE, tlv
from signing.pki import Credential, StationPKI
from signing.timestamps import (
    HttpTimeStamper,
    InProcessTimeStamper,
    TimeStamper,
    TimestampRejected,
)
from signing.tsa import TimestampAuthority
from signing.tsp_validation import verify_timestamp_token
from tests.unit.signing import test_tsa_reference as reference
from tests.unit.signing.conftest import NOW

DIGEST = hashlib.sha256(b"merkle root of batch 17").digest()
OTHER_DIGEST = hashlib.sha256(b"merkle root of batch 18").digest()

Answer = Callable[[TimestampAuthority, Any], bytes]


class FakeTsa(TimestampAuthority):
    """A TSA that answers each request with `answer(self, parsed request)`."""

    def __init__(self, credential: Credential, answer: Answer) -> None:
        super().__init__(credential, clock=lambda: NOW)
        self._answer = answer

    def respond(self, request_der: bytes) -> bytes:
        return self._answer(self, tsp.TimeStampReq.load(request_der))


def _digest(request: Any) -> bytes:
    return bytes(request["message_imprint"]["hashed_message"].native)


@pytest.fixture
def tsa(pki: StationPKI) -> Credential:
    return pki.issue_tsa("Station Nord TSA", NOW)


def _stamper(pki: StationPKI, tsa: Credential, answer: Answer) -> InProcessTimeStamper:
    return InProcessTimeStamper(FakeTsa(tsa, answer), [pki.root_certificate])


def _rejected(stamper: TimeStamper, reason: str) -> TimestampRejected:
    with pytest.raises(TimestampRejected, match=reason) as caught:
        stamper.timestamp(DIGEST)
    assert caught.value.reasons[0][0] == "in-process"
    return caught.value


def test_good_token(pki: StationPKI, tsa: Credential) -> None:
    authority = TimestampAuthority(tsa, clock=lambda: NOW)
    stamper: TimeStamper = InProcessTimeStamper(authority, [pki.root_certificate])
    token = stamper.timestamp(DIGEST)
    assert token.gen_time == NOW
    assert token.digest == DIGEST
    assert token.tsa_url == "in-process"
    verified = verify_timestamp_token(token.der, DIGEST)
    assert verified.serial_number == token.serial_number
    assert verified.tsa_certificate == tsa.certificate  # certReq was set: it is embedded


def test_each_request_has_a_fresh_nonce(pki: StationPKI, tsa: Credential) -> None:
    nonces: list[int] = []

    def record(authority: TimestampAuthority, request: Any) -> bytes:
        nonces.append(request["nonce"].native)
        assert request["cert_req"].native is True
        assert request["version"].native == "v1"
        return reference.granted(authority.stamp(_digest(request), request["nonce"].native))

    stamper = _stamper(pki, tsa, record)
    stamper.timestamp(DIGEST)
    stamper.timestamp(DIGEST)
    assert len(set(nonces)) == 2
    assert all(0 <= n < 2**64 for n in nonces)


def test_nonce_mismatch(pki: StationPKI, tsa: Credential) -> None:
    def wrong_nonce(authority: TimestampAuthority, request: Any) -> bytes:
        return reference.granted(authority.stamp(_digest(request), request["nonce"].native + 1))

    _rejected(_stamper(pki, tsa, wrong_nonce), "nonce mismatch")


def test_nonce_missing(pki: StationPKI, tsa: Credential) -> None:
    def no_nonce(authority: TimestampAuthority, request: Any) -> bytes:
        return reference.granted(authority.stamp(_digest(request), None))

    _rejected(_stamper(pki, tsa, no_nonce), "nonce mismatch")


def test_imprint_mismatch(pki: StationPKI, tsa: Credential) -> None:
    def other_imprint(authority: TimestampAuthority, request: Any) -> bytes:
        return reference.granted(authority.stamp(OTHER_DIGEST, request["nonce"].native))

    _rejected(_stamper(pki, tsa, other_imprint), "timestamp imprint does not match")


def test_status_rejected(pki: StationPKI, tsa: Credential) -> None:
    def refuse(authority: TimestampAuthority, request: Any) -> bytes:
        return TimestampAuthority.respond(authority, b"not a request")

    rejected = _rejected(_stamper(pki, tsa, refuse), r"status rejection \(bad_data_format\)")
    assert "not a DER TimeStampReq" in rejected.reasons[0][1]


def test_granted_without_a_token(pki: StationPKI, tsa: Credential) -> None:
    def empty(authority: TimestampAuthority, request: Any) -> bytes:
        return tlv(SEQUENCE_BYTE, tsp.PKIStatusInfo({"status": "granted"}).dump())

    _rejected(_stamper(pki, tsa, empty), "without a timestamp token")


def test_not_a_response(pki: StationPKI, tsa: Credential) -> None:
    _rejected(_stamper(pki, tsa, lambda a, r: b"<html>busy</html>"), "not a DER TimeStampResp")


def test_tampered_token(pki: StationPKI, tsa: Credential) -> None:
    def tampered(authority: TimestampAuthority, request: Any) -> bytes:
        token = authority.stamp(_digest(request), request["nonce"].native)
        return reference.granted(token[:-5] + bytes([token[-5] ^ 0x01]) + token[-4:])

    _rejected(_stamper(pki, tsa, tampered), "does not verify|unparseable")


def test_untrusted_tsa(pki: StationPKI, other_pki: StationPKI) -> None:
    foreign = TimestampAuthority(other_pki.issue_tsa("Station Nord TSA", NOW), clock=lambda: NOW)
    _rejected(InProcessTimeStamper(foreign, [pki.root_certificate]), "not trusted|no trusted")


def test_tsa_certificate_without_critical_time_stamping(pki: StationPKI) -> None:
    credential = reference.hand_made_tsa(
        pki, extended_key_usage=[ExtendedKeyUsageOID.TIME_STAMPING], critical=False
    )
    authority = TimestampAuthority(credential, clock=lambda: NOW)
    _rejected(InProcessTimeStamper(authority, [pki.root_certificate]), "not critical")


def test_digest_must_be_sha256(pki: StationPKI, tsa: Credential) -> None:
    stamper = InProcessTimeStamper(TimestampAuthority(tsa), [pki.root_certificate])
    with pytest.raises(ValueError, match="32 bytes"):
        stamper.timestamp(b"too short")


def test_trust_roots_are_required(tsa: Credential) -> None:
    with pytest.raises(ValueError, match="trust root"):
        InProcessTimeStamper(TimestampAuthority(tsa), [])


@pytest.mark.parametrize(
    ("urls", "error"),
    [
        ([], ValueError),
        (["file:///etc/passwd"], ValueError),
        (["http://"], ValueError),
        ("http://127.0.0.1/tsa", TypeError),
    ],
)
def test_http_stamper_refuses_bad_configuration(
    pki: StationPKI, urls: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        HttpTimeStamper(urls, [pki.root_certificate])


def test_http_stamper_needs_a_positive_timeout(pki: StationPKI) -> None:
    with pytest.raises(ValueError, match="timeout"):
        HttpTimeStamper(["http://127.0.0.1:1/tsa"], [pki.root_certificate], timeout=0)
