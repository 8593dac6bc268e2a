"""The CMS SignedData both checkers read: CAdES-BES signatures (`signing.validation`) and RFC 3161
timestamp tokens (`signing.tsp_validation`).

Part of the checking half: this module imports nothing of the creation code (`signing.cms`,
`signing.tsa`, `signing.pki`, `signing.pades`, `signing.timestamps`).

The envelope (ContentInfo, SignedData, one SignerInfo, its signed attributes) is walked with
`signing._der`, as RFC 5652 5.1-5.3 have it; the small values inside (signer identifier, algorithm
identifiers, ESS signing-certificate attributes, certificates) are read with asn1crypto's typed
classes, cached by their bytes where they repeat from signature to signature. Neither asn1crypto
nor cryptography verifies a SignedData with signed attributes, so the RFC 5652 5.4/5.6 steps are
written out here. What differs between the two checkers (the encapsulated content, the digest and
signature algorithms they accept, which attributes they require) stays with them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from signing import _der
from signing.errors import SignatureInvalid

# Object identifiers as DER elements, compared byte for byte with what a signature carries.
OID_SIGNED_DATA = cms.ContentType("signed_data").dump()
OID_DATA = cms.ContentType("data").dump()
OID_TST_INFO = cms.ContentType("tst_info").dump()
CONTENT_TYPE = cms.CMSAttributeType("content_type").dump()
MESSAGE_DIGEST = cms.CMSAttributeType("message_digest").dump()
SIGNING_TIME = cms.CMSAttributeType("signing_time").dump()
SIGNING_CERTIFICATE = cms.CMSAttributeType("signing_certificate").dump()
SIGNING_CERTIFICATE_V2 = cms.CMSAttributeType("signing_certificate_v2").dump()

_ATTRIBUTE_NAMES = {
    CONTENT_TYPE: "content_type",
    MESSAGE_DIGEST: "message_digest",
    SIGNING_TIME: "signing_time",
    SIGNING_CERTIFICATE: "signing_certificate",
    SIGNING_CERTIFICATE_V2: "signing_certificate_v2",
}


def unparseable(context: str, exc: Exception) -> SignatureInvalid:
    """The error for what the DER reader or asn1crypto raised on malformed input."""
    return SignatureInvalid(f"unparseable {context}: {exc.__class__.__name__}: {exc}")


def malformed(context: str, what: str) -> SignatureInvalid:
    """The error for a structure that parsed but is not what RFC 5652 (or RFC 3161) has."""
    return SignatureInvalid(f"unparseable {context}: {what}")


# -- the envelope ------------------------------------------------------------------------------


class SignedData(NamedTuple):
    """What the checkers use of a SignedData with one SignerInfo (a tuple: built per signature)."""

    content: bytes  # the eContent octets, as the caller's `content` check returned them
    certificate_ders: tuple[bytes, ...]
    sid_der: bytes
    digest_algorithm_der: bytes
    attributes: dict[bytes, list[_der.Element]]  # signed attribute type (OID, DER) -> its values
    signed_attributes: _der.Element  # as encoded, tag [0] IMPLICIT
    signature_algorithm_der: bytes
    signature: bytes


def read_signed_data(
    der: bytes,
    context: str,
    content: Callable[[list[_der.Element]], bytes],
    *,
    version: bytes | None = None,
    strict_tags: bool = False,
) -> SignedData:
    """RFC 5652 5.1-5.3: a ContentInfo holding SignedData, exactly one SignerInfo, with signed
    attributes, each attribute type at most once.

    `content` checks the EncapsulatedContentInfo's elements and returns the eContent octets;
    `version` is the SignedData version the caller requires (contents octets), if any;
    `strict_tags` also requires the ContentInfo and the SignedData to be constructed SEQUENCEs
    (the token checker does; `verify_detached` never did). A malformed structure raises
    `SignatureInvalid("unparseable <context>: ...")`; what the DER reader or asn1crypto raise
    passes through, for the caller to wrap with `unparseable`.
    """
    # The checks are written out as `if not ...: raise`, not as calls: this is the hot path of
    # `ledger verify`.
    outer = _der.single(der)
    content_info = _der.elements(outer.contents)
    if not (
        (not strict_tags or outer.is_(_der.UNIVERSAL, _der.SEQUENCE, constructed=True))
        and len(content_info) == 2
        and content_info[0].encoded == OID_SIGNED_DATA
        and content_info[1].is_(_der.CONTEXT, 0, constructed=True)
    ):
        raise malformed(context, "not a ContentInfo holding SignedData")
    inner = _der.single(content_info[1].contents)
    if strict_tags and not inner.is_(_der.UNIVERSAL, _der.SEQUENCE, constructed=True):
        raise malformed(context, "malformed SignedData")
    signed_data = _der.elements(inner.contents)
    if not (
        len(signed_data) >= 4
        and signed_data[0].is_(_der.UNIVERSAL, _der.INTEGER)
        and (version is None or signed_data[0].contents == version)
        and signed_data[1].is_(_der.UNIVERSAL, _der.SET)
        and signed_data[2].is_(_der.UNIVERSAL, _der.SEQUENCE)
        and signed_data[-1].is_(_der.UNIVERSAL, _der.SET)
    ):
        raise malformed(context, "malformed SignedData")
    e_content = content(_der.elements(signed_data[2].contents))
    optional = signed_data[3:-1]  # [0] certificates, [1] crls
    for field in optional:
        if field.class_ != _der.CONTEXT or field.tag not in (0, 1):
            raise malformed(context, "unexpected element in SignedData")
    certificate_ders: tuple[bytes, ...] = ()
    for field in optional:
        if field.tag == 0:
            certificate_ders += _certificate_ders(field.contents)
    signer_infos = _der.elements(signed_data[-1].contents)
    if len(signer_infos) != 1:
        raise SignatureInvalid(f"expected exactly one SignerInfo, found {len(signer_infos)}")
    signer_info = signer_infos[0]
    if not signer_info.is_(_der.UNIVERSAL, _der.SEQUENCE):
        raise malformed(context, "SignerInfo is not a SEQUENCE")
    # version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, [1] unsigned
    fields = _der.elements(signer_info.contents)
    if not 5 <= len(fields) <= 7:
        raise malformed(context, "SignerInfo has a wrong number of fields")
    # RFC 5652 5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    expected_version = b"\x01" if fields[1].is_(_der.UNIVERSAL, _der.SEQUENCE) else b"\x03"
    if not (fields[0].is_(_der.UNIVERSAL, _der.INTEGER) and fields[0].contents == expected_version):
        raise malformed(context, "SignerInfo version does not fit its signer identifier")
    if not fields[3].is_(_der.CONTEXT, 0, constructed=True):
        raise SignatureInvalid("the SignerInfo has no signed attributes")
    if not (
        fields[2].is_(_der.UNIVERSAL, _der.SEQUENCE)
        and len(fields) >= 6
        and fields[4].is_(_der.UNIVERSAL, _der.SEQUENCE)
        and fields[5].is_(_der.UNIVERSAL, _der.OCTET_STRING, constructed=False)
        and (len(fields) == 6 or fields[6].is_(_der.CONTEXT, 1))  # [1] unsignedAttrs
    ):
        raise malformed(context, "malformed SignerInfo")
    attributes: dict[bytes, list[_der.Element]] = {}
    for attribute in _der.elements(fields[3].contents):
        if not attribute.is_(_der.UNIVERSAL, _der.SEQUENCE):
            raise malformed(context, "malformed signed attribute")
        oid, values = _attribute(attribute.contents, context)
        if oid in attributes:
            raise SignatureInvalid(
                f"the signed attribute {attribute_name(oid)} occurs more than once"
            )
        attributes[oid] = values
    return SignedData(
        content=e_content,
        certificate_ders=certificate_ders,
        sid_der=fields[1].encoded,
        digest_algorithm_der=fields[2].encoded,
        attributes=attributes,
        signed_attributes=fields[3],
        signature_algorithm_der=fields[4].encoded,
        signature=fields[5].contents,
    )


@lru_cache(maxsize=1024)
def _certificate_ders(certificates_field: bytes) -> tuple[bytes, ...]:
    """The certificates of a SignedData [0] field, by their bytes (a signer embeds the same
    ones in every signature)."""
    return tuple(
        cert.encoded
        for cert in _der.elements(certificates_field)
        if cert.is_(_der.UNIVERSAL, _der.SEQUENCE)  # other CertificateChoices are ignored
    )


#: Attribute values that repeat from signature to signature (content-type, the signer's ESS
#: signing-certificate(-v2)), read once; message-digest and signing-time differ every time.
_CONSTANT_ATTRIBUTES = frozenset({CONTENT_TYPE, SIGNING_CERTIFICATE, SIGNING_CERTIFICATE_V2})
_ATTRIBUTE_CACHE: dict[bytes, tuple[bytes, list[_der.Element]]] = {}
_ATTRIBUTE_CACHE_SIZE = 1024


def _attribute(contents: bytes, context: str) -> tuple[bytes, list[_der.Element]]:
    """The type (OID, DER) and values of one Attribute, from its SEQUENCE contents."""
    known = _ATTRIBUTE_CACHE.get(contents)
    if known is not None:
        return known[0], list(known[1])
    parts = _der.elements(contents)
    if not (
        len(parts) == 2
        and parts[0].is_(_der.UNIVERSAL, _der.OBJECT_IDENTIFIER)
        and parts[1].is_(_der.UNIVERSAL, _der.SET)
    ):
        raise malformed(context, "malformed signed attribute")
    oid = parts[0].encoded
    values = _der.elements(parts[1].contents)
    if oid in _CONSTANT_ATTRIBUTES:
        if len(_ATTRIBUTE_CACHE) >= _ATTRIBUTE_CACHE_SIZE:
            _ATTRIBUTE_CACHE.clear()
        _ATTRIBUTE_CACHE[contents] = (oid, list(values))
    return oid, values


def attribute_name(oid_der: bytes) -> str:
    """asn1crypto's name of a signed attribute type we read, else its dotted OID."""
    return _ATTRIBUTE_NAMES.get(oid_der) or _dotted(oid_der)


