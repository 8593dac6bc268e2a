"""DonorRecord: a donor's identity (ID number masked), visits, deferrals and next eligible dates.

Next eligible dates are computed by product from the collections in the record, with the
interval and yearly-cap rules of the GB 18467-2011 rule set (``ledger/rulesets``), the way the
application evaluates them at assessment (``LedgerApp.history_values``), on calendar days in
station time:

* platelets after platelets: last platelet collection + ``interval.platelets_to_platelets.min``
  days (14);
* whole blood after platelets: last platelet collection +
  ``interval.platelets_to_whole_blood.min`` days (28);
* at most ``cap.platelet_donations_365d.max`` (24) platelet donations in a rolling 365-day window,
  the new one included: when 24 or more are on record, the day the 24th most recent leaves the
  window;
* at most ``cap.apheresis_volume_365d.max`` ml (10,000) of product and plasma in the window, the
  new donation's planned volume (250 ml + planned plasma: 200 ml for ``platelets_plasma``)
  included: the day enough old collections have left the window.

A date is the earliest the record allows; the physician's assessment still decides. ``None``
means no recorded collection restricts the product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ledger.donation import Donation, Step
from ledger.registry import Donor
from ledger.rules import PLATELET_PRODUCTS, RuleSet, load_rule_set
from projections.base import Handler, LedgerProjection, Seen
from projections.store import RowCache, Table, ViewStore, document, row_doc, text

TABLE = "donor_record"
VISITS = "donor_visit"
DONORS = Table(TABLE, (text("donor_id"), text("id_number_masked"), document()))
VISIT_INDEX = Table(VISITS, (text("donation_id"), text("donor_id")))

#: Products a next eligible date is given for (``ledger.rules.PRODUCTS``).
PRODUCT_ORDER = (
    "platelets_single",
    "platelets_double",
    "platelets_plasma",
    "plasma",
    "whole_blood",
)
#: The application's planning estimate of a new donation's volume (LedgerApp.history_values).
PLANNED_BASE_ML = 250
PLANNED_PLASMA_ML = {"platelets_plasma": 200}
#: Collection values that, when amended, change the donor record.
COLLECTION_FIELDS = ("product_volume_ml", "plasma_ml", "doses")

R_P2P = "interval.platelets_to_platelets.min"
R_P2WB = "interval.platelets_to_whole_blood.min"
R_COUNT = "cap.platelet_donations_365d.max"
R_VOLUME = "cap.apheresis_volume_365d.max"


@dataclass(frozen=True)
class EligibilityLimits:
    rule_set: str
    platelets_after_platelets_days: int
    whole_blood_after_platelets_days: int
    platelet_donations_per_window: int
    volume_per_window_ml: int
    window_days: int = 365

    @classmethod
    def from_rule_set(cls, rule_set: RuleSet) -> EligibilityLimits:
        def limit(rule_id: str) -> int:
            value = rule_set.rule(rule_id).limit
            assert not isinstance(value, tuple)
            return int(value)

        return cls(
            rule_set=rule_set.ref,
            platelets_after_platelets_days=limit(R_P2P),
            whole_blood_after_platelets_days=limit(R_P2WB),
            platelet_donations_per_window=limit(R_COUNT),
            volume_per_window_ml=limit(R_VOLUME),
        )


def next_eligible(
    visits: Sequence[Mapping[str, Any]], limits: EligibilityLimits
) -> dict[str, dict[str, Any]]:
    """Earliest date per product that the record's collections allow, and the binding rule."""
    collected = sorted(
        (
            date.fromisoformat(v["collected_on"]),
            int(v["product_volume_ml"] or 0) + int(v["plasma_ml"] or 0),
            v["product"] in PLATELET_PRODUCTS,
        )
        for v in visits
        if v.get("collected_on")
    )
    platelets = [day for day, _, is_platelet in collected if is_platelet]
    leaves = timedelta(days=limits.window_days + 1)  # first day a collection is out of window
    result: dict[str, dict[str, Any]] = {}
    for product in PRODUCT_ORDER:
        bounds: list[tuple[date, str]] = []
        if platelets and product in PLATELET_PRODUCTS:
            days = limits.platelets_after_platelets_days
            bounds.append((platelets[-1] + timedelta(days=days), R_P2P))
            n = limits.platelet_donations_per_window
            if len(platelets) >= n:
                bounds.append((platelets[-n] + leaves, R_COUNT))
        if platelets and product == "whole_blood":
            days = limits.whole_blood_after_platelets_days
            bounds.append((platelets[-1] + timedelta(days=days), R_P2WB))
        if product != "whole_blood" and collected:
            allowed = limits.volume_per_window_ml - PLANNED_BASE_ML
            allowed -= PLANNED_PLASMA_ML.get(product, 0)
            volumes = [volume for _, volume, _ in collected]
            drop = 0
            while drop < len(volumes) and sum(volumes[drop:]) > allowed:
                drop += 1
            if drop:
                bounds.append((collected[drop - 1][0] + leaves, R_VOLUME))
        if bounds:
            day, rule = max(bounds)
            result[product] = {"date": day.isoformat(), "rule": rule}
        else:
            result[product] = {"date": None, "rule": None}
    return result


