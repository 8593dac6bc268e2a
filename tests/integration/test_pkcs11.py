"""A staff key in a PKCS#11 token (SoftHSM2 via python-pkcs11): it signs an event's CMS inside
the token, `openssl cms -verify` accepts the signature, and the key cannot be exported."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from signing.cms import sign_detached
from signing.errors import KeyStoreError
from signing.pkcs11 import TokenEcKey, generate_token_key, open_token_key
from signing.pki import Credential, StationPKI
from signing.validation import verify_detached

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN, SO_PIN, TOKEN = "4711", "0815", "ledger-test"
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
# the README's command for an exported event
OPENSSL_VERIFY = [
    *("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.p7s"),
    *("-content", "event.json", "-CAfile", "chain.pem", "-out", "/dev/null"),
]

pytestmark = pytest.mark.skipif(
    shutil.which("softhsm2-util") is None or not Path(MODULE).exists(),
    reason="needs SoftHSM2 (Debian softhsm2; scripts/prereqs test installs it)",
)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SoftHSM2 token in a temporary folder (SOFTHSM2_CONF points at it)."""
    import os

    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n")
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            *("--pin", PIN),
            "--so-pin",
            SO_PIN,
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield TOKEN
    finally:
        if saved is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StationPKI:
    return StationPKI.create(tmp_path_factory.mktemp("pki") / "pki", "Station Nord", b"pw", NOW)


def test_a_token_key_signs_an_event_and_openssl_verifies_it(
    token: str, pki: StationPKI, tmp_path: Path
) -> None:
    generate_token_key(MODULE, token, PIN, "N900").close()
    key = open_token_key(MODULE, token, PIN, "N900")  # a later session, as a signing command
    try:
        credential = pki.issue_staff_for_key("N900", "Li Na", "collection_nurse", key, NOW)
        assert not (pki.directory / "staff" / "N900.key.pem").exists()  # no key file
        event = b'{"actor":"STAFF:N900","topic":"ledger.donation:Donation.GeneralExamRecorded"}'
        der = sign_detached(event, credential, NOW)
    finally:
        key.close()
    (tmp_path / "event.json").write_bytes(event)
    (tmp_path / "sig.p7s").write_bytes(der)
    (tmp_path / "chain.pem").write_bytes(pki.chain_pem())
    result = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.p7s",
            "-content",
            "event.json",
            "-CAfile",
            "chain.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    (tmp_path / "event.json").write_bytes(event.replace(b"N900", b"N901"))
    tampered = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.p7s",
            "-content",
            "event.json",
            "-CAfile",
            "chain.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert tampered.returncode != 0
    verified = verify_detached(der, event)  # our checking half agrees
    assert verified.signer_certificate.public_key() == credential.certificate.public_key()


def test_the_token_key_cannot_be_exported(token: str) -> None:
    key = generate_token_key(MODULE, token, PIN, "N902")
    try:
        assert isinstance(key, TokenEcKey)
        with pytest.raises(KeyStoreError, match="stays in the token"):
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        private = key._private
        assert private[pkcs11.Attribute.EXTRACTABLE] is False
        assert private[pkcs11.Attribute.SENSITIVE] is True
    finally:
        key.close()


def test_a_wrong_pin_or_label_is_a_key_store_error(token: str) -> None:
    with pytest.raises(KeyStoreError, match="cannot log in"):
        open_token_key(MODULE, token, "0000", "N900")
    with pytest.raises(KeyStoreError, match="no single key"):
        open_token_key(MODULE, token, PIN, "NOBODY")
    with pytest.raises(KeyStoreError, match="no PKCS#11 token"):
        open_token_key(MODULE, "no-such-token", PIN, "N900")


