"""What the API's routes share: the Idempotency-Key header and its handling, small formatters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import Header, status
from fastapi.responses import JSONResponse

from api.web.auth import Caller
from api.web.context import WebContext
from services import station_time, users

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="a key per logical request: a retry with the same key records once",
    ),
]


def idempotent(
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


def user_out(user: users.User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "staff_id": user.staff_id}


def period(start: date | None, end: date | None) -> tuple[date, date]:
    """The period of the rates: default the last twelve months to today, the station's day
    (UTC+8, as the metrics count days): at 20:00 UTC a UTC date left out the day's records."""
    end = end or station_time.today()
    if start is None:
        month = end.month - 11
        year = end.year + (month - 1) // 12
        start = date(year, (month - 1) % 12 + 1, 1)
    return start, end
