"""The fast path: ``POST /login`` and ``GET /session``, the two requests sent most, answered ahead of
FastAPI's middlewares and routing, which they do not need.

- ``GET /session`` is sent by every backend for every request it serves. Once the database read was
  cheap, FastAPI's routing and per-request machinery cost more than the check itself, and its
  middlewares (error handling, telemetry, body limit) more again (benchmarks/README.md, "What
  profiling found").
- ``POST /login`` is refused with 503 before its body is read while every hash slot is taken, so a
  login flood costs little more than its headers and session checks keep their latency. The time
  FastAPI would spend on the others is time the hashing could have.

``DoorwardApp`` hands them to the very route functions of routes.py (``FAST_ROUTES``) and answers as
the routed stack would: a DoorwardError through errors.py's table, a bug as its 500 envelope,
headers.py's headers and, with a CORS allow-list, Starlette's CORSMiddleware around the answer with
the options every other answer gets (``headers.cors_options``). The CSRF guard, which it skips,
lets both through untouched anyway: /login is in ``security.SESSIONLESS_API``, GET a safe method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from doorward.core.errors import DoorwardError
from doorward.metrics import PrometheusMetrics
from doorward.web import routes
from doorward.web.errors import answer_error, answer_unexpected
from doorward.web.headers import AnswerHeaders, wrap_answers

Route = Callable[[Request], Awaitable[Response]]

FAST_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/login"): routes.login,
    ("GET", "/session"): routes.session,
}
"""(method, path) -> the function of routes.py that answers it, called here without FastAPI."""


class DoorwardApp(FastAPI):
    """FastAPI, with the requests of ``FAST_ROUTES`` answered before any of its middlewares.

    ``cors``: CORSMiddleware's options when the app has an allow-list (``headers.cors_options``);
    ``headers``: the security headers of every answer (``headers.AnswerHeaders.of``).
    """

    def __init__(
        self, *, cors: dict[str, Any] | None = None, headers: AnswerHeaders | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self._cors = cors
        self._headers = headers or AnswerHeaders()
        self.metrics: PrometheusMetrics | None = None  # set by the lifespan when metrics are on
        self._fast_paths = {
            key: _fast_path(route, cors, self._headers, self, key[1]) for key, route in FAST_ROUTES.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast_path = (
            self._fast_paths.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if fast_path is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await fast_path(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's outermost middleware (ServerErrorMiddleware, which answers a bug's 500),
        # so that every answer gets the security headers and CORS's, the 500 of a bug too.
        exempt = {self.docs_url, self.redoc_url, self.swagger_ui_oauth2_redirect_url} - {None}
        stack = super().build_middleware_stack()
        return wrap_answers(
            stack, cors=self._cors, headers=self._headers, csp_exempt=[p for p in exempt if p]
        )


def _fast_path(
    route: Route, cors: dict[str, Any] | None, headers: AnswerHeaders, app: DoorwardApp, path: str
) -> ASGIApp:
    """An ASGI app that answers with ``route`` as FastAPI and doorward's middlewares would, and
    tells ``app.metrics`` (when on) how long it took and what the answer was."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        began = perf_counter()
        outcome = "success"
        try:
            response = await route(Request(scope, receive))
        except ClientDisconnect:
            return  # gone while its login's body was read: no one to answer, and no bug to log
        except DoorwardError as exc:
            outcome = exc.code
            response = answer_error(exc, app.metrics)
        except Exception as exc:  # what ServerErrorMiddleware and the handlers do, for these paths
            outcome = "error"
            response = answer_unexpected(exc)
        if cors is None:
            headers.add(response.raw_headers)  # what SecurityHeaders does, without its wrapper
        await response(scope, receive, send)
        if app.metrics is not None:
            app.metrics.answered(path, outcome, perf_counter() - began)

    if cors is None:
        return answer
    # Wrapped as every routed answer is, in the same order: CORS's headers first, then security's.
    return wrap_answers(answer, cors=cors, headers=headers)
