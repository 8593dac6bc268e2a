"""Time-slot booking: the calendar, the slot schedule, no-shows and the reminder outbox."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.web.auth import Admin, Caller, Channel, Ctx, Staff, require, signing_staff
from api.web.models import ScheduleIn
from services import booking, booking_report, station_time

router = APIRouter()
StaffOrChannel = Annotated[Caller, Depends(require("staff", "channel"))]
StaffOrQuality = Annotated[Caller, Depends(require("staff", "quality"))]


@router.get("/booking/calendar", tags=["booking"])
def calendar(
    ctx: Ctx,
    who: StaffOrChannel,
    first: date | None = None,
    days: Annotated[int, Query(ge=1, le=92)] = 7,
) -> list[dict[str, Any]]:
    """Every slot of the days: capacity, places booked and free, holiday, schedule version."""
    query = booking.CalendarQuery(first or station_time.today(), days)
    return [dataclasses.asdict(s) for s in booking.booking_calendar(ctx.users, query)]


@router.post("/booking/schedules", status_code=201, tags=["booking"])
def publish_schedule(ctx: Ctx, who: Admin, body: ScheduleIn) -> dict[str, Any]:
    """Publish a new version of the slot schedule (per weekday and per holiday)."""
    command = booking.PublishSlotSchedule(body.model_dump(mode="json"), who.user.username)
    with ctx.lock:
        return booking.publish_slot_schedule(ctx.users, command)


@router.post("/appointments/{appointment_id}/no-show", tags=["booking"])
def no_show(ctx: Ctx, who: Staff, appointment_id: str) -> dict[str, str]:
    """The donor did not come to a past appointment."""
    command = booking.RecordNoShow(appointment_id, signing_staff(who))
    with ctx.lock:
        state = booking.record_no_show(ctx.users, command)
    return {"appointment_id": appointment_id, "state": state}


@router.get("/booking/reminders", tags=["booking"])
def reminders(ctx: Ctx, who: Channel) -> list[dict[str, Any]]:
    """Reminders due now, for the channel's SMS or template-message sender."""
    return [dataclasses.asdict(m) for m in booking.due_reminders(ctx.users)]


@router.post("/booking/reminders/{message_id}/sent", tags=["booking"])
def reminder_sent(ctx: Ctx, who: Channel, message_id: str) -> dict[str, str]:
    """The sender sent it; it leaves the outbox."""
    with ctx.lock:
        booking.mark_reminder_sent(ctx.users, message_id)
    return {"message_id": message_id, "state": "sent"}


@router.get("/booking/report", tags=["booking"])
def report(
    ctx: Ctx, who: StaffOrQuality, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Appointment share, collections per open workday / holiday, load by hour (UTC)."""
    today = station_time.today()
    query = booking_report.BookingReportQuery(start or today.replace(day=1), end or today)
    done = ctx.call(lambda station: booking_report.booking_report(station, ctx.users, query))
    return dataclasses.asdict(done)
