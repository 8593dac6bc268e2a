"""PAdES signatures on PDF forms with pyHanko: the creation half only (checking lives elsewhere).

Each signer of a form signs in turn, every signature in its own incremental update: a new
signature field on the page with a visible appearance (printed name, role, meaning of the
signature and the trusted time, 21 CFR 11.50), a CMS signature with the signer's certificate
(PAdES, ``ETSI.CAdES.detached``) and a signature timestamp from the TSA (B-T). The last update,
made by `PadesSigner.add_lta`, holds a DSS (every certificate and CRL a verifier needs offline)
and a document timestamp over it: B-LTA.

PDF/A survives signing because the appearances use no font of their own: `EmbeddedFontEngine`
writes text with the Type0 font the page already embeds (the form renderer prints every
character of an appearance on the page too), so no unembedded standard font and no second copy
of a CJK font enters the file.

pyHanko's own timestamp clients need ``requests`` or ``aiohttp``; `TimeStamperAdapter` instead
hands pyHanko the tokens of `signing.timestamps.TimeStamper` (our RFC 3161 client: failover
across URLs, and every token checked before use).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from asn1crypto import cms, keys
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.font.api import FontEngine, FontEngineFactory, ShapeResult
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign import timestamps as pyhanko_timestamps
from pyhanko.sign.general import SigningError as PdfSigningError
from pyhanko.sign.signers.constants import ESIC_EXTENSION_1
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.errors import SigningError
from signing.pki import Credential
from signing.timestamps import TimeStamper

__all__ = [
    "DOCUMENT_TIMESTAMP_FIELD",
    "EmbeddedFontEngine",
    "EmbeddedFontFactory",
    "PadesError",
    "PadesSigner",
    "SignatureSlot",
    "TimeStamperAdapter",
]

DOCUMENT_TIMESTAMP_FIELD = "DocTimeStamp"
#: Room for a signature container, in hex digits (12 KiB of DER: three EC certificates, the
#: signed attributes and a TSA token with its chain take about 5 KiB).
SIGNATURE_RESERVE = 24 * 1024
DIGEST = "sha256"


class PadesError(SigningError):
    """A form cannot be signed: a bad slot, a character the page font lacks, a TSA failure."""


@dataclass(frozen=True)
class SignatureSlot:
    """One signer's signature on a form.

    `box` is in PDF user space (points, origin at the bottom left of the page): x1, y1, x2, y2.
    `appearance` is the text of the visible signature, one line per item; every character of
    it must also be printed on the page in the font `EmbeddedFontEngine` reuses.
    """

    field_name: str
    page: int
    box: tuple[float, float, float, float]
    credential: Credential
    name: str  # printed name (/Name)
    reason: str  # the meaning of the signature (/Reason)
    location: str
    appearance: tuple[str, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.field_name):
            raise PadesError(f"bad signature field name {self.field_name!r}")
        x1, y1, x2, y2 = self.box
        if x2 - x1 < 10 or y2 - y1 < 10:
            raise PadesError(f"signature box of {self.field_name} is too small: {self.box}")
        if not self.appearance:
            raise PadesError(f"signature {self.field_name} has no appearance text")


# -- timestamps ---------------------------------------------------------------------------------


class TimeStamperAdapter(pyhanko_timestamps.TimeStamper):
    """pyHanko's TimeStamper interface over our checked RFC 3161 client (SHA-256 only).

    Keeps the certificates of every token it hands out (`tsa_certificates`), so that the DSS can
    carry the TSA chain whoever the TSA is. One instance per process: pyHanko asks it once for a
    dummy token to size the signature container and caches that.
    """

    def __init__(self, timestamper: TimeStamper) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._timestamper = timestamper
        self._lock = threading.Lock()
        self._tsa_certs: dict[bytes, asn1_x509.Certificate] = {}

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        if md_algorithm != DIGEST:
            raise PadesError(f"the ledger's TSA client stamps SHA-256 digests, not {md_algorithm}")
        token = self._timestamper.timestamp(message_digest)
        content_info = cms.ContentInfo.load(token.der)
        with self._lock:
            for choice in content_info["content"]["certificates"] or ():
                if choice.name == "certificate":
                    cert = choice.chosen
                    self._tsa_certs.setdefault(cert.sha256, cert)
        return content_info

    @property
    def tsa_certificates(self) -> list[asn1_x509.Certificate]:
        with self._lock:
            return list(self._tsa_certs.values())


# -- appearance text in the page's own embedded font --------------------------------------------

_HEX = re.compile(rb"<([0-9A-Fa-f]+)>")


def _cmap_sections(data: bytes, kind: bytes) -> Iterable[bytes]:
    for match in re.finditer(rb"begin" + kind + rb"(.*?)end" + kind, data, re.S):
        yield match.group(1)


def _to_unicode(data: bytes) -> dict[str, int]:
    """Unicode text -> character code, from a ToUnicode CMap (bfchar and bfrange)."""
    codes: dict[str, int] = {}
    for section in _cmap_sections(data, b"bfchar"):
        pairs = _HEX.findall(section)
        for code, text in zip(pairs[::2], pairs[1::2], strict=False):
            codes.setdefault(bytes.fromhex(text.decode()).decode("utf-16-be"), int(code, 16))
    for section in _cmap_sections(data, b"bfrange"):
        for line in section.splitlines():
            parts = _HEX.findall(line)
            if len(parts) < 3 or b"[" in line:
                continue  # array destinations: not written by our renderer
            low, high, start = int(parts[0], 16), int(parts[1], 16), parts[2]
            first = bytes.fromhex(start.decode()).decode("utf-16-be")
            for offset in range(high - low + 1):
                codes.setdefault(chr(ord(first[-1]) + offset), low + offset)
    return codes


def _code_to_cid(data: bytes) -> dict[int, int]:
    """Character code -> CID, from an embedded encoding CMap (cidchar and cidrange)."""
    cids: dict[int, int] = {}
    for section in _cmap_sections(data, b"cidchar"):
        for code, cid in re.findall(rb"<([0-9A-Fa-f]+)>\s+(\d+)", section):
            cids[int(code, 16)] = int(cid)
    for section in _cmap_sections(data, b"cidrange"):
        for low, high, cid in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s+(\d+)", section):
            for offset in range(int(high, 16) - int(low, 16) + 1):
                cids[int(low, 16) + offset] = int(cid) + offset
    return cids


def _widths(cid_font: Any) -> tuple[dict[int, float], float]:
    """CID -> glyph width (1/1000 em) from /W, and /DW."""
    default = float(cid_font.get("/DW", 1000))
    widths: dict[int, float] = {}
    items = list(cid_font.get("/W", []))
    i = 0
    while i < len(items):
        first = int(items[i])
        nxt = items[i + 1]
        if isinstance(nxt, generic.ArrayObject | list):
            for offset, width in enumerate(nxt):
                widths[first + offset] = float(width)
            i += 2
        else:
            for cid in range(first, int(nxt) + 1):
                widths[cid] = float(items[i + 2])
            i += 3
    return widths, default


class EmbeddedFontEngine(FontEngine):
    """Shapes text with a Type0 font already embedded on a page (no new font in the file).

    Simple one-code-per-character shaping, left to right: enough for CJK, Latin and digits.
    A character the font does not map raises `PadesError` naming it.
    """

    def __init__(self, writer: BasePdfFileWriter, page: int, font_size: int) -> None:
        font_ref, font = _find_type0_font(writer, page)
        super().__init__(
            writer, str(font["/BaseFont"]).lstrip("/"), embedded_subset=False, font_size=font_size
        )
        self._font_ref = font_ref
        self._codes = _to_unicode(font["/ToUnicode"].data)
        encoding = font.get("/Encoding")
        cid_of = _code_to_cid(encoding.data) if isinstance(encoding, generic.StreamObject) else None
        cid_font = font["/DescendantFonts"][0].get_object()
        widths, default = _widths(cid_font)
        self._widths = {
            code: widths.get(cid_of.get(code, code) if cid_of else code, default)
            for code in self._codes.values()
        }

    @property
    def uses_complex_positioning(self) -> bool:
        return False

    def shape(self, txt: str, with_actual_text: bool = True) -> ShapeResult:
        hex_codes = []
        advance = 0.0
        for char in txt:
            code = self._codes.get(char)
            if code is None:
                raise PadesError(
                    f"character {char!r} (U+{ord(char):04X}) of a signature appearance is not "
                    "in the page's embedded font: print it on the page too"
                )
            hex_codes.append(f"{code:04x}")
            advance += self._widths[code]
        return ShapeResult(
            graphics_ops=f"<{''.join(hex_codes)}> Tj".encode("ascii"),
            x_advance=advance / 1000.0,
            y_advance=0.0,
        )

    def as_resource(self) -> Any:
        return self._font_ref

    def prepare_write(self) -> None:
        """Nothing to write: the font is already in the file."""


def _find_type0_font(writer: BasePdfFileWriter, page: int) -> tuple[Any, Any]:
    _page_ref, resources = writer.find_page_for_modification(page)  # type: ignore[no-untyped-call]
    font_dict = resources.get_object().get("/Font")
    if font_dict is None:
        raise PadesError(f"page {page + 1} has no fonts to write a signature appearance with")
    font_dict = font_dict.get_object()
    for name in font_dict:
        font = font_dict[name].get_object()
        if font.get("/Subtype") == "/Type0" and "/ToUnicode" in font:
            return font_dict.raw_get(name), font
    raise PadesError(f"page {page + 1} embeds no Type0 font with a ToUnicode map")


@dataclass(frozen=True)
class EmbeddedFontFactory(FontEngineFactory):
    page: int = 0
    font_size: int = 7

    def create_font_engine(
        self, writer: BasePdfFileWriter, obj_stream: Any = None
    ) -> EmbeddedFontEngine:
        return EmbeddedFontEngine(writer, self.page, self.font_size)


# -- signing ------------------------------------------------------------------------------------


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


@dataclass
class PadesSigner:
    """Signs forms: one B-T signature per slot, then the B-LTA update.

    Reusable across forms and threads (pyHanko signer objects are cached per certificate, under a
    lock; each signing works on its own buffers).
    """

    timestamper: TimeStamper
    font_size: int = 7
    _adapter: TimeStamperAdapter = field(init=False, repr=False)
    _signers: dict[bytes, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._adapter = TimeStamperAdapter(self.timestamper)

    @property
    def tsa_certificates(self) -> list[asn1_x509.Certificate]:
        return self._adapter.tsa_certificates

    def _pyhanko_signer(self, credential: Credential) -> Any:
        key = credential.certificate.fingerprint(hashes.SHA256())
        with self._lock:
            cached = self._signers.get(key)
            if cached is not None:
                return cached
        pkcs8 = credential.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        registry.register_multiple(_asn1_certificate(c) for c in credential.chain)
        signer = signers.SimpleSigner(
            signing_cert=_asn1_certificate(credential.certificate),
            signing_key=keys.PrivateKeyInfo.load(pkcs8),
            cert_registry=registry,
        )
        with self._lock:
            self._signers[key] = signer
        return signer

    def forget(self, credential: Credential) -> None:
        """Drop the cached signer of a credential (a donor's, once its forms are signed)."""
        key = credential.certificate.fingerprint(hashes.SHA256())
        with self._lock:
            self._signers.pop(key, None)

    def sign(self, pdf: bytes, slot: SignatureSlot) -> bytes:
        """Add one visible PAdES B-T signature in a new field."""
        style = TextStampStyle(
            stamp_text="\n".join(slot.appearance).replace("%", "%%"),
            text_box_style=TextBoxStyle(
                font=EmbeddedFontFactory(page=slot.page, font_size=self.font_size),
                font_size=self.font_size,
                leading=self.font_size + 2,
            ),
            border_width=1,
            background=None,
            inner_content_layout=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MIN,
                y_align=layout.AxisAlignment.ALIGN_MID,
                margins=layout.Margins(left=4, right=4, top=3, bottom=3),
                inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT,
            ),
        )
        meta = signers.PdfSignatureMetadata(
            field_name=slot.field_name,
            md_algorithm=DIGEST,
            subfilter=fields.SigSeedSubFilter.PADES,
            name=slot.name,
            reason=slot.reason,
            location=slot.location,
        )
        spec = fields.SigFieldSpec(
            sig_field_name=slot.field_name,
            on_page=slot.page,
            box=(
                round(slot.box[0]),
                round(slot.box[1]),
                round(slot.box[2]),
                round(slot.box[3]),
            ),
        )
        pdf_signer = _Pdf17Signer(
            meta,
            signer=self._pyhanko_signer(slot.credential),
            timestamper=self._adapter,
            stamp_style=style,
            new_field_spec=spec,
        )
        # A fixed reserve skips pyHanko's size estimate (a whole dry-run CMS per signature);
        # if a signature ever needs more, sign again with the estimate.
        try:
            writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=True)
            out = BytesIO()
            _run(pdf_signer.async_sign_pdf(writer, bytes_reserved=SIGNATURE_RESERVE, output=out))
        except PdfSigningError as exc:
            if "larger than expected" not in str(exc):
                raise
            writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=True)
            out = BytesIO()
            _run(pdf_signer.async_sign_pdf(writer, output=out))
        return out.getvalue()

    def add_lta(
        self,
        pdf: bytes,
        *,
        certificates: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList],
    ) -> bytes:
        """One update holding the DSS (certificates, CRLs, the TSA chain) and a document
        timestamp over it (PAdES B-LTA)."""
        writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=True)
        certs: dict[bytes, asn1_x509.Certificate] = {}
        for certificate in certificates:
            cert = _asn1_certificate(certificate)
            certs.setdefault(cert.sha256, cert)
        for cert in self._adapter.tsa_certificates:
            certs.setdefault(cert.sha256, cert)
        DocumentSecurityStore.supply_dss_in_writer(
            writer,
            None,
            certs=list(certs.values()),
            crls=[
                asn1_crl.CertificateList.load(c.public_bytes(serialization.Encoding.DER))
                for c in crls
            ],
        )
        _invisible_field_with_appearance(writer, DOCUMENT_TIMESTAMP_FIELD)
        out = BytesIO()
        stamper = signers.PdfTimeStamper(self._adapter, field_name=DOCUMENT_TIMESTAMP_FIELD)
        _run(stamper.async_timestamp_pdf(writer, DIGEST, output=out))
        return out.getvalue()

    def sign_all(
        self,
        pdf: bytes,
        slots: Sequence[SignatureSlot],
        *,
        certificates: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList],
    ) -> bytes:
        """Every slot in order (B-T each), then the B-LTA update."""
        names = [slot.field_name for slot in slots]
        if len(set(names)) != len(names) or DOCUMENT_TIMESTAMP_FIELD in names:
            raise PadesError(f"signature field names must be distinct: {names}")
        for slot in slots:
            pdf = self.sign(pdf, slot)
        signer_certs = [c for slot in slots for c in (slot.credential.certificate,)]
        chain = [c for slot in slots for c in slot.credential.chain]
        return self.add_lta(pdf, certificates=[*signer_certs, *chain, *certificates], crls=crls)


