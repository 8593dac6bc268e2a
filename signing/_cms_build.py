"""The parts of a CMS SignedData both creators write: CAdES-BES signatures (`signing.cms`) and
RFC 3161 timestamp tokens (`signing.tsa`).

Creation half: the checkers (`signing.validation`, `signing.tsp_validation`, `signing._cms_parse`)
import nothing from here. asn1crypto builds the parts that do not change, once per credential;
`signer_info` and `content_info` join them with the few bytes that change per signature, writing
the DER element headers with `signing._der.tlv`.
"""

from __future__ import annotations

import hashlib

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from signing._der import CONTEXT_0_CONSTRUCTED_BYTE, OCTET_STRING_BYTE, SEQUENCE_BYTE, tlv
from signing.errors import SigningError

_SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey  # as `signing.pki.Credential`
_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(_SHA256)
_CONTENT_TYPE_SIGNED_DATA = cms.ContentType("signed_data").dump()


def sha256_algorithm() -> algos.DigestAlgorithm:
    """RFC 5754: SHA-2 AlgorithmIdentifiers SHOULD be generated with absent parameters."""
    return algos.DigestAlgorithm({"algorithm": "sha256", "parameters": None})


def signature_algorithm_der(key: _SigningKey) -> bytes:
    """The SignedDigestAlgorithm we sign with: ECDSA or RSA PKCS#1 v1.5, with SHA-256 (DER)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        name = "sha256_ecdsa"
    elif isinstance(key, rsa.RSAPrivateKey):
        name = "sha256_rsa"
    else:  # pragma: no cover - the Credential type admits nothing else
        raise SigningError(f"unsupported key type {type(key).__name__}")
    return bytes(algos.SignedDigestAlgorithm({"algorithm": name}).dump())


def sign_sha256(key: _SigningKey, data: bytes) -> bytes:
    """The signature value over `data` (RFC 5652 5.5), by `signature_algorithm_der(key)`."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, _ECDSA_SHA256)
    return key.sign(data, padding.PKCS1v15(), _SHA256)


def signing_certificate_v2(certificate: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
    """ESS signing-certificate-v2 (RFC 5035) naming `certificate`: its SHA-256 and issuerSerial."""
    return tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    # hashAlgorithm DEFAULT sha256: asn1crypto leaves the default out (DER).
                    "hash_algorithm": {"algorithm": "sha256"},
                    "cert_hash": hashlib.sha256(certificate.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName({"directory_name": certificate.issuer})],
                        "serial_number": certificate.serial_number,
                    },
                }
            ]
        }
    )


def signer_info_head(certificate: asn1_x509.Certificate) -> bytes:
    """SignerInfo version 1, issuerAndSerialNumber of `certificate`, digestAlgorithm SHA-256."""
    sid = cms.SignerIdentifier(
        {
            "issuer_and_serial_number": {
                "issuer": certificate.issuer,
                "serial_number": certificate.serial_number,
            }
        }
    )
    return bytes(cms.CMSVersion("v1").dump() + sid.dump() + sha256_algorithm().dump())


def signer_info(
    head: bytes, signed_attributes: bytes, signature_algorithm: bytes, signature: bytes
) -> bytes:
    """SignerInfo: `head` (`signer_info_head`), [0] signedAttrs (their content octets),
    signatureAlgorithm (DER), signature."""
    return tlv(
        SEQUENCE_BYTE,
        head
        + tlv(CONTEXT_0_CONSTRUCTED_BYTE, signed_attributes)
        + signature_algorithm
        + tlv(OCTET_STRING_BYTE, signature),
    )


def content_info(signed_data_contents: bytes) -> bytes:
    """ContentInfo of id-signedData around the content octets of a SignedData."""
    return tlv(
        SEQUENCE_BYTE,
        _CONTENT_TYPE_SIGNED_DATA
        + tlv(CONTEXT_0_CONSTRUCTED_BYTE, tlv(SEQUENCE_BYTE, signed_data_contents)),
    )
