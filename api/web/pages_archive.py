"""The archivist's pages (choose a period, preview it, archive it with live progress, the
package history with download, receipt and re-verification) and the regulator's package upload.

The job page polls its progress fragment every second with htmx (vendored in ``static/``,
allowed by the Content-Security-Policy as ``'self'``); without script a link reloads it. The
archiving itself runs in a worker thread (`services.archive_jobs`), never in the request.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.web.auth import Caller, Ctx, require, signing_staff
from api.web.pages import render
from api.web.routes.archive import download as download_zip
from services import archive, archive_history, station_time, web_reads
from services.archive_jobs import ArchiveJobRunning
from signing.errors import InputError, LedgerError

router = APIRouter(include_in_schema=False)

ArchivistPage = Annotated[Caller, Depends(require("archivist"))]
VerifierPage = Annotated[Caller, Depends(require("regulator", "quality", "archivist"))]


def _period(from_date: str, to_date: str) -> tuple[date, date]:
    try:
        return date.fromisoformat(from_date.strip()), date.fromisoformat(to_date.strip())
    except ValueError as exc:
        raise InputError("choose the period: two dates YYYY-MM-DD") from exc


def archivist_page(
    request: Request,
    ctx: Ctx,
    who: Caller,
    message: str = "",
    status_code: int = 200,
    **values: Any,
) -> Response:
    today = station_time.today()
    items = ctx.call(web_reads.archive_queue_items)
    packages = ctx.call(archive_history.archived_packages)
    context: dict[str, Any] = {
        "from_date": today.replace(day=1).isoformat(),
        "to_date": today.isoformat(),
        "preview": None,
        **values,
    }
    return render(
        request,
        "archivist.html",
        who,
        status_code,
        message=message,
        items=items,
        packages=packages,
        running=ctx.archive_jobs.running(),
        **context,
    )


@router.get("/archivist")
def archivist_home(
    request: Request, ctx: Ctx, who: ArchivistPage, from_date: str = "", to_date: str = ""
) -> Response:
    """The queue, the period form, the preview when a period is chosen, the package history."""
    if not from_date and not to_date:
        return archivist_page(request, ctx, who)
    try:
        first, last = _period(from_date, to_date)
        command = archive.ArchivePeriod(first, last)
        preview = ctx.call(lambda st: archive.preview_period(st, command))
    except LedgerError as exc:
        return archivist_page(
            request, ctx, who, str(exc), 400, from_date=from_date, to_date=to_date
        )
    return archivist_page(
        request, ctx, who, from_date=first.isoformat(), to_date=last.isoformat(), preview=preview
    )


@router.post("/archivist/jobs")
def start_job(
    request: Request,
    ctx: Ctx,
    who: ArchivistPage,
    from_date: Annotated[str, Form()] = "",
    to_date: Annotated[str, Form()] = "",
) -> Response:
    try:
        first, last = _period(from_date, to_date)
        command = archive.ArchivePeriod(first, last, archivist=signing_staff(who))
        job = ctx.call(lambda st: ctx.archive_jobs.start(st, command, who.user.username))
    except ArchiveJobRunning as exc:
        return archivist_page(request, ctx, who, str(exc), 409)
    except LedgerError as exc:
        return archivist_page(request, ctx, who, str(exc), 400)
    return RedirectResponse(f"/archivist/jobs/{job.job_id}", status_code=303)


def _not_found(request: Request, who: Caller, exc: LedgerError) -> Response:
    return render(request, "message.html", who, 404, message=str(exc))


@router.get("/archivist/jobs/{job_id}")
def job_page(request: Request, ctx: Ctx, who: ArchivistPage, job_id: str) -> Response:
    try:
        job = ctx.archive_jobs.get(job_id)
    except LedgerError as exc:
        return _not_found(request, who, exc)
    return render(request, "archive_job.html", who, job=job.to_json())


@router.get("/archivist/jobs/{job_id}/progress")
def job_progress(request: Request, ctx: Ctx, who: ArchivistPage, job_id: str) -> Response:
    """The progress fragment the job page polls (no layout)."""
    try:
        job = ctx.archive_jobs.get(job_id)
    except LedgerError as exc:
        return _not_found(request, who, exc)
    return render(request, "archive_progress.html", who, job=job.to_json())


@router.get("/archivist/packages/{package_id}/download")
def package_download(request: Request, ctx: Ctx, who: ArchivistPage, package_id: str) -> Response:
    try:
        return download_zip(ctx, who, package_id)
    except LedgerError as exc:
        return _not_found(request, who, exc)


@router.get("/archivist/packages/{package_id}/receipt")
def package_receipt(request: Request, ctx: Ctx, who: ArchivistPage, package_id: str) -> Response:
    try:
        document = ctx.call(lambda st: archive_history.package_receipt(st, package_id))
    except LedgerError as exc:
        return _not_found(request, who, exc)
    return JSONResponse(
        document,
        headers={"Content-Disposition": f'attachment; filename="{package_id}-receipt.json"'},
    )


@router.post("/archivist/packages/{package_id}/verify")
def package_verify(request: Request, ctx: Ctx, who: ArchivistPage, package_id: str) -> Response:
    try:
        report = ctx.call(lambda st: archive_history.reverify_package(st, package_id))
    except LedgerError as exc:
        return _not_found(request, who, exc)
    return _report(request, who, report.to_json(), back="/archivist")


@router.post("/regulator/verify-package")
def regulator_verify_package(
    request: Request,
    ctx: Ctx,
    who: VerifierPage,
    file: Annotated[UploadFile, File()],
    trust: Annotated[UploadFile | None, File()] = None,
) -> Response:
    trust_pem = trust.file.read() if trust is not None and trust.filename else None
    try:
        report = archive_history.verify_package_upload(ctx.settings, file.file, trust_pem)
    except LedgerError as exc:
        return render(request, "regulator.html", who, 422, message=str(exc))
    return _report(request, who, report.to_json(), back="/regulator")


def _report(request: Request, who: Caller, document: dict[str, Any], back: str) -> Response:
    return render(
        request,
        "report.html",
        who,
        report=document,
        signatures=[],
        download=json.dumps(document, ensure_ascii=False, indent=2),
        back=back,
    )
