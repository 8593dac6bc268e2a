"""verify_detached reads a signature laid out as an earlier one of the same signer by that one's
template (signing.validation._Template): the outcome must be the full parse's, whatever byte of
the signature is changed, and the template must serve only signatures that fit it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import signing.validation as validation
from signing.cms import sign_detached
from signing.errors import SignatureInvalid
from signing.pki import Credential
from signing.validation import verify_detached
from tests.unit.signing.conftest import NOW

DATA = b'{"actor":"STAFF:N001","topic":"PreCollectionCheckRecorded","version":3}'
OTHER = b'{"actor":"STAFF:N001","topic":"PreCollectionCheckRecorded","version":4}'


@pytest.fixture(autouse=True)
def no_templates() -> Iterator[None]:
    validation._TEMPLATES.clear()
    validation._SID_PLACES.clear()
    yield
    validation._TEMPLATES.clear()
    validation._SID_PLACES.clear()


Signed = tuple[bytes, bytes]  # a signature and its data


def same_length_pair(staff: Credential) -> tuple[Signed, Signed]:
    """Two signatures by *staff* over other data at other times, of the same length."""
    by_length: dict[int, Signed] = {}
    for second in range(60):
        data = DATA + bytes([second])
        signature = sign_detached(data, staff, NOW + timedelta(seconds=second))
        if len(signature) in by_length:
            return by_length[len(signature)], (signature, data)
        by_length[len(signature)] = (signature, data)
    raise AssertionError("no two signatures of the same length")


def outcome(signature: bytes, data: bytes) -> tuple[Any, ...]:
    try:
        verified = verify_detached(signature, data)
    except Exception as exc:  # the type and reason are the outcome
        return ("error", type(exc).__name__, str(exc))
    return ("ok", verified.subject_id, verified.signing_time, verified.signature_value)


def test_a_signature_of_the_same_signer_and_length_is_read_by_the_template(
    staff: Credential,
) -> None:
    (first, first_data), (second, _) = same_length_pair(staff)
    assert validation._fitting_template(second) is None
    verify_detached(first, first_data)
    parsed = validation._fitting_template(second)
    assert parsed is not None
    assert parsed == validation._parse(second)


def test_every_changed_byte_gives_the_outcome_of_a_full_parse(staff: Credential) -> None:
    (first, first_data), (second, data) = same_length_pair(staff)
    for offset in range(len(second)):
        changed = second[:offset] + bytes([second[offset] ^ 0x01]) + second[offset + 1 :]
        validation._TEMPLATES.clear()
        validation._SID_PLACES.clear()
        fresh = outcome(changed, data)
        verify_detached(first, first_data)  # the template of `first`
        assert outcome(changed, data) == fresh, offset


def test_other_data_fails_through_the_template_as_without_it(staff: Credential) -> None:
    (first, first_data), (second, _) = same_length_pair(staff)
    fresh = outcome(second, OTHER)
    verify_detached(first, first_data)
    assert validation._fitting_template(second) is not None
    assert outcome(second, OTHER) == fresh
    assert fresh[0] == "error" and "message digest mismatch" in fresh[2]


def test_a_signature_that_did_not_verify_leaves_no_template(staff: Credential) -> None:
    (first, _), (second, _) = same_length_pair(staff)
    with pytest.raises(SignatureInvalid):
        verify_detached(first, OTHER)
    assert validation._fitting_template(second) is None
