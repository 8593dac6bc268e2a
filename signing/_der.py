"""DER elements read and written at the tag-length-value level, for the hot paths.

asn1crypto's typed classes are used everywhere a structure is built or a value is interpreted;
but they cost tens of microseconds per nested object (and, when building, re-serialise every
nested object on dump), which dominates a per-event sign or verify. The two hot paths therefore
work on whole DER elements: `signing.cms` joins pre-encoded elements with `tlv`, and
`signing.validation` walks the CMS envelope with `elements` (asn1crypto's own low-level parser
underneath) and hands only the small values to asn1crypto's typed classes.

Only definite-length encodings are read: an indefinite (BER) length is refused.
"""

from __future__ import annotations

from typing import NamedTuple

from asn1crypto import parser

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


def _element(info: tuple[int, int, int, bytes, bytes, bytes]) -> Element:
    class_, method, tag, header, contents, trailer = info
    if trailer:
        raise ValueError("indefinite-length (BER) encoding where DER is required")
    return Element(class_, method == 1, tag, header, contents)


def single(encoded: bytes) -> Element:
    """The one element `encoded` holds; trailing bytes are an error."""
    return _element(parser.parse(encoded, strict=True))


def elements(encoded: bytes) -> list[Element]:
    """The elements of a concatenation (the contents of a SEQUENCE or SET)."""
    found: list[Element] = []
    offset = 0
    while offset < len(encoded):
        element = _element(parser.parse(encoded[offset:]))
        found.append(element)
        offset += len(element.header) + len(element.contents)
    return found


def length_octets(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(encoded),)) + encoded


def tlv(tag_byte: int, contents: bytes) -> bytes:
    """One DER element with a single-octet identifier (SEQUENCE, SET, OCTET STRING, [0], ...)."""
    return bytes((tag_byte,)) + length_octets(len(contents)) + contents