def _dotted(oid_der: bytes) -> str:
    return str(core.ObjectIdentifier.load(oid_der).dotted)


def single_value(
    signed: SignedData, oid_der: bytes, name: str | None = None
) -> _der.Element | None:
    """The one value of a signed attribute; None when the attribute is absent. `name` names it
    in the error (default: `attribute_name`)."""
    values = signed.attributes.get(oid_der)
    if values is None:
        return None
    if len(values) != 1:
        name = name or attribute_name(oid_der)
        raise SignatureInvalid(f"the signed attribute {name} has {len(values)} values, not one")
    return values[0]


@lru_cache(maxsize=256)
def digest_algorithm_name(algorithm_der: bytes) -> str:
    return str(algos.DigestAlgorithm.load(algorithm_der, strict=True)["algorithm"].native)


@lru_cache(maxsize=256)
def signature_algorithm_name(algorithm_der: bytes) -> str:
    return str(algos.SignedDigestAlgorithm.load(algorithm_der, strict=True)["algorithm"].native)


# -- the signer's certificate ------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFacts:
    """What verification needs from one certificate, worked out once per DER encoding."""

    certificate: x509.Certificate
    public_key: CertificatePublicKeyTypes
    der: bytes
    # The issuer and subject Names' content octets, as encoded in the certificate: compared byte
    # for byte with the SignerInfo's issuerAndSerialNumber, the ESS issuerSerial, a TSA name.
    issuer_contents: bytes
    subject_contents: bytes
    serial_number: int
    subject_key_identifier: bytes | None
    sha256: bytes

    @cached_property
    def subject_id(self) -> str | None:
        """The subject's single serialNumber attribute (e.g. "STAFF:N001"), else None. Read on
        first use: reading the subject Name raises ValueError when it does not parse."""
        serials = self.certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if len(serials) != 1:
            return None
        value = serials[0].value
        return value if isinstance(value, str) else value.decode("ascii", "replace")


