"""Browser defences: security headers on every response, CSRF refusal, and the CORS allow-list.

CSRF. A browser sends the session cookie with any request to doorward, even one a hostile page
started. So every state-changing request that would be authenticated by the cookie (it carries the
cookie and no bearer header) must pass two checks, in one middleware, before any route runs:

1. Origin: ``Origin`` equals the request's own origin or ``DOORWARD_PUBLIC_URL``'s; without an
   ``Origin`` (or with ``null``), ``Sec-Fetch-Site`` must say ``same-origin`` or ``none``; with
   neither, refused.
2. A per-session token: HMAC-SHA256(server key, the session token), sent as the
   ``csrf_token`` form field or the ``X-CSRF-Token`` header. Stateless, and the key
   (``Services.csrf_key``) lives in the database, not in the process, so every instance agrees;
   it changes with every login. Pages carry it in their forms and in
   ``<meta name="csrf-token">`` for scripts.

The login and registration forms run the Origin check alone (login CSRF: a hostile page must not
log a victim into the attacker's account); there is no session yet to derive a token from. Bearer
requests pass untouched: a hostile page cannot make a browser add an Authorization header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doorward.config import Settings
from doorward.core.errors import DoorwardError
from doorward.core.tokens import looks_like_token
from doorward.web.body import media_type, parse_form, read_limited
from doorward.web.errors import CrossSiteRequest, error_response
from doorward.web.services import services_of
from doorward.web.transport import bearer_token, cookie_token

_log = logging.getLogger("doorward.web")

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No inline script or style, nothing from elsewhere, never framed, forms only to doorward itself."""

BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Not no-referrer: under that policy browsers send "Origin: null" with every form post, and the
    # Origin check could no longer tell our own forms from a sandboxed attacker's.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    # No other site may embed an answer as an image, a script or a frame's resource (a no-cors load);
    # CORS calls from DOORWARD_CORS_ORIGINS are not no-cors loads, so they are unaffected.
    ("Cross-Origin-Resource-Policy", "same-origin"),
)

ANSWER_HEADERS: tuple[tuple[str, str], ...] = (*BASE_HEADERS, ("Content-Security-Policy", PAGE_CSP))
"""What ``SecurityHeaders`` gives every answer but the interactive docs'."""

SESSIONLESS_API = frozenset(
    {
        "/login",
        "/login/mfa",
        "/login/mfa/options",
        "/login/passkey",
        "/login/passkey/options",
        "/register",
        "/password/reset/request",
        "/password/reset/confirm",
        "/email/verify",
        "/email/verify/resend",
    }
)
"""JSON endpoints that never read the session: a cookie riding along with them grants nothing.

Every other unsafe request carrying the cookie is checked, so an endpoint missing here is refused
without a token (safe), never let through.
"""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
PageRenderer = Callable[[DoorwardError], Response]
"""Renders the HTML error page of an error."""


