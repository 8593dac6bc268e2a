"""Checking RFC 3161 timestamp tokens: the half a regulator runs.

This module imports nothing of the creation code (`signing.tsa`, `signing.timestamps`,
`signing.cms`, `signing.pki`): it checks a stored TimeStampToken against the SHA-256 digest it
claims to cover, and, given a `CertificateValidator`, that the TSA certificate chains to a trusted
root at the token's genTime.

The envelope (ContentInfo, SignedData, SignerInfo) is walked with `signing._der`; the small values
inside (TSTInfo, signer identifier, ESS attributes, algorithm identifiers) are read with
asn1crypto's typed classes; signatures are checked with cryptography. What no library does here is
the glue: neither asn1crypto nor cryptography verifies a CMS SignedData with signed attributes, so
the RFC 5652 5.4/5.6 steps are written out below, as in `signing.validation`. Tokens of
third-party TSAs are accepted too: SHA-256/384/512 digests, ECDSA or RSA PKCS#1 v1.5 signatures,
ESS signing-certificate (v1, SHA-1, RFC 2634) or signing-certificate-v2 (RFC 5816). RSA-PSS and
SHA-1 signatures are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

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


_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_HASHLIB: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1,  # ESS signing-certificate v1 only (a certificate hash, not a signature)
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_ECDSA = {"sha256_ecdsa": "sha256", "sha384_ecdsa": "sha384", "sha512_ecdsa": "sha512"}
_RSA = {"sha256_rsa": "sha256", "sha384_rsa": "sha384", "sha512_rsa": "sha512"}

# Object identifiers as DER elements, compared byte for byte with what a token carries.
_OID_SIGNED_DATA = cms.ContentType("signed_data").dump()
_OID_TST_INFO = cms.ContentType("tst_info").dump()
_CONTENT_TYPE = cms.CMSAttributeType("content_type").dump()
_MESSAGE_DIGEST = cms.CMSAttributeType("message_digest").dump()
_SIGNING_CERTIFICATE = cms.CMSAttributeType("signing_certificate").dump()
_SIGNING_CERTIFICATE_V2 = cms.CMSAttributeType("signing_certificate_v2").dump()


@dataclass(frozen=True)
class _TokenParts:
    tst_info_der: bytes  # the eContent: what the message-digest attribute covers
    certificate_ders: tuple[bytes, ...]
    sid_der: bytes
    digest_algorithm_der: bytes
    attributes: dict[bytes, list[_der.Element]]  # attribute type OID (DER) -> its values
    signed_attributes: _der.Element  # as encoded, tag [0] IMPLICIT
    signature_algorithm_der: bytes
    signature: bytes


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise SignatureInvalid(f"unparseable timestamp token: {what}")


def _parse_envelope(token_der: bytes) -> _TokenParts:
    """RFC 3161 2.4.2 and RFC 5652 5.1-5.3: SignedData of id-ct-TSTInfo, one SignerInfo."""
    outer = _der.single(token_der)
    content_info = _der.elements(outer.contents)
    _require(
        outer.is_(_der.UNIVERSAL, _der.SEQUENCE, constructed=True)
        and len(content_info) == 2
        and content_info[0].encoded == _OID_SIGNED_DATA
        and content_info[1].is_(_der.CONTEXT, 0, constructed=True),
        "not a ContentInfo holding SignedData",
    )
    inner = _der.single(content_info[1].contents)
    _require(inner.is_(_der.UNIVERSAL, _der.SEQUENCE, constructed=True), "malformed SignedData")
    signed_data = _der.elements(inner.contents)
    # RFC 5652 5.1: version 3 when the eContentType is not id-data.
    _require(
        len(signed_data) >= 4
        and signed_data[0].is_(_der.UNIVERSAL, _der.INTEGER)
        and signed_data[0].contents == b"\x03"
        and signed_data[1].is_(_der.UNIVERSAL, _der.SET)
        and signed_data[2].is_(_der.UNIVERSAL, _der.SEQUENCE)
        and signed_data[-1].is_(_der.UNIVERSAL, _der.SET),
        "malformed SignedData",
    )
    encapsulated = _der.elements(signed_data[2].contents)
    if not encapsulated or encapsulated[0].encoded != _OID_TST_INFO:
        raise SignatureInvalid("the encapsulated content type is not id-ct-TSTInfo")
    _require(
        len(encapsulated) == 2 and encapsulated[1].is_(_der.CONTEXT, 0, constructed=True),
        "the token carries no TSTInfo",
    )
    e_content = _der.single(encapsulated[1].contents)
    _require(
        e_content.is_(_der.UNIVERSAL, _der.OCTET_STRING, constructed=False),
        "the eContent is not a primitive OCTET STRING",
    )
    optional = signed_data[3:-1]  # [0] certificates, [1] crls
    _require(
        all(e.class_ == _der.CONTEXT and e.tag in (0, 1) for e in optional),
        "unexpected element in SignedData",
    )
    certificate_ders = tuple(
        cert.encoded
        for field in optional
        if field.tag == 0
        for cert in _der.elements(field.contents)
        if cert.is_(_der.UNIVERSAL, _der.SEQUENCE)  # other CertificateChoices are ignored
    )
    signer_infos = _der.elements(signed_data[-1].contents)
    if len(signer_infos) != 1:
        raise SignatureInvalid(f"expected exactly one SignerInfo, found {len(signer_infos)}")
    signer_info = signer_infos[0]
    _require(signer_info.is_(_der.UNIVERSAL, _der.SEQUENCE), "SignerInfo is not a SEQUENCE")
    # version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, [1] unsigned
    fields = _der.elements(signer_info.contents)
    _require(5 <= len(fields) <= 7, "SignerInfo has a wrong number of fields")
    # RFC 5652 5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    expected_version = b"\x01" if fields[1].is_(_der.UNIVERSAL, _der.SEQUENCE) else b"\x03"
    _require(
        fields[0].is_(_der.UNIVERSAL, _der.INTEGER) and fields[0].contents == expected_version,
        "SignerInfo version does not fit its signer identifier",
    )
    if not fields[3].is_(_der.CONTEXT, 0, constructed=True):
        raise SignatureInvalid("the SignerInfo has no signed attributes")
    _require(
        fields[2].is_(_der.UNIVERSAL, _der.SEQUENCE)
        and len(fields) >= 6
        and fields[4].is_(_der.UNIVERSAL, _der.SEQUENCE)
        and fields[5].is_(_der.UNIVERSAL, _der.OCTET_STRING, constructed=False)
        and all(e.is_(_der.CONTEXT, 1) for e in fields[6:]),
        "malformed SignerInfo",
    )
    attributes: dict[bytes, list[_der.Element]] = {}
    for attribute in _der.elements(fields[3].contents):
        parts = _der.elements(attribute.contents)
        _require(
            attribute.is_(_der.UNIVERSAL, _der.SEQUENCE)
            and len(parts) == 2
            and parts[0].is_(_der.UNIVERSAL, _der.OBJECT_IDENTIFIER)
            and parts[1].is_(_der.UNIVERSAL, _der.SET),
            "malformed signed attribute",
        )
        if parts[0].encoded in attributes:
            raise SignatureInvalid(
                f"the signed attribute {_dotted(parts[0].encoded)} occurs more than once"
            )
        attributes[parts[0].encoded] = _der.elements(parts[1].contents)
    return _TokenParts(
        tst_info_der=e_content.contents,
        certificate_ders=certificate_ders,
        sid_der=fields[1].encoded,
        digest_algorithm_der=fields[2].encoded,
        attributes=attributes,
        signed_attributes=fields[3],
        signature_algorithm_der=fields[4].encoded,
        signature=fields[5].contents,
    )


def _dotted(oid_der: bytes) -> str:
    return str(core.ObjectIdentifier.load(oid_der).dotted)


def _single_value(parts: _TokenParts, oid_der: bytes, name: str) -> _der.Element | None:
    values = parts.attributes.get(oid_der)
    if values is None:
        return None
    if len(values) != 1:
        raise SignatureInvalid(f"the signed attribute {name} has {len(values)} values, not one")
    return values[0]


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


@dataclass(frozen=True)
class _Certificate:
    """One certificate with the encodings the token refers to, worked out once per DER."""

    certificate: x509.Certificate
    public_key: CertificatePublicKeyTypes
    der: bytes
    issuer_contents: bytes
    subject_contents: bytes
    serial_number: int
    subject_key_identifier: bytes | None


@lru_cache(maxsize=256)
def _certificate(der: bytes) -> _Certificate:
    certificate = x509.load_der_x509_certificate(der)
    tbs = asn1_x509.Certificate.load(der)["tbs_certificate"]
    try:
        ski: bytes | None = certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        ski = None
    return _Certificate(
        certificate=certificate,
        public_key=certificate.public_key(),
        der=der,
        issuer_contents=tbs["issuer"].contents,
        subject_contents=tbs["subject"].contents,
        serial_number=certificate.serial_number,
        subject_key_identifier=ski,
    )


@dataclass(frozen=True)
class _SignerId:
    issuer_contents: bytes | None = None
    serial_number: int | None = None
    subject_key_identifier: bytes | None = None


@lru_cache(maxsize=256)
def _signer_id(sid_der: bytes) -> _SignerId:
    sid = cms.SignerIdentifier.load(sid_der, strict=True)
    if sid.name == "issuer_and_serial_number":
        return _SignerId(
            issuer_contents=sid.chosen["issuer"].contents,
            serial_number=sid.chosen["serial_number"].native,
        )
    return _SignerId(subject_key_identifier=sid.chosen.native)


def _find_signer(sid_der: bytes, candidates: Sequence[_Certificate]) -> _Certificate:
    sid = _signer_id(sid_der)
    for candidate in candidates:
        if sid.subject_key_identifier is not None:
            if candidate.subject_key_identifier == sid.subject_key_identifier:
                return candidate
        elif (
            candidate.serial_number == sid.serial_number
            and candidate.issuer_contents == sid.issuer_contents
        ):
            return candidate
    raise SignatureInvalid("the TSA certificate named by the SignerInfo is not available")


@dataclass(frozen=True)
class _EssCertId:
    hash_name: str
    cert_hash: bytes
    issuer_contents: tuple[bytes, ...] | None  # directoryName entries of issuerSerial, if any
    serial_number: int | None


@lru_cache(maxsize=256)
def _ess_cert_id(value_der: bytes, version: int) -> _EssCertId:
    """The first ESSCertID(v2) of a signing-certificate(-v2) value: the TSA's (RFC 5035 5.4)."""
    if version == 2:
        certs = tsp.SigningCertificateV2.load(value_der, strict=True)["certs"]
    else:
        certs = tsp.SigningCertificate.load(value_der, strict=True)["certs"]
    if len(certs) == 0:
        raise SignatureInvalid("the ESS signing-certificate attribute lists no certificate")
    cert_id = certs[0]
    # RFC 2634: ESSCertID is a SHA-1 hash; RFC 5035: ESSCertIDv2 names its hash (sha256 default).
    hash_name = "sha1" if version == 1 else str(cert_id["hash_algorithm"]["algorithm"].native)
    issuer_serial = cert_id["issuer_serial"]
    if isinstance(issuer_serial, core.Void):
        return _EssCertId(hash_name, cert_id["cert_hash"].native, None, None)
    return _EssCertId(
        hash_name=hash_name,
        cert_hash=cert_id["cert_hash"].native,
        issuer_contents=tuple(
            name.chosen.contents
            for name in issuer_serial["issuer"]
            if name.name == "directory_name"
        ),
        serial_number=issuer_serial["serial_number"].native,
    )


