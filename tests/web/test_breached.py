"""Breached passwords (issue 23 item 3) against a real local range server started by the test:
refused when set (registration, change, reset), reported after a login at most once a day."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.mailbox import Inbox, link_token
from tests.mailbox import smtp_server as smtp_server
from tests.range_server import RangeServer, sha1_hex
from tests.range_server import range_server as range_server

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
        sqlite_url, clock, breached_passwords_url=range_server.url, breached_passwords_timeout=0.2
    ) as (app, client):
        with caplog.at_level(logging.WARNING, logger="doorward.breaches"):
            await register(client, password=BREACHED)  # not refused: the check failed open
        assert app.state.services.accounts._deps.breached.failures == 1
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
