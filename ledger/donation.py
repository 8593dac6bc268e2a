"""The Donation aggregate: one component-donation visit, from registration to sealing.

Commands validate the order of the workflow (shared/docs/domain.md §1) and who may sign each step;
rule outcomes are evaluated by the application (which knows the rule set and the donor's history)
and passed in, and the aggregate refuses to move on while a hard rule fails unoverridden or an alert
is unacknowledged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from ledger import personal
from ledger.events import LedgerAggregate, Signer, WorkflowError, add_fields, require_role
from ledger.rules import Outcome
from ledger.rules.amendments import AmendmentPolicy


class Step(StrEnum):
    REGISTRATION = "registration"
    CONSENT = "informed_consent"
    EXAM = "general_exam"
    TEST = "pre_donation_test"
    ASSESSMENT = "eligibility"
    NUMBER = "donation_number"
    PRE_COLLECTION = "pre_collection"
    COLLECTION = "collection"
    POST_COLLECTION = "post_collection"
    HEAT_SEAL = "heat_seal"


class Role(StrEnum):
    CLERK = "registration_clerk"
    DONOR = "donor"
    EXAMINING_PHYSICIAN = "examining_physician"
    TECHNICIAN = "screening_technician"
    EVALUATING_PHYSICIAN = "evaluating_physician"
    NURSE = "collection_nurse"
    SEALER = "sealing_staff"
    SYSTEM = "system"
    ADMINISTRATOR = "administrator"
    QUALITY_MANAGER = "quality_manager"


class DonationStatus(StrEnum):
    OPEN = "open"
    DEFERRED = "deferred"  # an eligibility assessment deferred the donor
    SEALED = "sealed"  # DonationRecordSealed: only amendments from now on


class Decision(StrEnum):
    """An eligibility assessment's decision (``EligibilityAssessed.decision``)."""

    ELIGIBLE = "eligible"
    DEFERRED = "deferred"


class FinalStatus(StrEnum):
    """How a sealed visit ended (``DonationRecordSealed.final_status``)."""

    COMPLETED = "completed"
    DEFERRED = "deferred"


class SlotState(StrEnum):
    """A co-signature slot's state at registration (``DonorRegistered.required_slots``)."""

    REQUIRED = "required"
    NOT_REQUIRED = "not_required"  # the station had e-signatures switched off


PHYSICIANS = (Role.EXAMINING_PHYSICIAN, Role.EVALUATING_PHYSICIAN)
STAFF_ROLES = tuple(r for r in Role if r not in (Role.DONOR, Role.SYSTEM))

#: Who records (and so signs) each step.
RECORDERS: Mapping[Step, tuple[str, ...]] = {
    Step.REGISTRATION: (Role.CLERK, Role.SYSTEM),
    Step.CONSENT: (Role.DONOR,),
    Step.EXAM: (Role.EXAMINING_PHYSICIAN,),
    Step.TEST: (Role.TECHNICIAN,),
    Step.ASSESSMENT: PHYSICIANS,
    Step.NUMBER: (Role.SYSTEM,),
    Step.PRE_COLLECTION: (Role.NURSE,),
    Step.COLLECTION: (Role.NURSE,),
    Step.POST_COLLECTION: (Role.NURSE,),
    Step.HEAT_SEAL: (Role.SEALER, Role.NURSE),
}

#: Fields common to every ledger event (not step values).
COMMON_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "actor",
        "actor_role",
        "prev_hash",
        "rule_set",
        "rule_outcomes",
        "signature",
        "event_hash",
        # DonorRegistered v2: how the name and phone are signed (ledger.personal), not values
        "name_masked",
        "phone_masked",
        "name_commitment",
        "phone_commitment",
        "personal_salt",
        # RecordAmended v3: how a personal value's correction is signed
        "old_value_masked",
        "new_value_masked",
        "old_value_commitment",
        "new_value_commitment",
    }
)


def step_values(event: LedgerAggregate.Event) -> dict[str, Any]:
    """The step's recorded values: the event's own fields, without identity and evidence."""
    return {
        f.name: getattr(event, f.name)
        for f in dataclasses.fields(event)
        if f.name not in COMMON_FIELDS
    }