@lru_cache(maxsize=4096)
def certificate_facts(der: bytes) -> CertificateFacts:
    certificate = x509.load_der_x509_certificate(der)
    tbs = asn1_x509.Certificate.load(der)["tbs_certificate"]
    try:
        ski: bytes | None = certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        ski = None
    return CertificateFacts(
        certificate=certificate,
        public_key=certificate.public_key(),
        der=der,
        issuer_contents=tbs["issuer"].contents,
        subject_contents=tbs["subject"].contents,
        serial_number=certificate.serial_number,
        subject_key_identifier=ski,
        sha256=hashlib.sha256(der).digest(),
    )


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


def find_signer(
    sid_der: bytes, candidates: Sequence[CertificateFacts], missing: str
) -> CertificateFacts:
    """The certificate the SignerInfo's sid names (RFC 5652 5.3); `missing` is the error."""
    sid = _signer_id(sid_der)
    for facts in candidates:
        if sid.subject_key_identifier is not None:
            if facts.subject_key_identifier == sid.subject_key_identifier:
                return facts
        elif (
            facts.serial_number == sid.serial_number
            and facts.issuer_contents == sid.issuer_contents
        ):
            return facts
    raise SignatureInvalid(missing)


# -- ESS signing-certificate(-v2) ---------------------------------------------------------------


