"""Recruitment contacts: each call or message to a donor is a signed `RecruitmentContacted` event.

A contact is personal data about the donor and must be as auditable as the donation: the
recruiter (a staff member whose certificate carries the ``recruiter`` role) signs it, and it
joins the global hash chain like every other event. The donor is named by the HMAC reference
and the masked ID number only.
"""

from __future__ import annotations

from uuid import UUID

from ledger.events import LedgerAggregate, Signer, WorkflowError, require_role

RECRUITER_ROLES = ("recruiter",)
CONTACT_CHANNELS = ("phone", "sms", "app", "wechat")
OUTCOMES = ("agreed", "declined", "unreachable", "lapsed")


class Recruitment(LedgerAggregate):
    """One contact with a donor (the aggregate is opened and closed by its only event)."""

    def __init__(self) -> None:
        self.donor_ref = ""
        self.outcome = ""
        self.request_id = ""

    class RecruitmentContacted(LedgerAggregate.Created):
        donor_ref: str
        id_number_masked: str
        channel: str
        outcome: str
        reason: str
        request_id: str  # a matched-recruitment request, "" for ordinary recruitment

        def apply_state(self, aggregate: Recruitment) -> None:
            aggregate.donor_ref = self.donor_ref
            aggregate.outcome = self.outcome
            aggregate.request_id = self.request_id

    @classmethod
    def contact(
        cls,
        signer: Signer,
        contact_id: UUID,
        *,
        donor_ref: str,
        id_number_masked: str,
        channel: str,
        outcome: str,
        reason: str,
        request_id: str = "",
    ) -> Recruitment:
        require_role(signer, RECRUITER_ROLES, "a recruitment contact")
        if channel not in CONTACT_CHANNELS:
            known = ", ".join(CONTACT_CHANNELS)
            raise WorkflowError(f"contact channel {channel!r}: one of {known}")
        if outcome not in OUTCOMES:
            raise WorkflowError(f"outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
        if outcome != "agreed" and not reason.strip():
            raise WorkflowError(f"a contact with outcome {outcome} needs a reason")
        return cls._open(
            cls.RecruitmentContacted,
            signer,
            contact_id,
            donor_ref=donor_ref,
            id_number_masked=id_number_masked,
            channel=channel,
            outcome=outcome,
            reason=reason.strip(),
            request_id=request_id,
        )
