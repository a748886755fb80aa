"""The JSON API's contract (login, register, session check, logout), and what the account
and MFA routes (web/account_routes.py, web/mfa_routes.py) share with them: the JSON of a user, a
session and a login, the client, the authenticated session (and DOORWARD_REQUIRE_MFA's limit on it),
the documented error answers.

``login`` and ``session`` are called ahead of FastAPI's routing by web/fastpath.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security

from doorward.core.clock import timestamp
from doorward.core.errors import (
    DoorwardError,
    InvalidRequest,
    InvalidSession,
    LoginRequestInvalid,
    MfaEnrollmentRequired,
)
from doorward.core.models import Client, LoginResult, Session, User
from doorward.core.sessions import Authenticator
from doorward.web.body import documented_body, json_body
from doorward.web.disconnects import unless_disconnected
from doorward.web.factor_schemas import MfaRequiredOut
from doorward.web.responses import Envelope
from doorward.web.schemas import (
    SESSION_SECURITY,
    Credentials,
    ErrorOut,
    LoginOut,
    OkOut,
    RegisterOut,
    SeedErrorOut,
    SessionCheckOut,
    ThrottledOut,
    VerificationRequiredOut,
)
from doorward.web.services import services_of
from doorward.web.transport import SESSION_COOKIE, SESSION_TOKEN, client_of, session_token

router = APIRouter(default_response_class=Envelope)

_login_body = json_body(Credentials, LoginRequestInvalid)
RegisterBody = Annotated[Credentials, Depends(json_body(Credentials, InvalidRequest))]

OVERLOADED: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "Hashing capacity or database unavailable"}
}
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ThrottledOut,
        "description": "Too many attempts: wait retryAfter seconds (also in the Retry-After header)",
    }
}
CROSS_SITE: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorOut,
        "description": "csrf: sent with the session cookie, from elsewhere or without X-CSRF-Token",
    }
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "unavailable: the database does not answer"}
}


def request_client(request: Request) -> Client:
    """Who sent the request, as the throttle and the session rows record it."""
    return client_of(request, services_of(request).settings.trusted_networks)


async def signed_in(
    request: Request,
    _token: Annotated[object, Security(SESSION_TOKEN)] = None,
    _cookie: Annotated[object, Security(SESSION_COOKIE)] = None,
) -> tuple[User, Session]:
    """The user and the session of the request's token (bearer or cookie); InvalidSession without one.

    Not limited by DOORWARD_REQUIRE_MFA: only what such a session may still do uses it directly
    (``SignedIn``): /session, /mfa and its set-up, logout.
    """
    return await _checked(request, services_of(request).auth)


async def _checked(request: Request, auth: Authenticator) -> tuple[User, Session]:
    token = session_token(request)
    if token is None:
        raise InvalidSession()
    return await auth.check(token)


async def authenticated(
    request: Request, signed: Annotated[tuple[User, Session], Depends(signed_in)]
) -> tuple[User, Session]:
    """``signed_in``, and MfaEnrollmentRequired (403) while DOORWARD_REQUIRE_MFA confines the user to
    setting up a second factor: the one place the policy is enforced on the API."""
    if services_of(request).auth.enrollment_required(signed[0]):
        raise MfaEnrollmentRequired()
    return signed


Authenticated = Annotated[tuple[User, Session], Depends(authenticated)]
"""The default for an endpoint that needs a session: any new one is closed under the MFA policy."""

SignedIn = Annotated[tuple[User, Session], Depends(signed_in)]
"""Only for what a session awaiting its second factor's set-up may do (tests/web/test_mfa.py lists them)."""


def user_body(user: User) -> dict[str, Any]:
    """A user as the contract shows one."""
    return {"id": user.id, "email": user.email}


def session_body(session: Session) -> dict[str, Any]:
    """A session as GET /session shows one; never its token.

    ``amr`` goes as the tuple it is: the encoder writes it as a list, without a copy per check.
    """
    return {
        "id": session.id,
        "createdAt": timestamp(session.created_at),
        "lastSeenAt": timestamp(session.last_seen_at),
        "expiresAt": timestamp(session.expires_at),
        "aal": session.aal,
        "amr": session.amr,
    }


def session_times(session: Session) -> dict[str, Any]:
    """The keys GET /sessions shows before its own; its ``aal`` and ``amr`` come after those (issue 19
    added them last). Apart from ``session_body``, whose one dict the session check builds directly."""
    return {
        "id": session.id,
        "createdAt": timestamp(session.created_at),
        "lastSeenAt": timestamp(session.last_seen_at),
        "expiresAt": timestamp(session.expires_at),
    }


