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
from eventsourcing.persistence import Recording
from eventsourcing.utils import EnvType

from ledger.donation import Donation, Step
from ledger.events import LedgerAggregate, Signer, WorkflowError
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
from ledger.rules import RuleSet
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
            config: Any = self.repository.get(station_id_for(self.station_id))
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
        failures = [o for o in outcomes if o["outcome"] == "fail"]
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
            result="fail" if failures else "pass",
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
        values: dict[str, Any] = {"predicted_post_plt_10e9_per_l": predicted}
        values.update(self.history_values(donation, planned_plasma_ml))
        context = {"sex": registration["sex"], "product": donation.product}
        outcomes = self._evaluate(Step.ASSESSMENT, values, context, overrides, acknowledged)
        if decision == "eligible":
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

    def verify_pre_collection(self, donation_id: UUID, signer: Signer, **fields: Any) -> None:
        donation = self.donation(donation_id)
        fields["labels_match"] = _require_labels(fields, donation.donation_no)
        donation.verify_pre_collection(signer, **fields)
        self.save(donation)

    def record_collection(
        self,
        donation_id: UUID,
        signer: Signer,
        *,
        acknowledged: Sequence[str] = (),
        **fields: Any,
    ) -> None:
        donation = self.donation(donation_id)
        values = {"product_volume_ml": fields["product_volume_ml"]}
        context = {"product": donation.product}
        outcomes = self._evaluate(Step.COLLECTION, values, context, {}, acknowledged)
        donation.record_collection(signer, self.rule_set.ref, outcomes, **fields)
        self.save(donation)

    def verify_post_collection(self, donation_id: UUID, signer: Signer, scans: list[str]) -> None:
        donation = self.donation(donation_id)
        labels_match = _require_labels({"scans": scans}, donation.donation_no)
        donation.verify_post_collection(signer, scans=scans, labels_match=labels_match)
        self.save(donation)

    def verify_heat_seal(self, donation_id: UUID, signer: Signer, scans: list[str]) -> None:
        donation = self.donation(donation_id)
        labels_match = _require_labels({"scans": scans}, donation.donation_no)
        donation.verify_heat_seal(signer, scans=scans, labels_match=labels_match)
        self.save(donation)

    def record_reaction(self, donation_id: UUID, signer: Signer, **fields: Any) -> None:
        donation = self.donation(donation_id)
        donation.record_reaction(signer, **fields)
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
    ) -> None:
        donation = self.donation(donation_id)
        outcomes: list[dict[str, Any]] = []
        if any(rule.field == field for rule in self.rule_set.for_step(step)):
            registration = donation.steps[Step.REGISTRATION]["values"]
            context = {"sex": registration["sex"], "product": donation.product}
            outcomes = [
                o for o in self._evaluate(step, {field: new_value}, context, {}, (), strict=False)
            ]
        donation.amend(
            signer,
            step=step,
            field=field,
            new_value=new_value,
            reason=reason,
            rule_set=self.rule_set.ref if outcomes else "",
            rule_outcomes=outcomes,
        )
        self.save(donation)

    # -- helpers ----------------------------------------------------------------------------------

    def _evaluate(
        self,
        step: str,
        values: Mapping[str, Any],
        context: Mapping[str, Any],
        overrides: Mapping[str, str],
        acknowledged: Sequence[str],
        *,
        strict: bool = True,
    ) -> list[dict[str, Any]]:
        try:  # the rule engine refuses unusable values with ValueError: a refused command
            evaluation = self.rule_set.evaluate(step, values, context)
        except ValueError as exc:
            raise WorkflowError(str(exc)) from exc
        known = {o.rule_id for o in evaluation.outcomes}
        if strict:
            for rule_id in [*overrides, *acknowledged]:
                if rule_id not in known and step != Step.ASSESSMENT:
                    raise WorkflowError(f"rule {rule_id} does not apply to step {step}")
        try:
            resolved = evaluation.resolve(overrides, acknowledged)
        except ValueError as exc:
            raise WorkflowError(str(exc)) from exc
        return [dict(o.to_json()) for o in resolved.outcomes]

    def history_values(self, donation: Donation, planned_plasma_ml: int) -> dict[str, Any]:
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
        return {
            "days_since_last_platelet_donation": None if last is None else (now - last).days,
            "platelet_donations_365d_incl_this": count,
            "apheresis_volume_ml_365d_incl_this": volume + 250 + planned_plasma_ml,
        }

    def _get_or_none(self, aggregate_id: UUID, cls: type[Any]) -> Any:
        from eventsourcing.application import AggregateNotFoundError

        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            raise WorkflowError(
                f"{aggregate_id} is a {type(aggregate).__name__}, not {cls.__name__}"
            )
        return aggregate


CHANNELS = ("desk", "kiosk", "online", "wechat", "douyin_h5", "app")
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
                    "state": "required" if enabled else "not_required",
                }
            )
    return slots


def _require_labels(fields: Mapping[str, Any], donation_no: str) -> bool:
    scans = fields.get("scans", [])
    if not scans:
        raise WorkflowError("no label scans")
    mismatched = [s for s in scans if donation_no not in s]
    if mismatched:
        raise WorkflowError(
            f"label mismatch: {', '.join(mismatched)} does not carry donation number {donation_no}"
        )
    return True
