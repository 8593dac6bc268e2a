"""Checking the signatures and document timestamps of a PDF, offline: the half a regulator runs.

This module imports no creation code (no `signing.pades`, `signing.cms`, `signing.pki`,
`signing.tsa`, nor pyHanko's signers): pyHanko's validation API does the PAdES work, and the
project's own checkers (`signing.tsp_validation`, `signing.paths`) cross-check every timestamp
token and certificate against the same trust roots and the CRLs the document carries.

Every signature field that holds a value is checked, in revision order (ISO 32000-2 12.8,
ETSI EN 319 142-1):

1. Structure (universal signature forgery): the value is a /Sig dictionary with SubFilter
   ETSI.CAdES.detached or adbe.pkcs7.detached, or a /DocTimeStamp with ETSI.RFC3161; it has a
   /ByteRange and a /Contents holding a DER CMS SignedData (not empty, null or zeros), followed
   by nothing but zero padding.
2. Byte range (signature wrapping): /ByteRange is [0 a b c]; the gap [a, b) holds this
   signature's /Contents as one hex string and nothing else; b + c is the end of a revision
   (right after a %%EOF), and pyHanko finds that the range covers that whole revision.
3. Integrity: the signed message digest equals the digest over the byte range and the signature
   value verifies (pyHanko `intact` and `valid`).
4. Trusted time: a signature's time is the genTime of its signature timestamp, else that of the
   first later document timestamp; every timestamp verifies (pyHanko, and
   `signing.tsp_validation`: imprint, signature, TSA certificate with extendedKeyUsage
   timeStamping alone and critical); timestamps do not go back in time from revision to revision.
5. Certificates at that time: the path of the signer's (and each TSA's) certificate to a given
   trust root, offline (no fetching), valid at the trusted time and not revoked according to the
   CRLs and OCSP responses in the document (DSS, CMS); with `require_revocation_data`, each
   end-entity certificate must have such revocation data, or its status cannot be shown offline.
6. Modifications (incremental saving, shadow and certification attacks): pyHanko's difference
   analysis of every revision after the signed one. LTA updates (DSS, document timestamps) pass;
   form filling passes only when each changed field is a signature field signed later by a
   signature that itself verifies; annotations and anything else fail, as does any change
   beyond a certification signature's DocMDP permission.

For the file as a whole:

7. nothing but whitespace follows the last %%EOF;
8. every signature dictionary in the file is the value of a signature field (a signature that
   no field holds would be shown by some viewers and checked by no one).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import crl, ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    DiffResult,
    ModificationLevel,
    SuspiciousModification,
)
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from signing._pdf_bytes import (
    DOCUMENT_TIMESTAMP,
    MALFORMED,
    byte_range_problems,
    claimed_time,
    cms_crls,
    der_and_padding,
    imprint_algorithm,
    one_line,
    orphan_signature_problems,
    range_text,
    serial_attribute,
    signer_name,
    signer_name_of,
    to_asn1,
    to_crypto,
    trailing_bytes_problems,
)
from signing.errors import CertificateInvalid, PdfUnreadable, SignatureInvalid
from signing.paths import CertificateValidator
from signing.tsp_validation import verify_timestamp_token

__all__ = [
    "DOCUMENT_TIMESTAMP",
    "SIGNATURE",
    "PdfSignaturesReport",
    "PdfValidationPolicy",
    "SignatureCheck",
    "async_validate_pdf_signatures",
    "validate_pdf_signatures",
]

SIGNATURE = "signature"

_SIGNATURE_SUBFILTERS = frozenset({"/ETSI.CAdES.detached", "/adbe.pkcs7.detached"})
_TIMESTAMP_SUBFILTERS = frozenset({"/ETSI.RFC3161"})
#: Signing times are whole seconds in places, and a TSA's accuracy is about a second.
TOLERANCE = timedelta(seconds=1)
_GOOD_LEVELS = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)


@dataclass(frozen=True)
class PdfValidationPolicy:
    """What the verifier demands beyond a valid signature."""

    #: Each signer and TSA certificate must have a CRL of its issuer or an OCSP response in the
    #: document (PAdES B-LT and B-LTA embed them in the DSS): otherwise "not revoked" is unproven.
    require_revocation_data: bool = True
    #: Each signature must have a trusted time: its own timestamp or a later document timestamp.
    require_trusted_time: bool = True


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome for one signature or document timestamp; `problems` empty means it holds."""

    field_name: str
    kind: str  # SIGNATURE or DOCUMENT_TIMESTAMP
    revision: int  # the revision it signs, 1 = the original document
    byte_range: tuple[int, ...]
    signer: str  # the certificate subject, readable
    signer_id: str  # its serialNumber attribute (STAFF:..., TSA:...), "" when absent
    time: datetime | None  # the trusted time the certificates were checked at
    time_source: str  # where that time comes from
    coverage: str  # pyHanko's coverage level: ENTIRE_FILE, ENTIRE_REVISION, ...
    modification_level: str  # NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER, ""
    changed_fields: tuple[str, ...]  # form fields changed after this signature
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        what = "document timestamp" if self.kind == DOCUMENT_TIMESTAMP else "signature"
        return f"{what} '{self.field_name}' (revision {self.revision})"

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field_name,
            "kind": self.kind,
            "ok": self.ok,
            "revision": self.revision,
            "byte_range": list(self.byte_range),
            "signer": self.signer,
            "signer_id": self.signer_id,
            "time": self.time.isoformat() if self.time else None,
            "time_source": self.time_source,
            "coverage": self.coverage,
            "modification_level": self.modification_level,
            "changed_fields": list(self.changed_fields),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class PdfSignaturesReport:
    """Every signature and document timestamp of one file, and the file-level findings."""

    file_size: int
    revisions: int
    signatures: tuple[SignatureCheck, ...]
    unsigned_fields: tuple[str, ...]
    dss_certificates: int
    dss_crls: int
    dss_ocsps: int
    problems: tuple[str, ...]  # findings about the file rather than one signature

    @property
    def bottom_line(self) -> bool:
        """True when there is a signature, every one holds and the file shows nothing else."""
        return bool(self.signatures) and not self.problems and all(s.ok for s in self.signatures)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.bottom_line,
            "file_size": self.file_size,
            "revisions": self.revisions,
            "signatures": [s.to_json() for s in self.signatures],
            "unsigned_fields": list(self.unsigned_fields),
            "dss": {
                "certificates": self.dss_certificates,
                "crls": self.dss_crls,
                "ocsp_responses": self.dss_ocsps,
            },
            "problems": list(self.problems),
        }