def login_body(result: LoginResult) -> dict[str, Any]:
    """A successful login as the seed answered it, and ``mfaEnrollmentRequired`` only when the policy
    asks, ``passwordCompromised`` only when a breach lists the password (so every other login body
    stays byte for byte the seed's)."""
    body = {"success": True, "sessionToken": result.token, "user": user_body(result.user)}
    if result.mfa_enrollment_required:
        body["mfaEnrollmentRequired"] = True
    if result.user.password_compromised_at is not None:
        body["passwordCompromised"] = True
    return body


@router.post(
    "/login",
    summary="Log in with an email and a password",
    response_model=None,
    openapi_extra=documented_body(Credentials),
    responses={
        200: {"model": LoginOut, "description": "A new session"},
        400: {"model": SeedErrorOut, "description": "Email and password required"},
        401: {
            "model": SeedErrorOut | MfaRequiredOut,
            "description": "Invalid credentials (for every cause); or, for the right password of an "
            "account with two-step verification, mfa_required with an mfaToken for POST /login/mfa",
        },
        403: {"model": ErrorOut, "description": "email_unverified (right password, address not confirmed)"},
        **THROTTLED,
        **OVERLOADED,
    },
)
async def login(request: Request) -> Envelope:
    # Called ahead of FastAPI's routing by web/fastpath.py, which answers its DoorwardErrors.
    # (A comment, not a docstring: FastAPI would publish a docstring in /openapi.json.)
    services = services_of(request)
    auth = services.auth
    try:
        # Before the body is read: a refused login costs little more than its headers.
        auth.refuse_if_overloaded()
        body = await _login_body(request)
    except DoorwardError as exc:  # a login all the same: counted as auth.login counts its own outcomes
        if services.metrics is not None:
            services.metrics.outcome("login_password", exc.code)
        raise
    # Given up if the client goes meanwhile (a queued login then leaves its place before hashing).
    result = await unless_disconnected(
        request, auth.login(body.email, body.password, request_client(request))
    )
    return Envelope(login_body(result))


@router.post(
    "/register",
    summary="Create an account",
    status_code=201,
    response_model=None,
    openapi_extra=documented_body(Credentials),
    responses={
        201: {"model": RegisterOut, "description": "The new account (no session: log in next)"},
        202: {
            "model": VerificationRequiredOut,
            "description": "With DOORWARD_REQUIRE_EMAIL_VERIFICATION: a mail went to the address; "
            "the same answer whether or not it already had an account",
        },
        400: {
            "model": ErrorOut,
            "description": "invalid_request, email_invalid, password_too_short, "
            "password_too_long, password_common, password_context, password_breached",
        },
        409: {"model": ErrorOut, "description": "email_taken"},
        **THROTTLED,
        **OVERLOADED,
    },
)
async def register(request: Request, body: RegisterBody) -> Envelope:
    services = services_of(request)
    client = request_client(request)
    user = await services.accounts.register(body.email, body.password, client)
    if services.settings.require_email_verification:
        # The same answer whether the email was new or not: the mailbox's owner learns which.
        return Envelope({"success": True, "verificationRequired": True}, status_code=202)
    assert user is not None
    return Envelope({"success": True, "user": user_body(user)}, status_code=201)


@router.get(
    "/session",
    summary="Check a session token",
    response_model=None,
    openapi_extra={"security": SESSION_SECURITY},
    responses={
        200: {"model": SessionCheckOut, "description": "The session is valid"},
        401: {"model": ErrorOut, "description": "Invalid session"},
        503: OVERLOADED[503],
    },
)
async def session(request: Request) -> Envelope:
    # Called ahead of FastAPI's routing by web/fastpath.py, which answers its DoorwardErrors.
    # The services are looked up once: that lookup costs a session check 0.6 us, more than the
    # policy's test (timeit).
    auth = services_of(request).auth
    user, current = await _checked(request, auth)
    body = {"success": True, "user": user_body(user), "session": session_body(current)}
    if auth.enrollment_required(user):
        body["mfaEnrollmentRequired"] = True  # the policy's word, for a backend to send the user to set-up
    if user.password_compromised_at is not None:
        body["passwordCompromised"] = True  # a breach lists the password: send the user to change it
    return Envelope(body)


@router.post(
    "/logout",
    summary="End the session of the bearer token (always succeeds)",
    response_model=None,
    openapi_extra={"security": [*SESSION_SECURITY, {}]},  # {}: without a session too
    responses={
        200: {"model": OkOut, "description": "The session, if any, has ended"},
        **OVERLOADED,
    },
)
async def logout(request: Request) -> Envelope:
    token = session_token(request)
    if token is not None:
        await services_of(request).auth.logout(token)
    return Envelope({"success": True})
