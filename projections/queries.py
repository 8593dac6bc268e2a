"""Reading the views: a donation by number, its audit trail, a donor, the archive queue.

Reads go to the live tables only; callers catch the views up first (``Projector.catch_up``) when
they need them current.
"""

from __future__ import annotations

from typing import Any

from projections.archive_queue import ITEMS
from projections.audit_trail import SIGNER_TABLE, TRAILS
from projections.donation_record import RECORDS
from projections.donor_record import DONORS
from projections.runner import Views


def donation_record(views: Views, donation_no: str) -> dict[str, Any] | None:
    rows = views["donation_record"].view.select(RECORDS, {"donation_no": donation_no})
    return dict(rows[0]["doc"]) if rows else None


def donation_record_by_id(views: Views, donation_id: str) -> dict[str, Any] | None:
    rows = views["donation_record"].view.select(RECORDS, {"donation_id": donation_id})
    return dict(rows[0]["doc"]) if rows else None


def donation_records(views: Views, *, numbered: bool) -> list[dict[str, Any]]:
    """Every donation with a donation number (``numbered``) or every one without (deferred)."""
    table = views["donation_record"].view
    if not numbered:
        return [dict(r["doc"]) for r in table.select(RECORDS, {"donation_no": ""})]
    return [dict(r["doc"]) for r in table.select(RECORDS, {}) if r["donation_no"]]


def audit_trail(views: Views, donation_no: str) -> dict[str, Any] | None:
    rows = views["audit_trail"].view.select(TRAILS, {"donation_no": donation_no})
    return dict(rows[0]["doc"]) if rows else None


def audit_trail_by_id(views: Views, donation_id: str) -> dict[str, Any] | None:
    rows = views["audit_trail"].view.select(TRAILS, {"donation_id": donation_id})
    return dict(rows[0]["doc"]) if rows else None


def audit_trails(views: Views) -> list[dict[str, Any]]:
    """Every donation's audit trail (the amendments report reads them all)."""
    return [dict(r["doc"]) for r in views["audit_trail"].view.select(TRAILS, {})]


def signers(views: Views) -> dict[str, dict[str, Any]]:
    """Staff certificates by subject (``STAFF:P001``), the latest issued last."""
    rows = views["audit_trail"].view.select(SIGNER_TABLE, {}, order_by=("credential_id",))
    docs = sorted((r["doc"] for r in rows), key=lambda d: str(d["not_before"]))
    return {str(d["subject_id"]): d for d in docs}


def donor_record(views: Views, donor_id: str) -> dict[str, Any] | None:
    rows = views["donor_record"].view.select(DONORS, {"donor_id": donor_id})
    return dict(rows[0]["doc"]) if rows else None


def archive_queue(views: Views) -> list[dict[str, Any]]:
    """Sealed, completed donations not yet archived, oldest sealing first."""
    rows = views["archive_queue"].view.select(ITEMS, {"state": "queued"}, ("sealed_at",))
    return [dict(r["doc"]) for r in rows]
