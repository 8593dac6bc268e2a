"""Recording a donation's steps from outside the process: station systems, PDAs, the HTTP API.

Each use case takes a typed, frozen command and calls the ledger application with the same
values, control points and outcomes as the demo day (`services.demo`): the application evaluates
the step's rules, the aggregate checks the signer's role and the donation's state, and the event is
signed and saved in one transaction.

Who signs: the staff member named in the command, with their own credential only
(`services.staff.staff_signer`); the HTTP API fills it from the logged-in user, never from the
request. Two steps are the station system's by the workflow (the donation number and the sealing:
`ledger.donation` allows only the system role there) and the donor's consent and co-signatures are
signed with a donor certificate issued at signing time, as at the desk.

The payload of each step is checked in full before anything is written: an unknown field, a
missing one or a value of the wrong type is `InputError`, naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.application import CHANNELS, DONATION_NO_LENGTH
from ledger.application import PRODUCTS as PRODUCTS  # re-exported for the adapters
from ledger.donation import Donation, Step
from ledger.events import WorkflowError as WorkflowError  # re-exported for the adapters
from ledger.identity import InvalidIdentity, check_declared, validate_id
from projections.eventtime import station_today
from services.donor_history import ask, configured_source, record_answer
from services.staff import staff_signer
from services.station import Station
from signing.errors import InputError


class DonationNotFound(InputError):
    """No donation has this number (or id)."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class ConsentPayload(_Payload):
    answers: dict[str, bool]
    consent: bool
    fingerprint_verified: bool


class ExamPayload(_Payload):
    weight_kg: float = Field(gt=0, lt=500)
    sbp_mmhg: int = Field(gt=0, lt=400)
    dbp_mmhg: int = Field(gt=0, lt=300)
    pulse_per_min: int = Field(gt=0, lt=400)
    temperature_c: float = Field(gt=25, lt=45)
    findings: str = ""
    acknowledged: tuple[str, ...] = ()
    repeat_donor_no_reaction: bool = False
    endurance_athlete: bool = False


class TestPayload(_Payload):
    hb_g_per_l: float = Field(gt=0)
    hct_fraction: float = Field(gt=0, lt=1)
    plt_10e9_per_l: float = Field(gt=0)
    mpv_fl: float | None = None
    alt_u_per_l: float | None = None
    hbsag: Literal["negative", "positive"] = "negative"
    syphilis: Literal["negative", "positive"] = "negative"
    abo: Literal["", "A", "B", "O", "AB"] = ""
    instrument_id: str = ""
    reagent_lots: dict[str, str] = Field(default_factory=dict)
    auto_imported: bool = False
    acknowledged: tuple[str, ...] = ()


class AssessmentPayload(_Payload):
    decision: Literal["eligible", "deferred"]
    planned_doses: int = Field(default=1, ge=1, le=3)
    planned_plasma_ml: int = Field(default=0, ge=0, le=600)
    defer_reason: str = ""
    overrides: dict[str, str] = Field(default_factory=dict)
    acknowledged: tuple[str, ...] = ()


class NumberPayload(_Payload):
    donation_no: str = Field(pattern=rf"^[0-9]{{{DONATION_NO_LENGTH}}}$")


class PreCollectionPayload(_Payload):
    scans: tuple[str, ...]
    separator_model: str = Field(min_length=1)
    separator_serial: str = Field(min_length=1)
    kit_lot: str = Field(min_length=1)
    acd_lot: str = Field(min_length=1)
    saline_lot: str = Field(min_length=1)
    venipuncture_at: str = Field(min_length=1)


class CollectionPayload(_Payload):
    started_at: str = Field(min_length=1)
    ended_at: str = Field(min_length=1)
    processed_blood_ml: int = Field(gt=0)
    acd_ml: int = Field(ge=0)
    product_volume_ml: int = Field(gt=0)
    platelet_yield_10e11: float = Field(ge=0)
    doses: int = Field(ge=1, le=3)
    plasma_ml: int = Field(ge=0)
    auto_imported: bool = False
    acknowledged: tuple[str, ...] = ()


