"""Which forms a station produces, and what a signer's box says."""

from __future__ import annotations

import pytest

from documents.forms.model import (
    ALL_FORMS,
    FORMS_PARAMETER,
    FormConfigError,
    FormKind,
    SignatureState,
    Signer,
    configured_forms,
)


def test_a_station_without_the_parameter_produces_all_three() -> None:
    assert configured_forms({}) == ALL_FORMS


def test_a_station_can_produce_fewer_forms_in_the_fixed_order() -> None:
    chosen = configured_forms({FORMS_PARAMETER: ["collection", "consent", "consent"]})
    assert chosen == (FormKind.CONSENT, FormKind.COLLECTION)


@pytest.mark.parametrize("value", [[], "consent", ["consent", "audit"], 3])
def test_a_bad_forms_parameter_is_refused(value: object) -> None:
    with pytest.raises(FormConfigError):
        configured_forms({FORMS_PARAMETER: value})


def _signer(**kw: object) -> Signer:
    fields: dict[str, object] = {
        "key": "S01_P001",
        "subject_id": "STAFF:P001",
        "name": "李医师",
        "role": "体检医师",
        "meaning": "体检 examination",
        "signed_at": "2026-11-22 16:00:00 +08:00",
        "trusted_time": "2026-11-22 16:00:01 +08:00",
    }
    fields.update(kw)
    return Signer(**fields)  # type: ignore[arg-type]


def test_the_appearance_states_name_role_meaning_and_trusted_time() -> None:
    lines = _signer().appearance()
    assert lines == (
        "签名人 李医师",
        "角色 体检医师",
        "含义 体检 examination",
        "可信时间 2026-11-22 16:00:01 +08:00 (RFC 3161)",
    )


def test_a_pending_timestamp_shows_the_recorded_time_and_says_so() -> None:
    assert _signer(trusted_time="").appearance()[3].startswith("记录时间 2026-11-22 16:00:00")


def test_a_missing_signature_states_why() -> None:
    signer = _signer(state=SignatureState.MISSING, reason="未签名 (封存时缺签)", trusted_time="")
    assert signer.appearance()[3] == "状态 未签名 (封存时缺签)"
