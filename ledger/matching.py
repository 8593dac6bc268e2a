"""Matched recruitment (血小板基因配型招募): a hospital's request for a named patient.

The request is a signed `MatchedRecruitmentRequested` event of a recruiter: hospital, the
patient masked (surname only) and by HMAC reference, ABO/RhD and the HPA/HLA types as the
hospital sent them. Every donor contacted for it is a `RecruitmentContacted` event carrying the
request id.

A donor's platelet typing (血小板基因配型库) is a signed `DonorTyped` event of a screening
technician: the HLA-A and -B antigens and the HPA genotypes the laboratory found. A later typing
of the same donor supersedes the earlier one (both stay in the ledger).

Compatibility (`compatibility`) is the usual rule for HLA/HPA-selected platelets, written here
because no library of the field computes it: a donor is HPA-incompatible when, in a system typed
for both, the donor carries an allele the patient lacks (the patient could form or already has
antibodies against it); the HLA grade is the number of the donor's HLA-A/B antigens (first field,
antigen level) that the patient does not carry, 0 being the best match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from ledger.events import LedgerAggregate, Signer, WorkflowError, require_role
from ledger.recruitment import RECRUITER_ROLES

#: Who records a donor's typing: the laboratory's screening technicians.
TYPING_ROLES = ("screening_technician",)

_HLA = re.compile(r"^(A|B)\*?(\d{1,3})(?::\d{2,3})*$", re.IGNORECASE)
_HPA = re.compile(r"^(?:HPA-?)?(\d{1,2})(?:([ab])(?:\1)?([ab])|:([ab])([ab]))$", re.IGNORECASE)


def parse_hla(text: str) -> tuple[str, ...]:
    """HLA-A/B antigens as ``A*02`` (first field), sorted and without repeats; ``A*02:01``,
    ``A2`` and ``a*02`` are read alike. At most two antigens a locus; anything else is refused."""
    out: set[str] = set()
    for token in re.split(r"[\s,;]+", text.strip()):
        if not token:
            continue
        m = _HLA.match(token)
        if not m:
            raise WorkflowError(f"HLA {token!r}: an HLA-A or -B allele such as A*02:01 or B*46")
        out.add(f"{m.group(1).upper()}*{int(m.group(2)):02d}")
    for locus in ("A", "B"):
        if sum(1 for a in out if a.startswith(locus)) > 2:
            raise WorkflowError(f"HLA-{locus}: more than two antigens given")
    return tuple(sorted(out))


def parse_hpa(text: str) -> dict[str, str]:
    """HPA genotypes by system, ``{"HPA-1": "ab"}``; ``1a1b``, ``HPA-1a1b`` and ``HPA-1:ab`` are
    read alike. A system given twice, or anything else, is refused."""
    out: dict[str, str] = {}
    for token in re.split(r"[\s,;]+", text.strip()):
        if not token:
            continue
        m = _HPA.match(token)
        if not m:
            raise WorkflowError(f"HPA {token!r}: a genotype such as 1a1b, HPA-1a1a or HPA-15:ab")
        system = f"HPA-{int(m.group(1))}"
        alleles = "".join(sorted((m.group(2) or m.group(4)) + (m.group(3) or m.group(5)))).lower()
        if system in out:
            raise WorkflowError(f"{system} given twice")
        out[system] = alleles
    return out


@dataclass(frozen=True)
class Compatibility:
    #: "compatible", "incompatible", "partly typed" (a system of the patient's not typed for
    #: the donor, none incompatible) or "not requested" (the request gives no HPA).
    hpa: str
    #: The donor's HLA-A/B antigens the patient lacks; None when the request gives no HLA.
    hla_mismatches: int | None
    #: The systems where the donor carries an allele the patient lacks.
    hpa_conflicts: tuple[str, ...] = ()

    def describe(self) -> str:
        hla = "HLA not requested" if self.hla_mismatches is None else (
            f"HLA {self.hla_mismatches} mismatch" + ("" if self.hla_mismatches == 1 else "es")
        )  # fmt: skip
        hpa = f"HPA {self.hpa}"
        if self.hpa_conflicts:
            hpa += f" ({', '.join(self.hpa_conflicts)})"
        return f"{hla}; {hpa}"


def compatibility(
    patient_hla: tuple[str, ...],
    patient_hpa: dict[str, str],
    donor_hla: tuple[str, ...],
    donor_hpa: dict[str, str],
) -> Compatibility:
    """How well a typed donor's platelets suit the patient (see the module's text)."""
    conflicts = tuple(
        system
        for system, alleles in sorted(patient_hpa.items())
        if system in donor_hpa and not set(donor_hpa[system]) <= set(alleles)
    )
    if not patient_hpa:
        hpa = "not requested"
    elif conflicts:
        hpa = "incompatible"
    elif all(system in donor_hpa for system in patient_hpa):
        hpa = "compatible"
    else:
        hpa = "partly typed"
    mismatches = None if not patient_hla else sum(1 for a in donor_hla if a not in set(patient_hla))
    return Compatibility(hpa, mismatches, conflicts)


class DonorTyping(LedgerAggregate):
    """One laboratory typing of one donor (by the donor's HMAC reference)."""

    def __init__(self) -> None:
        self.donor_ref = ""
        self.hla: list[str] = []
        self.hpa: dict[str, str] = {}

    class DonorTyped(LedgerAggregate.Created):
        donor_ref: str
        id_number_masked: str
        hla: list[str]
        hpa: dict[str, str]
        laboratory: str
        method: str

        def apply_state(self, aggregate: DonorTyping) -> None:
            aggregate.donor_ref = self.donor_ref
            aggregate.hla = list(self.hla)
            aggregate.hpa = dict(self.hpa)

    @classmethod
    def record(
        cls,
        signer: Signer,
        typing_id: UUID,
        *,
        donor_ref: str,
        id_number_masked: str,
        hla: str,
        hpa: str,
        laboratory: str,
        method: str,
    ) -> DonorTyping:
        require_role(signer, TYPING_ROLES, "a donor's HLA/HPA typing")
        antigens, genotypes = parse_hla(hla), parse_hpa(hpa)
        if not (antigens or genotypes):
            raise WorkflowError("a typing gives the HLA or HPA result")
        if not laboratory.strip():
            raise WorkflowError("a typing names the laboratory")
        return cls._open(
            cls.DonorTyped,
            signer,
            typing_id,
            donor_ref=donor_ref,
            id_number_masked=id_number_masked,
            hla=list(antigens),
            hpa=genotypes,
            laboratory=laboratory.strip(),
            method=method.strip(),
        )


ABO_GROUPS = ("A", "B", "O", "AB")


class MatchRequest(LedgerAggregate):
    def __init__(self) -> None:
        self.abo = ""
        self.hospital = ""
        self.hla = ""
        self.hpa = ""

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
            aggregate.hla = self.hla
            aggregate.hpa = self.hpa

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
        parse_hla(hla), parse_hpa(hpa)  # refused here, not at the first ranking
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
