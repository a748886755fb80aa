"""Under DOORWARD_REQUIRE_MFA, turning the app off and removing the last passkey at the same instant:
each checked the other factor before the other committed, so both could go and the account was left
with the password alone. The two writes lock the account's row and take turns. PostgreSQL (SQLite
writes one at a time anyway)."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pyotp

from tests.conftest import EMAIL, PASSWORD, FakeClock, bearer, login, register
from tests.db import fetch
from tests.web.test_mfa import STEP, password_step, second_step, turn_app_on
from tests.web.test_passkeys import add, key, passkey_app


async def both_factors(client: httpx.AsyncClient, clock: FakeClock, email: str) -> tuple[str, str, str]:
    """An account with the app and one passkey: an aal2 session, the app's secret, the passkey's id."""
    await register(client, email)
    secret, _ = await turn_app_on(client, clock, await login(client, email))
    signed_in = await second_step(
        client, await password_step(client, email), code=pyotp.TOTP(secret).at(clock())
    )
    clock.advance(seconds=STEP)
    strong = str(signed_in.json()["sessionToken"])
    return strong, secret, (await add(client, strong, key()))["id"]


async def waiting_on_locks(conn: asyncpg.Connection, count: int) -> None:
    """Until ``count`` other sessions of this database wait on a lock (up to 5 s)."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    for _ in range(100):
        # Inside a transaction pg_stat_activity is read once and kept: drop that copy each time.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        if await conn.fetchval(sql) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {count} waiting")


async def test_the_app_and_the_last_passkey_removed_at_once_leave_one_factor(
    postgres_database: str, clock: FakeClock
) -> None:
    """The account's row held by another transaction while both requests run: without the lock each
    checks the other factor (still there, uncommitted) and waits only at the end; with it both wait
    before the check, and the second sees the first's removal."""
    async with passkey_app(postgres_database, clock, require_mfa=True) as (_, client):
        session, secret, passkey_id = await both_factors(client, clock, EMAIL)
        (user_id,) = (await fetch(postgres_database, "SELECT id FROM users"))[0]
        blocker = await asyncpg.connect(postgres_database.replace("postgresql://", "postgres://", 1))
        try:
            async with blocker.transaction():
                await blocker.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
                off = asyncio.create_task(
                    client.post(
                        "/mfa/totp/disable",
                        json={"password": PASSWORD, "code": pyotp.TOTP(secret).at(clock())},
                        headers=bearer(session),
                    )
                )
                removed = asyncio.create_task(
                    client.request(
                        "DELETE",
                        f"/passkeys/{passkey_id}",
                        json={"password": PASSWORD},
                        headers=bearer(session),
                    )
                )
                await waiting_on_locks(blocker, 2)
            outcomes = sorted([(await off).status_code, (await removed).status_code])
        finally:
            await blocker.close()
        assert outcomes == [200, 409], outcomes
        held = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        assert held.status_code == 401  # a second factor is still asked for
