"""The pages of an account holder's own care (issue 23): asking for a new email address (a form on the
account page), the pages its two mailed links open (confirm the new address; "this wasn't me"), and
deleting the account (a page of its own that says what goes, then asks for the proof)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.core.errors import CodeInvalid, EmailInvalid, InvalidCurrentPassword, TokenInvalid
from doorward.core.tokens import looks_like_token
from doorward.web.cookies import cleared_cookie
from doorward.web.pages.forms import Fields, Refusal, account_action, on_account, signed_in_as, submit
from doorward.web.pages.render import as_page, page, redirect
from doorward.web.security import csrf_token
from doorward.web.services import services_of
from doorward.web.transport import client_of

router = APIRouter(include_in_schema=False)

_LINKS = {
    "confirm": ("Confirm your new email address", "/email/change/confirm/form", "Use this address"),
    "revert": ("This wasn't me", "/email/change/revert/form", "End every session and reset my password"),
}


@router.post("/account/email")
@as_page
async def change_email_form(request: Request) -> Response:
    services = services_of(request)
    signed_in = await account_action(request)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def change(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        await services.care.request_email_change(
            user, fields.get("email_password", ""), fields.get("new_email", ""), client
        )
        return redirect("/account?done=email_change_sent")

    return await submit(
        request,
        change,
        on_account(request, user, current, "email"),
        at={InvalidCurrentPassword: "email_password", EmailInvalid: "new_email"},
    )


async def _link_page(request: Request, kind: str) -> Response:
    """A mailed link's page: a button, not an action on GET (mail scanners follow links)."""
    token = request.query_params.get("token", "")
    valid = looks_like_token(token)
    title, action, button = _LINKS[kind]
    return page(
        request,
        "email_change.html",
        status=200 if valid else 400,
        title=title,
        action=action,
        button=button,
        kind=kind,
        token=token if valid else "",
        form_error="" if valid else TokenInvalid().text,
        csrf_token=await csrf_token(request),
    )


async def _link_refused(request: Request, kind: str, refusal: Refusal) -> Response:
    title, action, button = _LINKS[kind]
    return page(
        request,
        "email_change.html",
        status=refusal.status,
        headers=refusal.headers,
        title=title,
        action=action,
        button=button,
        kind=kind,
        token="",
        form_error=refusal.form_error,
        csrf_token=await csrf_token(request),
    )


@router.get("/email/change/confirm")
@as_page
async def confirm_page(request: Request) -> Response:
    return await _link_page(request, "confirm")


@router.post("/email/change/confirm/form")
@as_page
async def confirm_form(request: Request) -> Response:
    services = services_of(request)

    async def confirm(fields: Fields) -> Response:
        signed_in = await signed_in_as(request)
        await services.care.confirm_email_change(fields.get("token", ""), signed_in[1] if signed_in else None)
        return redirect("/account?done=email_changed" if signed_in else "/login?done=email_changed")

    async def refused(_fields: Fields, refusal: Refusal) -> Response:
        return await _link_refused(request, "confirm", refusal)

    return await submit(request, confirm, refused)


@router.get("/email/change/revert")
@as_page
async def revert_page(request: Request) -> Response:
    return await _link_page(request, "revert")


@router.post("/email/change/revert/form")
@as_page
async def revert_form(request: Request) -> Response:
    services = services_of(request)

    async def revert(fields: Fields) -> Response:
        await services.care.revert_email_change(fields.get("token", ""))
        # Every session ended, this browser's too: forget its cookie.
        return redirect("/login?done=email_reverted", cleared_cookie(secure=services.settings.cookie_secure))

    async def refused(_fields: Fields, refusal: Refusal) -> Response:
        return await _link_refused(request, "revert", refusal)

    return await submit(request, revert, refused)


@router.get("/account/delete")
@as_page
async def delete_page(request: Request) -> Response:
    signed_in = await account_action(request)
    if isinstance(signed_in, Response):
        return signed_in
    user, _current = signed_in
    return await _delete_view(request, user.id, user.email)


async def _delete_view(request: Request, user_id: int, email: str, **context: object) -> Response:
    services = services_of(request)
    async with services.store.read() as tx:
        factor = await tx.factors.totp(user_id)
    return page(
        request,
        "account_delete.html",
        title="Delete your account",
        signed_in=True,
        email=email,
        needs_code=factor is not None and factor.confirmed_at is not None,
        csrf_token=await csrf_token(request),
        **context,
    )


@router.post("/account/delete/form")
@as_page
async def delete_form(request: Request) -> Response:
    services = services_of(request)
    signed_in = await account_action(request)
    if isinstance(signed_in, Response):
        return signed_in
    user, _current = signed_in

    async def delete(fields: Fields) -> Response:
        if fields.get("confirm") != "yes":
            return await _delete_view(
                request, user.id, user.email, status=400, form_error="Tick the box to confirm."
            )
        client = client_of(request, services.settings.trusted_networks)
        await services.care.delete(user, fields.get("password", ""), fields.get("code") or None, client)
        return redirect("/login?done=account_deleted", cleared_cookie(secure=services.settings.cookie_secure))

    async def refused(_fields: Fields, refusal: Refusal) -> Response:
        return await _delete_view(
            request,
            user.id,
            user.email,
            status=refusal.status,
            headers=refusal.headers,
            errors=refusal.errors,
            form_error=refusal.form_error,
        )

    return await submit(
        request, delete, refused, at={InvalidCurrentPassword: "password", CodeInvalid: "code"}
    )
