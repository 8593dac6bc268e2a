"""Server-rendered pages (Jinja2) for each role; they work at phone width and need no script.

Login sets a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS); every form carries
the session's CSRF token, which `api.web.auth.caller` checks on each POST (the login form uses
a double-submit cookie, as there is no session yet). Without a session a page answers 401 with
the login form; with a role the page does not allow, 403.
"""

from __future__ import annotations

import json
import secrets
import types
import typing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from api.web.auth import SESSION_COOKIE, Caller, Ctx, caller, require
from api.web.routes.common import period
from services import (
    amend,
    booking,
    booking_report,
    matching,
    recruitable,
    recruitment,
    staff,
    station_settings,
    station_time,
    steps,
    users,
    web_reads,
)
from services.staff import staff_signer
from services.steps import PRODUCTS
from signing.errors import InputError, LedgerError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "ledger_login_csrf"
HOME = {
    "staff": "/staff",
    "quality": "/quality",
    "archivist": "/archivist",
    "regulator": "/regulator",
    "admin": "/admin",
    "channel": "/channel",
}

StaffPage = Annotated[Caller, Depends(require("staff"))]
AmendPage = Annotated[Caller, Depends(require("staff", "quality"))]
DonationPage = Annotated[Caller, Depends(require("staff", "quality", "archivist", "regulator"))]
QualityPage = Annotated[Caller, Depends(require("quality"))]
ArchivistPage = Annotated[Caller, Depends(require("archivist"))]
RegulatorPage = Annotated[Caller, Depends(require("regulator", "quality", "archivist"))]
AdminPage = Annotated[Caller, Depends(require("admin"))]
ChannelPage = Annotated[Caller, Depends(require("channel"))]
AnyPage = Annotated[Caller, Depends(caller)]


