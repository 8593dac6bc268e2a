"""Matched recruitment (血小板基因配型招募): a hospital's request for a named patient.

The request is a signed `MatchedRecruitmentRequested` event of a recruiter: hospital, the
patient masked (surname only) and by HMAC reference, ABO/RhD and the HPA/HLA types as the
hospital sent them. Every donor contacted for it is a `RecruitmentContacted` event carrying the
request id.
"""

from __future__ import annotations

from uuid import UUID

from ledger.events import LedgerAggregate, Signer, WorkflowError, require_role
from ledger.recruitment import RECRUITER_ROLES

ABO_GROUPS = ("A", "B", "O", "AB")


class MatchRequest(LedgerAggregate):
    def __init__(self) -> None:
        self.abo = ""
        self.hospital = ""

    class MatchedRecruitmentRequested(LedgerAggregate.Created):
        hospital: str
        patient_ref: str
        patient_name_masked: str
        abo: str
        rhd: str
        hla: str
        hpa: str

        def apply_state(self, aggregate: MatchRequest) -> None:
            aggregate.abo = self.abo
            aggregate.hospital = self.hospital

    @classmethod
    def request(
        cls,
        signer: Signer,
        request_id: UUID,
        *,
        hospital: str,
        patient_ref: str,
        patient_name_masked: str,
        abo: str,
        rhd: str,
        hla: str,
        hpa: str,
    ) -> MatchRequest:
        require_role(signer, RECRUITER_ROLES, "a matched-recruitment request")
        if not hospital.strip():
            raise WorkflowError("a matched-recruitment request names the hospital")
        if abo not in ABO_GROUPS:
            raise WorkflowError(f"ABO {abo!r}: one of {', '.join(ABO_GROUPS)}")
        if rhd not in ("+", "-"):
            raise WorkflowError(f"RhD {rhd!r}: + or -")
        if not (hla.strip() or hpa.strip()):
            raise WorkflowError("a matched-recruitment request gives the HLA or HPA type")
        return cls._open(
            cls.MatchedRecruitmentRequested,
            signer,
            request_id,
            hospital=hospital.strip(),
            patient_ref=patient_ref,
            patient_name_masked=patient_name_masked,
            abo=abo,
            rhd=rhd,
            hla=hla.strip(),
            hpa=hpa.strip(),
        )
