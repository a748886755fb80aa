"""The two requests sent most, answered ahead of FastAPI's routing where that is all they need.

- ``GET /session``, which every backend sends for every request it serves. A profile of a server
  under wrk (benchmarks/README.md, figure 3) found that once the database read was cheap, routing
  and FastAPI's per-request machinery (dependency solving, the exit stack, the request-response
  wrapper) cost more than the check itself. Answered here with the same ``check_session`` the
  documented route in routes.py calls.
- ``POST /login`` while every hash slot is taken: refused with 503 before its body is read or
  parsed, so a login flood costs little more than its headers and session checks keep their
  latency (figure 4). Otherwise the login goes on to its route.

Added innermost among doorward's middlewares: the security headers, CORS and the CSRF guard apply
here as to every other answer, and errors get the same bodies as from the routes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from doorward.core.errors import DoorwardError
from doorward.web.errors import answer_error
from doorward.web.responses import Envelope
from doorward.web.routes import check_session


class HotPaths:
    """Answers ``GET /session``, and ``POST /login`` when hashing is full; the rest passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Envelope
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["path"] == "/session" and scope["method"] == "GET":
            try:
                response = await check_session(Request(scope, receive))
            except DoorwardError as exc:
                response = answer_error(exc)
            await response(scope, receive, send)
        elif scope["path"] == "/login" and scope["method"] == "POST":
            try:
                scope["app"].state.services.auth.refuse_if_overloaded()
            except DoorwardError as exc:
                await answer_error(exc)(scope, receive, send)
                return
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
