"""Whole flows through the API: what is stored, what expires, what survives load and faults."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from doorward.config import Settings
from doorward.core.errors import StorageUnavailable
from doorward.core.models import NewUser
from doorward.logs import JsonFormatter
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.db import fetch


async def test_tokens_are_stored_only_as_digests(client: httpx.AsyncClient, settings: Settings) -> None:
    await register(client)
    token = await login(client)
    digests = [
        bytes(row[0]) for row in await fetch(settings.database_url, "SELECT token_digest FROM sessions")
    ]
    assert digests == [hashlib.sha256(token.encode()).digest()]
    for table in ("users", "sessions", "secrets"):
        dump = repr(await fetch(settings.database_url, f"SELECT * FROM {table}"))  # noqa: S608
        assert token not in dump
        assert PASSWORD not in dump


async def test_no_secret_in_any_sqlite_file(sqlite_url: str) -> None:
    async with app_for(sqlite_url) as (_, client):
        await register(client)
        token = await login(client)
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]  # db, WAL, shm
    assert files
    for file in files:
        raw = file.read_bytes()
        assert token.encode() not in raw, file
        assert PASSWORD.encode() not in raw, file


async def test_seed_sha256_hash_is_upgraded_at_next_login(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, clock: FakeClock
) -> None:
    # A row as the seed service left it: an unsalted SHA-256 hex digest.
    seed_hash = hashlib.sha256(PASSWORD.encode()).hexdigest()
    async with app.state.services.store.write() as tx:
        await tx.users.add(NewUser(EMAIL, EMAIL, seed_hash), clock())
    wrong = await client.post("/login", json={"email": EMAIL, "password": "wrong " + PASSWORD})
    assert wrong.status_code == 401
    await login(client)
    ((stored,),) = await fetch(settings.database_url, "SELECT password_hash FROM users")
    assert stored.startswith("$argon2id$")
    await login(client)  # the new hash works


async def test_session_ends_after_one_day(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await register(client)
    token = await login(client)
    clock.advance(hours=23, minutes=59)
    assert (await client.get("/session", headers=bearer(token))).status_code == 200
    clock.advance(minutes=1)
    assert (await client.get("/session", headers=bearer(token))).status_code == 401


async def test_concurrent_logins_all_succeed_on_sqlite(client: httpx.AsyncClient) -> None:
    # Five at once per account: each is reserved before its verify as if it failed, so more than
    # the free failures at once for one account would wait (tests/web/test_throttle_bursts.py).
    for n in range(12):
        await register(client, f"user{n}@example.com")
    answers = await asyncio.gather(
        *(
            client.post("/login", json={"email": f"user{n % 12}@example.com", "password": PASSWORD})
            for n in range(60)
        )
    )
    assert Counter(a.status_code for a in answers) == {200: 60}


async def test_saturated_hashing_answers_503_at_once_and_sessions_keep_working(database_url: str) -> None:
    # The real OWASP profile (tens of ms a hash), one hashing thread, nothing may wait.
    async with app_for(database_url, hash_profile="owasp-2023", hash_workers=1, hash_queue=0) as (_, client):
        await register(client)
        token = await login(client)
        logins = [client.post("/login", json={"email": EMAIL, "password": PASSWORD}) for _ in range(12)]
        checks = [client.get("/session", headers=bearer(token)) for _ in range(12)]
        answers = await asyncio.gather(*logins, *checks)
    login_statuses = Counter(a.status_code for a in answers[:12])
    assert set(login_statuses) <= {200, 503}
    assert login_statuses[503] >= 1 and login_statuses[200] >= 1
    refused = next(a for a in answers[:12] if a.status_code == 503)
    assert refused.json() == {
        "success": False,
        "error": "Service overloaded, try again shortly",
        "code": "overloaded",
    }
    assert refused.headers["retry-after"] == "1"
    assert {a.status_code for a in answers[12:]} == {200}


async def test_a_login_is_refused_before_it_is_read_while_hashing_is_full(database_url: str) -> None:
    async with app_for(database_url, hash_workers=1, hash_queue=0) as (app, client):
        malformed = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
        assert (await client.post("/login", **malformed)).status_code == 400  # read, and refused
        with app.state.services.pool.slot():  # the one hash slot, taken
            refused = await client.post("/login", **malformed)
            assert (refused.status_code, refused.json()["code"]) == (503, "overloaded")
            assert refused.headers["retry-after"] == "1"
        assert (await client.post("/login", **malformed)).status_code == 400


async def test_database_gone_is_503_with_the_envelope(tmp_path: Path, sqlite_url: str) -> None:
    async with app_for(sqlite_url) as (app, client):
        await register(client)
        token = await login(client)
        moved = tmp_path / "elsewhere"
        moved.mkdir()
        for file in tmp_path.glob("doorward.db*"):
            file.rename(moved / file.name)
        (tmp_path / "doorward.db").mkdir()  # in its place, something no one can open as a database
        await app.state.services.engine.dispose()  # drop pooled connections to the moved file
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        for response in (
            await client.post("/login", json={"email": EMAIL, "password": PASSWORD}),
            await client.get("/session", headers=bearer(token)),
        ):
            assert response.status_code == 503
            assert response.json()["code"] == "unavailable"
            assert "Traceback" not in response.text


async def test_an_unmigrated_database_stops_start_up_with_advice(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="run doorward migrate"):
        async with app_for(f"sqlite:///{tmp_path / 'empty.db'}"):
            pass


async def test_logs_carry_events_but_no_secrets(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await register(client)
    token = await login(client)
    await client.post("/login", json={"email": EMAIL, "password": "wrong " + PASSWORD})
    await client.post("/login", json={"email": 'evil\n{"forged": true}@x.io', "password": PASSWORD})
    await client.get("/session", headers=bearer(token))
    await client.post("/logout", headers=bearer(token))
    lines = [JsonFormatter().format(record) for record in caplog.records]
    events = [record.getMessage() for record in caplog.records]
    assert {"user.registered", "login.succeeded", "login.failed", "session.ended"} <= set(events)
    text = "\n".join(lines)
    assert PASSWORD not in text
    assert token not in text
    assert all("\n" not in line for line in lines)
