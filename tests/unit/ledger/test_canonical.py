"""The canonical bytes: the fast path (the C JSON encoder) is byte for byte the ``rfc8785`` package.

Every value goes through ``canonical_bytes`` and through ``rfc8785.dumps``; both must give the same
bytes, or fail with the same exception type. The generated values include what the fast path must
leave to ``rfc8785`` (keys beyond U+FFFF, whose UTF-16 order differs from the code point order;
lone surrogates; floats that ES6 formats differently from ``repr``; integers beyond 2**53 - 1), and
the RFC 8785 test vectors run through both paths.
"""

from __future__ import annotations

import enum
import json
import math
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger import canonical
from ledger.canonical import (
    CanonicalisationError,
    canonical_bytes,
    event_body,
    event_canonical_bytes,
    json_value,
)
from ledger.events import LedgerAggregate

# -- generated values --------------------------------------------------------------------------

#: Characters the fast path treats differently: controls, quote, backslash, DEL, U+2028, BMP
#: characters above the surrogates (which sort after astral ones in UTF-16), astral characters,
#: lone surrogates.
SPECIAL_CHARS = [
    "\x00",
    "\x1f",
    "\b",
    "\t",
    "\n",
    "\f",
    "\r",
    '"',
    "\\",
    "/",
    "\x7f",
    "\x80",
    "\u2028",
    "é",
    "王",
    "\ue000",
    "\ufb33",
    "\uffff",
    "\U00010000",
    "\U0001f602",
    "\U0002a6a5",
    "\ud800",
    "\udfff",
]

SPECIAL_FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    100.0,
    36.6,
    61.5,
    0.1,
    1e-4,
    9.999999999999999e-05,
    1.5e-7,
    1e-6,
    1e-7,
    5e-324,
    -5e-324,
    1e15,
    1e16,
    9999999999999998.0,
    1e21,
    1e23,
    2.0**53,
    2.0**53 - 1,
    -(2.0**53),
    9007199254740993.0,
    4503599627370495.5,
    1.7976931348623157e308,
    333333333.3333332,
    1424953923781206.2,
]

SPECIAL_INTS = [0, 1, -1, 2**53 - 1, -(2**53) + 1, 2**53, -(2**53), 2**64, 10**30]


def _bits_to_float(bits: int) -> float:
    return float(struct.unpack(">d", bits.to_bytes(8, "big"))[0])


texts = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(SPECIAL_CHARS)), max_size=12)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(SPECIAL_FLOATS),
    st.integers(-(10**7), 10**7).map(lambda i: i / 10),  # values as the forms record them
    st.integers(0, 2**64 - 1).map(_bits_to_float).filter(math.isfinite),
)
ints = st.one_of(st.integers(-(2**60), 2**60), st.sampled_from(SPECIAL_INTS))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(texts, children, max_size=5),
    ),
    max_leaves=25,
)


def outcome(serialise: Any, value: Any) -> tuple[str, Any]:
    try:
        return "bytes", serialise(value)
    except Exception as exc:
        return "error", type(exc)


@settings(max_examples=3000, deadline=None)
@given(json_values)
@example({"\U0001f602": 1, "\ufb33": 2, "a": 3})
@example({"\ue000": [1.0, -0.0, 1e21, 5e-324, 100.0, 1.5e-7]})
@example({"k": "\ud800"})
@example({"\udfff": 1, "a": 2})
@example([2**53, 1e16])
def test_fast_path_is_rfc8785(value: Any) -> None:
    assert outcome(canonical_bytes, value) == outcome(rfc8785.dumps, value)


@settings(max_examples=2000, deadline=None)
@given(floats)
def test_every_float_is_rfc8785(number: float) -> None:
    assert canonical_bytes({"n": number}) == rfc8785.dumps({"n": number})
    pair: Any = [number, -number]
    assert canonical_bytes(pair) == rfc8785.dumps(pair)


@pytest.mark.parametrize(
    ("value", "fast"),
    [
        ({"a": 1, "b": [True, None, "x"]}, True),
        ({"王": "芳", "\ufb33": 1}, True),  # BMP keys: code point order = UTF-16 order
        ([100.0, -0.0, 36.6, 1e-4], True),
        ({"\U0001f602": 1}, False),  # an astral key
        ([1e21], False),
        ([5e-324], False),
        ([1.5e-7], False),
        ([2.0**53], False),
        ([2**53], False),
        ([math.nan], False),
        ([math.inf], False),
        ([b"bytes"], False),
        ({1: "int key"}, False),
    ],
)
def test_fast_path_domain(value: Any, fast: bool) -> None:
    """The fast path takes what it was proven for and leaves the rest to rfc8785."""
    try:
        canonical._fast_value(value)
        took = True
    except canonical._NotFast:
        took = False
    assert took is fast


def test_integral_floats_are_written_as_integers() -> None:
    assert canonical._fast_value([100.0, -0.0, 0.0, -7.0]) == [100, 0, 0, -7]
    assert canonical_bytes({"n": [100.0, -0.0, 2.0**53 - 1]}) == b'{"n":[100,0,9007199254740991]}'


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_enum_values() -> None:
    """A StrEnum is written from its characters on both paths; an IntEnum goes to rfc8785."""
    value: Any = {"role": Colour.RED, "level": Level.HIGH}
    assert canonical_bytes(value) == rfc8785.dumps(value) == b'{"level":3,"role":"red"}'


# -- RFC 8785 test vectors -------------------------------------------------------------------

