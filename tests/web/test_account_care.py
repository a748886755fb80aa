"""Issue 23 through the API, with the file mailer: a change of email (its link, its notice and the
"this wasn't me" link), deleting your own account, and the one re-authentication both go through."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from doorward.storage.tables import metadata
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.db import fetch
from tests.mailbox import link_token
from tests.storage.test_account_deletion import mentions, rows_of
from tests.web.test_mfa_services import enrol, services_of
from tests.web.test_passkeys import ORIGIN, add, key

NEW = "ada.new@example.com"
OTHER = "grace@example.com"
NEW_PASSWORD = "a brand new passphrase for ada"
Started = tuple[FastAPI, httpx.AsyncClient, Path]


@pytest.fixture
async def mailing(database_url: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Started]:
    mail = tmp_path / "mail"
    async with app_for(database_url, clock, base_url=ORIGIN, public_url=ORIGIN, mail_dir=mail) as (
        app,
        client,
    ):
        yield app, client, mail


async def settle(app: FastAPI) -> None:
    await services_of(app).accounts.background.drain()
    await services_of(app).outbox.drain()


def mails(folder: Path) -> list[EmailMessage]:
    """Every mail the file mailer wrote, oldest first."""
    found = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]
    return sorted(found, key=lambda m: str(m["Date"]))  # type: ignore[misc]


def mail_to(folder: Path, to: str, subject: str) -> EmailMessage:
    """The one mail to ``to`` with ``subject``, checked for the headers every mail has."""
    found = [m for m in mails(folder) if m["To"] == to and m["Subject"] == subject]
    assert len(found) == 1, [(m["To"], m["Subject"]) for m in mails(folder)]
    message = found[0]
    assert message["Date"] and message["Message-ID"] and message["From"]
    assert message.get_body(preferencelist=("plain",)) is not None
    assert message.get_body(preferencelist=("html",)) is not None
    return message


async def change(
    client: httpx.AsyncClient, session: str, new: str = NEW, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/email/change", json={"password": password, "newEmail": new}, headers=bearer(session)
    )


# --- change of email -------------------------------------------------------------------------------


async def test_a_change_of_email_mails_both_addresses_and_the_link_switches_it(mailing: Started) -> None:
    app, client, mail = mailing
    await register(client)
    other = await login(client)
    session = await login(client)
    answer = await change(client, session)
    assert (answer.status_code, answer.json()) == (202, {"success": True})
    await settle(app)
    confirm = link_token(mail_to(mail, NEW, "Confirm your new email address"))
    notice = mail_to(mail, EMAIL, "Your email address is being changed")
    assert "/email/change/revert?token=" in notice.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert (await client.post("/login", json={"email": NEW, "password": PASSWORD})).status_code == 401

    done = await client.post("/email/change/confirm", json={"token": confirm}, headers=bearer(session))
    assert (done.status_code, done.json()) == (200, {"success": True})
    me = await client.get("/session", headers=bearer(session))
    assert me.json()["user"]["email"] == NEW  # the session that followed the link stays
    assert (await client.get("/session", headers=bearer(other))).status_code == 401  # the others end
    assert (await client.post("/login", json={"email": NEW, "password": PASSWORD})).status_code == 200
    assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 401
    again = await client.post("/email/change/confirm", json={"token": confirm})
    assert (again.status_code, again.json()["code"]) == (400, "token_invalid")


async def test_the_answer_for_a_taken_address_is_the_answer_for_a_free_one(mailing: Started) -> None:
    app, client, mail = mailing
    await register(client)
    await register(client, OTHER)
    session = await login(client)
    free = await change(client, session, NEW)
    taken = await change(client, session, OTHER.upper())
    assert (taken.status_code, taken.content, taken.headers.get("content-type")) == (
        free.status_code,
        free.content,
        free.headers.get("content-type"),
    )
    await settle(app)
    # The taken address's owner gets no link; the account's own address gets a notice each time.
    assert [m["To"] for m in mails(mail) if m["Subject"] == "Confirm your new email address"] == [NEW]
    assert len([m for m in mails(mail) if m["To"] == EMAIL]) == 2


async def test_an_address_taken_before_the_link_is_followed_is_refused_then(mailing: Started) -> None:
    app, client, mail = mailing
    await register(client)
    session = await login(client)
    await change(client, session)
    await settle(app)
    token = link_token(mail_to(mail, NEW, "Confirm your new email address"))
    await register(client, NEW)
    refused = await client.post("/email/change/confirm", json={"token": token})
    assert (refused.status_code, refused.json()["code"]) == (409, "email_taken")
    assert (await client.get("/session", headers=bearer(session))).json()["user"]["email"] == EMAIL


async def test_wasnt_me_ends_every_session_restores_the_address_and_mails_a_reset(mailing: Started) -> None:
    app, client, mail = mailing
    await register(client)
    session = await login(client)
    await change(client, session)
    await settle(app)
    confirm = link_token(mail_to(mail, NEW, "Confirm your new email address"))
    revert = link_token(mail_to(mail, EMAIL, "Your email address is being changed"))
    assert (await client.post("/email/change/confirm", json={"token": confirm})).status_code == 200

    done = await client.post("/email/change/revert", json={"token": revert})
    assert (done.status_code, done.json()) == (200, {"success": True})
    assert (await client.get("/session", headers=bearer(session))).status_code == 401
    await settle(app)
    reset = link_token(mail_to(mail, EMAIL, "Reset your password"))
    assert len(reset) == 43
    assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 200
    assert (await client.post("/login", json={"email": NEW, "password": PASSWORD})).status_code == 401
    used = await client.post("/email/change/revert", json={"token": revert})
    assert (used.status_code, used.json()["code"]) == (400, "token_invalid")


@pytest.mark.parametrize("evicted_by", ["reset", "change"])
async def test_a_password_reset_or_change_voids_a_pending_change_of_email(
    mailing: Started, evicted_by: str
) -> None:
    """Someone with the password and a session asks to move the account to their address; the owner
    answers as told to, with a reset (or a change) that ends every other session. The link in the
    intruder's mailbox must die with their session, or following it moves the account to them, and a
    reset mailed there hands it over."""
    app, client, mail = mailing
    await register(client)
    intruder = await login(client)
    await change(client, intruder, "mallory@example.com")
    await settle(app)
    confirm = link_token(mail_to(mail, "mallory@example.com", "Confirm your new email address"))
    if evicted_by == "reset":
        await client.post("/password/reset/request", json={"email": EMAIL})
        await settle(app)
        reset = link_token(mail_to(mail, EMAIL, "Reset your password"))
        done = await client.post(
            "/password/reset/confirm", json={"token": reset, "newPassword": NEW_PASSWORD}
        )
    else:
        owner = await login(client)
        done = await client.post(
            "/password/change",
            json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
            headers=bearer(owner),
        )
    assert done.status_code == 200, done.text
    assert (await client.get("/session", headers=bearer(intruder))).status_code == 401

    followed = await client.post("/email/change/confirm", json={"token": confirm})
    assert (followed.status_code, followed.json()["code"]) == (400, "token_invalid")
    owner_again = await client.post("/login", json={"email": EMAIL, "password": NEW_PASSWORD})
    assert owner_again.status_code == 200


async def race_confirm_and_revert(
    app: FastAPI, client: httpx.AsyncClient, mail: Path, email: str = EMAIL, new: str = NEW
) -> list[httpx.Response]:
    """Register ``email``, ask to move it to ``new``, then follow the link and "this wasn't me" at
    once (three times each); a revert refused "not now" is followed again (its link is intact)."""
    await register(client, email)
    session = await login(client, email)
    await change(client, session, new)
    await settle(app)
    confirm = link_token(mail_to(mail, new, "Confirm your new email address"))
    revert = link_token(mail_to(mail, email, "Your email address is being changed"))
    answers = await asyncio.gather(
        *[client.post("/email/change/confirm", json={"token": confirm}) for _ in range(3)],
        *[client.post("/email/change/revert", json={"token": revert}) for _ in range(3)],
    )
    if all(a.status_code != 200 for a in answers[3:]):
        again = await client.post("/email/change/revert", json={"token": revert})
        assert again.status_code == 200, again.text
    await settle(app)
    return list(answers)


async def test_the_link_and_wasnt_me_followed_at_once_never_answer_500(mailing: Started) -> None:
    """The race "this wasn't me" exists for: the owner's revert while the other mailbox's confirm
    runs. On PostgreSQL their transactions can lock the same rows in opposite orders, and one is
    ended as a deadlock: that one is "not now" (503, rolled back, its link intact), never a 500."""
    app, client, mail = mailing
    for n in range(4):
        answers = await race_confirm_and_revert(
            app, client, mail, f"ada{n}@example.com", f"new{n}@example.com"
        )
        assert {a.status_code for a in answers} <= {200, 400, 503}, [a.text for a in answers]


async def test_wasnt_me_followed_while_the_link_switches_still_restores_the_address(mailing: Started) -> None:
    """A revert that read the account before a concurrent confirm committed saw its own address and
    restored nothing: the account stayed at the other address, and the reset link the revert mails
    went there, handing the account to whoever asked for the change."""
    app, client, mail = mailing
    for n in range(4):
        email, new = f"ada{n}@example.com", f"new{n}@example.com"
        await race_confirm_and_revert(app, client, mail, email, new)
        assert (await client.post("/login", json={"email": email, "password": PASSWORD})).status_code == 200
        assert [m["Subject"] for m in mails(mail) if m["To"] == new] == ["Confirm your new email address"]


async def test_a_change_of_email_takes_the_password_and_a_usable_address(mailing: Started) -> None:
    _, client, _ = mailing
    await register(client)
    session = await login(client)
    wrong = await change(client, session, password="not the password at all")
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_current_password")
    same = await change(client, session, EMAIL.upper())
    assert (same.status_code, same.json()["code"]) == (400, "email_unchanged")
    bad = await change(client, session, "not an address")
    assert (bad.status_code, bad.json()["code"]) == (400, "email_invalid")
    assert (
        await client.post("/email/change", json={"password": PASSWORD, "newEmail": NEW})
    ).status_code == 401
    assert (await client.post("/email/change/confirm", json={"token": "x" * 43})).json()[
        "code"
    ] == "token_invalid"


async def test_re_authentication_is_throttled_like_a_login(mailing: Started) -> None:
    _, client, _ = mailing
    await register(client)
    session = await login(client)
    statuses = []
    for _ in range(8):
        statuses.append((await change(client, session, password="not the password at all")).status_code)
    assert statuses[0] == 400 and 429 in statuses, statuses
    # The counter is the login's: the right password at /login is held back too.
    held = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert held.status_code == 429
    refused = await client.post("/account/delete", json={"password": PASSWORD}, headers=bearer(session))
    assert refused.status_code == 429


# --- deleting your account --------------------------------------------------------------------------


async def test_deleting_your_account_leaves_no_row_and_mails_a_last_time(
    mailing: Started, database_url: str, clock: FakeClock
) -> None:
    app, client, mail = mailing
    user_id = await register(client)
    session = await login(client)
    await add(client, session, key())  # a passkey
    services = services_of(app)
    user = await services.admin.find_user(user_id)
    secret, _codes = await enrol(services.mfa, user, clock())
    clock.advance(seconds=30)
    await change(client, session)  # pending change tokens
    assert (await client.post("/password/reset/request", json={"email": EMAIL})).status_code == 202
    await settle(app)
    other_id = await register(client, OTHER)

    wrong = await client.post("/account/delete", json={"password": PASSWORD}, headers=bearer(session))
    assert (wrong.status_code, wrong.json()["code"]) == (400, "code_invalid")  # the app is on
    code = pyotp.TOTP(secret).at(clock())
    done = await client.post(
        "/account/delete", json={"password": PASSWORD, "code": code}, headers=bearer(session)
    )
    assert (done.status_code, done.json()) == (200, {"success": True})
    assert (await client.get("/session", headers=bearer(session))).status_code == 401
    await settle(app)
    await services.audit_sink.flush()
    mail_to(mail, EMAIL, "Your account was deleted")

    after = await rows_of(database_url)
    for table, rows in after.items():
        assert not [row for row in rows if mentions(row, EMAIL) or mentions(row, NEW)], table
    for table in metadata.tables.values():
        if "user_id" in table.c and table.name != "audit_events":
            column = list(table.c).index(table.c.user_id)
            assert [row for row in after[table.name] if row[column] == user_id] == [], table.name
    assert [row[0] for row in after["users"]] == [other_id]
    events = await fetch(
        database_url,
        "SELECT event, detail FROM audit_events WHERE user_id = :id AND event = 'user.deleted'",
        id=user_id,
    )
    assert len(events) == 1
    detail = json.loads(events[0][1])
    assert detail["by"] == "self" and detail["passkeys_removed"] == 1
    # Logging in now fails as for an address never registered.
    assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 401


async def test_deletion_takes_the_current_password(mailing: Started) -> None:
    _, client, _ = mailing
    await register(client)
    session = await login(client)
    wrong = await client.post(
        "/account/delete", json={"password": "not the password at all"}, headers=bearer(session)
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_current_password")
    assert (await client.post("/account/delete", json={"password": PASSWORD})).status_code == 401
    assert (await client.get("/session", headers=bearer(session))).status_code == 200
    done = await client.post("/account/delete", json={"password": PASSWORD}, headers=bearer(session))
    assert done.status_code == 200
