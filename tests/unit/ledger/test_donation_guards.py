"""One test per guard of the Donation aggregate (issue 9 item 6).

Each drives the aggregate directly (no store, no PKI: a stand-in signer) to the state just
before the guard and asserts the guard's own message, so that removing the guard makes the test
fail (the command would succeed, or fail later with another message).
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

import pytest

from ledger.canonical import event_canonical_bytes, sha256_hex
from ledger.donation import (
    RECORDERS,
    Decision,
    Donation,
    DonationStatus,
    FinalStatus,
    Role,
    Step,
)
from ledger.events import WorkflowError
from ledger.rules import load_amendment_policy

RULE_SET = "gb18467-2011@1"
NUMBER = "9000626000001"
SCANS = [f"BAG-{NUMBER}", f"TUBE-{NUMBER}"]
POLICY = load_amendment_policy()


@dataclass(frozen=True)
class FakeSigner:
    """Signs with a digest instead of CMS: the aggregate's guards do not look at signatures."""

    role: str
    subject_id: str = ""

    def sign(self, data: bytes, signing_time: datetime) -> str:
        return base64.b64encode(hashlib.sha256(data).digest()).decode()


def signer(role: str) -> FakeSigner:
    prefix = {"donor": "DONOR", "system": "SYSTEM"}.get(role, "STAFF")
    return FakeSigner(role, f"{prefix}:{role}")


CLERK = signer(Role.CLERK)
DONOR = signer(Role.DONOR)
EXAMINER = signer(Role.EXAMINING_PHYSICIAN)
TECHNICIAN = signer(Role.TECHNICIAN)
EVALUATOR = signer(Role.EVALUATING_PHYSICIAN)
SYSTEM = signer(Role.SYSTEM)
NURSE = signer(Role.NURSE)
SEALER = signer(Role.SEALER)


def fail(rule_id: str = "weight.female.min", value: float = 40.0) -> dict[str, Any]:
    return {"rule_id": rule_id, "value": value, "limit": 45, "op": "ge", "outcome": "fail"}


def alert(rule_id: str = "exam.weight.plausible") -> dict[str, Any]:
    return {"rule_id": rule_id, "value": 160.0, "limit": 150, "op": "le", "outcome": "alert"}


# -- steps ------------------------------------------------------------------------------------


def register(by: FakeSigner = CLERK) -> Donation:
    return Donation.register(
        by,
        uuid4(),
        station_id="TEST-01",
        channel="desk",
        donor_id=uuid4(),
        donor_ref="ref",
        id_type="resident_id",
        id_number_masked="330106******",
        name="张三",
        sex="F",
        birth_date="1980-01-01",
        phone="13800000000",
        product_requested="platelets_single",
        appointment_id=None,
        required_slots=[
            {
                "slot": "informed_consent:examining_physician",
                "step": "informed_consent",
                "role": "examining_physician",
                "state": "required",
            },
            {
                "slot": "pre_collection:donor",
                "step": "pre_collection",
                "role": "donor",
                "state": "required",
            },
            {
                "slot": "post_collection:donor",
                "step": "post_collection",
                "role": "donor",
                "state": "not_required",
            },
        ],
        rule_set="",
        rule_outcomes=(),
    )


def consent(d: Donation, by: FakeSigner = DONOR, *, given: bool = True) -> None:
    d.sign_consent(
        by,
        form_template_code="F-01",
        form_version="1",
        answers={"recent_illness": False},
        consent=given,
        fingerprint_verified=True,
        donor_certificate_serial="01",
    )


def exam(
    d: Donation, by: FakeSigner = EXAMINER, outcomes: Sequence[Mapping[str, Any]] = ()
) -> None:
    d.record_exam(
        by,
        RULE_SET,
        outcomes,
        weight_kg=60.0,
        sbp_mmhg=120,
        dbp_mmhg=80,
        pulse_per_min=72,
        temperature_c=36.6,
        findings="",
        result="pass",
        defer_reason="",
    )


def screen(
    d: Donation, by: FakeSigner = TECHNICIAN, outcomes: Sequence[Mapping[str, Any]] = ()
) -> None:
    d.record_test(
        by,
        RULE_SET,
        outcomes,
        hb_g_per_l=130.0,
        hct_fraction=0.41,
        plt_10e9_per_l=250.0,
        mpv_fl=None,
        alt_u_per_l=None,
        hbsag="negative",
        syphilis="negative",
        abo="A",
        instrument_id="XN-1",
        reagent_lots={},
        auto_imported=True,
    )


