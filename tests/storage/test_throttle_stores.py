"""The throttle counters' contract, on every real home they can have: SQLite, PostgreSQL, Redis."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import make_url

from doorward.core.models import AttemptState, AuditEvent, LoginLimits, Reservation
from doorward.core.ports import ThrottleStore, WaitUntil
from doorward.core.throttle import ThrottlePolicy
from doorward.storage import SqlStore, create_engine
from doorward.storage.audit import BATCH, SqlAuditSink
from doorward.storage.redis_throttle import RedisThrottleStore
from doorward.storage.throttle import SqlThrottleStore
from tests.db import fetch

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def target(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Where the counters live, and a URL (resolved here, outside the event loop)."""
    if request.param == "redis":
        return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_database"
    return request.getfixturevalue(fixture), ""


@asynccontextmanager
async def opened(target: tuple[str, str]) -> AsyncIterator[ThrottleStore]:
    """A store on ``target``, as one instance of doorward opens it."""
    url, prefix = target
    if url.startswith("redis"):
        store = RedisThrottleStore.from_url(url, timeout=2, prefix=prefix)
        yield store
        await store.close()
        return
    engine = create_engine(url)
    yield SqlThrottleStore(SqlStore(engine))
    await engine.dispose()


@pytest.fixture
async def throttle_store(target: tuple[str, str]) -> AsyncIterator[ThrottleStore]:
    async with opened(target) as store:
        yield store


WINDOW = timedelta(minutes=15)


async def state(store: ThrottleStore, key: str, counter: str | None = None) -> tuple[AttemptState, int]:
    return await store.login_state(key, counter, T0)


async def test_failures_count_and_clear(throttle_store: ThrottleStore) -> None:
    assert await state(throttle_store, "account:a") == (AttemptState(), 0)
    failures = [await throttle_store.record_login_failure("account:a", None, T0, WINDOW) for _ in range(3)]
    assert failures == [1, 2, 3]
    assert await state(throttle_store, "account:a") == (AttemptState(3), 0)
    assert await state(throttle_store, "account:b") == (AttemptState(), 0)
    await throttle_store.clear("account:a")
    assert await state(throttle_store, "account:a") == (AttemptState(), 0)


async def test_a_failure_counts_against_the_account_and_the_client_window(
    throttle_store: ThrottleStore,
) -> None:
    for _ in range(2):
        await throttle_store.record_login_failure("account:e", "client:y", T0, WINDOW)
    await throttle_store.record_login_failure("account:f", "client:y", T0, WINDOW)
    assert await state(throttle_store, "account:e", "client:y") == (AttemptState(2), 3)
    assert await state(throttle_store, "account:f", "client:y") == (AttemptState(1), 3)
    assert await state(throttle_store, "account:e", "client:z") == (AttemptState(2), 0)
    assert await throttle_store.login_state("account:e", "client:y", T0 + WINDOW) == (AttemptState(2), 0)


async def test_concurrent_failures_are_all_counted(throttle_store: ThrottleStore) -> None:
    counts = await asyncio.gather(
        *(throttle_store.record_login_failure("account:c", "client:c", T0, WINDOW) for _ in range(40))
    )
    assert sorted(counts) == list(range(1, 41))
    assert (await state(throttle_store, "account:c", "client:c"))[1] == 40


async def test_a_failure_sets_the_wait_it_is_given_and_the_wait_only_moves_later(
    throttle_store: ThrottleStore,
) -> None:
    def wait(seconds: dict[int, int]) -> WaitUntil:
        return lambda failures: T0 + timedelta(seconds=seconds[failures]) if failures in seconds else None

    await throttle_store.record_login_failure("account:d", None, T0, WINDOW, wait({}))
    assert await state(throttle_store, "account:d") == (AttemptState(1), 0)
    await throttle_store.record_login_failure("account:d", "client:d", T0, WINDOW, wait({2: 8}))
    eight = T0 + timedelta(seconds=8)
    assert await state(throttle_store, "account:d", "client:d") == (AttemptState(2, eight), 1)
    await throttle_store.record_login_failure("account:d", None, T0, WINDOW, wait({3: 2}))
    assert await state(throttle_store, "account:d") == (AttemptState(3, eight), 0)  # not moved earlier


