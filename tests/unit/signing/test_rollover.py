"""CA rollover: the issuing CA is renewed under the same root; signatures made before the
rollover still verify after it (our validator and `openssl cms -verify`), new certificates come
from the new CA, and revocation still reaches certificates of the old one."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from signing.cms import sign_detached
from signing.errors import CertificateInvalid
from signing.paths import CertificateValidator
from signing.pki import StationPKI
from signing.validation import verify_detached
from tests.unit.signing.conftest import NOW, PASSPHRASE

DATA = b'{"actor":"STAFF:N001","topic":"before the rollover"}'


def _validate(pki: StationPKI, der: bytes, data: bytes, at_hours: float) -> None:
    verified = verify_detached(der, data)
    validator = CertificateValidator([pki.root_certificate], pki.crls(NOW + timedelta(days=2)))
    validator.validate(
        verified.signer_certificate, verified.certificates, NOW + timedelta(hours=at_hours)
    )


def _rolled_over(pki: StationPKI) -> tuple[StationPKI, bytes, bytes]:
    before = pki.issue_staff("N001", "Alice Martin", "nurse", NOW)
    old_signature = sign_detached(DATA, before, NOW + timedelta(hours=1))
    old_ca = pki.issuing_certificate
    pki.renew_issuing(NOW + timedelta(hours=2))
    assert pki.issuing_certificate != old_ca
    assert pki.issuing_certificate.subject != old_ca.subject  # "... Issuing CA 2", new key
    assert pki.station_name == "Station Nord"
    reloaded = StationPKI.load(pki.directory, PASSPHRASE)  # as the next command would
    assert reloaded.previous_issuing_certificates == (old_ca,)
    after = reloaded.issue_staff("N002", "Bob Leroy", "physician", NOW + timedelta(hours=3))
    after.certificate.verify_directly_issued_by(reloaded.issuing_certificate)
    new_signature = sign_detached(b"after", after, NOW + timedelta(hours=4))
    return reloaded, old_signature, new_signature


def test_a_signature_made_before_the_rollover_verifies_after_it(pki: StationPKI) -> None:
    reloaded, old_signature, new_signature = _rolled_over(pki)
    _validate(reloaded, old_signature, DATA, at_hours=1)
    _validate(reloaded, new_signature, b"after", at_hours=4)
    # the old credential loads with its own chain and still signs until it expires
    old = reloaded.load_staff("N001")
    assert old.chain[0] == reloaded.previous_issuing_certificates[0]
    _validate(reloaded, sign_detached(DATA, old, NOW + timedelta(hours=5)), DATA, at_hours=5)


def test_revoking_a_certificate_of_the_old_ca_after_the_rollover(pki: StationPKI) -> None:
    reloaded, old_signature, _ = _rolled_over(pki)
    old = reloaded.load_staff("N001")
    reloaded.revoke(
        old.certificate.serial_number, NOW + timedelta(hours=6), NOW + timedelta(hours=7)
    )
    _validate(reloaded, old_signature, DATA, at_hours=1)  # signed before the revocation
    later = sign_detached(DATA, old, NOW + timedelta(hours=8))
    with pytest.raises(CertificateInvalid, match="revoked"):
        _validate(reloaded, later, DATA, at_hours=8)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_verifies_signatures_from_before_and_after_the_rollover(
    pki: StationPKI, tmp_path: Path
) -> None:
    reloaded, old_signature, new_signature = _rolled_over(pki)
    (tmp_path / "chain.pem").write_bytes(reloaded.chain_pem())
    for name, der, data in (("old", old_signature, DATA), ("new", new_signature, b"after")):
        (tmp_path / f"{name}.p7s").write_bytes(der)
        (tmp_path / f"{name}.json").write_bytes(data)
        result = subprocess.run(
            [
                *("openssl", "cms", "-verify", "-binary", "-inform", "DER"),
                *("-in", f"{name}.p7s", "-content", f"{name}.json", "-CAfile", "chain.pem"),
                *("-attime", str(int((NOW + timedelta(hours=5)).timestamp())), "-out", "/dev/null"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, (name, result.stderr)
