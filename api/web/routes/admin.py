"""Administration: users and roles, station parameters, certificate revocation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.web.auth import (
    Admin,
    Ctx,
    signing_staff,
)
from api.web.models import RevocationIn, SettingIn, UserAddedOut, UserIn, UserOut
from api.web.routes.common import user_out
from services import staff as staff_service
from services import station_settings as station_settings_service
from services import users
from services.staff import staff_signer
from signing.errors import InputError, LedgerError

router = APIRouter()


@router.get("/users", response_model=list[UserOut], tags=["admin"])
def list_users(ctx: Ctx, who: Admin) -> list[dict[str, Any]]:
    return [user_out(u) for u in ctx.users.users()]


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
    return {**user_out(added.user), "generated_password": added.generated_password}


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
