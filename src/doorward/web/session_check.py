"""``GET /session`` answered ahead of FastAPI's routing: the request every backend sends most.

A profile of a server under wrk (benchmarks/README.md, figure 3) found that, once the database
read was cheap, routing and FastAPI's per-request machinery (dependency solving, the exit stack,
the request-response wrapper) cost more than the check itself. This layer answers the one path
before all that. It is added innermost among doorward's middlewares, so the security headers,
CORS and the CSRF guard apply to it as to every other answer, and it answers with the same
``check_session`` and the same error bodies as the documented route in routes.py.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from doorward.core.errors import DoorwardError
from doorward.web.errors import answer_error
from doorward.web.responses import Envelope
from doorward.web.routes import check_session


class SessionCheck:
    """Answers ``GET /session`` itself; everything else passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/session" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        response: Envelope
        try:
            response = await check_session(Request(scope, receive))
        except DoorwardError as exc:
            response = answer_error(exc)
        await response(scope, receive, send)
