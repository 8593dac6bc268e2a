"""`ledger verify-pdf FILE [--trust CA.pem] [--json]`: check one signed form offline.

For regulators and archives: runs only the checking half (`documents.pdf_verify`), never fetches
anything, and needs no station: `--trust` names the PEM file of the root(s) to trust. Without it,
the station's own root (and `LEDGER_TSA_TRUST`) are used when a station exists here.

Exit codes: 0 every check holds, 1 a check fails (each reason names the signature, byte range
or object, or the attachment), 2 unusable input (not a PDF, unreadable, no signature, no trust
root).

Wiring, in `api.cli._parser`: ``verify_pdf.register(sub)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from cryptography import x509

from documents.pdf_verify import PdfVerificationReport, verify_pdf
from services.settings import Settings
from signing.errors import PdfUnreadable
from signing.pdf_validation import PdfValidationPolicy

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
    # pyHanko logs every rejected revision with a traceback; the report carries the reasons.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    try:
        roots = _trust_roots(settings, args.trust)
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise PdfUnreadable(f"cannot read {args.file}: {exc.strerror or exc}") from exc
        policy = PdfValidationPolicy(require_revocation_data=args.require_revocation)
        report = verify_pdf(data, roots, name=str(args.file), policy=policy)
    except PdfUnreadable as exc:
        if args.json:
            print(json.dumps({"ok": False, "file": str(args.file), "unusable": exc.reason}))
        print(f"ledger verify-pdf: unusable input: {exc.reason}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render_text(report))
    return 0 if report.bottom_line else 1


def _trust_roots(settings: Settings, trust: Path | None) -> list[x509.Certificate]:
    paths = [trust] if trust is not None else [settings.pki_dir / "root.cert.pem"]
    if trust is None and settings.tsa_trust is not None:
        paths.append(settings.tsa_trust)
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except FileNotFoundError as exc:
            hint = "" if trust is not None else ": pass --trust CA.pem"
            raise PdfUnreadable(f"no trust root: {path} does not exist{hint}") from exc
        except (OSError, ValueError) as exc:
            raise PdfUnreadable(f"cannot read trust roots from {path}: {exc}") from exc
    return roots


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
        lines.append(f"INVALID: {count} problem{'' if count == 1 else 's'}")
        lines.extend(f"  - {failure}" for failure in failures)
    return "\n".join(lines)
