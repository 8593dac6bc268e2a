"""Checking RFC 3161 timestamp tokens: the half a regulator runs.

This module imports nothing of the creation code (`signing.tsa`, `signing.timestamps`,
`signing.cms`, `signing.pki`): it checks a stored TimeStampToken against the SHA-256 digest it
claims to cover, and, given a `CertificateValidator`, that the TSA certificate chains to a trusted
root at the token's genTime.

The envelope (ContentInfo, SignedData, SignerInfo), the signer's certificate, the ESS attribute
and the signature value are read and checked by `signing._cms_parse`, which `signing.validation`
shares; the TSTInfo is read with asn1crypto's typed classes. Tokens of third-party TSAs are
accepted too: SHA-256/384/512 digests, ECDSA or RSA PKCS#1 v1.5 signatures, ESS
signing-certificate (v1, SHA-1, RFC 2634) or signing-certificate-v2 (RFC 5816). RSA-PSS and SHA-1
signatures are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import core, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing import _cms_parse as _cms
from signing import _der
from signing.errors import CertificateInvalid, SignatureInvalid
from signing.paths import CertificateValidator

__all__ = ["VerifiedTimestamp", "verify_timestamp_token"]


@dataclass(frozen=True)
class VerifiedTimestamp:
    """What a timestamp token that verified says about itself."""

    gen_time: datetime  # TSTInfo genTime, UTC (fractions of a second kept when present)
    serial_number: int  # TSTInfo serialNumber, unique per TSA
    tsa_certificate: x509.Certificate  # the certificate that signed the token
    digest: bytes  # the message imprint: SHA-256 of the timestamped data
    policy: str  # TSTInfo policy, dotted OID
    nonce: int | None  # TSTInfo nonce, echoed from the request when it had one


_CONTEXT = "timestamp token"
_DIGESTS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def _parse_envelope(token_der: bytes) -> _cms.SignedData:
    """RFC 3161 2.4.2 and RFC 5652 5.1-5.3: SignedData of id-ct-TSTInfo, one SignerInfo.

    RFC 5652 5.1: the SignedData version is 3, as the eContentType is not id-data."""
    return _cms.read_signed_data(
        token_der, _CONTEXT, _tst_info_der, version=b"\x03", strict_tags=True
    )


def _tst_info_der(encapsulated: list[_der.Element]) -> bytes:
    """The eContent: the DER TSTInfo, what the message-digest attribute covers."""
    if not encapsulated or encapsulated[0].encoded != _cms.OID_TST_INFO:
        raise SignatureInvalid("the encapsulated content type is not id-ct-TSTInfo")
    if not (len(encapsulated) == 2 and encapsulated[1].is_(_der.CONTEXT, 0, constructed=True)):
        raise _cms.malformed(_CONTEXT, "the token carries no TSTInfo")
    e_content = _der.single(encapsulated[1].contents)
    if not e_content.is_(_der.UNIVERSAL, _der.OCTET_STRING, constructed=False):
        raise _cms.malformed(_CONTEXT, "the eContent is not a primitive OCTET STRING")
    return e_content.contents


@dataclass(frozen=True)
class _TstInfo:
    policy: str
    imprint_algorithm: str
    imprint: bytes
    serial_number: int
    gen_time: datetime
    nonce: int | None
    tsa_name: bytes | None  # the directoryName content octets of the tsa field, if one


def _read_tst_info(tst_info_der: bytes) -> _TstInfo:
    """RFC 3161 2.4.2: the TSTInfo fields a verifier uses."""
    info = tsp.TSTInfo.load(tst_info_der, strict=True)
    if info["version"].native != "v1":
        raise SignatureInvalid(f"unsupported TSTInfo version {info['version'].native}")
    gen_time = info["gen_time"].native
    if not isinstance(gen_time, datetime) or gen_time.tzinfo is None:
        raise SignatureInvalid("the TSTInfo genTime is not a UTC time")
    imprint = info["message_imprint"]
    tsa = info["tsa"]
    tsa_name = None
    if not isinstance(tsa, core.Void) and tsa.name == "directory_name":
        tsa_name = tsa.chosen.contents
    nonce = info["nonce"]
    return _TstInfo(
        policy=str(info["policy"].dotted),
        imprint_algorithm=str(imprint["hash_algorithm"]["algorithm"].native),
        imprint=bytes(imprint["hashed_message"].native),
        serial_number=int(info["serial_number"].native),
        gen_time=gen_time.astimezone(UTC),
        nonce=None if isinstance(nonce, core.Void) else int(nonce.native),
        tsa_name=tsa_name,
    )


def _check_ess(parts: _cms.SignedData, signer: _cms.CertificateFacts) -> None:
    """RFC 3161 2.4.1 / RFC 5816: the first ESS cert id identifies the TSA certificate."""
    v2 = _cms.single_value(parts, _cms.SIGNING_CERTIFICATE_V2, "signing-certificate-v2")
    v1 = _cms.single_value(parts, _cms.SIGNING_CERTIFICATE, "signing-certificate")
    if v2 is not None:
        _cms.check_signing_certificate(v2, 2, signer, "the TSA certificate")
    elif v1 is not None:
        _cms.check_signing_certificate(v1, 1, signer, "the TSA certificate")
    else:
        raise SignatureInvalid("the token has no ESS signing-certificate(-v2) attribute")


def _check_signature(
    parts: _cms.SignedData, digest_name: str, signer: _cms.CertificateFacts
) -> None:
    """RFC 5652 5.4/5.6: ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512 (not RSA-PSS, not SHA-1)."""
    name = _cms.signature_algorithm_name(parts.signature_algorithm_der)
    key = signer.public_key
    try:
        if not _cms.verify_signature(parts, name, digest_name, key):
            raise SignatureInvalid(
                f"signature algorithm {name} is unsupported or does not fit the TSA's "
                f"{type(key).__name__}"
            )
    except InvalidSignature as exc:
        raise SignatureInvalid("timestamp signature value does not verify") from exc


def _check_time_stamping_usage(certificate: x509.Certificate) -> None:
    """RFC 3161 2.3: extendedKeyUsage present, critical, and id-kp-timeStamping only."""
    subject = certificate.subject.rfc4514_string()
    try:
        extension = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise CertificateInvalid(
            f"TSA certificate {subject} has no extendedKeyUsage timeStamping"
        ) from None
    if list(extension.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise CertificateInvalid(
            f"TSA certificate {subject}: extendedKeyUsage must be timeStamping alone"
        )
    if not extension.critical:
        raise CertificateInvalid(
            f"TSA certificate {subject}: extendedKeyUsage timeStamping is not critical"
        )


def verify_timestamp_token(
    token_der: bytes,
    digest: bytes,
    validator: CertificateValidator | None = None,
    *,
    certificates: Sequence[x509.Certificate] = (),
) -> VerifiedTimestamp:
    """Verify an RFC 3161 TimeStampToken over `digest` (SHA-256 of the timestamped data).

    Raises `SignatureInvalid` when the token is malformed, covers another imprint or its
    signature does not verify, and `CertificateInvalid` when the TSA certificate is not fit to
    timestamp or (with `validator`) does not chain to a trusted root at genTime. `certificates`
    supplies the TSA certificate and intermediates when the token does not embed them
    (a request with certReq false).
    """
    try:
        # 1. Envelope: SignedData of id-ct-TSTInfo, one SignerInfo with signed attributes.
        parts = _parse_envelope(token_der)
        # 2. TSTInfo, and the message imprint: SHA-256 of the data, as the caller computed it.
        info = _read_tst_info(parts.content)
        if info.imprint_algorithm != "sha256" or info.imprint != digest:
            raise SignatureInvalid(
                f"timestamp imprint does not match ({info.imprint_algorithm} imprint)"
            )
        # 3. Digest algorithm, content-type = id-ct-TSTInfo, message-digest = H(eContent).
        digest_name = _cms.digest_algorithm_name(parts.digest_algorithm_der)
        if digest_name not in _DIGESTS:
            raise SignatureInvalid(f"unsupported digest algorithm {digest_name}")
        content_type = _cms.single_value(parts, _cms.CONTENT_TYPE, "content-type")
        if content_type is None or content_type.encoded != _cms.OID_TST_INFO:
            raise SignatureInvalid("the content-type attribute is not id-ct-TSTInfo")
        message_digest = _cms.single_value(parts, _cms.MESSAGE_DIGEST, "message-digest")
        if message_digest is None or not message_digest.is_(
            _der.UNIVERSAL, _der.OCTET_STRING, constructed=False
        ):
            raise SignatureInvalid("the message-digest attribute is missing or malformed")
        if message_digest.contents != _DIGESTS[digest_name](parts.content).digest():
            raise SignatureInvalid("message digest mismatch: the TSTInfo was altered")
        # 4. The TSA certificate named by the SignerInfo, and the ESS attribute naming it.
        candidates = [_cms.certificate_facts(der) for der in parts.certificate_ders]
        candidates += [
            _cms.certificate_facts(c.public_bytes(serialization.Encoding.DER)) for c in certificates
        ]
        signer = _cms.find_signer(
            parts.sid_der,
            candidates,
            "the TSA certificate named by the SignerInfo is not available",
        )
        _check_ess(parts, signer)
        if info.tsa_name is not None and info.tsa_name != signer.subject_contents:
            raise SignatureInvalid("the TSTInfo tsa name is not the TSA certificate's subject")
        # 5. The signature value, with the TSA certificate's key (RFC 5652 5.6).
        _check_signature(parts, digest_name, signer)
        # 6. The certificate is a TSA's: extendedKeyUsage timeStamping, critical (RFC 3161 2.3).
        _check_time_stamping_usage(signer.certificate)
    except (SignatureInvalid, CertificateInvalid):
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, ... on malformed input
        raise _cms.unparseable(_CONTEXT, exc) from exc
    # 7. Its path to a trusted root, at genTime.
    if validator is not None:
        intermediates = [c.certificate for c in candidates if c is not signer]
        validator.validate(signer.certificate, intermediates, at=info.gen_time)
    return VerifiedTimestamp(
        gen_time=info.gen_time,
        serial_number=info.serial_number,
        tsa_certificate=signer.certificate,
        digest=info.imprint,
        policy=info.policy,
        nonce=info.nonce,
    )
