"""The JSON API: login, register, session check, logout, health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from doorward.core.errors import InvalidRequest, InvalidSession, LoginRequestInvalid
from doorward.core.models import Session, User
from doorward.storage import ping
from doorward.web.body import documented_body, json_body
from doorward.web.responses import Envelope
from doorward.web.schemas import (
    Credentials,
    ErrorOut,
    HealthOut,
    LoginOut,
    OkOut,
    RegisterOut,
    SeedErrorOut,
    SessionCheckOut,
    ThrottledOut,
)
from doorward.web.transport import client_of, session_token
from doorward.wiring import Services

router = APIRouter(default_response_class=Envelope)

LoginBody = Annotated[Credentials, Depends(json_body(Credentials, LoginRequestInvalid))]
RegisterBody = Annotated[Credentials, Depends(json_body(Credentials, InvalidRequest))]

_OVERLOADED: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "Hashing capacity or database unavailable"}
}
_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ThrottledOut,
        "description": "Too many attempts: wait retryAfter seconds (also in the Retry-After header)",
    }
}
_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "Body over the size limit"}
}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _user(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email}


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _session(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "createdAt": _timestamp(session.created_at),
        "lastSeenAt": _timestamp(session.last_seen_at),
        "expiresAt": _timestamp(session.expires_at),
    }


@router.post(
    "/login",
    summary="Log in with an email and a password",
    response_model=None,
    openapi_extra=documented_body(Credentials),
    responses={
        200: {"model": LoginOut, "description": "A new session"},
        400: {"model": SeedErrorOut, "description": "Email and password required"},
        401: {"model": SeedErrorOut, "description": "Invalid credentials (for every cause)"},
        **_THROTTLED,
        **_TOO_LARGE,
        **_OVERLOADED,
    },
)
async def login(request: Request, body: LoginBody) -> Envelope:
    services = _services(request)
    client = client_of(request, services.settings.trusted_networks)
    result = await services.auth.login(body.email, body.password, client)
    return Envelope({"success": True, "sessionToken": result.token, "user": _user(result.user)})


@router.post(
    "/register",
    summary="Create an account",
    status_code=201,
    response_model=None,
    openapi_extra=documented_body(Credentials),
    responses={
        201: {"model": RegisterOut, "description": "The new account (no session: log in next)"},
        400: {
            "model": ErrorOut,
            "description": "invalid_request, email_invalid, password_too_short, "
            "password_too_long, password_common, password_context",
        },
        409: {"model": ErrorOut, "description": "email_taken"},
        **_THROTTLED,
        **_TOO_LARGE,
        **_OVERLOADED,
    },
)
async def register(request: Request, body: RegisterBody) -> Envelope:
    services = _services(request)
    client = client_of(request, services.settings.trusted_networks)
    user = await services.auth.register(body.email, body.password, client)
    return Envelope({"success": True, "user": _user(user)}, status_code=201)


@router.get(
    "/session",
    summary="Check a session token",
    response_model=None,
    responses={
        200: {"model": SessionCheckOut, "description": "The session is valid"},
        401: {"model": ErrorOut, "description": "Invalid session"},
        503: _OVERLOADED[503],
    },
)
async def session(request: Request) -> Envelope:
    token = session_token(request)
    if token is None:
        raise InvalidSession()
    user, current = await _services(request).auth.check(token)
    return Envelope({"success": True, "user": _user(user), "session": _session(current)})


@router.post(
    "/logout",
    summary="End the session of the bearer token (always succeeds)",
    response_model=None,
    responses={
        200: {"model": OkOut, "description": "The session, if any, has ended"},
        **_OVERLOADED,
    },
)
async def logout(request: Request) -> Envelope:
    token = session_token(request)
    if token is not None:
        await _services(request).auth.logout(token)
    return Envelope({"success": True})


@router.get(
    "/healthz",
    summary="Is the service up and its database reachable",
    response_model=None,
    responses={
        200: {"model": HealthOut, "description": "Healthy"},
        503: {"model": HealthOut, "description": "The database does not answer"},
    },
)
async def healthz(request: Request) -> Envelope:
    services = _services(request)
    if await ping(services.engine, services.settings.db_timeout):
        return Envelope({"status": "ok"})
    return Envelope(
        {
            "status": "unavailable",
            "success": False,
            "error": "Database unavailable",
            "code": "unavailable",
        },
        status_code=503,
    )
