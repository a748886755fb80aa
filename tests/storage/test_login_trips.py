"""A login's two trips (storage/login_trips.py) against the real databases, on SQLAlchemy and, on
PostgreSQL, on the driver too: the reservation reads the user; the session's write takes the
reservation back whether or not the session is written, and writes it only on the hash as read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from doorward.core.models import (
    DeviceNote,
    LoginLimits,
    NewUser,
    Opened,
    Opening,
    Recognition,
    Session,
    Sighting,
)
from doorward.storage import SqlStore, create_engine
from doorward.storage.lookup import open_driver
from doorward.storage.throttle import SqlThrottleStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
LIMITS = LoginLimits(NOW, lockout=50, client=100, free=5, waits=(NOW + timedelta(seconds=1),))
KEY, COUNTER, EMAIL = "account:ada@example.com", "login-failures:192.0.2.1", "ada@example.com"


@pytest.fixture(params=["sqlalchemy", "driver"])
async def store(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[SqlStore]:
    engine = create_engine(database_url, timeout=5)
    driver = None
    if request.param == "driver":
        if engine.dialect.name != "postgresql":
            await engine.dispose()
            pytest.skip("the driver's path is PostgreSQL's")
        driver = open_driver(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=2)
    sql = SqlStore(engine, driver=driver)
    yield sql
    await sql.close()
    await engine.dispose()


def opening(user_id: int, sid: str, seen: str, new_hash: str | None = None) -> Opening:
    session = Session(sid, user_id, NOW, NOW, NOW + timedelta(days=1), "192.0.2.1", "ua")
    return Opening(session, sid.encode() * 16, seen, new_hash)


async def counts(throttle: SqlThrottleStore) -> tuple[int, int]:
    state, counted = await throttle.login_state(KEY, COUNTER, NOW)
    return state.failures, counted


async def session_ids(store: SqlStore, user_id: int) -> set[str]:
    async with store.read() as tx:
        return {s.id for s in await tx.sessions.list_for_user(user_id)}


async def test_the_reservation_reads_the_user_and_the_write_takes_it_back(store: SqlStore) -> None:
    throttle = SqlThrottleStore(store)
    async with store.write() as tx:
        user = await tx.users.add(NewUser("Ada@Example.com", EMAIL, "$argon2id$seen"), NOW)
    nobody = await throttle.reserve_login("account:x", COUNTER, NOW, WINDOW, LIMITS, "x@example.com")
    assert nobody.admitted and nobody.read and nobody.user is None
    found = await throttle.reserve_login(KEY, COUNTER, NOW, WINDOW, LIMITS, EMAIL)
    assert found.admitted and found.read and found.user == user
    assert await counts(throttle) == (1, 2)
    released = await throttle.release_login(
        KEY, COUNTER, NOW, reset=True, reserved=1, opening=opening(user.id, "s1", user.password_hash)
    )
    assert released is True
    assert await counts(throttle) == (0, 1)  # the account forgotten, the client's attempt taken back
    assert await session_ids(store, user.id) == {"s1"}


@pytest.mark.parametrize("new_hash", [None, "$argon2id$upgraded"], ids=["plain", "rehash"])
async def test_a_hash_changed_meanwhile_opens_nothing_but_the_attempt_is_taken_back(
    store: SqlStore, new_hash: str | None
) -> None:
    throttle = SqlThrottleStore(store)
    async with store.write() as tx:
        user = await tx.users.add(NewUser("Ada@Example.com", EMAIL, "$argon2id$seen"), NOW)
    await throttle.reserve_login(KEY, COUNTER, NOW, WINDOW, LIMITS, EMAIL)
    async with store.write() as tx:  # a reset, committed while the login was verifying
        await tx.users.set_password_hash(user.id, "$argon2id$reset", NOW)
    stale = opening(user.id, "s1", user.password_hash, new_hash)
    assert await throttle.release_login(KEY, COUNTER, NOW, reset=True, reserved=1, opening=stale) is False
    assert await counts(throttle) == (0, 0)
    assert await session_ids(store, user.id) == set()
    async with store.read() as tx:
        stored = await tx.users.by_id(user.id)
    assert stored is not None and stored.password_hash == "$argon2id$reset"


async def test_the_write_waits_for_a_reset_in_progress_and_then_is_refused(store: SqlStore) -> None:
    throttle = SqlThrottleStore(store)
    async with store.write() as tx:
        user = await tx.users.add(NewUser("Ada@Example.com", EMAIL, "$argon2id$seen"), NOW)
    await throttle.reserve_login(KEY, COUNTER, NOW, WINDOW, LIMITS, EMAIL)
    async with store.write() as tx:
        await tx.users.set_password_hash(user.id, "$argon2id$reset", NOW)
        stale = opening(user.id, "s1", user.password_hash)
        writing = asyncio.create_task(
            throttle.release_login(KEY, COUNTER, NOW, reset=True, reserved=1, opening=stale)
        )
        await asyncio.sleep(0.3)
        assert not writing.done()  # behind the reset's lock
    assert await writing is False
    assert await session_ids(store, user.id) == set()


def device(digest: bytes, at: datetime) -> DeviceNote:
    seen = Sighting(at, "192.0.2.1", "Firefox on Linux")
    return DeviceNote(digest * 32, seen, at - timedelta(days=90), at - timedelta(days=1))


async def last_seen(store: SqlStore, user_id: int, digest: bytes) -> datetime | None:
    async with store.read() as tx:
        return await tx.known_devices.last_seen(user_id, digest * 32)


@pytest.mark.parametrize("counters", ["database", "elsewhere"])
async def test_the_session_write_notes_its_device_and_answers_whether_it_is_new(
    store: SqlStore, counters: str
) -> None:
    """The device is remembered in the session's own write (with the reservation taken back, or
    alone when the counters live elsewhere), written at most once a day, and only with a session."""
    throttle = SqlThrottleStore(store)
    async with store.write() as tx:
        user = await tx.users.add(NewUser("Ada@Example.com", EMAIL, "$argon2id$seen"), NOW)

    async def log_in(sid: str, note: DeviceNote, seen: str = user.password_hash) -> Opened | None:
        one = replace(opening(user.id, sid, seen), device=note)
        if counters == "elsewhere":
            return await store.open_session(one.session, one.token_digest, seen, None, note)
        await throttle.reserve_login(KEY, COUNTER, NOW, WINDOW, LIMITS, EMAIL)
        return await throttle.release_login(KEY, COUNTER, NOW, reset=True, reserved=1, opening=one)

    assert await log_in("s1", device(b"a", NOW)) is Recognition.FIRST
    assert await last_seen(store, user.id, b"a") == NOW
    assert await log_in("s2", device(b"a", NOW + timedelta(hours=1))) is Recognition.KNOWN
    assert await last_seen(store, user.id, b"a") == NOW  # noted lately enough: not written again
    assert await log_in("s3", device(b"b", NOW + timedelta(hours=2))) is Recognition.NEW
    assert await log_in("s4", device(b"a", NOW + timedelta(days=2))) is Recognition.KNOWN
    assert await last_seen(store, user.id, b"a") == NOW + timedelta(days=2)
    assert await log_in("s5", device(b"a", NOW + timedelta(days=100))) is Recognition.NEW  # 98 days away
    assert await log_in("s6", device(b"c", NOW + timedelta(days=101)), "$argon2id$stale") is False
    assert await last_seen(store, user.id, b"c") is None  # no session, no device
    assert await session_ids(store, user.id) == {"s1", "s2", "s3", "s4", "s5"}