def unresolved(outcomes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Outcomes that block the workflow: a hard FAIL not overridden, an ALERT not acknowledged."""
    return [o for o in outcomes if o.get("outcome") in (Outcome.FAIL, Outcome.ALERT)]


def describe(outcomes: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{o['rule_id']} value {o.get('value')} limit {o.get('limit')} ({o['outcome']})"
        for o in outcomes
    )


class Donation(LedgerAggregate):
    """One donation visit. Key: a UUID chosen at registration; the number comes later."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, Any]] = {}
        self.status = DonationStatus.OPEN
        self.donor_id = ""
        self.station_id = ""
        self.product = ""
        self.donation_no = ""
        self.required_slots: list[dict[str, str]] = []
        self.cosignatures: dict[str, dict[str, Any]] = {}
        self.reactions: list[dict[str, Any]] = []
        self.amendments: list[dict[str, Any]] = []
        self.events_by_version: dict[int, str] = {}
        self.decision: Decision | None = None

    # -- events ---------------------------------------------------------------------------------

    class StepEvent(LedgerAggregate.Event):
        STEP = ""

        def apply_state(self, aggregate: Donation) -> None:
            aggregate.events_by_version[self.originator_version] = type(self).__name__
            aggregate.steps[self.STEP] = {
                "version": self.originator_version,
                "event_hash": self.event_hash,
                "event_type": type(self).__name__,
                "actor": self.actor,
                "timestamp": self.timestamp,
                "values": step_values(self),
                "rule_outcomes": self.rule_outcomes,
            }
            self.after(aggregate)

        def after(self, aggregate: Donation) -> None:
            """Extra state changes of a step (status, number...)."""

    class DonorRegistered(LedgerAggregate.Created):
        """Version 2 signs the name and phone as masked forms and salted commitments
        (``ledger.personal``): the clear values and the salt are stored beside the signed body,
        out of it (``PERSONAL_FIELDS``, ``UNSIGNED_FIELDS``), so the attached canonical body holds
        no clear name or phone."""

        class_version = 2
        #: clear field -> the body field committing to it (``ledger.canonical``)
        PERSONAL_FIELDS: ClassVar[Mapping[str, str]] = {
            "name": "name_commitment",
            "phone": "phone_commitment",
        }
        UNSIGNED_FIELDS: ClassVar[frozenset[str]] = frozenset({"personal_salt"})

        station_id: str
        channel: str
        donor_id: str
        donor_ref: str
        id_type: str
        id_number_masked: str
        name: str
        sex: str
        birth_date: str
        phone: str
        product_requested: str
        appointment_id: str | None
        required_slots: list[dict[str, str]]
        name_masked: str
        phone_masked: str
        name_commitment: str
        phone_commitment: str
        personal_salt: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 signed the clear name and phone (they stay in its body)."""
            add_fields(
                state,
                name_masked="",
                phone_masked="",
                name_commitment="",
                phone_commitment="",
                personal_salt="",
            )

        def apply_state(self, aggregate: Donation) -> None:
            aggregate.events_by_version[self.originator_version] = "DonorRegistered"
            aggregate.donor_id = self.donor_id
            aggregate.station_id = self.station_id
            aggregate.product = self.product_requested
            aggregate.required_slots = list(self.required_slots)
            aggregate.steps[Step.REGISTRATION] = {
                "version": self.originator_version,
                "event_hash": self.event_hash,
                "event_type": "DonorRegistered",
                "actor": self.actor,
                "timestamp": self.timestamp,
                "values": step_values(self),
                "rule_outcomes": self.rule_outcomes,
            }

    class InformedConsentSigned(StepEvent):
        STEP = Step.CONSENT
        form_template_code: str
        form_version: str
        answers: dict[str, Any]
        consent: bool
        fingerprint_verified: bool
        donor_certificate_serial: str

    class GeneralExamRecorded(StepEvent):
        STEP = Step.EXAM
        weight_kg: float
        sbp_mmhg: int
        dbp_mmhg: int
        pulse_per_min: int
        temperature_c: float
        findings: str
        result: str
        defer_reason: str

    class PreDonationTestRecorded(StepEvent):
        STEP = Step.TEST
        hb_g_per_l: float
        hct_fraction: float
        plt_10e9_per_l: float
        mpv_fl: float | None
        alt_u_per_l: float | None
        hbsag: str
        syphilis: str
        abo: str
        instrument_id: str
        reagent_lots: dict[str, str]
        auto_imported: bool

    class EligibilityAssessed(StepEvent):
        STEP = Step.ASSESSMENT
        decision: str
        planned_doses: int
        planned_plasma_ml: int
        predicted_post_plt_10e9_per_l: float | None
        defer_reason: str
        overrides: dict[str, str]

        def after(self, aggregate: Donation) -> None:
            aggregate.decision = Decision(self.decision)
            if aggregate.decision is Decision.DEFERRED:
                aggregate.status = DonationStatus.DEFERRED

    class DonationNumberAssigned(StepEvent):
        STEP = Step.NUMBER
        donation_no: str
        label_set_printed: bool

        def after(self, aggregate: Donation) -> None:
            aggregate.donation_no = self.donation_no

    class PreCollectionVerified(StepEvent):
        STEP = Step.PRE_COLLECTION
        scans: list[str]
        separator_model: str
        separator_serial: str
        kit_lot: str
        acd_lot: str
        saline_lot: str
        venipuncture_at: str
        labels_match: bool

    class ApheresisCollected(StepEvent):
        STEP = Step.COLLECTION
        started_at: str
        ended_at: str
        processed_blood_ml: int
        acd_ml: int
        product_volume_ml: int
        platelet_yield_10e11: float
        doses: int
        plasma_ml: int
        auto_imported: bool

    class PostCollectionVerified(StepEvent):
        STEP = Step.POST_COLLECTION
        scans: list[str]
        labels_match: bool

    class HeatSealVerified(StepEvent):
        STEP = Step.HEAT_SEAL
        scans: list[str]
        labels_match: bool

    class AdverseReactionRecorded(LedgerAggregate.Event):
        reaction_type: str
        severity: str
        onset_at: str
        treatment: str
        outcome: str

        def apply_state(self, aggregate: Donation) -> None:
            aggregate.events_by_version[self.originator_version] = "AdverseReactionRecorded"
            aggregate.reactions.append({"version": self.originator_version, **step_values(self)})

    class SignatureApplied(LedgerAggregate.Event):
        slot: str
        target_version: int
        target_hash: str

        def apply_state(self, aggregate: Donation) -> None:
            aggregate.events_by_version[self.originator_version] = "SignatureApplied"
            aggregate.cosignatures[self.slot] = {
                "version": self.originator_version,
                "actor": self.actor,
                "timestamp": self.timestamp,
                "target_version": self.target_version,
            }

    class RecordAmended(LedgerAggregate.Event):
        """A signed correction of one recorded value.

        Class version 2 adds ``overrides`` (rule id -> reason: the hard rules the new value fails,
        overridden by an authorised role) and ``amendment_policy`` (the versioned policy naming
        who may amend the step, e.g. ``amendment-roles@1``). The amendment's ``rule_outcomes``
        are the step's rules re-run on the new value, with the donation's context.

        Class version 3: a correction of a personal value (``PERSONAL_MASKS``: the registration's
        name and phone) signs the old and new values as masked forms and salted commitments, as
        ``DonorRegistered`` v2 does (``ledger.personal``); the clear values and the salt are
        stored beside the body. Any other amendment signs its clear values and empty
        commitments: a value is out of the body exactly when the body commits to it.
        """

        class_version = 3
        #: clear field -> the body field committing to it (``ledger.canonical``), when not empty
        PERSONAL_FIELDS: ClassVar[Mapping[str, str]] = {
            "old_value": "old_value_commitment",
            "new_value": "new_value_commitment",
        }
        UNSIGNED_FIELDS: ClassVar[frozenset[str]] = frozenset({"personal_salt"})

        step: str
        target_version: int
        field: str
        old_value: Any
        new_value: Any
        reason: str
        prior_hash: str
        overrides: dict[str, str]
        amendment_policy: str
        old_value_masked: str
        new_value_masked: str
        old_value_commitment: str
        new_value_commitment: str
        personal_salt: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 amendments had no overrides and were checked against no policy."""
            add_fields(state, overrides={}, amendment_policy="")

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """Version 2 signed every old and new value in clear (they stay in its body)."""
            add_fields(
                state,
                old_value_masked="",
                new_value_masked="",
                old_value_commitment="",
                new_value_commitment="",
                personal_salt="",
            )

        def apply_state(self, aggregate: Donation) -> None:
            aggregate.events_by_version[self.originator_version] = "RecordAmended"
            record = aggregate.steps[self.step]
            record["values"][self.field] = self.new_value
            if self.rule_outcomes:
                renewed = {o["rule_id"]: o for o in self.rule_outcomes}
                kept = [o for o in record["rule_outcomes"] if o["rule_id"] not in renewed]
                record["rule_outcomes"] = [*kept, *self.rule_outcomes]
            aggregate.amendments.append(
                {
                    "version": self.originator_version,
                    "step": self.step,
                    "field": self.field,
                    "old_value": self.old_value,
                    "new_value": self.new_value,
                    "reason": self.reason,
                    "overrides": dict(self.overrides),
                    "actor": self.actor,
                    "timestamp": self.timestamp,
                    "event_hash": self.event_hash,
                }
            )

    class DonationRecordSealed(LedgerAggregate.Event):
        final_status: str
        missing_slots: list[dict[str, str]]
        step_hashes: dict[str, str]

        def apply_state(self, aggregate: Donation) -> None:
            aggregate.events_by_version[self.originator_version] = "DonationRecordSealed"
            aggregate.status = DonationStatus.SEALED

    # -- commands -------------------------------------------------------------------------------

    @classmethod
    def register(
        cls,
        signer: Signer,
        donation_id: UUID,
        *,
        station_id: str,
        channel: str,
        donor_id: UUID,
        donor_ref: str,
        id_type: str,
        id_number_masked: str,
        name: str,
        sex: str,
        birth_date: str,
        phone: str,
        product_requested: str,
        appointment_id: str | None,
        required_slots: Sequence[Mapping[str, str]],
        rule_set: str,
        rule_outcomes: Sequence[Mapping[str, Any]],
    ) -> Donation:
        require_role(signer, RECORDERS[Step.REGISTRATION], "registration")
        salt = personal.new_salt()
        return cls._open(
            cls.DonorRegistered,
            signer,
            donation_id,
            rule_set=rule_set,
            rule_outcomes=rule_outcomes,
            station_id=station_id,
            channel=channel,
            donor_id=str(donor_id),
            donor_ref=donor_ref,
            id_type=id_type,
            id_number_masked=id_number_masked,
            name=name,
            sex=sex,
            birth_date=birth_date,
            phone=phone,
            product_requested=product_requested,
            appointment_id=appointment_id,
            required_slots=[dict(s) for s in required_slots],
            name_masked=personal.mask_name(name),
            phone_masked=personal.mask_phone(phone),
            name_commitment=personal.commit(salt, "name", name),
            phone_commitment=personal.commit(salt, "phone", phone),
            personal_salt=salt,
        )

    def _check_open(self) -> None:
        if self.status is DonationStatus.SEALED:
            raise WorkflowError("the donation record is sealed: only amendments are accepted")

    def _require(self, *steps: Step) -> None:
        for step in steps:
            if step not in self.steps:
                raise WorkflowError(f"step {step} has not been recorded yet")

    def _record_step(
        self,
        event_class: type[Donation.StepEvent],
        signer: Signer,
        rule_set: str,
        rule_outcomes: Sequence[Mapping[str, Any]],
        **fields: Any,
    ) -> None:
        step = Step(event_class.STEP)
        self._check_open()
        if step in self.steps:
            raise WorkflowError(f"step {step} is already recorded; correct it with an amendment")
        require_role(signer, RECORDERS[step], str(step))
        alerts = [o for o in rule_outcomes if o.get("outcome") == Outcome.ALERT]
        if alerts:
            raise WorkflowError(f"unacknowledged plausibility alert: {describe(alerts)}")
        self._record(event_class, signer, rule_set=rule_set, rule_outcomes=rule_outcomes, **fields)

    def sign_consent(
        self,
        signer: Signer,
        *,
        form_template_code: str,
        form_version: str,
        answers: Mapping[str, Any],  # the questionnaire's JSON answers
        consent: bool,
        fingerprint_verified: bool,
        donor_certificate_serial: str,
    ) -> None:
        self._require(Step.REGISTRATION)
        if self.status is DonationStatus.DEFERRED:
            raise WorkflowError("the donor is deferred")
        if consent is not True:
            raise WorkflowError("informed consent must be given to proceed")
        self._record_step(
            self.InformedConsentSigned,
            signer,
            "",
            (),
            form_template_code=form_template_code,
            form_version=form_version,
            answers=dict(answers),
            consent=consent,
            fingerprint_verified=fingerprint_verified,
            donor_certificate_serial=donor_certificate_serial,
        )

    def record_exam(
        self,
        signer: Signer,
        rule_set: str,
        rule_outcomes: Sequence[Mapping[str, Any]],
        *,
        weight_kg: float,
        sbp_mmhg: int,
        dbp_mmhg: int,
        pulse_per_min: int,
        temperature_c: float,
        findings: str,
        result: str,
        defer_reason: str,
    ) -> None:
        self._require(Step.CONSENT)
        self._record_step(
            self.GeneralExamRecorded,
            signer,
            rule_set,
            rule_outcomes,
            weight_kg=weight_kg,
            sbp_mmhg=sbp_mmhg,
            dbp_mmhg=dbp_mmhg,
            pulse_per_min=pulse_per_min,
            temperature_c=temperature_c,
            findings=findings,
            result=result,
            defer_reason=defer_reason,
        )

    def record_test(
        self,
        signer: Signer,
        rule_set: str,
        rule_outcomes: Sequence[Mapping[str, Any]],
        *,
        hb_g_per_l: float,
        hct_fraction: float,
        plt_10e9_per_l: float,
        mpv_fl: float | None,
        alt_u_per_l: float | None,
        hbsag: str,
        syphilis: str,
        abo: str,
        instrument_id: str,
        reagent_lots: Mapping[str, str],
        auto_imported: bool,
    ) -> None:
        self._require(Step.EXAM)
        self._record_step(
            self.PreDonationTestRecorded,
            signer,
            rule_set,
            rule_outcomes,
            hb_g_per_l=hb_g_per_l,
            hct_fraction=hct_fraction,
            plt_10e9_per_l=plt_10e9_per_l,
            mpv_fl=mpv_fl,
            alt_u_per_l=alt_u_per_l,
            hbsag=hbsag,
            syphilis=syphilis,
            abo=abo,
            instrument_id=instrument_id,
            reagent_lots=dict(reagent_lots),
            auto_imported=auto_imported,
        )

    def prior_failures(self) -> list[Mapping[str, Any]]:
        failures: list[Mapping[str, Any]] = []
        for step in (Step.REGISTRATION, Step.EXAM, Step.TEST):
            record = self.steps.get(step)
            if record:
                failures.extend(o for o in record["rule_outcomes"] if o["outcome"] == Outcome.FAIL)
        return failures

    def assess(
        self,
        signer: Signer,
        rule_set: str,
        rule_outcomes: Sequence[Mapping[str, Any]],
        *,
        decision: str,
        planned_doses: int,
        planned_plasma_ml: int,
        predicted_post_plt_10e9_per_l: float | None,
        defer_reason: str,
        overrides: Mapping[str, str],
    ) -> None:
        self._require(Step.EXAM)
        if overrides and signer.role not in PHYSICIANS:
            raise WorkflowError("only a physician may override a hard rule")
        if any(not str(reason).strip() for reason in overrides.values()):
            raise WorkflowError("an override needs a reason")
        if decision == Decision.ELIGIBLE:
            self._require(Step.TEST)
            failing = [
                o
                for o in [*self.prior_failures(), *rule_outcomes]
                if o["outcome"] == Outcome.FAIL and o["rule_id"] not in overrides
            ]
            if failing:
                raise WorkflowError(f"hard rule failed: {describe(failing)}")
        elif decision == Decision.DEFERRED:
            if not defer_reason.strip():
                raise WorkflowError("a deferral needs a reason")
        else:
            raise WorkflowError(f"unknown decision {decision!r}")
        self._record_step(
            self.EligibilityAssessed,
            signer,
            rule_set,
            rule_outcomes,
            decision=Decision(decision),
            planned_doses=planned_doses,
            planned_plasma_ml=planned_plasma_ml,
            predicted_post_plt_10e9_per_l=predicted_post_plt_10e9_per_l,
            defer_reason=defer_reason,
            overrides=dict(overrides),
        )

    def assign_number(self, signer: Signer, donation_no: str, label_set_printed: bool) -> None:
        self._require(Step.ASSESSMENT)
        if self.decision is not Decision.ELIGIBLE:
            raise WorkflowError("a donation number is assigned only after an eligible assessment")
        self._record_step(
            self.DonationNumberAssigned,
            signer,
            "",
            (),
            donation_no=donation_no,
            label_set_printed=label_set_printed,
        )

    def verify_pre_collection(
        self,
        signer: Signer,
        *,
        scans: Sequence[str],
        separator_model: str,
        separator_serial: str,
        kit_lot: str,
        acd_lot: str,
        saline_lot: str,
        venipuncture_at: str,
        labels_match: bool,
    ) -> None:
        self._require(Step.NUMBER)
        self._record_step(
            self.PreCollectionVerified,
            signer,
            "",
            (),
            scans=list(scans),
            separator_model=separator_model,
            separator_serial=separator_serial,
            kit_lot=kit_lot,
            acd_lot=acd_lot,
            saline_lot=saline_lot,
            venipuncture_at=venipuncture_at,
            labels_match=labels_match,
        )

    def record_collection(
        self,
        signer: Signer,
        rule_set: str,
        rule_outcomes: Sequence[Mapping[str, Any]],
        *,
        started_at: str,
        ended_at: str,
        processed_blood_ml: int,
        acd_ml: int,
        product_volume_ml: int,
        platelet_yield_10e11: float,
        doses: int,
        plasma_ml: int,
        auto_imported: bool,
    ) -> None:
        self._require(Step.PRE_COLLECTION)
        if self.decision is not Decision.ELIGIBLE:
            raise WorkflowError("no collection before an eligible assessment")
        self._record_step(
            self.ApheresisCollected,
            signer,
            rule_set,
            rule_outcomes,
            started_at=started_at,
            ended_at=ended_at,
            processed_blood_ml=processed_blood_ml,
            acd_ml=acd_ml,
            product_volume_ml=product_volume_ml,
            platelet_yield_10e11=platelet_yield_10e11,
            doses=doses,
            plasma_ml=plasma_ml,
            auto_imported=auto_imported,
        )

    def verify_post_collection(
        self, signer: Signer, *, scans: Sequence[str], labels_match: bool
    ) -> None:
        self._require(Step.COLLECTION)
        self._record_step(
            self.PostCollectionVerified,
            signer,
            "",
            (),
            scans=list(scans),
            labels_match=labels_match,
        )

    def verify_heat_seal(self, signer: Signer, *, scans: Sequence[str], labels_match: bool) -> None:
        self._require(Step.POST_COLLECTION)
        self._record_step(
            self.HeatSealVerified, signer, "", (), scans=list(scans), labels_match=labels_match
        )

    def record_reaction(
        self,
        signer: Signer,
        *,
        reaction_type: str,
        severity: str,
        onset_at: str,
        treatment: str,
        outcome: str,
    ) -> None:
        self._check_open()
        self._require(Step.CONSENT)
        require_role(signer, (Role.NURSE, *PHYSICIANS), "an adverse reaction")
        self._record(
            self.AdverseReactionRecorded,
            signer,
            reaction_type=reaction_type,
            severity=severity,
            onset_at=onset_at,
            treatment=treatment,
            outcome=outcome,
        )

    def slot(self, name: str) -> Mapping[str, str]:
        for slot in self.required_slots:
            if slot["slot"] == name:
                return slot
        raise WorkflowError(f"no signature slot {name!r} on this donation")

    def apply_signature(self, signer: Signer, slot_name: str) -> None:
        self._check_open()
        slot = self.slot(slot_name)
        if slot["state"] != SlotState.REQUIRED:
            raise WorkflowError(f"signature slot {slot_name} is {slot['state']}")
        if slot_name in self.cosignatures:
            raise WorkflowError(f"signature slot {slot_name} is already signed")
        require_role(signer, (slot["role"],), f"slot {slot_name}")
        target = self.steps.get(slot["step"])
        if target is None:
            raise WorkflowError(f"step {slot['step']} has not been recorded yet")
        self._record(
            self.SignatureApplied,
            signer,
            slot=slot_name,
            target_version=target["version"],
            target_hash=target["event_hash"],
        )

    def missing_slots(self) -> list[dict[str, str]]:
        """Required co-signatures never given (for a step that was recorded)."""
        return [
            dict(slot)
            for slot in self.required_slots
            if slot["state"] == SlotState.REQUIRED
            and slot["step"] in self.steps
            and slot["slot"] not in self.cosignatures
        ]

    def seal(self, signer: Signer) -> None:
        self._check_open()
        require_role(signer, (Role.SYSTEM,), "sealing")
        if self.status is DonationStatus.OPEN:
            self._require(Step.HEAT_SEAL)
        self._record(
            self.DonationRecordSealed,
            signer,
            final_status=FinalStatus.COMPLETED
            if self.status is DonationStatus.OPEN
            else FinalStatus.DEFERRED,
            missing_slots=self.missing_slots(),
            step_hashes={step: record["event_hash"] for step, record in self.steps.items()},
        )

    def amend(
        self,
        signer: Signer,
        *,
        step: str,
        field: str,
        new_value: Any,
        reason: str,
        rule_set: str,
        rule_outcomes: Sequence[Mapping[str, Any]],
        overrides: Mapping[str, str],
        policy: AmendmentPolicy,
    ) -> None:
        """Correct one value. `rule_outcomes` are the step's rules re-run on the new value by the
        application; a hard failure must be overridden (`overrides`: rule id -> reason) by a role
        `policy` allows to override, an alert acknowledged, as on entry."""
        require_role(signer, STAFF_ROLES, "an amendment")
        record = self.steps.get(step)
        if record is None:
            raise WorkflowError(f"step {step!r} has not been recorded on this donation")
        values = record["values"]
        if field not in values:
            raise WorkflowError(f"step {step} has no field {field!r}")
        if not reason.strip():
            raise WorkflowError("an amendment needs a reason")
        old_value = values[field]
        if old_value == new_value:
            raise WorkflowError(f"{field} is already {new_value!r}")
        if old_value is not None and new_value is not None and not _same_kind(old_value, new_value):
            raise WorkflowError(
                f"{field} holds {type(old_value).__name__}, not {type(new_value).__name__}"
            )
        if problem := policy.problem(step, signer.role, overriding=bool(overrides)):
            raise WorkflowError(problem)
        if failing := [o for o in rule_outcomes if o.get("outcome") == Outcome.FAIL]:
            raise WorkflowError(
                f"hard rule failed: {describe(failing)}; only an override with a reason "
                "by an authorised role records this value"
            )
        if alerts := [o for o in rule_outcomes if o.get("outcome") == Outcome.ALERT]:
            raise WorkflowError(f"unacknowledged plausibility alert: {describe(alerts)}")
        overridden = {o["rule_id"] for o in rule_outcomes if o.get("outcome") == Outcome.OVERRIDDEN}
        if set(overrides) != overridden:
            raise WorkflowError(
                f"overrides {sorted(overrides)} do not match the overridden outcomes "
                f"{sorted(overridden)}"
            )
        if any(not str(why).strip() for why in overrides.values()):
            raise WorkflowError("an override needs a reason")
        self._record(
            self.RecordAmended,
            signer,
            rule_set=rule_set,
            rule_outcomes=rule_outcomes,
            step=step,
            target_version=record["version"],
            field=field,
            old_value=old_value,
            new_value=new_value,
            reason=reason,
            prior_hash=self._value_source_hash(step, field),
            overrides=dict(overrides),
            amendment_policy=policy.ref,
            **personal_amendment(step, field, old_value, new_value),
        )

    def _value_source_hash(self, step: str, field: str) -> str:
        """Hash of the event that set the value being amended (the step or its last amendment)."""
        for amendment in reversed(self.amendments):
            if amendment["step"] == step and amendment["field"] == field:
                return str(amendment["event_hash"])
        return str(self.steps[step]["event_hash"])


#: (step, field) -> the mask of a personal value, whose amendments sign it committed.
PERSONAL_MASKS: Mapping[tuple[str, str], Callable[[str], str]] = {
    (Step.REGISTRATION.value, "name"): personal.mask_name,
    (Step.REGISTRATION.value, "phone"): personal.mask_phone,
}


def personal_amendment(step: str, field: str, old_value: Any, new_value: Any) -> dict[str, str]:
    """The masked forms and salted commitments of a personal value's correction (empty for
    any other value, whose old and new values the amendment signs in clear)."""
    mask = PERSONAL_MASKS.get((step, field))
    if mask is None:
        return dict.fromkeys(
            (
                "old_value_masked",
                "new_value_masked",
                "old_value_commitment",
                "new_value_commitment",
                "personal_salt",
            ),
            "",
        )
    salt = personal.new_salt()
    old, new = str(old_value), str(new_value)
    return {
        "old_value_masked": mask(old),
        "new_value_masked": mask(new),
        "old_value_commitment": personal.commit(salt, "old_value", old),
        "new_value_commitment": personal.commit(salt, "new_value", new),
        "personal_salt": salt,
    }


def _same_kind(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b)
