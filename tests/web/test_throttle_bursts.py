"""Guesses sent all at once: the throttle holds as it holds for guesses sent one by one.

Each attempt is reserved before its password is checked, so a burst gets no more verifies than the
free failures (per account) or the client's limit (per client), on every home of the counters.
A 401 here always follows a verify, and each admitted reservation (the count the throttle store
keeps, read behind the app) is one: both count the verifies the burst got.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import EMAIL, PASSWORD, app_for, login, register
from tests.db import fetch

BURST = 40


def counters(request: pytest.FixtureRequest, backend: str) -> dict[str, Any]:
    """The settings that put the throttle counters in ``backend``."""
    if backend == "database":
        return {}
    return {
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_prefix": request.getfixturevalue("redis_prefix"),
    }


async def counted(database_url: str, store: dict[str, Any], account: str | None, client: str) -> int:
    """What the throttle store counted, read behind the app: an account's failures, or else the
    client's attempts. Each admitted reservation is one verify."""
    if "redis_url" in store:
        with redis.Redis.from_url(store["redis_url"]) as r:
            if account is not None:
                return int(r.hget(f"{store['redis_prefix']}account:{account}", "f") or 0)
            (name,) = r.keys(f"{store['redis_prefix']}login-failures:{client}:*")
            return int(r.get(name) or 0)
    if account is not None:
        rows = await fetch(
            database_url, "SELECT failures FROM attempts WHERE key = :k", k=f"account:{account}"
        )
    else:
        rows = await fetch(
            database_url, "SELECT count FROM rate_windows WHERE key = :k", k=f"login-failures:{client}"
        )
    return int(rows[0][0])


async def burst(client: httpx.AsyncClient, emails: list[str], password: str) -> Counter[int]:
    answers = await asyncio.gather(
        *(client.post("/login", json={"email": email, "password": password}) for email in emails)
    )
    return Counter(answer.status_code for answer in answers)


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_a_burst_against_one_account_gets_only_the_free_failures_verified(
    request: pytest.FixtureRequest, database_url: str, backend: str
) -> None:
    store = counters(request, backend)
    async with app_for(database_url, hash_workers=4, hash_queue=64, **store) as (
        _,
        client,
    ):
        await register(client)
        statuses = await burst(client, [EMAIL] * BURST, "not the password")
    assert statuses == {401: 5, 429: BURST - 5}
    assert await counted(database_url, store, EMAIL, "127.0.0.1") == 5


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_a_burst_of_unknown_emails_is_throttled_as_a_known_one(
    request: pytest.FixtureRequest, database_url: str, backend: str
) -> None:
    store = counters(request, backend)
    async with app_for(database_url, hash_workers=4, hash_queue=64, **store) as (
        _,
        client,
    ):
        statuses = await burst(client, ["nobody@example.com"] * BURST, "not the password")
    assert statuses == {401: 5, 429: BURST - 5}
    assert await counted(database_url, store, "nobody@example.com", "127.0.0.1") == 5


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_a_burst_from_one_client_gets_exactly_the_client_limit_verified(
    request: pytest.FixtureRequest, database_url: str, backend: str
) -> None:
    async with app_for(
        database_url,
        hash_workers=4,
        hash_queue=64,
        throttle_client_failures=10,
        **(store := counters(request, backend)),
    ) as (_, client):
        emails = [f"user{n}@example.com" for n in range(BURST)]
        statuses = await burst(client, emails, "not the password")
    assert statuses == {401: 10, 429: BURST - 10}
    assert await counted(database_url, store, None, "127.0.0.1") == 10


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_successes_in_a_burst_leave_neither_the_account_nor_the_client_counted(
    request: pytest.FixtureRequest, database_url: str, backend: str
) -> None:
    """Each attempt is counted before its verify; a success takes its own back, as a success
    reset the account before: many right logins from one client do not use up its limit."""
    async with app_for(
        database_url,
        hash_workers=4,
        hash_queue=64,
        throttle_client_failures=3,
        **counters(request, backend),
    ) as (_, client):
        await register(client)
        for _ in range(3):
            statuses = await burst(client, [EMAIL] * 3, PASSWORD)
            assert statuses == {200: 3}, statuses  # three reserved at once fit the client's limit of 3
        for _ in range(4):
            await login(client)  # one at a time: never refused
        wrong = await burst(client, [f"user{n}@example.com" for n in range(5)], "not the password")
    assert wrong == {401: 3, 429: 2}
