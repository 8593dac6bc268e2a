"""signing.pdfa: the PDF/A-3b claim checks, and each way a file fails them."""

from __future__ import annotations

import io
from collections.abc import Callable

import pikepdf
import pytest

from signing.errors import PdfUnreadable
from signing.pdf_content import embedded_files
from signing.pdfa import check_pdfa
from tests.pdf_samples import Attachment


def _edited(pdf_bytes: bytes, edit: Callable[[pikepdf.Pdf], None], **save: object) -> bytes:
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        edit(pdf)
        out = io.BytesIO()
        pdf.save(out, **save)  # type: ignore[arg-type]
        return out.getvalue()


def test_the_form_claims_and_meets_pdfa_3b(unsigned: bytes, genuine: bytes) -> None:
    for data in (unsigned, genuine):
        report = check_pdfa(data)
        assert report.ok, report.problems
        assert (report.part, report.conformance) == ("3", "B")
        assert report.fonts == ("MPDFAA+NotoSansCJKSC",)
        assert report.to_json()["claim"] == "PDF/A-3b"


def test_attachments_are_associated_files(genuine: bytes, evidence: list[Attachment]) -> None:
    files = {f.name: f for f in embedded_files(genuine)}
    assert set(files) == {a.name for a in evidence}
    for attachment in evidence:
        found = files[attachment.name]
        assert found.data == attachment.data
        assert found.relationship == attachment.relationship
        assert found.mime == attachment.mime
        assert found.associated and found.has_f_and_uf


def _set_part(pdf: pikepdf.Pdf) -> None:
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["pdfaid:part"] = "2"


def _drop_metadata(pdf: pikepdf.Pdf) -> None:
    del pdf.Root.Metadata


def _drop_output_intents(pdf: pikepdf.Pdf) -> None:
    del pdf.Root.OutputIntents


def _add_unembedded_font(pdf: pikepdf.Pdf) -> None:
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    pdf.pages[0].obj.Resources.Font.Helv = font


def _add_javascript(pdf: pikepdf.Pdf) -> None:
    pdf.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('hi')")
    )


def _add_launch(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.AA = pikepdf.Dictionary(
        O=pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("x.exe")))
    )


def _plain_attachment(pdf: pikepdf.Pdf) -> None:
    """An embedded file as PDF 1.7 allows it: no AFRelationship, no /UF, no MIME type, no /AF."""
    stream = pdf.make_stream(b"loose", Type=pikepdf.Name.EmbeddedFile)
    spec = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Filespec,
            F=pikepdf.String("loose.txt"),
            EF=pikepdf.Dictionary(F=stream),
        )
    )
    pdf.Root.Names.EmbeddedFiles.Names.extend([pikepdf.String("loose.txt"), spec])


def _add_bare_annotation(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.Annots = pdf.make_indirect(
        pikepdf.Array(
            [
                pdf.make_indirect(
                    pikepdf.Dictionary(
                        Type=pikepdf.Name.Annot,
                        Subtype=pikepdf.Name.Square,
                        Rect=pikepdf.Array([10, 10, 50, 50]),
                        F=2,
                    )
                )
            ]
        )
    )


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_set_part, "the XMP claims pdfaid:part 2 conformance B, not PDF/A-3b"),
        (_drop_metadata, "no XMP metadata stream: the file does not claim PDF/A"),
        (_drop_output_intents, "no OutputIntent /GTS_PDFA1 with an ICC profile"),
        (_add_unembedded_font, "font Helvetica is not embedded"),
        (_add_javascript, "runs a JavaScript action"),
        (_add_launch, "page 1 has additional actions (/AA)"),
        (_add_launch, "is a Launch action, which PDF/A forbids"),
        (_plain_attachment, "embedded file 'loose.txt': not listed in an /AF array"),
        (_add_bare_annotation, "Square on page 1 (object"),
        (_add_bare_annotation, "is not printed or is hidden (flags 2)"),
        (_add_bare_annotation, "has no normal appearance (/AP /N)"),
        (_plain_attachment, "AFRelationship (none), no /F and /UF, no MIME type (/Subtype)"),
    ],
)
def test_each_failed_claim_is_named(
    unsigned: bytes, edit: Callable[[pikepdf.Pdf], None], problem: str
) -> None:
    report = check_pdfa(_edited(unsigned, edit))
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems


def test_encryption_fails(unsigned: bytes) -> None:
    encrypted = _edited(
        unsigned, lambda pdf: None, encryption=pikepdf.Encryption(owner="owner", user="")
    )
    assert "the file is encrypted" in check_pdfa(encrypted).problems


def test_a_password_is_unusable_input(unsigned: bytes) -> None:
    locked = _edited(
        unsigned, lambda pdf: None, encryption=pikepdf.Encryption(owner="owner", user="user")
    )
    with pytest.raises(PdfUnreadable, match="encrypted with a password"):
        check_pdfa(locked)


def test_no_binary_comment_and_no_id(unsigned: bytes) -> None:
    data = unsigned.replace(unsigned.split(b"\n")[1], b"%plain", 1)
    problems = check_pdfa(data).problems
    assert any("no binary comment" in p for p in problems), problems
