"""OpenSSL, an independent implementation, accepts the local TSA's tokens and answers.

The command a regulator would type, with the stored token (DER TimeStampToken) and the station
chain, and no other option::

    openssl ts -verify -data batch.bin -in token.der -token_in -CAfile chain.pem

OpenSSL checks the TSA certificate against the current time and the timestamp-signing purpose
(extendedKeyUsage timeStamping alone, critical), so the PKI here is made with the real clock.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from signing.pki import Credential, Rsa, StationPKI
from signing.timestamps import HttpTimeStamper
from signing.tsa import TimestampAuthority, TsaServer

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command is not on PATH"
)

DATA = b"merkle root of batch 17: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
COMMAND = "openssl ts -verify -data batch.bin -in token.der -token_in -CAfile chain.pem"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StationPKI:
    directory = tmp_path_factory.mktemp("openssl-ts") / "pki"
    return StationPKI.create(directory, "Station Nord", b"pw", datetime.now(UTC))


@pytest.fixture(scope="module")
def tsa(pki: StationPKI) -> Credential:
    return pki.issue_tsa("Station Nord TSA", datetime.now(UTC))


@pytest.fixture(scope="module")
def server(tsa: Credential) -> Iterator[TsaServer]:
    with TsaServer(TimestampAuthority(tsa)) as running:
        yield running


def _openssl(directory: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command.split(), cwd=directory, capture_output=True, text=True, check=False, timeout=60
    )


def _verify(
    directory: Path, data: bytes, token: bytes, chain_pem: bytes, command: str = COMMAND
) -> subprocess.CompletedProcess[str]:
    (directory / "batch.bin").write_bytes(data)
    (directory / "token.der").write_bytes(token)
    (directory / "chain.pem").write_bytes(chain_pem)
    return _openssl(directory, command)


def _accepted(completed: subprocess.CompletedProcess[str]) -> None:
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Verification: OK" in completed.stdout


def _http_token(pki: StationPKI, server: TsaServer, data: bytes) -> bytes:
    stamper = HttpTimeStamper([server.url], [pki.root_certificate])
    return stamper.timestamp(hashlib.sha256(data).digest()).der


def test_openssl_accepts_a_token_from_the_http_tsa(
    tmp_path: Path, pki: StationPKI, server: TsaServer
) -> None:
    token = _http_token(pki, server, DATA)
    _accepted(_verify(tmp_path, DATA, token, pki.chain_pem()))


def test_openssl_rejects_tampered_data(tmp_path: Path, pki: StationPKI, server: TsaServer) -> None:
    token = _http_token(pki, server, DATA)
    completed = _verify(tmp_path, DATA.replace(b"batch 17", b"batch 18"), token, pki.chain_pem())
    assert completed.returncode != 0
    assert "Verification: FAILED" in completed.stdout
    assert "message imprint mismatch" in completed.stderr


def test_openssl_rejects_another_stations_chain(
    tmp_path: Path, pki: StationPKI, server: TsaServer
) -> None:
    other = StationPKI.create(tmp_path / "other", "Station Nord", b"x", datetime.now(UTC))
    token = _http_token(pki, server, DATA)
    completed = _verify(tmp_path, DATA, token, other.chain_pem())
    assert completed.returncode != 0
    assert "Verification: FAILED" in completed.stdout


def test_openssl_accepts_a_token_without_certificates_given_the_tsa_certificate(
    tmp_path: Path, pki: StationPKI, tsa: Credential
) -> None:
    token = TimestampAuthority(tsa).stamp(hashlib.sha256(DATA).digest(), cert_req=False)
    (tmp_path / "tsa.pem").write_bytes(tsa.certificate.public_bytes(serialization.Encoding.PEM))
    assert _verify(tmp_path, DATA, token, pki.chain_pem()).returncode != 0  # nothing to check with
    _accepted(_verify(tmp_path, DATA, token, pki.chain_pem(), COMMAND + " -untrusted tsa.pem"))


def test_openssl_accepts_an_rsa_tsa(tmp_path: Path) -> None:
    pki = StationPKI.create(
        tmp_path / "rsa", "Station Sud", b"pw", datetime.now(UTC), algorithm=Rsa()
    )
    credential = pki.issue_tsa("Station Sud TSA", datetime.now(UTC))
    token = TimestampAuthority(credential).stamp(hashlib.sha256(DATA).digest(), nonce=1)
    _accepted(_verify(tmp_path, DATA, token, pki.chain_pem()))


def test_openssl_client_against_the_http_tsa(
    tmp_path: Path, pki: StationPKI, server: TsaServer
) -> None:
    """OpenSSL makes the request (nonce, certReq); its -queryfile check matches the answer."""
    (tmp_path / "batch.bin").write_bytes(DATA)
    (tmp_path / "chain.pem").write_bytes(pki.chain_pem())
    query = _openssl(tmp_path, "openssl ts -query -data batch.bin -sha256 -cert -out req.tsq")
    assert query.returncode == 0, query.stderr
    request = urllib.request.Request(
        server.url,
        data=(tmp_path / "req.tsq").read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == "application/timestamp-reply"
        (tmp_path / "reply.tsr").write_bytes(response.read())
    _accepted(
        _openssl(tmp_path, "openssl ts -verify -queryfile req.tsq -in reply.tsr -CAfile chain.pem")
    )
    _accepted(
        _openssl(tmp_path, "openssl ts -verify -data batch.bin -in reply.tsr -CAfile chain.pem")
    )
