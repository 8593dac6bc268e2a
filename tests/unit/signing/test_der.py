"""`signing._der` reads DER in place with the same acceptance as asn1crypto's parser.

The reference is what `_der` did before it read in place: asn1crypto's `parser.parse` on the
rest of the buffer, refusing indefinite lengths. Both must give the same elements, or both fail
with the same exception type, on generated input: valid DER, DER cut or extended, random bytes,
long and high-tag-number forms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from asn1crypto import cms, core, parser
from hypothesis import example, given, settings
from hypothesis import strategies as st

from signing import _der
from signing.validation import _utc_time


def reference_element(encoded: bytes, strict: bool) -> _der.Element:
    class_, method, tag, header, contents, trailer = parser.parse(encoded, strict=strict)
    if trailer:
        raise ValueError("indefinite-length (BER) encoding where DER is required")
    return _der.Element(class_, method == 1, tag, header, contents)


def reference_single(encoded: bytes) -> _der.Element:
    return reference_element(encoded, strict=True)


def reference_elements(encoded: bytes) -> list[_der.Element]:
    found = []
    offset = 0
    while offset < len(encoded):
        element = reference_element(encoded[offset:], strict=False)
        found.append(element)
        offset += len(element.header) + len(element.contents)
    return found


def outcome(read: Any, encoded: Any) -> tuple[str, Any]:
    try:
        return "ok", read(encoded)
    except (ValueError, TypeError) as exc:
        return "error", type(exc)


SAMPLES = [
    cms.ContentType("signed_data").dump(),
    core.Integer(2**200).dump(),
    core.OctetString(b"x" * 300).dump(),  # two length octets
    core.OctetString(b"y" * 70_000).dump(),  # three length octets
    core.Sequence.load(b"\x30\x03\x02\x01\x05").dump(),
    b"\x9f\x1f\x00",  # [31] IMPLICIT, high-tag-number form
    b"\xbf\x81\x00\x02\x05\x00",  # [128], constructed
    b"\x1f\x80\x01\x00",  # non-minimal tag
    b"\x1f\x05\x00",  # high-tag form for a low tag
    b"\x30\x80\x02\x01\x01\x00\x00",  # indefinite length
    b"\x04\x80",  # indefinite length, primitive
    b"\x04\x82\x00",  # length octets cut
    b"\x04\x81\x05abc",  # contents cut
    b"\x04\x84\x00\x00\x00\x01a",  # non-minimal long form (accepted, as by asn1crypto)
]

der_like = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(SAMPLES),
    st.tuples(st.sampled_from(SAMPLES), st.integers(0, 70), st.binary(max_size=4)).map(
        lambda t: t[0][: t[1]] + t[2]
    ),
    st.lists(st.sampled_from(SAMPLES), max_size=4).map(b"".join),
)


@settings(max_examples=3000, deadline=None)
@given(der_like)
@example(b"")
@example(b"\x00")
@example(b"\x30")
def test_elements_read_as_asn1crypto_does(encoded: bytes) -> None:
    assert outcome(_der.elements, encoded) == outcome(reference_elements, encoded)
    assert outcome(_der.single, encoded) == outcome(reference_single, encoded)


@pytest.mark.parametrize("sample", SAMPLES)
def test_samples(sample: bytes) -> None:
    assert outcome(_der.elements, sample) == outcome(reference_elements, sample)
    assert outcome(_der.single, sample) == outcome(reference_single, sample)


@pytest.mark.parametrize("not_bytes", [bytearray(b"\x05\x00"), memoryview(b"\x05\x00"), "05"])
def test_only_bytes(not_bytes: Any) -> None:
    with pytest.raises(TypeError):
        _der.elements(not_bytes)
    with pytest.raises(TypeError):
        _der.single(not_bytes)


# -- UTCTime without asn1crypto's typed load -----------------------------------------------------


def reference_utc_time(contents: bytes) -> datetime:
    moment = core.UTCTime.load(b"\x17" + bytes([len(contents)]) + contents, strict=True).native
    assert isinstance(moment, datetime)
    return moment.astimezone(UTC)


digits = st.text(alphabet="0123456789", min_size=12, max_size=12)


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        digits.map(lambda d: (d + "Z").encode()),
        st.builds(
            lambda y, mo, d, h, mi, s: f"{y:02d}{mo:02d}{d:02d}{h:02d}{mi:02d}{s:02d}Z".encode(),
            st.integers(0, 99),
            st.integers(1, 12),
            st.integers(1, 28),
            st.integers(0, 23),
            st.integers(0, 59),
            st.integers(0, 59),
        ),
        st.binary(min_size=13, max_size=13),
    )
)
@example(b"491231235959Z")
@example(b"500101000000Z")
@example(b"250230120000Z")
def test_utc_time_reads_as_asn1crypto_does(contents: bytes) -> None:
    fast = outcome(_utc_time, contents)
    if fast == ("ok", None):  # not the DER form: asn1crypto reads it
        assert not (len(contents) == 13 and contents.endswith(b"Z") and contents[:12].isdigit())
        return
    assert fast == outcome(reference_utc_time, contents)


@pytest.mark.parametrize(
    "contents", [b"2503011200Z", b"250301120000+0800", b"250301120000Z\n", b"\xd9" * 12 + b"Z"]
)
def test_other_utc_time_forms_go_to_asn1crypto(contents: bytes) -> None:
    assert _utc_time(contents) is None
