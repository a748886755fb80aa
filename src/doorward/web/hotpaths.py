"""The two requests sent most, answered ahead of FastAPI's routing, which they do not need.

- ``GET /session``, which every backend sends for every request it serves. A profile of a server
  under wrk (benchmarks/README.md) found that, once the database read was cheap, FastAPI's routing
  and per-request machinery cost more than the check itself, and its outer middlewares (error
  handling, telemetry, body limit) about a tenth more.
- ``POST /login``. While every hash slot is taken it is refused with 503 before its body is read
  or parsed, so a login flood costs little more than its headers and session checks keep their
  latency. Otherwise it is answered here too: FastAPI's middlewares, routing and dependency
  solving took a fifth of a login's event-loop time, time the hashing threads could have had.

Without a CORS allow-list ``DoorwardApp`` answers both before any middleware (``hot_first``), adding
the same security headers (``ANSWER_HEADERS``) and turning a bug into the same 500 envelope. With
one, CORSMiddleware must see them, and ``HotPaths`` answers them instead, innermost among doorward's
middlewares (inside CORSMiddleware and the CSRF guard). Each calls the function that its documented
route in routes.py calls (``check_session``, ``answer_login``). The CSRF guard, which
``DoorwardApp``'s answers skip, lets both through untouched anyway: neither reads the session cookie
(security.SESSIONLESS_API, SAFE_METHODS).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from doorward.core.errors import DoorwardError
from doorward.web.errors import answer_error, answer_unexpected
from doorward.web.responses import Envelope
from doorward.web.routes import answer_login, check_session
from doorward.web.security import ANSWER_HEADERS

_ANSWER_HEADERS = [
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in ANSWER_HEADERS
]


def _is_session_check(scope: Scope) -> bool:
    return bool(scope["path"] == "/session" and scope["method"] == "GET")


def _is_login(scope: Scope) -> bool:
    return bool(scope["path"] == "/login" and scope["method"] == "POST")


async def _answer(scope: Scope, receive: Receive) -> Envelope | None:
    """The answer to a hot request (an HTTP one), or None when the request goes on to its route."""
    try:
        if _is_session_check(scope):
            return await check_session(Request(scope, receive))
        if _is_login(scope):
            scope["app"].state.services.auth.refuse_if_overloaded()
            return await answer_login(Request(scope, receive))
    except DoorwardError as exc:
        return answer_error(exc)
    return None


class DoorwardApp(FastAPI):
    """FastAPI, but with ``hot_first`` the hot requests are answered before any middleware."""

    hot_first = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self.hot_first and scope["type"] == "http"):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        try:
            response = await _answer(scope, receive)
        except ClientDisconnect:
            return  # gone while its login's body was read: no one to answer, and no bug to log
        except Exception as exc:  # what ServerErrorMiddleware and the handlers do, for these paths
            response = answer_unexpected(exc)
        if response is None:
            await super().__call__(scope, receive, send)
            return
        response.raw_headers.extend(_ANSWER_HEADERS)  # what SecurityHeaders does, for these paths
        await response(scope, receive, send)


class HotPaths:
    """Answers the hot requests inside the middlewares, for an app whose CORSMiddleware must see them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await _answer(scope, receive) if scope["type"] == "http" else None
        except ClientDisconnect:
            return  # as DoorwardApp
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)
