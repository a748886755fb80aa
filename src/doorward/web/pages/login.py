"""Logging in (the password, then for an account with two-step verification a code or a passkey; or a
passkey alone), registering and logging out with the forms.

A passkey sign-in needs the script (static/doorward.js): it asks the JSON API for the options, lets
the browser's authenticator answer, and posts the answer (``credential.toJSON()``) in a form field
here, so that the session ends up in the cookie exactly as after the password form, and the token
never reaches the page's script."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.core.errors import (
    DoorwardError,
    EmailInvalid,
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    MfaInvalid,
    MfaRequired,
    MfaTokenInvalid,
    PasswordRejected,
    TooManyAttempts,
)
from doorward.core.passkey_errors import UserVerificationRequired
from doorward.core.tokens import looks_like_token
from doorward.web.cookies import cleared_cookie, session_cookie
from doorward.web.errors import status_of
from doorward.web.pages.forms import (
    PASSKEY_LOGIN_FORM,
    SECOND_STEP_FORM,
    Fields,
    Refusal,
    signed_in_as,
    submit,
)
from doorward.web.pages.render import as_page, notice, page, redirect
from doorward.web.services import services_of
from doorward.web.transport import client_of, cookie_token, session_token

router = APIRouter(include_in_schema=False)

INVALID_CREDENTIALS = InvalidCredentials.message
METHODS = ("totp", "recovery_code", "passkey")
"""What a second step may offer; the page carries the sign-in's methods in a hidden field, read back
against this list only."""


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
        email = fields.get("email", "")
        try:
            result = await services.auth.login(email, fields.get("password", ""), client)
        except MfaRequired as second_step:
            return _second_step(request, second_step.token, email, methods=second_step.methods)
        return await _signed_in(request, result.token)

    return await submit(request, log_in, _login_refused(request))


@router.post(PASSKEY_LOGIN_FORM)
@as_page
async def passkey_login_form(request: Request) -> Response:
    """A passkey's assertion (``credential``, the JSON the script got from the browser) for a sign-in
    begun at POST /login/passkey/options."""
    services = services_of(request)

    async def log_in(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        try:
            result = await services.passkeys.login(fields.get("credential", ""), client)
        except MfaRequired as second_step:  # no user verification: the app completes it
            return _second_step(request, second_step.token, "", methods=second_step.methods)
        return await _signed_in(request, result.token)

    return await submit(request, log_in, _login_refused(request))


def _login_refused(request: Request) -> Callable[[Fields, Refusal], Awaitable[Response]]:
    async def refused(fields: Fields, refusal: Refusal) -> Response:
        status, text = refusal.status, refusal.form_error
        # A throttle's wait, an unverified address, a failure of ours: none says anything of the
        # password (either it was right, or none was checked). Any other refusal (unknown email,
        # wrong password, disabled account, malformed form) gets the one same answer.
        # A passkey without its PIN, for an account with nothing to add to it, may say so: the
        # passkey was the user's own.
        shown = TooManyAttempts | EmailUnverified | UserVerificationRequired
        if not isinstance(refusal.error, shown) and status < 500:
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

    return refused


@router.post(SECOND_STEP_FORM)
@as_page
async def second_step_form(request: Request) -> Response:
    """The code (``code``), a recovery code (``recovery_code``) or a passkey's assertion
    (``credential``, posted by the script) for the sign-in ``mfa_token`` names."""
    services = services_of(request)

    async def complete(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        token = fields.get("mfa_token", "")
        if "credential" in fields:
            result = await services.mfa.complete_login(token, client, credential=fields["credential"])
        elif "recovery_code" in fields:
            result = await services.mfa.complete_login(token, client, recovery_code=fields["recovery_code"])
        else:
            result = await services.mfa.complete_login(token, client, code=fields.get("code", ""))
        return await _signed_in(request, result.token)

    async def refused(fields: Fields, refusal: Refusal) -> Response:
        token, email = fields.get("mfa_token", ""), fields.get("email", "")
        if isinstance(refusal.error, MfaTokenInvalid) or not looks_like_token(token):
            # Nothing left to try the code against: the password again (the email kept).
            return page(
                request,
                "login.html",
                status=status_of(MfaTokenInvalid()),
                title="Log in",
                email=email,
                form_error=MfaTokenInvalid().text,
            )
        used = next((name for name in ("credential", "recovery_code") if name in fields), "code")
        wrong = isinstance(refusal.error, MfaInvalid)
        if used == "credential" and wrong:
            wrong, refusal = (
                False,
                replace(refusal, form_error="That passkey could not be verified; try again"),
            )
        return _second_step(
            request,
            token,
            email,
            # A form of an older page carries no methods: the code forms, as before.
            methods=tuple(m for m in fields.get("methods", "").split() if m in METHODS) or METHODS[:2],
            status=refusal.status,
            headers=refusal.headers,
            errors={used: refusal.error.text} if wrong else {},
            form_error="" if wrong else refusal.form_error,
            recovery=used == "recovery_code",
        )

    return await submit(request, complete, refused)


def _second_step(
    request: Request,
    mfa_token: str,
    email: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    form_error: str = "",
    recovery: bool = False,
    methods: tuple[str, ...] = ("totp", "recovery_code"),
) -> Response:
    """The page asking for the code or the passkey (``methods``: what may complete the sign-in), the
    sign-in's token in its forms (and the email, to start again with)."""
    return page(
        request,
        "login_code.html",
        status=status,
        headers=headers,
        title="Two-step verification",
        mfa_token=mfa_token,
        email=email,
        errors=defaultdict(str, errors or {}),
        form_error=form_error,
        recovery=recovery,
        methods=methods,
    )


async def _signed_in(request: Request, token: str) -> Response:
    """The answer to a login that opened a session: the cookie, and on to the account page."""
    services = services_of(request)
    previous = cookie_token(request)
    if previous is not None:
        # This browser's earlier session is being replaced: end it rather than leave it orphaned.
        # Best effort: the new session exists, and a failure here must not hide it.
        with contextlib.suppress(DoorwardError):
            await services.auth.logout(previous)
    return redirect("/account", session_cookie(token, secure=services.settings.cookie_secure))


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