def _check_ess(parts: _TokenParts, signer: _Certificate) -> None:
    """RFC 3161 2.4.1 / RFC 5816: the first ESS cert id identifies the TSA certificate."""
    v2 = _single_value(parts, _SIGNING_CERTIFICATE_V2, "signing-certificate-v2")
    v1 = _single_value(parts, _SIGNING_CERTIFICATE, "signing-certificate")
    if v2 is not None:
        cert_id = _ess_cert_id(v2.encoded, 2)
    elif v1 is not None:
        cert_id = _ess_cert_id(v1.encoded, 1)
    else:
        raise SignatureInvalid("the token has no ESS signing-certificate(-v2) attribute")
    hash_function = _HASHLIB.get(cert_id.hash_name)
    if hash_function is None or (v2 is not None and cert_id.hash_name == "sha1"):
        raise SignatureInvalid(f"unsupported ESS certificate hash {cert_id.hash_name}")
    if cert_id.cert_hash != hash_function(signer.der).digest():
        raise SignatureInvalid("the ESS signing-certificate does not match the TSA certificate")
    if cert_id.issuer_contents is not None and (
        cert_id.serial_number != signer.serial_number
        or signer.issuer_contents not in cert_id.issuer_contents
    ):
        raise SignatureInvalid(
            "the ESS signing-certificate issuerSerial does not match the TSA certificate"
        )


