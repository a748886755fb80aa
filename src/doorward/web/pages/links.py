"""The pages the links in mails lead to: setting a new password, confirming an email address, and the
forms that ask for such a link."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.core.errors import InvalidRequest, PasswordRejected, TokenExpired, TokenInvalid
from doorward.core.models import Client
from doorward.core.tokens import looks_like_token
from doorward.web.cookies import cleared_cookie
from doorward.web.pages.forms import Fields, Refusal, submit
from doorward.web.pages.render import as_page, notice, page, redirect
from doorward.web.services import services_of
from doorward.web.transport import client_of

router = APIRouter(include_in_schema=False)

_RESET_REQUEST = {
    "title": "Forgot your password",
    "intro": "Enter the email address of your account and we will mail you a link to set a new password.",
    "action": "/password/reset/request/form",
    "button": "Send the link",
}
_VERIFY_REQUEST = {
    "title": "Confirm your email address",
    "intro": "Enter the email address you registered with and we will mail you a new confirmation link.",
    "action": "/email/verify/resend/form",
    "button": "Send a new link",
}


DEAD_LINK = "This link was used or has expired."


@router.get("/password/reset")
@as_page
async def reset_page(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is None:
        return page(request, "email_request.html", notice=notice(request), email="", **_RESET_REQUEST)
    if looks_like_token(token):
        try:
            # Asked now, not after the user has typed a new password (the token is not used up).
            await services_of(request).accounts.check_reset_token(token)
        except (TokenInvalid, TokenExpired):
            dead = DEAD_LINK  # a well-formed token no longer stored was used up, or pruned after expiry
        else:
            return page(request, "reset.html", title="Set a new password", token=token, dead_link=False)
    else:
        dead = TokenInvalid().text  # mangled on its way (a mail client cut it), or not ours
    return page(
        request,
        "reset.html",
        status=400,
        title="Set a new password",
        token="",
        form_error=dead,
        dead_link=True,
    )


@router.post("/password/reset/request/form")
@as_page
async def reset_request_form(request: Request) -> Response:
    accounts = services_of(request).accounts
    return await _ask_for_mail(
        request, accounts.request_password_reset, _RESET_REQUEST, "/password/reset?done=reset_sent"
    )


@router.post("/password/reset/confirm/form")
@as_page
async def reset_confirm_form(request: Request) -> Response:
    services = services_of(request)

    async def reset(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        await services.accounts.reset_password(
            fields.get("token", ""), fields.get("new_password", ""), client
        )
        # Every session of the account ended, this browser's too (if it had one): forget its cookie.
        return redirect("/login?done=password_reset", cleared_cookie(secure=services.settings.cookie_secure))

    async def refused(fields: Fields, refusal: Refusal) -> Response:
        return page(
            request,
            "reset.html",
            status=refusal.status,
            headers=refusal.headers,
            title="Set a new password",
            token=fields.get("token", ""),
            errors=refusal.errors,
            form_error=refusal.form_error,
            dead_link=isinstance(refusal.error, TokenInvalid | TokenExpired),
        )

    return await submit(request, reset, refused, at={PasswordRejected: "new_password"})


@router.get("/email/verify")
@as_page
async def verify_page(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is None:
        return page(request, "email_request.html", notice=notice(request), email="", **_VERIFY_REQUEST)
    # A button, not an action on GET: mail scanners and link previews follow links.
    valid = looks_like_token(token)
    return page(
        request,
        "verify.html",
        status=200 if valid else 400,
        title="Confirm your email address",
        token=token if valid else "",
        form_error="" if valid else TokenInvalid().text,
    )


@router.post("/email/verify/form")
@as_page
async def verify_form(request: Request) -> Response:
    async def verify(fields: Fields) -> Response:
        await services_of(request).accounts.verify_email(fields.get("token", ""))
        return redirect("/login?done=verified")

    async def refused(_fields: Fields, refusal: Refusal) -> Response:
        return page(
            request,
            "verify.html",
            status=refusal.status,
            headers=refusal.headers,
            title="Confirm your email address",
            token="",
            form_error=refusal.form_error,
        )

    return await submit(request, verify, refused)


@router.post("/email/verify/resend/form")
@as_page
async def verify_resend_form(request: Request) -> Response:
    accounts = services_of(request).accounts
    return await _ask_for_mail(
        request, accounts.resend_verification, _VERIFY_REQUEST, "/email/verify?done=verify_sent"
    )


async def _ask_for_mail(
    request: Request, send: Callable[[str, Client], Awaitable[None]], texts: dict[str, str], done: str
) -> Response:
    """A form asking for a link by mail. The answer is the same whether or not the account exists."""
    services = services_of(request)

    async def ask(fields: Fields) -> Response:
        await send(fields.get("email", ""), client_of(request, services.settings.trusted_networks))
        return redirect(done)

    async def refused(fields: Fields, refusal: Refusal) -> Response:
        return page(
            request,
            "email_request.html",
            status=refusal.status,
            headers=refusal.headers,
            email=fields.get("email", ""),
            errors=refusal.errors,
            form_error=refusal.form_error,
            **texts,
        )

    # Any 400 (an InvalidRequest) shows next to the email field: the form has no other.
    return await submit(request, ask, refused, at={InvalidRequest: "email"})
