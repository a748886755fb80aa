"""How an admin API call is let in and recorded: its key (``Authorization: Bearer dwa_...``), the key's
scope and rate limit, and one audit event per call carrying the key's name, whatever the outcome.

A session token is never an admin key (its shape differs, and it is looked up in another table), nor
is an admin key ever a session token: each side's shape check refuses the other's before any lookup.
The session cookie is not read here at all.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from doorward.core.admin_records import Actor
from doorward.core.errors import DoorwardError, InvalidRequest
from doorward.core.models import AdminKey
from doorward.web.errors import answer_error, error_response
from doorward.web.routes import request_client
from doorward.web.schemas import ErrorOut, ThrottledOut
from doorward.web.services import services_of
from doorward.web.transport import bearer_token

admin_bearer = HTTPBearer(
    scheme_name="AdminKey",
    bearerFormat="dwa_...",
    description="An admin key, made with `doorward admin keys create NAME [--scope read|write]`. "
    "Session tokens are not accepted here, nor admin keys where a session is expected.",
    auto_error=False,  # a missing key is our 401 envelope, not FastAPI's 403
)
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(admin_bearer)]


async def _admitted(request: Request, *, write: bool) -> AdminKey:
    keyring = services_of(request).keyring
    record = await keyring.identify(bearer_token(request))
    request.state.admin_key = record.name  # for the call's audit event, even if refused below
    await keyring.admit(record, write=write)
    return record


async def admin_reader(request: Request, _credentials: _Credentials) -> AdminKey:
    """A live admin key of either scope, within its rate limit."""
    return await _admitted(request, write=False)


async def admin_writer(request: Request, _credentials: _Credentials) -> AdminKey:
    """A live admin key of scope ``write``, within its rate limit."""
    return await _admitted(request, write=True)


def actor_of(request: Request, key: AdminKey) -> Actor:
    """Who acts, for the audit event of a use case: the API, this key (by name), this client."""
    return Actor(via="api", key=key.name, client=request_client(request).address)


AdminReader = Annotated[AdminKey, Depends(admin_reader)]
AdminWriter = Annotated[AdminKey, Depends(admin_writer)]

ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "invalid_request: a parameter or the body is malformed"},
    401: {
        "model": ErrorOut,
        "description": "invalid_admin_key: no admin key, or an unknown, revoked or malformed one "
        "(a session token among them)",
    },
    429: {
        "model": ThrottledOut,
        "description": "This key's rate limit (DOORWARD_THROTTLE_ADMIN_REQUESTS per "
        "DOORWARD_THROTTLE_ADMIN_WINDOW): wait retryAfter seconds",
    },
    503: {"model": ErrorOut, "description": "The database (or Redis) is unavailable"},
}
"""The answers every admin call may get."""

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ADMIN_ERRORS,
    403: {"model": ErrorOut, "description": "admin_key_read_only: this call needs a key of scope write"},
}
"""The answers every admin call that changes something may get."""


class AdminRoute(APIRoute):
    """A route of the admin API: each call, answered or refused, becomes one ``admin.api_call`` audit
    event with the key's name (None without a valid key), the path's template (never a query string:
    cursors and searches stay out of the log), the status and the account named by ``{user_id}``.

    Errors are answered here, through the one error table, so that the status is known for the event.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        route = self.path

        async def audited(request: Request) -> Response:
            status = 500
            try:
                try:
                    response = await handler(request)
                except DoorwardError as exc:
                    response = answer_error(exc)
                except RequestValidationError:
                    response = error_response(InvalidRequest())
                status = response.status_code
                return response
            finally:
                services_of(request).keyring.record_call(
                    getattr(request.state, "admin_key", None),
                    method=request.method,
                    route=route,
                    status=status,
                    user_id=_user_id(request),
                    client=request_client(request).address,
                )

        return audited


def _user_id(request: Request) -> int | None:
    """The account a call names in its path, when that is a plausible id (else none: a junk path
    segment must not reach the audit table's integer column)."""
    text = str(request.path_params.get("user_id", ""))
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    return int(text) if 0 < int(text) < 2**31 else None
