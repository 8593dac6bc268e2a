"""Regional donor history (献血史查询, 献血屏蔽查询): the provincial answer, as evidence.

At registration the station asks the regional service for the donor's donations and deferrals
elsewhere; the answer is recorded as a signed `DonorHistoryChecked` event (one per donation,
aggregate id derived from the donation id) by the registrar: the source, the query time, the
donations (date, product, site) and the deferrals (start, end or none, reason, site). The
eligibility assessment reads it (`regional_values`) and the rule set's regional rules judge it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from uuid import UUID, uuid5

from ledger.events import LedgerAggregate, Signer, WorkflowError, require_role

_NAMESPACE = UUID("6f1c2a52-8d0e-4c1b-9a53-2b1f0e7d4c61")
HISTORY_ROLES = ("registration_clerk", "system")
PLATELET_PRODUCTS = ("platelets", "platelets_single", "platelets_double", "platelets_plasma")
PRODUCTS = (*PLATELET_PRODUCTS, "plasma", "whole_blood")


def history_check_id_for(donation_id: UUID | str) -> UUID:
    return uuid5(_NAMESPACE, f"donor-history:{donation_id}")


def _day(value: Any, what: str) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError as exc:
        raise WorkflowError(f"regional history: {what} {value!r} is not a date") from exc


def checked_donations(donations: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for entry in donations:
        product = str(entry.get("product", ""))
        if product not in PRODUCTS:
            raise WorkflowError(f"regional history: unknown product {product!r}")
        out.append(
            {"date": _day(entry.get("date"), "donation date"), "product": product,
             "site": str(entry.get("site", ""))}
        )  # fmt: skip
    return sorted(out, key=lambda d: d["date"])


def checked_deferrals(deferrals: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for entry in deferrals:
        until = entry.get("until")
        out.append(
            {"from": _day(entry.get("from"), "deferral start"),
             "until": "" if until in (None, "") else _day(until, "deferral end"),
             "reason": str(entry.get("reason", "")), "site": str(entry.get("site", ""))}
        )  # fmt: skip
    return out


class DonorHistoryCheck(LedgerAggregate):
    """The regional answer for one donation (opened and closed by its only event)."""

    def __init__(self) -> None:
        self.donation_id = ""
        self.source = ""
        self.queried_at = ""
        self.donations: list[dict[str, str]] = []
        self.deferrals: list[dict[str, str]] = []

    class DonorHistoryChecked(LedgerAggregate.Created):
        donation_id: str
        donor_ref: str
        id_number_masked: str
        source: str
        queried_at: str
        donations: list[dict[str, str]]
        deferrals: list[dict[str, str]]

        def apply_state(self, aggregate: DonorHistoryCheck) -> None:
            aggregate.donation_id = self.donation_id
            aggregate.source = self.source
            aggregate.queried_at = self.queried_at
            aggregate.donations = list(self.donations)
            aggregate.deferrals = list(self.deferrals)

    @classmethod
    def check(
        cls,
        signer: Signer,
        donation_id: UUID,
        *,
        donor_ref: str,
        id_number_masked: str,
        source: str,
        queried_at: str,
        donations: Sequence[Mapping[str, Any]],
        deferrals: Sequence[Mapping[str, Any]],
    ) -> DonorHistoryCheck:
        require_role(signer, HISTORY_ROLES, "a regional donor-history check")
        if not source.strip():
            raise WorkflowError("a regional donor-history check names its source")
        return cls._open(
            cls.DonorHistoryChecked,
            signer,
            history_check_id_for(donation_id),
            donation_id=str(donation_id),
            donor_ref=donor_ref,
            id_number_masked=id_number_masked,
            source=source.strip(),
            queried_at=queried_at,
            donations=checked_donations(donations),
            deferrals=checked_deferrals(deferrals),
        )

    def regional_values(self, on: date) -> dict[str, float | int | None]:
        """Rule inputs on the assessment day: days since the last platelet and whole-blood
        donation elsewhere (None: none reported), and the deferrals still open."""

        def days_since(products: Sequence[str]) -> int | None:
            days = [
                (on - date.fromisoformat(d["date"])).days
                for d in self.donations
                if d["product"] in products
            ]
            return min(days) if days else None

        open_deferrals = sum(
            1 for d in self.deferrals if not d["until"] or date.fromisoformat(d["until"]) >= on
        )
        return {
            "days_since_last_regional_platelet_donation": days_since(PLATELET_PRODUCTS),
            "days_since_last_whole_blood_donation": days_since(("whole_blood",)),
            "open_regional_deferrals": open_deferrals,
        }
