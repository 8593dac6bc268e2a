"""Helpers for the timestamp tests (no tests here): a slow, plain asn1crypto builder of
timestamp tokens and responses, and TSA credentials made by hand.

The builder serves two purposes, like `reference_cms`: an independent encoding to compare
`signing.tsa` with byte for byte, and a way to make validly signed tokens that `signing.tsa`
refuses to make (another imprint algorithm, no ESS attribute, a wrong content type, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.pki import Credential, StationPKI
from signing.tsa import DEFAULT_POLICY
from tests.unit.signing import reference_cms
from tests.unit.signing.conftest import NOW, PASSPHRASE
from tests.unit.signing.reference_cms import asn1_certificate as asn1_certificate
from tests.unit.signing.reference_cms import sha256_algorithm, signer_info
from tests.unit.signing.reference_cms import sign_attributes as sign_attributes

#: The ESS signing-certificate-v2 attribute naming a certificate, as `reference_cms` builds it.
ess_v2 = reference_cms.ess_attribute


def tst_info(
    digest: bytes,
    *,
    serial_number: int = 1,
    gen_time: datetime = NOW,
    nonce: int | None = None,
    policy: str = DEFAULT_POLICY,
    hash_algorithm: str = "sha256",
    tsa: x509.Certificate | None = None,
    version: str = "v1",
) -> Any:
    fields: dict[str, Any] = {
        "version": version,
        "policy": policy,
        "message_imprint": {
            "hash_algorithm": {"algorithm": hash_algorithm, "parameters": None},
            "hashed_message": digest,
        },
        "serial_number": serial_number,
        "gen_time": gen_time,
        "accuracy": {"seconds": 1},
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if tsa is not None:
        fields["tsa"] = asn1_x509.GeneralName(
            {"directory_name": asn1_certificate(tsa)["tbs_certificate"]["subject"]}
        )
    return tsp.TSTInfo(fields)


def ess_v1(certificate: x509.Certificate) -> Any:
    cert = asn1_certificate(certificate)
    value = tsp.SigningCertificate(
        {"certs": [{"cert_hash": hashlib.sha1(cert.dump()).digest()}]}  # RFC 2634: SHA-1
    )
    return cms.CMSAttribute({"type": "signing_certificate", "values": [value]})


def signed_attributes(
    tst: Any, *, ess: Any | None, content_type: str = "tst_info", digest: bytes | None = None
) -> list[Any]:
    """content-type, message-digest (of `tst` unless `digest`) and `ess` unless None."""
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
        cms.CMSAttribute(
            {
                "type": "message_digest",
                "values": [digest or hashlib.sha256(tst.dump()).digest()],
            }
        ),
    ]
    if ess is not None:
        attributes.append(ess)
    return attributes


def build_token(
    credential: Credential,
    tst: Any,
    attributes: Sequence[Any],
    *,
    signature: bytes | None = None,
    certificates: Sequence[x509.Certificate] | None = None,
    e_content_type: str = "tst_info",
) -> bytes:
    """DER TimeStampToken signed by `credential` (unless `signature`), every part by asn1crypto.

    `certificates` defaults to the credential's certificate and its non-root CAs.
    """
    if certificates is None:
        certificates = [credential.certificate] + [
            c for c in credential.chain if c.subject != c.issuer
        ]
    signed_data: dict[str, Any] = {
        "version": "v3",
        "digest_algorithms": [sha256_algorithm()],
        "encap_content_info": {
            "content_type": e_content_type,
            "content": cms.ParsableOctetString(tst.dump()),
        },
        "signer_infos": [signer_info(credential, attributes, signature=signature)],
    }
    if certificates:
        signed_data["certificates"] = [asn1_certificate(c) for c in certificates]
    content_info = cms.ContentInfo(
        {"content_type": "signed_data", "content": cms.SignedData(signed_data)}
    )
    return bytes(content_info.dump())


def granted(token_der: bytes) -> bytes:
    """A TimeStampResp with status granted around `token_der`."""
    return bytes(
        tsp.TimeStampResp(
            {"status": {"status": "granted"}, "time_stamp_token": cms.ContentInfo.load(token_der)}
        ).dump()
    )


def hand_made_tsa(
    pki: StationPKI,
    *,
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = (
        ExtendedKeyUsageOID.TIME_STAMPING,
    ),
    critical: bool = True,
    not_before: datetime = NOW,
) -> Credential:
    """A TSA credential issued by `pki`'s issuing CA with the given extendedKeyUsage."""
    issuing_key = serialization.load_pem_private_key(
        (pki.directory / "issuing.key.pem").read_bytes(), PASSPHRASE
    )
    assert isinstance(issuing_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, pki.station_name),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Hand-made TSA"),
                ]
            )
        )
        .issuer_name(pki.issuing_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before.replace(microsecond=0))
        .not_valid_after(not_before.replace(microsecond=0) + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=critical
        )
    certificate = builder.sign(issuing_key, hashes.SHA256())
    return Credential(certificate, key, (pki.issuing_certificate, pki.root_certificate))
