"""The pages mails link to: resetting a password, confirming an email address."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, app_for, login, register
from tests.mailbox import link_token
from tests.web.pages.conftest import NEW_PASSWORD, ORIGIN, SAME_SITE, form_login, session_of


async def mailed_token(app: FastAPI, mail_dir: Path) -> str:
    await app.state.services.accounts.background.drain()
    await app.state.services.outbox.drain()
    (mail,) = mail_dir.glob("*.eml")
    return link_token(message_from_bytes(mail.read_bytes(), policy=policy.default))  # type: ignore[arg-type]


async def test_resetting_a_password_through_the_pages(database_url: str, tmp_path: Path) -> None:
    async with app_for(database_url, base_url=ORIGIN, mail_dir=tmp_path / "mail") as (app, browser):
        await register(browser)
        token = await form_login(browser)
        asked = await browser.post("/password/reset/request/form", data={"email": EMAIL}, headers=SAME_SITE)
        assert asked.headers["location"] == "/password/reset?done=reset_sent"
        assert (
            "a link to set a new password is on its way"
            in (await browser.get(asked.headers["location"])).text
        )
        nobody = await browser.post(
            "/password/reset/request/form", data={"email": "x@example.com"}, headers=SAME_SITE
        )
        assert nobody.headers["location"] == asked.headers["location"]

        reset_token = await mailed_token(app, tmp_path / "mail")
        page = await browser.get("/password/reset", params={"token": reset_token})
        assert page.status_code == 200 and f'value="{reset_token}"' in page.text
        weak = await browser.post(
            "/password/reset/confirm/form",
            data={"token": reset_token, "new_password": "short"},
            headers=SAME_SITE,
        )
        assert weak.status_code == 400 and "Password must be at least 15 characters" in weak.text
        done = await browser.post(
            "/password/reset/confirm/form",
            data={"token": reset_token, "new_password": NEW_PASSWORD},
            headers=SAME_SITE,
        )
        assert (done.status_code, done.headers["location"]) == (303, "/login?done=password_reset")
        assert "Max-Age=0" in done.headers["set-cookie"]
        assert await session_of(token, browser) == 401
        await login(browser, EMAIL, NEW_PASSWORD)

        used = await browser.post(
            "/password/reset/confirm/form",
            data={"token": reset_token, "new_password": NEW_PASSWORD},
            headers=SAME_SITE,
        )
        assert used.status_code == 400 and "Ask for a new link" in used.text


async def test_confirming_an_email_address_through_the_pages(database_url: str, tmp_path: Path) -> None:
    mail_dir = tmp_path / "mail"
    async with app_for(database_url, base_url=ORIGIN, mail_dir=mail_dir, require_email_verification=True) as (
        app,
        browser,
    ):
        created = await browser.post(
            "/register/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
        )
        assert created.headers["location"] == "/login?done=verify"
        await app.state.services.accounts.background.drain()  # the account is created after the answer
        early = await browser.post(
            "/login/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE
        )
        assert early.status_code == 403 and "Email address not verified" in early.text

        token = await mailed_token(app, tmp_path / "mail")
        page = await browser.get("/email/verify", params={"token": token})
        assert page.status_code == 200 and "Confirm my address" in page.text
        confirmed = await browser.post("/email/verify/form", data={"token": token}, headers=SAME_SITE)
        assert confirmed.headers["location"] == "/login?done=verified"
        await form_login(browser)
        used = await browser.post("/email/verify/form", data={"token": token}, headers=SAME_SITE)
        assert used.status_code == 400 and "Ask for a new link" in used.text

        resend = await browser.post("/email/verify/resend/form", data={"email": EMAIL}, headers=SAME_SITE)
        assert resend.headers["location"] == "/email/verify?done=verify_sent"
        assert "a new link is on its way" in (await browser.get(resend.headers["location"])).text
        empty = await browser.post("/email/verify/resend/form", data={"email": ""}, headers=SAME_SITE)
        assert empty.status_code == 400
        assert re.search(r'id="email"[^>]*aria-invalid="true"', empty.text)


@pytest.mark.parametrize("path", ["/password/reset", "/email/verify"])
async def test_malformed_links_say_so(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, params={"token": "<b>nope</b>"})
    assert response.status_code == 400
    assert "This link is not valid" in response.text
    assert "<b>nope" not in response.text
