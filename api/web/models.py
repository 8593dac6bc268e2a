"""Request and response models of the JSON API (apart from the routes that use them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class UserOut(BaseModel):
    username: str
    role: str
    staff_id: str | None


class RegistrationIn(BaseModel):
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=60)
    sex: Literal["M", "F"]
    birth_date: date
    phone: str = Field(min_length=5, max_length=20)
    product: str
    appointment_id: str | None = None


class RegisteredOut(BaseModel):
    donation_id: str


class StepOut(BaseModel):
    donation_id: str
    donation_no: str
    step: str
    version: int
    event_hash: str
    status: str
    rule_outcomes: list[dict[str, Any]]


class AmendmentIn(BaseModel):
    step: str
    field: str
    new_value: str | int | float | bool
    reason: str = Field(min_length=1)
    override_reason: str = ""
    acknowledged: list[str] = []


class AmendedOut(BaseModel):
    donation_id: str
    donation_no: str
    step: str
    field: str
    old_value: Any
    new_value: Any
    version: int
    event_hash: str
    rule_outcomes: list[dict[str, Any]]


class ArchiveJobIn(BaseModel):
    """Archive the sealed, complete donations collected from `from_date` to `to_date`."""

    from_date: date
    to_date: date
    department: str | None = Field(default=None, max_length=100)


class UserIn(BaseModel):
    username: str
    role: str
    password: str | None = None
    staff_id: str | None = None


class UserAddedOut(UserOut):
    generated_password: str | None = Field(
        None, description="shown once, when no password was given"
    )


class DonorLookUpIn(BaseModel):
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)


class BookingIn(BaseModel):
    channel: str = Field(description="wechat, baidu, douyin or h5")
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    sex: Literal["M", "F"]
    birth_date: date
    day: date
    period: Literal["morning", "afternoon"] = "morning"
    slot: str | None = Field(
        default=None, description="a slot start of the station's schedule, e.g. 09:30"
    )


class ScheduleIn(BaseModel):
    version: str = Field(min_length=1, max_length=40)
    effective_from: date
    weekdays: dict[str, dict[str, int]] = Field(description="mon..sun: {HH:MM: capacity}")
    holidays: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="YYYY-MM-DD: {HH:MM: capacity}; {} closes the day"
    )


class CancelIn(BaseModel):
    channel: str


class PreRegistrationIn(BaseModel):
    channel: str = Field(description="wechat, baidu, douyin or h5")
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=60)
    sex: Literal["M", "F"]
    birth_date: date
    phone: str = Field(min_length=5, max_length=20)
    product: str
    answers: dict[str, bool]
    appointment_id: str | None = None


class SettingIn(BaseModel):
    key: str
    value: Any
    reason: str


class RevocationIn(BaseModel):
    reason: str


class MatchRequestIn(BaseModel):
    hospital: str = Field(min_length=1, max_length=100)
    patient_name: str = Field(min_length=1, max_length=60)
    abo: str = Field(description="A, B, O or AB")
    rhd: str = Field(default="+", description="+ or -")
    hla: str = Field(default="", max_length=200, description="the patient's HLA type")
    hpa: str = Field(default="", max_length=200, description="the patient's HPA type")


class TypingIn(BaseModel):
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    hla: str = Field(default="", max_length=200, description='HLA-A/B, e.g. "A*02:01 B*46"')
    hpa: str = Field(default="", max_length=200, description='HPA, e.g. "1a1a 2a2b HPA-15:ab"')
    laboratory: str = Field(min_length=1, max_length=100)
    method: str = Field(default="", max_length=60, description="e.g. PCR-SSO")


class ContactIn(BaseModel):
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    channel: str = Field(description="phone, sms, app or wechat")
    outcome: str = Field(description="agreed, declined, unreachable or lapsed")
    reason: str = Field(default="", max_length=200, description="required unless agreed")
    request_id: str = ""
