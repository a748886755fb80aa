"""The FastAPI application factory: ``create_app(settings)`` wires everything, nothing at import."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from doorward import __version__
from doorward.config import Settings
from doorward.core.clock import Clock, utc_now
from doorward.logs import configure_logging
from doorward.metrics import MULTIPROC_DIR, AddressServer, PrometheusMetrics
from doorward.web import (
    account_routes,
    admin_audit_routes,
    admin_routes,
    care_routes,
    metrics_routes,
    mfa_routes,
    pages,
    passkey_routes,
    probes,
    routes,
)
from doorward.web.errors import install_error_handlers
from doorward.web.fastpath import DoorwardApp
from doorward.web.headers import AnswerHeaders, cors_options
from doorward.web.openapi import install_openapi
from doorward.web.responses import Envelope
from doorward.web.security import install_security
from doorward.wiring import open_services

DESCRIPTION = """\
Login and session service. Post an email and a password to `/login`, get a session token, and send
it as `Authorization: Bearer <token>`. Every error body has `success: false` and `error`; errors of
endpoints other than `/login` also carry a stable `code`.

An account with two-step verification gets a 401 `mfa_required` with an `mfaToken` for the right
password, and finishes at `/login/mfa`. Under `DOORWARD_REQUIRE_MFA`, a session of an account
without a second factor may only use `/session`, `/mfa` and its set-up, `/logout` and `/logout/all`:
every other endpoint that needs a session answers 403 `mfa_enrollment_required`.

Passkeys (WebAuthn): add one at `/passkeys/options` then `/passkeys`; sign in with one alone at
`/login/passkey/options` then `/login/passkey`, or use one as the second step (`/login/mfa/options`,
then `/login/mfa` with `credential`). The WebAuthn JSON is the Level 3 serialisation the browser's
`PublicKeyCredential.parse...OptionsFromJSON` reads and `credential.toJSON()` writes.

The admin API (`/admin/*`, tag `admin`) takes an admin key from `doorward admin keys create`, as
`Authorization: Bearer dwa_...`, never a session; a key of scope `read` may only read (403
`admin_key_read_only` elsewhere). Each key has a rate limit of its own, and every call is an audit event
with the key's name.
"""

ADMIN_TAG = {
    "name": "admin",
    "description": "Accounts and the audit trail for operators, with an admin key (not a session)",
}


_log = logging.getLogger("doorward")


def create_served_app() -> FastAPI:
    """The factory ``doorward serve`` hands to uvicorn: each worker process sets up logging itself."""
    settings = Settings()
    configure_logging(settings.log_level, access_log=settings.access_log)
    return create_app(settings)


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """Build the application; the database engine and hash pool open when it starts serving."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = PrometheusMetrics() if settings.metrics_enabled else None
        async with open_services(settings, clock=clock, metrics=metrics) as services:
            app.state.services = services
            assert isinstance(app, DoorwardApp)
            app.metrics = metrics
            listen = settings.metrics_listen
            # Under serve --workers N the supervisor serves the address, for every worker at once.
            address = (
                AddressServer(*listen, metrics.scrape)
                if listen is not None and metrics is not None and MULTIPROC_DIR not in os.environ
                else None
            )
            where = "thread(s)" if settings.hash_socket is None else "hashing processes the workers share"
            _log.info(
                "hashing on %d %s, %d more may wait (DOORWARD_HASH_WORKERS, DOORWARD_HASH_QUEUE)",
                settings.hash_workers,
                where,
                settings.hash_queue,
            )
            try:
                yield
            finally:
                app.metrics = None
                if address is not None:
                    address.close()

    # POST /login and GET /session are answered ahead of all below (web/fastpath.py).
    app = DoorwardApp(
        cors=cors_options(settings),
        headers=AnswerHeaders.of(settings),
        title="doorward",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=[ADMIN_TAG],
        lifespan=lifespan,
        default_response_class=Envelope,
        # The viewers run a CDN's script, unpinned, on the origin of the login page and its session
        # cookie, so they are opt-in (README, "API documentation"); /openapi.json is always served.
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        # Starlette's slash redirect writes the request's Host into Location: an open redirect
        # (curl -H 'Host: evil.example' .../session/). A wrong path is a 404 like any other.
        redirect_slashes=False,
    )
    install_error_handlers(app, not_found_page=pages.not_found_page)
    install_security(app, settings, page=pages.error_page, origin_only=pages.ORIGIN_ONLY_FORMS)
    app.include_router(routes.router)
    app.include_router(probes.router)
    app.include_router(account_routes.router)
    app.include_router(care_routes.router)
    app.include_router(mfa_routes.router)
    app.include_router(passkey_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(admin_audit_routes.router)
    app.include_router(pages.router)
    app.include_router(metrics_routes.router)
    install_openapi(app)
    app.mount("/static", StaticFiles(packages=[("doorward.web", "static")]), name="static")
    return app
