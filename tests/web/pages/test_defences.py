"""The browser defences around the pages: CSRF refusals, the Origin check, CORS."""

from __future__ import annotations

import base64
import hmac

import httpx
import pytest
from fastapi import FastAPI

from doorward.core.tokens import token_digest
from doorward.web.security import origin_of
from tests.conftest import EMAIL, PASSWORD, app_for, bearer, login, register
from tests.web.pages.conftest import (
    CSRF_ENVELOPE,
    EVIL,
    ORIGIN,
    SAME_SITE,
    Browser,
    assert_page_headers,
    csrf_of,
    form_login,
    session_of,
)


async def test_a_cross_site_logout_form_is_refused_and_the_session_survives(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)

    refused = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=EVIL)
    assert refused.status_code == 403
    assert_page_headers(refused)
    assert "Cross-site request refused" in refused.text
    assert "set-cookie" not in refused.headers
    assert await session_of(token, client) == 200

    # The JSON logout with the cookie: an API caller gets the envelope.
    json_refused = await browser.post("/logout", headers={**EVIL, "X-CSRF-Token": csrf})
    assert (json_refused.status_code, json_refused.json()) == (403, CSRF_ENVELOPE)
    assert json_refused.headers["content-type"] == "application/json; charset=utf-8"
    assert await session_of(token, client) == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver"},  # another scheme is another origin
        {"Origin": "https://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {},  # neither Origin nor Sec-Fetch-Site
    ],
)
async def test_origins_other_than_ours_are_refused(
    client: httpx.AsyncClient, new_browser: Browser, headers: dict[str, str]
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    response = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=headers)
    assert response.status_code == 403
    assert await session_of(token, client) == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    ],
)
async def test_without_origin_sec_fetch_site_decides(
    client: httpx.AsyncClient, new_browser: Browser, headers: dict[str, str]
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    response = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=headers)
    assert response.status_code == 303
    assert await session_of(token, client) == 401


async def test_the_database_alone_does_not_give_a_sessions_csrf_token(
    client: httpx.AsyncClient, app: FastAPI, new_browser: Browser
) -> None:
    # The key sits in the database beside each session's token digest: an HMAC of the digest
    # could be computed from a dump. The token is an HMAC of the raw token, stored nowhere.
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    key = app.state.services.csrf_key
    from_the_dump = base64.urlsafe_b64encode(hmac.new(key, token_digest(token), "sha256").digest())
    assert await csrf_of(browser) != from_the_dump.rstrip(b"=").decode()


async def test_a_missing_or_wrong_csrf_token_is_refused(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    other = new_browser()
    await form_login(other)
    someone_elses = await csrf_of(other)

    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    assert csrf != someone_elses
    for form in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 43}, {"csrf_token": someone_elses}):
        response = await browser.post("/logout/form", data=form, headers=SAME_SITE)
        assert response.status_code == 403, form
        assert await session_of(token, client) == 200
    done = await browser.post("/logout/form", data={"csrf_token": csrf}, headers=SAME_SITE)
    assert (done.status_code, done.headers["location"]) == (303, "/login?done=logged_out")
    assert (
        done.headers["set-cookie"]
        == "__Host-doorward_session=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
    )
    assert await session_of(token, client) == 401


async def test_json_calls_with_the_cookie_need_the_csrf_header(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)
    csrf = await csrf_of(browser)

    missing = await browser.post("/logout", headers=SAME_SITE)
    assert (missing.status_code, missing.json()) == (403, CSRF_ENVELOPE)
    assert await session_of(token, client) == 200

    done = await browser.post("/logout", headers={**SAME_SITE, "X-CSRF-Token": csrf})
    assert (done.status_code, done.json()) == (200, {"success": True})
    assert await session_of(token, client) == 401


async def test_bearer_calls_need_no_csrf_token_even_from_elsewhere(client: httpx.AsyncClient) -> None:
    await register(client)
    token = await login(client)
    response = await client.post("/logout", headers={**bearer(token), **EVIL})
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert await session_of(token, client) == 401


async def test_the_login_and_register_forms_check_the_origin(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    response = await browser.post("/login/form", data={"email": EMAIL, "password": PASSWORD}, headers=EVIL)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    created = await browser.post(
        "/register/form", data={"email": "mallory@example.com", "password": PASSWORD}, headers=EVIL
    )
    assert created.status_code == 403
    refused = await client.post("/login", json={"email": "mallory@example.com", "password": PASSWORD})
    assert refused.status_code == 401  # no account was made


async def test_the_public_url_is_an_origin_of_ours(database_url: str) -> None:
    async with app_for(database_url, base_url=ORIGIN, public_url="https://login.example.com/") as (
        _,
        browser,
    ):
        await register(browser)
        token = await form_login(browser)
        csrf = await csrf_of(browser)
        response = await browser.post(
            "/logout/form", data={"csrf_token": csrf}, headers={"Origin": "https://login.example.com"}
        )
        assert response.status_code == 303
        assert await session_of(token, browser) == 401


async def test_a_junk_cookie_authenticates_nothing_and_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/logout", headers={"Cookie": "__Host-doorward_session=junk"})
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert (
        await client.get("/session", headers={"Cookie": "__Host-doorward_session=junk"})
    ).status_code == 401


async def test_an_oversized_form_is_413(client: httpx.AsyncClient, new_browser: Browser) -> None:
    await register(client)
    browser = new_browser()
    await form_login(browser)
    big = {"csrf_token": "x", "padding": "y" * 70_000}
    assert (await browser.post("/logout/form", data=big, headers=SAME_SITE)).status_code == 413
    assert (await browser.post("/login/form", data=big, headers=SAME_SITE)).status_code == 400


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_preflight_answers_only_allowed_origins(database_url: str) -> None:
    cors = "https://app.example.com, https://admin.example.com"
    async with app_for(database_url, base_url=ORIGIN, cors_origins=cors) as (_, client):
        allowed = await client.options("/login", headers=preflight("https://app.example.com"))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers

        other = await client.options("/login", headers=preflight("https://evil.example"))
        assert "access-control-allow-origin" not in other.headers

        await register(client)
        token = await login(client)
        simple = await client.get(
            "/session", headers={**bearer(token), "Origin": "https://admin.example.com"}
        )
        assert simple.headers["access-control-allow-origin"] == "https://admin.example.com"


async def test_no_cors_by_default(client: httpx.AsyncClient) -> None:
    response = await client.options("/login", headers=preflight("https://app.example.com"))
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Login.Example.com/", "https://login.example.com"),
        ("https://login.example.com:443", "https://login.example.com"),
        ("http://127.0.0.1:8000/account?x=1", "http://127.0.0.1:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("ftp://example.com", None),
        ("http://example.com:99999", None),
        ("https://", None),
    ],
)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/login/form", {"email": "ada\x00@example.com", "password": PASSWORD}),
        ("/password/reset/request/form", {"email": "ada\x00@example.com"}),
        ("/email/verify/resend/form", {"email": "ada\x00@example.com"}),
    ],
)
async def test_a_nul_in_a_form_field_is_a_400_as_in_json(
    client: httpx.AsyncClient, new_browser: Browser, path: str, fields: dict[str, str]
) -> None:
    """PostgreSQL refuses NUL in text with an error: the JSON bodies refuse it before any work
    (schemas.Text), and a form post (%00) must too, not answer 500 or fail behind a 303."""
    await register(client)
    response = await new_browser().post(path, data=fields, headers=SAME_SITE)
    assert response.status_code == 400, response.text
    assert_page_headers(response)
