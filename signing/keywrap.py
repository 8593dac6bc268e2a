"""Private keys at rest: PKCS#8 EncryptedPrivateKeyInfo with a modern KDF.

``cryptography``'s ``BestAvailableEncryption`` writes PBES2 with PBKDF2-HMAC-SHA256 at OpenSSL's
default of **2048 iterations**: a stolen key file can be attacked at millions of guesses per
second on one GPU. We write the same standard structure (RFC 8018 PBES2, so OpenSSL,
``cryptography`` and every PKCS#8 reader still open it, nothing of ours needed) with
PBKDF2-HMAC-SHA256 at **600,000 iterations** (OWASP's figure for PBKDF2-HMAC-SHA256, 2023) and
AES-256-CBC. PBKDF2 rather than scrypt inside PBES2: asn1crypto and older readers know PBKDF2;
the station secrets file (``signing/secrets.py``, our own format) uses scrypt.

Reading is the standard loader: old files (2048 iterations) still load. ``kdf_iterations``
tells how a file is wrapped; ``rewrap_if_weak`` re-encrypts one in place (atomically) with
today's parameters, which ``ledger keys rewrap`` runs over a station's PKI.
"""

from __future__ import annotations

import base64
import os

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from signing.errors import KeyStoreError

#: PBKDF2-HMAC-SHA256 iterations for new key files (OWASP password storage cheat sheet, 2023).
PBKDF2_ITERATIONS = 600_000
_SALT_BYTES = 16
_PEM_LABEL = "ENCRYPTED PRIVATE KEY"


def wrap_private_key(private_key_der_pkcs8: bytes, passphrase: bytes) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY``: PBES2(PBKDF2-HMAC-SHA256 x 600,000, AES-256-CBC)."""
    if not passphrase:
        raise KeyStoreError("an empty passphrase would leave the private key unencrypted")
    salt = os.urandom(_SALT_BYTES)
    iv = os.urandom(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, PBKDF2_ITERATIONS).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(private_key_der_pkcs8) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    info = asn1_keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": asn1_algos.Pbkdf2Salt(name="specified", value=salt),
                            "iteration_count": PBKDF2_ITERATIONS,
                            "prf": {"algorithm": "sha256"},
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": ciphertext,
        }
    )
    return _pem(info.dump())


def wrap_key_object(
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, passphrase: bytes
) -> bytes:
    """Wrap a ``cryptography`` private key object (EC or RSA)."""
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return wrap_private_key(der, passphrase)


def kdf_iterations(pem: bytes) -> int | None:
    """PBKDF2 iteration count of an encrypted PKCS#8 PEM; ``None`` for another KDF (scrypt)."""
    info = asn1_keys.EncryptedPrivateKeyInfo.load(_unpem(pem))
    algorithm = info["encryption_algorithm"]
    if algorithm["algorithm"].native != "pbes2":
        return 0  # PBES1 (MD5/SHA-1 with DES or RC2): weaker than anything we write
    kdf = algorithm["parameters"]["key_derivation_func"]
    if kdf["algorithm"].native != "pbkdf2":
        return None
    return int(kdf["parameters"]["iteration_count"].native)


def is_weak(pem: bytes) -> bool:
    """True when the file's PBKDF2 count is below today's (scrypt files are left as they are)."""
    count = kdf_iterations(pem)
    return count is not None and count < PBKDF2_ITERATIONS


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        "\n".join([f"-----BEGIN {_PEM_LABEL}-----", *lines, f"-----END {_PEM_LABEL}-----"]) + "\n"
    ).encode("ascii")


def _unpem(pem: bytes) -> bytes:
    text = pem.decode("ascii", errors="replace")
    begin, end = f"-----BEGIN {_PEM_LABEL}-----", f"-----END {_PEM_LABEL}-----"
    if begin not in text or end not in text:
        raise KeyStoreError("not an encrypted PKCS#8 private key (PEM)")
    inner = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode("".join(inner.split()), validate=True)
    except ValueError as exc:
        raise KeyStoreError(f"damaged PEM: {exc}") from exc