def validate_pdf_signatures(
    data: bytes,
    trust_roots: Sequence[x509.Certificate],
    policy: PdfValidationPolicy | None = None,
) -> PdfSignaturesReport:
    """Check every signature of the PDF `data` (steps 1-8 above) against `trust_roots`.

    Raises `PdfUnreadable` when `data` is not a PDF pyHanko can read or holds no signature.
    """
    return asyncio.run(async_validate_pdf_signatures(data, trust_roots, policy))


async def async_validate_pdf_signatures(
    data: bytes,
    trust_roots: Sequence[x509.Certificate],
    policy: PdfValidationPolicy | None = None,
) -> PdfSignaturesReport:
    """`validate_pdf_signatures` for callers already inside an event loop."""
    if not trust_roots:
        raise ValueError("at least one trust root is needed")
    document = _Document.read(data, trust_roots, policy or PdfValidationPolicy())
    return await document.validate()


# -- internals ------------------------------------------------------------------------------


@dataclass
class _Field:
    """A filled signature field as found, before validation."""

    name: str
    kind: str
    reference: tuple[int, int] | None
    embedded: EmbeddedPdfSignature | None
    revision: int  # 0-based signed revision (pyHanko's numbering); -1 when unknown
    problems: list[str] = field(default_factory=list)
    claimed_time: datetime | None = None  # unverified genTime of its own timestamp token


