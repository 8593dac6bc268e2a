"""AuditTrail: for every field of every step, the original value and each amendment in order.

Each entry names who (the signer, ``actor``), when (``recorded_at``; trusted time is looked up by
``position``, see ``projections.eventtime``), why (an amendment's reason) and the signature (the
SHA-256 of the event's base64 CMS signature, and the event hash it signs). Nothing is
overwritten: an amendment is appended beside the original, so a prior value is never obscured
(21 CFR 11.10(e), EU GMP Annex 11 §9). Co-signatures, adverse reactions and the sealing are kept
with their signatures too. Staff certificates are kept so that a report can name the signer.

Stored per donation: ``steps[step] = {recorded, original, amendments[], cosignatures[]}``;
``field_trails`` turns it into one ordered trail per field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.donation import Donation, Step
from ledger.registry import SigningCredential
from projections.base import Handler, LedgerProjection, Seen, step_event_classes
from projections.store import Row, RowCache, Table, document, row_doc, text

TABLE = "audit_trail"
SIGNERS = "audit_signer"
TRAILS = Table(
    TABLE, (text("donation_id"), text("donation_no"), document()), indexes=("donation_no",)
)
SIGNER_TABLE = Table(
    SIGNERS, (text("credential_id"), text("subject_id"), document()), indexes=("subject_id",)
)

#: Steps in workflow order (the order reports print them in).
STEP_ORDER = tuple(step.value for step in Step)


def _row(doc: dict[str, Any]) -> Row:
    return {"donation_id": doc["donation_id"], "donation_no": doc["donation_no"], "doc": doc}


class AuditTrailProjection(LedgerProjection):
    name = "audit_trail"
    title = "Audit trail"
    tables = (TRAILS, SIGNER_TABLE)
    version = 2  # 2: an amendment's hard-rule overrides (rule id -> reason)

    def handlers(self) -> Mapping[type, Handler]:
        handlers: dict[type, Handler] = {cls: self._step for cls in step_event_classes()}
        handlers.update(
            {
                Donation.DonorRegistered: self._registered,
                Donation.AdverseReactionRecorded: self._reaction,
                Donation.SignatureApplied: self._signature,
                Donation.RecordAmended: self._amended,
                Donation.DonationRecordSealed: self._sealed,
                SigningCredential.StaffCertificateIssued: self._staff_certificate,
                SigningCredential.CertificateRevoked: self._revoked,
            }
        )
        return handlers

    def _registered(self, seen: Seen, rows: RowCache) -> None:
        doc: dict[str, Any] = {
            "donation_id": seen.key,
            "donation_no": "",
            "steps": {Step.REGISTRATION.value: _step(seen)},
            "reactions": [],
            "sealed": None,
        }
        rows.put(TABLE, _row(doc))

    def _step(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.StepEvent = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["steps"][event.STEP] = _step(seen)
        if isinstance(event, Donation.DonationNumberAssigned):
            doc["donation_no"] = event.donation_no
        rows.put(TABLE, _row(doc))

    def _reaction(self, seen: Seen, rows: RowCache) -> None:
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["reactions"].append({"recorded": seen.signed, "values": seen.values})
        rows.put(TABLE, _row(doc))

    def _signature(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.SignatureApplied = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        target = next(
            (
                step
                for step in doc["steps"].values()
                if step["recorded"]["version"] == event.target_version
            ),
            doc["steps"].get(event.slot.partition(":")[0]),
        )
        if target is None:
            return
        target["cosignatures"].append(
            {
                **seen.signed,
                "slot": event.slot,
                "target_version": event.target_version,
                "target_hash": event.target_hash,
            }
        )
        rows.put(TABLE, _row(doc))

    def _amended(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.RecordAmended = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None or event.step not in doc["steps"]:
            return
        doc["steps"][event.step]["amendments"].append(
            {
                **seen.signed,
                "field": event.field,
                "old_value": event.old_value,
                "new_value": event.new_value,
                "reason": event.reason,
                "prior_hash": event.prior_hash,
                "target_version": event.target_version,
                "rules_fired": seen.rules["fired"],
                "overrides": dict(event.overrides),
            }
        )
        rows.put(TABLE, _row(doc))

    def _sealed(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonationRecordSealed = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["sealed"] = {
            **seen.signed,
            "final_status": event.final_status,
            "missing_slots": [dict(slot) for slot in event.missing_slots],
        }
        rows.put(TABLE, _row(doc))

    def _staff_certificate(self, seen: Seen, rows: RowCache) -> None:
        event: SigningCredential.StaffCertificateIssued = seen.event
        rows.put(
            SIGNERS,
            {
                "credential_id": seen.key,
                "subject_id": event.subject_id,
                "doc": {
                    "subject_id": event.subject_id,
                    "name": event.name,
                    "role": event.role,
                    "serial_hex": event.serial_hex,
                    "not_before": event.not_before,
                    "not_after": event.not_after,
                    "issued": seen.signed,
                    "revoked": None,
                },
            },
        )

    def _revoked(self, seen: Seen, rows: RowCache) -> None:
        event: SigningCredential.CertificateRevoked = seen.event
        row = rows.get(SIGNERS, seen.key)
        if row is None:  # a donor certificate (not kept here)
            return
        doc = dict(row["doc"])
        doc["revoked"] = {
            **seen.signed,
            "revoked_at": event.revoked_at,
            "reason": event.reason,
        }
        rows.put(SIGNERS, {**row, "doc": doc})


def _step(seen: Seen) -> dict[str, Any]:
    return {
        "event_type": type(seen.event).__name__,
        "recorded": seen.signed,
        "original": seen.values,
        "amendments": [],
        "cosignatures": [],
    }


# -- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailEntry:
    """One link of a field's trail: the value as first recorded (``seq`` 0), or an amendment."""

    step: str
    field: str
    seq: int
    value: Any
    old_value: Any
    actor: str
    actor_role: str
    recorded_at: str
    reason: str
    position: int
    event_hash: str
    signature_sha256: str
    #: Hard rules the amended value fails, overridden with these reasons (rule id -> reason).
    overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def is_amendment(self) -> bool:
        return self.seq > 0


def ordered_steps(doc: Mapping[str, Any]) -> list[str]:
    steps: Mapping[str, Any] = doc["steps"]
    known = [s for s in STEP_ORDER if s in steps]
    return known + sorted(s for s in steps if s not in STEP_ORDER)


def field_trails(doc: Mapping[str, Any]) -> Iterator[TrailEntry]:
    """Every field of every step, in workflow order: the original, then each amendment."""
    for step_name in ordered_steps(doc):
        step = doc["steps"][step_name]
        recorded = step["recorded"]
        for field, value in step["original"].items():
            yield TrailEntry(
                step_name,
                field,
                0,
                value,
                None,
                recorded["actor"],
                recorded["actor_role"],
                recorded["recorded_at"],
                "",
                recorded["position"],
                recorded["event_hash"],
                recorded["signature_sha256"],
            )
            seq = 0
            for amendment in step["amendments"]:
                if amendment["field"] != field:
                    continue
                seq += 1
                yield TrailEntry(
                    step_name,
                    field,
                    seq,
                    amendment["new_value"],
                    amendment["old_value"],
                    amendment["actor"],
                    amendment["actor_role"],
                    amendment["recorded_at"],
                    amendment["reason"],
                    amendment["position"],
                    amendment["event_hash"],
                    amendment["signature_sha256"],
                    amendment.get("overrides", {}),
                )
