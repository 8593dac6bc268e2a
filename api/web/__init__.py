"""`ledger serve`: one FastAPI application, the JSON API under /api/v1 and the pages.

`create_app(settings)` opens the station and the user store for the application's lifetime
(with ``stamp=True`` a background stamper timestamps what the requests record). Expected
failures (`LedgerError`) answer 4xx with a one-line ``detail``; nothing was written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.web import pages, pages_archive, routes
from api.web.context import WebContext
from services.archive_history import PackageNotFound
from services.archive_jobs import ArchiveJobNotFound, ArchiveJobRunning
from services.booking import SlotFull
from services.serving import start_stamping
from services.settings import Settings
from services.station import Station
from services.steps import DonationNotFound, WorkflowError
from services.users import AccountLocked, AuthenticationFailed, IdempotencyConflict, UserStore
from services.web_reads import DonorNotFound
from signing.errors import InputError, LedgerError, PdfUnreadable

STATIC = pages.HERE / "static"
#: The pages load nothing from elsewhere and run no script but the vendored htmx (static/).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; img-src 'self' data:; style-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def status_of(exc: LedgerError) -> int:
    """The HTTP status of an expected failure."""
    if isinstance(exc, AuthenticationFailed | AccountLocked):
        return 401
    if isinstance(exc, DonationNotFound | DonorNotFound | PackageNotFound | ArchiveJobNotFound):
        return 404
    if isinstance(exc, IdempotencyConflict | SlotFull | ArchiveJobRunning):
        return 409
    if isinstance(exc, PdfUnreadable):
        return 422
    if isinstance(exc, WorkflowError):
        return 409  # the donation's state, the rules or the signer's role refuse it
    if isinstance(exc, InputError):
        return 400
    return 400


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def create_app(settings: Settings, *, stamp: bool = False) -> FastAPI:
    station = Station.open(settings)
    ctx = WebContext(settings, station, UserStore(settings.db))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop_stamping = start_stamping(station) if stamp else None
        try:
            yield
        finally:
            ctx.archive_jobs.wait_all(timeout=600)  # a package half made stays a .partial folder
            if stop_stamping is not None:
                stop_stamping()
            station.close()

    app = FastAPIOffline(
        static_url="/static-docs",
        title="Donation ledger",
        version="1",
        description="Record donation steps, amend, audit, archive and verify (docs/http.md).",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.include_router(routes.router)
    app.include_router(pages.router)
    app.include_router(pages_archive.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        if not request.url.path.startswith(("/docs", "/redoc")):  # Swagger UI runs inline code
            response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        return response

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        code = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse({"detail": one_line(exc)}, code, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """JSON under /api; pages answer 401 with the login form and 403 with a page."""
        if request.url.path.startswith(("/api", "/docs", "/redoc", "/static")):
            return JSONResponse(
                {"detail": one_line(exc.detail)}, exc.status_code, headers=exc.headers
            )
        if exc.status_code == 401:
            return pages.login_page(request, one_line(exc.detail), 401)
        return pages.render(
            request, "message.html", None, exc.status_code, message=one_line(exc.detail)
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
        return JSONResponse({"detail": one_line("; ".join(parts))}, 422)

    return app
