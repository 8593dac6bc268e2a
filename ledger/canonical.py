"""Canonical bytes of an event: what the ledger hashes and what the actor signs.

The canonical body is an RFC 8785 (JCS) serialisation of the event's declared fields plus its
identity (topic, aggregate id, version, timestamp), without the evidence fields (the
signature and the event's own copy of its hash). The stored eventsourcing ``state`` is
never hashed: it is encoded with
unsorted keys and may be compressed or encrypted (shared/docs/pitfalls.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785
from eventsourcing.utils import get_topic

#: Fields that carry evidence about the body and so cannot be part of it.
EVIDENCE_FIELDS = frozenset({"signature", "event_hash"})
#: Identity fields of every eventsourcing domain event, rendered under stable names.
_IDENTITY_FIELDS = frozenset({"originator_id", "originator_version", "timestamp"})

GENESIS_HASH = "0" * 64


class CanonicalisationError(ValueError):
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


def event_body(event: Any) -> dict[str, Any]:
    """The canonical body of a domain event, as a JSON-native dict."""
    body: dict[str, Any] = {
        "topic": get_topic(type(event)),
        "aggregate_id": str(event.originator_id),
        "version": int(event.originator_version),
        "timestamp": iso_utc(event.timestamp),
    }
    for field in dataclasses.fields(event):
        name = field.name
        if name in EVIDENCE_FIELDS or name in _IDENTITY_FIELDS:
            continue
        body[name] = json_value(getattr(event, name), name)
    return body


def canonical_bytes(body: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of a body (the ``rfc8785`` package: we do not hand-roll JCS)."""
    return rfc8785.dumps(body)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event_canonical_bytes(event: Any) -> bytes:
    return canonical_bytes(event_body(event))
