"""Throttling as a client sees it: 429 with the envelope, the same for every email, spoof-proof."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.db import fetch

TOO_MANY = {"success": False, "error": "Too many attempts", "code": "rate_limited"}


async def wrong(client: httpx.AsyncClient, email: str = EMAIL, **headers: str) -> httpx.Response:
    return await client.post("/login", json={"email": email, "password": "not the password"}, headers=headers)


async def test_the_fifth_failure_starts_a_wait_even_for_the_right_password(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(client)
    for _ in range(5):
        assert (await wrong(client)).status_code == 401
    refused = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.json() == {**TOO_MANY, "retryAfter": 1}
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["cache-control"] == "no-store"
    clock.advance(seconds=1)
    await login(client)  # the wait is over, and success resets the count
    for _ in range(4):
        assert (await wrong(client)).status_code == 401
    assert (await wrong(client)).status_code == 401


async def test_unknown_and_known_emails_are_throttled_alike(client: httpx.AsyncClient) -> None:
    await register(client)
    for _ in range(5):
        await wrong(client, EMAIL)
        await wrong(client, "nobody@example.com")
    known, unknown = await wrong(client, EMAIL), await wrong(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 429
    assert known.content == unknown.content
    assert sorted(known.headers.items()) == sorted(unknown.headers.items())


async def test_a_rotating_x_forwarded_for_does_not_reset_the_client_limit(database_url: str) -> None:
    async with app_for(database_url, throttle_client_failures=3) as (_, client):
        statuses = [
            (await wrong(client, f"user{n}@example.com", **{"X-Forwarded-For": f"203.0.113.{n}"})).status_code
            for n in range(5)
        ]
    assert statuses == [401, 401, 401, 429, 429]


async def test_behind_a_trusted_proxy_each_forwarded_client_counts_alone(database_url: str) -> None:
    async with app_for(database_url, throttle_client_failures=3, trusted_proxies="127.0.0.0/8") as (
        _,
        client,
    ):
        statuses = [
            (await wrong(client, f"user{n}@example.com", **{"X-Forwarded-For": f"203.0.113.{n}"})).status_code
            for n in range(5)
        ]
        # The client's own left-most entries prove nothing: the right-most untrusted hop is the client.
        spoofed = [
            (
                await wrong(
                    client, f"spoof{n}@example.com", **{"X-Forwarded-For": f"10.9.9.{n}, 203.0.113.99"}
                )
            ).status_code
            for n in range(4)
        ]
    assert statuses == [401] * 5
    assert spoofed == [401, 401, 401, 429]


async def test_registrations_per_client_are_limited(database_url: str) -> None:
    async with app_for(database_url, throttle_client_registrations=2) as (_, client):
        statuses = [
            (
                await client.post("/register", json={"email": f"r{n}@example.com", "password": PASSWORD})
            ).status_code
            for n in range(3)
        ]
        assert statuses == [201, 201, 429]


async def test_throttle_decisions_reach_the_audit_table(
    client: httpx.AsyncClient, app: object, settings: object
) -> None:
    for _ in range(6):
        await wrong(client)
    await app.state.services.audit_sink.flush()  # type: ignore[attr-defined]
    rows = await fetch(settings.database_url, "SELECT event, client_address FROM audit_events")  # type: ignore[attr-defined]
    events = Counter(event for event, _ in rows)
    assert events["login.failed"] == 5
    assert events["throttle.rejected"] == 1
    assert {address for _, address in rows} == {"127.0.0.1"}


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_a_flood_gets_only_expected_answers_and_sessions_keep_working(
    request: pytest.FixtureRequest, database_url: str, backend: str
) -> None:
    extra = {}
    if backend == "redis":
        extra = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    async with app_for(
        database_url,
        hash_profile="owasp-2023",
        hash_workers=2,
        hash_queue=4,
        throttle_client_failures=10_000,
        **extra,
    ) as (_, client):
        await register(client)
        token = await login(client)
        emails = [EMAIL, "nobody@example.com", *(f"u{n}@example.com" for n in range(20))]
        flood = [
            client.post(
                "/login",
                json={"email": emails[n % len(emails)], "password": PASSWORD if n % 3 else "wrong password"},
            )
            for n in range(200)
        ]
        checks = [client.get("/session", headers=bearer(token)) for _ in range(50)]
        answers = await asyncio.gather(*flood, *checks)
    statuses = Counter(a.status_code for a in answers[:200])
    assert set(statuses) <= {200, 401, 429, 503}, statuses
    assert statuses[503] > 0  # the pool did refuse: this was a flood
    assert {a.status_code for a in answers[200:]} == {200}


async def test_requests_that_send_mail_are_limited_per_client_by_their_settings(
    database_url: str, clock: FakeClock
) -> None:
    """The reset request and the resend share one counter per client (DOORWARD_THROTTLE_CLIENT_MAILS
    in DOORWARD_THROTTLE_MAIL_WINDOW): 202 for a known or unknown email alike, then 429."""
    async with app_for(database_url, clock, throttle_client_mails=2, throttle_mail_window=60) as (_, client):
        body = {"email": "nobody@example.com"}
        statuses = [
            (await client.post("/password/reset/request", json=body)).status_code,
            (await client.post("/email/verify/resend", json=body)).status_code,
            (await client.post("/password/reset/request", json=body)).status_code,
        ]
        refused = await client.post("/email/verify/resend", json=body)
        clock.advance(seconds=60)
        again = await client.post("/password/reset/request", json=body)
    assert statuses == [202, 202, 429]
    assert refused.status_code == 429
    assert refused.json() == {**TOO_MANY, "retryAfter": 60}
    assert again.status_code == 202


async def test_failed_sign_ups_count_toward_the_registration_limit(database_url: str) -> None:
    """Each attempt counts, whatever its answer: a 409 email_taken says an account exists, so the
    limit is what bounds that question (and each attempt costs a hash)."""
    async with app_for(database_url, throttle_client_registrations=3) as (_, client):
        await register(client)
        taken = await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
        weak = await client.post("/register", json={"email": "new@example.com", "password": "short"})
        refused = await client.post("/register", json={"email": "new@example.com", "password": PASSWORD})
    assert [taken.status_code, weak.status_code, refused.status_code] == [409, 400, 429]
