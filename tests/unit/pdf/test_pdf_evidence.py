"""documents.pdf_evidence: the attached events, signatures, proofs and tokens, and the form text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785

from documents.pdf_evidence import verify_evidence
from ledger.merkle import inclusion_proof, leaf_hash, root_from_leaves
from signing.cms import sign_detached
from signing.pdf_content import EmbeddedFile
from signing.tsa import TimestampAuthority
from tests.pdf_samples import (
    DONATION_NO,
    DONOR_NAME,
    ID_MASKED,
    Attachment,
    SampleStation,
    donation_events,
    evidence_attachments,
    form_lines,
)

TEXT = "\n".join(form_lines())


def _files(attachments: Sequence[Attachment]) -> list[EmbeddedFile]:
    return [EmbeddedFile(a.name, a.data, a.mime, a.relationship, True, True) for a in attachments]


def _with(files: list[EmbeddedFile], name: str, data: bytes) -> list[EmbeddedFile]:
    return [replace(f, data=data) if f.name == name else f for f in files]


def _body(files: list[EmbeddedFile], name: str) -> dict[str, Any]:
    value = json.loads(next(f.data for f in files if f.name == name))
    assert isinstance(value, dict)
    return value


def _check(station: SampleStation, files: list[EmbeddedFile], text: str | None = TEXT) -> list[str]:
    return list(verify_evidence(files, [station.root], (), text).problems)


def test_the_evidence_holds(station: SampleStation, evidence: list[Attachment]) -> None:
    report = verify_evidence(_files(evidence), [station.root], (), TEXT)
    assert report.ok, report.problems
    assert [e.event_type for e in report.events] == [
        "DonorRegistered",
        "GeneralExamRecorded",
        "DonationNumberAssigned",
    ]
    assert (report.signatures, report.proofs, report.tokens) == (3, 3, 1)
    assert report.donation_numbers == (DONATION_NO,)
    assert report.content_checked and not report.notes
    for event in report.events:
        assert event.signed_at is not None and event.stamped_at is not None
        assert event.actor == "STAFF:N001"
    json.dumps(report.to_json())


def test_no_evidence_at_all(station: SampleStation) -> None:
    assert _check(station, []) == ["no canonical event is attached: the form carries no evidence"]


def test_an_edited_event(station: SampleStation, evidence: list[Attachment]) -> None:
    files = _files(evidence)
    body = _body(files, "event-2.json")
    body["temperature_c"] = 37.9
    problems = _check(station, _with(files, "event-2.json", rfc8785.dumps(body)))
    assert any(p.startswith("event-2.p7s: signs no attached event") for p in problems)
    assert "event-2.json: no attached signature signs it" in problems
    assert any(
        p.startswith("event-2.proof.json: proves the inclusion of no attached event")
        for p in problems
    )


def test_non_canonical_bytes(station: SampleStation, evidence: list[Attachment]) -> None:
    files = _files(evidence)
    pretty = json.dumps(_body(files, "event-1.json"), indent=2).encode()
    problems = _check(station, _with(files, "event-1.json", pretty))
    assert "event-1.json: not the RFC 8785 canonical bytes of its content" in problems


def test_a_signature_by_someone_else(station: SampleStation, evidence: list[Attachment]) -> None:
    files = _files(evidence)
    event = next(f.data for f in files if f.name == "event-1.json")
    when = datetime.fromisoformat(str(_body(files, "event-1.json")["timestamp"]))
    forged = sign_detached(event, station.staff["P001"], when)
    problems = _check(station, _with(files, "event-1.p7s", forged))
    assert "event-1.json: signed by STAFF:P001, but its actor is STAFF:N001" in problems


def test_a_signature_from_another_pki(
    station: SampleStation, attacker: SampleStation, evidence: list[Attachment]
) -> None:
    files = _files(evidence)
    event = next(f.data for f in files if f.name == "event-1.json")
    when = datetime.fromisoformat(str(_body(files, "event-1.json")["timestamp"]))
    forged = sign_detached(event, attacker.staff["N001"], when)
    problems = _check(station, _with(files, "event-1.p7s", forged))
    assert any(p.startswith("event-1.json: signature event-1.p7s does not hold") for p in problems)


def test_a_signing_time_that_is_not_the_events(
    station: SampleStation, evidence: list[Attachment]
) -> None:
    files = _files(evidence)
    event = next(f.data for f in files if f.name == "event-1.json")
    when = datetime.fromisoformat(str(_body(files, "event-1.json")["timestamp"]))
    late = sign_detached(event, station.staff["N001"], when + timedelta(hours=1))
    problems = _check(station, _with(files, "event-1.p7s", late))
    assert any("is not the event's time" in p for p in problems), problems


def test_a_wrong_inclusion_path(station: SampleStation, evidence: list[Attachment]) -> None:
    files = _files(evidence)
    proof = _body(files, "event-3.proof.json")
    path = proof["inclusion_path"]
    assert isinstance(path, list)
    proof["inclusion_path"] = ["00" * 32, *path[1:]]
    problems = _check(station, _with(files, "event-3.proof.json", json.dumps(proof).encode()))
    assert any(
        p.startswith(
            "event-3.json: inclusion proof event-3.proof.json does not hold: root mismatch"
        )
        for p in problems
    ), problems


def test_a_token_over_another_root(station: SampleStation, evidence: list[Attachment]) -> None:
    files = _files(evidence)
    other = station.tsa.stamp(hashlib.sha256(b"another batch").digest())
    problems = _check(station, _with(files, "batch-1.tsr", other))
    assert any(p.startswith("batch-1.tsr: is over ") for p in problems)
    assert any("no attached token over batch root" in p for p in problems)


def test_a_token_from_an_untrusted_tsa(
    station: SampleStation, attacker: SampleStation, evidence: list[Attachment]
) -> None:
    files = _files(evidence)
    root = bytes.fromhex(str(_body(files, "event-1.proof.json")["batch_root"]))
    problems = _check(station, _with(files, "batch-1.tsr", attacker.tsa.stamp(root)))
    assert any(p.startswith("batch-1.tsr: batch token does not hold") for p in problems)
    assert any("its batch token does not hold" in p for p in problems)


def test_a_token_older_than_the_signatures(
    station: SampleStation, evidence: list[Attachment]
) -> None:
    files = _files(evidence)
    root = bytes.fromhex(str(_body(files, "event-1.proof.json")["batch_root"]))
    early = TimestampAuthority(station.tsa_credential, clock=lambda: station.now)
    problems = _check(station, _with(files, "batch-1.tsr", early.stamp(root)))
    assert any("before it was signed" in p for p in problems), problems


def test_a_broken_aggregate_chain(station: SampleStation) -> None:
    events = donation_events()
    events[2]["prev_hash"] = "ab" * 32
    problems = _check(station, _files(evidence_attachments(station, events)))
    assert any(p.startswith("event-3.json: prev_hash abab") for p in problems), problems


def test_events_without_proof_are_noted(station: SampleStation, evidence: list[Attachment]) -> None:
    files = [f for f in _files(evidence) if not f.name.endswith((".proof.json", ".tsr"))]
    report = verify_evidence(files, [station.root], (), TEXT)
    assert report.ok
    assert len(report.notes) == 3 and "not yet stamped" in report.notes[0]


def test_an_orphan_signature_and_junk(station: SampleStation, evidence: list[Attachment]) -> None:
    files = [
        *_files(evidence),
        EmbeddedFile("junk.p7s", b"not CMS", "", "", True, True),
        EmbeddedFile("junk.tsr", b"\x30\x00", "", "", True, True),
        EmbeddedFile("junk.json", b"{not json", "", "", True, True),
        EmbeddedFile("chain.pem", b"-----BEGIN", "", "", True, True),
    ]
    report = verify_evidence(files, [station.root], (), TEXT)
    assert set(report.problems) == {
        "junk.p7s: not a detached CMS signature",
        "junk.tsr: not an RFC 3161 timestamp token",
        "junk.json: not JSON",
    }
    assert report.other_files == ("chain.pem",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (TEXT.replace(DONATION_NO, "9000626999999"), "donation number 9000626999999, which no"),
        (
            TEXT.replace(DONATION_NO, "(number withheld)"),
            f"does not show donation number {DONATION_NO}",
        ),
        (TEXT.replace(DONOR_NAME, "张三"), f"does not show the donor name '{DONOR_NAME}'"),
        (TEXT.replace(ID_MASKED, "330106"), f"does not show the masked ID number '{ID_MASKED}'"),
    ],
)
def test_the_form_must_show_what_the_events_say(
    station: SampleStation, evidence: list[Attachment], text: str, problem: str
) -> None:
    problems = _check(station, _files(evidence), text)
    assert any(problem in p for p in problems), problems


def test_an_amended_name_is_expected_in_its_new_form(station: SampleStation) -> None:
    events = donation_events()
    amendment = dict(events[-1])
    for key in ("donation_no", "label_set_printed"):
        del amendment[key]
    amendment.update(
        topic="ledger.donation:Donation.RecordAmended",
        version=4,
        timestamp=datetime.now(UTC).isoformat(timespec="microseconds"),
        prev_hash=hashlib.sha256(rfc8785.dumps(events[-1])).hexdigest(),
        step="registration",
        field="name",
        old_value=DONOR_NAME,
        new_value="张𠀋华丽",
        reason="typo",
    )
    files = _files(evidence_attachments(station, [*events, amendment]))
    assert any("'张𠀋华丽'" in p for p in _check(station, files))
    assert _check(station, files, TEXT.replace(DONOR_NAME, "张𠀋华丽")) == []


def test_without_pdftotext_the_text_is_not_matched(
    station: SampleStation, evidence: list[Attachment]
) -> None:
    report = verify_evidence(_files(evidence), [station.root], (), None)
    assert report.ok and not report.content_checked
    assert any("pdftotext is not installed" in note for note in report.notes)


def test_the_forms_inclusion_file_shape(station: SampleStation, evidence: list[Attachment]) -> None:
    """services/forms.py writes one inclusion.json with a list of paths."""
    files = [f for f in _files(evidence) if not f.name.endswith(".proof.json")]
    bodies = [f.data for f in files if f.name.endswith(".json")]
    hashes = [hashlib.sha256(b).digest() for b in bodies]
    leaves = [leaf_hash(h) for h in hashes]
    root = root_from_leaves(leaves)
    paths = [
        {
            "event_hash": h.hex(),
            "batch_root": root.hex(),
            "leaf_index": i,
            "batch_size": len(leaves),
            "inclusion_path": [x.hex() for x in inclusion_proof(leaves, i)],
        }
        for i, h in enumerate(hashes)
    ]
    inclusion = EmbeddedFile(
        "inclusion.json", json.dumps({"paths": paths}).encode(), "", "", True, True
    )
    token = EmbeddedFile("b1.tsr", station.tsa.stamp(root), "", "", True, True)
    files = [f for f in files if not f.name.endswith(".tsr")] + [inclusion, token]
    report = verify_evidence(files, [station.root], (), TEXT)
    assert report.ok, report.problems
    assert report.proofs == 3 and all(e.stamped_at for e in report.events)
