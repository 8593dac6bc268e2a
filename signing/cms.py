"""Creating detached CMS SignedData signatures (RFC 5652) with CAdES-BES signed attributes.

The signature is a DER ContentInfo(SignedData) without eContent; digest SHA-256; signed attributes
content-type (id-data), message-digest, signing-time and ESS signing-certificate-v2 (RFC 5035);
the certificates are the signer's and its chain; ECDSA with SHA-256, or RSA PKCS#1 v1.5 with
SHA-256.

The checking half lives in `signing.validation` and imports nothing from here.
"""

from __future__ import annotations

import hashlib
import weakref
from datetime import UTC, datetime

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization

from signing import _cms_build as _build
from signing._der import OCTET_STRING_BYTE, SEQUENCE_BYTE, SET_BYTE, tlv
from signing.errors import SigningError
from signing.pki import Credential

__all__ = ["CmsSigner", "sign_detached"]

# RFC 5652 11.3: signing times from 1950 through 2049 are UTCTime, others GeneralizedTime.
_UTC_TIME_YEARS = range(1950, 2050)


def _attribute(type_name: str, value: core.Asn1Value) -> bytes:
    return cms.CMSAttribute({"type": type_name, "values": [value]}).dump()  # type: ignore[no-any-return]


class CmsSigner:
    """Signs data for one credential; the parts that do not change are encoded once.

    asn1crypto builds every structure, but only here in the constructor: dumping a SignedData
    built from asn1crypto objects re-serialises every nested object, certificates included, and
    costs about 7 ms per signature. `sign` therefore joins the pre-encoded DER parts with the few
    bytes that change per call (digest, time, signature value), writing the DER element headers
    by hand (`signing._der.tlv`, `signing._cms_build`); the unit tests check that the result
    equals asn1crypto's own encoding of the same structure.
    """

    def __init__(self, credential: Credential) -> None:
        key = credential.private_key
        certificates = [
            asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
            for cert in (credential.certificate, *credential.chain)
        ]
        signer = certificates[0]
        self._signature_algorithm = _build.signature_algorithm_der(key)
        if key.public_key() != credential.certificate.public_key():
            raise SigningError("the credential's private key does not match its certificate")
        self._key = key

        self._constant_attributes = (
            _attribute("content_type", cms.ContentType("data")),
            _attribute("signing_certificate_v2", _build.signing_certificate_v2(signer)),
        )
        self._message_digest_type = cms.CMSAttributeType("message_digest").dump()
        self._signing_time_type = cms.CMSAttributeType("signing_time").dump()

        # SignerInfo: version, sid, digestAlgorithm | [0] signedAttrs | signatureAlgorithm, sig.
        self._signer_info_head = _build.signer_info_head(signer)
        # SignedData: version, digestAlgorithms, encapContentInfo, [0] certificates | signerInfos.
        self._signed_data_head = (
            cms.CMSVersion("v1").dump()
            + cms.DigestAlgorithms([_build.sha256_algorithm()]).dump()
            + cms.EncapsulatedContentInfo({"content_type": "data"}).dump()
            + cms.CertificateSet(
                [cms.CertificateChoices({"certificate": cert}) for cert in certificates],
                implicit=0,
            ).dump()
        )

    def sign(self, data: bytes, signing_time: datetime) -> bytes:
        """Return the DER ContentInfo(SignedData) of a detached signature over `data`."""
        signed_attributes = self._signed_attributes(hashlib.sha256(data).digest(), signing_time)
        # RFC 5652 5.4: the signature covers the attributes encoded as an explicit SET OF.
        signature = _build.sign_sha256(self._key, tlv(SET_BYTE, signed_attributes))
        signer_info = _build.signer_info(
            self._signer_info_head, signed_attributes, self._signature_algorithm, signature
        )
        return _build.content_info(self._signed_data_head + tlv(SET_BYTE, signer_info))

    def _signed_attributes(self, digest: bytes, signing_time: datetime) -> bytes:
        """The content octets of the signed attributes, a DER SET OF: sorted encodings."""
        if signing_time.tzinfo is None or signing_time.utcoffset() is None:
            raise ValueError(f"signing_time must be timezone-aware, got {signing_time!r}")
        moment = signing_time.astimezone(UTC).replace(microsecond=0)
        time_value = (
            core.UTCTime(moment) if moment.year in _UTC_TIME_YEARS else core.GeneralizedTime(moment)
        )
        message_digest = tlv(
            SEQUENCE_BYTE,
            self._message_digest_type + tlv(SET_BYTE, tlv(OCTET_STRING_BYTE, digest)),
        )
        signing_time_attribute = tlv(
            SEQUENCE_BYTE, self._signing_time_type + tlv(SET_BYTE, time_value.dump())
        )
        return b"".join(
            sorted((*self._constant_attributes, message_digest, signing_time_attribute))
        )


# One signer per live credential; weak keys, so a dropped donor credential drops its signer too.
# The signer holds the private key but not the Credential, or the entry would never be freed.
_signers: weakref.WeakKeyDictionary[Credential, CmsSigner] = weakref.WeakKeyDictionary()


def sign_detached(data: bytes, credential: Credential, signing_time: datetime) -> bytes:
    """Detached CAdES-BES signature of `data` by `credential`, as DER ContentInfo(SignedData).

    The signing-time attribute is `signing_time` in UTC, truncated to the second (UTCTime).
    """
    signer = _signers.get(credential)
    if signer is None:
        signer = CmsSigner(credential)
        _signers[credential] = signer
    return signer.sign(data, signing_time)
