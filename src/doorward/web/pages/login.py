"""Logging in, registering and logging out with the forms."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.core.errors import (
    DoorwardError,
    EmailInvalid,
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    PasswordRejected,
    TooManyAttempts,
)
from doorward.web.cookies import cleared_cookie, session_cookie
from doorward.web.pages.forms import Fields, Refusal, signed_in_as, submit
from doorward.web.pages.render import as_page, notice, page, redirect
from doorward.web.services import services_of
from doorward.web.transport import client_of, cookie_token, session_token

router = APIRouter(include_in_schema=False)

INVALID_CREDENTIALS = InvalidCredentials.message


@router.get("/login")
@as_page
async def login_page(request: Request) -> Response:
    if await signed_in_as(request):
        return redirect("/account")
    return page(request, "login.html", title="Log in", notice=notice(request), email="")


@router.post("/login/form")
@as_page
async def login_form(request: Request) -> Response:
    services = services_of(request)

    async def log_in(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        result = await services.auth.login(fields.get("email", ""), fields.get("password", ""), client)
        previous = cookie_token(request)
        if previous is not None:
            # This browser's earlier session is being replaced: end it rather than leave it orphaned.
            # Best effort: the new session exists, and a failure here must not hide it.
            with contextlib.suppress(DoorwardError):
                await services.auth.logout(previous)
        return redirect("/account", session_cookie(result.token, secure=services.settings.cookie_secure))

    async def refused(fields: Fields, refusal: Refusal) -> Response:
        status, text = refusal.status, refusal.form_error
        # A throttle's wait, an unverified address, a failure of ours: none says anything of the
        # password (either it was right, or none was checked). Any other refusal (unknown email,
        # wrong password, disabled account, malformed form) gets the one same answer.
        if not isinstance(refusal.error, TooManyAttempts | EmailUnverified) and status < 500:
            status, text = 400, INVALID_CREDENTIALS
        return page(
            request,
            "login.html",
            status=status,
            headers=refusal.headers,
            title="Log in",
            email=fields.get("email", ""),
            form_error=text,
        )

    return await submit(request, log_in, refused)


@router.get("/register")
@as_page
async def register_page(request: Request) -> Response:
    return page(request, "register.html", title="Create an account", email="")


@router.post("/register/form")
@as_page
async def register_form(request: Request) -> Response:
    services = services_of(request)

    async def register(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        await services.accounts.register(fields.get("email", ""), fields.get("password", ""), client)
        done = "verify" if services.settings.require_email_verification else "registered"
        return redirect(f"/login?done={done}")

    async def refused(fields: Fields, refusal: Refusal) -> Response:
        return page(
            request,
            "register.html",
            status=refusal.status,
            headers=refusal.headers,
            title="Create an account",
            email=fields.get("email", ""),
            errors=refusal.errors,
            form_error=refusal.form_error,
        )

    return await submit(
        request,
        register,
        refused,
        at={PasswordRejected: "password", EmailInvalid: "email", EmailTaken: "email"},
    )


@router.post("/logout/form")
@as_page
async def logout_form(request: Request) -> Response:
    services = services_of(request)
    token = session_token(request)
    if token is not None:
        await services.auth.logout(token)
    return redirect("/login?done=logged_out", cleared_cookie(secure=services.settings.cookie_secure))
