"""Signed PDF/A-3b samples built at test time: station PKI, local TSA, evidence, PAdES signatures.

The shape follows what `services/forms.py` produces (fpdf2 PDF/A-3B with an embedded CJK font, the
donation's evidence as associated files, pyHanko PAdES signatures, the last one B-LTA with a
document timestamp from the station's TSA), built here directly so the verifier's tests do not
wait for the form renderer. Nothing is checked in: keys and certificates are made per session
with the real clock (poppler's pdfsig checks certificates at the current time).

The evidence attachments follow the convention `documents.pdf_evidence` documents::

    event-<n>.json        canonical event body (RFC 8785 bytes), AFRelationship Source
    event-<n>.p7s         its detached CMS signature (CAdES-BES), Supplement
    event-<n>.proof.json  event_hash, batch_root, leaf_index, batch_size, inclusion_path, token
    batch-<k>.tsr         the batch's RFC 3161 token over its Merkle root, Supplement
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import rfc8785
from asn1crypto import crl as asn1_crl
from asn1crypto import keys, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fpdf import FPDF
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers, timestamps
from pyhanko_certvalidator import ValidationContext, registry

from documents.forms.fonts import font_location
from ledger.merkle import inclusion_proof, leaf_hash, root_from_leaves
from signing.cms import sign_detached
from signing.pki import Credential, StationPKI
from signing.tsa import TimestampAuthority

CJK_FONT, CJK_FACE = font_location()  # Noto Sans CJK SC: the pinned PyPI copy or Debian's
DONATION_NO = "9000626123456"
DONOR_NAME = "张𠀋华"  # 𠀋 (U+2000B) is outside GB2312 and the BMP
ID_MASKED = "330106" + "*" * 12
TOPIC = "ledger.donation:Donation"

_registry: Any = registry  # pyHanko's certificate store is not annotated
logging.getLogger("pyhanko").setLevel(logging.ERROR)  # "fetching is not allowed" on every sign


@dataclass
class SampleStation:
    """A station PKI with staff, a TSA and its CRL, made at test time."""

    pki: StationPKI
    tsa_credential: Credential
    staff: dict[str, Credential]
    now: datetime
    _tsa: TimestampAuthority | None = field(default=None, repr=False)

    @property
    def tsa(self) -> TimestampAuthority:
        if self._tsa is None:
            self._tsa = TimestampAuthority(self.tsa_credential)
        return self._tsa

    @property
    def root(self) -> x509.Certificate:
        return self.pki.root_certificate

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def crl_der(self) -> bytes:
        return self.pki.crl(datetime.now(UTC)).public_bytes(serialization.Encoding.DER)


def make_station(directory: Path, name: str = "Station Nord") -> SampleStation:
    now = datetime.now(UTC) - timedelta(minutes=5)
    pki = StationPKI.create(directory, name, b"sample passphrase", now)
    staff = {
        "N001": pki.issue_staff("N001", "Li Na", "nurse", now),
        "P001": pki.issue_staff("P001", "Wang Fang", "physician", now),
    }
    return SampleStation(pki, pki.issue_tsa(f"{name} TSA", now), staff, now)


# -- evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    mime: str
    relationship: str  # AFRelationship: Source, Supplement, Data, ...


def event_body(
    aggregate_id: str, version: int, event_type: str, actor: str, prev: str, **values: Any
) -> dict[str, Any]:
    return {
        "topic": f"{TOPIC}.{event_type}",
        "aggregate_id": aggregate_id,
        "version": version,
        "timestamp": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "actor_role": "nurse",
        "prev_hash": prev,
        "rule_set": "",
        "rule_outcomes": [],
        **values,
    }


def donation_events(donation_no: str = DONATION_NO, name: str = DONOR_NAME) -> list[dict[str, Any]]:
    """Three events of one donation, each linked to the previous one (aggregate chain)."""
    aggregate = str(uuid.uuid4())
    specs: list[tuple[str, dict[str, Any]]] = [
        ("DonorRegistered", {"name": name, "id_number_masked": ID_MASKED, "sex": "F"}),
        ("GeneralExamRecorded", {"weight_kg": 58.5, "temperature_c": 36.6, "result": "pass"}),
        ("DonationNumberAssigned", {"donation_no": donation_no, "label_set_printed": True}),
    ]
    events: list[dict[str, Any]] = []
    prev = "0" * 64
    for version, (event_type, values) in enumerate(specs, start=1):
        body = event_body(aggregate, version, event_type, "STAFF:N001", prev, **values)
        events.append(body)
        prev = hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    return events


def evidence_attachments(
    station: SampleStation, events: Sequence[dict[str, Any]] | None = None
) -> list[Attachment]:
    """Each event's canonical bytes, CMS signature and inclusion proof, and the batch token."""
    bodies = [rfc8785.dumps(body) for body in (events or donation_events())]
    signer = station.staff["N001"]
    hashes = [hashlib.sha256(body).digest() for body in bodies]
    leaves = [leaf_hash(digest) for digest in hashes]
    root = root_from_leaves(leaves)
    token = station.tsa.stamp(root)
    out: list[Attachment] = []
    for index, body in enumerate(bodies, start=1):
        signing_time = datetime.fromisoformat(json.loads(body)["timestamp"])
        proof = {
            "event": f"event-{index}.json",
            "event_hash": hashes[index - 1].hex(),
            "batch_root": root.hex(),
            "leaf_index": index - 1,
            "batch_size": len(bodies),
            "inclusion_path": [h.hex() for h in inclusion_proof(leaves, index - 1)],
            "token": "batch-1.tsr",
        }
        out += [
            Attachment(f"event-{index}.json", body, "application/json", "Source"),
            Attachment(
                f"event-{index}.p7s",
                sign_detached(body, signer, signing_time),
                "application/pkcs7-signature",
                "Supplement",
            ),
            Attachment(
                f"event-{index}.proof.json",
                json.dumps(proof, indent=1).encode(),
                "application/json",
                "Supplement",
            ),
        ]
    out.append(Attachment("batch-1.tsr", token, "application/timestamp-reply", "Supplement"))
    return out