def _invisible_field_with_appearance(writer: IncrementalPdfFileWriter, name: str) -> None:
    """An invisible signature field (zero-size widget) that still has a normal appearance
    stream, an empty one: PDF/A asks for /AP /N on widgets, and pyHanko gives invisible fields
    none. pyHanko's PdfTimeStamper then fills this existing field."""
    fields.append_signature_field(writer, fields.SigFieldSpec(name))
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == name:
            appearance = generic.StreamObject(
                {
                    generic.NameObject("/Type"): generic.NameObject("/XObject"),
                    generic.NameObject("/Subtype"): generic.NameObject("/Form"),
                    generic.NameObject("/BBox"): generic.ArrayObject(
                        [generic.NumberObject(0)] * 4  # type: ignore[no-untyped-call]
                    ),
                },
                stream_data=b"",
            )
            field[generic.NameObject("/AP")] = generic.DictionaryObject(  # type: ignore[no-untyped-call]
                {generic.NameObject("/N"): writer.add_object(appearance)}
            )
            writer.update_container(field)
            return
    raise PadesError(f"the field {name} was not created")


class _Pdf17Signer(signers.PdfSigner):
    """A PdfSigner that keeps the file PDF 1.7 (ISO 32000-1, the base of PDF/A-3).

    For ECDSA on P-256 pyHanko registers the ISO 32002 extension, which raises the catalog's
    /Version to 2.0; PAdES signatures in PDF 1.7 only need the ESIC extension (ETSI EN 319 142).
    """

    def register_extensions(self, pdf_out: BasePdfFileWriter, *, md_algorithm: str) -> None:
        pdf_out.ensure_output_version(version=(1, 7))  # type: ignore[no-untyped-call]
        pdf_out.register_extension(ESIC_EXTENSION_1)


def _run(coroutine: Any) -> Any:
    """Run a pyHanko coroutine to completion (each call gets its own event loop)."""
    return asyncio.run(coroutine)
