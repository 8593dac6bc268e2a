"""The archivist's reads: the archive queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.web.auth import (
    Archivist,
    Ctx,
)
from services import web_reads

router = APIRouter()


@router.get("/archive/queue", tags=["archive"])
def archive_queue(ctx: Ctx, who: Archivist) -> list[dict[str, Any]]:
    """Sealed, completed donations not archived yet (catalogue names: surname only)."""
    return ctx.call(web_reads.archive_queue_items)
