"""Station secrets held at rest under the key passphrase.

Two symmetric keys protect personal data in the ledger: a pepper for the donor reference (an HMAC of
the ID number, so equal numbers map to one donor without storing the number) and a data key that
encrypts the ID number (AES-256-GCM). The file holding them is itself encrypted with a key derived
from the passphrase (scrypt), so a copy of the database directory alone reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from signing.errors import KeyStoreError

_SCRYPT_N = 2**15
_FORMAT = "ledger-station-secrets/1"


@dataclass(frozen=True)
class StationSecrets:
    pepper: bytes
    data_key: bytes

    @classmethod
    def generate(cls) -> StationSecrets:
        return cls(pepper=os.urandom(32), data_key=AESGCM.generate_key(bit_length=256))

    def donor_ref(self, normalised_id: str) -> str:
        """HMAC-SHA-256 of the normalised ID number under the pepper, 32 hex characters."""
        mac = hmac.new(self.pepper, normalised_id.encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()[:32]

    def encrypt(self, plaintext: str, context: str) -> str:
        """AES-256-GCM with a random nonce; *context* is bound as associated data."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.data_key).encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, context: str) -> str:
        raw = base64.b64decode(token)
        try:
            return AESGCM(self.data_key).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise KeyStoreError("encrypted value does not open with this station's key") from exc

    def save(self, path: Path, passphrase: bytes) -> None:
        salt = os.urandom(16)
        nonce = os.urandom(12)
        payload = json.dumps(
            {"pepper": self.pepper.hex(), "data_key": self.data_key.hex()}
        ).encode()
        n = _SCRYPT_N
        sealed = AESGCM(_kek(passphrase, salt, n)).encrypt(nonce, payload, _FORMAT.encode())
        document = {
            "format": _FORMAT,
            "kdf": {"name": "scrypt", "n": n, "r": 8, "p": 1, "salt": salt.hex()},
            "nonce": nonce.hex(),
            "ciphertext": base64.b64encode(sealed).decode("ascii"),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, passphrase: bytes) -> StationSecrets:
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise KeyStoreError(f"no station secrets at {path}: run `ledger init`") from exc
        if document.get("format") != _FORMAT:
            raise KeyStoreError(f"{path} is not a station secrets file")
        kdf = document.get("kdf", {})
        try:
            salt = bytes.fromhex(kdf["salt"])
            # the parameters the file was written with: raising _SCRYPT_N later keeps old files
            n, r, p = int(kdf.get("n", _SCRYPT_N)), int(kdf.get("r", 8)), int(kdf.get("p", 1))
            if kdf.get("name") != "scrypt" or n < 2 or n & (n - 1) or r < 1 or p < 1:
                raise ValueError("not scrypt with usable parameters")
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyStoreError(f"{path}: bad key derivation parameters: {exc}") from exc
        try:
            payload = AESGCM(_kek(passphrase, salt, n, r, p)).decrypt(
                bytes.fromhex(document["nonce"]),
                base64.b64decode(document["ciphertext"]),
                _FORMAT.encode(),
            )
        except InvalidTag as exc:
            raise KeyStoreError(f"wrong passphrase for {path}") from exc
        keys = json.loads(payload)
        return cls(pepper=bytes.fromhex(keys["pepper"]), data_key=bytes.fromhex(keys["data_key"]))


def _kek(passphrase: bytes, salt: bytes, n: int, r: int = 8, p: int = 1) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)