def test_the_cli_signs_an_amendment_with_a_staff_key_in_the_token(
    token: str,
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A physician whose key is in the token amends through `ledger amend`; `ledger verify`
    passes and OpenSSL accepts the exported amendment's signature."""
    import json

    from api.cli import main
    from ledger.registry import SigningCredential
    from services.station import Station
    from signing.pki import subject_serial_number
    from tests.conftest import make_settings
    from tests.workflow import amend_argv, complete

    assert main(["init"]) == 0
    db = f"sqlite:///{cli_env / 'ledger.sqlite'}"
    key = generate_token_key(MODULE, token, PIN, "P900")
    try:
        with Station.open(make_settings(cli_env / "home", db)) as station:
            now = datetime.now(UTC)
            credential = station.pki.issue_staff_for_key(
                "P900", "王医师", "examining_physician", key, now
            )
            cert = credential.certificate
            station.app.save(
                SigningCredential.staff_issued(
                    station.system,
                    format(cert.serial_number, "x"),
                    subject_id=subject_serial_number(cert),
                    name="王医师",
                    role="examining_physician",
                    not_before=cert.not_valid_before_utc.isoformat(),
                    not_after=cert.not_valid_after_utc.isoformat(),
                    certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                )
            )
            donation_id = complete(station)
            number = station.app.donation(donation_id).donation_no
    finally:
        key.close()
    capsys.readouterr()
    argv = amend_argv(number, staff="P900")
    assert main(argv) == 2  # the key is in the token, and the token is not configured
    assert "LEDGER_PKCS11_MODULE" in capsys.readouterr().err
    monkeypatch.setenv("LEDGER_PKCS11_MODULE", MODULE)
    monkeypatch.setenv("LEDGER_PKCS11_TOKEN", token)
    monkeypatch.setenv("LEDGER_PKCS11_PIN", PIN)
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "PASSED"
    position = report["last_position"]
    out = cli_env / "evidence"
    assert main(["export-event", str(position), "--out", str(out)]) == 0
    result = subprocess.run(OPENSSL_VERIFY, cwd=out, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "STAFF:P900" in (out / "event.json").read_text()


# -- the issuing CA's key in the token -------------------------------------------------------------


def _openssl_accepts(pki: StationPKI, credential: Credential, workdir: Path) -> None:
    """`openssl verify` accepts the staff certificate (root trusted, issuing CA untrusted
    intermediate) and `openssl cms -verify` a signature made with it."""
    workdir.mkdir()
    pem = serialization.Encoding.PEM
    (workdir / "root.pem").write_bytes(pki.root_certificate.public_bytes(pem))
    (workdir / "issuing.pem").write_bytes(pki.issuing_certificate.public_bytes(pem))
    (workdir / "staff.pem").write_bytes(credential.certificate.public_bytes(pem))
    verified = subprocess.run(
        [
            *("openssl", "verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem"),
            "staff.pem",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0 and "staff.pem: OK" in verified.stdout, verified.stderr
    event = b'{"actor":"STAFF:N910","topic":"ledger.donation:Donation.CollectionRecorded"}'
    (workdir / "event.json").write_bytes(event)
    (workdir / "sig.p7s").write_bytes(sign_detached(event, credential, NOW))
    (workdir / "chain.pem").write_bytes(pki.chain_pem())
    cms = subprocess.run(OPENSSL_VERIFY, cwd=workdir, capture_output=True, text=True)
    assert cms.returncode == 0 and "Verification successful" in cms.stderr, cms.stderr


def test_the_issuing_ca_key_in_the_token_certifies_staff_and_openssl_verifies(
    token: str, tmp_path: Path
) -> None:
    """A station whose issuing CA key is made in the token and never leaves it: no key file,
    the key is not extractable; staff certificates it signs (and its CRL) verify with OpenSSL;
    reopened later, the PKI needs the token for that key and issues again."""
    ca_key = generate_token_key(MODULE, token, PIN, "ISSUING-CA")
    try:
        pki = StationPKI.create(tmp_path / "pki", "Station Süd", b"pw", NOW, issuing_key=ca_key)
        assert pki.issuing_key_in_token
        assert not (tmp_path / "pki" / "issuing.key.pem").exists()
        assert ca_key._private[pkcs11.Attribute.EXTRACTABLE] is False
        assert pki.issuing_certificate.public_key() == ca_key.public_key()
        staff = pki.issue_staff("N910", "Li Na", "collection_nurse", NOW)
        staff.certificate.verify_directly_issued_by(pki.issuing_certificate)
        _openssl_accepts(pki, staff, tmp_path / "first")
        crl = pki.crl(NOW)
        assert crl.is_signature_valid(ca_key.public_key())
    finally:
        ca_key.close()
    with pytest.raises(KeyStoreError, match="PKCS#11 token"):
        StationPKI.load(tmp_path / "pki", b"pw")  # no file key to fall back on
    reopened_key = open_token_key(MODULE, token, PIN, "ISSUING-CA")  # a later command
    try:
        reopened = StationPKI.load(tmp_path / "pki", b"pw", issuing_key=reopened_key)
        again = reopened.issue_staff("N911", "Wang Fang", "collection_nurse", NOW)
        _openssl_accepts(reopened, again, tmp_path / "again")
    finally:
        reopened_key.close()


def test_a_rollover_moves_the_issuing_ca_into_the_token_and_old_signatures_still_verify(
    token: str, tmp_path: Path
) -> None:
    pki = StationPKI.create(tmp_path / "pki", "Station West", b"pw", NOW)
    before = pki.issue_staff("N920", "Zhao Lei", "collection_nurse", NOW)
    event = b'{"actor":"STAFF:N920"}'
    old_signature = sign_detached(event, before, NOW)
    ca_key = generate_token_key(MODULE, token, PIN, "ISSUING-CA-2")
    try:
        pki.renew_issuing(NOW, key=ca_key)
        assert pki.issuing_key_in_token
        assert not (tmp_path / "pki" / "issuing.key.pem").exists()
        assert len(list((tmp_path / "pki" / "previous").glob("*.key.pem"))) == 1
        after = pki.issue_staff("N921", "Sun Li", "collection_nurse", NOW)
        after.certificate.verify_directly_issued_by(pki.issuing_certificate)
        _openssl_accepts(pki, after, tmp_path / "after")
    finally:
        ca_key.close()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "event.json").write_bytes(event)
    (tmp_path / "old" / "sig.p7s").write_bytes(old_signature)
    (tmp_path / "old" / "chain.pem").write_bytes(pki.chain_pem())
    old = subprocess.run(OPENSSL_VERIFY, cwd=tmp_path / "old", capture_output=True, text=True)
    assert old.returncode == 0, old.stderr  # made before the rollover, verifies after it


def test_a_station_whose_issuing_ca_key_is_in_the_token_revokes_and_verifies_through_the_cli(
    token: str,
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After a rollover into the token, the station's commands open the CA key from the token
    (LEDGER_PKCS11_*): `ledger revoke` signs its CRL there, `ledger verify` passes; without the
    token settings a command stops in one line."""
    from api.cli import main
    from ledger.registry import SigningCredential
    from services.station import Station
    from signing.pki import subject_serial_number
    from tests.conftest import make_settings
    from tests.workflow import complete

    assert main(["init"]) == 0
    db = f"sqlite:///{cli_env / 'ledger.sqlite'}"
    with Station.open(make_settings(cli_env / "home", db)) as station:
        complete(station)  # signed by staff of the file CA, before the rollover
        station.pki.renew_issuing(
            datetime.now(UTC), key=generate_token_key(MODULE, token, PIN, "STATION-CA")
        )
        credential = station.pki.issue_staff(
            "N930", "Zhou Min", "collection_nurse", datetime.now(UTC)
        )
        cert = credential.certificate
        station.app.save(
            SigningCredential.staff_issued(
                station.system,
                format(cert.serial_number, "x"),
                subject_id=subject_serial_number(cert),
                name="Zhou Min",
                role="collection_nurse",
                not_before=cert.not_valid_before_utc.isoformat(),
                not_after=cert.not_valid_after_utc.isoformat(),
                certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            )
        )
    assert not (cli_env / "home" / "pki" / "issuing.key.pem").exists()
    capsys.readouterr()
    assert main(["verify"]) == 2  # the CA key (CRLs) is in the token, which is not configured
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "LEDGER_PKCS11_MODULE" in err, err
    monkeypatch.setenv("LEDGER_PKCS11_MODULE", MODULE)
    monkeypatch.setenv("LEDGER_PKCS11_TOKEN", token)
    monkeypatch.setenv("LEDGER_PKCS11_PIN", PIN)
    assert main(["revoke", "N930", "--reason", "left the station"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["verify", "--json"]) == 0, capsys.readouterr().err
    import json

    assert json.loads(capsys.readouterr().out)["verdict"] == "PASSED"
    assert main(["doctor"]) == 0, capsys.readouterr().out  # opens the CA key from the token too
    capsys.readouterr()
    with Station.open(
        make_settings(cli_env / "home", db).model_copy(
            update={"pkcs11_module": MODULE, "pkcs11_token": token, "pkcs11_pin": SecretStr(PIN)}
        )
    ) as station:
        crl = station.pki.crl(datetime.now(UTC))
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        issuing_public = station.pki.issuing_certificate.public_key()
        assert isinstance(issuing_public, ec.EllipticCurvePublicKey)
        assert crl.is_signature_valid(issuing_public)


def test_the_local_tsa_signs_with_a_key_in_the_token_and_openssl_ts_verifies(
    token: str, tmp_path: Path
) -> None:
    """The station's TSA key made in the token (only tsa.cert.pem and tsa.token on disk): the
    station's own TSA stamps the pending events with it, the ledger verifies, and `openssl ts
    -verify` accepts a token it issued."""
    import hashlib

    from services.station import Station
    from services.verification import verify_station
    from tests.conftest import make_settings
    from tests.workflow import complete

    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        now = datetime.now(UTC)
        tsa_key = generate_token_key(MODULE, token, PIN, "STATION-TSA")
        try:
            station.pki.issue_tsa(f"{settings.station_name} TSA", now, key=tsa_key)
        finally:
            tsa_key.close()
    tsa_dir = tmp_path / "home" / "pki" / "tsa"
    assert not (tsa_dir / "tsa.key.pem").exists() and (tsa_dir / "tsa.token").is_file()
    with Station.open(settings) as station, pytest.raises(KeyStoreError, match="LEDGER_PKCS11"):
        station.local_tsa()  # without the token settings: a clear refusal
    in_token = settings.model_copy(
        update={"pkcs11_module": MODULE, "pkcs11_token": token, "pkcs11_pin": SecretStr(PIN)}
    )
    with Station.open(in_token) as station:
        complete(station)
        assert station.stamper().flush() >= 1
        report = verify_station(station, now=datetime.now(UTC))
        assert report.ok and report.pending == 0, report.issues()[:3]
        data = b"a batch root, say"
        stamp = station.timestamper().timestamp(hashlib.sha256(data).digest())
        chain = station.pki.chain_pem()
    (tmp_path / "batch.bin").write_bytes(data)
    (tmp_path / "token.der").write_bytes(stamp.der)
    (tmp_path / "chain.pem").write_bytes(chain)
    result = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-data",
            "batch.bin",
            "-in",
            "token.der",
            "-token_in",
            "-CAfile",
            "chain.pem",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stderr
    from services.doctor import Status, diagnose

    tsa_row = next(f for f in diagnose(in_token).findings if f.check == "TSA")
    assert tsa_row.status is Status.OK, tsa_row  # the doctor asks the TSA whose key is in the token