class ScansPayload(_Payload):
    scans: tuple[str, ...]


class ReactionPayload(_Payload):
    reaction_type: str = Field(min_length=1)
    severity: Literal["mild", "moderate", "severe"]
    onset_at: str = Field(min_length=1)
    treatment: str = ""
    outcome: str = Field(min_length=1)


class SignaturePayload(_Payload):
    slot: str = Field(min_length=1)
    #: Only for a donor's slot: the donor's identity was checked by fingerprint at signing.
    fingerprint_verified: bool = False


class SealPayload(_Payload):
    pass


#: Steps that are not workflow steps of `ledger.donation.Step` but are recorded the same way.
REACTION = "adverse_reaction"
SIGNATURE = "signature"
SEAL = "seal"

PAYLOADS: dict[str, type[_Payload]] = {
    Step.CONSENT: ConsentPayload,
    Step.EXAM: ExamPayload,
    Step.TEST: TestPayload,
    Step.ASSESSMENT: AssessmentPayload,
    Step.NUMBER: NumberPayload,
    Step.PRE_COLLECTION: PreCollectionPayload,
    Step.COLLECTION: CollectionPayload,
    Step.POST_COLLECTION: ScansPayload,
    Step.HEAT_SEAL: ScansPayload,
    REACTION: ReactionPayload,
    SIGNATURE: SignaturePayload,
    SEAL: SealPayload,
}

#: The steps this module records, in workflow order (registration is `RegisterDonation`).
STEP_NAMES: tuple[str, ...] = tuple(PAYLOADS)


def parse_payload(step: str, payload: Mapping[str, Any]) -> _Payload:
    """The step's payload, checked in full; `InputError` naming each bad field."""
    model = PAYLOADS.get(step)
    if model is None:
        known = ", ".join(STEP_NAMES)
        raise InputError(f"unknown step {step!r} (known: {known})")
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        raise InputError(f"{step}: {validation_message(exc)}") from exc


def validation_message(exc: ValidationError) -> str:
    """One line: each bad field with pydantic's reason."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def find_donation(station: Station, key: str) -> UUID:
    """A donation by its 13-digit number or, before a number is assigned, its id (a UUID)."""
    key = key.strip()
    if len(key) == DONATION_NO_LENGTH and key.isdigit():
        try:
            return station.app.find_donation(key)
        except WorkflowError as exc:
            raise DonationNotFound(f"no donation with number {key}") from exc
    try:
        donation_id = UUID(key)
    except ValueError as exc:
        raise InputError(
            f"{key!r} is neither a {DONATION_NO_LENGTH}-digit donation number nor a donation id"
        ) from exc
    try:
        station.app.donation(donation_id)
    except WorkflowError as exc:
        raise DonationNotFound(f"no donation {donation_id}") from exc
    return donation_id


def normalised_id(id_type: str, id_number: str, sex: str, birth_date: date) -> str:
    """The normalised ID number, checked (GB 11643 check digit, the declared sex and birth
    date); `InputError` naming what is wrong."""
    try:
        resident = validate_id(id_type, id_number, station_today())
        if resident is not None:
            check_declared(resident, sex, birth_date)
            return resident.number
    except InvalidIdentity as exc:
        raise InputError(f"ID number: {exc}") from exc
    if not id_number.strip():
        raise InputError("ID number: missing")
    return id_number.strip().upper()


# -- registration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterDonation:
    """A visit registered at the desk by the clerk `staff_id`."""

    staff_id: str
    id_type: str
    id_number: str
    name: str
    sex: Literal["M", "F"]
    birth_date: date
    phone: str
    product: str
    channel: str = "desk"
    appointment_id: str | None = None


@dataclass(frozen=True)
class Registered:
    donation_id: UUID


def register_donation(station: Station, command: RegisterDonation) -> Registered:
    if command.channel not in CHANNELS:
        raise InputError(f"unknown channel {command.channel!r} (known: {', '.join(CHANNELS)})")
    if command.product not in PRODUCTS:
        raise InputError(f"unknown product {command.product!r} (known: {', '.join(PRODUCTS)})")
    if command.sex not in ("M", "F"):
        raise InputError("sex must be M or F")
    if not command.phone.strip().isdigit():
        raise InputError("phone must be digits")
    if not command.name.strip():
        raise InputError("the donor's name is required")
    normalised_id(command.id_type, command.id_number, command.sex, command.birth_date)
    signer = staff_signer(station, command.staff_id)
    source = configured_source(
        station.settings.donor_history_url, station.settings.donor_history_timeout_s
    )
    # The regional service is asked first: when it does not answer, nothing is written.
    answer = ask(source, command.id_type, command.id_number) if source is not None else None
    # What is left to refuse is the signer's role: a WorkflowError (409), nothing written.
    donation_id = station.app.register_donor(
        signer,
        channel=command.channel,
        id_type=command.id_type,
        id_number=command.id_number,
        name=command.name,
        sex=command.sex,
        birth_date=command.birth_date,
        phone=command.phone.strip(),
        product=command.product,
        appointment_id=command.appointment_id,
    )
    if answer is not None:  # the regional answer, recorded (signed) with the registration
        record_answer(station, answer, donation_id, command.staff_id)
    return Registered(donation_id)


# -- steps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordStep:
    """Record `step` of a donation (its number, or its id before a number exists) with the
    step's values, signed by `staff_id`."""

    donation: str
    step: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    staff_id: str = ""


