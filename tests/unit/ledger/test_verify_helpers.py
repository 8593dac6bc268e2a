"""The verifier's shortcuts decide exactly as the calls they stand for."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from uuid import UUID

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.verify import _b64decode, _same_id

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def outcome(decode: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", decode(text)
    except (binascii.Error, ValueError) as exc:
        return "error", type(exc)


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode("ascii")),
        st.text(alphabet=ALPHABET + "=", max_size=16),
        st.text(alphabet=ALPHABET + "=\n -_é", max_size=16),
        st.tuples(st.binary(max_size=12), st.text(alphabet="=A\n", max_size=3)).map(
            lambda t: base64.b64encode(t[0]).decode("ascii") + t[1]
        ),
    )
)
@example("")
@example("QQ==")
@example("QQ=")
@example("QUJD=")
@example("=QUJD")
@example("QUJDRA==QQ==")
def test_b64decode_is_b64decode_validate(text: str) -> None:
    expected = outcome(lambda t: base64.b64decode(t, validate=True), text)
    assert outcome(_b64decode, text) == expected


@given(st.uuids(), st.sampled_from(["hex", "str", "upper", "urn", "braces"]))
def test_same_id_is_uuid_equality(originator_id: UUID, spelling: str) -> None:
    stored = {
        "hex": originator_id.hex,
        "str": str(originator_id),
        "upper": str(originator_id).upper(),
        "urn": originator_id.urn,
        "braces": "{" + str(originator_id) + "}",
    }[spelling]
    assert _same_id(stored, originator_id) == (UUID(stored) == originator_id) is True
    other = UUID(int=originator_id.int ^ 1)
    assert _same_id(stored, other) == (UUID(stored) == other) is False