# -- the unsigned form ------------------------------------------------------------------------


def form_lines(donation_no: str = DONATION_NO, name: str = DONOR_NAME) -> list[str]:
    return [
        "成分血采集记录表  ZJBC-F03 v2",
        f"献血编号 {donation_no}",
        f"姓名 {name}    证件号码 {ID_MASKED}",
        "体重 58.5 kg    体温 36.6 ℃    结果 合格",
        "采集量 250 ml",
    ]


@cache
def _rendered(lines: tuple[str, ...], attachments: tuple[Attachment, ...]) -> bytes:
    pdf = FPDF(enforce_compliance="PDF/A-3B")
    pdf.set_title("成分血采集记录表")
    pdf.add_font("noto", fname=str(CJK_FONT), collection_font_number=CJK_FACE)
    pdf.add_page()
    pdf.set_font("noto", size=12)
    for line in lines:
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT", h=9)
    for item in attachments:
        pdf.embed_file(
            bytes=item.data,
            basename=item.name,
            mime_type=item.mime,
            associated_file_relationship=item.relationship,
        )
    return bytes(pdf.output())


def unsigned_form(
    lines: Sequence[str] | None = None, attachments: Sequence[Attachment] = ()
) -> bytes:
    """A one-page PDF/A-3B form in Noto Sans CJK with the attachments as associated files."""
    return _rendered(tuple(lines or form_lines()), tuple(attachments))


# -- signing ----------------------------------------------------------------------------------


class InProcessTimeStamper(timestamps.TimeStamper):
    """pyHanko's TimeStamper answered by the station's TSA in this process."""

    def __init__(self, authority: TimestampAuthority) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._authority = authority

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(self._authority.respond(req.dump()))


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def pyhanko_signer(credential: Credential) -> signers.SimpleSigner:
    key = credential.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return signers.SimpleSigner(
        signing_cert=_asn1(credential.certificate),
        signing_key=keys.PrivateKeyInfo.load(key),
        cert_registry=_registry.SimpleCertificateStore.from_certs(
            [_asn1(c) for c in credential.chain]
        ),
    )


def validation_context(station: SampleStation) -> ValidationContext:
    """What the signer embeds in the DSS: the chain and the issuing CA's CRL (no fetching)."""
    return ValidationContext(
        trust_roots=[_asn1(station.root)],
        other_certs=[_asn1(station.pki.issuing_certificate)],
        crls=[asn1_crl.CertificateList.load(station.crl_der())],
        allow_fetching=False,
    )


def sign_pdf(
    pdf: bytes,
    station: SampleStation,
    field_name: str,
    *,
    credential: Credential | None = None,
    certify: bool = False,
    permission: fields.MDPPerm = fields.MDPPerm.FILL_FORMS,
    lta: bool = False,
    timestamp: bool = True,
    revocation_info: bool = True,
    box: tuple[int, int, int, int] | None = None,
    stamp_text: str = "",
    authority: TimestampAuthority | None = None,
) -> bytes:
    """One PAdES signature on `pdf` in a new field: B-T (B-B without `timestamp`), with the DSS
    (chain and CRL) unless `revocation_info` is false, or B-LTA with `lta`."""
    credential = credential or station.staff["N001"]
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=revocation_info,
        validation_context=validation_context(station) if revocation_info else None,
        use_pades_lta=lta,
        certify=certify,
        docmdp_permissions=permission,
    )
    appearance = None
    if stamp_text:
        from pyhanko.stamp import TextStampStyle

        appearance = TextStampStyle(stamp_text=stamp_text)
    signer = signers.PdfSigner(
        meta,
        pyhanko_signer(credential),
        timestamper=InProcessTimeStamper(authority or station.tsa) if timestamp else None,
        stamp_style=appearance,
        new_field_spec=fields.SigFieldSpec(field_name, box=box),
    )
    out = signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), in_place=False)
    return bytes(out.getvalue())


def genuine_form(station: SampleStation, base: bytes | None = None) -> bytes:
    """The reference shape: certified by the nurse (P2), approved by the physician, B-LTA."""
    if base is None:
        base = unsigned_form(attachments=evidence_attachments(station))
    first = sign_pdf(base, station, "Nurse", certify=True)
    return sign_pdf(first, station, "Physician", credential=station.staff["P001"], lta=True)


def incremental_update(pdf: bytes, change: Callable[[Any], None]) -> bytes:
    """Append one incremental update made by `change` (pyHanko's writer, as an attacker would)."""
    writer: Any = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
