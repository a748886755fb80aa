"""Mails that say what happened (issue 23 item 4), through the API with the file mailer: the back-off
and the lockout once per streak, also under a burst, and a login from a device not seen before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, register
from tests.db import fetch

CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"


def mails(directory: Path, subject: str) -> list[EmailMessage]:
    """Every mail written to ``directory`` whose subject contains ``subject``."""
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.is_dir() else ():
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if subject in str(message["Subject"]):
            found.append(message)
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and the HTML part."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def assert_well_formed(message: EmailMessage) -> None:
    assert message["To"] == EMAIL
    assert message["Date"] and message["Message-ID"]
    text, html = parts(message)
    assert PASSWORD not in text and PASSWORD not in html


@pytest.fixture
async def mailing(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Path]]:
    mail_dir = tmp_path / "mail"
    async with app_for(
        database_url, clock, mail_dir=mail_dir, throttle_free_failures=3, throttle_lockout_failures=6
    ) as (app, client):
        yield app, client, mail_dir


async def settle(app: FastAPI) -> None:
    await app.state.services.accounts.background.drain()
    await app.state.services.outbox.drain()


async def fail(client: httpx.AsyncClient, user_agent: str = CHROME_LINUX) -> int:
    response = await client.post(
        "/login", json={"email": EMAIL, "password": "not the password"}, headers={"User-Agent": user_agent}
    )
    return response.status_code


async def test_a_burst_of_failures_mails_the_back_off_and_the_lockout_once_each(
    mailing: tuple[FastAPI, httpx.AsyncClient, Path], clock: FakeClock
) -> None:
    app, client, mail_dir = mailing
    await register(client)
    failed = 0
    bursts: list[str] = []  # when each burst came: a mail names the time of the failure that sent it
    for _ in range(10):  # bursts of ten, each after the wait the last one began: until locked
        bursts.append(clock().strftime("%Y-%m-%d %H:%M UTC"))
        codes = await asyncio.gather(*(fail(client) for _ in range(10)))
        assert set(codes) <= {401, 429}
        failed += codes.count(401)
        if failed >= 6:
            break
        clock.advance(minutes=16)
    assert failed >= 6  # the lockout: even the right password is refused now
    right = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert right.status_code == 429
    await settle(app)
    (waiting,) = mails(mail_dir, "Repeated failed logins")
    (locked,) = mails(mail_dir, "was locked")
    for message in (waiting, locked):
        assert_well_formed(message)
        text, html = parts(message)
        assert "127.0.0.1" in text and "Chrome on Linux" in text and "Chrome on Linux" in html
        assert any(when in text for when in bursts)
        assert "/password/reset" in text and "/password/reset" in html
    # More failures in the same streak (refused while locked) mail nothing more.
    clock.advance(minutes=30)
    await asyncio.gather(*(fail(client) for _ in range(5)))
    await settle(app)
    assert len(mails(mail_dir, "Repeated failed logins")) == 1
    assert len(mails(mail_dir, "was locked")) == 1


async def test_a_new_streak_after_a_success_mails_the_back_off_again(
    mailing: tuple[FastAPI, httpx.AsyncClient, Path], clock: FakeClock
) -> None:
    app, client, mail_dir = mailing
    await register(client)
    for _ in range(3):
        assert await fail(client) == 401
    await settle(app)
    assert len(mails(mail_dir, "Repeated failed logins")) == 1
    assert mails(mail_dir, "was locked") == []
    clock.advance(minutes=1)
    ok = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert ok.status_code == 200
    for _ in range(3):
        assert await fail(client) == 401
    await settle(app)
    assert len(mails(mail_dir, "Repeated failed logins")) == 2


async def test_failures_for_an_unknown_address_mail_nobody(
    mailing: tuple[FastAPI, httpx.AsyncClient, Path],
) -> None:
    app, client, mail_dir = mailing
    await asyncio.gather(*(fail(client) for _ in range(8)))
    await settle(app)
    assert not mail_dir.is_dir() or list(mail_dir.glob("*.eml")) == []


# --- a login from a new device ---------------------------------------------------------------------


async def log_in(client: httpx.AsyncClient, user_agent: str) -> None:
    headers = {"User-Agent": user_agent}
    response = await client.post("/login", json={"email": EMAIL, "password": PASSWORD}, headers=headers)
    assert response.status_code == 200, response.text


async def test_a_login_from_a_new_device_is_mailed_but_not_the_first_or_a_known_one(
    mailing: tuple[FastAPI, httpx.AsyncClient, Path], clock: FakeClock
) -> None:
    app, client, mail_dir = mailing
    await register(client)
    await log_in(client, CHROME_LINUX)  # the account's first login: nothing to compare with
    await settle(app)
    assert mails(mail_dir, "new device") == []
    clock.advance(days=30)
    await log_in(client, CHROME_LINUX)  # the same device
    await settle(app)
    assert mails(mail_dir, "new device") == []

    await log_in(client, FIREFOX_WINDOWS)
    await settle(app)
    (message,) = mails(mail_dir, "new device")
    assert_well_formed(message)
    text, html = parts(message)
    for part in (text, html):
        assert "Firefox on Windows" in part and "127.0.0.1" in part and "/password/reset" in part
        assert clock().strftime("%Y-%m-%d %H:%M UTC") in part
    assert "Mozilla/5.0" not in text  # the device's name, not its whole User-Agent
    await log_in(client, FIREFOX_WINDOWS)  # known now
    await settle(app)
    assert len(mails(mail_dir, "new device")) == 1

    clock.advance(days=91)  # not seen for 90 days: new again
    await log_in(client, CHROME_LINUX)
    await settle(app)
    assert len(mails(mail_dir, "new device")) == 2


async def test_the_new_device_mail_can_be_turned_off(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"
    async with app_for(database_url, clock, mail_dir=mail_dir, new_device_mail=False) as (app, client):
        await register(client)
        await log_in(client, CHROME_LINUX)
        await settle(app)
        await log_in(client, FIREFOX_WINDOWS)
        await settle(app)
        assert mails(mail_dir, "new device") == []
    # Off means nothing remembered either (on, both devices would be rows by now).
    assert await fetch(database_url, "SELECT count(*) FROM known_devices") == [(0,)]


# --- a password changed, a reset used ----------------------------------------------------------------

NEW_PASSWORD = "a brand new passphrase for ada"


async def test_a_password_change_and_a_reset_are_mailed_with_when_where_and_what(
    mailing: tuple[FastAPI, httpx.AsyncClient, Path], clock: FakeClock
) -> None:
    app, client, mail_dir = mailing
    await register(client)
    token = (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).json()["sessionToken"]
    changed = await client.post(
        "/password/change",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {token}", "User-Agent": FIREFOX_WINDOWS},
    )
    assert changed.status_code == 200, changed.text
    await settle(app)
    (message,) = mails(mail_dir, "Your password was changed")
    assert_well_formed(message)
    for part in parts(message):
        assert "Firefox on Windows" in part and "127.0.0.1" in part
        assert clock().strftime("%Y-%m-%d %H:%M UTC") in part
        assert NEW_PASSWORD not in part

    clock.advance(minutes=5)
    assert (await client.post("/password/reset/request", json={"email": EMAIL})).status_code == 202
    await settle(app)
    (link_mail,) = mails(mail_dir, "Reset your password")
    link = next(word for word in parts(link_mail)[0].split() if "token=" in word)
    reset_token = link.split("token=", 1)[1]
    confirmed = await client.post(
        "/password/reset/confirm",
        json={"token": reset_token, "newPassword": "yet another fine passphrase"},
        headers={"User-Agent": CHROME_LINUX},
    )
    assert confirmed.status_code == 200, confirmed.text
    await settle(app)
    (used,) = mails(mail_dir, "Your password was reset")
    assert_well_formed(used)
    for part in parts(used):
        assert "Chrome on Linux" in part and "127.0.0.1" in part and reset_token not in part
        assert clock().strftime("%Y-%m-%d %H:%M UTC") in part


# --- factors changed --------------------------------------------------------------------------------


async def test_a_factor_turned_on_is_mailed_with_the_device_that_did_it(
    mailing: tuple[FastAPI, httpx.AsyncClient, Path], clock: FakeClock
) -> None:
    app, client, mail_dir = mailing
    await register(client)
    token = (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).json()["sessionToken"]
    headers = {"Authorization": f"Bearer {token}", "User-Agent": FIREFOX_WINDOWS}
    started = await client.post("/mfa/totp", json={"password": PASSWORD}, headers=headers)
    assert started.status_code == 200, started.text
    code = pyotp.TOTP(started.json()["secret"]).at(clock())
    assert (await client.post("/mfa/totp/confirm", json={"code": code}, headers=headers)).status_code == 200
    await settle(app)
    (message,) = mails(mail_dir, "Two-step verification is on")
    assert_well_formed(message)
    for part in parts(message):
        assert "Firefox on Windows" in part and "127.0.0.1" in part
        assert clock().strftime("%Y-%m-%d %H:%M UTC") in part
        assert started.json()["secret"] not in part


async def test_prune_forgets_devices_not_seen_for_90_days(
    mailing: tuple[FastAPI, httpx.AsyncClient, Path], clock: FakeClock
) -> None:
    app, client, _ = mailing
    await register(client)
    await log_in(client, CHROME_LINUX)
    await settle(app)
    clock.advance(days=60)
    await log_in(client, FIREFOX_WINDOWS)
    await settle(app)
    clock.advance(days=31)  # Chrome last seen 91 days ago, Firefox 31
    pruned = await app.state.services.admin.prune()
    assert pruned["known_devices"] == 1
    assert (await app.state.services.admin.prune())["known_devices"] == 0