def render(
    request: Request, name: str, who: Caller | None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    context = {"who": who, "csrf": who.session.csrf if who else "", "home": HOME, **values}
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def login_page(request: Request, message: str = "", status_code: int = 200) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status_code, message=message, login_csrf=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


# -- login ---------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return login_page(request)


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return login_page(request, "the form expired: please log in again", 403)
    now = datetime.now(UTC)
    remote = request.client.host if request.client else ""
    try:
        user = ctx.users.login(username, password, remote, now)
    except LedgerError as exc:
        return login_page(request, str(exc), 401)
    token, _ = ctx.users.open_session(user, now)
    response = RedirectResponse(HOME[user.role], status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(users.SESSION_FOR.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(ctx: Ctx, who: AnyPage) -> Response:
    ctx.users.close_session(who.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
def index(who: AnyPage) -> Response:
    return RedirectResponse(HOME[who.user.role], status_code=303)


# -- staff ---------------------------------------------------------------------------------------


def staff_page(
    request: Request,
    ctx: Ctx,
    who: Caller,
    message: str = "",
    status_code: int = 200,
    donor: dict[str, Any] | None = None,
) -> HTMLResponse:
    pending = ctx.call(lambda station: booking.pending_preregistrations(station, ctx.users))
    return render(
        request, "staff.html", who, status_code, pending=pending, message=message, donor=donor
    )


@router.post("/staff/donors/lookup")
def staff_donor_lookup(
    request: Request,
    ctx: Ctx,
    who: StaffPage,
    id_number: Annotated[str, Form()],
    id_type: Annotated[str, Form()] = "resident_id",
) -> Response:
    try:
        command = web_reads.LookUpDonor(id_type, id_number)
        donor = ctx.call(lambda station: web_reads.donor_lookup(station, command))
    except LedgerError as exc:
        return staff_page(request, ctx, who, str(exc), 404)
    return staff_page(request, ctx, who, donor=donor)


@router.get("/staff")
def staff_home(request: Request, ctx: Ctx, who: StaffPage, donation: str = "") -> Response:
    if donation.strip():
        return RedirectResponse(f"/staff/donations/{quote(donation.strip())}", status_code=303)
    return staff_page(request, ctx, who)


@router.get("/staff/donations/{donation}")
def donation_page(
    request: Request, ctx: Ctx, who: DonationPage, donation: str, message: str = ""
) -> Response:
    try:
        view = ctx.call(lambda station: web_reads.donation_view(station, donation))
    except LedgerError as exc:
        return render(request, "message.html", who, 404, message=str(exc))
    return render(
        request,
        "donation.html",
        who,
        view=view,
        key=donation,
        steps=steps.STEP_NAMES,
        message=message,
    )


@router.get("/staff/donations/{donation}/timeline")
def timeline_page(request: Request, ctx: Ctx, who: DonationPage, donation: str) -> Response:
    try:
        timeline = ctx.call(lambda station: web_reads.donation_timeline(station, donation))
    except LedgerError as exc:
        return render(request, "message.html", who, 404, message=str(exc))
    return render(request, "timeline.html", who, timeline=timeline, key=donation)


class FieldSpec(BaseModel):
    name: str
    kind: Literal["text", "number", "bool", "lines", "pairs", "choice"]
    required: bool
    choices: list[str] = []
    default: str = ""


def field_specs(model: type[BaseModel]) -> list[FieldSpec]:
    """Form inputs for a step's payload model."""
    specs = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (types.UnionType, typing.Union):
            annotation = next(a for a in args if a is not type(None))
            origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        default = "" if info.is_required() or info.default in (None, (), "") else info.default
        if annotation is bool:
            kind = "bool"
        elif annotation in (int, float):
            kind = "number"
        elif origin is Literal:
            kind = "choice"
        elif origin is tuple:
            kind = "lines"
        elif origin is dict:
            kind = "pairs"
        else:
            kind = "text"
        specs.append(
            FieldSpec(
                name=name,
                kind=kind,  # type: ignore[arg-type]
                required=info.is_required(),
                choices=[str(a) for a in args] if kind == "choice" else [],
                default="" if isinstance(default, dict) else str(default),
            )
        )
    return specs


def form_payload(specs: list[FieldSpec], form: Any) -> dict[str, Any]:
    """The step payload from the submitted form; the service checks types and ranges."""
    payload: dict[str, Any] = {}
    for spec in specs:
        raw = form.get(spec.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if spec.kind == "bool":
            payload[spec.name] = text in ("true", "on", "1", "yes")
        elif spec.kind == "lines":
            payload[spec.name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif spec.kind == "pairs":
            pairs: dict[str, Any] = {}
            for line in text.splitlines():
                if not line.strip():
                    continue
                key, sep, value = line.partition("=")
                if not sep:
                    raise InputError(f"{spec.name}: write one key=value a line, not {line!r}")
                value = value.strip()
                lowered = value.lower()
                if lowered in ("yes", "true", "no", "false"):
                    pairs[key.strip()] = lowered in ("yes", "true")
                else:
                    pairs[key.strip()] = value
            payload[spec.name] = pairs
        elif text:
            payload[spec.name] = text
    return payload


@router.get("/staff/donations/{donation}/steps/{step}")
def step_form(request: Request, who: StaffPage, donation: str, step: str) -> Response:
    model = steps.PAYLOADS.get(step)
    if model is None:
        return render(request, "message.html", who, 404, message=f"unknown step {step!r}")
    return render(
        request, "step.html", who, key=donation, step=step, fields=field_specs(model), message=""
    )


@router.post("/staff/donations/{donation}/steps/{step}")
async def record_step(
    request: Request, ctx: Ctx, who: StaffPage, donation: str, step: str
) -> Response:
    from starlette.concurrency import run_in_threadpool

    model = steps.PAYLOADS.get(step)
    if model is None:
        return render(request, "message.html", who, 404, message=f"unknown step {step!r}")
    specs = field_specs(model)
    form = await request.form()
    try:
        payload = form_payload(specs, form)
        if not who.user.staff_id:
            raise InputError(f"user {who.user.username} has no staff certificate")
        command = steps.RecordStep(donation, step, payload, who.user.staff_id)
        done = await run_in_threadpool(ctx.call, lambda s: steps.record_step(s, command))
    except LedgerError as exc:
        return render(
            request,
            "step.html",
            who,
            400,
            key=donation,
            step=step,
            fields=specs,
            values={k: v for k, v in form.items() if isinstance(v, str)},
            message=str(exc),
        )
    key = done.donation_no or str(done.donation_id)
    note = quote(f"{step} recorded (version {done.version})")
    return RedirectResponse(f"/staff/donations/{key}?message={note}", status_code=303)


@router.get("/staff/donations/{donation}/amend")
def amend_form(request: Request, ctx: Ctx, who: AmendPage, donation: str) -> Response:
    try:
        view = ctx.call(lambda station: web_reads.donation_view(station, donation))
    except LedgerError as exc:
        return render(request, "message.html", who, 404, message=str(exc))
    return render(request, "amend.html", who, key=donation, view=view, message="", values={})


@router.post("/staff/donations/{donation}/amend")
def amend_post(
    request: Request,
    ctx: Ctx,
    who: AmendPage,
    donation: str,
    step: Annotated[str, Form()],
    field: Annotated[str, Form()],
    new_value: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    override_reason: Annotated[str, Form()] = "",
) -> Response:
    values = {"step": step, "field": field, "new_value": new_value, "reason": reason}
    try:
        if not who.user.staff_id:
            raise InputError(f"user {who.user.username} has no staff certificate")
        command = amend.AmendRecord(
            donation, step, field, _value(new_value), reason, who.user.staff_id, override_reason
        )
        done = ctx.call(lambda station: amend.amend_record(station, command))
    except LedgerError as exc:
        try:
            view = ctx.call(lambda station: web_reads.donation_view(station, donation))
        except LedgerError:
            view = None
        return render(
            request, "amend.html", who, 400, key=donation, view=view, message=str(exc),
            values=values,
        )  # fmt: skip
    old = web_reads.mask_field(field, done.old_value)
    new = web_reads.mask_field(field, done.new_value)
    note = quote(f"{step}.{field} amended: {old!r} -> {new!r}")
    key = done.donation_no or str(done.donation_id)
    return RedirectResponse(f"/staff/donations/{key}?message={note}", status_code=303)


def _value(text: str) -> Any:
    """A typed value from a form: JSON (36.8, true) or the text itself."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


# -- quality -------------------------------------------------------------------------------------


@router.get("/quality")
def quality_home(
    request: Request, ctx: Ctx, who: QualityPage, month: str = "", step: str = "", staff: str = ""
) -> Response:
    where = web_reads.AmendmentFilter(month.strip(), step.strip(), staff.strip())
    rows = ctx.call(lambda station: web_reads.amendments(station, where))
    missing = ctx.call(web_reads.missing_signatures)
    query = f"month={quote(where.month)}&step={quote(where.step)}&staff={quote(where.staff)}"
    return render(
        request,
        "quality.html",
        who,
        rows=rows,
        missing=missing,
        where=where,
        query=query,
        steps=steps.STEP_NAMES,
    )


CHART_HEIGHT = 160
BAR = 9


def chart(rates: dict[str, Any]) -> dict[str, Any]:
    """Bars of the chart's rates by month, as SVG geometry (no script, no image file)."""
    shown = [r for r in rates["rates"] if r["metric"] in web_reads.CHART_RATES]
    values = [m["value"] or 0.0 for r in shown for m in r["by_month"]]
    top = max([*values, 0.01])
    group = BAR * len(shown) + 12
    bars = []
    for i, month in enumerate(rates["months"]):
        for j, rate in enumerate(shown):
            value = rate["by_month"][i]["value"] or 0.0
            height = round(CHART_HEIGHT * value / top, 1)
            bars.append(
                {
                    "x": 40 + i * group + j * BAR,
                    "y": CHART_HEIGHT - height + 10,
                    "height": height,
                    "series": j,
                    "label": f"{rate['title']} {month}: {value:.1%}",
                }
            )
    return {
        "width": 40 + group * len(rates["months"]) + 10,
        "height": CHART_HEIGHT + 40,
        "bars": bars,
        "bar": BAR - 1,
        "series": [r["title"] for r in shown],
        "top": f"{top:.1%}",
        "labels": [{"x": 40 + i * group, "month": m[2:]} for i, m in enumerate(rates["months"])],
    }


@router.get("/quality/rates")
def quality_rates_page(
    request: Request,
    ctx: Ctx,
    who: QualityPage,
    start: date | None = None,
    end: date | None = None,
) -> Response:
    first, last = period(start, end)
    try:
        rates = ctx.call(lambda station: web_reads.quality_rates(station, first, last))
    except LedgerError as exc:
        return render(request, "message.html", who, 400, message=str(exc))
    return render(request, "rates.html", who, rates=rates, chart=chart(rates))


# -- archivist: api/web/pages_archive.py ---------------------------------------------------------


# -- regulator -----------------------------------------------------------------------------------


@router.get("/regulator")
def regulator_home(request: Request, who: RegulatorPage) -> Response:
    return render(request, "regulator.html", who, message="")


@router.get("/regulator/donation")
def regulator_donation(who: RegulatorPage, donation: str) -> Response:
    return RedirectResponse(f"/staff/donations/{quote(donation.strip())}/timeline", 303)


@router.post("/regulator/verify-pdf")
def regulator_verify_pdf(
    request: Request,
    ctx: Ctx,
    who: RegulatorPage,
    file: Annotated[UploadFile, File()],
    trust: Annotated[UploadFile | None, File()] = None,
) -> Response:
    data = file.file.read()
    trust_pem = trust.file.read() if trust is not None and trust.filename else None
    name = file.filename or "upload.pdf"
    try:
        report = ctx.call(
            lambda station: web_reads.verify_pdf_upload(station, data, name, trust_pem)
        )
    except LedgerError as exc:
        return render(request, "regulator.html", who, 422, message=str(exc))
    document = report.to_json()
    return render(
        request,
        "report.html",
        who,
        report=document,
        signatures=document.get("signatures", {}).get("signatures", []),
        download=json.dumps(document, ensure_ascii=False, indent=2),
    )


@router.post("/regulator/verify-ledger")
def regulator_verify_ledger(request: Request, ctx: Ctx, who: RegulatorPage) -> Response:
    document = ctx.call(web_reads.verify_ledger_now).to_json()
    return render(
        request,
        "report.html",
        who,
        report=document,
        signatures=[],
        download=json.dumps(document, ensure_ascii=False, indent=2),
    )


# -- admin ---------------------------------------------------------------------------------------


def admin_page(
    request: Request, ctx: Ctx, who: Caller, message: str = "", status_code: int = 200
) -> HTMLResponse:
    parameters = ctx.call(station_settings.station_settings)
    shown = {k: json.dumps(v, ensure_ascii=False) for k, v in parameters.items()}
    return render(
        request,
        "admin.html",
        who,
        status_code,
        users=ctx.users.users(),
        roles=users.ROLES,
        settings=shown,
        message=message,
    )


@router.get("/admin")
def admin_home(request: Request, ctx: Ctx, who: AdminPage) -> Response:
    return admin_page(request, ctx, who)


@router.post("/admin/settings")
def admin_change_setting(
    request: Request,
    ctx: Ctx,
    who: AdminPage,
    key: Annotated[str, Form()],
    value: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        if not who.user.staff_id:
            raise InputError(f"user {who.user.username} has no administrator certificate")
        command = station_settings.ChangeStationSetting(
            key.strip(), station_settings.parse_setting_value(value), reason, who.user.staff_id
        )
        changed = ctx.call(
            lambda station: station_settings.change_station_setting(station, command)
        )
    except LedgerError as exc:
        return admin_page(request, ctx, who, str(exc), 400)
    message = f"station setting {changed.key}: {changed.old_value!r} -> {changed.new_value!r}"
    return admin_page(request, ctx, who, message)


@router.post("/admin/revoke")
def admin_revoke(
    request: Request,
    ctx: Ctx,
    who: AdminPage,
    staff_id: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        if not who.user.staff_id:
            raise InputError(f"user {who.user.username} has no administrator certificate")
        if not reason.strip():
            raise InputError("a revocation needs a reason")
        command = staff.RevokeStaff(staff_id.strip(), reason, who.user.staff_id)
        revoked = ctx.call(lambda station: staff.revoke_staff(station, command))
    except LedgerError as exc:
        return admin_page(request, ctx, who, str(exc), 400)
    return admin_page(request, ctx, who, f"the certificate of {revoked.staff_id} is revoked")


@router.post("/admin/users")
def admin_add_user(
    request: Request,
    ctx: Ctx,
    who: AdminPage,
    username: Annotated[str, Form()],
    role: Annotated[str, Form()],
    staff_id: Annotated[str, Form()] = "",
) -> Response:
    def known(staff_no: str) -> bool:
        try:
            ctx.call(lambda station: staff_signer(station, staff_no))
        except LedgerError:
            return False
        return True

    try:
        added = users.add_user(
            ctx.users, users.AddUser(username.strip(), role, None, staff_id.strip() or None), known
        )
        message = f"user {added.user.username} added; password (shown once): "
        message += str(added.generated_password)
        status_code = 200
    except LedgerError as exc:
        message, status_code = str(exc), 400
    return admin_page(request, ctx, who, message, status_code)


# -- channel -------------------------------------------------------------------------------------


def channel_page(
    request: Request, who: Caller, message: str = "", status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return render(
        request,
        "channel.html",
        who,
        status_code,
        channels=list(booking.CHANNELS),
        questionnaire=booking.QUESTIONNAIRE,
        products=PRODUCTS,
        message=message,
        **extra,
    )


@router.get("/channel")
def channel_home(request: Request, who: ChannelPage) -> Response:
    """The mobile H5 page of the booking channels: book an appointment, pre-register."""
    return channel_page(request, who)


@router.post("/channel/appointments")
def channel_book(
    request: Request,
    ctx: Ctx,
    who: ChannelPage,
    channel: Annotated[str, Form()],
    id_number: Annotated[str, Form()],
    sex: Annotated[str, Form()],
    birth_date: Annotated[str, Form()],
    day: Annotated[str, Form()],
    period: Annotated[str, Form()] = "morning",
    slot: Annotated[str, Form()] = "",
) -> Response:
    try:
        command = booking.BookAppointment(
            channel, "resident_id", id_number, _sex(sex), _date(birth_date, "birth date"),
            _date(day, "day"), "afternoon" if period == "afternoon" else "morning",
            slot.strip() or None,
        )  # fmt: skip
        booked = ctx.call(lambda station: booking.book_appointment(station, ctx.users, command))
    except LedgerError as exc:
        return channel_page(request, who, str(exc), 400)
    return channel_page(
        request, who, f"appointment {booked.appointment_id} booked for {booked.day}",
        appointment=booked.appointment_id,
    )  # fmt: skip


@router.post("/channel/preregistrations")
async def channel_preregister(request: Request, ctx: Ctx, who: ChannelPage) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    try:
        answers = {q: text(q) == "yes" for q in booking.QUESTIONNAIRE if text(q)}
        command = booking.PreRegister(
            channel=text("channel"),
            id_type="resident_id",
            id_number=text("id_number"),
            name=text("name"),
            sex=_sex(text("sex")),
            birth_date=_date(text("birth_date"), "birth date"),
            phone=text("phone"),
            product=text("product"),
            answers=answers,
            appointment_id=text("appointment_id") or None,
        )
        done = await run_in_threadpool(
            ctx.call, lambda station: booking.pre_register(station, ctx.users, command)
        )
    except LedgerError as exc:
        return channel_page(request, who, str(exc), 400)
    return channel_page(request, who, f"pre-registration {done.prereg_id} received")


@router.get("/staff/booking")
def staff_booking_calendar(
    request: Request, ctx: Ctx, who: StaffPage, first: str = "", days: int = 7
) -> Response:
    """The booking calendar: each slot's capacity, places booked and free, as a bar."""
    try:
        start = _date(first, "first day") if first else station_time.today()
        rows = booking.booking_calendar(ctx.users, booking.CalendarQuery(start, days))
    except LedgerError as exc:
        return render(request, "message.html", who, 400, message=str(exc))
    return render(
        request, "booking.html", who, rows=rows, first=start.isoformat(), days=days,
        booked=sum(r.booked for r in rows), capacity=sum(r.capacity for r in rows),
    )  # fmt: skip


def recruitment_page(
    request: Request, ctx: Ctx, who: Caller, message: str = "", status_code: int = 200
) -> HTMLResponse:
    today = station_time.today()
    query = recruitment.RecruitmentStatsQuery(today.replace(day=1), today)
    stats = ctx.call(lambda station: recruitment.recruitment_statistics(station, query))
    return render(
        request, "recruitment.html", who, status_code, stats=stats, message=message,
        channels=recruitment.CONTACT_CHANNELS, outcomes=recruitment.OUTCOMES,
    )  # fmt: skip


@router.get("/staff/recruitment")
def staff_recruitment(request: Request, ctx: Ctx, who: StaffPage) -> Response:
    """This month's recruitment by recruiter and outcome, the seed indicator, a contact form."""
    return recruitment_page(request, ctx, who)


@router.get("/staff/booking/report")
def staff_booking_report(
    request: Request, ctx: Ctx, who: StaffPage, start: str = "", end: str = ""
) -> Response:
    """Appointment share, collections per open day, load by hour as bars."""
    today = station_time.today()
    try:
        query = booking_report.BookingReportQuery(
            _date(start, "start") if start else today.replace(day=1),
            _date(end, "end") if end else today,
        )
        done = ctx.call(lambda st: booking_report.booking_report(st, ctx.users, query))
    except LedgerError as exc:
        return render(request, "message.html", who, 400, message=str(exc))
    hours = sorted(set(done.booked_by_hour) | set(done.collections_by_hour))
    top = max([*done.booked_by_hour.values(), *done.collections_by_hour.values(), 1])
    return render(request, "booking_report.html", who, report=done, hours=hours, top=top)


@router.get("/staff/recruitable")
def staff_recruitable(
    request: Request,
    ctx: Ctx,
    who: StaffPage,
    donor_type: str = "",
    station: str = "",
    last_from: str = "",
    last_to: str = "",
    abo: str = "",
) -> Response:
    """The recruitable donors with the advanced query (type, station, dates, ABO), masked."""
    where = {"donor_type": donor_type, "station": station, "last_from": last_from,
             "last_to": last_to, "abo": abo}  # fmt: skip
    try:
        query = recruitable.RecruitableQuery(
            None, donor_type, station.strip(),
            _date(last_from, "from") if last_from else None,
            _date(last_to, "to") if last_to else None, abo.strip(),
        )  # fmt: skip
        rows = ctx.call(lambda st: recruitable.recruitable_donors(st, query))
    except LedgerError as exc:
        return render(request, "recruitable.html", who, 400, rows=[], where=where,
                      types=recruitable.DONOR_TYPES, message=str(exc))  # fmt: skip
    return render(
        request, "recruitable.html", who, rows=rows, where=where, types=recruitable.DONOR_TYPES
    )


@router.post("/staff/recruitment/contacts")
def staff_record_contact(
    request: Request,
    ctx: Ctx,
    who: StaffPage,
    id_number: Annotated[str, Form()],
    channel: Annotated[str, Form()],
    outcome: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    request_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        if not who.user.staff_id:
            raise InputError(f"user {who.user.username} has no staff certificate")
        command = recruitment.RecordContact(
            who.user.staff_id, id_number, channel, outcome, reason, request_id=request_id.strip()
        )
        done = ctx.call(lambda station: recruitment.record_contact(station, command))
    except LedgerError as exc:
        if request_id.strip():
            return matches_page(request, ctx, who, request_id.strip(), str(exc), 400)
        return recruitment_page(request, ctx, who, str(exc), 400)
    said = f"contact with {done.id_number_masked} recorded: {done.outcome}"
    if request_id.strip():
        return matches_page(request, ctx, who, request_id.strip(), said)
    return recruitment_page(request, ctx, who, said)


def matches_page(
    request: Request,
    ctx: Ctx,
    who: Caller,
    request_id: str = "",
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The matched-recruitment requests and, for one of them, the ranked donors."""
    rows = ctx.call(matching.match_requests)
    ranked: list[matching.MatchedDonor] = []
    if request_id:
        try:
            query = matching.MatchQuery(request_id)
            ranked = ctx.call(lambda st: matching.matched_donors(st, query))
        except LedgerError as exc:
            message, status_code = str(exc), 400
    return render(
        request, "matches.html", who, status_code, requests=rows, ranked=ranked,
        request_id=request_id, message=message, channels=recruitment.CONTACT_CHANNELS,
        outcomes=recruitment.OUTCOMES, groups=("A", "B", "O", "AB"),
    )  # fmt: skip


@router.get("/staff/recruitment/matches")
def staff_matches(request: Request, ctx: Ctx, who: StaffPage, request_id: str = "") -> Response:
    """Matched recruitment (血小板基因配型招募): the requests, a form for a new one, and the
    donors ranked for the chosen request (masked) with a contact form that names it."""
    return matches_page(request, ctx, who, request_id.strip())


@router.post("/staff/recruitment/match-requests")
def staff_request_match(
    request: Request,
    ctx: Ctx,
    who: StaffPage,
    hospital: Annotated[str, Form()],
    patient_name: Annotated[str, Form()],
    abo: Annotated[str, Form()],
    rhd: Annotated[str, Form()] = "+",
    hla: Annotated[str, Form()] = "",
    hpa: Annotated[str, Form()] = "",
) -> Response:
    try:
        if not who.user.staff_id:
            raise InputError(f"user {who.user.username} has no staff certificate")
        command = matching.RequestMatch(
            who.user.staff_id, hospital, patient_name, abo, rhd, hla, hpa
        )
        done = ctx.call(lambda station: matching.request_match(station, command))
    except LedgerError as exc:
        return matches_page(request, ctx, who, "", str(exc), 400)
    return matches_page(
        request, ctx, who, done.request_id,
        f"request for {done.patient_name_masked} ({done.hospital}) recorded",
    )  # fmt: skip


@router.post("/staff/preregistrations/{prereg_id}/confirm")
def staff_confirm(request: Request, ctx: Ctx, who: StaffPage, prereg_id: str) -> Response:
    try:
        if not who.user.staff_id:
            raise InputError(f"user {who.user.username} has no staff certificate")
        command = booking.ConfirmPreRegistration(prereg_id, who.user.staff_id)
        done = ctx.call(
            lambda station: booking.confirm_preregistration(station, ctx.users, command)
        )
    except LedgerError as exc:
        return staff_page(request, ctx, who, str(exc), 400)
    note = quote(f"pre-registration {prereg_id} confirmed: registration signed")
    return RedirectResponse(f"/staff/donations/{done.donation_id}?message={note}", 303)


def _sex(text: str) -> Literal["M", "F"]:
    if text == "M":
        return "M"
    if text == "F":
        return "F"
    raise InputError("sex must be M or F")


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from exc
