"""The attack corpus (fixtures/vectors/pdf-attacks/README.md): each sample is built here from a
genuine one, and `ledger verify-pdf` rejects it (exit 1) with a reason naming the signature and,
where the class allows, the byte range or object."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyhanko.sign import fields

from api.verify_pdf import register
from documents.pdf_verify import verify_pdf
from services.settings import Settings
from tests import pdf_attacks as attacks
from tests.pdf_samples import SampleStation


@dataclass(frozen=True)
class Samples:
    station: SampleStation
    attacker: SampleStation
    unsigned: bytes
    genuine: bytes
    single: bytes


@dataclass(frozen=True)
class Attack:
    build: Callable[[Samples], bytes]
    where: str  # the signature the first reason names
    reasons: tuple[str, ...]  # each must occur in some failure naming `where`


ATTACKS: dict[str, Attack] = {
    # 2019: incremental saving attack
    "isa-content-appended": Attack(
        lambda s: attacks.isa_content_appended(s.genuine),
        "signature 'Nurse'",
        ("changed after signing: Values for dict key /Contents differ", "IndirectObject("),
    ),
    "isa-object-redefined": Attack(
        lambda s: attacks.isa_object_redefined(s.genuine),
        "signature 'Nurse'",
        ("changed after signing: There are unexplained xrefs in revision 6: Reference(idnum=",),
    ),
    # 2019: signature wrapping
    "wrapping-gap-stuffed": Attack(
        lambda s: attacks.wrapping_gap_stuffed(s.single),
        "signature 'Nurse'",
        ("is not one hex string: it holds bytes no signature covers", "ByteRange [0 "),
    ),
    "wrapping-byte-range-moved": Attack(
        lambda s: attacks.wrapping_byte_range_moved(s.single),
        "signature 'Nurse'",
        ("does not match the signed digest", "does not cover its whole revision (UNCLEAR)"),
    ),
    # 2019: universal signature forgery
    "usf-contents-zeroed": Attack(
        lambda s: attacks.usf_contents_zeroed(s.single),
        "signature 'Nurse'",
        ("0 R has no usable signature value",),
    ),
    "usf-contents-empty": Attack(
        lambda s: attacks.usf_contents_empty(s.single),
        "signature 'Nurse'",
        ("0 R has no usable signature value",),
    ),
    "usf-contents-null": Attack(
        lambda s: attacks.usf_contents_null(s.single),
        "signature 'Nurse'",
        ("has no usable signature value: /Contents must be string-like",),
    ),
    "usf-byte-range-missing": Attack(
        lambda s: attacks.usf_byte_range_missing(s.single),
        "signature 'Nurse'",
        ("has no usable signature value: Could not read /ByteRange",),
    ),
    "usf-byte-range-null": Attack(
        lambda s: attacks.usf_byte_range_null(s.single),
        "signature 'Nurse'",
        ("malformed ByteRange null is not four non-negative integers",),
    ),
    # 2021: shadow attacks
    "shadow-hide": Attack(
        lambda s: attacks.shadow_hide(s.unsigned, s.station),
        "signature 'Nurse'",
        ("changed after signing: There are unexplained xrefs in revision 3: Reference(idnum=",),
    ),
    "shadow-replace": Attack(
        lambda s: attacks.shadow_replace(s.unsigned, s.station),
        "signature 'Nurse'",
        ("form field(s) 'volume' were added or changed other than by a later signature",),
    ),
    "shadow-hide-and-replace": Attack(
        lambda s: attacks.shadow_hide_and_replace(s.unsigned, s.station),
        "signature 'Nurse'",
        ("changed after signing: Values for dict key /Pages differ:IndirectObject(",),
    ),
    # 2021: certification attacks
    "evil-annotation-p2": Attack(
        lambda s: attacks.evil_annotation(s.unsigned, s.station),
        "signature 'Nurse'",
        ("changed after signing: There are unexplained xrefs in revision 3",),
    ),
    "evil-annotation-p3": Attack(
        lambda s: attacks.evil_annotation(s.unsigned, s.station, fields.MDPPerm.ANNOTATE),
        "signature 'Nurse'",
        ("changed after signing: There are unexplained xrefs in revision 3",),
    ),
    "sneaky-signature": Attack(
        lambda s: attacks.sneaky_signature(s.unsigned, s.station, s.attacker),
        "signature 'Approval'",
        ("no trusted certificate path for Li Na (nurse)",),
    ),
    "sneaky-empty-field-after-certification": Attack(
        lambda s: attacks.sneaky_empty_field(s.unsigned, s.station),
        "signature 'Nurse'",
        ("only allowed after an approval signature, not a certification signature",),
    ),
    "sneaky-empty-field-after-approval": Attack(
        lambda s: attacks.sneaky_empty_field(s.unsigned, s.station, certify=False),
        "signature 'Nurse'",
        ("form field(s) 'Overlay' were added or changed other than by a later signature",),
    ),
}


@pytest.fixture(scope="module")
def samples(
    station: SampleStation, attacker: SampleStation, unsigned: bytes, genuine: bytes, single: bytes
) -> Samples:
    return Samples(station, attacker, unsigned, genuine, single)


def _cli(path: Path, trust: Path, *extra: str) -> tuple[int, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="ledger")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(["verify-pdf", str(path), "--trust", str(trust), *extra])
    code: int = args.handler(Settings(), args)
    return code, args


def test_the_genuine_samples_pass(samples: Samples, tmp_path: Path) -> None:
    trust = tmp_path / "root.pem"
    trust.write_bytes(samples.station.root_pem())
    for name, data in (("genuine", samples.genuine), ("single", samples.single)):
        report = verify_pdf(data, [samples.station.root])
        assert report.bottom_line, (name, report.failures())
        (tmp_path / f"{name}.pdf").write_bytes(data)
        assert _cli(tmp_path / f"{name}.pdf", trust)[0] == 0


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_each_attack_is_rejected_with_its_reason(
    name: str, samples: Samples, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attack = ATTACKS[name]
    data = attack.build(samples)
    report = verify_pdf(data, [samples.station.root], name=name)
    assert not report.bottom_line
    failures = report.failures()
    named = [f for f in failures if f.startswith(attack.where)]
    assert named, failures
    for reason in attack.reasons:
        assert any(reason in f for f in named), (reason, failures)
    # and through the command line: exit 1, the same reasons in the JSON report
    path, trust = tmp_path / f"{name}.pdf", tmp_path / "root.pem"
    path.write_bytes(data)
    trust.write_bytes(samples.station.root_pem())
    capsys.readouterr()
    code, _ = _cli(path, trust, "--json")
    assert code == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"] == "FAILED" and printed["failures"] == failures