@lru_cache(maxsize=256)
def _digest_algorithm_name(algorithm_der: bytes) -> str:
    return str(algos.DigestAlgorithm.load(algorithm_der, strict=True)["algorithm"].native)


@lru_cache(maxsize=256)
def _signature_algorithm_name(algorithm_der: bytes) -> str:
    return str(algos.SignedDigestAlgorithm.load(algorithm_der, strict=True)["algorithm"].native)


def _check_signature(parts: _TokenParts, digest_name: str, signer: _Certificate) -> None:
    """RFC 5652 5.4: the signature covers the signed attributes encoded as a SET OF (0x31)."""
    name = _signature_algorithm_name(parts.signature_algorithm_der)
    signed = parts.signed_attributes
    to_be_signed = b"\x31" + signed.header[1:] + signed.contents
    key = signer.public_key
    try:
        if name in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(parts.signature, to_be_signed, ec.ECDSA(_HASHES[_ECDSA[name]]()))
        elif name in _RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(parts.signature, to_be_signed, padding.PKCS1v15(), _HASHES[_RSA[name]]())
        elif name == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            # rsaEncryption as the signature algorithm: the hash is the SignerInfo's digest.
            key.verify(parts.signature, to_be_signed, padding.PKCS1v15(), _HASHES[digest_name]())
        else:
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
        info = _read_tst_info(parts.tst_info_der)
        if info.imprint_algorithm != "sha256" or info.imprint != digest:
            raise SignatureInvalid(
                f"timestamp imprint does not match ({info.imprint_algorithm} imprint)"
            )
        # 3. Digest algorithm, content-type = id-ct-TSTInfo, message-digest = H(eContent).
        digest_name = _digest_algorithm_name(parts.digest_algorithm_der)
        if digest_name not in _HASHES:
            raise SignatureInvalid(f"unsupported digest algorithm {digest_name}")
        content_type = _single_value(parts, _CONTENT_TYPE, "content-type")
        if content_type is None or content_type.encoded != _OID_TST_INFO:
            raise SignatureInvalid("the content-type attribute is not id-ct-TSTInfo")
        message_digest = _single_value(parts, _MESSAGE_DIGEST, "message-digest")
        if message_digest is None or not message_digest.is_(
            _der.UNIVERSAL, _der.OCTET_STRING, constructed=False
        ):
            raise SignatureInvalid("the message-digest attribute is missing or malformed")
        if message_digest.contents != _HASHLIB[digest_name](parts.tst_info_der).digest():
            raise SignatureInvalid("message digest mismatch: the TSTInfo was altered")
        # 4. The TSA certificate named by the SignerInfo, and the ESS attribute naming it.
        candidates = [_certificate(der) for der in parts.certificate_ders]
        candidates += [
            _certificate(c.public_bytes(serialization.Encoding.DER)) for c in certificates
        ]
        signer = _find_signer(parts.sid_der, candidates)
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
        raise SignatureInvalid(
            f"unparseable timestamp token: {exc.__class__.__name__}: {exc}"
        ) from exc
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
