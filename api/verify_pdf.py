"""`ledger verify-pdf FILE [--trust CA.pem] [--json]`: check one signed form offline.

For regulators and archives: runs only the checking half (`documents.pdf_verify`), never fetches
anything, and needs no station: `--trust` names the PEM file of the root(s) to trust. Without it,
the station's own root (and `LEDGER_TSA_TRUST`) are used when a station exists here.

Exit codes: 0 PASSED, 1 FAILED (each finding names the signature, byte range or object, or the
attachment, with its code), 3 INDETERMINATE, 2 unusable input (not a PDF, unreadable, no
signature, no trust root). The JSON shape is docs/verification.md's.

Wiring, in `api.cli._parser`: ``verify_pdf.register(sub)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from documents.pdf_verify import PdfVerificationReport
from ledger.report import JSON_VERSION
from services.settings import Settings
from services.verification import verify_pdf_file
from signing.errors import PdfUnreadable

__all__ = ["cmd_verify_pdf", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `verify-pdf` command to the `ledger` parser's subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify-pdf",
        help="check a signed PDF form offline: signatures, PDF/A-3b, attached evidence",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.add_argument(
        "--trust",
        type=Path,
        metavar="CA.pem",
        help="PEM file of the trusted root certificate(s) (default: this station's root)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--no-revocation-required",
        dest="require_revocation",
        action="store_false",
        help="accept signer and TSA certificates with no CRL or OCSP response in the document",
    )
    parser.set_defaults(handler=cmd_verify_pdf)
    return parser


def cmd_verify_pdf(settings: Settings, args: argparse.Namespace) -> int:
    try:
        report = verify_pdf_file(
            settings, args.file, args.trust, require_revocation=args.require_revocation
        )
    except PdfUnreadable as exc:
        if args.json:
            unusable = {"version": JSON_VERSION, "kind": "pdf", "verdict": None}
            print(json.dumps({**unusable, "file": str(args.file), "unusable": exc.reason}))
        print(f"ledger verify-pdf: unusable input: {exc.reason}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render_text(report))
    return report.exit_code


def render_text(report: PdfVerificationReport) -> str:
    """The readable report: what was checked, each signature's status, then the verdict."""
    sig = report.signatures
    lines = [
        f"verify-pdf {report.file}",
        f"  sha256 {report.sha256}, {sig.file_size} bytes, {sig.revisions} revisions",
        "Signatures and timestamps:",
    ]
    for check in sig.signatures:
        mark = "ok  " if check.ok else "FAIL"
        who = f"{check.signer} [{check.signer_id}]" if check.signer_id else check.signer
        when = f"{check.time.isoformat()} ({check.time_source})" if check.time else "no time"
        lines.append(f"  {mark} {check.describe()}: {who or 'unknown signer'}")
        lines.append(
            f"       ByteRange {list(check.byte_range)}, coverage {check.coverage or '?'}, "
            f"changes after it: {check.modification_level or '?'}"
            + (f" ({', '.join(check.changed_fields)})" if check.changed_fields else "")
        )
        lines.append(f"       checked at {when}")
        lines.extend(f"       - {problem}" for problem in check.problems)
    if sig.unsigned_fields:
        lines.append(f"  unsigned signature fields: {', '.join(sig.unsigned_fields)}")
    lines.append(
        f"  document security store: {sig.dss_certificates} certificates, {sig.dss_crls} CRLs, "
        f"{sig.dss_ocsps} OCSP responses"
    )
    pdfa = report.pdfa
    claim = f"PDF/A-{pdfa.part}{pdfa.conformance.lower()}" if pdfa.part else "no PDF/A claim"
    lines.append(
        f"PDF/A: {'ok' if pdfa.ok else 'FAIL'}: claims {claim}; fonts "
        f"{', '.join(pdfa.fonts) or 'none'}; {pdfa.embedded_files} embedded files"
    )
    evidence = report.evidence
    lines.append(
        f"Evidence: {'ok' if evidence.ok else 'FAIL'}: {len(evidence.events)} events, "
        f"{evidence.signatures} signatures, {evidence.proofs} inclusion proofs, "
        f"{evidence.tokens} batch tokens; donation "
        f"{', '.join(evidence.donation_numbers) or '(none)'}; form text "
        f"{'matched' if evidence.content_checked else 'not read'}"
    )
    for event in evidence.events:
        signed = event.signed_at.isoformat() if event.signed_at else "not verified"
        stamped = event.stamped_at.isoformat() if event.stamped_at else "not stamped"
        lines.append(
            f"  {'ok  ' if not event.problems else 'FAIL'} {event.attachment}: "
            f"{event.event_type} v{event.version} by {event.actor}, signed {signed}, "
            f"stamped {stamped}"
        )
    lines.extend(f"  note: {note}" for note in evidence.notes)
    failures = report.failures()
    if report.bottom_line:
        lines.append(
            f"VALID: {len(sig.signatures)} signatures and timestamps hold, nothing changed after "
            "signing but LTA updates, PDF/A-3b checks pass, the evidence holds"
        )
    else:
        count = len(failures)
        lines.append(f"INVALID: {count} problem{'' if count == 1 else 's'} ({report.verdict})")
        lines.extend(
            f"  - {failure} [{finding.code}]"
            for failure, finding in zip(failures, report.issues(), strict=True)
        )
    return "\n".join(lines)
