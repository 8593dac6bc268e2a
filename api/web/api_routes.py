"""The JSON API under /api/v1: parse the request, call one service function, format the answer.

Request and response models are apart; rules, file formats and SQL live in services/.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Header, Request, UploadFile, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.web.auth import (
    Admin,
    Amender,
    AnyUser,
    Archivist,
    Auditor,
    Caller,
    Channel,
    Ctx,
    Quality,
    Reader,
    Staff,
    Verifier,
    signing_staff,
)
from api.web.context import WebContext
from services import amend, booking, steps, users, web_reads
from services import staff as staff_service
from services import station_settings as station_settings_service
from services.staff import staff_signer
from signing.errors import InputError, LedgerError

router = APIRouter(prefix="/api/v1")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="a key per logical request: a retry with the same key records once",
    ),
]


# -- models ------------------------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class UserOut(BaseModel):
    username: str
    role: str
    staff_id: str | None


class RegistrationIn(BaseModel):
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=60)
    sex: Literal["M", "F"]
    birth_date: date
    phone: str = Field(min_length=5, max_length=20)
    product: str
    appointment_id: str | None = None


class RegisteredOut(BaseModel):
    donation_id: str


class StepOut(BaseModel):
    donation_id: str
    donation_no: str
    step: str
    version: int
    event_hash: str
    status: str
    rule_outcomes: list[dict[str, Any]]


class AmendmentIn(BaseModel):
    step: str
    field: str
    new_value: str | int | float | bool
    reason: str = Field(min_length=1)
    override_reason: str = ""
    acknowledged: list[str] = []


class AmendedOut(BaseModel):
    donation_id: str
    donation_no: str
    step: str
    field: str
    old_value: Any
    new_value: Any
    version: int
    event_hash: str
    rule_outcomes: list[dict[str, Any]]


class UserIn(BaseModel):
    username: str
    role: str
    password: str | None = None
    staff_id: str | None = None


class UserAddedOut(UserOut):
    generated_password: str | None = Field(
        None, description="shown once, when no password was given"
    )


# -- helpers -----------------------------------------------------------------------------------


def _idempotent(
    ctx: WebContext,
    who: Caller,
    key: str | None,
    request_parts: tuple[Any, ...],
    run: Callable[[], dict[str, Any]],
) -> JSONResponse:
    """Run once per (user, Idempotency-Key): a retry gets the first answer, not a new event."""
    with ctx.lock:
        if key is None:
            return JSONResponse(run(), status.HTTP_201_CREATED)
        digest = users.request_digest(*request_parts)
        prior = ctx.users.claim(who.user.username, key, digest)
        if prior is not None:
            return JSONResponse(prior[1], prior[0], headers={"Idempotent-Replayed": "true"})
        try:
            body = run()
        except BaseException:
            ctx.users.release(who.user.username, key)
            raise
        ctx.users.settle(who.user.username, key, status.HTTP_201_CREATED, body)
        return JSONResponse(body, status.HTTP_201_CREATED)


def _user_out(user: users.User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "staff_id": user.staff_id}


# -- auth --------------------------------------------------------------------------------------


@router.post("/auth/token", response_model=TokenOut, tags=["auth"])
def token(
    request: Request, ctx: Ctx, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenOut:
    """OAuth2 password grant: ``username``, ``password`` -> a bearer token."""
    now = datetime.now(UTC)
    remote = request.client.host if request.client else ""
    user = ctx.users.login(form.username, form.password, remote, now)
    access, session = ctx.users.open_session(user, now)
    return TokenOut(access_token=access, expires_at=session.expires_at)


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(ctx: Ctx, who: AnyUser) -> Response:
    ctx.users.close_session(who.token)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, tags=["auth"])
def me(who: AnyUser) -> dict[str, Any]:
    return _user_out(who.user)


# -- station -----------------------------------------------------------------------------------


@router.post("/donations", status_code=201, response_model=RegisteredOut, tags=["station"])
def register(
    ctx: Ctx, who: Staff, body: RegistrationIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Register a visit at the desk, signed by the logged-in clerk."""
    staff_id = signing_staff(who)
    command = steps.RegisterDonation(staff_id=staff_id, **body.model_dump())

    def run() -> dict[str, Any]:
        return {"donation_id": str(steps.register_donation(ctx.station, command).donation_id)}

    return _idempotent(ctx, who, idempotency_key, ("register", body.model_dump()), run)


class DonorLookUpIn(BaseModel):
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)


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
    return _idempotent(ctx, who, idempotency_key, parts, run)


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
    return _idempotent(ctx, who, idempotency_key, parts, run)


# -- booking channels --------------------------------------------------------------------------


class BookingIn(BaseModel):
    channel: str = Field(description="wechat, baidu, douyin or h5")
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    sex: Literal["M", "F"]
    birth_date: date
    day: date
    period: Literal["morning", "afternoon"] = "morning"


class CancelIn(BaseModel):
    channel: str


class PreRegistrationIn(BaseModel):
    channel: str = Field(description="wechat, baidu, douyin or h5")
    id_type: str = "resident_id"
    id_number: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=60)
    sex: Literal["M", "F"]
    birth_date: date
    phone: str = Field(min_length=5, max_length=20)
    product: str
    answers: dict[str, bool]
    appointment_id: str | None = None


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

    return _idempotent(ctx, who, idempotency_key, ("prereg", body.model_dump()), run)


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


# -- quality -----------------------------------------------------------------------------------


@router.get("/quality/amendments", tags=["quality"])
def amendments(
    ctx: Ctx, who: Quality, month: str = "", step: str = "", staff: str = ""
) -> list[dict[str, Any]]:
    """Every amendment with prior and new value, who, when, why; filter by month (YYYY-MM),
    step and staff id."""
    where = web_reads.AmendmentFilter(month, step, staff)
    return ctx.call(lambda station: web_reads.amendments(station, where))


