"""A slow, plain asn1crypto builder of detached SignedData, for tests only.

It builds every structure with asn1crypto's typed classes, so it serves two purposes: an
independent encoding to compare `signing.cms` with byte for byte, and a way to make signatures
that `signing.cms` refuses to make (no ESS attribute, a wrong one, extra attributes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from signing.pki import Credential


def asn1_certificate(certificate: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def ess_attribute(certificate: x509.Certificate) -> Any:
    cert = asn1_certificate(certificate)
    value = tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "cert_hash": hashlib.sha256(cert.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName({"directory_name": cert.issuer})],
                        "serial_number": cert.serial_number,
                    },
                }
            ]
        }
    )
    return cms.CMSAttribute({"type": "signing_certificate_v2", "values": [value]})


def signed_attributes(
    data: bytes,
    signing_time: datetime,
    *,
    ess_certificate: x509.Certificate | None,
    content_type: str = "data",
) -> list[Any]:
    """content-type, message-digest, signing-time and (unless None) ESS for `ess_certificate`."""
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(data).digest()]}),
        cms.CMSAttribute(
            {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]}
        ),
    ]
    if ess_certificate is not None:
        attributes.append(ess_attribute(ess_certificate))
    return attributes


def sign_attributes(credential: Credential, attributes: Sequence[Any]) -> bytes:
    to_be_signed = cms.CMSAttributes(list(attributes)).dump()
    key = credential.private_key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(to_be_signed, ec.ECDSA(hashes.SHA256()))
    return key.sign(to_be_signed, padding.PKCS1v15(), hashes.SHA256())


def sha256_algorithm() -> Any:
    return algos.DigestAlgorithm({"algorithm": "sha256", "parameters": None})


def signer_info(
    credential: Credential,
    attributes: Sequence[Any],
    *,
    signature: bytes | None = None,
    signer: x509.Certificate | None = None,
) -> Any:
    """A version 1 SignerInfo over `attributes`, signed by `credential` unless `signature` given;
    `signer` names the certificate in it (default: the credential's)."""
    signer_cert = asn1_certificate(signer or credential.certificate)
    if signature is None:
        signature = sign_attributes(credential, attributes)
    algorithm = (
        "sha256_ecdsa"
        if isinstance(credential.private_key, ec.EllipticCurvePrivateKey)
        else "sha256_rsa"
    )
    return cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": signer_cert.issuer,
                        "serial_number": signer_cert.serial_number,
                    }
                }
            ),
            "digest_algorithm": sha256_algorithm(),
            "signed_attrs": cms.CMSAttributes(list(attributes)),
            "signature_algorithm": {"algorithm": algorithm},
            "signature": signature,
        }
    )


def build_signature(
    credential: Credential,
    attributes: Sequence[Any],
    *,
    signature: bytes | None = None,
    certificates: Sequence[x509.Certificate] | None = None,
    signer: x509.Certificate | None = None,
) -> bytes:
    """DER ContentInfo(SignedData), detached, signed by `credential` unless `signature` given.

    `signer` names the certificate in the SignerInfo (default: the credential's).
    """
    if certificates is None:
        certificates = (credential.certificate, *credential.chain)
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [sha256_algorithm()],
            "encap_content_info": {"content_type": "data"},
            "certificates": [asn1_certificate(cert) for cert in certificates],
            "signer_infos": [
                signer_info(credential, attributes, signature=signature, signer=signer)
            ],
        }
    )
    content_info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return bytes(content_info.dump())
