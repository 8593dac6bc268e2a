"""Fuzzing canonical JSON with values that are not all JSON: ``json_value`` (what every event
body goes through) accepts JSON-native values, whose canonical bytes parse back to the same
value, and refuses anything else with `CanonicalisationError` (a LedgerError: exit 2), never
another exception. (tests/unit/ledger/test_canonical.py checks the bytes against rfc8785.)"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import CanonicalisationError, canonical_bytes, json_value

SEEN: Counter[str] = Counter()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.binary(max_size=4),
    st.datetimes(),
    st.decimals(allow_nan=False, places=2),
    st.sets(st.integers(), max_size=2),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


def _plain(value: Any) -> bool:
    """Is *value* JSON-native (what json_value must accept)?"""
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


@pytest.fixture(scope="module", autouse=True)
def _report() -> Any:
    yield None
    print(f"\nfuzz canonical JSON: {sum(SEEN.values())} values, {dict(SEEN)}")


@settings(max_examples=1500, deadline=None)
@given(values)
def test_json_value_accepts_json_and_refuses_the_rest_with_a_ledger_error(value: Any) -> None:
    if not _plain(value):
        with pytest.raises(CanonicalisationError):
            json_value(value, "body")
        SEEN["refused"] += 1
        return
    checked = json_value(value, "body")
    try:
        data = canonical_bytes({"v": checked})
    except Exception as exc:  # only rfc8785's refusal of lone surrogates is expected
        assert "surrogate" in str(exc).lower() or type(exc).__module__.startswith("rfc8785")
        SEEN["rfc8785 refused"] += 1
        return
    # ECMAScript writes an integral float beyond 2**53 by its shortest digits: read it as a float
    back = json.loads(data, parse_int=lambda s: float(s) if abs(int(s)) > 2**53 else int(s))["v"]
    assert back == json.loads(json.dumps(checked)), (value, data)
    SEEN["canonical"] += 1


def test_the_types_that_are_not_json_are_named() -> None:
    for bad in (b"x", {1, 2}, datetime(2026, 1, 1), Decimal("1.5"), {1: "a"}, float("nan")):
        with pytest.raises(CanonicalisationError, match="body"):
            json_value({"k": bad}, "body")