@router.get("/quality/amendments.csv", tags=["quality"], response_class=Response)
def amendments_csv(
    ctx: Ctx, who: Quality, month: str = "", step: str = "", staff: str = ""
) -> Response:
    where = web_reads.AmendmentFilter(month, step, staff)
    rows = ctx.call(lambda station: web_reads.amendments(station, where))
    out = io.StringIO()
    columns = ["donation_no", "step", "field", "old_value", "new_value", "staff", "at", "reason"]
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="amendments.csv"'},
    )


@router.get("/quality/missing-signatures", tags=["quality"])
def missing_signatures(ctx: Ctx, who: Quality) -> list[dict[str, Any]]:
    return ctx.call(web_reads.missing_signatures)


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    """The period of the rates: default the last twelve months to today."""
    end = end or datetime.now(UTC).date()
    if start is None:
        month = end.month - 11
        year = end.year + (month - 1) // 12
        start = date(year, (month - 1) % 12 + 1, 1)
    return start, end


@router.get("/quality/rates", tags=["quality"])
def quality_rates(
    ctx: Ctx, who: Quality, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Monthly modification and missing-signature rates (docs/metrics.md) over [start, end]."""
    first, last = _period(start, end)
    return ctx.call(lambda station: web_reads.quality_rates(station, first, last))


@router.get("/quality/rates.csv", tags=["quality"], response_class=Response)
def quality_rates_csv(
    ctx: Ctx, who: Quality, start: date | None = None, end: date | None = None
) -> Response:
    first, last = _period(start, end)
    rates = ctx.call(lambda station: web_reads.quality_rates(station, first, last))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["metric", "title", "month", "numerator", "denominator", "rate"])
    for rate in rates["rates"]:
        rows = [{"month": "all", **rate}, *rate["by_month"]]
        for row in rows:
            value = "" if row["value"] is None else f"{row['value']:.6f}"
            writer.writerow(
                [rate["metric"], rate["title"], row["month"], row["numerator"],
                 row["denominator"], value]
            )  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="quality-rates.csv"'},
    )


# -- archivist ---------------------------------------------------------------------------------


@router.get("/archive/queue", tags=["archive"])
def archive_queue(ctx: Ctx, who: Archivist) -> list[dict[str, Any]]:
    """Sealed, completed donations not archived yet (catalogue names: surname only)."""
    return ctx.call(web_reads.archive_queue_items)


# -- regulator ---------------------------------------------------------------------------------


@router.post("/verify/pdf", tags=["verify"])
def verify_pdf(
    ctx: Ctx,
    who: Verifier,
    file: Annotated[UploadFile, File(description="the signed PDF")],
    trust: Annotated[
        UploadFile | None, File(description="PEM trust roots (default: the station's)")
    ] = None,
) -> dict[str, Any]:
    """The typed verification report of one signed PDF (docs/verification.md)."""
    data = file.file.read()
    trust_pem = trust.file.read() if trust is not None else None
    name = file.filename or "upload.pdf"
    report = ctx.call(lambda station: web_reads.verify_pdf_upload(station, data, name, trust_pem))
    return report.to_json()


@router.get("/verify/ledger", tags=["verify"])
def verify_ledger(ctx: Ctx, who: Auditor) -> dict[str, Any]:
    """The whole ledger verified now, as `ledger verify --json`."""
    return ctx.call(web_reads.verify_ledger_now).to_json()


class SettingIn(BaseModel):
    key: str
    value: Any
    reason: str


class RevocationIn(BaseModel):
    reason: str


# -- admin -------------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserOut], tags=["admin"])
def list_users(ctx: Ctx, who: Admin) -> list[dict[str, Any]]:
    return [_user_out(u) for u in ctx.users.users()]


@router.post("/users", status_code=201, response_model=UserAddedOut, tags=["admin"])
def add_user(ctx: Ctx, who: Admin, body: UserIn) -> dict[str, Any]:
    def known(staff_id: str) -> bool:
        try:
            ctx.call(lambda station: staff_signer(station, staff_id))
        except LedgerError:
            return False
        return True

    added = users.add_user(
        ctx.users, users.AddUser(body.username, body.role, body.password, body.staff_id), known
    )
    return {**_user_out(added.user), "generated_password": added.generated_password}


@router.get("/station/settings", tags=["admin"])
def station_settings(ctx: Ctx, who: Admin) -> dict[str, Any]:
    return ctx.call(station_settings_service.station_settings)


@router.post("/station/settings", tags=["admin"])
def change_station_setting(ctx: Ctx, who: Admin, body: SettingIn) -> dict[str, Any]:
    """Change one station parameter with a reason, validated by the service and signed by the
    administrator's own certificate."""
    command = station_settings_service.ChangeStationSetting(
        body.key, body.value, body.reason, signing_staff(who)
    )
    changed = ctx.call(
        lambda station: station_settings_service.change_station_setting(station, command)
    )
    return {"key": changed.key, "old_value": changed.old_value, "new_value": changed.new_value}


@router.post("/staff/{staff_id}/revoke", tags=["admin"])
def revoke_staff(ctx: Ctx, who: Admin, staff_id: str, body: RevocationIn) -> dict[str, Any]:
    """Revoke a staff certificate (a CRL entry and a signed event); it can sign no more."""
    if not body.reason.strip():
        raise InputError("a revocation needs a reason")
    command = staff_service.RevokeStaff(staff_id, body.reason, signing_staff(who))
    revoked = ctx.call(lambda station: staff_service.revoke_staff(station, command))
    return {"staff_id": revoked.staff_id, "serial_number": format(revoked.serial_number, "x")}
