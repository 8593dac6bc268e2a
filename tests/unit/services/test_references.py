"""Naming a donation: donation number, visit reference (deferred donations) or UUID."""

from __future__ import annotations

import re
import uuid

import pytest

from services.references import RefKind, parse_reference, visit_reference
from signing.errors import InputError

DONATION = uuid.UUID("29683dfa-3f5c-47a0-99e2-ed1599f05eef")


def test_a_visit_reference_is_V_and_12_upper_case_hex_derived_from_the_uuid() -> None:
    reference = visit_reference(DONATION)
    assert re.fullmatch(r"V[0-9A-F]{12}", reference)
    assert reference == "VB4C1AFA86A97"  # SHA-256 over the UUID's 16 bytes, first 6 bytes
    assert visit_reference(str(DONATION)) == reference == visit_reference(DONATION.hex)


def test_visit_references_of_different_donations_differ() -> None:
    references = {visit_reference(uuid.uuid4()) for _ in range(1000)}
    assert len(references) == 1000


def test_a_donation_number_is_13_digits() -> None:
    ref = parse_reference(" 9000626123456 ")
    assert (ref.kind, ref.value) == (RefKind.NUMBER, "9000626123456")


def test_a_visit_reference_is_read_in_either_case() -> None:
    ref = parse_reference("vb4c1afa86a97")
    assert (ref.kind, ref.value) == (RefKind.VISIT, "VB4C1AFA86A97")


@pytest.mark.parametrize("text", [str(DONATION), DONATION.hex, str(DONATION).upper()])
def test_a_uuid_is_read_in_its_usual_forms(text: str) -> None:
    ref = parse_reference(text)
    assert (ref.kind, ref.value) == (RefKind.UUID, str(DONATION))


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "900062612345", "90006261234567", "VB4C1AFA86A9", "VB4C1AFA86A97X", "X" * 32],
)
def test_anything_else_is_bad_input_that_says_what_is_accepted(text: str) -> None:
    with pytest.raises(InputError, match=r"donation number .* visit reference .* UUID"):
        parse_reference(text)
