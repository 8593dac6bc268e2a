"""Verifying one signed form offline, with the checking half only: what `ledger verify-pdf` runs.

1. Signatures and document timestamps: integrity, coverage, trusted time, certificate paths to
   the given roots at that time, modifications after signing (`signing.pdf_validation`).
2. The PDF/A-3b claim (`signing.pdfa`).
3. The attached evidence, re-verified and matched with the page text (`documents.pdf_evidence`),
   with the CRLs of the document security store.

The bottom line holds when all three do. A file pyHanko reads but qpdf or pdftotext cannot is
not unusable input but a failure: an archive must be readable by more than one implementation.
Nothing here can sign or timestamp.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from documents.pdf_evidence import EvidenceReport, verify_evidence
from signing.errors import PdfUnreadable
from signing.pdf_content import document_crls, embedded_files, page_text
from signing.pdf_validation import (
    PdfSignaturesReport,
    PdfValidationPolicy,
    validate_pdf_signatures,
)
from signing.pdfa import PdfaReport, check_pdfa

__all__ = ["PdfVerificationReport", "verify_pdf"]


@dataclass(frozen=True)
class PdfVerificationReport:
    """Everything `verify-pdf` found about one file, with one bottom line."""

    file: str
    sha256: str
    signatures: PdfSignaturesReport
    pdfa: PdfaReport
    evidence: EvidenceReport
    problems: tuple[str, ...] = ()  # readers other than pyHanko that could not read the file

    @property
    def bottom_line(self) -> bool:
        return (
            self.signatures.bottom_line and self.pdfa.ok and self.evidence.ok and not self.problems
        )

    def failures(self) -> list[str]:
        """Every reason the bottom line fails, each naming where (signature, object, file)."""
        out = [f"{s.describe()}: {p}" for s in self.signatures.signatures for p in s.problems]
        out += [f"file: {p}" for p in self.signatures.problems]
        out += [f"PDF/A: {p}" for p in self.pdfa.problems]
        out += [f"evidence: {p}" for p in self.evidence.problems]
        out += [f"file: {p}" for p in self.problems]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.bottom_line,
            "file": self.file,
            "sha256": self.sha256,
            "signatures": self.signatures.to_json(),
            "pdfa": self.pdfa.to_json(),
            "evidence": self.evidence.to_json(),
            "problems": list(self.problems),
            "failures": self.failures(),
        }


def verify_pdf(
    data: bytes,
    trust_roots: Sequence[x509.Certificate],
    *,
    name: str = "",
    policy: PdfValidationPolicy | None = None,
) -> PdfVerificationReport:
    """Steps 1-3 over the bytes of one PDF; `PdfUnreadable` when it is not a usable signed PDF."""
    signatures = validate_pdf_signatures(data, trust_roots, policy)
    problems: list[str] = []
    try:
        pdfa = check_pdfa(data)
    except PdfUnreadable as exc:
        problems.append(exc.reason)
        pdfa = PdfaReport("", "", (), 0, ("not checked: the file cannot be read",))
    try:
        text = page_text(data)
    except PdfUnreadable as exc:
        problems.append(exc.reason)
        text = None
    try:
        evidence = verify_evidence(embedded_files(data), trust_roots, document_crls(data), text)
    except PdfUnreadable as exc:
        problems.append(exc.reason)
        evidence = verify_evidence((), trust_roots)
    return PdfVerificationReport(
        file=name,
        sha256=hashlib.sha256(data).hexdigest(),
        signatures=signatures,
        pdfa=pdfa,
        evidence=evidence,
        problems=tuple(problems),
    )
