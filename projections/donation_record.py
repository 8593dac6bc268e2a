"""DonationRecord: one donation as it stands now.

Every recorded step with its current values (amendments applied), who recorded it and when, its
rule outcomes; adverse reactions; and each co-signature slot with its state:

* ``pending``: required, not signed yet, record not sealed;
* ``signed``: by whom (``signed_by``), when (``signed_at``), at which log position;
* ``missing``: listed in ``DonationRecordSealed.missing_slots`` (required, step recorded, never
  signed before sealing);
* ``not_required``: the station had e-signatures switched off when the donor registered;
* ``not_reached``: required, but the step was never recorded (e.g. a deferred donor).

The ID number appears only masked, as the events carry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.donation import Donation, Step
from ledger.personal import commitment_key
from ledger.rules import Outcome
from projections.base import Handler, LedgerProjection, Seen, step_event_classes
from projections.store import Row, RowCache, Table, document, row_doc, text

TABLE = "donation_record"
RECORDS = Table(
    TABLE,
    (
        text("donation_id"),
        text("donation_no"),
        text("donor_id"),
        text("station_id"),
        text("status"),
        text("registered_at"),
        document(),
    ),
    indexes=("donation_no", "donor_id"),
)

SLOT_PENDING = "pending"
SLOT_SIGNED = "signed"
SLOT_MISSING = "missing"
SLOT_NOT_REQUIRED = "not_required"
SLOT_NOT_REACHED = "not_reached"


def _row(doc: dict[str, Any]) -> Row:
    return {
        "donation_id": doc["donation_id"],
        "donation_no": doc["donation_no"],
        "donor_id": doc["donor_id"],
        "station_id": doc["station_id"],
        "status": doc["status"],
        "registered_at": doc["registered_at"],
        "doc": doc,
    }


class DonationRecordProjection(LedgerProjection):
    name = "donation_record"
    title = "Donation records"
    tables = (RECORDS,)
    # 2: an amendment's rule outcomes replace the step's, its overrides are listed
    # 3: identity carries the key of the name's commitment (DonorRegistered v2, ledger.personal)
    version = 3

    def handlers(self) -> Mapping[type, Handler]:
        handlers: dict[type, Handler] = {cls: self._step for cls in step_event_classes()}
        handlers.update(
            {
                Donation.DonorRegistered: self._registered,
                Donation.AdverseReactionRecorded: self._reaction,
                Donation.SignatureApplied: self._signature,
                Donation.RecordAmended: self._amended,
                Donation.DonationRecordSealed: self._sealed,
            }
        )
        return handlers

    def _registered(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonorRegistered = seen.event
        doc: dict[str, Any] = {
            "donation_id": seen.key,
            "donation_no": "",
            "station_id": event.station_id,
            "donor_id": event.donor_id,
            "product": event.product_requested,
            "channel": event.channel,
            "appointment_id": event.appointment_id,
            "identity": {
                "id_type": event.id_type,
                "id_number_masked": event.id_number_masked,
                "name": event.name,
                "name_commitment_key": (
                    commitment_key(event.personal_salt, "name").hex() if event.personal_salt else ""
                ),
                "sex": event.sex,
                "birth_date": event.birth_date,
            },
            "status": "open",
            "decision": "",
            "final_status": "",
            "registered_at": seen.recorded_at,
            "sealed_at": None,
            "amendments": 0,
            "steps": {Step.REGISTRATION.value: _step_entry(seen)},
            "reactions": [],
            "slots": [
                {
                    "slot": slot["slot"],
                    "step": slot["step"],
                    "role": slot["role"],
                    "state": SLOT_PENDING if slot["state"] == "required" else SLOT_NOT_REQUIRED,
                    "signed_by": None,
                    "signed_at": None,
                    "position": None,
                }
                for slot in event.required_slots
            ],
        }
        rows.put(TABLE, _row(doc))

    def _step(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.StepEvent = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["steps"][event.STEP] = _step_entry(seen)
        if isinstance(event, Donation.EligibilityAssessed):
            doc["decision"] = event.decision
            if event.decision == "deferred":
                doc["status"] = "deferred"
        elif isinstance(event, Donation.DonationNumberAssigned):
            doc["donation_no"] = event.donation_no
        rows.put(TABLE, _row(doc))

    def _reaction(self, seen: Seen, rows: RowCache) -> None:
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["reactions"].append({**seen.meta, "values": seen.values})
        rows.put(TABLE, _row(doc))

    def _signature(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.SignatureApplied = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        for slot in doc["slots"]:
            if slot["slot"] == event.slot:
                slot.update(
                    state=SLOT_SIGNED,
                    signed_by=event.actor,
                    signed_at=seen.recorded_at,
                    position=seen.position,
                )
        rows.put(TABLE, _row(doc))

    def _amended(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.RecordAmended = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        step = doc["steps"].get(event.step)
        if step is None:
            return
        step["values"][event.field] = event.new_value
        identity = doc["identity"]
        if event.step == Step.REGISTRATION and event.field in identity:
            # the forms print the corrected identity; a corrected name is matched with the
            # amendment's signed commitment (RecordAmended v3) under the key of its new value
            identity[event.field] = event.new_value
            if event.field == "name":
                identity["name_commitment_key"] = (
                    commitment_key(event.personal_salt, "new_value").hex()
                    if event.personal_salt
                    else ""
                )
        _renew_rules(step, seen)
        step["amendments"] += 1
        if event.field not in step["amended_fields"]:
            step["amended_fields"] = sorted([*step["amended_fields"], event.field])
        step["last_amended_at"] = seen.recorded_at
        doc["amendments"] += 1
        rows.put(TABLE, _row(doc))

    def _sealed(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonationRecordSealed = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["status"] = "sealed"
        doc["final_status"] = event.final_status
        doc["sealed_at"] = seen.recorded_at
        doc["sealed_position"] = seen.position
        missing = {slot["slot"] for slot in event.missing_slots}
        for slot in doc["slots"]:
            if slot["slot"] in missing:
                slot["state"] = SLOT_MISSING
            elif slot["state"] == SLOT_PENDING:
                slot["state"] = SLOT_NOT_REACHED
        rows.put(TABLE, _row(doc))


def _renew_rules(step: dict[str, Any], seen: Seen) -> None:
    """The amendment's outcomes (its step's rules re-run on the new value) replace those the
    step held for the same rules; each override is listed with its reason and who recorded it."""
    event: Donation.RecordAmended = seen.event
    renewed = {o["rule_id"]: o for o in event.rule_outcomes}
    if not renewed:
        return
    rules = step["rules"]
    rules["passed"] = [
        *(r for r in rules["passed"] if r not in renewed),
        *(r for r, o in renewed.items() if o["outcome"] == Outcome.PASS),
    ]
    rules["fired"] = [
        *(o for o in rules["fired"] if o["rule_id"] not in renewed),
        *(
            {**o, "amended_at": seen.recorded_at, "field": event.field}
            for o in event.rule_outcomes
            if o["outcome"] != Outcome.PASS
        ),
    ]
    for rule_id, reason in event.overrides.items():
        step.setdefault("overrides", []).append(
            {
                "rule_id": rule_id,
                "field": event.field,
                "value": renewed[rule_id]["value"],
                "reason": reason,
                "by": event.actor,
                "role": event.actor_role,
                "at": seen.recorded_at,
                "position": seen.position,
            }
        )


def _step_entry(seen: Seen) -> dict[str, Any]:
    meta = seen.meta
    return {
        "event_type": type(seen.event).__name__,
        "position": seen.position,
        "actor": meta["actor"],
        "actor_role": meta["actor_role"],
        "recorded_at": meta["recorded_at"],
        "values": dict(seen.values),  # amendments change this copy, not the shared one
        "rules": seen.rules,
        "amendments": 0,
        "amended_fields": [],
        "last_amended_at": None,
        "overrides": [],  # hard rules overridden by an amendment (``_renew_rules``)
    }
