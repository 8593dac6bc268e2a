"""Personal data inside signed events: salted commitments instead of clear values.

``DonorRegistered`` (class version 2) signs the donor's name and phone number only as masked
forms and salted commitments; the clear values travel beside the signed body in the stored
event (as before, for the read models) with the salt. The canonical body, which is what the
forms attach and ``export-event`` writes, therefore holds no clear name or phone, and its hash
and CMS signature still verify. ``ledger verify`` recomputes each commitment from the stored
clear value and the salt (``PERSONAL_DATA_MISMATCH``), so the clear values are as protected
against silent edits as the signed body.

commitment(field, value) = HMAC-SHA-256(key_field, UTF-8 value), key_field =
HMAC-SHA-256(salt, "ledger-personal-commitment/1:" + field): one 16-byte random salt per event,
one key per field. A form discloses the key of the name only (its page prints the name anyway),
so a checker can match the printed name with the signed event; the phone's key never leaves
the store, and without it the commitment reveals nothing about the number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

_DOMAIN = b"ledger-personal-commitment/1:"


def new_salt() -> str:
    return os.urandom(16).hex()


def commitment_key(salt: str, field: str) -> bytes:
    return hmac.new(bytes.fromhex(salt), _DOMAIN + field.encode(), hashlib.sha256).digest()


def commit_with_key(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def commit(salt: str, field: str, value: str) -> str:
    return commit_with_key(commitment_key(salt, field), value)


def mask_name(name: str) -> str:
    """The first character, then one ``*`` per further character (spaces kept)."""
    stripped = name.strip()
    if not stripped:
        return ""
    return stripped[0] + "".join(" " if c.isspace() else "*" for c in stripped[1:])


def mask_phone(phone: str) -> str:
    """The first three and last four digits; the others ``*`` (short numbers: all ``*``)."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