@dataclass(frozen=True)
class _EssCertId:
    hash_name: str
    cert_hash: bytes
    issuer_contents: tuple[bytes, ...] | None  # directoryName entries of issuerSerial, if any
    serial_number: int | None


_ESS_HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1,  # ESS signing-certificate v1 only (a certificate hash, not a signature)
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def _ess_label(version: int) -> str:
    return "signing-certificate-v2" if version == 2 else "signing-certificate"


@lru_cache(maxsize=4096)
def _ess_cert_id(value_der: bytes, version: int) -> _EssCertId:
    """The first ESSCertID(v2) of a signing-certificate(-v2) value: the signer's (RFC 5035 5.4)."""
    if version == 2:
        certs = tsp.SigningCertificateV2.load(value_der, strict=True)["certs"]
    else:
        certs = tsp.SigningCertificate.load(value_der, strict=True)["certs"]
    if len(certs) == 0:
        raise SignatureInvalid(f"the {_ess_label(version)} attribute lists no certificate")
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


def check_signing_certificate(
    value: _der.Element, version: int, signer: CertificateFacts, whose: str
) -> None:
    """RFC 5035 (v2) / RFC 2634 (v1): the attribute's first ESS cert id identifies `signer`,
    by its hash (SHA-256/384/512; SHA-1 in v1 only) and, when present, its issuerSerial.
    `whose` names the signer certificate in the messages ("the signer certificate")."""
    cert_id = _ess_cert_id(value.encoded, version)
    if cert_id.hash_name == "sha256":
        expected = signer.sha256
    else:
        hash_function = _ESS_HASHES.get(cert_id.hash_name)
        if hash_function is None or (version == 2 and cert_id.hash_name == "sha1"):
            raise SignatureInvalid(f"unsupported {_ess_label(version)} hash {cert_id.hash_name}")
        expected = hash_function(signer.der).digest()
    if cert_id.cert_hash != expected:
        raise SignatureInvalid(f"{_ess_label(version)} does not match {whose}")
    if cert_id.issuer_contents is not None and (
        cert_id.serial_number != signer.serial_number
        or signer.issuer_contents not in cert_id.issuer_contents
    ):
        raise SignatureInvalid(f"{_ess_label(version)} issuerSerial does not match {whose}")


# -- the signature value -----------------------------------------------------------------------

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_ECDSA = {
    "sha256_ecdsa": ec.ECDSA(_HASHES["sha256"]),
    "sha384_ecdsa": ec.ECDSA(_HASHES["sha384"]),
    "sha512_ecdsa": ec.ECDSA(_HASHES["sha512"]),
}
_RSA_PKCS1 = {
    "sha256_rsa": _HASHES["sha256"],
    "sha384_rsa": _HASHES["sha384"],
    "sha512_rsa": _HASHES["sha512"],
}


def verify_signature(
    signed: SignedData, algorithm: str, digest_name: str, key: CertificatePublicKeyTypes
) -> bool:
    """RFC 5652 5.4/5.6: check the signature value over the signed attributes with `key`.

    ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512 (rsaEncryption as the signature algorithm
    takes the SignerInfo's digest algorithm, `digest_name`). False when `algorithm` is none of
    these or does not fit the key; raises `InvalidSignature` when the value does not verify.
    """
    # The signature covers the DER of the signed attributes as a SET OF (tag 0x31), not with
    # the [0] IMPLICIT tag (0xA0) they carry in the SignerInfo.
    attributes = signed.signed_attributes
    to_be_signed = b"\x31" + attributes.header[1:] + attributes.contents
    if isinstance(key, ec.EllipticCurvePublicKey):
        ecdsa = _ECDSA.get(algorithm)
        if ecdsa is None:
            return False
        key.verify(signed.signature, to_be_signed, ecdsa)
        return True
    if isinstance(key, rsa.RSAPublicKey):
        hash_algorithm = _RSA_PKCS1.get(algorithm)
        if hash_algorithm is None and algorithm == "rsassa_pkcs1v15":
            hash_algorithm = _HASHES.get(digest_name)
        if hash_algorithm is None:
            return False
        key.verify(signed.signature, to_be_signed, padding.PKCS1v15(), hash_algorithm)
        return True
    return False
