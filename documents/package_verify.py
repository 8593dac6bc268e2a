"""Verifying a transfer package offline, with the checking half only: `ledger verify-package`.

1. The bag: every file of both manifests present with its SHA-256, no payload file that no
   manifest lists, and the Library of Congress `bagit` validator's own verdict.
2. The tag manifest's detached CMS signature: verifies, chains to the trust roots at signing
   time, and its signer holds the archivist role.
3. The catalogue: XML valid against its schema, the CSV the same rows, one donation folder per
   row and no other, bag-info's counts.
4. Each donation: its DA/T 48 encapsulation package (both signatures, and each embedded form
   byte for byte the form in the folder), every form through the PDF verifier, its evidence
   (each event's bytes hash to its hash, its CMS signature verifies, its batch token and path
   to the batch root), and the same events attached to the forms.
5. The checkpoint: station signature and timestamp, every archived event's inclusion path to
   its root, and consistency with a checkpoint the verifier already holds.

Every finding names the file (path inside the package) or the donation.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bagit
from cryptography import x509

from documents import archive_package as fmt
from documents.pdf_verify import verify_pdf
from ledger.checkpoints import CheckpointError, SignedCheckpoint, checkpoint_problems
from ledger.merkle import MerkleVerificationError, leaf_hash, verify_consistency, verify_inclusion
from ledger.report import Code, Finding, Report, Severity
from signing.errors import CertificateInvalid, LedgerError, SignatureInvalid
from signing.paths import CertificateValidator
from signing.pdf_validation import PdfValidationPolicy
from signing.tsp_validation import verify_timestamp_token
from signing.validation import verify_detached

__all__ = ["PackageReport", "verify_package"]

ARCHIVIST_ROLE = "archivist"


@dataclass(frozen=True, kw_only=True)
class PackageReport(Report):
    kind: str = "package"
    package: str
    package_id: str = ""
    donations: int = 0
    forms: int = 0
    files: int = 0
    events: int = 0
    checkpoint_size: int | None = None
    held_checkpoint_size: int | None = None

    def counts(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "package_id": self.package_id,
            "donations": self.donations,
            "forms": self.forms,
            "files": self.files,
            "events": self.events,
            "checkpoint_size": self.checkpoint_size,
            "held_checkpoint_size": self.held_checkpoint_size,
        }


class _Checker:
    def __init__(self, root: Path, trust_roots: Sequence[x509.Certificate]) -> None:
        self.root = root
        self.roots = list(trust_roots)
        self.findings: list[Finding] = []
        self.validator = CertificateValidator(self.roots, self._crls())
        self.events = 0
        self.forms = 0
        self.files = 0
        self.form_results: dict[str, tuple[list[Finding], list[str] | None]] = {}

    def add(
        self, code: Code, subject: str, message: str, severity: Severity = Severity.ERROR
    ) -> None:
        self.findings.append(Finding(code, subject, message, severity))

    def _crls(self) -> list[x509.CertificateRevocationList]:
        path = self.root / "data" / fmt.STATION_CRL
        try:
            return [x509.load_pem_x509_crl(path.read_bytes())]
        except (OSError, ValueError):
            return []  # a missing or damaged CRL is a fixity finding already

    def read(self, relative: str) -> bytes | None:
        try:
            return (self.root / relative).read_bytes()
        except OSError:
            return None  # reported by the manifest check

    # -- 1. the bag -------------------------------------------------------------------------

    def bag(self) -> dict[str, str]:
        manifests: dict[str, str] = {}
        for name in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
            data = self.read(name)
            if data is None:
                self.add(Code.PACKAGE_FILE_MISSING, name, "the manifest is missing")
                continue
            for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                digest, _, path = line.partition(" ")
                path = path.strip()
                if len(digest) != 64 or not path:
                    self.add(Code.PACKAGE_BAG_INVALID, f"{name}:{number}", "malformed line")
                    continue
                manifests[path] = digest.lower()
        for path, digest in sorted(manifests.items()):
            data = self.read(path)
            if data is None:
                self.add(Code.PACKAGE_FILE_MISSING, path, "listed in the manifest, not in the bag")
            elif hashlib.sha256(data).hexdigest() != digest:
                self.add(
                    Code.PACKAGE_FIXITY_MISMATCH,
                    path,
                    f"SHA-256 {hashlib.sha256(data).hexdigest()[:16]}... is not the manifest's "
                    f"{digest[:16]}...",
                )
        payload = self.root / "data"
        for folder, _, names in os.walk(payload):
            for name in names:
                relative = (Path(folder) / name).relative_to(self.root).as_posix()
                self.files += 1
                if relative not in manifests:
                    self.add(Code.PACKAGE_FILE_UNEXPECTED, relative, "in the bag, in no manifest")
        if not any(f.code is not Code.PACKAGE_FILE_UNEXPECTED for f in self.findings):
            try:
                bagit.Bag(str(self.root)).validate()
            except bagit.BagError as exc:
                if not self.findings:
                    self.add(Code.PACKAGE_BAG_INVALID, "bagit.txt", f"bagit: {exc}")
        return manifests

    def bag_info(self) -> dict[str, str]:
        data = self.read("bag-info.txt")
        info: dict[str, str] = {}
        if data is None:
            self.add(Code.PACKAGE_FILE_MISSING, "bag-info.txt", "no bag-info.txt")
            return info
        for line in data.decode("utf-8", "replace").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                info[key.strip()] = value.strip()
        return info

    # -- 2. the tag manifest's signature ----------------------------------------------------

    def signed_by_archivist(self, subject: str, signature: bytes, data: bytes) -> str | None:
        """Verify a detached CMS signature by an archivist; the problem, or None."""
        try:
            verified = verify_detached(signature, data)
        except (SignatureInvalid, ValueError) as exc:
            return f"the signature does not verify: {exc}"
        intermediates = [c for c in verified.certificates if c != verified.signer_certificate]
        try:
            self.validator.validate(
                verified.signer_certificate, intermediates, verified.signing_time
            )
        except CertificateInvalid as exc:
            return f"the signer certificate is not trusted at signing time: {exc}"
        titles = verified.signer_certificate.subject.get_attributes_for_oid(x509.NameOID.TITLE)
        role = str(titles[0].value) if titles else ""
        if role != ARCHIVIST_ROLE:
            return f"signed by {verified.subject_id} ({role or 'no role'}), not an archivist"
        return None

    def tag_signature(self) -> None:
        signature = self.read(fmt.TAG_SIGNATURE)
        manifest = self.read("tagmanifest-sha256.txt")
        if signature is None:
            self.add(Code.PACKAGE_SIGNATURE_INVALID, fmt.TAG_SIGNATURE, "no tag manifest signature")
            return
        if manifest is None:
            return
        problem = self.signed_by_archivist(fmt.TAG_SIGNATURE, signature, manifest)
        if problem:
            self.add(
                Code.PACKAGE_SIGNATURE_INVALID,
                fmt.TAG_SIGNATURE,
                f"over tagmanifest-sha256.txt: {problem}",
            )

    # -- 3. the catalogue ---------------------------------------------------------------------

    def catalogue(self, info: dict[str, str]) -> list[dict[str, str]]:
        xml_path = f"data/{fmt.CATALOGUE_XML}"
        data = self.read(xml_path)
        if data is None:
            self.add(Code.PACKAGE_FILE_MISSING, xml_path, "no catalogue")
            return []
        try:
            document = fmt.parse_xml(data)
            rows = fmt.read_catalogue_xml(data)
        except fmt.PackageFormatError as exc:
            self.add(Code.PACKAGE_CATALOGUE_INVALID, xml_path, str(exc))
            return []
        schema = fmt.catalogue_schema()
        if not schema.validate(document):
            self.add(
                Code.PACKAGE_CATALOGUE_INVALID,
                xml_path,
                f"not valid against docs/archive-catalogue.xsd: {schema.error_log.last_error}",
            )
        csv_path = f"data/{fmt.CATALOGUE_CSV}"
        csv_data = self.read(csv_path)
        if csv_data is not None:
            try:
                csv_rows = fmt.read_catalogue_csv(csv_data)
            except (UnicodeDecodeError, ValueError) as exc:
                csv_rows = []
                self.add(Code.PACKAGE_CATALOGUE_INVALID, csv_path, f"unreadable CSV: {exc}")
            if csv_rows != rows:
                differing = [
                    r.get("献血编号", "?") for r, c in zip(rows, csv_rows, strict=False) if r != c
                ]
                self.add(
                    Code.PACKAGE_CATALOGUE_INVALID,
                    csv_path,
                    f"the CSV catalogue differs from {fmt.CATALOGUE_XML}"
                    + (f" at donation {differing[0]}" if differing else " (row count)"),
                )
        expected = _int(info.get("Donations-Archived")) + _int(info.get("Donations-Supplementary"))
        if info and expected != len(rows):
            self.add(
                Code.PACKAGE_BAG_INFO_MISMATCH,
                "bag-info.txt",
                f"bag-info counts {expected} donations, the catalogue {len(rows)}",
            )
        return rows

    # -- 4. the donations -----------------------------------------------------------------------

    def precheck_forms(self, workers: int) -> None:
        """Run the PDF verifier over every form in `workers` processes first (it dominates)."""
        from cryptography.hazmat.primitives.serialization import Encoding

        records = self.root / "data" / fmt.RECORDS
        forms = sorted(records.glob("*/*.pdf")) if records.is_dir() else []
        if workers <= 1 or len(forms) < 2:
            return
        roots = [c.public_bytes(Encoding.DER) for c in self.roots]
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {
                pool.submit(_check_form_der, str(p), p.relative_to(self.root).as_posix(), roots): p
                for p in forms
            }
            for future in concurrent.futures.as_completed(futures):
                relative = futures[future].relative_to(self.root).as_posix()
                self.form_results[relative] = future.result()

    def donations(self, rows: list[dict[str, str]]) -> dict[str, str]:
        """Check each donation folder; returns every archived event's hash by position."""
        records = self.root / "data" / fmt.RECORDS
        folders = {p.name for p in records.iterdir() if p.is_dir()} if records.is_dir() else set()
        numbers = {r.get("献血编号", "") for r in rows}
        for number in sorted(numbers - folders):
            self.add(
                Code.PACKAGE_DONATION_MISSING,
                f"donation {number}",
                f"in the catalogue, but data/{fmt.RECORDS}/{number}/ is missing",
            )
        for number in sorted(folders - numbers):
            self.add(
                Code.PACKAGE_DONATION_UNEXPECTED,
                f"donation {number}",
                f"data/{fmt.RECORDS}/{number}/ is in no catalogue row",
            )
        events: dict[str, str] = {}
        by_number = {r.get("献血编号", ""): r for r in rows}
        for number in sorted(folders & numbers):
            events.update(self.donation(number, by_number[number]))
        return events

    def donation(self, number: str, row: dict[str, str]) -> dict[str, str]:
        base = f"data/{fmt.RECORDS}/{number}"
        folder = self.root / base
        forms = sorted(p.name for p in folder.glob("*.pdf"))
        self.forms += len(forms)
        if str(len(forms)) != row.get("电子全文数"):
            self.add(
                Code.PACKAGE_DONATION_MISSING,
                f"donation {number}",
                f"{len(forms)} forms in {base}/, the catalogue says {row.get('电子全文数')}",
            )
        # The encapsulation package.
        xml_path = f"{base}/{number}{fmt.ENCAPSULATION_SUFFIX}"
        xml = self.read(xml_path)
        if xml is None:
            self.add(Code.PACKAGE_DONATION_MISSING, xml_path, "no encapsulation package")
        else:
            self.encapsulation(xml_path, xml, number, folder, forms)
        # The forms, and the events they carry.
        attached: dict[str, list[str]] = {}
        for name in forms:
            relative = f"{base}/{name}"
            done = self.form_results.get(relative)
            if done is None:
                done = check_form(str(folder / name), relative, self.roots)
            findings, carried = done
            self.findings.extend(findings)
            if carried is not None:
                attached[name] = carried
        # The evidence.
        hashes = self.evidence(base, folder)
        for name, found in attached.items():
            if found != list(hashes.values()):
                self.add(
                    Code.PACKAGE_CONTENT_MISMATCH,
                    f"{base}/{name}",
                    f"the form carries {len(found)} events that are not the {len(hashes)} "
                    f"events of {base}/{fmt.EVIDENCE_INDEX}",
                )
        return hashes

    def encapsulation(
        self, path: str, xml: bytes, number: str, folder: Path, forms: Sequence[str]
    ) -> None:
        try:
            parsed = fmt.read_encapsulation(xml)
        except fmt.PackageFormatError as exc:
            self.add(Code.PACKAGE_ENCAPSULATION_INVALID, path, str(exc))
            return
        for what, signature, data in (
            ("电子签名", parsed.signature, parsed.signed_bytes),
            ("锁定签名", parsed.lock_signature, parsed.lock_bytes),
        ):
            problem = self.signed_by_archivist(path, signature, data)
            if problem:
                self.add(Code.PACKAGE_ENCAPSULATION_INVALID, path, f"{what}: {problem}")
        original = parsed.original
        if original is not None and original.data:
            if hashlib.sha256(original.data).hexdigest() != original.encapsulation_sha256:
                self.add(
                    Code.PACKAGE_ENCAPSULATION_INVALID,
                    path,
                    "the wrapped original package (原封装包) does not have its stated digest",
                )
            else:
                try:
                    wrapped = fmt.read_encapsulation(original.data)
                    problem = self.signed_by_archivist(
                        path, wrapped.signature, wrapped.signed_bytes
                    )
                except fmt.PackageFormatError as exc:
                    problem = str(exc)
                if problem:
                    self.add(
                        Code.PACKAGE_ENCAPSULATION_INVALID,
                        path,
                        f"the wrapped original package (原封装包): {problem}",
                    )
        if parsed.donation_no != number:
            self.add(
                Code.PACKAGE_ENCAPSULATION_INVALID,
                path,
                f"电子文件号 {parsed.donation_no} is not the folder's donation {number}",
            )
        for name in sorted(set(forms) | set(parsed.forms)):
            if name not in parsed.forms:
                self.add(Code.PACKAGE_CONTENT_MISMATCH, path, f"{name} is not encapsulated")
            elif name not in forms:
                self.add(Code.PACKAGE_CONTENT_MISMATCH, path, f"encapsulates {name}, not in folder")
            elif (folder / name).read_bytes() != parsed.forms[name]:
                self.add(
                    Code.PACKAGE_CONTENT_MISMATCH,
                    path,
                    f"the encapsulated {name} is not the bytes of the form in the folder",
                )

    def evidence(self, base: str, folder: Path) -> dict[str, str]:
        """The donation's events (position -> hash) after checking each one's evidence."""
        index_path = f"{base}/{fmt.EVIDENCE_INDEX}"
        data = self.read(index_path)
        if data is None:
            self.add(Code.PACKAGE_DONATION_MISSING, index_path, "no evidence index")
            return {}
        try:
            entries = json.loads(data)["events"]
        except (ValueError, KeyError, TypeError) as exc:
            self.add(Code.PACKAGE_EVIDENCE_INVALID, index_path, f"unreadable: {exc}")
            return {}
        hashes: dict[str, str] = {}
        evidence = folder / "evidence"
        for entry in entries:
            try:
                position = str(entry["position"])
                hashes[position] = str(entry["event_hash"])
                subject = f"{base}/evidence/{entry['event']}"
                canonical = (evidence / entry["event"]).read_bytes()
                signature = (evidence / entry["signature"]).read_bytes()
            except (KeyError, TypeError, OSError) as exc:
                self.add(Code.PACKAGE_EVIDENCE_INVALID, index_path, f"bad entry: {exc}")
                continue
            self.events += 1
            if hashlib.sha256(canonical).hexdigest() != entry["event_hash"]:
                self.add(Code.PACKAGE_EVIDENCE_INVALID, subject, "does not hash to its event hash")
                continue
            try:
                verify_detached(signature, canonical)
            except (SignatureInvalid, ValueError) as exc:
                self.add(
                    Code.PACKAGE_EVIDENCE_INVALID,
                    f"{base}/evidence/{entry['signature']}",
                    f"the event's CMS signature does not verify: {exc}",
                )
            batch = entry.get("batch")
            if batch is None:
                self.add(Code.PACKAGE_EVIDENCE_INVALID, subject, "the event has no timestamp")
                continue
            try:
                root = bytes.fromhex(batch["root"])
                verify_inclusion(
                    int(batch["leaf_index"]),
                    int(batch["size"]),
                    leaf_hash(bytes.fromhex(entry["event_hash"])),
                    [bytes.fromhex(h) for h in batch["inclusion_path"]],
                    root,
                )
                token = (evidence / batch["token"]).read_bytes()
                verify_timestamp_token(token, root, self.validator)
            except (MerkleVerificationError, KeyError, ValueError, OSError) as exc:
                self.add(Code.PACKAGE_EVIDENCE_INVALID, subject, f"batch proof fails: {exc}")
            except (SignatureInvalid, CertificateInvalid) as exc:
                self.add(
                    Code.PACKAGE_EVIDENCE_INVALID,
                    f"{base}/evidence/{batch.get('token')}",
                    f"the batch token does not verify: {exc}",
                )
        return hashes

    # -- 5. the checkpoint ---------------------------------------------------------------------

    def checkpoint(self) -> SignedCheckpoint | None:
        path = f"data/{fmt.CHECKPOINT}"
        data = self.read(path)
        if data is None:
            self.add(Code.PACKAGE_FILE_MISSING, path, "no checkpoint")
            return None
        try:
            checkpoint = SignedCheckpoint.from_json(json.loads(data))
        except (ValueError, CheckpointError) as exc:
            self.add(Code.CHECKPOINT_INVALID, path, f"unreadable checkpoint: {exc}")
            return None
        for problem in checkpoint_problems(checkpoint, self.validator):
            self.add(Code.CHECKPOINT_INVALID, path, problem)
        return checkpoint

    def inclusion(self, checkpoint: SignedCheckpoint, events: dict[str, str]) -> None:
        path = f"data/{fmt.INCLUSION}"
        data = self.read(path)
        if data is None:
            self.add(Code.PACKAGE_FILE_MISSING, path, "no inclusion paths")
            return
        try:
            document = json.loads(data)
            entries = {str(e["position"]): e for e in document["events"]}
        except (ValueError, KeyError, TypeError) as exc:
            self.add(Code.PACKAGE_INCLUSION_INVALID, path, f"unreadable: {exc}")
            return
        root = bytes.fromhex(checkpoint.root)
        for position, event_hash in sorted(events.items(), key=lambda kv: int(kv[0])):
            entry = entries.get(position)
            if entry is None or entry.get("event_hash") != event_hash:
                self.add(
                    Code.PACKAGE_INCLUSION_INVALID,
                    f"{path}: position {position}",
                    "no inclusion path for this archived event",
                )
                continue
            try:
                verify_inclusion(
                    int(entry["leaf_index"]),
                    checkpoint.size,
                    leaf_hash(bytes.fromhex(event_hash)),
                    [bytes.fromhex(h) for h in entry["inclusion_path"]],
                    root,
                )
            except (MerkleVerificationError, KeyError, ValueError) as exc:
                self.add(
                    Code.PACKAGE_INCLUSION_INVALID,
                    f"{path}: position {position}",
                    f"the event is not proven in the checkpoint of {checkpoint.size}: {exc}",
                )

    def held(self, checkpoint: SignedCheckpoint, held: SignedCheckpoint) -> None:
        subject = "the held checkpoint"
        for problem in checkpoint_problems(held, self.validator):
            self.add(Code.CHECKPOINT_INVALID, subject, problem)
        if held.size == checkpoint.size:
            if held.root != checkpoint.root:
                self.add(
                    Code.CHECKPOINT_INCONSISTENT,
                    f"data/{fmt.CHECKPOINT}",
                    f"same size {held.size} as the held checkpoint, another root: a fork",
                )
            return
        if held.size > checkpoint.size:
            self.add(
                Code.PACKAGE_CHECKPOINT_UNPROVEN,
                f"data/{fmt.CHECKPOINT}",
                f"the held checkpoint ({held.size} events) is newer than the package's "
                f"({checkpoint.size}): check the ledger with `ledger verify --since`",
                Severity.INDETERMINATE,
            )
            return
        data = self.read(f"data/{fmt.CONSISTENCY}") or b"{}"
        try:
            proofs = json.loads(data).get("proofs", [])
        except ValueError:
            proofs = []
        proof = next(
            (
                p
                for p in proofs
                if p.get("old_size") == held.size and p.get("old_root") == held.root
            ),
            None,
        )
        if proof is None:
            self.add(
                Code.PACKAGE_CHECKPOINT_UNPROVEN,
                f"data/{fmt.CONSISTENCY}",
                f"no consistency proof from the held checkpoint of {held.size} events",
                Severity.INDETERMINATE,
            )
            return
        try:
            verify_consistency(
                held.size,
                checkpoint.size,
                bytes.fromhex(held.root),
                bytes.fromhex(checkpoint.root),
                [bytes.fromhex(h) for h in proof["proof"]],
            )
        except (MerkleVerificationError, ValueError) as exc:
            self.add(
                Code.CHECKPOINT_INCONSISTENT,
                f"data/{fmt.CONSISTENCY}",
                f"the package's checkpoint does not extend the held one: {exc}",
            )

    def four_properties(self) -> None:
        path = f"data/{fmt.REPORT_JSON}"
        data = self.read(path)
        if data is None:
            self.add(Code.PACKAGE_FILE_MISSING, path, "no four-properties report")
            return
        try:
            verdict = json.loads(data)["verdict"]
        except (ValueError, KeyError, TypeError) as exc:
            self.add(Code.PACKAGE_FOUR_PROPERTIES_FAILED, path, f"unreadable: {exc}")
            return
        if verdict != "PASSED":
            self.add(Code.PACKAGE_FOUR_PROPERTIES_FAILED, path, f"the report says {verdict}")


