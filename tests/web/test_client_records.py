"""What doorward records of a request's client: its User-Agent as sent (UTF-8), and its address in
the audit events of an HTTP request."""

from __future__ import annotations

import hashlib
import logging

import httpx
import pytest
from fastapi import FastAPI

from doorward.core.models import NewUser
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.web.pages.conftest import SAME_SITE, browser_for
from tests.web.test_mfa_services import enrolled_user, services_of

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Navigateur-Été/1.0 ☃"


async def test_a_utf8_user_agent_is_stored_and_shown_as_sent(client: httpx.AsyncClient, app: FastAPI) -> None:
    await register(client)
    response = await client.post(
        "/login",
        json={"email": EMAIL, "password": PASSWORD},
        headers={"User-Agent": BROWSER.encode()},  # as a browser sends it: UTF-8 bytes
    )
    token = response.json()["sessionToken"]
    (session,) = (await client.get("/sessions", headers=bearer(token))).json()["sessions"]
    assert session["userAgent"] == BROWSER  # was Latin-1 mojibake: "Navigateur-Ã\x89tÃ©"


async def test_a_user_agent_that_is_not_utf8_is_kept_as_latin1(client: httpx.AsyncClient) -> None:
    await register(client)
    agent = "Agent \xe9"  # one byte 0xE9: not UTF-8, and Latin-1 is what HTTP said of such bytes
    response = await client.post(
        "/login", json={"email": EMAIL, "password": PASSWORD}, headers={"User-Agent": agent.encode("latin-1")}
    )
    (session,) = (await client.get("/sessions", headers=bearer(response.json()["sessionToken"]))).json()[
        "sessions"
    ]
    assert session["userAgent"] == agent


async def test_the_account_page_shows_a_utf8_user_agent(app: FastAPI) -> None:
    agent = "Ünïcode-Agent/1.0"  # no browser or system the page names: shown as it is
    async with browser_for(app) as browser:
        await register(browser)
        signed_in = await browser.post(
            "/login/form",
            data={"email": EMAIL, "password": PASSWORD},
            headers={**SAME_SITE, "User-Agent": agent.encode()},  # type: ignore[dict-item]
        )
        assert signed_in.status_code == 303
        page = await browser.get("/account")
    assert agent in page.text


def audited(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, object]]:
    return [r.audit for r in caplog.records if r.getMessage() == event]  # type: ignore[attr-defined]


@pytest.mark.parametrize("verification", [False, True], ids=["at-once", "verified-later"])
async def test_a_registration_is_audited_with_its_client(
    database_url: str, caplog: pytest.LogCaptureFixture, verification: bool
) -> None:
    caplog.set_level(logging.INFO, logger="doorward.audit")
    async with app_for(database_url, require_email_verification=verification) as (app, client):
        response = await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code in {201, 202}
        await app.state.services.accounts.background.drain()
    (event,) = audited(caplog, "user.registered")
    assert event["client"] == "127.0.0.1"


async def test_a_rehash_at_login_is_audited_with_its_client(
    client: httpx.AsyncClient, app: FastAPI, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="doorward.audit")
    async with app.state.services.store.write() as tx:
        await tx.users.add(NewUser(EMAIL, EMAIL, hashlib.sha256(PASSWORD.encode()).hexdigest()), clock())
    await login(client)
    (event,) = audited(caplog, "password.rehashed")
    assert event["client"] == "127.0.0.1"


async def test_a_rehash_at_an_mfa_login_is_audited_with_its_client(
    client: httpx.AsyncClient, app: FastAPI, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await enrolled_user(app, client, clock)
    services = services_of(app)
    async with services.store.write() as tx:
        user = await tx.users.by_canonical_email(EMAIL)
        assert user is not None
        await tx.users.set_password_hash(user.id, hashlib.sha256(PASSWORD.encode()).hexdigest(), clock())
    caplog.set_level(logging.INFO, logger="doorward.audit")
    response = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.json()["code"] == "mfa_required"
    (event,) = audited(caplog, "password.rehashed")
    assert event["client"] == "127.0.0.1"


async def test_a_forwarded_address_with_a_zone_is_not_taken_as_the_client(database_url: str) -> None:
    """Behind a trusted proxy the client is the right-most untrusted X-Forwarded-For entry; Python
    reads "fe80::1%<200 characters>" as an address, which overflowed the 64-character client columns:
    the login answered 500 on PostgreSQL, and the audit write of its events failed. A zone
    index means nothing beyond the proxy's own link: the peer is recorded instead."""
    async with app_for(database_url, trusted_proxies="127.0.0.0/8") as (_, client):
        await register(client)
        forwarded = {"X-Forwarded-For": "fe80::1%" + "a" * 200 + ", 127.0.0.2"}
        response = await client.post("/login", json={"email": EMAIL, "password": PASSWORD}, headers=forwarded)
        assert response.status_code == 200, response.text
        (session,) = (await client.get("/sessions", headers=bearer(response.json()["sessionToken"]))).json()[
            "sessions"
        ]
        assert session["clientAddress"] == "127.0.0.1"
