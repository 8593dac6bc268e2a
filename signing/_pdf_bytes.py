"""Byte-level facts about a signed PDF for `signing.pdf_validation`: byte ranges, timestamp
times, CRLs inside CMS, what follows the last revision, signature dictionaries no field holds.

Part of the checking half; imports no creation code.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pikepdf
from asn1crypto import cms, crl, parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.sign.validation import EmbeddedPdfSignature

DOCUMENT_TIMESTAMP = "document timestamp"
MALFORMED = "malformed ByteRange"
WHITESPACE = b" \t\r\n\x00\x0c"
HEX = re.compile(rb"[0-9A-Fa-f]*")


def trailing_bytes_problems(data: bytes) -> list[str]:
    """Step 7: only whitespace may follow the last %%EOF."""
    end = data.rfind(b"%%EOF") + len(b"%%EOF")
    trailing = data[end:]
    if trailing.strip(WHITESPACE):
        return [
            f"{len(trailing)} bytes follow the last %%EOF at offset {end}: no signature covers them"
        ]
    return []


def orphan_signature_problems(data: bytes, known: set[int]) -> list[str]:
    """Step 8: every object that is a signature dictionary is one of the fields' values."""
    problems = []
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            for obj in pdf.objects:
                if not isinstance(obj, pikepdf.Dictionary) or not obj.is_indirect:
                    continue
                is_signature = "/ByteRange" in obj or obj.get("/Type") in (
                    pikepdf.Name.Sig,
                    pikepdf.Name.DocTimeStamp,
                )
                if is_signature and obj.objgen[0] not in known:
                    problems.append(
                        f"signature dictionary object {obj.objgen[0]} {obj.objgen[1]} R is "
                        "not the value of any signature field: it was not checked"
                    )
    except pikepdf.PdfError as exc:
        problems.append(f"qpdf cannot read the file: {one_line(exc)}")
    return problems


def byte_range_problems(data: bytes, embedded: EmbeddedPdfSignature) -> list[str]:
    """Steps 1 and 2 on the bytes themselves, independently of pyHanko's coverage level."""
    raw = embedded.byte_range
    byte_range = list(raw) if isinstance(raw, generic.ArrayObject) else []
    if len(byte_range) != 4 or not all(isinstance(x, int) and x >= 0 for x in byte_range):
        return [f"{MALFORMED} {range_text(embedded)} is not four non-negative integers"]
    start1, length1, start2, length2 = (int(x) for x in byte_range)
    text = f"[{start1} {length1} {start2} {length2}]"
    if start1 != 0:
        return [f"{MALFORMED} {text} does not start at byte 0"]
    if not 0 < length1 < start2 or start2 + length2 > len(data):
        return [f"{MALFORMED} {text} does not fit in the file of {len(data)} bytes"]
    problems = []
    gap = data[length1:start2]
    hex_digits = gap[1:-1]
    if gap[:1] != b"<" or gap[-1:] != b">" or not HEX.fullmatch(hex_digits):
        problems.append(
            f"the unsigned gap [{length1}, {start2}) of ByteRange {text} is not one hex string: "
            "it holds bytes no signature covers"
        )
    elif bytes.fromhex((hex_digits + b"0" * (len(hex_digits) % 2)).decode()) != (
        embedded.pkcs7_content
    ):
        problems.append(
            f"the unsigned gap [{length1}, {start2}) of ByteRange {text} is not this "
            "signature's /Contents (signature wrapping)"
        )
    end = start2 + length2
    if not data[:end].rstrip(b"\r\n").endswith(b"%%EOF"):
        problems.append(f"ByteRange {text} ends at byte {end}, not at the end of a revision")
    return problems


def claimed_time(embedded: EmbeddedPdfSignature, kind: str) -> datetime | None:
    """The genTime of the signature's own timestamp token, not yet verified (step 4 does)."""
    try:
        if kind == DOCUMENT_TIMESTAMP:
            info = embedded.signed_data["encap_content_info"]["content"].parsed
            return utc(info["gen_time"].native)
        for attribute in embedded.signer_info["unsigned_attrs"] or ():
            if attribute["type"].native == "signature_time_stamp_token":
                token = attribute["values"][0]["content"]
                info = token["encap_content_info"]["content"].parsed
                return utc(info["gen_time"].native)
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    return None


def imprint_algorithm(token: Any) -> str:
    """The hash algorithm of a timestamp token's message imprint ("" when unreadable)."""
    try:
        info = token["content"]["encap_content_info"]["content"].parsed
        return str(info["message_imprint"]["hash_algorithm"]["algorithm"].native)
    except (KeyError, ValueError, TypeError, AttributeError):
        return ""


def utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


def cms_crls(signed_data: cms.SignedData) -> list[crl.CertificateList]:
    """CRLs carried in the CMS itself: SignedData crls and Adobe's revocation-info attribute."""
    found: list[crl.CertificateList] = []
    for choice in signed_data["crls"] or ():
        if choice.name == "crl":
            found.append(choice.chosen)
    for signer_info in signed_data["signer_infos"]:
        for attribute in signer_info["signed_attrs"] or ():
            if attribute["type"].native == "adobe_revocation_info_archival":
                for value in attribute["values"]:
                    found.extend(value["crl"] or ())
    return found


def der_and_padding(contents: bytes) -> tuple[bytes, bytes]:
    """The DER element at the start of /Contents, and whatever non-zero bytes follow it."""
    _, _, _, header, body, _ = parser.parse(contents)
    der = header + body
    return der, contents[len(der) :].strip(b"\x00")


def signer_name(certificate: asn1_x509.Certificate) -> str:
    """Common name (and title, the role, when the certificate has one)."""
    subject = certificate.subject.native
    name = str(subject.get("common_name", certificate.subject.human_friendly))
    return f"{name} ({subject['title']})" if subject.get("title") else name


def signer_name_of(name: Any) -> str:
    return str(name.native.get("common_name", name.human_friendly))


def serial_attribute(certificate: asn1_x509.Certificate) -> str:
    value = certificate.subject.native.get("serial_number", "")
    return str(value)


def range_text(embedded: EmbeddedPdfSignature | None) -> str:
    raw = embedded.byte_range if embedded is not None else None
    if isinstance(raw, generic.NullObject) or raw is None:
        return "null"
    if not isinstance(raw, generic.ArrayObject):
        return type(raw).__name__
    return "[" + " ".join(str(x) for x in raw) + "]"


def to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def to_crypto(certificate: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(certificate.dump())


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
