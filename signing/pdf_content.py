"""Reading what a PDF carries besides its signatures: attached files and the text of its pages.

Part of the checking half: reads with pikepdf (qpdf) and, for text, poppler's `pdftotext` when it
is on the PATH (pikepdf has no text extraction; fpdf2 writes CJK text as glyph ids that only the
font's ToUnicode map turns back into characters, which pdftotext applies).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import pikepdf
from cryptography import x509

from signing.errors import PdfUnreadable

__all__ = ["EmbeddedFile", "document_crls", "embedded_files", "page_text"]


@dataclass(frozen=True)
class EmbeddedFile:
    """One embedded file with the facts PDF/A-3 asks about it."""

    name: str  # /UF, else /F
    data: bytes
    mime: str  # the embedded file stream's /Subtype, without the slash; "" when absent
    relationship: str  # the file specification's /AFRelationship, without the slash; ""
    associated: bool  # listed in an /AF array (of the catalog or a page)
    has_f_and_uf: bool  # the file specification has both /F and /UF


def embedded_files(data: bytes) -> tuple[EmbeddedFile, ...]:
    """The files in the EmbeddedFiles name tree, and files only an /AF array lists, in order."""
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            associated = _associated(pdf)
            found: list[EmbeddedFile] = []
            seen: set[tuple[int, int]] = set()
            for name, spec in pdf.attachments.items():
                seen.add(spec.obj.objgen)
                found.append(_read(str(name), spec.obj, associated))
            for objgen in sorted(associated - seen):
                obj = pdf.get_object(objgen)
                found.append(_read("", obj, associated))
            return tuple(found)
    except pikepdf.PdfError as exc:
        raise PdfUnreadable(f"cannot read the attachments: {exc}") from exc


def _associated(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    holders = [pdf.Root, *(page.obj for page in pdf.pages)]
    out: set[tuple[int, int]] = set()
    for holder in holders:
        array = holder.get("/AF")
        if isinstance(array, pikepdf.Array):
            out.update(item.objgen for item in array if item.is_indirect)
    return out


def _read(name: str, spec: pikepdf.Object, associated: set[tuple[int, int]]) -> EmbeddedFile:
    filename = str(spec.get("/UF", spec.get("/F", name))) or name
    stream = spec.get("/EF", pikepdf.Dictionary()).get("/F")
    content = b""
    mime = ""
    if isinstance(stream, pikepdf.Stream):
        content = bytes(stream.read_bytes())
        subtype = stream.get("/Subtype")
        mime = str(subtype)[1:] if isinstance(subtype, pikepdf.Name) else ""
    relationship = spec.get("/AFRelationship")
    return EmbeddedFile(
        name=filename,
        data=content,
        mime=mime,
        relationship=str(relationship)[1:] if isinstance(relationship, pikepdf.Name) else "",
        associated=spec.is_indirect and spec.objgen in associated,
        has_f_and_uf="/F" in spec and "/UF" in spec,
    )


def page_text(data: bytes, timeout_s: float = 60.0) -> str | None:
    """The text of every page (UTF-8, `pdftotext`), or None when pdftotext is not installed."""
    command = shutil.which("pdftotext")
    if command is None:
        return None
    result = subprocess.run(
        [command, "-q", "-enc", "UTF-8", "-", "-"],
        input=data,
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise PdfUnreadable(f"pdftotext cannot read the PDF (exit {result.returncode})")
    return result.stdout.decode("utf-8", "replace")


def document_crls(data: bytes) -> tuple[x509.CertificateRevocationList, ...]:
    """The CRLs in the document security store (/DSS /CRLs), in order; none without a DSS."""
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            dss = pdf.Root.get("/DSS")
            streams: Any = (
                dss.get("/CRLs", pikepdf.Array()) if isinstance(dss, pikepdf.Dictionary) else []
            )
            out = []
            for stream in streams:
                try:
                    out.append(x509.load_der_x509_crl(bytes(stream.read_bytes())))
                except ValueError:
                    continue  # not a CRL: the signature checks report what they miss
            return tuple(out)
    except pikepdf.PdfError as exc:
        raise PdfUnreadable(f"cannot read the document security store: {exc}") from exc
