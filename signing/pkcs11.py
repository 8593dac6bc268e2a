"""Private keys in a PKCS#11 token (an HSM, a USB key; SoftHSM2 in the tests).

`TokenEcKey` is a `cryptography` EC private key whose `sign` is done by the token (CKM_ECDSA
over the SHA-256 digest we compute; the token's raw r||s is DER-encoded as CMS and X.509 want),
so `signing.cms` signs with it unchanged: the key never leaves the token. Everything that would
export the key (`private_bytes`, `private_numbers`) refuses.

    key = open_token_key("/usr/lib/softhsm/libsofthsm2.so", "ledger", pin, "N001")
    credential = pki.issue_staff_for_key("N001", "Li Na", "collection_nurse", key, now)
    sign_detached(data, credential, now)   # openssl cms -verify accepts it
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from signing.errors import KeyStoreError, SigningError

_P256 = "secp256r1"


class TokenEcKey(ec.EllipticCurvePrivateKey):
    """An EC P-256 private key that stays in a PKCS#11 token; signs with CKM_ECDSA."""

    def __init__(self, session: Any, private: Any, public_key: ec.EllipticCurvePublicKey) -> None:
        self._session = session  # kept open: the key object is valid while its session is
        self._private = private
        self._public = public_key
        self._lock = threading.Lock()

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm.algorithm, hashes.SHA256):
            raise SigningError("the token key signs ECDSA with SHA-256 only")
        digest = hashlib.sha256(bytes(data)).digest()
        with self._lock:  # one operation at a time on the session (the TSA server's threads)
            raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def label(self) -> str:
        """The key's label in the token (what `open_token_key` finds it by)."""
        return str(self._private[Attribute.LABEL])

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise SigningError("a token signing key does not do key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise KeyStoreError("the private key stays in the token")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise KeyStoreError("the private key stays in the token")

    def __copy__(self) -> TokenEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenEcKey:
        return self

    def close(self) -> None:
        self._session.close()


def _token(module_path: str, token_label: str) -> Any:
    try:
        lib = pkcs11.lib(module_path)
        return lib.get_token(token_label=token_label)
    except (RuntimeError, OSError, pkcs11.PKCS11Error) as exc:
        raise KeyStoreError(f"no PKCS#11 token {token_label!r} in {module_path}: {exc}") from exc


def _public_key(public: Any) -> ec.EllipticCurvePublicKey:
    key = load_der_public_key(encode_ec_public_key(public))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyStoreError("the token key is not an EC key")
    return key


def generate_token_key(module_path: str, token_label: str, pin: str, label: str) -> TokenEcKey:
    """Make an EC P-256 key pair in the token (private key not extractable, sensitive)."""
    session = _open(module_path, token_label, pin)
    parameters = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_P256)}, local=True
    )
    public, private = parameters.generate_keypair(
        store=True,
        label=label,
        private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
    )
    return TokenEcKey(session, private, _public_key(public))


def open_token_key(module_path: str, token_label: str, pin: str, label: str) -> TokenEcKey:
    """The key pair `label` of the token, for signing (the PIN opens a user session)."""
    session = _open(module_path, token_label, pin)
    try:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
    except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
        session.close()
        raise KeyStoreError(f"no single key {label!r} in token {token_label!r}") from exc
    return TokenEcKey(session, private, _public_key(public))


def _open(module_path: str, token_label: str, pin: str) -> Any:
    token = _token(module_path, token_label)
    try:
        return token.open(rw=True, user_pin=pin)
    except pkcs11.UserAlreadyLoggedIn:
        # PKCS#11 logs in per application, not per session: another key of this process (the
        # issuing CA's and a staff member's, say) holds the login; this session shares it.
        return token.open(rw=True)
    except pkcs11.PKCS11Error as exc:
        raise KeyStoreError(f"cannot log in to token {token_label!r}: {exc!r}") from exc
