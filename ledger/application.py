"""The ledger application: commands for every workflow step, on eventsourcing's Application.

Each command loads the aggregates it touches, evaluates the control points of the step against the
versioned rule set, lets the aggregate sign and record the event, and saves every changed aggregate
in one transaction, with the canonical hashes handed to the recorder for the global chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import RecordConflictError, Recording
from eventsourcing.utils import EnvType

from ledger.donation import Decision, Donation, SlotState, Step
from ledger.donor_history import DonorHistoryCheck, history_check_id_for
from ledger.events import (
    ConcurrentChange,
    LedgerAggregate,
    Signer,
    TLedgerAggregate,
    WorkflowError,
)
from ledger.identity import InvalidIdentity, age_on, check_declared, mask_id, validate_id
from ledger.registry import (
    DonationNumberIndex,
    Donor,
    SigningCredential,
    StationConfig,
    donor_id_for,
    number_index_id_for,
    station_id_for,
)
from ledger.rules import STEPS as RULE_STEPS
from ledger.rules import Evaluation, Outcome, RuleOutcome, RuleSet, derive_outcomes, derive_values
from ledger.rules.amendments import AMENDMENT_POLICY, load_amendment_policy_ref
from signing.secrets import StationSecrets

DONATION_NO_LENGTH = 13


class LedgerApp(Application[UUID]):
    """The donation ledger, built on an eventsourcing environment (``persistence_env``)."""

    name = "Ledger"

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        rule_set: RuleSet,
        secrets: StationSecrets,
        station_id: str,
    ) -> None:
        super().__init__(env)
        self.rule_set = rule_set
        self.secrets = secrets
        self.station_id = station_id

    # -- persistence hook -------------------------------------------------------------------------

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        processing_event.saved_kwargs["event_hashes"] = [
            event.event_hash
            for event in processing_event.events
            if isinstance(event, LedgerAggregate.Event)
        ]
        return super()._record(processing_event)

    # -- station ----------------------------------------------------------------------------------

    def configure_station(self, signer: Signer, parameters: Mapping[str, Any]) -> None:
        self.save(StationConfig.configure(signer, self.station_id, dict(parameters)))

    def station(self) -> StationConfig:
        try:
            config: object = self.repository.get(station_id_for(self.station_id))
        except Exception as exc:  # AggregateNotFoundError
            raise WorkflowError(
                f"station {self.station_id} is not configured: run `ledger init`"
            ) from exc
        assert isinstance(config, StationConfig)
        return config

    def change_station_setting(self, signer: Signer, key: str, value: Any, reason: str) -> None:
        config = self.station()
        config.change(signer, key, value, reason)
        self.save(config)

    def record_certificate(self, signer: Signer, credential: SigningCredential) -> None:
        self.save(credential)

    # -- registration -----------------------------------------------------------------------------

    def register_donor(
        self,
        signer: Signer,
        *,
        channel: str,
        id_type: str,
        id_number: str,
        name: str,
        sex: str,
        birth_date: date,
        phone: str,
        product: str,
        appointment_id: str | None = None,
        today: date | None = None,
    ) -> UUID:
        """Register a visit. Returns the new donation's id."""
        today = today or datetime.now(UTC).date()
        if channel not in CHANNELS:
            raise WorkflowError(f"unknown registration channel {channel!r}")
        if product not in PRODUCTS:
            raise WorkflowError(f"unknown product {product!r}")
        if not name.strip():
            raise WorkflowError("the donor's name is required")
        try:
            resident = validate_id(id_type, id_number, today)
            if resident is not None:
                check_declared(resident, sex, birth_date)
                normalised = resident.number
            else:
                normalised = id_number.strip().upper()
        except InvalidIdentity as exc:
            raise WorkflowError(f"ID number: {exc}") from exc
        donor_ref = self.secrets.donor_ref(f"{id_type}:{normalised}")
        donor_id = donor_id_for(donor_ref)
        masked = mask_id(normalised)
        donor = self._get_or_none(donor_id, Donor)
        if donor is None:
            donor = Donor.enrol(
                signer,
                donor_ref,
                id_type=id_type,
                id_number_masked=masked,
                id_number_encrypted=self.secrets.encrypt(normalised, context=donor_ref),
                name=name,
                sex=sex,
                birth_date=birth_date.isoformat(),
            )
        donation_id = uuid4()
        donor.open_visit(signer, donation_id)
        params = self.station().parameters
        donation = Donation.register(
            signer,
            donation_id,
            station_id=self.station_id,
            channel=channel,
            donor_id=donor_id,
            donor_ref=donor_ref,
            id_type=id_type,
            id_number_masked=masked,
            name=name,
            sex=sex,
            birth_date=birth_date.isoformat(),
            phone=phone,
            product_requested=product,
            appointment_id=appointment_id,
            required_slots=required_slots(params),
            rule_set="",
            rule_outcomes=(),
        )
        self.save(donor, donation)
        return donation_id

    def record_donor_history(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        source: str,
        queried_at: str,
        donations: Sequence[Mapping[str, Any]],
        deferrals: Sequence[Mapping[str, Any]],
    ) -> None:
        """Record the regional service's answer for this donation (once)."""
        donation = self.donation(donation_id)
        if self._get_or_none(history_check_id_for(donation_id), DonorHistoryCheck) is not None:
            raise WorkflowError(f"the regional history of donation {donation_id} is recorded")
        if Step.ASSESSMENT in donation.steps:
            raise WorkflowError("the regional history is checked before the eligibility assessment")
        registration = donation.steps[Step.REGISTRATION]["values"]
        self.save(
            DonorHistoryCheck.check(
                signer,
                donation_id,
                donor_ref=str(registration["donor_ref"]),
                id_number_masked=str(registration["id_number_masked"]),
                source=source,
                queried_at=queried_at,
                donations=donations,
                deferrals=deferrals,
            )
        )

    # -- steps ------------------------------------------------------------------------------------

    def donation(self, donation_id: UUID) -> Donation:
        donation: Donation | None = self._get_or_none(donation_id, Donation)
        if donation is None:
            raise WorkflowError(f"no donation {donation_id}")
        return donation

    def find_donation(self, donation_no: str) -> UUID:
        index = self._get_or_none(number_index_id_for(donation_no), DonationNumberIndex)
        if index is None:
            raise WorkflowError(f"no donation with number {donation_no}")
        return UUID(index.donation_id)

    def sign_consent(
        self,
        donation_id: UUID,
        donor_signer: Signer,
        *,
        answers: Mapping[str, Any],
        consent: bool,
        fingerprint_verified: bool,
        donor_certificate_serial: str,
    ) -> None:
        donation = self.donation(donation_id)
        params = self.station().parameters
        donation.sign_consent(
            donor_signer,
            form_template_code=str(params.get("form_template_code", "")),
            form_version=str(params.get("form_version", "1")),
            answers=dict(answers),
            consent=consent,
            fingerprint_verified=fingerprint_verified,
            donor_certificate_serial=donor_certificate_serial,
        )
        self.save(donation)

    def record_exam(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        weight_kg: float,
        sbp_mmhg: int,
        dbp_mmhg: int,
        pulse_per_min: int,
        temperature_c: float,
        findings: str = "",
        acknowledged: Sequence[str] = (),
        repeat_donor_no_reaction: bool = False,
        endurance_athlete: bool = False,
    ) -> None:
        donation = self.donation(donation_id)
        registration = donation.steps[Step.REGISTRATION]["values"]
        values = {
            "weight_kg": weight_kg,
            "sbp_mmhg": sbp_mmhg,
            "dbp_mmhg": dbp_mmhg,
            "pulse_per_min": pulse_per_min,
            "temperature_c": temperature_c,
            "pulse_pressure_mmhg": sbp_mmhg - dbp_mmhg,
            "age_years": age_on(
                date.fromisoformat(registration["birth_date"]), datetime.now(UTC).date()
            ),
        }
        context = {
            "sex": registration["sex"],
            "product": donation.product,
            "repeat_donor_no_reaction": repeat_donor_no_reaction,
            "endurance_athlete": endurance_athlete,
        }
        outcomes = self._evaluate(Step.EXAM, values, context, {}, acknowledged)
        failures = [o for o in outcomes if o["outcome"] == Outcome.FAIL]
        donation.record_exam(
            signer,
            self.rule_set.ref,
            outcomes,
            weight_kg=weight_kg,
            sbp_mmhg=sbp_mmhg,
            dbp_mmhg=dbp_mmhg,
            pulse_per_min=pulse_per_min,
            temperature_c=temperature_c,
            findings=findings,
            result=Outcome.FAIL if failures else Outcome.PASS,
            defer_reason=", ".join(o["rule_id"] for o in failures),
        )
        self.save(donation)

    def record_test(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        hb_g_per_l: float,
        hct_fraction: float,
        plt_10e9_per_l: float,
        mpv_fl: float | None = None,
        alt_u_per_l: float | None = None,
        hbsag: str = "negative",
        syphilis: str = "negative",
        abo: str = "",
        instrument_id: str = "",
        reagent_lots: Mapping[str, str] | None = None,
        auto_imported: bool = True,
        acknowledged: Sequence[str] = (),
    ) -> None:
        donation = self.donation(donation_id)
        params = self.station().parameters
        if mpv_fl is not None and not params.get("mpv_enabled", False):
            raise WorkflowError("MPV is switched off at this station")
        registration = donation.steps[Step.REGISTRATION]["values"]
        values = {
            "hb_g_per_l": hb_g_per_l,
            "hct_fraction": hct_fraction,
            "plt_10e9_per_l": plt_10e9_per_l,
        }
        context = {"sex": registration["sex"], "product": donation.product}
        outcomes = self._evaluate(Step.TEST, values, context, {}, acknowledged)
        for marker, result in (("hbsag", hbsag), ("syphilis", syphilis)):
            if result not in ("negative", "positive"):
                raise WorkflowError(f"{marker} must be negative or positive")
        donation.record_test(
            signer,
            self.rule_set.ref,
            outcomes,
            hb_g_per_l=hb_g_per_l,
            hct_fraction=hct_fraction,
            plt_10e9_per_l=plt_10e9_per_l,
            mpv_fl=mpv_fl,
            alt_u_per_l=alt_u_per_l,
            hbsag=hbsag,
            syphilis=syphilis,
            abo=abo,
            instrument_id=instrument_id,
            reagent_lots=dict(reagent_lots or {}),
            auto_imported=auto_imported,
        )
        self.save(donation)

    def assess(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        decision: str,
        planned_doses: int = 1,
        planned_plasma_ml: int = 0,
        defer_reason: str = "",
        overrides: Mapping[str, str] | None = None,
        acknowledged: Sequence[str] = (),
    ) -> None:
        donation = self.donation(donation_id)
        overrides = dict(overrides or {})
        registration = donation.steps[Step.REGISTRATION]["values"]
        test = donation.steps.get(Step.TEST, {}).get("values", {})
        predicted: float | None = None
        if test:
            # Predicted post-collection count: 1 dose removes about 25 x10^9/L from a 5 L volume
            # (a plain station estimate, recorded with its inputs, not a clinical model).
            predicted = round(float(test["plt_10e9_per_l"]) - 25.0 * planned_doses, 1)
        values: dict[str, float | int | None] = {"predicted_post_plt_10e9_per_l": predicted}
        values.update(self.history_values(donation, planned_plasma_ml))
        context = {"sex": registration["sex"], "product": donation.product}
        outcomes = self._evaluate(Step.ASSESSMENT, values, context, overrides, acknowledged)
        if decision == Decision.ELIGIBLE:
            for o in donation.prior_failures():
                if o["rule_id"] in overrides:
                    outcomes.append({**o, "outcome": "overridden"})
        donation.assess(
            signer,
            self.rule_set.ref,
            outcomes,
            decision=decision,
            planned_doses=planned_doses,
            planned_plasma_ml=planned_plasma_ml,
            predicted_post_plt_10e9_per_l=predicted,
            defer_reason=defer_reason,
            overrides=overrides,
        )
        self.save(donation)

    def assign_number(self, donation_id: UUID, signer: Signer, donation_no: str) -> None:
        if len(donation_no) != DONATION_NO_LENGTH or not donation_no.isdigit():
            raise WorkflowError(f"donation number must be {DONATION_NO_LENGTH} digits")
        if self._get_or_none(number_index_id_for(donation_no), DonationNumberIndex) is not None:
            raise WorkflowError(f"donation number {donation_no} is already assigned")
        donation = self.donation(donation_id)
        donation.assign_number(signer, donation_no, label_set_printed=True)
        index = DonationNumberIndex.reserve(signer, donation_no, donation_id)
        self.save(donation, index)

    def verify_pre_collection(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        scans: Sequence[str],
        separator_model: str,
        separator_serial: str,
        kit_lot: str,
        acd_lot: str,
        saline_lot: str,
        venipuncture_at: str,
    ) -> None:
        donation = self.donation(donation_id)
        donation.verify_pre_collection(
            signer,
            scans=scans,
            separator_model=separator_model,
            separator_serial=separator_serial,
            kit_lot=kit_lot,
            acd_lot=acd_lot,
            saline_lot=saline_lot,
            venipuncture_at=venipuncture_at,
            labels_match=_require_labels(scans, donation.donation_no),
        )
        self.save(donation)

    def record_collection(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        acknowledged: Sequence[str] = (),
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
        donation = self.donation(donation_id)
        values = {"product_volume_ml": product_volume_ml}
        context = {"product": donation.product}
        outcomes = self._evaluate(Step.COLLECTION, values, context, {}, acknowledged)
        donation.record_collection(
            signer,
            self.rule_set.ref,
            outcomes,
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
        self.save(donation)

    def verify_post_collection(self, donation_id: UUID, signer: Signer, scans: list[str]) -> None:
        donation = self.donation(donation_id)
        labels_match = _require_labels(scans, donation.donation_no)
        donation.verify_post_collection(signer, scans=scans, labels_match=labels_match)
        self.save(donation)

    def verify_heat_seal(self, donation_id: UUID, signer: Signer, scans: list[str]) -> None:
        donation = self.donation(donation_id)
        labels_match = _require_labels(scans, donation.donation_no)
        donation.verify_heat_seal(signer, scans=scans, labels_match=labels_match)
        self.save(donation)

    def record_reaction(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        reaction_type: str,
        severity: str,
        onset_at: str,
        treatment: str,
        outcome: str,
    ) -> None:
        donation = self.donation(donation_id)
        donation.record_reaction(
            signer,
            reaction_type=reaction_type,
            severity=severity,
            onset_at=onset_at,
            treatment=treatment,
            outcome=outcome,
        )
        self.save(donation)

    def apply_signature(self, donation_id: UUID, signer: Signer, slot: str) -> None:
        donation = self.donation(donation_id)
        donation.apply_signature(signer, slot)
        self.save(donation)

    def seal(self, donation_id: UUID, signer: Signer) -> None:
        donation = self.donation(donation_id)
        donation.seal(signer)
        self.save(donation)

    def amend(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        step: str,
        field: str,
        new_value: Any,
        reason: str,
        override_reason: str = "",
        acknowledged: Sequence[str] = (),
    ) -> tuple[RuleOutcome, ...]:
        """Correct one recorded value with a signed amendment; returns the rule outcomes.

        The step's control points run again on the new value, with the donation's context, as on
        entry: a hard rule the new value fails refuses the amendment unless `override_reason`
        is given (it then overrides each such rule, and only a role the amendment policy allows
        to override may sign it); an alert must be in `acknowledged`. Who may amend the step at
        all is the policy's too (``ledger/rulesets/amendment-roles.v1.json``).
        """
        donation = self.donation(donation_id)
        policy = load_amendment_policy_ref(AMENDMENT_POLICY)
        evaluation = self._amendment_evaluation(donation, step, field, new_value)
        failed = [o.rule_id for o in evaluation.failures]
        if override_reason.strip() and not failed:
            raise WorkflowError("the new value fails no hard rule: there is nothing to override")
        overrides = dict.fromkeys(failed, override_reason) if override_reason.strip() else {}
        alerts = {o.rule_id for o in evaluation.alerts}
        for rule_id in acknowledged:
            if rule_id not in alerts:
                raise WorkflowError(f"rule {rule_id} raises no alert on this amendment")
        outcomes = evaluation.resolve(overrides, acknowledged).outcomes
        donation.amend(
            signer,
            step=step,
            field=field,
            new_value=new_value,
            reason=reason,
            rule_set=self.rule_set.ref,
            rule_outcomes=[o.to_json() for o in outcomes],
            overrides=overrides,
            policy=policy,
        )
        try:
            self.save(donation)
        except RecordConflictError as exc:
            # another amendment (or step) of this record was saved after we read it: its
            # version is taken, nothing of ours was written; the caller may read and retry
            raise ConcurrentChange(
                f"the record {donation_id} changed while this amendment was made "
                f"(version {donation.version} is taken): nothing written, read it and retry"
            ) from exc
        return outcomes

    def _amendment_evaluation(
        self, donation: Donation, step: str, field: str, new_value: Any
    ) -> Evaluation:
        """The step's rules on its values after the amendment, with the context of the entry:
        the outcomes whose value the amendment changes (the field's own rules and those of
        values derived from it, such as the pulse pressure)."""
        record = donation.steps.get(step)
        if record is None or field not in record["values"] or step not in RULE_STEPS:
            return Evaluation((), (), self.rule_set.ref)  # the aggregate says what is wrong
        registration = donation.steps[Step.REGISTRATION]["values"]
        context: dict[str, object] = {"sex": registration["sex"], "product": donation.product}
        current: dict[str, Mapping[str, Any]] = {}  # recorded outcomes are JSON
        inputs: dict[str, float | int | None] = {}
        for outcome in record["rule_outcomes"]:
            try:
                rule = self.rule_set.rule(outcome["rule_id"])
            except KeyError:
                continue
            current[rule.id] = outcome
            inputs[rule.field] = outcome["value"]  # derived and history inputs, as recorded
            # The flags that selected the recorded rules (an endurance athlete's pulse limit).
            context.update((k, v) for k, v in rule.applies_to.items() if isinstance(v, bool))
        raw: dict[str, object] = {
            k: v
            for k, v in {**record["values"], field: new_value}.items()
            if v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        }
        if not (new_value is None or raw.get(field) is not None):
            return Evaluation((), (), self.rule_set.ref)  # not a number: the aggregate refuses
        raw["assessment_date"] = record["timestamp"].date()
        raw["birth_date"] = date.fromisoformat(registration["birth_date"])
        try:
            inputs.update(derive_values(step, raw, context))
            evaluation = derive_outcomes(self.rule_set, step, inputs, context)
        except ValueError as exc:
            raise WorkflowError(f"cannot re-run the control points of {step}: {exc}") from exc
        changed = tuple(
            o
            for o in evaluation.outcomes
            if o.rule_id not in current or current[o.rule_id]["value"] != o.value
        )
        return Evaluation(changed, (), evaluation.rule_set_ref)

    # -- helpers ----------------------------------------------------------------------------------

    def _evaluate(
        self,
        step: str,
        values: Mapping[str, float | int | None],
        context: Mapping[str, object],
        overrides: Mapping[str, str],
        acknowledged: Sequence[str],
    ) -> list[dict[str, Any]]:
        """The step's outcomes as recorded (``derive_outcomes``, which the verifier re-runs).
        An override or acknowledgement must name a rule of the step (at eligibility, an
        override may concern a failure of an earlier step)."""
        try:  # the rule engine refuses unusable values with ValueError: a refused command
            resolved = derive_outcomes(
                self.rule_set, step, values, context, overrides=overrides, acknowledged=acknowledged
            )
        except ValueError as exc:
            raise WorkflowError(str(exc)) from exc
        known = {o.rule_id for o in resolved.outcomes}
        for rule_id in [*overrides, *acknowledged]:
            if rule_id not in known and step != Step.ASSESSMENT:
                raise WorkflowError(f"rule {rule_id} does not apply to step {step}")
        return [o.to_json() for o in resolved.outcomes]

    def history_values(
        self, donation: Donation, planned_plasma_ml: int
    ) -> dict[str, float | int | None]:
        """Interval and yearly-cap inputs from this donor's earlier visits in the ledger."""
        donor = self._get_or_none(UUID(donation.donor_id), Donor)
        now = datetime.now(UTC)
        last: datetime | None = None
        count = 1
        volume = 0
        if donor is not None:
            for visit in donor.visits:
                if visit == str(donation.id):
                    continue
                other = self._get_or_none(UUID(visit), Donation)
                if other is None or Step.COLLECTION not in other.steps:
                    continue
                collected: datetime = other.steps[Step.COLLECTION]["timestamp"]
                values = other.steps[Step.COLLECTION]["values"]
                if last is None or collected > last:
                    last = collected
                if now - collected <= timedelta(days=365):
                    count += 1
                    volume += int(values["product_volume_ml"]) + int(values["plasma_ml"])
        out: dict[str, float | int | None] = {
            "days_since_last_platelet_donation": None if last is None else (now - last).days,
            "platelet_donations_365d_incl_this": count,
            "apheresis_volume_ml_365d_incl_this": volume + 250 + planned_plasma_ml,
        }
        regional = self._get_or_none(history_check_id_for(donation.id), DonorHistoryCheck)
        if regional is not None:  # the provincial answer recorded at registration
            out.update(regional.regional_values(now.date()))
        return out

    def _get_or_none(
        self, aggregate_id: UUID, cls: type[TLedgerAggregate]
    ) -> TLedgerAggregate | None:
        from eventsourcing.application import AggregateNotFoundError

        try:
            aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            raise WorkflowError(
                f"{aggregate_id} is a {type(aggregate).__name__}, not {cls.__name__}"
            )
        return aggregate


CHANNELS = ("desk", "kiosk", "online", "wechat", "douyin_h5", "app", "baidu")
PRODUCTS = ("platelets_single", "platelets_double", "platelets_plasma", "plasma")


def required_slots(parameters: Mapping[str, Any]) -> list[dict[str, str]]:
    """Co-signature slots of a new donation, from the station's settings at registration.

    ``required_signatures`` lists per step the roles that sign: the first records (and signs) the
    step's event, each further role is a co-signature slot. With e-signatures switched off the
    slots are ``not_required``; the recorder's own signature is always made.
    """
    enabled = bool(parameters.get("e_signature_enabled", True))
    slots = []
    for step, roles in dict(parameters.get("required_signatures", {})).items():
        for role in list(roles)[1:]:
            slots.append(
                {
                    "slot": f"{step}:{role}",
                    "step": step,
                    "role": role,
                    "state": SlotState.REQUIRED if enabled else SlotState.NOT_REQUIRED,
                }
            )
    return slots


def _require_labels(scans: Sequence[str], donation_no: str) -> bool:
    if not scans:
        raise WorkflowError("no label scans")
    mismatched = [s for s in scans if donation_no not in s]
    if mismatched:
        raise WorkflowError(
            f"label mismatch: {', '.join(mismatched)} does not carry donation number {donation_no}"
        )
    return True
