"""The HTTP stack's ceiling: a bare Starlette JSON endpoint that touches nothing.

Served by the benchmark exactly as doorward is (uvicorn, same workers), and asked the same
``GET /session`` with the same bearer header, so the ratio doorward ÷ this is the share of the
stack's ceiling that doorward keeps.

    python -m uvicorn --app-dir benchmarks --factory bare_app:create_app --workers 2 --no-access-log
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def session(request: Request) -> JSONResponse:
    return JSONResponse({"success": True})


def create_app() -> Starlette:
    """The factory uvicorn calls in each worker."""
    return Starlette(routes=[Route("/session", session)])
