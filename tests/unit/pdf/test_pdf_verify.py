"""documents.pdf_verify: the three parts and the bottom line."""

from __future__ import annotations

import pytest

from documents import pdf_verify
from signing.errors import PdfUnreadable
from tests.pdf_samples import SampleStation


def test_the_bottom_line_needs_all_three(genuine: bytes, station: SampleStation) -> None:
    report = pdf_verify.verify_pdf(genuine, [station.root], name="form.pdf")
    assert report.bottom_line and report.failures() == []
    assert report.to_json()["file"] == "form.pdf" and len(report.sha256) == 64


def test_a_reader_failing_after_pyhanko_is_a_failure_not_unusable_input(
    genuine: bytes, station: SampleStation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(data: bytes) -> str:
        raise PdfUnreadable("pdftotext cannot read the PDF (exit 1)")

    monkeypatch.setattr(pdf_verify, "page_text", broken)
    report = pdf_verify.verify_pdf(genuine, [station.root])
    assert not report.bottom_line
    assert report.failures() == ["file: pdftotext cannot read the PDF (exit 1)"]
    assert not report.evidence.content_checked
