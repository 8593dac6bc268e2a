"""Checking a PDF's PDF/A-3b claim (ISO 19005-3, GB/T 23286.3-2021), the parts that matter here.

Not a full validator (veraPDF is one; it cannot be installed here): it checks the claim and the
properties an archive relies on, with pikepdf:

1. the XMP metadata claims pdfaid:part 3 and pdfaid:conformance B, in an unfiltered metadata
   stream (6.6.2.1);
2. an OutputIntent GTS_PDFA1 with an ICC profile, one profile if several (6.2.3);
3. every font used by a page, form XObject or annotation appearance is embedded (6.2.11.4);
4. no encryption (6.1.3), a file identifier in the trailer, a binary comment after the header;
5. no JavaScript and no forbidden action (Launch, ImportData, ...) anywhere, no additional
   actions on the catalog or pages (6.5, 6.6.1);
6. every embedded file is an associated file: listed in an /AF array, with /AFRelationship,
   /F and /UF, and a MIME type (6.8);
7. every annotation but a Popup, Link or zero-size one has a normal appearance and only that
   (/AP with /N alone), and is printed, not hidden (6.3.2, 6.3.3).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pikepdf

from signing.errors import PdfUnreadable
from signing.pdf_content import embedded_files

__all__ = ["PdfaReport", "check_pdfa"]

_FORBIDDEN_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/Sound",
        "/Movie",
        "/ResetForm",
        "/ImportData",
        "/Hide",
        "/SetOCGState",
        "/Rendition",
        "/Trans",
        "/GoTo3DView",
    }
)
_RELATIONSHIPS = frozenset(
    {
        "Source",
        "Data",
        "Alternative",
        "Supplement",
        "EncryptedPayload",
        "FormData",
        "Schema",
        "Unspecified",
    }
)
_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")
_PRINT = 4
_NOT_SHOWN = 1 | 2 | 32 | 256  # Invisible, Hidden, NoView, ToggleNoView


@dataclass(frozen=True)
class PdfaReport:
    """What the file claims and what fails the claim; `problems` empty means the checks pass."""

    part: str  # pdfaid:part, "" when absent
    conformance: str  # pdfaid:conformance
    fonts: tuple[str, ...]  # BaseFont of every font in use
    embedded_files: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "claim": f"PDF/A-{self.part}{self.conformance.lower()}" if self.part else "",
            "fonts": list(self.fonts),
            "embedded_files": self.embedded_files,
            "problems": list(self.problems),
        }


def check_pdfa(data: bytes) -> PdfaReport:
    """Run checks 1-6; `PdfUnreadable` if qpdf cannot open the file."""
    problems: list[str] = []
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            part, conformance = _claim(pdf, problems)
            _output_intent(pdf, problems)
            fonts = _fonts(pdf, problems)
            _file_structure(pdf, data, problems)
            _actions(pdf, problems)
            _annotations(pdf, problems)
    except pikepdf.PasswordError as exc:
        raise PdfUnreadable("the PDF is encrypted with a password") from exc
    except pikepdf.PdfError as exc:
        raise PdfUnreadable(f"qpdf cannot read the PDF: {exc}") from exc
    files = embedded_files(data)
    for item in files:
        missing = []
        if not item.associated:
            missing.append("not listed in an /AF array")
        if item.relationship not in _RELATIONSHIPS:
            missing.append(f"AFRelationship {item.relationship or '(none)'}")
        if not item.has_f_and_uf:
            missing.append("no /F and /UF")
        if not item.mime:
            missing.append("no MIME type (/Subtype)")
        if missing:
            problems.append(f"embedded file '{item.name}': " + ", ".join(missing))
    return PdfaReport(part, conformance, tuple(sorted(fonts)), len(files), tuple(problems))


def _claim(pdf: pikepdf.Pdf, problems: list[str]) -> tuple[str, str]:
    metadata = pdf.Root.get("/Metadata")
    if not isinstance(metadata, pikepdf.Stream):
        problems.append("no XMP metadata stream: the file does not claim PDF/A")
        return "", ""
    if "/Filter" in metadata:
        problems.append("the XMP metadata stream is compressed (PDF/A wants it readable as is)")
    try:
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            part = str(meta.get("pdfaid:part", ""))
            conformance = str(meta.get("pdfaid:conformance", ""))
    except Exception as exc:  # malformed XMP: pikepdf raises XMLSyntaxError, ValueError, ...
        problems.append(f"the XMP metadata cannot be read: {exc}")
        return "", ""
    if (part, conformance.upper()) != ("3", "B"):
        problems.append(
            f"the XMP claims pdfaid:part {part or '(none)'} conformance "
            f"{conformance or '(none)'}, not PDF/A-3b"
        )
    return part, conformance


def _output_intent(pdf: pikepdf.Pdf, problems: list[str]) -> None:
    intents = pdf.Root.get("/OutputIntents")
    profiles = set()
    pdfa = False
    if isinstance(intents, pikepdf.Array):
        for intent in intents:
            profile = intent.get("/DestOutputProfile")
            if isinstance(profile, pikepdf.Stream):
                profiles.add(profile.objgen)
            if intent.get("/S") == pikepdf.Name.GTS_PDFA1 and isinstance(profile, pikepdf.Stream):
                pdfa = True
    if not pdfa:
        problems.append("no OutputIntent /GTS_PDFA1 with an ICC profile (DestOutputProfile)")
    if len(profiles) > 1:
        problems.append("OutputIntents name more than one ICC profile")


def _fonts(pdf: pikepdf.Pdf, problems: list[str]) -> set[str]:
    """Walk the resources of pages, form XObjects and appearance streams; check each font."""
    names: set[str] = set()
    seen: set[tuple[int, int]] = set()
    pending: list[pikepdf.Object] = []
    for page in pdf.pages:
        pending.append(page.obj)
        for annotation in page.obj.get("/Annots", pikepdf.Array()):
            appearances = annotation.get("/AP")
            if isinstance(appearances, pikepdf.Dictionary):
                for value in appearances.values():
                    if isinstance(value, pikepdf.Stream):
                        pending.append(value)
                    elif isinstance(value, pikepdf.Dictionary):
                        pending.extend(v for v in value.values() if isinstance(v, pikepdf.Stream))
    while pending:
        holder = pending.pop()
        if holder.is_indirect:
            if holder.objgen in seen:
                continue
            seen.add(holder.objgen)
        resources = holder.get("/Resources")
        if not isinstance(resources, pikepdf.Dictionary):
            continue
        for font in resources.get("/Font", pikepdf.Dictionary()).values():
            if font.is_indirect and font.objgen in seen:
                continue
            if font.is_indirect:
                seen.add(font.objgen)
            name = str(font.get("/BaseFont", "(unnamed)"))
            names.add(name.lstrip("/"))
            if not _font_embedded(font):
                problems.append(f"font {name.lstrip('/')} is not embedded")
        for xobject in resources.get("/XObject", pikepdf.Dictionary()).values():
            if isinstance(xobject, pikepdf.Stream) and xobject.get("/Subtype") == pikepdf.Name.Form:
                pending.append(xobject)
    return names


def _font_embedded(font: pikepdf.Object) -> bool:
    subtype = font.get("/Subtype")
    if subtype == pikepdf.Name.Type3:
        return True  # glyphs are content streams in the font itself
    if subtype == pikepdf.Name.Type0:
        descendants = font.get("/DescendantFonts")
        if not isinstance(descendants, pikepdf.Array) or len(descendants) != 1:
            return False
        font = descendants[0]
    descriptor = font.get("/FontDescriptor")
    return isinstance(descriptor, pikepdf.Dictionary) and any(
        isinstance(descriptor.get(key), pikepdf.Stream) for key in _FONT_FILES
    )


def _file_structure(pdf: pikepdf.Pdf, data: bytes, problems: list[str]) -> None:
    if pdf.is_encrypted or "/Encrypt" in pdf.trailer:
        problems.append("the file is encrypted")
    if "/ID" not in pdf.trailer:
        problems.append("the trailer has no file identifier (/ID)")
    lines = data[:1024].split(b"\n", 2)
    binary = lines[1].lstrip(b"\r") if len(lines) > 1 else b""
    if not (binary.startswith(b"%") and sum(b > 127 for b in binary[1:5]) == 4):
        problems.append("no binary comment (four bytes above 127) on the line after the header")


def _actions(pdf: pikepdf.Pdf, problems: list[str]) -> None:
    names = pdf.Root.get("/Names")
    if isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names:
        problems.append("the catalog's name dictionary holds JavaScript")
    if "/AA" in pdf.Root:
        problems.append("the catalog has additional actions (/AA)")
    for number, page in enumerate(pdf.pages, start=1):
        if "/AA" in page.obj:
            problems.append(f"page {number} has additional actions (/AA)")
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            continue
        kind = obj.get("/S")
        where = f"object {obj.objgen[0]} {obj.objgen[1]} R"
        if "/JS" in obj or (isinstance(kind, pikepdf.Name) and str(kind) == "/JavaScript"):
            problems.append(f"{where} is a JavaScript action")
        elif isinstance(kind, pikepdf.Name) and str(kind) in _FORBIDDEN_ACTIONS:
            problems.append(f"{where} is a {str(kind)[1:]} action, which PDF/A forbids")
        if _has_js_action(obj.get("/OpenAction")) or _has_js_action(obj.get("/A")):
            problems.append(f"{where} runs a JavaScript action")


def _annotations(pdf: pikepdf.Pdf, problems: list[str]) -> None:
    for number, page in enumerate(pdf.pages, start=1):
        for annotation in page.obj.get("/Annots", pikepdf.Array()):
            if not isinstance(annotation, pikepdf.Dictionary):
                continue
            subtype = str(annotation.get("/Subtype", ""))
            where = f"{subtype.lstrip('/') or 'annotation'} on page {number}"
            if annotation.is_indirect:
                where += f" (object {annotation.objgen[0]} {annotation.objgen[1]} R)"
            flags = int(annotation.get("/F", 0))
            if not flags & _PRINT or flags & _NOT_SHOWN:
                problems.append(f"{where} is not printed or is hidden (flags {flags})")
            if subtype in ("/Popup", "/Link") or _zero_size(annotation.get("/Rect")):
                continue
            appearance = annotation.get("/AP")
            if not isinstance(appearance, pikepdf.Dictionary) or "/N" not in appearance:
                problems.append(f"{where} has no normal appearance (/AP /N)")
            elif set(appearance.keys()) != {"/N"}:
                problems.append(f"{where} has appearances other than /N")


def _zero_size(rect: Any) -> bool:
    if not isinstance(rect, pikepdf.Array) or len(rect) != 4:
        return False
    x1, y1, x2, y2 = (float(v) for v in rect)
    return x1 == x2 and y1 == y2


def _has_js_action(action: Any) -> bool:
    return isinstance(action, pikepdf.Dictionary) and (
        "/JS" in action or action.get("/S") == pikepdf.Name.JavaScript
    )
