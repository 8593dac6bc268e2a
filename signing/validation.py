"""Checking detached CMS signatures and certificate paths: the half a regulator runs.

This module imports nothing of the signature-creation code (`signing.cms`, `signing.pki`).

`verify_detached` checks one CAdES-BES signature against its data (RFC 5652 5.4 and 5.6, RFC 5035);
`CertificateValidator` checks that the signer certificate chains to a trusted root and was valid
and not revoked at a given time. Both fail with a typed error whose `reason` says what failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from signing import _der
from signing.errors import SignatureInvalid
from signing.paths import CertificateValidator

__all__ = ["CertificateValidator", "VerifiedSignature", "verify_detached"]

_ESS_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_RSA_SIGNATURE_ALGORITHMS = frozenset({"sha256_rsa", "rsassa_pkcs1v15"})  # rsaEncryption too
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class VerifiedSignature:
    """What a signature that verified says about itself."""

    signer_certificate: x509.Certificate  # the certificate named by the SignerInfo
    signing_time: datetime  # the signing-time attribute, UTC (whole seconds: UTCTime)
    subject_id: str  # the signer certificate's subject serialNumber, e.g. "STAFF:N001"
    certificates: tuple[x509.Certificate, ...]  # every certificate embedded, in encoded order
    signature_value: bytes = b""  # the SignerInfo signature octets (what CAdES-T timestamps)


# -- verify_detached -----------------------------------------------------------------------


@dataclass(frozen=True)
class _CertificateFacts:
    """What verification needs from one certificate, worked out once per DER encoding."""

    certificate: x509.Certificate
    public_key: CertificatePublicKeyTypes
    issuer_contents: bytes
    serial_number: int
    subject_key_identifier: bytes | None
    subject_id: str | None
    sha256: bytes


@lru_cache(maxsize=4096)
def _certificate_facts(der: bytes) -> _CertificateFacts:
    certificate = x509.load_der_x509_certificate(der)
    # The issuer Name's content octets, as encoded in the certificate: compared byte for byte
    # with the SignerInfo's issuerAndSerialNumber and the ESS issuerSerial.
    issuer_contents = asn1_x509.Certificate.load(der)["tbs_certificate"]["issuer"].contents
    try:
        ski: bytes | None = certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        ski = None
    serials = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    subject_id = None
    if len(serials) == 1:
        value = serials[0].value
        subject_id = value if isinstance(value, str) else value.decode("ascii", "replace")
    return _CertificateFacts(
        certificate=certificate,
        public_key=certificate.public_key(),
        issuer_contents=issuer_contents,
        serial_number=certificate.serial_number,
        subject_key_identifier=ski,
        subject_id=subject_id,
        sha256=hashlib.sha256(der).digest(),
    )


# Object identifiers as DER elements, compared byte for byte with what a signature carries.
_OID_SIGNED_DATA = cms.ContentType("signed_data").dump()
_OID_DATA = cms.ContentType("data").dump()
_ATTRIBUTE_NAMES = {
    cms.CMSAttributeType(name).dump(): name
    for name in ("content_type", "message_digest", "signing_time", "signing_certificate_v2")
}


@dataclass(frozen=True)
class _ParsedSignature:
    certificate_ders: tuple[bytes, ...]
    sid_der: bytes
    digest_algorithm_der: bytes
    attributes: dict[str, list[_der.Element]]  # attribute name (or dotted OID) -> its values
    signed_attributes: _der.Element  # as encoded, tag [0] IMPLICIT
    signature_algorithm_der: bytes
    signature: bytes


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise SignatureInvalid(f"unparseable CMS: {what}")


def _parse(signature_der: bytes) -> _ParsedSignature:
    """Steps 1-3: parse, and check the envelope (detached SignedData, one SignerInfo).

    The envelope is walked element by element (`signing._der`, on asn1crypto's parser) rather
    than loaded with `cms.ContentInfo`: the typed load of a signature with three certificates
    costs about 0.25 ms, four times the ECDSA verification itself. The values inside are then
    read with asn1crypto's typed classes, cached by their bytes where they repeat from event to
    event (signer identifier, algorithms, ESS attribute, certificates).
    """
    try:
        content_info = _der.elements(_der.single(signature_der).contents)
        _require(
            len(content_info) == 2
            and content_info[0].encoded == _OID_SIGNED_DATA
            and content_info[1].is_(_der.CONTEXT, 0, constructed=True),
            "not a ContentInfo holding SignedData",
        )
        signed_data = _der.elements(_der.single(content_info[1].contents).contents)
        _require(
            len(signed_data) >= 4
            and signed_data[0].is_(_der.UNIVERSAL, _der.INTEGER)
            and signed_data[1].is_(_der.UNIVERSAL, _der.SET)
            and signed_data[2].is_(_der.UNIVERSAL, _der.SEQUENCE)
            and signed_data[-1].is_(_der.UNIVERSAL, _der.SET),
            "malformed SignedData",
        )
        encapsulated = _der.elements(signed_data[2].contents)
        if not encapsulated or encapsulated[0].encoded != _OID_DATA:
            raise SignatureInvalid("the encapsulated content type is not id-data")
        if len(encapsulated) != 1:
            raise SignatureInvalid("the signature is not detached: it carries eContent")
        optional = signed_data[3:-1]  # [0] certificates, [1] crls
        _require(
            all(e.class_ == _der.CONTEXT and e.tag in (0, 1) for e in optional),
            "unexpected element in SignedData",
        )
        certificate_ders = tuple(
            der for field in optional if field.tag == 0 for der in _certificate_ders(field.contents)
        )
        signer_infos = _der.elements(signed_data[-1].contents)
        if len(signer_infos) != 1:
            raise SignatureInvalid(f"expected exactly one SignerInfo, found {len(signer_infos)}")
        return _parse_signer_info(signer_infos[0], certificate_ders)
    except SignatureInvalid:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, ...
        raise SignatureInvalid(f"unparseable CMS: {exc.__class__.__name__}: {exc}") from exc


@lru_cache(maxsize=1024)
def _certificate_ders(certificates_field: bytes) -> tuple[bytes, ...]:
    """The certificates of a SignedData [0] field, by their bytes (a signer embeds the same
    ones in every signature)."""
    return tuple(
        cert.encoded
        for cert in _der.elements(certificates_field)
        if cert.is_(_der.UNIVERSAL, _der.SEQUENCE)  # other CertificateChoices are ignored
    )


def _parse_signer_info(
    signer_info: _der.Element, certificate_ders: tuple[bytes, ...]
) -> _ParsedSignature:
    _require(signer_info.is_(_der.UNIVERSAL, _der.SEQUENCE), "SignerInfo is not a SEQUENCE")
    # version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, [1] unsigned
    fields = _der.elements(signer_info.contents)
    _require(len(fields) >= 5, "SignerInfo has too few fields")
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
        and fields[4].is_(_der.UNIVERSAL, _der.SEQUENCE)
        and len(fields) > 5
        and fields[5].is_(_der.UNIVERSAL, _der.OCTET_STRING, constructed=False)
        and all(e.is_(_der.CONTEXT, 1) for e in fields[6:])
        and len(fields) <= 7,
        "malformed SignerInfo",
    )
    attributes: dict[str, list[_der.Element]] = {}
    for attribute in _der.elements(fields[3].contents):
        _require(attribute.is_(_der.UNIVERSAL, _der.SEQUENCE), "malformed signed attribute")
        name, values = _attribute(attribute.contents)
        if name in attributes:
            raise SignatureInvalid(f"the signed attribute {name} occurs more than once")
        attributes[name] = values
    return _ParsedSignature(
        certificate_ders=certificate_ders,
        sid_der=fields[1].encoded,
        digest_algorithm_der=fields[2].encoded,
        attributes=attributes,
        signed_attributes=fields[3],
        signature_algorithm_der=fields[4].encoded,
        signature=fields[5].contents,
    )


#: Attribute values that repeat from signature to signature (content-type, the signer's ESS
#: signing-certificate-v2), read once; message-digest and signing-time differ every time.
_CONSTANT_ATTRIBUTES = frozenset({"content_type", "signing_certificate_v2"})
_ATTRIBUTE_CACHE: dict[bytes, tuple[str, list[_der.Element]]] = {}
_ATTRIBUTE_CACHE_SIZE = 1024


def _attribute(contents: bytes) -> tuple[str, list[_der.Element]]:
    """The type name (or dotted OID) and values of one Attribute, from its SEQUENCE contents."""
    known = _ATTRIBUTE_CACHE.get(contents)
    if known is not None:
        return known[0], list(known[1])
    parts = _der.elements(contents)
    _require(
        len(parts) == 2
        and parts[0].is_(_der.UNIVERSAL, _der.OBJECT_IDENTIFIER)
        and parts[1].is_(_der.UNIVERSAL, _der.SET),
        "malformed signed attribute",
    )
    name = _ATTRIBUTE_NAMES.get(parts[0].encoded) or _dotted(parts[0].encoded)
    values = _der.elements(parts[1].contents)
    if name in _CONSTANT_ATTRIBUTES:
        if len(_ATTRIBUTE_CACHE) >= _ATTRIBUTE_CACHE_SIZE:
            _ATTRIBUTE_CACHE.clear()
        _ATTRIBUTE_CACHE[contents] = (name, list(values))
    return name, values


def _dotted(oid_der: bytes) -> str:
    return str(core.ObjectIdentifier.load(oid_der).dotted)


@lru_cache(maxsize=256)
def _digest_algorithm_name(algorithm_der: bytes) -> str:
    return str(algos.DigestAlgorithm.load(algorithm_der, strict=True)["algorithm"].native)


@lru_cache(maxsize=256)
def _signature_algorithm_name(algorithm_der: bytes) -> str:
    return str(algos.SignedDigestAlgorithm.load(algorithm_der, strict=True)["algorithm"].native)


@dataclass(frozen=True)
class _SignerId:
    issuer_contents: bytes | None = None
    serial_number: int | None = None
    subject_key_identifier: bytes | None = None


@lru_cache(maxsize=4096)
def _signer_id(sid_der: bytes) -> _SignerId:
    sid = cms.SignerIdentifier.load(sid_der, strict=True)
    if sid.name == "issuer_and_serial_number":
        return _SignerId(
            issuer_contents=sid.chosen["issuer"].contents,
            serial_number=sid.chosen["serial_number"].native,
        )
    return _SignerId(subject_key_identifier=sid.chosen.native)


@dataclass(frozen=True)
class _EssCertId:
    hash_name: str
    cert_hash: bytes
    issuer_contents: tuple[bytes, ...] | None  # directoryName entries of issuerSerial, if any
    serial_number: int | None


@lru_cache(maxsize=4096)
def _ess_cert_id(value_der: bytes) -> _EssCertId:
    """The first ESSCertIDv2 of a signing-certificate-v2 value: the signer's (RFC 5035 5.4)."""
    certs = tsp.SigningCertificateV2.load(value_der, strict=True)["certs"]
    if len(certs) == 0:
        raise SignatureInvalid("the signing-certificate-v2 attribute lists no certificate")
    cert_id = certs[0]
    issuer_serial = cert_id["issuer_serial"]
    if isinstance(issuer_serial, core.Void):
        return _EssCertId(
            str(cert_id["hash_algorithm"]["algorithm"].native),
            cert_id["cert_hash"].native,
            None,
            None,
        )
    return _EssCertId(
        hash_name=str(cert_id["hash_algorithm"]["algorithm"].native),
        cert_hash=cert_id["cert_hash"].native,
        issuer_contents=tuple(
            name.chosen.contents
            for name in issuer_serial["issuer"]
            if name.name == "directory_name"
        ),
        serial_number=issuer_serial["serial_number"].native,
    )


def _single_value(attributes: dict[str, list[_der.Element]], name: str) -> _der.Element:
    values = attributes.get(name)
    if values is None:
        raise SignatureInvalid(f"the signed attribute {name} is missing")
    if len(values) != 1:
        raise SignatureInvalid(f"the signed attribute {name} has {len(values)} values, not one")
    return values[0]


def _find_signer(sid_der: bytes, certificates: Sequence[_CertificateFacts]) -> _CertificateFacts:
    sid = _signer_id(sid_der)
    for facts in certificates:
        if sid.subject_key_identifier is not None:
            if facts.subject_key_identifier == sid.subject_key_identifier:
                return facts
        elif (
            facts.serial_number == sid.serial_number
            and facts.issuer_contents == sid.issuer_contents
        ):
            return facts
    raise SignatureInvalid("the signer certificate named by the SignerInfo is not embedded")


def _check_signing_certificate_v2(value: _der.Element, signer: _CertificateFacts) -> None:
    """RFC 5035: the first ESSCertIDv2 identifies the signer certificate."""
    cert_id = _ess_cert_id(value.encoded)
    hash_function = _ESS_HASHES.get(cert_id.hash_name)
    if hash_function is None:
        raise SignatureInvalid(f"unsupported signing-certificate-v2 hash {cert_id.hash_name}")
    expected = (
        signer.sha256
        if cert_id.hash_name == "sha256"
        else hash_function(signer.certificate.public_bytes(serialization.Encoding.DER)).digest()
    )
    if cert_id.cert_hash != expected:
        raise SignatureInvalid("signing-certificate-v2 does not match the signer certificate")
    if cert_id.issuer_contents is not None and (
        cert_id.serial_number != signer.serial_number
        or signer.issuer_contents not in cert_id.issuer_contents
    ):
        raise SignatureInvalid(
            "signing-certificate-v2 issuerSerial does not match the signer certificate"
        )


def _utc_time(contents: bytes) -> datetime | None:
    """A DER UTCTime ``YYMMDDhhmmssZ`` (RFC 5280 4.1.2.5.1), read without asn1crypto's typed
    load (about 8 µs); None for any other form, which asn1crypto then reads. Years 50-99 are
    19xx and 00-49 are 20xx, as asn1crypto has them."""
    if len(contents) != 13 or contents[12] != 0x5A or not contents[:12].isdigit():
        return None
    year = int(contents[0:2])
    return datetime(
        year + (2000 if year < 50 else 1900),
        int(contents[2:4]),
        int(contents[4:6]),
        int(contents[6:8]),
        int(contents[8:10]),
        int(contents[10:12]),
        tzinfo=UTC,
    )


def _signing_time(value: _der.Element) -> datetime:
    fast = _utc_time(value.contents) if value.is_(_der.UNIVERSAL, 23, constructed=False) else None
    if fast is not None:
        return fast
    if value.is_(_der.UNIVERSAL, 23):
        moment = core.UTCTime.load(value.encoded, strict=True).native
    elif value.is_(_der.UNIVERSAL, 24):
        moment = core.GeneralizedTime.load(value.encoded, strict=True).native
    else:
        raise SignatureInvalid("the signing-time attribute is not a UTCTime or GeneralizedTime")
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise SignatureInvalid("the signing-time attribute is not a UTC time")
    return moment.astimezone(UTC)


def _check_signature_value(
    parsed: _ParsedSignature, algorithm: str, signer: _CertificateFacts
) -> None:
    # RFC 5652 5.4: the signature covers the DER of the signed attributes as a SET OF
    # (tag 0x31), not with the [0] IMPLICIT tag (0xA0) they carry in the SignerInfo.
    signed = parsed.signed_attributes
    to_be_signed = b"\x31" + signed.header[1:] + signed.contents
    key = signer.public_key
    try:
        if algorithm == "sha256_ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(parsed.signature, to_be_signed, _ECDSA_SHA256)
        elif algorithm in _RSA_SIGNATURE_ALGORITHMS and isinstance(key, rsa.RSAPublicKey):
            key.verify(parsed.signature, to_be_signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise SignatureInvalid(
                f"signature algorithm {algorithm} does not fit the signer's {type(key).__name__}"
            )
    except InvalidSignature as exc:
        raise SignatureInvalid("signature value does not verify") from exc


def verify_detached(signature_der: bytes, data: bytes) -> VerifiedSignature:
    """Verify a detached CAdES-BES signature over `data`; raise `SignatureInvalid` if it fails.

    This checks the signature itself, not whether the signer certificate is trusted: pass
    `signer_certificate` and `certificates` to `CertificateValidator.validate` for that.
    """
    # 1-3. Parse: a detached SignedData of id-data with exactly one SignerInfo that has signed
    # attributes, each attribute type at most once (RFC 5652 5.1, 5.3).
    parsed = _parse(signature_der)
    attributes = parsed.attributes
    try:
        # 4. SHA-256 digest (RFC 5754), content-type = id-data (RFC 5652 11.1).
        if _digest_algorithm_name(parsed.digest_algorithm_der) != "sha256":
            raise SignatureInvalid("unsupported digest algorithm: SHA-256 is required")
        signature_algorithm = _signature_algorithm_name(parsed.signature_algorithm_der)
        if _single_value(attributes, "content_type").encoded != _OID_DATA:
            raise SignatureInvalid("the content-type attribute is not id-data")
        # 5. message-digest = SHA-256(data) (RFC 5652 11.2).
        digest = _single_value(attributes, "message_digest")
        if not digest.is_(_der.UNIVERSAL, _der.OCTET_STRING, constructed=False):
            raise SignatureInvalid("the message-digest attribute is not an OCTET STRING")
        if digest.contents != hashlib.sha256(data).digest():
            raise SignatureInvalid("message digest mismatch")
        # 6. The signer certificate, named by the SignerInfo, among the embedded ones.
        certificates = [_certificate_facts(der) for der in parsed.certificate_ders]
        signer = _find_signer(parsed.sid_der, certificates)
        # 7. ESS signing-certificate-v2 binds that certificate to the signature (RFC 5035).
        _check_signing_certificate_v2(_single_value(attributes, "signing_certificate_v2"), signer)
        # 8. signing-time (RFC 5652 11.3).
        signing_time = _signing_time(_single_value(attributes, "signing_time"))
    except SignatureInvalid:
        raise
    except Exception as exc:  # a malformed value, found while reading it
        raise SignatureInvalid(f"unparseable CMS: {exc.__class__.__name__}: {exc}") from exc
    # 9. The signature value, with the signer's public key (RFC 5652 5.6).
    _check_signature_value(parsed, signature_algorithm, signer)
    if signer.subject_id is None:
        raise SignatureInvalid("the signer certificate has no single subject serialNumber")
    return VerifiedSignature(
        signer_certificate=signer.certificate,
        signing_time=signing_time,
        subject_id=signer.subject_id,
        certificates=tuple(facts.certificate for facts in certificates),
        signature_value=parsed.signature,
    )


def signature_value(signature_der: bytes) -> bytes:
    """The SignerInfo signature octets of a CMS signature, unverified (ETSI EN 319 122-1
    signature-time-stamp: the token's imprint is over these bytes)."""
    try:
        return _parse(signature_der).signature
    except SignatureInvalid:
        raise
    except Exception as exc:
        raise SignatureInvalid(f"unparseable CMS: {exc.__class__.__name__}: {exc}") from exc
