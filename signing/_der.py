"""DER elements read and written at the tag-length-value level, for the hot paths.

asn1crypto's typed classes are used everywhere a structure is built or a value is interpreted;
but they cost tens of microseconds per nested object (and, when building, re-serialise every
nested object on dump), which dominates a per-event sign or verify. The two hot paths therefore
work on whole DER elements: `signing.cms` joins pre-encoded elements with `tlv`, and
`signing._cms_parse` (for `signing.validation` and `signing.tsp_validation`) walks the CMS envelope
with `elements` (the same acceptance as asn1crypto's low-level parser, read in place) and hands
only the small values to asn1crypto's typed classes.

Only definite-length encodings are read: an indefinite (BER) length is refused.
"""

from __future__ import annotations

from typing import NamedTuple

UNIVERSAL = 0
CONTEXT = 2

INTEGER = 2
OCTET_STRING = 4
OBJECT_IDENTIFIER = 6
SEQUENCE = 16
SET = 17

SEQUENCE_BYTE = 0x30
SET_BYTE = 0x31
OCTET_STRING_BYTE = 0x04
CONTEXT_0_CONSTRUCTED_BYTE = 0xA0


class Element(NamedTuple):
    """One DER element: its identifier, its header octets and its content octets."""

    class_: int
    constructed: bool
    tag: int
    header: bytes
    contents: bytes

    @property
    def encoded(self) -> bytes:
        return self.header + self.contents

    def is_(self, class_: int, tag: int, constructed: bool | None = None) -> bool:
        return (
            self.class_ == class_
            and self.tag == tag
            and (constructed is None or self.constructed == constructed)
        )


_INSUFFICIENT = "Insufficient data - %s bytes requested but only %s available"


def _read(encoded: bytes, offset: int, end: int) -> tuple[Element, int]:
    """The element at *offset* and the offset after it.

    What `asn1crypto.parser` accepts for a definite length (it is the reference: the unit tests
    compare the two on generated input), read in place: slicing the rest of the buffer for each
    element, as `parser.parse` needs, copied a signature's certificates a dozen times.
    """
    start = offset
    if offset >= end:
        raise ValueError(_INSUFFICIENT % (1, end - offset))
    first = encoded[offset]
    offset += 1
    tag = first & 0x1F
    if tag == 0x1F:  # high-tag-number form, base 128
        tag = 0
        while True:
            if offset >= end:
                raise ValueError(_INSUFFICIENT % (1, end - offset))
            octet = encoded[offset]
            offset += 1
            if octet == 0x80 and tag == 0:
                raise ValueError("Non-minimal tag encoding")
            tag = tag * 128 + (octet & 0x7F)
            if octet < 0x80:
                break
        if tag < 31:
            raise ValueError("Non-minimal tag encoding")
    if offset >= end:
        raise ValueError(_INSUFFICIENT % (1, end - offset))
    length = encoded[offset]
    offset += 1
    if length & 0x80:
        count = length & 0x7F
        if not count:
            raise ValueError("indefinite-length (BER) encoding where DER is required")
        if end < offset + count:
            raise ValueError(_INSUFFICIENT % (count, end - offset))
        length = int.from_bytes(encoded[offset : offset + count], "big")
        offset += count
    contents_end = offset + length
    if contents_end > end:
        raise ValueError(_INSUFFICIENT % (length, end - offset))
    return (
        Element(
            first >> 6,
            bool(first & 0x20),
            tag,
            encoded[start:offset],
            encoded[offset:contents_end],
        ),
        contents_end,
    )


def _require_bytes(encoded: object) -> None:
    if not isinstance(encoded, bytes):
        raise TypeError(f"contents must be a byte string, not {type(encoded).__name__}")


def single(encoded: bytes) -> Element:
    """The one element `encoded` holds; trailing bytes are an error."""
    _require_bytes(encoded)
    element, end = _read(encoded, 0, len(encoded))
    if end != len(encoded):
        raise ValueError(f"Extra data - {len(encoded) - end} bytes of trailing data were provided")
    return element


def elements(encoded: bytes) -> list[Element]:
    """The elements of a concatenation (the contents of a SEQUENCE or SET)."""
    if not isinstance(encoded, bytes):
        _require_bytes(encoded)
    found: list[Element] = []
    offset = 0
    end = len(encoded)
    while offset < end:
        # The common case inline (low tag number, length below 64 KiB); `_read` for the rest.
        first = encoded[offset]
        if first & 0x1F == 0x1F or offset + 1 >= end:
            element, offset = _read(encoded, offset, end)
            found.append(element)
            continue
        length = encoded[offset + 1]
        start = offset + 2
        if length & 0x80:
            if length == 0x81 and start < end:
                length = encoded[start]
                start += 1
            elif length == 0x82 and start + 1 < end:
                length = (encoded[start] << 8) | encoded[start + 1]
                start += 2
            else:
                element, offset = _read(encoded, offset, end)
                found.append(element)
                continue
        stop = start + length
        if stop > end:
            _read(encoded, offset, end)  # raises, with asn1crypto's message
        found.append(
            Element(
                first >> 6,
                first & 0x20 != 0,
                first & 0x1F,
                encoded[offset:start],
                encoded[start:stop],
            )
        )
        offset = stop
    return found


def length_octets(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(encoded),)) + encoded


def tlv(tag_byte: int, contents: bytes) -> bytes:
    """One DER element with a single-octet identifier (SEQUENCE, SET, OCTET STRING, [0], ...)."""
    return bytes((tag_byte,)) + length_octets(len(contents)) + contents
