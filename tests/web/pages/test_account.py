"""The account page: its sessions, ending them, changing the password, and naming a session's device."""

from __future__ import annotations

import re

import httpx
import pytest

from doorward.web.pages import describe_device
from tests.conftest import EMAIL, PASSWORD, login, register
from tests.web.pages.conftest import (
    NEW_PASSWORD,
    SAME_SITE,
    Browser,
    assert_page_headers,
    csrf_of,
    form_login,
    session_of,
)


async def test_the_account_page_lists_sessions_and_ends_one(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    laptop, phone = new_browser(), new_browser()
    laptop_token = await form_login(laptop)
    phone_token = await form_login(phone)
    csrf = await csrf_of(laptop)

    page = (await laptop.get("/account")).text
    revokable = re.findall(r'action="/account/sessions/([A-Za-z0-9_-]+)/revoke"', page)
    assert len(revokable) == 1  # the phone's; this browser logs out instead
    assert page.count("this browser") == 1

    ended = await laptop.post(
        f"/account/sessions/{revokable[0]}/revoke", data={"csrf_token": csrf}, headers=SAME_SITE
    )
    assert (ended.status_code, ended.headers["location"]) == (303, "/account?done=revoked")
    assert await session_of(phone_token, client) == 401
    assert await session_of(laptop_token, client) == 200
    assert "That session has ended." in (await laptop.get("/account?done=revoked")).text

    again = await laptop.post(
        f"/account/sessions/{revokable[0]}/revoke", data={"csrf_token": csrf}, headers=SAME_SITE
    )
    assert again.headers["location"] == "/account?done=gone"


async def test_ending_all_other_sessions(client: httpx.AsyncClient, new_browser: Browser) -> None:
    await register(client)
    browsers = [new_browser() for _ in range(3)]
    tokens = [await form_login(b) for b in browsers]
    csrf = await csrf_of(browsers[0])
    response = await browsers[0].post(
        "/account/sessions/revoke-others", data={"csrf_token": csrf}, headers=SAME_SITE
    )
    assert response.headers["location"] == "/account?done=others_ended"
    assert [await session_of(t, client) for t in tokens] == [200, 401, 401]


async def test_changing_the_password(client: httpx.AsyncClient, new_browser: Browser) -> None:
    await register(client)
    browser, other = new_browser(), new_browser()
    token = await form_login(browser)
    other_token = await form_login(other)
    csrf = await csrf_of(browser)

    async def change(current: str, new: str) -> httpx.Response:
        form = {"csrf_token": csrf, "current_password": current, "new_password": new}
        return await browser.post("/account/password", data=form, headers=SAME_SITE)

    wrong = await change("not it at all, sorry", NEW_PASSWORD)
    assert wrong.status_code == 400
    assert "The current password is not correct" in wrong.text
    assert_page_headers(wrong)
    weak = await change(PASSWORD, "short")
    assert weak.status_code == 400
    assert "Password must be at least 15 characters" in weak.text

    done = await change(PASSWORD, NEW_PASSWORD)
    assert (done.status_code, done.headers["location"]) == (303, "/account?done=password_changed")
    assert await session_of(token, client) == 200
    assert await session_of(other_token, client) == 401
    await login(client, EMAIL, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (None, "Unknown device"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
            "Firefox on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28.1", "python-httpx/0.28.1"),
        ("x" * 100, "x" * 59 + "…"),
    ],
)
def test_describe_device(user_agent: str | None, device: str) -> None:
    assert describe_device(user_agent) == device
