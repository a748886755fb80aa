"""Deleting an account (core/deletion.py, through Admin.delete_user) on both databases: an account with
every kind of row a user can have leaves none behind, in any table, and no trace of its email; the audit
trail keeps its events and a user.deleted event with the id, without the email."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from doorward.core.admin_records import Actor
from doorward.core.errors import UserNotFound
from doorward.storage.tables import metadata
from tests.conftest import EMAIL, PASSWORD, FakeClock, bearer, login, register
from tests.db import fetch
from tests.web.test_mfa_services import enrol, services_of
from tests.web.test_passkeys import add, key, passkey_app

OTHER = "grace@example.com"


async def rows_of(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every doorward table."""
    return {name: await fetch(database_url, f'SELECT * FROM "{name}"') for name in metadata.tables}  # noqa: S608


def mentions(row: tuple[Any, ...], text: str) -> bool:
    needle = text.encode()
    return any(
        (isinstance(value, str) and text in value)
        or (isinstance(value, bytes | memoryview) and needle in bytes(value))
        for value in row
    )


async def an_account_with_everything(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> int:
    """EMAIL with sessions, a passkey, TOTP and recovery codes, a sign-in waiting for its second step,
    a reset link (and the mail counter it counts on), and failed logins; its id."""
    user_id = await register(client)
    session = await login(client)
    await add(client, session, key())  # a passkey, and its registration's challenge
    services = services_of(app)
    user = await services.admin.find_user(user_id)
    await enrol(services.mfa, user, clock())
    clock.advance(seconds=30)
    assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 401
    wrong = {"email": EMAIL, "password": "not the password at all"}
    assert (await client.post("/login", json=wrong)).status_code == 401
    reset = await client.post("/password/reset/request", json={"email": EMAIL})
    assert reset.status_code == 202, reset.text
    await services.accounts.background.drain()
    assert (await client.get("/session", headers=bearer(session))).status_code == 200
    return user_id


async def test_deleting_an_account_leaves_no_row_of_it_and_the_audit_keeps_its_id_only(
    database_url: str, clock: FakeClock
) -> None:
    async with passkey_app(database_url, clock) as (app, client):
        user_id = await an_account_with_everything(app, client, clock)
        other_id = await register(client, OTHER)
        await login(client, OTHER)
        await services_of(app).accounts.background.drain()  # the logins' devices, written after them
        before = await rows_of(database_url)
        for table in (
            "sessions",
            "passkeys",
            "totp_factors",
            "recovery_codes",
            "mfa_challenges",
            "webauthn_challenges",
            "account_tokens",
            "attempts",
            "rate_windows",
            "known_devices",
        ):
            assert any(mentions(row, EMAIL) or user_id in row for row in before[table]), table

        services = services_of(app)
        deleted = await services.admin.delete_user(EMAIL.upper(), Actor("api", "ops-key", "192.0.2.7"))
        assert (deleted.user.id, deleted.user.email) == (user_id, EMAIL)
        assert deleted.passkeys_removed == 1
        with pytest.raises(UserNotFound):
            await services.admin.delete_user(user_id)
        await services.audit_sink.flush()

        after = await rows_of(database_url)
        for table, rows in after.items():
            assert not [row for row in rows if mentions(row, EMAIL)], table
        assert [row for row in after["users"] if row[0] == user_id] == []
        for table in metadata.tables.values():
            if "user_id" in table.c and table.name != "audit_events":
                column = list(table.c).index(table.c.user_id)
                assert [row for row in after[table.name] if row[column] == user_id] == [], table.name
        # The other account keeps everything it had.
        assert [row[0] for row in after["users"]] == [other_id]
        assert len([row for row in after["sessions"] if other_id in row]) == 1

        # Logging in fails like for an email never registered (and counts as such, from now on).
        assert (await client.post("/login", json={"email": EMAIL, "password": PASSWORD})).status_code == 401
        events = await fetch(
            database_url,
            "SELECT event, user_id, client_address, detail FROM audit_events WHERE user_id = :id ORDER BY id",
            id=user_id,
        )
        assert ("user.registered", user_id) in [(event, uid) for event, uid, _, _ in events]
        event, _, client_address, detail = events[-1]
        assert (event, client_address) == ("user.deleted", "192.0.2.7")
        assert json.loads(detail) == {
            "by": "admin",
            "sessions_ended": 1,
            "passkeys_removed": 1,
            "via": "api",
            "key": "ops-key",
        }
