"""Helpers of the page tests: a browser (a client that keeps cookies, on https://testserver), logging
in through the form, a page's CSRF token, the headers every page carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, bearer

ORIGIN = "https://testserver"
SAME_SITE = {"Origin": ORIGIN}
EVIL = {"Origin": "https://evil.example"}
NEW_PASSWORD = "a brand new passphrase for ada"
COOKIE = re.compile(r"__Host-doorward_session=([A-Za-z0-9_-]{43}); Path=/; Secure; HttpOnly; SameSite=Lax")
CSRF_ENVELOPE = {"success": False, "error": "Cross-site request refused", "code": "csrf"}

Browser = Callable[[], httpx.AsyncClient]


def browser_for(app: FastAPI) -> httpx.AsyncClient:
    """A client that keeps cookies like a browser on https://testserver (Secure cookies need https)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)


@pytest.fixture
async def new_browser(app: FastAPI) -> AsyncIterator[Browser]:
    """Opens browsers on the test's app, each with cookies of its own; closes them afterwards."""
    opened: list[httpx.AsyncClient] = []

    def new() -> httpx.AsyncClient:
        opened.append(browser_for(app))
        return opened[-1]

    yield new
    for client in opened:
        await client.aclose()


async def form_login(browser: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    """Log in through the form; the browser keeps the cookie. Returns the session token (for checks)."""
    response = await browser.post(
        "/login/form", data={"email": email, "password": password}, headers=SAME_SITE
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account"
    match = COOKIE.fullmatch(response.headers["set-cookie"])
    assert match, response.headers["set-cookie"]
    return match.group(1)


async def csrf_of(browser: httpx.AsyncClient) -> str:
    """The CSRF token of the logged-in browser's account page, the same in its meta tag and forms."""
    page = await browser.get("/account")
    assert page.status_code == 200, page.text
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert meta
    fields = re.findall(r'name="csrf_token" value="([^"]+)"', page.text)
    assert fields and set(fields) == {meta.group(1)}
    return meta.group(1)


async def session_of(token: str, client: httpx.AsyncClient) -> int:
    """The status of a session check with ``token``: 200 while the session lives, 401 after."""
    return (await client.get("/session", headers=bearer(token))).status_code


def assert_page_headers(response: httpx.Response) -> None:
    """The headers of every HTML page: never cached, never framed, no inline script."""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = response.headers["content-security-policy"]
    csp = {name: value for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))}
    assert csp["default-src"] in {"'self'", "'none'"}
    assert csp["script-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["form-action"] == "'self'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
