"""OpenSSL, an independent implementation, accepts our detached CMS signatures.

The command a regulator would type must work as it is, with no `-purpose any`:
``openssl cms -verify -binary -inform DER -in sig.p7s -content event.json -CAfile chain.pem``.
OpenSSL checks against the current time, so the PKI here is made with the real clock.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signing.cms import sign_detached
from signing.pki import Rsa, StationPKI

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command is not on PATH"
)

EVENT = b'{"actor":"STAFF:N001","aggregate_id":"6b1f0c9e","topic":"DonationStarted","version":1}'


# Exactly the documented command; the verified content goes to stdout, captured here.
COMMAND = (
    "openssl cms -verify -binary -inform DER -in sig.p7s -content event.json -CAfile chain.pem"
)


def _openssl_verify(
    directory: Path, content: bytes, signature: bytes, chain_pem: bytes
) -> subprocess.CompletedProcess[bytes]:
    (directory / "event.json").write_bytes(content)
    (directory / "sig.p7s").write_bytes(signature)
    (directory / "chain.pem").write_bytes(chain_pem)
    return subprocess.run(
        COMMAND.split(), cwd=directory, capture_output=True, check=False, timeout=60
    )


def _accepted(completed: subprocess.CompletedProcess[bytes], content: bytes) -> None:
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert b"Verification successful" in completed.stderr
    assert completed.stdout == content


@pytest.fixture
def pki(tmp_path: Path) -> StationPKI:
    return StationPKI.create(tmp_path / "pki", "Station Nord", b"passphrase", datetime.now(UTC))


def test_openssl_accepts_staff_and_donor_signatures(tmp_path: Path, pki: StationPKI) -> None:
    now = datetime.now(UTC)
    credentials = [
        pki.issue_staff("N001", "Alice Martin", "nurse", now),
        pki.issue_donor("0123456789abcdef0123456789abcdef", "陈伟", now),
    ]
    for credential in credentials:
        signature = sign_detached(EVENT, credential, datetime.now(UTC))
        _accepted(_openssl_verify(tmp_path, EVENT, signature, pki.chain_pem()), EVENT)


def test_openssl_rejects_tampered_content(tmp_path: Path, pki: StationPKI) -> None:
    credential = pki.issue_staff("N001", "Alice Martin", "nurse", datetime.now(UTC))
    signature = sign_detached(EVENT, credential, datetime.now(UTC))
    tampered = EVENT.replace(b'"version":1', b'"version":2')
    completed = _openssl_verify(tmp_path, tampered, signature, pki.chain_pem())
    assert completed.returncode != 0
    assert b"Verification failure" in completed.stderr


def test_openssl_rejects_another_stations_chain(tmp_path: Path, pki: StationPKI) -> None:
    other = StationPKI.create(tmp_path / "other", "Station Nord", b"x", datetime.now(UTC))
    credential = pki.issue_staff("N001", "Alice Martin", "nurse", datetime.now(UTC))
    signature = sign_detached(EVENT, credential, datetime.now(UTC))
    assert _openssl_verify(tmp_path, EVENT, signature, other.chain_pem()).returncode != 0


def test_openssl_accepts_rsa_signatures(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    rsa_pki = StationPKI.create(tmp_path / "rsa", "Station RSA", b"pw", now, algorithm=Rsa(2048))
    credential = rsa_pki.issue_staff("R1", "Rita", "nurse", now)
    signature = sign_detached(EVENT, credential, now)
    _accepted(_openssl_verify(tmp_path, EVENT, signature, rsa_pki.chain_pem()), EVENT)
