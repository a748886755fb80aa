"""Passkeys on the pages, in-process on both databases: the login page's passkey form (hidden until
the script shows it) and the email's autofill hint, the passkey sign-in's form post that sets the
cookie, the second step offering the passkey, and the account page's list with rename and remove
as plain forms (the browser test, tests/e2e/test_browser_passkeys.py, drives the script)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.authenticator import SoftwareAuthenticator
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.web.pages.conftest import COOKIE, EVIL, ORIGIN, SAME_SITE, Browser, form_login

RP_ID = "testserver"


@pytest.fixture
async def started(database_url: str, clock: FakeClock) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_for(database_url, clock, base_url=ORIGIN, public_url=ORIGIN) as app_and_client:
        yield app_and_client


async def with_passkey(client: httpx.AsyncClient) -> tuple[SoftwareAuthenticator, str]:
    await register(client)
    session = await login(client)
    options = await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(session))
    authenticator = SoftwareAuthenticator(RP_ID, ORIGIN)
    added = await client.post(
        "/passkeys",
        json={"credential": authenticator.create(options.json()["options"]), "name": "Laptop"},
        headers=bearer(session),
    )
    assert added.status_code == 201
    return authenticator, added.json()["passkey"]["id"]


async def assertion(
    client: httpx.AsyncClient, authenticator: SoftwareAuthenticator, **options: object
) -> str:
    response = await client.post("/login/passkey/options")
    return json.dumps(authenticator.get(response.json()["options"], **options))  # type: ignore[arg-type]


async def test_the_login_page_offers_passkeys_only_to_the_script(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert 'autocomplete="username webauthn"' in page.text
    form = re.search(r'<form method="post" action="/login/passkey/form"[^>]*>', page.text)
    assert form and " hidden" in form.group(0) and 'data-passkey="login"' in form.group(0)
    assert "<script>" not in page.text and 'src="/static/doorward.js"' in page.text


async def test_a_passkey_sign_in_posted_by_the_page_sets_the_cookie(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    authenticator, _ = await with_passkey(client)
    browser = new_browser()
    credential = await assertion(client, authenticator)
    refused = await browser.post("/login/passkey/form", data={"credential": credential}, headers=EVIL)
    assert refused.status_code == 403
    response = await browser.post("/login/passkey/form", data={"credential": credential}, headers=SAME_SITE)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    match = COOKIE.fullmatch(response.headers["set-cookie"])
    assert match
    session = (await client.get("/session", headers=bearer(match.group(1)))).json()["session"]
    assert (session["aal"], session["amr"]) == (2, ["hwk", "user"])
    replayed = await new_browser().post(
        "/login/passkey/form", data={"credential": credential}, headers=SAME_SITE
    )
    assert replayed.status_code == 400 and "Invalid credentials" in replayed.text
    assert "set-cookie" not in replayed.headers
    junk = await new_browser().post("/login/passkey/form", data={"credential": "{"}, headers=SAME_SITE)
    assert junk.status_code == 400 and "Invalid credentials" in junk.text


async def test_the_second_step_offers_the_passkey_and_accepts_it(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    authenticator, _ = await with_passkey(client)
    browser = new_browser()
    step = await browser.post("/login/form", data={"email": EMAIL, "password": PASSWORD}, headers=SAME_SITE)
    assert step.status_code == 200
    assert re.search(
        r'<form method="post" action="/login/mfa/form" class="passkey" data-passkey="second-step" hidden>',
        step.text,
    )
    assert 'name="code"' not in step.text  # no app: no code form
    assert 'name="methods" value="passkey"' in step.text
    token = re.search(r'name="mfa_token" value="([^"]+)"', step.text)
    assert token
    options = (await client.post("/login/mfa/options", json={"mfaToken": token.group(1)})).json()["options"]
    fields = {"mfa_token": token.group(1), "email": EMAIL, "methods": "passkey"}
    wrong = await browser.post(
        "/login/mfa/form",
        data={**fields, "credential": json.dumps(SoftwareAuthenticator(RP_ID, ORIGIN).get(options))},
        headers=SAME_SITE,
    )
    assert wrong.status_code == 401 and "That passkey could not be verified" in wrong.text
    assert 'data-passkey="second-step"' in wrong.text
    done = await browser.post(
        "/login/mfa/form",
        data={**fields, "credential": json.dumps(authenticator.get(options))},
        headers=SAME_SITE,
    )
    assert done.status_code == 303 and COOKIE.fullmatch(done.headers["set-cookie"])


async def test_the_account_page_lists_renames_and_removes_passkeys(
    client: httpx.AsyncClient, new_browser: Browser
) -> None:
    await register(client)
    browser = new_browser()
    await form_login(browser)
    empty = await browser.get("/account")
    add = re.search(r'<form class="passkey" data-passkey="add" hidden', empty.text)
    assert add and "passkey_remove" not in empty.text and "/remove" not in empty.text
    session = await login(client)
    options = await client.post("/passkeys/options", json={"password": PASSWORD}, headers=bearer(session))
    authenticator = SoftwareAuthenticator(RP_ID, ORIGIN)
    credential = authenticator.create(options.json()["options"])
    added = await client.post(
        "/passkeys", json={"credential": credential, "name": "Laptop"}, headers=bearer(session)
    )
    passkey_id = added.json()["passkey"]["id"]

    page = await browser.get("/account")
    assert "Laptop" in page.text and "Not used yet" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    renamed = await browser.post(
        f"/account/passkeys/{passkey_id}/rename",
        data={"csrf_token": csrf.group(1), "name": "Desk"},
        headers=SAME_SITE,
    )
    assert (renamed.status_code, renamed.headers["location"]) == (303, "/account?done=passkey_renamed")
    assert "Desk" in (await browser.get("/account?done=passkey_renamed")).text
    # Signed in with the password alone (aal 1), this browser may not remove the account's factor.
    level_one = await browser.post(
        f"/account/passkeys/{passkey_id}/remove",
        data={"csrf_token": csrf.group(1), "password": PASSWORD},
        headers=SAME_SITE,
    )
    assert level_one.status_code == 403
    shown = '<p class="form-error" id="passkeys-error" role="alert" aria-live="assertive">'
    assert shown + "Sign in with your second factor first</p>" in level_one.text
    assert "Desk" in (await browser.get("/account")).text

    browser = new_browser()  # signed in with the passkey: aal 2
    signed_in = await browser.post(
        "/login/passkey/form", data={"credential": await assertion(client, authenticator)}, headers=SAME_SITE
    )
    assert signed_in.status_code == 303
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await browser.get("/account")).text)
    assert csrf
    wrong = await browser.post(
        f"/account/passkeys/{passkey_id}/remove",
        data={"csrf_token": csrf.group(1), "password": "not the password at all"},
        headers=SAME_SITE,
    )
    assert wrong.status_code == 400 and "The current password is not correct" in wrong.text
    no_token = await browser.post(
        f"/account/passkeys/{passkey_id}/remove", data={"password": PASSWORD}, headers=SAME_SITE
    )
    assert no_token.status_code == 403
    removed = await browser.post(
        f"/account/passkeys/{passkey_id}/remove",
        data={"csrf_token": csrf.group(1), "password": PASSWORD},
        headers=SAME_SITE,
    )
    assert (removed.status_code, removed.headers["location"]) == (303, "/account?done=passkey_removed")
    assert "Desk" not in (await browser.get("/account")).text


async def test_under_the_policy_the_account_page_offers_a_passkey_too(
    database_url: str, clock: FakeClock
) -> None:
    async with app_for(database_url, clock, base_url=ORIGIN, public_url=ORIGIN, require_mfa=True) as (
        app,
        client,
    ):
        await register(client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as browser:
            await form_login(browser)
            page = await browser.get("/account")
    assert 'data-passkey="add"' in page.text and "sessions-heading" not in page.text
