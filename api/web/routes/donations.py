"""The station API: register a visit, record steps, amend, read a donation, look up a donor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.web.auth import (
    Amender,
    Ctx,
    Reader,
    Staff,
    signing_staff,
)
from api.web.models import (
    AmendedOut,
    AmendmentIn,
    DonorLookUpIn,
    RegisteredOut,
    RegistrationIn,
    StepOut,
)
from api.web.routes.common import IdempotencyKey, idempotent
from services import amend, steps, web_reads

router = APIRouter()


@router.post("/donations", status_code=201, response_model=RegisteredOut, tags=["station"])
def register(
    ctx: Ctx, who: Staff, body: RegistrationIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Register a visit at the desk, signed by the logged-in clerk."""
    staff_id = signing_staff(who)
    command = steps.RegisterDonation(staff_id=staff_id, **body.model_dump())

    def run() -> dict[str, Any]:
        return {"donation_id": str(steps.register_donation(ctx.station, command).donation_id)}

    return idempotent(ctx, who, idempotency_key, ("register", body.model_dump()), run)


@router.post("/donors/lookup", tags=["station"])
def donor_lookup(ctx: Ctx, who: Staff, body: DonorLookUpIn) -> dict[str, Any]:
    """A donor by ID number (sent in the body, not the URL): masked identity and visits."""
    command = web_reads.LookUpDonor(body.id_type, body.id_number)
    return ctx.call(lambda station: web_reads.donor_lookup(station, command))


@router.get("/donations/{donation}", tags=["station"])
def donation(ctx: Ctx, who: Reader, donation: str) -> dict[str, Any]:
    """The donation's record as it stands (number or id), personal data masked."""
    return ctx.call(lambda station: web_reads.donation_view(station, donation))


@router.get("/donations/{donation}/timeline", tags=["station"])
def timeline(ctx: Ctx, who: Reader, donation: str) -> dict[str, Any]:
    """Each event of the donation: signer, time, chain position, timestamp batch, and the check
    of the event's hash, link, signature and signer certificate."""
    return ctx.call(lambda station: web_reads.donation_timeline(station, donation))


@router.post(
    "/donations/{donation}/steps/{step}",
    status_code=201,
    response_model=StepOut,
    tags=["station"],
)
def record_step(
    ctx: Ctx,
    who: Staff,
    donation: str,
    step: str,
    payload: dict[str, Any],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record a step (``services.steps.STEP_NAMES``) with its values, signed by the logged-in
    staff member's own certificate; the rule outcomes are those of the service."""
    staff_id = signing_staff(who)
    command = steps.RecordStep(donation, step, payload, staff_id)

    def run() -> dict[str, Any]:
        done = steps.record_step(ctx.station, command)
        return {
            "donation_id": str(done.donation_id),
            "donation_no": done.donation_no,
            "step": done.step,
            "version": done.version,
            "event_hash": done.event_hash,
            "status": done.status,
            "rule_outcomes": [dict(o) for o in done.rule_outcomes],
        }

    parts = ("step", donation, step, payload)
    return idempotent(ctx, who, idempotency_key, parts, run)


@router.post(
    "/donations/{donation}/amendments",
    status_code=201,
    response_model=AmendedOut,
    tags=["station"],
)
def amend_record(
    ctx: Ctx,
    who: Amender,
    donation: str,
    body: AmendmentIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Correct one value with a reason, signed by the logged-in user's own certificate."""
    staff_id = signing_staff(who)
    command = amend.AmendRecord(
        donation,
        body.step,
        body.field,
        body.new_value,
        body.reason,
        staff_id,
        body.override_reason,
        tuple(body.acknowledged),
    )

    def run() -> dict[str, Any]:
        done = amend.amend_record(ctx.station, command)
        return {
            "donation_id": str(done.donation_id),
            "donation_no": done.donation_no,
            "step": done.step,
            "field": done.field,
            "old_value": web_reads.mask_field(done.field, done.old_value),
            "new_value": web_reads.mask_field(done.field, done.new_value),
            "version": done.version,
            "event_hash": done.event_hash,
            "rule_outcomes": [dict(o) for o in done.rule_outcomes],
        }

    parts = ("amend", donation, body.model_dump())
    return idempotent(ctx, who, idempotency_key, parts, run)
