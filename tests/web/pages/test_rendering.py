"""The pages themselves: what each one carries, the static files, what stays out of the API document."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import app_for
from tests.web.pages.conftest import ORIGIN, assert_page_headers

PAGES = ["/login", "/register", "/password/reset", "/email/verify"]


@pytest.mark.parametrize("path", PAGES)
async def test_pages_render_with_their_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert_page_headers(response)
    html = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<link rel="stylesheet" href="/static/doorward.css">' in html
    assert '<script src="/static/doorward.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html  # the CSP allows neither inline
    for label in re.findall(r'<label for="([^"]+)">', html):
        assert f'id="{label}"' in html


async def test_static_files_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    css = await client.get("/static/doorward.css")
    assert (css.status_code, css.headers["content-type"]) == (200, "text/css; charset=utf-8")
    script = await client.get("/static/doorward.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.headers["x-content-type-options"] == "nosniff"


async def test_the_password_minimum_on_the_page_comes_from_the_settings(database_url: str) -> None:
    async with app_for(database_url, base_url=ORIGIN, password_min_length=20) as (_, client):
        page = (await client.get("/register")).text
    assert 'data-min="20"' in page and 'minlength="20"' in page and 'data-max="1024"' in page
    assert "At least 20 characters" in page


async def test_pages_stay_out_of_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not {"/login/form", "/register/form", "/logout/form", "/account"} & set(paths)
    assert "get" not in paths["/login"]


async def test_the_api_docs_keep_working_without_the_page_csp(database_url: str) -> None:
    async with app_for(database_url, api_docs=True) as (_, client):
        docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers
    assert docs.headers["x-frame-options"] == "DENY"


async def test_notices_come_from_a_fixed_table(client: httpx.AsyncClient) -> None:
    shown = await client.get("/login?done=logged_out")
    assert "You have logged out." in shown.text
    echoed = await client.get("/login", params={"done": "<script>alert(1)</script>"})
    assert "alert(1)" not in echoed.text
