"""Tokens: the OAuth2 password grant, logout, who am I."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import OAuth2PasswordRequestForm

from api.web.auth import (
    AnyUser,
    Ctx,
)
from api.web.models import TokenOut, UserOut
from api.web.routes.common import user_out

router = APIRouter()


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
    return user_out(who.user)