def assess(
    d: Donation,
    by: FakeSigner = EVALUATOR,
    *,
    decision: str = "eligible",
    overrides: Mapping[str, str] | None = None,
    outcomes: Sequence[Mapping[str, Any]] = (),
    defer_reason: str = "",
) -> None:
    d.assess(
        by,
        RULE_SET,
        outcomes,
        decision=decision,
        planned_doses=1,
        planned_plasma_ml=0,
        predicted_post_plt_10e9_per_l=225.0,
        defer_reason=defer_reason,
        overrides=dict(overrides or {}),
    )


def number(d: Donation, by: FakeSigner = SYSTEM) -> None:
    d.assign_number(by, NUMBER, label_set_printed=True)


def pre(d: Donation, by: FakeSigner = NURSE) -> None:
    d.verify_pre_collection(
        by,
        scans=SCANS,
        separator_model="Trima Accel",
        separator_serial="SEP-1",
        kit_lot="K1",
        acd_lot="A1",
        saline_lot="S1",
        venipuncture_at="2026-11-22T08:00:00+00:00",
        labels_match=True,
    )


def collect(
    d: Donation, by: FakeSigner = NURSE, outcomes: Sequence[Mapping[str, Any]] = ()
) -> None:
    d.record_collection(
        by,
        RULE_SET,
        outcomes,
        started_at="2026-11-22T08:00:00+00:00",
        ended_at="2026-11-22T09:10:00+00:00",
        processed_blood_ml=2800,
        acd_ml=300,
        product_volume_ml=260,
        platelet_yield_10e11=2.8,
        doses=1,
        plasma_ml=0,
        auto_imported=True,
    )


def post(d: Donation, by: FakeSigner = NURSE) -> None:
    d.verify_post_collection(by, scans=SCANS, labels_match=True)


def heat_seal(d: Donation, by: FakeSigner = SEALER) -> None:
    d.verify_heat_seal(by, scans=SCANS, labels_match=True)


def seal(d: Donation, by: FakeSigner = SYSTEM) -> None:
    d.seal(by)


STAGES: list[tuple[Step, Callable[[Donation], None]]] = [
    (Step.CONSENT, consent),
    (Step.EXAM, exam),
    (Step.TEST, screen),
    (Step.ASSESSMENT, assess),
    (Step.NUMBER, number),
    (Step.PRE_COLLECTION, pre),
    (Step.COLLECTION, collect),
    (Step.POST_COLLECTION, post),
    (Step.HEAT_SEAL, heat_seal),
]


def through(last: Step | None) -> Donation:
    """A registered donation with every step up to and including `last` recorded."""
    d = register()
    if last is None:
        return d
    for step, record in STAGES:
        record(d)
        if step == last:
            break
    return d


def sealed() -> Donation:
    d = through(Step.HEAT_SEAL)
    seal(d)
    return d


def amend(d: Donation, by: FakeSigner = EXAMINER, **kw: Any) -> None:
    fields: dict[str, Any] = {
        "step": "general_exam",
        "field": "temperature_c",
        "new_value": 36.9,
        "reason": "transcription error",
        "rule_set": RULE_SET,
        "rule_outcomes": (),
        "overrides": {},
        "policy": POLICY,
    }
    fields.update(kw)
    d.amend(by, **fields)


# -- the happy path, so that each refusal below is the guard's --------------------------------


def test_the_whole_workflow_passes_every_guard() -> None:
    d = sealed()
    assert d.status == "sealed"
    assert d.version == 11


# -- registration -----------------------------------------------------------------------------


def test_registration_is_recorded_by_a_clerk_or_the_system_only() -> None:
    with pytest.raises(WorkflowError, match="registration must be signed by"):
        register(NURSE)


# -- order of steps ---------------------------------------------------------------------------

ORDER = [
    (None, exam, "step informed_consent has not been recorded"),
    (Step.CONSENT, screen, "step general_exam has not been recorded"),
    (None, assess, "step general_exam has not been recorded"),
    (Step.EXAM, assess, "step pre_donation_test has not been recorded"),
    (Step.TEST, number, "step eligibility has not been recorded"),
    (Step.ASSESSMENT, pre, "step donation_number has not been recorded"),
    (Step.NUMBER, collect, "step pre_collection has not been recorded"),
    (Step.PRE_COLLECTION, post, "step collection has not been recorded"),
    (Step.COLLECTION, heat_seal, "step post_collection has not been recorded"),
    (Step.POST_COLLECTION, seal, "step heat_seal has not been recorded"),
]