def csrf_token_of(key: bytes, session_token: str) -> str:
    """The CSRF token of the session behind ``session_token`` (which must look like a token).

    An HMAC of the raw token, which is stored nowhere: of its digest, which the database holds,
    anyone with a dump and the key (stored beside it) could compute every session's CSRF token.
    """
    mac = hmac.new(key, session_token.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


async def csrf_token(request: Request) -> str:
    """The CSRF token pages embed for the request's session cookie; "" without a usable cookie."""
    token = cookie_token(request)
    if token is None or not looks_like_token(token):
        return ""
    return csrf_token_of(services_of(request).csrf_key, token)


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-case and without a default port; None if not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in {"http", "https"} or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


RawHeaders = list[tuple[bytes, bytes]]


def _raw(headers: Iterable[tuple[str, str]]) -> RawHeaders:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def strict_transport(settings: Settings) -> tuple[tuple[str, str], ...]:
    """``Strict-Transport-Security`` when users reach doorward over https (ASVS 3.4.1), else nothing.

    Without preload it covers doorward's own host only: its subdomains may be other people's
    services, not all on https. The preload list demands ``includeSubDomains``, so preload adds it.
    """
    if not settings.public_url.startswith("https://"):
        return ()  # browsers ignore it over plain HTTP, and a development host must not be pinned
    value = f"max-age={int(settings.hsts_max_age.total_seconds())}"
    if settings.hsts_preload:
        value += "; includeSubDomains; preload"
    return (("Strict-Transport-Security", value),)


class AnswerHeaders:
    """The security headers of one app's answers: ``ANSWER_HEADERS`` and ``extra`` (its HSTS).

    ``add`` serves ``SecurityHeaders`` for every routed answer and web/fastpath.py for its own.
    """

    def __init__(self, extra: Iterable[tuple[str, str]] = ()) -> None:
        extra = tuple(extra)
        self._answer = _raw((*ANSWER_HEADERS, *extra))
        self._base = _raw((*BASE_HEADERS, *extra))

    @classmethod
    def of(cls, settings: Settings) -> AnswerHeaders:
        """The headers for an app with ``settings``."""
        return cls(strict_transport(settings))

    def add(self, headers: RawHeaders, *, csp: bool = True) -> None:
        """Append to a response's raw headers those it lacks (without ``csp``, all but the CSP)."""
        present = {name for name, _ in headers}
        headers.extend([item for item in (self._answer if csp else self._base) if item[0] not in present])


class SecurityHeaders:
    """Adds the headers of ``BASE_HEADERS``, the page CSP and ``headers``' extra to every response
    that lacks them.

    The interactive API docs (``/docs``, ``/redoc``) load FastAPI's script from a CDN and run inline
    script, so they alone go without the CSP.
    """

    def __init__(
        self, app: ASGIApp, *, headers: AnswerHeaders | None = None, csp_exempt: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.headers = headers or AnswerHeaders()
        self.csp_exempt = frozenset(csp_exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = scope["path"] not in self.csp_exempt

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message["headers"] = list(message["headers"])
                self.headers.add(headers, csp=csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CsrfGuard:
    """Refuses cross-site and token-less cookie-authenticated state changes (see the module docstring).

    ``origin_only``: form paths checked for Origin alone (login, registration). ``sessionless``: JSON
    paths that never read the session. ``page``: renders the 403 for a browser navigation.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_url: str,
        page: PageRenderer,
        origin_only: Iterable[str] = (),
        sessionless: Iterable[str] = SESSIONLESS_API,
    ) -> None:
        self.app = app
        self.public_origin = origin_of(public_url)
        self.page = page
        self.origin_only = frozenset(origin_only)
        self.sessionless = frozenset(sessionless)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or scope["path"] in self.sessionless:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        origin_only = scope["path"] in self.origin_only
        cookie = None if bearer_token(request) else cookie_token(request)
        if cookie is not None and not looks_like_token(cookie):
            cookie = None  # junk in the cookie authenticates nothing, so there is nothing to forge
        if cookie is None and not origin_only:
            await self.app(scope, receive, send)
            return
        try:
            if not self._same_origin(request):
                raise CrossSiteRequest()
            if cookie is not None and not origin_only:
                supplied = request.headers.get(CSRF_HEADER)
                if supplied is None and media_type(request) == "application/x-www-form-urlencoded":
                    body = await read_limited(request)
                    receive = _replay(body, receive)
                    supplied = _form_field(body)
                expected = csrf_token_of(services_of(request).csrf_key, cookie)
                if supplied is None or not hmac.compare_digest(supplied.encode(), expected.encode()):
                    raise CrossSiteRequest()
        except DoorwardError as exc:
            if isinstance(exc, CrossSiteRequest):
                _log.warning(
                    "csrf.refused",
                    extra={"path": scope["path"], "origin": request.headers.get("origin", "")[:200]},
                )
            response = self._refusal(request, exc)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            # Sec-Fetch-Site is the browser's own word, which no page can set; an opaque origin
            # (a sandboxed frame, a data: page) gets "cross-site" there.
            return request.headers.get("sec-fetch-site") in {"same-origin", "none"}
        allowed = {origin_of(str(request.base_url)), self.public_origin} - {None}
        return origin_of(origin) in allowed

    def _refusal(self, request: Request, error: DoorwardError) -> Response:
        return self.page(error) if _wants_page(request) else error_response(error)


def _wants_page(request: Request) -> bool:
    """A browser navigation (a form post) gets a page; a script or an API client gets JSON."""
    return "text/html" in request.headers.get("accept", "") or media_type(request) in FORM_TYPES


def _form_field(body: bytes) -> str | None:
    try:
        return parse_form(body).get(CSRF_FIELD)
    except ValueError:
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body this middleware already read, then the real channel."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def cors_options(settings: Settings) -> dict[str, Any] | None:
    """CORSMiddleware's options for the allow-list of ``settings``; None without one (no CORS).

    Bearer tokens only: no credentials, so no other site's script can ride on the cookie.
    """
    if not settings.cors_origin_list:
        return None
    return {
        "allow_origins": settings.cors_origin_list,
        "allow_methods": ["GET", "POST", "PATCH", "DELETE"],
        "allow_headers": ["Authorization", "Content-Type", CSRF_HEADER],
        "expose_headers": ["Retry-After"],
        "allow_credentials": False,
        "max_age": 600,
    }


def wrap_answers(
    app: ASGIApp, *, cors: dict[str, Any] | None, headers: AnswerHeaders, csp_exempt: Iterable[str] = ()
) -> ASGIApp:
    """``app`` wrapped as every answer is, outermost first: security headers, then CORS (only with an
    allow-list). web/fastpath.py wraps the whole routed stack in it, outside Starlette's own
    ServerErrorMiddleware, so that a bug's 500 carries them too, and each of its fast paths alike."""
    inner = app if cors is None else CORSMiddleware(app, **cors)
    return SecurityHeaders(inner, headers=headers, csp_exempt=csp_exempt)


def install_security(
    app: FastAPI, settings: Settings, *, page: PageRenderer, origin_only: Iterable[str] = ()
) -> None:
    """Add the CSRF guard; the security headers and CORS go around the whole app (``wrap_answers``).

    web/fastpath.py answers POST /login and GET /session ahead of it, with the same headers and CORS.
    """
    app.add_middleware(
        CsrfGuard,
        public_url=settings.public_url,
        page=page,
        origin_only=origin_only,
    )
