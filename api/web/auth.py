"""Dependencies: who is asking (bearer token or session cookie) and whether their role may.

Unauthenticated: 401. Authenticated with a role the route does not allow: 403. A request that
changes something with the session cookie must carry the session's CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``); bearer tokens need none (no browser sends them).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from api.web.context import WebContext
from services.users import Session, User

SESSION_COOKIE = "ledger_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(context)]


@dataclass(frozen=True)
class Caller:
    user: User
    session: Session
    #: True when the caller came with the session cookie (a browser), False for a bearer token.
    by_cookie: bool
    token: str


class NotAuthenticated(HTTPException):
    def __init__(self, detail: str = "not authenticated: log in first") -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
        )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def caller(request: Request, ctx: Ctx) -> Caller:
    token = _bearer(request)
    by_cookie = False
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        by_cookie = token is not None
    if not token:
        raise NotAuthenticated()
    session = await run_in_threadpool(ctx.users.session, token, datetime.now(UTC))
    if session is None:
        raise NotAuthenticated("the session or token is unknown or expired: log in again")
    if by_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, session.csrf):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return Caller(session.user, session, by_cookie, token)


def require(*roles: str) -> Callable[..., Caller]:
    """A dependency that lets only *roles* through (403 for any other authenticated user)."""

    def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.user.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {who.user.role} may not do this (allowed: {', '.join(roles)})",
            )
        return who

    check.roles = roles  # type: ignore[attr-defined]
    return check


AnyUser = Annotated[Caller, Depends(caller)]
Staff = Annotated[Caller, Depends(require("staff"))]
Amender = Annotated[Caller, Depends(require("staff", "quality"))]
Reader = Annotated[Caller, Depends(require("staff", "quality", "archivist", "regulator"))]
Quality = Annotated[Caller, Depends(require("quality"))]
Archivist = Annotated[Caller, Depends(require("archivist"))]
Verifier = Annotated[Caller, Depends(require("regulator", "quality", "archivist"))]
Auditor = Annotated[Caller, Depends(require("regulator", "quality"))]
Admin = Annotated[Caller, Depends(require("admin"))]
Channel = Annotated[Caller, Depends(require("channel"))]


def signing_staff(who: Caller) -> str:
    """The staff id whose certificate signs for this user; 403 when the user has none."""
    if not who.user.staff_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"user {who.user.username} has no staff certificate"
        )
    return who.user.staff_id