@pytest.mark.parametrize(
    ("done", "command", "message"), ORDER, ids=[c.__name__ + "_early" for _, c, _ in ORDER]
)
def test_a_step_needs_the_one_before_it(
    done: Step | None, command: Callable[[Donation], None], message: str
) -> None:
    d = through(done)
    with pytest.raises(WorkflowError, match=message):
        command(d)


@pytest.mark.parametrize(("step", "command"), STAGES, ids=[s.value for s, _ in STAGES])
def test_a_step_is_recorded_once(step: Step, command: Callable[[Donation], None]) -> None:
    d = through(step)
    with pytest.raises(WorkflowError, match=f"step {step} is already recorded"):
        command(d)


WRONG_ROLE: dict[Step, FakeSigner] = {
    Step.CONSENT: NURSE,
    Step.EXAM: NURSE,
    Step.TEST: EXAMINER,
    Step.ASSESSMENT: TECHNICIAN,
    Step.NUMBER: CLERK,
    Step.PRE_COLLECTION: SEALER,
    Step.COLLECTION: EXAMINER,
    Step.POST_COLLECTION: CLERK,
    Step.HEAT_SEAL: CLERK,
}


@pytest.mark.parametrize(("step", "command"), STAGES, ids=[s.value for s, _ in STAGES])
def test_each_step_is_recorded_by_its_role_only(step: Step, command: Callable[..., None]) -> None:
    index = [s for s, _ in STAGES].index(step)
    d = through(STAGES[index - 1][0] if index else None)
    wrong = WRONG_ROLE[step]
    assert wrong.role not in RECORDERS[step]
    with pytest.raises(WorkflowError, match=f"{step} must be signed by"):
        command(d, wrong)


@pytest.mark.parametrize(("step", "command"), STAGES, ids=[s.value for s, _ in STAGES])
def test_nothing_but_amendments_after_sealing(
    step: Step, command: Callable[[Donation], None]
) -> None:
    d = sealed()
    with pytest.raises(WorkflowError, match="the donation record is sealed"):
        command(d)


# -- step contents ----------------------------------------------------------------------------


def test_consent_must_be_given() -> None:
    d = register()
    with pytest.raises(WorkflowError, match="informed consent must be given"):
        consent(d, given=False)


def test_an_unacknowledged_alert_blocks_the_step() -> None:
    d = through(Step.CONSENT)
    with pytest.raises(WorkflowError, match="unacknowledged plausibility alert"):
        exam(d, outcomes=[alert()])


def test_only_a_physician_overrides_a_hard_rule() -> None:
    d = through(Step.TEST)
    with pytest.raises(WorkflowError, match="only a physician may override"):
        assess(d, NURSE, overrides={"weight.female.min": "reviewed"})


def test_an_override_at_eligibility_needs_a_reason() -> None:
    d = through(Step.TEST)
    with pytest.raises(WorkflowError, match="an override needs a reason"):
        assess(d, overrides={"weight.female.min": "  "})


def test_eligible_is_refused_while_an_earlier_hard_rule_fails() -> None:
    d = through(Step.CONSENT)
    exam(d, outcomes=[fail()])
    screen(d)
    with pytest.raises(WorkflowError, match=r"hard rule failed: weight\.female\.min"):
        assess(d)
    assess(d, overrides={"weight.female.min": "scale fault, re-weighed"})
    assert d.decision == "eligible"


def test_eligible_is_refused_while_a_hard_rule_of_the_assessment_fails() -> None:
    d = through(Step.TEST)
    failing = {
        "rule_id": "plt.predicted_post.min",
        "value": 90.0,
        "limit": 100,
        "op": "ge",
        "outcome": "fail",
    }
    with pytest.raises(WorkflowError, match=r"hard rule failed: plt\.predicted_post\.min"):
        assess(d, outcomes=[failing])


def test_a_deferral_needs_a_reason() -> None:
    d = through(Step.EXAM)
    with pytest.raises(WorkflowError, match="a deferral needs a reason"):
        assess(d, decision="deferred", defer_reason=" ")


