from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.identity import (
    IdType,
    InvalidIdentity,
    ResidentId,
    age_on,
    check_char,
    check_declared,
    mask_id,
    normalise_id_number,
    parse_resident_id,
    validate_id,
)

SAMPLE = "11010519491231002X"
TODAY = date(2024, 6, 1)


def make_id(body: str) -> str:
    """A resident ID number with a correct check character for 17 digits."""
    return body + check_char(body)


def test_sample_is_valid() -> None:
    assert parse_resident_id(SAMPLE, today=TODAY) == ResidentId(
        number=SAMPLE, birth_date=date(1949, 12, 31), sex="F", region_code="110105"
    )


def test_lower_case_x_and_whitespace_are_normalised() -> None:
    resident = parse_resident_id(f"  {SAMPLE.lower()}\n", today=TODAY)
    assert resident.number == SAMPLE
    assert normalise_id_number("resident_id", " 11010519491231002x ") == SAMPLE


def test_odd_sequence_digit_is_male() -> None:
    resident = parse_resident_id(make_id("11010519800101001"), today=TODAY)
    assert resident.sex == "M"
    assert resident.birth_date == date(1980, 1, 1)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (SAMPLE[:-1], "length 17, expected 18"),
        (SAMPLE + "1", "length 19, expected 18"),
        ("", "length 0, expected 18"),
        ("1101051949123100AX", "first 17 characters must be digits"),
        ("１１０１０５１９４９１２３１００２X", "first 17 characters must be digits"),
        ("11010519491231002Y", "last character 'Y' must be a digit 0-9 or X"),
        ("110105194912310023", "check digit is 3, expected X"),
        (make_id("11010519490231002"), "birth date 19490231 is not a date"),
        (make_id("11010519491301002"), "birth date 19491301 is not a date"),
        (make_id("11010518991231002"), "birth date 18991231 is before 1900"),
        (make_id("11010520240602002"), "birth date 20240602 is in the future"),
    ],
)
def test_invalid_numbers_say_what_is_wrong(number: str, message: str) -> None:
    with pytest.raises(InvalidIdentity, match=message):
        parse_resident_id(number, today=TODAY)


def test_born_today_is_accepted() -> None:
    assert parse_resident_id(make_id("11010520240601002"), today=TODAY).birth_date == TODAY


def test_check_char_needs_17_digits() -> None:
    with pytest.raises(InvalidIdentity, match="17 digits"):
        check_char("1234")


@given(
    region=st.text(alphabet="0123456789", min_size=6, max_size=6),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    sequence=st.integers(min_value=0, max_value=999),
    position=st.integers(min_value=0, max_value=17),
    shift=st.integers(min_value=1, max_value=10),
)
def test_check_character_accepts_and_catches_any_single_change(
    region: str, birth: date, sequence: int, position: int, shift: int
) -> None:
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    number = make_id(body)
    resident = parse_resident_id(number, today=TODAY)
    assert resident.birth_date == birth
    assert resident.sex == ("M" if sequence % 2 else "F")

    alphabet = "0123456789X" if position == 17 else "0123456789"
    current = alphabet.index(number[position])
    replacement = alphabet[(current + shift) % len(alphabet)]
    if replacement == number[position]:  # shift == 10 on a digit position wraps around
        replacement = alphabet[(current + 1) % len(alphabet)]
    flipped = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(InvalidIdentity, match="check digit"):
        parse_resident_id(flipped, today=TODAY)


def test_check_declared_accepts_matching_details() -> None:
    check_declared(parse_resident_id(SAMPLE, today=TODAY), "F", date(1949, 12, 31))


@pytest.mark.parametrize(
    ("sex", "birth", "message"),
    [
        ("M", date(1949, 12, 31), "declared sex M but the ID number says F"),
        ("F", date(1949, 12, 30), "declared birth date 1949-12-30 but the ID number says"),
        ("female", date(1949, 12, 31), "must be 'M' or 'F'"),
    ],
)
def test_check_declared_rejects_mismatches(sex: str, birth: date, message: str) -> None:
    with pytest.raises(InvalidIdentity, match=message):
        check_declared(parse_resident_id(SAMPLE, today=TODAY), sex, birth)


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(2006, 6, 1), date(2024, 6, 1), 18),
        (date(2006, 6, 2), date(2024, 6, 1), 17),
        (date(1949, 12, 31), date(2024, 6, 1), 74),
        (date(2004, 2, 29), date(2022, 2, 28), 17),
        (date(2004, 2, 29), date(2022, 3, 1), 18),
        (date(2024, 6, 1), date(2024, 6, 1), 0),
    ],
)
def test_age_in_full_years(birth: date, on: date, age: int) -> None:
    assert age_on(birth, on) == age


def test_age_before_birth_is_an_error() -> None:
    with pytest.raises(ValueError, match="before birth date"):
        age_on(date(2000, 1, 2), date(2000, 1, 1))


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        (SAMPLE, "110105************"),
        ("E12345678", "E12345***"),
        ("1234567", "123456*"),
        ("123456", "******"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask_keeps_six_characters(number: str, masked: str) -> None:
    assert mask_id(number) == masked


def test_validate_resident_id_returns_the_parsed_number() -> None:
    assert validate_id("resident_id", SAMPLE, today=TODAY) == parse_resident_id(SAMPLE, TODAY)
    with pytest.raises(InvalidIdentity, match="check digit"):
        validate_id(IdType.RESIDENT_ID, "110105194912310023", today=TODAY)


@pytest.mark.parametrize("id_type", [t for t in IdType if t is not IdType.RESIDENT_ID])
def test_other_id_types_need_only_a_short_non_empty_number(id_type: IdType) -> None:
    assert validate_id(id_type.value, " E12345678 ") is None
    assert validate_id(id_type.value, "A" * 32) is None
    with pytest.raises(InvalidIdentity, match="empty"):
        validate_id(id_type.value, "   ")
    with pytest.raises(InvalidIdentity, match="length 33, at most 32"):
        validate_id(id_type.value, "A" * 33)
    with pytest.raises(InvalidIdentity, match="control characters"):
        validate_id(id_type.value, "E123\x0045")


def test_other_id_types_are_not_check_digit_checked() -> None:
    assert validate_id("passport", "110105194912310023") is None
    assert normalise_id_number("passport", " ab12x ") == "AB12X"


def test_unknown_id_type_is_rejected() -> None:
    with pytest.raises(InvalidIdentity, match="unknown ID type 'driving_licence'"):
        validate_id("driving_licence", "123")


def test_id_type_values() -> None:
    assert [t.value for t in IdType] == [
        "resident_id",
        "passport",
        "hk_macao_permit",
        "taiwan_permit",
        "foreign_permanent_resident",
        "military",
    ]