class _Document:
    def __init__(
        self,
        data: bytes,
        reader: PdfFileReader,
        trust_roots: Sequence[x509.Certificate],
        policy: PdfValidationPolicy,
    ) -> None:
        self.data = data
        self.reader = reader
        self.policy = policy
        self.trust_roots = tuple(trust_roots)
        self.asn1_roots = [to_asn1(c) for c in trust_roots]
        self.fields: list[_Field] = []
        self.unsigned: list[str] = []
        self.dss_certs: list[asn1_x509.Certificate] = []
        self.dss_crls: list[crl.CertificateList] = []
        self.dss_ocsps: list[ocsp.OCSPResponse] = []
        self.problems: list[str] = []

    @classmethod
    def read(
        cls, data: bytes, trust_roots: Sequence[x509.Certificate], policy: PdfValidationPolicy
    ) -> _Document:
        if b"%PDF-" not in data[:1024]:
            raise PdfUnreadable("not a PDF: no %PDF- header in the first 1024 bytes")
        if b"%%EOF" not in data:
            raise PdfUnreadable("not a complete PDF: no %%EOF marker")
        try:
            reader = PdfFileReader(io.BytesIO(data), strict=True)
            document = cls(data, reader, trust_roots, policy)
            document._read_fields()
            document._read_dss()
        except PdfUnreadable:
            raise
        except Exception as exc:  # pyHanko raises PdfReadError, KeyError, ... on damaged files
            raise PdfUnreadable(f"cannot read the PDF: {one_line(exc)}") from exc
        if not document.fields:
            dictionaries = len(re.findall(rb"/ByteRange\s*\[", data))
            if not dictionaries:
                raise PdfUnreadable("the PDF holds no signature (no signature field has a value)")
            document.problems.append(
                f"the file holds {dictionaries} signature dictionaries but no signature field of "
                "its current revision has a value: signatures were removed or hidden"
            )
        return document

    def _read_fields(self) -> None:
        names: list[str] = []
        for name, value, field_ref in enumerate_sig_fields(self.reader):
            names.append(str(name))
            if value is None or isinstance(value.get_object(), generic.NullObject):
                self.unsigned.append(str(name))
                continue
            self.fields.append(self._read_field(str(name), value, field_ref))
        self.fields.sort(key=lambda f: f.revision)
        # Changes after a signature are explained by name (step 6): names must be unique.
        for name in sorted({n for n in names if names.count(n) > 1}):
            self.problems.append(f"{names.count(name)} signature fields are named '{name}'")

    def _read_field(self, name: str, value: Any, field_ref: Any) -> _Field:
        reference = None
        if isinstance(value, generic.IndirectObject):
            reference = (value.idnum, value.generation)
        sig_object = value.get_object()
        if not isinstance(sig_object, generic.DictionaryObject):
            entry = _Field(name, SIGNATURE, reference, None, -1)
            entry.problems.append("the field's value is not a signature dictionary")
            return entry
        sig_type = str(sig_object.get("/Type", "/Sig"))
        kind = DOCUMENT_TIMESTAMP if sig_type == "/DocTimeStamp" else SIGNATURE
        entry = _Field(name, kind, reference, None, -1)
        subfilter = str(sig_object.get("/SubFilter", ""))
        allowed = _TIMESTAMP_SUBFILTERS if kind == DOCUMENT_TIMESTAMP else _SIGNATURE_SUBFILTERS
        if sig_type not in ("/Sig", "/DocTimeStamp"):
            entry.problems.append(f"the signature dictionary has /Type {sig_type}")
        if subfilter not in allowed:
            entry.problems.append(
                f"SubFilter {subfilter or '(none)'} is not one of {', '.join(sorted(allowed))}"
            )
        if isinstance(value, generic.IndirectObject):
            entry.revision = int(self.reader.xrefs.get_last_change(value.reference))
        try:
            embedded = EmbeddedPdfSignature(self.reader, field_ref, name)
        except Exception as exc:
            where = f"signature dictionary {reference[0]} {reference[1]} R" if reference else "it"
            entry.problems.append(f"{where} has no usable signature value: {one_line(exc)}")
            return entry
        entry.embedded = embedded
        entry.revision = int(embedded.signed_revision)
        entry.claimed_time = claimed_time(embedded, kind)
        return entry

    def _read_dss(self) -> None:
        try:
            dss = DocumentSecurityStore.read_dss(self.reader)
        except NoDSSFoundError:
            return
        self.dss_certs = list(dss.load_certs())
        self.dss_crls = [crl.CertificateList.load(ref.get_object().data) for ref in dss.crls]
        self.dss_ocsps = [ocsp.OCSPResponse.load(ref.get_object().data) for ref in dss.ocsps]

    # -- validation ---------------------------------------------------------------------------

    async def validate(self) -> PdfSignaturesReport:
        self._check_order_of_times()
        results: dict[int, tuple[_Field, dict[str, Any]]] = {}
        for index, entry in enumerate(self.fields):
            if entry.embedded is None:
                results[index] = (entry, {})
                continue
            facts = await self._validate_field(entry)
            results[index] = (entry, facts)
        # Step 6, last part: form fields changed after a signature must be signatures signed
        # later that hold; judged from the latest signature back, so each later verdict is known.
        verdicts: dict[str, bool] = {}
        checks: list[SignatureCheck] = []
        for index in reversed(range(len(self.fields))):
            entry, facts = results[index]
            changed = tuple(sorted(facts.get("changed_fields", ())))
            later = {f.name for f in self.fields[index + 1 :] if f.revision > entry.revision}
            unexplained = [name for name in changed if name not in later]
            if unexplained:
                entry.problems.append(
                    "after signing, form field(s) "
                    + ", ".join(f"'{name}'" for name in unexplained)
                    + " were added or changed other than by a later signature"
                )
            for name in changed:
                if name in later and not verdicts.get(name, False):
                    entry.problems.append(
                        f"after signing, field '{name}' was signed by a signature that does not "
                        "hold"
                    )
            verdicts[entry.name] = not entry.problems
            checks.append(_check(entry, facts))
        checks.reverse()
        self._check_file()
        return PdfSignaturesReport(
            file_size=len(self.data),
            revisions=int(self.reader.xrefs.total_revisions),
            signatures=tuple(checks),
            unsigned_fields=tuple(self.unsigned),
            dss_certificates=len(self.dss_certs),
            dss_crls=len(self.dss_crls),
            dss_ocsps=len(self.dss_ocsps),
            problems=tuple(self.problems),
        )

    async def _validate_field(self, entry: _Field) -> dict[str, Any]:
        embedded = entry.embedded
        assert embedded is not None
        layout = byte_range_problems(self.data, embedded)
        entry.problems.extend(layout)
        moment, source = self._trusted_time(entry)
        if any(p.startswith(MALFORMED) for p in layout):
            return {"time": moment, "time_source": source}
        try:
            if entry.kind == DOCUMENT_TIMESTAMP:
                status: Any = await async_validate_pdf_timestamp(
                    embedded, self._context(moment), diff_policy=DEFAULT_DIFF_POLICY
                )
            else:
                status = await async_validate_pdf_signature(
                    embedded,
                    signer_validation_context=self._context(moment),
                    ts_validation_context=self._context(moment),
                    diff_policy=DEFAULT_DIFF_POLICY,
                )
        except Exception as exc:  # malformed CMS, hybrid xrefs in strict mode, ...
            entry.problems.append(f"cannot be validated: {one_line(exc)}")
            return {"time": moment, "time_source": source}
        entry.problems.extend(self._status_problems(entry, status, moment))
        entry.problems.extend(self._cross_check(entry, status, moment))
        diff = status.diff_result
        changed = diff.changed_form_fields if isinstance(diff, DiffResult) else set()
        level = status.modification_level
        return {
            "time": moment,
            "time_source": source,
            "signer": signer_name(status.signing_cert),
            "signer_id": serial_attribute(status.signing_cert),
            "coverage": status.coverage.name if status.coverage is not None else "",
            "level": level.name if level is not None else "",
            "changed_fields": {str(name) for name in changed},
        }

    def _trusted_time(self, entry: _Field) -> tuple[datetime, str]:
        if entry.kind == DOCUMENT_TIMESTAMP and entry.claimed_time is not None:
            return entry.claimed_time, "its own genTime"
        if entry.claimed_time is not None:
            return entry.claimed_time, "signature timestamp"
        for later in self.fields:
            if (
                later.kind == DOCUMENT_TIMESTAMP
                and later.revision > entry.revision
                and later.claimed_time is not None
            ):
                return later.claimed_time, f"document timestamp '{later.name}' (upper bound)"
        if self.policy.require_trusted_time:
            entry.problems.append(
                "no trusted time: no signature timestamp and no later document timestamp"
            )
        embedded = entry.embedded
        claimed = embedded.self_reported_timestamp if embedded is not None else None
        if isinstance(claimed, datetime):
            return claimed.astimezone(UTC), "signer's claim (untrusted)"
        return datetime.now(UTC), "time of verification"

    def _context(self, moment: datetime) -> ValidationContext:
        return ValidationContext(
            trust_roots=self.asn1_roots,
            other_certs=self.dss_certs,
            crls=self.dss_crls,
            ocsps=self.dss_ocsps,
            allow_fetching=False,
            moment=moment,
            retroactive_revinfo=True,  # a CRL issued just after the signing time still counts
            revocation_mode="hard-fail",
        )

    def _status_problems(self, entry: _Field, status: Any, moment: datetime) -> list[str]:
        """Steps 2, 3, 5 and 6 as pyHanko reports them."""
        problems: list[str] = []
        byte_range = range_text(entry.embedded)
        if not status.intact:
            problems.append(
                f"the digest over ByteRange {byte_range} does not match the signed digest: the "
                "signed bytes were changed"
            )
        if not status.valid:
            problems.append("the signature value does not verify")
        if status.intact and status.valid and not status.trusted:
            if status.revoked:
                details = status.revocation_details
                problems.append(
                    f"the certificate of {signer_name(status.signing_cert)} was revoked on "
                    f"{details.revocation_date.isoformat()}"
                )
            else:
                indication = status.trust_problem_indic
                problems.append(
                    f"no trusted certificate path for {signer_name(status.signing_cert)} at "
                    f"{moment.isoformat()}"
                    + (f" ({indication.name})" if indication is not None else "")
                )
        tst = getattr(status, "timestamp_validity", None)
        if tst is not None and not (tst.intact and tst.valid and tst.trusted):
            problems.append("the signature timestamp does not verify or its TSA is not trusted")
        if getattr(status, "seed_value_constraint_error", None) is not None:
            problems.append(f"seed value constraint: {status.seed_value_constraint_error}")
        coverage = status.coverage
        if coverage not in (
            SignatureCoverageLevel.ENTIRE_FILE,
            SignatureCoverageLevel.ENTIRE_REVISION,
        ):
            problems.append(
                f"ByteRange {byte_range} does not cover its whole revision "
                f"({coverage.name if coverage is not None else 'unknown coverage'})"
            )
        diff = status.diff_result
        level = status.modification_level
        if isinstance(diff, SuspiciousModification):
            problems.append(f"changed after signing: {one_line(diff, 400)}")
        elif level == ModificationLevel.ANNOTATIONS:
            problems.append("annotations were added or changed after signing")
        elif level == ModificationLevel.OTHER:
            problems.append("the document was changed after signing (modification level OTHER)")
        elif level is None and coverage == SignatureCoverageLevel.ENTIRE_REVISION:
            problems.append("later revisions were not analysed")
        if entry.kind == SIGNATURE and status.docmdp_ok is False and level in _GOOD_LEVELS:
            problems.append("changes after signing exceed the certification's DocMDP permission")
        return problems

    def _cross_check(self, entry: _Field, status: Any, moment: datetime) -> list[str]:
        """Steps 4 and 5 again with the project's own checkers (SHA-256 timestamp imprints; pyHanko
        alone judges others), and revocation data present."""
        embedded = entry.embedded
        assert embedded is not None
        validator = CertificateValidator(self.trust_roots, self._crls_of(embedded))
        problems: list[str] = []
        tokens: list[tuple[bytes, bytes, str]] = []  # token DER, imprint, what it is
        if entry.kind == DOCUMENT_TIMESTAMP:
            token, trailing = der_and_padding(embedded.pkcs7_content)
            if trailing:
                problems.append("/Contents holds bytes after the timestamp token")
            if embedded.external_md_algorithm == "sha256":  # the project's checker: SHA-256
                tokens.append((token, embedded.compute_digest("sha256"), "document timestamp"))
        else:
            _, trailing = der_and_padding(embedded.pkcs7_content)
            if trailing:
                problems.append("/Contents holds bytes after the CMS signature")
            value = embedded.signer_info["signature"].native
            for attribute in embedded.signer_info["unsigned_attrs"] or ():
                if attribute["type"].native == "signature_time_stamp_token":
                    for token_info in attribute["values"]:
                        if imprint_algorithm(token_info) == "sha256":
                            tokens.append(
                                (token_info.dump(), hashlib.sha256(value).digest(), "timestamp")
                            )
            signer = to_crypto(embedded.signer_cert)
            others = [to_crypto(c) for c in (*embedded.other_embedded_certs, *self.dss_certs)]
            try:
                validator.validate(signer, others, at=moment)
            except CertificateInvalid as exc:
                problems.append(f"certificate path: {exc.reason}")
            problems.extend(self._revocation_data_problems(embedded, embedded.signer_cert))
        for token, imprint, what in tokens:
            try:
                stamp = verify_timestamp_token(token, imprint, validator)
            except (SignatureInvalid, CertificateInvalid) as exc:
                problems.append(f"{what}: {exc.reason}")
                continue
            tsa = to_asn1(stamp.tsa_certificate)
            problems.extend(self._revocation_data_problems(embedded, tsa))
        return problems

    def _crls_of(self, embedded: EmbeddedPdfSignature) -> list[x509.CertificateRevocationList]:
        found = [*self.dss_crls, *cms_crls(embedded.signed_data)]
        return [x509.load_der_x509_crl(item.dump()) for item in found]

    def _revocation_data_problems(
        self, embedded: EmbeddedPdfSignature, certificate: asn1_x509.Certificate
    ) -> list[str]:
        if not self.policy.require_revocation_data:
            return []
        issuer = certificate.issuer
        if any(item["tbs_cert_list"]["issuer"] == issuer for item in self._all_crls(embedded)):
            return []
        serial = certificate.serial_number
        for response in self.dss_ocsps:
            basic = response["response_bytes"]["response"].parsed
            for single in basic["tbs_response_data"]["responses"]:
                if single["cert_id"]["serial_number"].native == serial:
                    return []
        return [
            f"no revocation data for {signer_name(certificate)}: no CRL of "
            f"{signer_name_of(issuer)} and no OCSP response in the document, so its status "
            "cannot be shown offline"
        ]

    def _all_crls(self, embedded: EmbeddedPdfSignature) -> list[crl.CertificateList]:
        return [*self.dss_crls, *cms_crls(embedded.signed_data)]

    def _check_order_of_times(self) -> None:
        """Step 4, last part: a later revision's timestamp is not earlier than an earlier one's."""
        latest: tuple[datetime, str] | None = None
        for entry in self.fields:
            if entry.claimed_time is None:
                continue
            if latest is not None and entry.claimed_time + TOLERANCE < latest[0]:
                entry.problems.append(
                    f"its timestamp ({entry.claimed_time.isoformat()}) is earlier than that of "
                    f"'{latest[1]}' in an earlier revision ({latest[0].isoformat()})"
                )
            if latest is None or entry.claimed_time > latest[0]:
                latest = (entry.claimed_time, entry.name)

    def _check_file(self) -> None:
        """Steps 7 and 8."""
        self.problems.extend(trailing_bytes_problems(self.data))
        known = {f.reference[0] for f in self.fields if f.reference is not None}
        self.problems.extend(orphan_signature_problems(self.data, known))


def _check(entry: _Field, facts: dict[str, Any]) -> SignatureCheck:
    embedded = entry.embedded
    byte_range: tuple[int, ...] = ()
    if embedded is not None and isinstance(embedded.byte_range, generic.ArrayObject):
        byte_range = tuple(int(x) for x in embedded.byte_range if isinstance(x, int))
    return SignatureCheck(
        field_name=entry.name,
        kind=entry.kind,
        revision=entry.revision + 1 if entry.revision >= 0 else 0,
        byte_range=byte_range,
        signer=str(facts.get("signer", "")),
        signer_id=str(facts.get("signer_id", "")),
        time=facts.get("time"),
        time_source=str(facts.get("time_source", "")),
        coverage=str(facts.get("coverage", "")),
        modification_level=str(facts.get("level", "")),
        changed_fields=tuple(sorted(facts.get("changed_fields", ()))),
        problems=tuple(entry.problems),
    )
