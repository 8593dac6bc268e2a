"""What a form holds, apart from how it looks: sections of labelled values, signers, evidence.

A `Form` is built from the DonationRecord view of one sealed donation (``templates.py``) and
rendered to PDF/A-3b (``render.py``); its signers become PAdES signatures (``signing.pades``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from signing.errors import LedgerError


class FormKind(StrEnum):
    CONSENT = "consent"  # 无偿献血者知情同意及健康状况征询表
    REGISTRATION = "registration"  # 献血登记表
    COLLECTION = "collection"  # 成分血采集记录表


ALL_FORMS: tuple[FormKind, ...] = (FormKind.CONSENT, FormKind.REGISTRATION, FormKind.COLLECTION)

#: The station parameter that lists the forms produced per donation.
FORMS_PARAMETER = "forms"


class FormConfigError(LedgerError, ValueError):
    """The station's ``forms`` parameter names no form or an unknown one."""


def configured_forms(parameters: Mapping[str, Any]) -> tuple[FormKind, ...]:
    """The forms a station produces, in the fixed order of `ALL_FORMS`: its ``forms``
    parameter (``StationConfig.parameters``), or all three when it has none (a station
    configured from station-defaults@1, which predates the parameter).

    A station that wants fewer changes the parameter to a list of ``consent``,
    ``registration``, ``collection`` (``ledger station set forms '["consent"]' --reason ...``);
    station-defaults@2 declares it (``ledger.rules.FORM_NAMES`` are the same names).
    """
    value = parameters.get(FORMS_PARAMETER)
    if value is None:
        return ALL_FORMS
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise FormConfigError(
            f"station parameter {FORMS_PARAMETER!r} must be a non-empty list of "
            f"{', '.join(ALL_FORMS)}, not {value!r}"
        )
    kinds: list[FormKind] = []
    for item in value:
        try:
            kind = FormKind(item)
        except ValueError:
            raise FormConfigError(
                f"unknown form {item!r} in station parameter {FORMS_PARAMETER!r}; "
                f"expected one of {', '.join(ALL_FORMS)}"
            ) from None
        if kind not in kinds:
            kinds.append(kind)
    return tuple(k for k in ALL_FORMS if k in kinds)


@dataclass(frozen=True)
class Field:
    """One labelled value. `amended`: the value was corrected after recording (the current
    value is shown; the trail is in the audit report and the attached RecordAmended events)."""

    label: str
    value: str
    amended: bool = False
    wide: bool = False  # takes a whole row


@dataclass(frozen=True)
class Section:
    title: str
    fields: tuple[Field, ...]
    note: str = ""
    recorded_by: str = ""  # "李医师 2026-11-22 08:15"


class SignatureState(StrEnum):
    PADES = "pades"  # signed in this PDF with the signer's certificate
    EVIDENCE_ONLY = "evidence_only"  # signed the ledger event (CAdES), no PDF signature here
    MISSING = "missing"  # a required co-signature never given before sealing
    NOT_REQUIRED = "not_required"  # e-signatures switched off at the station


@dataclass(frozen=True)
class Signer:
    """One signer of a form: who, in which role, meaning what, and when (trusted time).

    `subject_id` is the certificate subject (``STAFF:P001``, ``DONOR:<ref>``, ``STAFF:SYSTEM``);
    `events` the log positions of the events this signer signed that the form shows.
    """

    key: str  # field name of the PDF signature: letters, digits, '_', '.', '-'
    subject_id: str
    name: str
    role: str  # printed role, e.g. "体检医师"
    meaning: str  # e.g. "体检 examination"
    signed_at: str  # the event's recorded time, UTC
    trusted_time: str  # the TSA's genTime of the batch holding the signer's last event, or ""
    events: tuple[int, ...] = ()
    state: SignatureState = SignatureState.PADES
    reason: str = ""  # why the state is not PADES

    @property
    def time_text(self) -> str:
        if self.trusted_time:
            return f"可信时间 {self.trusted_time} (RFC 3161)"
        return f"记录时间 {self.signed_at} (时间戳待定)"

    def appearance(self) -> tuple[str, ...]:
        """The visible signature's lines (each also printed on the page)."""
        last = self.time_text if self.state is not SignatureState.MISSING else "—"
        if self.state in (SignatureState.MISSING, SignatureState.NOT_REQUIRED):
            last = f"状态 {self.reason}"
        return (
            f"签名人 {self.name}",
            f"角色 {self.role}",
            f"含义 {self.meaning}",
            last,
        )


@dataclass(frozen=True)
class Header:
    station_name: str
    department: str
    title: str
    title_en: str
    template_code: str
    template_version: str
    donation_no: str
    phone_callback: str
    sealed_at: str
    final_status: str


@dataclass(frozen=True)
class Form:
    kind: FormKind
    header: Header
    sections: tuple[Section, ...]
    signers: tuple[Signer, ...]
    notes: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)  # form.json: what the form shows

    @property
    def amended(self) -> bool:
        return any(f.amended for s in self.sections for f in s.fields)

    def text(self) -> str:
        """Every character the page will print (for the per-document font)."""
        parts: list[str] = [
            *vars(self.header).values(),
            *self.notes,
        ]
        for section in self.sections:
            parts += [section.title, section.note, section.recorded_by]
            for f in section.fields:
                parts += [f.label, f.value]
        for signer in self.signers:
            parts += [signer.key, *signer.appearance(), signer.reason, signer.subject_id]
        return "".join(str(p) for p in parts)
