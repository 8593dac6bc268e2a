"""Canonical bytes of an event: what the ledger hashes and what the actor signs.

The canonical body is an RFC 8785 (JCS) serialisation of the event's declared fields plus its
identity (topic, aggregate id, version, timestamp), without the evidence fields (the
signature and the event's own copy of its hash). The stored eventsourcing ``state`` is
never hashed: it is encoded with
unsorted keys and may be compressed or encrypted (shared/docs/pitfalls.md).

Two serialisers give the same bytes. The reference is the ``rfc8785`` package (pure Python,
about 30 µs for an event body). The fast path is the standard library's C JSON encoder with
sorted keys, compact separators and ``ensure_ascii=False``, used only on values where its output
is provably RFC 8785's, and everything else goes to ``rfc8785``:

* strings: both escape exactly ``"``, ``\\`` and U+0000..U+001F (``\\b \\t \\n \\f \\r``, else
  ``\\u00xx`` in lower-case hex) and write every other character as UTF-8; a lone surrogate
  fails the UTF-8 encoding and goes to ``rfc8785`` (which rejects it);
* object keys: RFC 8785 orders them by UTF-16 code units, Python by code points. The two orders
  agree unless a key holds a character beyond U+FFFF (a surrogate pair in UTF-16 sorts below
  U+E000..U+FFFF), so such keys go to ``rfc8785``; keys must be exact ``str``;
* integers: both write the decimal digits; outside RFC 8785's safe range (2**53 - 1) they go to
  ``rfc8785`` (which rejects them);
* floats: ``repr`` (what the C encoder writes) and ``rfc8785`` (which reformats ``str(f)`` after
  ECMAScript) agree for a non-integral finite ``f`` with 1e-4 <= |f| < 1e16 (``repr`` uses
  fixed notation there, and ``rfc8785`` then keeps it as is). An integral float with
  |f| < 2**53 is written as ``int(f)``: ``rfc8785`` drops the ``.0`` and writes ``-0.0`` as ``0``,
  and below 2**53 the shortest round-trip digits of an integral float are its exact integer.
  Every other float (1e21, 5e-324, 1.5e-7, NaN, ...) goes to ``rfc8785``;
* ``None``, ``True``, ``False``: ``null``, ``true``, ``false``; lists and tuples: arrays; only
  exact ``dict``, ``list`` and ``tuple`` containers, and exact ``int`` and ``float`` (an
  ``IntEnum`` goes to ``rfc8785``). ``str`` subclasses (``StrEnum``) are fine: both write their
  character data.

``tests/unit/ledger/test_canonical.py`` checks the two against each other (hypothesis, including
the cases above) and against the RFC 8785 test vectors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785
from eventsourcing.utils import get_topic

from signing.errors import LedgerError

#: Fields that carry evidence about the body and so cannot be part of it.
EVIDENCE_FIELDS = frozenset({"signature", "event_hash"})
#: Identity fields of every eventsourcing domain event, rendered under stable names.
_IDENTITY_FIELDS = frozenset({"originator_id", "originator_version", "timestamp"})

GENESIS_HASH = "0" * 64
#: Key an upcast puts in a decoded event's ``__dict__`` naming the fields it added: the event was
#: recorded before its class declared them, so they were never part of its hashed, signed body.
UPCAST_FIELDS = "_fields_added_by_upcast"


class CanonicalisationError(LedgerError, ValueError):
    """A value cannot be represented in a canonical body (NaN, bytes, an unknown type)."""


def iso_utc(moment: datetime) -> str:
    """The one timestamp format of canonical bodies: UTC, microseconds, ``+00:00``."""
    if moment.tzinfo is None:
        raise CanonicalisationError("naive datetime in an event")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def json_value(value: Any, path: str = "") -> Any:
    """Check that *value* is JSON-native (what survives the store and RFC 8785 unchanged)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalisationError(f"{path}: non-finite number {value!r}")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalisationError(f"{path}: non-string key {key!r}")
            out[key] = json_value(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [json_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise CanonicalisationError(f"{path}: {type(value).__name__} is not JSON-native")


_BODY_FIELDS: dict[type, tuple[str, ...]] = {}


def _body_fields(cls: type) -> tuple[str, ...]:
    """The declared fields of an event class that enter its body, in declaration order."""
    names = _BODY_FIELDS.get(cls)
    if names is None:
        names = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in EVIDENCE_FIELDS and f.name not in _IDENTITY_FIELDS
        )
        _BODY_FIELDS[cls] = names
    return names


def _signed_fields(event: Any) -> tuple[str, ...]:
    """The body fields of this event: its class's, without those an upcast added, and without
    the clear personal values whose salted commitment the body carries instead
    (``PERSONAL_FIELDS``, ``UNSIGNED_FIELDS`` of the class; ``ledger.personal``); an empty
    commitment leaves its clear value in the body (``RecordAmended`` v3). An event
    recorded before its class committed to a value (the commitment was added by an upcast)
    signed the clear value, which then stays in its body."""
    cls = type(event)
    names = _body_fields(cls)
    added = event.__dict__.get(UPCAST_FIELDS, ())
    personal: Mapping[str, str] = getattr(cls, "PERSONAL_FIELDS", {})
    unsigned: frozenset[str] = getattr(cls, "UNSIGNED_FIELDS", frozenset())
    if not added and not personal and not unsigned:
        return names
    # a clear value is out of the body when the body commits to it (a commitment the event
    # holds, not added by an upcast, and not empty as an amendment of any other value has)
    committed = {
        clear
        for clear, commitment in personal.items()
        if commitment not in added and event.__dict__.get(commitment)
    }
    return tuple(n for n in names if n not in added and n not in committed and n not in unsigned)


def event_body(event: Any) -> dict[str, Any]:
    """The canonical body of a domain event, as a JSON-native dict."""
    body: dict[str, Any] = {
        "topic": get_topic(type(event)),
        "aggregate_id": str(event.originator_id),
        "version": int(event.originator_version),
        "timestamp": iso_utc(event.timestamp),
    }
    for name in _signed_fields(event):
        body[name] = json_value(getattr(event, name), name)
    return body


def canonical_bytes(body: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of a body: the C encoder where it provably agrees, else ``rfc8785``."""
    try:
        return _fast_bytes(_fast_value(body))
    except _NotFast:
        return rfc8785.dumps(body)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event_canonical_bytes(event: Any) -> bytes:
    """``canonical_bytes(event_body(event))``, in one pass over the fields when it can be."""
    try:
        timestamp = event.timestamp
        if timestamp.tzinfo is None:
            raise _NotFast
        body: dict[str, Any] = {
            "topic": get_topic(type(event)),
            "aggregate_id": str(event.originator_id),
            "version": int(event.originator_version),
            "timestamp": timestamp.astimezone(UTC).isoformat(timespec="microseconds"),
        }
        for name in _signed_fields(event):
            body[name] = _fast_value(getattr(event, name))
        return _fast_bytes(body)
    except _NotFast:
        return rfc8785.dumps(event_body(event))


# -- the fast path -------------------------------------------------------------------------------


class _NotFast(Exception):
    """A value outside the fast path's proven domain: serialise it with ``rfc8785``."""


_SAFE_INT = 2**53 - 1
_ASTRAL = "\U00010000"
_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    check_circular=False,  # _fast_value builds fresh containers (and recursion stops a cycle)
)


def _fast_bytes(value: Any) -> bytes:
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: rfc8785 rejects it with its own error
        raise _NotFast from None


def _fast_value(value: Any) -> Any:
    """*value* ready for the C encoder (integral floats as ints, fresh containers), or
    ``_NotFast`` (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        raise _NotFast
    if kind is float:
        if value.is_integer():
            if -_SAFE_INT <= value <= _SAFE_INT:
                return int(value)
        elif 1e-4 <= abs(value) < 1e16:  # False for NaN and the infinities
            return value
        raise _NotFast
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) >= _ASTRAL):
                raise _NotFast
            out[key] = _fast_value(item)
        return out
    if kind is list or kind is tuple:
        return [_fast_value(item) for item in value]
    if isinstance(value, str):  # a StrEnum: written from its character data by both
        return value
    raise _NotFast
