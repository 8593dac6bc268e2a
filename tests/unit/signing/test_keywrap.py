"""Key files at rest: PBKDF2-HMAC-SHA256 x 600,000 (not OpenSSL's 2048), old files still load,
`ledger keys rewrap` upgrades them; OpenSSL (not our code) opens what we write."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from api.cli import main
from signing.errors import KeyStoreError
from signing.keywrap import PBKDF2_ITERATIONS, is_weak, kdf_iterations
from signing.pki import StationPKI, rewrap_weak_keys
from tests.unit.signing.conftest import NOW, PASSPHRASE


def _key_files(pki: StationPKI) -> list[Path]:
    return sorted(pki.directory.rglob("*.key.pem"))


def _downgrade(path: Path, passphrase: bytes) -> None:
    """Rewrite a key file as the code before this change did (BestAvailableEncryption)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )


def test_new_key_files_use_pbkdf2_sha256_with_600000_iterations(pki: StationPKI) -> None:
    pki.issue_staff("N001", "Alice Martin", "nurse", NOW)
    pki.issue_tsa("Station TSA", NOW)
    files = _key_files(pki)
    names = {p.name for p in files}
    assert names == {"root.key.pem", "issuing.key.pem", "N001.key.pem", "tsa.key.pem"}
    for path in files:
        assert kdf_iterations(path.read_bytes()) == PBKDF2_ITERATIONS == 600_000
        assert not is_weak(path.read_bytes())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_reads_the_kdf_and_opens_the_key(pki: StationPKI) -> None:
    path = pki.directory / "issuing.key.pem"
    parsed = subprocess.run(
        ["openssl", "asn1parse", "-in", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"OBJECT\s+:PBKDF2", parsed) and re.search(r"OBJECT\s+:hmacWithSHA256", parsed)
    assert re.search(r"OBJECT\s+:aes-256-cbc", parsed)
    assert re.search(r"INTEGER\s+:0927C0\b", parsed), parsed  # 600,000
    opened = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", f"pass:{PASSPHRASE.decode()}", "-noout"],
        capture_output=True,
        text=True,
    )
    assert opened.returncode == 0, opened.stderr
    wrong = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "pass:wrong", "-noout"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0


def test_a_key_file_with_2048_iterations_still_loads(pki: StationPKI) -> None:
    pki.issue_staff("N001", "Alice Martin", "nurse", NOW)
    for path in _key_files(pki):
        _downgrade(path, PASSPHRASE)
        assert kdf_iterations(path.read_bytes()) == 2048 and is_weak(path.read_bytes())
    loaded = StationPKI.load(pki.directory, PASSPHRASE)
    staff = loaded.load_staff("N001")
    assert staff.certificate.subject == pki.load_staff("N001").certificate.subject


def test_rewrap_upgrades_only_weak_files_and_the_keys_are_the_same(pki: StationPKI) -> None:
    pki.issue_staff("N001", "Alice Martin", "nurse", NOW)
    staff_key = pki.directory / "staff" / "N001.key.pem"
    _downgrade(staff_key, PASSPHRASE)
    strong_before = (pki.directory / "root.key.pem").read_bytes()
    public_before = pki.load_staff("N001").private_key.public_key()

    assert rewrap_weak_keys(pki.directory, PASSPHRASE) == [staff_key]
    assert kdf_iterations(staff_key.read_bytes()) == 600_000
    assert (pki.directory / "root.key.pem").read_bytes() == strong_before  # untouched
    reloaded = StationPKI.load(pki.directory, PASSPHRASE).load_staff("N001")
    assert reloaded.private_key.public_key() == public_before
    assert rewrap_weak_keys(pki.directory, PASSPHRASE) == []  # idempotent


def test_rewrap_with_a_wrong_passphrase_changes_nothing(pki: StationPKI) -> None:
    path = pki.directory / "issuing.key.pem"
    _downgrade(path, PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        rewrap_weak_keys(pki.directory, b"not the passphrase")
    assert path.read_bytes() == before


def test_cli_keys_rewrap_upgrades_an_old_station(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    passphrase = b"test-only-passphrase"
    files = sorted((cli_env / "home" / "pki").rglob("*.key.pem"))
    assert files
    for path in files:
        _downgrade(path, passphrase)
    capsys.readouterr()
    assert main(["keys", "rewrap"]) == 0
    out = capsys.readouterr().out
    assert f"{len(files)} key files re-wrapped" in out
    assert all(kdf_iterations(p.read_bytes()) == 600_000 for p in files)
    assert main(["keys", "rewrap"]) == 0
    assert "0 key files re-wrapped" in capsys.readouterr().out
    assert main(["verify"]) == 0  # the station still opens and signs with its keys


def test_station_secrets_open_with_the_scrypt_parameters_they_were_written_with(
    tmp_path: Path,
) -> None:
    import json

    from signing import secrets as station_secrets

    secrets = station_secrets.StationSecrets.generate()
    path = tmp_path / "station-secrets.json"
    secrets.save(path, PASSPHRASE)
    document = json.loads(path.read_text())
    assert document["kdf"]["name"] == "scrypt" and document["kdf"]["n"] == 2**15
    # a file written with other (older or newer) parameters still opens: they are read from it
    original = station_secrets._SCRYPT_N
    try:
        station_secrets._SCRYPT_N = 2**14
        secrets.save(path, PASSPHRASE)
    finally:
        station_secrets._SCRYPT_N = original
    assert json.loads(path.read_text())["kdf"]["n"] == 2**14
    assert station_secrets.StationSecrets.load(path, PASSPHRASE) == secrets
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        station_secrets.StationSecrets.load(path, b"wrong")