def check_form(
    path: str, relative: str, roots: Sequence[x509.Certificate]
) -> tuple[list[Finding], list[str] | None]:
    """One form through the PDF verifier: its findings (subjects prefixed with its path in the
    package) and the event hashes it carries (None when it cannot be read)."""
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    policy = PdfValidationPolicy(require_revocation_data=True)
    try:
        report = verify_pdf(Path(path).read_bytes(), roots, name=relative, policy=policy)
    except (LedgerError, OSError) as exc:
        return [Finding(Code.PDF_UNREADABLE, relative, str(exc))], None
    findings = []
    for finding in report.findings:
        subject = finding.subject
        if not subject.startswith(relative):
            subject = f"{relative}: {subject}"
        findings.append(Finding(finding.code, subject, finding.message, finding.severity))
    return findings, [e.event_hash for e in report.evidence.events]


def _check_form_der(
    path: str, relative: str, roots_der: Sequence[bytes]
) -> tuple[list[Finding], list[str] | None]:
    roots = [x509.load_der_x509_certificate(der) for der in roots_der]
    return check_form(path, relative, roots)


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return -1


def verify_package(
    path: Path,
    trust_roots: Sequence[x509.Certificate],
    *,
    held: SignedCheckpoint | None = None,
    workers: int = 1,
) -> PackageReport:
    """Steps 1-5 over the package folder `path` (a BagIt bag); the forms' PDF checks in
    `workers` processes."""
    checker = _Checker(path, trust_roots)
    checker.bag()
    checker.precheck_forms(workers)
    info = checker.bag_info()
    checker.tag_signature()
    rows = checker.catalogue(info)
    events = checker.donations(rows)
    checkpoint = checker.checkpoint()
    if checkpoint is not None:
        checker.inclusion(checkpoint, events)
        if held is not None:
            checker.held(checkpoint, held)
    checker.four_properties()
    return PackageReport(
        findings=tuple(checker.findings),
        package=str(path),
        package_id=info.get("Package-Id", ""),
        donations=len(rows),
        forms=checker.forms,
        files=checker.files,
        events=checker.events,
        checkpoint_size=checkpoint.size if checkpoint is not None else None,
        held_checkpoint_size=held.size if held is not None else None,
    )