@pytest.mark.parametrize("target", ["postgresql", "redis"], indirect=True)
async def test_a_wait_is_not_set_on_a_count_that_a_success_restarted_meanwhile(
    throttle_store: ThrottleStore, target: tuple[str, str]
) -> None:
    """The wait depends on the new count, so PostgreSQL and Redis set it after the count: a success
    (the count cleared) and a new failure on another instance in between must not inherit it. (SQLite
    counts and waits in one transaction: nothing comes in between.)"""

    async def success_then_failure() -> None:
        async with opened(target) as other_instance:
            await other_instance.clear("account:r")
            await other_instance.record_login_failure("account:r", None, T0, WINDOW)

    def meanwhile(failures: int) -> datetime:
        with ThreadPoolExecutor(1) as thread:  # this event loop is blocked in this callback
            thread.submit(asyncio.run, success_then_failure()).result()
        return T0 + timedelta(minutes=15)

    for _ in range(6):
        await throttle_store.record_login_failure("account:r", None, T0, WINDOW)
    assert await throttle_store.record_login_failure("account:r", None, T0, WINDOW, meanwhile) == 7
    assert await state(throttle_store, "account:r") == (AttemptState(1), 0)


async def test_windows_count_and_roll_over(throttle_store: ThrottleStore) -> None:
    assert [await throttle_store.hit("client:x", T0, WINDOW) for _ in range(3)] == [1, 2, 3]
    assert (await state(throttle_store, "account:x", "client:x"))[1] == 3
    assert await throttle_store.hit("client:x", T0 + WINDOW, WINDOW) == 1  # a new window starts at 1
    assert (await throttle_store.login_state("account:x", "client:x", T0 + WINDOW))[1] == 1


async def test_audit_events_reach_the_table_in_batches(database_url: str) -> None:
    engine = create_engine(database_url)
    sink = SqlAuditSink(SqlStore(engine), capacity=5)
    try:
        for n in range(7):
            sink.record(AuditEvent(T0, "login.failed", user_id=n, client="192.0.2.1", detail={"reason": "x"}))
        assert sink.dropped == 2  # bounded: a flood cannot grow memory
        assert await sink.flush() == 5
        assert await sink.flush() == 0
    finally:
        await engine.dispose()
    rows = await fetch(
        database_url, "SELECT event, user_id, client_address, detail FROM audit_events ORDER BY id"
    )
    assert rows == [("login.failed", n, "192.0.2.1", '{"reason": "x"}') for n in range(5)]


async def test_two_flushes_at_once_write_each_event_once(database_url: str) -> None:
    """The app's flusher runs every half second; shutdown, and a test reading the trail, flush too. Two
    flushes at once must neither write a batch twice nor fail (the flusher's failure would end it)."""
    engine = create_engine(database_url)
    sink = SqlAuditSink(SqlStore(engine))
    events = 2 * BATCH + 7
    for n in range(events):
        sink.record(AuditEvent(T0, "login.failed", user_id=n, client="192.0.2.1", detail={}))
    try:
        written = await asyncio.gather(sink.flush(), sink.flush(), sink.flush())
    finally:
        await engine.dispose()
    assert sum(written) == events
    rows = await fetch(database_url, "SELECT user_id FROM audit_events ORDER BY id")
    assert rows == [(n,) for n in range(events)]


async def test_a_large_flush_lets_other_requests_in_between_its_batches(sqlite_url: str) -> None:
    """On SQLite the inserts run on the event loop's thread: a flood's backlog must not hold it at once."""
    engine = create_engine(sqlite_url)
    sink = SqlAuditSink(SqlStore(engine))
    events = 5 * BATCH
    for n in range(events):
        sink.record(AuditEvent(T0, "overload.rejected", user_id=None, client="192.0.2.1", detail={"n": n}))
    reader = sqlite3.connect(str(make_url(sqlite_url).database))
    seen: set[int] = set()

    async def other_request() -> None:
        while True:  # what another request running between the batches would find committed
            seen.add(reader.execute("SELECT count(*) FROM audit_events").fetchone()[0])
            await asyncio.sleep(0)

    other = asyncio.create_task(other_request())
    try:
        assert await sink.flush() == events
    finally:
        other.cancel()
        reader.close()
        await engine.dispose()
    assert {BATCH, 2 * BATCH, 3 * BATCH, 4 * BATCH} <= seen
    rows = await fetch(sqlite_url, "SELECT count(*) FROM audit_events WHERE event = 'overload.rejected'")
    assert rows == [(events,)]