def test_an_unknown_decision_is_refused() -> None:
    d = through(Step.TEST)
    with pytest.raises(WorkflowError, match="unknown decision 'maybe'"):
        assess(d, decision="maybe")


def test_no_number_after_a_deferral() -> None:
    d = through(Step.EXAM)
    assess(d, decision="deferred", defer_reason="low weight")
    with pytest.raises(WorkflowError, match="only after an eligible assessment"):
        number(d)


def test_a_deferred_visit_is_sealed_without_the_later_steps() -> None:
    d = through(Step.EXAM)
    assess(d, decision="deferred", defer_reason="low weight")
    seal(d)
    assert d.status == "sealed"


# -- adverse reactions ------------------------------------------------------------------------


def reaction(d: Donation, by: FakeSigner = NURSE) -> None:
    d.record_reaction(
        by,
        reaction_type="vasovagal",
        severity="mild",
        onset_at="2026-11-22T08:30:00+00:00",
        treatment="rest",
        outcome="recovered",
    )


def test_a_reaction_needs_consent_first() -> None:
    with pytest.raises(WorkflowError, match="step informed_consent has not been recorded"):
        reaction(register())


def test_a_reaction_is_recorded_by_a_nurse_or_physician_only() -> None:
    with pytest.raises(WorkflowError, match="an adverse reaction must be signed by"):
        reaction(through(Step.CONSENT), SEALER)


def test_no_reaction_after_sealing() -> None:
    with pytest.raises(WorkflowError, match="the donation record is sealed"):
        reaction(sealed())


# -- co-signatures ----------------------------------------------------------------------------


def test_an_unknown_signature_slot_is_refused() -> None:
    with pytest.raises(WorkflowError, match="no signature slot 'exam:nobody'"):
        through(Step.CONSENT).apply_signature(EXAMINER, "exam:nobody")


def test_a_slot_not_required_cannot_be_signed() -> None:
    with pytest.raises(WorkflowError, match="post_collection:donor is not_required"):
        through(Step.POST_COLLECTION).apply_signature(DONOR, "post_collection:donor")


def test_a_slot_is_signed_once() -> None:
    d = through(Step.CONSENT)
    d.apply_signature(EXAMINER, "informed_consent:examining_physician")
    with pytest.raises(WorkflowError, match="is already signed"):
        d.apply_signature(EXAMINER, "informed_consent:examining_physician")


def test_a_slot_is_signed_by_its_role_only() -> None:
    with pytest.raises(WorkflowError, match="slot informed_consent:examining_physician must be"):
        through(Step.CONSENT).apply_signature(NURSE, "informed_consent:examining_physician")


def test_a_slot_of_a_step_not_recorded_cannot_be_signed() -> None:
    with pytest.raises(WorkflowError, match="step pre_collection has not been recorded"):
        through(Step.NUMBER).apply_signature(DONOR, "pre_collection:donor")


def test_no_co_signature_after_sealing() -> None:
    with pytest.raises(WorkflowError, match="the donation record is sealed"):
        sealed().apply_signature(EXAMINER, "informed_consent:examining_physician")


def test_sealing_lists_the_missing_co_signatures() -> None:
    d = sealed()
    assert [s["slot"] for s in d.missing_slots()] == [
        "informed_consent:examining_physician",
        "pre_collection:donor",
    ]


# -- sealing ----------------------------------------------------------------------------------


def test_only_the_system_seals() -> None:
    with pytest.raises(WorkflowError, match="sealing must be signed by system"):
        seal(through(Step.HEAT_SEAL), NURSE)


def test_a_record_is_sealed_once() -> None:
    with pytest.raises(WorkflowError, match="the donation record is sealed"):
        seal(sealed())


# -- amendments -------------------------------------------------------------------------------


def test_an_amendment_is_accepted_after_sealing() -> None:
    d = sealed()
    amend(d)
    assert d.steps[Step.EXAM]["values"]["temperature_c"] == 36.9


@pytest.mark.parametrize("who", [DONOR, SYSTEM], ids=["donor", "system"])
def test_an_amendment_is_signed_by_staff(who: FakeSigner) -> None:
    with pytest.raises(WorkflowError, match="an amendment must be signed by"):
        amend(sealed(), who)


def test_an_amendment_needs_the_step_recorded() -> None:
    with pytest.raises(WorkflowError, match="step 'general_exam' has not been recorded"):
        amend(through(Step.CONSENT))


