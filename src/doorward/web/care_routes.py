"""The JSON API of an account holder's own care (issue 23): a new email address, confirmed by a
link mailed to it (or refused by the "this wasn't me" link mailed to the old one), and deleting
the account. Each change re-authenticates through core/reauth.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from doorward.core.errors import InvalidRequest, InvalidSession
from doorward.core.models import Session
from doorward.core.passwords import MAX_RAW_PASSWORD_LENGTH
from doorward.web.body import documented_body, json_body
from doorward.web.mfa_routes import SET_UP, STEP_UP
from doorward.web.responses import Envelope
from doorward.web.routes import OVERLOADED, THROTTLED, UNAVAILABLE, Authenticated, request_client
from doorward.web.schemas import Code, ErrorOut, OkOut, Text, TokenIn
from doorward.web.services import services_of
from doorward.web.transport import session_token

router = APIRouter(default_response_class=Envelope)


class EmailChangeIn(BaseModel):
    """The current password, and the address to move the account to."""

    password: Annotated[Text, Field(min_length=1, max_length=MAX_RAW_PASSWORD_LENGTH)]
    newEmail: Annotated[Text, Field(min_length=1, max_length=320)]


class AccountDeleteIn(BaseModel):
    """The current password and, when the account has the app, a code from it or a recovery code."""

    password: Annotated[Text, Field(min_length=1, max_length=MAX_RAW_PASSWORD_LENGTH)]
    code: Annotated[Code | None, Field(examples=["123456", "7k3mq-x9p2d"])] = None


EmailChangeBody = Annotated[EmailChangeIn, Depends(json_body(EmailChangeIn, InvalidRequest))]
DeleteBody = Annotated[AccountDeleteIn, Depends(json_body(AccountDeleteIn, InvalidRequest))]
TokenBody = Annotated[TokenIn, Depends(json_body(TokenIn, InvalidRequest))]

ENROLMENT_FIRST: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorOut,
        "description": "mfa_enrollment_required (DOORWARD_REQUIRE_MFA, no second factor yet); or csrf: "
        "sent with the session cookie, from another origin or without X-CSRF-Token",
    }
}
LINK_ERRORS = "token_invalid (unknown, used or for a disabled account) or token_expired"


@router.post(
    "/email/change",
    summary="Move your account to a new address: a link goes to it (always 202 for a usable request)",
    status_code=202,
    response_model=None,
    openapi_extra=documented_body(EmailChangeIn),
    responses={
        202: {
            "model": OkOut,
            "description": "Accepted: the new address gets a link unless another account has it (the "
            "answer is the same either way); the current address gets a notice",
        },
        400: {
            "model": ErrorOut,
            "description": f"email_invalid, email_unchanged (it is your address already), {STEP_UP}",
        },
        **SET_UP,
        **ENROLMENT_FIRST,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def change_email(request: Request, body: EmailChangeBody, auth: Authenticated) -> Envelope:
    user, _ = auth
    services = services_of(request)
    await services.care.request_email_change(user, body.password, body.newEmail, request_client(request))
    return Envelope({"success": True}, status_code=202)


async def _current_session(request: Request) -> Session | None:
    """The session of the request's token, if it carries a valid one (a confirmation keeps it)."""
    token = session_token(request)
    if token is None:
        return None
    try:
        return (await services_of(request).auth.check(token))[1]
    except InvalidSession:
        return None


@router.post(
    "/email/change/confirm",
    summary="Switch to the new address with the token mailed to it; your other sessions end",
    response_model=None,
    openapi_extra=documented_body(TokenIn),
    responses={
        200: {"model": OkOut, "description": "Switched (and verified)"},
        400: {"model": ErrorOut, "description": LINK_ERRORS},
        409: {"model": ErrorOut, "description": "email_taken: another account has taken the address since"},
        **UNAVAILABLE,
    },
)
async def confirm_email_change(request: Request, body: TokenBody) -> Envelope:
    care = services_of(request).care
    await care.confirm_email_change(body.token, await _current_session(request))
    return Envelope({"success": True})


@router.post(
    "/email/change/revert",
    summary='"This wasn\'t me": every session ends, the address stays, a reset link is mailed',
    response_model=None,
    openapi_extra=documented_body(TokenIn),
    responses={
        200: {"model": OkOut, "description": "Done: a password reset link is on its way"},
        400: {"model": ErrorOut, "description": LINK_ERRORS},
        409: {
            "model": ErrorOut,
            "description": "email_taken: another account took the old address in the same instant",
        },
        **UNAVAILABLE,
    },
)
async def revert_email_change(request: Request, body: TokenBody) -> Envelope:
    await services_of(request).care.revert_email_change(body.token)
    return Envelope({"success": True})


@router.post(
    "/account/delete",
    summary="Delete your account and everything it holds, at once",
    response_model=None,
    openapi_extra=documented_body(AccountDeleteIn),
    responses={
        200: {"model": OkOut, "description": "Deleted; a last mail confirms it"},
        404: {"model": ErrorOut, "description": "user_not_found: the account was deleted meanwhile"},
        400: {
            "model": ErrorOut,
            "description": f"code_invalid (the app is on: a code, or a recovery code; counted by the "
            f"throttle), {STEP_UP}",
        },
        **SET_UP,
        **ENROLMENT_FIRST,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def delete_account(request: Request, body: DeleteBody, auth: Authenticated) -> Envelope:
    user, _ = auth
    await services_of(request).care.delete(user, body.password, body.code, request_client(request))
    return Envelope({"success": True})