def limits(now: datetime = T0, *, lockout: int = 50, client: int = 100) -> LoginLimits:
    """The default policy's numbers: 5 free failures, then 1 s doubling to 15 min."""
    waits = tuple(now + delay for delay in ThrottlePolicy().delays)
    return LoginLimits(now=now, lockout=lockout, client=client, free=5, waits=waits)


async def test_concurrent_reservations_admit_only_the_free_failures(throttle_store: ThrottleStore) -> None:
    answers = await asyncio.gather(
        *(throttle_store.reserve_login("account:b", "client:b", T0, WINDOW, limits()) for _ in range(40))
    )
    admitted = sorted(a.state.failures for a in answers if a.admitted)
    assert admitted == [1, 2, 3, 4, 5]
    fifth = T0 + timedelta(seconds=1)
    assert await state(throttle_store, "account:b", "client:b") == (AttemptState(5, fifth), 5)
    refused = [a for a in answers if not a.admitted]
    assert all(a.state.failures == 5 for a in refused)  # refused ones count nothing
    later = limits(fifth)
    sixth = await throttle_store.reserve_login("account:b", "client:b", T0, WINDOW, later)
    assert sixth == Reservation(True, AttemptState(6, fifth + timedelta(seconds=2)), 6)


async def test_concurrent_reservations_from_one_client_admit_exactly_its_limit(
    throttle_store: ThrottleStore,
) -> None:
    answers = await asyncio.gather(
        *(
            throttle_store.reserve_login(f"account:{n}", "client:s", T0, WINDOW, limits(client=7))
            for n in range(40)
        )
    )
    assert sum(a.admitted for a in answers) == 7
    assert (await state(throttle_store, "account:39", "client:s"))[1] == 7
    accounts = [(await state(throttle_store, f"account:{n}"))[0].failures for n in range(40)]
    assert sum(accounts) == 7
    # A new window starts at one again.
    later = await throttle_store.reserve_login("account:x", "client:s", T0 + WINDOW, WINDOW, limits(client=7))
    assert later.admitted and later.counted == 1


async def test_a_locked_account_is_refused_without_counting_the_client(throttle_store: ThrottleStore) -> None:
    for _ in range(3):
        await throttle_store.record_login_failure("account:l", None, T0, WINDOW)
    refused = await throttle_store.reserve_login("account:l", "client:l", T0, WINDOW, limits(lockout=3))
    assert refused == Reservation(False, AttemptState(3), 0)
    assert await state(throttle_store, "account:l", "client:l") == (AttemptState(3), 0)


async def test_a_release_takes_the_attempt_back(throttle_store: ThrottleStore) -> None:
    for _ in range(4):
        await throttle_store.reserve_login("account:s", "client:s", T0, WINDOW, limits())
    fifth = await throttle_store.reserve_login("account:s", "client:s", T0, WINDOW, limits())
    assert fifth.state == AttemptState(5, T0 + timedelta(seconds=1))
    # A right password whose second factor is to come: its failure and its wait go, the rest stays.
    await throttle_store.release_login("account:s", "client:s", T0, reset=False, reserved=5)
    assert await state(throttle_store, "account:s", "client:s") == (AttemptState(4), 4)
    again = await throttle_store.reserve_login("account:s", "client:s", T0, WINDOW, limits())
    assert again.admitted
    await throttle_store.release_login("account:s", "client:s", T0, reset=True, reserved=5)  # a success
    assert await state(throttle_store, "account:s", "client:s") == (AttemptState(), 4)
    # A window that has rolled over is not taken below nothing, nor created.
    await throttle_store.release_login("account:s", "client:s", T0 + WINDOW, reset=True, reserved=1)
    assert (await throttle_store.login_state("account:s", "client:s", T0 + WINDOW))[1] == 0
