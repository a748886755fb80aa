"""What a browser finds outside the forms: the root, the favicon, the page for a path not there."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.web.pages.render import redirect, render
from doorward.web.transport import cookie_token

router = APIRouter(include_in_schema=False)

FAVICON = files("doorward.web").joinpath("static", "favicon.svg").read_bytes()


@router.get("/")
async def root(request: Request) -> Response:
    # The cookie alone decides, without a database read: /account sends a stale one on to /login.
    return redirect("/account" if cookie_token(request) else "/login")


@router.get("/favicon.ico")
async def favicon() -> Response:
    # Browsers ask for it on every site, pages or not (the JSON API's, the docs); pages name
    # /static/favicon.svg. The same picture both ways, never a 404 in the log for it.
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def not_found_page() -> Response:
    """The 404 a browser's GET of an unknown path gets (API clients get the JSON envelope)."""
    return render(
        "message.html",
        status=404,
        title="Page not found",
        heading="Page not found",
        text="There is no page at this address.",
        hint="",
        link_href="/",
        link_text="Go to doorward's start page",
    )
