"""Logging in and registering through the forms: the cookie, the answers to each failure."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, app_for, register
from tests.web.pages.conftest import SAME_SITE, Browser, assert_page_headers, form_login, session_of


async def test_form_login_sets_the_cookie_and_the_account_page_shows_the_user(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    token = await form_login(browser)

    account = await browser.get("/account")
    assert account.status_code == 200
    assert_page_headers(account)
    assert EMAIL in account.text
    assert token not in account.text

    check = await browser.get("/session")  # the cookie alone, no Authorization header
    assert check.status_code == 200
    assert check.json()["user"]["email"] == EMAIL
    assert token not in check.text
    assert "cookie" not in check.headers.get("set-cookie", "")


async def test_the_login_page_sends_a_logged_in_browser_on_to_its_account(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    assert (await browser.get("/account")).headers["location"] == "/login"
    await form_login(browser)
    assert (await browser.get("/login")).headers["location"] == "/account"


async def test_logging_in_again_ends_the_browsers_previous_session(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    first = await form_login(browser)
    second = await form_login(browser)
    assert first != second
    assert await session_of(first, client) == 401
    assert await session_of(second, client) == 200


async def test_without_cookie_secure_the_cookie_has_no_prefix_and_no_secure(database_url: str) -> None:
    async with app_for(database_url, cookie_secure=False) as (_, client):
        await register(client)
        response = await client.post(
            "/login/form",
            data={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": "http://testserver"},
        )
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert re.fullmatch(r"doorward_session=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Lax", cookie)
        assert (await client.get("/session")).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {"email": "nobody@example.com", "password": PASSWORD},
        {"email": EMAIL, "password": "wrong " + PASSWORD},
        {"email": "disabled@example.com", "password": PASSWORD},
        {"email": EMAIL, "password": ""},
        {"email": EMAIL},
    ],
)
async def test_every_login_failure_shows_the_same_message(
    client: httpx.AsyncClient, app: FastAPI, new_browser: Browser, form: dict[str, str]
) -> None:
    await register(client)
    await register(client, "disabled@example.com")
    await app.state.services.admin.disable_user("disabled@example.com")
    response = await new_browser().post("/login/form", data=form, headers=SAME_SITE)
    assert response.status_code == 400
    assert_page_headers(response)
    assert (
        '<p class="form-error" id="login-error" role="alert" aria-live="assertive">Invalid credentials</p>'
        in (response.text)
    )
    assert "set-cookie" not in response.headers
    assert f'value="{form["email"]}"' in response.text  # the email stays, the password does not
    assert PASSWORD not in response.text


async def test_a_throttled_login_says_how_long_to_wait(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    for _ in range(10):
        response = await browser.post(
            "/login/form", data={"email": EMAIL, "password": "wrong " + PASSWORD}, headers=SAME_SITE
        )
        if response.status_code == 429:
            break
    assert response.status_code == 429
    wait = response.headers["retry-after"]
    unit = "second" if wait == "1" else "seconds"
    assert f"Too many attempts, try again in {wait} {unit}" in response.text


@pytest.mark.parametrize(
    ("email", "password", "status", "field", "reason"),
    [
        (EMAIL, "too short", 400, "password", "Password must be at least 15 characters"),
        (
            EMAIL,
            "passwordpassword1",
            400,
            "password",
            "This password is too common; choose one that is harder",
        ),
        (EMAIL, "ada@example.com is my password", 400, "password", "must not contain your email address"),
        ("not an email", PASSWORD, 400, "email", "Email address is not valid"),
    ],
)
async def test_registration_refusals_say_why_next_to_the_field(
    client: httpx.AsyncClient, email: str, password: str, status: int, field: str, reason: str
) -> None:
    response = await client.post(
        "/register/form", data={"email": email, "password": password}, headers={"Origin": "http://testserver"}
    )
    assert response.status_code == status
    assert_page_headers(response)
    slot = re.search(
        rf'<p class="field-error" id="{field}-error" aria-live="polite">([^<]*)</p>', response.text
    )
    assert slot and reason in slot.group(1).replace("&#39;", "'")
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', response.text)


async def test_registration_then_login(client: httpx.AsyncClient, new_browser: Browser) -> None:
    browser = new_browser()
    response = await browser.post(
        "/register/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
    )
    assert (response.status_code, response.headers["location"]) == (303, "/login?done=registered")
    assert "set-cookie" not in response.headers
    assert "Your account is ready" in (await browser.get(response.headers["location"])).text
    await form_login(browser)
    taken = await browser.post(
        "/register/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
    )
    assert taken.status_code == 409
