"""Donor identity documents: the resident ID number (GB 11643-1999) and the other ID types.

A resident ID number (居民身份证号码) has 18 characters: a 6-digit address code, the birth date
as YYYYMMDD, a 3-digit sequence code whose last digit is odd for men and even for women, and a
check character computed with ISO 7064 MOD 11-2. Other ID types (证件类型) get only a shape check.

The clear number never enters an event: callers keep `mask_id` output, a keyed hash and a
ciphertext instead (docs/design.md, "Personal data").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Literal

from signing.errors import InputError

__all__ = [
    "MAX_OTHER_ID_LENGTH",
    "IdType",
    "InvalidIdentity",
    "ResidentId",
    "age_on",
    "check_char",
    "check_declared",
    "mask_id",
    "normalise_id_number",
    "parse_resident_id",
    "validate_id",
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"  # indexed by S mod 11
_ASCII_DIGITS = frozenset("0123456789")
_RESIDENT_ID_LENGTH = 18
_MIN_BIRTH_YEAR = 1900
_MASK_KEEP = 6
MAX_OTHER_ID_LENGTH = 32

Sex = Literal["M", "F"]


class InvalidIdentity(InputError, ValueError):
    """An ID number or a declared identity detail is not acceptable; the message says why."""


class IdType(StrEnum):
    """ID document types (证件类型). Only `RESIDENT_ID` (居民身份证) has a check digit."""

    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"
    TAIWAN_PERMIT = "taiwan_permit"
    FOREIGN_PERMANENT_RESIDENT = "foreign_permanent_resident"
    MILITARY = "military"


@dataclass(frozen=True)
class ResidentId:
    """A checked resident ID number and what it encodes.

    `number` is normalised: surrounding whitespace removed, check character `x` upper-cased.
    """

    number: str
    birth_date: date
    sex: Sex
    region_code: str


def check_char(first17: str) -> str:
    """The GB 11643-1999 check character (ISO 7064 MOD 11-2) of 17 ASCII digits."""
    if len(first17) != _RESIDENT_ID_LENGTH - 1 or not set(first17) <= _ASCII_DIGITS:
        raise InvalidIdentity(f"check character needs 17 digits, got {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse_resident_id(number: str, today: date | None = None) -> ResidentId:
    """Check a resident ID number and decode it.

    Checks, in order: length 18; 17 ASCII digits then a digit or X (lower-case x accepted);
    the check character; the birth date (a real date, year >= 1900, not after `today`, which
    defaults to the local date). Raises `InvalidIdentity` naming the first problem found.
    """
    normalised = normalise_id_number(IdType.RESIDENT_ID, number)
    if len(normalised) != _RESIDENT_ID_LENGTH:
        raise InvalidIdentity(
            f"resident ID number has length {len(normalised)}, expected {_RESIDENT_ID_LENGTH}"
        )
    body, given = normalised[:17], normalised[17]
    if not set(body) <= _ASCII_DIGITS:
        raise InvalidIdentity("resident ID number: the first 17 characters must be digits 0-9")
    if given not in _ASCII_DIGITS and given != "X":
        raise InvalidIdentity(
            f"resident ID number: last character {given!r} must be a digit 0-9 or X"
        )
    expected = check_char(body)
    if given != expected:
        raise InvalidIdentity(f"resident ID number: check digit is {given}, expected {expected}")
    birth_text = body[6:14]
    try:
        birth_date = date(int(birth_text[:4]), int(birth_text[4:6]), int(birth_text[6:]))
    except ValueError:
        raise InvalidIdentity(
            f"resident ID number: birth date {birth_text} is not a date"
        ) from None
    if birth_date.year < _MIN_BIRTH_YEAR:
        raise InvalidIdentity(
            f"resident ID number: birth date {birth_text} is before {_MIN_BIRTH_YEAR}"
        )
    reference = today if today is not None else date.today()
    if birth_date > reference:
        raise InvalidIdentity(
            f"resident ID number: birth date {birth_text} is in the future"
            f" (today is {reference.isoformat()})"
        )
    sex: Sex = "M" if int(body[16]) % 2 == 1 else "F"
    return ResidentId(number=normalised, birth_date=birth_date, sex=sex, region_code=body[:6])


def check_declared(resident: ResidentId, declared_sex: str, declared_birth_date: date) -> None:
    """Raise `InvalidIdentity` if the declared sex ("M"/"F") or birth date contradicts the ID."""
    if declared_sex not in ("M", "F"):
        raise InvalidIdentity(f"declared sex {declared_sex!r} must be 'M' or 'F'")
    problems = []
    if declared_sex != resident.sex:
        problems.append(f"declared sex {declared_sex} but the ID number says {resident.sex}")
    if declared_birth_date != resident.birth_date:
        problems.append(
            f"declared birth date {declared_birth_date.isoformat()} but the ID number says"
            f" {resident.birth_date.isoformat()}"
        )
    if problems:
        raise InvalidIdentity("; ".join(problems))


def age_on(birth_date: date, on: date) -> int:
    """Age in full years (周岁) on the date `on`.

    Someone born on 29 February turns a year older on 1 March in common years.
    """
    if on < birth_date:
        raise ValueError(f"date {on.isoformat()} is before birth date {birth_date.isoformat()}")
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def mask_id(number: str) -> str:
    """The one masking rule: the first 6 characters, then `*` for each remaining one.

    Inputs of 6 characters or fewer are masked entirely. Pass the normalised number
    (`ResidentId.number` or `normalise_id_number`), so that every place masks the same string.
    """
    if len(number) <= _MASK_KEEP:
        return "*" * len(number)
    return number[:_MASK_KEEP] + "*" * (len(number) - _MASK_KEEP)


def normalise_id_number(id_type: str, number: str) -> str:
    """The canonical form of an ID number: stripped and upper-cased (a resident ID's `x` -> `X`).

    This is the string to hash, encrypt and mask. It does not validate: use `validate_id`.
    """
    _id_type(id_type)
    return number.strip().upper()


def validate_id(id_type: str, number: str, today: date | None = None) -> ResidentId | None:
    """Validate an ID number for its type.

    Resident IDs are parsed with `parse_resident_id` and returned. Other types need only a
    non-empty, printable number of at most 32 characters once stripped; they return None.
    Raises `InvalidIdentity` for an unknown ID type or an unacceptable number.
    """
    kind = _id_type(id_type)
    if kind is IdType.RESIDENT_ID:
        return parse_resident_id(number, today=today)
    stripped = normalise_id_number(kind, number)
    if not stripped:
        raise InvalidIdentity(f"{kind.value} number is empty")
    if len(stripped) > MAX_OTHER_ID_LENGTH:
        raise InvalidIdentity(
            f"{kind.value} number has length {len(stripped)}, at most {MAX_OTHER_ID_LENGTH}"
        )
    if not stripped.isprintable():
        raise InvalidIdentity(f"{kind.value} number contains control characters")
    return None


def _id_type(id_type: str) -> IdType:
    try:
        return IdType(id_type)
    except ValueError:
        known = ", ".join(member.value for member in IdType)
        raise InvalidIdentity(f"unknown ID type {id_type!r}; expected one of {known}") from None
