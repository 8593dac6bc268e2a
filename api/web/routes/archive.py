"""The archivist's API: the queue, a period's preview, archive jobs, the package history with
download, receipt and re-verification (docs/http.md). The quality manager may read the
history and re-verify (read only); preview and archiving are the archivist's."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from api.web.auth import Archivist, Caller, Ctx, require, signing_staff
from api.web.models import ArchiveJobIn
from services import archive, archive_history, web_reads

router = APIRouter()
HistoryReader = Annotated[Caller, Depends(require("archivist", "quality"))]


@router.get("/archive/queue", tags=["archive"])
def archive_queue(ctx: Ctx, who: Archivist) -> list[dict[str, Any]]:
    """Sealed, completed donations not archived yet (catalogue names: surname only)."""
    return ctx.call(web_reads.archive_queue_items)


@router.get("/archive/preview", tags=["archive"])
def preview(
    ctx: Ctx,
    who: Archivist,
    from_date: date,
    to_date: date,
    department: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """What archiving the period would do, writing nothing: the donations ready and those
    refused with their reasons."""
    command = archive.ArchivePeriod(from_date, to_date, department or None)
    return dataclasses.asdict(ctx.call(lambda st: archive.preview_period(st, command)))


@router.post("/archive/jobs", status_code=202, tags=["archive"])
def start_job(ctx: Ctx, who: Archivist, body: ArchiveJobIn) -> JSONResponse:
    """Archive the period in the background, signed by the archivist's own certificate: 202
    with the job id; 409 while another job runs. Poll `GET /archive/jobs/{job_id}`."""
    command = archive.ArchivePeriod(
        body.from_date, body.to_date, body.department or None, archivist=signing_staff(who)
    )
    job = ctx.call(lambda st: ctx.archive_jobs.start(st, command, who.user.username))
    return JSONResponse(
        job.to_json(), 202, headers={"Location": f"/api/v1/archive/jobs/{job.job_id}"}
    )


@router.get("/archive/jobs/{job_id}", tags=["archive"])
def job_status(ctx: Ctx, who: Archivist, job_id: str) -> dict[str, Any]:
    """The job now: state (running, done, failed), phase and progress, then its result."""
    return ctx.archive_jobs.get(job_id).to_json()


@router.get("/archive/packages", tags=["archive"])
def packages(ctx: Ctx, who: HistoryReader) -> list[dict[str, Any]]:
    """Every package the ledger's archive events name, newest first."""
    return [dataclasses.asdict(p) for p in ctx.call(archive_history.archived_packages)]


@router.get("/archive/packages/{package_id}/download", tags=["archive"])
def download(ctx: Ctx, who: HistoryReader, package_id: str) -> FileResponse:
    """The package folder (a BagIt bag) as a zip."""
    work = Path(tempfile.mkdtemp(prefix="ledger-zip-"))
    try:
        path = ctx.call(lambda st: archive_history.package_zip(st, package_id, work))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=path.name,
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )


@router.get("/archive/packages/{package_id}/receipt", tags=["archive"])
def receipt(ctx: Ctx, who: HistoryReader, package_id: str) -> dict[str, Any]:
    """The signed archive events naming the package, with what checks them offline."""
    return ctx.call(lambda st: archive_history.package_receipt(st, package_id))


@router.post("/archive/packages/{package_id}/verify", tags=["archive"])
def reverify(ctx: Ctx, who: HistoryReader, package_id: str) -> dict[str, Any]:
    """The package of the inbox verified again now (`ledger verify-package`), read only."""
    return ctx.call(lambda st: archive_history.reverify_package(st, package_id)).to_json()
