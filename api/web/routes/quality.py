"""The quality manager's reads: amendments, missing signatures, monthly rates (JSON, CSV)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.web.auth import (
    Ctx,
    Quality,
)
from api.web.routes.common import period
from services import web_reads

router = APIRouter()


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


@router.get("/quality/rates", tags=["quality"])
def quality_rates(
    ctx: Ctx, who: Quality, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Monthly modification and missing-signature rates (docs/metrics.md) over [start, end]."""
    first, last = period(start, end)
    return ctx.call(lambda station: web_reads.quality_rates(station, first, last))


@router.get("/quality/rates.csv", tags=["quality"], response_class=Response)
def quality_rates_csv(
    ctx: Ctx, who: Quality, start: date | None = None, end: date | None = None
) -> Response:
    first, last = period(start, end)
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
