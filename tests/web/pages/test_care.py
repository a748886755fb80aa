"""Issue 23's pages: a new email address from the account page and the pages its two mailed links open,
and deleting the account through its confirmation page. Forms like the others: CSRF, a 303 on success."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, register
from tests.mailbox import link_token
from tests.web.pages.conftest import (
    EVIL,
    ORIGIN,
    SAME_SITE,
    assert_page_headers,
    browser_for,
    csrf_of,
    form_login,
    session_of,
)
from tests.web.test_account_care import NEW, mail_to, settle

Started = tuple[FastAPI, httpx.AsyncClient, httpx.AsyncClient, Path]


@pytest.fixture
async def site(database_url: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Started]:
    mail = tmp_path / "mail"
    async with (
        app_for(database_url, clock, base_url=ORIGIN, public_url=ORIGIN, mail_dir=mail) as (
            app,
            client,
        ),
        browser_for(app) as browser,
    ):
        yield app, client, browser, mail


async def test_a_new_address_from_the_account_page_and_its_link_page(site: Started) -> None:
    app, client, browser, mail = site
    await register(client)
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    assert 'action="/account/email"' in (await browser.get("/account")).text

    wrong = await browser.post(
        "/account/email",
        data={"csrf_token": csrf, "new_email": NEW, "email_password": "not the password at all"},
        headers=SAME_SITE,
    )
    assert wrong.status_code == 400 and "Current password" in wrong.text
    asked = await browser.post(
        "/account/email",
        data={"csrf_token": csrf, "new_email": NEW, "email_password": PASSWORD},
        headers=SAME_SITE,
    )
    assert (asked.status_code, asked.headers["location"]) == (303, "/account?done=email_change_sent")
    await settle(app)
    link = link_token(mail_to(mail, NEW, "Confirm your new email address"))

    shown = await browser.get(f"/email/change/confirm?token={link}")
    assert shown.status_code == 200
    assert_page_headers(shown)
    assert 'action="/email/change/confirm/form"' in shown.text  # a button: a GET changes nothing
    assert (await client.post("/login", json={"email": NEW, "password": PASSWORD})).status_code == 401
    forged = await browser.post("/email/change/confirm/form", data={"token": link}, headers=EVIL)
    assert forged.status_code == 403
    form_csrf = re.search(r'name="csrf_token" value="([^"]*)"', shown.text)
    assert form_csrf and form_csrf.group(1) == csrf
    done = await browser.post(
        "/email/change/confirm/form", data={"token": link, "csrf_token": csrf}, headers=SAME_SITE
    )
    assert (done.status_code, done.headers["location"]) == (303, "/account?done=email_changed")
    assert await session_of(token, client) == 200
    assert NEW in (await browser.get("/account?done=email_changed")).text
    dead = await browser.post(
        "/email/change/confirm/form", data={"token": link, "csrf_token": csrf}, headers=SAME_SITE
    )
    assert dead.status_code == 400
    assert (await browser.get("/email/change/confirm?token=junk")).status_code == 400


async def test_the_wasnt_me_page_ends_every_session(site: Started) -> None:
    app, client, browser, mail = site
    await register(client)
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    await browser.post(
        "/account/email",
        data={"csrf_token": csrf, "new_email": NEW, "email_password": PASSWORD},
        headers=SAME_SITE,
    )
    await settle(app)
    link = link_token(mail_to(mail, EMAIL, "Your email address is being changed"))
    async with browser_for(app) as elsewhere:  # the owner opens the mail on another device
        shown = await elsewhere.get(f"/email/change/revert?token={link}")
        assert shown.status_code == 200 and 'action="/email/change/revert/form"' in shown.text
        done = await elsewhere.post("/email/change/revert/form", data={"token": link}, headers=SAME_SITE)
        assert (done.status_code, done.headers["location"]) == (303, "/login?done=email_reverted")
    assert await session_of(token, client) == 401
    await settle(app)
    mail_to(mail, EMAIL, "Reset your password")


async def test_deleting_the_account_from_its_confirmation_page(site: Started) -> None:
    app, client, browser, mail = site
    await register(client)
    token = await form_login(browser)
    csrf = await csrf_of(browser)
    assert 'href="/account/delete"' in (await browser.get("/account")).text
    shown = await browser.get("/account/delete")
    assert shown.status_code == 200 and 'action="/account/delete/form"' in shown.text
    assert_page_headers(shown)

    unticked = await browser.post(
        "/account/delete/form", data={"csrf_token": csrf, "password": PASSWORD}, headers=SAME_SITE
    )
    assert unticked.status_code == 400 and await session_of(token, client) == 200
    wrong = await browser.post(
        "/account/delete/form",
        data={"csrf_token": csrf, "password": "not the password at all", "confirm": "yes"},
        headers=SAME_SITE,
    )
    assert wrong.status_code == 400 and await session_of(token, client) == 200
    forged = await browser.post(
        "/account/delete/form", data={"password": PASSWORD, "confirm": "yes"}, headers=EVIL
    )
    assert forged.status_code == 403 and await session_of(token, client) == 200
    done = await browser.post(
        "/account/delete/form",
        data={"csrf_token": csrf, "password": PASSWORD, "confirm": "yes"},
        headers=SAME_SITE,
    )
    assert (done.status_code, done.headers["location"]) == (303, "/login?done=account_deleted")
    assert (
        "__Host-doorward_session=;" in done.headers["set-cookie"] or "Max-Age=0" in done.headers["set-cookie"]
    )
    assert await session_of(token, client) == 401
    await settle(app)
    mail_to(mail, EMAIL, "Your account was deleted")
