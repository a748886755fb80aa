"""The JSON API of passkeys (issue 20): adding, listing, renaming and removing them, signing in with
one alone, and one as a login's second step (its options here; the assertion goes to POST /login/mfa).

Adding and removing take the current password (the step-up). Every call on the account's passkeys
needs a session and stays open under DOORWARD_REQUIRE_MFA, like /mfa/*: adding one is what that policy
asks for. The sign-in calls read no session (web/security.py lists them as sessionless) and answer
with a token, never a cookie: the pages sign in through their own form posts (web/pages/login.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from doorward.core.clock import timestamp
from doorward.core.errors import InvalidRequest
from doorward.core.passkeys import PasskeyInfo
from doorward.web.body import documented_body, json_body
from doorward.web.factor_schemas import (
    CredentialIn,
    MfaRequiredOut,
    MfaTokenIn,
    OptionsOut,
    PasskeyAddedOut,
    PasskeyIn,
    PasskeyListOut,
    PasskeyRenamedOut,
    PasskeyRenameIn,
)
from doorward.web.mfa_routes import FACTOR_CHANGE, SET_UP, STEP_UP
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
    ErrorOut,
    LoginOut,
    OkOut,
    PasswordIn,
    SeedErrorOut,
)
from doorward.web.services import services_of

router = APIRouter(default_response_class=Envelope)

PasswordBody = Annotated[PasswordIn, Depends(json_body(PasswordIn, InvalidRequest))]
PasskeyBody = Annotated[PasskeyIn, Depends(json_body(PasskeyIn, InvalidRequest))]
RenameBody = Annotated[PasskeyRenameIn, Depends(json_body(PasskeyRenameIn, InvalidRequest))]
CredentialBody = Annotated[CredentialIn, Depends(json_body(CredentialIn, InvalidRequest))]
MfaTokenBody = Annotated[MfaTokenIn, Depends(json_body(MfaTokenIn, InvalidRequest))]

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "passkey_not_found: you have no passkey with this id"}
}


def passkey_body(passkey: PasskeyInfo, *, backed_up: bool = True) -> dict[str, Any]:
    """A passkey as the contract shows one; ``backedUp`` in lists, not in the answer that added it."""
    body: dict[str, Any] = {
        "id": passkey.id,
        "name": passkey.name,
        "createdAt": timestamp(passkey.created_at),
        "lastUsedAt": timestamp(passkey.last_used_at) if passkey.last_used_at is not None else None,
    }
    if backed_up:
        body["backedUp"] = passkey.backed_up
    return body


# Authentication before the body in each signature: without a session, 401 whatever was sent.
@router.post(
    "/passkeys/options",
    summary="Start adding a passkey: options for navigator.credentials.create(), after your password",
    response_model=None,
    openapi_extra=documented_body(PasswordIn),
    responses={
        200: {
            "model": OptionsOut,
            "description": "PublicKeyCredentialCreationOptionsJSON: a discoverable credential, user "
            "verification preferred, your passkeys excluded; its challenge lives 5 minutes",
        },
        400: {"model": ErrorOut, "description": STEP_UP},
        409: {"model": ErrorOut, "description": "passkey_limit: the account has 20 passkeys"},
        **FACTOR_CHANGE,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def registration_options(request: Request, auth: SignedIn, body: PasswordBody) -> Envelope:
    user, session = auth
    options = await services_of(request).passkeys.registration_options(
        user, body.password, request_client(request), aal=session.aal
    )
    return Envelope({"success": True, "options": options})


@router.post(
    "/passkeys",
    summary="Add the passkey the browser made from POST /passkeys/options",
    status_code=201,
    response_model=None,
    openapi_extra=documented_body(PasskeyIn),
    responses={
        201: {"model": PasskeyAddedOut, "description": "Added: a second factor now; a mail tells you"},
        400: {
            "model": ErrorOut,
            "description": "passkey_invalid: the answer failed a WebAuthn check, or its challenge is "
            "unknown, used, expired or another's; invalid_request: a malformed body or name",
        },
        409: {"model": ErrorOut, "description": "passkey_limit: the account has 20 passkeys"},
        **FACTOR_CHANGE,
        **OVERLOADED,
    },
)
async def add_passkey(request: Request, auth: SignedIn, body: PasskeyBody) -> Envelope:
    user, session = auth
    added = await services_of(request).passkeys.register(
        user, body.credential, body.name, request_client(request), aal=session.aal
    )
    return Envelope({"success": True, "passkey": passkey_body(added, backed_up=False)}, status_code=201)


@router.get(
    "/passkeys",
    summary="Your passkeys, oldest first",
    response_model=None,
    responses={
        200: {"model": PasskeyListOut, "description": "Never a key or a credential id"},
        401: SET_UP[401],
        **UNAVAILABLE,
    },
)
async def list_passkeys(request: Request, auth: SignedIn) -> Envelope:
    user, _ = auth
    listed = await services_of(request).passkeys.list(user)
    return Envelope({"success": True, "passkeys": [passkey_body(p) for p in listed]})


@router.patch(
    "/passkeys/{passkey_id}",
    summary="Rename one of your passkeys",
    response_model=None,
    openapi_extra=documented_body(PasskeyRenameIn),
    responses={
        200: {"model": PasskeyRenamedOut, "description": "Renamed"},
        400: {
            "model": ErrorOut,
            "description": "invalid_request: no name, one over 64 characters, or a control character",
        },
        **NOT_FOUND,
        **SET_UP,
        **OVERLOADED,
    },
)
async def rename_passkey(request: Request, auth: SignedIn, passkey_id: str, body: RenameBody) -> Envelope:
    user, _ = auth
    renamed = await services_of(request).passkeys.rename(user, passkey_id, body.name)
    return Envelope({"success": True, "passkey": passkey_body(renamed)})


@router.delete(
    "/passkeys/{passkey_id}",
    summary="Remove one of your passkeys, with your password",
    response_model=None,
    openapi_extra=documented_body(PasswordIn),
    responses={
        200: {"model": OkOut, "description": "Removed; a mail tells you"},
        400: {"model": ErrorOut, "description": STEP_UP},
        409: {
            "model": ErrorOut,
            "description": "last_factor: under DOORWARD_REQUIRE_MFA the account's last second factor stays",
        },
        **NOT_FOUND,
        **FACTOR_CHANGE,
        **THROTTLED,
        **OVERLOADED,
    },
)
async def remove_passkey(request: Request, auth: SignedIn, passkey_id: str, body: PasswordBody) -> Envelope:
    user, session = auth
    await services_of(request).passkeys.remove(
        user, passkey_id, body.password, request_client(request), aal=session.aal
    )
    return Envelope({"success": True})


@router.post(
    "/login/passkey/options",
    summary="Start a sign-in with a passkey alone: options for navigator.credentials.get() (no body)",
    response_model=None,
    responses={
        200: {
            "model": OptionsOut,
            "description": "PublicKeyCredentialRequestOptionsJSON with empty allowCredentials (the "
            "authenticator offers its passkeys; nothing about any account is said); the challenge "
            "lives 5 minutes and works once",
        },
        **THROTTLED,
        **OVERLOADED,
    },
)
async def login_options(request: Request) -> Envelope:
    # Each call writes a challenge row: counted per client before the core writes it.
    services = services_of(request)
    await services.throttle.admit_ceremony(request_client(request).address)
    return Envelope({"success": True, "options": await services.passkeys.login_options()})


@router.post(
    "/login/passkey",
    summary="Sign in with a passkey's assertion",
    response_model=None,
    openapi_extra=documented_body(CredentialIn),
    responses={
        200: {
            "model": LoginOut,
            "description": 'The login body. With user verification: "aal":2, "amr":["hwk","user"] '
            '(or "swk", a synced passkey); without: "aal":1, "amr":["hwk"]',
        },
        400: {"model": ErrorOut, "description": "invalid_request: a malformed body"},
        401: {
            "model": SeedErrorOut | MfaRequiredOut | ErrorOut,
            "description": "Invalid credentials (an unknown or removed passkey, a bad signature, a used, "
            "expired or another ceremony's challenge, a sign count gone backwards, a disabled account); "
            "mfa_required (no user verification, and the account has the app: finish at /login/mfa); "
            "user_verification_required (no user verification, and no other factor)",
        },
        403: {"model": ErrorOut, "description": "email_unverified"},
        **THROTTLED,
        **OVERLOADED,
    },
)
async def passkey_login(request: Request, body: CredentialBody) -> Envelope:
    result = await services_of(request).passkeys.login(body.credential, request_client(request))
    return Envelope(login_body(result))


@router.post(
    "/login/mfa/options",
    summary="A passkey as a login's second step: options for navigator.credentials.get()",
    response_model=None,
    openapi_extra=documented_body(MfaTokenIn),
    responses={
        200: {
            "model": OptionsOut,
            "description": "PublicKeyCredentialRequestOptionsJSON whose allowCredentials are the "
            "account's passkeys; send the assertion to POST /login/mfa as credential",
        },
        400: {"model": ErrorOut, "description": "invalid_request: a malformed body"},
        401: {"model": ErrorOut, "description": "mfa_token_invalid: log in again"},
        404: {"model": ErrorOut, "description": "passkey_not_found: no passkey may complete this login"},
        **THROTTLED,
        **OVERLOADED,
    },
)
async def second_step_options(request: Request, body: MfaTokenBody) -> Envelope:
    services = services_of(request)
    await services.throttle.admit_ceremony(request_client(request).address)  # a challenge row per call
    options = await services.passkeys.second_step_options(body.mfaToken)
    return Envelope({"success": True, "options": options})
