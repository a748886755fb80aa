"""The JSON API of an account's life after its login: its sessions, its password (changed, or reset
through a mailed link), and the verification of its email address."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from doorward.core.errors import InvalidRequest, SessionNotFound
from doorward.web.body import documented_body, json_body
from doorward.web.responses import Envelope
from doorward.web.routes import (
    CROSS_SITE,
    OVERLOADED,
    THROTTLED,
    UNAVAILABLE,
    Authenticated,
    SignedIn,
    request_client,
    session_times,
)
from doorward.web.schemas import (
    EmailIn,
    EndedOut,
    ErrorOut,
    OkOut,
    PasswordChangeIn,
    ResetConfirmIn,
    SessionListOut,
    TokenIn,
)
from doorward.web.services import services_of

router = APIRouter(default_response_class=Envelope)

PasswordChangeBody = Annotated[PasswordChangeIn, Depends(json_body(PasswordChangeIn, InvalidRequest))]
EmailBody = Annotated[EmailIn, Depends(json_body(EmailIn, InvalidRequest))]
TokenBody = Annotated[TokenIn, Depends(json_body(TokenIn, InvalidRequest))]
ResetConfirmBody = Annotated[ResetConfirmIn, Depends(json_body(ResetConfirmIn, InvalidRequest))]

UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "invalid_session: no valid session token"}
}
ENROLMENT_FIRST = "mfa_enrollment_required: DOORWARD_REQUIRE_MFA, and the account has no second factor yet"
"""The 403 of an ``Authenticated`` route (a change also answers web/openapi.py's csrf with it)."""


@router.get(
    "/sessions",
    summary="List your live sessions",
    response_model=None,
    responses={
        200: {"model": SessionListOut, "description": "Newest first"},
        **UNAUTHENTICATED,
        403: {"model": ErrorOut, "description": ENROLMENT_FIRST},
        **UNAVAILABLE,
    },
)
async def list_sessions(request: Request, auth: Authenticated) -> Envelope:
    user, current = auth
    sessions = await services_of(request).auth.list_sessions(user.id)
    return Envelope(
        {
            "success": True,
            "sessions": [
                {
                    **session_times(s),
                    "clientAddress": s.client_address,
                    "userAgent": s.user_agent,
                    "current": s.id == current.id,
                    "aal": s.aal,
                    "amr": s.amr,
                }
                for s in sessions
            ],
        }
    )


@router.delete(
    "/sessions/{session_id}",
    summary="End one of your sessions",
    response_model=None,
    responses={
        200: {"model": OkOut, "description": "Ended"},
        403: {"model": ErrorOut, "description": f"{ENROLMENT_FIRST}; or {CROSS_SITE[403]['description']}"},
        404: {"model": ErrorOut, "description": "session_not_found: you have no session with this id"},
        **UNAUTHENTICATED,
        **UNAVAILABLE,
    },
)
async def end_session(request: Request, session_id: str, auth: Authenticated) -> Envelope:
    user, _ = auth
    if not await services_of(request).auth.end_session(user.id, session_id):
        raise SessionNotFound()
    return Envelope({"success": True})


@router.post(
    "/logout/all",
    summary="End every one of your sessions, this one included",
    response_model=None,
    responses={
        200: {"model": EndedOut, "description": "How many ended"},
        **UNAUTHENTICATED,
        **UNAVAILABLE,
    },
)
async def logout_all(request: Request, auth: SignedIn) -> Envelope:  # open under DOORWARD_REQUIRE_MFA
    user, _ = auth
    ended = await services_of(request).auth.logout_all(user.id)
    return Envelope({"success": True, "ended": ended})


@router.post(
    "/password/change",
    summary="Change your password; your other sessions end",
    response_model=None,
    openapi_extra=documented_body(PasswordChangeIn),
    responses={
        200: {"model": OkOut, "description": "Changed; a notification mail is on its way"},
        400: {
            "model": ErrorOut,
            "description": "invalid_current_password, password_unchanged (the new password is the "
            "current one), invalid_request, or a password_* policy code",
        },
        403: {"model": ErrorOut, "description": f"{ENROLMENT_FIRST}; or {CROSS_SITE[403]['description']}"},
        **UNAUTHENTICATED,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def change_password(request: Request, body: PasswordChangeBody, auth: Authenticated) -> Envelope:
    user, session = auth
    services = services_of(request)
    client = request_client(request)
    await services.accounts.change_password(user, session, body.currentPassword, body.newPassword, client)
    return Envelope({"success": True})


_ACCEPTED = {"success": True}


@router.post(
    "/password/reset/request",
    summary="Mail a password reset link (always 202: whether the account exists is not said)",
    status_code=202,
    response_model=None,
    openapi_extra=documented_body(EmailIn),
    responses={
        202: {"model": OkOut, "description": "Accepted"},
        400: {"model": ErrorOut, "description": 'invalid_request: the body is not {"email": <string>}'},
        **THROTTLED,
        **UNAVAILABLE,
    },
)
async def request_password_reset(request: Request, body: EmailBody) -> Envelope:
    services = services_of(request)
    await services.accounts.request_password_reset(body.email, request_client(request))
    return Envelope(_ACCEPTED, status_code=202)


@router.post(
    "/password/reset/confirm",
    summary="Set a new password with a mailed token; every session ends",
    response_model=None,
    openapi_extra=documented_body(ResetConfirmIn),
    responses={
        200: {"model": OkOut, "description": "Password set"},
        400: {"model": ErrorOut, "description": "token_invalid, token_expired, or a password_* policy code"},
        **OVERLOADED,
    },
)
async def confirm_password_reset(request: Request, body: ResetConfirmBody) -> Envelope:
    await services_of(request).accounts.reset_password(body.token, body.newPassword, request_client(request))
    return Envelope({"success": True})


@router.post(
    "/email/verify",
    summary="Confirm an email address with the mailed token",
    response_model=None,
    openapi_extra=documented_body(TokenIn),
    responses={
        200: {"model": OkOut, "description": "Confirmed"},
        400: {"model": ErrorOut, "description": "token_invalid or token_expired"},
        **UNAVAILABLE,
    },
)
async def verify_email(request: Request, body: TokenBody) -> Envelope:
    await services_of(request).accounts.verify_email(body.token)
    return Envelope({"success": True})


@router.post(
    "/email/verify/resend",
    summary="Mail a new verification link (always 202)",
    status_code=202,
    response_model=None,
    openapi_extra=documented_body(EmailIn),
    responses={
        202: {"model": OkOut, "description": "Accepted"},
        400: {"model": ErrorOut, "description": 'invalid_request: the body is not {"email": <string>}'},
        **THROTTLED,
        **UNAVAILABLE,
    },
)
async def resend_verification(request: Request, body: EmailBody) -> Envelope:
    services = services_of(request)
    await services.accounts.resend_verification(body.email, request_client(request))
    return Envelope(_ACCEPTED, status_code=202)
