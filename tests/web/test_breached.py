"""Breached passwords (issue 23 item 3) against a real local range server started by the test:
refused when set (registration, change, reset), reported after a login at most once a day."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from doorward.breaches import RangeClient
from doorward.config import Settings
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.mailbox import Inbox, link_token
from tests.mailbox import smtp_server as smtp_server
from tests.range_server import RangeServer, sha1_hex
from tests.range_server import range_server as range_server
from tests.web.pages.conftest import SAME_SITE, browser_for, csrf_of, form_login
from tests.web.test_metrics import TOKEN as METRICS_TOKEN
from tests.web.test_metrics import samples, value

BREACHED = "a well known passphrase from a breach"
NEW_PASSWORD = "a brand new passphrase for ada"


@pytest.fixture
async def checking(
    sqlite_url: str, range_server: RangeServer, smtp_server: tuple[Inbox, int], clock: FakeClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_for(
        sqlite_url,
        clock,
        breached_passwords_url=range_server.url,
        mailer="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server[1],
        smtp_tls="none",
    ) as started:
        yield started


async def settle(app: FastAPI) -> None:
    """Let background work (checks, lookups, tokens) and the outbox finish."""
    await app.state.services.accounts.background.drain()
    await app.state.services.outbox.drain()


async def test_registration_refuses_a_listed_password_sending_only_the_prefix(
    checking: tuple[FastAPI, httpx.AsyncClient], range_server: RangeServer
) -> None:
    _, client = checking
    digest = range_server.add(BREACHED)
    response = await client.post("/register", json={"email": EMAIL, "password": BREACHED})
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "This password has appeared in a data breach, so attackers try it; choose a different one",
        "code": "password_breached",
    }
    [(path, headers)] = range_server.requests
    assert path == f"/range/{digest[:5]}"  # the prefix only: never the password or its whole hash
    assert headers.get("Add-Padding") == "true"
    assert (await client.post("/login", json={"email": EMAIL, "password": BREACHED})).status_code == 401


async def test_registration_accepts_a_password_not_listed_nor_in_the_padding(
    checking: tuple[FastAPI, httpx.AsyncClient], range_server: RangeServer
) -> None:
    _, client = checking
    range_server.add(BREACHED)
    # The same prefix, listed with count 0 as padding: not a breach.
    range_server.padding = [sha1_hex(PASSWORD)[5:], "0" * 35]
    range_server.breached[sha1_hex(PASSWORD)[:5] + "F" * 35] = 9  # a neighbour under the same prefix
    await register(client)
    assert len(range_server.requests) == 1
    assert range_server.requests[0][0] == f"/range/{sha1_hex(PASSWORD)[:5]}"


async def test_a_slow_range_service_fails_open_with_a_log_line(
    sqlite_url: str, range_server: RangeServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    range_server.add(BREACHED)
    range_server.delay = 1.0
    async with app_for(
        sqlite_url,
        clock,
        breached_passwords_url=range_server.url,
        breached_passwords_timeout=0.2,
        metrics_token=METRICS_TOKEN,
    ) as (app, client):
        with caplog.at_level(logging.WARNING, logger="doorward.breaches"):
            await register(client, password=BREACHED)  # not refused: the check failed open
        assert app.state.services.accounts._deps.breached.failures == 1
        scraped = samples((await client.get("/metrics", headers=bearer(METRICS_TOKEN))).text)
        assert value(scraped, "doorward_breached_password_checks_total", outcome="failed_open") == 1
    [record] = [r for r in caplog.records if r.name == "doorward.breaches"]
    text = record.getMessage()
    assert "failed open" in text
    digest = sha1_hex(BREACHED)
    assert BREACHED not in text and digest[:5] not in text and range_server.url not in text


async def test_password_change_and_reset_refuse_a_listed_password(
    checking: tuple[FastAPI, httpx.AsyncClient], range_server: RangeServer, smtp_server: tuple[Inbox, int]
) -> None:
    app, client = checking
    await register(client)
    token = await login(client)
    range_server.add(BREACHED)
    changed = await client.post(
        "/password/change",
        json={"currentPassword": PASSWORD, "newPassword": BREACHED},
        headers=bearer(token),
    )
    assert (changed.status_code, changed.json()["code"]) == (400, "password_breached")
    assert (await client.post("/password/reset/request", json={"email": EMAIL})).status_code == 202
    await settle(app)
    reset_token = link_token(smtp_server[0].wait_for(EMAIL, "Reset your password"))
    reset = await client.post("/password/reset/confirm", json={"token": reset_token, "newPassword": BREACHED})
    assert (reset.status_code, reset.json()["code"]) == (400, "password_breached")
    # Nothing changed: the old password still logs in, and the link still works for a good one.
    await login(client)
    reset = await client.post(
        "/password/reset/confirm", json={"token": reset_token, "newPassword": NEW_PASSWORD}
    )
    assert reset.status_code == 200, reset.text


# --- at login: after the answer, at most once a day per account ------------------------------------


def breach_mails(inbox: Inbox) -> list[str]:
    return [m["Subject"] for m in inbox.messages if "data breach" in m["Subject"]]


@pytest.fixture
async def checking_both(
    database_url: str, range_server: RangeServer, smtp_server: tuple[Inbox, int], clock: FakeClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """``checking`` on SQLite and on PostgreSQL (the login's check writes on the user and session rows)."""
    async with app_for(
        database_url,
        clock,
        breached_passwords_url=range_server.url,
        mailer="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server[1],
        smtp_tls="none",
    ) as started:
        yield started


async def test_a_login_with_a_breached_password_logs_in_flagged_and_mails_once(
    checking_both: tuple[FastAPI, httpx.AsyncClient],
    range_server: RangeServer,
    smtp_server: tuple[Inbox, int],
    clock: FakeClock,
) -> None:
    app, client = checking_both
    inbox = smtp_server[0]
    user_id = await register(client)  # not listed yet: accepted
    range_server.add(PASSWORD)  # then a breach lists it

    first = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert first.status_code == 200
    # The check runs after the answer: this body is still the seed's, byte for byte.
    assert first.json() == {
        "success": True,
        "sessionToken": first.json()["sessionToken"],
        "user": {"id": user_id, "email": EMAIL},
    }
    await settle(app)
    assert len(range_server.requests) == 2  # registration, then this login
    checked = (await client.get("/session", headers=bearer(first.json()["sessionToken"]))).json()
    assert checked["passwordCompromised"] is True
    inbox.wait_for(EMAIL, "data breach")

    clock.advance(days=2)
    second = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert second.json()["passwordCompromised"] is True  # at once, from the account's mark
    await settle(app)
    assert len(range_server.requests) == 2  # known: not asked again
    assert breach_mails(inbox) == ["Your password appears in a data breach: change it"]  # once

    # A new password clears it: the session it was changed in, and the next logins.
    token = second.json()["sessionToken"]
    changed = await client.post(
        "/password/change",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert changed.status_code == 200, changed.text
    assert "passwordCompromised" not in (await client.get("/session", headers=bearer(token))).json()
    third = await client.post("/login", json={"email": EMAIL, "password": NEW_PASSWORD})
    assert set(third.json()) == {"success", "sessionToken", "user"}
    await settle(app)
    assert "passwordCompromised" not in (await client.get("/session", headers=bearer(token))).json()


async def test_a_login_checks_the_password_at_most_once_a_day(
    checking: tuple[FastAPI, httpx.AsyncClient], range_server: RangeServer, clock: FakeClock
) -> None:
    app, client = checking
    await register(client)
    for _ in range(3):
        await login(client)
        await settle(app)
        clock.advance(hours=7)
    assert len(range_server.requests) == 2  # registration, and the first login of the day
    range_server.add(PASSWORD)  # listed from now on: only the next check can tell
    same_day = await login(client)
    await settle(app)
    assert len(range_server.requests) == 2
    assert "passwordCompromised" not in (await client.get("/session", headers=bearer(same_day))).json()
    clock.advance(hours=3)  # a day after that first login
    next_day = await login(client)
    await settle(app)
    assert len(range_server.requests) == 3
    assert (await client.get("/session", headers=bearer(next_day))).json()["passwordCompromised"] is True


async def test_a_login_check_that_times_out_fails_open_and_is_tried_again(
    sqlite_url: str, range_server: RangeServer, clock: FakeClock
) -> None:
    async with app_for(
        sqlite_url, clock, breached_passwords_url=range_server.url, breached_passwords_timeout=0.2
    ) as (app, client):
        await register(client)
        range_server.add(PASSWORD)
        range_server.delay = 1.0
        token = await login(client)
        await settle(app)
        assert "passwordCompromised" not in (await client.get("/session", headers=bearer(token))).json()
        range_server.delay = 0.0
        token = await login(client)  # the failed check did not count as the day's check
        await settle(app)
        assert (await client.get("/session", headers=bearer(token))).json()["passwordCompromised"] is True


async def test_the_account_page_asks_for_a_new_password_first(
    checking: tuple[FastAPI, httpx.AsyncClient], range_server: RangeServer
) -> None:
    app, client = checking
    await register(client)
    range_server.add(PASSWORD)
    async with browser_for(app) as browser:
        await form_login(browser)
        await settle(app)
        page = (await browser.get("/account")).text
        assert "This password appears in a known data breach" in page
        # The warning, then the password form, before everything else on the page.
        assert page.index("password-compromised") < page.index('action="/account/password"')
        assert page.index('action="/account/password"') < page.index("sessions-heading")
        assert page.count('action="/account/password"') == 1
        csrf = await csrf_of(browser)
        form = {"csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD}
        changed = await browser.post("/account/password", data=form, headers=SAME_SITE)
        assert changed.status_code == 303, changed.text
        page = (await browser.get("/account")).text
        assert "data breach" not in page
        assert page.index("sessions-heading") < page.index('action="/account/password"')


def test_the_url_setting_is_an_http_url_and_empty_means_off() -> None:
    assert Settings(breached_passwords_url="").breached_passwords_url is None
    listed = Settings(breached_passwords_url="https://api.pwnedpasswords.com/range/")
    assert listed.breached_passwords_url == "https://api.pwnedpasswords.com/range"
    with pytest.raises(ValidationError, match="breached_passwords_url"):
        Settings(breached_passwords_url="ftp://example.com/range")


async def test_the_range_client_reads_counts_and_fails_open_through_its_hook(
    range_server: RangeServer,
) -> None:
    failed: list[bool] = []
    client = RangeClient(range_server.url, timeout=0.3, on_failure=lambda: failed.append(True))
    try:
        listed = range_server.add(BREACHED, count=42)
        range_server.padding = [sha1_hex(PASSWORD)[5:]]
        assert await client.occurrences(listed.lower()) == 42  # the service's case does not matter
        assert await client.occurrences(sha1_hex(PASSWORD)) == 0  # padding: count 0
        assert await client.occurrences(sha1_hex(NEW_PASSWORD)) == 0
        assert failed == []
        range_server.delay = 1.0
        assert await client.occurrences(listed) is None
        assert (failed, client.failures) == ([True], 1)
    finally:
        await client.close()
