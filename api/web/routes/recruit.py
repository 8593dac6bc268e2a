"""Recruitment: signed contacts with donors, statistics per month and recruiter."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.web.auth import Caller, Ctx, Staff, require, signing_staff
from api.web.models import ContactIn, MatchRequestIn, TypingIn
from services import matching, recruitable, recruitment, station_time

router = APIRouter()
StaffOrQuality = Annotated[Caller, Depends(require("staff", "quality"))]


@router.post("/recruitment/contacts", status_code=201, tags=["recruitment"])
def record_contact(ctx: Ctx, who: Staff, body: ContactIn) -> dict[str, Any]:
    """A recruiter records a contact with a donor: signed `RecruitmentContacted` (masked)."""
    command = recruitment.RecordContact(
        signing_staff(who), body.id_number, body.channel, body.outcome, body.reason,
        body.id_type, body.request_id,
    )  # fmt: skip
    done = ctx.call(lambda station: recruitment.record_contact(station, command))
    return dataclasses.asdict(done)


@router.get("/recruitment/statistics", tags=["recruitment"])
def statistics(
    ctx: Ctx,
    who: StaffOrQuality,
    start: date | None = None,
    end: date | None = None,
    window_days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> dict[str, Any]:
    """Contacts per month and recruiter by outcome; collections with a prior contact."""
    today = station_time.today()
    query = recruitment.RecruitmentStatsQuery(
        start or today.replace(day=1), end or today, window_days
    )
    return dataclasses.asdict(
        ctx.call(lambda station: recruitment.recruitment_statistics(station, query))
    )


@router.get("/recruitment/recruitable", tags=["recruitment"])
def recruitable_donors(
    ctx: Ctx,
    who: Staff,
    donor_type: str = "",
    station: str = "",
    last_from: date | None = None,
    last_to: date | None = None,
    abo: str = "",
    as_of: date | None = None,
) -> list[dict[str, Any]]:
    """Donors eligible again on ``as_of`` (today): GB 18467 interval, age, no open deferral;
    masked."""
    query = recruitable.RecruitableQuery(as_of, donor_type, station, last_from, last_to, abo)
    rows = ctx.call(lambda st: recruitable.recruitable_donors(st, query))
    return [dataclasses.asdict(r) for r in rows]


@router.post("/recruitment/match-requests", status_code=201, tags=["recruitment"])
def request_match(ctx: Ctx, who: Staff, body: MatchRequestIn) -> dict[str, Any]:
    """A hospital's matched-recruitment request for a named patient, signed by the recruiter
    who records it (`MatchedRecruitmentRequested`; the patient kept surname-only)."""
    command = matching.RequestMatch(
        signing_staff(who), body.hospital, body.patient_name, body.abo, body.rhd, body.hla,
        body.hpa,
    )  # fmt: skip
    return dataclasses.asdict(ctx.call(lambda station: matching.request_match(station, command)))


@router.get("/recruitment/match-requests", tags=["recruitment"])
def match_requests(ctx: Ctx, who: Staff) -> list[dict[str, Any]]:
    """Every matched-recruitment request, newest first, with the contacts made for it."""
    return [dataclasses.asdict(r) for r in ctx.call(matching.match_requests)]


@router.get("/recruitment/match-requests/{request_id}/donors", tags=["recruitment"])
def matched_donors(
    ctx: Ctx, who: Staff, request_id: str, as_of: date | None = None
) -> list[dict[str, Any]]:
    """The recruitable donors for the request, ranked by compatibility (typed donors by HPA,
    then HLA-A/B mismatches, then ABO; untyped ones by ABO), then recency; masked."""
    query = matching.MatchQuery(request_id, as_of)
    return [dataclasses.asdict(r) for r in ctx.call(lambda st: matching.matched_donors(st, query))]


@router.post("/recruitment/typings", status_code=201, tags=["recruitment"])
def record_typing(ctx: Ctx, who: Staff, body: TypingIn) -> dict[str, Any]:
    """The laboratory records a donor's HLA/HPA typing: a signed `DonorTyped` of the
    screening technician calling (masked ID in the answer)."""
    command = matching.RecordTyping(
        signing_staff(who), body.id_number, body.hla, body.hpa, body.laboratory, body.method,
        body.id_type,
    )  # fmt: skip
    return dataclasses.asdict(ctx.call(lambda station: matching.record_typing(station, command)))
