"""Browser defences against cross-site requests: the CSRF and Origin checks (the answer headers and
CORS are web/headers.py's).

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
from urllib.parse import urlsplit

from fastapi import FastAPI
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


def install_security(
    app: FastAPI, settings: Settings, *, page: PageRenderer, origin_only: Iterable[str] = ()
) -> None:
    """Add the CSRF guard; the security headers and CORS go around the whole app
    (``headers.wrap_answers``).

    web/fastpath.py answers POST /login and GET /session ahead of it, with the same headers and CORS.
    """
    app.add_middleware(
        CsrfGuard,
        public_url=settings.public_url,
        page=page,
        origin_only=origin_only,
    )
