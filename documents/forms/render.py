"""A `Form` as a one- or two-page A4 PDF/A-3b, with its evidence as associated files.

fpdf2's ``enforce_compliance="PDF/A-3B"`` writes the XMP (pdfaid part 3, conformance B), an sRGB
OutputIntent and the associated files (``/AF`` with an AFRelationship per file); every font is
embedded (one CJK subset per document, see ``fonts.py``); no encryption, no JavaScript.

Each signer gets a row: a box where the PAdES signature's visible appearance goes (its position
is returned in PDF points for ``signing.pades``) and, beside it, the same text printed on the page
(printed name, role, meaning, time). The appearance reuses the page's font, so every character it
needs is printed here too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import WrapMode
from fpdf.fonts import TTFFont

from documents.forms.evidence import Attachment
from documents.forms.fonts import DocumentFont, FormFont
from documents.forms.model import Field, Form, Section, SignatureState, Signer

PAGE_W, PAGE_H = 210.0, 297.0
MARGIN = 12.0
CONTENT_W = PAGE_W - 2 * MARGIN
LABEL_W = 30.0  # the narrowest label column; a section widens it to fit its labels,
LABEL_MAX_W = 0.65 * CONTENT_W / 2  # up to this (longer labels wrap)
ROW_H = 5.6  # a one-line row
LINE_H = 4.0  # each further line of a wrapped label or value adds this
GAP = 2.0  # between the end of a label and its value's cell
SIG_BOX_W, SIG_BOX_H = 64.0, 19.0
GREY = (90, 90, 90)

#: Every fixed string the renderer prints (besides the form's own text): in the document font.
STATIC_TEXT = (
    "表单编号版本献血编号回告电话封存时间记录状态记录第页共签名Signatures 21 CFR 11.50"
    "未签名缺签不需要本站未启用电子签名已电子签名证据见附件附件 associated files 字库缺字以码表示"
    "[]U+0123456789ABCDEF:：/()（）.-—, 说明 Notes"
)


@dataclass(frozen=True)
class SignatureBox:
    signer: Signer
    page: int  # 0-based
    box: tuple[float, float, float, float]  # PDF points: x1, y1, x2, y2 (origin bottom left)


@dataclass(frozen=True)
class RenderedForm:
    pdf: bytes
    boxes: tuple[SignatureBox, ...]
    missing_glyphs: tuple[str, ...]


class _FormPDF(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(self._family, size=7)
        self.set_text_color(*GREY)
        self.cell(CONTENT_W * 0.75, 4, self.footer_text)
        self.cell(CONTENT_W * 0.25, 4, f"第 {self.page_no()} 页 共 {{nb}} 页", align="R")
        self.set_text_color(0, 0, 0)

    _family = "NotoSansCJKSC"


class _Renderer:
    def __init__(self, form: Form, font: FormFont, document_font: DocumentFont | None) -> None:
        self.form = form
        self.font = font
        all_text = page_text(form, font)
        self.missing = tuple(font.missing(form.text() + STATIC_TEXT))
        self.boxes: list[SignatureBox] = []
        self.pdf = _FormPDF(orientation="P", unit="mm", format="A4", enforce_compliance="PDF/A-3B")
        pdf = self.pdf
        if document_font is None:
            document_font = font.document_font(all_text)
        fd, path = tempfile.mkstemp(suffix=".otf", prefix="form-font-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(document_font.data)
        self._font_path = path
        pdf.add_font(_FormPDF._family, "", path)
        # The subset is final: skip fontTools' glyph-by-glyph bounding box recomputation.
        added = pdf.fonts[_FormPDF._family.lower()]
        assert isinstance(added, TTFFont)
        added.ttfont.recalcBBoxes = False
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(True, margin=16)
        pdf.footer_text = (
            f"{form.header.template_code}  版本 {form.header.template_version}  "
            f"献血编号 {form.header.donation_no}"
        )

    def close(self) -> None:
        os.unlink(self._font_path)

    def shown(self, value: str) -> str:
        if not self.missing:
            return value
        return "".join(f"[U+{ord(c):04X}]" if c in self.missing else c for c in value)

    def set_font(self, size: float) -> None:
        self.pdf.set_font(_FormPDF._family, size=size)

    # -- page parts -----------------------------------------------------------------------------

    def header(self) -> None:
        pdf, h = self.pdf, self.form.header
        self.set_font(7.5)
        pdf.set_text_color(*GREY)
        pdf.cell(
            CONTENT_W / 2, 4, self.shown(f"表单编号 {h.template_code}  版本 {h.template_version}")
        )
        pdf.cell(
            CONTENT_W / 2, 4, f"献血编号 {h.donation_no}", align="R", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_text_color(0, 0, 0)
        self.set_font(12)
        pdf.cell(
            CONTENT_W,
            7,
            self.shown(f"{h.station_name}  {h.department}"),
            align="C",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        self.set_font(15)
        pdf.cell(CONTENT_W, 8, self.shown(h.title), align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_font(8)
        pdf.set_text_color(*GREY)
        pdf.cell(CONTENT_W, 4, h.title_en, align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(1)
        self.set_font(8.5)
        third = CONTENT_W / 3
        pdf.cell(third, 5.5, self.shown(f"回告电话 {h.phone_callback}"), border="TB")
        pdf.cell(third, 5.5, f"封存时间 {h.sealed_at}", border="TB", align="C")
        pdf.cell(
            third,
            5.5,
            self.shown(f"记录状态 {h.final_status}"),
            border="TB",
            align="R",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.ln(2)

    def section(self, section: Section) -> None:
        pdf = self.pdf
        if pdf.will_page_break(ROW_H * 3):
            pdf.add_page()
        self.set_font(9.5)
        pdf.set_fill_color(232, 236, 242)
        pdf.cell(CONTENT_W * 0.55, 6, self.shown(section.title), fill=True)
        self.set_font(7.5)
        pdf.set_text_color(*GREY)
        pdf.cell(
            CONTENT_W * 0.45,
            6,
            self.shown(f"记录 {section.recorded_by}" if section.recorded_by else ""),
            fill=True,
            align="R",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_text_color(0, 0, 0)
        self.set_font(8.5)
        label_w = self.label_width(section)
        half = CONTENT_W / 2
        row: list[tuple[Field, float, float, float]] = []  # field, x, label width, value width
        for field in section.fields:
            wide = field.wide or self.width(self.shown(field.value)) > half - label_w
            if row and (wide or len(row) == 2):
                self.row(row)
                row = []
            if wide:
                self.row([(field, MARGIN, label_w, CONTENT_W - label_w)])
            else:
                row.append((field, MARGIN + len(row) * half, label_w, half - label_w))
        if row:
            self.row(row)
        if section.note:
            self.set_font(7.5)
            pdf.multi_cell(
                CONTENT_W, 4, self.shown(section.note), align="L", new_x="LMARGIN", new_y="NEXT"
            )
        pdf.ln(2)

    def width(self, text: str) -> float:
        """The width a cell needs to print `text` on one line (cell margins included)."""
        return float(self.pdf.get_string_width(text)) + 2 * self.pdf.c_margin

    def label_width(self, section: Section) -> float:
        """The section's label column: wide enough for its longest label, unless that would
        pass `LABEL_MAX_W` or crowd the values of the two-column rows (then long labels wrap),
        and never below `LABEL_W`."""
        half = CONTENT_W / 2
        labels = [self.width(self.shown(f.label)) + GAP for f in section.fields]
        values = [self.width(self.shown(f.value)) for f in section.fields if not f.wide]
        # values too long for a half row at the narrowest label column go full width anyway
        values = [v for v in values if v <= half - LABEL_W] or [0.0]
        return max(LABEL_W, min(max(labels, default=0.0), LABEL_MAX_W, half - max(values)))

    def lines(self, text: str, width: float) -> list[str]:
        out: Any = self.pdf.multi_cell(
            width, LINE_H, text, dry_run=True, output="LINES", wrapmode=WrapMode.WORD
        )
        return [str(line) for line in out] or [""]

    def row(self, cells: Sequence[tuple[Field, float, float, float]]) -> None:
        """One row of one or two labelled values (a value too long for a half row fills the
        row), each label and value wrapped in its own cell, underlined across the row."""
        pdf = self.pdf
        texts = [
            (field, x, label_w, value_w, self.shown(field.label), self.shown(field.value))
            for field, x, label_w, value_w in cells
        ]
        count = max(
            max(len(self.lines(label, label_w - GAP)), len(self.lines(value, value_w)))
            for _, _, label_w, value_w, label, value in texts
        )
        height = ROW_H + (count - 1) * LINE_H
        if pdf.will_page_break(height):
            pdf.add_page()
        y = pdf.get_y()
        for field, x, label_w, value_w, label, value in texts:
            pdf.set_xy(x, y + (ROW_H - LINE_H) / 2)
            pdf.set_text_color(*GREY)
            pdf.multi_cell(label_w - GAP, LINE_H, label, align="L", wrapmode=WrapMode.WORD)
            pdf.set_xy(x + label_w, y + (ROW_H - LINE_H) / 2)
            pdf.set_text_color(160, 0, 0) if field.amended else pdf.set_text_color(0, 0, 0)
            pdf.multi_cell(value_w, LINE_H, value, align="L", wrapmode=WrapMode.WORD)
            pdf.set_text_color(0, 0, 0)
            pdf.line(x, y + height, x + label_w + value_w, y + height)
        pdf.set_xy(MARGIN, y + height)

    def signatures(self) -> None:
        pdf = self.pdf
        if pdf.will_page_break(8 + SIG_BOX_H):
            pdf.add_page()
        self.set_font(9.5)
        pdf.set_fill_color(232, 236, 242)
        pdf.cell(
            CONTENT_W, 6, "签名 Signatures (21 CFR 11.50)", fill=True, new_x="LMARGIN", new_y="NEXT"
        )
        pdf.ln(1.5)
        for signer in self.form.signers:
            if pdf.will_page_break(SIG_BOX_H + 2):
                pdf.add_page()
            x, y = MARGIN, pdf.get_y()
            pdf.set_draw_color(150, 150, 150)
            pdf.rect(x, y, SIG_BOX_W, SIG_BOX_H)
            pdf.set_draw_color(0, 0, 0)
            if signer.state is SignatureState.PADES:
                k = pdf.k
                self.boxes.append(
                    SignatureBox(
                        signer,
                        pdf.page - 1,
                        (
                            x * k,
                            (PAGE_H - y - SIG_BOX_H) * k,
                            (x + SIG_BOX_W) * k,
                            (PAGE_H - y) * k,
                        ),
                    )
                )
            else:
                self.set_font(7.5)
                pdf.set_xy(x + 2, y + 6)
                pdf.set_text_color(*GREY)
                pdf.multi_cell(SIG_BOX_W - 4, 3.6, self.shown(_placeholder(signer)), align="L")
                pdf.set_text_color(0, 0, 0)
            self.set_font(8)
            lines = signer.appearance()
            for i, line in enumerate(lines):
                pdf.set_xy(x + SIG_BOX_W + 4, y + 0.8 + i * 4.4)
                pdf.cell(CONTENT_W - SIG_BOX_W - 4, 4.4, self.shown(line))
            pdf.set_xy(MARGIN, y + SIG_BOX_H + 2)

    def notes(self) -> None:
        pdf = self.pdf
        notes = list(self.form.notes)
        if self.missing:
            notes.append(
                "字库缺字，以码表示: " + " ".join(f"[U+{ord(c):04X}]" for c in self.missing)
            )
        if not notes:
            return
        pdf.ln(1)
        self.set_font(7.5)
        pdf.set_text_color(*GREY)
        for note in notes:
            pdf.multi_cell(
                CONTENT_W, 3.8, self.shown(note), align="L", new_x="LMARGIN", new_y="NEXT"
            )
        pdf.set_text_color(0, 0, 0)


def page_text(form: Form, font: FormFont) -> str:
    """Every character rendering `form` prints, for `FormFont.document_font`."""
    text = form.text() + STATIC_TEXT
    return text + "".join(f"[U+{ord(c):04X}]" for c in font.missing(text))


def _placeholder(signer: Signer) -> str:
    if signer.state is SignatureState.EVIDENCE_ONLY:
        return signer.reason
    return signer.reason or signer.state.value


def render(
    form: Form,
    attachments: Sequence[Attachment],
    font: FormFont,
    *,
    created: datetime,
    author: str = "",
    document_font: DocumentFont | None = None,
) -> RenderedForm:
    """The PDF/A-3b bytes of `form` with `attachments` as associated files.

    `document_font` (from `page_text` of this and other forms, e.g. all forms of a donation)
    saves subsetting the CJK font once per form."""
    renderer = _Renderer(form, font, document_font)
    try:
        pdf = renderer.pdf
        pdf.set_lang("zh-CN")
        pdf.set_title(f"{form.header.title} {form.header.donation_no}")
        pdf.set_subject(form.header.title_en)
        pdf.set_author(author or form.header.station_name)
        pdf.set_creator("donation-ledger")
        pdf.set_creation_date(created)
        pdf.add_page()
        renderer.header()
        for section in form.sections:
            renderer.section(section)
        renderer.signatures()
        renderer.notes()
        for attachment in attachments:
            pdf.embed_file(
                bytes=attachment.data,
                basename=attachment.name,
                modification_date=created,
                mime_type=attachment.mime_type,
                associated_file_relationship=attachment.relationship,
                desc=attachment.description,
                compress=True,
            )
        data: Any = pdf.output()
        return RenderedForm(bytes(data), tuple(renderer.boxes), renderer.missing)
    finally:
        renderer.close()
