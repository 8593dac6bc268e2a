"""Hand-built event sequences for the read models: real event classes, chosen times and actors.

The events are the ledger's own classes constructed directly, so the projections decode nothing
and the times are exactly what a test states. Their signatures and hashes are placeholders:
projections do not verify (``ledger verify`` does).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic

from ledger.donation import Donation, personal_amendment
from ledger.personal import commit, mask_name, mask_phone
from ledger.registry import Donor, SigningCredential, StationConfig, donor_id_for, station_id_for
from ledger.stores import persistence_env
from projections.base import APPLICATION_NAME
from projections.runner import Views

STAFF = {
    "C001": "registration_clerk",
    "P001": "examining_physician",
    "P002": "evaluating_physician",
    "T001": "screening_technician",
    "N001": "collection_nurse",
    "N002": "collection_nurse",
    "S001": "sealing_staff",
    "SYSTEM": "system",
    "A001": "administrator",
}
SLOTS = (
    ("informed_consent", "examining_physician"),
    ("pre_collection", "donor"),
    ("post_collection", "donor"),
)
_hashes = itertools.count(1)
_SALT = "5a" * 16


def at(text: str) -> datetime:
    """A UTC moment from ``YYYY-MM-DDTHH:MM`` (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _placeholders() -> dict[str, Any]:
    n = next(_hashes)
    return {
        "prev_hash": "0" * 64,
        "event_hash": hashlib.sha256(str(n).encode()).hexdigest(),
        "signature": base64.b64encode(f"signature {n}".encode()).decode(),
    }


def _actor(who: str) -> tuple[str, str]:
    if who.startswith("DONOR:"):
        return who, "donor"
    return f"STAFF:{who}", STAFF[who]


def event(
    cls: type[Any],
    aggregate_id: UUID,
    version: int,
    when: datetime,
    who: str,
    *,
    rule_outcomes: Sequence[Mapping[str, Any]] = (),
    rule_set: str = "",
    **fields: Any,
) -> Any:
    actor, role = _actor(who)
    extra: dict[str, Any] = {}
    if version == 1:
        owner = {
            Donation.DonorRegistered: Donation,
            Donor.DonorEnrolled: Donor,
            StationConfig.StationConfigured: StationConfig,
            SigningCredential.StaffCertificateIssued: SigningCredential,
        }[cls]
        extra["originator_topic"] = get_topic(owner)
    return cast(Any, cls)(
        originator_id=aggregate_id,
        originator_version=version,
        timestamp=when,
        actor=actor,
        actor_role=role,
        rule_set=rule_set,
        rule_outcomes=[dict(o) for o in rule_outcomes],
        **_placeholders(),
        **extra,
        **fields,
    )


@dataclass
class DonationEvents:
    """One donation's events, built step by step at the times a test gives."""

    station_id: str = "S1"
    donor_ref: str = field(default_factory=lambda: uuid4().hex)
    id: UUID = field(default_factory=uuid4)
    events: list[Any] = field(default_factory=list)
    e_signature: bool = True
    name: str = "王芳"

    @property
    def donor_id(self) -> UUID:
        return donor_id_for(self.donor_ref)

    @property
    def donor_ref_actor(self) -> str:
        return f"DONOR:{self.donor_ref}"

    def _add(self, cls: type[Any], when: datetime, who: str, **fields: Any) -> DonationEvents:
        version = len(self.events) + 1
        self.events.append(event(cls, self.id, version, when, who, **fields))
        return self

    def register(
        self, when: datetime, who: str = "C001", product: str = "platelets_single"
    ) -> DonationEvents:
        state = "required" if self.e_signature else "not_required"
        slots = [
            {"slot": f"{step}:{role}", "step": step, "role": role, "state": state}
            for step, role in SLOTS
        ]
        return self._add(
            Donation.DonorRegistered,
            when,
            who,
            station_id=self.station_id,
            channel="desk",
            donor_id=str(self.donor_id),
            donor_ref=self.donor_ref,
            id_type="resident_id",
            id_number_masked="330106************",
            name=self.name,
            sex="F",
            birth_date="1990-05-17",
            phone="13800000000",
            product_requested=product,
            appointment_id=None,
            required_slots=slots,
            name_masked=mask_name(self.name),
            phone_masked=mask_phone("13800000000"),
            name_commitment=commit(_SALT, "name", self.name),
            phone_commitment=commit(_SALT, "phone", "13800000000"),
            personal_salt=_SALT,
        )

    def consent(self, when: datetime) -> DonationEvents:
        return self._add(
            Donation.InformedConsentSigned,
            when,
            self.donor_ref_actor,
            form_template_code="ZJBC/L/1",
            form_version="1",
            answers={"recent_illness": False},
            consent=True,
            fingerprint_verified=True,
            donor_certificate_serial="ab",
        )

    def exam(
        self, when: datetime, who: str = "P001", outcomes: Sequence[Mapping[str, Any]] = ()
    ) -> DonationEvents:
        return self._add(
            Donation.GeneralExamRecorded,
            when,
            who,
            rule_set="gb18467-2011@1",
            rule_outcomes=outcomes or [_outcome("temperature.max", 36.6, 37.5)],
            weight_kg=60.0,
            sbp_mmhg=120,
            dbp_mmhg=80,
            pulse_per_min=72,
            temperature_c=36.6,
            findings="",
            result="pass",
            defer_reason="",
        )

    def test(self, when: datetime, who: str = "T001") -> DonationEvents:
        return self._add(
            Donation.PreDonationTestRecorded,
            when,
            who,
            rule_set="gb18467-2011@1",
            rule_outcomes=[_outcome("hb.female.min", 130.0, 115)],
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
        self,
        when: datetime,
        decision: str = "eligible",
        who: str = "P002",
        overrides: Mapping[str, str] | None = None,
        defer_reason: str = "",
    ) -> DonationEvents:
        overrides = dict(overrides or {})
        outcomes = [
            {"rule_id": r, "value": 1, "limit": 2, "op": "ge", "outcome": "overridden"}
            for r in overrides
        ]
        return self._add(
            Donation.EligibilityAssessed,
            when,
            who,
            rule_set="gb18467-2011@1",
            rule_outcomes=outcomes,
            decision=decision,
            planned_doses=1,
            planned_plasma_ml=0,
            predicted_post_plt_10e9_per_l=225.0,
            defer_reason=defer_reason,
            overrides=overrides,
        )

    def number(self, when: datetime, donation_no: str) -> DonationEvents:
        return self._add(
            Donation.DonationNumberAssigned,
            when,
            "SYSTEM",
            donation_no=donation_no,
            label_set_printed=True,
        )

    def pre_collection(self, when: datetime, who: str = "N001") -> DonationEvents:
        return self._add(
            Donation.PreCollectionVerified,
            when,
            who,
            scans=["BAG"],
            separator_model="Trima",
            separator_serial="1",
            kit_lot="K",
            acd_lot="A",
            saline_lot="S",
            venipuncture_at="",
            labels_match=True,
        )

    def collect(
        self, when: datetime, who: str = "N001", volume: int = 260, plasma: int = 0
    ) -> DonationEvents:
        acknowledged = volume > 550
        return self._add(
            Donation.ApheresisCollected,
            when,
            who,
            rule_set="gb18467-2011@1",
            rule_outcomes=[
                _outcome(
                    "collection.volume.plausible",
                    volume,
                    550,
                    "acknowledged" if acknowledged else "pass",
                )
            ],
            started_at="",
            ended_at="",
            processed_blood_ml=2800,
            acd_ml=300,
            product_volume_ml=volume,
            platelet_yield_10e11=2.8,
            doses=1,
            plasma_ml=plasma,
            auto_imported=True,
        )

    def post_collection(self, when: datetime, who: str = "N001") -> DonationEvents:
        return self._add(
            Donation.PostCollectionVerified, when, who, scans=["BAG"], labels_match=True
        )

    def heat_seal(self, when: datetime, who: str = "S001") -> DonationEvents:
        return self._add(Donation.HeatSealVerified, when, who, scans=["BAG"], labels_match=True)

    def cosign(self, when: datetime, slot: str, who: str | None = None) -> DonationEvents:
        step, _, role = slot.partition(":")
        target = next(e for e in self.events if getattr(e, "STEP", "registration") == step)
        signer = who or (self.donor_ref_actor if role == "donor" else "P001")
        return self._add(
            Donation.SignatureApplied,
            when,
            signer,
            slot=slot,
            target_version=target.originator_version,
            target_hash=target.event_hash,
        )

    def amend(
        self, when: datetime, step: str, field: str, old: Any, new: Any, who: str = "P001"
    ) -> DonationEvents:
        return self._add(
            Donation.RecordAmended,
            when,
            who,
            step=step,
            target_version=1,
            field=field,
            old_value=old,
            new_value=new,
            reason="transcription error",
            prior_hash="0" * 64,
            overrides={},
            amendment_policy="amendment-roles@1",
            **personal_amendment(step, field, old, new),
        )

    def reaction(self, when: datetime, who: str = "N001") -> DonationEvents:
        return self._add(
            Donation.AdverseReactionRecorded,
            when,
            who,
            reaction_type="vasovagal",
            severity="mild",
            onset_at="",
            treatment="rest",
            outcome="recovered",
        )

    def seal(self, when: datetime, missing: Sequence[str] = ()) -> DonationEvents:
        slots = [
            {"slot": f"{step}:{role}", "step": step, "role": role, "state": "required"}
            for step, role in SLOTS
            if f"{step}:{role}" in missing
        ]
        status = (
            "deferred"
            if any(getattr(e, "decision", "") == "deferred" for e in self.events)
            else "completed"
        )
        return self._add(
            Donation.DonationRecordSealed,
            when,
            "SYSTEM",
            final_status=status,
            missing_slots=slots,
            step_hashes={},
        )

    def complete(
        self,
        start: datetime,
        donation_no: str,
        *,
        missing: Sequence[str] = (),
        volume: int = 260,
        sealed: datetime | None = None,
    ) -> DonationEvents:
        """Every step, one minute apart; co-signatures except the ``missing`` ones; sealed."""
        minute = timedelta(minutes=1)
        t = iter(start + i * minute for i in range(100))
        self.register(next(t)).consent(next(t))
        if "informed_consent:examining_physician" not in missing:
            self.cosign(next(t), "informed_consent:examining_physician")
        self.exam(next(t)).test(next(t)).assess(next(t)).number(next(t), donation_no)
        self.pre_collection(next(t))
        if "pre_collection:donor" not in missing:
            self.cosign(next(t), "pre_collection:donor")
        self.collect(next(t), volume=volume).post_collection(next(t))
        if "post_collection:donor" not in missing:
            self.cosign(next(t), "post_collection:donor")
        self.heat_seal(next(t))
        return self.seal(sealed or next(t), missing)

    def deferred(self, start: datetime, reason: str = "hb.female.min") -> DonationEvents:
        minute = timedelta(minutes=1)
        self.register(start).consent(start + minute)
        self.cosign(start + 2 * minute, "informed_consent:examining_physician")
        self.exam(start + 3 * minute).test(start + 4 * minute)
        self.assess(start + 5 * minute, "deferred", defer_reason=reason)
        return self.seal(start + 6 * minute)


def _outcome(rule_id: str, value: Any, limit: Any, outcome: str = "pass") -> dict[str, Any]:
    return {"rule_id": rule_id, "value": value, "limit": limit, "op": "le", "outcome": outcome}


def enrolment(donation: DonationEvents, when: datetime) -> Any:
    return event(
        Donor.DonorEnrolled,
        donation.donor_id,
        1,
        when,
        "C001",
        donor_ref=donation.donor_ref,
        id_type="resident_id",
        id_number_masked="330106************",
        id_number_encrypted="ciphertext",
        name=donation.name,
        sex="F",
        birth_date="1990-05-17",
        name_masked=mask_name(donation.name),
        name_commitment=commit(SALT, "name", donation.name),
        personal_salt=SALT,
    )


#: The salt of the built enrolments' name commitments (fixed: the builder is deterministic).
SALT = "00" * 16


def station_configured(station_id: str, when: datetime, department: str = "献血服务二科") -> Any:
    return event(
        StationConfig.StationConfigured,
        station_id_for(station_id),
        1,
        when,
        "A001",
        station_id=station_id,
        parameters={"station_name": "浙江省血液中心", "department": department},
    )


def staff_certificate(staff: str, name: str, when: datetime) -> Any:
    return event(
        SigningCredential.StaffCertificateIssued,
        uuid4(),
        1,
        when,
        "SYSTEM",
        serial_hex="ab" + staff,
        subject_id=f"STAFF:{staff}",
        name=name,
        role=STAFF[staff],
        not_before="2026-01-01T00:00:00+00:00",
        not_after="2027-01-01T00:00:00+00:00",
        certificate_pem="",
    )


@contextmanager
def projected(tmp_path: Path, events: Sequence[Any]) -> Iterator[Views]:
    """Every view of a fresh SQLite file fed *events* one by one through eventsourcing's
    ``Projection.process_event`` (positions 1, 2, ...)."""
    views = Views.open(persistence_env(f"sqlite:///{tmp_path / 'views.sqlite'}"))
    try:
        feed(views, events)
        yield views
    finally:
        views.close()


def feed(views: Views, events: Sequence[Any], first: int = 1) -> None:
    for position, domain_event in enumerate(events, start=first):
        for projection in views.projections.values():
            projection.process_event(domain_event, Tracking(APPLICATION_NAME, position))


def interleave(*sequences: Sequence[Any]) -> list[Any]:
    """All events ordered by time (as the log would hold them), stable within a donation."""
    merged = [(e.timestamp, i, j, e) for i, s in enumerate(sequences) for j, e in enumerate(s)]
    return [e for *_, e in sorted(merged, key=lambda m: (m[0], m[1], m[2]))]
