"""Paths as a client finds them: no slash redirects, the root, unknown pages, the favicon, HEAD /healthz."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import register
from tests.web.pages.conftest import browser_for, form_login

JSON = "application/json; charset=utf-8"
NOT_FOUND = {"success": False, "error": "Not found", "code": "not_found"}


@pytest.mark.parametrize("path", ["/session/", "/login/", "/sessions/", "/healthz/", "/account/"])
async def test_a_trailing_slash_is_not_found_never_a_redirect_to_the_clients_host(
    client: httpx.AsyncClient, path: str
) -> None:
    """Starlette's slash redirect built its Location from the Host header: an open redirect."""
    response = await client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == NOT_FOUND
    assert response.headers["content-type"] == JSON


HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
"""What a browser's address bar asks for."""


async def test_the_root_leads_a_browser_to_the_login_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers=HTML)
    assert (response.status_code, response.headers["location"]) == (303, "/login")


async def test_the_root_leads_a_signed_in_browser_to_its_account(app: FastAPI) -> None:
    async with browser_for(app) as browser:
        await register(browser)
        await form_login(browser)
        response = await browser.get("/", headers=HTML)
    assert (response.status_code, response.headers["location"]) == (303, "/account")


@pytest.mark.parametrize("path", ["/nope", "/account/", "/static/nope.css", "/password/reset/x"])
async def test_a_browser_gets_a_page_for_an_unknown_path(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=HTML)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Page not found</h1>" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize(
    "headers",
    [{}, {"Accept": "application/json"}, {"Accept": "*/*"}],
    ids=["no-accept", "json", "anything"],
)
async def test_an_api_client_keeps_the_json_404(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/nope", headers=headers)
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert response.headers["content-type"] == JSON


async def test_only_a_browsers_get_gets_the_page(client: httpx.AsyncClient) -> None:
    """A script's POST with a browser's Accept header is still an API call: JSON."""
    response = await client.post("/nope", headers=HTML)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("path", ["/favicon.ico", "/static/favicon.svg"])
async def test_a_favicon(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith("<svg")


async def test_pages_name_their_icon(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text


async def test_healthz_answers_head_as_get_without_a_body(client: httpx.AsyncClient) -> None:
    get = await client.get("/healthz")
    head = await client.head("/healthz")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_openapi_documents_head_on_healthz(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/healthz"]) == {"get", "head"}
    assert "/" not in paths and "/favicon.ico" not in paths
