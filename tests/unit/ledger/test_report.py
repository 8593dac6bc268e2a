"""The one verification report: verdicts from severities, exit codes, the JSON shape, the doc."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.report import (
    EXIT_CODES,
    JSON_VERSION,
    Code,
    Finding,
    Report,
    Severity,
    Verdict,
    verdict_of,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "verification.md"


def test_every_code_is_documented_with_its_meaning() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \| \S", DOC.read_text(), re.MULTILINE))
    missing = {code.value for code in Code} - documented
    assert not missing, f"codes missing from docs/verification.md: {sorted(missing)}"


def test_the_doc_states_the_json_version() -> None:
    assert f"## JSON shape, version {JSON_VERSION}" in DOC.read_text()


def test_codes_are_their_own_names() -> None:
    assert all(code.value == code.name for code in Code)


def test_verdict_is_decided_by_the_worst_severity() -> None:
    error = Finding(Code.EVENT_HASH_MISMATCH, "position 3", "edited")
    unknown = Finding(Code.EVENTS_PENDING_TOO_LONG, "position 1", "old", Severity.INDETERMINATE, 1)
    note = Finding(Code.CHECKPOINT_NOT_WITNESSED, "position 9", "n", Severity.WARNING, 9)
    assert verdict_of([]) is Verdict.PASSED
    assert verdict_of([note]) is Verdict.PASSED
    assert verdict_of([note, unknown]) is Verdict.INDETERMINATE
    assert verdict_of([unknown, error, note]) is Verdict.FAILED


def test_exit_codes_follow_the_verdict() -> None:
    assert EXIT_CODES == {Verdict.PASSED: 0, Verdict.FAILED: 1, Verdict.INDETERMINATE: 3}
    unknown = Finding(Code.FINDINGS_TRUNCATED, "position 1", "stop", Severity.INDETERMINATE)
    assert Report(kind="t").exit_code == 0
    assert Report(kind="t", findings=(unknown,)).exit_code == 3
    assert not Report(kind="t", findings=(unknown,)).ok


def test_json_carries_version_verdict_and_each_finding_keys() -> None:
    finding = Finding(
        Code.CHAIN_LINK_MISMATCH,
        "position 7, donation 9000626000001, GeneralExamRecorded",
        "chain link broken",
        position=7,
        context={"donation_no": "9000626000001"},
    )
    note = Finding(Code.PDF_UNREADABLE, "form.pdf", "qpdf cannot read", Severity.WARNING)
    printed = Report(kind="ledger", findings=(finding, note)).to_json()
    assert printed["version"] == JSON_VERSION and printed["verdict"] == "FAILED"
    first, second = printed["findings"]
    assert first == {
        "code": "CHAIN_LINK_MISMATCH",
        "severity": "ERROR",
        "subject": "position 7, donation 9000626000001, GeneralExamRecorded",
        "message": "chain link broken",
        "position": 7,
        "donation_no": "9000626000001",
    }
    assert "position" not in second and second["code"] == "PDF_UNREADABLE"


def test_issues_leave_out_warnings() -> None:
    note = Finding(Code.CHECKPOINT_NOT_WITNESSED, "position 2", "n", Severity.WARNING, 2)
    error = Finding(Code.EVENT_MISSING, "position 5", "deleted", position=5)
    report = Report(kind="ledger", findings=(note, error))
    assert report.issues() == (error,) and report.first_problem == error
