"""The account page: the sessions of the account, ending them, changing the password, and the state of
two-step verification (its forms post to ``pages.mfa``).

Under DOORWARD_REQUIRE_MFA an account without a second factor sees only the set-up and the logout, and
every other action of these pages answers with that page (403) instead of acting."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.core.errors import InvalidCurrentPassword, PasswordRejected
from doorward.web.pages.account_view import account_view, enrolment_first
from doorward.web.pages.forms import Fields, account_action, on_account, submit
from doorward.web.pages.login import logout_form
from doorward.web.pages.render import as_page, notice, redirect
from doorward.web.services import services_of
from doorward.web.transport import client_of

router = APIRouter(include_in_schema=False)


@router.get("/account")
@as_page
async def account_page(request: Request) -> Response:
    signed_in = await account_action(request, confine=False)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in
    return await account_view(request, user, current, notice=notice(request))


@router.post("/account/sessions/revoke-others")
@as_page
async def revoke_other_sessions(request: Request) -> Response:
    signed_in = await account_action(request)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in
    await services_of(request).auth.logout_all(user.id, keep_session_id=current.id)
    return redirect("/account?done=others_ended")


@router.post("/account/sessions/{session_id}/revoke")
@as_page
async def revoke_session(request: Request, session_id: str) -> Response:
    signed_in = await account_action(request, confine=False)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in
    if session_id == current.id:
        return await logout_form(request)
    if confined := await enrolment_first(request, user, current):
        return confined
    ended = await services_of(request).auth.end_session(user.id, session_id)
    return redirect("/account?done=revoked" if ended else "/account?done=gone")


@router.post("/account/password")
@as_page
async def change_password(request: Request) -> Response:
    services = services_of(request)
    signed_in = await account_action(request)
    if isinstance(signed_in, Response):
        return signed_in
    user, current = signed_in

    async def change(fields: Fields) -> Response:
        client = client_of(request, services.settings.trusted_networks)
        await services.accounts.change_password(
            user, current, fields.get("current_password", ""), fields.get("new_password", ""), client
        )
        return redirect("/account?done=password_changed")

    return await submit(
        request,
        change,
        on_account(request, user, current, "password"),
        at={InvalidCurrentPassword: "current_password", PasswordRejected: "new_password"},
    )
