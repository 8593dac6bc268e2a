"""The JSON API under /api/v1, one router per resource."""

from __future__ import annotations

from fastapi import APIRouter

from api.web.routes import admin, archive, auth, booking, donations, quality, recruit, slots, verify

#: Each resource's router, in the order the OpenAPI document lists them.
ROUTERS = (
    auth.router,
    donations.router,
    booking.router,
    slots.router,
    recruit.router,
    quality.router,
    archive.router,
    verify.router,
    admin.router,
)
PREFIX = "/api/v1"

router = APIRouter(prefix=PREFIX)
for _router in ROUTERS:
    router.include_router(_router)
