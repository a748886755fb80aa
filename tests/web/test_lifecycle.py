"""The account lifecycle through the API: sessions you can see and end, password change and reset,
email verification. Mail goes through a real SMTP server and links are read from what it received."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.mailbox import Inbox, link_token
from tests.mailbox import smtp_server as smtp_server

NEW_PASSWORD = "a brand new passphrase for ada"


@pytest.fixture
async def mailing(
    database_url: str, smtp_server: tuple[Inbox, int], clock: FakeClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Inbox]]:
    inbox, port = smtp_server
    async with app_for(
        database_url, clock, mailer="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none"
    ) as (app, client):
        yield app, client, inbox


async def settle(app: FastAPI) -> None:
    """Let background work (lookups, tokens) and the outbox finish."""
    await app.state.services.accounts.background.drain()
    await app.state.services.outbox.drain()


# --- sessions --------------------------------------------------------------------------------------


async def test_list_and_end_your_own_sessions(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await register(client)
    first = await login(client)
    clock.advance(minutes=5)
    second = await login(client)
    listed = await client.get("/sessions", headers=bearer(second))
    assert listed.status_code == 200
    sessions = listed.json()["sessions"]
    assert [s["current"] for s in sessions] == [True, False]  # newest first: the second login
    assert {s["clientAddress"] for s in sessions} == {"127.0.0.1"}
    assert all(set(s) >= {"id", "createdAt", "lastSeenAt", "expiresAt", "userAgent"} for s in sessions)
    other = next(s["id"] for s in sessions if not s["current"])

    assert (await client.delete(f"/sessions/{other}", headers=bearer(second))).json() == {"success": True}
    assert (await client.get("/session", headers=bearer(first))).status_code == 401
    missing = await client.delete(f"/sessions/{other}", headers=bearer(second))
    assert (missing.status_code, missing.json()["code"]) == (404, "session_not_found")
    assert (await client.get("/session", headers=bearer(second))).status_code == 200


@pytest.mark.parametrize("junk", ["%00", "x" * 300, "not-an-id", "..%2F..%2Fetc"])
async def test_junk_session_ids_are_404(client: httpx.AsyncClient, junk: str) -> None:
    await register(client)
    token = await login(client)
    response = await client.delete(f"/sessions/{junk}", headers=bearer(token))
    assert (response.status_code, response.json()["code"]) in {(404, "session_not_found"), (404, "not_found")}


async def test_nobody_ends_someone_elses_session(client: httpx.AsyncClient) -> None:
    await register(client)
    await register(client, "eve@example.com")
    ada = await login(client)
    eve = await login(client, "eve@example.com")
    ada_session = (await client.get("/session", headers=bearer(ada))).json()["session"]["id"]
    refused = await client.delete(f"/sessions/{ada_session}", headers=bearer(eve))
    assert refused.status_code == 404
    assert (await client.get("/session", headers=bearer(ada))).status_code == 200


async def test_logout_all(client: httpx.AsyncClient) -> None:
    await register(client)
    tokens = [await login(client) for _ in range(3)]
    answer = await client.post("/logout/all", headers=bearer(tokens[0]))
    assert answer.json() == {"success": True, "ended": 3}
    for token in tokens:
        assert (await client.get("/session", headers=bearer(token))).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/sessions"), ("POST", "/logout/all"), ("DELETE", "/sessions/x")]
)
async def test_session_endpoints_need_a_session(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert (response.status_code, response.json()["code"]) == (401, "invalid_session")


async def test_idle_sessions_end(database_url: str, clock: FakeClock) -> None:
    async with app_for(database_url, clock, session_idle_timeout="600") as (app, client):
        await register(client)
        token = await login(client)
        touched = app.state.services.auth.background.drain  # uses are recorded behind the answer
        clock.advance(minutes=9)
        assert (await client.get("/session", headers=bearer(token))).status_code == 200
        await touched()
        clock.advance(minutes=9)  # nine minutes since the last use: still alive
        assert (await client.get("/session", headers=bearer(token))).status_code == 200
        await touched()
        clock.advance(minutes=10)
        assert (await client.get("/session", headers=bearer(token))).status_code == 401


# --- password change -------------------------------------------------------------------------------


async def change(client: httpx.AsyncClient, token: str, current: str, new: str) -> httpx.Response:
    return await client.post(
        "/password/change", json={"currentPassword": current, "newPassword": new}, headers=bearer(token)
    )


async def test_change_password_ends_the_other_sessions_and_notifies(
    mailing: tuple[FastAPI, httpx.AsyncClient, Inbox],
) -> None:
    app, client, inbox = mailing
    await register(client)
    here, elsewhere = await login(client), await login(client)
    answer = await change(client, here, PASSWORD, NEW_PASSWORD)
    assert answer.json() == {"success": True}
    assert (await client.get("/session", headers=bearer(here))).status_code == 200
    assert (await client.get("/session", headers=bearer(elsewhere))).status_code == 401
    assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 401
    await login(client, password=NEW_PASSWORD)
    await settle(app)
    notice = inbox.wait_for(EMAIL, "Your password was changed")
    assert NEW_PASSWORD not in notice.as_string()


async def test_change_password_refusals(client: httpx.AsyncClient) -> None:
    await register(client)
    token = await login(client)
    weak = await change(client, token, PASSWORD, "short")
    assert (weak.status_code, weak.json()["code"]) == (400, "password_too_short")
    for _ in range(5):
        wrong = await change(client, token, "not my password", NEW_PASSWORD)
        assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_current_password")
    throttled = await change(client, token, PASSWORD, NEW_PASSWORD)  # a guessing session is throttled
    assert throttled.status_code == 429
    assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 429


# --- password reset --------------------------------------------------------------------------------


async def request_reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/password/reset/request", json={"email": email})


async def confirm(client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return await client.post("/password/reset/confirm", json={"token": token, "newPassword": password})


async def test_reset_by_mailed_link(mailing: tuple[FastAPI, httpx.AsyncClient, Inbox]) -> None:
    app, client, inbox = mailing
    await register(client)
    sessions = [await login(client) for _ in range(2)]
    assert (await request_reset(client, "ADA@example.com")).status_code == 202
    await settle(app)
    token = link_token(inbox.wait_for(EMAIL, "Reset your password"))

    refused = await confirm(client, token, "password123456789")
    assert (refused.status_code, refused.json()["code"]) == (400, "password_common")  # the link still works:
    assert (await confirm(client, token)).json() == {"success": True}
    for session in sessions:
        assert (await client.get("/session", headers=bearer(session))).status_code == 401
    assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 401
    await login(client, password=NEW_PASSWORD)
    again = await confirm(client, token, "yet another fine passphrase")
    assert (again.status_code, again.json()["code"]) == (400, "token_invalid")
    await settle(app)
    inbox.wait_for(EMAIL, "Your password was reset")


async def test_reset_links_expire(
    mailing: tuple[FastAPI, httpx.AsyncClient, Inbox], clock: FakeClock
) -> None:
    app, client, inbox = mailing
    await register(client)
    await request_reset(client, EMAIL)
    await settle(app)
    token = link_token(inbox.wait_for(EMAIL, "Reset your password"))
    clock.advance(minutes=30)
    expired = await confirm(client, token)
    assert (expired.status_code, expired.json()["code"]) == (400, "token_expired")


async def test_reset_answers_say_nothing_about_existence(
    mailing: tuple[FastAPI, httpx.AsyncClient, Inbox],
) -> None:
    app, client, inbox = mailing
    await register(client)
    known, unknown = await request_reset(client, EMAIL), await request_reset(client, "nobody@example.com")
    assert (
        (known.status_code, known.content)
        == (unknown.status_code, unknown.content)
        == (202, b'{"success":true}')
    )
    assert sorted(known.headers.items()) == sorted(unknown.headers.items())
    await settle(app)
    assert [m["To"] for m in inbox.messages] == [EMAIL]


async def test_reset_mail_goes_to_the_stored_address(
    mailing: tuple[FastAPI, httpx.AsyncClient, Inbox],
) -> None:
    app, client, inbox = mailing
    await register(client, "Ada@Example.com")
    await request_reset(client, "  ada@EXAMPLE.com ")
    await settle(app)
    assert [m["To"] for m in inbox.messages] == ["Ada@Example.com"]


@pytest.mark.parametrize("token", ["", "garbage", "A" * 43])
async def test_unknown_reset_tokens(client: httpx.AsyncClient, token: str) -> None:
    response = await confirm(client, token)
    assert response.status_code == 400
    assert response.json()["code"] in {"token_invalid", "invalid_request"}


async def test_reset_mails_to_one_address_are_limited(
    mailing: tuple[FastAPI, httpx.AsyncClient, Inbox],
) -> None:
    app, client, inbox = mailing
    await register(client)
    for _ in range(5):
        assert (await request_reset(client, EMAIL)).status_code == 202
    await settle(app)
    assert len(inbox.messages) == 3  # no mail bombing through doorward


# --- email verification ----------------------------------------------------------------------------


@pytest.fixture
async def verifying(
    database_url: str, smtp_server: tuple[Inbox, int], clock: FakeClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Inbox]]:
    inbox, port = smtp_server
    async with app_for(
        database_url,
        clock,
        require_email_verification=True,
        mailer="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
    ) as (app, client):
        yield app, client, inbox


async def test_registration_with_verification(verifying: tuple[FastAPI, httpx.AsyncClient, Inbox]) -> None:
    app, client, inbox = verifying
    new = await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
    await settle(app)  # the first one's account exists before the second arrives
    existing = await client.post(
        "/register", json={"email": EMAIL.upper(), "password": "another fine passphrase"}
    )
    assert new.status_code == existing.status_code == 202
    assert new.content == existing.content == b'{"success":true,"verificationRequired":true}'
    assert sorted(new.headers.items()) == sorted(existing.headers.items())
    await settle(app)
    inbox.wait_for(EMAIL, "Someone tried to register")
    token = link_token(inbox.wait_for(EMAIL, "Confirm your email address"))

    unverified = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert (unverified.status_code, unverified.json()["code"]) == (403, "email_unverified")
    wrong = await client.post("/login", json={"email": EMAIL, "password": "wrong " + PASSWORD})
    assert wrong.status_code == 401  # a wrong password learns nothing about verification

    assert (await client.post("/email/verify", json={"token": token})).json() == {"success": True}
    await login(client)
    used = await client.post("/email/verify", json={"token": token})
    assert (used.status_code, used.json()["code"]) == (400, "token_invalid")


async def test_verification_can_be_resent(verifying: tuple[FastAPI, httpx.AsyncClient, Inbox]) -> None:
    app, client, inbox = verifying
    await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
    await settle(app)
    first = link_token(inbox.wait_for(EMAIL, "Confirm"))
    for email in (EMAIL, "nobody@example.com"):
        assert (await client.post("/email/verify/resend", json={"email": email})).status_code == 202
    await settle(app)
    tokens = [link_token(m) for m in inbox.messages if "Confirm" in m["Subject"]]
    assert len(tokens) == 2
    assert (await client.post("/email/verify", json={"token": first})).status_code == 400  # replaced
    assert (await client.post("/email/verify", json={"token": tokens[-1]})).status_code == 200


async def test_verification_links_expire(
    verifying: tuple[FastAPI, httpx.AsyncClient, Inbox], clock: FakeClock
) -> None:
    app, client, inbox = verifying
    await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
    await settle(app)
    token = link_token(inbox.wait_for(EMAIL, "Confirm"))
    clock.advance(hours=24)
    expired = await client.post("/email/verify", json={"token": token})
    assert (expired.status_code, expired.json()["code"]) == (400, "token_expired")


# --- mail delivery ---------------------------------------------------------------------------------


async def test_the_file_mailer_writes_eml_files_and_logs_no_token(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with app_for(database_url, mail_dir=tmp_path / "mail") as (app, client):
        await register(client)
        await request_reset(client, EMAIL)
        await settle(app)
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["Subject"] == "Reset your password"
    token = link_token(message)  # type: ignore[arg-type]
    assert len(token) == 43
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert str(files[0]) in logged
    assert token not in logged


async def test_an_smtp_outage_does_not_change_the_answer(database_url: str) -> None:
    from tests.servers import free_port

    async with app_for(
        database_url, mailer="smtp", smtp_host="127.0.0.1", smtp_port=free_port(), smtp_tls="none"
    ) as (_, client):
        await register(client)
        answer = await asyncio.wait_for(request_reset(client, EMAIL), timeout=5)
        assert answer.status_code == 202
