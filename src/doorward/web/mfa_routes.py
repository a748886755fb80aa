"""The JSON API of multi-factor login (issue 19): setting up an authenticator app (TOTP), its recovery
codes, turning it off, and a login's second step.

Changing a factor takes the current password in the body (the step-up); every set-up call needs a
session, bearer or cookie (the CSRF guard checks cookie posts, as for every other endpoint), and stays
open under DOORWARD_REQUIRE_MFA: it is what that policy asks the user to do.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from doorward.core.errors import InvalidRequest
from doorward.web.body import documented_body, json_body
from doorward.web.factor_schemas import (
    MfaLoginIn,
    MfaStatusOut,
    RecoveryCodesOut,
    TotpEnrolmentOut,
)
from doorward.web.responses import Envelope
from doorward.web.routes import (
    OVERLOADED,
    THROTTLED,
    UNAVAILABLE,
    SignedIn,
    login_body,
    request_client,
)
from doorward.web.schemas import (
    CodeIn,
    ErrorOut,
    LoginOut,
    OkOut,
    PasswordIn,
    TotpDisableIn,
)
from doorward.web.services import services_of

router = APIRouter(default_response_class=Envelope)

PasswordBody = Annotated[PasswordIn, Depends(json_body(PasswordIn, InvalidRequest))]
CodeBody = Annotated[CodeIn, Depends(json_body(CodeIn, InvalidRequest))]
TotpDisableBody = Annotated[TotpDisableIn, Depends(json_body(TotpDisableIn, InvalidRequest))]
MfaLoginBody = Annotated[MfaLoginIn, Depends(json_body(MfaLoginIn, InvalidRequest))]

SET_UP: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "invalid_session: no valid session token"},
    403: {
        "model": ErrorOut,
        "description": "csrf: sent with the session cookie, from another origin or without X-CSRF-Token",
    },
}
"""What every set-up call may answer besides its own errors."""

FACTOR_CHANGE: dict[int | str, dict[str, Any]] = {
    **SET_UP,
    403: {
        "model": ErrorOut,
        "description": "aal2_required: the account has a second factor (the app or a passkey) and this "
        "session was not signed in with one (aal 1); csrf: "
        + SET_UP[403]["description"].removeprefix("csrf: "),
    },
}
"""What a call that adds, removes or renews a second factor may answer besides its own errors."""

STEP_UP = "invalid_current_password (counted by the throttle like a failed login) or invalid_request"


@router.get(
    "/mfa",
    summary="Your two-step verification: is the app on, how many recovery codes are left",
    response_model=None,
    responses={
        200: {"model": MfaStatusOut, "description": "recoveryCodesLeft is 0 while the app is off"},
        401: SET_UP[401],
        **UNAVAILABLE,
    },
)
async def mfa_status(request: Request, auth: SignedIn) -> Envelope:
    user, _ = auth
    status = await services_of(request).mfa.status(user)
    return Envelope({"success": True, "totp": status.totp, "recoveryCodesLeft": status.recovery_codes_left})


# Authentication before the body in each signature: without a session, 401 whatever was sent.
@router.post(
    "/mfa/totp",
    summary="Start setting up an authenticator app: a new secret, not active until confirmed",
    response_model=None,
    openapi_extra=documented_body(PasswordIn),
    responses={
        200: {
            "model": TotpEnrolmentOut,
            "description": "A pending secret (calling again replaces it); confirm it at /mfa/totp/confirm",
        },
        400: {"model": ErrorOut, "description": STEP_UP},
        409: {"model": ErrorOut, "description": "totp_active: two-step verification is already on"},
        **FACTOR_CHANGE,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def begin_totp(request: Request, auth: SignedIn, body: PasswordBody) -> Envelope:
    user, session = auth
    enrolment = await services_of(request).mfa.begin_totp(
        user, body.password, request_client(request), aal=session.aal
    )
    return Envelope({"success": True, "secret": enrolment.secret, "otpauthUri": enrolment.uri})


@router.post(
    "/mfa/totp/confirm",
    summary="Turn the authenticator app on with a code from it; get the recovery codes, shown once",
    response_model=None,
    openapi_extra=documented_body(CodeIn),
    responses={
        200: {"model": RecoveryCodesOut, "description": "On; a mail tells you. Keep the 10 codes safe"},
        400: {"model": ErrorOut, "description": "code_invalid (wrong or used code) or invalid_request"},
        409: {
            "model": ErrorOut,
            "description": "totp_not_pending (start at POST /mfa/totp) or totp_active (already on)",
        },
        **FACTOR_CHANGE,
        **OVERLOADED,
    },
)
async def confirm_totp(request: Request, auth: SignedIn, body: CodeBody) -> Envelope:
    user, session = auth
    codes = await services_of(request).mfa.confirm_totp(
        user, body.code, request_client(request), aal=session.aal
    )
    return Envelope({"success": True, "recoveryCodes": codes})


@router.post(
    "/mfa/totp/disable",
    summary="Turn two-step verification off, with your password and a code or a recovery code",
    response_model=None,
    openapi_extra=documented_body(TotpDisableIn),
    responses={
        200: {"model": OkOut, "description": "Off; the recovery codes are void; a mail tells you"},
        400: {"model": ErrorOut, "description": f"code_invalid (counted by the throttle), {STEP_UP}"},
        409: {
            "model": ErrorOut,
            "description": "mfa_not_enabled: two-step verification is not on; last_factor: under "
            "DOORWARD_REQUIRE_MFA the account's last second factor stays",
        },
        **FACTOR_CHANGE,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def disable_totp(request: Request, auth: SignedIn, body: TotpDisableBody) -> Envelope:
    user, session = auth
    await services_of(request).mfa.disable_totp(
        user, body.password, body.code, request_client(request), aal=session.aal
    )
    return Envelope({"success": True})


@router.post(
    "/mfa/recovery-codes",
    summary="A new set of recovery codes, shown once; the old set is void",
    response_model=None,
    openapi_extra=documented_body(PasswordIn),
    responses={
        200: {"model": RecoveryCodesOut, "description": "The new codes; a mail tells you"},
        400: {"model": ErrorOut, "description": STEP_UP},
        409: {"model": ErrorOut, "description": "mfa_not_enabled: two-step verification is not on"},
        **FACTOR_CHANGE,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def regenerate_codes(request: Request, auth: SignedIn, body: PasswordBody) -> Envelope:
    user, session = auth
    codes = await services_of(request).mfa.regenerate_codes(
        user, body.password, request_client(request), aal=session.aal
    )
    return Envelope({"success": True, "recoveryCodes": codes})


@router.post(
    "/login/mfa",
    summary="Finish a login with a code from the app, a recovery code, or a passkey",
    response_model=None,
    openapi_extra=documented_body(MfaLoginIn),
    responses={
        200: {"model": LoginOut, "description": "A new session of assurance level 2 (the login body)"},
        400: {
            "model": ErrorOut,
            "description": "invalid_request: a malformed body, or not exactly one of code, recoveryCode "
            "and credential",
        },
        401: {
            "model": ErrorOut,
            "description": "mfa_invalid: a wrong or used code, or a passkey's assertion that fails "
            "(counted by the throttle like a failed "
            "login); mfa_token_invalid: the mfaToken is unknown, used, older than 5 minutes, or spent by "
            "5 wrong codes: log in again",
        },
        **THROTTLED,
        **OVERLOADED,
    },
)
async def complete_login(request: Request, body: MfaLoginBody) -> Envelope:
    result = await services_of(request).mfa.complete_login(
        body.mfaToken,
        request_client(request),
        code=body.code,
        recovery_code=body.recoveryCode,
        credential=body.credential,
    )
    return Envelope(login_body(result))
