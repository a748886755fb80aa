"""The two requests sent most, answered ahead of FastAPI's routing where that is all they need.

- ``GET /session``, which every backend sends for every request it serves. A profile of a server
  under wrk (benchmarks/README.md) found that, once the database read was cheap, FastAPI's routing
  and per-request machinery cost more than the check itself, and its outer middlewares (error
  handling, telemetry, body limit) about a tenth more. So ``DoorwardApp`` answers the check before
  all of them, adding the same security headers (``ANSWER_HEADERS``) and turning a bug into the
  same 500 envelope. With a CORS allow-list, the check must pass CORSMiddleware, and ``HotPaths``
  answers it instead, innermost among doorward's middlewares. Both call the ``check_session`` the
  documented route in routes.py calls.
- ``POST /login`` while every hash slot is taken: refused with 503 before its body is read or
  parsed, so a login flood costs little more than its headers and session checks keep their
  latency. Otherwise the login goes on to its route.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from doorward.core.errors import DoorwardError
from doorward.web.errors import answer_error, answer_unexpected
from doorward.web.responses import Envelope
from doorward.web.routes import check_session
from doorward.web.security import ANSWER_HEADERS

_ANSWER_HEADERS = [
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in ANSWER_HEADERS
]


def _is_session_check(scope: Scope) -> bool:
    return bool(scope["type"] == "http" and scope["path"] == "/session" and scope["method"] == "GET")


async def _check(scope: Scope, receive: Receive) -> Envelope:
    try:
        return await check_session(Request(scope, receive))
    except DoorwardError as exc:
        return answer_error(exc)


class DoorwardApp(FastAPI):
    """FastAPI, but ``GET /session`` is answered before any middleware when ``sessions_first``."""

    sessions_first = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self.sessions_first and _is_session_check(scope)):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        try:
            response = await _check(scope, receive)
        except Exception as exc:  # what ServerErrorMiddleware and the handlers do, for this path
            response = answer_unexpected(exc)
        response.raw_headers.extend(_ANSWER_HEADERS)  # what SecurityHeaders does, for this path
        await response(scope, receive, send)


class HotPaths:
    """Answers ``GET /session`` (when CORS sees it first), and ``POST /login`` when hashing is full."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _is_session_check(scope):
            response = await _check(scope, receive)
            await response(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == "/login" and scope["method"] == "POST":
            try:
                scope["app"].state.services.auth.refuse_if_overloaded()
            except DoorwardError as exc:
                await answer_error(exc)(scope, receive, send)
                return
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