@dataclass(frozen=True)
class StepRecorded:
    donation_id: UUID
    donation_no: str
    step: str
    #: The event the step wrote: its version in the donation and its hash.
    version: int
    event_hash: str
    #: The rule outcomes the step recorded (empty for steps without control points).
    rule_outcomes: tuple[Mapping[str, Any], ...]
    #: The donation's status after the step.
    status: str


def record_step(station: Station, command: RecordStep) -> StepRecorded:
    """Record one step. Bad payload or unknown donation: `InputError`, nothing written; a step
    the donation's state, the rules or the signer's role refuse: `WorkflowError`, nothing
    written."""
    if not command.staff_id:
        raise InputError("a step needs the staff member who records it")
    payload = parse_payload(command.step, command.payload)
    donation_id = find_donation(station, command.donation)
    app = station.app
    before = app.donation(donation_id)
    recorder = _RECORDERS[command.step]
    recorder(station, donation_id, before, command.staff_id, payload)
    after = app.donation(donation_id)
    version = int(after.version)
    entry = after.steps.get(command.step, {})
    outcomes = tuple(entry.get("rule_outcomes", ())) if entry.get("version") == version else ()
    return StepRecorded(
        donation_id=donation_id,
        donation_no=after.donation_no or "",
        step=command.step,
        version=version,
        event_hash=str(after.head_hash),
        rule_outcomes=outcomes,
        status=str(after.status),
    )


_Recorder = Callable[[Station, UUID, Donation, str, Any], None]


