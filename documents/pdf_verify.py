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
from ledger.report import Code, Finding, Report
from signing.errors import PdfUnreadable
from signing.pdf_content import document_crls, embedded_files, page_text
from signing.pdf_validation import (
    PdfSignaturesReport,
    PdfValidationPolicy,
    validate_pdf_signatures,
)
from signing.pdfa import PdfaReport, check_pdfa

__all__ = ["PdfVerificationReport", "verify_pdf"]


#: Which finding code a signature's problem is, by the words the checking half uses for it
#: (signing.pdf_validation and signing._pdf_bytes); the first match wins.
_SIGNATURE_CODES: tuple[tuple[str, Code], ...] = (
    (" revoked on ", Code.SIGNER_CERT_REVOKED),
    ("no revocation data", Code.PDF_REVOCATION_DATA_MISSING),
    ("no trusted time", Code.PDF_TRUSTED_TIME_MISSING),
    ("certificate path", Code.SIGNER_CERT_INVALID),
    ("timestamp", Code.PDF_TIMESTAMP_INVALID),
    ("after signing", Code.PDF_MODIFIED_AFTER_SIGNING),
    ("modification level", Code.PDF_MODIFIED_AFTER_SIGNING),
    ("later revisions were not analysed", Code.PDF_MODIFIED_AFTER_SIGNING),
    ("DocMDP", Code.PDF_MODIFIED_AFTER_SIGNING),
    ("does not match the signed digest", Code.PDF_SIGNATURE_INVALID),
    ("ByteRange", Code.PDF_BYTE_RANGE_INVALID),
    ("/Contents", Code.PDF_BYTE_RANGE_INVALID),
)


def signature_problem_code(problem: str) -> Code:
    for words, code in _SIGNATURE_CODES:
        if words in problem:
            return code
    return Code.PDF_SIGNATURE_INVALID


def pdf_findings(
    file: str,
    signatures: PdfSignaturesReport,
    pdfa: PdfaReport,
    evidence: EvidenceReport,
    problems: Sequence[str],
) -> tuple[Finding, ...]:
    """Every reason the bottom line fails, as findings: one per problem, where it was found."""
    out = [
        Finding(signature_problem_code(p), s.describe(), p)
        for s in signatures.signatures
        for p in s.problems
    ]
    if not signatures.signatures:
        out.append(Finding(Code.PDF_SIGNATURE_INVALID, file, "the file holds no signature"))
    out += [Finding(Code.PDF_STRUCTURE_INVALID, file, p) for p in signatures.problems]
    out += [Finding(Code.PDFA_NONCONFORMANT, file, p) for p in pdfa.problems]
    out += [Finding(Code.PDF_EVIDENCE_INVALID, f"{file} attachments", p) for p in evidence.problems]
    out += [Finding(Code.PDF_UNREADABLE, file, p) for p in problems]
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class PdfVerificationReport(Report):
    """Everything `verify-pdf` found about one file; the verdict comes from the findings."""

    kind: str = "pdf"
    file: str
    sha256: str
    signatures: PdfSignaturesReport
    pdfa: PdfaReport
    evidence: EvidenceReport
    problems: tuple[str, ...] = ()  # readers other than pyHanko that could not read the file

    @property
    def bottom_line(self) -> bool:
        return self.ok

    def counts(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "signature_count": len(self.signatures.signatures),
            "signatures": self.signatures.to_json(),
            "pdfa": self.pdfa.to_json(),
            "evidence": self.evidence.to_json(),
        }

    def failures(self) -> list[str]:
        """Every reason the bottom line fails, each naming where (signature, object, file)."""
        out = [f"{s.describe()}: {p}" for s in self.signatures.signatures for p in s.problems]
        if not self.signatures.signatures:
            out.append("file: the file holds no signature")
        out += [f"file: {p}" for p in self.signatures.problems]
        out += [f"PDF/A: {p}" for p in self.pdfa.problems]
        out += [f"evidence: {p}" for p in self.evidence.problems]
        out += [f"file: {p}" for p in self.problems]
        return out

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "problems": list(self.problems), "failures": self.failures()}


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
        findings=pdf_findings(name, signatures, pdfa, evidence, problems),
        file=name,
        sha256=hashlib.sha256(data).hexdigest(),
        signatures=signatures,
        pdfa=pdfa,
        evidence=evidence,
        problems=tuple(problems),
    )
