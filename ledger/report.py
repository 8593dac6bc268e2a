"""One verification report for every verifier: `ledger verify`, `ledger verify-pdf` and what
comes next (`verify-package`, the HTTP API).

Modelled on pyHanko's ``sign/validation/status.py`` (frozen results with one bottom line) and the
EU DSS simple report: a verdict in the ETSI EN 319 102-1 vocabulary (``PASSED``, ``FAILED``,
``INDETERMINATE``) decided by the findings' severities, and findings that a program reads by
their stable ``code`` and ``subject``, never by parsing the English ``message``.

docs/verification.md lists every code with its meaning and the JSON shape with its version;
tests/unit/ledger/test_report.py fails when a code is missing there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Version of the JSON shape printed by ``--json`` (docs/verification.md). Raise it when a key
#: changes meaning or disappears; adding a key or a code does not change it.
JSON_VERSION = 1


class Verdict(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    INDETERMINATE = "INDETERMINATE"


class Severity(StrEnum):
    """What a finding does to the verdict."""

    #: Proof of alteration or invalidity: the verdict is FAILED.
    ERROR = "ERROR"
    #: Something could not be proven either way: the verdict is at best INDETERMINATE.
    INDETERMINATE = "INDETERMINATE"
    #: Worth reading, proves nothing wrong: the verdict is unchanged.
    WARNING = "WARNING"


class Code(StrEnum):
    """Stable finding codes. Never rename or reuse one; add new ones at the end of a group."""

    # -- stored events and the hash chain --
    EVENT_UNDECODABLE = "EVENT_UNDECODABLE"
    EVENT_NOT_LEDGER_EVENT = "EVENT_NOT_LEDGER_EVENT"
    EVENT_HASH_MISMATCH = "EVENT_HASH_MISMATCH"
    EVENT_MISSING = "EVENT_MISSING"
    CHAIN_ENTRY_MISSING = "CHAIN_ENTRY_MISSING"
    CHAIN_ENTRY_MISMATCH = "CHAIN_ENTRY_MISMATCH"
    CHAIN_LINK_MISMATCH = "CHAIN_LINK_MISMATCH"
    AGGREGATE_VERSION_GAP = "AGGREGATE_VERSION_GAP"
    AGGREGATE_LINK_MISMATCH = "AGGREGATE_LINK_MISMATCH"
    # -- event signatures and signers --
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNER_NOT_ACTOR = "SIGNER_NOT_ACTOR"
    ACTOR_ROLE_MISMATCH = "ACTOR_ROLE_MISMATCH"
    SIGNING_TIME_MISMATCH = "SIGNING_TIME_MISMATCH"
    SIGNER_CERT_INVALID = "SIGNER_CERT_INVALID"
    SIGNER_CERT_REVOKED = "SIGNER_CERT_REVOKED"
    # -- control points --
    RULE_SET_UNKNOWN = "RULE_SET_UNKNOWN"
    RULE_OUTCOME_MISMATCH = "RULE_OUTCOME_MISMATCH"
    # -- trusted time --
    SIGNATURE_TIMESTAMP_INVALID = "SIGNATURE_TIMESTAMP_INVALID"
    SIGNATURE_TIMESTAMP_MISSING = "SIGNATURE_TIMESTAMP_MISSING"
    BATCH_LAYOUT_INVALID = "BATCH_LAYOUT_INVALID"
    BATCH_ROOT_MISMATCH = "BATCH_ROOT_MISMATCH"
    TIMESTAMP_IMPRINT_MISMATCH = "TIMESTAMP_IMPRINT_MISMATCH"
    TIMESTAMP_INVALID = "TIMESTAMP_INVALID"
    TIMESTAMP_BEFORE_SIGNATURE = "TIMESTAMP_BEFORE_SIGNATURE"
    BATCH_TIME_MISMATCH = "BATCH_TIME_MISMATCH"
    EVENTS_PENDING_TOO_LONG = "EVENTS_PENDING_TOO_LONG"
    # -- checkpoints and witnesses --
    CHECKPOINT_INVALID = "CHECKPOINT_INVALID"
    CHECKPOINT_INCONSISTENT = "CHECKPOINT_INCONSISTENT"
    BATCH_STAMPED_AFTER_CHECKPOINT = "BATCH_STAMPED_AFTER_CHECKPOINT"
    CHECKPOINT_NOT_WITNESSED = "CHECKPOINT_NOT_WITNESSED"
    FINDINGS_TRUNCATED = "FINDINGS_TRUNCATED"
    # -- signed PDF forms --
    PDF_SIGNATURE_INVALID = "PDF_SIGNATURE_INVALID"
    PDF_BYTE_RANGE_INVALID = "PDF_BYTE_RANGE_INVALID"
    PDF_MODIFIED_AFTER_SIGNING = "PDF_MODIFIED_AFTER_SIGNING"
    PDF_TIMESTAMP_INVALID = "PDF_TIMESTAMP_INVALID"
    PDF_TRUSTED_TIME_MISSING = "PDF_TRUSTED_TIME_MISSING"
    PDF_REVOCATION_DATA_MISSING = "PDF_REVOCATION_DATA_MISSING"
    PDF_STRUCTURE_INVALID = "PDF_STRUCTURE_INVALID"
    PDFA_NONCONFORMANT = "PDFA_NONCONFORMANT"
    PDF_EVIDENCE_INVALID = "PDF_EVIDENCE_INVALID"
    PDF_UNREADABLE = "PDF_UNREADABLE"
    # -- transfer packages (verify-package) --
    PACKAGE_FILE_MISSING = "PACKAGE_FILE_MISSING"
    PACKAGE_FILE_UNEXPECTED = "PACKAGE_FILE_UNEXPECTED"
    PACKAGE_FIXITY_MISMATCH = "PACKAGE_FIXITY_MISMATCH"
    PACKAGE_BAG_INVALID = "PACKAGE_BAG_INVALID"
    PACKAGE_BAG_INFO_MISMATCH = "PACKAGE_BAG_INFO_MISMATCH"
    PACKAGE_SIGNATURE_INVALID = "PACKAGE_SIGNATURE_INVALID"
    PACKAGE_CATALOGUE_INVALID = "PACKAGE_CATALOGUE_INVALID"
    PACKAGE_DONATION_MISSING = "PACKAGE_DONATION_MISSING"
    PACKAGE_DONATION_UNEXPECTED = "PACKAGE_DONATION_UNEXPECTED"
    PACKAGE_ENCAPSULATION_INVALID = "PACKAGE_ENCAPSULATION_INVALID"
    PACKAGE_CONTENT_MISMATCH = "PACKAGE_CONTENT_MISMATCH"
    PACKAGE_EVIDENCE_INVALID = "PACKAGE_EVIDENCE_INVALID"
    PACKAGE_INCLUSION_INVALID = "PACKAGE_INCLUSION_INVALID"
    PACKAGE_CHECKPOINT_UNPROVEN = "PACKAGE_CHECKPOINT_UNPROVEN"
    PACKAGE_FOUR_PROPERTIES_FAILED = "PACKAGE_FOUR_PROPERTIES_FAILED"


@dataclass(frozen=True)
class Finding:
    """One thing a verifier found, at one subject.

    ``subject`` names where, readably: ``position 40``, ``signature 'Sig1' (revision 2)``, a
    file path. ``position`` is the event's global position for ledger findings (None otherwise).
    ``context`` carries further facts a program may use (aggregate id, donation number, event
    type); its keys are listed in docs/verification.md.
    """

    code: Code
    subject: str
    message: str
    severity: Severity = Severity.ERROR
    position: int | None = None
    context: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.subject}: {self.message} [{self.code}]"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": str(self.code),
            "severity": str(self.severity),
            "subject": self.subject,
            "message": self.message,
        }
        if self.position is not None:
            out["position"] = self.position
        out.update(self.context)
        return out


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    severities = {f.severity for f in findings}
    if Severity.ERROR in severities:
        return Verdict.FAILED
    if Severity.INDETERMINATE in severities:
        return Verdict.INDETERMINATE
    return Verdict.PASSED


#: Exit codes of the verifying commands; 2 is bad input, raised before any report exists.
EXIT_CODES: Mapping[Verdict, int] = {
    Verdict.PASSED: 0,
    Verdict.FAILED: 1,
    Verdict.INDETERMINATE: 3,
}


@dataclass(frozen=True, kw_only=True)
class Report:
    """The base of every verification report: findings and the verdict they decide.

    Subclasses add their counts as typed fields and list them in ``counts()``.
    """

    kind: str
    findings: tuple[Finding, ...] = ()

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.findings)

    @property
    def ok(self) -> bool:
        """True only when the verdict is PASSED."""
        return self.verdict is Verdict.PASSED

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def issues(self) -> tuple[Finding, ...]:
        """The findings that decide the verdict (errors, then what stays undetermined)."""
        return tuple(f for f in self.findings if f.severity is not Severity.WARNING)

    @property
    def first_problem(self) -> Finding | None:
        problems = self.issues()
        return problems[0] if problems else None

    def counts(self) -> dict[str, Any]:
        return {}

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "kind": self.kind,
            "verdict": str(self.verdict),
            **self.counts(),
            "findings": [f.to_json() for f in self.findings],
        }
