"""Booking channels: appointments and online pre-registration; the station confirms them."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.web.auth import (
    Channel,
    Ctx,
    Staff,
    signing_staff,
)
from api.web.models import BookingIn, CancelIn, PreRegistrationIn
from api.web.routes.common import IdempotencyKey, idempotent
from services import booking

router = APIRouter()


def _appointment(a: booking.Appointment) -> dict[str, Any]:
    return dataclasses.asdict(a)


def _prereg(p: booking.PreRegistration) -> dict[str, Any]:
    return dataclasses.asdict(p)


@router.post("/channel/appointments", status_code=201, tags=["booking"])
def book(ctx: Ctx, who: Channel, body: BookingIn) -> dict[str, Any]:
    """Book an appointment from a mini-program or H5 page (ID number masked in the answer)."""
    command = booking.BookAppointment(**body.model_dump())
    return _appointment(
        ctx.call(lambda station: booking.book_appointment(station, ctx.users, command))
    )


@router.post("/channel/appointments/{appointment_id}/cancel", tags=["booking"])
def cancel(ctx: Ctx, who: Channel, appointment_id: str, body: CancelIn) -> dict[str, Any]:
    with ctx.lock:
        return _appointment(booking.cancel_appointment(ctx.users, appointment_id, body.channel))


@router.post("/channel/preregistrations", status_code=201, tags=["booking"])
def pre_register(
    ctx: Ctx, who: Channel, body: PreRegistrationIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Online pre-registration with the health questionnaire; the station confirms it later."""
    command = booking.PreRegister(**body.model_dump())

    def run() -> dict[str, Any]:
        return _prereg(booking.pre_register(ctx.station, ctx.users, command))

    return idempotent(ctx, who, idempotency_key, ("prereg", body.model_dump()), run)


@router.get("/preregistrations", tags=["booking"])
def preregistrations(ctx: Ctx, who: Staff) -> list[dict[str, Any]]:
    """Pre-registrations waiting for the station (masked)."""
    pending = ctx.call(lambda station: booking.pending_preregistrations(station, ctx.users))
    return [_prereg(p) for p in pending]


@router.post("/preregistrations/{prereg_id}/confirm", tags=["booking"])
def confirm(ctx: Ctx, who: Staff, prereg_id: str) -> dict[str, Any]:
    """The clerk confirms the online record: the signed registration, with its channel and
    appointment, which links it to the donation."""
    command = booking.ConfirmPreRegistration(prereg_id, signing_staff(who))
    done = ctx.call(lambda station: booking.confirm_preregistration(station, ctx.users, command))
    return _prereg(done)
