"""Logging in, registering and logging out with the forms."""

from __future__ import annotations

import contextlib
from collections import defaultdict

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
from doorward.web.errors import retry_headers, status_of
from doorward.web.pages.forms import read_form, signed_in_as, wait_text
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
    email = ""
    try:
        fields = await read_form(request)
        email = fields.get("email", "")
        client = client_of(request, services.settings.trusted_networks)
        result = await services.auth.login(email, fields.get("password", ""), client)
    except DoorwardError as exc:
        status = status_of(exc)
        if isinstance(exc, TooManyAttempts):
            text = wait_text(exc)
        elif isinstance(exc, EmailUnverified) or status >= 500:
            text = exc.text  # says nothing of the password: either it was right, or none was checked
        else:
            # Unknown email, wrong password, disabled account, malformed form: all the same answer.
            status, text = 400, INVALID_CREDENTIALS
        return page(
            request,
            "login.html",
            status=status,
            headers=retry_headers(exc),
            title="Log in",
            email=email,
            form_error=text,
        )
    previous = cookie_token(request)
    if previous is not None:
        # This browser's earlier session is being replaced: end it rather than leave it orphaned.
        # Best effort: the new session exists, and a failure here must not hide it.
        with contextlib.suppress(DoorwardError):
            await services.auth.logout(previous)
    return redirect("/account", session_cookie(result.token, secure=services.settings.cookie_secure))


@router.get("/register")
@as_page
async def register_page(request: Request) -> Response:
    return page(request, "register.html", title="Create an account", email="")


@router.post("/register/form")
@as_page
async def register_form(request: Request) -> Response:
    services = services_of(request)
    email = ""
    errors: defaultdict[str, str] = defaultdict(str)
    form_error = ""
    try:
        fields = await read_form(request)
        email = fields.get("email", "")
        client = client_of(request, services.settings.trusted_networks)
        await services.accounts.register(email, fields.get("password", ""), client)
    except DoorwardError as exc:
        if isinstance(exc, PasswordRejected):
            errors["password"] = exc.text
        elif isinstance(exc, EmailInvalid | EmailTaken):
            errors["email"] = exc.text
        else:
            form_error = wait_text(exc) if isinstance(exc, TooManyAttempts) else exc.text
        return page(
            request,
            "register.html",
            status=status_of(exc),
            headers=retry_headers(exc),
            title="Create an account",
            email=email,
            errors=errors,
            form_error=form_error,
        )
    done = "verify" if services.settings.require_email_verification else "registered"
    return redirect(f"/login?done={done}")


@router.post("/logout/form")
@as_page
async def logout_form(request: Request) -> Response:
    services = services_of(request)
    token = session_token(request)
    if token is not None:
        await services.auth.logout(token)
    return redirect("/login?done=logged_out", cleared_cookie(secure=services.settings.cookie_secure))
