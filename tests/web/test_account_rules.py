"""Account rules a user meets: a password change must change it, and a used reset link says so at once."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.web.pages.conftest import NEW_PASSWORD, ORIGIN, SAME_SITE, csrf_of, form_login
from tests.web.pages.test_links import mailed_token

UNCHANGED = {
    "success": False,
    "error": "The new password is the same as the current one",
    "code": "password_unchanged",
}


async def test_a_change_to_the_same_password_is_refused(client: httpx.AsyncClient) -> None:
    await register(client)
    token = await login(client)
    other = await login(client)
    response = await client.post(
        "/password/change", json={"currentPassword": PASSWORD, "newPassword": PASSWORD}, headers=bearer(token)
    )
    assert (response.status_code, response.json()) == (400, UNCHANGED)
    # Nothing happened: the other session lives, the password is the one it was.
    assert (await client.get("/session", headers=bearer(other))).status_code == 200
    await login(client)


async def test_the_same_password_under_another_unicode_form_is_the_same(client: httpx.AsyncClient) -> None:
    """Passwords are compared as they are hashed: after NFKC."""
    password = "ﬁfteen characters and a ligature"  # "ﬁ" is "fi" after NFKC
    await register(client, password=password)
    token = await login(client, password=password)
    response = await client.post(
        "/password/change",
        json={"currentPassword": password, "newPassword": "fifteen characters and a ligature"},
        headers=bearer(token),
    )
    assert (response.status_code, response.json()["code"]) == (400, "password_unchanged")


async def test_a_wrong_current_password_is_still_that_error(client: httpx.AsyncClient) -> None:
    await register(client)
    token = await login(client)
    response = await client.post(
        "/password/change",
        json={"currentPassword": "not " + PASSWORD, "newPassword": "not " + PASSWORD},
        headers=bearer(token),
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_current_password")


async def test_the_account_page_says_the_password_is_unchanged(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as browser:
        await register(browser)
        await form_login(browser)
        response = await browser.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": PASSWORD,
                "csrf_token": await csrf_of(browser),
            },
            headers=SAME_SITE,
        )
    assert response.status_code == 400
    assert UNCHANGED["error"] in response.text


async def test_the_openapi_names_the_code(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert (
        "password_unchanged" in spec["paths"]["/password/change"]["post"]["responses"]["400"]["description"]
    )


DEAD = "This link was used or has expired"


async def reset_link(app: FastAPI, browser: httpx.AsyncClient, mail_dir: Path) -> str:
    await register(browser)
    asked = await browser.post("/password/reset/request/form", data={"email": EMAIL}, headers=SAME_SITE)
    assert asked.status_code == 303
    return await mailed_token(app, mail_dir)


async def test_a_used_reset_link_says_so_instead_of_showing_the_form(
    database_url: str, tmp_path: Path
) -> None:
    async with app_for(database_url, base_url=ORIGIN, mail_dir=tmp_path / "mail") as (app, browser):
        token = await reset_link(app, browser, tmp_path / "mail")
        done = await browser.post(
            "/password/reset/confirm/form",
            data={"token": token, "new_password": NEW_PASSWORD},
            headers=SAME_SITE,
        )
        assert done.status_code == 303
        page = await browser.get("/password/reset", params={"token": token})
    assert page.status_code == 400
    assert DEAD in page.text
    assert 'name="new_password"' not in page.text
    assert 'href="/password/reset"' in page.text  # a way to ask for a new one


async def test_an_expired_reset_link_says_so_instead_of_showing_the_form(
    database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    async with app_for(database_url, clock, base_url=ORIGIN, mail_dir=tmp_path / "mail") as (app, browser):
        token = await reset_link(app, browser, tmp_path / "mail")
        assert 'name="new_password"' in (await browser.get("/password/reset", params={"token": token})).text
        clock.advance(minutes=31)
        page = await browser.get("/password/reset", params={"token": token})
    assert (page.status_code, DEAD in page.text, 'name="new_password"' in page.text) == (400, True, False)


async def test_an_unknown_reset_link_says_so_too(client: httpx.AsyncClient) -> None:
    page = await client.get("/password/reset", params={"token": "A" * 43})
    assert (page.status_code, DEAD in page.text, 'name="new_password"' in page.text) == (400, True, False)