def test_an_amendment_names_a_field_of_the_step() -> None:
    with pytest.raises(WorkflowError, match="step general_exam has no field 'colour'"):
        amend(sealed(), field="colour")


def test_an_amendment_needs_a_reason() -> None:
    with pytest.raises(WorkflowError, match="an amendment needs a reason"):
        amend(sealed(), reason=" ")


def test_an_amendment_changes_the_value() -> None:
    with pytest.raises(WorkflowError, match=r"temperature_c is already 36\.6"):
        amend(sealed(), new_value=36.6)


def test_an_amendment_keeps_the_kind_of_value() -> None:
    with pytest.raises(WorkflowError, match="temperature_c holds float, not str"):
        amend(sealed(), new_value="hot")


def test_an_amendment_is_signed_by_a_role_the_policy_allows() -> None:
    with pytest.raises(WorkflowError, match="values of general_exam are amended by"):
        amend(sealed(), NURSE)


def test_an_override_on_amendment_is_signed_by_a_role_the_policy_allows() -> None:
    overridden = {**fail("hb.female.min", 100.0), "outcome": "overridden"}
    with pytest.raises(WorkflowError, match="a hard-rule override on pre_donation_test"):
        amend(
            sealed(),
            TECHNICIAN,
            step="pre_donation_test",
            field="hb_g_per_l",
            new_value=100.0,
            rule_outcomes=[overridden],
            overrides={"hb.female.min": "rechecked"},
        )


def test_an_amendment_failing_a_hard_rule_is_refused() -> None:
    with pytest.raises(WorkflowError, match=r"hard rule failed: weight\.female\.min"):
        amend(sealed(), field="weight_kg", new_value=40.0, rule_outcomes=[fail()])


def test_an_amendment_raising_an_alert_needs_an_acknowledgement() -> None:
    with pytest.raises(WorkflowError, match="unacknowledged plausibility alert"):
        amend(sealed(), field="weight_kg", new_value=160.0, rule_outcomes=[alert()])


def test_an_amendments_overrides_are_its_overridden_outcomes() -> None:
    with pytest.raises(WorkflowError, match="do not match the overridden outcomes"):
        amend(sealed(), field="weight_kg", new_value=61.0, overrides={"weight.female.min": "x"})


def test_an_override_on_amendment_needs_a_reason() -> None:
    overridden = {**fail(), "outcome": "overridden"}
    with pytest.raises(WorkflowError, match="an override needs a reason"):
        amend(
            sealed(),
            field="weight_kg",
            new_value=40.0,
            rule_outcomes=[overridden],
            overrides={"weight.female.min": " "},
        )


# -- defence in depth: states no sequence of commands reaches, set directly -------------------


def test_consent_needs_the_registration() -> None:
    d = register()
    del d.steps[Step.REGISTRATION]
    with pytest.raises(WorkflowError, match="step registration has not been recorded"):
        consent(d)


def test_a_deferred_donor_does_not_sign_consent() -> None:
    d = register()
    d.status = DonationStatus.DEFERRED
    with pytest.raises(WorkflowError, match="the donor is deferred"):
        consent(d)


def test_no_collection_without_an_eligible_decision() -> None:
    d = through(Step.PRE_COLLECTION)
    d.decision = Decision.DEFERRED
    with pytest.raises(WorkflowError, match="no collection before an eligible assessment"):
        collect(d)


# -- enums keep the stored and hashed values ----------------------------------------------------


def test_status_and_decision_enums_hash_as_the_strings_they_replace() -> None:
    d = sealed()
    events = d.collect_events()
    assessed = next(e for e in events if isinstance(e, Donation.EligibilityAssessed))
    closing = next(e for e in events if isinstance(e, Donation.DonationRecordSealed))
    assert type(assessed.decision) is Decision and type(closing.final_status) is FinalStatus
    for event, name, plain in (
        (assessed, "decision", "eligible"),
        (closing, "final_status", "completed"),
    ):
        as_text: Any = copy.copy(event)
        object.__setattr__(as_text, name, plain)
        assert type(getattr(as_text, name)) is str
        assert event_canonical_bytes(as_text) == event_canonical_bytes(event)
        assert sha256_hex(event_canonical_bytes(event)) == event.event_hash
    assert d.status is DonationStatus.SEALED and d.decision is Decision.ELIGIBLE