#: RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical numbers.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    number = _bits_to_float(int(bits, 16))
    assert canonical_bytes({"n": number}) == b'{"n":' + expected.encode() + b"}"
    assert rfc8785.dumps({"n": number}) == b'{"n":' + expected.encode() + b"}"


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_are_errors(bits: str) -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes({"n": _bits_to_float(int(bits, 16))})


#: The JSON canonicalization test data of RFC 8785's reference implementation
#: (github.com/cyberphone/json-canonicalization, testdata/input and testdata/output).
CYBERPHONE = {
    "arrays": (r'[56, {"d": true, "10": null, "1": [ ]}]', '[56,{"1":[],"10":null,"d":true}]'),
    "french": (
        '{"peach": "This sorting order", "péché": "is wrong according to French", '
        '"pêche": "but canonicalization MUST", "sin": "ingnore locale"}',
        '{"peach":"This sorting order","péché":"is wrong according to French",'
        '"pêche":"but canonicalization MUST","sin":"ingnore locale"}',
    ),
    "structures": (
        r'{"1": {"f": {"f": "hi","F": 5} ,"\n": 56.0}, "10": { }, "": "empty", "a": { }, '
        r'"111": [ { } ], "A": { }}',
        r'{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}',
    ),
    "unicode": (r'{"Unnormalized Unicode": "\u1e0d\u0307"}', '{"Unnormalized Unicode":"ḍ̇"}'),
    "values": (
        r'{"numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001], '
        r'"escaping": "\u20ac$\u000F\u000aA' + "'" + r'\u0042\u0022\u005c\\\"\/", '
        r'"literals": [null, true, false]}',
        r'{"escaping":"€$\u000f\nA' + "'" + r'B\"\\\\\"/","literals":[null,true,false],'
        r'"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}',
    ),
    "weird": (
        r'{"\u20ac": "Euro Sign", "1": "One", "\u0080": "Control\u007f", '
        r'"\ud83d\ude02": "Smiley", "\u00f6": "Latin Small Letter O With Diaeresis", '
        r'"\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}',
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    ),
}


@pytest.mark.parametrize("name", sorted(CYBERPHONE))
def test_reference_implementation_vectors(name: str) -> None:
    source, expected = CYBERPHONE[name]
    value = json.loads(source)
    assert canonical_bytes(value) == expected.encode("utf-8")
    assert rfc8785.dumps(value) == expected.encode("utf-8")


# -- events ------------------------------------------------------------------------------------


class Probe(LedgerAggregate.Event):
    """An event with one free field, to put generated values into an event body."""

    payload: Any


def probe(payload: Any, timestamp: datetime | None = None) -> Any:
    return Probe(  # type: ignore[call-arg]
        originator_id=UUID(int=7),
        originator_version=3,
        timestamp=timestamp or datetime(2025, 3, 1, 8, 30, 0, 123456, tzinfo=UTC),
        actor="STAFF:P001",
        actor_role="examining_physician",
        prev_hash="0" * 64,
        rule_set="GB18467-2011/v1",
        rule_outcomes=[{"rule_id": "weight.min", "value": 61.0, "limit": 50, "outcome": "pass"}],
        signature="",
        event_hash="",
        payload=payload,
    )


def reference_event_bytes(event: Any) -> bytes:
    """What the ledger hashed before the fast path: rfc8785 over the checked body."""
    return bytes(rfc8785.dumps(event_body(event)))


@settings(max_examples=1000, deadline=None)
@given(json_values)
def test_event_bytes_are_rfc8785(payload: Any) -> None:
    event = probe(payload)
    assert outcome(event_canonical_bytes, event) == outcome(reference_event_bytes, event)


def test_event_body_fields_and_order() -> None:
    event = probe({"b": 1.0, "a": [36.6, "王芳"]})
    body = event_body(event)
    assert list(body)[:4] == ["topic", "aggregate_id", "version", "timestamp"]
    assert "signature" not in body and "event_hash" not in body
    assert body["timestamp"] == "2025-03-01T08:30:00.123456+00:00"
    assert event_canonical_bytes(event) == reference_event_bytes(event)


def test_event_time_in_another_zone_is_written_in_utc() -> None:
    moment = datetime(2025, 3, 1, 16, 30, tzinfo=timezone(timedelta(hours=8)))
    event = probe(1, moment)
    assert b'"timestamp":"2025-03-01T08:30:00.000000+00:00"' in event_canonical_bytes(event)
    assert event_canonical_bytes(event) == reference_event_bytes(event)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"x": [1.0, math.nan]}, r"payload\.x\[1\]: non-finite number nan"),
        ({1: "a"}, "payload: non-string key 1"),
        ({"x": b"raw"}, r"payload\.x: bytes is not JSON-native"),
    ],
)
def test_event_errors_name_the_field(payload: Any, message: str) -> None:
    with pytest.raises(CanonicalisationError, match=message):
        event_canonical_bytes(probe(payload))


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(CanonicalisationError, match="naive datetime"):
        event_canonical_bytes(probe(1, datetime(2025, 3, 1, 8, 30)))


def test_integer_beyond_the_safe_range_is_refused() -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        event_canonical_bytes(probe(2**53))


def test_json_value_keeps_floats() -> None:
    """The body keeps the recorded values as they are; only the bytes write 100.0 as 100."""
    assert json_value({"w": 100.0}) == {"w": 100.0}
    assert type(json_value({"w": 100.0})["w"]) is float
