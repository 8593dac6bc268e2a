"""Verification for the regulator: a signed PDF, a transfer package, the whole ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from api.web.auth import (
    Auditor,
    Ctx,
    Verifier,
)
from services import archive_history, web_reads

router = APIRouter()


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


@router.post("/verify/package", tags=["verify"])
def verify_package(
    ctx: Ctx,
    who: Verifier,
    file: Annotated[UploadFile, File(description="the package folder (BagIt bag) as a zip")],
    trust: Annotated[
        UploadFile | None, File(description="PEM trust roots (default: the station's)")
    ] = None,
) -> dict[str, Any]:
    """The typed report of an uploaded transfer package, verified offline (docs/archive.md);
    read only: nothing is written to the ledger."""
    trust_pem = trust.file.read() if trust is not None else None
    report = archive_history.verify_package_upload(ctx.settings, file.file, trust_pem)
    return report.to_json()


@router.get("/verify/ledger", tags=["verify"])
def verify_ledger(ctx: Ctx, who: Auditor) -> dict[str, Any]:
    """The whole ledger verified now, as `ledger verify --json`."""
    return ctx.call(web_reads.verify_ledger_now).to_json()