class DonorRecordProjection(LedgerProjection):
    name = "donor_record"
    title = "Donor records"
    tables = (DONORS, VISIT_INDEX)

    def __init__(self, view: ViewStore, limits: EligibilityLimits | None = None) -> None:
        self.limits = limits or EligibilityLimits.from_rule_set(load_rule_set())
        super().__init__(view)

    def handlers(self) -> Mapping[type, Handler]:
        return {
            Donor.DonorEnrolled: self._enrolled,
            Donation.DonorRegistered: self._registered,
            Donation.EligibilityAssessed: self._assessed,
            Donation.DonationNumberAssigned: self._numbered,
            Donation.ApheresisCollected: self._collected,
            Donation.RecordAmended: self._amended,
            Donation.DonationRecordSealed: self._sealed,
        }

    def _put(self, doc: dict[str, Any], rows: RowCache) -> None:
        rows.put(
            TABLE,
            {
                "donor_id": doc["donor_id"],
                "id_number_masked": doc["identity"]["id_number_masked"],
                "doc": doc,
            },
        )

    def _new(self, donor_id: str, identity: dict[str, Any], donor_ref: str) -> dict[str, Any]:
        return {
            "donor_id": donor_id,
            "donor_ref": donor_ref,
            "identity": identity,
            "enrolled_at": None,
            "visits": [],
            "deferrals": [],
            "collections": 0,
            "next_eligible": next_eligible([], self.limits),
            "rule_set": self.limits.rule_set,
        }

    def _enrolled(self, seen: Seen, rows: RowCache) -> None:
        event: Donor.DonorEnrolled = seen.event
        donor_id = seen.key
        row = rows.get(TABLE, donor_id)
        identity = {
            "id_type": event.id_type,
            "id_number_masked": event.id_number_masked,
            "name": event.name,
            "sex": event.sex,
            "birth_date": event.birth_date,
        }
        doc = row["doc"] if row else self._new(donor_id, identity, event.donor_ref)
        doc["identity"] = identity
        doc["enrolled_at"] = seen.recorded_at
        self._put(doc, rows)

    def _registered(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonorRegistered = seen.event
        donation_id = seen.key
        rows.put(VISITS, {"donation_id": donation_id, "donor_id": event.donor_id})
        row = rows.get(TABLE, event.donor_id)
        if row is None:  # registration without an enrolment event: identity from the visit
            identity = {
                "id_type": event.id_type,
                "id_number_masked": event.id_number_masked,
                "name": event.name,
                "sex": event.sex,
                "birth_date": event.birth_date,
            }
            doc = self._new(event.donor_id, identity, event.donor_ref)
        else:
            doc = row["doc"]
        doc["visits"].append(
            {
                "donation_id": donation_id,
                "donation_no": "",
                "station_id": event.station_id,
                "registered_at": seen.recorded_at,
                "product": event.product_requested,
                "channel": event.channel,
                "status": "open",
                "decision": "",
                "final_status": "",
                "collected_at": None,
                "collected_on": None,
                "product_volume_ml": None,
                "plasma_ml": None,
                "doses": None,
            }
        )
        self._put(doc, rows)

    def _visit(self, seen: Seen, rows: RowCache) -> tuple[dict[str, Any], dict[str, Any]] | None:
        donation_id = seen.key
        index = rows.get(VISITS, donation_id)
        if index is None:
            return None
        doc = row_doc(rows, TABLE, index["donor_id"])
        if doc is None:
            return None
        for visit in doc["visits"]:
            if visit["donation_id"] == donation_id:
                return doc, visit
        return None

    def _assessed(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.EligibilityAssessed = seen.event
        found = self._visit(seen, rows)
        if found is None:
            return
        doc, visit = found
        visit["decision"] = event.decision
        if event.decision == "deferred":
            visit["status"] = "deferred"
            doc["deferrals"].append(
                {
                    "donation_id": visit["donation_id"],
                    "deferred_at": seen.recorded_at,
                    "deferred_on": seen.day,
                    "reason": event.defer_reason,
                    "by": seen.staff,
                    "position": seen.position,
                }
            )
        self._put(doc, rows)

    def _numbered(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonationNumberAssigned = seen.event
        found = self._visit(seen, rows)
        if found is None:
            return
        doc, visit = found
        visit["donation_no"] = event.donation_no
        self._put(doc, rows)

    def _collected(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.ApheresisCollected = seen.event
        found = self._visit(seen, rows)
        if found is None:
            return
        doc, visit = found
        visit["collected_at"] = seen.recorded_at
        visit["collected_on"] = seen.day
        for field in COLLECTION_FIELDS:
            visit[field] = getattr(event, field)
        self._refresh(doc, rows)

    def _amended(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.RecordAmended = seen.event
        if event.step != Step.COLLECTION or event.field not in COLLECTION_FIELDS:
            return
        found = self._visit(seen, rows)
        if found is None:
            return
        doc, visit = found
        visit[event.field] = event.new_value
        self._refresh(doc, rows)

    def _sealed(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonationRecordSealed = seen.event
        found = self._visit(seen, rows)
        if found is None:
            return
        doc, visit = found
        visit["status"] = "sealed"
        visit["final_status"] = event.final_status
        self._put(doc, rows)

    def _refresh(self, doc: dict[str, Any], rows: RowCache) -> None:
        doc["collections"] = sum(1 for v in doc["visits"] if v["collected_on"])
        doc["next_eligible"] = next_eligible(doc["visits"], self.limits)
        self._put(doc, rows)