def _consent(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    staff_signer(station, staff)  # the recording staff member must hold a credential
    if Step.CONSENT in before.steps:
        raise WorkflowError("the informed consent is already signed")
    donor = station.donor_signer(donation_id, fingerprint_verified=p.fingerprint_verified)
    station.app.sign_consent(
        donation_id,
        donor,
        answers=p.answers,
        consent=p.consent,
        fingerprint_verified=p.fingerprint_verified,
        donor_certificate_serial=donor.certificate_serial,
    )


def _exam(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.record_exam(
        donation_id,
        staff_signer(station, staff),
        weight_kg=p.weight_kg,
        sbp_mmhg=p.sbp_mmhg,
        dbp_mmhg=p.dbp_mmhg,
        pulse_per_min=p.pulse_per_min,
        temperature_c=p.temperature_c,
        findings=p.findings,
        acknowledged=p.acknowledged,
        repeat_donor_no_reaction=p.repeat_donor_no_reaction,
        endurance_athlete=p.endurance_athlete,
    )


def _test(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.record_test(
        donation_id,
        staff_signer(station, staff),
        hb_g_per_l=p.hb_g_per_l,
        hct_fraction=p.hct_fraction,
        plt_10e9_per_l=p.plt_10e9_per_l,
        mpv_fl=p.mpv_fl,
        alt_u_per_l=p.alt_u_per_l,
        hbsag=p.hbsag,
        syphilis=p.syphilis,
        abo=p.abo,
        instrument_id=p.instrument_id,
        reagent_lots=p.reagent_lots,
        auto_imported=p.auto_imported,
        acknowledged=p.acknowledged,
    )


def _assess(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.assess(
        donation_id,
        staff_signer(station, staff),
        decision=p.decision,
        planned_doses=p.planned_doses,
        planned_plasma_ml=p.planned_plasma_ml,
        defer_reason=p.defer_reason,
        overrides=p.overrides,
        acknowledged=p.acknowledged,
    )


def _number(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    staff_signer(station, staff)
    station.app.assign_number(donation_id, station.system, p.donation_no)


def _pre(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.verify_pre_collection(
        donation_id,
        staff_signer(station, staff),
        scans=list(p.scans),
        separator_model=p.separator_model,
        separator_serial=p.separator_serial,
        kit_lot=p.kit_lot,
        acd_lot=p.acd_lot,
        saline_lot=p.saline_lot,
        venipuncture_at=p.venipuncture_at,
    )


def _collection(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.record_collection(
        donation_id,
        staff_signer(station, staff),
        acknowledged=p.acknowledged,
        started_at=p.started_at,
        ended_at=p.ended_at,
        processed_blood_ml=p.processed_blood_ml,
        acd_ml=p.acd_ml,
        product_volume_ml=p.product_volume_ml,
        platelet_yield_10e11=p.platelet_yield_10e11,
        doses=p.doses,
        plasma_ml=p.plasma_ml,
        auto_imported=p.auto_imported,
    )


def _post(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.verify_post_collection(donation_id, staff_signer(station, staff), list(p.scans))


def _heat_seal(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.verify_heat_seal(donation_id, staff_signer(station, staff), list(p.scans))


def _reaction(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    station.app.record_reaction(
        donation_id,
        staff_signer(station, staff),
        reaction_type=p.reaction_type,
        severity=p.severity,
        onset_at=p.onset_at,
        treatment=p.treatment,
        outcome=p.outcome,
    )


def _signature(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    slot = before.slot(p.slot)  # WorkflowError for an unknown slot, before any write
    signer = staff_signer(station, staff)
    if slot["role"] == "donor":
        if p.slot in before.cosignatures:
            raise WorkflowError(f"signature slot {p.slot} is already signed")
        if slot["step"] not in before.steps:
            raise WorkflowError(f"step {slot['step']} has not been recorded yet")
        signer = station.donor_signer(donation_id, fingerprint_verified=p.fingerprint_verified)
    station.app.apply_signature(donation_id, signer, p.slot)


def _seal(station: Station, donation_id: UUID, before: Donation, staff: str, p: Any) -> None:
    staff_signer(station, staff)
    station.app.seal(donation_id, station.system)


_RECORDERS: dict[str, _Recorder] = {
    Step.CONSENT: _consent,
    Step.EXAM: _exam,
    Step.TEST: _test,
    Step.ASSESSMENT: _assess,
    Step.NUMBER: _number,
    Step.PRE_COLLECTION: _pre,
    Step.COLLECTION: _collection,
    Step.POST_COLLECTION: _post,
    Step.HEAT_SEAL: _heat_seal,
    REACTION: _reaction,
    SIGNATURE: _signature,
    SEAL: _seal,
}
assert set(_RECORDERS) == set(PAYLOADS)
