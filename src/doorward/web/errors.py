"""The one table that turns doorward's errors into HTTP answers, and the handlers that use it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from doorward.core.admin_keys import AdminKeyInvalid, AdminKeyNameTaken, AdminKeyNotFound, AdminKeyReadOnly
from doorward.core.errors import (
    Aal2Required,
    DoorwardError,
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    InvalidRequest,
    InvalidSession,
    LastFactor,
    LoginRequestInvalid,
    MfaEnrollmentRequired,
    MfaInvalid,
    MfaNotEnabled,
    MfaRequired,
    MfaTokenInvalid,
    Overloaded,
    SessionNotFound,
    StorageUnavailable,
    TooManyAttempts,
    TotpActive,
    TotpNotPending,
    UserNotFound,
)
from doorward.core.passkey_errors import PasskeyLimit, PasskeyNotFound, UserVerificationRequired
from doorward.metrics import PrometheusMetrics
from doorward.web.responses import Envelope

_log = logging.getLogger("doorward.web")


class PayloadTooLarge(DoorwardError):
    """The request body is larger than DOORWARD_MAX_BODY_BYTES; it was not read to the end."""

    code = "payload_too_large"
    message = "Request body too large"


class HeadersTooLarge(DoorwardError):
    """The request head (request line and headers) is over DOORWARD_MAX_HEADER_BYTES, or has more header
    lines than DOORWARD_MAX_HEADERS; the rest was not read (web/protocol.py)."""

    code = "headers_too_large"
    message = "Request headers too large"


class RequestTimeout(DoorwardError):
    """The request head or body did not arrive within DOORWARD_HEADER_TIMEOUT or DOORWARD_BODY_TIMEOUT."""

    code = "request_timeout"
    message = "Request not received in time"


class NotFound(DoorwardError):
    """No endpoint at this path."""

    code = "not_found"
    message = "Not found"


class MethodNotAllowed(DoorwardError):
    """The path exists, the method does not."""

    code = "method_not_allowed"
    message = "Method not allowed"


class MetricsTokenInvalid(DoorwardError):
    """GET /metrics without DOORWARD_METRICS_TOKEN as its bearer token."""

    code = "invalid_token"
    message = "Invalid metrics token"


class InternalError(DoorwardError):
    """A bug: the details go to the log, never to the client."""

    code = "internal"
    message = "Internal error"


class CrossSiteRequest(DoorwardError):
    """A cookie-authenticated state change came from another site, or without a valid CSRF token."""

    code = "csrf"
    message = "Cross-site request refused"


STATUS: dict[type[DoorwardError], int] = {
    InvalidRequest: 400,
    InvalidCredentials: 401,
    InvalidSession: 401,
    MetricsTokenInvalid: 401,
    MfaRequired: 401,
    MfaInvalid: 401,
    MfaTokenInvalid: 401,
    UserVerificationRequired: 401,
    AdminKeyInvalid: 401,
    AdminKeyReadOnly: 403,
    EmailUnverified: 403,
    MfaEnrollmentRequired: 403,
    Aal2Required: 403,
    CrossSiteRequest: 403,
    NotFound: 404,
    UserNotFound: 404,
    SessionNotFound: 404,
    PasskeyNotFound: 404,
    AdminKeyNotFound: 404,
    MethodNotAllowed: 405,
    RequestTimeout: 408,
    EmailTaken: 409,
    TotpActive: 409,
    TotpNotPending: 409,
    MfaNotEnabled: 409,
    PasskeyLimit: 409,
    LastFactor: 409,
    AdminKeyNameTaken: 409,
    PayloadTooLarge: 413,
    HeadersTooLarge: 431,
    TooManyAttempts: 429,
    InternalError: 500,
    Overloaded: 503,
    StorageUnavailable: 503,
}
"""Status per error class; a subclass takes its nearest listed ancestor's status."""

SEED_BODIES: frozenset[type[DoorwardError]] = frozenset({LoginRequestInvalid, InvalidCredentials})
"""The seed's login bodies, kept byte for byte: ``success`` and ``error`` only, no ``code``."""


def status_of(error: DoorwardError) -> int:
    """The HTTP status for ``error``."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(error: DoorwardError) -> Envelope:
    """The envelope: ``success``, ``error`` and (outside the seed's bodies) ``code``."""
    body: dict[str, object] = {"success": False, "error": error.text}
    if type(error) not in SEED_BODIES:
        body["code"] = error.code
    if isinstance(error, TooManyAttempts):
        body["retryAfter"] = error.retry_after
    if isinstance(error, MfaRequired):  # the second step's ticket, after "code" (issue 19's contract)
        body["mfaToken"] = error.token
        body["methods"] = list(error.methods)
    headers = retry_headers(error)
    if isinstance(error, InvalidSession | AdminKeyInvalid | MetricsTokenInvalid):
        headers["WWW-Authenticate"] = "Bearer"
    return Envelope(body, status_of(error), headers)


def retry_headers(error: DoorwardError) -> dict[str, str]:
    """``Retry-After`` for an error that says when to come back (throttled, overloaded, unavailable)."""
    retry_after = getattr(error, "retry_after", 0)
    return {"Retry-After": str(retry_after)} if retry_after else {}


def answer_error(error: DoorwardError, metrics: PrometheusMetrics | None = None) -> Envelope:
    """``error_response``, after logging (and counting, with ``metrics``) what an operator must
    hear of: a store is down, named in the line ("database unavailable" or "Redis unavailable")."""
    if isinstance(error, StorageUnavailable):
        _log.warning("%s unavailable", error.store, exc_info=error.__cause__, extra={"store": error.store})
        if metrics is not None:
            metrics.store_error(error.store)
    return error_response(error)


def answer_unexpected(exc: Exception) -> Envelope:
    """The 500 envelope for a bug, logged with its traceback; its text says nothing of the bug."""
    _log.error("unhandled error", exc_info=exc)
    return error_response(InternalError())


def wants_page(request: Request) -> bool:
    """A browser's address bar (a GET asking for HTML), which gets a page rather than JSON."""
    return request.method in {"GET", "HEAD"} and "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI, *, not_found_page: Callable[[], Response] | None = None) -> None:
    """Route every failure, expected or not, through the table above; ``not_found_page`` renders the
    404 of an unknown path for a browser (``wants_page``), API clients keep the envelope."""

    async def on_doorward_error(request: Request, exc: Exception) -> Envelope:
        assert isinstance(exc, DoorwardError)
        return answer_error(exc, getattr(request.app, "metrics", None))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            if not_found_page is not None and wants_page(request):
                return not_found_page()
            return error_response(NotFound())
        if exc.status_code == 405:
            response = error_response(MethodNotAllowed())
            response.headers.update(exc.headers or {})  # Allow: the methods the path does take
            return response
        return error_response(InvalidRequest())

    async def on_validation_error(_request: Request, _exc: Exception) -> Envelope:
        return error_response(InvalidRequest())

    async def on_unexpected(_request: Request, exc: Exception) -> Envelope:
        return answer_unexpected(exc)

    async def on_client_gone(_request: Request, _exc: Exception) -> Envelope:
        # The client closed, or web/protocol.py refused its body as too slow: no one to answer, no bug.
        return error_response(InvalidRequest())

    app.add_exception_handler(DoorwardError, on_doorward_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Exception, on_unexpected)
