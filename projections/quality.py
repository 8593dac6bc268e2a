"""QualityMetrics: the facts every rate in docs/metrics.md is counted from.

One row per countable thing, each with the day (station time) it is assigned to, its station,
step, staff member and role:

* ``donation``: a donation, on its registration day; ``amendments`` made to it so far;
* ``step``: a recorded workflow step (registration included), on the day it was recorded, by its
  recorder; the values it recorded (``fields``), amendments to it and the distinct fields they
  changed (``name`` lists them), its acknowledged alerts and overridden hard rules, and, for
  eligibility, the decision (``state``);
* ``amendment``: one ``RecordAmended``, on its own day, by the amending person (``name``: the
  field), with the hard rules its new value fails that it overrides (``overrides``) and the
  plausibility alerts it acknowledges (``alerts``);
* ``slot``: one co-signature slot of a sealed donation, on the sealing day, with its state
  (``signed``, ``missing``, ``not_required``, ``not_reached``) and accountable person (``name``:
  the slot).

Rates are sums over these rows (``projections.quality_report``), so a person can recount each
one from the donation and audit records the rows name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.donation import Donation, Step
from ledger.rules import Outcome
from projections.base import Handler, LedgerProjection, Seen, step_event_classes, value_fields
from projections.store import Row, RowCache, Table, document, integer, text

TABLE = "quality_fact"
FACTS = Table(
    TABLE,
    (
        text("fact_id"),
        text("kind"),
        text("day"),
        text("station_id"),
        text("step"),
        text("staff"),
        text("role"),
        text("donation_id"),
        text("donation_no"),
        text("state"),
        text("name"),
        integer("amendments"),
        integer("fields"),
        integer("fields_amended"),
        integer("alerts"),
        integer("overrides"),
        document("detail"),
    ),
    indexes=("day", "donation_id"),
)

DONATION = "donation"
STEP = "step"
AMENDMENT = "amendment"
SLOT = "slot"
UNASSIGNED = "unassigned"


def _key(donation_id: str, kind: str, name: str = "") -> str:
    return f"{donation_id}/{kind}/{name}" if name else f"{donation_id}/{kind}"


def _fact(kind: str, key: str, seen: Seen, station_id: str) -> Row:
    return {
        "fact_id": key,
        "kind": kind,
        "day": seen.day,
        "station_id": station_id,
        "step": "",
        "staff": seen.staff,
        "role": seen.event.actor_role,
        "donation_id": seen.key,
        "donation_no": "",
        "state": "",
        "name": "",
        "amendments": 0,
        "fields": 0,
        "fields_amended": 0,
        "alerts": 0,
        "overrides": 0,
        "detail": None,
    }


class QualityMetricsProjection(LedgerProjection):
    name = "quality_metrics"
    title = "Quality metrics"
    tables = (FACTS,)
    version = 2  # 2: an amendment counts the hard rules it overrides and alerts it acknowledges

    def handlers(self) -> Mapping[type, Handler]:
        handlers: dict[type, Handler] = {cls: self._step for cls in step_event_classes()}
        handlers.update(
            {
                Donation.DonorRegistered: self._registered,
                Donation.SignatureApplied: self._signature,
                Donation.RecordAmended: self._amended,
                Donation.DonationRecordSealed: self._sealed,
            }
        )
        return handlers

    def _registered(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonorRegistered = seen.event
        donation = _fact(DONATION, _key(seen.key, DONATION), seen, event.station_id)
        donation.update(step=Step.REGISTRATION.value, state="open")
        # The donation row also keeps what its later facts need (working state, digested too).
        donation["detail"] = {
            "slots": [dict(slot) for slot in event.required_slots],
            "recorders": {},
            "roles": {},
            "signed": {},
        }
        self._record_step(seen, Step.REGISTRATION.value, donation, rows)

    def _step(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.StepEvent = seen.event
        donation = rows.get(TABLE, _key(seen.key, DONATION))
        if donation is None:
            return
        step = self._record_step(seen, event.STEP, donation, rows)
        if isinstance(event, Donation.EligibilityAssessed):
            step["state"] = event.decision
            if event.decision == "deferred":
                donation["state"] = "deferred"
        elif isinstance(event, Donation.DonationNumberAssigned):
            donation["donation_no"] = event.donation_no

    def _record_step(self, seen: Seen, step_name: str, donation: Row, rows: RowCache) -> Row:
        event = seen.event
        staff = seen.staff
        step = {
            "fact_id": _key(seen.key, STEP, step_name),
            "kind": STEP,
            "day": seen.day,
            "station_id": donation["station_id"],
            "step": step_name,
            "staff": staff,
            "role": event.actor_role,
            "donation_id": seen.key,
            "donation_no": "",
            "state": "",
            "name": "",
            "amendments": 0,
            "fields": len(value_fields(type(event))),
            "fields_amended": 0,
            "alerts": seen.count_fired(Outcome.ACKNOWLEDGED),
            "overrides": seen.count_fired(Outcome.OVERRIDDEN),
            "detail": None,
        }
        rows.put(TABLE, step)
        detail = donation["detail"]
        detail["recorders"][step_name] = staff
        detail["roles"].setdefault(event.actor_role, staff)
        rows.put(TABLE, donation)
        return step

    def _signature(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.SignatureApplied = seen.event
        donation = rows.get(TABLE, _key(seen.key, DONATION))
        if donation is None:
            return
        detail = donation["detail"]
        detail["signed"][event.slot] = seen.staff
        detail["roles"].setdefault(event.actor_role, seen.staff)
        rows.put(TABLE, donation)

    def _amended(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.RecordAmended = seen.event
        donation = rows.get(TABLE, _key(seen.key, DONATION))
        if donation is None:
            return
        donation["amendments"] += 1
        rows.put(TABLE, donation)
        key = _key(seen.key, AMENDMENT, str(event.originator_version))
        amendment = _fact(AMENDMENT, key, seen, donation["station_id"])
        amendment.update(
            step=event.step,
            donation_no=donation["donation_no"],
            name=event.field,
            amendments=1,
            overrides=len(event.overrides),
            alerts=seen.count_fired(Outcome.ACKNOWLEDGED),
        )
        rows.put(TABLE, amendment)
        step = rows.get(TABLE, _key(seen.key, STEP, event.step))
        if step is not None:
            step["amendments"] += 1
            amended = set(filter(None, step["name"].split(",")))
            amended.add(event.field)
            step["name"] = ",".join(sorted(amended))  # the distinct fields amended
            step["fields_amended"] = len(amended)
            rows.put(TABLE, step)

    def _sealed(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonationRecordSealed = seen.event
        donation = rows.get(TABLE, _key(seen.key, DONATION))
        if donation is None:
            return
        donation["state"] = f"sealed:{event.final_status}"
        rows.put(TABLE, donation)
        detail = donation["detail"]
        missing = {slot["slot"] for slot in event.missing_slots}
        for slot in detail["slots"]:
            name = slot["slot"]
            if slot["state"] != "required":
                state = "not_required"
            elif name in missing:
                state = "missing"
            elif name in detail["signed"]:
                state = "signed"
            else:
                state = "not_reached"
            fact = _fact(SLOT, _key(seen.key, SLOT, name), seen, donation["station_id"])
            fact.update(
                step=slot["step"],
                staff=_accountable(slot, state, detail),
                role=slot["role"],
                donation_no=donation["donation_no"],
                state=state,
                name=name,
            )
            rows.put(TABLE, fact)


def _accountable(slot: Mapping[str, str], state: str, detail: Mapping[str, Any]) -> str:
    """Who answers for a slot (docs/metrics.md): for a donor slot the step's recorder (who
    should obtain the donor's signature); for a staff slot its signer, or if unsigned the person
    who acted in that role on the donation."""
    if slot["role"] == "donor":
        return str(detail["recorders"].get(slot["step"], UNASSIGNED))
    if state == "signed":
        return str(detail["signed"][slot["slot"]])
    return str(detail["roles"].get(slot["role"], UNASSIGNED))
